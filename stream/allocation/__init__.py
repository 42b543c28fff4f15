"""Decide which core runs each compute node.

The unit of allocation is an inter-core piece: all intra-core tiles of a piece run on
one core, in order. Pieces the mapping pins go to their cores. Methods:

* ``greedy``: every other piece goes, in topological order, to the candidate core where
  its tiles would finish first (list scheduling on cost-table latencies and, given the
  accelerator, the transfers into that core without contention; ties to the lowest core id);
* ``fixed``: the mapping decides everything: each piece must be pinned
  (``core_allocation_is_fixed``, or a single core) or have one candidate core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.cost import CostTable
from stream.errors import StreamError
from stream.hardware.ir import Accelerator
from stream.hardware.routes import Routes
from stream.tiling import CNGraph
from stream.tiling.csr import concatenated_ranges

METHODS = ("greedy", "fixed")


@dataclass(frozen=True, eq=False)
class Allocation:
    core: np.ndarray  # (n,) int32: core id per CN
    method: str
    estimated_latency_cycles: int  # the allocator's own estimate; the simulator decides

    def __getitem__(self, cn: int) -> int:
        return int(self.core[cn])


def pieces(cngraph: CNGraph) -> list[np.ndarray]:
    """CN ids of every inter-core piece, pieces in topological order, tiles in order."""
    out = []
    for grid in cngraph.grids:
        cns = np.arange(grid.first, grid.first + grid.count)
        piece = cngraph.piece[cns]
        order = np.argsort(piece, kind="stable")
        bounds = np.flatnonzero(np.diff(piece[order])) + 1
        out += np.split(cns[order], bounds)
    return out


def allocate(cngraph: CNGraph, costs: CostTable, method: str = "greedy",
             accelerator: Accelerator | None = None) -> Allocation:
    """Choose a core per inter-core piece; ``accelerator`` (its links and DRAM) lets the
    estimate include the transfers into each candidate core."""
    if method not in METHODS:
        raise ValueError(f"allocator must be one of {METHODS}, got {method!r}")
    g = cngraph
    core_of = np.full(g.num_cns, -1, dtype=np.int64)
    finish = np.zeros(g.num_cns, dtype=np.int64)
    core_free: dict[int, int] = {}
    transfers = _Transfers(g, accelerator) if accelerator is not None else None
    for cns in pieces(g):
        plan = g.plans[g.layer_of(int(cns[0])).name]
        options = plan.candidates if plan.pinned is None else (plan.pinned[int(g.piece[cns[0]])],)
        if method == "fixed" and len(options) != 1:
            raise StreamError(f"allocator 'fixed': layer {plan.layer!r} may run on cores {list(options)}; "
                              "pin it in the mapping (one core, or core_allocation_is_fixed with one core "
                              "per piece) or use another allocator")
        edges = concatenated_ranges(g.in_ptr[cns], np.diff(g.in_ptr)[cns])
        owner = np.repeat(np.arange(cns.size), np.diff(g.in_ptr)[cns])  # position in the piece per edge
        preds = g.edge_src[edges]
        inside = core_of[preds] < 0  # producers in this piece (partial-sum chains): known as we go
        best = None
        for core_id in options:
            latency = np.array([costs.get(cn, core_id).latency_cycles for cn in cns.tolist()], dtype=np.int64)
            arrive = finish[preds]
            if transfers is not None:
                arrive = arrive + transfers.cycles(core_of[preds], core_id, edges)
            ready = np.zeros(cns.size, dtype=np.int64)
            np.maximum.at(ready, owner[~inside], arrive[~inside])
            ends = _list_schedule(core_free.get(core_id, 0), ready, latency, owner[inside], preds[inside], cns)
            if best is None or ends[-1] < best[0]:
                best = (int(ends[-1]), core_id, ends)
        end, core_id, ends = best
        core_of[cns] = core_id
        finish[cns] = ends
        core_free[core_id] = end
    return Allocation(core_of.astype(np.int32), method, int(finish.max()) if g.num_cns else 0)


def _list_schedule(free: int, ready: np.ndarray, latency: np.ndarray, owner: np.ndarray, preds: np.ndarray,
                   cns: np.ndarray) -> np.ndarray:
    """End of each CN of a piece run in order on one core free from ``free``:
    end[i] = max(end[i-1], ready[i]) + latency[i]. ``owner``/``preds``: edges from CNs of
    the same piece, which make a CN also wait for an earlier one of the piece."""
    if owner.size:  # a chain inside the piece: walk it
        position = {cn: i for i, cn in enumerate(cns.tolist())}
        ends = np.empty(cns.size, dtype=np.int64)
        waits = [[] for _ in range(cns.size)]
        for i, p in zip(owner.tolist(), preds.tolist()):
            waits[i].append(position[p])
        t = free
        for i in range(cns.size):
            start = max([t, int(ready[i])] + [int(ends[j]) for j in waits[i]])
            t = ends[i] = start + int(latency[i])
        return ends
    # without one, in closed form: end[i] = S[i] + max(free, max over j <= i of ready[j] - S[j-1])
    total = np.cumsum(latency)
    before = total - latency
    return total + np.maximum(free, np.maximum.accumulate(ready - before))


class _Transfers:
    """Cycles an input edge takes to reach a candidate core, without contention: nothing
    on the same core (or a memory it shares), bits / route bandwidth between cores, and
    through DRAM (written, then read) when producer and consumer are in different groups."""

    def __init__(self, g: CNGraph, acc: Accelerator):
        routes = Routes(acc)
        ids = acc.core_ids
        size = max(ids) + 1
        share = np.arange(size)
        for cores in acc.memory_sharing:
            share[list(cores)] = min(cores)
        self.bandwidth = np.full((size, size), np.inf)
        for a in ids:
            for b in ids:
                if share[a] != share[b]:
                    self.bandwidth[a, b] = routes.bandwidth(a, b)
        self.dram = acc.offchip_core_id
        self.g = g
        self.via = g.group[g.edge_src] != g.group[g.edge_dst]

    def cycles(self, producer_cores: np.ndarray, core: int, edges: np.ndarray) -> np.ndarray:
        bits = self.g.edge_bits[edges].astype(np.float64)
        direct = np.ceil(bits / self.bandwidth[producer_cores, core])
        if self.dram is None:
            return direct.astype(np.int64)
        through_dram = np.ceil(bits / self.bandwidth[producer_cores, self.dram]) + np.ceil(
            bits / self.bandwidth[self.dram, core])
        return np.where(self.via[edges], through_dram, direct).astype(np.int64)
