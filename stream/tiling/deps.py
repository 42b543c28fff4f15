"""Data dependencies between the CNs of a producer and a consumer layer, vectorised.

For every consumer CN: the range of each operand axis it reads (through the affine axis
expressions, padding clipped) gives, per producer split dim, the range of producer
intervals that can hold its data (integer arithmetic on the producer's regular grid).
Candidate pairs are then counted exactly (:mod:`stream.tiling.views`): an edge exists
when the consumer reads at least one element the producer tile completed, and carries
those elements times the operand's precision. Producers split along a reduction dim feed
consumers only from the tile that completes the sum.
"""

from __future__ import annotations

import numpy as np

from stream.tiling.grid import LayerGrid
from stream.tiling.views import (
    Component, Group, UnsupportedView, axis_values, ceil_div, compose, count_below, group_values, in_box,
    interval_overlap_ap, producer_components,
)
from stream.workload.ir import AxisExpr, DimKind, Operand, Source

MAX_RUNS = 256  # beyond this many runs per pair, count by enumeration instead


class AxisReads:
    """What every consumer CN reads along one operand axis (vectorised over CNs)."""

    def __init__(self, axis: AxisExpr, positions: dict[str, int], starts: np.ndarray, stops: np.ndarray):
        n = starts.shape[0]
        lo = np.full(n, axis.offset, dtype=np.int64)
        hi = np.full(n, axis.offset, dtype=np.int64)
        effective = np.zeros(n, dtype=np.int64)  # terms whose dim spans more than one value
        step = np.ones(n, dtype=np.int64)
        spans = []
        for dim, coef in axis.terms:
            start, stop = starts[:, positions[dim]], stops[:, positions[dim]]
            lo += np.where(coef >= 0, coef * start, coef * (stop - 1))
            hi += np.where(coef >= 0, coef * (stop - 1), coef * start)
            wide = (stop - start) > 1
            effective += wide
            step = np.where(wide, abs(coef), step)
            spans.append((abs(coef), stop - start))
        hi += 1
        reach = hi - lo
        if len(spans) == 2:  # ZigZag's distinct count for two terms: equal to reach = no gaps
            (s, a), (d, b) = spans
            g = np.gcd(s, d)
            distinct = a * b - np.maximum(0, b - s // g) * np.maximum(0, a - d // g)
            gap_free = distinct == reach
        else:  # more than two wide terms: counted by enumeration
            gap_free = np.zeros(n, dtype=bool)
        # interval: no gaps; progression: one wide term with |coef| > 1; else general
        self.is_interval = (effective == 0) | ((effective == 1) & (step == 1)) | ((effective == 2) & gap_free)
        self.is_progression = (effective == 1) & (step > 1)
        self.step = step
        # clip to the real tensor: padding reads no data
        self.first = np.where(self.is_progression & (lo < 0), lo + step * ceil_div(-lo, step), lo)
        self.lo = np.maximum(lo, 0)
        self.hi = np.minimum(hi, axis.extent)
        last = hi - 1
        last = np.where(self.is_progression & (last >= axis.extent),
                        last - step * ceil_div(last - axis.extent + 1, step), last)
        self.count = np.where(self.is_progression, np.maximum(0, (last - self.first) // step + 1), 0)
        self.empty = np.where(self.is_progression, self.count == 0, self.lo >= self.hi)

    def sizes(self, axis: AxisExpr, dims: tuple[str, ...], starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """Distinct in-range indices each CN reads along the axis (padding excluded)."""
        out = np.where(self.is_interval, np.maximum(0, self.hi - self.lo), np.where(self.is_progression, self.count, 0))
        for cn in np.flatnonzero(~(self.is_interval | self.is_progression)).tolist():
            out[cn] = axis_values(axis, dict(zip(dims, starts[cn].tolist())), dict(zip(dims, stops[cn].tolist()))).size
        return out


def data_edges(consumer: LayerGrid, c_starts: np.ndarray, c_stops: np.ndarray, operand: Operand,
               source: Source, producer: LayerGrid, p_starts: np.ndarray, p_stops: np.ndarray,
               notes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(producer CN, consumer CN, bits) of every data edge for one operand source."""
    c_layer, p_layer = consumer.layer, producer.layer
    positions = {d: i for i, d in enumerate(c_layer.dims)}
    reads = [AxisReads(axis, positions, c_starts, c_stops) for axis in operand.axes]
    needs = ~np.any([r.empty for r in reads], axis=0) if reads else np.ones(c_starts.shape[0], bool)
    try:
        groups = compose(p_layer.output.shape, source.views, operand.shape)
        comps = [producer_components(g, p_layer.output.axes, p_layer.dims, p_layer.sizes) for g in groups]
    except UnsupportedView as why:
        notes.append(f"{c_layer.name}.{operand.name} <- {p_layer.name}: {why}; "
                     "counted conservatively (every completing producer tile, its whole output)")
        return _all_pairs(consumer, producer, p_starts, p_stops, operand, needs)

    cons = np.flatnonzero(needs)
    ranges = []  # per producer split dim: (first, last) interval index per consumer CN in cons
    for split in producer.splits:
        if split.kind is DimKind.REDUCTION or not _in_output(p_layer, split.dim):
            last = np.full(cons.shape, split.count - 1, dtype=np.int64)
            ranges.append((last, last))
            continue
        g, comp, parent = _find(groups, comps, split.position)
        vmin, vmax = _value_range(groups[g], reads, cons)
        if groups[g].spread > 1:  # a repeat merged in: the producer values those can read
            vmin, vmax = _projected_bounds(groups[g], vmin, vmax)
            _, comp, parent = _find([groups[g]], [groups[g].projected(comps[g])], split.position)
        xlo, xhi = _digit_range(vmin, vmax, comp, parent)
        first = np.searchsorted(split.bounds, xlo, side="right") - 1
        last = np.searchsorted(split.bounds, xhi, side="right") - 1
        ranges.append((np.clip(first, 0, split.count - 1), np.clip(last, -1, split.count - 1)))
    counts = np.ones(cons.shape, dtype=np.int64)
    for first, last in ranges:
        counts *= np.maximum(0, last - first + 1)
    c_idx = np.repeat(cons, counts)
    offsets = np.arange(c_idx.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    p_intervals = []
    for first, last in reversed(ranges):
        span = np.repeat(np.maximum(1, last - first + 1), counts)
        p_intervals.append(np.repeat(first, counts) + offsets % span)
        offsets //= span
    p_local = producer.local_ids(p_intervals[::-1]) if ranges else np.zeros_like(c_idx)
    p_idx = np.broadcast_to(p_local, c_idx.shape)

    volume = np.ones(c_idx.shape, dtype=np.int64)
    for group, comp in zip(groups, comps):
        volume *= _group_overlap(group, comp, reads, operand, c_layer, c_idx, c_starts, c_stops,
                                 p_idx, p_starts, p_stops)
    keep = volume > 0
    return (producer.first + p_idx[keep], consumer.first + c_idx[keep], volume[keep] * operand.precision)


def _in_output(layer, dim: str) -> bool:
    return any(dim in axis.dims for axis in layer.output.axes)


def _find(groups: list[Group], comps: list[list[Component]], position: int):
    for g, group_comps in enumerate(comps):
        for i, c in enumerate(group_comps):
            if c.position == position:
                return g, c, (group_comps[i - 1] if i else None)
    raise UnsupportedView("a producer dim missing from its output")


def _projected_bounds(group: Group, vmin, vmax):
    """Bounds of the producer values that consumer values in [vmin, vmax] read through a
    repeat (a superset: whole periods of the digits below the repeat)."""
    st, period = group.spread_stride, group.spread_stride * group.spread
    return (vmin // period) * st, (vmax // period) * st + st - 1


def _value_range(group: Group, reads: list[AxisReads], cons: np.ndarray):
    """Smallest and largest group value each consumer CN can read (inclusive)."""
    if not group.consumer_axes:
        zero = np.zeros(cons.shape, dtype=np.int64)
        return zero, zero
    if len(group.consumer_axes) == 1:
        r = reads[group.consumer_axes[0][0]]
        lo = np.where(r.is_progression, r.first, r.lo)[cons]
        hi = np.where(r.is_progression, r.first + (r.count - 1) * r.step, r.hi - 1)[cons]
        return group.a * lo + group.b, group.a * hi + group.b
    vmin = sum(stride * reads[j].lo[cons] for j, stride in group.consumer_axes)
    vmax = sum(stride * (reads[j].hi[cons] - 1) for j, stride in group.consumer_axes)
    return vmin, vmax


def _digit_range(vmin, vmax, comp: Component, parent: Component | None):
    """Range of one component's value over group values in [vmin, vmax] (conservative)."""
    if parent is None:
        return np.maximum(vmin // comp.stride, 0), np.minimum(vmax // comp.stride, comp.size - 1)
    same_parent = (vmin // parent.stride) == (vmax // parent.stride)
    lo = (vmin % parent.stride) // comp.stride
    hi = (vmax % parent.stride) // comp.stride
    full = ~same_parent | (lo > hi)
    return np.where(full, 0, np.clip(lo, 0, comp.size - 1)), np.where(full, comp.size - 1, np.clip(hi, 0, comp.size - 1))


def _group_overlap(group, comps, reads, operand, c_layer, c_idx, c_starts, c_stops, p_idx, p_starts, p_stops):
    """Consumer indices of this group whose value lies in the producer tile, per pair."""
    lo = [p_starts[p_idx, c.position] for c in comps]
    hi = [p_stops[p_idx, c.position] for c in comps]
    n = c_idx.shape[0]
    result = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    if not group.producer_axes:  # broadcast axes: however many times read, one element
        return np.all([~reads[j].empty[c_idx] for j, _ in group.consumer_axes], axis=0).astype(np.int64)
    if group.spread > 1:
        return _spread_overlap(group, comps, reads, operand, c_layer, c_idx, c_starts, c_stops, lo, hi)
    if not group.consumer_axes:
        return count_below(np.ones(n, dtype=np.int64), comps, lo, hi)
    if len(group.consumer_axes) == 1:
        r = reads[group.consumer_axes[0][0]]
        a, b = group.a, group.b
        interval = r.is_interval[c_idx]
        if a == 1:
            m = interval
            result[m] = (count_below(r.hi[c_idx][m] + b, comps, _sel(lo, m), _sel(hi, m))
                         - count_below(r.lo[c_idx][m] + b, comps, _sel(lo, m), _sel(hi, m)))
            done |= m
        if len(comps) == 1 and comps[0].stride == 1:
            m = ~done & (interval | r.is_progression[c_idx])
            first = np.where(interval, r.lo[c_idx], r.first[c_idx])[m]
            step = np.where(interval, 1, r.step[c_idx])[m]
            count = np.where(interval, r.hi[c_idx] - r.lo[c_idx], r.count[c_idx])[m]
            result[m] = interval_overlap_ap(a * first + b, a * step, count, lo[0][m], hi[0][m])
            done |= m
    else:
        boxes = np.all([reads[j].is_interval[c_idx] for j, _ in group.consumer_axes], axis=0)
        m = boxes & _contiguous(group, operand)
        if m.any():
            result[m], ok = _box_by_runs(group, operand, reads, c_idx[m], _sel(lo, m), _sel(hi, m), comps)
            done[np.flatnonzero(m)[~ok]] = False
            done[np.flatnonzero(m)[ok]] = True
    rest = np.flatnonzero(~done)
    if rest.size:
        result[rest] = _enumerate(group, comps, operand, c_layer, c_idx[rest], c_starts, c_stops,
                                  [x[rest] for x in lo], [x[rest] for x in hi])
    return result


def _spread_overlap(group, comps, reads, operand, c_layer, c_idx, c_starts, c_stops, lo, hi):
    """Distinct producer elements a consumer reads through a repeat merged into the group:
    consumer values are projected onto the producer's (``Group.project``). A repeat as the
    lowest digit maps an interval of values to an interval; otherwise the values are listed."""
    projected = group.projected(comps)
    # the axis of the lowest digit (stride 1); the group's other axes have one index, 0
    r = reads[min(group.consumer_axes, key=lambda axis: axis[1])[0]]
    fast = r.is_interval[c_idx] & ~r.empty[c_idx] & (group.spread_stride == 1)
    result = np.zeros(c_idx.shape[0], dtype=np.int64)
    f, m = group.spread, fast
    q_lo, q_hi = r.lo[c_idx][m] // f, (r.hi[c_idx][m] - 1) // f + 1
    result[m] = (count_below(q_hi, projected, _sel(lo, m), _sel(hi, m))
                 - count_below(q_lo, projected, _sel(lo, m), _sel(hi, m)))
    for i in np.flatnonzero(~fast).tolist():
        cn = int(c_idx[i])
        box_lo = dict(zip(c_layer.dims, c_starts[cn].tolist()))
        box_hi = dict(zip(c_layer.dims, c_stops[cn].tolist()))
        values = np.unique(group.project(group_values(group, operand.axes, box_lo, box_hi)))
        result[i] = int(in_box(values, projected, [int(x[i]) for x in lo], [int(x[i]) for x in hi]).sum())
    return result


def _sel(arrays, mask):
    return [x[mask] for x in arrays]


def _contiguous(group: Group, operand: Operand) -> bool:
    axes = sorted(group.consumer_axes, key=lambda a: -a[1])
    return all(s == axes[i + 1][1] * operand.axes[axes[i + 1][0]].extent for i, (_, s) in enumerate(axes[:-1])) \
        and axes[-1][1] == 1


def _box_by_runs(group, operand, reads, c_idx, lo, hi, comps):
    """Consumer box (several axes) against the producer box: sum over the box's contiguous runs."""
    axes = sorted(group.consumer_axes, key=lambda a: -a[1])
    alo = [reads[j].lo[c_idx] for j, _ in axes]
    ahi = [reads[j].hi[c_idx] for j, _ in axes]
    strides = [s for _, s in axes]
    full = [(l_ == 0) & (h_ == operand.axes[j].extent) for (j, _), l_, h_ in zip(axes, alo, ahi)]
    # m: the last axis that is not full; axes below it are full, so each run is contiguous
    m = np.zeros(c_idx.shape, dtype=np.int64)
    for i in range(len(axes)):
        m = np.where(~full[i], i, m)
    runs = np.ones(c_idx.shape, dtype=np.int64)
    for i in range(len(axes)):
        runs *= np.where(i < m, ahi[i] - alo[i], 1)
    ok = runs <= MAX_RUNS
    total = np.zeros(c_idx.shape, dtype=np.int64)
    for k in range(int(runs[ok].max()) if ok.any() else 0):
        active = ok & (k < runs)
        rest = np.full(c_idx.shape, k, dtype=np.int64)
        base = np.zeros(c_idx.shape, dtype=np.int64)
        for i in reversed(range(len(axes))):
            span = np.where(i < m, ahi[i] - alo[i], 1)
            x = np.where(i < m, alo[i] + rest % span, 0)
            rest = rest // span
            base += x * strides[i]
        start = base + _pick(alo, m) * _pick(strides, m)
        stop = base + _pick(ahi, m) * _pick(strides, m)
        add = count_below(stop, comps, lo, hi) - count_below(start, comps, lo, hi)
        total += np.where(active, add, 0)
    return total, ok


def _pick(values, index: np.ndarray):
    out = np.zeros(index.shape, dtype=np.int64)
    for i, v in enumerate(values):
        out = np.where(index == i, v, out)
    return out


def _enumerate(group, comps, operand, c_layer, c_idx, c_starts, c_stops, lo, hi) -> np.ndarray:
    """Exact count by listing the consumer's distinct group values (rare shapes only)."""
    out = np.zeros(c_idx.shape, dtype=np.int64)
    cache: dict[int, np.ndarray] = {}
    for i, cn in enumerate(c_idx.tolist()):
        if cn not in cache:
            box_lo = dict(zip(c_layer.dims, c_starts[cn].tolist()))
            box_hi = dict(zip(c_layer.dims, c_stops[cn].tolist()))
            cache[cn] = group_values(group, operand.axes, box_lo, box_hi)
        values = cache[cn]
        out[i] = int(in_box(values, comps, [int(x[i]) for x in lo], [int(x[i]) for x in hi]).sum())
    return out


def _all_pairs(consumer, producer, p_starts, p_stops, operand, needs):
    """Fallback: every consumer CN depends on every completing producer CN, whole output."""
    completing = np.ones(producer.count, dtype=bool)
    for split, idx in zip(producer.splits, producer.interval_indices(np.arange(producer.count))):
        if split.kind is DimKind.REDUCTION:
            completing &= idx == split.count - 1
    p_local = np.flatnonzero(completing)
    c_local = np.flatnonzero(needs)
    layer = producer.layer
    elements = np.ones(p_local.shape, dtype=np.int64)
    positions = {d: i for i, d in enumerate(layer.dims)}
    for axis in layer.output.axes:
        spans = {d: p_stops[p_local, positions[d]] - p_starts[p_local, positions[d]] for d in axis.dims}
        elements *= np.array([axis.distinct({d: int(s[i]) for d, s in spans.items()})
                              for i in range(p_local.shape[0])], dtype=np.int64)
    src = np.tile(p_local, c_local.shape[0])
    dst = np.repeat(c_local, p_local.shape[0])
    bits = np.tile(elements, c_local.shape[0]) * operand.precision
    return producer.first + src, consumer.first + dst, bits
