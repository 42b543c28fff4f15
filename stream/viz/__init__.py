"""Figures of a simulated run (matplotlib; PNG, or vector PDF with embedded TrueType fonts),
drawn from its :class:`~stream.results.Result` and :class:`~stream.results.Timeline`, which
`stream plot` reads back from the files of `stream run --out`, so no figure needs the trace."""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stream.results.timeline import DRAM_READ, DRAM_WRITE  # noqa: E402
from stream.simulation import CAUSES  # noqa: E402


plt.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.hashsalt": "stream",
                     "path.simplify": False})


def _tight_layout(fig, **kwargs) -> None:
    """``fig.tight_layout``, quiet under ``-q`` too when the margins cannot hold every label
    (a legend of many layers): matplotlib then keeps the layout as it was."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tight layout not applied")
        fig.tight_layout(**kwargs)

def layer_colors(names: list[str]) -> dict[str, tuple]:
    """One stable colour per layer, the same in every figure."""
    if len(names) <= 20:
        cmap = plt.get_cmap("tab20")
        return {name: cmap(i) for i, name in enumerate(names)}
    cmap = plt.get_cmap("turbo")  # more layers than a qualitative map has colours
    return {name: cmap(i / (len(names) - 1)) for i, name in enumerate(names)}


Window = Optional[tuple[int, int]]  # (first cycle, last cycle) of a zoomed view; None: the whole run

LINK_COLOR, SPILL_COLOR = "0.55", "tab:red"
KIND_COLORS = {"weights": "tab:blue", "partial sums": "tab:green", "feature maps": "tab:orange"}


def gantt(result, timeline, path: str | os.PathLike, window: Window = None) -> dict:
    """A row per core that ran CNs (coloured by layer), per link that carried data and per
    DRAM port (reads, writes) that was used: transfers grey, spills and re-fetches red.
    ``window`` zooms into a range of cycles. Bars of one colour closer than a pixel merge,
    so a schedule of a million CNs draws as fast as it reads. Returns the rows, the number
    of bars drawn and the layers in the legend (those that ran in the window)."""
    names = [l.name for l in result.layers]
    colors = layer_colors(names)
    lo, hi = window or (0, max(timeline.latency_cycles, 1))
    pixel = (hi - lo) / 3000  # about a pixel of the saved figure
    rows: list[str] = []
    index: dict[tuple[str, int], int] = {}
    for core in np.unique(timeline.cn_core).tolist():
        index["core", core] = len(rows)
        rows.append(f"core {core} ({result.core_names.get(f'core{core}', '?')})")
    resources = np.unique(timeline.busy_resource).tolist()
    for resource in sorted(resources, key=lambda r: (r < 0, -r if r < 0 else r)):  # links, then DRAM ports
        index["link", resource] = len(rows)
        rows.append({DRAM_READ: "DRAM reads", DRAM_WRITE: "DRAM writes"}.get(
            resource, f"{result.link_names.get(f'link{resource}', 'link')} (#{resource})"))
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.8))
    # one broken_barh per (row, colour): thousands of bars draw in one call each
    bars: dict[tuple[int, object, float], np.ndarray] = {}
    seen = _inside(timeline.cn_start, timeline.cn_end, lo, hi)
    for core in np.unique(timeline.cn_core[seen]).tolist():
        on_core = seen & (timeline.cn_core == core)
        for layer in np.unique(timeline.cn_layer[on_core]).tolist():
            cns = on_core & (timeline.cn_layer == layer)
            bars[index["core", core], colors[names[layer]], 0.8] = np.stack(
                [timeline.cn_start[cns], timeline.cn_end[cns]], axis=1)
    spill = np.isin(timeline.busy_cause, [CAUSES.index("spill"), CAUSES.index("refetch")])
    shown = _inside(timeline.busy_start, timeline.busy_end, lo, hi)
    for resource in resources:
        held = shown & (timeline.busy_resource == resource)
        for color, mask in ((LINK_COLOR, held & ~spill), (SPILL_COLOR, held & spill)):
            if mask.any():
                bars[index["link", resource], color, 0.6] = np.stack(
                    [timeline.busy_start[mask], timeline.busy_end[mask]], axis=1)
    drawn = 0
    for (row, color, height), spans in bars.items():
        merged = _merge(np.clip(spans, lo, hi), pixel)
        drawn += len(merged)
        ax.broken_barh(merged, (row - height / 2, height), facecolors=color, edgecolor="none")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("time (cycles)")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 5))
    zoom = f", cycles {lo:,} to {hi:,}" if window else ""
    ax.set_title(f"{result.workload} on {result.hardware} ({result.mode}{zoom})", fontsize=10)
    legend = [names[l] for l in sorted(set(timeline.cn_layer[seen].tolist()))]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[n]) for n in legend]
    handles += [plt.Rectangle((0, 0), 1, 1, color=LINK_COLOR), plt.Rectangle((0, 0), 1, 1, color=SPILL_COLOR)]
    columns = 1 + (len(legend) + 2) // 24  # at most about 24 entries a column
    ax.legend(handles, legend + ["transfer", "spill, re-fetch"], fontsize=6, loc="upper left",
              bbox_to_anchor=(1.01, 1), ncol=columns, title="layers", title_fontsize=7, frameon=False)
    _tight_layout(fig)
    _save(fig, path)
    return {"rows": rows, "bars": drawn, "legend": legend}


def _inside(start: np.ndarray, end: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Spans that show in [lo, hi] (an instant at lo or hi included)."""
    return (end >= lo) & (start <= hi)


