"""Exact overlap between what a consumer tile reads and what a producer tile wrote.

A producer's output tensor reaches a consumer operand through views (reshape,
transpose, slice, concat). :func:`compose` turns the views into independent **groups**
of axes; in each group every tensor index is a number in one linear space:

* producer side: output axes with strides; an output axis is itself a sum of loop dims
  (``g*Kg + k``), so a producer tile is a box of loop-dim ranges, each with a stride;
* consumer side: one axis mapped affinely (``value = a*j + b``: slices and concat
  offsets), or several axes with strides (axes merged or split by a reshape).

The overlap of a consumer tile and a producer tile is the product over groups of the
number of consumer indices whose value lies in the producer's box, counted with
closed forms (:func:`count_below`) and, for rare shapes (strided windows with gaps,
three-term axes, partial boxes split by a reshape), by enumerating the consumer's
distinct indices along the group. No element arrays of whole tensors are built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stream.workload.ir import AxisExpr, Broadcast, Gathered, Place, Reshape, Slice, Transpose


@dataclass
class Group:
    producer_axes: list[tuple[int, int]] = field(default_factory=list)  # (output axis, stride)
    consumer_axes: list[tuple[int, int]] = field(default_factory=list)  # (operand axis, stride)
    a: int = 1  # one consumer axis j: value = a*j + b
    b: int = 0
    # a repeat (broadcast) merged in as one digit, of this size at this stride: consumer
    # values differing only in it read one producer value (``project``); the producer
    # strides above it include the factor
    spread: int = 1
    spread_stride: int = 1

    def project(self, values):
        """Consumer group values -> the producer values they read (the repeat dropped)."""
        st, f = self.spread_stride, self.spread
        return (values // (st * f)) * st + values % st

    def projected(self, comps: list["Component"]) -> list["Component"]:
        """The producer components in projected values (strides above the repeat / size)."""
        return [Component(c.position, c.stride // self.spread if c.stride > self.spread_stride else c.stride, c.size)
                for c in comps]


class UnsupportedView(Exception):
    """A chain of views this module cannot express exactly."""


def compose(producer_shape: tuple[int, ...], views, consumer_shape: tuple[int, ...]) -> list[Group]:
    """Groups of axes relating the producer's output to the consumer operand."""
    groups = [Group(producer_axes=[(k, 1)]) for k in range(len(producer_shape))]
    axes: list[tuple[int, int]] = [(k, 1) for k in range(len(producer_shape))]  # (group, stride)
    extents = list(producer_shape)

    def sole_axis(axis: int) -> Group:
        g = axes[axis][0]
        if sum(1 for gg, _ in axes if gg == g) != 1:
            raise UnsupportedView("slice or concat of an axis merged by a reshape")
        return groups[g]

    for view in views:
        if isinstance(view, Transpose):
            axes = [axes[p] for p in view.perm]
            extents = [extents[p] for p in view.perm]
        elif isinstance(view, Slice):
            if view.step <= 0:
                raise UnsupportedView("negative slice step")
            group = sole_axis(view.axis)
            group.a, group.b = group.a * view.step, group.a * view.start + group.b
            extents[view.axis] = len(range(view.start, min(view.stop, extents[view.axis]), view.step))
        elif isinstance(view, Place):
            group = sole_axis(view.axis)
            group.b -= group.a * view.offset
            extents[view.axis] = view.size
        elif isinstance(view, Reshape):
            axes, extents = _reshape(groups, axes, extents, view)
        elif isinstance(view, Broadcast):
            if extents[view.axis] != 1:
                raise UnsupportedView("broadcast of an axis longer than 1")
            groups.append(Group())  # consumer indices along it read no producer axis
            axes[view.axis] = (len(groups) - 1, 1)
            extents[view.axis] = view.size
        elif isinstance(view, Gathered):
            raise UnsupportedView("a gather by computed indices reads elements chosen at run time")
        else:
            raise UnsupportedView(f"unknown view {view!r}")
    if tuple(extents) != tuple(consumer_shape):
        raise UnsupportedView(f"views give shape {tuple(extents)}, the operand has {tuple(consumer_shape)}")
    for j, (g, stride) in enumerate(axes):
        groups[g].consumer_axes.append((j, stride))
    if any(g.spread > 1 and sum(1 for j, _ in g.consumer_axes if consumer_shape[j] > 1) != 1 for g in groups):
        raise UnsupportedView("a repeated axis merged, then split again")
    return [g for g in groups if g.producer_axes or g.consumer_axes]


