"""Ours beside the field's tools on the field's own files: the table of docs/peer-comparison.md.

Needs the field's files beside the repository (``../shared/peer-inputs/stream``, or
``--peers DIR``); the peers' figures are those of its PEER-RESULTS.md, or measured here with
stream-dse 2.1.1 where a case is not listed there (marked). The mappings the 2026 tool
generated are in tests/data/peer_mappings. The ZigZag case needs zigzag-dse (the test extra).

    python scripts/peer_compare.py [--peers DIR] [--only SUBSTRING]

Prints one Markdown row per case: both tools' latency and energy and ours / peer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from stream import api
from stream.workload import load_workload
from stream.workload.onnx_loader import load_onnx

REPO = Path(__file__).resolve().parent.parent
PEER_MAPPINGS = REPO / "tests" / "data" / "peer_mappings"


@dataclass(frozen=True)
class Case:
    name: str
    tool: str
    workload: str  # under the peers' folder
    hardware: str  # under the peers' folder, or "zigzag:tpu_like"
    mapping: str  # under the peers' folder, "peer:NAME" (tests/data/peer_mappings) or "classic-stacks"
    mode: str
    peer_cycles: float
    peer_energy_pj: float
    bits: int | None = None  # price the ONNX file at this width (the 2026 tool reads float32 as 32 bits)
    energy_of: tuple[str, ...] = ()  # count the energy of these operator types only (all: empty)


CLASSIC, NEW = "classic-2025", "2026"
CASES = (
    Case("ResNet-18, fused, the peer's layer stacks", "Stream ae6a7788", f"{CLASSIC}/workload/resnet18.onnx",
         f"{CLASSIC}/hardware/tpu_like_quad_core.yaml", "classic-stacks", "fused", 6_308_574, 3.050e9),
    Case("ResNet-18, layer by layer", "Stream ae6a7788", f"{CLASSIC}/workload/resnet18.onnx",
         f"{CLASSIC}/hardware/tpu_like_quad_core.yaml", "classic-stacks", "layer_by_layer", 6_199_585, 4.607e9),
    Case("2conv, fused, the peer's mapping", "stream-dse 2.1.1", f"{NEW}/workload/2conv_1_8_32_32_16_32_3.onnx",
         f"{NEW}/hardware/tpu_like_quad_core.yaml", "peer:2conv_1_8_32_32_16_32_3", "fused", 15_232, 17.10e6),
    Case("2conv, layer by layer (peer measured here)", "stream-dse 2.1.1",
         f"{NEW}/workload/2conv_1_8_32_32_16_32_3.onnx", f"{NEW}/hardware/tpu_like_quad_core.yaml",
         "peer:2conv_1_8_32_32_16_32_3", "layer_by_layer", 24_984, 26.154e6),
    Case("swiglu, fused, the peer's mapping", "stream-dse 2.1.1", f"{NEW}/workload/swiglu_64_128_256.onnx",
         f"{NEW}/hardware/tpu_like_quad_core.yaml", "peer:swiglu_64_128_256", "fused", 30_921, 32.9e6),
    Case("swiglu, layer by layer", "stream-dse 2.1.1", f"{NEW}/workload/swiglu_64_128_256.onnx",
         f"{NEW}/hardware/tpu_like_quad_core.yaml", "peer:swiglu_64_128_256", "layer_by_layer", 66_880, 68.1e6),
    Case("ResNet-18 (32-bit), fused, the peer's mapping", "stream-dse 2.1.1", f"{CLASSIC}/workload/resnet18.onnx",
         f"{NEW}/hardware/tpu_like_quad_core.yaml", "peer:resnet18_fused", "fused", 7_697_589, 7.224e9, bits=32),
    Case("ResNet-18 (32-bit), layer by layer", "stream-dse 2.1.1", f"{CLASSIC}/workload/resnet18.onnx",
         f"{NEW}/hardware/tpu_like_quad_core.yaml", "peer:resnet18_lbl", "layer_by_layer", 12_491_078, 12.26e9,
         bits=32),
    Case("ResNet-18 on one tpu_like core with DRAM, layer by layer", "zigzag-dse 3.9.1",
         f"{CLASSIC}/workload/resnet18.onnx", "zigzag:tpu_like", "zigzag:tpu_like", "layer_by_layer",
         4.106e6, 1.860e9, energy_of=("Conv", "Gemm")),  # ZigZag's sum is over its 21 Conv and Gemm layers
)


def classic_stacks(peers: Path, out: Path) -> Path:
    """The GA mapping with the layer stacks of the peer's GA script: layers 0-10, 11-21."""
    names = [l.name for l in load_workload(peers / CLASSIC / "workload" / "resnet18.onnx").layers]
    rules = yaml.safe_load((peers / CLASSIC / "mapping" / "tpu_like_quad_core_ga.yaml").read_text())
    path = out / "stacked.yaml"
    path.write_text(yaml.safe_dump(rules + [{"layer_stacks": [names[0:11], names[11:22]]}]))
    return path


