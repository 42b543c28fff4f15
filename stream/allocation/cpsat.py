"""Allocation by constraint programming (OR-Tools CP-SAT).

The model, over the coarse tasks of :mod:`stream.allocation.tasks`:

* one literal per (piece, candidate core), exactly one true per piece;
* per task a start and an end, and per candidate core an optional interval that is
  present when the piece runs there; intervals on a core never overlap;
* a piece's tasks run in order; a task starts after every producer task has ended plus
  the transfer cycles between their cores (zero on one core or a shared memory, through
  DRAM across fusion groups);
* the weights a fusion group keeps resident fit each core's weight memory;
* objective: latency (makespan), energy (compute, on-chip memory and transfers), their
  product (EDP) or a weighted sum of both, each normalised by the warm start's value.

The solver is seeded, time-limited and warm-started from the HEFT allocation.
"""

from __future__ import annotations

import math
import time

import numpy as np

from stream.allocation.tasks import Tasks, energy_of, list_schedule, schedule
from stream.errors import StreamError
from stream.units import size_text

# One worker searches reproducibly: its budget is CP-SAT's deterministic time, at this many
# units per second of the limit (measured: about 0.2 units per second of a laptop core; the
# rest of the limit builds the model and simulates the answers). The wall clock stops it
# only at WALL_BACKSTOP times the limit (then the answer may vary from run to run, and the
# statistics say so).
DETERMINISTIC_PER_SECOND = 0.15
WALL_BACKSTOP = 4.0
RESOLUTION = 100_000  # steps that latency and energy are quantised to in the EDP and weighted objectives
POOL = 8  # allocations found along the search that the simulator judges at the end
REPORT_SECONDS = 2.0  # between progress reports of the search
EXACT_PAIRS = 16  # core pairs up to which a transfer's delay is exact per pair (else a lower bound)


