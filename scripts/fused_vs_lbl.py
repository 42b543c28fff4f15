"""Fused (depth-first) against layer-by-layer execution across the bundled CNNs and systems.

For each workload (``inputs/workloads/<name>.yaml``) and hardware
(``inputs/hardware/<name>.yaml``), with the mapping the hardware file names
(``default_mapping``), the same case runs twice, ``fused`` and ``layer_by_layer``, with
the same allocator and the zigzag cost model. A split into more pieces than a layer has is
cut to the layer, and ``note`` says how many were; a mapping that does not fit a workload
at all is dropped for that workload with a warning, and the row says ``mapping`` ``none``
and why in ``note``.

Writes ``fused_vs_lbl.csv`` (one row per workload, hardware and mode: latency, energy and
its four parts, DRAM read and write bytes, the peak of the busiest on-chip memory with and
without weights, the memory it was, spills and CN count; the same inputs give the same
bytes) and the figure ``fused_vs_lbl.png`` / ``.pdf``: per workload and hardware, the
layer-by-layer / fused ratio of latency, energy, DRAM traffic and peak memory on a log
scale (above 1: fusion wins). Usage:

    python scripts/fused_vs_lbl.py [--out DIR] [--workloads resnet18,fsrcnn,two_conv]
        [--hardware single_core,quad_core,hetero,mesh_4x4] [--allocator greedy]
        [--cost-model zigzag]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream.allocation import METHODS  # noqa: E402
from stream.api import NO_MAPPING, run_detailed  # noqa: E402
from stream.errors import InputError  # noqa: E402
from stream.hardware import load_hardware  # noqa: E402
from stream.mapping import load_mapping, plan_layers  # noqa: E402
from stream.results import write_table  # noqa: E402
from stream.workload import load_workload  # noqa: E402

INPUTS = ROOT / "inputs"
WORKLOADS = ("resnet18", "fsrcnn", "two_conv")
HARDWARE = ("single_core", "quad_core", "hetero", "mesh_4x4")
MODES = ("layer_by_layer", "fused")
COLUMNS = ("workload", "hardware", "mapping", "mode", "allocator", "latency_cycles", "latency_s", "energy_pj",
           "mac_pj", "onchip_memory_pj", "offchip_memory_pj", "interconnect_pj", "dram_read_bytes",
           "dram_write_bytes", "peak_memory_bytes", "peak_activation_bytes", "busiest_memory", "spills", "num_cns",
           "note")
# (label, how to read it from a row): the ratios the figure draws
RATIOS = (("latency", lambda r: r["latency_cycles"]), ("energy", lambda r: r["energy_pj"]),
          ("DRAM traffic", lambda r: r["dram_read_bytes"] + r["dram_write_bytes"]),
          ("peak memory", lambda r: r["peak_memory_bytes"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "fused_vs_lbl"))
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="names of files in inputs/workloads/ (without .yaml)")
    parser.add_argument("--hardware", default=",".join(HARDWARE),
                        help="names of files in inputs/hardware/ (without .yaml)")
    parser.add_argument("--allocator", choices=METHODS, default="greedy")
    parser.add_argument("--cost-model", choices=("zigzag", "roofline"), default="zigzag")
    args = parser.parse_args(argv)
    workloads = _names(parser, "--workloads", args.workloads, INPUTS / "workloads")
    systems = _names(parser, "--hardware", args.hardware, INPUTS / "hardware")
    rows = []
    for name in workloads:
        workload = load_workload(INPUTS / "workloads" / f"{name}.yaml")
        for system in systems:
            rows += study(workload, system, args)
    out = Path(args.out)
    write_table(out / "fused_vs_lbl.csv", COLUMNS, rows)
    figure(rows, out, args)
    print(f"wrote fused_vs_lbl.csv, fused_vs_lbl.png and fused_vs_lbl.pdf to {out}")
    return 0


def _names(parser, option: str, value: str, folder: Path) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    missing = [n for n in names if not (folder / f"{n}.yaml").is_file()]
    if missing or not names:
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        parser.error(f"{option}: expected a comma-separated list from {known}, got {value!r}")
    return names


def mapping_for(workload, accelerator, system: str):
    """The mapping the hardware of ``system`` names, if it has one and it fits ``workload``:
    (mapping or NO_MAPPING, the name to report, a note)."""
    if not accelerator.default_mapping:
        return NO_MAPPING, "none", ""
    path = Path(accelerator.default_mapping)
    mapping = load_mapping(path)
    try:
        plans = plan_layers(workload, accelerator, mapping)
    except InputError as error:
        print(f"warning: {workload.name} on {system}: {error}; running without a mapping", file=sys.stderr)
        return NO_MAPPING, "none", f"{path.name} does not fit: {error.key}: expected {error.expected}"
    cut = sum(len(plan.notes) for plan in plans.values())
    return mapping, path.name, f"{cut} splits cut to the layer's size" if cut else ""


def study(workload, system: str, args) -> list[dict]:
    accelerator = load_hardware(INPUTS / "hardware" / f"{system}.yaml")
    mapping, mapping_name, note = mapping_for(workload, accelerator, system)
    rows = []
    for mode in MODES:
        began = time.perf_counter()
        r = run_detailed(workload, accelerator, mapping, mode=mode, allocator=args.allocator,
                         cost_model=args.cost_model).result
        busiest = max(r.peak_memory_bytes, key=lambda k: (r.peak_memory_bytes[k], k)) if r.peak_memory_bytes else ""
        rows.append({
            "workload": r.workload, "hardware": system, "mapping": mapping_name, "mode": mode,
            "allocator": r.allocator, "latency_cycles": r.latency_cycles, "latency_s": r.latency_s,
            "energy_pj": r.energy_pj["total"], **{f"{part}_pj": r.energy_pj[part] for part in (
                "mac", "onchip_memory", "offchip_memory", "interconnect")},
            "dram_read_bytes": r.dram_traffic_bytes["read"], "dram_write_bytes": r.dram_traffic_bytes["write"],
            "peak_memory_bytes": r.peak_memory_bytes.get(busiest, 0),
            "peak_activation_bytes": r.peak_activation_bytes.get(busiest, 0), "busiest_memory": busiest,
            "spills": r.spills, "num_cns": r.num_cns, "note": note})
        print(f"{r.workload} on {system} ({mapping_name}), {mode}: {r.latency_cycles:,} cycles, "
              f"{r.energy_pj['total'] * 1e-6:,.1f} uJ, DRAM {_mib(rows[-1]):.2f} MiB, "
              f"peak {rows[-1]['peak_memory_bytes'] / 1024:,.1f} KiB, {r.num_cns:,} CNs "
              f"({time.perf_counter() - began:.1f} s)", flush=True)
    return rows


def _mib(row: dict) -> float:
    return (row["dram_read_bytes"] + row["dram_write_bytes"]) / 2**20


def ratios(rows: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (workload, hardware): layer-by-layer / fused of each quantity of :data:`RATIOS`
    (None where the fused value is 0)."""
    by_case: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        by_case.setdefault((row["workload"], row["hardware"]), {})[row["mode"]] = row
    out = {}
    for case, modes in by_case.items():
        if set(MODES) <= set(modes):
            lbl, fused = modes["layer_by_layer"], modes["fused"]
            out[case] = {label: (read(lbl) / read(fused) if read(fused) else None) for label, read in RATIOS}
    return out


