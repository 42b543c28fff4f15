"""Mappings: which cores may run each layer and how each layer splits.

``load_mapping(path)`` reads a file; ``plan_layers(workload, accelerator, mapping)``
resolves it (or a default when there is none) into one :class:`LayerPlan` per layer,
checked against the workload and the hardware.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import networkx as nx

from stream.errors import InputError
from stream.hardware.ir import Accelerator
from stream.mapping.ir import FusionGroup, LayerRule, Mapping, TileSpec
from stream.mapping.loader import load_mapping
from stream.workload.ir import DimKind, Layer, Role, Workload


@dataclass(frozen=True)
class LayerPlan:
    """A layer's resolved mapping: candidate cores, pinned cores and splits."""

    layer: str
    candidates: tuple[int, ...]  # cores allowed to run any piece
    pinned: tuple[int, ...] | None  # core per inter-core piece, when the mapping fixes them
    inter_core: tuple[tuple[str, int], ...]  # (dim, pieces): parallel pieces for different cores
    intra_core: tuple[TileSpec, ...]  # sequential pieces on one core (the fusion granularity)
    group: str | None = None  # the fusion group the mapping puts this layer in
    temporal_ordering: tuple[tuple[str, int | None], ...] = ()  # pinned loop order for the cost model
    # inter-core dims split "*": one piece per candidate core, and the allocator decides how
    # many cores they spread over (the split factor it reports)
    split_by_allocator: tuple[str, ...] = ()


def plan_layers(workload: Workload, accelerator: Accelerator | None, mapping: Mapping | None = None) -> dict[str, LayerPlan]:
    """Resolve ``mapping`` for every layer; without one, use :func:`default_plan`.

    Layers the mapping puts in no fusion group are grouped automatically: consecutive
    layers (in topological order) join a group until the weights that must stay resident
    would exceed ``WEIGHT_SHARE`` of the top memories of the group's cores (the rest holds
    the rows of feature maps that depth-first execution keeps in flight). Without an
    accelerator (to inspect a mapping alone) core ids are not checked, ``*`` splits over
    the listed cores and there is no capacity limit.
    """
    if mapping is None:
        plans = {l.name: default_plan(l, accelerator) for l in workload.layers}
    else:
        plans = _plans_from(workload, accelerator, mapping)
    return _auto_groups(workload, accelerator, plans)


def _plans_from(workload: Workload, accelerator: Accelerator, mapping: Mapping) -> dict[str, LayerPlan]:
    # Rules that match no layer are fine: one mapping serves every workload on a system.
    groups = _group_of(workload, mapping) if mapping.strict else {}
    plans = {}
    group_tiles = _group_tiling(workload, mapping) if mapping.strict else {}
    for layer in workload.layers:
        rule = mapping.rule_for(layer)
        plan = default_plan(layer, accelerator) if rule is None else _plan(layer, rule, accelerator, mapping)
        extra = group_tiles.get(layer.name, {})
        intra = tuple(spec for spec in plan.intra_core if spec.dim not in extra) + tuple(extra.values())
        plans[layer.name] = dataclasses.replace(plan, group=groups.get(layer.name), intra_core=intra)
    return plans


def _group_tiling(workload: Workload, mapping: Mapping) -> dict[str, dict[str, TileSpec]]:
    """A group's intra-core tiling per layer: ``dim`` for every member that has it, or
    ``layer.dim`` for one member. It overrides the layer rule's tiling of that dim."""
    file, out = mapping.source_file or "<mapping>", {}
    for i, group in enumerate(mapping.fusion_groups):
        for k, spec in enumerate(group.intra_core_tiling):
            where = f"fusion_groups[{i}].intra_core_tiling[{k}]"
            owner, _, dim = spec.dim.rpartition(".")
            members = [owner] if owner in group.layers else list(group.layers)
            dim = dim if owner in group.layers else spec.dim
            targets = [workload.layer(m) for m in members if workload.layer(m).has_dim(dim)]
            if not targets:
                raise InputError(file, where, "a dim of a layer in the group (DIM or LAYER.DIM)", spec.dim)
            for layer in targets:
                real = layer.resolve_dim(dim)
                if spec.count is not None and spec.count > layer.size(real):
                    raise InputError(file, where, f"at most {layer.size(real)} pieces of {real}", spec.count,
                                     note=f"layer {layer.name}")
                out.setdefault(layer.name, {})[real] = TileSpec(real, spec.count, spec.tile)
    return out


