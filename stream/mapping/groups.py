"""Fusion groups as each dialect states them, and the tiling a group gives its layers.

* **ours** and **classic** (``layer_stacks``): a group lists layer names. Its
  ``intra_core_tiling`` names ``DIM`` (every member that has it) or ``LAYER.DIM`` (that
  member only). Classic stacks are completed as the field's tool does
  (``fill_layer_stacks_to_completion``): a layer in no stack is a stack of its own.
* **2026** (``fused_groups``): when every entry names a layer of the workload, the groups
  are those names. The field's own files also write operator-type labels
  (``layers: [Conv, Relu, Add]``); the field's tool never matches those against the graph:
  it cuts the network by a rule and pairs its i-th group with the file's i-th group by
  position (KULeuven-MICAS/stream, ``FixedMappingGenerationStage.run`` and
  ``determine_fusion_cut_points``). We follow it: :func:`field_cut_groups`.
  A group's ``{dim: LAYER.Dn, tile: t}`` cuts that layer's dim into tiles of ``t``
  elements, and, as the field's unified dimensions do, every dim of the other members
  that indexes the same tensor axis (through the group's producer-consumer tensors) into
  the same number of steps (:func:`linked_dims`).
"""

from __future__ import annotations

import networkx as nx

from stream.errors import InputError
from stream.mapping.ir import Mapping, TileSpec
from stream.workload.ir import DimKind, Layer, Reshape, Workload


def group_of(workload: Workload, mapping: Mapping, notes: list[str]) -> dict[str, str]:
    """Layer name -> fusion group name for the layers the mapping groups; ``notes`` hears
    when groups were read as labels."""
    groups = mapping.fusion_groups
    if not groups:
        return {}
    names = {l.name for l in workload.layers}
    if mapping.dialect == "2026" and not all(m in names for g in groups for m in g.layers):
        notes.append(f"{mapping.source_file}: fused_groups[].layers name no layers of {workload.name} (labels "
                     "such as 'Conv'); as the field's tool does, the groups are its cuts of the network, paired "
                     "with the file's groups by position")
        return _paired_with_field_cuts(workload, mapping)
    named = _named_groups(workload, mapping)
    if mapping.dialect == "classic":  # layer stacks: a layer in none is a stack of its own
        return {l.name: named.get(l.name, f"stack:{l.name}") for l in workload.layers}
    return named


def _named_groups(workload: Workload, mapping: Mapping) -> dict[str, str]:
    """Groups that list layer names: each a real layer, in one group at most, and each group
    contiguous in the graph (no path leaves it and comes back)."""
    file, out = mapping.source_file or "<mapping>", {}
    names = {l.name for l in workload.layers}
    key = _groups_key(mapping)
    seen: set[str] = set()
    for i, group in enumerate(mapping.fusion_groups):
        if group.name in seen:  # two groups of one name would run as one
            raise InputError(file, f"{key}[{i}].name", "a name no other group has", group.name)
        seen.add(group.name)
        for k, name in enumerate(group.layers):
            where = f"{key}[{i}].layers[{k}]"
            if name not in names:
                raise InputError(file, where, "the name of a layer of the workload", name)
            if name in out:
                raise InputError(file, where, "each layer in one fusion group at most", name,
                                 note=f"already in {out[name]}")
            out[name] = group.name
        members = set(group.layers)
        below = set().union(*(nx.descendants(workload.graph, m) for m in members))
        above = set().union(*(nx.ancestors(workload.graph, m) for m in members))
        between = sorted((below & above) - members, key=workload.index)
        if between:
            raise InputError(file, f"{key}[{i}].layers", "layers contiguous in the graph", list(group.layers),
                             note=f"{between[0]} lies between them but is not in the group")
    return out


def _groups_key(mapping: Mapping) -> str:
    return {"ours": "fusion_groups", "2026": "fused_groups", "classic": "layer_stacks"}[mapping.dialect]


