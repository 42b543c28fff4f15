"""On-chip memory size sweep: how much SRAM per core fused and layer-by-layer execution need.

ResNet-18 on the quad-core system (its mapping, greedy allocation): the SRAM of the four
compute cores from 128 KiB to 8 MiB, fused and layer by layer, as one sweep
(:mod:`stream.sweep`; resumable: run it again to finish an interrupted one). Writes the
sweep's ``results.csv`` (and its points) under ``--out`` and the figure
``memory_sweep.png`` / ``.pdf``: latency, energy and DRAM traffic against the SRAM size,
one line per mode, spilling points marked. Usage:

    python scripts/memory_sweep.py [--out DIR] [--workers N] [--sizes-kib 128,256,...]
        [--workload W] [--hardware H] [--mapping M]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream.sweep import run_sweep  # noqa: E402
from stream.viz import save_figure  # noqa: E402

SIZES_KIB = (128, 192, 256, 384, 512, 768, 1024, 2048, 4096, 8192)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "memory_sweep"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sizes-kib", default=",".join(map(str, SIZES_KIB)), help="SRAM sizes per core, KiB")
    parser.add_argument("--workload", default=str(ROOT / "inputs" / "workloads" / "resnet18.yaml"))
    parser.add_argument("--hardware", default=str(ROOT / "inputs" / "hardware" / "quad_core.yaml"))
    parser.add_argument("--mapping", default=str(ROOT / "inputs" / "mappings" / "quad_core.yaml"))
    parser.add_argument("--memory-key", default="hardware.cores.0-3.memories.sram_1mib.size",
                        help="the key path of the swept memory size (bits) in the hardware files")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes_kib.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = {"version": 1, "name": "memory_sweep",
            "base": {"workload": str(Path(args.workload).resolve()), "hardware": str(Path(args.hardware).resolve()),
                     "mapping": str(Path(args.mapping).resolve()) if args.mapping else None, "allocator": "greedy"},
            "axes": [{"key": args.memory_key, "values": [kib * 8192 for kib in sizes]},
                     {"key": "mode", "values": ["fused", "layer_by_layer"]}],
            "combine": "product"}
    if spec["base"]["mapping"] is None:
        del spec["base"]["mapping"]
    (out / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    outcome = run_sweep(out / "sweep.yaml", out, workers=args.workers)
    figure(outcome.rows, args.memory_key, out)
    print(f"{outcome.ran} points run, {outcome.skipped} already done, {outcome.failed} failed; wrote "
          f"{outcome.csv_path.name}, memory_sweep.png and memory_sweep.pdf to {out}")
    return 1 if outcome.failed else 0


def figure(rows: list[dict], key: str, out: Path) -> None:
    import matplotlib.pyplot as plt

    panels = (("latency_s", "latency (ms)", 1e3), ("energy_pj", "energy (uJ)", 1e-6),
              ("dram_bytes", "DRAM traffic (MiB)", 1 / 2**20))
    fig, axes = plt.subplots(1, len(panels), figsize=(12, 3.6))
    for mode, color in (("fused", "tab:blue"), ("layer_by_layer", "tab:red")):
        points = sorted((int(r[key]) / 8192, r) for r in rows if r["mode"] == mode and r["status"] == "ok")
        kib = [p for p, _ in points]
        for ax, (metric, label, scale) in zip(axes, panels):
            values = [(float(r["dram_read_bytes"]) + float(r["dram_write_bytes"]) if metric == "dram_bytes"
                       else float(r[metric])) * scale for _, r in points]
            ax.plot(kib, values, marker="o", markersize=4, color=color, label=mode.replace("_", " "))
            spilled = [(k, v) for k, v, (_, r) in zip(kib, values, points) if int(r["spills"]) > 0]
            if spilled:
                ax.scatter(*zip(*spilled), s=60, facecolors="none", edgecolors=color, linewidths=1.0)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("SRAM per compute core (KiB)", fontsize=8)
            ax.set_title(label, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(True, linewidth=0.3)
    axes[0].legend(fontsize=7, title="ringed: spills", title_fontsize=7)
    failed = sum(1 for r in rows if r["status"] != "ok")
    fig.suptitle(f"on-chip memory size sweep ({len(rows) - failed} points"
                 + (f", {failed} failed" if failed else "") + ")", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out, "memory_sweep")


if __name__ == "__main__":
    sys.exit(main())
