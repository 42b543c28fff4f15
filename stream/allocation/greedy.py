"""HEFT-style list scheduling: the fast baseline and the solver's warm start.

Pieces are taken in decreasing *upward rank* (a piece's mean duration over its candidate
cores plus the longest way from it to the end of the graph, counting the mean transfer
time of each edge), the classic HEFT priority. Each goes to the candidate core where its
tasks would finish first, given when their inputs arrive there, preferring cores whose
weight memory still holds the piece's weights next to those its fusion group keeps there.
Ties go to the core with fewer pieces of the same layer, then with less work so far, then
the lowest core id. There is no insertion into idle gaps: a piece runs after what its
core already holds, and DRAM traffic is booked in the same order
(:class:`stream.allocation.tasks.ListSchedule`)."""

from __future__ import annotations

import numpy as np

from stream.allocation.tasks import ListSchedule, Tasks


def heft(tasks: Tasks) -> tuple[np.ndarray, np.ndarray]:
    """(column per piece, end cycle per task) of the HEFT allocation."""
    ranks = upward_ranks(tasks)
    order = np.lexsort((np.arange(tasks.num_pieces), -ranks))  # predecessors rank higher
    plan = ListSchedule(tasks)
    # weights each fusion group keeps on each weight memory (indexed by column, see Tasks)
    resident = np.zeros((int(tasks.piece_group.max()) + 1 if tasks.num_pieces else 0, len(tasks.cores)),
                        dtype=np.int64)
    busy = np.zeros(len(tasks.cores), dtype=np.int64)
    same_layer = np.zeros((int(tasks.piece_layer.max()) + 1 if tasks.num_pieces else 0, len(tasks.cores)),
                          dtype=np.int64)
    for piece in order.tolist():
        layer = int(tasks.piece_layer[piece])
        dram = plan.reserve_dram(piece)
        group, weights = int(tasks.piece_group[piece]), int(tasks.weight_bits[piece])
        best = None
        for c in np.flatnonzero(tasks.options[piece]).tolist():
            ends = plan.ends_on(piece, c, dram)
            finish = int(ends[-1]) if ends.size else int(plan.free[c])
            memory = int(tasks.weight_memory[c])
            overflow = resident[group, memory] + weights > tasks.weight_capacity[memory]
            # on a tie, the core with fewer pieces of this layer, then with less work so far
            key = (overflow, finish, int(same_layer[layer, c]), int(busy[c]))
            if best is None or key < best[0]:
                best = (key, c, ends)
        c = best[1]
        resident[group, int(tasks.weight_memory[c])] += weights
        same_layer[layer, c] += 1
        busy[c] += tasks.duration[tasks.piece_task_ptr[piece]:tasks.piece_task_ptr[piece + 1], c].sum()
        plan.place(piece, c, best[2])
    return plan.col, plan.ends


def upward_ranks(tasks: Tasks) -> np.ndarray:
    """Per piece: mean duration over its options plus the largest (mean transfer cycles +
    rank) over the pieces that consume its data."""
    p = tasks.num_pieces
    totals = np.add.reduceat(tasks.duration, tasks.piece_task_ptr[:-1], axis=0) if tasks.num_tasks else \
        np.zeros((p, len(tasks.cores)))
    counts = tasks.options.sum(axis=1)
    mean = np.where(tasks.options, totals, 0).sum(axis=1) / np.maximum(counts, 1)
    # piece-to-piece edges with their bits
    src_piece, dst_piece = tasks.task_piece[tasks.edge_src], tasks.task_piece[tasks.edge_dst]
    key = src_piece * max(p, 1) + dst_piece
    unique, inverse = np.unique(key, return_inverse=True)
    bits = np.bincount(inverse, weights=tasks.edge_bits, minlength=unique.size)
    via = np.zeros(unique.size, dtype=bool)
    via[inverse[tasks.edge_via_dram]] = True
    pa, pb = unique // max(p, 1), unique % max(p, 1)
    comm = np.array([_mean_cycles(tasks, b, v, tasks.options[a], tasks.options[d])
                     for b, v, a, d in zip(bits.tolist(), via.tolist(), pa.tolist(), pb.tolist())])
    rank = mean.astype(np.float64)
    successors: dict[int, list[int]] = {}
    for i, a in enumerate(pa.tolist()):
        successors.setdefault(a, []).append(i)
    for piece in range(p - 1, -1, -1):  # pieces are in topological order
        out = successors.get(piece)
        if out:
            rank[piece] = mean[piece] + max(comm[i] + rank[pb[i]] for i in out)
    return rank


def _mean_cycles(tasks: Tasks, bits: float, via: bool, src_options: np.ndarray, dst_options: np.ndarray) -> float:
    a, b = np.nonzero(np.logical_and.outer(src_options, dst_options))
    return float(tasks.cycles(np.full(a.size, bits), np.full(a.size, via), a, b).mean())
