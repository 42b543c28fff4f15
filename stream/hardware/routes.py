"""Routes between cores: which links a transfer from one core to another crosses.

Fewest hops, a bus being one hop. Among equally short routes the walk prefers a move
along x, then along y (the cores' ``core_coordinates``), then the lowest link id, so a
2-D mesh routes XY (all x moves first) and every route is deterministic. Shared by the
allocator (to estimate transfers) and the simulator (to hold the links).
"""

from __future__ import annotations

import math
from collections import deque

from stream.errors import StreamError
from stream.hardware.ir import Accelerator


class Routes:
    def __init__(self, acc: Accelerator):
        self.acc = acc
        self._neighbours: dict[int, list[tuple[int, int]]] = {c: [] for c in acc.core_ids}
        for link in acc.links:
            for a in link.cores:
                for b in link.cores:
                    if a != b:
                        self._neighbours[a].append((b, link.id))
        self._xy = {core: xy for core, xy in acc.coordinates}
        self._links: dict[tuple[int, int], tuple[int, ...]] = {}

    def links(self, src: int, dst: int) -> tuple[int, ...]:
        """Link ids from core ``src`` to core ``dst``, in order (none when equal)."""
        key = (src, dst)
        links = self._links.get(key)
        if links is None:
            links = self._links[key] = self._walk(src, dst)
        return links

    def bandwidth(self, src: int, dst: int) -> float:
        """Bits per cycle of the slowest link from ``src`` to ``dst`` (inf when equal)."""
        return min((self.acc.links[l].bandwidth for l in self.links(src, dst)), default=math.inf)

    def _walk(self, src: int, dst: int) -> tuple[int, ...]:
        if src == dst:
            return ()
        hops = {dst: 0}  # breadth-first distances to dst
        frontier = deque([dst])
        while frontier:
            node = frontier.popleft()
            for other, _ in self._neighbours[node]:
                if other not in hops:
                    hops[other] = hops[node] + 1
                    frontier.append(other)
        if src not in hops:
            raise StreamError(f"{self.acc.source_file}: no connection between core {src} and core {dst} "
                              "(add a core_connectivity entry)")
        links, node = [], src
        while node != dst:
            steps = [(self._preference(node, other, link), other, link)
                     for other, link in self._neighbours[node] if hops.get(other) == hops[node] - 1]
            _, node, link = min(steps)
            links.append(link)
        return tuple(links)

    def _preference(self, a: int, b: int, link: int) -> tuple[int, int, int]:
        xa, xb = self._xy.get(a), self._xy.get(b)
        if xa is not None and xb is not None and self.acc.links[link].kind == "link":
            if xa[1] == xb[1] and abs(xa[0] - xb[0]) == 1:
                return (0, link, b)  # an x move
            if xa[0] == xb[0] and abs(xa[1] - xb[1]) == 1:
                return (1, link, b)  # a y move
        return (2, link, b)
