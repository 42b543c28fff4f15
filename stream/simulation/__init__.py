"""Discrete-event replay of compute and data movement (simpy).

Skeleton (issue 2):

* each core runs one CN at a time; among CNs whose inputs have arrived, the lowest
  CN index (a topological order) goes first;
* a transfer holds every link of its route (fewest hops; a bus is one hop) and, when it
  touches DRAM, the DRAM port, for ``ceil(bits / slowest bandwidth)`` cycles;
* weights and network inputs start in DRAM and are fetched once per core, as soon as
  every producer of the CN that needs them has started; final outputs of the last
  layers are written back to DRAM; a tensor that crosses fusion groups goes to DRAM and
  its consumers read it from there (in ``layer_by_layer`` mode every layer is its own
  group), inside a group it moves core to core;
* each core's top memory tracks occupancy: inputs from the moment their transfer
  starts until their last local consumer ends, outputs from the start of their CN until
  every consumer has them. No spilling yet: an overflow is reported, not hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import simpy

from stream.allocation import Allocation
from stream.cost import CostTable
from stream.errors import StreamError
from stream.hardware.ir import Accelerator
from stream.tiling import CNGraph

CAUSES = ("input_fetch", "weight_fetch", "core_to_core", "dram_write", "dram_read", "sink_write")


@dataclass(frozen=True)
class Transfer:
    cn: int  # the CN that reads the data (fetches, core to core) or wrote it (DRAM writes)
    src: int  # core id (the off-chip core for DRAM)
    dst: int
    bits: int
    start: int
    end: int
    cause: str
    links: tuple[int, ...]
    interconnect_energy_pj: float
    dram_energy_pj: float
    tensor: int = -1  # the external tensor fetched (weight or network input), else -1


@dataclass(eq=False)
class Trace:
    """Everything that happened in one simulated run."""

    cngraph: CNGraph
    allocation: Allocation
    accelerator: Accelerator
    start: np.ndarray  # (n,) per CN
    end: np.ndarray
    mac_energy_pj: np.ndarray  # (n,) per CN
    onchip_energy_pj: np.ndarray
    compute_cycles: np.ndarray  # (n,) the cost model's latency per CN on its core
    transfers: list[Transfer] = field(default_factory=list)
    memory: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # core -> [(time, occupancy bits)]

    @property
    def latency_cycles(self) -> int:
        ends = [int(self.end.max())] if self.end.size else [0]
        ends += [t.end for t in self.transfers]
        return max(ends)

    def peak_bits(self, core_id: int) -> int:
        return max((occ for _, occ in self.memory.get(core_id, [])), default=0)

    def check(self) -> None:
        """Assert the invariants every run must satisfy (DESIGN.md section 6)."""
        g, n = self.cngraph, self.cngraph.num_cns
        assert np.all(self.end >= self.start) and np.all(self.start >= 0), "a CN ran backwards or never"
        assert np.all(self.end - self.start == self.compute_cycles), "a CN ran for other than its cost"
        # every input was produced before its consumer started
        assert np.all(self.end[g.edge_src] <= self.start[g.edge_dst]), "a CN started before its inputs existed"
        # latency bounds: the longest dependency path and the busiest core
        longest = np.zeros(n, dtype=np.int64)
        for cn in range(n):
            preds = g.edge_src[g.in_ptr[cn]:g.in_ptr[cn + 1]]
            longest[cn] = (longest[preds].max() if preds.size else 0) + self.compute_cycles[cn]
        assert self.latency_cycles >= (longest.max() if n else 0), "latency below the critical path"
        busy = np.bincount(self.allocation.core, weights=self.compute_cycles) if n else np.zeros(1)
        assert self.latency_cycles >= busy.max(), "latency below the busiest core's work"
        for core_id, steps in self.memory.items():
            assert all(occ >= 0 for _, occ in steps), f"core {core_id}: occupancy below zero"
            assert steps[-1][1] == 0 if steps else True, f"core {core_id}: memory not freed at the end"
        # every byte a CN reads arrived on its core before it started
        fetched = {(t.dst, t.tensor): t.end for t in self.transfers if t.tensor >= 0}
        for t in self.transfers:
            assert t.end >= t.start and t.bits > 0, "an empty or backwards transfer"
            if t.cause in ("core_to_core", "dram_read"):
                assert t.end <= self.start[t.cn], f"CN {t.cn} started before its input arrived"
        for cn in range(n):
            core = int(self.allocation.core[cn])
            for ext in g.external_inputs(cn).tolist():
                assert fetched[(core, ext)] <= self.start[cn], f"CN {cn} started before its DRAM input arrived"
        # Occupancy above capacity is not an invariant yet: without spilling it is reported.


def simulate(cngraph: CNGraph, allocation: Allocation, costs: CostTable, accelerator: Accelerator) -> Trace:
    return _Simulator(cngraph, allocation, costs, accelerator).run()


class _Simulator:
    def __init__(self, g: CNGraph, allocation: Allocation, costs: CostTable, acc: Accelerator):
        if acc.offchip_core_id is None:
            raise StreamError(f"{acc.source_file}: the accelerator has no off-chip (DRAM) core; "
                              "weights and inputs need one (set offchip_core_id)")
        self.g, self.alloc, self.acc = g, allocation, acc
        self.env = simpy.Environment()
        self.dram_id = acc.offchip_core_id
        self.dram = acc.dram
        n = g.num_cns
        self.cost = [costs.get(cn, allocation[cn]) for cn in range(n)]
        self.start = np.zeros(n, dtype=np.int64)
        self.end = np.zeros(n, dtype=np.int64)
        self.cores = {c.id: simpy.PriorityResource(self.env, capacity=1) for c in acc.cores}
        self.links = {l.id: simpy.Resource(self.env, capacity=1) for l in acc.links}
        self.dram_port = simpy.Resource(self.env, capacity=1)
        self.started = [self.env.event() for _ in range(n)]  # CN began computing
        self.done = [self.env.event() for _ in range(n)]  # CN finished computing
        self.in_dram = [self.env.event() for _ in range(n)]  # CN output written to DRAM
        self.fetched: dict[tuple[int, int], simpy.Event] = {}
        self.transfers: list[Transfer] = []
        self.occupancy = {c.id: 0 for c in acc.cores}
        self.memory: dict[int, list[tuple[int, int]]] = {c.id: [] for c in acc.cores}
        self._network = self._interconnect()
        self._routes: dict[tuple[int, int], tuple[int, ...]] = {}
        # references that keep data resident: per CN output, per (core, external tensor)
        self.out_refs = np.zeros(n, dtype=np.int64)
        self.ext_uses: dict[tuple[int, int], int] = {}
        for cn in range(n):
            core = allocation[cn]
            for ext in g.external_inputs(cn).tolist():
                self.ext_uses[(core, ext)] = self.ext_uses.get((core, ext), 0) + 1
        # tensors crossing fusion groups go through DRAM; within a group, core to core
        self.via_dram = g.group[g.edge_src] != g.group[g.edge_dst]
        self.writeback = np.array([g.is_sink(cn) for cn in range(n)], dtype=bool)
        self.writeback[g.edge_src[self.via_dram]] = True
        np.add.at(self.out_refs, g.edge_src[~self.via_dram], 1)
        self.out_refs += self.writeback  # the write-back to DRAM holds it too

    # -- interconnect --------------------------------------------------------------
    def _interconnect(self) -> nx.Graph:
        graph = nx.Graph()
        graph.add_nodes_from(self.acc.core_ids)
        for link in self.acc.links:
            for i, a in enumerate(link.cores):
                for b in link.cores[i + 1:]:
                    current = graph.get_edge_data(a, b)
                    if current is None or link.bandwidth > self.acc.links[current["link"]].bandwidth:
                        graph.add_edge(a, b, link=link.id)
        return graph

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        key = (src, dst)
        if key not in self._routes:
            try:
                path = nx.shortest_path(self._network, src, dst)
            except nx.NetworkXNoPath:
                raise StreamError(f"{self.acc.source_file}: no connection between core {src} and core {dst} "
                                  "(add a core_connectivity entry)") from None
            self._routes[key] = tuple(self._network.edges[a, b]["link"] for a, b in zip(path, path[1:]))
        return self._routes[key]

    def transfer(self, cn: int, src: int, dst: int, bits: int, cause: str, on_start=None, tensor: int = -1):
        links = self.route(src, dst)
        dram = self.dram_id in (src, dst)
        held = [self.links[l] for l in sorted(set(links))] + ([self.dram_port] if dram else [])
        requests = []
        for resource in held:  # a fixed global order: no two transfers wait on each other
            request = resource.request()
            yield request
            requests.append((resource, request))
        if on_start is not None:
            on_start()
        bandwidths = [self.acc.links[l].bandwidth for l in links]
        if dram:
            bandwidths.append(self.dram.write_bw if dst == self.dram_id else self.dram.read_bw)
        start = self.env.now
        yield self.env.timeout(math.ceil(bits / min(bandwidths)) if bandwidths else 0)
        for resource, request in requests:
            resource.release(request)
        interconnect = bits * sum(self.acc.links[l].energy_per_bit for l in links)
        dram_energy = self.dram.access_energy(bits, write=dst == self.dram_id) if dram else 0.0
        self.transfers.append(Transfer(cn, src, dst, bits, start, self.env.now, cause, links,
                                       interconnect, dram_energy, tensor))

    # -- memory --------------------------------------------------------------------
    def occupy(self, core: int, bits: int) -> None:
        if bits == 0 or core == self.dram_id:
            return
        self.occupancy[core] += bits
        self.memory[core].append((self.env.now, self.occupancy[core]))

    def release_output(self, cn: int) -> None:
        self.out_refs[cn] -= 1
        if self.out_refs[cn] == 0:
            self.occupy(self.alloc[cn], -int(self.g.out_bits[cn]))

    # -- processes -----------------------------------------------------------------
    def fetch_external(self, core: int, ext: int) -> simpy.Event:
        """Fetch a DRAM tensor to ``core`` once; later users wait on the same event."""
        key = (core, ext)
        if key not in self.fetched:
            tensor = self.g.externals[ext]
            cause = "weight_fetch" if tensor.role.value == "weight" else "input_fetch"
            self.fetched[key] = self.env.process(self.transfer(
                -1, self.dram_id, core, tensor.bits, cause, on_start=lambda: self.occupy(core, tensor.bits),
                tensor=ext))
        return self.fetched[key]

    def deliver(self, edge: int, core: int):
        g = self.g
        src, bits = int(g.edge_src[edge]), int(g.edge_bits[edge])
        if self.via_dram[edge]:
            yield self.in_dram[src]
            if bits:
                yield from self.transfer(int(g.edge_dst[edge]), self.dram_id, core, bits, "dram_read",
                                         on_start=lambda: self.occupy(core, bits))
        else:
            yield self.done[src]
            if self.alloc[src] != core and bits:
                yield from self.transfer(int(g.edge_dst[edge]), self.alloc[src], core, bits, "core_to_core",
                                         on_start=lambda: self.occupy(core, bits))
                self.release_output(src)
            elif self.alloc[src] != core:
                self.release_output(src)

    def run_cn(self, cn: int):
        g, core = self.g, self.alloc[cn]
        # DRAM inputs are prefetched once every producer has started, not all at time 0,
        # so weights of later layers do not crowd the memory from the beginning.
        producers = sorted(set(g.edge_src[g.in_ptr[cn]:g.in_ptr[cn + 1]].tolist()))
        if producers:
            yield self.env.all_of([self.started[p] for p in producers])
        waits = [self.env.process(self.deliver(e, core)) for e in g.inputs(cn)]
        waits += [self.fetch_external(core, ext) for ext in g.external_inputs(cn).tolist()]
        if waits:
            yield self.env.all_of(waits)
        with self.cores[core].request(priority=cn) as request:
            yield request
            self.start[cn] = self.env.now
            self.started[cn].succeed()
            self.occupy(core, int(g.out_bits[cn]))
            yield self.env.timeout(self.cost[cn].latency_cycles)
            self.end[cn] = self.env.now
        self.done[cn].succeed()
        if self.out_refs[cn] == 0:  # no consumer needs any of it
            self.occupy(core, -int(g.out_bits[cn]))
        # inputs delivered to this core for this CN are no longer needed
        for e in g.inputs(cn):
            src = int(g.edge_src[e])
            if self.via_dram[e] or self.alloc[src] != core:
                self.occupy(core, -int(g.edge_bits[e]))
            else:
                self.release_output(src)
        for ext in g.external_inputs(cn).tolist():
            self.ext_uses[(core, ext)] -= 1
            if self.ext_uses[(core, ext)] == 0:
                self.occupy(core, -self.g.externals[ext].bits)
        if self.writeback[cn]:
            cause = "sink_write" if g.is_sink(cn) else "dram_write"
            yield from self.transfer(cn, core, self.dram_id, int(g.out_bits[cn]), cause)
            self.release_output(cn)
        self.in_dram[cn].succeed()

    def run(self) -> Trace:
        for cn in range(self.g.num_cns):
            self.env.process(self.run_cn(cn))
        self.env.run()
        unfinished = [cn for cn in range(self.g.num_cns) if not self.done[cn].triggered]
        if unfinished:
            raise StreamError(f"simulation stalled with {len(unfinished)} CNs unfinished (first: {unfinished[0]})")
        return Trace(
            cngraph=self.g, allocation=self.alloc, accelerator=self.acc,
            start=self.start, end=self.end,
            mac_energy_pj=np.array([c.mac_energy_pj for c in self.cost]),
            onchip_energy_pj=np.array([c.onchip_energy_pj for c in self.cost]),
            compute_cycles=np.array([c.latency_cycles for c in self.cost], dtype=np.int64),
            transfers=self.transfers,
            memory={core: steps for core, steps in self.memory.items() if steps},
        )
