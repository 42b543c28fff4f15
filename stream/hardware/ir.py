"""Hardware IR: cores (operational array + memory hierarchy), links, DRAM.

Units follow the field's files: memory sizes in bits, bandwidths in bits per cycle,
``r_cost``/``w_cost`` in pJ per access of one full-width word (``bw_max`` bits),
``unit_energy`` in pJ per MAC, link ``energy_per_bit`` in pJ per bit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property

MEMORY_OPERANDS = ("I1", "I2", "O")
DEFAULT_PREFETCH_DEPTH = 2  # CNs a core holds loaded: the running one and the next (double buffering)
DIRECTIONS = ("fh", "tl", "fl", "th")  # from-higher, to-lower, from-lower, to-higher


@dataclass(frozen=True)
class Port:
    name: str
    kind: str  # "read" | "write" | "read_write"
    bw_min: float  # access granularity, bits (of reads, on a read-write port)
    bw_max: float  # word width, bits per cycle
    allocation: tuple[tuple[str, str], ...]  # (memory operand, direction)
    bw_min_write: float | None = None  # a read-write port's write granularity, when it differs

    def granularity(self, write: bool) -> float:
        return self.bw_min_write if (write and self.bw_min_write is not None) else self.bw_min

    @property
    def can_read(self) -> bool:
        return self.kind in ("read", "read_write")

    @property
    def can_write(self) -> bool:
        return self.kind in ("write", "read_write")


@dataclass(frozen=True)
class Memory:
    name: str
    size_bits: int
    r_cost: float  # pJ per full-width read
    w_cost: float  # pJ per full-width write
    operands: tuple[str, ...]  # subset of I1, I2, O
    ports: tuple[Port, ...]
    served_dimensions: tuple[str, ...]
    area: float = 0.0
    latency: int = 1
    auto_cost_extraction: bool = False
    double_buffering: bool = False

    @property
    def read_bw(self) -> float:
        """Widest read port, bits per cycle."""
        return max((p.bw_max for p in self.ports if p.can_read), default=0.0)

    @property
    def write_bw(self) -> float:
        return max((p.bw_max for p in self.ports if p.can_write), default=0.0)

    def port_for(self, operand: str, direction: str) -> Port | None:
        for port in self.ports:
            if (operand, direction) in port.allocation:
                return port
        return None

    def access_energy(self, bits: float, write: bool, port: Port | None = None) -> float:
        """pJ to move ``bits`` through a port: ZigZag's ceil(b/bw_min)*(bw_min/bw_max) words."""
        if bits <= 0:
            return 0.0
        if port is None:
            candidates = [p for p in self.ports if (p.can_write if write else p.can_read)]
            port = max(candidates, key=lambda p: p.bw_max) if candidates else None
        if port is None or port.bw_max <= 0:
            return 0.0
        granularity = port.granularity(write)
        words = math.ceil(bits / granularity) * (granularity / port.bw_max)
        return words * (self.w_cost if write else self.r_cost)


@dataclass(frozen=True)
class OperationalArray:
    dims: tuple[str, ...]
    sizes: tuple[int, ...]
    unit_energy: float  # pJ per MAC
    unit_area: float = 0.0

    @property
    def units(self) -> int:
        return math.prod(self.sizes) if self.sizes else 0


@dataclass(frozen=True)
class Core:
    id: int
    name: str
    kind: str  # "compute" | "offchip" | "memory"
    array: OperationalArray
    memories: tuple[Memory, ...]  # bottom-up, as in the file
    dataflows: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()  # array dim -> unrollings
    operator_types: tuple[str, ...] | None = None  # None: any operator
    source_file: str | None = None
    operator_costs: tuple[tuple[str, float], ...] = ()  # (op type, cost per element op per lane); absent: 1
    unmodelled: tuple[str, ...] = ()  # key paths of the core file read but not modelled
    # CNs the core holds loaded at once, the running one included: 1 fetches a CN's data only
    # once the one before has ended (no overlap of data movement and compute); 2 (default)
    # double-buffers: the next CN's data comes while the current one runs
    prefetch_depth: int = DEFAULT_PREFETCH_DEPTH
    # transfers into or out of the core in flight at once (its DMA channels); None: no limit
    dma_channels: int | None = None
    # an output's write-back to DRAM ends before the core starts its next CN (one output
    # buffer, drained before reuse); False: the write-back runs while the next CN computes
    blocking_writeback: bool = False

    @property
    def top_memory(self) -> Memory:
        return self.memories[-1]

    def memory_for(self, operand: str) -> Memory:
        """The top memory holding ``operand`` (I1, I2 or O), else the top memory."""
        holding = [m for m in self.memories if operand in m.operands]
        return holding[-1] if holding else self.top_memory

    @property
    def top_memories(self) -> tuple[Memory, ...]:
        """The memories at the top of the hierarchy of some operand (those a core_memory_sharing
        group shares), in the file's order."""
        tops = {self.memory_for(op).name for op in MEMORY_OPERANDS}
        return tuple(m for m in self.memories if m.name in tops)

    @property
    def is_compute(self) -> bool:
        return self.kind == "compute" and self.array.units > 0

    def supports(self, op_type: str) -> bool:
        return self.is_compute and (self.operator_types is None or op_type in self.operator_types)


@dataclass(frozen=True)
class Link:
    """A point-to-point link (two cores) or a shared bus (two or more)."""

    id: int
    kind: str  # "link" | "bus"
    cores: tuple[int, ...]
    bandwidth: float  # bits per cycle
    energy_per_bit: float = 0.0  # pJ per bit


@dataclass(frozen=True)
class Accelerator:
    name: str
    cores: tuple[Core, ...]
    links: tuple[Link, ...]
    offchip_core_id: int | None
    clock_hz: float = 1e9
    memory_sharing: tuple[tuple[int, ...], ...] = ()  # groups of cores sharing a top memory
    coordinates: tuple[tuple[int, tuple[int, int]], ...] = ()
    source_file: str | None = None
    default_mapping: str | None = None  # the mapping file a run uses when it is given none
    warnings: tuple[str, ...] = ()  # keys read but not modelled, and the like

    @cached_property
    def _by_id(self) -> dict[int, Core]:
        return {c.id: c for c in self.cores}

    def core(self, core_id: int) -> Core:
        return self._by_id[core_id]

    @property
    def core_ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.cores)

    @property
    def compute_cores(self) -> tuple[Core, ...]:
        return tuple(c for c in self.cores if c.is_compute)

    def sharing(self, core_id: int, memory: Memory) -> tuple[int, ...]:
        """The cores that hold ``memory`` of core ``core_id`` as one physical memory: its
        core_memory_sharing group when the memory is one of the core's top memories (every
        member has a memory of that name; the loader checks that they are identical), else
        the core alone."""
        for group in self.memory_sharing:
            if core_id in group and any(m.name == memory.name for m in self.core(core_id).top_memories):
                return tuple(sorted(group))
        return (core_id,)

    def with_prefetch_depth(self, depth: int) -> "Accelerator":
        """This accelerator with every core holding ``depth`` CNs loaded (a run's override of
        the core files' ``prefetch_depth``)."""
        return dataclasses.replace(self, cores=tuple(dataclasses.replace(c, prefetch_depth=depth) for c in self.cores))

    @property
    def offchip_core(self) -> Core | None:
        return None if self.offchip_core_id is None else self.core(self.offchip_core_id)

    @property
    def dram(self) -> Memory | None:
        core = self.offchip_core
        return None if core is None else core.top_memory
