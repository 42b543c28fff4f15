"""Figures of a simulated run (matplotlib; PNG, or vector PDF with embedded TrueType fonts)."""

from __future__ import annotations

import io
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


def gantt(trace, path: str | os.PathLike) -> None:
    """A row per core (compute, coloured by layer) and per link (transfers grey, spills and re-fetches red)."""
    g, acc = trace.cngraph, trace.accelerator
    names = [l.name for l in g.workload.layers]
    colors = layer_colors(names)
    rows: list[str] = [f"core {c.id} ({c.name})" for c in acc.cores if c.is_compute]
    link_rows = [f"{l.kind} {'-'.join(map(str, l.cores[:4]))}{'-...' if len(l.cores) > 4 else ''} (#{l.id})"
                 for l in acc.links]
    t = trace.transfers
    own = ~t.shared  # multicast riders occupy no link time of their own
    used_links = sorted({l for r in np.unique(t.route[own]).tolist() for l in t.routes[r]})
    rows += [link_rows[l] for l in used_links]
    index = {row: i for i, row in enumerate(rows)}
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(rows) + 1.5))
    for cn in range(g.num_cns):
        core = acc.core(int(trace.allocation.core[cn]))
        row = index[f"core {core.id} ({core.name})"]
        ax.barh(row, trace.end[cn] - trace.start[cn], left=trace.start[cn], height=0.8,
                color=colors[names[g.layer[cn]]], edgecolor="none")
    spill = np.isin(t.cause, [CAUSES.index("spill"), CAUSES.index("refetch")])
    for row in np.flatnonzero(own).tolist():
        for start, end in t.spans(row):  # a long transfer holds its links chunk by chunk
            for l in t.routes[int(t.route[row])]:
                ax.barh(index[link_rows[l]], end - start, left=start, height=0.6,
                        color="tab:red" if spill[row] else "0.55", edgecolor="none")
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