def _group_of(workload: Workload, mapping: Mapping) -> dict[str, str]:
    """Layer name -> fusion group name, checking that groups name real layers, once each,
    and are contiguous (no path leaves a group and comes back into it)."""
    file, group_of = mapping.source_file or "<mapping>", {}
    names = {l.name for l in workload.layers}
    for i, group in enumerate(mapping.fusion_groups):
        for k, name in enumerate(group.layers):
            key = f"fusion_groups[{i}].layers[{k}]"
            if name not in names:
                raise InputError(file, key, "the name of a layer of the workload", name)
            if name in group_of:
                raise InputError(file, key, "each layer in one fusion group at most", name,
                                 note=f"already in {group_of[name]}")
            group_of[name] = group.name
        members = set(group.layers)
        below = set().union(*(nx.descendants(workload.graph, m) for m in members))
        above = set().union(*(nx.ancestors(workload.graph, m) for m in members))
        between = sorted((below & above) - members, key=workload.index)
        if between:
            raise InputError(file, f"fusion_groups[{i}].layers", "layers contiguous in the graph", list(group.layers),
                             note=f"{between[0]} lies between them but is not in the group")
    return group_of


WEIGHT_SHARE = 0.5  # of the group's top memories that automatic fusion groups fill with weights


def _auto_groups(workload: Workload, accelerator: Accelerator, plans: dict[str, LayerPlan]) -> dict[str, LayerPlan]:
    out, current, cores, weights, count = {}, None, set(), 0, 0
    for layer in workload.layers:
        plan = plans[layer.name]
        if plan.group is not None:
            out[layer.name], current = plan, None
            continue
        layer_weights = sum(layer.footprint_bits(op.name) for op in layer.inputs if op.role is Role.WEIGHT)
        new_cores = cores | set(plan.candidates)
        capacity = math.inf if accelerator is None else WEIGHT_SHARE * sum(
            accelerator.core(c).top_memory.size_bits for c in new_cores)
        if current is None or weights + layer_weights > capacity:
            current, cores, weights, count = f"auto{count}", set(plan.candidates), 0, count + 1
        else:
            cores = new_cores
        weights += layer_weights
        out[layer.name] = dataclasses.replace(plan, group=current)
    return out


def default_plan(layer: Layer, accelerator: Accelerator | None) -> LayerPlan:
    """Cores made for this operator (listing it) if any, else every general compute core."""
    if accelerator is None:
        return LayerPlan(layer.name, (), None, (), ())
    special = tuple(c.id for c in accelerator.compute_cores
                    if c.operator_types is not None and layer.op_type in c.operator_types)
    general = tuple(c.id for c in accelerator.compute_cores if c.operator_types is None)
    candidates = special or general
    if not candidates:
        raise InputError(accelerator.source_file, "cores",
                         f"a compute core that supports operator type {layer.op_type!r} (layer {layer.name})")
    return LayerPlan(layer.name, candidates, None, (), ())


