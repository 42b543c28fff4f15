"""On-chip memories and the tensors in them, as the simulation engine tracks them."""

from __future__ import annotations

from array import array

from stream.simulation.trace import EXTERNAL

# tensor states: not in memory (never brought, or evicted), space reserved and data on
# its way (a transfer, or its producer computing), in memory, being written out to DRAM
ABSENT, COMING, RESIDENT, SPILLING = range(4)


class Tensor:
    """One tensor in one on-chip memory (or evicted from it).

    ``kind``/``data``: an external tensor (index into ``CNGraph.externals``) or the output
    of CN ``data``: in its producer's memory (``home``) or a copy in a consumer's memory,
    which comes core to core or, when the consumer is in a later fusion group (``via``),
    through DRAM.
    """

    __slots__ = ("key", "kind", "data", "pool", "bits", "refs", "pins", "state", "in_dram", "fetched",
                 "home", "via", "weight", "waiters", "after_spill", "mark")

    def __init__(self, key: int, kind: int, data: int, pool: "Pool", bits: int, refs: int,
                 home: bool = False, via: bool = False, weight: bool = False):
        self.key, self.kind, self.data, self.pool, self.bits = key, kind, data, pool, bits
        self.home, self.via = home, via
        self.weight = weight  # a layer's weights (tracked apart, to tell weights from feature maps)
        self.refs = refs  # uses left in this memory: consumer CNs, outgoing copies, the write-back
        self.pins = 0  # loaded CNs and running transfers that need it now
        self.state = ABSENT
        # DRAM holds its data (evicting it costs nothing): external tensors, and the copies
        # read from DRAM across fusion groups
        self.in_dram = kind == EXTERNAL or via
        self.fetched = False  # was in memory once: bringing it again is a re-fetch
        self.waiters: list[int] = []  # loaded CNs waiting for it to arrive
        self.after_spill: list | None = None  # callbacks once a spill in progress ends
        self.mark = -1  # the last load attempt that counted it (a CN may read a tensor twice)


class Pool:
    """One on-chip memory: capacity, occupancy over time, who loads into it."""

    __slots__ = ("index", "name", "memory", "cores", "capacity", "used", "times", "bits", "tensors", "blocked",
                 "weights", "weight_times", "weight_bits", "last")

    def __init__(self, index: int, name: str, memory: str, cores: tuple[int, ...], capacity: int):
        self.index, self.name, self.memory, self.cores, self.capacity = index, name, memory, cores, capacity
        self.used = 0
        self.times, self.bits = array("q"), array("q")
        self.last = -1  # the last time in ``times``
        self.weights = 0  # of which weights
        self.weight_times, self.weight_bits = array("q"), array("q")
        self.tensors: dict[int, Tensor] = {}  # resident or arriving, by key
        self.blocked: set[int] = set()  # cores whose loader waits for room here

    def change(self, now: int, delta: int, weight: bool = False) -> None:
        self.used += delta
        if self.last == now:
            self.bits[-1] = self.used  # several changes in one cycle: keep where it ends
        else:
            self.last = now
            self.times.append(now)
            self.bits.append(self.used)
        if weight:
            self.weights += delta
            if self.weight_times and self.weight_times[-1] == now:
                self.weight_bits[-1] = self.weights
            else:
                self.weight_times.append(now)
                self.weight_bits.append(self.weights)
