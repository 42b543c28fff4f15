"""Workload IR: layers as loop nests with affine operand indexing, and the layer DAG.

A :class:`Layer` is an einsum-like loop nest. Each operand axis is an :class:`AxisExpr`,
an affine function of loop dims (``iy = 2*oy + 1*fy - 3``). Relevance, footprints and
(later) tile dependencies all follow from these expressions; nothing below the loaders
special-cases operator types.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Mapping, Union

import networkx as nx

from stream.errors import InputError


class DimKind(str, Enum):
    PARALLEL = "parallel"  # independent iterations
    REDUCTION = "reduction"  # accumulates into the same output element
    SEQUENTIAL = "sequential"  # recurrence: iteration t needs t-1 (never split across cores)


class Role(str, Enum):
    OUTPUT = "output"
    ACTIVATION = "activation"  # produced by another layer, or a network input from DRAM
    WEIGHT = "weight"  # constant, lives in DRAM, fetched once per core


Box = Mapping[str, tuple[int, int]]  # dim -> half-open [start, stop)


@dataclass(frozen=True)
class AxisExpr:
    """One tensor axis as ``sum(coef * dim) + offset``, over a tensor axis of ``extent``.

    ``offset`` is minus the padding at the start of the axis; indices that fall outside
    ``[0, extent)`` read padding and touch no data.
    """

    terms: tuple[tuple[str, int], ...]
    extent: int
    offset: int = 0

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.terms)

    def index_range(self, box: Box) -> tuple[int, int]:
        """Half-open range of tensor indices touched when each dim spans its box, clipped."""
        lo = hi = self.offset
        for dim, coef in self.terms:
            start, stop = box[dim]
            lo += coef * start if coef >= 0 else coef * (stop - 1)
            hi += coef * (stop - 1) if coef >= 0 else coef * start
        return max(lo, 0), min(hi + 1, self.extent)

    def distinct(self, spans: Mapping[str, int]) -> int:
        """Distinct indices when each dim spans ``spans[dim]`` consecutive values.

        Exact for one or two terms (the two-term count is ZigZag's formula for partially
        relevant dims); an upper bound for more. Clipped to the real axis extent.
        """
        terms = [(abs(c), spans[d]) for d, c in self.terms if spans[d] > 1 and c != 0]
        if not terms:
            count = 1
        elif len(terms) == 1:
            count = terms[0][1]
        elif len(terms) == 2:
            (s, a), (d, b) = terms
            g = math.gcd(s, d)
            count = a * b - max(0, b - s // g) * max(0, a - d // g)
        else:
            count = sum(c * (n - 1) for c, n in terms) + 1
        return min(count, self.extent)


@dataclass(frozen=True)
class Transpose:
    perm: tuple[int, ...]  # output axis i takes input axis perm[i] (ONNX semantics)


@dataclass(frozen=True)
class Reshape:
    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...]  # row-major reinterpretation (also Flatten, Squeeze, Unsqueeze)


@dataclass(frozen=True)
class Slice:
    axis: int
    start: int
    stop: int
    step: int = 1


@dataclass(frozen=True)
class Place:
    """The tensor becomes a slab ``[offset, offset + n)`` of a larger tensor (Concat)."""

    axis: int
    offset: int
    size: int  # size of the larger tensor along ``axis``


@dataclass(frozen=True)
class Broadcast:
    """A size-1 axis repeated ``size`` times (a broadcasting Expand): every index reads
    element 0."""

    axis: int
    size: int


@dataclass(frozen=True)
class Gathered:
    """Elements chosen at run time (a gather by computed indices) form a tensor of
    ``shape``: any element of the source may be read."""

    shape: tuple[int, ...]


View = Union[Transpose, Reshape, Slice, Place, Broadcast, Gathered]


@dataclass(frozen=True)
class Source:
    """Where an input operand's data comes from: a producer layer's output, through views.

    ``views`` apply in order and map the producer's output tensor onto this operand's
    tensor; an empty tuple means the two tensors are the same, axis by axis.
    """

    layer: str
    views: tuple[View, ...] = ()


@dataclass(frozen=True)
class Operand:
    name: str
    role: Role
    axes: tuple[AxisExpr, ...]
    precision: int  # bits per element; for the output, the final-output precision
    partial_precision: int | None = None  # output only: bits of a partial sum
    sources: tuple[Source, ...] = ()  # empty: read from DRAM (network input or weight)
    tensor: str = ""  # read from DRAM: the network tensor, if known (layers reading one share it)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.extent for a in self.axes)

    @property
    def dims(self) -> frozenset[str]:
        return frozenset(d for a in self.axes for d in a.dims)

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def bits(self) -> int:
        return self.elements * self.precision


@dataclass(frozen=True)
class Layer:
    name: str
    op_type: str
    dims: tuple[str, ...]
    sizes: tuple[int, ...]
    kinds: tuple[DimKind, ...]
    operands: tuple[Operand, ...]  # the output first
    attrs: tuple[tuple[str, object], ...] = ()  # op-specific facts, e.g. (("axis", 2),)
    aliases: tuple[tuple[str, str], ...] = ()  # other names of dims, e.g. (("D0", "B"),)

    def __post_init__(self):
        if not (len(self.dims) == len(self.sizes) == len(self.kinds)):
            raise ValueError(f"layer {self.name}: dims, sizes and kinds differ in length")
        if not self.operands or self.operands[0].role is not Role.OUTPUT:
            raise ValueError(f"layer {self.name}: the first operand must be the output")

    # -- lookups -------------------------------------------------------------------
    def size(self, dim: str) -> int:
        return self.sizes[self.dims.index(self.resolve_dim(dim))]

    def kind(self, dim: str) -> DimKind:
        return self.kinds[self.dims.index(self.resolve_dim(dim))]

    def resolve_dim(self, name: str) -> str:
        """A dim's own name, given its name or one of its aliases; KeyError if neither."""
        if name in self.dims:
            return name
        for alias, dim in self.aliases:
            if alias == name:
                return dim
        raise KeyError(name)

    def has_dim(self, name: str) -> bool:
        try:
            self.resolve_dim(name)
        except KeyError:
            return False
        return True

    def operand(self, name: str) -> Operand:
        for op in self.operands:
            if op.name == name:
                return op
        raise KeyError(name)

    def attr(self, key: str, default: object = None) -> object:
        return dict(self.attrs).get(key, default)

    @property
    def output(self) -> Operand:
        return self.operands[0]

    @property
    def inputs(self) -> tuple[Operand, ...]:
        return self.operands[1:]

    @property
    def full_box(self) -> dict[str, tuple[int, int]]:
        return {d: (0, n) for d, n in zip(self.dims, self.sizes)}

    # -- derived values ------------------------------------------------------------
    @property
    def macs(self) -> int:
        """Loop-nest iterations: MACs for conv/gemm, element operations otherwise."""
        return math.prod(self.sizes)

    def relevance(self, operand: str) -> dict[str, str]:
        """Per dim: 'r' (indexes the operand alone), 'pr' (inside a multi-dim axis), 'ir'."""
        op = self.operand(operand)
        out = {d: "ir" for d in self.dims}
        for axis in op.axes:
            active = [d for d, c in axis.terms if c != 0]
            for d in active:
                if out[d] != "pr":
                    out[d] = "pr" if len(active) > 1 else "r"
        return out

    def footprint(self, operand: str, box: Box | None = None) -> int:
        """Distinct elements of ``operand`` touched by the loop box (whole layer if None)."""
        op = self.operand(operand)
        if op.precision == 0:
            return 0
        box = self.full_box if box is None else box
        spans = {d: stop - start for d, (start, stop) in box.items()}
        return math.prod(axis.distinct(spans) for axis in op.axes)

    def footprint_bits(self, operand: str, box: Box | None = None, final: bool = True) -> int:
        op = self.operand(operand)
        bits = op.precision if (final or op.partial_precision is None) else op.partial_precision
        return self.footprint(operand, box) * bits


