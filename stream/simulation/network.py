"""The interconnect and the DRAM ports, as reservations.

Each link, bus and DRAM port is busy until a known cycle. A transfer requested at time t
starts once every link of its route and the DRAM port it uses are free, holds them all
for ``ceil(bits / slowest bandwidth)`` cycles, and pushes their free times to its end:
first come, first served per resource, as a queue of simpy requests would be, but with
one event per transfer instead of one per resource.

Routes come from :mod:`stream.hardware.routes` (fewest hops, XY on a mesh).

Long transfers go in chunks of ``CHUNK_CYCLES``: each chunk queues anew, so a weight
tensor of many kilobytes interleaves with the small transfers behind it the way bursts
do on a real bus, instead of holding the bus for its whole length.

Multicast (see ``Engine.move``): a transfer of the same data from the same source over
one bus that is still queued (it has not started yet) takes new destinations along for
free; they receive it when it ends.
"""

from __future__ import annotations

import math
from stream.errors import StreamError
from stream.hardware.ir import Accelerator, Port
from stream.hardware.routes import Routes


CHUNK_CYCLES = 512  # longest uninterrupted hold of a route


class Network:
    def __init__(self, acc: Accelerator):
        self.acc = acc
        self.dram_id = acc.offchip_core_id
        self.link_free = [0] * len(acc.links)
        self.link_busy = [0] * len(acc.links)  # cycles each link carried data
        self.bandwidth = [float(l.bandwidth) for l in acc.links]
        self.energy_per_bit = [float(l.energy_per_bit) for l in acc.links]
        for link in acc.links:
            if link.bandwidth <= 0:
                raise StreamError(f"{acc.source_file}: link {link.id} between cores {list(link.cores)} "
                                  f"has bandwidth {link.bandwidth}; expected a positive number of bits per cycle")
        dram = acc.dram
        self.dram = dram
        ports = dram.ports if dram is not None else ()
        self.read_ports = [i for i, p in enumerate(ports) if p.can_read and p.bw_max > 0]
        self.write_ports = [i for i, p in enumerate(ports) if p.can_write and p.bw_max > 0]
        self.ports: tuple[Port, ...] = tuple(ports)
        self.port_free = [0] * len(ports)
        if dram is not None and (not self.read_ports or not self.write_ports):
            raise StreamError(f"{acc.source_file}: the off-chip memory {dram.name!r} needs a read and a write "
                              "port with a positive bandwidth_max (ports: read, write or read_write)")
        self.routes: list[tuple[int, ...]] = []  # route id -> link ids, in order
        self.route_bandwidth: list[float] = []  # route id -> its slowest link's bits per cycle
        self._route_ids: dict[tuple[int, ...], int] = {}
        self._route_of: dict[tuple[int, int], int] = {}
        self.routing = Routes(acc)

    # -- routes --------------------------------------------------------------------
    def route(self, src: int, dst: int) -> int:
        """Route id from core ``src`` to core ``dst`` (the empty route when equal)."""
        key = (src, dst)
        rid = self._route_of.get(key)
        if rid is None:
            links = self.routing.links(src, dst)
            rid = self._route_ids.setdefault(links, len(self.routes))
            if rid == len(self.routes):
                self.routes.append(links)
                self.route_bandwidth.append(min((self.bandwidth[l] for l in links), default=math.inf))
            self._route_of[key] = rid
        return rid

    def bus(self, rid: int) -> int | None:
        """The bus a route consists of, if it is one bus hop."""
        links = self.routes[rid]
        return links[0] if len(links) == 1 and self.acc.links[links[0]].kind == "bus" else None

    # -- reservations --------------------------------------------------------------
    def occupy(self, now: int, rid: int, src: int, dst: int, bits: int) -> tuple[int, int]:
        """Hold route ``rid`` (and the DRAM port, if it ends there) for ``bits`` from ``now`` on."""
        links = self.routes[rid]
        bandwidth = self.route_bandwidth[rid]
        start = now
        link_free = self.link_free
        for l in links:
            if link_free[l] > start:
                start = link_free[l]
        port = self.port(src, dst, start) if src == self.dram_id or dst == self.dram_id else None
        if port is not None:
            start = max(start, self.port_free[port])
            bandwidth = min(bandwidth, self.ports[port].bw_max)
        duration = math.ceil(bits / bandwidth) if bits and bandwidth != math.inf else 0
        end = start + duration
        for l in links:
            self.link_free[l] = end
            self.link_busy[l] += duration
        if port is not None:
            self.port_free[port] = end
        return start, end

    def port(self, src: int, dst: int, start: int) -> int | None:
        """The DRAM port a transfer uses (the one free first), None if DRAM is not an end."""
        if src != self.dram_id and dst != self.dram_id:
            return None
        candidates = self.read_ports if src == self.dram_id else self.write_ports
        if len(candidates) == 1:
            return candidates[0]
        return min(candidates, key=lambda i: (max(self.port_free[i], start), i))

    def energy(self, rid: int, src: int, dst: int, bits: int) -> tuple[float, float]:
        """(interconnect, DRAM) pJ of moving ``bits`` over route ``rid``."""
        return bits * sum(self.energy_per_bit[l] for l in self.routes[rid]), self.dram_energy(src, dst, bits)

    def dram_energy(self, src: int, dst: int, bits: int) -> float:
        """pJ of the DRAM reading or writing ``bits`` (0 when DRAM is neither end)."""
        if src == self.dram_id:
            return self.dram.access_energy(bits, write=False, port=self.ports[self.read_ports[0]])
        if dst == self.dram_id:
            return self.dram.access_energy(bits, write=True, port=self.ports[self.write_ports[0]])
        return 0.0

    def bandwidth_of(self, rid: int, src: int, dst: int) -> float:
        """Bits per cycle of route ``rid`` without contention (inf: an empty route)."""
        bandwidth = min((self.bandwidth[l] for l in self.routes[rid]), default=math.inf)
        if self.dram_id in (src, dst):
            ports = self.read_ports if src == self.dram_id else self.write_ports
            bandwidth = min(bandwidth, max(self.ports[i].bw_max for i in ports))
        return bandwidth
