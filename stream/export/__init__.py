"""A simulated run as files other tools read: Perfetto / Chrome traces and CSV tables.

* :func:`to_perfetto` / :func:`write_perfetto`: the trace-event JSON that
  https://ui.perfetto.dev and ``chrome://tracing`` open. A process for the compute cores
  (a thread per core), one for the links and buses (a thread per link), one for the
  on-chip memories (a counter track per memory: weights and other bytes); complete
  (``X``) events for every CN and every transfer on every link it crosses, with their
  layer, CN, bytes, energy and cause; timestamps and durations in microseconds at the
  accelerator's clock. A transfer longer than a chunk has a slice per chunk, so each
  link's slices never overlap and add up to its busy time.
* :func:`write_events_csv`: one row per CN and per transfer, in cycles.
* :func:`write_layers_csv`: one row per layer of a :class:`stream.results.Result`.
"""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from stream.results import Result, write_atomic
from stream.simulation import CAUSES, Trace

CORES, LINKS, MEMORIES = 1, 2, 3  # Perfetto process ids


def to_perfetto(trace: Trace) -> dict:
    """The run as a trace-event JSON object (``{"traceEvents": [...], ...}``)."""
    g, acc, t = trace.cngraph, trace.accelerator, trace.transfers
    us = 1e6 / acc.clock_hz  # microseconds per cycle
    names = [layer.name for layer in g.workload.layers]
    events: list[dict] = []

    def name_process(pid: int, name: str) -> None:
        events.append({"ph": "M", "pid": pid, "tid": 0, "name": "process_name", "args": {"name": name}})
        events.append({"ph": "M", "pid": pid, "tid": 0, "name": "process_sort_index", "args": {"sort_index": pid}})

    def name_thread(pid: int, tid: int, name: str) -> None:
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name", "args": {"name": name}})
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}})

    name_process(CORES, f"{acc.name}: compute cores")
    used = sorted(set(np.unique(trace.allocation.core).tolist()))
    for core in used:
        name_thread(CORES, core, f"core {core} ({acc.core(core).name})")
    energy = trace.mac_energy_pj + trace.onchip_energy_pj
    for cn in range(g.num_cns):
        layer = names[int(g.layer[cn])]
        start, end = int(trace.start[cn]), int(trace.end[cn])
        events.append({"ph": "X", "pid": CORES, "tid": int(trace.allocation.core[cn]), "name": layer,
                       "cat": "compute", "ts": start * us, "dur": (end - start) * us,
                       "args": {"layer": layer, "cn": cn, "piece": int(g.piece[cn]), "tile": int(g.tile[cn]),
                                "cycles": end - start, "energy_pj": round(float(energy[cn]), 3)}})

    name_process(LINKS, f"{acc.name}: links and buses")
    own = np.flatnonzero(~t.shared)  # multicast riders hold no link time of their own
    on_link: dict[int, list[int]] = {}
    for row in own.tolist():
        for link in t.routes[int(t.route[row])]:
            on_link.setdefault(link, []).append(row)
    for link in sorted(on_link):
        l = acc.links[link]
        name_thread(LINKS, link, f"{l.kind} {'-'.join(map(str, l.cores))} (#{l.id})")
    for row in own.tolist():
        cause, cn = CAUSES[int(t.cause[row])], int(t.cn[row])
        spans = t.spans(row)
        args = {"cause": cause, "bytes": int(t.bits[row]) // 8, "from_core": int(t.src[row]),
                "to_core": int(t.dst[row]), "energy_pj": round(float(t.interconnect_energy_pj[row]
                                                                    + t.dram_energy_pj[row]), 3)}
        if cn >= 0:
            args |= {"cn": cn, "layer": names[int(g.layer[cn])]}
        for i, (begin, finish) in enumerate(spans):
            chunk = args if len(spans) == 1 else args | {"chunk": f"{i + 1} of {len(spans)}"}
            for link in t.routes[int(t.route[row])]:
                events.append({"ph": "X", "pid": LINKS, "tid": link, "name": cause, "cat": "transfer",
                               "ts": begin * us, "dur": (finish - begin) * us, "args": chunk})

    name_process(MEMORIES, f"{acc.name}: on-chip memories")
    for memory in trace.memories:
        weights = memory.weights_at(memory.times)
        for time, bits, w in zip(memory.times.tolist(), memory.bits.tolist(), weights.tolist()):
            events.append({"ph": "C", "pid": MEMORIES, "tid": 0, "name": memory.name, "ts": time * us,
                           "args": {"weights_bytes": w / 8, "other_bytes": (bits - w) / 8}})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"workload": g.workload.name, "hardware": acc.name, "mode": g.mode,
                          "policy": trace.policy, "allocator": trace.allocation.method,
                          "clock_hz": acc.clock_hz, "latency_cycles": trace.latency_cycles}}


