"""Mamba blocks: the builder, its YAML, sequential tiling of the scan, fused vs unfused."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import INPUTS
from stream.api import run_detailed
from stream.hardware import load_hardware
from stream.mapping.fusion import blocks, fused_mapping, unfused_mapping
from stream.simulation import OUTPUT
from stream.tiling import SEQUENTIAL
from stream.workload import load_workload
from stream.workload.ir import DimKind, Role
from stream.workload.models import MAMBA_SHAPES, mamba_block, mamba_model

# The small block of these tests: d_model M = 32, d_inner E = 64, d_state N = 4, dt_rank
# R = ceil(32 / 16) = 2, 4 conv taps, L = 16 tokens, 16-bit values (2 bytes).
SMALL = dict(d_model=32, d_state=4, seq_len=16)


@pytest.fixture(scope="module")
def ssm():
    return load_hardware(INPUTS / "hardware" / "ssm.yaml")


def weight_count(workload) -> int:
    return sum(l.footprint(op.name) for l in workload.layers for op in l.inputs if op.role is Role.WEIGHT)


def test_the_bundled_yaml_is_the_builders_block():
    assert load_workload(INPUTS / "workloads" / "mamba_block.yaml").layers == mamba_block(256, seq_len=512).layers


def test_block_layers_and_weights():
    w = mamba_block(**SMALL)
    assert [l.name for l in w.layers] == [
        "in_proj_x", "in_proj_z", "conv1d", "silu_x", "x_proj_dt", "x_proj_b", "x_proj_c", "dt_proj", "softplus",
        "disc_a", "dt_x", "disc_b", "scan", "readout", "skip_scale", "skip", "silu_z", "gate", "out_proj"]
    scan = w.layer("scan")
    assert dict(zip(scan.dims, scan.kinds)) == {"B": DimKind.PARALLEL, "L": DimKind.SEQUENTIAL,
                                               "D": DimKind.PARALLEL, "N": DimKind.PARALLEL}
    assert scan.output.shape == (1, 16, 64, 4)
    # in_proj 2 x E x M + conv E x 4 + x_proj (R + 2N) x E + dt_proj E x R + A E x N + D E + out_proj M x E
    assert weight_count(w) == 2 * 64 * 32 + 64 * 4 + (2 + 8) * 64 + 64 * 2 + 64 * 4 + 64 + 32 * 64 == 7488


@pytest.mark.parametrize("name, per_block, embedding, published", [
    # without the embedding, dt_proj's and conv1d's biases: per block in_proj 2 x 1536 x 768,
    # conv 1536 x 4, x_proj (48 + 32) x 1536, dt_proj 1536 x 48, A 1536 x 16, D 1536,
    # out_proj 768 x 1536 and the norm's 768
    ("mamba-130m", 2 * 1536 * 768 + 1536 * 4 + 80 * 1536 + 1536 * 48 + 1536 * 16 + 1536 + 768 * 1536 + 768,
     50280 * 768, 129e6),
    ("mamba-2.8b", 2 * 5120 * 2560 + 5120 * 4 + 192 * 5120 + 5120 * 160 + 5120 * 16 + 5120 + 2560 * 5120 + 2560,
     50280 * 2560, 2.8e9),
])
def test_models_have_the_published_shapes(name, per_block, embedding, published):
    shape = MAMBA_SHAPES[name]
    model = mamba_model(name, seq_len=8)
    assert len(model.layers) == shape.n_layer * (19 + 2) + 1  # norm, block, residual; a final norm
    weights = weight_count(model)
    assert weights == shape.n_layer * per_block + shape.d_model
    # with the embedding, the published size (to 2 %; biases and vocabulary padding are left out)
    assert weights + embedding == pytest.approx(published, rel=0.02)
    assert blocks(model)[1][0] == "b1.norm" and blocks(model)[1][-1] == "b1.residual"


def test_fused_scan_chains_its_chunks_and_keeps_the_state(ssm):
    w = mamba_block(**SMALL)
    detail = run_detailed(w, ssm, fused_mapping(w, ssm, chunk=4), mode="fused", cost_model="roofline",
                          allocator="greedy")
    detail.trace.check()
    g, core = detail.cngraph, detail.allocation.core
    # 16 tokens in chunks of 4: 4 tiles per piece. The eight MatMul/Conv layers split over the
    # four matrix cores by output channel (x_proj_dt has R = 2 channels: 2 pieces); the
    # eleven vector layers run on the one vector core
    counts = {l.name: l.cns for l in detail.result.layers}
    assert counts == {name: 4 * (4 if name in ("in_proj_x", "in_proj_z", "conv1d", "x_proj_b", "x_proj_c", "dt_proj",
                                               "out_proj") else 2 if name == "x_proj_dt" else 1)
                      for name in counts}
    assert sum(counts.values()) == 7 * 16 + 8 + 11 * 4 == 164
    # the scan's chunks chain in order on one core, each handing on its state E x N x 16 bits
    scan = np.flatnonzero(g.layer == w.index("scan"))
    seq = np.flatnonzero(g.edge_kind == SEQUENTIAL)
    assert [(int(g.edge_src[e]), int(g.edge_dst[e])) for e in seq] == list(zip(scan[:-1], scan[1:]))
    assert set(g.edge_bits[seq].tolist()) == {64 * 4 * 16}
    assert len(set(core[scan].tolist())) == 1
    # the states (the scan's outputs) never leave that core: no transfer moves them
    t = detail.trace.transfers
    moved = (t.data_kind == OUTPUT) & np.isin(t.data, scan)
    assert not moved.any()
    # only the block's output goes to DRAM: L x M x 2 bytes
    assert detail.result.dram_traffic_bytes["write"] == 16 * 32 * 2


def test_unfused_sends_every_intermediate_through_dram():
    # One core (single_core), layer by layer: every layer writes its output to DRAM once and
    # reads each of its inputs from there. Output elements: 12 layers of L x E = 1024
    # (in_proj_x, in_proj_z, conv1d, silu_x, dt_proj, softplus, dt_x, readout, skip_scale,
    # skip, silu_z, gate), x_proj_dt L x R = 32, x_proj_b and x_proj_c L x N = 64 each,
    # disc_a, disc_b and scan L x E x N = 4096 each, out_proj L x M = 512
    outputs = 12 * 1024 + 32 + 2 * 64 + 3 * 4096 + 512
    assert outputs == 25248
    # inputs read, per consumer: conv1d 1024, silu_x 1024, the three x_proj 3 x 1024,
    # dt_proj 32, softplus 1024, disc_a 1024, dt_x 2 x 1024, disc_b 1024 + 64, scan 2 x 4096,
    # readout 4096 + 64, skip_scale 1024, skip 2 x 1024, silu_z 1024, gate 2 x 1024, out_proj
    # 1024; plus the weights (7488) and the input u (16 x 32) for each input projection
    intermediates = 1024 * 17 + 32 + 64 + 4096 * 3 + 64
    assert intermediates == 29856
    w = mamba_block(**SMALL)
    one = load_hardware(INPUTS / "hardware" / "single_core.yaml")
    detail = run_detailed(w, one, unfused_mapping(w, one), mode="layer_by_layer", cost_model="roofline",
                          allocator="greedy")
    detail.trace.check()
    assert detail.result.dram_traffic_bytes == {"write": 2 * outputs, "read": 2 * (7488 + 2 * 512 + intermediates)}
    # the scan's hidden states leave the core: L x E x N x 2 bytes written, and read by readout
    layers = {l.name: l for l in detail.result.layers}
    assert layers["scan"].dram_write_bytes == 4096 * 2
    assert layers["scan"].dram_read_bytes == 2 * 4096 * 2  # dA and dBx
    assert layers["readout"].dram_read_bytes == (4096 + 64) * 2


def test_the_sequential_dim_never_splits_across_cores(write, ssm):
    w = mamba_block(**SMALL)
    mapping = write("m.yaml", """\
        version: 1
        layers:
          - {name: scan, core_allocation: [4], inter_core_tiling: ["L, 2"]}
    """)
    from stream.errors import InputError

    with pytest.raises(InputError, match=r"layers\[0\].inter_core_tiling: expected a parallel dim .* got 'L'"):
        run_detailed(w, ssm, mapping, allocator="greedy", cost_model="roofline")


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="seq_len must be a positive integer, got 0"):
        mamba_block(32, seq_len=0)
    with pytest.raises(ValueError, match="unknown Mamba shape 'mamba-7b'"):
        mamba_model("mamba-7b")
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        fused_mapping(mamba_block(**SMALL), None, chunk=0)


def test_fusion_cuts_split_the_block_and_run_whole(ssm):
    w = mamba_block(**SMALL)
    mapping = fused_mapping(w, ssm, chunk=4, isolate=("in_proj_x", "in_proj_z", "out_proj"))
    groups = [(g.layers, g.intra_core_tiling) for g in mapping.fusion_groups]
    chained = tuple(l.name for l in w.layers[2:-1])  # conv1d .. gate
    assert [layers for layers, _ in groups] == [("in_proj_x",), ("in_proj_z",), chained, ("out_proj",)]
    assert [len(tiling) for _, tiling in groups] == [0, 0, 1, 0]  # a cut layer runs whole
    detail = run_detailed(w, ssm, mapping, mode="fused", cost_model="roofline", allocator="greedy")
    detail.trace.check()
    counts = {l.name: l.cns for l in detail.result.layers}
    assert counts["in_proj_x"] == counts["out_proj"] == 4 and counts["conv1d"] == 16  # 4 pieces x 1 or x 4 chunks
    # across a cut, data goes through DRAM: in_proj_x and in_proj_z write 16 x 64 x 2 bytes each,
    # gate's output is read back by out_proj and out_proj writes the block's output
    layers = {l.name: l for l in detail.result.layers}
    assert layers["in_proj_x"].dram_write_bytes == layers["in_proj_z"].dram_write_bytes == 16 * 64 * 2
    assert layers["gate"].dram_write_bytes == 16 * 64 * 2 and layers["out_proj"].dram_write_bytes == 16 * 32 * 2


def test_cut_candidates_go_by_weight_size():
    from stream.mapping.fusion import cut_candidates

    # weights (elements): in_proj_x, in_proj_z and out_proj 2048 each, x_proj_b, x_proj_c and
    # A (disc_a) 256 each, conv1d 256, x_proj_dt 128, dt_proj 128, skip_scale 64
    assert cut_candidates(mamba_block(**SMALL)) == [
        (), ("in_proj_x", "in_proj_z", "out_proj"),
        ("in_proj_x", "in_proj_z", "conv1d", "x_proj_b", "x_proj_c", "disc_a", "out_proj"),
        ("in_proj_x", "in_proj_z", "conv1d", "x_proj_dt", "x_proj_b", "x_proj_c", "dt_proj", "disc_a", "out_proj")]


def test_memory_aware_fusion_takes_the_fastest_that_fits(ssm):
    from stream.api import memory_aware_fusion

    w = mamba_block(**SMALL)
    cuts = [(), ("in_proj_x", "in_proj_z", "out_proj")]
    _, unbounded, tried = memory_aware_fusion(w, ssm, 2**40, chunks=(2, 4, 8), cuts=cuts, cost_model="roofline")
    assert [(c.chunk, c.isolate) for c in tried] == [(n, cut) for cut in cuts for n in (2, 4, 8)]
    assert all(c.fits for c in tried)
    assert unbounded == min(tried, key=lambda c: (c.latency_cycles, c.onchip_bytes))
    # a budget between the smallest and the largest footprint: the fastest of those within it
    budget = sorted(c.onchip_bytes for c in tried)[2]
    mapping, chosen, again = memory_aware_fusion(w, ssm, budget, chunks=(2, 4, 8), cuts=cuts, cost_model="roofline")
    fitting = [c for c in again if c.onchip_bytes <= budget]
    assert chosen.fits and chosen == min(fitting, key=lambda c: (c.latency_cycles, c.onchip_bytes))
    assert mapping.fusion_groups[-1].layers[-1] == "out_proj"
    # nothing fits: the least memory
    _, least, tried = memory_aware_fusion(w, ssm, 1, chunks=(2, 4, 8), cuts=cuts, cost_model="roofline")
    assert not least.fits and least.onchip_bytes == min(c.onchip_bytes for c in tried)


def test_the_bundled_block_mapping_fuses_the_chain(ssm):
    workload = INPUTS / "workloads" / "mamba_block.yaml"
    mapping = INPUTS / "mappings" / "ssm_mamba_block.yaml"
    fused = run_detailed(workload, ssm, mapping, mode="fused", allocator="greedy", cost_model="roofline")
    unfused = run_detailed(workload, ssm, mapping, mode="layer_by_layer", allocator="greedy", cost_model="roofline")
    for run in (fused, unfused):
        run.trace.check()
    counts = {l.name: l.cns for l in fused.result.layers}
    # 512 tokens in 64-token chunks: 8 per piece in the chain; the projections run whole
    assert counts["scan"] == 8 and counts["conv1d"] == 4 * 8 and counts["in_proj_x"] == counts["out_proj"] == 4
    layers = {l.name: l for l in fused.result.layers}
    # fused, of the chain only the gate's output (L x E x 2 bytes) goes to DRAM, for out_proj
    chain = [l for l in layers.values() if l.name not in ("in_proj_x", "in_proj_z", "out_proj")]
    assert [l.name for l in chain if l.dram_write_bytes] == ["gate"]
    assert layers["gate"].dram_write_bytes == 512 * 512 * 2
    # unfused, dA, dBx and h each go through DRAM: L x E x N x 2 bytes = 8 MiB
    unfused_layers = {l.name: l for l in unfused.result.layers}
    assert [unfused_layers[n].dram_write_bytes for n in ("disc_a", "disc_b", "scan")] == [512 * 512 * 16 * 2] * 3
    assert fused.result.latency_cycles < unfused.result.latency_cycles


def test_ssm_fusion_script_writes_its_table_and_figure(tmp_path):
    import csv
    import importlib.util

    spec = importlib.util.spec_from_file_location("ssm_fusion", INPUTS.parent / "scripts" / "ssm_fusion.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ["--models", "mamba-130m", "--lengths", "32", "--blocks", "1", "--chunk", "8", "--budget-mib", "64",
            "--cost-model", "roofline", "--out", str(tmp_path)]
    assert script.main(args) == 0
    rows = list(csv.DictReader((tmp_path / "ssm_fusion.csv").open()))
    assert [(r["strategy"], r["chunk"]) for r in rows][:2] == [("unfused", "32"), ("fused", "8")]
    assert rows[2]["strategy"] == "memory_aware" and rows[2]["within_budget"] == "True"
    # the fused row is stream.api.run of the same mapping
    w = mamba_model("mamba-130m", seq_len=32, n_layer=1)
    acc = load_hardware(INPUTS / "hardware" / "ssm.yaml")
    fused = run_detailed(w, acc, fused_mapping(w, acc, 8, isolate=script.PROJECTIONS), allocator="greedy",
                         cost_model="roofline").result
    assert int(rows[1]["latency_cycles"]) == fused.latency_cycles
    assert (tmp_path / "ssm_fusion.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "ssm_fusion.pdf").read_bytes().startswith(b"%PDF")