def zigzag_system(out: Path) -> tuple[Path, Path]:
    """zigzag-dse's own tpu_like core (its DRAM level made the off-chip core) and a mapping
    that runs everything on it. Its file repeats `ports` for the SRAM; YAML keeps the last."""
    import zigzag

    text = (Path(zigzag.__file__).parent / "inputs" / "hardware" / "tpu_like.yaml").read_text()
    stale = "    ports:\n      - fh: w_port_1\n        tl: r_port_1\n      - fh: w_port_1\n        tl: r_port_1\n" \
            "        fl: w_port_1\n        th: r_port_1\n"
    text = text.replace(stale, "")
    dram_at, array_at = text.index("  dram:"), text.index("operational_array:")
    (out / "tpu_like.yaml").write_text(text[:dram_at] + text[array_at:])
    (out / "dram.yaml").write_text("name: dram\ntype: offchip\nmemories:\n" + text[dram_at:array_at]
                                   + "operational_array: {unit_energy: 0, dimensions: [D1, D2], sizes: [0, 0]}\n")
    (out / "system.yaml").write_text("name: zigzag_tpu_like\ncores: {0: tpu_like.yaml, 1: dram.yaml}\n"
                                     "offchip_core_id: 1\nunit_energy_cost: 0\ncore_connectivity:\n"
                                     "  - {type: bus, cores: [0, 1], bandwidth: 2048}\n")
    (out / "mapping.yaml").write_text("- name: default\n  core_allocation: [0]\n")
    return out / "system.yaml", out / "mapping.yaml"


def run_case(case: Case, peers: Path, scratch: Path):
    if case.hardware.startswith("zigzag:"):
        hardware, mapping = zigzag_system(scratch)
    else:
        hardware = peers / case.hardware
        if case.mapping == "classic-stacks":
            mapping = classic_stacks(peers, scratch)
        elif case.mapping.startswith("peer:"):
            mapping = PEER_MAPPINGS / f"{case.mapping[5:]}.yaml"
        else:
            mapping = peers / case.mapping
    path = peers / case.workload
    workload = load_onnx(path, act_bits=case.bits, weight_bits=case.bits, psum_bits=case.bits) if case.bits \
        else load_workload(path)
    return api.run(workload, hardware, mapping, mode=case.mode, allocator="greedy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, default=REPO.parent / "shared" / "peer-inputs" / "stream")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args(argv)
    if not (args.peers / CLASSIC).is_dir():
        print(f"error: {args.peers}: expected the field's files (classic-2025 and 2026 folders)", file=sys.stderr)
        return 2
    print("| case | tool | peer cycles | peer energy | our cycles | our energy | ours / peer |")
    print("|---|---|---|---|---|---|---|")
    for case in CASES:
        if args.only not in case.name:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            r = run_case(case, args.peers, Path(scratch))
        ours_e = r.energy_pj["total"] if not case.energy_of else \
            sum(l.energy_pj + l.transfer_energy_pj for l in r.layers if l.op_type in case.energy_of)
        print(f"| {case.name} | {case.tool} | {case.peer_cycles:,.0f} | {_energy(case.peer_energy_pj)} | "
              f"{r.latency_cycles:,} | {_energy(ours_e)} | {r.latency_cycles / case.peer_cycles:.2f}, "
              f"{ours_e / case.peer_energy_pj:.2f} |", flush=True)
    return 0


def _energy(pj: float) -> str:
    return f"{pj / 1e9:.3f} mJ" if pj >= 1e8 else f"{pj / 1e6:.1f} uJ"


if __name__ == "__main__":
    sys.exit(main())