class _Model:
    def __init__(self, tasks: Tasks, options: np.ndarray, resident: np.ndarray, objective: str,
                 latency_weight: float):
        from ortools.sat.python import cp_model

        self.cp = cp_model
        self.tasks, self.options, self.resident, self.objective = tasks, options, resident, objective
        m = self.model = cp_model.CpModel()
        t = tasks
        self.cols = [np.flatnonzero(row).tolist() for row in options]
        self.x = []  # per piece: {column: literal, or None when it is the only option}
        for piece, cols in enumerate(self.cols):
            if len(cols) == 1:
                self.x.append({cols[0]: None})
            else:
                lits = {c: m.NewBoolVar(f"x{piece}_{c}") for c in cols}
                m.AddExactlyOne(lits.values())
                self.x.append(lits)

        # a horizon every schedule of the model fits in: everything in a row, slowest everywhere
        dur_max = np.where(options[t.task_piece], t.duration, 0).max(axis=1) if t.num_tasks else np.zeros(0)
        delays = self._edge_delays()
        self.horizon = int(dur_max.sum() + sum(int(d.max()) for d, _, _ in delays) + t.load_cycles.sum()
                           + t.edge_dram_cycles.sum()) + 1
        h = self.horizon
        self.start = [m.NewIntVar(0, h, f"s{i}") for i in range(t.num_tasks)]
        self.end = [m.NewIntVar(0, h, f"e{i}") for i in range(t.num_tasks)]
        self._cores()
        self._precedence(delays)
        self._dram()
        self._capacity()
        self.makespan = m.NewIntVar(0, h, "makespan")
        for piece in range(t.num_pieces):
            m.Add(self.makespan >= self.end[int(t.piece_task_ptr[piece + 1]) - 1])
        self._objective(objective, latency_weight)

    def _cores(self) -> None:
        """An interval per task and candidate core, present when the piece runs there; a
        core runs one task at a time, a piece's tasks in order."""
        t, m = self.tasks, self.model
        per_core: dict[int, list] = {}
        for task in range(t.num_tasks):
            piece = int(t.task_piece[task])
            for c, lit in self.x[piece].items():
                size = int(t.duration[task, c])
                interval = (m.NewIntervalVar(self.start[task], size, self.end[task], "") if lit is None else
                            m.NewOptionalIntervalVar(self.start[task], size, self.end[task], lit, ""))
                per_core.setdefault(c, []).append(interval)
        for intervals in per_core.values():
            m.AddNoOverlap(intervals)
        for piece in range(t.num_pieces):
            for task in range(int(t.piece_task_ptr[piece]) + 1, int(t.piece_task_ptr[piece + 1])):
                m.Add(self.start[task] >= self.end[task - 1])

    def _precedence(self, delays) -> None:
        """A task starts once its producers' data has arrived on its core."""
        t, m = self.tasks, self.model
        self.differ: dict[tuple[int, int], object] = {}  # piece pair -> "on different cores" literal
        for e, (d, cols_a, cols_b) in enumerate(delays):
            a, b = int(t.edge_src[e]), int(t.edge_dst[e])
            pa, pb = int(t.task_piece[a]), int(t.task_piece[b])
            base = int(d.min())
            m.Add(self.start[b] >= self.end[a] + base)
            if d.size <= EXACT_PAIRS:  # few core pairs: each its own delay
                for i, ca in enumerate(cols_a):
                    for j, cb in enumerate(cols_b):
                        if d[i, j] > base:
                            lits = [lit for lit in (self.x[pa][ca], self.x[pb][cb]) if lit is not None]
                            m.Add(self.start[b] >= self.end[a] + int(d[i, j])).OnlyEnforceIf(lits)
                continue
            # many: the least extra delay of any two different cores, once they differ
            apart = np.not_equal.outer(cols_a, cols_b)
            extra = int((d - base)[apart].min()) if apart.any() else 0
            if extra > 0:
                m.Add(self.start[b] >= self.end[a] + base + extra * self._differ(pa, pb))

    def _differ(self, pa: int, pb: int):
        """A literal true whenever pieces ``pa`` and ``pb`` run on different cores."""
        key = (pa, pb)
        if key not in self.differ:
            m, xa, xb = self.model, self.x[pa], self.x[pb]
            lit = self.differ[key] = m.NewBoolVar("")
            for c, la in xa.items():
                lb = xb.get(c)
                if lb is None and c in xb:  # pb always runs on c
                    continue
                # pa on c and pb not on c -> they differ
                m.AddBoolOr([lit] + ([la.Not()] if la is not None else []) + ([lb] if lb is not None else []))
        return self.differ[key]

    def _edge_delays(self):
        """Per task edge: transfer cycles for every pair of the two pieces' options."""
        t, out = self.tasks, []
        for e in range(t.edge_src.size):
            cols_a = self.cols[int(t.task_piece[t.edge_src[e]])]
            cols_b = self.cols[int(t.task_piece[t.edge_dst[e]])]
            a, b = np.meshgrid(cols_a, cols_b, indexing="ij")
            d = t.cycles(np.full(a.size, t.edge_bits[e]), np.full(a.size, t.edge_via_dram[e]), a.ravel(), b.ravel())
            out.append((d.reshape(a.shape), cols_a, cols_b))
        return out

    def _dram(self) -> None:
        """DRAM is one channel: weight and input reads before their tasks, and data crossing
        fusion groups between producer and consumer, one at a time."""
        t, m, h = self.tasks, self.model, self.horizon
        busy = []
        self.load_begin, self.edge_begin = {}, {}  # task or edge -> when its DRAM time begins
        for task in np.flatnonzero(t.load_cycles).tolist():
            size = int(t.load_cycles[task])
            begin = self.load_begin[task] = m.NewIntVar(0, h, "")
            busy.append(m.NewFixedSizeIntervalVar(begin, size, ""))
            m.Add(begin + size <= self.start[task])
        for e in np.flatnonzero(t.edge_dram_cycles).tolist():
            size = int(t.edge_dram_cycles[e])
            begin = self.edge_begin[e] = m.NewIntVar(0, h, "")
            busy.append(m.NewFixedSizeIntervalVar(begin, size, ""))
            m.Add(begin >= self.end[int(t.edge_src[e])])
            m.Add(begin + size <= self.start[int(t.edge_dst[e])])
        if len(busy) > 1:
            m.AddNoOverlap(busy)

    def _capacity(self) -> None:
        """Per fusion group and weight memory: resident weights within its size."""
        t, m = self.tasks, self.model
        for group in np.unique(t.piece_group).tolist():
            members = np.flatnonzero((t.piece_group == group) & self.resident).tolist()
            for memory in np.unique(t.weight_memory).tolist():
                cols = np.flatnonzero(t.weight_memory == memory).tolist()
                terms, fixed = [], 0
                for piece in members:
                    w = int(t.weight_bits[piece])
                    for c in cols:
                        if w and c in self.x[piece]:
                            lit = self.x[piece][c]
                            if lit is None:
                                fixed += w
                            else:
                                terms.append((w, lit))
                if terms or fixed > t.weight_capacity[cols[0]]:  # pinned pieces alone may overflow it
                    m.Add(sum(w * lit for w, lit in terms) <= int(t.weight_capacity[cols[0]]) - fixed)

    def _energy_terms(self):
        """(constant pJ, [(pJ, literal)]) of compute, on-chip memory and transfers."""
        t, m = self.tasks, self.model
        per_piece = np.add.reduceat(t.energy, t.piece_task_ptr[:-1], axis=0)
        const, terms = 0.0, []
        for piece, lits in enumerate(self.x):
            costs = {c: float(per_piece[piece, c]) for c in lits}
            low = min(costs.values())
            const += low
            terms += [(v - low, lits[c]) for c, v in costs.items() if v > low]
        # transfers, per pair of pieces and pair of cores
        pa, pb = t.task_piece[t.edge_src], t.task_piece[t.edge_dst]
        pairs: dict[tuple[int, int], list[int]] = {}
        for e, key in enumerate(zip(pa.tolist(), pb.tolist())):
            pairs.setdefault(key, []).append(e)
        for (a, b), edges in pairs.items():
            edges = np.asarray(edges)
            table = {(ca, cb): float(t.transfer_energy(edges, np.full(edges.size, ca), np.full(edges.size, cb)).sum())
                     for ca in self.x[a] for cb in self.x[b]}
            low = min(table.values())
            const += low
            if len(table) > EXACT_PAIRS:  # many core pairs: the least extra of any two different cores
                extra = min((v - low for (ca, cb), v in table.items() if ca != cb), default=0.0)
                if extra > 0:
                    terms.append((extra, self._differ(a, b)))
                continue
            for (ca, cb), v in table.items():
                if v > low:
                    la, lb = self.x[a][ca], self.x[b][cb]
                    lits = [lit for lit in (la, lb) if lit is not None]
                    if len(lits) == 1:
                        terms.append((v - low, lits[0]))
                    else:
                        y = m.NewBoolVar("")
                        m.AddBoolOr([la.Not(), lb.Not(), y])
                        terms.append((v - low, y))
        return const, terms

    def _objective(self, objective: str, latency_weight: float) -> None:
        m = self.model
        self.energy_unit, self.energy_const, self.latency_unit = 1.0, 0.0, 1
        if objective == "latency":
            m.Minimize(self.makespan)
            return
        const, terms = self._energy_terms()
        upper = const + sum(v for v, _ in terms)
        self.energy_const = const
        self.energy_unit = max(upper, 1.0) / RESOLUTION
        expr = sum(round(v / self.energy_unit) * lit for v, lit in terms)
        if objective == "energy":
            m.Minimize(expr)
            return
        energy = m.NewIntVar(0, RESOLUTION + len(terms), "energy")
        m.Add(energy == expr)
        self.latency_unit = max(1, math.ceil(self.horizon / RESOLUTION))
        latency = m.NewIntVar(0, RESOLUTION + 1, "latency_q")
        m.Add(latency * self.latency_unit >= self.makespan)
        self.energy_var, self.latency_var = energy, latency
        if objective == "edp":
            # constant energy shifts the product: (E0 + e) * L with E0 in the same units
            e0 = round(const / self.energy_unit)
            product = m.NewIntVar(0, (RESOLUTION + len(terms) + e0) * (RESOLUTION + 1), "edp")
            shifted = m.NewIntVar(e0, e0 + RESOLUTION + len(terms), "energy_total")
            m.Add(shifted == energy + e0)
            m.AddMultiplicationEquality(product, [latency, shifted])
            m.Minimize(product)
            return
        # weighted: w * L / L_ref + (1 - w) * E / E_ref, set in solve() once the warm start is known
        self.weight = latency_weight

    def weighted(self, latency_ref: float, energy_ref: float) -> None:
        """Set the weighted objective, normalised by reference latency (cycles) and energy (pJ)."""
        w = round(1000 * self.weight)
        lref = max(1, round(latency_ref / self.latency_unit))
        e0 = round(self.energy_const / self.energy_unit)
        eref = max(1, round(energy_ref / self.energy_unit))
        self.weighted_scale = (lref, eref)
        self.model.Minimize(w * eref * self.latency_var + (1000 - w) * lref * (self.energy_var + e0))

    def hint(self, col: np.ndarray) -> None:
        """Start the search from the list schedule of ``col``: every variable hinted."""
        t, m = self.tasks, self.model
        plan = list_schedule(t, col)
        ends = plan.ends
        for task, var in self.load_begin.items():
            m.AddHint(var, int(plan.load_begin[task]))
        for e, var in self.edge_begin.items():
            m.AddHint(var, int(plan.edge_begin[e]))
        for (pa, pb), lit in self.differ.items():
            m.AddHint(lit, bool(col[pa] != col[pb]))
        for piece, lits in enumerate(self.x):
            for c, lit in lits.items():
                if lit is not None:
                    m.AddHint(lit, c == col[piece])
        for task in range(t.num_tasks):
            m.AddHint(self.start[task], int(ends[task] - t.duration[task, col[t.task_piece[task]]]))
            m.AddHint(self.end[task], int(ends[task]))
        m.AddHint(self.makespan, int(ends.max()) if ends.size else 0)

    def natural(self, value: float) -> float:
        """The objective in its own units: cycles, pJ, cycles x pJ, or the weighted sum."""
        if self.objective == "latency":
            return value
        if self.objective == "energy":
            return value * self.energy_unit + self.energy_const
        if self.objective == "edp":
            return value * self.latency_unit * self.energy_unit
        lref, eref = self.weighted_scale
        return value / (1000 * lref * eref)


