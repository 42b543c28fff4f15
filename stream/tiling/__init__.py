"""Split layers into compute nodes (CNs) and compute their dependencies.

Skeleton (issue 2): one CN per inter-core piece of each layer; intra-core tiling is
recorded in the plans but not applied yet. Dependencies are exact for producer and
consumer tensors related axis by axis: the consumer's input box (through its affine
axes) is intersected with each producer piece's output box, and the edge carries the
bits of that intersection. Through view ops (reshape, transpose, concat, ...) a
consumer conservatively depends on every producer piece with that piece's whole output.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from stream.mapping import LayerPlan
from stream.workload.ir import Layer, Role, Workload

MODES = ("fused", "layer_by_layer")


@dataclass(frozen=True)
class ExternalTensor:
    """A tensor read from DRAM: a weight slice or a slice of a network input."""

    layer: int
    operand: str
    role: Role
    bits: int


@dataclass(frozen=True, eq=False)
class CNGraph:
    """Compute nodes and their dependency edges, as flat numpy arrays.

    CN ``i`` runs ``box(i)`` of layer ``layer[i]``. Edges are sorted by destination;
    ``in_ptr[i]:in_ptr[i+1]`` indexes the edges into CN ``i`` (CSR). External inputs
    (weights, network inputs) are listed per CN the same way in ``ext_ptr``/``ext_ids``.
    """

    workload: Workload
    mode: str
    plans: dict[str, LayerPlan]
    layer: np.ndarray  # (n,) int32: layer index per CN
    piece: np.ndarray  # (n,) int32: inter-core piece index within the layer
    starts: np.ndarray  # (n, max_dims) int64, in the layer's dim order
    stops: np.ndarray  # (n, max_dims) int64
    macs: np.ndarray  # (n,) int64
    out_bits: np.ndarray  # (n,) int64: final output bits this CN produces
    edge_src: np.ndarray  # (e,) int64
    edge_dst: np.ndarray  # (e,) int64
    edge_bits: np.ndarray  # (e,) int64: bits the consumer needs from the producer
    in_ptr: np.ndarray  # (n+1,) int64
    ext_ptr: np.ndarray  # (n+1,) int64
    ext_ids: np.ndarray  # (k,) int64 into ``externals``
    externals: tuple[ExternalTensor, ...]
    groups: tuple[tuple[str, ...], ...] = field(default=())  # fusion groups (layer names)

    @property
    def num_cns(self) -> int:
        return int(self.layer.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_src.shape[0])

    def layer_of(self, cn: int) -> Layer:
        return self.workload.layers[int(self.layer[cn])]

    def box(self, cn: int) -> dict[str, tuple[int, int]]:
        layer = self.layer_of(cn)
        return {d: (int(self.starts[cn, k]), int(self.stops[cn, k])) for k, d in enumerate(layer.dims)}

    def inputs(self, cn: int) -> range:
        return range(int(self.in_ptr[cn]), int(self.in_ptr[cn + 1]))

    def external_inputs(self, cn: int) -> np.ndarray:
        return self.ext_ids[self.ext_ptr[cn]:self.ext_ptr[cn + 1]]

    def is_sink(self, cn: int) -> bool:
        """Its layer's output leaves the network (no consumer layer)."""
        return not self.workload.successors(self.layer_of(cn).name)

    def to_networkx(self):
        import networkx as nx

        graph = nx.DiGraph()
        for i in range(self.num_cns):
            graph.add_node(i, layer=self.layer_of(i).name, piece=int(self.piece[i]))
        for s, d, b in zip(self.edge_src.tolist(), self.edge_dst.tolist(), self.edge_bits.tolist()):
            graph.add_edge(s, d, bits=b)
        return graph