def figure(rows: list[dict], out: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    from stream.viz import save_figure

    table = ratios(rows)
    cases = list(table)
    without = {(r["workload"], r["hardware"]) for r in rows if r["mapping"] == "none" and r["note"]}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(cases) + 2), 4.2))
    x = np.arange(len(cases))
    width = 0.8 / len(RATIOS)
    colors = ("tab:blue", "tab:green", "tab:red", "tab:orange")
    values = []
    for i, ((label, _), color) in enumerate(zip(RATIOS, colors)):
        ys = np.array([table[c][label] or np.nan for c in cases], dtype=float)
        values.append(ys)
        xs = x + (i - (len(RATIOS) - 1) / 2) * width
        # bars grow from 1 (a tie) up where fusion wins and down where it loses
        ax.bar(xs, ys - 1.0, width, bottom=1.0, color=color, label=f"{label} (layer-by-layer / fused)")
        for xi, yi in zip(xs, ys):
            if np.isfinite(yi):
                ax.annotate(f"{yi:.2f}", (xi, yi), textcoords="offset points", xytext=(0, 1 if yi >= 1 else -1),
                            ha="center", va="bottom" if yi >= 1 else "top", fontsize=5, rotation=90)
    ax.set_yscale("log")
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size:
        ax.set_ylim(min(finite.min(), 1.0) / 2.2, max(finite.max(), 1.0) * 2.2)
    ax.axhline(1.0, color="0.2", linewidth=0.8)
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(x, [f"{w}\n{h}" + (" *" if (w, h) in without else "") for w, h in cases], fontsize=7)
    ax.set_ylabel("layer-by-layer / fused (above 1: fusion wins)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(True, axis="y", which="major", linewidth=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(RATIOS), frameon=False)
    notes = [f"{args.allocator} allocation, {args.cost_model} cost model; peak = busiest on-chip memory"]
    if without:
        notes.append("* the system's mapping does not fit the workload: run without a mapping")
    ax.set_title("fused vs layer-by-layer\n" + "; ".join(notes), fontsize=8)
    fig.tight_layout()
    save_figure(fig, out, "fused_vs_lbl")


if __name__ == "__main__":
    sys.exit(main())