def _merge(spans: np.ndarray, gap: float) -> list[tuple[int, int]]:
    """(start, width) of (start, end) spans, those less than ``gap`` apart joined."""
    if not len(spans):
        return []
    order = np.lexsort((spans[:, 1], spans[:, 0]))
    start, end = spans[order, 0], spans[order, 1]
    reach = np.maximum.accumulate(end)  # the end of the bar so far
    first = np.flatnonzero(np.r_[True, start[1:] - reach[:-1] >= gap])
    begin, finish = start[first], np.maximum.reduceat(end, first)
    return list(zip(begin.tolist(), (finish - begin).tolist()))


def memory_trace(result, timeline, path: str | os.PathLike, window: Window = None) -> dict[str, dict]:
    """Occupancy over time of every on-chip memory that held anything, stacked by kind
    (weights, partial sums, feature maps and copies in flight), the capacity dashed and
    the peak marked. ``window`` zooms into a range of cycles. Returns what it drew per
    memory: peak and capacity in bytes (the peak of the whole run, as in the result)."""
    memories = [m for m in timeline.memories if m.peak_bits > 0]
    lo, hi = window or (0, max(timeline.latency_cycles, 1))
    pixels = 3000
    fig, axes = plt.subplots(max(len(memories), 1), 1, figsize=(10, 1.5 * max(len(memories), 1) + 1.2),
                             sharex=True, squeeze=False)
    drawn = {}
    for ax, m in zip(axes[:, 0], memories):
        steps, total, weights, partials = _envelope(m, lo, hi, pixels)
        times = np.append(steps, max(hi, int(steps[-1])))  # the last step holds to the end
        kib = 8 * 1024
        layers = {"weights": weights / kib, "partial sums": partials / kib,
                  "feature maps": (total - weights - partials) / kib}
        bottom = np.zeros(steps.size)
        for kind, values in layers.items():
            ax.stairs(bottom + values, times, baseline=bottom, fill=True, color=KIND_COLORS[kind], alpha=0.7,
                      linewidth=0, label=kind)
            bottom = bottom + values
        capacity = m.capacity_bits / kib
        ax.axhline(capacity, color="0.3", linestyle="--", linewidth=0.8, label="capacity")
        peak = int(np.argmax(m.bits))
        top = m.bits[peak] / kib
        if lo <= m.times[peak] <= hi:
            ax.plot([m.times[peak]], [top], "v", color="tab:red", markersize=5, label="peak")
            ax.annotate(f"peak {top:,.1f} KiB", (m.times[peak], top), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
        ax.set_ylim(0, max(capacity, top) * 1.2)
        ax.set_ylabel(f"{m.name}\n(KiB)", fontsize=7)
        ax.tick_params(labelsize=7)
        drawn[m.name] = {"peak_bytes": math.ceil(m.peak_bits / 8), "capacity_bytes": m.capacity_bits // 8}
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="upper right", ncol=len(labels), frameon=False,
               bbox_to_anchor=(0.99, 0.995))
    axes[-1, 0].set_xlabel("time (cycles)")
    axes[-1, 0].set_xlim(lo, hi)
    axes[-1, 0].ticklabel_format(axis="x", style="sci", scilimits=(-3, 5))
    zoom = f", cycles {lo:,} to {hi:,}" if window else ""
    fig.suptitle(f"on-chip memory: {result.workload} on {result.hardware} ({result.mode}{zoom})", fontsize=10,
                 x=0.01, ha="left")
    _tight_layout(fig)
    _save(fig, path)
    return drawn


def _envelope(m, lo: int, hi: int, pixels: int) -> tuple[np.ndarray, ...]:
    """The occupancy steps of ``m`` to draw over [lo, hi] (from the one in force at ``lo``):
    all of them when they are few, else the highest in each pixel, so peaks stay visible
    in a run of millions of steps."""
    first = max(int(np.searchsorted(m.times, lo, side="right")) - 1, 0)
    last = max(int(np.searchsorted(m.times, hi, side="right")), first + 1)
    columns = tuple(c[first:last] for c in (m.times, m.bits, m.weight_bits, m.partial_bits))
    if columns[0].size <= 4 * pixels:
        return columns
    times, bits = columns[0], columns[1]
    pixel = max((hi - lo) / pixels, 1.0)
    column = np.floor((np.maximum(times, lo) - lo) / pixel).astype(np.int64)
    order = np.lexsort((-bits, column))  # per pixel column, the highest step first
    keep = np.sort(order[np.r_[True, column[order][1:] != column[order][:-1]]])
    return tuple(c[keep] for c in columns)


def energy_breakdown(result, path: str | os.PathLike) -> dict[str, dict]:
    """Energy by component (one stacked bar) and by layer (compute in the layer's colour,
    its transfers lighter). Returns the drawn values in pJ."""
    parts = ("mac", "onchip_memory", "offchip_memory", "interconnect")
    names = [l.name for l in result.layers]
    colors = layer_colors(names)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 5]})
    bottom = 0.0
    for part, color in zip(parts, ("tab:green", "tab:blue", "tab:red", "tab:purple")):
        value = result.energy_pj[part] * 1e-6
        left.bar(0, value, bottom=bottom, color=color, label=part.replace("_", " "), width=0.6)
        bottom += value
    left.set_xticks([])
    left.set_ylabel("energy (uJ)")
    left.set_title(f"total {result.energy_pj['total'] * 1e-6:,.1f} uJ", fontsize=9)
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02))
    compute = [l.energy_pj * 1e-6 for l in result.layers]
    moved = [l.transfer_energy_pj * 1e-6 for l in result.layers]
    x = np.arange(len(names))
    right.bar(x, compute, color=[colors[n] for n in names])
    right.bar(x, moved, bottom=compute, color=[colors[n] for n in names], alpha=0.4, hatch="//",
              edgecolor="0.4", linewidth=0)
    right.set_xticks(x, names, rotation=90, fontsize=6 if len(names) > 20 else 7)
    right.set_ylabel("energy (uJ)")
    right.legend([plt.Rectangle((0, 0), 1, 1, color="0.45"),
                  plt.Rectangle((0, 0), 1, 1, color="0.45", alpha=0.4, hatch="//", linewidth=0)],
                 ["compute and on-chip memory", "its transfers (DRAM, links)"], fontsize=7)
    right.set_title("by layer", fontsize=9)
    fig.suptitle(f"energy: {result.workload} on {result.hardware} ({result.mode})", fontsize=10)
    _tight_layout(fig)
    _save(fig, path)
    return {"parts": {p: result.energy_pj[p] for p in parts},
            "layers": {n: (l.energy_pj, l.transfer_energy_pj) for n, l in zip(names, result.layers)}}


