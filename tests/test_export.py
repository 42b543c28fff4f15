"""Perfetto traces, CSV tables and run comparisons: the hand-worked two-conv chain, and ResNet-18's chunked bus."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import defaultdict

import pytest

from conftest import INPUTS
from stream.api import run_detailed
from stream.cli import main
from stream.export import (read_timeline, to_perfetto, write_events_csv, write_layers_csv, write_links_csv,
                           write_memory_csv)
from stream.results import timeline_of
from test_pipeline import chain  # noqa: F401  (fixture)


def slices(trace_json: dict) -> dict[tuple[int, int], list[tuple[float, float]]]:
    """(pid, tid) -> [(ts, dur)] of the complete events."""
    out = defaultdict(list)
    for e in trace_json["traceEvents"]:
        if e["ph"] == "X":
            out[(e["pid"], e["tid"])].append((e["ts"], e["dur"]))
    return out


def test_perfetto_trace_of_the_two_conv_chain(chain):  # noqa: F811
    # The chain of test_pipeline, worked out there: at 200 MHz a cycle is 0.005 us.
    # conv_a runs 88..376 and conv_b 376..664 on core 0; DRAM reads W_a 0..72, I_a 72..88,
    # W_b 88..160 and the write of conv_b's output 664..680 cross the bus (link 0).
    detail = run_detailed(*chain, mode="fused", cost_model="roofline", allocator="greedy")
    data = to_perfetto(detail.trace)
    events = data["traceEvents"]
    assert {e["ph"] for e in events} == {"M", "X", "C"}
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert names == {(1, 0): "core 0 (tiny)", (2, 0): "bus 0-1 (#0)"}
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert processes == {1: "tiny_system: compute cores", 2: "tiny_system: links and buses",
                         3: "tiny_system: on-chip memories"}
    compute = [e for e in events if e["ph"] == "X" and e["cat"] == "compute"]
    assert [(e["name"], e["ts"], e["dur"]) for e in compute] == [
        ("conv_a", pytest.approx(88 * 0.005), pytest.approx(288 * 0.005)),
        ("conv_b", pytest.approx(376 * 0.005), pytest.approx(288 * 0.005))]
    assert compute[0]["args"] == {"layer": "conv_a", "cn": 0, "piece": 0, "tile": 0, "cycles": 288,
                                  "energy_pj": pytest.approx(4608 + 600)}
    moves = sorted((e["ts"], e["dur"], e["name"]) for e in events if e["ph"] == "X" and e["cat"] == "transfer")
    assert moves == [(0.0, pytest.approx(72 * 0.005), "weight_fetch"),
                     (pytest.approx(72 * 0.005), pytest.approx(16 * 0.005), "input_fetch"),
                     (pytest.approx(88 * 0.005), pytest.approx(72 * 0.005), "weight_fetch"),
                     (pytest.approx(664 * 0.005), pytest.approx(16 * 0.005), "sink_write")]
    # the memory counter reaches the peak the result reports
    counters = [e for e in events if e["ph"] == "C"]
    assert {e["name"] for e in counters} == {"core0.sram"}
    peak = max(sum(e["args"][k] for k in ("weights_bytes", "partial_sums_bytes", "feature_maps_bytes"))
               for e in counters)
    assert math.ceil(peak) == detail.result.peak_memory_bytes["core0.sram"]
    assert data["otherData"]["latency_cycles"] == 680


def test_perfetto_tracks_add_up_to_busy_time():
    # ResNet-18 fused: long weight transfers go over the DRAM bus in chunks that interleave
    detail = run_detailed(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
                          INPUTS / "mappings" / "quad_core.yaml", allocator="greedy")
    trace, result = detail.trace, detail.result
    assert len(trace.transfers.chunks) > 0
    cycles = trace.accelerator.clock_hz / 1e6  # per microsecond
    tracks = slices(to_perfetto(trace))
    for (pid, tid), spans in tracks.items():
        spans.sort()
        # one slice at a time per track: what a trace viewer needs
        assert all(a[0] + a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:])), (pid, tid)
        busy = sum(d for _, d in spans) * cycles
        if pid == 1:  # each core's slices add up to its busy time in the result
            assert busy == pytest.approx(result.core_utilisation[f"core{tid}"] * result.latency_cycles)
        else:  # and each link's to the cycles it was held
            assert busy == pytest.approx(trace.link_busy_cycles[tid])
    used = {int(c) for c in set(trace.allocation.core.tolist())}
    assert {tid for pid, tid in tracks if pid == 1} == used


def test_csv_tables(chain, tmp_path):  # noqa: F811
    detail = run_detailed(*chain, mode="fused", cost_model="roofline", allocator="greedy")
    write_events_csv(detail.trace, tmp_path / "events.csv")
    write_layers_csv(detail.result, tmp_path / "layers.csv")
    events = list(csv.DictReader(io.StringIO((tmp_path / "events.csv").read_text())))
    assert [(e["kind"], e["name"], e["start_cycle"], e["end_cycle"]) for e in events] == [
        ("compute", "conv_a", "88", "376"), ("compute", "conv_b", "376", "664"),
        ("transfer", "weight_fetch", "0", "72"), ("transfer", "input_fetch", "72", "88"),
        ("transfer", "weight_fetch", "88", "160"), ("transfer", "sink_write", "664", "680")]
    # bytes: conv_a's output is 8 x 4 x 4 elements of 8 bits (128 B); W_a 2304 bits (288 B)
    assert events[0]["bytes"] == "128" and events[2]["bytes"] == "288" and events[2]["route"] == "0"
    moved = sum(float(e["energy_pj"]) for e in events if e["kind"] == "transfer")
    r = detail.result
    assert moved == pytest.approx(r.energy_pj["offchip_memory"] + r.energy_pj["interconnect"], rel=1e-5)
    layers = list(csv.DictReader(io.StringIO((tmp_path / "layers.csv").read_text())))
    assert [(l["name"], l["cores"], l["start_cycle"], l["end_cycle"]) for l in layers] == [
        ("conv_a", "0", "88", "376"), ("conv_b", "0", "376", "664")]


def test_link_and_memory_tables_and_reading_them_back(chain, tmp_path):  # noqa: F811
    detail = run_detailed(*chain, mode="fused", cost_model="roofline", allocator="greedy")
    saved = timeline_of(detail.trace)
    write_events_csv(detail.trace, tmp_path / "events.csv")
    write_links_csv(saved, tmp_path / "links.csv")
    write_memory_csv(saved, tmp_path / "memory.csv")
    # each transfer holds the bus (link 0) and the DRAM's port: the three reads and the write-back
    assert (tmp_path / "links.csv").read_text().splitlines() == [
        "resource,start_cycle,end_cycle,cause,transfer",
        "link0,0,72,weight_fetch,0", "dram_read,0,72,weight_fetch,0",
        "link0,72,88,input_fetch,1", "dram_read,72,88,input_fetch,1",
        "link0,88,160,weight_fetch,2", "dram_read,88,160,weight_fetch,2",
        "link0,664,680,sink_write,3", "dram_write,664,680,sink_write,3"]
    # test_pipeline's occupancy steps; weights W_a and W_b (2304 bits each) until their CN ends
    assert (tmp_path / "memory.csv").read_text().splitlines() == [
        "memory,cycle,total_bits,weight_bits,partial_sum_bits",
        "core0.sram,0,6656,4608,0", "core0.sram,376,3840,2304,0", "core0.sram,664,512,0,0", "core0.sram,680,0,0,0"]
    back = read_timeline(tmp_path, detail.result)
    for name in ("cn_core", "cn_layer", "cn_start", "cn_end", "busy_resource", "busy_start", "busy_end",
                 "busy_cause", "busy_transfer"):
        assert getattr(back, name).tolist() == getattr(saved, name).tolist(), name
    (memory,), (original,) = back.memories, saved.memories
    assert (memory.name, memory.cores, memory.memory, memory.capacity_bits) == ("core0.sram", (0,), "sram", 1048576)
    for name in ("times", "bits", "weight_bits", "partial_bits"):
        assert getattr(memory, name).tolist() == getattr(original, name).tolist(), name
    assert back.latency_cycles == 680


@pytest.mark.parametrize("file, text, message", [
    ("memory.csv", None, r"memory.csv: cannot read it .*needs the result.json, events.csv, links.csv and memory.csv"),
    ("links.csv", "resource,start\n", r"links.csv: line 1 \(header\): expected resource,start_cycle,end_cycle,"
                                       r"cause,transfer, got 'resource,start'"),
    ("links.csv", "resource,start_cycle,end_cycle,cause,transfer\nlink0,0,7x,weight_fetch,0\n",
     r"links.csv: line 2: end_cycle: expected an integer, got '7x'"),
    ("links.csv", "resource,start_cycle,end_cycle,cause,transfer\nport3,0,7,weight_fetch,0\n",
     r"links.csv: line 2: resource: expected link<id>, dram_read or dram_write, got 'port3'"),
    ("memory.csv", "memory,cycle,total_bits,weight_bits,partial_sum_bits\ncore9.sram,0,1,0,0\n",
     r"memory.csv: line 2: memory: expected a memory of result.json \(core0.sram\), got 'core9.sram'"),
    ("events.csv", None, r"events.csv: cannot read it"),
])
def test_plot_names_the_file_and_line_it_cannot_read(chain, tmp_path, capsys, file, text, message):  # noqa: F811
    workload, hardware = chain
    out = tmp_path / "run"
    assert main(["run", "-q", "-w", str(workload), "-a", str(hardware), "--allocator", "greedy",
                 "--out", str(out)]) == 0
    if text is None:
        (out / file).unlink()
    else:
        (out / file).write_text(text)
    assert main(["plot", str(out / "result.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err), err


def test_plot_draws_a_saved_run_again(tmp_path, capsys):
    # the same figures, byte for byte, from the saved files alone (ResNet-18: chunked bus
    # transfers, DRAM ports, six memories)
    out = tmp_path / "run"
    assert main(["run", "-q", "--allocator", "greedy", "--out", str(out), "--window", "0:200000"]) == 0
    assert main(["plot", "-q", str(out), "--out", str(tmp_path / "again"), "--window", "0:200000"]) == 0
    assert main(["plot", "-q", str(out / "result.json"), "--out", str(tmp_path / "again")]) == 0
    for name in ("gantt", "memory", "energy", "utilisation", "gantt-0-200000", "memory-0-200000"):
        for suffix in ("png", "pdf"):
            assert (out / f"{name}.{suffix}").read_bytes() == (tmp_path / "again" / f"{name}.{suffix}").read_bytes()
    assert main(["plot", str(tmp_path / "nowhere.json")]) == 1
    assert "nowhere.json: cannot read it" in capsys.readouterr().err
    (tmp_path / "old.json").write_text('{"schema_version": 2}')
    assert main(["plot", str(tmp_path / "old.json")]) == 1
    assert "result schema version 2; this version reads 4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot", str(out), "--window", "9:3"])
    assert "expected FIRST:LAST, two cycles with 0 <= FIRST < LAST, got 9:3" in capsys.readouterr().err


def test_run_writes_tables_and_a_perfetto_trace(tmp_path, capsys):
    args = ["run", "-q", "-w", str(INPUTS / "workloads" / "two_conv.yaml"),
            "-a", str(INPUTS / "hardware" / "single_core.yaml"), "--perfetto"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    for name in ("trace.perfetto.json", "events.csv", "layers.csv", "links.csv", "memory.csv", "gantt.pdf",
                 "memory.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    data = json.loads((tmp_path / "a" / "trace.perfetto.json").read_text())
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert sum(1 for e in data["traceEvents"] if e["ph"] == "X" and e["cat"] == "compute") == result["num_cns"]
    assert main(["run", "-q", "--perfetto"]) == 2
    assert "--perfetto writes into the --out directory" in capsys.readouterr().err


def test_compare_fused_and_layer_by_layer(chain, tmp_path):  # noqa: F811
    # the hand-worked chain of test_pipeline: fused 680 cycles, layer by layer 744 (conv_a's
    # output goes to DRAM and back: 128 more bytes each way, 2 x 32 words x 100 pJ more)
    from stream.api import run_detailed
    from stream.results import comparison

    runs = {mode: run_detailed(*chain, mode=mode, cost_model="roofline", allocator="greedy").result
            for mode in ("fused", "layer_by_layer")}
    rows = {row["metric"]: row["values"] for row in comparison(runs)}
    assert rows["latency_cycles"] == {"fused": 680, "layer_by_layer": 744}
    assert rows["dram_read_bytes"] == {"fused": 640, "layer_by_layer": 768}
    assert rows["dram_write_bytes"] == {"fused": 64, "layer_by_layer": 192}
    assert rows["offchip_memory_pj"] == {"fused": 17600.0, "layer_by_layer": 17600.0 + 2 * 32 * 100}
    assert rows["peak_memory_bytes"] == {"fused": 832, "layer_by_layer": 960}


def test_compare_refuses_a_fused_plan_that_fuses_nothing(chain, tmp_path, capsys):  # noqa: F811
    """Unmapped, the chain runs each conv whole: fused and layer by layer would run the same
    CNs. With its rows tiled (OY, all) the comparison runs and prints both and their ratio."""
    workload, hardware = chain
    args = ["compare", "-q", "-w", str(workload), "-a", str(hardware), "--cost-model", "roofline",
            "--allocator", "greedy", "--out", str(tmp_path)]
    assert main(args) == 1
    assert "the fused plan fuses nothing" in capsys.readouterr().err
    rows = tmp_path / "rows.yaml"
    rows.write_text('version: 1\nlayers:\n  - {name: Conv, core_allocation: [0], intra_core_tiling: ["OY, all"]}\n')
    assert main(args + ["-m", str(rows)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "chain: fused vs layer_by_layer (mode)"
    data = json.loads((tmp_path / "comparison.json").read_text())
    latency = {row["metric"]: row["values"] for row in data["rows"]}["latency_cycles"]
    assert lines[3].split() == ["latency_cycles", "cycles", f"{latency['fused']:,}", f"{latency['layer_by_layer']:,}",
                                f"{latency['layer_by_layer'] / latency['fused']:.3f}"]
    assert data["varied"] == "mode"
    assert (tmp_path / "comparison.pdf").read_bytes().startswith(b"%PDF")


def test_compare_two_allocators_and_one_thing_at_a_time(chain, capsys):  # noqa: F811
    workload, hardware = chain
    base = ["compare", "-q", "-w", str(workload), "-a", str(hardware), "--cost-model", "roofline"]
    assert main(base + ["--allocator", "greedy", "cpsat", "--mode", "fused"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "chain: greedy vs cpsat (allocator)"
    assert out[3].split()[:4] == ["latency_cycles", "cycles", "680", "680"]  # one core: the same schedule
    assert main(base + ["--allocator", "greedy", "cpsat", "--mode", "fused", "layer_by_layer"]) == 2
    assert "compare varies one thing at a time" in capsys.readouterr().err


def test_plot_draws_a_sweep_tables_tradeoffs(tmp_path, capsys):
    # three ok points that each win somewhere (latency, energy, memory) and a failed one
    table = tmp_path / "sweep" / "results.csv"
    table.parent.mkdir()
    header = ("point,id,sram,status,error,latency_cycles,latency_s,energy_pj,dram_read_bytes,dram_write_bytes,"
              "peak_memory_bytes,onchip_peak_bytes,num_cns,spills")
    table.write_text("\n".join([header, "0,a,1,ok,,10,1,5,0,0,3,3,2,0", "1,b,1,ok,,20,2,2,0,0,2,2,2,0",
                                "2,c,2,ok,,30,3,1,0,0,1,1,2,0", "3,d,2,ok,,30,3,3,0,0,3,3,2,0",
                                "4,e,0,error,size 0,,,,,,,,,"]) + "\n")
    assert main(["plot", str(tmp_path / "sweep")]) == 0
    out = capsys.readouterr().out
    assert "4 points, Pareto front (latency, energy, on-chip peak): points 0, 1, 2" in out
    assert (tmp_path / "sweep" / "tradeoff.pdf").read_bytes().startswith(b"%PDF")
    (tmp_path / "bad.csv").write_text("point,status\n0,ok\n")
    assert main(["plot", str(tmp_path / "bad.csv")]) == 1
    assert "missing latency_s, energy_pj, onchip_peak_bytes" in capsys.readouterr().err
