"""Fusion for state-space models: Mamba prefill unfused, fused along L, and memory-aware.

For each model (mamba-130m, mamba-2.8b) and sequence length, on the bundled SSM
accelerator (inputs/hardware/ssm.yaml), three strategies:

* ``unfused``: layer by layer, every intermediate through DRAM;
* ``fused``: each block's chain from conv1d to the gate fused along L in chunks of
  ``--chunk`` tokens, the state of the scan resident, and the input and output
  projections run whole (GEMMs over the sequence, as fused SSM kernels do: chunked, their
  weights would be fetched again for every chunk unless they fit on chip);
* ``memory_aware``: the chunk size and fusion cuts that fit ``--budget-mib`` of on-chip
  memory at the least latency, chosen by simulating one block
  (:func:`stream.api.memory_aware_fusion`) and then run on the whole model.

Writes ``ssm_fusion.csv`` (one row per model, length and strategy: latency, energy, DRAM
traffic, on-chip peak = the sum of every on-chip memory's peak, and the choice made) and
the figure ``ssm_fusion.png`` / ``.pdf``. Usage:

    python scripts/ssm_fusion.py [--out DIR] [--models mamba-130m,mamba-2.8b]
        [--lengths 256,512,1024,2048,4096,8192] [--chunk 64] [--budget-mib 24] [--blocks N]

``--blocks N`` simulates N blocks of each model instead of all (a quick look);
``--replot`` draws the figure again from the CSV in ``--out`` without simulating.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream.api import memory_aware_fusion, run_detailed  # noqa: E402
from stream.hardware import load_hardware  # noqa: E402
from stream.mapping.fusion import fused_mapping, unfused_mapping  # noqa: E402
from stream.results import write_table  # noqa: E402
from stream.workload.models import MAMBA_SHAPES, mamba_model  # noqa: E402

STRATEGIES = ("unfused", "fused", "memory_aware")
PROJECTIONS = ("in_proj_x", "in_proj_z", "out_proj")
COLUMNS = ("model", "seq_len", "blocks", "strategy", "chunk", "cut", "within_budget", "latency_cycles", "latency_ms",
           "energy_mj", "dram_read_mib", "dram_write_mib", "onchip_peak_mib", "spills", "cns", "seconds")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "ssm_fusion"))
    parser.add_argument("--models", default="mamba-130m,mamba-2.8b")
    parser.add_argument("--lengths", default="256,512,1024,2048,4096,8192")
    parser.add_argument("--chunk", type=int, default=64, help="tokens per chunk of the fused strategy")
    parser.add_argument("--budget-mib", type=float, default=24.0, help="on-chip memory budget of memory_aware")
    parser.add_argument("--blocks", type=int, help="blocks per model (default: all of them)")
    parser.add_argument("--cost-model", choices=("zigzag", "roofline"), default="zigzag")
    parser.add_argument("--replot", action="store_true", help="draw the figure again from --out's ssm_fusion.csv")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.replot:
        with open(out / "ssm_fusion.csv", newline="", encoding="utf-8") as handle:
            rows = [{k: (v if k in ("model", "strategy", "cut", "within_budget") else float(v)) for k, v in row.items()}
                    for row in csv.DictReader(handle)]
        figure(rows, out, args)
        print(f"wrote ssm_fusion.png and ssm_fusion.pdf to {out}")
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MAMBA_SHAPES]
    if unknown:
        parser.error(f"--models: expected names from {sorted(MAMBA_SHAPES)}, got {unknown}")
    lengths = [int(x) for x in args.lengths.split(",")]
    accelerator = load_hardware(ROOT / "inputs" / "hardware" / "ssm.yaml")
    rows = []
    for model in models:
        for length in lengths:
            rows += study(model, length, accelerator, args)
    write_table(out / "ssm_fusion.csv", COLUMNS, rows)
    figure(rows, out, args)
    print(f"wrote ssm_fusion.csv, ssm_fusion.png and ssm_fusion.pdf to {out}")
    return 0


def study(model: str, length: int, accelerator, args) -> list[dict]:
    blocks = args.blocks or MAMBA_SHAPES[model].n_layer
    workload = mamba_model(model, seq_len=length, n_layer=blocks)
    probe = mamba_model(model, seq_len=length, n_layer=1)
    chunk = min(args.chunk, length)
    budget = int(args.budget_mib * 2**20)
    rows = []
    for strategy in STRATEGIES:
        began = time.perf_counter()
        cut: tuple[str, ...] = ()
        fits = ""  # memory_aware: did the probe's choice fit the budget (else: the least memory)
        if strategy == "unfused":
            mapping, mode, chosen = unfused_mapping(workload, accelerator), "layer_by_layer", length
        elif strategy == "fused":
            cut = PROJECTIONS
            mapping, mode, chosen = fused_mapping(workload, accelerator, chunk, isolate=cut), "fused", chunk
        else:
            sizes = tuple(c for c in (8, 16, 32, 64, 128, 256) if c <= length)
            mapping, best, _ = memory_aware_fusion(workload, accelerator, budget, chunks=sizes, probe=probe,
                                                   cost_model=args.cost_model)
            mode, chosen, cut, fits = "fused", best.chunk, best.isolate, best.fits
        r = run_detailed(workload, accelerator, mapping, mode=mode, allocator="greedy",
                         cost_model=args.cost_model).result
        row = {"model": model, "seq_len": length, "blocks": blocks, "strategy": strategy, "chunk": chosen,
               "cut": " ".join(cut), "within_budget": fits, "latency_cycles": r.latency_cycles,
               "latency_ms": round(r.latency_s * 1e3, 4),
               "energy_mj": round(r.energy_pj["total"] * 1e-9, 4),
               "dram_read_mib": round(r.dram_traffic_bytes["read"] / 2**20, 3),
               "dram_write_mib": round(r.dram_traffic_bytes["write"] / 2**20, 3),
               "onchip_peak_mib": round(sum(r.peak_memory_bytes.values()) / 2**20, 3), "spills": r.spills,
               "cns": r.num_cns, "seconds": round(time.perf_counter() - began, 1)}
        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        rows.append(row)
    return rows


def figure(rows: list[dict], out: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stream.viz import save_figure

    models = list(dict.fromkeys(r["model"] for r in rows))
    metrics = (("latency_ms", "prefill latency (ms)"), ("energy_mj", "energy (mJ)"),
               ("dram_read_mib", "DRAM reads (MiB)"), ("onchip_peak_mib", "on-chip peak (MiB)"))
    fig, axes = plt.subplots(len(models), len(metrics), figsize=(15, 3.2 * len(models)), squeeze=False)
    styles = {"unfused": ("tab:red", "o"), "fused": ("tab:blue", "s"), "memory_aware": ("tab:green", "^")}
    for i, model in enumerate(models):
        for j, (key, label) in enumerate(metrics):
            ax = axes[i, j]
            for strategy in STRATEGIES:
                points = [(r["seq_len"], r[key]) for r in rows if r["model"] == model and r["strategy"] == strategy]
                color, marker = styles[strategy]
                name = {"fused": f"fused ({args.chunk}-token chunks)",
                        "memory_aware": f"memory-aware ({args.budget_mib:g} MiB)"}.get(strategy, strategy)
                ax.plot(*zip(*points), color=color, marker=marker, markersize=4, label=name)
            ax.set_xscale("log", base=2)
            if key == "onchip_peak_mib":
                ax.set_ylim(bottom=0)  # a few tens of MiB: linear reads better
            else:
                ax.set_yscale("log")
            ax.set_xlabel("sequence length (tokens)", fontsize=8)
            ax.set_title(f"{model}: {label}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="major", linewidth=0.3)
        axes[i, 0].legend(fontsize=7)
    fig.suptitle("Mamba prefill on the SSM accelerator: unfused vs fused vs memory-aware fusion", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out, "ssm_fusion")


if __name__ == "__main__":
    sys.exit(main())
