"""What one simulated run did: :class:`Trace`, with the invariants it must satisfy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stream.allocation import Allocation
from stream.hardware.ir import Accelerator
from stream.simulation.order import longest_path
from stream.tiling import CNGraph

# Why data moved. Fetches and reads bring data to the core of ``Transfers.cn``; writes
# take the output of ``cn`` (or a spilled tensor) to DRAM.
CAUSES = (
    "input_fetch",   # a network input, DRAM -> core
    "weight_fetch",  # weights, DRAM -> core
    "core_to_core",  # a producer's output to a consumer's core
    "dram_write",    # an output crossing fusion groups, core -> DRAM
    "dram_read",     # such an output, DRAM -> a consumer's core
    "sink_write",    # a network output, core -> DRAM
    "spill",         # a resident tensor evicted to DRAM to make room
    "refetch",       # a spilled tensor brought back, DRAM -> core
    "stream",        # an operand too large for the memory, streamed while its CN runs
)
CAUSE = {name: i for i, name in enumerate(CAUSES)}
_TO_CONSUMER = tuple(CAUSE[c] for c in ("input_fetch", "weight_fetch", "core_to_core", "dram_read", "refetch"))

# Data identities for ``Transfers.data``: a CN's output, or an external (DRAM) tensor.
OUTPUT, EXTERNAL = 0, 1


@dataclass(frozen=True, eq=False)
class Transfers:
    """Every transfer, one row each (columns are numpy arrays of equal length).

    ``route`` indexes ``routes`` (link ids in order). ``shared`` rows rode along a queued
    bus transfer (multicast): same bus time, no energy of their own. ``data_kind`` and
    ``data`` say what moved: ``OUTPUT`` and a CN id, or ``EXTERNAL`` and an index into
    ``CNGraph.externals``. ``cn``: the CN the data was fetched for (-1: not for one CN,
    e.g. a spill or a write-back, whose ``data`` says whose output).
    """

    cn: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    bits: np.ndarray
    start: np.ndarray
    end: np.ndarray
    cause: np.ndarray  # int8 index into CAUSES
    route: np.ndarray
    shared: np.ndarray  # bool
    data_kind: np.ndarray  # int8
    data: np.ndarray
    interconnect_energy_pj: np.ndarray
    dram_energy_pj: np.ndarray
    routes: tuple[tuple[int, ...], ...]
    # transfers longer than a chunk: (row, start, end) per chunk, rows ascending; a row's
    # start..end spans its chunks and the waits between them
    chunks: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))

    def spans(self, row: int) -> list[tuple[int, int]]:
        """(start, end) of each stretch the transfer held its route: its chunks, or itself."""
        lo, hi = np.searchsorted(self.chunks[:, 0], [row, row + 1])
        if hi > lo:
            return [(int(s), int(e)) for s, e in self.chunks[lo:hi, 1:].tolist()]
        return [(int(self.start[row]), int(self.end[row]))]

    def __len__(self) -> int:
        return int(self.cn.size)

    def of(self, cause: str) -> np.ndarray:
        """Row mask of one cause."""
        return self.cause == CAUSE[cause]


@dataclass(frozen=True, eq=False)
class MemoryTimeline:
    """Occupancy of one on-chip memory (shared by ``cores`` when there are several)."""

    name: str  # "core<ids>.<memory name>"
    cores: tuple[int, ...]
    memory: str
    capacity_bits: int
    times: np.ndarray  # cycles, increasing; each occupancy holds from its time to the next
    bits: np.ndarray  # in total
    weight_bits: np.ndarray  # of which layers' weights
    partial_bits: np.ndarray  # of which partial sums (the rest: feature maps and copies in flight)

    @property
    def peak_bits(self) -> int:
        return int(self.bits.max()) if self.bits.size else 0

    @property
    def peak_activation_bits(self) -> int:
        """Peak of everything but weights: feature maps, partial sums, copies in flight."""
        return int((self.bits - self.weight_bits).max()) if self.bits.size else 0


@dataclass(frozen=True, eq=False)
class Trace:
    """Everything that happened in one simulated run."""

    cngraph: CNGraph
    allocation: Allocation
    accelerator: Accelerator
    policy: str
    start: np.ndarray  # (n,) cycle each CN started
    end: np.ndarray
    ready: np.ndarray  # (n,) cycle all its inputs were on its core
    compute_cycles: np.ndarray  # (n,) the cost model's latency on its core
    mac_energy_pj: np.ndarray  # (n,)
    onchip_energy_pj: np.ndarray
    transfers: Transfers
    memories: tuple[MemoryTimeline, ...]
    link_busy_cycles: tuple[int, ...]  # per link id

    @property
    def latency_cycles(self) -> int:
        last = int(self.end.max()) if self.end.size else 0
        return max(last, int(self.transfers.end.max()) if len(self.transfers) else 0)

    @property
    def energy_pj(self) -> float:
        """Total pJ: MACs, on-chip memory, DRAM and interconnect."""
        t = self.transfers
        return float(self.mac_energy_pj.sum() + self.onchip_energy_pj.sum() + t.dram_energy_pj.sum()
                     + t.interconnect_energy_pj.sum())

    def check(self) -> None:
        """Assert the invariants every run satisfies (docs/architecture.md, "Invariants")."""
        g, n, t = self.cngraph, self.cngraph.num_cns, self.transfers
        assert np.all(self.start >= 0) and np.all(self.ready <= self.start), "a CN started before its inputs were in"
        assert np.all(self.end - self.start >= self.compute_cycles), "a CN ran shorter than its cost"
        assert np.all(self.end[g.edge_src] <= self.start[g.edge_dst]), "a CN started before its producer finished"
        cycles = self.compute_cycles
        finish = longest_path(g, np.zeros(n, dtype=np.int64), cycles) + cycles if n else np.zeros(1)
        assert self.latency_cycles >= finish.max(), "latency below the critical path"
        busy = np.bincount(self.allocation.core, weights=self.compute_cycles) if n else np.zeros(1)
        assert self.latency_cycles >= busy.max(), "latency below the busiest core's compute time"
        for memory in self.memories:
            assert np.all(np.diff(memory.times) >= 0), f"{memory.name}: time runs backwards"
            assert np.all(memory.bits >= 0), f"{memory.name}: occupancy below zero"
            assert np.all(memory.bits <= memory.capacity_bits), f"{memory.name}: occupancy above capacity"
            assert memory.bits.size == 0 or memory.bits[-1] == 0, f"{memory.name}: memory not freed at the end"
            parts = (memory.weight_bits >= 0) & (memory.partial_bits >= 0)
            assert np.all(parts & (memory.weight_bits + memory.partial_bits <= memory.bits)), \
                f"{memory.name}: weights and partial sums do not fit in the occupancy"
        assert np.all(t.end >= t.start) and np.all(t.bits > 0), "an empty or backwards transfer"
        # every transfer that brought data for a CN ended before it started (streams: before it ended)
        for_cn = t.cn >= 0
        deadline = np.where(t.cause == CAUSE["stream"], self.end[t.cn], self.start[t.cn])
        assert np.all(t.end[for_cn] <= deadline[for_cn]), "a CN started before its data arrived"
        self._check_arrivals()

    def _check_arrivals(self) -> None:
        """Each input a CN reads from elsewhere reached its memory before it ran (streams: before it ended)."""
        g, t = self.cngraph, self.transfers
        group = _memory_groups(self.accelerator)  # cores sharing a top memory read each other's data
        place = group[self.allocation.core]
        into = np.isin(t.cause, _TO_CONSUMER + (CAUSE["stream"],))
        arrived: dict[tuple[int, int, int], int] = {}
        for kind, data, dst, end, stream in zip(t.data_kind[into].tolist(), t.data[into].tolist(),
                                                group[t.dst[into]].tolist(), t.end[into].tolist(),
                                                (t.cause[into] == CAUSE["stream"]).tolist()):
            key = (kind, data, dst)
            # a stream runs alongside its CN (check() holds it to the CN's end): count it as in time
            arrived[key] = min(arrived.get(key, _LATE), -1 if stream else end)
        start = self.start
        for e in np.flatnonzero(g.edge_bits > 0).tolist():
            p, x = int(g.edge_src[e]), int(g.edge_dst[e])
            if g.group[p] == g.group[x] and place[p] == place[x]:
                continue  # read where it was produced
            when = arrived.get((OUTPUT, p, int(place[x])), _LATE)
            assert when <= start[x], f"CN {x} never received its input from CN {p} in time"
        for x in range(g.num_cns):
            for ext in g.external_inputs(x).tolist():
                if g.externals[ext].bits:
                    when = arrived.get((EXTERNAL, ext, int(place[x])), _LATE)
                    assert when <= start[x], f"CN {x} never received external tensor {ext} in time"


_LATE = 1 << 62


def _memory_groups(acc: Accelerator) -> np.ndarray:
    """Per core id, the lowest id of the cores sharing its top memory (itself if none)."""
    group = np.arange(max(acc.core_ids) + 1)
    for cores in acc.memory_sharing:
        group[list(cores)] = min(cores)
    return group
