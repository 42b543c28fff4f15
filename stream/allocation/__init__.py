"""Decide which core runs each compute node.

The unit of allocation is an inter-core piece: all intra-core tiles of a piece run on
one core, in order. Pieces the mapping pins go to their cores. Methods:

* ``greedy``: every other piece goes, in topological order, to the candidate core where
  its tiles would finish first (list scheduling on cost-table latencies, ignoring
  transfers; ties to the lowest core id);
* ``fixed``: the mapping decides everything: each piece must be pinned
  (``core_allocation_is_fixed``, or a single core) or have one candidate core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.cost import CostTable
from stream.errors import StreamError
from stream.tiling import CNGraph

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


def allocate(cngraph: CNGraph, costs: CostTable, method: str = "greedy") -> Allocation:
    if method not in METHODS:
        raise ValueError(f"allocator must be one of {METHODS}, got {method!r}")
    g = cngraph
    core_of = np.full(g.num_cns, -1, dtype=np.int32)
    finish = np.zeros(g.num_cns, dtype=np.int64)
    core_free: dict[int, int] = {}
    for cns in pieces(g):
        plan = g.plans[g.layer_of(int(cns[0])).name]
        options = plan.candidates if plan.pinned is None else (plan.pinned[int(g.piece[cns[0]])],)
        if method == "fixed" and len(options) != 1:
            raise StreamError(f"allocator 'fixed': layer {plan.layer!r} may run on cores {list(options)}; "
                              "pin it in the mapping (one core, or core_allocation_is_fixed with one core "
                              "per piece) or use another allocator")
        best = None
        for core_id in options:
            t = core_free.get(core_id, 0)
            ends = []
            for cn in cns.tolist():
                preds = g.edge_src[g.in_ptr[cn]:g.in_ptr[cn + 1]]
                ready = int(finish[preds].max()) if preds.size else 0
                t = max(t, ready) + costs.get(cn, core_id).latency_cycles
                ends.append(t)
            if best is None or t < best[0]:
                best = (t, core_id, ends)
        end, core_id, ends = best
        core_of[cns] = core_id
        finish[cns] = ends
        core_free[core_id] = end
    return Allocation(core_of, method, int(finish.max()) if g.num_cns else 0)
