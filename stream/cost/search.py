"""Mapping search: the best spatial and temporal mapping of a layer tile on a core.

* Spatial: the core's fixed ``dataflows`` when given (clipped to the array and the layer,
  with ZigZag's fractional unrolling ``N / ceil(N / f)``); otherwise the assignment of loop
  dims to array dims with the highest utilisation.
* Temporal: the loops left after unrolling are split into prime factors (merged to at most
  ``lpf_limit`` as ZigZag's LOMA does); an ordering of the factors (innermost first) is
  cut into memory levels per operand by ZigZag's allocator (as many loops as fit, the
  combination that minimises refills of the level above). Orderings come from the three
  textbook stationarities, an exhaustive pass over the few largest factors, and a seeded
  simulated annealing over all factors (SALSA-style swaps).
* Every candidate is costed by :mod:`stream.cost.zigzag_model` (ZigZag's equations).

Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache

from stream.cost.mapping import CostBreakdown, SpatialMapping, TemporalMapping
from stream.errors import StreamError
from stream.hardware.ir import Core
from stream.workload.ir import Layer

OBJECTIVES = ("energy", "latency", "edp")
DEFAULT_LINKS = {"O": "O", "W": "I2", "I": "I1"}


class NoValidMapping(Exception):
    """No ordering fits the core's memories (the tile is too large for the core)."""


@dataclass(frozen=True)
class SearchResult:
    cost: CostBreakdown
    spatial: SpatialMapping
    temporal: TemporalMapping
    evaluated: int  # mappings costed


def score(cost: CostBreakdown, objective: str) -> float:
    """What the search minimises. Latency is ZigZag's ``latency_total2``: with the on- and
    off-loading between the core's top memory and the array (the simulator moves data into
    and out of the top memory itself)."""
    if objective == "energy":
        return cost.energy_total
    latency = cost.latency_total2
    return latency if objective == "latency" else cost.energy_total * latency


# -- spatial ---------------------------------------------------------------------------


