"""Mapping YAML in the field's two dialects and ours.

* classic (a top-level list of rules): ``core_allocation: [0, 1]``,
  ``intra_core_tiling: ["OY, all"]``, ``inter_core_tiling: ["K, *"]``,
  ``core_allocation_is_fixed``;
* newer (``layers:`` + ``fused_groups:``): ``core_allocation: [[0, 1]]``,
  ``inter_core_tiling: [[{dim: D6, split: 4}]]``, group ``intra_core_tiling:
  [{dim: Conv.D0, tile: 1}]``;
* ours: ``{version: 1, layers: [...], fusion_groups: [...]}`` accepting either entry form.

The classic dialect had no fusion groups in its files: the field's tool took them as a
run argument (``layer_stacks``, tuples of layer ids). A classic file may state them as
one entry among its rules, ``- layer_stacks: [[LAYER, ...], ...]`` with layer names.

``"OY, all"`` is one element per piece, ``"OY, 8"`` eight pieces, ``{tile: n}`` pieces of
n elements, ``"K, *"`` a count chosen by the allocator. The field's files are templates:
a rule naming a dim that a layer lacks is skipped there; in our format it is an error.
"""

from __future__ import annotations

from stream.mapping.ir import FusionGroup, LayerRule, Mapping, TileSpec
from stream.spec import (
    Where, check_keys, expect_bool, expect_dict, expect_int, expect_list, expect_str, load_yaml, split_pair,
)

RULE_KEYS = ("name", "core_allocation", "core_allocation_is_fixed", "intra_core_tiling", "inter_core_tiling",
             "temporal_ordering")


def load_mapping(path) -> Mapping:
    data, where = load_yaml(path)
    groups_raw = []
    if isinstance(data, dict):
        if "version" in data:
            check_keys(data, where, required=("version",), optional=("layers", "fusion_groups"))
            if data["version"] != 1:
                raise (where / "version").error("1", data["version"])
            dialect, groups_key = "ours", "fusion_groups"
        else:
            check_keys(data, where, required=("layers",), optional=("fused_groups",))
            dialect, groups_key = "2026", "fused_groups"
        rules_raw = expect_list(data.get("layers") or [], where / "layers")
        rules_where = where / "layers"
        groups_raw = expect_list(data.get(groups_key) or [], where / groups_key)
        groups_where = where / groups_key
    else:
        dialect, rules_where = "classic", where
        rules_raw = list(expect_list(data, where))
        stacks = [i for i, raw in enumerate(rules_raw) if isinstance(raw, dict) and "layer_stacks" in raw]
        if len(stacks) > 1:
            raise (where / stacks[1] / "layer_stacks").error("one layer_stacks entry")
        if stacks:
            groups_where = where / stacks[0]
            check_keys(rules_raw[stacks[0]], groups_where, required=("layer_stacks",))
            groups_raw = [{"name": f"stack{i}", "layers": layers} for i, layers in
                          enumerate(expect_list(rules_raw[stacks[0]]["layer_stacks"], groups_where / "layer_stacks"))]
            groups_where = groups_where / "layer_stacks"
    rules = tuple(_rule(raw, rules_where / i) for i, raw in enumerate(rules_raw)
                  if not (isinstance(raw, dict) and "layer_stacks" in raw))
    seen = set()
    for i, rule in enumerate(rules):
        if rule.selector in seen:
            raise (rules_where / i / "name").error("each layer name or operator type once", rule.selector)
        seen.add(rule.selector)
    groups = tuple(_group(raw, groups_where / i) for i, raw in enumerate(groups_raw)) if groups_raw else ()
    return Mapping(rules, groups, dialect=dialect, source_file=str(path))


