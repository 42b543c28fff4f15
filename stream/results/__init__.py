"""Summaries of a simulated run: :class:`Result`, saved as versioned JSON.

Units: cycles of the accelerator clock, seconds, picojoules (pJ), bytes.
Energy parts:

* ``mac``: operations in the operational arrays (MACs x ``unit_energy``);
* ``onchip_memory``: accesses to the cores' memories inside each CN (cost model);
* ``offchip_memory``: DRAM reads and writes (weights, inputs, outputs, spills);
* ``interconnect``: bits moved over links and buses x their energy per bit.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np

from stream.simulation import Trace

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerSummary:
    name: str
    op_type: str
    cns: int
    cores: tuple[int, ...]
    macs: int
    start_cycle: int
    end_cycle: int
    energy_pj: float  # MAC + on-chip memory energy of its CNs


@dataclass(frozen=True)
class Result:
    schema_version: int
    workload: str
    hardware: str
    mode: str
    allocator: str
    clock_hz: float
    latency_cycles: int
    latency_s: float
    energy_pj: dict  # total, mac, onchip_memory, offchip_memory, interconnect
    peak_memory_bytes: dict  # "core<id>.<memory>" -> bytes at the busiest moment
    memory_capacity_bytes: dict  # same keys -> capacity in bytes
    dram_traffic_bytes: dict  # read, write
    core_utilisation: dict  # "core<id>" -> busy cycles / latency
    num_cns: int
    num_edges: int
    layers: tuple[LayerSummary, ...]
    warnings: tuple[str, ...] = ()
    cost_model: dict = field(default_factory=dict)  # model, objective, cost-table entries, hits, misses

    def to_dict(self) -> dict:
        data = asdict(self)
        data["layers"] = [asdict(l) | {"cores": list(l.cores)} for l in self.layers]
        data["warnings"] = list(self.warnings)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        write_atomic(path, self.to_json())

    @classmethod
    def from_dict(cls, data: dict) -> "Result":
        fields = dict(data)
        fields["layers"] = tuple(LayerSummary(**(l | {"cores": tuple(l["cores"])})) for l in data["layers"])
        fields["warnings"] = tuple(data.get("warnings", ()))
        return cls(**fields)


def summarize(trace: Trace, warnings: tuple[str, ...] = (), cost_model: dict | None = None) -> Result:
    g, acc = trace.cngraph, trace.accelerator
    latency = trace.latency_cycles
    dram_read = sum(t.bits for t in trace.transfers if t.src == acc.offchip_core_id)
    dram_write = sum(t.bits for t in trace.transfers if t.dst == acc.offchip_core_id)
    mac = float(trace.mac_energy_pj.sum())
    onchip = float(trace.onchip_energy_pj.sum())
    offchip = float(sum(t.dram_energy_pj for t in trace.transfers))
    interconnect = float(sum(t.interconnect_energy_pj for t in trace.transfers))
    energy = {"total": mac + onchip + offchip + interconnect, "mac": mac, "onchip_memory": onchip,
              "offchip_memory": offchip, "interconnect": interconnect}

    peak, capacity, notes = {}, {}, list(warnings)
    for core in acc.cores:
        if core.id == acc.offchip_core_id:
            continue
        key = f"core{core.id}.{core.top_memory.name}"
        peak[key] = math.ceil(trace.peak_bits(core.id) / 8)
        capacity[key] = core.top_memory.size_bits // 8
        if peak[key] > capacity[key]:
            notes.append(f"{key}: peak {peak[key]} B exceeds its capacity {capacity[key]} B "
                         "(this version does not spill yet)")

    busy = np.bincount(trace.allocation.core, weights=trace.compute_cycles, minlength=max(acc.core_ids) + 1)
    utilisation = {f"core{c.id}": (float(busy[c.id]) / latency if latency else 0.0)
                   for c in acc.cores if c.is_compute}

    layers = []
    for li, layer in enumerate(g.workload.layers):
        cns = np.flatnonzero(g.layer == li)
        layers.append(LayerSummary(
            name=layer.name, op_type=layer.op_type, cns=int(cns.size),
            cores=tuple(sorted({int(c) for c in trace.allocation.core[cns]})),
            macs=int(g.macs[cns].sum()), start_cycle=int(trace.start[cns].min()),
            end_cycle=int(trace.end[cns].max()),
            energy_pj=float(trace.mac_energy_pj[cns].sum() + trace.onchip_energy_pj[cns].sum()),
        ))
    return Result(
        schema_version=SCHEMA_VERSION, workload=g.workload.name, hardware=acc.name, mode=g.mode,
        allocator=trace.allocation.method, clock_hz=acc.clock_hz, latency_cycles=int(latency),
        latency_s=latency / acc.clock_hz, energy_pj=energy, peak_memory_bytes=peak,
        memory_capacity_bytes=capacity,
        dram_traffic_bytes={"read": math.ceil(dram_read / 8), "write": math.ceil(dram_write / 8)},
        core_utilisation=utilisation, num_cns=g.num_cns, num_edges=g.num_edges,
        layers=tuple(layers), warnings=tuple(notes), cost_model=dict(cost_model or {}),
    )


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a file so readers never see it half-written."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
