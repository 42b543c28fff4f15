"""Figures of a simulated run (matplotlib; PNG, or vector PDF with embedded TrueType fonts)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stream.simulation import CAUSES  # noqa: E402


plt.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.hashsalt": "stream",
                     "path.simplify": False})


def layer_colors(names: list[str]) -> dict[str, tuple]:
    """One stable colour per layer, the same in every figure."""
    if len(names) <= 20:
        cmap = plt.get_cmap("tab20")
        return {name: cmap(i) for i, name in enumerate(names)}
    cmap = plt.get_cmap("turbo")  # more layers than a qualitative map has colours
    return {name: cmap(i / (len(names) - 1)) for i, name in enumerate(names)}


def gantt(trace, path: str | os.PathLike) -> dict:
    """A row per core that ran CNs (coloured by layer) and per link that carried data
    (transfers grey, spills and re-fetches red). Bars of one colour closer than a pixel
    merge, so a schedule of a million CNs draws as fast as it reads. Returns the rows and
    the number of bars drawn."""
    g, acc = trace.cngraph, trace.accelerator
    names = [l.name for l in g.workload.layers]
    colors = layer_colors(names)
    used_cores = set(np.unique(trace.allocation.core).tolist())
    rows: list[str] = [f"core {c.id} ({c.name})" for c in acc.cores if c.id in used_cores]
    link_rows = [f"{l.kind} {'-'.join(map(str, l.cores[:4]))}{'-...' if len(l.cores) > 4 else ''} (#{l.id})"
                 for l in acc.links]
    t = trace.transfers
    own = ~t.shared  # multicast riders occupy no link time of their own
    used_links = sorted({l for r in np.unique(t.route[own]).tolist() for l in t.routes[r]})
    rows += [link_rows[l] for l in used_links]
    index = {row: i for i, row in enumerate(rows)}
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(rows) + 1.5))
    # one broken_barh per (row, colour): thousands of bars draw in one call each
    bars: dict[tuple[int, object, float], list[tuple[int, int]]] = {}
    for cn in range(g.num_cns):
        core = acc.core(int(trace.allocation.core[cn]))
        key = (index[f"core {core.id} ({core.name})"], colors[names[g.layer[cn]]], 0.8)
        bars.setdefault(key, []).append((int(trace.start[cn]), int(trace.end[cn] - trace.start[cn])))
    spill = np.isin(t.cause, [CAUSES.index("spill"), CAUSES.index("refetch")])
    for row in np.flatnonzero(own).tolist():
        color = "tab:red" if spill[row] else "0.55"
        for start, end in t.spans(row):  # a long transfer holds its links chunk by chunk
            for l in t.routes[int(t.route[row])]:
                bars.setdefault((index[link_rows[l]], color, 0.6), []).append((start, end - start))
    pixel = max(trace.latency_cycles, 1) / 3000  # about a pixel of the saved figure
    drawn = 0
    for (row, color, height), spans in bars.items():
        merged = _merge(spans, pixel)
        drawn += len(merged)
        ax.broken_barh(merged, (row - height / 2, height), facecolors=color, edgecolor="none")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time (cycles)")
    ax.set_title(f"{g.workload.name} on {acc.name} ({g.mode})", fontsize=10)
    shown = names if len(names) <= 20 else names[:20]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[n]) for n in shown]
    ax.legend(handles, shown, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1),
              title="layers" if len(names) <= 20 else "first 20 layers", title_fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    return {"rows": rows, "bars": drawn}


def _merge(spans: list[tuple[int, int]], gap: float) -> list[tuple[int, int]]:
    """(start, width) spans with those less than ``gap`` apart joined."""
    out: list[list[int]] = []
    for start, width in sorted(spans):
        if out and start - (out[-1][0] + out[-1][1]) < gap:
            out[-1][1] = max(out[-1][1], start + width - out[-1][0])
        else:
            out.append([start, width])
    return [(s, w) for s, w in out]


def memory_trace(trace, path: str | os.PathLike) -> dict[str, dict]:
    """Occupancy over time of every on-chip memory that held anything: weights and the
    rest (feature maps, partial sums, copies in flight) stacked, the capacity dashed and
    the peak marked. Returns what it drew per memory: peak and capacity in bytes."""
    memories = [m for m in trace.memories if m.peak_bits > 0]
    end = max(trace.latency_cycles, 1)
    fig, axes = plt.subplots(max(len(memories), 1), 1, figsize=(10, 1.5 * max(len(memories), 1) + 1),
                             sharex=True, squeeze=False)
    drawn = {}
    for ax, m in zip(axes[:, 0], memories):
        times = np.append(m.times, end)
        weights = m.weights_at(m.times) / 8192
        total = m.bits / 8192
        ax.fill_between(times[:-1], 0, weights, step="post", color="tab:blue", alpha=0.6, linewidth=0,
                        label="weights")
        ax.fill_between(times[:-1], weights, total, step="post", color="tab:orange", alpha=0.6, linewidth=0,
                        label="feature maps, partial sums")
        ax.axhline(m.capacity_bits / 8192, color="0.3", linestyle="--", linewidth=0.8, label="capacity")
        peak = int(np.argmax(m.bits))
        ax.plot([m.times[peak]], [total[peak]], "v", color="tab:red", markersize=5, label="peak")
        ax.annotate(f"peak {total[peak]:,.1f} KiB", (m.times[peak], total[peak]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
        ax.set_ylim(0, max(m.capacity_bits / 8192, total[peak]) * 1.15)
        ax.set_ylabel(f"{m.name}\n(KiB)", fontsize=7)
        ax.tick_params(labelsize=7)
        drawn[m.name] = {"peak_bytes": math.ceil(m.peak_bits / 8), "capacity_bytes": m.capacity_bits // 8}
    axes[0, 0].legend(fontsize=6, loc="upper right", ncol=4)
    axes[-1, 0].set_xlabel("time (cycles)")
    axes[-1, 0].set_xlim(0, end)
    fig.suptitle(f"on-chip memory: {trace.cngraph.workload.name} on {trace.accelerator.name} "
                 f"({trace.cngraph.mode})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return drawn


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
    fig.tight_layout()
    _save(fig, path)
    return {"parts": {p: result.energy_pj[p] for p in parts},
            "layers": {n: (l.energy_pj, l.transfer_energy_pj) for n, l in zip(names, result.layers)}}


def utilisation(result, path: str | os.PathLike) -> dict[str, float]:
    """Busy share of the run per compute core and per link or bus that carried data."""
    rows = {f"core {k[4:]}": v for k, v in result.core_utilisation.items()}
    rows |= {f"link {k[4:]}": v for k, v in result.link_utilisation.items() if v > 0}
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y, [100 * v for v in rows.values()],
            color=["tab:blue" if k.startswith("core") else "0.55" for k in rows])
    ax.set_yticks(y, list(rows), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("busy (% of the latency)")
    for i, v in enumerate(rows.values()):
        ax.text(100 * v + 1, i, f"{100 * v:.1f} %", va="center", fontsize=6)
    ax.set_title(f"utilisation: {result.workload} on {result.hardware} ({result.mode})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return rows


def comparison(results: dict, path: str | os.PathLike) -> dict[str, dict]:
    """Runs side by side (labels are the dict's keys): latency, energy by component, DRAM
    traffic and the peak of the busiest on-chip memory (all data, and feature maps and
    partial sums alone). Returns the drawn values."""
    labels = list(results)
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.6))
    drawn: dict[str, dict] = {"latency_cycles": {}, "energy_pj": {}, "dram_bytes": {}, "peak_bytes": {}}
    latency = [results[l].latency_cycles for l in labels]
    axes[0].bar(x, latency, color="tab:blue")
    axes[0].set_title("latency (cycles)", fontsize=9)
    drawn["latency_cycles"] = dict(zip(labels, latency))
    bottom = np.zeros(len(labels))
    for part, color in zip(("mac", "onchip_memory", "offchip_memory", "interconnect"),
                           ("tab:green", "tab:blue", "tab:red", "tab:purple")):
        values = np.array([results[l].energy_pj[part] * 1e-6 for l in labels])
        axes[1].bar(x, values, bottom=bottom, color=color, label=part.replace("_", " "))
        bottom += values
    axes[1].set_title("energy (uJ)", fontsize=9)
    axes[1].legend(fontsize=6)
    drawn["energy_pj"] = {l: results[l].energy_pj["total"] for l in labels}
    reads = np.array([results[l].dram_traffic_bytes["read"] / 2**20 for l in labels])
    writes = np.array([results[l].dram_traffic_bytes["write"] / 2**20 for l in labels])
    axes[2].bar(x, reads, color="tab:red", label="read")
    axes[2].bar(x, writes, bottom=reads, color="tab:orange", label="write")
    axes[2].set_title("DRAM traffic (MiB)", fontsize=9)
    axes[2].legend(fontsize=6)
    drawn["dram_bytes"] = {l: results[l].dram_traffic_bytes["read"] + results[l].dram_traffic_bytes["write"]
                           for l in labels}
    for i, l in enumerate(labels):
        r = results[l]
        busiest = max(r.peak_memory_bytes, key=lambda k: (r.peak_memory_bytes[k], k))
        peak, features = r.peak_memory_bytes[busiest], r.peak_activation_bytes[busiest]
        axes[3].bar(i - 0.2, peak / 1024, width=0.4, color="tab:blue", label="all" if i == 0 else None)
        axes[3].bar(i + 0.2, features / 1024, width=0.4, color="tab:orange",
                    label="feature maps, partial sums" if i == 0 else None)
        drawn["peak_bytes"][l] = peak
    axes[3].set_title("peak of the busiest memory (KiB)", fontsize=9)
    axes[3].legend(fontsize=6)
    for ax in axes:
        ax.set_xticks(x, labels, fontsize=7, rotation=15)
        ax.tick_params(axis="y", labelsize=7)
    first = results[labels[0]]
    fig.suptitle(f"{first.workload}: " + " vs ".join(labels), fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return drawn


def _save(fig, path: str | os.PathLike) -> None:
    path = Path(path)
    buffer = io.BytesIO()
    fmt = path.suffix.lstrip(".") or "png"
    metadata = {"CreationDate": None} if fmt == "pdf" else ({"Software": None} if fmt == "png" else None)
    fig.savefig(buffer, format=fmt, dpi=150, metadata=metadata)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
