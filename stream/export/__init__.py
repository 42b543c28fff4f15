"""A simulated run as files other tools read: Perfetto / Chrome traces and CSV tables.

* :func:`to_perfetto` / :func:`write_perfetto`: the trace-event JSON that
  https://ui.perfetto.dev and ``chrome://tracing`` open. A process for the compute cores
  (a thread per core), one for the links and buses (a thread per link), one for the
  on-chip memories (a counter track per memory: bytes of weights, partial sums and
  feature maps); complete (``X``) events for every CN and every transfer on every link it crosses, with their
  layer, CN, bytes, energy and cause; timestamps and durations in microseconds at the
  accelerator's clock. A transfer longer than a chunk has a slice per chunk, so each
  link's slices never overlap and add up to its busy time.
* :func:`write_events_csv`: one row per CN and per transfer, in cycles.
* :func:`write_layers_csv`: one row per layer of a :class:`stream.results.Result`.
* :func:`write_links_csv`: when each link and DRAM port was busy, and why.
* :func:`write_memory_csv`: the occupancy of each on-chip memory over time, by kind.
* :func:`read_timeline`: a :class:`stream.results.Timeline` back from the files above,
  so ``stream plot`` draws a saved run without simulating it again.
"""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from stream.errors import InputError, StreamError
from stream.results import Result, write_atomic
from stream.results.timeline import Timeline, resource_key, resource_of
from stream.simulation import CAUSES, MemoryTimeline, Trace

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
        for time, bits, w, p in zip(memory.times.tolist(), memory.bits.tolist(), memory.weight_bits.tolist(),
                                    memory.partial_bits.tolist()):
            events.append({"ph": "C", "pid": MEMORIES, "tid": 0, "name": memory.name, "ts": time * us,
                           "args": {"weights_bytes": w / 8, "partial_sums_bytes": p / 8,
                                    "feature_maps_bytes": (bits - w - p) / 8}})
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


LINK_COLUMNS = ("resource", "start_cycle", "end_cycle", "cause", "transfer")


def write_links_csv(timeline: Timeline, path: str | os.PathLike) -> None:
    """One row per stretch a transfer held a resource (``link<id>``, ``dram_read`` or
    ``dram_write``): a row per chunk of a long transfer and per link of its route;
    ``transfer`` is its row among the transfers of ``events.csv`` (counted from 0)."""
    rows = zip([resource_key(r) for r in timeline.busy_resource.tolist()], timeline.busy_start.tolist(),
               timeline.busy_end.tolist(), [CAUSES[c] for c in timeline.busy_cause.tolist()],
               timeline.busy_transfer.tolist())
    write_atomic(path, _csv(LINK_COLUMNS, rows))


MEMORY_COLUMNS = ("memory", "cycle", "total_bits", "weight_bits", "partial_sum_bits")


def write_memory_csv(timeline: Timeline, path: str | os.PathLike) -> None:
    """Each on-chip memory's occupancy as a step function: from ``cycle`` on (to its next
    row) it holds ``total_bits``, of which weights and partial sums (the rest is feature
    maps and copies in flight). Bits, so sub-byte precisions stay exact."""
    rows = []
    for m in timeline.memories:
        rows += zip([m.name] * m.times.size, m.times.tolist(), m.bits.tolist(), m.weight_bits.tolist(),
                    m.partial_bits.tolist())
    write_atomic(path, _csv(MEMORY_COLUMNS, rows))