def _reshape(groups: list[Group], axes, extents, view: Reshape):
    if tuple(extents) != tuple(view.shape_in):
        raise UnsupportedView("reshape of a tensor of another shape")
    new_axes: list[tuple[int, int]] = []
    for ins, outs in _reshape_groups(view.shape_in, view.shape_out):
        if len(ins) == 1 and len(outs) == 1:
            new_axes.append(axes[ins[0]])
            continue
        merged = Group()
        row_major = _row_major([view.shape_in[i] for i in ins])
        factor: dict[int, int] = {}
        for i, stride_in_group in zip(ins, row_major):
            g, stride = axes[i]
            if view.shape_in[i] == 1 and sum(1 for gg, _ in axes if gg == g) == 1:
                continue  # a lone size-1 axis: always index 0
            if not groups[g].producer_axes and view.shape_in[i] > 1:
                # a repeated axis merged with others: one such digit per group, counted per
                # distinct element (the group's reads projected)
                if merged.spread != 1:
                    raise UnsupportedView("reshape merging two repeated (broadcast) axes")
                merged.spread, merged.spread_stride = view.shape_in[i], stride_in_group
                continue
            if groups[g].a != 1 or groups[g].b != 0 or stride_in_group % stride:
                raise UnsupportedView("reshape of a sliced axis or of a reordered merge")
            f = stride_in_group // stride
            if factor.setdefault(g, f) != f:
                raise UnsupportedView("reshape that reorders a merged group")
        for g, f in factor.items():
            members = [i for i, (gg, _) in enumerate(axes) if gg == g]
            if not set(members) <= set(ins):
                raise UnsupportedView("reshape that cuts through a merged group")
            merged.producer_axes += [(k, s * f) for k, s in groups[g].producer_axes]
            groups[g].producer_axes = []
        groups.append(merged)
        new_axes += [(len(groups) - 1, s) for s in _row_major([view.shape_out[o] for o in outs])]
    return new_axes, list(view.shape_out)


def _reshape_groups(shape_in, shape_out) -> list[tuple[list[int], list[int]]]:
    """Consecutive runs of input and output axes with equal products (size-1 axes attach)."""
    groups, i, j = [], 0, 0
    while i < len(shape_in) or j < len(shape_out):
        ins, outs, pi, pj = [], [], 1, 1
        while True:
            if pi == pj and ins and outs:
                break
            if (pi <= pj and i < len(shape_in)) or j >= len(shape_out):
                if i >= len(shape_in):
                    break
                pi *= shape_in[i]
                ins.append(i)
                i += 1
            else:
                pj *= shape_out[j]
                outs.append(j)
                j += 1
        # trailing size-1 axes join this group
        while i < len(shape_in) and shape_in[i] == 1 and (j >= len(shape_out) or shape_out[j] != 1):
            ins.append(i)
            i += 1
        while j < len(shape_out) and shape_out[j] == 1 and (i >= len(shape_in) or shape_in[i] != 1):
            outs.append(j)
            j += 1
        if pi != pj:
            raise UnsupportedView(f"reshape {tuple(shape_in)} -> {tuple(shape_out)} changes the size")
        groups.append((ins, outs))
    return groups


def _row_major(shape: list[int]) -> list[int]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return strides[::-1]


# -- counting --------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """A producer loop dim inside a group: value contribution ``stride * x``."""

    position: int  # the dim's position in the producer layer's dims
    stride: int
    size: int


