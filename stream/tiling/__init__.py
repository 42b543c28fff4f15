"""Split layers into compute nodes (CNs) and compute their exact dependencies.

* Each layer is cut into a regular grid (:mod:`stream.tiling.grid`): inter-core pieces
  (parallel, one per core) and, in ``fused`` mode, intra-core tiles of each piece (the
  fusion granularity). ``layer_by_layer`` mode ignores intra-core tiling.
* Data edges come from the affine operand axes and the views between tensors
  (:mod:`stream.tiling.deps`): exact element counts, vectorised with numpy.
* Tiles of one piece split along a reduction dim hold partial sums: they chain in order
  (kind ``PARTIAL``, carrying the partial output) and only the last one feeds consumers.
  Tiles along a sequential dim chain in order (kind ``SEQUENTIAL``): the edge carries the
  state, the producer's output at its last step (a scan's D x N), which stays on the core
  (sequential dims are never split across cores).
* Weights and network inputs are external tensors read from DRAM, cut at the edges of what
  the CNs read, so CNs sharing rows (a halo) share those rows' tensor and the simulator
  fetches it once per memory (``ext_uses`` counts users; see :func:`_externals`).
* Fusion groups come from the plans (given by the mapping or derived there); in
  ``layer_by_layer`` mode every layer is its own group. Tensors crossing groups go
  through DRAM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.mapping import LayerPlan
from stream.progress import Every
from stream.tiling.deps import AxisReads, data_edges
from stream.tiling.grid import LayerGrid, layer_grid
from stream.workload.ir import DimKind, Layer, Role, Workload

MODES = ("fused", "layer_by_layer")
DATA, PARTIAL, SEQUENTIAL = 0, 1, 2  # edge kinds


@dataclass(frozen=True)
class ExternalTensor:
    """A tensor slice read from DRAM: a weight tile or a slice of a network input."""

    layer: int
    operand: str
    role: Role
    bits: int


@dataclass(frozen=True, eq=False)
class CNGraph:
    """Compute nodes and dependency edges as flat numpy arrays.

    CN ``i`` runs ``box(i)`` of layer ``layer[i]``; CNs are numbered layer by layer in a
    topological order. Edges are sorted by destination: ``in_ptr[i]:in_ptr[i+1]`` are the
    edges into CN ``i`` (CSR); ``out_edges[out_ptr[i]:out_ptr[i+1]]`` the edges out of it.
    """

    workload: Workload
    mode: str
    plans: dict[str, LayerPlan]
    grids: tuple[LayerGrid, ...]
    layer: np.ndarray  # (n,) int32: layer index per CN
    piece: np.ndarray  # (n,) int64: inter-core piece within the layer (one core runs a piece)
    tile: np.ndarray  # (n,) int64: intra-core tile within the piece
    starts: np.ndarray  # (n, max_dims) int64, in the layer's dim order
    stops: np.ndarray  # (n, max_dims) int64
    macs: np.ndarray  # (n,) int64
    out_bits: np.ndarray  # (n,) int64: output bits (partial-sum precision if not the last reduction tile)
    completes: np.ndarray  # (n,) bool: holds final outputs (last tile of every reduction dim)
    group: np.ndarray  # (n,) int32: fusion group of the CN's layer
    edge_src: np.ndarray  # (e,) int64
    edge_dst: np.ndarray  # (e,) int64
    edge_bits: np.ndarray  # (e,) int64
    edge_kind: np.ndarray  # (e,) int8: DATA, PARTIAL or SEQUENTIAL
    in_ptr: np.ndarray  # (n+1,) int64
    out_ptr: np.ndarray  # (n+1,) int64
    out_edges: np.ndarray  # (e,) int64: edge ids sorted by source
    ext_ptr: np.ndarray  # (n+1,) int64
    ext_ids: np.ndarray  # (k,) int64 into ``externals``
    ext_uses: np.ndarray  # (len(externals),) int64: CNs reading each external tensor
    externals: tuple[ExternalTensor, ...]
    groups: tuple[tuple[str, ...], ...]  # fusion groups: layer names, in order
    notes: tuple[str, ...] = ()  # where dependencies were counted conservatively

    @property
    def num_cns(self) -> int:
        return int(self.layer.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_src.shape[0])

    def layer_of(self, cn: int) -> Layer:
        return self.workload.layers[int(self.layer[cn])]

    def layer_cns(self, layer_index: int) -> range:
        grid = self.grids[layer_index]
        return range(grid.first, grid.first + grid.count)

    def box(self, cn: int) -> dict[str, tuple[int, int]]:
        layer = self.layer_of(cn)
        return {d: (int(self.starts[cn, k]), int(self.stops[cn, k])) for k, d in enumerate(layer.dims)}

    def inputs(self, cn: int) -> range:
        """Ids of the edges into ``cn``."""
        return range(int(self.in_ptr[cn]), int(self.in_ptr[cn + 1]))

    def outputs(self, cn: int) -> np.ndarray:
        """Ids of the edges out of ``cn``."""
        return self.out_edges[self.out_ptr[cn]:self.out_ptr[cn + 1]]

    def external_inputs(self, cn: int) -> np.ndarray:
        return self.ext_ids[self.ext_ptr[cn]:self.ext_ptr[cn + 1]]

    @property
    def fuses(self) -> bool:
        """Does some fusion group hand a tensor on tile by tile: a group of two or more layers
        with a layer cut into intra-core tiles? Without one, fused and layer-by-layer run the
        same CNs, and fused differs only in keeping whole tensors on chip."""
        multi = {i for i, members in enumerate(self.groups) if len(members) > 1}
        return bool(multi) and bool(np.any(np.isin(self.group, list(multi)) & (self.tile > 0)))

    def is_sink(self, cn: int) -> bool:
        """Holds final outputs that leave the network (its layer has no consumer)."""
        return bool(self.completes[cn]) and not self.workload.successors(self.layer_of(cn).name)

    def to_networkx(self):
        """The CN graph as a networkx DiGraph (for small graphs: inspection, drawing)."""
        import networkx as nx

        graph = nx.DiGraph()
        for i in range(self.num_cns):
            graph.add_node(i, layer=self.layer_of(i).name, piece=int(self.piece[i]), tile=int(self.tile[i]))
        for s, d, b, k in zip(self.edge_src.tolist(), self.edge_dst.tolist(), self.edge_bits.tolist(),
                              self.edge_kind.tolist()):
            graph.add_edge(s, d, bits=b, kind=k)
        return graph


def tile(workload: Workload, plans: dict[str, LayerPlan], mode: str = "fused", progress=None) -> CNGraph:
    """The CN graph of ``workload`` under ``plans``; ``progress(message)``, if given, hears
    every few seconds which layer's dependencies are being worked out."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    fused = mode == "fused"
    grids, first = [], 0
    for index, layer in enumerate(workload.layers):
        grids.append(layer_grid(layer, index, plans[layer.name], first, intra=fused))
        first += grids[-1].count
    n = first
    max_dims = max(len(l.dims) for l in workload.layers)
    starts = np.empty((n, max_dims), dtype=np.int64)
    stops = np.empty((n, max_dims), dtype=np.int64)
    layer_of = np.empty(n, dtype=np.int32)
    piece = np.empty(n, dtype=np.int64)
    tile_index = np.empty(n, dtype=np.int64)
    completes = np.ones(n, dtype=bool)
    for grid in grids:
        cns = slice(grid.first, grid.first + grid.count)
        starts[cns], stops[cns] = grid.boxes(max_dims)
        layer_of[cns] = grid.index
        piece[cns], tile_index[cns] = grid.pieces_and_tiles()
        for split, idx in zip(grid.splits, grid.interval_indices(np.arange(grid.count))):
            if split.kind is DimKind.REDUCTION:
                completes[cns] &= idx == split.count - 1

    out_elements = _output_elements(workload, grids, starts, stops)
    out_bits = np.empty(n, dtype=np.int64)
    src, dst, bits, kind = [], [], [], []
    notes = [note for layer in workload.layers for note in plans[layer.name].notes]
    report = Every(progress)
    for grid in grids:
        layer, cns = grid.layer, slice(grid.first, grid.first + grid.count)
        report("tiling: dependencies of layer {} of {} ({})", grid.index + 1, len(grids), layer.name)
        partial = layer.output.partial_precision or layer.output.precision
        out_bits[cns] = out_elements[cns] * np.where(completes[cns], layer.output.precision, partial)
        for chain_kind, (s, d) in _chains(grid):
            src.append(s)
            dst.append(d)
            if chain_kind == PARTIAL:
                bits.append(out_elements[s] * partial)
            else:
                bits.append(_state_elements(layer, out_elements[s], starts[s], stops[s]) * layer.output.precision)
            kind.append(np.full(s.shape, chain_kind, dtype=np.int8))
        for op in layer.inputs:
            for source in op.sources:
                producer = grids[workload.index(source.layer)]
                pcns = slice(producer.first, producer.first + producer.count)
                s, d, b = data_edges(grid, starts[cns], stops[cns], op, source, producer,
                                     starts[pcns], stops[pcns], notes)
                src.append(s)
                dst.append(d)
                bits.append(b)
                kind.append(np.zeros(s.shape, dtype=np.int8))
    edge_src, edge_dst, edge_bits, edge_kind = _merge_edges(src, dst, bits, kind)
    in_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(edge_dst, minlength=n), out=in_ptr[1:])
    out_edges = np.argsort(edge_src, kind="stable")
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(edge_src, minlength=n), out=out_ptr[1:])
    ext_ptr, ext_ids, externals = _externals(workload, grids, starts, stops)
    groups, group_of_layer = _groups(workload, plans, fused)
    return CNGraph(
        workload=workload, mode=mode, plans=plans, grids=tuple(grids), layer=layer_of, piece=piece,
        tile=tile_index, starts=starts, stops=stops, macs=np.prod(stops - starts, axis=1),
        out_bits=out_bits, completes=completes, group=group_of_layer[layer_of],
        edge_src=edge_src, edge_dst=edge_dst, edge_bits=edge_bits, edge_kind=edge_kind,
        in_ptr=in_ptr, out_ptr=out_ptr, out_edges=out_edges, ext_ptr=ext_ptr, ext_ids=ext_ids,
        ext_uses=np.bincount(ext_ids, minlength=len(externals)), externals=externals,
        groups=groups, notes=tuple(notes),
    )