def _paired_with_field_cuts(workload: Workload, mapping: Mapping) -> dict[str, str]:
    """The field's reading of groups written as labels: its cut rule gives the groups, and
    the i-th goes with the file's i-th (its name and tiling). When the counts differ, the
    field cuts after the last layer each group but the last lists instead (so one group is
    the whole network)."""
    cuts = field_cut_groups(workload)
    groups = mapping.fusion_groups
    if len(cuts) != len(groups):
        cuts = _cut_after([g.layers[-1] for g in groups[:-1]], workload)
    if cuts is None or len(cuts) != len(groups):
        raise InputError(
            mapping.source_file or "<mapping>", "fused_groups",
            f"{len(field_cut_groups(workload))} groups, or groups that list layer names", f"{len(groups)} groups",
            note="entries such as 'Conv' name no layer; the field's tool then cuts the network after every "
                 "MaxPool, after the Relu that follows an Add and at every Flatten, and pairs those groups "
                 "with the file's by position")
    return {name: group.name for members, group in zip(cuts, groups) for name in members}


def _cut_after(names: list[str], workload: Workload) -> list[list[str]] | None:
    """The layers in topological order, cut after each of ``names`` (None if one is not a layer)."""
    if any(name not in {l.name for l in workload.layers} for name in names):
        return None
    out: list[list[str]] = [[]]
    for layer in workload.layers:
        out[-1].append(layer.name)
        if layer.name in names:
            out.append([])
    return [g for g in out if g]


def field_cut_groups(workload: Workload) -> list[list[str]]:
    """The field's automatic fusion cuts, in topological order: a group ends after every
    MaxPool, after a Relu that is the only consumer of an Add, and where a tensor is
    flattened on its way to the next layer (the field's tool cuts at its Flatten nodes; ours
    are views). The last layer never starts a new group."""
    out: list[list[str]] = [[]]
    for i, layer in enumerate(workload.layers):
        if out[-1] and _flattened_from(workload, layer, out[-1]):
            out.append([])
        out[-1].append(layer.name)
        last = i == len(workload.layers) - 1
        if not last and (layer.op_type == "MaxPool" or _relu_after_add(workload, layer)):
            out.append([])
    return [g for g in out if g]


def _relu_after_add(workload: Workload, layer: Layer) -> bool:
    if layer.op_type != "Relu":
        return False
    adds = [p for p in workload.predecessors(layer.name) if workload.layer(p).op_type == "Add"]
    return any(workload.successors(a) == [layer.name] for a in adds)


def _flattened_from(workload: Workload, layer: Layer, group: list[str]) -> bool:
    """Does ``layer`` read a member of ``group`` through a reshape to fewer axes (a Flatten)?"""
    for op in layer.inputs:
        for source in op.sources:
            if source.layer in group and any(isinstance(v, Reshape) and len(v.shape_out) < len(v.shape_in)
                                             for v in source.views):
                return True
    return False


# -- the tiling a group gives its members ------------------------------------------------


