"""The discrete-event engine behind :func:`stream.simulation.simulate`.

simpy keeps the clock and the event queue; everything that happens is a callback on a
simpy event (a CN finishing, a transfer arriving), so a CN costs a handful of events
and a million-CN run stays fast.

Per core, a *loader* walks the core's CNs in rank order and, at most the core's
``prefetch_depth`` CNs ahead (default 2: the running one and the next), reserves memory for what each
needs (inputs not yet on the core and its output), pins it and starts the transfers;
a *dispatcher* starts the best-ranked CN whose inputs have all arrived. A tensor stays
in memory while it has uses on that memory (``refs``) and is locked while a loaded CN
or an outgoing transfer needs it (``pins``).

When a loader cannot fit the next CN to run, it spills unlocked tensors, the one whose
next use is furthest first (their data goes to DRAM unless it is already there, and is
fetched again when needed). What still cannot fit streams while the CN runs, from DRAM or
from its producer's core, the largest operand first (the CN lasts as long as its streams
when they are longer), so a run never stalls for memory. A stream carries what the CN
reads (its dependency's bits), not the producer's whole tile that a copy in memory holds
for every consumer there.

Why a run always ends. Ranks are a topological order, so the lowest-ranked unfinished CN y
has every producer finished, and its core has nothing else loaded (a core loads in rank
order, and every CN ranked below y is done). If y is loaded, its inputs come from finished
producers or DRAM, by transfers that end, and it runs when its core is free. If it is not,
its core's loader tries it, and y waits for room only for what certainly happens and then
wakes it (a spill being written, a tensor on its way, a running CN ending); room held by
CNs that are merely loaded on cores sharing its memory (and might wait for y) it does not
wait for: it streams what does not fit instead (first_unloaded). Every wait registers
where the event that ends it will look: a pool's ``blocked`` set, woken when room frees,
a tensor lands, a CN ending on a core that loads into it, or the lowest unloaded CN
changing.
"""

from __future__ import annotations

import gc
import heapq
import time
from array import array

import numpy as np
import simpy

from stream.allocation import Allocation
from stream.cost import CostTable
from stream.errors import StreamError
from stream.hardware.ir import DEFAULT_PREFETCH_DEPTH, Accelerator
from stream.simulation.memory import ABSENT, COMING, FEATURES, PARTIALS, RESIDENT, SPILLING, WEIGHTS, Pool, Tensor
from stream.simulation.network import CHUNK_CYCLES, Network
from stream.simulation.order import ranks
from stream.simulation.trace import CAUSE, EXTERNAL, OUTPUT, MemoryTimeline, Trace, Transfers
from stream.tiling import CNGraph, PARTIAL
from stream.tiling.csr import concatenated_ranges
from stream.workload.ir import Role

PREFETCH_DEPTH = DEFAULT_PREFETCH_DEPTH  # a core's default prefetch_depth (CNs it holds loaded)
LOOKAHEAD_GROUPS = 0  # weights are prefetched for the current fusion group and this many more
PROGRESS_SECONDS = 5.0  # between progress reports
PROGRESS_EVERY = 65536  # finished CNs between looks at the clock

# what an input edge needs (per edge, precomputed)
_ORDER_ONLY, _LOCAL, _COPY, _VIA_DRAM = 0, 1, 2, 3
_UNLOADED, _LOADED, _DONE = range(3)  # CN phases
_NEVER = 1 << 62
_READS = {CAUSE[c] for c in ("input_fetch", "weight_fetch", "dram_read", "refetch", "core_to_core")}  # multicast