def _rule(raw, where: Where) -> LayerRule:
    raw = expect_dict(raw, where)
    check_keys(raw, where, required=("name",), optional=RULE_KEYS)
    selector = expect_str(str(raw["name"]), where / "name")
    cores = _core_allocation(raw.get("core_allocation", []), where / "core_allocation")
    fixed = expect_bool(raw.get("core_allocation_is_fixed", False), where / "core_allocation_is_fixed")
    return LayerRule(
        selector=selector,
        core_allocation=cores,
        allocation_is_fixed=fixed,
        inter_core_tiling=_tilings(raw.get("inter_core_tiling", []), where / "inter_core_tiling", "split"),
        intra_core_tiling=_tilings(raw.get("intra_core_tiling", []), where / "intra_core_tiling", "tile"),
        temporal_ordering=_ordering(raw.get("temporal_ordering", []), where / "temporal_ordering"),
        where=f"{where.file}: {where.path}",
    )


def _ordering(raw, where: Where) -> tuple[tuple[str, int | None], ...]:
    """``[OX, FX, C]`` (each dim's whole temporal loop) or ``[[OX, 7], [C, 4], ...]``, innermost first."""
    out = []
    for i, item in enumerate(expect_list(raw, where)):
        if isinstance(item, str):
            out.append((expect_str(item, where / i), None))
        elif isinstance(item, list) and len(item) == 2:
            out.append((expect_str(str(item[0]), where / i / 0), expect_int(item[1], where / i / 1, minimum=1)))
        else:
            raise (where / i).error("a dim name or a [dim, size] pair", item)
    return tuple(out)


def _core_allocation(raw, where: Where) -> tuple[int, ...]:
    items = expect_list(raw, where)
    if items and all(isinstance(i, list) for i in items):
        # newer dialect: a list of allocation options; one option is all we model
        if len(items) != 1:
            raise where.error("one list of cores", raw, note="several allocation options are not supported")
        items, where = items[0], where / 0
    return tuple(expect_int(c, where / i, minimum=0) for i, c in enumerate(items))


def _tilings(raw, where: Where, size_key: str) -> tuple[TileSpec, ...]:
    items = expect_list(raw, where)
    if items and all(isinstance(i, list) for i in items):
        if len(items) != 1:
            raise where.error("one list of tilings", raw, note="several tiling options are not supported")
        items, where = items[0], where / 0
    return tuple(_tiling(item, where / i, size_key) for i, item in enumerate(items))


def _tiling(item, where: Where, size_key: str) -> TileSpec:
    if isinstance(item, dict):
        check_keys(item, where, required=("dim",), optional=("split", "tile", "count"))
        dim = expect_str(str(item["dim"]), where / "dim")
        if "tile" in item:
            return TileSpec(dim, tile=expect_int(item["tile"], where / "tile", minimum=1))
        key = "split" if "split" in item else "count"
        if key not in item:
            raise where.error(f"a '{size_key}' (or 'count') entry")
        value = item[key]
        if value == "*":
            return TileSpec(dim)
        return TileSpec(dim, count=expect_int(value, where / key, minimum=1))
    dim, value = split_pair(item, where)
    if value == "*":
        return TileSpec(dim)
    if value == "all":
        return TileSpec(dim, tile=1)
    try:
        count = int(value)
    except ValueError:
        raise where.error('"DIM, N", "DIM, all" or "DIM, *"', item) from None
    return TileSpec(dim, count=expect_int(count, where, minimum=1))


def _group(raw, where: Where) -> FusionGroup:
    raw = expect_dict(raw, where)
    check_keys(raw, where, required=("layers",), optional=("name", "intra_core_tiling"))
    layers = tuple(expect_str(str(l), where / "layers" / i)
                   for i, l in enumerate(expect_list(raw["layers"], where / "layers")))
    if not layers:
        raise (where / "layers").error("at least one layer")
    name = expect_str(str(raw.get("name", f"group{where.path.rsplit('[', 1)[-1].rstrip(']')}")), where / "name")
    return FusionGroup(name, layers, _tilings(raw.get("intra_core_tiling", []), where / "intra_core_tiling", "tile"))
