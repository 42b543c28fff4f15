"""Benchmarks: one JSON object per line per case.

    python scripts/bench.py [CASE ...]      (no CASE: all cases)

Each case runs in a fresh process so ``peak_rss_mb`` is its own. Fields: ``case``,
``cns``, ``edges``, ``seconds`` (load, tiling, cost, allocation, simulation, total),
``peak_rss_mb``, ``simulated_cns_per_s`` (CNs / simulation seconds) and the headline
results (``latency_cycles``, ``energy_pj``, ``dram_traffic_bytes``, ``spills``);
``cost-resnet18`` reports the cost table's cold and warm seconds, entries, hits and misses;
``resnet18-hetero-cpsat`` each allocator's simulated result and seconds per system;
``sweep-100`` the bundled 100-point sweep's wall time at 1 and 2 workers;
``mamba-2.8b-L8192`` Mamba-2.8b prefill against its 30 s target; ``onnx-load`` the
slowest load of PyTorch's exports in tests/data/onnx against its 0.5 s target.
Performance targets live here, never in timed tests.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "inputs"

CASES = {
    # ResNet-18 224x224 on the quad-core system, output channels split over the 4 compute cores
    "resnet18-fused": dict(workload="workloads/resnet18.yaml", hardware="hardware/quad_core.yaml",
                           mapping="mappings/quad_core.yaml", mode="fused"),
    "resnet18-lbl": dict(workload="workloads/resnet18.yaml", hardware="hardware/quad_core.yaml",
                         mapping="mappings/quad_core.yaml", mode="layer_by_layer"),
    "two-conv": dict(workload="workloads/two_conv.yaml", hardware="hardware/single_core.yaml",
                     mapping=None, mode="fused"),
    # 64 chained 3x3 convs over 8192 x 32 images, one row per CN, K split over 2 cores:
    # 64 x 8192 x 2 = 1,048,576 CNs, the whole pipeline through simulation
    # (greedy allocation: the case measures the pipeline's throughput, not the search)
    "synthetic-1m": dict(workload=None, hardware="hardware/quad_core.yaml", mapping=None, mode="fused",
                         allocator="greedy"),
    # ResNet-18 at one-row granularity on the quad-core system: the whole zigzag cost table
    # (every distinct tile x candidate core), cold (empty cache dir) then warm (from the cache)
    # ResNet-18 (fused) on the quad-core system (its mapping) and on the heterogeneous one (with
    # and without its "K, *" mapping): greedy, CP-SAT with a 10 s budget, and the genetic
    # baseline given the wall time CP-SAT took; each allocation judged by the simulator
    "resnet18-hetero-cpsat": dict(workload="workloads/resnet18.yaml", mode="fused", stages=("allocation",),
                                  systems=(("quad_core", "hardware/quad_core.yaml", "mappings/quad_core.yaml"),
                                           ("hetero", "hardware/hetero.yaml", "mappings/hetero.yaml"),
                                           ("hetero-layers", "hardware/hetero.yaml", None))),
    "cost-resnet18": dict(workload="workloads/resnet18.yaml", hardware="hardware/quad_core.yaml",
                          mapping="mappings/quad_core.yaml", mode="fused", stages=("cost",)),
    # Mamba-2.8b prefill of 8192 tokens (64 blocks, bf16) on the SSM accelerator: each block's
    # chain from conv1d to the gate fused along L in 64-token chunks, the input and output
    # projections run whole (their 26 MB weights cannot stay on chip across chunks); greedy
    # allocation. Target: under 30 s end to end.
    "mamba-2.8b-L8192": dict(model="mamba-2.8b", seq_len=8192, chunk=64, isolate=("in_proj_x", "in_proj_z", "out_proj"),
                             hardware="hardware/ssm.yaml", allocator="greedy", target_seconds=30),
    # the bundled 100-point sweep (ResNet-18 fused on the quad-core system: compute-core SRAM x
    # DRAM bus bandwidth, greedy) at 1 and at 2 local workers, each from an empty cost cache
    "sweep-100": dict(sweep="sweeps/memory_bandwidth.yaml", workers=(1, 2)),
    # every file PyTorch's two exporters wrote in tests/data/onnx (14 models), loaded after
    # a first import and a warm-up load: the slowest file's seconds. Target: under 0.5 s.
    "onnx-load": dict(onnx=ROOT / "tests" / "data" / "onnx", target_seconds=0.5),
}


def synthetic_inputs(directory: Path) -> tuple[Path, Path]:
    """Write the synthetic-1m workload and mapping (our YAML format) for the real loaders."""
    layers = []
    for i in range(64):
        layer = {
            "name": f"conv{i}", "operator_type": "Conv",
            "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
            "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"],
            "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"], "loop_sizes": [1, 16, 16, 8192, 32, 3, 3],
            "operand_precision": {"O": 16, "O_final": 8, "W": 8, "I": 8},
            "padding": {"IY": [1, 1], "IX": [1, 1]},
        }
        if i:
            layer["operand_source"] = {"I": f"conv{i - 1}"}
        layers.append(layer)
    workload, mapping = directory / "synthetic.yaml", directory / "synthetic_mapping.yaml"
    workload.write_text(yaml.safe_dump({"version": 1, "name": "synthetic_1m", "layers": layers}, sort_keys=False))
    mapping.write_text(yaml.safe_dump({"version": 1, "layers": [{
        "name": "Conv", "core_allocation": [0, 1], "inter_core_tiling": ["K, 2"], "intra_core_tiling": ["OY, all"],
    }]}, sort_keys=False))
    return workload, mapping


def run_case(name: str) -> dict:
    sys.path.insert(0, str(ROOT))
    case = CASES[name]
    if "model" in case:
        return _model(name, case)
    if "sweep" in case:
        return _sweep(name, case)
    if "onnx" in case:
        return _onnx_load(name, case)
    from stream.mapping import NO_MAPPING

    with tempfile.TemporaryDirectory() as tmp:
        if case.get("stages") == ("allocation",):
            return _allocation(name, INPUTS / case["workload"], case)
        if case["workload"] is None:
            workload, mapping = synthetic_inputs(Path(tmp))
        else:
            workload = INPUTS / case["workload"]
            mapping = INPUTS / case["mapping"] if case["mapping"] else NO_MAPPING
        if case.get("stages") == ("cost",):
            return _cost_table(name, workload, INPUTS / case["hardware"], mapping, case["mode"], Path(tmp))
        from stream.api import run_detailed

        allocator = case.get("allocator", "cpsat")
        outcome = run_detailed(workload, INPUTS / case["hardware"], mapping, mode=case["mode"], allocator=allocator)
    return {
        "case": name,
        "allocator": allocator,
        "cns": outcome.cngraph.num_cns,
        "edges": outcome.cngraph.num_edges,
        "seconds": {k: round(v, 4) for k, v in outcome.seconds.items()},
        "peak_rss_mb": _peak_rss_mb(),
        "simulated_cns_per_s": round(outcome.cngraph.num_cns / outcome.seconds["simulation"]),
        "latency_cycles": outcome.result.latency_cycles,
        "energy_pj": round(outcome.result.energy_pj["total"], 1),
        "dram_traffic_bytes": outcome.result.dram_traffic_bytes,
        "spills": outcome.result.spills,
    }


def _model(name: str, case: dict) -> dict:
    """A workload built by stream.workload.models, fused along L in chunks; building the
    workload and its mapping counts as the load step."""
    from stream.api import run_detailed
    from stream.hardware import load_hardware
    from stream.mapping.fusion import fused_mapping
    from stream.workload.models import mamba_model

    began = time.perf_counter()
    accelerator = load_hardware(INPUTS / case["hardware"])
    workload = mamba_model(case["model"], seq_len=case["seq_len"])
    mapping = fused_mapping(workload, accelerator, case["chunk"], isolate=case.get("isolate", ()))
    built = time.perf_counter() - began
    outcome = run_detailed(workload, accelerator, mapping, mode="fused", allocator=case["allocator"])
    seconds = dict(outcome.seconds, build=built)
    seconds["total"] += built
    return {
        "case": name, "allocator": case["allocator"], "cns": outcome.cngraph.num_cns,
        "edges": outcome.cngraph.num_edges, "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "target_seconds": case["target_seconds"], "within_target": seconds["total"] < case["target_seconds"],
        "peak_rss_mb": _peak_rss_mb(),
        "simulated_cns_per_s": round(outcome.cngraph.num_cns / outcome.seconds["simulation"]),
        "latency_cycles": outcome.result.latency_cycles, "energy_pj": round(outcome.result.energy_pj["total"], 1),
        "dram_traffic_bytes": outcome.result.dram_traffic_bytes, "spills": outcome.result.spills,
        "onchip_peak_bytes": sum(outcome.result.peak_memory_bytes.values()),
    }


def _onnx_load(name: str, case: dict) -> dict:
    """Seconds to load each ONNX file (its loaded workload's layer count beside); the
    files the loader refuses are listed with their error."""
    from stream.errors import StreamError
    from stream.workload.onnx_loader import load_onnx

    files = sorted(Path(case["onnx"]).glob("*.onnx"))
    load_onnx(files[0])  # imports and first-call costs out of the timings
    seconds, refused = {}, {}
    for path in files:
        start = time.perf_counter()
        try:
            load_onnx(path)
        except StreamError as exc:
            refused[path.name] = str(exc).split(": ", 2)[-1][:120]
            continue
        seconds[path.name] = round(time.perf_counter() - start, 4)
    slowest = max(seconds.values(), default=0.0)
    return {"case": name, "files": len(files), "loaded": len(seconds), "slowest_seconds": slowest,
            "slowest_file": max(seconds, key=seconds.get) if seconds else None,
            "target_seconds": case["target_seconds"], "within_target": slowest < case["target_seconds"],
            "refused": refused, "peak_rss_mb": _peak_rss_mb()}


def _sweep(name: str, case: dict) -> dict:
    """Wall time of a whole sweep per worker count (each into a fresh directory with a cold
    cost cache), the speedup, and whether the tables came out byte-identical."""
    import os

    from stream.sweep import load_sweep, run_sweep

    sweep = load_sweep(INPUTS / case["sweep"])
    seconds, tables, failed = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in case["workers"]:
            os.environ["STREAM_CACHE_DIR"] = str(Path(tmp) / f"cache-{workers}")  # the workers inherit it
            began = time.perf_counter()
            outcome = run_sweep(sweep, Path(tmp) / f"workers-{workers}", workers=workers)
            seconds[f"workers_{workers}"] = round(time.perf_counter() - began, 2)
            tables[workers] = outcome.csv_path.read_bytes()
            failed[f"workers_{workers}"] = outcome.failed
    first, last = case["workers"][0], case["workers"][-1]
    return {"case": name, "points": len(sweep.points()), "seconds": seconds,
            "speedup": round(seconds[f"workers_{first}"] / seconds[f"workers_{last}"], 2),
            "failed": failed, "identical_tables": len(set(tables.values())) == 1, "cpus": os.cpu_count()}


def _allocation(name: str, workload: Path, case: dict) -> dict:
    """Per system: each allocator's simulated latency and energy, its seconds, CP-SAT's gap,
    and the genetic search's simulations (seconds per candidate)."""
    from stream.allocation import AllocationSettings
    from stream.api import compare_allocators
    from stream.mapping import NO_MAPPING

    out = {"case": name, "systems": {}}
    for label, hardware, mapping in case["systems"]:
        greedy, cpsat = compare_allocators(workload, INPUTS / hardware, INPUTS / mapping if mapping else NO_MAPPING,
                                           ("greedy", "cpsat"), mode=case["mode"],
                                           allocation=AllocationSettings(time_limit_s=10.0))
        budget = cpsat.allocation.stats["wall_seconds"]
        (genetic,) = compare_allocators(workload, INPUTS / hardware, INPUTS / mapping if mapping else NO_MAPPING,
                                        ("genetic",), mode=case["mode"],
                                        allocation=AllocationSettings(time_limit_s=budget, generations=1000))
        row = {"cns": cpsat.cngraph.num_cns}
        for run in (greedy, cpsat, genetic):
            row[run.allocation.method] = {"latency_cycles": run.result.latency_cycles,
                                          "energy_pj": round(run.result.energy_pj["total"], 1),
                                          "allocation_seconds": round(run.seconds["allocation"], 3)}
        st = cpsat.allocation.stats
        row["cpsat"].update(status=st["status"], gap=st["gap"], objective_value=st["objective_value"],
                            best_bound=st["best_bound"], kept=st["kept"], tasks=st["tasks"],
                            model_latency_cycles=st["model_latency_cycles"],
                            simulated_solver=st["simulated"]["solver"]["latency_cycles"])
        g = genetic.allocation.stats
        row["genetic"].update(evaluations=g["evaluations"], generations=g["generations"],
                              seconds_per_candidate=round(g["wall_seconds"] / max(g["evaluations"], 1), 4))
        out["systems"][label] = row
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _cost_table(name, workload, hardware, mapping, mode, tmp: Path) -> dict:
    """Fill the zigzag cost table cold (empty cache dir), then warm from the cache on disk."""
    from stream.cost import CostModel
    from stream.hardware import load_hardware
    from stream.mapping import load_mapping, plan_layers
    from stream.tiling import tile
    from stream.workload import load_workload

    t0 = time.perf_counter()
    w, acc = load_workload(workload), load_hardware(hardware)
    g = tile(w, plan_layers(w, acc, load_mapping(mapping) if mapping else None), mode)
    t1 = time.perf_counter()
    cold_model = CostModel(acc, model="zigzag", cache_dir=tmp / "cache")
    cold = cold_model.table(g)  # fills every distinct (tile, candidate core) and saves
    t2 = time.perf_counter()
    warm = CostModel(acc, model="zigzag", cache_dir=tmp / "cache").table(g)
    t3 = time.perf_counter()
    return {"case": name, "cns": g.num_cns, "model": cold_model.model,
            "seconds": {"load_and_tiling": round(t1 - t0, 4), "cost_cold": round(t2 - t1, 4),
                        "cost_warm": round(t3 - t2, 4)},
            "entries": len(cold), "cold": {"hits": cold.hits, "misses": cold.misses},
            "warm": {"hits": warm.hits, "misses": warm.misses},
            "cache_bytes": sum(f.stat().st_size for f in (tmp / "cache").glob("*.json")),
            "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--one":
        print(json.dumps(run_case(argv[1])))
        return 0
    names = argv or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s) {unknown}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True)
        if proc.returncode != 0:
            print(json.dumps({"case": name, "error": proc.stderr.strip().splitlines()[-1:]}))
            status = 1
        else:
            print(proc.stdout.strip(), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