def solve(tasks: Tasks, warm: np.ndarray, objective: str = "latency", latency_weight: float = 0.5,
          time_limit_s: float = 10.0, workers: int = 4, seed: int = 0, layer_names=(),
          strict_capacity: bool = False, report=None) -> tuple[np.ndarray, dict, tuple]:
    """(candidates, solver statistics, notes) of the CP-SAT allocation warm-started from
    ``warm`` (a column per piece): candidates are the last few distinct allocations the
    search found, each a column per piece, its answer last.

    Weights that cannot stay resident (a piece's weights larger than every candidate's
    weight memory, a fusion group's larger than all its cores' memories together, or a
    group whose pieces cannot be packed) are an error naming the layer or group when
    ``strict_capacity``; otherwise the limit is lifted for them, the simulator streams
    them from DRAM, and a note says so."""
    capacity = _Capacity(tasks, layer_names, strict_capacity)
    began = time.perf_counter()
    budget = float(time_limit_s) * DETERMINISTIC_PER_SECOND  # shared by the retries below
    while True:
        model = _Model(tasks, capacity.options, capacity.resident, objective, latency_weight)
        warm_ok = capacity.holds(warm)
        ends = schedule(tasks, warm)
        warm_latency, warm_energy = int(ends.max()) if ends.size else 0, energy_of(tasks, warm)
        if objective == "weighted":
            model.weighted(warm_latency, warm_energy)
        if warm_ok:
            model.hint(warm)
        solver = model.cp.CpSolver()
        p = solver.parameters
        elapsed = time.perf_counter() - began
        p.num_workers = int(workers)
        p.random_seed = int(seed)
        if workers == 1:  # reproducible: a budget of deterministic work, the wall clock only as a backstop
            p.max_deterministic_time = max(budget, 1e-3)
            p.max_time_in_seconds = max(0.1, float(time_limit_s) * WALL_BACKSTOP - elapsed)
        else:
            p.max_time_in_seconds = max(0.1, float(time_limit_s) - elapsed)
        pool = _Pool(model, report)
        status = solver.Solve(model.model, pool)
        if status != model.cp.INFEASIBLE:
            break
        budget -= solver.ResponseProto().deterministic_time
        capacity.lift_unpackable_group()  # raises when strict, or when no group explains it
    name = solver.StatusName(status)
    found = status in (model.cp.OPTIMAL, model.cp.FEASIBLE)
    if found:
        col = np.array([next((c for c, lit in lits.items() if lit is None or solver.Value(lit)), -1)
                        for lits in model.x], dtype=np.int64)
        value, bound = model.natural(solver.ObjectiveValue()), model.natural(solver.BestObjectiveBound())
    else:  # nothing within the budget: the warm start stands, and the notes say so
        col, value, bound = warm, math.nan, math.nan
        capacity.notes.append(f"allocation: CP-SAT found no allocation within {time_limit_s:g} s (status "
                              f"{name}); the greedy warm start is used (more --time-limit may help)")
    stats = {
        "status": name.lower(),
        "objective": objective,
        "objective_value": _round(value) if found else None,
        "best_bound": _round(bound) if found else None,
        "gap": (_round((value - bound) / abs(value)) if value else 0.0) if found else None,
        "wall_seconds": time.perf_counter() - began,
        # one worker gives the same answer each time unless the wall clock stopped it first
        "reproducible": bool(workers == 1 and (status == model.cp.OPTIMAL or (
            solver.ResponseProto().deterministic_time >= p.max_deterministic_time * 0.999))),
        "time_limit_s": float(time_limit_s),
        "workers": int(workers),
        "seed": int(seed),
        "pieces": tasks.num_pieces,
        "tasks": tasks.num_tasks,
        "task_edges": int(tasks.edge_src.size),
        "model_latency_cycles": int(schedule(tasks, col).max()) if tasks.num_tasks else 0,
        "model_energy_pj": _round(energy_of(tasks, col)),
        "warm_start": {"latency_cycles": warm_latency, "energy_pj": _round(warm_energy), "feasible": warm_ok},
    }
    # the last few distinct allocations the search found, for the simulator to judge (the answer last)
    candidates = [c for c in pool.found if not np.array_equal(c, col)][-(POOL - 1):] + [col] if found else [col]
    return candidates, stats, tuple(capacity.notes)


