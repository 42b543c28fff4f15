"""Summaries of a simulated run: :class:`Result`, saved as versioned JSON.

Units: cycles of the accelerator clock, seconds, picojoules (pJ), bytes.
Energy parts:

* ``mac``: operations in the operational arrays (MACs x ``unit_energy``);
* ``onchip_memory``: accesses to the cores' memories inside each CN (cost model);
* ``offchip_memory``: DRAM reads and writes (weights, inputs, outputs, spills);
* ``interconnect``: bits moved over links and buses x their energy per bit.

``transfer_energy_pj`` splits the last two by why the data moved (the causes of
:data:`stream.simulation.CAUSES`), ``traffic_bytes`` the bytes likewise.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np

from stream.results.timeline import Timeline, timeline_of
from stream.simulation import CAUSES, OUTPUT, Trace
from stream.units import size_text
from stream.workload.ir import Role

SCHEMA_VERSION = 4


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
    transfer_energy_pj: float  # DRAM + interconnect energy of the data it fetched and wrote
    dram_read_bytes: int  # its weights, inputs, re-fetches and reads across fusion groups
    dram_write_bytes: int  # its outputs written to DRAM, and spills of them


@dataclass(frozen=True)
class Result:
    schema_version: int
    workload: str
    hardware: str
    mode: str
    policy: str
    allocator: str
    clock_hz: float
    latency_cycles: int
    latency_s: float
    energy_pj: dict  # total, mac, onchip_memory, offchip_memory, interconnect
    transfer_energy_pj: dict  # per transfer cause: DRAM + interconnect pJ
    peak_memory_bytes: dict  # "core<id>.<memory>" -> bytes at the busiest moment
    peak_activation_bytes: dict  # same keys -> peak of all but weights (feature maps, partial sums)
    memory_capacity_bytes: dict  # same keys -> capacity in bytes
    dram_traffic_bytes: dict  # read, write
    traffic_bytes: dict  # per transfer cause, bytes moved
    spills: int  # tensors evicted to DRAM with a write (evictions of data DRAM holds are free)
    core_utilisation: dict  # "core<id>" -> busy cycles / latency
    link_utilisation: dict  # "link<id>" -> busy cycles / latency
    core_names: dict  # "core<id>" -> the core's name, for every compute core
    link_names: dict  # "link<id>" -> "bus 0-1-2-3" or "link 0-4": kind and the cores it joins
    num_cns: int
    num_edges: int
    layers: tuple[LayerSummary, ...]
    warnings: tuple[str, ...] = ()
    cost_model: dict = field(default_factory=dict)  # model, objective, cost-table entries
    mapping: str = ""  # which mapping the run used (a file name, the hardware's default, or none)
    # how the allocation was found: method, the allocator's estimate, the search's statistics
    # (solver status, objective, bound, gap; wall-clock seconds are left out so the same inputs
    # give the same file: `stream run` writes them to timing.json)
    allocation: dict = field(default_factory=dict)

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
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"result schema version {data.get('schema_version')!r}; this version reads "
                             f"{SCHEMA_VERSION} (re-run the simulation)")
        fields = dict(data)
        fields["layers"] = tuple(LayerSummary(**(l | {"cores": tuple(l["cores"])})) for l in data["layers"])
        fields["warnings"] = tuple(data.get("warnings", ()))
        return cls(**fields)


def summarize(trace: Trace, warnings: tuple[str, ...] = (), cost_model: dict | None = None,
              mapping: str = "") -> Result:
    g, acc, t = trace.cngraph, trace.accelerator, trace.transfers
    latency = trace.latency_cycles
    dram = acc.offchip_core_id
    mac = float(trace.mac_energy_pj.sum())
    onchip = float(trace.onchip_energy_pj.sum())
    offchip = float(t.dram_energy_pj.sum())
    interconnect = float(t.interconnect_energy_pj.sum())
    energy = {"total": mac + onchip + offchip + interconnect, "mac": mac, "onchip_memory": onchip,
              "offchip_memory": offchip, "interconnect": interconnect}
    moved = ~t.shared  # a multicast rider moves nothing of its own
    by_cause, traffic = {}, {}
    for i, cause in enumerate(CAUSES):
        rows = t.cause == i
        by_cause[cause] = float(t.dram_energy_pj[rows].sum() + t.interconnect_energy_pj[rows].sum())
        traffic[cause] = _bytes(t.bits[rows & moved].sum())

    peak = {m.name: _bytes(m.peak_bits) for m in trace.memories}
    activations = {m.name: _bytes(m.peak_activation_bits) for m in trace.memories}
    capacity = {m.name: m.capacity_bits // 8 for m in trace.memories}
    busy = np.bincount(trace.allocation.core, weights=trace.end - trace.start, minlength=max(acc.core_ids) + 1)
    utilisation = {f"core{c.id}": _share(busy[c.id], latency) for c in acc.cores if c.is_compute}
    links = {f"link{l.id}": _share(trace.link_busy_cycles[l.id], latency) for l in acc.links}

    # each transfer belongs to a layer: the CN it fetched for, else the CN whose output it moved
    owner = np.where(t.cn >= 0, t.cn, np.where(t.data_kind == OUTPUT, t.data, -1))
    layer_of_row = np.where(owner >= 0, g.layer[np.maximum(owner, 0)], -1)
    externals = t.data_kind != OUTPUT
    if externals.any():
        ext_layer = np.array([e.layer for e in g.externals], dtype=np.int64)
        layer_of_row = np.where((owner < 0) & externals, ext_layer[t.data * externals], layer_of_row)
    row_energy = t.dram_energy_pj + t.interconnect_energy_pj
    reads, writes = moved & (t.src == dram), moved & (t.dst == dram)
    layers = []
    for li, layer in enumerate(g.workload.layers):
        cns = np.flatnonzero(g.layer == li)
        rows = layer_of_row == li
        layers.append(LayerSummary(
            name=layer.name, op_type=layer.op_type, cns=int(cns.size),
            cores=tuple(sorted({int(c) for c in trace.allocation.core[cns]})),
            macs=int(g.macs[cns].sum()), start_cycle=int(trace.start[cns].min()),
            end_cycle=int(trace.end[cns].max()),
            energy_pj=float(trace.mac_energy_pj[cns].sum() + trace.onchip_energy_pj[cns].sum()),
            transfer_energy_pj=float(row_energy[rows].sum()),
            dram_read_bytes=_bytes(t.bits[rows & reads].sum()), dram_write_bytes=_bytes(t.bits[rows & writes].sum()),
        ))
    return Result(
        schema_version=SCHEMA_VERSION, workload=g.workload.name, hardware=acc.name, mode=g.mode,
        policy=trace.policy, allocator=trace.allocation.method, clock_hz=acc.clock_hz, latency_cycles=int(latency),
        latency_s=latency / acc.clock_hz, energy_pj=energy, transfer_energy_pj=by_cause,
        peak_memory_bytes=peak, peak_activation_bytes=activations, memory_capacity_bytes=capacity,
        dram_traffic_bytes={"read": _bytes(t.bits[reads].sum()), "write": _bytes(t.bits[writes].sum())},
        traffic_bytes=traffic, spills=int(t.of("spill").sum()), core_utilisation=utilisation,
        link_utilisation=links, core_names={f"core{c.id}": c.name for c in acc.cores if c.is_compute},
        link_names={f"link{l.id}": f"{l.kind} {'-'.join(map(str, l.cores))}" for l in acc.links},
        num_cns=g.num_cns, num_edges=g.num_edges, layers=tuple(layers),
        warnings=tuple(warnings) + tuple(_weights_fetched_again(trace)), cost_model=dict(cost_model or {}),
        mapping=mapping, allocation=_allocation(trace.allocation),
    )


REFETCH_NOTE_RATIO = 2.0  # weights that came from DRAM at least this many times over get a note


def _weights_fetched_again(trace: Trace) -> list[str]:
    """A note per layer whose weights came from DRAM at least twice over: they did not stay
    on chip between the layer's tiles (too big for the memory with what else it holds), a
    cost the mapping can avoid."""
    g, t = trace.cngraph, trace.transfers
    if not g.externals:
        return []
    weight = np.array([e.role is Role.WEIGHT for e in g.externals])
    layer_of = np.array([e.layer for e in g.externals], dtype=np.int64)
    bits = np.array([e.bits for e in g.externals], dtype=np.int64)
    rows = (t.data_kind != OUTPUT) & ~t.shared
    rows[rows] = weight[t.data[rows]]
    n = len(g.workload.layers)
    moved = np.bincount(layer_of[t.data[rows]], weights=t.bits[rows], minlength=n)
    once = np.bincount(layer_of[weight], weights=bits[weight], minlength=n)  # every slice fetched once
    notes = []
    for i in np.flatnonzero((once > 0) & (moved >= REFETCH_NOTE_RATIO * once)).tolist():
        layer = g.workload.layers[i]
        notes.append(f"layer {layer.name}: its weights ({size_text(int(once[i]))}) came from DRAM "
                     f"{moved[i] / once[i]:.1f} times over: they did not stay on chip between its "
                     f"{int(np.count_nonzero(g.layer == i))} tiles (fewer intra-core tiles, more on-chip memory or "
                     f"a split over more cores keeps them)")
    return notes



def _allocation(allocation) -> dict:
    stats = {k: v for k, v in allocation.stats.items() if k != "wall_seconds"}
    return {"method": allocation.method, "estimated_latency_cycles": int(allocation.estimated_latency_cycles),
            **stats}


COMPARED = (  # (key, unit, how to read it from a Result)
    ("latency_cycles", "cycles", lambda r: r.latency_cycles),
    ("energy_pj", "pJ", lambda r: r.energy_pj["total"]),
    ("mac_pj", "pJ", lambda r: r.energy_pj["mac"]),
    ("onchip_memory_pj", "pJ", lambda r: r.energy_pj["onchip_memory"]),
    ("offchip_memory_pj", "pJ", lambda r: r.energy_pj["offchip_memory"]),
    ("interconnect_pj", "pJ", lambda r: r.energy_pj["interconnect"]),
    ("dram_read_bytes", "bytes", lambda r: r.dram_traffic_bytes["read"]),
    ("dram_write_bytes", "bytes", lambda r: r.dram_traffic_bytes["write"]),
    ("peak_memory_bytes", "bytes", lambda r: max(r.peak_memory_bytes.values(), default=0)),
    ("peak_activation_bytes", "bytes", lambda r: max(r.peak_activation_bytes.values(), default=0)),
)


def comparison(results: dict[str, Result]) -> list[dict]:
    """Headline metrics of several results side by side: one row per metric with its unit,
    each result's value by label, and every result's value relative to the first's.
    Peaks are of the busiest on-chip memory."""
    labels = list(results)
    rows = []
    for key, unit, read in COMPARED:
        values = {label: read(results[label]) for label in labels}
        base = values[labels[0]]
        rows.append({"metric": key, "unit": unit, "values": values,
                     "relative": {label: (v / base if base else None) for label, v in values.items()}})
    return rows


def _bytes(bits) -> int:
    return math.ceil(int(bits) / 8)


def _share(part: float, whole: int) -> float:
    return float(part) / whole if whole else 0.0


def write_table(path: str | os.PathLike, columns, rows) -> None:
    """Rows (dicts) as a CSV file with ``columns`` in that order, written atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())


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


__all__ = ["COMPARED", "SCHEMA_VERSION", "LayerSummary", "Result", "Timeline", "comparison", "summarize",
           "timeline_of", "write_atomic", "write_table"]
