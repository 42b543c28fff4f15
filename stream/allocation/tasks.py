"""The allocators' view of a CN graph: pieces, coarse tasks, and what moving data costs.

A *piece* (one inter-core piece of a layer) is the unit of allocation: all its tiles run
on one core, in tile order. A piece is cut into *tasks* of consecutive tiles, ``chunks``
per piece (``None``: one task per tile), so that a consumer's early rows can start while
its producer still works on later ones, as in depth-first (fused) execution. Task edges
aggregate the CN edges between tasks of different pieces; edges inside a piece are met
by running its tiles in order.

Costs are per core *column*: ``cores[k]`` is the core of column ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.cost import CostTable
from stream.hardware.ir import Accelerator
from stream.hardware.routes import Routes
from stream.tiling import CNGraph
from stream.workload.ir import Role


@dataclass(frozen=True, eq=False)
class Tasks:
    cores: tuple[int, ...]  # core id per column
    # pieces, in topological order (layer by layer)
    piece_layer: np.ndarray  # (p,) layer index
    piece_group: np.ndarray  # (p,) fusion group
    options: np.ndarray  # (p, k) bool: the piece may run on the column's core
    weight_bits: np.ndarray  # (p,) bits of the distinct weight tensors the piece reads
    weight_capacity: np.ndarray  # (k,) bits of each column core's weight memory
    weight_memory: np.ndarray  # (k,) columns with equal values share one weight memory
    piece_cns: np.ndarray  # CN ids, piece after piece, tiles in order
    piece_cn_ptr: np.ndarray  # (p+1,): the CNs of piece i are piece_cns[ptr[i]:ptr[i+1]]
    piece_task_ptr: np.ndarray  # (p+1,): tasks of piece i are ptr[i]:ptr[i+1], in run order
    # tasks
    task_piece: np.ndarray  # (t,)
    load_cycles: np.ndarray  # (t,) DRAM cycles to read the task's network inputs (and, first task, the piece's weights)
    duration: np.ndarray  # (t, k) int64 cycles (0 where the column is not an option)
    energy: np.ndarray  # (t, k) pJ of compute and on-chip memory
    # edges between tasks of different pieces, sorted by destination task
    edge_src: np.ndarray  # (m,) task
    edge_dst: np.ndarray  # (m,) task
    edge_bits: np.ndarray  # (m,) int64
    edge_via_dram: np.ndarray  # (m,) bool: crosses fusion groups, so goes through DRAM
    edge_dram_cycles: np.ndarray  # (m,) cycles a DRAM edge holds DRAM (write then read); 0 for others
    in_ptr: np.ndarray  # (t+1,): edges into task i are in_ptr[i]:in_ptr[i+1]
    # moving data
    bandwidth: np.ndarray  # (k, k) bits per cycle between columns' cores (inf: same memory)
    energy_per_bit: np.ndarray  # (k, k) pJ per bit between columns' cores (0: same memory)
    dram_bandwidth: np.ndarray  # (2, k): to DRAM, from DRAM (inf without DRAM)
    dram_energy_per_bit: np.ndarray  # (2, k): links plus the DRAM access, write then read

    @property
    def num_pieces(self) -> int:
        return int(self.piece_layer.size)

    @property
    def num_tasks(self) -> int:
        return int(self.task_piece.size)

    def delay(self, edges: np.ndarray, src_col: np.ndarray, dst_col: np.ndarray) -> np.ndarray:
        """Cycles each edge's data takes from its producer's column to the consumer's,
        without contention: bits over the slowest link of the route, or, across fusion
        groups, written to DRAM and read back."""
        return self.cycles(self.edge_bits[edges], self.edge_via_dram[edges], src_col, dst_col)

    def cycles(self, bits: np.ndarray, via_dram: np.ndarray, src_col: np.ndarray, dst_col: np.ndarray) -> np.ndarray:
        """As :meth:`delay`, for any ``bits`` (crossing fusion groups where ``via_dram``)."""
        bits = np.asarray(bits, dtype=np.float64)
        direct = np.ceil(bits / self.bandwidth[src_col, dst_col])
        via = np.ceil(bits / self.dram_bandwidth[0, src_col]) + np.ceil(bits / self.dram_bandwidth[1, dst_col])
        return np.where(via_dram, via, direct).astype(np.int64)

    def transfer_energy(self, edges: np.ndarray, src_col: np.ndarray, dst_col: np.ndarray) -> np.ndarray:
        bits = self.edge_bits[edges].astype(np.float64)
        via = self.dram_energy_per_bit[0, src_col] + self.dram_energy_per_bit[1, dst_col]
        return bits * np.where(self.edge_via_dram[edges], via, self.energy_per_bit[src_col, dst_col])



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


def build_tasks(g: CNGraph, costs: CostTable, acc: Accelerator, chunks: int | None = None) -> Tasks:
    """Pieces and tasks of ``g`` with their costs on every candidate core."""
    cn_pieces = pieces(g)
    p = len(cn_pieces)
    options_of = []
    for cns in cn_pieces:
        plan = g.plans[g.layer_of(int(cns[0])).name]
        options_of.append(plan.candidates if plan.pinned is None else (plan.pinned[int(g.piece[cns[0]])],))
    cores = tuple(sorted({c for opts in options_of for c in opts}))
    column = {c: k for k, c in enumerate(cores)}
    k = len(cores)
    options = np.zeros((p, k), dtype=bool)
    for i, opts in enumerate(options_of):
        options[i, [column[c] for c in opts]] = True

    sizes = np.array([c.size for c in cn_pieces], dtype=np.int64)
    piece_cn_ptr = np.concatenate([[0], np.cumsum(sizes)])
    piece_cns = np.concatenate(cn_pieces) if p else np.zeros(0, dtype=np.int64)
    piece_of_cn = np.empty(g.num_cns, dtype=np.int64)
    piece_of_cn[piece_cns] = np.repeat(np.arange(p), sizes)

    # tasks: position within the piece -> chunk
    per_piece = sizes if chunks is None else np.minimum(sizes, chunks)
    piece_task_ptr = np.concatenate([[0], np.cumsum(per_piece)])
    position = np.arange(piece_cns.size) - np.repeat(piece_cn_ptr[:-1], sizes)
    chunk = position * np.repeat(per_piece, sizes) // np.repeat(sizes, sizes)
    task_of_cn = np.empty(g.num_cns, dtype=np.int64)
    task_of_cn[piece_cns] = np.repeat(piece_task_ptr[:-1], sizes) + chunk
    t = int(piece_task_ptr[-1])
    task_piece = np.repeat(np.arange(p), per_piece)

    duration, energy = _task_costs(costs, cores, options, piece_of_cn, task_of_cn, t)
    edge_src, edge_dst, edge_bits, edge_via = _task_edges(g, piece_of_cn, task_of_cn, t)
    in_ptr = np.searchsorted(edge_dst, np.arange(t + 1))

    weight_bits = _external_bits(g, piece_of_cn, p, weights=True)
    bandwidth, epb, dram_bw, dram_epb = _links(acc, cores)
    # DRAM time is the same on every core of a shared bus: the slowest route stands for all
    read_bw, write_bw = dram_bw[1].min(initial=np.inf), dram_bw[0].min(initial=np.inf)
    load_bits = _external_bits(g, task_of_cn, t, weights=False)
    load_bits[piece_task_ptr[:-1]] += weight_bits
    load_cycles = np.ceil(load_bits / read_bw).astype(np.int64)
    edge_dram = np.where(edge_via, np.ceil(edge_bits / write_bw) + np.ceil(edge_bits / read_bw), 0).astype(np.int64)
    capacity, memory = _weight_memories(acc, cores)
    return Tasks(cores, g.layer[piece_cns[piece_cn_ptr[:-1]]].astype(np.int64),
                 g.group[piece_cns[piece_cn_ptr[:-1]]].astype(np.int64), options, weight_bits, capacity, memory, piece_cns,
                 piece_cn_ptr, piece_task_ptr, task_piece, load_cycles, duration, energy, edge_src, edge_dst,
                 edge_bits, edge_via, edge_dram, in_ptr, bandwidth, epb, dram_bw, dram_epb)


def _task_costs(costs: CostTable, cores: tuple[int, ...], options: np.ndarray, piece_of_cn: np.ndarray,
                task_of_cn: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(cycles, pJ) of every task on every column's core (0 where it may not run)."""
    duration = np.zeros((t, len(cores)), dtype=np.int64)
    energy = np.zeros((t, len(cores)))
    first_option = np.asarray(cores)[np.argmax(options, axis=1)][piece_of_cn]
    for col, core in enumerate(cores):
        allowed = options[piece_of_cn, col]
        # CNs that may not run on this core are costed on an allowed one, then masked out
        latency, mac, onchip = costs.arrays(np.where(allowed, core, first_option))
        duration[:, col] = np.bincount(task_of_cn, weights=np.where(allowed, latency, 0), minlength=t)
        energy[:, col] = np.bincount(task_of_cn, weights=np.where(allowed, mac + onchip, 0.0), minlength=t)
    return duration, energy