class _Pool:
    """Collects the allocation of every solution the search finds (a CP-SAT callback), and
    tells ``report`` of improvements every few seconds."""

    def __new__(cls, model: _Model, report=None):
        class Pool(model.cp.CpSolverSolutionCallback):
            def __init__(self):
                super().__init__()
                self.found: list[np.ndarray] = []
                self.solutions, self.reported = 0, time.perf_counter()

            def on_solution_callback(self):
                self.solutions += 1
                col = np.array([next((c for c, lit in lits.items() if lit is None or self.Value(lit)), -1)
                                for lits in model.x], dtype=np.int64)
                if not any(np.array_equal(col, c) for c in self.found[-POOL:]):
                    self.found.append(col)
                if report is not None and time.perf_counter() - self.reported >= REPORT_SECONDS:
                    self.reported = time.perf_counter()
                    value, bound = model.natural(self.ObjectiveValue()), model.natural(self.BestObjectiveBound())
                    number = "{:.4g}" if model.objective == "weighted" else "{:,.0f}"
                    report(f"cpsat: solution {self.solutions}, model {model.objective} {number.format(value)} "
                           f"(bound {number.format(bound)}), {self.WallTime():.1f} s")

        return Pool()


def _round(x: float) -> float:
    return float(f"{x:.6g}")