def read_timeline(directory: str | os.PathLike, result: Result) -> Timeline:
    """The timeline of a run saved by ``stream run --out``: ``events.csv`` (its compute
    rows), ``links.csv`` and ``memory.csv`` in ``directory``, read with ``result``."""
    layer_index = {layer.name: i for i, layer in enumerate(result.layers)}
    compute = []
    for file, line, row in _rows(directory, "events.csv", EVENT_COLUMNS):
        if row["kind"] == "compute":
            compute.append((_int(file, line, row, "core"), _known(file, line, row, "name", layer_index),
                            _int(file, line, row, "start_cycle"), _int(file, line, row, "end_cycle")))
    cause_index = {cause: i for i, cause in enumerate(CAUSES)}
    busy = []
    for file, line, row in _rows(directory, "links.csv", LINK_COLUMNS):
        try:
            resource = resource_of(row["resource"])
        except ValueError:
            raise InputError(file, f"line {line}: resource", "link<id>, dram_read or dram_write",
                             row["resource"]) from None
        busy.append((resource, _int(file, line, row, "start_cycle"), _int(file, line, row, "end_cycle"),
                     _known(file, line, row, "cause", cause_index), _int(file, line, row, "transfer")))
    series: dict[str, list[tuple[int, ...]]] = {}
    for file, line, row in _rows(directory, "memory.csv", MEMORY_COLUMNS):
        if row["memory"] not in result.memory_capacity_bytes:
            raise InputError(file, f"line {line}: memory", f"a memory of result.json "
                             f"({', '.join(result.memory_capacity_bytes)})", row["memory"])
        series.setdefault(row["memory"], []).append(tuple(_int(file, line, row, c) for c in MEMORY_COLUMNS[1:]))
    memories = []
    for name, capacity in result.memory_capacity_bytes.items():
        steps = np.array(series.get(name, []), dtype=np.int64).reshape(-1, 4)
        times, bits, weights, partials = (steps[:, i].copy() for i in range(4))
        cores, _, memory = name.partition(".")
        memories.append(MemoryTimeline(name, tuple(int(c) for c in cores[4:].split("+")), memory, capacity * 8,
                                       times, bits, weights, partials))
    cn = np.array(compute, dtype=np.int64).reshape(-1, 4)
    held = np.array(busy, dtype=np.int64).reshape(-1, 5)
    return Timeline(cn_core=cn[:, 0], cn_layer=cn[:, 1], cn_start=cn[:, 2], cn_end=cn[:, 3],
                    busy_resource=held[:, 0], busy_start=held[:, 1], busy_end=held[:, 2],
                    busy_cause=held[:, 3].astype(np.int8), busy_transfer=held[:, 4], memories=tuple(memories),
                    latency_cycles=result.latency_cycles)


def _rows(directory, name: str, columns: tuple[str, ...]):
    """(file, line number, row as a dict) of a CSV file we wrote, its header checked."""
    file = os.path.join(os.fspath(directory), name)
    try:
        handle = open(file, newline="", encoding="utf-8")
    except OSError as exc:
        raise StreamError(f"{file}: cannot read it ({exc.strerror}); `stream plot` needs the result.json, "
                          f"events.csv, links.csv and memory.csv that `stream run --out DIR` writes") from None
    with handle:
        reader = csv.reader(handle)
        header = tuple(next(reader, ()))
        if header != columns:
            raise InputError(file, "line 1 (header)", ",".join(columns), ",".join(header))
        for line, values in enumerate(reader, start=2):
            if len(values) != len(columns):
                raise InputError(file, f"line {line}", f"{len(columns)} comma-separated values", len(values))
            yield file, line, dict(zip(columns, values))


def _int(file: str, line: int, row: dict, column: str) -> int:
    try:
        return int(row[column])
    except ValueError:
        raise InputError(file, f"line {line}: {column}", "an integer", row[column]) from None


def _known(file: str, line: int, row: dict, column: str, index: dict[str, int]) -> int:
    if row[column] not in index:
        raise InputError(file, f"line {line}: {column}", f"one of {', '.join(index)}", row[column])
    return index[row[column]]


def _csv(header: tuple[str, ...], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


__all__ = ["read_timeline", "to_perfetto", "write_events_csv", "write_layers_csv", "write_links_csv",
           "write_memory_csv", "write_perfetto"]