def _output_elements(workload: Workload, grids, starts, stops) -> np.ndarray:
    out = np.empty(starts.shape[0], dtype=np.int64)
    for grid in grids:
        layer, cns = grid.layer, slice(grid.first, grid.first + grid.count)
        positions = {d: i for i, d in enumerate(layer.dims)}
        elements = np.ones(grid.count, dtype=np.int64)
        for axis in layer.output.axes:
            reads = AxisReads(axis, positions, starts[cns], stops[cns])
            elements *= reads.sizes(axis, layer.dims, starts[cns], stops[cns])
        out[cns] = elements
    return out


def _chains(grid: LayerGrid):
    """(kind, (src, dst)) chains along split reduction dims and sequential dims."""
    local = np.arange(grid.count)
    idx = grid.interval_indices(local)
    reduction = [i for i, s in enumerate(grid.splits) if s.kind is DimKind.REDUCTION]
    if reduction:
        # order tiles by their reduction intervals (mixed radix); each follows the previous
        r = np.zeros(grid.count, dtype=np.int64)
        for i in reduction:
            r = r * grid.splits[i].count + idx[i]
        later = r > 0
        prev = [x[later].copy() for x in idx]
        rest = r[later] - 1
        for i in reversed(reduction):
            prev[i] = rest % grid.splits[i].count
            rest //= grid.splits[i].count
        yield PARTIAL, (grid.first + grid.local_ids(prev), grid.first + local[later])
    for i, split in enumerate(grid.splits):
        if split.kind is DimKind.SEQUENTIAL:
            later = idx[i] > 0
            prev = [x[later].copy() for x in idx]
            prev[i] -= 1
            yield SEQUENTIAL, (grid.first + grid.local_ids(prev), grid.first + local[later])


