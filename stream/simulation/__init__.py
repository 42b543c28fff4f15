"""Discrete-event replay of compute, data movement and memory occupancy (simpy).

``simulate(cngraph, allocation, costs, accelerator, policy=None) -> Trace``.

* **Cores.** A dispatcher per core starts the best-ranked CN allocated to it whose
  inputs are all on the core (:mod:`stream.simulation.order`: ``depth_first``, the fused
  default; ``latency``; ``layer_by_layer``, which also holds each layer back until the
  previous one has finished). A CN takes the cost model's cycles, longer only when it
  streams an operand from DRAM that its memory cannot hold.
* **Interconnect and DRAM** (:mod:`stream.simulation.network`): links, buses and mesh
  routes (XY) from the hardware file, each link busy for ``ceil(bits / bandwidth)``
  cycles per transfer; the DRAM ports are shared by all cores; a queued bus transfer
  carries the same data to several cores at once (multicast).
* **Data.** Weights and network inputs start in DRAM and are fetched once per memory,
  kept while they have uses there. A producer's output stays in its core's memory until
  its consumers there have run and every other core that needs it has its copy; a
  tensor crossing fusion groups is written to DRAM and read back; network outputs end
  in DRAM.
* **Memory** (:mod:`stream.simulation.engine`): every core's top memory per operand
  (a memory shared by several cores counted once) has a capacity; a core loads the next
  CN while the current one runs when it fits, and spills (furthest next use first) when
  the next CN to run does not; what cannot fit even then streams.

The :class:`Trace` records every CN, transfer (route, bits, cause) and occupancy step;
:meth:`Trace.check` asserts the invariants of docs/architecture.md.
"""

from __future__ import annotations

from stream.allocation import Allocation
from stream.cost import CostTable
from stream.hardware.ir import Accelerator
from stream.simulation.engine import PREFETCH_DEPTH, Engine
from stream.simulation.order import POLICIES, default_policy
from stream.simulation.trace import CAUSES, EXTERNAL, OUTPUT, MemoryTimeline, Trace, Transfers
from stream.tiling import CNGraph

__all__ = ["CAUSES", "EXTERNAL", "OUTPUT", "POLICIES", "PREFETCH_DEPTH", "MemoryTimeline", "Trace", "Transfers",
           "default_policy", "simulate"]


def simulate(cngraph: CNGraph, allocation: Allocation, costs: CostTable, accelerator: Accelerator,
             policy: str | None = None, progress=None) -> Trace:
    """Replay ``cngraph`` as allocated; ``policy`` defaults to the graph's mode;
    ``progress(message)``, if given, hears how far the run is every few seconds."""
    policy = policy or default_policy(cngraph.mode)
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    return Engine(cngraph, allocation, costs, accelerator, policy, progress).run()