def group_tiling(workload: Workload, mapping: Mapping, groups: dict[str, str], inter: dict[str, dict[str, int]],
                 notes: dict[str, list[str]]) -> dict[str, dict[str, TileSpec]]:
    """Per layer, the intra-core tiling its fusion group gives it, by dim (overriding the
    layer rule's tiling of that dim). ``inter`` holds each layer's inter-core pieces per
    dim; ``notes`` collects, per layer, splits cut to the layer's size."""
    file, out = mapping.source_file or "<mapping>", {}
    key = _groups_key(mapping)
    members_of: dict[str, list[str]] = {}
    for name in (l.name for l in workload.layers):
        if name in groups:
            members_of.setdefault(groups[name], []).append(name)
    for i, group in enumerate(mapping.fusion_groups):
        members = members_of.get(group.name, [])
        linked = linked_dims(workload, members) if mapping.dialect == "2026" else None
        for k, spec in enumerate(group.intra_core_tiling):
            where = f"{key}[{i}].intra_core_tiling[{k}]"
            targets, dim = _targets(workload, members, spec.dim, linked is not None)
            owner = spec.dim.rpartition(".")[0]
            if not targets and linked is not None and owner not in members and members:
                # an operator-type label no member has: the field's files are templates
                notes.setdefault(members[0], []).append(
                    f"{file}: {where}: {spec.dim} names no layer or operator type of group {group.name}; skipped")
                continue
            if not targets:
                expected = ("LAYER.Dn with a layer (or operator type) of the group" if linked is not None
                            else "a dim of a layer in the group (DIM or LAYER.DIM)")
                raise InputError(file, where, f"{expected} ({', '.join(members)})", spec.dim)
            named = {t.name for t in targets}
            for layer in targets:
                real = layer.resolve_dim(dim)
                out.setdefault(layer.name, {})[real] = clamped(
                    layer, real, TileSpec(real, spec.count, spec.tile), f"{file}: {where}",
                    notes.setdefault(layer.name, []))
            for layer in targets if linked is not None else ():
                real = layer.resolve_dim(dim)
                steps = _steps(layer, real, out[layer.name][real], inter.get(layer.name, {}).get(real, 1))
                for other, other_dim in linked.get((layer.name, real), ()):
                    if other not in named and other_dim not in out.get(other, {}):
                        size = -(-workload.layer(other).size(other_dim) // inter.get(other, {}).get(other_dim, 1))
                        out.setdefault(other, {})[other_dim] = TileSpec(other_dim, count=min(steps, size))
    return out


def _targets(workload: Workload, members: list[str], text: str, qualified: bool) -> tuple[list[Layer], str]:
    """The members a group tiling names, and the dim: ``LAYER.DIM`` names one member (or, where
    LAYER is no member, every member of that operator type: the field's files write
    ``Conv.D0``); an unqualified ``DIM`` every member that has it (not in the 2026 dialect)."""
    owner, _, dim = text.rpartition(".")
    if owner in members:
        layers = [workload.layer(owner)]
    elif owner and qualified:
        layers = [workload.layer(m) for m in members if workload.layer(m).op_type == owner]
    elif qualified:
        return [], text
    else:
        layers, dim = [workload.layer(m) for m in members], text
    return [layer for layer in layers if layer.has_dim(dim)], dim


def _steps(layer: Layer, dim: str, spec: TileSpec, pieces: int) -> int:
    """Tiles of one inter-core piece of ``dim`` under ``spec``."""
    piece = -(-layer.size(dim) // pieces)
    return spec.pieces(piece)


def linked_dims(workload: Workload, members: list[str]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(layer, dim) -> every (layer, dim) of ``members`` that indexes the same tensor axis.

    A producer's output axis indexed by one dim is linked to the dim that indexes the same
    axis of its consumer's input: the single dim of that axis (a Gemm's reduction over
    the producer's columns, say), or the parallel dim of a window axis (a conv's OY in
    ``OY + FY``). Tensors through views (reshapes, transposes) link nothing.
    """
    union = nx.utils.UnionFind()
    inside = set(members)
    for name in members:
        consumer = workload.layer(name)
        for op in consumer.inputs:
            for source in op.sources:
                if source.layer not in inside or source.views:
                    continue
                producer = workload.layer(source.layer)
                for p_axis, c_axis in zip(producer.output.axes, op.axes):
                    p_dims = [d for d, c in p_axis.terms if c != 0]
                    c_dim = _axis_dim(consumer, c_axis)
                    if len(p_dims) == 1 and c_dim is not None:
                        union.union((producer.name, p_dims[0]), (name, c_dim))
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for members_set in union.to_sets():
        ordered = sorted(members_set, key=lambda x: (workload.index(x[0]), x[1]))
        for item in ordered:
            out[item] = ordered
    return out


def _axis_dim(layer: Layer, axis) -> str | None:
    dims = [d for d, c in axis.terms if c != 0]
    if len(dims) == 1:
        return dims[0]
    parallel = [d for d in dims if layer.kind(d) is DimKind.PARALLEL]
    return parallel[0] if parallel else None


def clamped(layer: Layer, dim: str, spec: TileSpec, where: str, notes: list[str]) -> TileSpec:
    """``spec`` with a count larger than the dim cut to the dim (one piece per element),
    noting it: one mapping serves every workload on a system, and a layer smaller than the
    split it asks for runs at its own size (as the field's tool does)."""
    size = layer.size(dim)
    if spec.count is not None and spec.count > size:
        notes.append(f"{where}: {dim}, {spec.count} asks for more pieces than layer {layer.name} has "
                     f"{dim} elements ({size}); split {size} ways")
        return TileSpec(spec.dim, count=size)
    return spec  # a tile larger than the dim is one tile of all of it, as asked


__all__ = ["clamped", "field_cut_groups", "group_of", "group_tiling", "linked_dims"]
