"""ZigZag's per-core cost model (zigzag-dse 3.9.1's ``CostModelEvaluation``) over plain numbers.

``evaluate(core, layer, sizes, spatial, temporal, links)`` gives the same energy, word
accesses and latency terms as ZigZag for the same core, layer, spatial mapping and
temporal mapping (the allocation before the stationarity merge-down). What depends only on
(core, layer, sizes, links) is computed once by :func:`prepare`; what depends only on the
spatial mapping is cached in that context; :func:`evaluate_prepared` does the rest for one
temporal mapping with loops over small lists of numbers: no per-mapping objects.

The equations are described in ``notes/zigzag-cost-model.md`` (sections 3.1-3.8). In short,
per layer operand X with memory levels 0..n-1 (bottom-up):

* spatial unrollings sit at the "arch level" of the lowest memory of X serving their array
  dim (level n: served by none); ``U`` (instances) and ``B`` (fan-out of distinct data);
* the temporal loops of each level, after moving irrelevant loops at the bottom of a level
  down into the level below (stationarity), give the periods ``P_m`` (cumulative loop
  products) and the footprints ``F_m`` (distinct elements one instance holds);
* four directions per level (``tl``, ``fl``, ``th``, ``fh``) move an amount per period,
  ``T / P`` times; word accesses price them through the port's ``bw_min``/``bw_max``;
* latency: per port, stall/slack of every periodic transfer against its allowed window
  (whole period if the lower memory is double-buffered), combined over the ports that
  share it; then on-loading and off-loading of the first and last tiles.

ZigZag's quirks are reproduced on purpose, and marked ``quirk`` in the code:

* energy and footprints use the fractional spatial mapping (``N / ceil(N / f)``), latency
  the integer one;
* partially relevant (pr) sizes truncate their loop products to integers before the
  ``a*b - max(0, b - sa/g) * (a - sb/g)`` formula (no ``max`` on the second factor) and are
  clipped to the real input size;
* the output precision of "arch level" k is taken from memory level k (not k-1) in the
  footprint, memory-utilisation and required-bandwidth terms;
* the output's per-direction precisions test ``int(|O| * (ir loops above - 1)) != 0``;
* a "half shared" loading link overwrites rather than adds; with one input operand the
  on-loading is its fully separate part only;
* psum reads and writes at the lowest output level are counted every cycle, including the
  first accumulation; an input read once per ``S`` cycles it stays at the MACs.

The union of memory-updating windows on a port is computed exactly and analytically over
the periods of the links sharing it (prefix products of one loop order, so each divides
the next), not over a cycle array. Our arrays have no systolic dimensions, so ZigZag's
systolic drain term is 0.

The pr-size clip is ``min(formula over the tile sizes, axis extent)``: for the whole layer
this is ZigZag's ``pr size - padding``; for a tile it is the tile's own input footprint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stream.cost.mapping import CostBreakdown, SpatialMapping, TemporalMapping
from stream.hardware.ir import Core
from stream.workload.ir import Layer


class NotZigZag(ValueError):
    """A layer ZigZag's equations do not describe (its reason is the message): the cost
    model prices it with the roofline instead."""


DIRECTIONS = ("rd_out_to_low", "wr_in_by_low", "rd_out_to_high", "wr_in_by_high")
TL, FL, TH, FH = 0, 1, 2, 3  # indices into DIRECTIONS
_DIR_CODE = {"tl": TL, "fl": FL, "th": TH, "fh": FH}
_WRITE_CODES = (FH, FL)  # directions that write into the memory
DEFAULT_LINKS = {"O": "O", "W": "I2", "I": "I1"}
_INPUT_MEM_OPS = ("I1", "I2")

# Loop kinds per operand (ZigZag's loop_relevancy_info); the hot loops use the literals.
_NONE, _R, _IR, _PR = 0, 1, 2, 3


# -- context -------------------------------------------------------------------------------


@dataclass
class _Op:
    """One layer operand as the model sees it."""

    name: str
    mem_op: str
    output: bool
    index: int  # position among the layer operands
    mems: tuple[int, ...]  # core.memories indices, bottom-up
    sizes_bits: tuple[int, ...]
    bw: tuple  # per level: 4 x (bw_min, bw_max) or None
    r_cost: tuple[float, ...]
    w_cost: tuple[float, ...]
    kind: dict  # dim -> _R / _IR / _PR / _NONE
    pr_axes: tuple  # ((a, sa, b, sb, clip), ...) decoupled into r/ir parts; empty if no pr
    pr_of: dict  # dim -> ((relation index, 0 for its first dim / 1 for its second), ...)
    prec: int  # inputs: precision; output: final precision
    prec_psum: int  # output: partial-sum precision
    size_elem: float  # ZigZag's operand_size_elem (only the output's is used)
    share: tuple  # per level: ((op index, level), ...) sharing the physical memory, or ()

    @property
    def n(self) -> int:
        return len(self.mems)


@dataclass
class Context:
    """What an evaluation needs that depends only on (core, layer, sizes, links)."""

    core: Core
    layer: Layer
    sizes: dict
    links: dict
    ops: list  # _Op, layer order (output first)
    inputs: list  # indices of the input operands in ops
    out: int  # index of the output in ops
    macs: int
    units: int
    unit_energy: float
    ports: list  # per used physical port: (bw_max, shared by two inputs, functions), a function
    # being (op index, level, direction, bw_max for it, double-buffer flag index of its lower
    # memory, skipped in on/off-loading)
    array: dict  # array dim -> size
    _spatial: dict = field(default_factory=dict)  # SpatialMapping -> _Spatial
    _last: tuple = (None, None)  # the last (SpatialMapping, _Spatial) used


def _zz_pr_size(sa: int, a: int, sb: int, b: int) -> int:
    """ZigZag's distinct-index count of ``sa*a + sb*b`` (quirk: no max() on the second factor)."""
    g = math.gcd(sa, sb)
    return a * b - max(0, b - sa // g) * (a - sb // g)


def prepare(core: Core, layer: Layer, sizes: dict[str, int] | None = None,
            links: dict[str, str] | None = None) -> Context:
    """Precompute everything independent of the mapping."""
    sizes = {d: int(sizes[d]) if sizes and d in sizes else int(n) for d, n in zip(layer.dims, layer.sizes)}
    links = dict(DEFAULT_LINKS if links is None else links)

    # Partially relevant relations: every multi-term axis of the layer (ZigZag's
    # dimension_relations are layer-global), deduplicated.
    relations: list = []
    pr_dims: set = set()
    for op in layer.operands:
        for axis in op.axes:
            terms = [(d, c) for d, c in axis.terms if c != 0]
            if len(terms) > 2:
                raise NotZigZag("an axis sums more than two loop dims")
            if len(terms) == 2:
                (a, sa), (b, sb) = terms
                if sa < 0 or sb < 0:
                    raise NotZigZag("an axis summing loop dims with a negative coefficient")
                clip = min(_zz_pr_size(sa, sizes[a], sb, sizes[b]), axis.extent)
                key = (a, sa, b, sb)
                for rel in relations:
                    if rel[:4] == key:
                        break
                else:
                    relations.append((a, sa, b, sb, clip))
                pr_dims.update((a, b))

    ops: list[_Op] = []
    for index, op in enumerate(layer.operands):
        if op.name not in links:
            raise ValueError(f"layer operand {op.name} has no memory operand link in {links}")
        mem_op = links[op.name]
        mems = tuple(i for i, m in enumerate(core.memories) if mem_op in m.operands)
        if not mems:
            raise ValueError(f"core {core.name} has no memory for {mem_op} (layer operand {op.name})")
        has_pr = any(sum(1 for _, c in ax.terms if c != 0) > 1 for ax in op.axes)
        relevant = set()
        for ax in op.axes:
            active = [d for d, c in ax.terms if c != 0]
            if len(active) == 1:
                relevant.add(active[0])
        kind = {}
        for d in layer.dims:
            if has_pr and d in pr_dims:
                kind[d] = _PR
            elif d in relevant:
                # quirk: a pr operand keeps its size-1 relevant dims, the others drop them
                kind[d] = _R if (has_pr or sizes[d] != 1) else _NONE
            else:
                kind[d] = _IR if sizes[d] != 1 else _NONE
        bw = []
        for i in mems:
            alloc = _allocation(core.memories[i])
            per_dir = [None, None, None, None]
            for d, port in alloc.get(mem_op, {}).items():
                per_dir[d] = (port.granularity(d in _WRITE_CODES), port.bw_max)
            bw.append(tuple(per_dir))
        output = index == 0
        size_elem = 1
        for d in layer.dims:
            if kind[d] == _R:
                size_elem *= sizes[d]
        if has_pr:
            for a, sa, b, sb, clip in relations:
                size_elem *= min(_zz_pr_size(sa, sizes[a], sb, sizes[b]), clip)
        ops.append(_Op(
            name=op.name, mem_op=mem_op, output=output, index=index, mems=mems,
            sizes_bits=tuple(int(core.memories[i].size_bits) for i in mems),
            bw=tuple(bw),
            r_cost=tuple(float(core.memories[i].r_cost) for i in mems),
            w_cost=tuple(float(core.memories[i].w_cost) for i in mems),
            kind=kind, pr_axes=tuple(relations) if has_pr else (),
            pr_of={d: tuple((i, 0 if rel[0] == d else 1) for i, rel in enumerate(relations) if d in (rel[0], rel[2]))
                   for d in pr_dims} if has_pr else {},
            prec=int(op.precision),
            prec_psum=int(op.partial_precision if op.partial_precision is not None else op.precision),
            size_elem=size_elem, share=(),
        ))
    if ops[0].pr_axes:
        raise NotZigZag("an output axis sums two loop dims")

    # Memories shared by several linked operands (ZigZag's mem_sharing_list).
    by_mem_op = {o.mem_op: o.index for o in ops}
    for o in ops:
        share = []
        for i in o.mems:
            mem = core.memories[i]
            if len(mem.operands) > 1:
                group = tuple((by_mem_op[mo], _level_of(core, mo, i)) for mo in mem.operands if mo in by_mem_op)
                share.append(group)
            else:
                share.append(())
        o.share = tuple(share)

    # Physical ports, in ZigZag's order: memories bottom-up, ports in file order (only those
    # allocated to something), each with its (memory operand, level, direction) functions.
    ports = []
    for i, mem in enumerate(core.memories):
        alloc = _allocation(mem)
        served: dict[int, list] = {}
        for mo in mem.operands:
            for d, port in alloc.get(mo, {}).items():
                served.setdefault(id(port), []).append((mo, d))
        for port in mem.ports:
            functions = served.get(id(port))
            if not functions:
                continue
            two_inputs = len({mo for mo, _ in functions if mo in _INPUT_MEM_OPS}) > 1
            linked = []
            for mo, d in functions:
                if mo not in by_mem_op:
                    continue
                x = by_mem_op[mo]
                lv = _level_of(core, mo, i)
                bmax = ops[x].bw[lv][d][1]  # the port ZigZag reads this function's bandwidth from
                skip_load = ops[x].output and d in (TL, FH)  # psums do not flow in the final off-loading
                linked.append((x, lv, d, bmax, lv if d in (TL, FL) else lv + 1, skip_load))
            ports.append((float(port.bw_max), two_inputs, tuple(linked)))
    macs = math.prod(sizes.values())
    return Context(
        core=core, layer=layer, sizes=sizes, links=links, ops=ops,
        inputs=[o.index for o in ops if not o.output], out=0, macs=macs,
        units=core.array.units, unit_energy=float(core.array.unit_energy), ports=ports,
        array=dict(zip(core.array.dims, core.array.sizes)),
    )


def _level_of(core: Core, mem_op: str, mem_index: int) -> int:
    return sum(1 for m in core.memories[:mem_index] if mem_op in m.operands)


def _allocation(mem) -> dict:
    """memory operand -> {direction index: Port}; as ZigZag, a later port wins a function."""
    alloc: dict[str, dict[int, object]] = {mo: {} for mo in mem.operands}
    for port in mem.ports:
        for mo, d in port.allocation:
            alloc.setdefault(mo, {})[_DIR_CODE[d]] = port
    return alloc


# -- spatial mapping ------------------------------------------------------------------------


@dataclass
class _SpatialOp:
    """One operand's view of a spatial mapping, for the fractional (0) and integer (1) variant."""

    su: tuple  # [variant][arch level] -> ((dim, factor), ...)
    su_rel: tuple  # [variant][arch level] -> ((kind, dim, factor), ...) relevant and pr entries only
    unit_count: tuple  # fractional variant, per arch level: U_k (instances of memory level k-1)
    boost: tuple  # [variant][arch level] -> B_k (rounded), last = 1
    ir_any: tuple  # [variant][arch level] -> an irrelevant unrolling > 1 (psum test)
    ir_prod: tuple  # [variant][arch level] -> product of irrelevant unrollings
    integral: bool  # the integer variant equals the fractional one for this operand


@dataclass
class _Spatial:
    ops: list  # _SpatialOp per operand


def _spatial(ctx: Context, spatial: SpatialMapping) -> _Spatial:
    cached = ctx._spatial.get(spatial)
    if cached is not None:
        return cached
    core, sizes = ctx.core, ctx.sizes
    unrolling = []  # (array dim, ((dim, fractional factor), ...)) with dims of this layer only
    for adim, entries in spatial.unrolling:
        kept = tuple((d, f) for d, f in entries if d in sizes)
        if kept:
            unrolling.append((adim, kept))
    out = []
    for o in ctx.ops:
        n = o.n
        served = [set(core.memories[i].served_dimensions) for i in o.mems]
        placed = [[] for _ in range(n + 1)]  # per arch level: array dims, in mapping order
        for adim, entries in unrolling:
            level = next((m for m in range(n) if adim in served[m]), n)
            placed[level].append(entries)
        su_v, su_rel_v, boost_v, ir_any_v, ir_prod_v = [], [], [], [], []
        unit_count = None
        for variant in (0, 1):
            su = []
            for level in range(n + 1):
                merged: dict[str, float] = {}
                for entries in placed[level]:
                    for d, f in entries:
                        f = f if variant == 0 else int(f)
                        merged[d] = merged[d] * f if d in merged else f
                su.append(tuple(merged.items()))
            su_v.append(tuple(su))
            su_rel_v.append(tuple(tuple((o.kind[d], d, f) for d, f in lv if o.kind[d] in (_R, _PR)) for lv in su))
            # unit counts and bandwidth boost: the spatial mapping alone, pr loops decoupled
            r_per = []
            tot_per = []
            cum = [[1, 1, 1] for _ in o.pr_axes]
            for level in range(n + 1):
                r = 1
                t = 1
                for d, f in su[level]:
                    t *= f
                    k = o.kind[d]
                    if k == _R:
                        r *= f
                    elif k == _PR:
                        r *= _pr_step(o, cum, d, f)
                r_per.append(r)
                tot_per.append(t)
            unique = [math.prod(r_per[k:]) for k in range(n + 1)]
            boost_v.append(tuple(round(unique[k] / unique[k + 1]) for k in range(n)) + (1,))
            if variant == 0:
                unit_count = tuple(round(round(math.prod(tot_per[k:]), 3)) for k in range(n + 1))
            ir_any_v.append(tuple(any(o.kind[d] == _IR and f > 1 for d, f in su[k]) for k in range(n + 1)))
            ir_prod_v.append(tuple(math.prod(f for d, f in su[k] if o.kind[d] == _IR) for k in range(n + 1)))
        # The integer variant differs from the fractional one for an input through its relevant
        # and pr unrollings only; for the output also through the irrelevant ones (psum flags).
        # Compare the merged factors: C 12 x 10.67 on two array dims is 128.0, but 120 in integers.
        same = all(f0 == f1 for lv0, lv1 in zip(su_v[0], su_v[1]) for (d, f0), (_, f1) in zip(lv0, lv1)
                   if o.output or o.kind[d] in (_R, _PR))
        out.append(_SpatialOp(tuple(su_v), tuple(su_rel_v), unit_count, tuple(boost_v), tuple(ir_any_v),
                              tuple(ir_prod_v), same))
    result = _Spatial(out)
    ctx._spatial[spatial] = result
    return result


def _pr_step(o: _Op, cum: list, d: str, f) -> float:
    """Multiply loop ``d`` (size ``f``) into the running pr loop products ``cum`` (per
    relation: first dim, second dim, pr size); the growth of the pr sizes it causes (ZigZag's
    per-loop ``r`` factor after decoupling)."""
    ratio = 1
    for i, slot in o.pr_of[d]:
        _, sa, _, sb, clip = o.pr_axes[i]
        c = cum[i]
        c[slot] *= f
        size = min(_zz_pr_size(sa, int(c[0]), sb, int(c[1])), clip)  # quirk: truncated loop products
        ratio *= size / c[2]
        c[2] = size
    return ratio


# -- evaluation -----------------------------------------------------------------------------


def evaluate(core: Core, layer: Layer, sizes: dict[str, int], spatial: SpatialMapping,
             temporal: TemporalMapping, links: dict[str, str] | None = None) -> CostBreakdown:
    """ZigZag's cost of one mapping of ``layer`` (tile ``sizes``) on ``core``."""
    return evaluate_prepared(prepare(core, layer, sizes, links), spatial, temporal)


def evaluate_prepared(ctx: Context, spatial: SpatialMapping, temporal: TemporalMapping) -> CostBreakdown:
    """ZigZag's cost of one mapping, given :func:`prepare`'s context.

    Per operand, per variant (0: fractional spatial mapping, for energy and memory
    utilisation; 1: integer one, for latency), per memory level, per direction, a data
    transfer link ``(amount, precision, period, period count, average bandwidth, window)``
    or None; the rest of the model reads those.
    """
    if spatial is ctx._last[0]:
        sp = ctx._last[1]
    else:
        sp = _spatial(ctx, spatial)
        ctx._last = (spatial, sp)
    levels_of = dict(temporal.levels)
    ops = ctx.ops
    n_ops = len(ops)
    T = None
    tlinks = [None] * n_ops  # [op] -> [variant] -> per level [tl, fl, th, fh]
    dmain = [None] * n_ops  # [op] -> (D, pd) of the fractional variant
    dint1 = [0] * n_ops  # [op] -> footprint bits of the innermost level, integer variant (ZigZag's precision)
    top_rs = [None] * n_ops

    for o in ops:
        x = o.index
        levels = levels_of.get(o.name)
        if levels is None:
            raise ValueError(f"the temporal mapping has no loops for operand {o.name}")
        n = o.n
        if len(levels) != n:
            raise ValueError(f"operand {o.name}: {len(levels)} temporal levels for {n} memory levels")
        kind = o.kind
        fs = []  # loop sizes, innermost first, all levels
        ks = []  # their kinds for this operand
        bounds = []
        for lv in levels:
            bounds.append(len(fs))
            for d, f in lv:
                fs.append(f)
                ks.append(kind.get(d, 0))
        size = len(fs)

        # Stationarity merge-down: irrelevant loops at the bottom of a level sink into the
        # level below (through empty levels): the start of level L moves up past them.
        starts = [0]
        for L in range(1, n):
            q = bounds[L]
            while q < size and ks[q] == 2:
                q += 1
            starts.append(q)
        ends = starts[1:]
        ends.append(size)
        S = 1  # cycles an input stays at the MACs: the irrelevant loops at the very bottom
        q = 0
        while q < size and ks[q] == 2:
            S *= fs[q]
            q += 1

        cyc = []  # periods: loop products up to the top of each level
        top_ir = [1]  # per arch level: irrelevant loops at the top of memory level k-1
        top_r = [1]
        rt = [1]  # per arch level: product of the relevant temporal loops of memory level k-1
        t_any = [False]  # output: an irrelevant loop > 1 in memory level k-1
        t_prod = [1]  # output: their product
        output = o.output
        c = 1
        for L in range(n):
            lo, e = starts[L], ends[L]
            r = 1
            ir = 1
            any_ir = False
            for j in range(lo, e):
                f = fs[j]
                c *= f
                kj = ks[j]
                if kj == 1:
                    r *= f
                elif kj == 2:
                    ir *= f
                    if f > 1:
                        any_ir = True
            rt.append(r)
            cyc.append(c)
            t_any.append(any_ir)
            t_prod.append(ir)
            t = 1
            j = e - 1
            while j >= lo and ks[j] == 2:
                t *= fs[j]
                j -= 1
            top_ir.append(t)
            t = 1
            j = e - 1
            while j >= lo and ks[j] == 1:
                t *= fs[j]
                j -= 1
            top_r.append(t)
        if T is None:
            T = c
        elif c != T:
            raise ValueError(f"operand {o.name}: {c} temporal cycles, others {T}")
        top_rs[x] = top_r
        ce = [1] + cyc if output else [S] + cyc
        pr_op = bool(o.pr_axes)

        so = sp.ops[x]
        integral = so.integral
        per_variant = []
        flat_pr = None
        for v in ((0,) if integral else (0, 1)):
            su_rel = so.su_rel[v]
            # footprints D[k] per arch level: ZigZag's relevant-loop products per level (loops
            # in order, temporal then spatial), pr loops decoupled; cumulated, rounded
            D = [1]
            cabl = 1
            if pr_op:
                if flat_pr is None:  # per memory level: relevant (None, f) and pr (dim, f) loops
                    flat_loops = [loop for lv in levels for loop in lv]
                    flat_pr = [[(None if ks[j] == _R else flat_loops[j][0], fs[j])
                                for j in range(starts[L], ends[L]) if ks[j] in (_R, _PR)] for L in range(n)]
                cum = [[1, 1, 1] for _ in o.pr_axes]
                for k in range(1, n + 1):
                    r = 1
                    for d, f in flat_pr[k - 1]:
                        if d is None:
                            r *= f
                        else:
                            r *= _pr_step(o, cum, d, f)
                    for kd, d, f in su_rel[k - 1]:
                        if kd == _R:
                            r *= f
                        else:
                            r *= _pr_step(o, cum, d, f)
                    cabl *= r
                    D.append(round(cabl))
            else:
                for k in range(1, n + 1):
                    r = rt[k]
                    for _, _, f in su_rel[k - 1]:
                        r *= f
                    cabl *= r
                    D.append(round(cabl))
            boost = so.boost[v]
            links = []
            if not o.output:
                p = o.prec
                pd = None
                for m in range(n):
                    c0 = ce[m]
                    d0 = D[m]
                    tl = (d0 * boost[m], p, c0, T // c0, int(d0 * p / c0 * boost[m]), c0 // top_ir[m])
                    if m < n - 1:
                        c1 = ce[m + 1]
                        d1 = D[m + 1]
                        fh = (d1, p, c1, T // c1, int(d1 * p / c1), c1 // top_ir[m + 1])
                    else:  # the top level does not talk to the outside world
                        fh = None
                    links.append((tl, None, None, fh))
                if v == 0:
                    dmain[x] = (D, [p] * (n + 1))
                if v == 1 or integral:
                    dint1[x] = D[1] * p
            else:
                ir_any, ir_prod = so.ir_any[v], so.ir_prod[v]
                flag = [t_any[k] or ir_any[k] for k in range(n + 1)]
                psum = [any(flag[m + 1:]) for m in range(n)] + [False]
                irp = [t_prod[k] * ir_prod[k] for k in range(n + 1)]
                caal = [math.prod(irp[k:]) for k in range(n + 1)] + [1, 1]
                ps, fin = o.prec_psum, o.prec
                pd = [ps if f else fin for f in psum]
                size_elem = o.size_elem
                for m in range(n):
                    nz_low = int(size_elem * (caal[m + 1] - 1)) != 0  # quirk: precision by access count
                    c0 = ce[m]
                    d0 = D[m]
                    a_fl = int(d0 * boost[m])
                    bw_fl = int(d0 * pd[m] / c0 * boost[m])
                    w0 = c0 // top_ir[m]
                    n0 = T // c0
                    fl = (a_fl, ps if nz_low else fin, c0, n0, bw_fl, w0)
                    tl = (a_fl, ps if nz_low else 0, c0, n0, bw_fl, w0) if psum[m] else None
                    th = fh = None
                    if m < n - 1:
                        nz_high = int(size_elem * (caal[m + 2] - 1)) != 0
                        c1 = ce[m + 1]
                        d1 = D[m + 1]
                        bw_th = int(d1 * pd[m + 1] / c1)
                        w1 = c1 // top_ir[m + 1]
                        n1 = T // c1
                        th = (d1, ps if nz_high else fin, c1, n1, bw_th, w1)
                        if psum[m + 1]:
                            fh = (d1, ps if nz_high else 0, c1, n1, bw_th, w1)
                    links.append((tl, fl, th, fh))
                if v == 0:
                    dmain[x] = (D, pd)
                if v == 1 or integral:
                    dint1[x] = D[1] * pd[1]  # quirk: the precision of memory level 1
            per_variant.append(links)
        if integral:
            per_variant.append(per_variant[0])
        tlinks[x] = per_variant

    # -- energy: word accesses with the fractional mapping --
    mac_energy = ctx.unit_energy * ctx.macs
    mem_total = 0.0
    memory_energy = {}
    energy_dir = {}
    word_access = {}
    for o in ops:
        x = o.index
        ucount = sp.ops[x].unit_count
        per_level, per_dir, per_words = [], [], []
        bws, rcs, wcs = o.bw, o.r_cost, o.w_cost
        for m, lvl in enumerate(tlinks[x][0]):
            bw = bws[m]
            u = ucount[m + 1]
            words = [0, 0, 0, 0]
            for d in range(4):
                link = lvl[d]
                if link is None:
                    continue
                a, pr = link[0], link[1]
                if a == 0 or pr == 0:
                    continue
                b = bw[d]
                if b is None:
                    raise ValueError(f"memory {ctx.core.memories[o.mems[m]].name}: no port for "
                                     f"{o.mem_op} {DIRECTIONS[d]}")
                bmin, bmax = b
                words[d] = int(math.ceil(a * pr / bmin) * (bmin / bmax) * link[3] * u)
            rc, wc = rcs[m], wcs[m]
            e_tl, e_fl, e_th, e_fh = words[TL] * rc, words[FL] * wc, words[TH] * rc, words[FH] * wc
            total = (e_th + e_tl) + (e_fh + e_fl)
            mem_total += total
            per_level.append(total)
            per_dir.append({"rd_out_to_low": e_tl, "wr_in_by_low": e_fl, "rd_out_to_high": e_th,
                            "wr_in_by_high": e_fh})
            per_words.append({"rd_out_to_low": words[TL], "wr_in_by_low": words[FL],
                              "rd_out_to_high": words[TH], "wr_in_by_high": words[FH]})
        memory_energy[o.name] = tuple(per_level)
        energy_dir[o.name] = tuple(per_dir)
        word_access[o.name] = tuple(per_words)

    # -- double buffering: effective footprints (fractional mapping) against capacities --
    ind = []
    for o in ops:
        D, pd = dmain[o.index]
        top_r = top_rs[o.index]
        ind.append([(D[m + 1] * pd[m + 1] // top_r[m + 1]) / o.sizes_bits[m] for m in range(o.n)])
    shared = []
    for o in ops:
        row = ind[o.index][:]
        for m, group in enumerate(o.share):
            if group:
                row[m] = sum(ind[y][lv] for y, lv in group)
        shared.append(row)
    db = []
    for o in ops:
        x = o.index
        flags = [False]
        for m in range(o.n):
            if shared[x][m] <= 0.5:
                flags.append(True)
            elif ind[x][m] <= 1 - shared[x][m]:
                flags.append(True)
                for y, lv in o.share[m]:
                    shared[y][lv] += ind[x][m]
            else:
                flags.append(False)
        db.append(flags)

    # -- stall / slack per physical port (integer mapping) --
    ss_comb = 0
    active = []  # per port: its active functions (x, lv, d, real cycles, period count, avg bw, skip)
    for bw_max, _, functions in ctx.ports:
        acts = []
        port_active = []
        for x, lv, d, bmax, dbi, skip in functions:
            link = tlinks[x][1][lv][d]
            if link is None or link[3] == 0:
                continue
            real = math.ceil(link[0] * link[1] / bmax) if bmax else 0
            acts.append((real, link[2] if db[x][dbi] else link[5], link[2], link[3]))
            port_active.append((x, lv, d, real, link[3], link[4], skip))
        active.append(port_active)
        if not acts:
            continue
        if len(acts) == 1:
            r, a, _, count = acts[0]
            ss = (r - a) * (count - 1)
        else:
            pos = neg = win = 0
            for r, a, _, count in acts:
                s = (r - a) * (count - 1)
                if s > 0:
                    pos += s
                else:
                    neg += s
                win += a * (count - 1)
            ss = pos + max(0, neg + win - _window_union(acts))
        ss_comb = max(ss_comb, ss)

    # -- on-loading and off-loading --
    loading: dict = {}
    total_comp = T + ss_comb
    for (bw_max, two_inputs, _), port_active in zip(ctx.ports, active):
        once = []
        busy = 0
        for x, lv, d, real, count, bw_aver, skip in port_active:
            if skip:
                continue
            if count == 1:
                once.append((x, lv, d, real))
            else:
                busy += bw_aver
                loading[(x, lv, d)] = (real, two_inputs)
        if once:
            need = [w[3] for w in once]
            surplus = ((bw_max - busy) / bw_max) * total_comp
            if surplus > 0:
                floor = [math.ceil(dint1[w[0]] / bw_max) for w in once]
                need = _reduce_ordered(need, floor, surplus)
            for (x, lv, d, _), cycles in zip(once, need):
                loading[(x, lv, d)] = (cycles, two_inputs)

    individual, half, full = {}, {}, {}
    for x in ctx.inputs:
        individual[x] = half[x] = full[x] = 0
        for lv in range(ops[x].n - 1):
            c1, s1 = loading.get((x, lv, FH), (0, False))
            c2, s2 = loading.get((x, lv + 1, TL), (0, False))
            longest = max(c1, c2)
            if s1 and s2:
                full[x] += longest
            elif not s1 and not s2:
                individual[x] += longest
            else:
                half[x] = longest  # quirk: ZigZag overwrites here
    if len(ctx.inputs) == 1:
        onloading = individual[ctx.inputs[0]]  # quirk: only the separate part
    elif len(ctx.inputs) >= 2:
        a, b = ctx.inputs[0], ctx.inputs[1]
        onloading = min(full[a] + max(full[b] + half[b] + individual[b], half[a] + individual[a]),
                        full[b] + max(full[a] + half[a] + individual[a], half[b] + individual[b]))
    else:
        onloading = 0
    out = ctx.out
    offloading = 0
    for lv in range(ops[out].n - 1):
        offloading += max(loading.get((out, lv, TH), (0,))[0], loading.get((out, lv + 1, FL), (0,))[0])

    ideal_cycle = math.ceil(ctx.macs / ctx.units)
    lat0 = T + ss_comb
    lat1 = lat0 + onloading
    footprint = {}
    for o in ops:
        D, pd = dmain[o.index]
        # each memory level at its own precision (ZigZag's data_bit_per_level_unrolled is
        # shifted by one level for the output)
        footprint[o.name] = tuple(int(D[m + 1] * (pd[m] if o.output else o.prec)) for m in range(o.n))
    return CostBreakdown(
        energy_total=mem_total + mac_energy,
        mac_energy=mac_energy,
        memory_energy=memory_energy,
        energy_per_direction=energy_dir,
        word_accesses=word_access,
        ideal_cycle=ideal_cycle,
        ideal_temporal_cycle=T,
        stall_slack=ss_comb,
        onloading=onloading,
        offloading=offloading,
        latency_total0=lat0,
        latency_total1=lat1,
        latency_total2=lat1 + offloading,  # our arrays have no systolic dims: no drain term
        footprint_bits=footprint,
        spatial_utilization=ideal_cycle / T,
        port_bandwidth=_port_bandwidth(ctx, ops, tlinks),
    )


_DIR_NAMES = ("tl", "fl", "th", "fh")  # the order of DIRECTIONS, in port-allocation names


def _port_bandwidth(ctx: Context, ops, tlinks) -> dict:
    """Average and peak demand per (memory, port), from the integer-mapping transfers."""
    out: dict = {}
    for o in ops:
        for m, level in enumerate(tlinks[o.index][-1]):
            memory = ctx.core.memories[o.mems[m]]
            for d, link in enumerate(level):
                if link is None or link[0] == 0 or link[1] == 0:
                    continue
                port = memory.port_for(o.mem_op, _DIR_NAMES[d])
                bits = link[0] * link[1]
                key = (memory.name, port.name if port else "?")
                avg, peak = out.get(key, (0.0, 0.0))
                out[key] = (avg + bits / link[2], peak + bits / max(link[5], 1))
    return out


def _window_union(acts: list) -> int:
    """Length of the union of the memory-updating windows of the links sharing one port, over
    the whole computation. Each link (real, allowed, period, count) may update during the first
    ``allowed`` cycles of each of its periods."""
    for _, a, p, c in acts:
        if p == a:
            return p * c
    groups: dict[int, int] = {}
    pmax, pc = 0, 0
    for _, a, p, c in acts:
        groups[p] = max(groups.get(p, 0), a)
        if p > pmax:
            pmax, pc = p, c
    periods = sorted(groups)
    if any(periods[i + 1] % periods[i] for i in range(len(periods) - 1)):
        # not a loop-prefix chain (ZigZag's numpy reshape would fail here): count directly
        covered = bytearray(pmax)
        for p, a in groups.items():
            for start in range(0, pmax, p):
                end = min(start + a, pmax)
                covered[start:end] = b"\x01" * (end - start)
        return sum(covered) * pc
    chain = [(p, groups[p]) for p in periods]

    def uncovered(x: int, j: int) -> int:
        """Cycles in [0, x) outside the windows of the j shortest-period groups."""
        if j == 0 or x <= 0:
            return max(x, 0)
        p = chain[j - 1][0]
        q, r = divmod(x, p)
        return q * within(p, j) + within(r, j)

    def within(y: int, j: int) -> int:  # y <= period of group j
        a = chain[j - 1][1]
        if y <= a:
            return 0
        return uncovered(y, j - 1) - uncovered(a, j - 1)

    return (pmax - uncovered(pmax, len(chain))) * pc


def _reduce_ordered(need: list, floor: list, s: float) -> list:
    """ZigZag's reduce_ordered: take up to ``s`` cycles off the largest needs first, none
    below its floor."""
    if s <= 0 or not need:
        return list(need)
    if len(need) == 1:
        return [need[0] - min(max(0.0, need[0] - floor[0]), s)]
    order = sorted(range(len(need)), key=lambda i: need[i], reverse=True)
    out = list(need)
    for i in order:
        if s <= 0:
            break
        cut = min(max(0.0, need[i] - floor[i]), s)
        out[i] = need[i] - cut
        s -= cut
    return out