def write_perfetto(trace: Trace, path: str | os.PathLike) -> None:
    write_atomic(path, json.dumps(to_perfetto(trace), separators=(",", ":")) + "\n")


EVENT_COLUMNS = ("kind", "name", "layer", "cn", "core", "route", "from_core", "to_core", "start_cycle",
                 "end_cycle", "bytes", "energy_pj", "cause")


def write_events_csv(trace: Trace, path: str | os.PathLike) -> None:
    """One row per CN (``kind`` compute) and per transfer (``kind`` transfer), in cycles.
    ``name``: the CN's layer or the transfer's cause; ``bytes``: the CN's output or the
    data moved; ``energy_pj``: a CN's MACs and on-chip memory, a transfer's links and DRAM
    (0 for a multicast rider); ``route``: the link ids a transfer crossed."""
    g, t = trace.cngraph, trace.transfers
    names = [layer.name for layer in g.workload.layers]
    energy = trace.mac_energy_pj + trace.onchip_energy_pj
    rows = []
    for cn in range(g.num_cns):
        layer = names[int(g.layer[cn])]
        rows.append(("compute", layer, layer, cn, int(trace.allocation.core[cn]), "", "", "", int(trace.start[cn]),
                     int(trace.end[cn]), int(g.out_bits[cn]) // 8, f"{float(energy[cn]):.6g}", ""))
    for row in range(len(t)):
        cn = int(t.cn[row])
        cause = CAUSES[int(t.cause[row])]
        rows.append(("transfer", cause, names[int(g.layer[cn])] if cn >= 0 else "", cn if cn >= 0 else "", "",
                     " ".join(map(str, t.routes[int(t.route[row])])), int(t.src[row]), int(t.dst[row]),
                     int(t.start[row]), int(t.end[row]), int(t.bits[row]) // 8,
                     f"{float(t.interconnect_energy_pj[row] + t.dram_energy_pj[row]):.6g}", cause))
    write_atomic(path, _csv(EVENT_COLUMNS, rows))


LAYER_COLUMNS = ("name", "op_type", "cns", "cores", "macs", "start_cycle", "end_cycle", "energy_pj",
                 "transfer_energy_pj", "dram_read_bytes", "dram_write_bytes")


def write_layers_csv(result: Result, path: str | os.PathLike) -> None:
    """One row per layer: the fields of :class:`stream.results.LayerSummary` (``cores``
    space-separated)."""
    rows = [(l.name, l.op_type, l.cns, " ".join(map(str, l.cores)), l.macs, l.start_cycle, l.end_cycle,
             f"{l.energy_pj:.6g}", f"{l.transfer_energy_pj:.6g}", l.dram_read_bytes, l.dram_write_bytes)
            for l in result.layers]
    write_atomic(path, _csv(LAYER_COLUMNS, rows))


def _csv(header: tuple[str, ...], rows: list[tuple]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


__all__ = ["to_perfetto", "write_events_csv", "write_layers_csv", "write_perfetto"]