class Engine:
    """One simulated run of ``g`` as allocated (see the module docstring); :meth:`run` once."""

    def __init__(self, g: CNGraph, allocation: Allocation, costs: CostTable, acc: Accelerator, policy: str,
                 progress=None):
        if acc.offchip_core_id is None:
            raise StreamError(f"{acc.source_file}: the accelerator has no off-chip (DRAM) core; "
                              "weights and inputs need one (set offchip_core_id)")
        self.g, self.alloc, self.acc, self.policy = g, allocation, acc, policy
        self.env = simpy.Environment()
        self.net = Network(acc)
        self.dram_id = acc.offchip_core_id
        n = g.num_cns
        self.n = n
        # The engine numbers CNs by rank (rank order is a topological order): the best-ranked
        # ready CN is the lowest id, and CNs that run close together sit close in memory.
        latency, mac, onchip = costs.arrays(allocation.core)
        self.latency_arr, self.mac, self.onchip = latency, mac, onchip
        self.rank = ranks(g, policy, latency)  # original id -> engine id
        self.original = np.empty_like(self.rank)  # engine id -> original id
        self.original[self.rank] = np.arange(n)
        h = self.h = _Numbered(g, self.rank, self.original)
        core = allocation.core.astype(np.int64)[self.original]
        self.core = core.tolist()
        self.latency = latency[self.original].tolist()
        # cycles per engine id (typed arrays: no int object per entry)
        self.start, self.end, self.ready_at = (array("q", bytes(8 * n)) for _ in range(3))
        self.phase = bytearray(n)  # _UNLOADED, _LOADED, _DONE per CN
        self.unloaded_from = 0  # no CN below it is unloaded (see first_unloaded)
        self.layer = h.layer.tolist()
        self.in_ptr = h.in_ptr.tolist()
        self.out_bits = h.out_bits.tolist()
        self.out_share = np.where(h.completes, FEATURES, PARTIALS).tolist()  # a partial sum until its last tile
        self._pools(acc)
        self._edges(h, core)
        self._externals(h, core)
        # per core: its CNs in rank (= id) order, the loader's position, loaded CNs, ready heap
        compute = sorted(self.pool_out)
        by_core = np.argsort(core, kind="stable")
        sorted_cores = core[by_core]
        self.order = {c: by_core[np.searchsorted(sorted_cores, c):np.searchsorted(sorted_cores, c, side="right")]
                      .tolist() for c in compute}
        slots = max(acc.core_ids) + 1  # per-core state below: lists indexed by core id
        self.order_len = [len(self.order.get(c, ())) for c in range(slots)]
        self.next_load = [0] * slots
        self.weights_next = [0] * slots  # how far weights are prefetched
        self.prefetching = [False] * slots  # a weight prefetch of the core is under way
        self.margin = [0] * len(self.pools)  # room prefetched weights leave free, per memory
        self.group = h.group.tolist()
        self.ext_ptr = h.ext_ptr.tolist()
        self.loaded = [0] * slots
        self.depth = [DEFAULT_PREFETCH_DEPTH] * slots  # per core: CNs it may hold loaded
        self.channels = [None] * slots  # per core: transfers in flight at once (None: any number)
        self.blocking = [False] * slots  # per core: the next CN waits for the last write-back
        for c in acc.cores:
            self.depth[c.id], self.channels[c.id], self.blocking[c.id] = (c.prefetch_depth, c.dma_channels,
                                                                          c.blocking_writeback)
        self.writing = [0] * slots  # per core with blocking write-back: write-backs under way
        self.in_flight = [0] * slots  # per core: its transfers under way
        self.dma_waiting: list[list] = [[] for _ in range(slots)]  # per core: transfers waiting for a channel
        self.busy = [False] * slots
        self.ready: list[list[int]] = [[] for _ in range(slots)]
        self.tensors: dict[int, Tensor] = {}  # alive tensors by key (see new_tensor)
        self.loaded_info: dict[int, tuple] = {}  # loaded CN -> (pinned, streamed inputs, output, output streamed)
        self.outstanding = [0] * n  # per loaded CN: inputs and producers still awaited
        self.done_waiters: dict[int, list] = {}  # CN -> callbacks when it finishes
        self.dram_waiters: dict[int, list] = {}  # CN -> callbacks when its output is in DRAM
        self.load_waiters: dict[int, list] = {}  # CN -> cores waiting for it to be loaded
        self.kicked: set[int] = set()
        self.ext_users = None  # built on the first spill of an external tensor
        # layer_by_layer: a layer starts only once every earlier layer has finished
        self.barrier = policy == "layer_by_layer"
        self.layer_left = np.bincount(h.layer, minlength=len(g.workload.layers)).tolist()
        self.frontier = 0
        self._advance_frontier()
        self.log = array("d")  # every transfer, see _record()
        self.chunk_log = array("q")  # (transfer row, start, end) of each chunk of a chunked transfer
        self.paths: dict[tuple, tuple] = {}  # see path()
        self.now = 0  # the current cycle, set as each event runs
        self.on_event = self._on_event  # one bound method for every event
        self.attempt = 0  # loads tried so far (see Tensor.mark)
        self.progress, self.finished, self.reported = progress, 0, time.perf_counter()
        self.queued: dict[tuple, tuple] = {}  # bus reads riders may join: key -> (start, riders, destinations)

    # -- set-up --------------------------------------------------------------------
    def _pools(self, acc: Accelerator) -> None:
        """One pool per distinct top memory of each operand; shared top memories once."""
        share = {c.id: (c.id,) for c in acc.cores}
        for group in acc.memory_sharing:
            for c in group:
                share[c] = tuple(sorted(group))
        self.share = {c: min(cores) for c, cores in share.items()}
        pools: dict[tuple, Pool] = {}
        self.pool_in, self.pool_weight, self.pool_out = {}, {}, {}
        for core in acc.cores:
            if core.id == self.dram_id:
                continue
            for operand, table in (("I1", self.pool_in), ("I2", self.pool_weight), ("O", self.pool_out)):
                memory = core.memory_for(operand)
                cores = acc.sharing(core.id, memory)  # a shared memory is matched by name
                key = (cores, memory.name)
                if key not in pools:
                    name = f"core{'+'.join(map(str, cores))}.{memory.name}"
                    pools[key] = Pool(len(pools), name, memory.name, cores, memory.size_bits)
                table[core.id] = pools[key]
        self.pools = list(pools.values())
        self.loaders_of = {p.index: sorted({c for c, q in (*self.pool_in.items(), *self.pool_weight.items(),
                                                          *self.pool_out.items()) if q is p}) for p in self.pools}

    def _edges(self, g: _Numbered, core: np.ndarray) -> None:
        """Classify every input edge, and group copies: one per (producer, memory, route)."""
        src, dst = g.edge_src, g.edge_dst
        share = np.array([self.share.get(c, c) for c in range(max(self.share) + 1)])
        via = g.group[src] != g.group[dst]
        carries = g.edge_bits > 0  # a sequential edge carries the state to the next tile
        same_memory = share[core[src]] == share[core[dst]]
        cls = np.full(src.size, _ORDER_ONLY, dtype=np.int8)
        cls[carries & ~via & same_memory] = _LOCAL
        cls[carries & ~via & ~same_memory] = _COPY
        cls[carries & via] = _VIA_DRAM
        self.cls = cls
        self.dst = dst  # consumers per edge, for spill choices
        # a copy lands in the consumer's input memory (its output memory for partial sums)
        copy_edges = np.flatnonzero(cls >= _COPY)
        c_src, c_via, c_dst_core = src[copy_edges], via[copy_edges], core[dst[copy_edges]]
        c_pool = np.where(g.edge_kind[copy_edges] == PARTIAL, self._pool_index(self.pool_out)[c_dst_core],
                          self._pool_index(self.pool_in)[c_dst_core])
        keys = (c_src * (len(self.pools) + 1) + c_pool) * 2 + c_via
        # copies between cores serve every consumer in the memory; a consumer in a later
        # fusion group reads just its own slice from DRAM when it needs it, as an unfused
        # layer (or a chunk after a fusion cut) does
        keys = np.where(c_via, int(keys.max(initial=0)) + 1 + np.arange(keys.size), keys)
        first, inverse, counts = _groups(keys, int(keys.max()) + 1 if keys.size else 1)
        self.n_copies = int(first.size)
        self.copy_refs = counts.tolist()
        bits = np.bincount(inverse, weights=g.edge_bits[copy_edges], minlength=first.size).astype(np.int64)
        copy_src = c_src[first]
        # a copy holds what its consumers read of the producer's output, at most all of it
        self.copy_bits = np.minimum(bits, g.out_bits[copy_src]).tolist()
        self.copy_src = copy_src.tolist()
        self.copy_pool = c_pool[first].tolist()
        self.copy_via = c_via[first].tolist()
        # per input edge, the key of the tensor it reads (see new_tensor); -1 - producer: none
        key = np.where(cls == _LOCAL, src, -1 - src)  # (order-only edges keep -1 - producer)
        key[copy_edges] = g.num_cns + inverse
        self.edge_key = key
        # an output's uses: local consumers, each direct copy, and its write-back to DRAM
        writeback = np.zeros(g.num_cns, dtype=bool)
        writeback[src[cls == _VIA_DRAM]] = True
        sinks = np.diff(g.out_ptr) == 0  # no consumer: a network output
        writeback |= sinks & (g.out_bits > 0)
        refs = np.bincount(src[cls == _LOCAL], minlength=g.num_cns)
        refs += np.bincount(copy_src[~c_via[first]], minlength=g.num_cns)
        refs += writeback
        self.out_refs = refs.tolist()
        self.writeback = writeback.tolist()
        self.sink = sinks.tolist()

    def _pool_index(self, pools: dict[int, Pool]) -> np.ndarray:
        """Per core id, the index of its memory in ``pools`` (-1 for the DRAM)."""
        index = np.full(max(self.acc.core_ids) + 1, -1, dtype=np.int64)
        for core_id, pool in pools.items():
            index[core_id] = pool.index
        return index

    def _externals(self, g: _Numbered, core: np.ndarray) -> None:
        """One tensor per (external tensor, memory): its uses in that memory."""
        uses = np.diff(g.ext_ptr)
        cn_of = np.repeat(np.arange(g.num_cns), uses)
        weight = np.array([e.role is Role.WEIGHT for e in g.externals], dtype=bool)
        cores = core[cn_of]
        pools = np.where(weight[g.ext_ids] if g.ext_ids.size else np.zeros(0, dtype=bool),
                         self._pool_index(self.pool_weight)[cores], self._pool_index(self.pool_in)[cores])
        keys = g.ext_ids * (len(self.pools) + 1) + pools
        first, inverse, counts = _groups(keys, int(keys.max()) + 1 if keys.size else 1)
        self.ext_rep = inverse  # aligned with g.ext_ids
        self.ext_key = g.num_cns + self.n_copies + self.ext_rep
        self.ext_refs = counts.tolist()
        self.ext_data = g.ext_ids[first].tolist()
        self.ext_pool = pools[first].tolist()
        self.ext_bits = [e.bits for e in g.externals]
        self.ext_weight = weight.tolist()
        self._needs(g)

    def _needs(self, g: _Numbered) -> None:
        """Per CN, as CSR arrays: the keys of the tensors it reads (its data edges', then its
        external tensors'), and the producers it only waits for."""
        n, data = g.num_cns, self.cls != _ORDER_ONLY
        data_count = np.bincount(g.edge_dst[data], minlength=n)
        ext_count = np.diff(g.ext_ptr)
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(data_count + ext_count, out=ptr[1:])
        keys = np.empty(int(ptr[-1]), dtype=np.int64)
        keys[concatenated_ranges(ptr[:-1], data_count)] = self.edge_key[data]  # edges are sorted by consumer
        keys[concatenated_ranges(ptr[:-1] + data_count, ext_count)] = self.ext_key
        self.need_key, self.need_ptr = keys, ptr.tolist()
        waits = ~data
        self.order_src = g.edge_src[waits]
        self.order_ptr = np.concatenate([[0], np.cumsum(np.bincount(g.edge_dst[waits], minlength=n))]).tolist()

    # -- events --------------------------------------------------------------------
    def at(self, when: int, callback, *args) -> None:
        """Run ``callback(*args)`` at cycle ``when`` (now or later), then let cores react."""
        event = self.env.timeout(when - self.now)
        event.run, event.args = callback, args
        event.callbacks.append(self.on_event)

    def _on_event(self, event) -> None:
        self.now = self.env.now  # whole cycles: every delay is an int
        event.run(*event.args)
        self.pump()

    def kick_pool(self, pool: Pool) -> None:
        """Memory freed (or became evictable) in ``pool``: wake the loaders waiting on it."""
        if pool.blocked:
            self.kicked.update(pool.blocked)
            pool.blocked.clear()

    def pump(self) -> None:
        """Let every core whose situation changed load and dispatch what it can."""
        kicked, loaded, busy, ready = self.kicked, self.loaded, self.busy, self.ready
        while kicked:
            core = kicked.pop() if len(kicked) == 1 else min(kicked)
            kicked.discard(core)
            if loaded[core] < self.depth[core] or self.weights_next[core] < self.order_len[core]:
                self.load(core)
            if not busy[core] and ready[core]:
                self.dispatch(core)

    def path(self, src: int, dst: int) -> tuple:
        """(route id, its bus or None, bits per chunk, interconnect pJ per bit) from ``src`` to ``dst``."""
        key = (src, dst)
        info = self.paths.get(key)
        if info is None:
            net = self.net
            rid = net.route(src, dst)
            bandwidth = net.bandwidth_of(rid, src, dst)
            chunk = _NEVER if bandwidth == float("inf") else max(1, int(CHUNK_CYCLES * bandwidth))
            info = self.paths[key] = (rid, net.bus(rid), chunk, net.energy(rid, src, dst, 1)[0])
        return info

    def move(self, cn: int, src: int, dst: int, bits: int, cause: str, kind: int, data: int, then=None) -> None:
        """Start a transfer now and record it; run ``then`` when it ends.

        The transfer belongs to the core it goes to (to the core it leaves, when it goes to
        DRAM); a core with ``dma_channels`` keeps at most that many under way, the others
        wait their turn, first come first served. A read still queued for the same data from
        the same source over one bus takes this destination along (multicast) unless it
        already goes there. A transfer longer than ``CHUNK_CYCLES`` goes chunk by chunk.
        """
        owner = src if dst == self.dram_id else dst
        limit = self.channels[owner]
        if limit is not None:
            if self.in_flight[owner] >= limit:
                self.dma_waiting[owner].append((cn, src, dst, bits, cause, kind, data, then))
                return
            self.in_flight[owner] += 1
            then = self._free_channel_after(owner, then)
        net, now = self.net, self.now
        rid, bus, chunk, pj_per_bit = self.path(src, dst)
        key = (kind, data, bits, src, bus) if bus is not None and CAUSE[cause] in _READS else None
        queued = self.queued.get(key) if key is not None else None
        if queued is not None and queued[0] >= now:
            if dst not in queued[2]:  # another memory: ride along
                queued[1].append((cn, dst, cause, then))
                queued[2].add(dst)
                return
            key = None  # a second copy into the same memory is a read of its own
        first = bits if bits <= chunk else chunk
        start, end = net.occupy(now, rid, src, dst, first)
        riders: list = []
        if key is not None:
            self.queued[key] = (start, riders, {dst})
        spans = [start, end]  # each chunk's start and end, when there are several

        def complete():
            dram = net.dram_energy(src, dst, bits)
            if len(spans) > 2:
                row = len(self.log) // 13
                for i in range(0, len(spans), 2):
                    self.chunk_log.extend((row, spans[i], spans[i + 1]))
            self._record(cn, src, dst, bits, start, self.now, cause, rid, False, kind, data, bits * pj_per_bit, dram)
            if then is not None:
                then()
            if key is not None:
                if self.queued.get(key, (None, None))[1] is riders:
                    del self.queued[key]
                for rider_cn, rider_dst, rider_cause, rider_then in riders:
                    self._record(rider_cn, src, rider_dst, bits, start, self.now, rider_cause,
                                 self.path(src, rider_dst)[0], True, kind, data, 0.0, 0.0)
                    if rider_then is not None:
                        rider_then()

        if first == bits:
            self.at(end, complete)
        else:
            self.env.process(self._chunks(rid, src, dst, bits - first, chunk, end, complete, spans))

    def _free_channel_after(self, owner: int, then):
        """``then``, after handing the owner's DMA channel to its next waiting transfer."""
        def done():
            self.in_flight[owner] -= 1
            if self.dma_waiting[owner]:
                self.move(*self.dma_waiting[owner].pop(0))
            if then is not None:
                then()

        return done

    def _chunks(self, rid, src, dst, left, chunk, end, complete, spans):
        """The rest of a long transfer, each chunk queueing behind what arrived meanwhile
        (their start and end cycles appended to ``spans``)."""
        while True:
            yield self.env.timeout(end - self.now)
            self.now = int(self.env.now)
            if left <= 0:
                break
            part = min(chunk, left)
            left -= part
            begin, end = self.net.occupy(self.now, rid, src, dst, part)
            spans += (begin, end)
        complete()
        self.pump()

    def _record(self, cn, src, dst, bits, start, end, cause, route, shared, kind, data, interconnect, dram) -> None:
        # one flat float64 log, 13 values a transfer (exact: every integer here is below 2**53)
        self.log.extend((cn, src, dst, bits, start, end, CAUSE[cause], route, shared, kind, data, interconnect, dram))

    # -- tensors -------------------------------------------------------------------
    def allocate(self, t: Tensor) -> None:
        t.state = COMING
        t.pool.change(self.now, t.bits, t.share)
        t.pool.tensors[t.key] = t

    def release(self, t: Tensor, uses: int = 1) -> None:
        """``uses`` of ``t`` are over; free it once none are left and nothing holds it."""
        t.refs -= uses
        if t.refs == 0 and t.pins == 0:
            self._drop(t)

    def unpin(self, t: Tensor) -> None:
        t.pins -= 1
        if t.pins == 0:
            if t.refs == 0:
                self._drop(t)
            else:
                self.kick_pool(t.pool)  # now evictable

    def _drop(self, t: Tensor) -> None:
        if t.state == SPILLING:
            return  # the spill's end frees the space and forgets it
        if t.state != ABSENT:
            pool = t.pool
            pool.change(self.now, -t.bits, t.share)
            del pool.tensors[t.key]
            if pool.blocked:
                self.kick_pool(pool)
        del self.tensors[t.key]
        if not t.fetched and not t.home and not t.via and t.kind == OUTPUT:
            self.release(self.tensors[t.data])  # every consumer streamed it: the copy was never made

    def arrive(self, t: Tensor) -> None:
        t.state = RESIDENT
        t.fetched = True
        if t.pool.blocked:  # it may be evicted now, to make room for a waiting loader
            self.kick_pool(t.pool)
        waiters, t.waiters = t.waiters, []
        for x in waiters:
            self.satisfy(x)

    def satisfy(self, x: int) -> None:
        """One thing ``x`` waited for is there; when none is left, it is ready to run."""
        left = self.outstanding[x] - 1
        self.outstanding[x] = left
        if left == 0:
            self.ready_at[x] = self.now
            core = self.core[x]
            heapq.heappush(self.ready[core], x)
            self.kicked.add(core)

    def on_done(self, p: int, callback) -> None:
        self.done_waiters.setdefault(p, []).append(callback)

    def on_dram(self, p: int, callback) -> None:
        """Run ``callback`` once CN ``p``'s output is in DRAM."""
        out = self.tensors.get(p)
        if self.phase[p] == _DONE and (out is None or out.in_dram):
            callback()
        else:
            self.dram_waiters.setdefault(p, []).append(callback)

    def fetch(self, t: Tensor, x: int, after=None) -> None:
        """Bring ``t`` (space already reserved) into its memory, for CN ``x``; then ``after()``."""
        dst = t.pool.cores[0] if self.core[x] not in t.pool.cores else self.core[x]

        def land():
            self.arrive(t)
            if after is not None:
                after()
        if t.kind == EXTERNAL:
            cause = "refetch" if t.fetched else ("weight_fetch" if self.ext_weight[t.data] else "input_fetch")
            self.move(x, self.dram_id, dst, t.bits, cause, EXTERNAL, t.data, then=land)
        elif t.home:  # a local producer's output, evicted (or streamed) to DRAM
            self.on_dram(t.data, lambda: self.move(x, self.dram_id, dst, t.bits, "refetch", OUTPUT, t.data, then=land))
        elif t.fetched:  # a copy evicted earlier: its data waits in DRAM
            self.move(x, self.dram_id, dst, t.bits, "refetch", OUTPUT, t.data, then=land)
        elif t.via:  # into a later fusion group: read from DRAM once the producer wrote it
            self.on_dram(t.data, lambda: self.move(x, self.dram_id, dst, t.bits, "dram_read", OUTPUT, t.data,
                                                   then=land))
        elif self.phase[t.data] != _DONE:
            self.on_done(t.data, lambda: self._copy(t, x, dst))
        else:
            self._copy(t, x, dst)

    def _copy(self, t: Tensor, x: int, dst: int) -> None:
        """A producer's output to a consumer's memory: core to core, or from DRAM if evicted."""
        p = t.data
        out = self.tensors[p]  # alive: this copy is one of its uses
        if out.state == SPILLING:
            out.after_spill = (out.after_spill or []) + [lambda: self._copy(t, x, dst)]
            return
        resident = out.state == RESIDENT
        if resident:
            out.pins += 1

        def landed():
            self.arrive(t)
            if resident:
                self.unpin(out)
            self.release(out)

        if resident:
            self.move(x, self.core[p], dst, t.bits, "core_to_core", OUTPUT, p, then=landed)
        else:
            t.in_dram = True  # read from where the producer's output was evicted to
            self.move(x, self.dram_id, dst, t.bits, "refetch", OUTPUT, p, then=landed)

    def spill(self, t: Tensor) -> None:
        """Evict ``t`` (resident, unpinned) to DRAM, writing it there first unless DRAM has it."""
        if t.in_dram:
            t.pool.change(self.now, -t.bits, t.share)
            del t.pool.tensors[t.key]
            t.state = ABSENT
            self.kick_pool(t.pool)
            return
        t.state = SPILLING
        src = t.pool.cores[0] if not t.home else self.core[t.data]

        def written():
            t.pool.change(self.now, -t.bits, t.share)
            del t.pool.tensors[t.key]
            t.in_dram = True
            t.state = ABSENT
            self.kick_pool(t.pool)
            if t.refs == 0 and t.pins == 0:
                del self.tensors[t.key]
            callbacks, t.after_spill = t.after_spill or (), None
            for callback in callbacks:
                callback()
            if t.home:
                self._wrote(t.data)

        self.move(-1, src, self.dram_id, t.bits, "spill", t.kind, t.data, then=written)

    def _wrote(self, p: int) -> None:
        """CN ``p``'s output is in DRAM: readers in later fusion groups may go."""
        for callback in self.dram_waiters.pop(p, ()):
            callback()

    # -- loading -------------------------------------------------------------------
    def new_tensor(self, key: int) -> Tensor:
        """The tensor of a copy or external key (keys below n are outputs, made by _commit)."""
        r = key - self.n
        if r < self.n_copies:
            src = self.copy_src[r]
            t = Tensor(key, OUTPUT, src, self.pools[self.copy_pool[r]], self.copy_bits[r],
                       self.copy_refs[r], False, self.copy_via[r], self.out_share[src])
        else:
            r -= self.n_copies
            data = self.ext_data[r]
            t = Tensor(key, EXTERNAL, data, self.pools[self.ext_pool[r]], self.ext_bits[data], self.ext_refs[r],
                       False, False, WEIGHTS if self.ext_weight[data] else FEATURES)
        self.tensors[key] = t
        return t

    def load(self, core: int) -> None:
        """Load the core's next CNs in rank order while its window and its memory allow."""
        order, i, loaded = self.order[core], self.next_load[core], self.loaded
        while i < len(order) and loaded[core] < self.depth[core] and self.try_load(order[i], core):
            i += 1
        self.next_load[core] = i
        if self.weights_next[core] < len(order):
            self.prefetch_weights(core)

    def prefetch_weights(self, core: int) -> None:
        """Fetch weights of the core's coming CNs (in its current fusion group, and
        ``LOOKAHEAD_GROUPS`` more) into free memory, keeping room for twice the largest
        working set seen there: they stay anyway, and fetching them early hides DRAM
        behind compute. One at a time, in the order the CNs need them: issued together,
        they would share the DRAM port chunk by chunk and the first CN's weights would
        arrive with the last's."""
        order, i = self.order[core], self.weights_next[core]
        if i >= len(order) or self.prefetching[core]:
            return
        i = max(i, self.next_load[core])
        last_group = self.group[order[min(self.next_load[core], len(order) - 1)]] + LOOKAHEAD_GROUPS
        base = self.n + self.n_copies
        ext_ptr, ext_rep = self.ext_ptr, self.ext_rep
        while i < len(order):
            y = order[i]
            if self.group[y] > last_group:
                break
            for r in ext_rep[ext_ptr[y]:ext_ptr[y + 1]].tolist():
                if not self.ext_weight[self.ext_data[r]]:
                    continue
                t = self.tensors.get(base + r) or self.new_tensor(base + r)
                if t.state != ABSENT:
                    continue
                pool = t.pool
                if pool.used + t.bits + self.margin[pool.index] > pool.capacity:
                    self.weights_next[core] = i
                    pool.blocked.add(core)
                    return
                self.allocate(t)
                self.prefetching[core] = True
                self.fetch(t, y, after=lambda: self._prefetched(core))
                self.weights_next[core] = i
                return
            i += 1
        self.weights_next[core] = i

    def _prefetched(self, core: int) -> None:
        self.prefetching[core] = False
        self.kicked.add(core)

    def try_load(self, x: int, core: int) -> bool:
        """Reserve, pin and start fetching what ``x`` needs, if it fits; False: not now."""
        keys = self.need_key[self.need_ptr[x]:self.need_ptr[x + 1]].tolist()
        o0, o1 = self.order_ptr[x], self.order_ptr[x + 1]
        order_only = self.order_src[o0:o1].tolist() if o1 > o0 else []
        tensors, demand = [], {}
        get, n = self.tensors.get, self.n
        self.attempt = attempt = self.attempt + 1
        for key in keys:
            t = get(key)
            if t is None:
                if key < n:  # its producer runs on another core sharing this memory, not loaded yet
                    self.load_waiters.setdefault(key, []).append(core)
                    return False
                t = self.new_tensor(key)
            state = t.state
            if state == ABSENT and t.mark != attempt:  # counted once if x reads it twice
                t.mark = attempt
                demand[t.pool] = demand.get(t.pool, 0) + t.bits
            elif state == SPILLING:
                t.pool.blocked.add(core)
                return False  # back once the spill is written
            tensors.append(t)
        out_bits, out_pool = self.out_bits[x], self.pool_out[core]
        if out_bits:
            demand[out_pool] = demand.get(out_pool, 0) + out_bits
        margin = self.margin
        for pool, bits in demand.items():
            if pool.used + bits > pool.capacity:
                return self._make_room(x, core, tensors, order_only, out_bits, out_pool)
            if bits > margin[pool.index] // 2:  # the working set beside weights, for prefetching
                margin[pool.index] = 2 * bits
        self._commit(x, core, tensors, order_only, (), out_bits, out_pool)
        return True

    def _make_room(self, x, core, tensors, order_only, out_bits, out_pool) -> bool:
        """``x`` does not fit: wait, spill or stream (see the module docstring)."""
        if self.loaded[core] > 0:  # prefetch only into free space; back when something frees
            for t in tensors:
                t.pool.blocked.add(core)
            self.pool_out[core].blocked.add(core)
            return False
        unique = list({t.key: t for t in tensors}.values())
        streamed: set = set()
        while True:
            demand: dict[Pool, int] = {}
            for t in unique:
                if t.state == ABSENT and t not in streamed:
                    demand[t.pool] = demand.get(t.pool, 0) + t.bits
            if out_bits and x not in streamed:
                demand[out_pool] = demand.get(out_pool, 0) + out_bits
            short = [pool for pool, bits in demand.items() if pool.used + bits > pool.capacity]
            if not short:
                break
            if streamed:  # choose_streams streams until the rest fits
                raise StreamError(f"CN {x} cannot fit in {short[0].name} even streamed; please report this")
            certain, held = self.evict(short, demand, {t.key for t in unique})
            # Waiting for memory that other loaded CNs hold could wait forever (they may wait
            # for this CN's output); the lowest-ranked CN not yet loaded waits only for what
            # certainly happens, and otherwise streams (see the module docstring)
            if certain or (held and x != self.first_unloaded()):
                for pool in short:
                    pool.blocked.add(core)
                return False
            if any(pool.used + demand[pool] > pool.capacity for pool in short):
                streamed = self.choose_streams(x, unique, demand, out_pool, out_bits)
        self._commit(x, core, tensors, order_only, streamed, out_bits, out_pool)
        return True

    def _commit(self, x, core, tensors, order_only, streamed, out_bits, out_pool) -> None:
        self.phase[x] = _LOADED
        self.loaded[core] += 1
        now, waiting, via_streams = self.now, 1, []
        pinned = [t for t in tensors if t not in streamed] if streamed else tensors
        stream_in = [t for t in tensors if t in streamed] if streamed else []
        for t in stream_in:
            if t.kind == OUTPUT and t.via:
                via_streams.append(t.data)
                waiting += 1
            elif t.kind == OUTPUT and not t.in_dram and self.phase[t.data] != _DONE:
                order_only.append(t.data)
        for t in pinned:
            t.pins += 1
            state = t.state
            if state != RESIDENT:
                waiting += 1
                t.waiters.append(x)
                if state == ABSENT:
                    t.state = COMING
                    t.pool.change(now, t.bits, t.share)
                    t.pool.tensors[t.key] = t
                    self.fetch(t, x)  # lands in a later event, never before this returns
        if order_only:
            phase = self.phase
            order_only = [p for p in order_only if phase[p] != _DONE]
            waiting += len(order_only)
        self.outstanding[x] = waiting  # one more than awaited: the guard released at the end
        for p in via_streams:
            self.on_dram(p, lambda: self.satisfy(x))
        for p in order_only:
            self.on_done(p, lambda: self.satisfy(x))
        out = None
        if out_bits:
            out = self.tensors[x] = Tensor(x, OUTPUT, x, out_pool, out_bits, self.out_refs[x], True,
                                           share=self.out_share[x])
            if x not in streamed:
                self.allocate(out)
                out.pins = 1
        self.loaded_info[x] = (pinned, stream_in, out, x in streamed)
        if x == self.unloaded_from and self.first_unloaded() < self.n:
            self.kicked.add(self.core[self.unloaded_from])  # its CN now loads without waiting for room
        if self.load_waiters:
            self.kicked.update(self.load_waiters.pop(x, ()))
        self.satisfy(x)

    def evict(self, short: list[Pool], demand: dict, keep: set[int]) -> tuple[bool, bool]:
        """Spill to make room in ``short`` memories. Returns (certain, held): something that
        certainly happens may make room and wakes this loader when it does (a spill being
        written, a tensor arriving, a transfer out ending, a running CN ending); room is
        held by other loaded CNs, which may be waiting themselves."""
        certain = held = False
        for pool in short:
            need = pool.used + demand[pool] - pool.capacity
            need -= sum(t.bits for t in pool.tensors.values() if t.state == SPILLING)
            if need <= 0:
                certain = True
                continue
            candidates = [t for t in pool.tensors.values()
                          if t.pins == 0 and t.state == RESIDENT and t.key not in keep]
            candidates.sort(key=lambda t: (-self.next_use(t), -t.bits, t.key))
            for t in candidates:
                if need <= 0:
                    break
                need -= t.bits
                certain |= not t.in_dram
                self.spill(t)
            if need > 0:
                loaders = self.loaders_of[pool.index]
                # a tensor on its way (its producer has run: nothing it waits for can wait on us)
                certain |= any(t.key not in keep and t.state == COMING and (t.kind == EXTERNAL or self.phase[t.data] == _DONE)
                               for t in pool.tensors.values())
                certain |= any(self.busy[c] for c in loaders)
                held |= any(t.key not in keep and t.pins > 0 for t in pool.tensors.values())
                held |= any(self.loaded[c] for c in loaders)
        return certain, held

    def first_unloaded(self) -> int:
        """The lowest-ranked CN not yet loaded (n when every CN is)."""
        while self.unloaded_from < self.n and self.phase[self.unloaded_from] != _UNLOADED:
            self.unloaded_from += 1
        return self.unloaded_from

    def next_use(self, t: Tensor) -> int:
        """Rank of the next CN that needs ``t`` in its memory (a large number: none)."""
        best = _NEVER
        if t.kind == EXTERNAL:
            if self.ext_users is None:
                order = np.argsort(self.ext_rep, kind="stable")
                cn_of = np.repeat(np.arange(self.n), np.diff(self.h.ext_ptr))
                self.ext_users = (cn_of[order], np.searchsorted(self.ext_rep[order], np.arange(len(self.ext_refs) + 1)))
            users, ptr = self.ext_users
            r = t.key - self.n - self.n_copies
            candidates = users[ptr[r]:ptr[r + 1]].tolist()
        else:
            p = t.data
            edges = self.h.out_edges[self.h.out_ptr[p]:self.h.out_ptr[p + 1]]
            if t.home:
                edges = edges[(self.cls[edges] == _LOCAL) | (self.cls[edges] == _COPY)]
            else:
                edges = edges[self.edge_key[edges] == t.key]  # the edges this copy serves
            candidates = self.dst[edges].tolist()
        for cn in candidates:
            if self.phase[cn] == _UNLOADED and cn < best:
                best = cn
        return best

    def choose_streams(self, x, tensors, demand, out_pool, out_bits) -> set:
        """What ``x`` streams in (from DRAM, or from its producer's core) or out while it runs,
        largest first, until the rest fits."""
        options = [(t.bits, t.key, t) for t in {t.key: t for t in tensors}.values() if t.state == ABSENT]
        if out_bits:
            options.append((out_bits, x, x))
        options.sort(key=lambda o: (-o[0], o[1]))
        streamed: set = set()
        for bits, _, item in options:
            pool = out_pool if item == x else item.pool
            if pool.used + demand[pool] <= pool.capacity:
                continue
            streamed.add(item)
            demand[pool] -= bits
        return streamed

    # -- running -------------------------------------------------------------------
    def dispatch(self, core: int) -> None:
        ready = self.ready[core]
        if self.busy[core] or not ready or self.writing[core]:
            return
        x = ready[0]
        if self.barrier and self.layer[x] != self.frontier:
            return
        heapq.heappop(ready)
        self.busy[core] = True
        now = self.now
        self.start[x] = now
        _, streamed, out, out_streamed = self.loaded_info[x]
        if not streamed and not out_streamed:
            self.at(now + self.latency[x], self.finish, x)
            return
        # it ends when its compute and every stream of its operands have ended
        parts = [1 + len(streamed) + out_streamed]

        def part_done():
            parts[0] -= 1
            if parts[0] == 0:
                self.finish(x)

        for t in streamed:
            source, then = self.dram_id, part_done
            if not t.in_dram:  # a producer's output on its core
                out_p = self.tensors[t.data]
                if out_p.state == RESIDENT:
                    source = self.core[t.data]
                    out_p.pins += 1
                    then = self._unpin_after(out_p, part_done)
            bits = t.bits if t.kind == EXTERNAL else self.read_bits(t.data, x)
            self.move(x, source, core, bits, "stream", t.kind, t.data, then=then)
        if out_streamed:
            self.move(-1, core, self.dram_id, out.bits, "stream", OUTPUT, x, then=part_done)
        self.at(now + self.latency[x], part_done)

    def read_bits(self, p: int, x: int) -> int:
        """The bits of CN ``p``'s output that CN ``x`` reads (its dependency): what a stream
        carries. A copy in memory holds what every consumer there reads; a stream is x's own."""
        e0, e1 = self.in_ptr[x], self.in_ptr[x + 1]
        return int(self.h.edge_bits[e0:e1][self.h.edge_src[e0:e1] == p].sum())

    def _unpin_after(self, t: Tensor, then):
        def done():
            self.unpin(t)
            then()

        return done

    def finish(self, x: int) -> None:
        self.finished += 1
        if self.progress is not None and self.finished % PROGRESS_EVERY == 0:
            self._report()
        core = self.core[x]
        self.end[x] = self.now
        self.phase[x] = _DONE
        self.busy[core] = False
        self.loaded[core] -= 1
        self.kicked.add(core)
        for pools in (self.pool_in, self.pool_weight, self.pool_out):  # waiters counted this CN as holding room
            self.kick_pool(pools[core])
        pinned, streamed, out, out_streamed = self.loaded_info.pop(x)
        if out is not None:
            if out_streamed:  # written to DRAM while it ran
                out.in_dram = True
                self.release(out, 1 if self.writeback[x] else 0)
                self._wrote(x)
            else:
                self.arrive(out)
                if self.writeback[x]:
                    self.write_back(x, out)
                out.pins -= 1  # its producer's hold
                if out.pins == 0:
                    if out.refs == 0:
                        self._drop(out)
                    elif out.pool.blocked:
                        self.kick_pool(out.pool)
        for t in pinned:  # unpin and release in one
            t.pins -= 1
            t.refs -= 1
            if t.pins == 0:
                if t.refs == 0:
                    self._drop(t)
                elif t.pool.blocked:
                    self.kick_pool(t.pool)
        for t in streamed:
            self.release(t)
        for callback in self.done_waiters.pop(x, ()):
            callback()
        if self.barrier:
            layer = self.layer[x]
            self.layer_left[layer] -= 1
            if self.layer_left[layer] == 0 and self._advance_frontier():
                self.kicked.update(self.order)

    def _report(self) -> None:
        """Tell ``progress`` how far the run is, at most every few seconds."""
        if time.perf_counter() - self.reported >= PROGRESS_SECONDS:
            self.reported = time.perf_counter()
            self.progress(f"simulating: {self.finished:,} of {self.n:,} CNs done, at cycle {self.now:,}")

    def write_back(self, x: int, out: Tensor) -> None:
        out.pins += 1
        core = self.core[x]
        if self.blocking[core]:
            self.writing[core] += 1

        def written():
            out.in_dram = True
            self.unpin(out)
            self.release(out)
            self._wrote(x)
            if self.blocking[core]:
                self.writing[core] -= 1
                self.kicked.add(core)  # its next CN may start

        cause = "sink_write" if self.sink[x] else "dram_write"
        self.move(-1, self.core[x], self.dram_id, out.bits, cause, OUTPUT, x, then=written)

    def _advance_frontier(self) -> bool:
        moved = False
        while self.frontier < len(self.layer_left) and self.layer_left[self.frontier] == 0:
            self.frontier += 1
            moved = True
        return moved

    def run(self) -> Trace:
        self.kicked.update(self.order)
        # The run makes millions of short-lived objects and no reference cycles that outlive
        # it; the cyclic collector would rescan every live tensor and row again and again.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.pump()
            self.env.run()
        finally:
            if collecting:
                gc.enable()
        left = [cn for cn in range(self.n) if self.phase[cn] != _DONE]
        if left:
            first = int(self.original[left[0]])
            raise StreamError(f"simulation stalled with {len(left)} CNs unfinished (first: CN {first} of layer "
                              f"{self.g.layer_of(first).name!r} on core {self.core[left[0]]}); please report this")
        log = np.frombuffer(self.log, dtype=np.float64).reshape(-1, 13) if len(self.log) else np.zeros((0, 13))
        c = [log[:, i] if i >= 11 else log[:, i].astype(np.int64) for i in range(13)]
        # back to the CN graph's numbering
        cn, kind, data = c[0], c[9], c[10]
        cn = np.where(cn >= 0, self.original[np.maximum(cn, 0)], -1)
        data = np.where(kind == OUTPUT, self.original[np.where(kind == OUTPUT, data, 0)], data)
        transfers = Transfers(
            cn=cn, src=c[1], dst=c[2], bits=c[3], start=c[4], end=c[5], cause=c[6].astype(np.int8), route=c[7],
            shared=c[8].astype(bool), data_kind=kind.astype(np.int8), data=data, interconnect_energy_pj=c[11],
            dram_energy_pj=c[12], routes=tuple(self.net.routes),
            chunks=np.frombuffer(self.chunk_log, dtype=np.int64).reshape(-1, 3).copy())
        memories = tuple(MemoryTimeline(p.name, p.cores, p.memory, p.capacity, _array(p.times), _array(p.bits),
                                        _array(p.weight_bits), _array(p.partial_bits)) for p in self.pools)
        return Trace(cngraph=self.g, allocation=self.alloc, accelerator=self.acc, policy=self.policy,
                     start=_array(self.start)[self.rank], end=_array(self.end)[self.rank],
                     ready=_array(self.ready_at)[self.rank],
                     compute_cycles=self.latency_arr,
                     mac_energy_pj=self.mac, onchip_energy_pj=self.onchip, transfers=transfers,
                     memories=memories, link_busy_cycles=tuple(self.net.link_busy))


