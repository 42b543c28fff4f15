"""Scheduling priorities: one integer rank per CN, lower runs first.

Every policy's rank is a linear extension of the CN graph (a producer always ranks
before its consumers), so per-core loaders that walk their CNs in rank order can never
wait on each other in a cycle.

* ``depth_first`` (fused default): within a fusion group, tile row i of every layer
  before row i+1. A CN's *wave* is its intra-core tile index, raised to the wave of any
  producer in its group (a 3x3 conv's row i needs row i+1 of its input, so it waits for
  that row's wave). Rank = (group, wave, layer, CN).
* ``latency``: earliest estimated start first, the longest path to the CN over compute
  cycles, ignoring transfers. Rank = (estimate, CN).
* ``layer_by_layer``: layer after layer, rank = CN index; the simulator also holds each
  layer back until every earlier layer has finished.
* ``memory``: among the CNs whose producers have all been ranked, the one deepest in the
  network first (its layer's longest path from the network's inputs; then CN), so a
  tensor's consumers run soon after it and live memory stays small (the field's
  scheduler offers the same choice). Rank = that order.
"""

from __future__ import annotations

import heapq

import numpy as np

from stream.tiling import CNGraph

POLICIES = ("depth_first", "latency", "layer_by_layer", "memory")


def default_policy(mode: str) -> str:
    return "layer_by_layer" if mode == "layer_by_layer" else "depth_first"


def ranks(g: CNGraph, policy: str, cycles: np.ndarray) -> np.ndarray:
    """(n,) int64 rank per CN; ``cycles`` are the CNs' compute cycles on their cores."""
    n = g.num_cns
    index = np.arange(n, dtype=np.int64)
    if policy == "layer_by_layer":
        return index
    if policy == "latency":
        asap = longest_path(g, np.zeros(n, dtype=np.int64), cycles.astype(np.int64))
        order = np.lexsort((index, asap))
    elif policy == "depth_first":
        same_group = g.group[g.edge_src] == g.group[g.edge_dst]
        wave = longest_path(g, g.tile.astype(np.int64), np.zeros(n, dtype=np.int64), same_group)
        order = np.lexsort((index, g.layer, wave, g.group))
    elif policy == "memory":
        order = _deepest_ready_first(g)
    else:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = index
    return rank


def longest_path(g: CNGraph, init: np.ndarray, weight: np.ndarray, edge_mask: np.ndarray | None = None) -> np.ndarray:
    """value[x] = max(init[x], max over producers p of value[p] + weight[p]).

    CNs are numbered in topological order (every edge goes from a lower to a higher id)
    and layer by layer, so a layer whose producers all lie in earlier layers is done in
    one vectorised step; edges inside a layer (partial-sum and sequential chains) are
    walked in order.
    """
    value = init.astype(np.int64, copy=True)
    src, dst = g.edge_src, g.edge_dst
    for grid in g.grids:
        lo, hi = grid.first, grid.first + grid.count
        e0, e1 = int(g.in_ptr[lo]), int(g.in_ptr[hi])
        if e0 == e1:
            continue
        s, d = src[e0:e1], dst[e0:e1]
        if edge_mask is not None:
            keep = edge_mask[e0:e1]
            s, d = s[keep], d[keep]
        inner = s >= lo
        outer_s, outer_d = s[~inner], d[~inner]
        np.maximum.at(value, outer_d, value[outer_s] + weight[outer_s])
        if inner.any():
            for p, x in zip(s[inner].tolist(), d[inner].tolist()):  # sorted by consumer
                candidate = value[p] + weight[p]
                if candidate > value[x]:
                    value[x] = candidate
    return value


def _deepest_ready_first(g: CNGraph) -> np.ndarray:
    """CNs in a topological order that takes, among those whose producers are all taken,
    the one whose layer lies deepest in the network (then the lowest CN)."""
    depth = np.zeros(len(g.workload.layers), dtype=np.int64)
    for i, layer in enumerate(g.workload.layers):
        for p in g.workload.predecessors(layer.name):
            depth[i] = max(depth[i], depth[g.workload.index(p)] + 1)
    key = (-depth[g.layer]).tolist()
    waiting = np.diff(g.in_ptr).tolist()
    ready = [(key[x], x) for x in range(g.num_cns) if waiting[x] == 0]
    heapq.heapify(ready)
    order, dst, out_ptr, out_edges = [], g.edge_dst, g.out_ptr, g.out_edges
    while ready:
        _, x = heapq.heappop(ready)
        order.append(x)
        for e in out_edges[out_ptr[x]:out_ptr[x + 1]].tolist():
            y = int(dst[e])
            waiting[y] -= 1
            if waiting[y] == 0:
                heapq.heappush(ready, (key[y], y))
    return np.asarray(order, dtype=np.int64)
