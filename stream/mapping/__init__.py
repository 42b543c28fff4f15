"""Mappings: which cores may run each layer and how each layer splits.

``load_mapping(path)`` reads a file; ``plan_layers(workload, accelerator, mapping)``
resolves it (or a default when there is none) into one :class:`LayerPlan` per layer,
checked against the workload and the hardware.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

from stream.errors import InputError
from stream.hardware.ir import Accelerator
from stream.mapping.groups import clamped, group_of, group_tiling
from stream.mapping.ir import FusionGroup, LayerRule, Mapping, TileSpec
from stream.mapping.loader import load_mapping
from stream.workload.ir import DimKind, Layer, Role, Workload


NO_MAPPING = "none"  # given as the mapping: none at all, not even the hardware's default_mapping


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
    notes: tuple[str, ...] = ()  # how the mapping was adapted to this layer (a clamped split)


def plan_layers(workload: Workload, accelerator: Accelerator | None, mapping: Mapping | None = None) -> dict[str, LayerPlan]:
    """Resolve ``mapping`` for every layer; without one, use :func:`default_plan`.

    Layers the mapping puts in no fusion group are grouped automatically: consecutive
    layers (in topological order) join a group until the weights that must stay resident
    would exceed ``WEIGHT_SHARE`` of the memories that hold the weights of the group's
    cores (in a memory shared with activations, the rest holds the rows of feature maps
    that depth-first execution keeps in flight). Without an
    accelerator (to inspect a mapping alone) core ids are not checked, ``*`` splits over
    the listed cores and there is no capacity limit.
    """
    if mapping is None:
        plans = {l.name: default_plan(l, accelerator) for l in workload.layers}
    else:
        plans = _plans_from(workload, accelerator, mapping)
    return _follow_producers(workload, _auto_groups(workload, accelerator, plans))


def _follow_producers(workload: Workload, plans: dict[str, LayerPlan]) -> dict[str, LayerPlan]:
    """An elementwise layer (every dim parallel) the mapping leaves untiled, in a fusion
    group with the layer it reads, is cut into the rows that layer is cut into: exporters
    keep a conv's Relu or BatchNorm as a layer of its own, and a whole-tensor CN between
    two row-tiled layers would hold the whole map on chip and stall the pipeline."""
    out = dict(plans)
    for layer in workload.layers:
        plan = out[layer.name]
        if plan.intra_core or plan.group is None or not layer.has_dim("rows") \
                or any(kind is not DimKind.PARALLEL for kind in layer.kinds):
            continue
        for op in layer.inputs:
            for source in op.sources:
                producer = workload.layer(source.layer)
                spec = _rows_tiling(producer, out[producer.name])
                if out[producer.name].group == plan.group and spec is not None \
                        and producer.size(producer.resolve_dim("rows")) == layer.size(layer.resolve_dim("rows")):
                    rows = layer.resolve_dim("rows")
                    out[layer.name] = dataclasses.replace(plan, intra_core=(dataclasses.replace(spec, dim=rows),))
                    break
            if out[layer.name] is not plan:
                break
    return out


def _rows_tiling(layer: Layer, plan: LayerPlan) -> TileSpec | None:
    """How ``plan`` cuts the layer's rows, if it does."""
    if not layer.has_dim("rows"):
        return None
    rows = layer.resolve_dim("rows")
    return next((spec for spec in plan.intra_core if layer.has_dim(spec.dim) and layer.resolve_dim(spec.dim) == rows),
                None)


def _plans_from(workload: Workload, accelerator: Accelerator, mapping: Mapping) -> dict[str, LayerPlan]:
    # Rules that match no layer are fine: one mapping serves every workload on a system.
    plans = {}
    for layer in workload.layers:
        rule = mapping.rule_for(layer)
        plans[layer.name] = default_plan(layer, accelerator) if rule is None else _plan(layer, rule, accelerator, mapping)
    mapping_notes: list[str] = []
    groups = group_of(workload, mapping, mapping_notes)
    if mapping.dialect == "classic" and groups:
        # a layer alone in its layer stack runs untiled (KULeuven-MICAS/stream:
        # TilingGenerationStage clears the intra-core tiling of one-layer stacks)
        size = Counter(groups.values())
        plans = {name: plan if size[groups[name]] > 1 else dataclasses.replace(plan, intra_core=())
                 for name, plan in plans.items()}
    notes: dict[str, list[str]] = {workload.layers[0].name: mapping_notes}
    inter = {name: dict(plan.inter_core) for name, plan in plans.items()}
    group_tiles = group_tiling(workload, mapping, groups, inter, notes)
    for name, plan in plans.items():
        extra = group_tiles.get(name, {})
        intra = tuple(spec for spec in plan.intra_core if spec.dim not in extra) + tuple(extra.values())
        plans[name] = dataclasses.replace(plan, group=groups.get(name), intra_core=intra,
                                          notes=plan.notes + tuple(notes.get(name, ())))
    return plans


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
        capacity = math.inf if accelerator is None else WEIGHT_SHARE * _weight_capacity(accelerator, new_cores)
        if current is None or weights + layer_weights > capacity:
            current, cores, weights, count = f"auto{count}", set(plan.candidates), 0, count + 1
        else:
            cores = new_cores
        weights += layer_weights
        out[layer.name] = dataclasses.replace(plan, group=current)
    return out


