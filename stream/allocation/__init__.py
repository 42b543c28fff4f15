"""Decide which core runs each compute node.

The unit of allocation is an inter-core piece: all intra-core tiles of a piece run on
one core, in order. Pieces the mapping pins go to their cores; a core only receives the
layers the mapping (or the hardware's operator types) lets it run. Methods:

* ``cpsat`` (default): OR-Tools CP-SAT over coarse tasks (pieces x chunks of the fused
  dimension), warm-started from ``greedy`` (:mod:`stream.allocation.cpsat`);
* ``greedy``: HEFT-style list scheduling on cost-table latencies and contention-free
  transfer times (:mod:`stream.allocation.greedy`);
* ``genetic``: NSGA-II with the simulator as fitness (:mod:`stream.allocation.genetic`);
* ``fixed``: the mapping decides everything: each piece must be pinned
  (``core_allocation_is_fixed``, or a single core) or have one candidate core.

Every allocation is judged by the simulator: given ``evaluate`` (simulated latency and
energy of an allocation), ``cpsat`` simulates its answer, the last few other solutions
its search found and its warm start, keeps the best on the objective, and says which in
its statistics (``kept``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from stream.cost import CostTable
from stream.errors import StreamError
from stream.hardware.ir import Accelerator
from stream.allocation.cpsat import solve
from stream.allocation.genetic import nsga2
from stream.allocation.greedy import heft
from stream.allocation.tasks import Tasks, build_tasks, pieces, schedule
from stream.tiling import CNGraph

METHODS = ("cpsat", "greedy", "genetic", "fixed")
OBJECTIVES = ("latency", "energy", "edp", "weighted")


@dataclass(frozen=True)
class AllocationSettings:
    """How the optimising allocators search.

    ``objective``: what ``cpsat`` and ``genetic`` minimise; ``weighted`` is
    ``latency_weight * latency / latency_ref + (1 - latency_weight) * energy / energy_ref``
    with the greedy allocation's values as references. ``time_limit_s``: the search's budget.
    With one worker (the default) CP-SAT's budget is deterministic work worth about that
    many seconds, so the same inputs give the same answer on any machine; more workers
    search in parallel against the wall clock, faster but not reproducibly. ``genetic``
    stops after ``generations`` or at the wall-clock limit, whichever comes first; ``chunks``: tasks per piece in the CP-SAT model; ``strict_capacity``:
    weights that cannot stay resident on their cores are an error rather than a note
    (they stream from DRAM).
    """

    objective: str = "latency"
    latency_weight: float = 0.5
    time_limit_s: float = 10.0
    workers: int = 1
    seed: int = 0
    chunks: int = 4
    population: int = 16
    generations: int = 30
    strict_capacity: bool = False

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"allocation objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not 0.0 <= self.latency_weight <= 1.0:
            raise ValueError(f"latency_weight must be in [0, 1], got {self.latency_weight}")
        for name in ("time_limit_s", "workers", "chunks", "population", "generations"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**31:
            raise ValueError(f"seed must be from 0 to 2**31 - 1, got {self.seed}")

    def score(self, latency: float, energy: float, reference: tuple[float, float] = (1.0, 1.0)) -> float:
        """The objective's value for a (latency cycles, energy pJ) pair; lower is better."""
        if self.objective == "latency":
            return float(latency)
        if self.objective == "energy":
            return float(energy)
        if self.objective == "edp":
            return float(latency) * float(energy)
        w = self.latency_weight
        return w * latency / max(reference[0], 1.0) + (1 - w) * energy / max(reference[1], 1e-12)


@dataclass(frozen=True, eq=False)
class Allocation:
    core: np.ndarray  # (n,) int32: core id per CN
    method: str
    estimated_latency_cycles: int  # the allocator's own estimate; the simulator decides
    stats: dict = field(default_factory=dict)  # the search's statistics (solver status, gap, ...)
    notes: tuple[str, ...] = ()  # what the user should know about the allocation

    def __getitem__(self, cn: int) -> int:
        return int(self.core[cn])


Evaluate = Callable[[np.ndarray], tuple[int, float]]  # core per CN -> simulated (latency, energy)