ROLES = ("channels", "rows")
CHANNEL_DIMS = frozenset({"K", "G", "C"})


def with_roles(layer: Layer) -> Layer:
    """``layer`` with its dims also named by role, so one mapping rule serves every layer:
    ``channels``, the dim of its output channels (K of a dense conv or a matrix product, G
    of a depthwise conv, the outermost of a grouped conv's, C of an elementwise layer), and
    ``rows``, the dim of its output rows (OY of an image, the tokens of a sequence). An
    image's output is (batch, channels, rows, ...) and a sequence's (..., tokens, features).
    Layers that already use a role's name keep their own meaning."""
    axes = layer.output.axes
    if not axes:
        return layer
    first = _role_dim(layer, axes[1]) if len(axes) >= 3 else None
    if first in CHANNEL_DIMS:  # an image: channels, then rows
        channels, rows = first, _role_dim(layer, axes[2])
    else:  # a sequence, or a matrix: tokens, then features
        channels = _role_dim(layer, axes[-1])
        rows = _role_dim(layer, axes[-2]) if len(axes) >= 2 else None
    roles = tuple((role, dim) for role, dim in (("channels", channels), ("rows", rows))
                  if dim is not None and not layer.has_dim(role))
    return dataclasses.replace(layer, aliases=layer.aliases + roles) if roles else layer