def _weight_capacity(accelerator: Accelerator, cores: set[int]) -> int:
    """Bits of the memories that hold the weights (I2) of ``cores``, a shared one once."""
    memories = {}
    for c in cores:
        memory = accelerator.core(c).memory_for("I2")
        memories[accelerator.sharing(c, memory), memory.name] = memory.size_bits
    return sum(memories.values())


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


def _keep_whole_axis(layer: Layer, splits: list, dim_of, pieces_of, tiling: str, where: str, notes: list[str],
                     refuse) -> list:
    """A normalisation (softmax, layer norm) needs its whole axis in one piece. In our files
    a split of it is an error (``refuse(tiling, expected, got)`` raises it); the field's files
    are templates that split every layer alike, so there it is dropped, with a note."""
    whole = layer.attr("axis")
    cut = [x for x in splits if isinstance(whole, str) and dim_of(x) == whole and pieces_of(x) > 1]
    if not cut:
        return splits
    if refuse is not None:
        raise refuse(tiling, f"no split of {whole}, the axis {layer.op_type} normalises over", whole)
    notes.append(f"{where}{tiling}: {whole} is the axis layer {layer.name} ({layer.op_type}) normalises over; "
                 "not split")
    return [x for x in splits if x not in cut]


def _plan(layer: Layer, rule: LayerRule, accelerator: Accelerator, mapping: Mapping) -> LayerPlan:
    file, key = (rule.where.split(": ", 1) + [""])[:2] if rule.where else (mapping.source_file, "")

    def error(sub: str, expected: str, got: object = ..., note: str = "") -> InputError:
        return InputError(file, f"{key}.{sub}" if key else sub, expected, got,
                          note or f"layer {layer.name}")

    def dim_of(spec: TileSpec, key: str) -> str | None:
        """The layer's dim a tiling names (aliases too). A rule for an operator type (or the
        default) is a template that one mapping applies to every workload on a system: where
        the layer lacks the dim it is skipped, with a note (as the field's tool does). A rule
        our format writes for this layer by name must name its dims."""
        if layer.has_dim(spec.dim):
            return layer.resolve_dim(spec.dim)
        if mapping.strict and rule.selector == layer.name:
            raise error(key, f"a dim of the layer {list(layer.dims)}", spec.dim)
        notes.append(f"{where}{key}: layer {layer.name} ({layer.op_type}) has no dim {spec.dim} "
                     f"{list(layer.dims)}; skipped there")
        return None

    where, notes = (f"{file}: {key}." if key else f"{file}: "), []
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
        spec = clamped(layer, dim, spec, f"{where}inter_core_tiling", notes)
        default = len(set(cores)) if not rule.allocation_is_fixed else len(cores)
        inter.append((dim, spec.pieces(layer.size(dim), default)))

    inter = _keep_whole_axis(layer, inter, lambda x: x[0], lambda x: x[1], "inter_core_tiling", where, notes,
                             error if mapping.strict else None)
    pinned = None
    if rule.allocation_is_fixed:
        pinned = tuple(cores)
        if not inter and len(cores) > 1:
            # the field's convention: a fixed list of n cores splits the output channels n ways
            dim = next((d for d in ("K", "G") if d in layer.dims), None) or next(
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
            intra.append(clamped(layer, dim, TileSpec(dim, spec.count, spec.tile), f"{where}intra_core_tiling", notes))
    intra = _keep_whole_axis(layer, intra, lambda t: t.dim, lambda t: t.pieces(layer.size(t.dim)),
                             "intra_core_tiling", where, notes, error if mapping.strict else None)

    ordering = []
    for dim, size in rule.temporal_ordering:
        spec_dim = dim_of(TileSpec(dim), "temporal_ordering")
        if spec_dim is not None:
            ordering.append((spec_dim, size))
    chosen = tuple(layer.resolve_dim(spec.dim) for spec in rule.inter_core_tiling
                   if spec.chosen_by_allocator and layer.has_dim(spec.dim) and layer.resolve_dim(spec.dim) in dict(inter))
    return LayerPlan(layer.name, tuple(dict.fromkeys(cores)), pinned, tuple(inter), tuple(intra),
                     temporal_ordering=tuple(ordering), split_by_allocator=chosen if pinned is None else (),
                     notes=tuple(notes))


__all__ = ["NO_MAPPING", "FusionGroup", "LayerPlan", "LayerRule", "Mapping", "TileSpec", "default_plan", "load_mapping", "plan_layers"]
