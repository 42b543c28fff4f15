"""YAML workloads in the field's vocabulary (ZigZag / KU Leuven Stream).

Two shapes are read:

* the field's: a top-level list of layers, each with ``id``, ``operator_type``,
  ``equation``, ``dimension_relations``, ``loop_dims``, ``loop_sizes``,
  ``operand_precision``, ``operand_source`` and optional ``padding``, ``pr_loop_dims``,
  ``pr_loop_sizes``, ``constant_operands``, ``name``;
* ours: ``{version: 1, name: ..., layers: [...]}`` with the same layer keys plus
  ``loop_kinds`` (e.g. ``{L: sequential}``).

Conventions of the field kept here: an operand whose source is the layer itself comes
from DRAM (a weight, or the network input for ``I``); ``O`` is the partial-sum
precision and ``O_final`` the final one; without ``padding``, a sliding-window axis is
padded so it fits its producer's output (``ceil(excess/2)`` at the start, PyTorch's
convention for odd kernels), and clipped to it. ``pr_loop_sizes`` (one per
``pr_loop_dims`` axis) are ZigZag's real, unpadded extents of those input axes
(``LayerNode.pr_layer_dim_sizes``): a network input's axis has that extent, padded as
above, and for an axis fed by a producer it must equal what the producer gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stream.spec import (
    Where, check_keys, expect_dict, expect_int, expect_list, expect_str, load_yaml,
)
from stream.workload.ir import AxisExpr, DimKind, Layer, Operand, Role, Source, Workload

LAYER_KEYS = (
    "id", "name", "operator_type", "equation", "dimension_relations", "loop_dims",
    "loop_sizes", "operand_precision", "operand_source", "constant_operands", "padding",
    "pr_loop_dims", "pr_loop_sizes", "loop_kinds",
)
_OPERAND = re.compile(r"([A-Za-z_]\w*)((?:\[[A-Za-z_]\w*\])*)")
_TERM = re.compile(r"^([+-]?\d*)\s*\*?\s*([A-Za-z_]\w*)$")


@dataclass(frozen=True)
class _Equation:
    output: tuple[str, tuple[str, ...]]
    inputs: tuple[tuple[str, tuple[str, ...]], ...]
    accumulates: bool  # "+=": dims absent from the output are reductions


def load_yaml_workload(path) -> Workload:
    data, where = load_yaml(path)
    return workload_from_document(data, where, str(path).rsplit("/", 1)[-1].rsplit(".", 1)[0], str(path))


def workload_from_document(data, where: Where, name: str, source_file: str | None = None) -> Workload:
    """The workload of a parsed YAML document (either shape); ``name`` unless it names itself."""
    if isinstance(data, dict):
        check_keys(data, where, required=("version", "layers"), optional=("name",))
        if data["version"] != 1:
            raise (where / "version").error("1", data["version"])
        name = expect_str(data.get("name", name), where / "name")
        layers_where = where / "layers"
        raw_layers = expect_list(data["layers"], layers_where)
        strict = True
    else:
        layers_where = where
        raw_layers = expect_list(data, where)
        strict = False
    if not raw_layers:
        raise where.error("at least one layer", raw_layers)

    warnings: list[str] = []
    parsed = [_parse_layer(raw, layers_where / i, strict, warnings) for i, raw in enumerate(raw_layers)]
    ids = {}
    for p in parsed:
        if p["id"] in ids:
            raise (p["where"] / "id").error("unique layer ids", p["id"])
        ids[p["id"]] = p
    names = set()
    for p in parsed:
        if p["name"] in names:
            raise (p["where"] / "name").error("unique layer names", p["name"])
        names.add(p["name"])
    layers = [_build_layer(p, ids) for p in parsed]
    return Workload.from_layers(name, layers, source_file=source_file, warnings=warnings)


# -- parsing -----------------------------------------------------------------------------


def _parse_layer(raw, where: Where, strict: bool, warnings: list[str]) -> dict:
    raw = expect_dict(raw, where)
    required = ("equation", "loop_dims", "loop_sizes", "operand_precision")
    check_keys(raw, where, required=required + (() if strict else ("id",)), optional=LAYER_KEYS)
    layer_id = raw.get("id")
    if layer_id is not None and (isinstance(layer_id, bool) or not isinstance(layer_id, (int, str))):
        raise (where / "id").error("an integer or a name", layer_id)
    op_type = expect_str(raw.get("operator_type", "Generic"), where / "operator_type")
    name = raw.get("name")
    if name is None:
        if layer_id is None:
            raise (where / "name").error("a name or an id for the layer")
        name = f"{op_type}_{layer_id}"
    name = expect_str(str(name), where / "name")
    if layer_id is None:
        layer_id = name

    dims = [expect_str(d, where / "loop_dims" / i).upper()
            for i, d in enumerate(expect_list(raw["loop_dims"], where / "loop_dims"))]
    sizes = [expect_int(s, where / "loop_sizes" / i, minimum=1)
             for i, s in enumerate(expect_list(raw["loop_sizes"], where / "loop_sizes"))]
    if len(dims) != len(sizes):
        raise (where / "loop_sizes").error(f"{len(dims)} sizes, one per loop dim", len(sizes))
    if len(set(dims)) != len(dims):
        raise (where / "loop_dims").error("distinct dimension names", dims)

    eq = _parse_equation(raw["equation"], where / "equation")
    relations = _parse_relations(raw.get("dimension_relations") or [], where / "dimension_relations", dims)
    operand_names = [eq.output[0]] + [n for n, _ in eq.inputs]

    for op, indices in (eq.output, *eq.inputs):
        for idx in indices:
            if idx.upper() not in dims and idx.upper() not in relations:
                raise (where / "equation").error(
                    f"indices that are loop dims {dims} or defined in dimension_relations",
                    idx, note=f"operand {op}",
                )

    precision = _parse_precision(raw["operand_precision"], where / "operand_precision",
                                 operand_names, strict, warnings)
    sources = expect_dict(raw.get("operand_source") or {}, where / "operand_source")
    for key in sources:
        if key not in operand_names[1:]:
            raise (where / "operand_source" / key).error(
                f"an input operand of the equation ({', '.join(operand_names[1:])})", key)
    constant = raw.get("constant_operands")
    if constant is not None:
        constant = [str(c) for c in expect_list(constant, where / "constant_operands")]

    kinds = {}
    for dim, kind in expect_dict(raw.get("loop_kinds") or {}, where / "loop_kinds").items():
        if str(dim).upper() not in dims:
            raise (where / "loop_kinds" / dim).error(f"one of the loop dims {dims}", dim)
        try:
            kinds[str(dim).upper()] = DimKind(kind)
        except ValueError:
            raise (where / "loop_kinds" / dim).error("parallel, reduction or sequential", kind) from None

    padding = _parse_padding(raw.get("padding"), raw.get("pr_loop_dims"), relations, where)
    pr_sizes = _parse_pr_sizes(raw.get("pr_loop_sizes"), raw.get("pr_loop_dims"), relations, where)
    return dict(id=layer_id, name=name, op_type=op_type, dims=dims, sizes=sizes, eq=eq,
                relations=relations, precision=precision, sources=sources, constant=constant,
                kinds=kinds, padding=padding, pr_sizes=pr_sizes, where=where)


def _parse_equation(text, where: Where) -> _Equation:
    text = expect_str(text, where).replace(" ", "")
    match = re.match(r"^(.+?)(\+=|=)(.+)$", text)
    if not match:
        raise where.error("an equation like O[b][k]+=W[k][c]*I[b][c]", text)
    lhs, op, rhs = match.groups()

    def operand(part: str) -> tuple[str, tuple[str, ...]]:
        m = _OPERAND.fullmatch(part)
        if not m:
            raise where.error("operands written NAME[i][j]...", part)
        return m.group(1), tuple(i.lower() for i in re.findall(r"\[(\w+)\]", m.group(2)))

    output = operand(lhs)
    inputs = tuple(operand(p) for p in re.split(r"[*+\-/]", rhs) if p)
    if not inputs:
        raise where.error("at least one input operand on the right-hand side", text)
    names = [output[0]] + [n for n, _ in inputs]
    if len(set(names)) != len(names):
        raise where.error("each operand named once", text)
    return _Equation(output, inputs, accumulates=(op == "+="))


def _parse_relations(items, where: Where, dims: list[str]) -> dict[str, tuple[tuple[str, int], ...]]:
    relations = {}
    for i, text in enumerate(expect_list(items, where)):
        text = expect_str(text, where / i).replace(" ", "")
        if text.count("=") != 1:
            raise (where / i).error("a relation like ix=2*ox+1*fx", text)
        lhs, rhs = text.split("=")
        terms = []
        for term in re.findall(r"[+-]?[^+-]+", rhs):
            m = _TERM.match(term)
            if not m or m.group(2).upper() not in dims:
                raise (where / i).error(f"terms like 2*ox over the loop dims {dims}", term)
            coef = m.group(1)
            coef = int(coef) if coef not in ("", "+", "-") else (-1 if coef == "-" else 1)
            terms.append((m.group(2).upper(), coef))
        relations[lhs.upper()] = tuple(terms)
    return relations


def _parse_precision(raw, where: Where, operands: list[str], strict: bool, warnings) -> dict[str, int]:
    raw = expect_dict(raw, where)
    out_name = operands[0]
    known = set(operands) | {f"{out_name}_final"}
    precision = {}
    for key, bits in raw.items():
        if key not in known:
            if strict:
                raise (where / key).error(f"an operand of the equation ({', '.join(sorted(known))})", key)
            warnings.append(f"{where.file}: {where.path}.{key}: not an operand of the equation; ignored")
            continue
        precision[key] = expect_int(bits, where / key, minimum=0)
    if out_name not in precision:
        raise (where / out_name).error("the output's (partial-sum) precision in bits")
    precision.setdefault(f"{out_name}_final", precision[out_name])
    for name in operands[1:]:
        if name not in precision:
            if strict:
                raise (where / name).error("a precision in bits for every operand")
            precision[name] = precision[f"{out_name}_final"]
            warnings.append(
                f"{where.file}: {where.path}.{name}: missing; using the final output "
                f"precision ({precision[name]} bits)"
            )
    return precision


def _parse_padding(raw, pr_dims, relations, where: Where) -> dict[str, tuple[int, int]] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        items = [(str(k).upper(), v) for k, v in raw.items()]
    else:
        order = [str(d).upper() for d in expect_list(pr_dims, where / "pr_loop_dims")] if pr_dims else list(relations)
        pads = expect_list(raw, where / "padding")
        if len(pads) != len(order):
            raise (where / "padding").error(f"{len(order)} [begin, end] pairs, one per {order}", raw)
        items = list(zip(order, pads))
    padding = {}
    for axis, pair in items:
        w = where / "padding" / axis
        if axis not in relations:
            raise w.error(f"an axis defined in dimension_relations {sorted(relations)}", axis)
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise w.error("[begin, end]", pair)
        padding[axis] = (expect_int(pair[0], w, minimum=0), expect_int(pair[1], w, minimum=0))
    return padding


def _parse_pr_sizes(raw, pr_dims, relations, where: Where) -> dict[str, int]:
    """``pr_loop_sizes``: the extent of each ``pr_loop_dims`` axis, in that order."""
    if raw is None:
        return {}
    if pr_dims is None:
        raise (where / "pr_loop_dims").error("this key to be present", note="pr_loop_sizes needs it")
    order = [str(d).upper() for d in expect_list(pr_dims, where / "pr_loop_dims")]
    sizes = expect_list(raw, where / "pr_loop_sizes")
    if len(sizes) != len(order):
        raise (where / "pr_loop_sizes").error(f"{len(order)} sizes, one per pr_loop_dims axis {order}", raw)
    out = {}
    for i, (axis, size) in enumerate(zip(order, sizes)):
        if axis not in relations:
            raise (where / "pr_loop_dims" / i).error(f"an axis defined in dimension_relations {sorted(relations)}", axis)
        out[axis] = expect_int(size, where / "pr_loop_sizes" / i, minimum=1)
    return out


# -- building ----------------------------------------------------------------------------


def _build_layer(p: dict, by_id: dict) -> Layer:
    dims, sizes, eq, where = p["dims"], p["sizes"], p["eq"], p["where"]
    size = dict(zip(dims, sizes))
    out_name, out_idx = eq.output
    out_dims = {i.upper() for i in out_idx}
    kinds = tuple(
        p["kinds"].get(d, DimKind.PARALLEL if (d in out_dims or not eq.accumulates) else DimKind.REDUCTION)
        for d in dims
    )
    has_reduction = DimKind.REDUCTION in kinds
    output = Operand(
        out_name, Role.OUTPUT,
        tuple(_axis(i, p, size, None, where) for i in out_idx),
        precision=p["precision"][f"{out_name}_final"],
        partial_precision=p["precision"][out_name] if has_reduction else None,
    )
    operands = [output]
    for name, indices in eq.inputs:
        src_id = p["sources"].get(name, p["id"])
        producer = None
        if src_id != p["id"]:
            if src_id not in by_id:
                raise (where / "operand_source" / name).error("the id of a layer in this file", src_id)
            producer = by_id[src_id]
        if producer is None:
            constant = p["constant"]
            is_weight = (name in constant) if constant is not None else name != "I"
            role = Role.WEIGHT if is_weight else Role.ACTIVATION
        else:
            role = Role.ACTIVATION
            if len(producer["eq"].output[1]) != len(indices):
                raise (where / "equation").error(
                    f"operand {name} with as many axes as the output of its source "
                    f"{producer['name']} ({len(producer['eq'].output[1])})", len(indices))
        axes = tuple(
            _axis(idx, p, size, _producer_extent(producer, k) if producer else None, where / name)
            for k, idx in enumerate(indices)
        )
        operands.append(Operand(
            name, role, axes, precision=p["precision"][name],
            sources=(Source(producer["name"]),) if producer else (),
        ))
    return Layer(p["name"], p["op_type"], tuple(dims), tuple(sizes), kinds, tuple(operands))


def _producer_extent(producer: dict, axis: int) -> int:
    idx = producer["eq"].output[1][axis].upper()
    size = dict(zip(producer["dims"], producer["sizes"]))
    if idx in size:
        return size[idx]
    return AxisExpr(producer["relations"][idx], extent=10**18).distinct(size)


def _axis(index: str, p: dict, size: dict, producer_extent: int | None, where: Where) -> AxisExpr:
    name = index.upper()
    if name in size:
        terms = ((name, 1),)
        needed = size[name]
        if producer_extent is not None and producer_extent != needed:
            raise where.error(
                f"axis {index} to span the {producer_extent} elements its source produces", needed)
        return AxisExpr(terms, extent=needed)
    terms = p["relations"][name]
    needed = AxisExpr(terms, extent=10**18).index_range({d: (0, size[d]) for d, _ in terms})[1]
    given = p["pr_sizes"].get(name)
    if given is not None:
        if producer_extent is not None and given != producer_extent:
            k = list(p["pr_sizes"]).index(name)
            raise (p["where"] / "pr_loop_sizes" / k).error(
                f"the {producer_extent} elements the source of axis {index} produces", given)
        producer_extent = given  # the data's extent, whether it comes from a layer or from DRAM
    pad = (p["padding"] or {}).get(name)
    if pad is not None:
        # the loops touch [-begin, needed - begin); padding covers what lies outside the data
        extent = needed - pad[0] - pad[1] if producer_extent is None else producer_extent
        if extent < 1 or needed - pad[0] - pad[1] > extent:
            raise (p["where"] / "padding" / name).error(
                f"[begin, end] padding that covers the {needed} indices the loops reach"
                + (f" around the {producer_extent} elements its source produces" if producer_extent else ""),
                list(pad))
        return AxisExpr(terms, extent=extent, offset=-pad[0])
    if producer_extent is None:
        return AxisExpr(terms, extent=needed)
    excess = needed - producer_extent
    begin = (excess + 1) // 2 if excess > 0 else 0
    return AxisExpr(terms, extent=producer_extent, offset=-begin)