def spatial_mapping(core: Core, layer: Layer, sizes: dict[str, int], links: dict[str, str] | None = None) -> SpatialMapping:
    """The core's dataflow clipped to this tile, or the best-utilised unrolling.

    As ZigZag: a factor is clipped to the array dim, the loop size and, on the array dims
    an innermost memory serves, to how many elements of a relevant operand its port moves
    per cycle; then a factor that does not divide the loop becomes fractional.
    """
    array = dict(zip(core.array.dims, core.array.sizes))
    limits = _bandwidth_limits(core, layer, links or DEFAULT_LINKS)
    if core.dataflows:
        wanted = layer_dataflows(core, layer)
    else:
        wanted = _search_unrolling(array, sizes, limits)
    unrolling = []
    for adim, entries in wanted:
        room, chosen = array.get(adim, 1), []
        for dim, factor in entries:
            n = sizes.get(dim, 1)
            f = min(factor, n, room, limits.get((adim, dim), n))
            if f <= 1:
                continue
            fractional = n / math.ceil(n / f)  # ZigZag's greedy unrolling: OX=7 on 4 lanes -> 3.5
            chosen.append((dim, fractional if fractional != int(fractional) else int(fractional)))
            room = max(1, room // f)
        if chosen:
            unrolling.append((adim, tuple(chosen)))
    return SpatialMapping(tuple(unrolling))


def layer_dataflows(core: Core, layer: Layer) -> list[tuple[str, list[tuple[str, int]]]]:
    """The core's ``dataflows`` in the layer's own dim names.

    A dataflow may name a dim by any of the layer's names (the field's ``K`` of a 4-D
    elementwise layer is its last axis, ``OX``: KULeuven-MICAS/stream's SIMD cores unroll
    ``K, 64`` over it); a name the layer does not have unrolls nothing."""
    return [(adim, [(layer.resolve_dim(dim), factor) for dim, factor in entries if layer.has_dim(dim)])
            for adim, entries in core.dataflows]


def _bandwidth_limits(core: Core, layer: Layer, links: dict[str, str]) -> dict[tuple[str, str], int]:
    """(array dim, loop dim) -> most elements an innermost memory can multicast per cycle."""
    limits: dict[tuple[str, str], int] = {}
    operands = {op.name: op for op in layer.operands}
    for i, memory in enumerate(core.memories):
        below = core.memories[:i]
        if any(set(m.operands) & set(memory.operands) for m in below):
            continue  # not an innermost memory: another memory sits below it
        for op_name, mem_op in links.items():
            op = operands.get(op_name)
            if op is None or mem_op not in memory.operands or op.precision <= 0:
                continue
            is_output = op_name == layer.output.name
            port = memory.port_for(mem_op, "fl" if is_output else "tl")
            if port is None:
                continue
            precision = (op.partial_precision or op.precision) if is_output else op.precision
            relevance = layer.relevance(op_name)
            for adim in memory.served_dimensions:
                for dim in layer.dims:
                    if relevance.get(dim) != "ir":
                        cap = int(port.bw_max // precision)
                        limits[(adim, dim)] = min(limits.get((adim, dim), cap), cap)
    return limits


def _search_unrolling(array: dict[str, int], sizes: dict[str, int], limits: dict[tuple[str, str], int]):
    """One loop dim per array dim, distinct, maximising the product of clipped factors."""
    dims = [d for d, n in sizes.items() if n > 1]
    best, best_util = [], 0.0
    adims = list(array)

    def walk(i: int, used: set, chosen: list, util: float):
        nonlocal best, best_util
        if i == len(adims):
            if util > best_util:
                best, best_util = list(chosen), util
            return
        walk(i + 1, used, chosen, util)  # leave this array dim idle
        for d in dims:
            if d not in used:
                # a port narrower than one element (32-bit data, 16-bit port) unrolls nothing
                f = max(1, min(array[adims[i]], sizes[d], limits.get((adims[i], d), sizes[d])))
                eff = sizes[d] / math.ceil(sizes[d] / f)
                walk(i + 1, used | {d}, chosen + [(adims[i], [(d, f)])], util * eff)

    walk(0, set(), [], 1.0)
    return best


# -- temporal --------------------------------------------------------------------------


def prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def loop_factors(temporal_sizes: dict[str, int], lpf_limit: int) -> list[tuple[str, int]]:
    """Prime factors of the temporal loops, merged (LOMA's rule) down to ``lpf_limit``."""
    per_dim = {d: prime_factors(n) for d, n in temporal_sizes.items() if n > 1}
    while sum(len(f) for f in per_dim.values()) > lpf_limit:
        dim = max(per_dim, key=lambda d: (len(per_dim[d]), d))
        if len(per_dim[dim]) < 2:
            break
        factors = sorted(per_dim[dim])
        per_dim[dim] = sorted([factors[0] * factors[1]] + factors[2:])
    return [(d, f) for d in sorted(per_dim) for f in per_dim[d]]


def multiset_permutations(items: list) -> list[tuple]:
    """Distinct orderings of ``items`` (equal items are interchangeable)."""
    items = sorted(items)
    out, n = [], len(items)
    used = [False] * n
    current: list = []

    def walk():
        if len(current) == n:
            out.append(tuple(current))
            return
        previous = None
        for i in range(n):
            if used[i] or items[i] == previous:
                continue
            previous = items[i]
            used[i] = True
            current.append(items[i])
            walk()
            current.pop()
            used[i] = False

    walk()
    return out


class _Context:
    """What the allocator needs for one (core, layer tile, spatial mapping)."""

    def __init__(self, core: Core, layer: Layer, sizes: dict[str, int], spatial: SpatialMapping, links: dict[str, str]):
        self.core, self.layer, self.sizes = core, layer, sizes
        self.ops = [op.name for op in layer.operands if op.name in links]  # pooling's 0-bit W too, as ZigZag
        self.links = {op: links[op] for op in self.ops}
        self.axes = {op.name: op.axes for op in layer.operands}
        out = layer.output
        self.output = out.name
        self.precision = {op.name: op.precision for op in layer.operands}
        self.psum_precision = out.partial_precision or out.precision
        self.out_ir = {d for d, r in layer.relevance(out.name).items() if r == "ir"}
        # memory levels per operand, bottom-up, and the spatial loops at each arch level
        self.levels = {op: [i for i, m in enumerate(core.memories) if self.links[op] in m.operands] for op in self.ops}
        self.spatial_at: dict[str, list[list[tuple[str, float]]]] = {}
        for op in self.ops:
            levels = self.levels[op]
            per_arch = [[] for _ in range(len(levels) + 1)]
            for adim, entries in spatial.unrolling:
                arch = next((k for k, m in enumerate(levels) if adim in core.memories[m].served_dimensions),
                            len(levels))
                per_arch[arch] += list(entries)
            self.spatial_at[op] = per_arch

        self._memo: dict[tuple, int] = {}

    def bits(self, op: str, dims: dict[str, float], precision: int) -> int:
        """Footprint of ``op`` over loops of these sizes, in bits (memoised: orderings share prefixes)."""
        key = (op, precision, tuple(sorted((d, int(n)) for d, n in dims.items() if n > 1)))
        size = self._memo.get(key)
        if size is None:
            spans = dict(key[2])
            size = 1
            for axis in self.axes[op]:
                size *= axis.distinct({d: spans.get(d, 1) for d in axis.dims})
            size *= precision
            self._memo[key] = size
        return size


def allocate(ctx: _Context, ordering: tuple[tuple[str, int], ...]) -> TemporalMapping | None:
    """ZigZag's allocator: cut ``ordering`` into memory levels per operand; None if it does not fit."""
    unallocated = {op: list(ordering) for op in ctx.ops}
    allocated = {op: {} for op in ctx.ops}
    for op in ctx.ops:
        for dim, f in ctx.spatial_at[op][0]:
            allocated[op][dim] = allocated[op].get(dim, 1) * f
    arch_level = {op: 1 for op in ctx.ops}
    result: dict[str, list[tuple[tuple[str, int], ...]]] = {op: [] for op in ctx.ops}
    tops = {op: ctx.levels[op][-1] for op in ctx.ops}
    for m, memory in enumerate(ctx.core.memories):
        ops = [op for op in ctx.ops if ctx.links[op] in memory.operands]
        if not ops:
            continue
        capacity = memory.size_bits
        options = []
        for op in ops:
            precision = ctx.precision[op]
            if op == ctx.output:
                pending = {d for d, _ in unallocated[op]}
                for level in ctx.spatial_at[op][arch_level[op]:]:
                    pending |= {d for d, _ in level}
                precision = ctx.psum_precision if pending & ctx.out_ir else ctx.precision[op]
            sizes, dims = [], dict(allocated[op])
            for i in range(len(unallocated[op]) + 1):
                if i:
                    d, f = unallocated[op][i - 1]
                    dims[d] = dims.get(d, 1) * f
                size = ctx.bits(op, dims, precision)
                if size > capacity:
                    if i == 0:
                        return None
                    break
                sizes.append(size)
            if m == tops[op]:
                if len(sizes) != len(unallocated[op]) + 1:
                    return None  # the top level must hold everything left
                choices = [(len(sizes) - 1, sizes[-1], 0)]
            else:
                choices = [(i, s, math.prod(f for _, f in unallocated[op][i:]) * s) for i, s in enumerate(sizes)]
            options.append(choices)
        best, best_access = None, math.inf
        for combo in _product(options):
            if sum(s for _, s, _ in combo) > capacity:
                continue
            access = sum(a for _, _, a in combo)
            if access <= best_access:  # ties: the later (larger) combination, as ZigZag
                best, best_access = combo, access
        if best is None:
            return None
        for op, (idx, _, _) in zip(ops, best):
            loops = unallocated[op][:idx]
            del unallocated[op][:idx]
            result[op].append(tuple(loops))
            for d, f in loops:
                allocated[op][d] = allocated[op].get(d, 1) * f
            for d, f in ctx.spatial_at[op][arch_level[op]]:
                allocated[op][d] = allocated[op].get(d, 1) * f
            arch_level[op] += 1
    return TemporalMapping(tuple((op, tuple(result[op])) for op in ctx.ops))


def _product(options):
    if not options:
        yield ()
        return
    for head in options[0]:
        for rest in _product(options[1:]):
            yield (head,) + rest


def stationary_orderings(ctx: _Context, factors: list[tuple[str, int]]) -> list[tuple]:
    """Output-, weight- and input-stationary orders: the operand's irrelevant loops innermost."""
    out = []
    for op in ctx.ops:
        relevance = ctx.layer.relevance(op)
        inner = [f for f in factors if relevance.get(f[0]) == "ir"]
        outer = [f for f in factors if relevance.get(f[0]) != "ir"]
        out.append(tuple(sorted(inner, key=lambda f: -f[1]) + sorted(outer, key=lambda f: -f[1])))
    return out


def pinned_ordering(ordering, temporal_sizes: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """A user's loop order (innermost first) as loops of this tile.

    ``(dim, None)`` is the dim's whole temporal loop; sized entries must multiply to it.
    Loops the order does not name are put outermost (largest first).
    """
    out, named = [], {}
    for dim, size in ordering:
        if dim not in temporal_sizes:
            continue  # a dim this tile does not loop over
        if size is None:
            out.append((dim, temporal_sizes[dim]))
            named[dim] = temporal_sizes[dim]
        else:
            out.append((dim, size))
            named[dim] = named.get(dim, 1) * size
    for dim, size in named.items():
        if size != temporal_sizes[dim]:
            raise StreamError(f"temporal_ordering: the {dim} loops multiply to {size}, but the tile has "
                              f"{temporal_sizes[dim]} {dim} iterations left after unrolling (name the dim alone "
                              "for its whole loop)")
    rest = sorted(((d, n) for d, n in temporal_sizes.items() if d not in named and n > 1), key=lambda x: -x[1])
    return tuple((d, n) for d, n in out if n > 1) + tuple(rest)


def search(core: Core, layer: Layer, sizes: dict[str, int] | None = None, objective: str = "energy",
           seed: int = 0, links: dict[str, str] | None = None, lpf_limit: int = 6,
           anneal_iterations: int = 300, ordering=None) -> SearchResult:
    """Best mapping found for ``layer`` (tile ``sizes``) on ``core`` under ``objective``.

    ``ordering`` pins the loop order (see :func:`pinned_ordering`): only the allocation of
    that order to the memory levels is then left to decide.
    """
    from stream.cost.zigzag_model import evaluate_prepared, prepare

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    sizes = dict(zip(layer.dims, layer.sizes)) if sizes is None else dict(sizes)
    links = {op: mem for op, mem in (links or DEFAULT_LINKS).items()}
    spatial = spatial_mapping(core, layer, sizes, links)
    unroll = spatial.factors()
    temporal_sizes = {d: math.ceil(n / unroll.get(d, 1)) for d, n in sizes.items()}
    ctx = _Context(core, layer, sizes, spatial, links)
    prepared = prepare(core, layer, sizes, links)
    seen: dict[tuple, float] = {}
    best: list = [None, math.inf, None]
    evaluated = 0

    def cost_of(ordering: tuple) -> float:
        nonlocal evaluated
        if ordering in seen:
            return seen[ordering]
        temporal = allocate(ctx, ordering)
        value = math.inf
        if temporal is not None:
            cost = evaluate_prepared(prepared, spatial, temporal)
            evaluated += 1
            value = score(cost, objective)
            if value < best[1] or (value == best[1] and best[0] is None):
                best[:] = [cost, value, temporal]
        seen[ordering] = value
        return value

    if ordering:
        try:
            pinned = pinned_ordering(ordering, temporal_sizes)
        except StreamError as exc:
            raise StreamError(f"layer {layer.name} on core {core.name}: {exc}") from None
        cost_of(pinned)
        if best[0] is None:
            raise NoValidMapping(f"the pinned temporal_ordering of layer {layer.name} does not fit core {core.name}")
        return SearchResult(best[0], spatial, best[2], evaluated)
    factors = loop_factors(temporal_sizes, lpf_limit)
    for ordering in stationary_orderings(ctx, factors):
        cost_of(ordering)
    for ordering in _limited_permutations(tuple(factors), 720):
        cost_of(ordering)
    _anneal(loop_factors(temporal_sizes, 64), cost_of, best, random.Random(seed), anneal_iterations)
    if best[0] is None:
        raise NoValidMapping(f"no loop ordering of layer {layer.name} fits the memories of core {core.name}")
    return SearchResult(best[0], spatial, best[2], evaluated)


@lru_cache(maxsize=256)
def _limited_permutations(factors: tuple, limit: int) -> tuple:
    """All orderings when there are at most ``limit`` of them, else none (annealing covers it)."""
    counts: dict = {}
    for f in factors:
        counts[f] = counts.get(f, 0) + 1
    total = math.factorial(len(factors))
    for c in counts.values():
        total //= math.factorial(c)
    return tuple(multiset_permutations(list(factors))) if total <= limit else ()


def _anneal(factors: list, cost_of, best: list, rng: random.Random, iterations: int) -> None:
    """SALSA-style annealing: swap two loop factors, accept by exp((E_cur/E_new - 1)/T)."""
    if len(factors) < 2 or iterations <= 0:
        return
    current = tuple(sorted(factors, key=lambda f: -f[1]))
    current_cost = cost_of(current)
    for it in range(iterations):
        i, j = rng.sample(range(len(current)), 2)
        if current[i] == current[j]:
            continue
        candidate = list(current)
        candidate[i], candidate[j] = candidate[j], candidate[i]
        candidate = tuple(candidate)
        new_cost = cost_of(candidate)
        temperature = 0.05 * 0.995 ** it
        if new_cost < current_cost or (math.isfinite(new_cost) and math.isfinite(current_cost)
                                       and rng.random() < math.exp((current_cost / new_cost - 1) / temperature)):
            current, current_cost = candidate, new_cost