def allocate(cngraph: CNGraph, costs: CostTable, accelerator: Accelerator, method: str = "cpsat",
             settings: AllocationSettings | None = None, evaluate: Evaluate | None = None,
             progress=None) -> Allocation:
    """Choose a core per inter-core piece. ``evaluate`` (the simulator) is needed by
    ``genetic`` and lets ``cpsat`` judge its answers by simulation;
    ``progress(message)`` hears the searches as they go."""
    if method not in METHODS:
        raise ValueError(f"allocator must be one of {METHODS}, got {method!r}")
    settings = settings or AllocationSettings()
    case = _Case(cngraph, build_tasks(cngraph, costs, accelerator, chunks=None))
    if method == "fixed":
        return case.allocation(_fixed(case), method)
    warm, ends = heft(case.tasks)
    if method == "greedy":  # its estimate is its own schedule, pieces in HEFT's order
        return case.allocation(warm, method, estimate=int(ends.max()) if ends.size else 0)
    if method == "genetic":
        if evaluate is None:
            raise ValueError("allocator 'genetic' needs evaluate (the simulator)")
        reference = evaluate(case.per_cn(warm))
        col, stats = nsga2(case.tasks.options, warm, lambda c: evaluate(case.per_cn(c)),
                           lambda lat, e: settings.score(lat, e, reference), settings.population,
                           settings.generations, settings.time_limit_s, settings.seed, progress)
        return case.allocation(col, method, {"objective": settings.objective, **stats})
    coarse = build_tasks(cngraph, costs, accelerator, chunks=settings.chunks)
    candidates, stats, notes = solve(coarse, warm, settings.objective, settings.latency_weight,
                                     settings.time_limit_s, settings.workers, settings.seed, case.names,
                                     settings.strict_capacity, progress)
    col = candidates[-1]
    stats["kept"] = "solver" if stats["objective_value"] is not None else "warm_start"
    if evaluate is not None and stats["kept"] == "solver":
        col = _judge(case, warm, candidates, stats, settings, evaluate)
    return case.allocation(col, method, stats, notes)


class _Case:
    """A CN graph's pieces as the allocators see them (``tasks``, one task per tile)."""

    def __init__(self, cngraph: CNGraph, tasks: Tasks):
        self.g, self.tasks = cngraph, tasks
        self.names = [layer.name for layer in cngraph.workload.layers]

    def per_cn(self, col: np.ndarray) -> np.ndarray:
        """Core per CN from a column per piece."""
        t = self.tasks
        core = np.empty(self.g.num_cns, dtype=np.int32)
        core[t.piece_cns] = np.repeat(np.asarray(t.cores)[col], np.diff(t.piece_cn_ptr))
        return core

    def allocation(self, col: np.ndarray, method: str, stats: dict | None = None, notes=(),
                   estimate: int | None = None) -> Allocation:
        """The allocation, with the list schedule's latency as its estimate unless given."""
        if estimate is None:
            estimate = int(schedule(self.tasks, col).max()) if self.tasks.num_tasks else 0
        return Allocation(self.per_cn(col), method, estimate, dict(stats or {}) | self._splits(col), tuple(notes))

    def _splits(self, col: np.ndarray) -> dict:
        """Split factors of the layers split "*": the distinct cores their pieces run on."""
        out = {}
        for index, layer in enumerate(self.g.workload.layers):
            if self.g.plans[layer.name].split_by_allocator:
                out[layer.name] = len(set(col[self.tasks.piece_layer == index].tolist()))
        return {"split_factors": out} if out else {}


def _fixed(case: _Case) -> np.ndarray:
    t = case.tasks
    several = np.flatnonzero(t.options.sum(axis=1) > 1)
    if several.size:
        piece = int(several[0])
        layer = case.names[int(t.piece_layer[piece])]
        options = [t.cores[c] for c in np.flatnonzero(t.options[piece])]
        raise StreamError(f"allocator 'fixed': layer {layer!r} may run on cores {options}; pin it in the "
                          "mapping (one core, or core_allocation_is_fixed with one core per piece) or use "
                          "another allocator")
    return np.argmax(t.options, axis=1)


def _judge(case: _Case, warm: np.ndarray, candidates: list[np.ndarray], stats: dict,
           settings: AllocationSettings, evaluate: Evaluate) -> np.ndarray:
    """The simulator judges the warm start, the solver's answer and the other solutions its
    search found; the best on the objective is kept, and ``stats`` say which."""
    judged = {warm.tobytes(): evaluate(case.per_cn(warm))}
    for candidate in candidates:
        if candidate.tobytes() not in judged:
            judged[candidate.tobytes()] = evaluate(case.per_cn(candidate))
    started, answer = judged[warm.tobytes()], candidates[-1]
    # on a tie the later solution: the answer first, the warm start (the search's usual first) last
    best = min(reversed(candidates), key=lambda c: settings.score(*judged[c.tobytes()], started))
    stats["simulated"] = {"solver": _pair(judged[answer.tobytes()]), "warm_start": _pair(started),
                          "candidates": len(judged)}
    if settings.score(*started, started) < settings.score(*judged[best.tobytes()], started) or (
            np.array_equal(best, warm) and not np.array_equal(best, answer)):
        stats["kept"] = "warm_start"
        return warm
    if not np.array_equal(best, answer):
        stats["kept"] = "earlier_solution"
        stats["simulated"]["kept"] = _pair(judged[best.tobytes()])
    return best


def _pair(value: tuple[int, float]) -> dict:
    return {"latency_cycles": int(value[0]), "energy_pj": float(f"{value[1]:.6g}")}


__all__ = ["METHODS", "OBJECTIVES", "Allocation", "AllocationSettings", "allocate", "pieces"]
