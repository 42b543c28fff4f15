"""On-chip memories and the tensors in them, as the simulation engine tracks them."""

from __future__ import annotations

from array import array

from stream.simulation.trace import EXTERNAL

# tensor states: not in memory (never brought, or evicted), space reserved and data on
# its way (a transfer, or its producer computing), in memory, being written out to DRAM
ABSENT, COMING, RESIDENT, SPILLING = range(4)
# what a tensor holds, for the occupancy breakdown: feature maps (activations, network
# inputs and outputs), a layer's weights, partial sums of an unfinished reduction
FEATURES, WEIGHTS, PARTIALS = range(3)


class Tensor:
    """One tensor in one on-chip memory (or evicted from it).

    ``kind``/``data``: an external tensor (index into ``CNGraph.externals``) or the output
    of CN ``data``: in its producer's memory (``home``) or a copy in a consumer's memory,
    which comes core to core or, when the consumer is in a later fusion group (``via``),
    through DRAM.
    """

    __slots__ = ("key", "kind", "data", "pool", "bits", "refs", "pins", "state", "in_dram", "fetched",
                 "home", "via", "share", "waiters", "after_spill", "mark")

    def __init__(self, key: int, kind: int, data: int, pool: "Pool", bits: int, refs: int,
                 home: bool = False, via: bool = False, share: int = FEATURES):
        self.key, self.kind, self.data, self.pool, self.bits = key, kind, data, pool, bits
        self.home, self.via = home, via
        self.share = share  # FEATURES, WEIGHTS or PARTIALS: which part of the occupancy it counts in
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

    __slots__ = ("index", "name", "memory", "cores", "capacity", "used", "parts", "times", "bits", "weight_bits",
                 "partial_bits", "tensors", "blocked", "last")

    def __init__(self, index: int, name: str, memory: str, cores: tuple[int, ...], capacity: int):
        self.index, self.name, self.memory, self.cores, self.capacity = index, name, memory, cores, capacity
        self.used = 0
        self.parts = [0, 0, 0]  # of ``used``: feature maps, weights, partial sums
        # the occupancy step function: from each time on (to the next), bits in total and
        # of weights and of partial sums
        self.times, self.bits, self.weight_bits, self.partial_bits = array("q"), array("q"), array("q"), array("q")
        self.last = -1  # the last time in ``times``
        self.tensors: dict[int, Tensor] = {}  # resident or arriving, by key
        self.blocked: set[int] = set()  # cores whose loader waits for room here

    def change(self, now: int, delta: int, share: int = FEATURES) -> None:
        self.used += delta
        parts = self.parts
        parts[share] += delta
        if self.last == now:  # several changes in one cycle: keep where it ends
            self.bits[-1], self.weight_bits[-1], self.partial_bits[-1] = self.used, parts[WEIGHTS], parts[PARTIALS]
        else:
            self.last = now
            self.times.append(now)
            self.bits.append(self.used)
            self.weight_bits.append(parts[WEIGHTS])
            self.partial_bits.append(parts[PARTIALS])
