"""Mappings for fusion strategies along a token (sequence) dim, built for a workload.

* :func:`unfused_mapping`: every layer on its own (run it with ``mode="layer_by_layer"``),
  so each intermediate tensor goes through DRAM.
* :func:`fused_mapping`: fusion groups (by default one per block) tiled along ``dim`` in
  chunks of ``chunk`` elements (run with ``mode="fused"``): a chunk streams through the
  group's layers while sequential layers (a scan) keep their state on their core.
  ``isolate`` cuts layers out of the groups (each then runs whole, as unfused, its output
  through DRAM): the fusion cuts a memory-aware strategy chooses
  (:func:`stream.api.memory_aware_fusion`) among :func:`cut_candidates`.

Both put each layer on the cores made for its operator (as :func:`default_plan` does) and,
when there are several, split it over them along its output's channel dim (the last
parallel output dim other than ``dim``), the allocator choosing how far.
"""

from __future__ import annotations

from stream.hardware.ir import Accelerator
from stream.mapping import default_plan
from stream.mapping.ir import FusionGroup, LayerRule, Mapping, TileSpec
from stream.workload.ir import DimKind, Layer, Role, Workload


def unfused_mapping(workload: Workload, accelerator: Accelerator, dim: str = "L") -> Mapping:
    return Mapping(rules=_rules(workload, accelerator, dim))


def fused_mapping(workload: Workload, accelerator: Accelerator, chunk: int, dim: str = "L",
                  groups: list[list[str]] | None = None, isolate=()) -> Mapping:
    """``groups``: lists of layer names, contiguous in the graph (default :func:`blocks`);
    ``isolate``: layer names, or names within a block (``in_proj_x`` for every ``b<i>.in_proj_x``),
    each made a group of its own that is not chunked (it runs whole, as unfused), the rest of
    its group split where it was."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    groups = blocks(workload) if groups is None else groups
    cut = set(isolate)
    if cut:
        groups = _cut(groups, cut)
    # a layer cut out runs whole, as unfused: chunking it would fetch its weights per chunk
    fusion = tuple(FusionGroup(f"g{i}", tuple(members),
                               () if len(members) == 1 and _named(members[0], cut) else (TileSpec(dim, tile=chunk),))
                   for i, members in enumerate(groups))
    return Mapping(rules=_rules(workload, accelerator, dim), fusion_groups=fusion)


def blocks(workload: Workload) -> list[list[str]]:
    """Layers grouped by the prefix of their names before the first ``.`` (``b3.scan`` is
    in block ``b3``), in order; layers without a prefix form a group of their own each,
    unless no layer has one (then the whole workload is one group)."""
    if not any("." in l.name for l in workload.layers):
        return [[l.name for l in workload.layers]]
    out: list[list[str]] = []
    current = None
    for layer in workload.layers:
        prefix = layer.name.split(".", 1)[0] if "." in layer.name else None
        if prefix is None or prefix != current:
            out.append([])
        current = prefix
        out[-1].append(layer.name)
    return out


def cut_candidates(workload: Workload, limit: int = 4) -> list[tuple[str, ...]]:
    """Sets of layers to cut out of the fusion groups, by weight size: none; the layers
    with the largest weights; those and the next largest; ... (``limit`` sets at most).
    Names are as :func:`fused_mapping` takes them (within a block when the workload has
    blocks); a size counts once however many blocks repeat it."""
    sizes: dict[str, int] = {}
    for layer in workload.layers:
        bits = sum(layer.footprint_bits(op.name) for op in layer.inputs if op.role is Role.WEIGHT)
        if bits:
            name = layer.name.split(".", 1)[-1]
            sizes[name] = max(sizes.get(name, 0), bits)
    thresholds = sorted(set(sizes.values()), reverse=True)[: max(limit - 1, 0)]
    return [()] + [tuple(n for n in sizes if sizes[n] >= t) for t in thresholds]


def _cut(groups: list[list[str]], isolate: set[str]) -> list[list[str]]:
    out = []
    for group in groups:
        run: list[str] = []
        for name in group:
            if _named(name, isolate):
                if run:
                    out.append(run)
                out.append([name])
                run = []
            else:
                run.append(name)
        if run:
            out.append(run)
    return out


def _named(name: str, names: set[str]) -> bool:
    return name in names or name.split(".", 1)[-1] in names


def _rules(workload: Workload, accelerator: Accelerator, dim: str) -> tuple[LayerRule, ...]:
    rules = []
    for layer in workload.layers:
        cores = default_plan(layer, accelerator).candidates
        channel = _channel_dim(layer, dim)
        inter = (TileSpec(channel),) if len(cores) > 1 and channel is not None else ()
        rules.append(LayerRule(layer.name, core_allocation=cores, inter_core_tiling=inter))
    return tuple(rules)


def _channel_dim(layer: Layer, token_dim: str) -> str | None:
    """The last parallel dim indexing the output, other than the token dim and size 1."""
    output_dims = [d for axis in layer.output.axes for d in axis.dims]
    for d in reversed(output_dims):
        if d != token_dim and layer.kind(d) is DimKind.PARALLEL and layer.size(d) > 1:
            return d
    return None


__all__ = ["blocks", "cut_candidates", "fused_mapping", "unfused_mapping"]
