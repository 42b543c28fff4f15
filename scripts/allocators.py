"""Allocators compared: greedy (HEFT), CP-SAT and the genetic baseline on the same cases.

Each case is a workload and a system (``<workload>:<hardware>``, the names of files in
``inputs/workloads/`` and ``inputs/hardware/``, with the system's mapping from
``inputs/mappings/`` where there is one), run fused with the zigzag cost model. The case
is tiled and costed once (:func:`stream.api.compare_allocators`) and each allocator's
answer simulated. CP-SAT and the genetic search get ``--time-limit`` seconds each (CP-SAT's
budget is deterministic work worth about that many seconds with one worker, so its answer
does not depend on the machine; the genetic search stops at its generations or at the wall
clock, and in the second case its answer may differ from run to run: the table says which).

Writes ``allocators.csv`` (one row per case and allocator: simulated latency, energy, EDP,
each relative to greedy, the allocation step's seconds, CP-SAT's status and gap, the genetic
search's generations and what stopped it) and the figure ``allocators.png`` / ``.pdf``:
latency and energy of each allocator relative to greedy per case. Usage:

    python scripts/allocators.py [--out DIR] [--time-limit 10]
        [--cases resnet18:quad_core,resnet18:hetero,fsrcnn:hetero]
        [--allocators greedy,cpsat,genetic] [--allocation-objective latency]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream.allocation import METHODS, OBJECTIVES, AllocationSettings  # noqa: E402
from stream.api import compare_allocators  # noqa: E402
from stream.results import write_table  # noqa: E402

INPUTS = ROOT / "inputs"
CASES = ("resnet18:quad_core", "resnet18:hetero", "fsrcnn:hetero")
ALLOCATORS = ("greedy", "cpsat", "genetic")
COLUMNS = ("case", "workload", "hardware", "mapping", "allocator", "latency_cycles", "energy_pj", "edp_cycles_j",
           "latency_vs_greedy", "energy_vs_greedy", "edp_vs_greedy", "solve_seconds", "cpsat_status", "cpsat_gap",
           "kept", "genetic_generations", "genetic_stopped_by", "num_cns")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "allocators"))
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated <workload>:<hardware> (names of files in inputs/workloads/ and "
                             "inputs/hardware/, without .yaml)")
    parser.add_argument("--allocators", default=",".join(ALLOCATORS),
                        help=f"comma-separated, from {list(METHODS)}; the first is the reference (greedy)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds for cpsat and genetic (10)")
    parser.add_argument("--allocation-objective", choices=OBJECTIVES, default="latency")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.time_limit <= 0:
        parser.error(f"--time-limit: expected seconds > 0, got {args.time_limit:g}")
    allocators = [a.strip() for a in args.allocators.split(",") if a.strip()]
    if not allocators or any(a not in METHODS for a in allocators):
        parser.error(f"--allocators: expected a comma-separated list from {list(METHODS)}, got {args.allocators!r}")
    cases = [parse_case(parser, c.strip()) for c in args.cases.split(",") if c.strip()]
    if not cases:
        parser.error("--cases: expected at least one <workload>:<hardware>")
    settings = AllocationSettings(objective=args.allocation_objective, time_limit_s=args.time_limit, seed=args.seed)
    rows = []
    for workload, hardware in cases:
        rows += study(workload, hardware, allocators, settings)
    out = Path(args.out)
    write_table(out / "allocators.csv", COLUMNS, rows)
    figure(rows, out, args)
    print(f"wrote allocators.csv, allocators.png and allocators.pdf to {out}")
    return 0


def parse_case(parser, case: str) -> tuple[str, str]:
    workload, _, hardware = case.partition(":")
    if not (INPUTS / "workloads" / f"{workload}.yaml").is_file() or not (
            INPUTS / "hardware" / f"{hardware}.yaml").is_file():
        known = (sorted(p.stem for p in (INPUTS / "workloads").glob("*.yaml")),
                 sorted(p.stem for p in (INPUTS / "hardware").glob("*.yaml")))
        parser.error(f"--cases: expected <workload>:<hardware> with a workload from {known[0]} and hardware "
                     f"from {known[1]}, got {case!r}")
    return workload, hardware


def study(workload: str, hardware: str, allocators: list[str], settings: AllocationSettings) -> list[dict]:
    mapping = INPUTS / "mappings" / f"{hardware}.yaml"
    mapping = mapping if mapping.is_file() else None
    case = f"{workload}:{hardware}"
    began = time.perf_counter()

    def failed(name, error) -> None:
        print(f"warning: {case}: allocator {name} failed: {error}", file=sys.stderr)

    runs = compare_allocators(INPUTS / "workloads" / f"{workload}.yaml", INPUTS / "hardware" / f"{hardware}.yaml",
                              mapping, allocators, mode="fused", cost_model="zigzag", allocation=settings,
                              on_error=failed)
    base = next((run.result for run in runs if run.result.allocator == "greedy"), runs[0].result if runs else None)
    rows = []
    for run in runs:
        r, stats = run.result, run.allocation.stats
        energy = r.energy_pj["total"]
        edp = r.latency_cycles * energy * 1e-12
        base_edp = base.latency_cycles * base.energy_pj["total"] * 1e-12
        rows.append({
            "case": case, "workload": r.workload, "hardware": hardware,
            "mapping": mapping.name if mapping else "none", "allocator": r.allocator,
            "latency_cycles": r.latency_cycles, "energy_pj": energy, "edp_cycles_j": edp,
            "latency_vs_greedy": _ratio(r.latency_cycles, base.latency_cycles),
            "energy_vs_greedy": _ratio(energy, base.energy_pj["total"]), "edp_vs_greedy": _ratio(edp, base_edp),
            "solve_seconds": round(run.seconds["allocation"], 3), "cpsat_status": stats.get("status", ""),
            "cpsat_gap": "" if stats.get("gap") is None else stats["gap"], "kept": stats.get("kept", ""),
            "genetic_generations": stats.get("generations", ""), "genetic_stopped_by": stats.get("stopped_by", ""),
            "num_cns": r.num_cns})
        print(f"{case}, {r.allocator}: {r.latency_cycles:,} cycles ({rows[-1]['latency_vs_greedy']:.3f}x greedy), "
              f"{energy * 1e-6:,.1f} uJ ({rows[-1]['energy_vs_greedy']:.3f}x), solve {run.seconds['allocation']:.1f} s"
              + (f", cpsat {stats['status']}, gap {stats['gap']:.1%}" if stats.get("gap") is not None else ""),
              flush=True)
    print(f"{case}: {time.perf_counter() - began:.1f} s in all", flush=True)
    return rows


def _ratio(value: float, base: float) -> float:
    return round(value / base, 6) if base else float("nan")


def figure(rows: list[dict], out: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from stream.viz import save_figure

    cases = list(dict.fromkeys(r["case"] for r in rows))
    allocators = list(dict.fromkeys(r["allocator"] for r in rows))
    value = {(r["case"], r["allocator"]): r for r in rows}
    colors = {"greedy": "0.6", "cpsat": "tab:blue", "genetic": "tab:green", "fixed": "tab:purple"}
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 2.2 * len(cases) + 3), 3.8), sharey=False)
    x = np.arange(len(cases))
    width = 0.8 / max(len(allocators), 1)
    for ax, (key, title) in zip(axes, (("latency_vs_greedy", "latency"), ("energy_vs_greedy", "energy"))):
        spread = 0.0
        for i, name in enumerate(allocators):
            ys = np.array([value[c, name][key] if (c, name) in value else np.nan for c in cases], dtype=float)
            xs = x + (i - (len(allocators) - 1) / 2) * width
            # bars grow from 1 (greedy's value) up or down, so a few percent show
            ax.bar(xs, ys - 1.0, width, bottom=1.0, color=colors.get(name, f"C{i}"), label=name,
                   edgecolor=colors.get(name, f"C{i}"), linewidth=0.8)
            shown = np.isfinite(ys)  # a bar of height 0 (as good as greedy) still shows as a line
            ax.hlines(ys[shown], xs[shown] - width / 2, xs[shown] + width / 2, colors=colors.get(name, f"C{i}"),
                      linewidth=2.5, zorder=3)
            for xi, yi in zip(xs, ys):
                if np.isfinite(yi):
                    ax.annotate(f"{yi:.3f}", (xi, max(yi, 1.0)), textcoords="offset points", xytext=(0, 2),
                                ha="center", va="bottom", fontsize=6, rotation=90)
                    spread = max(spread, abs(yi - 1.0))
        half = max(spread * 1.6, 0.05)
        ax.axhline(1.0, color="0.2", linewidth=0.8)
        ax.set_ylim(max(1.0 - half, 0.0), 1.0 + half)
        ax.set_xticks(x, [c.replace(":", "\n") for c in cases], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel(f"{title} / greedy's (below 1: better)", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(True, axis="y", linewidth=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(f"allocators on fused runs, relative to greedy ({args.allocation_objective} objective, "
                 f"{args.time_limit:g} s for the searches)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, out, "allocators")


if __name__ == "__main__":
    sys.exit(main())
