"""Brute-force reference for ``stream.tiling``: enumerate every tensor element.

The analytic tiler works on boxes and tile grids; this module lists elements one by
one in plain Python, so it is slow (small layers only) but easy to check by eye:

* CNs: each inter-core split ``(dim, n)`` cuts the dim into n balanced pieces
  (boundaries ``size*i//n``); in ``"fused"`` mode each intra-core :class:`TileSpec`
  cuts every piece further into consecutive tiles (``tile=t``: t elements, ragged last
  tile; ``count=c``: tiles of ``ceil(piece/c)`` elements, ragged last, never empty).
  ``"layer_by_layer"`` ignores intra-core tiling.
* Data edges: the consumer CN's box touches a set of operand elements (padding
  dropped); each element goes back through the source's views, in reverse order, to
  one element of the producer's output, which is credited to the producer CN that
  writes it and completes it (its box reaches the end of every reduction dim).
  Bits = number of elements credited x the consumer operand's precision.
* Partial-sum chains: tiles of a layer equal on every non-reduction dim, in order of
  their reduction starts, compared from the outermost tile loop in (the tiling lists
  nest: the last intra-core entry outermost, the first inter-core entry innermost);
  bits = distinct output elements x partial precision.
* Sequential chains: tiles equal except along one sequential dim, in order; bits = the
  state handed on: output elements touched at the last step of that dim x precision.
* Externals (weights, network inputs): where every CN touches a contiguous run of indices
  along every axis of the operand, each axis is cut at every CN's run boundaries and each
  cell of that grid is one DRAM tensor, read by the CNs touching it (bits = elements of
  the cell a CN touches x precision). Otherwise CNs share a tensor iff their per-axis
  index ranges (``AxisExpr.index_range``) are equal; bits = distinct elements actually
  touched (padding excluded) x precision.

CNs are named by :data:`CNKey` ``(layer name, box in the layer's dim order)`` so that
results compare with the analytic graph whatever its CN numbering.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from stream.mapping import LayerPlan, TileSpec
from stream.workload.ir import (
    DimKind,
    Layer,
    Operand,
    Broadcast,
    Place,
    Reshape,
    Role,
    Slice,
    Transpose,
    Workload,
)

Box = dict[str, tuple[int, int]]
CNKey = tuple[str, tuple[tuple[int, int], ...]]  # (layer name, ((start, stop) per layer dim))
Edge = tuple[CNKey, CNKey, int]  # (source CN, destination CN, bits)

DATA, PSUM, SEQ = 0, 1, 2  # edge kinds of the analytic graph


def key_of(layer: Layer, box: Box) -> CNKey:
    return layer.name, tuple(box[d] for d in layer.dims)


def box_of(layer: Layer, key: CNKey) -> Box:
    return dict(zip(layer.dims, key[1]))


# -- splitting -----------------------------------------------------------------------


def intra_tiles(lo: int, hi: int, spec: TileSpec) -> list[tuple[int, int]]:
    """Consecutive tiles of the piece [lo, hi) for one intra-core TileSpec."""
    n = hi - lo
    if spec.tile is not None:
        size = spec.tile
    elif spec.count is not None:
        size = -(-n // spec.count)  # ceil
    else:
        raise ValueError(f"TileSpec {spec} leaves the size to the allocator")
    size = max(1, min(size, n))
    return [(s, min(s + size, hi)) for s in range(lo, hi, size)]


def cn_boxes(layer: Layer, plan: LayerPlan, mode: str = "fused") -> list[Box]:
    """Every CN box of ``layer``: inter-core pieces, each cut by the intra-core specs."""
    ranges = {d: [(0, n)] for d, n in zip(layer.dims, layer.sizes)}
    for dim, n in plan.inter_core:
        dim = layer.resolve_dim(dim)
        size = layer.size(dim)
        bounds = [size * i // n for i in range(n + 1)]
        ranges[dim] = [(bounds[i], bounds[i + 1]) for i in range(n)]
    if mode == "fused":
        for spec in plan.intra_core:
            dim = layer.resolve_dim(spec.dim)
            ranges[dim] = [t for lo, hi in ranges[dim] for t in intra_tiles(lo, hi, spec)]
    elif mode != "layer_by_layer":
        raise ValueError(mode)
    return [dict(zip(layer.dims, combo)) for combo in itertools.product(*(ranges[d] for d in layer.dims))]


# -- elements ------------------------------------------------------------------------


def touched(operand: Operand, box: Box) -> set[tuple[int, ...]]:
    """Distinct elements of ``operand`` read or written by the loop box (padding dropped)."""
    dims = sorted({d for axis in operand.axes for d, _ in axis.terms})
    out = set()
    for point in itertools.product(*(range(*box[d]) for d in dims)):
        value = dict(zip(dims, point))
        index = tuple(axis.offset + sum(c * value[d] for d, c in axis.terms) for axis in operand.axes)
        if all(0 <= i < axis.extent for i, axis in zip(index, operand.axes)):
            out.add(index)
    return out


def view_shapes(shape: tuple[int, ...], views) -> list[tuple[int, ...]]:
    """Shapes before the first view, after each view (forward, producer -> consumer)."""
    shapes = [tuple(shape)]
    for view in views:
        s = list(shapes[-1])
        if isinstance(view, Transpose):
            assert sorted(view.perm) == list(range(len(s))), view
            s = [s[p] for p in view.perm]
        elif isinstance(view, Reshape):
            assert tuple(view.shape_in) == tuple(s), (view, s)
            assert _prod(view.shape_in) == _prod(view.shape_out), view
            s = list(view.shape_out)
        elif isinstance(view, Slice):
            assert view.step > 0 and 0 <= view.start, view
            s[view.axis] = len(range(view.start, min(view.stop, s[view.axis]), view.step))
        elif isinstance(view, Place):
            assert 0 <= view.offset and view.offset + s[view.axis] <= view.size, (view, s)
            s[view.axis] = view.size
        elif isinstance(view, Broadcast):
            assert s[view.axis] == 1, (view, s)
            s[view.axis] = view.size
        else:
            raise TypeError(view)
        shapes.append(tuple(s))
    return shapes


def to_producer(x: tuple[int, ...], views, shapes) -> tuple[int, ...] | None:
    """The producer output element behind consumer element ``x``; None if not from it."""
    for view, before in zip(reversed(views), reversed(shapes[:-1])):
        if isinstance(view, Place):
            i = x[view.axis] - view.offset
            if not 0 <= i < before[view.axis]:
                return None
            x = x[:view.axis] + (i,) + x[view.axis + 1:]
        elif isinstance(view, Slice):
            x = x[:view.axis] + (view.start + x[view.axis] * view.step,) + x[view.axis + 1:]
        elif isinstance(view, Broadcast):  # every copy is element 0 of the size-1 axis
            x = x[:view.axis] + (0,) + x[view.axis + 1:]
        elif isinstance(view, Transpose):
            y = [0] * len(x)
            for i, p in enumerate(view.perm):  # consumer axis i is producer axis p
                y[p] = x[i]
            x = tuple(y)
        elif isinstance(view, Reshape):
            linear = 0
            for v, n in zip(x, view.shape_out):
                linear = linear * n + v
            y = []
            for n in reversed(view.shape_in):
                y.append(linear % n)
                linear //= n
            x = tuple(reversed(y))
    assert all(0 <= v < n for v, n in zip(x, shapes[0])), (x, shapes[0])
    return x


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


# -- the reference graph -------------------------------------------------------------


@dataclass
class External:
    layer: str
    operand: str
    role: Role
    ranges: tuple[tuple[int, int], ...]
    cns: list[CNKey] = field(default_factory=list)
    bits: set[int] = field(default_factory=set)  # exact bits per user (one value, normally)


@dataclass
class Reference:
    cns: dict[str, list[CNKey]]  # per layer, in the order generated
    data_bits: dict[tuple[CNKey, CNKey], int]  # (producer CN, consumer CN) -> total bits
    data_edges: dict[tuple[CNKey, CNKey], int]  # -> number of (operand, source) edges
    psum_chain: set[Edge]
    seq_chain: set[Edge]
    externals: dict[tuple, External]  # (layer, operand, index ranges) -> group
    output_owner: dict[str, dict[tuple[int, ...], CNKey]] = field(repr=False, default_factory=dict)


def completes(layer: Layer, box: Box) -> bool:
    return all(box[d][1] == n for d, n, k in zip(layer.dims, layer.sizes, layer.kinds)
               if k is DimKind.REDUCTION)


def reference(workload: Workload, plans: dict[str, LayerPlan], mode: str = "fused") -> Reference:
    boxes = {l.name: cn_boxes(l, plans[l.name], mode) for l in workload.layers}
    cns = {name: [key_of(workload.layer(name), b) for b in bs] for name, bs in boxes.items()}

    # Which CN writes the final value of each output element.
    owner: dict[str, dict[tuple[int, ...], CNKey]] = {}
    for layer in workload.layers:
        owner[layer.name] = own = {}
        for box in boxes[layer.name]:
            if not completes(layer, box):
                continue
            for y in touched(layer.output, box):
                assert y not in own, f"{layer.name}: element {y} completed by two CNs"
                own[y] = key_of(layer, box)

    data_bits: dict[tuple[CNKey, CNKey], int] = defaultdict(int)
    data_edges: dict[tuple[CNKey, CNKey], int] = defaultdict(int)
    externals: dict[tuple, External] = {}
    for layer in workload.layers:
        for op in layer.inputs:
            if not op.sources:
                _external_reads(layer, op, boxes[layer.name], externals)
    for layer in workload.layers:
        for box in boxes[layer.name]:
            c = key_of(layer, box)
            for op in layer.inputs:
                if not op.sources:
                    continue
                xs = touched(op, box)
                for src in op.sources:
                    producer = workload.layer(src.layer)
                    shapes = view_shapes(producer.output.shape, src.views)
                    assert shapes[-1] == op.shape, f"{layer.name}.{op.name}: views give {shapes[-1]}, operand is {op.shape}"
                    # distinct producer elements: a repeat (Broadcast) reads one element
                    # several times, and moves it once
                    read: dict[CNKey, set] = defaultdict(set)
                    for x in xs:
                        y = to_producer(x, src.views, shapes)
                        if y is not None:
                            read[owner[src.layer][y]].add(y)
                    for p, ys in read.items():
                        data_bits[p, c] += len(ys) * op.precision
                        data_edges[p, c] += 1

    psum, seq = set(), set()
    for layer in workload.layers:
        red = _outermost_first(plans[layer.name], mode,
                               [d for d, k in zip(layer.dims, layer.kinds) if k is DimKind.REDUCTION])
        psum |= _chains(layer, boxes[layer.name], red, _psum_bits)
        for d, k in zip(layer.dims, layer.kinds):
            if k is DimKind.SEQUENTIAL:
                seq |= _chains(layer, boxes[layer.name], [d], lambda l, b, d=d: _state_bits(l, b, d))
    return Reference(cns, dict(data_bits), dict(data_edges), psum, seq, externals, owner)


def _outermost_first(plan: LayerPlan, mode: str, dims: list[str]) -> list[str]:
    nesting = [t.dim for t in reversed(plan.intra_core) if mode == "fused"] + [d for d, _ in reversed(plan.inter_core)]
    return sorted(dims, key=lambda d: nesting.index(d) if d in nesting else len(nesting))


def _external_reads(layer: Layer, op: Operand, boxes: list[Box], externals: dict) -> None:
    """The DRAM tensors of one operand and who reads them (see the module docstring)."""
    reads = [touched(op, box) for box in boxes]
    runs = [[_run(axis, box) for axis in op.axes] for box in boxes]  # per CN, per axis
    contiguous = op.axes and all(r is not None for per_axis in runs for r in per_axis)
    for box, elements, per_axis in zip(boxes, reads, runs):
        c = key_of(layer, box)
        if not contiguous:
            ranges = tuple(axis.index_range(box) for axis in op.axes)
            ext = externals.setdefault((layer.name, op.name, ranges), External(layer.name, op.name, op.role, ranges))
            ext.cns.append(c)
            ext.bits.add(len(elements) * op.precision)
            continue
        cells: dict[tuple, int] = defaultdict(int)
        bounds = [sorted({b for e, r in zip(reads, runs) if e for b in r[a]}) for a in range(len(op.axes))]
        for element in elements:
            cell = tuple(_cell(bounds[a], element[a]) for a in range(len(op.axes)))
            cells[cell] += 1
        for cell, count in cells.items():
            ext = externals.setdefault((layer.name, op.name, cell), External(layer.name, op.name, op.role, cell))
            ext.cns.append(c)
            ext.bits.add(count * op.precision)


def _run(axis, box: Box) -> tuple[int, int] | None:
    """The indices the box reaches along ``axis`` as [first, last + 1) clipped to the
    tensor, when they are a gap-free run before clipping (None otherwise)."""
    dims = [d for d, _ in axis.terms]
    values = {axis.offset + sum(c * v for (_, c), v in zip(axis.terms, point))
              for point in itertools.product(*(range(*box[d]) for d in dims))}
    if max(values) - min(values) + 1 != len(values):
        return None
    return max(min(values), 0), min(max(values) + 1, axis.extent)


def _cell(bounds: list[int], index: int) -> tuple[int, int]:
    """The run [bounds[i], bounds[i+1]) holding ``index``."""
    i = max(k for k, b in enumerate(bounds) if b <= index)
    return bounds[i], bounds[i + 1]


def _state_bits(layer: Layer, box: Box, dim: str) -> int:
    """The output a tile holds at its last step along ``dim`` (tiles of a chain are equal
    outside ``dim``, so the consumer's box gives the producer's count)."""
    last = dict(box)
    last[dim] = (box[dim][1] - 1, box[dim][1])
    return len(touched(layer.output, last)) * layer.output.precision


def _psum_bits(layer: Layer, box: Box) -> int:
    out = layer.output
    bits = out.partial_precision if out.partial_precision is not None else out.precision
    return len(touched(out, box)) * bits


def _chains(layer: Layer, boxes: list[Box], along: list[str], bits) -> set[Edge]:
    """Tiles equal outside ``along``, chained in order of their starts along ``along``."""
    groups: dict[tuple, list[Box]] = defaultdict(list)
    for box in boxes:
        groups[tuple(box[d] for d in layer.dims if d not in along)].append(box)
    edges = set()
    for group in groups.values():
        group.sort(key=lambda b: tuple(b[d][0] for d in along))
        for prev, cur in itertools.pairwise(group):
            edges.add((key_of(layer, prev), key_of(layer, cur), bits(layer, cur)))
    return edges
