"""Our mapping search against ZigZag's LOMA on the ResNet-18 layers (needs zigzag-dse).

    python scripts/mapping_quality.py [--lpf 6] [--cores tpu_32x32 os_16x64] [--markdown]

For every distinct ResNet-18 layer shape and each core: the best energy found by our search
(objective energy) and by LOMA (lpf limit 6, objective energy), and the same for latency
(objective latency), with the ratios ours / LOMA (below 1: ours is better) and the seconds
each took. Prints JSON lines, or a Markdown table with ``--markdown``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from stream.cost.search import NoValidMapping, search  # noqa: E402
from stream.hardware import load_core  # noqa: E402
from stream.workload import load_workload  # noqa: E402

# (name, K, C, OY=OX, F, stride) of ResNet-18's distinct layers on a 224x224 image
LAYERS = [
    ("conv1 7x7/2", 64, 3, 112, 7, 2),
    ("3x3 64 @56", 64, 64, 56, 3, 1),
    ("3x3/2 128 @28", 128, 64, 28, 3, 2),
    ("3x3 128 @28", 128, 128, 28, 3, 1),
    ("1x1/2 128 @28", 128, 64, 28, 1, 2),
    ("3x3/2 256 @14", 256, 128, 14, 3, 2),
    ("3x3 256 @14", 256, 256, 14, 3, 1),
    ("1x1/2 256 @14", 256, 128, 14, 1, 2),
    ("3x3/2 512 @7", 512, 256, 7, 3, 2),
    ("3x3 512 @7", 512, 512, 7, 3, 1),
    ("1x1/2 512 @7", 512, 256, 7, 1, 2),
    ("fc 1000x512", 1000, 512, 1, 1, 1),
]


def _layer(spec: dict):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer.yaml"
        layer = {k: v for k, v in spec.items() if k != "padding"}
        path.write_text(yaml.safe_dump({"version": 1, "name": "q", "layers": [layer]}))
        return load_workload(path).layers[0]


def compare(core_name: str, name: str, k: int, c: int, size: int, f: int, stride: int, lpf: int) -> dict:
    from zigzag_ref import conv_spec, run_loma

    core = load_core(ROOT / "inputs" / "hardware" / "cores" / f"{core_name}.yaml", 0)
    spec = conv_spec(name="q", K=k, C=c, OY=size, OX=size, FY=f, FX=f, stride=stride)
    layer = _layer(spec)
    row = {"core": core_name, "layer": name}
    for objective, field, opt in (("energy", "energy_total", "energy"), ("latency", "latency_total2", "latency")):
        t0 = time.perf_counter()
        try:
            ours = search(core, layer, objective=objective)
        except NoValidMapping:
            ours = None
        t1 = time.perf_counter()
        try:
            loma = run_loma(core, spec, lpf_limit=lpf, opt=opt)["best"]
        except Exception:  # ZigZag finds no valid mapping either: the layer does not fit the core
            loma = None
        t2 = time.perf_counter()
        if ours is None or loma is None:
            row[objective] = {"fits": {"ours": ours is not None, "loma": loma is not None}}
            continue
        value = ours.cost.energy_total if objective == "energy" else ours.cost.latency_total2
        row[objective] = {"ours": value, "loma": loma[field], "ratio": value / loma[field],
                          "ours_s": round(t1 - t0, 3), "loma_s": round(t2 - t1, 3)}
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lpf", type=int, default=6)
    parser.add_argument("--cores", nargs="+", default=["tpu_32x32", "os_16x64"])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    rows = [compare(core, *layer, lpf=args.lpf) for core in args.cores for layer in LAYERS]
    if not args.markdown:
        for row in rows:
            print(json.dumps(row))
        return 0
    print("| core | layer | energy ours / LOMA | latency ours / LOMA | search s (ours / LOMA) |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        e, lat = r["energy"], r["latency"]
        if "ratio" not in e or "ratio" not in lat:
            fits = e.get("fits", {})
            who = "either tool" if not any(fits.values()) else ("ours" if not fits.get("ours") else "LOMA")
            print(f"| {r['core']} | {r['layer']} | does not fit ({who}) | | |")
            continue
        print(f"| {r['core']} | {r['layer']} | {e['ratio']:.3f} | {lat['ratio']:.3f} | "
              f"{e['ours_s'] + lat['ours_s']:.2f} / {e['loma_s'] + lat['loma_s']:.2f} |")
    compared = [r for r in rows if "ratio" in r["energy"] and "ratio" in r["latency"]]
    worst_e = max(r["energy"]["ratio"] for r in compared)
    worst_l = max(r["latency"]["ratio"] for r in compared)
    print(f"\nworst ratio: energy {worst_e:.3f}, latency {worst_l:.3f} (lpf limit {args.lpf})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
