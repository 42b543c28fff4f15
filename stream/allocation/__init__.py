"""Decide which core runs each compute node.

Skeleton (issue 2): pieces the mapping pins go to their cores; every other CN goes,
in topological order, to the candidate core where it would finish first (list
scheduling on cost-table latencies, ignoring transfers; ties to the lowest core id).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.cost import CostTable
from stream.tiling import CNGraph

METHODS = ("greedy",)


@dataclass(frozen=True, eq=False)
class Allocation:
    core: np.ndarray  # (n,) int32: core id per CN
    method: str
    estimated_latency_cycles: int  # the allocator's own estimate; the simulator decides

    def __getitem__(self, cn: int) -> int:
        return int(self.core[cn])


def allocate(cngraph: CNGraph, costs: CostTable, method: str = "greedy") -> Allocation:
    if method not in METHODS:
        raise ValueError(f"allocator must be one of {METHODS}, got {method!r}")
    n = cngraph.num_cns
    core_of = np.full(n, -1, dtype=np.int32)
    finish = np.zeros(n, dtype=np.int64)
    core_free: dict[int, int] = {}
    for cn in range(n):  # CNs are numbered in a topological order
        plan = cngraph.plans[cngraph.layer_of(cn).name]
        ready = max((int(finish[cngraph.edge_src[e]]) for e in cngraph.inputs(cn)), default=0)
        if plan.pinned is not None:
            options = (plan.pinned[int(cngraph.piece[cn])],)
        else:
            options = plan.candidates
        best = None
        for core_id in options:
            start = max(ready, core_free.get(core_id, 0))
            end = start + costs.get(cn, core_id).latency_cycles
            if best is None or end < best[0]:
                best = (end, core_id)
        finish[cn], core_of[cn] = best
        core_free[best[1]] = best[0]
    return Allocation(core_of, method, int(finish.max()) if n else 0)