class _Numbered:
    """The CN graph's per-CN and per-edge arrays with CNs renumbered (``rank[old] = new``)."""

    def __init__(self, g: CNGraph, rank: np.ndarray, original: np.ndarray):
        n = g.num_cns
        self.num_cns, self.externals = n, g.externals
        self.layer, self.group, self.out_bits = g.layer[original], g.group[original], g.out_bits[original]
        self.completes = g.completes[original]
        # edges stay grouped by consumer, the groups in the new order (no sort needed)
        counts = np.diff(g.in_ptr)[original]
        by_dst = concatenated_ranges(g.in_ptr[:-1][original], counts)
        self.edge_src, self.edge_dst = rank[g.edge_src[by_dst]], rank[g.edge_dst[by_dst]]
        self.edge_bits, self.edge_kind = g.edge_bits[by_dst], g.edge_kind[by_dst]
        self.in_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=self.in_ptr[1:])
        self.out_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.edge_src, minlength=n), out=self.out_ptr[1:])
        self._out_edges = None
        uses = np.diff(g.ext_ptr)[original]
        self.ext_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(uses, out=self.ext_ptr[1:])
        self.ext_ids = g.ext_ids[concatenated_ranges(g.ext_ptr[:-1][original], uses)]

    @property
    def out_edges(self) -> np.ndarray:
        """Edge ids sorted by producer (built when a spill first needs them)."""
        if self._out_edges is None:
            self._out_edges = np.argsort(self.edge_src, kind="stable")
        return self._out_edges


def _groups(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group equal ``keys`` (non-negative, below ``bound``) in order of key: the index of each
    group's first key, each key's group, each group's size. Like ``np.unique`` without a sort
    (it sorts when the keys are too sparse for a table of ``bound`` entries)."""
    if bound > 8 * keys.size + 4096:
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        return first, inverse.reshape(-1).astype(np.int64), counts
    present = np.zeros(bound, dtype=bool)
    present[keys] = True
    group_of = np.cumsum(present, dtype=np.int32) - 1
    inverse = group_of[keys]
    first = np.empty(int(present.sum()), dtype=np.int64)
    first[inverse[::-1]] = np.arange(keys.size - 1, -1, -1)
    return first, inverse.astype(np.int64), np.bincount(inverse, minlength=first.size)


def _array(values: array) -> np.ndarray:
    return np.frombuffer(values, dtype=np.int64) if len(values) else np.zeros(0, dtype=np.int64)
