"""Benchmarks: one JSON object per line per case.

    python scripts/bench.py [CASE ...]      (no CASE: all cases)

Each case runs in a fresh process so ``peak_rss_mb`` is its own. Fields: ``case``,
``cns``, ``edges``, ``seconds`` (load, tiling, cost, allocation, simulation, total),
``peak_rss_mb``, and the headline results (``latency_cycles``, ``energy_pj``).
Performance targets live here, never in timed tests.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

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
}


def run_case(name: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from stream.api import run_detailed

    case = CASES[name]
    outcome = run_detailed(
        INPUTS / case["workload"], INPUTS / case["hardware"],
        INPUTS / case["mapping"] if case["mapping"] else None, mode=case["mode"],
    )
    return {
        "case": name,
        "cns": outcome.cngraph.num_cns,
        "edges": outcome.cngraph.num_edges,
        "seconds": {k: round(v, 4) for k, v in outcome.seconds.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "latency_cycles": outcome.result.latency_cycles,
        "energy_pj": round(outcome.result.energy_pj["total"], 1),
    }


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