def utilisation(result, path: str | os.PathLike) -> dict[str, float]:
    """Busy share of the run per compute core and per link or bus that carried data."""
    rows = {f"core {k[4:]} ({result.core_names.get(k, '?')})": v for k, v in result.core_utilisation.items()}
    rows |= {f"{result.link_names.get(k, 'link')} (#{k[4:]})": v
             for k, v in result.link_utilisation.items() if v > 0}
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    y = np.arange(len(rows))
    cores = len(result.core_utilisation)
    ax.barh(y, [100 * v for v in rows.values()], color=["tab:blue"] * cores + [LINK_COLOR] * (len(rows) - cores))
    ax.set_yticks(y, list(rows), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel("busy (% of the latency)")
    for i, v in enumerate(rows.values()):
        ax.text(100 * v + 1, i, f"{100 * v:.1f} %", va="center", fontsize=6)
    ax.set_title(f"utilisation: {result.workload} on {result.hardware} ({result.mode})", fontsize=10)
    _tight_layout(fig)
    _save(fig, path)
    return rows


FIGURES = ("gantt", "memory", "energy", "utilisation")


def figures(result, timeline, directory: str | os.PathLike, window: Window = None,
            formats: tuple[str, ...] = ("png", "pdf")) -> list[str]:
    """Every figure of a run into ``directory``, each in every format: ``gantt``, ``memory``,
    ``energy`` and ``utilisation``; with ``window`` only the Gantt chart and memory trace
    of that range, as ``gantt-<first>-<last>`` and ``memory-<first>-<last>``. Returns the
    file names written."""
    directory = Path(directory)
    written = []
    suffix = f"-{window[0]}-{window[1]}" if window else ""
    for fmt in formats:
        gantt(result, timeline, directory / f"gantt{suffix}.{fmt}", window)
        memory_trace(result, timeline, directory / f"memory{suffix}.{fmt}", window)
        written += [f"gantt{suffix}.{fmt}", f"memory{suffix}.{fmt}"]
        if not window:
            energy_breakdown(result, directory / f"energy.{fmt}")
            utilisation(result, directory / f"utilisation.{fmt}")
            written += [f"energy.{fmt}", f"utilisation.{fmt}"]
    return written


def comparison(results: dict, path: str | os.PathLike) -> dict[str, dict]:
    """Runs side by side (labels are the dict's keys): latency, energy by component, DRAM
    traffic and the peak of the busiest on-chip memory (all data, and feature maps and
    partial sums alone). Returns the drawn values."""
    labels = list(results)
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, 4, figsize=(12, 4))
    drawn: dict[str, dict] = {"latency_cycles": {}, "energy_pj": {}, "dram_bytes": {}, "peak_bytes": {}}
    latency = [results[l].latency_cycles for l in labels]
    axes[0].bar(x, latency, color="tab:blue")
    axes[0].set_title("latency (cycles)", fontsize=9)
    drawn["latency_cycles"] = dict(zip(labels, latency))
    _ratios(axes[0], x, latency)
    bottom = np.zeros(len(labels))
    for part, color in zip(("mac", "onchip_memory", "offchip_memory", "interconnect"),
                           ("tab:green", "tab:blue", "tab:red", "tab:purple")):
        values = np.array([results[l].energy_pj[part] * 1e-6 for l in labels])
        axes[1].bar(x, values, bottom=bottom, color=color, label=part.replace("_", " "))
        bottom += values
    axes[1].set_title("energy (uJ)", fontsize=9)
    drawn["energy_pj"] = {l: results[l].energy_pj["total"] for l in labels}
    _ratios(axes[1], x, bottom)
    reads = np.array([results[l].dram_traffic_bytes["read"] / 2**20 for l in labels])
    writes = np.array([results[l].dram_traffic_bytes["write"] / 2**20 for l in labels])
    axes[2].bar(x, reads, color="tab:red", label="read")
    axes[2].bar(x, writes, bottom=reads, color="tab:orange", label="write")
    axes[2].set_title("DRAM traffic (MiB)", fontsize=9)
    drawn["dram_bytes"] = {l: results[l].dram_traffic_bytes["read"] + results[l].dram_traffic_bytes["write"]
                           for l in labels}
    _ratios(axes[2], x, reads + writes)
    peaks = []
    for i, l in enumerate(labels):
        r = results[l]
        busiest = max(r.peak_memory_bytes, key=lambda k: (r.peak_memory_bytes[k], k))
        peak, features = r.peak_memory_bytes[busiest], r.peak_activation_bytes[busiest]
        axes[3].bar(i - 0.2, peak / 1024, width=0.4, color="tab:blue", label="all data" if i == 0 else None)
        axes[3].bar(i + 0.2, features / 1024, width=0.4, color="tab:orange",
                    label="without weights" if i == 0 else None)
        drawn["peak_bytes"][l] = peak
        peaks.append(peak / 1024)
    axes[3].set_title("peak of the busiest memory (KiB)", fontsize=9)
    _ratios(axes[3], x - 0.2, peaks)
    for ax in axes:
        ax.set_xticks(x, labels, fontsize=7, rotation=15)
        ax.tick_params(axis="y", labelsize=7)
        if ax.get_legend_handles_labels()[0]:  # below the axes: it never hides a bar
            ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    first = results[labels[0]]
    fig.suptitle(f"{first.workload}: " + " vs ".join(labels) + f" (ratios to {labels[0]})", fontsize=10)
    _tight_layout(fig)
    _save(fig, path)
    return drawn