class _Capacity:
    """Which pieces keep their weights resident, on which cores: ``options`` (pieces x
    columns) and ``resident`` (pieces), and the notes of every limit lifted."""

    def __init__(self, tasks: Tasks, layer_names, strict: bool):
        self.tasks, self.names, self.strict, self.notes = tasks, layer_names, strict, []
        t = tasks
        fits = t.options & (t.weight_bits[:, None] <= t.weight_capacity[None, :])
        nowhere = ~fits.any(axis=1)
        self.resident = ~nowhere
        for layer in np.unique(t.piece_layer[nowhere]).tolist():
            piece = int(np.flatnonzero(nowhere & (t.piece_layer == layer))[0])
            largest = int(t.weight_capacity[t.options[piece]].max())
            self._lift(f"layer {self._name(layer)}: a piece's {size_text(int(t.weight_bits[piece]))} of weights fit no "
                       f"candidate core's weight memory (largest {size_text(largest)})",
                       "split the layer across more cores (inter_core_tiling)")
        self.options = np.where(nowhere[:, None], t.options, fits)
        for group in np.unique(t.piece_group).tolist():
            members = np.flatnonzero((t.piece_group == group) & self.resident)
            cols = np.flatnonzero(self.options[members].any(axis=0))
            need = int(t.weight_bits[members].sum())
            have = sum({int(t.weight_memory[c]): int(t.weight_capacity[c]) for c in cols}.values())
            if need > have:
                self._lift(f"{self._group(group, members)}: {size_text(need)} of weights, but the weight memories of "
                           f"cores {[t.cores[c] for c in cols]} hold {size_text(have)} together",
                           "split the fusion group or allow more cores", members)

    def holds(self, col: np.ndarray) -> bool:
        """Whether an allocation keeps every resident piece's weights within the memories."""
        t, r, k = self.tasks, self.resident, len(self.tasks.cores)
        if not self.options[np.arange(t.num_pieces), col].all():
            return False
        # weight_memory values are column ids, so a memory's capacity is weight_capacity[memory]
        load = np.bincount(t.piece_group[r] * k + t.weight_memory[col[r]], weights=t.weight_bits[r],
                           minlength=(int(t.piece_group.max()) + 1) * k if t.num_pieces else 0)
        return bool((load.reshape(-1, k) <= t.weight_capacity[None, :]).all())

    def lift_unpackable_group(self) -> None:
        """The solver proved the packing impossible: find the fusion group that cannot be
        packed and lift its limit (or, when strict, say which)."""
        from ortools.sat.python import cp_model

        t = self.tasks
        for group in np.unique(t.piece_group).tolist():
            members = np.flatnonzero((t.piece_group == group) & self.resident).tolist()
            m = cp_model.CpModel()
            x = {(p, c): m.NewBoolVar("") for p in members for c in np.flatnonzero(self.options[p]).tolist()}
            for p in members:
                m.AddExactlyOne(v for (q, _), v in x.items() if q == p)
            for memory in np.unique(t.weight_memory).tolist():
                cols = set(np.flatnonzero(t.weight_memory == memory).tolist())
                m.Add(sum(int(t.weight_bits[p]) * v for (p, c), v in x.items() if c in cols)
                      <= int(t.weight_capacity[min(cols)]))
            solver = cp_model.CpSolver()  # one worker, deterministic work: the same group on any machine
            solver.parameters.num_workers = 1
            solver.parameters.max_deterministic_time = 1.0
            if solver.Solve(m) == cp_model.INFEASIBLE:
                heaviest = members[int(np.argmax(t.weight_bits[members]))]
                self._lift(f"{self._group(group, members)}: its pieces' weights cannot be packed into their cores' "
                           f"weight memories (largest: layer {self._name(int(t.piece_layer[heaviest]))}, "
                           f"{size_text(int(t.weight_bits[heaviest]))} per piece)",
                           "split those layers across more cores or make the fusion group smaller",
                           np.asarray(members))
                return
        raise StreamError("allocator 'cpsat': the allocation model is infeasible, and no fusion group's weights "
                          "explain it")

    def _lift(self, what: str, fix: str, members: np.ndarray | None = None) -> None:
        if self.strict:
            raise StreamError(f"allocator 'cpsat': {what} (constraint: resident weights per core); {fix}")
        if members is not None:
            self.resident[members] = False
            self.options[members] = self.tasks.options[members]
        self.notes.append(f"allocation: {what}; they stream from DRAM while it runs ({fix} to keep them resident)")

    def _name(self, index: int) -> str:
        return _name(self.names, index)

    def _group(self, group: int, members) -> str:
        layers = list(dict.fromkeys(self._name(l) for l in self.tasks.piece_layer[members].tolist()))
        return f"fusion group {group} ({layers[0]}" + (f" .. {layers[-1]})" if len(layers) > 1 else ")")


def _name(layer_names, index: int) -> str:
    return layer_names[index] if index < len(layer_names) else f"#{index}"