def _role_dim(layer: Layer, axis: AxisExpr) -> str | None:
    """The dim along an output axis: the outermost of size > 1 (a grouped conv's G), else
    its only dim."""
    terms = [(layer.size(d) > 1, c, d) for d, c in axis.terms if c > 0]
    return max(terms)[2] if terms and (len(terms) == 1 or max(terms)[0]) else None


@dataclass(frozen=True)
class Workload:
    """A DAG of layers, in a topological order. Build it with :meth:`from_layers`."""

    name: str
    layers: tuple[Layer, ...]
    source_file: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_layers(
        cls, name: str, layers: list[Layer], source_file: str | None = None, warnings=()
    ) -> "Workload":
        """Check names and sources, reject cycles, and order the layers topologically."""
        file = source_file or "<workload>"
        by_name: dict[str, Layer] = {}
        for layer in layers:
            if layer.name in by_name:
                raise InputError(file, f"layer {layer.name}", "unique layer names", layer.name)
            by_name[layer.name] = layer
        graph = nx.DiGraph()
        graph.add_nodes_from(l.name for l in layers)
        for layer in layers:
            for op in layer.inputs:
                for src in op.sources:
                    if src.layer not in by_name:
                        raise InputError(
                            file, f"layer {layer.name}.operand {op.name}.source",
                            "the name of a layer in this workload", src.layer,
                        )
                    graph.add_edge(src.layer, layer.name)
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
            raise InputError(file, "layers", "an acyclic graph of layers", note=f"cycle: {path}")
        # Stable topological order: among ready layers, keep the file's order.
        position = {l.name: i for i, l in enumerate(layers)}
        order = list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))
        return cls(name, tuple(with_roles(by_name[n]) for n in order), source_file, tuple(warnings))

    @cached_property
    def graph(self) -> nx.DiGraph:
        """Layer-level DAG; edge attribute ``operands`` lists the consumer operands fed."""
        graph = nx.DiGraph()
        for layer in self.layers:
            graph.add_node(layer.name, op_type=layer.op_type)
        for layer in self.layers:
            for op in layer.inputs:
                for src in op.sources:
                    if graph.has_edge(src.layer, layer.name):
                        graph.edges[src.layer, layer.name]["operands"].append(op.name)
                    else:
                        graph.add_edge(src.layer, layer.name, operands=[op.name])
        return graph

    @cached_property
    def _index(self) -> dict[str, int]:
        return {l.name: i for i, l in enumerate(self.layers)}

    def layer(self, name: str) -> Layer:
        return self.layers[self._index[name]]

    def index(self, name: str) -> int:
        return self._index[name]

    def predecessors(self, name: str) -> list[str]:
        return sorted(self.graph.predecessors(name), key=self.index)

    def successors(self, name: str) -> list[str]:
        return sorted(self.graph.successors(name), key=self.index)

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    def __len__(self) -> int:
        return len(self.layers)