def _state_elements(layer: Layer, out_elements: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The state a tile along a sequential dim hands to the next: its output at the last
    step of each sequential dim that indexes the output (all of it for one that does not,
    as in a recurrence that keeps updating one state)."""
    state = out_elements.copy()
    for axis in layer.output.axes:
        if len(axis.terms) == 1 and layer.kind(axis.terms[0][0]) is DimKind.SEQUENTIAL:
            column = layer.dims.index(axis.terms[0][0])
            state //= np.maximum(stops[:, column] - starts[:, column], 1)
    return state


def _merge_edges(src, dst, bits, kind):
    """One edge per (source, destination, kind), bits summed; sorted by destination."""
    if not src:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.int8)
    src, dst, bits, kind = (np.concatenate(x) for x in (src, dst, bits, kind))
    order = np.lexsort((kind, src, dst))
    src, dst, bits, kind = src[order], dst[order], bits[order], kind[order]
    new = np.ones(src.shape, dtype=bool)
    new[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1]) | (kind[1:] != kind[:-1])
    starts = np.flatnonzero(new)
    return (src[starts].astype(np.int64), dst[starts].astype(np.int64),
            np.add.reduceat(bits.astype(np.int64), starts) if starts.size else bits, kind[starts])


def _externals(workload: Workload, grids, starts, stops):
    """DRAM tensors per CN: what each CN reads of the weights and network inputs.

    Where every CN reads an interval along every axis of an operand, the operand is cut at
    every boundary of those intervals into disjoint segments, and a CN reads the segments
    inside its box: CNs sharing rows (a conv's halo) share those rows' tensor, so an
    overlap is fetched once and kept on chip while the memory holds it. Operands of several
    layers that name one network tensor (``Operand.tensor``, same shape and precision) are
    cut together, so a network input two layers read is fetched once into a memory.
    Otherwise (strided or gapped reads) CNs reading the same slice share one tensor.
    """
    cn_ids: list[np.ndarray] = []
    ext_ids: list[np.ndarray] = []
    externals: list[ExternalTensor] = []

    def add(first_layer: int, op, cn: np.ndarray, key: np.ndarray, bits: np.ndarray) -> None:
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        base = len(externals)
        externals.extend(ExternalTensor(first_layer, op.name, op.role, int(bits[i]) * op.precision)
                         for i in first.tolist())
        cn_ids.append(cn)
        ext_ids.append(base + inverse.reshape(-1))

    shared: dict[tuple, list] = {}  # (tensor, shape, precision) -> [(grid, operand, reads)]
    for grid in grids:
        layer, cns = grid.layer, slice(grid.first, grid.first + grid.count)
        positions = {d: i for i, d in enumerate(layer.dims)}
        for op in layer.inputs:
            if op.sources or op.precision == 0:
                continue
            reads = [AxisReads(axis, positions, starts[cns], stops[cns]) for axis in op.axes]
            if reads and all(bool(r.is_interval.all()) for r in reads):
                if op.tensor:
                    shared.setdefault((op.tensor, op.shape, op.precision), []).append((grid, op, reads))
                    continue
                cn, key, bits = _segments(reads)
            else:
                cn, key, bits = _slices(layer, op, reads, starts[cns], stops[cns])
            add(grid.index, op, grid.first + cn, key, bits)
    for members in shared.values():
        grid, op, _ = members[0]
        axes = range(len(op.axes))
        reads = [_Reads(*(np.concatenate([getattr(m[2][a], f) for m in members]) for f in ("lo", "hi", "empty")))
                 for a in axes]
        cn, key, bits = _segments(reads)
        first_cn = np.concatenate([np.arange(g.first, g.first + g.count) for g, _, _ in members])
        add(grid.index, op, first_cn[cn], key, bits)
    n = starts.shape[0]
    cn = np.concatenate(cn_ids) if cn_ids else np.zeros(0, dtype=np.int64)
    ids = np.concatenate(ext_ids) if ext_ids else np.zeros(0, dtype=np.int64)
    order = np.argsort(cn, kind="stable")  # by CN, each CN's operands in order
    ext_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(cn, minlength=n), out=ext_ptr[1:])
    return ext_ptr, ids[order].astype(np.int64), tuple(externals)


@dataclass(frozen=True)
class _Reads:
    """What the CNs of several layers read along one axis of a shared tensor (the fields of
    :class:`AxisReads` that :func:`_segments` uses)."""

    lo: np.ndarray
    hi: np.ndarray
    empty: np.ndarray


def _segments(reads: list[AxisReads]):
    """(CN, segment key, elements) of every segment each CN reads, the axes cut at every
    CN's interval boundaries (CNs with an empty read along an axis read nothing)."""
    n = reads[0].lo.shape[0]
    empty = np.any([r.empty for r in reads], axis=0)  # reads padding only: nothing
    axes = []  # per axis: boundaries, each CN's first segment and segment count
    for r in reads:
        bounds = np.unique(np.concatenate([r.lo[~empty], r.hi[~empty]]))
        first = np.searchsorted(bounds, r.lo)
        axes.append((bounds, first, np.where(empty, 0, np.searchsorted(bounds, r.hi) - first)))
    per_cn = np.prod([count for _, _, count in axes], axis=0)
    cn = np.repeat(np.arange(n), per_cn)
    rest = np.arange(cn.shape[0]) - np.repeat(np.cumsum(per_cn) - per_cn, per_cn)
    key = np.zeros(cn.shape[0], dtype=np.int64)
    elements = np.ones(cn.shape[0], dtype=np.int64)
    radix = 1
    for bounds, first, count in reversed(axes):
        c = count[cn]
        segment = first[cn] + rest % np.maximum(c, 1)
        rest //= np.maximum(c, 1)
        key += segment * radix
        radix *= max(len(bounds) - 1, 1)
        elements *= bounds[np.minimum(segment + 1, len(bounds) - 1)] - bounds[segment]
    return cn, key, elements


def _slices(layer, op, reads, starts, stops):
    """(CN, slice key, elements): one tensor per distinct slice, shared by the CNs reading it."""
    n = starts.shape[0]
    if not reads:
        return np.arange(n), np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)
    ranges = np.stack([x for r in reads for x in (r.lo, r.hi)], axis=1)
    _, key = np.unique(ranges, axis=0, return_inverse=True)
    sizes = np.ones(n, dtype=np.int64)
    for axis, r in zip(op.axes, reads):
        sizes *= r.sizes(axis, layer.dims, starts, stops)
    return np.arange(n), key.reshape(-1), sizes


def _groups(workload: Workload, plans: dict[str, LayerPlan], fused: bool):
    """Fusion groups in layer order (a group name per plan; alone in layer-by-layer mode)."""
    names: dict[str, list[str]] = {}
    for layer in workload.layers:
        key = plans[layer.name].group if (fused and plans[layer.name].group) else f"layer:{layer.name}"
        names.setdefault(key, []).append(layer.name)
    index = {key: i for i, key in enumerate(names)}
    group_of_layer = np.array([
        index[plans[l.name].group if (fused and plans[l.name].group) else f"layer:{l.name}"]
        for l in workload.layers], dtype=np.int32)
    return tuple(tuple(v) for v in names.values()), group_of_layer
