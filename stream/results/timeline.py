"""What happened when, as plain arrays: the data behind the Gantt chart and the memory trace.

A :class:`Timeline` is built from a simulated :class:`~stream.simulation.Trace` by
:func:`timeline_of`, or read back from the files ``stream run --out`` writes
(:func:`stream.export.read_timeline`), so the figures can be drawn again without
simulating again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.simulation import MemoryTimeline, Trace
from stream.tiling.csr import concatenated_ranges

# resources a transfer holds besides links (link ids are >= 0)
DRAM_READ, DRAM_WRITE = -1, -2


def resource_key(resource: int) -> str:
    """``link<id>``, ``dram_read`` or ``dram_write``: the key of a resource in tables."""
    return {DRAM_READ: "dram_read", DRAM_WRITE: "dram_write"}.get(resource, f"link{resource}")


def resource_of(key: str) -> int:
    """The inverse of :func:`resource_key` (ValueError for anything else)."""
    if key in ("dram_read", "dram_write"):
        return DRAM_READ if key == "dram_read" else DRAM_WRITE
    if not key.startswith("link") or not key[4:].isdigit():
        raise ValueError(f"expected link<id>, dram_read or dram_write, got {key!r}")
    return int(key[4:])


@dataclass(frozen=True, eq=False)
class Timeline:
    """Compute spans per CN, busy spans per link and DRAM port, occupancy per memory.

    ``cn_layer`` indexes the run's layers (``Result.layers``). A busy span is one stretch a
    transfer held a resource: a transfer longer than a chunk has one per chunk, one per link
    of its route, and one on the DRAM port it used; multicast riders hold nothing of their
    own and have none.
    """

    cn_core: np.ndarray
    cn_layer: np.ndarray
    cn_start: np.ndarray
    cn_end: np.ndarray
    busy_resource: np.ndarray  # link id, DRAM_READ or DRAM_WRITE
    busy_start: np.ndarray
    busy_end: np.ndarray
    busy_cause: np.ndarray  # int8 index into stream.simulation.CAUSES
    busy_transfer: np.ndarray  # the transfer's row in the trace (and in events.csv after the CNs)
    memories: tuple[MemoryTimeline, ...]
    latency_cycles: int


def timeline_of(trace: Trace) -> Timeline:
    t = trace.transfers
    own = ~t.shared
    # the stretches each transfer held its route: its chunks, or the whole transfer
    chunked = np.zeros(len(t), dtype=bool)
    chunked[t.chunks[:, 0]] = True
    whole = np.flatnonzero(own & ~chunked)
    chunks = t.chunks[own[t.chunks[:, 0]]]
    rows = np.concatenate([whole, chunks[:, 0]])
    starts = np.concatenate([t.start[whole], chunks[:, 1]])
    ends = np.concatenate([t.end[whole], chunks[:, 2]])
    order = np.lexsort((starts, rows))
    rows, starts, ends = rows[order], starts[order], ends[order]
    # each stretch holds every link of its route, and a DRAM port when DRAM is an end
    lengths = np.array([len(r) for r in t.routes], dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if lengths.size else lengths
    links = np.array([link for r in t.routes for link in r], dtype=np.int64)
    route = t.route[rows]
    dram = trace.accelerator.offchip_core_id
    port = np.zeros(rows.size, dtype=np.int64)
    if dram is not None:
        port = np.where(t.src[rows] == dram, DRAM_READ, np.where(t.dst[rows] == dram, DRAM_WRITE, 0))
    held = lengths[route] + (port != 0)
    span = np.repeat(np.arange(rows.size), held)
    resource = np.empty(span.size, dtype=np.int64)
    is_link = np.ones(span.size, dtype=bool)
    is_link[(np.cumsum(held) - 1)[port != 0]] = False  # the port comes after the route's links
    resource[is_link] = links[concatenated_ranges(first[route], lengths[route])]
    resource[~is_link] = port[port != 0]
    return Timeline(
        cn_core=trace.allocation.core.astype(np.int64), cn_layer=trace.cngraph.layer.astype(np.int64),
        cn_start=trace.start.astype(np.int64), cn_end=trace.end.astype(np.int64),
        busy_resource=resource, busy_start=starts[span], busy_end=ends[span],
        busy_cause=t.cause[rows[span]].astype(np.int8), busy_transfer=rows[span],
        memories=trace.memories, latency_cycles=int(trace.latency_cycles))


__all__ = ["DRAM_READ", "DRAM_WRITE", "Timeline", "resource_key", "resource_of", "timeline_of"]
