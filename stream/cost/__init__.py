"""Per-core cost of a compute node: latency and energy inside one core.

Skeleton (issue 2): a roofline.

* compute cycles: with a fixed ``dataflows`` spatial unrolling, the product over loop
  dims of ``ceil(span / unroll)`` (unrolled dims the layer lacks are wasted array);
  without one, ``ceil(MACs / units)``;
* memory cycles: every operand crosses the core's top memory once: inputs read at its
  read bandwidth, the final output written at its write bandwidth;
* latency = max(compute, memory cycles); energy = MACs x ``unit_energy`` (MAC) plus
  the top-memory accesses (on-chip memory), priced per ZigZag's port rule.

Traffic between cores and DRAM is not part of this cost: the simulator moves tensors.
Results are cached per (layer signature, tile shape, core).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream.hardware.ir import Accelerator, Core
from stream.workload.ir import Layer


@dataclass(frozen=True)
class CNCost:
    latency_cycles: int
    compute_cycles: int
    memory_cycles: int
    mac_energy_pj: float
    onchip_energy_pj: float

    @property
    def energy_pj(self) -> float:
        return self.mac_energy_pj + self.onchip_energy_pj


class CostTable:
    """Costs per (unique CN shape, core); look up with :meth:`get`."""

    def __init__(self, model: "CostModel", cngraph):
        self._model = model
        self._cngraph = cngraph
        self._cache: dict[tuple, CNCost] = {}
        self._signatures = [_signature(layer) for layer in cngraph.workload.layers]
        self._spans = cngraph.stops - cngraph.starts
        self.hits = 0
        self.misses = 0

    def get(self, cn: int, core_id: int) -> CNCost:
        g = self._cngraph
        layer_index = int(g.layer[cn])
        layer = g.workload.layers[layer_index]
        spans = tuple(self._spans[cn, : len(layer.dims)].tolist())
        key = (self._signatures[layer_index], spans, core_id)
        cost = self._cache.get(key)
        if cost is None:
            self.misses += 1
            cost = self._model.cost(layer, g.box(cn), self._model.accelerator.core(core_id))
            self._cache[key] = cost
        else:
            self.hits += 1
        return cost

    def __len__(self) -> int:
        return len(self._cache)


class CostModel:
    def __init__(self, accelerator: Accelerator):
        self.accelerator = accelerator

    def table(self, cngraph) -> CostTable:
        return CostTable(self, cngraph)

    def cost(self, layer: Layer, box, core: Core) -> CNCost:
        spans = {d: stop - start for d, (start, stop) in box.items()}
        macs = math.prod(spans.values())
        compute = _compute_cycles(spans, macs, core)
        top = core.top_memory
        in_bits = sum(layer.footprint_bits(op.name, box) for op in layer.inputs)
        out_bits = layer.footprint_bits(layer.output.name, box)
        memory = max(_cycles(in_bits, top.read_bw), _cycles(out_bits, top.write_bw))
        onchip = top.access_energy(in_bits, write=False) + top.access_energy(out_bits, write=True)
        return CNCost(
            latency_cycles=max(compute, memory, 1),
            compute_cycles=compute,
            memory_cycles=memory,
            mac_energy_pj=macs * core.array.unit_energy,
            onchip_energy_pj=onchip,
        )


def _compute_cycles(spans: dict[str, int], macs: int, core: Core) -> int:
    if not core.dataflows:
        return -(-macs // max(core.array.units, 1))
    unroll: dict[str, int] = {}
    for _array_dim, entries in core.dataflows:
        for dim, factor in entries:
            if dim in spans:
                unroll[dim] = unroll.get(dim, 1) * factor
    return math.prod(-(-n // min(unroll.get(d, 1), n)) for d, n in spans.items())


def _cycles(bits: float, bandwidth: float) -> int:
    if bits <= 0:
        return 0
    if bandwidth <= 0:
        raise ValueError("memory without a port in that direction")
    return math.ceil(bits / bandwidth)


def _signature(layer: Layer) -> tuple:
    """Everything about a layer that its cost depends on, besides the tile shape."""
    return (
        layer.op_type, layer.dims, layer.kinds,
        tuple((op.name, op.precision, op.partial_precision,
               tuple((a.terms, a.extent, a.offset) for a in op.axes)) for op in layer.operands),
    )
