"""NSGA-II over (piece -> core) genomes, with the simulator as the fitness function.

The field's classic allocation method, kept as a baseline: a population of allocations
evolves by binary tournament (Pareto rank, then crowding distance), uniform crossover
and per-gene mutation; parents and children compete for the next generation by
non-dominated sorting on (simulated latency, simulated energy). The search starts from
the HEFT allocation, variations of it and random genomes, stops after ``generations`` or ``time_limit_s``,
and returns the allocation the simulator scored best on the chosen objective.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def nsga2(options: np.ndarray, warm: np.ndarray, evaluate: Callable[[np.ndarray], tuple[int, float]],
          score: Callable[[float, float], float], population: int = 16, generations: int = 30,
          time_limit_s: float = 10.0, seed: int = 0, report=None) -> tuple[np.ndarray, dict]:
    """(column per piece, statistics). ``options``: (pieces, columns) bool; ``warm``: a
    column per piece to start from; ``evaluate(col)`` -> (latency cycles, energy pJ);
    ``report(message)``, if given, hears each generation."""
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    free = np.flatnonzero(options.sum(axis=1) > 1)
    choices = [np.flatnonzero(options[p]) for p in free]
    seen: dict[bytes, tuple[float, float]] = {}
    stopped_by = "generations"

    def fitness(genes: np.ndarray) -> tuple[float, float] | None:
        key = genes.tobytes()
        if key not in seen:
            if time.perf_counter() - began > time_limit_s and seen:
                return None
            col = warm.copy()
            col[free] = genes
            seen[key] = tuple(float(v) for v in evaluate(col))
        return seen[key]

    def random_genes() -> np.ndarray:
        return np.array([rng.choice(c) for c in choices], dtype=np.int64)

    def near_warm() -> np.ndarray:  # the warm start with a few genes redrawn
        genes = warm[free].copy()
        for i in np.flatnonzero(rng.random(free.size) < 0.1).tolist():
            genes[i] = rng.choice(choices[i])
        return genes

    # half the first generation near the warm start, half anywhere
    size = max(population, 2)
    pop = [warm[free].copy()] + [near_warm() for _ in range(size // 2 - 1)] + \
        [random_genes() for _ in range(size - size // 2)]
    values = [fitness(g) for g in pop]
    pop, values = _evaluated(pop, values)
    generation = 0
    while generation < generations and free.size:
        ranks, crowding = _rank_and_crowd(values)
        children = []
        while len(children) < len(pop):
            a, b = (_tournament(rng, ranks, crowding) for _ in range(2))
            mask = rng.random(free.size) < 0.5
            child = np.where(mask, pop[a], pop[b])
            mutate = rng.random(free.size) < 1.0 / free.size
            for i in np.flatnonzero(mutate).tolist():
                child[i] = rng.choice(choices[i])
            children.append(child)
        child_values = [fitness(c) for c in children]
        if any(v is None for v in child_values):
            stopped_by = "time_limit"
        children, child_values = _evaluated(children, child_values)
        merged, merged_values = pop + children, values + child_values
        keep = _select(merged_values, len(pop))
        pop, values = [merged[i] for i in keep], [merged_values[i] for i in keep]
        generation += 1
        if report is not None:
            best = min(seen.values(), key=lambda v: score(*v))
            report(f"genetic: generation {generation}, {len(seen)} simulations, best {best[0]:,.0f} cycles, "
                   f"{best[1] * 1e-9:.4g} mJ")
        if stopped_by == "time_limit":
            break
    # the best the simulator saw, on the objective asked for
    best_key = min(seen, key=lambda k: (score(*seen[k]), k))
    col = warm.copy()
    col[free] = np.frombuffer(best_key, dtype=np.int64)
    ranks, _ = _rank_and_crowd(values)
    front = sorted({values[i] for i in np.flatnonzero(ranks == 0).tolist()})
    stats = {
        "generations": generation,
        "population": len(pop),
        "evaluations": len(seen),
        "stopped_by": stopped_by,
        "reproducible": stopped_by == "generations",
        "wall_seconds": time.perf_counter() - began,
        "time_limit_s": float(time_limit_s),
        "seed": int(seed),
        "pieces": int(options.shape[0]),
        "free_pieces": int(free.size),
        "pareto_front": [{"latency_cycles": int(l), "energy_pj": float(f"{e:.6g}")} for l, e in front],
    }
    return col, stats


def _evaluated(genomes, values):
    pairs = [(g, v) for g, v in zip(genomes, values) if v is not None]
    return [g for g, _ in pairs], [v for _, v in pairs]


def _dominates(a, b) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and a != b


def _fronts(values) -> list[list[int]]:
    n = len(values)
    dominated_by = [[j for j in range(n) if _dominates(values[i], values[j])] for i in range(n)]
    count = [sum(_dominates(values[j], values[i]) for j in range(n)) for i in range(n)]
    fronts, current = [], [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return fronts


def _crowding(values, front: list[int]) -> dict[int, float]:
    distance = {i: 0.0 for i in front}
    for objective in (0, 1):
        ordered = sorted(front, key=lambda i: (values[i][objective], i))
        low, high = values[ordered[0]][objective], values[ordered[-1]][objective]
        distance[ordered[0]] = distance[ordered[-1]] = float("inf")
        if high > low:
            for k in range(1, len(ordered) - 1):
                distance[ordered[k]] += (values[ordered[k + 1]][objective] - values[ordered[k - 1]][objective]) / (high - low)
    return distance


def _rank_and_crowd(values) -> tuple[np.ndarray, np.ndarray]:
    ranks, crowding = np.zeros(len(values), dtype=np.int64), np.zeros(len(values))
    for r, front in enumerate(_fronts(values)):
        for i, d in _crowding(values, front).items():
            ranks[i], crowding[i] = r, d
    return ranks, crowding


def _tournament(rng, ranks: np.ndarray, crowding: np.ndarray) -> int:
    a, b = rng.integers(0, ranks.size, size=2).tolist()
    if (ranks[a], -crowding[a]) <= (ranks[b], -crowding[b]):
        return a
    return b


def _select(values, size: int) -> list[int]:
    """Indices of the next generation: whole fronts, then the most crowded-apart of the next."""
    keep = []
    for front in _fronts(values):
        if len(keep) + len(front) <= size:
            keep += front
            continue
        distance = _crowding(values, front)
        keep += sorted(front, key=lambda i: (-distance[i], i))[: size - len(keep)]
        break
    return keep