def _ratios(ax, x, values) -> None:
    """Each bar's value relative to the first's, above it; head room for the labels."""
    values = np.asarray(values, dtype=float)
    for i in range(1, len(values)):
        if values[0]:
            ax.annotate(f"{values[i] / values[0]:.2f}x", (x[i], values[i]), textcoords="offset points",
                        xytext=(0, 2), ha="center", fontsize=7)
    ax.set_ylim(0, max(values.max(), ax.get_ylim()[1]) * 1.12 if values.size else 1)


# the sweep table's columns the trade-off figure draws: (column, axis label, scale to that unit)
TRADEOFFS = (("latency_s", "latency (ms)", 1e3), ("energy_pj", "energy (uJ)", 1e-6),
             ("onchip_peak_bytes", "on-chip peak (MiB)", 1 / 2**20))


def pareto(points: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``points`` (one column per objective, all minimised) that no
    other row dominates (as good in every objective and better in one)."""
    points = np.asarray(points, dtype=float)
    keep = np.ones(len(points), dtype=bool)
    for i, p in enumerate(points):
        dominated = np.all(points <= p, axis=1) & np.any(points < p, axis=1)
        keep[i] = not dominated.any()
    return keep


def tradeoff(rows: list[dict], path: str | os.PathLike, title: str = "", color_by: str | None = None) -> dict:
    """Trade-offs of a sweep's points (rows of its ``results.csv``; those not ``ok`` are
    left out): latency vs energy, latency vs on-chip peak, energy vs on-chip peak. The
    points on the Pareto front of all three (every objective minimised) are ringed, and
    each panel's own two-objective front is drawn as a staircase. ``color_by``: a column
    whose values colour the points (default: the first parameter column that varies).
    Returns the number of points drawn and the ``point`` numbers on the front."""
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    values = np.array([[float(r[key]) * scale for key, _, scale in TRADEOFFS] for r in ok]).reshape(-1, len(TRADEOFFS))
    front = pareto(values) if len(ok) else np.zeros(0, dtype=bool)
    metrics = {"point", "id", "status", "error"} | {k for k, _, _ in TRADEOFFS} | {
        "latency_cycles", "dram_read_bytes", "dram_write_bytes", "peak_memory_bytes", "num_cns", "spills"}
    params = [k for k in (ok[0] if ok else {}) if k not in metrics]
    if color_by is None:
        color_by = next((k for k in params if len({r[k] for r in ok}) > 1), None)
    labels = sorted({r[color_by] for r in ok}, key=_natural) if color_by else []
    cmap = plt.get_cmap("viridis")
    colors = [cmap(labels.index(r[color_by]) / max(len(labels) - 1, 1)) if color_by else "tab:blue" for r in ok]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (i, j) in zip(axes, ((0, 1), (0, 2), (1, 2))):
        if len(ok):
            ax.scatter(values[:, i], values[:, j], c=colors, s=18, edgecolors="none")
            ax.scatter(values[front, i], values[front, j], s=60, facecolors="none", edgecolors="tab:red",
                       linewidths=1.0, label="Pareto front (all three)")
            own = values[pareto(values[:, [i, j]])]
            own = own[np.argsort(own[:, i])]
            ax.step(own[:, i], own[:, j], where="post", color="tab:red", linewidth=0.8, alpha=0.6)
        ax.set_xlabel(TRADEOFFS[i][1], fontsize=8)
        ax.set_ylabel(TRADEOFFS[j][1], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.3)
    if labels:  # below the panels: long parameter names and many values fit there
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=cmap(k / max(len(labels) - 1, 1)))
                   for k in range(len(labels))]
        fig.legend(handles, labels, title=color_by, fontsize=7, title_fontsize=7, loc="lower center",
                   ncol=min(len(labels), 10), frameon=False)
    if len(ok):
        axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title or f"{len(ok)} points", fontsize=10)
    rows_of_legend = -(-len(labels) // 10)
    _tight_layout(fig, rect=(0, 0.06 + 0.05 * rows_of_legend if labels else 0, 1, 1))
    _save(fig, path)
    return {"points": len(ok), "pareto": [int(r["point"]) for r, f in zip(ok, front) if f]}


def _natural(text: str):
    """Numbers by value, then text: ``2 < 10 < abc``."""
    try:
        return (0, float(text), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(text))


def save_figure(fig, directory: str | os.PathLike, name: str, formats: tuple[str, ...] = ("png", "pdf")) -> list[str]:
    """Write ``fig`` as ``directory/name.<format>`` for each format (atomically, without
    timestamps, so the same figure gives the same bytes), then close it. For scripts that
    draw figures of their own; returns the file names."""
    for fmt in formats:
        _save(fig, Path(directory) / f"{name}.{fmt}", close=False)
    plt.close(fig)
    return [f"{name}.{fmt}" for fmt in formats]


def _save(fig, path: str | os.PathLike, close: bool = True) -> None:
    path = Path(path)
    buffer = io.BytesIO()
    fmt = path.suffix.lstrip(".") or "png"
    metadata = {"CreationDate": None} if fmt == "pdf" else ({"Software": None} if fmt == "png" else None)
    fig.savefig(buffer, format=fmt, dpi=150, metadata=metadata)
    if close:
        plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