def _task_edges(g: CNGraph, piece_of_cn: np.ndarray, task_of_cn: np.ndarray, t: int):
    """(src, dst, bits, via DRAM) of the edges between tasks of different pieces, merged
    per task pair, sorted by destination task."""
    keep = piece_of_cn[g.edge_src] != piece_of_cn[g.edge_dst]
    key = task_of_cn[g.edge_dst][keep] * max(t, 1) + task_of_cn[g.edge_src][keep]
    unique, inverse = np.unique(key, return_inverse=True)
    bits = np.bincount(inverse, weights=g.edge_bits[keep], minlength=unique.size).astype(np.int64)
    via = np.zeros(unique.size, dtype=bool)
    via[inverse[(g.group[g.edge_src] != g.group[g.edge_dst])[keep]]] = True
    return unique % max(t, 1), unique // max(t, 1), bits, via


def _weight_memories(acc: Accelerator, cores: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(bits, memory) per column: the size of its core's weight memory, and a memory id
    (a column id) that columns sharing one memory have in common."""
    capacity = np.array([acc.core(c).memory_for("I2").size_bits for c in cores], dtype=np.int64)
    memory = np.arange(len(cores))
    column = {c: k for k, c in enumerate(cores)}
    for c in cores:  # a shared weight memory holds the weights of all its cores
        members = [column[x] for x in acc.sharing(c, acc.core(c).memory_for("I2")) if x in column]
        memory[members] = min(members)
    return capacity, memory


def _external_bits(g: CNGraph, owner_of_cn: np.ndarray, owners: int, weights: bool) -> np.ndarray:
    """Per owner (piece or task): bits of the distinct weight (or other DRAM) tensors its CNs read."""
    if not g.ext_ids.size:
        return np.zeros(owners, dtype=np.int64)
    cn = np.repeat(np.arange(g.num_cns), np.diff(g.ext_ptr))
    is_weight = np.array([e.role is Role.WEIGHT for e in g.externals], dtype=bool)
    bits = np.array([e.bits for e in g.externals], dtype=np.int64)
    chosen = is_weight[g.ext_ids] == weights
    pairs = np.unique(np.column_stack([owner_of_cn[cn[chosen]], g.ext_ids[chosen]]), axis=0)
    return np.bincount(pairs[:, 0], weights=bits[pairs[:, 1]], minlength=owners).astype(np.int64)


def _links(acc: Accelerator, cores: tuple[int, ...]):
    routes = Routes(acc)
    k = len(cores)
    share = {c: c for c in acc.core_ids}
    for group in acc.memory_sharing:
        for c in group:
            share[c] = min(group)

    def energy(a: int, b: int) -> float:
        return sum(acc.links[l].energy_per_bit for l in routes.links(a, b))

    bandwidth = np.full((k, k), np.inf)
    epb = np.zeros((k, k))
    for i, a in enumerate(cores):
        for j, b in enumerate(cores):
            if share[a] != share[b]:
                bandwidth[i, j], epb[i, j] = routes.bandwidth(a, b), energy(a, b)
    dram_bw = np.full((2, k), np.inf)
    dram_epb = np.zeros((2, k))
    dram_id, dram = acc.offchip_core_id, acc.dram
    if dram_id is not None:
        sample = float(1 << 20)  # bits: whole words on any port, so the per-bit cost is exact
        write = dram.access_energy(sample, write=True) / sample if dram is not None else 0.0
        read = dram.access_energy(sample, write=False) / sample if dram is not None else 0.0
        for i, a in enumerate(cores):
            dram_bw[0, i], dram_bw[1, i] = routes.bandwidth(a, dram_id), routes.bandwidth(dram_id, a)
            dram_epb[0, i], dram_epb[1, i] = energy(a, dram_id) + write, energy(dram_id, a) + read
    return bandwidth, epb, dram_bw, dram_epb


class ListSchedule:
    """A schedule built piece by piece, as the allocators estimate it: each piece runs after
    what its core already holds, each task as soon as its inputs are there. DRAM is one
    shared channel: a piece's weights and a task's network inputs are read, and data
    crossing fusion groups written and read back, in the order pieces are placed."""

    def __init__(self, tasks: Tasks):
        self.tasks = tasks
        self.col = np.full(tasks.num_pieces, -1, dtype=np.int64)
        self.ends = np.zeros(tasks.num_tasks, dtype=np.int64)
        self.free = np.zeros(len(tasks.cores), dtype=np.int64)
        self.dram_free = 0
        self.load_begin = np.zeros(tasks.num_tasks, dtype=np.int64)  # when each task's DRAM reads begin
        self.edge_begin = np.zeros(tasks.edge_src.size, dtype=np.int64)  # and each edge through DRAM

    def reserve_dram(self, piece: int) -> tuple[np.ndarray, np.ndarray]:
        """Book the piece's DRAM traffic (the same on every core): (cycle each task's loads
        are in, cycle each incoming edge's data arrives through DRAM, or -1 for a direct edge)."""
        t = self.tasks
        first, last = int(t.piece_task_ptr[piece]), int(t.piece_task_ptr[piece + 1])
        loads = np.zeros(last - first, dtype=np.int64)
        for i, cycles in enumerate(t.load_cycles[first:last].tolist()):
            if cycles:
                self.load_begin[first + i] = self.dram_free
                self.dram_free += cycles
                loads[i] = self.dram_free
        lo, hi = int(t.in_ptr[first]), int(t.in_ptr[last])
        arrive = np.full(hi - lo, -1, dtype=np.int64)
        via = np.flatnonzero(t.edge_via_dram[lo:hi])
        if via.size:
            produced = self.ends[t.edge_src[lo + via]]
            for k in np.argsort(produced, kind="stable").tolist():
                self.edge_begin[lo + via[k]] = max(self.dram_free, int(produced[k]))
                self.dram_free = int(self.edge_begin[lo + via[k]]) + int(t.edge_dram_cycles[lo + via[k]])
                arrive[via[k]] = self.dram_free
        return loads, arrive

    def ends_on(self, piece: int, c: int, dram: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """End cycles of the piece's tasks if it ran on column ``c``."""
        t = self.tasks
        first, last = int(t.piece_task_ptr[piece]), int(t.piece_task_ptr[piece + 1])
        loads, arrive = dram
        lo, hi = int(t.in_ptr[first]), int(t.in_ptr[last])
        src = t.edge_src[lo:hi]
        direct = self.ends[src] + t.delay(np.arange(lo, hi), self.col[t.task_piece[src]], np.full(hi - lo, c))
        ready = loads.copy()
        np.maximum.at(ready, t.edge_dst[lo:hi] - first, np.where(arrive >= 0, arrive, direct))
        return run_in_order(int(self.free[c]), ready, t.duration[first:last, c])

    def place(self, piece: int, c: int, ends: np.ndarray) -> None:
        t = self.tasks
        self.col[piece] = c
        self.ends[t.piece_task_ptr[piece]:t.piece_task_ptr[piece + 1]] = ends
        if ends.size:
            self.free[c] = ends[-1]


def schedule(tasks: Tasks, col: np.ndarray) -> np.ndarray:
    """End cycle of every task when piece i runs on column ``col[i]``, pieces placed in
    topological order (see :class:`ListSchedule`)."""
    return list_schedule(tasks, col).ends


def list_schedule(tasks: Tasks, col: np.ndarray) -> ListSchedule:
    """The whole :class:`ListSchedule` of an allocation, pieces in topological order."""
    plan = ListSchedule(tasks)
    for piece in range(tasks.num_pieces):
        plan.place(piece, int(col[piece]), plan.ends_on(piece, int(col[piece]), plan.reserve_dram(piece)))
    return plan


def run_in_order(free: int, ready: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Ends of tasks run in order on one core free from ``free``:
    end[i] = max(end[i-1], ready[i]) + duration[i], in closed form
    end[i] = S[i] + max(free, max over j <= i of ready[j] - S[j-1]) with S the running sum."""
    total = np.cumsum(duration)
    before = total - duration
    return total + np.maximum(free, np.maximum.accumulate(ready - before)) if ready.size else total


def energy_of(tasks: Tasks, col: np.ndarray) -> float:
    """pJ of compute, on-chip memory and the transfers between pieces for an allocation."""
    compute = float(tasks.energy[np.arange(tasks.num_tasks), col[tasks.task_piece]].sum())
    edges = np.arange(tasks.edge_src.size)
    moved = tasks.transfer_energy(edges, col[tasks.task_piece[tasks.edge_src]], col[tasks.task_piece[tasks.edge_dst]])
    return compute + float(moved.sum())