def tile(workload: Workload, plans: dict[str, LayerPlan], mode: str = "fused") -> CNGraph:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    max_dims = max(len(l.dims) for l in workload.layers)
    layer_idx, piece_idx, starts, stops = [], [], [], []
    first_cn, piece_count = {}, {}
    for li, layer in enumerate(workload.layers):
        first_cn[layer.name] = len(layer_idx)
        boxes = list(_pieces(layer, plans[layer.name]))
        piece_count[layer.name] = len(boxes)
        for p, box in enumerate(boxes):
            layer_idx.append(li)
            piece_idx.append(p)
            starts.append([box[d][0] for d in layer.dims] + [0] * (max_dims - len(layer.dims)))
            stops.append([box[d][1] for d in layer.dims] + [1] * (max_dims - len(layer.dims)))
    n = len(layer_idx)
    layer_arr = np.asarray(layer_idx, dtype=np.int32)
    starts_arr = np.asarray(starts, dtype=np.int64).reshape(n, max_dims)
    stops_arr = np.asarray(stops, dtype=np.int64).reshape(n, max_dims)
    macs = np.prod(stops_arr - starts_arr, axis=1)

    def box_of(cn: int) -> dict[str, tuple[int, int]]:
        layer = workload.layers[layer_idx[cn]]
        return {d: (int(starts_arr[cn, k]), int(stops_arr[cn, k])) for k, d in enumerate(layer.dims)}

    out_bits = np.zeros(n, dtype=np.int64)
    edges: list[tuple[int, int, int]] = []
    ext_lists: list[list[int]] = [[] for _ in range(n)]
    externals: list[ExternalTensor] = []
    ext_index: dict[tuple, int] = {}
    for cn in range(n):
        layer = workload.layers[layer_idx[cn]]
        box = box_of(cn)
        out_bits[cn] = layer.footprint_bits(layer.output.name, box)
        for op in layer.inputs:
            if op.precision == 0:
                continue
            if not op.sources:
                # One DRAM tensor per distinct slice: equal slices are shared across CNs.
                ranges = tuple(axis.index_range(box) for axis in op.axes)
                key = (layer_idx[cn], op.name, ranges)
                if key not in ext_index:
                    ext_index[key] = len(externals)
                    externals.append(ExternalTensor(layer_idx[cn], op.name, op.role,
                                                    layer.footprint_bits(op.name, box)))
                ext_lists[cn].append(ext_index[key])
                continue
            for source in op.sources:
                producer = workload.layer(source.layer)
                p0 = first_cn[producer.name]
                for p in range(p0, p0 + piece_count[producer.name]):
                    bits = _needed_bits(layer, op, box, producer, box_of(p), bool(source.views))
                    if bits > 0:
                        edges.append((p, cn, bits))
    edges.sort(key=lambda e: (e[1], e[0]))
    edge_arr = np.asarray(edges, dtype=np.int64).reshape(-1, 3)
    in_ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(in_ptr, edge_arr[:, 1] + 1, 1)
    ext_ptr = np.zeros(n + 1, dtype=np.int64)
    ext_ptr[1:] = np.cumsum([len(x) for x in ext_lists])
    return CNGraph(
        workload=workload, mode=mode, plans=plans, layer=layer_arr,
        piece=np.asarray(piece_idx, dtype=np.int32), starts=starts_arr, stops=stops_arr,
        macs=macs, out_bits=out_bits, edge_src=edge_arr[:, 0].copy(), edge_dst=edge_arr[:, 1].copy(),
        edge_bits=edge_arr[:, 2].copy(), in_ptr=np.cumsum(in_ptr),
        ext_ptr=ext_ptr, ext_ids=np.asarray([i for x in ext_lists for i in x], dtype=np.int64),
        externals=tuple(externals),
        groups=_groups(workload, plans),
    )


def _groups(workload: Workload, plans: dict[str, LayerPlan]) -> tuple[tuple[str, ...], ...]:
    """Fusion groups in layer order: the mapping's, and every other layer alone."""
    groups: dict[str, list[str]] = {}
    for layer in workload.layers:
        groups.setdefault(plans[layer.name].group or f"layer:{layer.name}", []).append(layer.name)
    return tuple(tuple(g) for g in groups.values())


def _pieces(layer: Layer, plan: LayerPlan):
    """Boxes of the inter-core pieces, row-major over the split dims.

    Parallel pieces for different cores are balanced (sizes differ by at most one), so
    ``count`` pieces always exist and no core gets a much larger share.
    """
    splits = []
    for dim, count in plan.inter_core:
        size = layer.size(dim)
        bounds = [size * i // count for i in range(count + 1)]
        splits.append([(dim, (bounds[i], bounds[i + 1])) for i in range(count)])
    for combo in itertools.product(*splits):
        box = layer.full_box
        box.update(dict(combo))
        yield box


def _needed_bits(consumer: Layer, operand, box, producer: Layer, producer_box, through_views: bool) -> int:
    """Bits of the producer piece's output that the consumer's box reads."""
    out = producer.output
    if through_views or len(out.axes) != len(operand.axes):
        return producer.footprint(out.name, producer_box) * operand.precision
    volume = 1
    for need_axis, out_axis in zip(operand.axes, out.axes):
        lo, hi = need_axis.index_range(box)
        plo, phi = out_axis.index_range(producer_box)
        overlap = min(hi, phi) - max(lo, plo)
        if overlap <= 0:
            return 0
        volume *= overlap
    return volume * operand.precision