def producer_components(group: Group, output_axes: tuple[AxisExpr, ...], dims: tuple[str, ...],
                        sizes: tuple[int, ...]) -> list[Component]:
    """The producer's loop dims in a group, sorted by stride (largest first), checked nested."""
    comps = []
    for k, stride in group.producer_axes:
        axis = output_axes[k]
        if axis.offset != 0:
            raise UnsupportedView("output axis with an offset")
        for dim, coef in axis.terms:
            if coef <= 0:
                raise UnsupportedView("output axis with a non-positive coefficient")
            position = dims.index(dim)
            comps.append(Component(position, stride * coef, sizes[position]))
    comps.sort(key=lambda c: -c.stride)
    for i, c in enumerate(comps):  # each stride exceeds everything below it can add
        if c.stride <= sum(d.stride * (d.size - 1) for d in comps[i + 1:]):
            raise UnsupportedView("output axes whose dims overlap in value")
    return comps


def count_below(t: np.ndarray, comps: list[Component], lo: list[np.ndarray], hi: list[np.ndarray]) -> np.ndarray:
    """How many points x of the box [lo, hi) have sum(stride * x) < t (strides nested)."""
    if not comps:
        return (t > 0).astype(np.int64)
    s = comps[0].stride
    q = np.floor_divide(t, s)
    r = t - q * s
    rest = np.ones_like(t)
    for l_, h_ in zip(lo[1:], hi[1:]):
        rest = rest * (h_ - l_)
    full = np.clip(q - lo[0], 0, hi[0] - lo[0]) * rest
    inside = (q >= lo[0]) & (q < hi[0])
    return full + np.where(inside, count_below(r, comps[1:], lo[1:], hi[1:]), 0)


def in_box(values: np.ndarray, comps: list[Component], lo: list[int], hi: list[int]) -> np.ndarray:
    """Whether each value is sum(stride * x) of a point x of the box (strides nested)."""
    rest = values.copy()
    ok = rest >= 0
    for c, l_, h_ in zip(comps, lo, hi):
        x = rest // c.stride
        ok &= (x >= l_) & (x < h_)
        rest = rest - x * c.stride
    return ok & (rest == 0)


def axis_values(axis: AxisExpr, box_lo: dict[str, int], box_hi: dict[str, int]) -> np.ndarray:
    """Distinct in-range indices of one operand axis over a box (for the rare exact path)."""
    values = np.array([axis.offset], dtype=np.int64)
    for dim, coef in axis.terms:
        values = np.unique(np.add.outer(values, coef * np.arange(box_lo[dim], box_hi[dim])).ravel())
    return values[(values >= 0) & (values < axis.extent)]


def group_values(group: Group, operand_axes, box_lo, box_hi) -> np.ndarray:
    """Distinct group values a consumer box reads (enumerated; the rare exact path)."""
    values = np.zeros(1, dtype=np.int64)
    for j, stride in group.consumer_axes:
        values = np.add.outer(values, stride * axis_values(operand_axes[j], box_lo, box_hi)).ravel()
    if len(group.consumer_axes) == 1:
        values = group.a * values + group.b
    return values


def interval_overlap_ap(first, step, count, lo, hi) -> np.ndarray:
    """How many of first + step*i (i < count) lie in [lo, hi); step >= 1."""
    i0 = np.maximum(0, -np.floor_divide(-(lo - first), step))
    i1 = np.minimum(count, -np.floor_divide(-(hi - first), step))
    return np.maximum(0, i1 - i0)


def ceil_div(a, b):
    return -np.floor_divide(-a, b)


def distinct_is_interval(axis: AxisExpr, spans: dict[str, int]) -> bool:
    """True when the axis's indices over these spans have no gaps."""
    terms = [(abs(c), spans[d]) for d, c in axis.terms if spans[d] > 1 and c != 0]
    if len(terms) <= 1:
        return not terms or terms[0][0] == 1
    reach = sum(c * (n - 1) for c, n in terms) + 1
    return AxisExpr(axis.terms, extent=math.inf).distinct(spans) == reach