def _plan(layer: Layer, rule: LayerRule, accelerator: Accelerator, mapping: Mapping) -> LayerPlan:
    file, key = (rule.where.split(": ", 1) + [""])[:2] if rule.where else (mapping.source_file, "")

    def error(sub: str, expected: str, got: object = ..., note: str = "") -> InputError:
        return InputError(file, f"{key}.{sub}" if key else sub, expected, got,
                          note or f"layer {layer.name}")

    def dim_of(spec: TileSpec, key: str) -> str | None:
        """The layer's dim a tiling names (aliases too); None where a field template skips it."""
        if layer.has_dim(spec.dim):
            return layer.resolve_dim(spec.dim)
        if mapping.strict:
            raise error(key, f"a dim of the layer {list(layer.dims)}", spec.dim)
        return None

    cores = rule.core_allocation or default_plan(layer, accelerator).candidates
    for i, core_id in enumerate(cores if accelerator is not None else ()):
        if core_id not in accelerator.core_ids:
            raise error(f"core_allocation[{i}]", f"a core id of {accelerator.name} {list(accelerator.core_ids)}", core_id)
        if not accelerator.core(core_id).supports(layer.op_type):
            raise error(f"core_allocation[{i}]", f"a compute core that supports {layer.op_type!r}", core_id)

    for tiling, specs in (("inter_core_tiling", rule.inter_core_tiling), ("intra_core_tiling", rule.intra_core_tiling)):
        dims = [spec.dim for spec in specs]
        if len(set(dims)) != len(dims):
            raise error(tiling, "each dim at most once", dims)

    inter = []
    for spec in rule.inter_core_tiling:
        dim = dim_of(spec, "inter_core_tiling")
        if dim is None:
            continue
        if layer.kind(dim) is not DimKind.PARALLEL:
            raise error("inter_core_tiling", "a parallel dim (reduction and sequential dims stay on one core)", spec.dim)
        if spec.count is not None and spec.count > layer.size(dim):
            raise error("inter_core_tiling", f"at most {layer.size(dim)} pieces of {dim}", spec.count)
        default = len(set(cores)) if not rule.allocation_is_fixed else len(cores)
        inter.append((dim, spec.pieces(layer.size(dim), default)))

    pinned = None
    if rule.allocation_is_fixed:
        pinned = tuple(cores)
        if not inter and len(cores) > 1:
            # the field's convention: a fixed list of n cores splits the output channels n ways
            dim = next((d for d in ("K", "G") if layer.has_dim(d)), None) or next(
                (d for d, k, n in zip(layer.dims, layer.kinds, layer.sizes) if k is DimKind.PARALLEL and n >= len(cores)), None)
            if dim is None:
                raise error("core_allocation", f"at most as many cores as the layer can be split ({max(layer.sizes)})", len(cores))
            inter = [(dim, min(len(cores), layer.size(dim)))]
        n_pieces = 1
        for _, n in inter:
            n_pieces *= n
        if len(cores) not in (1, n_pieces):
            raise error("core_allocation", f"one core, or one core per inter-core piece ({n_pieces})", list(cores))
        pinned = pinned * n_pieces if len(cores) == 1 else pinned

    intra = []
    for spec in rule.intra_core_tiling:
        dim = dim_of(spec, "intra_core_tiling")
        if dim is not None:
            if spec.count is not None and spec.count > layer.size(dim):
                raise error("intra_core_tiling", f"at most {layer.size(dim)} pieces of {dim}", spec.count)
            intra.append(TileSpec(dim, spec.count, spec.tile))
    # a normalisation (softmax, layer norm) needs its whole axis in one piece
    whole = layer.attr("axis")
    for tiling, dims in (("inter_core_tiling", [d for d, n in inter if n > 1]),
                         ("intra_core_tiling", [t.dim for t in intra if t.pieces(layer.size(t.dim)) > 1])):
        if isinstance(whole, str) and whole in dims:
            raise error(tiling, f"no split of {whole}, the axis {layer.op_type} normalises over", whole)

    ordering = []
    for dim, size in rule.temporal_ordering:
        spec_dim = dim_of(TileSpec(dim), "temporal_ordering")
        if spec_dim is not None:
            ordering.append((spec_dim, size))
    chosen = tuple(layer.resolve_dim(spec.dim) for spec in rule.inter_core_tiling
                   if spec.chosen_by_allocator and layer.has_dim(spec.dim))
    return LayerPlan(layer.name, tuple(dict.fromkeys(cores)), pinned, tuple(inter), tuple(intra),
                     temporal_ordering=tuple(ordering), split_by_allocator=chosen if pinned is None else ())


__all__ = ["FusionGroup", "LayerPlan", "LayerRule", "Mapping", "TileSpec", "default_plan", "load_mapping", "plan_layers"]
