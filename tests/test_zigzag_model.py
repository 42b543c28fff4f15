"""stream.cost.zigzag_model against zigzag-dse 3.9.1, mapping by mapping.

The cross-check runs ZigZag's LOMA (``tests/zigzag_ref.py``) on our cores and layers, takes
every mapping it evaluated (spatial mapping, temporal allocation before the merge-down) and
evaluates the same mapping with our model: energy (total, MAC, per operand and level, per
direction), word accesses, footprints and every latency term must agree within 1e-6.

The default run covers every bundled compute core and every layer shape once (ZigZag takes
~5 ms per mapping, so the 720-ordering convs are spread over the cores) and two sets of
ZigZag-generated spatial mappings; ``-m slow`` runs the rest of the core x shape matrix, a
larger lpf limit, more generated spatial mappings and "even" allocations. Two hand-derived cases document the equations with worked numbers.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("zigzag")

import yaml
import zigzag_ref as zr
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.cost.mapping import SpatialMapping, TemporalMapping
from stream.cost.zigzag_model import _window_union, evaluate, evaluate_prepared, prepare
from stream.hardware import load_core
from stream.hardware.ir import Core, Memory, OperationalArray, Port
from stream.workload.yaml_loader import load_yaml_workload

CORES = Path(__file__).resolve().parents[1] / "inputs" / "hardware" / "cores"
TOL = 1e-6

# -- layer shapes (ResNet-18-like; sized to fit the cores' top memories) ----------------------

PAD1 = {"IY": [1, 1], "IX": [1, 1]}
CONV56 = zr.conv_spec("conv3x3_56", K=64, C=64, OY=56, OX=56, padding=PAD1)
CONV28 = zr.conv_spec("conv3x3_28", K=128, C=128, OY=28, OX=28, padding=PAD1)
CONV7 = zr.conv_spec("conv3x3_7", K=512, C=128, OY=7, OX=7, padding=PAD1)
CONV1X1 = zr.conv_spec("conv1x1", K=128, C=64, OY=28, OX=28, FY=1, FX=1)
CONV7S2 = zr.conv_spec("conv7x7_s2", K=64, C=3, OY=112, OX=112, FY=7, FX=7, stride=2,
                       padding={"IY": [3, 2], "IX": [3, 2]})
GEMM = zr.gemm_spec("gemm", K=128, C=256, B=8)  # the harness's form: a 1x1 conv on a 1x1 image
GEMM_ZZ = {  # ZigZag's own (ONNX parser) form: O[d][k] += I[d][c] * W[c][k], I before W
    "name": "gemm_zz", "operator_type": "Gemm", "equation": "O[d][k]+=I[d][c]*W[c][k]",
    "loop_dims": ["C", "D", "K"], "loop_sizes": [256, 16, 128],
    "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
}
DEPTHWISE = {
    "name": "depthwise", "operator_type": "Conv", "equation": "O[b][k][oy][ox]+=W[k][fy][fx]*I[b][k][iy][ix]",
    "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"], "loop_dims": ["B", "K", "OY", "OX", "FY", "FX"],
    "loop_sizes": [1, 128, 28, 28, 3, 3], "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
    "padding": PAD1,
}
# small tiles for the 108 KiB row-stationary core
RS_CONV = zr.conv_spec("rs_conv3x3_14", K=16, C=16, OY=14, OX=14, padding=PAD1)
RS_CONV7 = zr.conv_spec("rs_conv3x3_7", K=32, C=16, OY=7, OX=7, padding=PAD1)
RS_GEMM = zr.gemm_spec("rs_gemm", K=32, C=64, B=4)
# pooling: ZigZag needs two inputs, so the window is a W[fy][fx] of precision 0
MAXPOOL = {
    "name": "maxpool", "operator_type": "Pooling", "equation": "O[b][k][oy][ox]+=W[fy][fx]*I[b][k][iy][ix]",
    "dimension_relations": ["ix=2*ox+1*fx", "iy=2*oy+1*fy"], "loop_dims": ["B", "K", "OY", "OX", "FY", "FX"],
    "loop_sizes": [1, 16, 28, 28, 3, 3], "operand_precision": {"W": 0, "I": 8, "O": 8, "O_final": 8},
    "padding": {"IY": [1, 0], "IX": [1, 0]},
}
AVGPOOL7 = {  # 7x7 window on a 3x3 array: fractional (7/3) unrollings of pr dims
    "name": "avgpool7", "operator_type": "Pooling", "equation": "O[b][k][oy][ox]+=W[fy][fx]*I[b][k][iy][ix]",
    "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"], "loop_dims": ["B", "K", "OY", "OX", "FY", "FX"],
    "loop_sizes": [1, 20, 5, 5, 7, 7], "operand_precision": {"W": 0, "I": 8, "O": 16, "O_final": 8},
}
ADD = {
    "name": "add", "operator_type": "Add", "equation": "O[b][k][oy][ox]=W[b][k][oy][ox]+I[b][k][oy][ox]",
    "loop_dims": ["B", "K", "OY", "OX"], "loop_sizes": [2, 100, 14, 14],
    "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 16},
}
# fractional ("greedy") unrollings N / ceil(N / f): OX 25 on 16 lanes -> 12.5, K 33 on 32 -> 16.5,
# mixed FY/C on one array dim -> 2.5 x 2.5, OY 15 on 14 -> 7.5
OS_FRACTIONAL = zr.conv_spec("os_fractional", K=100, C=16, OY=9, OX=25, stride=2,
                             padding={"IY": [1, 0], "IX": [1, 0]})
TPU_FRACTIONAL = zr.conv_spec("tpu_fractional", K=33, C=40, OY=10, OX=10, padding=PAD1)
RS_FRACTIONAL = zr.conv_spec("rs_fractional", K=8, C=5, OY=20, OX=10, FY=5, FX=5,
                             padding={"IY": [2, 2], "IX": [2, 2]})
RS_FRACTIONAL_OY = zr.conv_spec("rs_fractional_oy", K=8, C=6, OY=15, OX=15, padding=PAD1)

# Default run: every core, every shape at least once (~25 s of ZigZag).
DEFAULT_CASES = [
    ("tpu_32x32", CONV56), ("tpu_32x32", CONV1X1), ("tpu_32x32", CONV7S2), ("tpu_32x32", GEMM),
    ("tpu_32x32", GEMM_ZZ), ("tpu_32x32", DEPTHWISE), ("tpu_32x32", TPU_FRACTIONAL),
    ("os_16x64", CONV28), ("os_16x64", CONV1X1), ("os_16x64", CONV7S2), ("os_16x64", GEMM),
    ("os_16x64", DEPTHWISE), ("os_16x64", OS_FRACTIONAL),
    ("rs_12x14", RS_CONV), ("rs_12x14", RS_CONV7), ("rs_12x14", RS_GEMM), ("rs_12x14", RS_FRACTIONAL),
    ("pool_3x3x8", MAXPOOL), ("pool_3x3x8", AVGPOOL7),
    ("simd_64", ADD),
]
# -m slow: the rest of the matrix (what fits the core: ZigZag finds no mapping for the others)
SLOW_CASES = [
    ("tpu_32x32", CONV28), ("tpu_32x32", CONV7), ("os_16x64", CONV56), ("os_16x64", CONV7),
    ("os_16x64", GEMM_ZZ), ("rs_12x14", RS_FRACTIONAL_OY), ("rs_12x14", GEMM_ZZ | {"loop_sizes": [64, 4, 32]}),
]


# -- helpers ------------------------------------------------------------------------------------


def our_layer(spec: dict):
    """The layer spec through our own YAML loader (same equation, relations, padding)."""
    keys = ("name", "operator_type", "equation", "dimension_relations", "loop_dims", "loop_sizes",
            "operand_precision", "padding")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer.yaml"
        path.write_text(yaml.safe_dump({"version": 1, "name": "w",
                                        "layers": [{k: spec[k] for k in keys if k in spec}]}))
        return load_yaml_workload(path).layers[0]


def mappings_of(record: dict) -> tuple[SpatialMapping, TemporalMapping]:
    spatial = SpatialMapping(tuple((adim, tuple((d, f) for d, f in entries))
                                   for adim, entries in record["spatial"].items()))
    temporal = TemporalMapping(tuple((op, tuple(tuple((d, s) for d, s in level) for level in levels))
                                     for op, levels in record["temporal"].items()))
    return spatial, temporal


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def differences(cost, record: dict, precision: dict) -> dict[str, float]:
    """Largest relative difference per field between our CostBreakdown and a ZigZag record."""
    err: dict[str, float] = {}

    def put(name: str, ours: float, theirs: float) -> None:
        err[name] = max(err.get(name, 0.0), _rel(ours, theirs))

    for ours, theirs in (
        ("energy_total", "energy_total"), ("mac_energy", "mac_energy"), ("ideal_cycle", "ideal_cycle"),
        ("ideal_temporal_cycle", "ideal_temporal_cycle"), ("stall_slack", "SS_comb"),
        ("onloading", "data_onloading_cycle"), ("offloading", "data_offloading_cycle"),
        ("latency_total0", "latency_total0"), ("latency_total1", "latency_total1"),
        ("latency_total2", "latency_total2"), ("spatial_utilization", "mac_spatial_utilization"),
    ):
        put(ours, getattr(cost, ours), record[theirs])
    for op, levels in record["mem_energy"].items():
        assert len(cost.memory_energy[op]) == len(levels)
        for m, e in enumerate(levels):
            put("memory_energy", cost.memory_energy[op][m], e)
    for op, levels in record["mem_energy_breakdown_further"].items():
        for m, per_dir in enumerate(levels):
            for d, e in per_dir.items():
                put("energy_per_direction", cost.energy_per_direction[op][m][d], e)
    for op, levels in record["memory_word_access"].items():
        for m, per_dir in enumerate(levels):
            for d, w in per_dir.items():
                put("word_accesses", cost.word_accesses[op][m][d], w)
    # footprint of one instance of each memory level, at that level's own precision
    for op, elems in record["data_elem_per_level_unrolled"].items():
        for m in range(len(elems) - 1):
            if op == "O":
                bits = precision["O"] if record["psum_flag"][m] else precision["O_final"]
            else:
                bits = precision[op]
            put("footprint_bits", cost.footprint_bits[op][m], elems[m + 1] * bits)
    return err


_LOMA: dict = {}


def loma(core_name: str, spec: dict, core: Core | None = None, **kwargs) -> list[dict]:
    """ZigZag's evaluated mappings (memoised per test session)."""
    key = (core_name, repr(spec), repr(sorted(kwargs.items())))
    if key not in _LOMA:
        core = core or load_core(CORES / f"{core_name}.yaml", 0)
        _LOMA[key] = zr.run_loma(core, spec, lpf_limit=kwargs.pop("lpf_limit", 4), **kwargs)["all"]
    return _LOMA[key]


def check_agreement(core: Core, spec: dict, records: list[dict], sizes: dict | None = None) -> int:
    layer = our_layer(spec)
    sizes = sizes or dict(zip(layer.dims, layer.sizes))
    ctx = prepare(core, layer, sizes)
    worst: dict[str, float] = {}
    for i, record in enumerate(records):
        spatial, temporal = mappings_of(record)
        cost = evaluate_prepared(ctx, spatial, temporal)
        err = differences(cost, record, spec["operand_precision"])
        bad = {k: v for k, v in err.items() if v > TOL}
        assert not bad, (f"{core.name} {spec['name']} mapping #{i}: {bad}\n spatial {record['spatial']}\n"
                         f" temporal {record['temporal']}")
        for k, v in err.items():
            worst[k] = max(worst.get(k, 0.0), v)
    assert records, "ZigZag evaluated no mapping"
    return len(records)


# -- cross-check against ZigZag ----------------------------------------------------------------


@pytest.mark.parametrize("core_name,spec", DEFAULT_CASES, ids=[f"{c}-{s['name']}" for c, s in DEFAULT_CASES])
def test_same_mapping_agrees_with_zigzag(core_name, spec):
    core = load_core(CORES / f"{core_name}.yaml", 0)
    check_agreement(core, spec, loma(core_name, spec))


@pytest.mark.slow
@pytest.mark.parametrize("core_name,spec", SLOW_CASES, ids=[f"{c}-{s['name']}" for c, s in SLOW_CASES])
def test_same_mapping_agrees_with_zigzag_more_shapes(core_name, spec):
    core = load_core(CORES / f"{core_name}.yaml", 0)
    check_agreement(core, spec, loma(core_name, spec))


@pytest.mark.slow
@pytest.mark.parametrize("core_name,spec", [("tpu_32x32", GEMM), ("os_16x64", CONV7S2), ("rs_12x14", RS_GEMM)],
                         ids=["tpu-gemm", "os-conv7x7_s2", "rs-gemm"])
def test_agreement_at_lpf_6(core_name, spec):
    core = load_core(CORES / f"{core_name}.yaml", 0)
    check_agreement(core, spec, loma(core_name, spec, lpf_limit=6))


@pytest.mark.slow
@pytest.mark.parametrize("core_name,spec", [("tpu_32x32", CONV28), ("rs_12x14", RS_FRACTIONAL)],
                         ids=["tpu-conv28", "rs-fractional"])
def test_agreement_with_even_allocations(core_name, spec):
    core = load_core(CORES / f"{core_name}.yaml", 0)
    check_agreement(core, spec, loma(core_name, spec, temporal_mapping_type="even"))


@pytest.mark.parametrize("core_name,spec", [
    ("tpu_32x32", GEMM),
    pytest.param("tpu_32x32", DEPTHWISE, marks=pytest.mark.slow),
    pytest.param("os_16x64", DEPTHWISE, marks=pytest.mark.slow),
    ("rs_12x14", GEMM),  # one candidate unrolls C over both array dims: 12 x 10.67 (12 x 10 in integers)
], ids=["tpu-gemm", "tpu-depthwise", "os-depthwise", "rs-gemm"])
def test_agreement_with_generated_spatial_mappings(core_name, spec):
    """Without dataflows ZigZag generates the spatial mappings (three candidates here)."""
    core = dataclasses.replace(load_core(CORES / f"{core_name}.yaml", 0), dataflows=())
    records = loma(core_name + "-generated", spec, core=core, nb_spatial_mappings_generated=3)
    assert len({repr(r["spatial"]) for r in records}) > 1
    check_agreement(core, spec, records)


def test_tile_sizes_replace_the_layer_sizes():
    """``sizes`` is a tile of the layer: it costs like ZigZag's layer of the tile's sizes. The
    input footprint is clipped only to the layer's real input extent (56 here), so a tile
    narrower than the layer is not clipped (ZigZag would subtract the layer's padding)."""
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    tile = zr.conv_spec("tile", K=32, C=64, OY=8, OX=28)  # IY = 10, IX = 30: inside the 56 x 56 input
    records = loma("tpu_32x32", tile)
    layer = our_layer(CONV56)  # the whole padded layer, costed over a tile of it
    sizes = dict(zip(layer.dims, layer.sizes)) | {"K": 32, "OY": 8, "OX": 28}
    ctx = prepare(core, layer, sizes)
    for record in records[::7]:
        cost = evaluate_prepared(ctx, *mappings_of(record))
        err = differences(cost, record, tile["operand_precision"])
        assert max(err.values()) <= TOL, err


def test_evaluate_equals_evaluate_prepared_and_caches_per_spatial_mapping():
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    records = loma("tpu_32x32", GEMM)
    layer = our_layer(GEMM)
    sizes = dict(zip(layer.dims, layer.sizes))
    ctx = prepare(core, layer, sizes)
    for record in records[:5]:
        spatial, temporal = mappings_of(record)
        fresh = evaluate(core, layer, sizes, spatial, temporal)
        # an equal but distinct SpatialMapping object hits the per-spatial cache
        again = evaluate_prepared(ctx, mappings_of(record)[0], temporal)
        assert fresh == evaluate_prepared(ctx, spatial, temporal) == again


# -- worked examples ------------------------------------------------------------------------------


def test_hand_derived_gemm_on_a_32x32_weight_stationary_array():
    """O[d][k] += I[d][c] * W[c][k], C=K=32, D=4 on tpu_32x32 (K over D1, C over D2); W 8 bit, I 8,
    O 16 (psum) / 8 (final). ZigZag's LOMA allocates the single temporal loop D4 as:
    W: rf_w [D4] | sram [];   I: sram [D4];   O: rf_acc [D4] | sram [].

    Spatial placement: rf_w serves no array dim, so K32.C32 sit above it (1024 rf_w instances);
    rf_acc serves D2, so C32 is reduced below it and K32 sits above it (32 instances); the sram
    serves both. MACs = 4096, 1024 units: ideal = T = 4 cycles.

    W (D is irrelevant): stationary at the MACs for S = 4 cycles. rf_w holds 1 weight (8 bits);
      tl: 1 weight per 4-cycle period, once: ceil(8/16)*(16/16) * 1 * 1024 instances = 1024 words;
      fh: the same 1024 words. sram -> rf_w (tl): the 1024 distinct weights (B = 1024) once:
      ceil(1024*8/64) * (64/1024) = 8 words of 1024 bits.
      Energy: 1024*0.03 + 1024*0.035 = 66.56; sram 8*200 = 1600.
    I (K is irrelevant): each cycle the sram sends 32 inputs (C32; broadcast over K): 256 bits,
      ceil(256/64)*(64/1024) = 0.25 word, x4 cycles = 1 word -> 200 pJ.
    O: C is reduced spatially below rf_acc, so no level holds partial sums (final precision 8).
      rf_acc fl: 1 output per cycle per instance: ceil(8/32)*(32/32) * 4 * 32 = 128 words;
      rf_acc th: its 4 outputs (D4) once: ceil(32/32) * 1 * 32 = 32 words;
      sram fl: 4*32 = 128 outputs once: ceil(1024/64)*(64/1024) = 1 word.
      Energy: rf_acc (128 + 32) * 0.03 = 4.8; sram 1 * 220 = 220.
    Total: 204.8 (MACs, 4096 * 0.05) + 66.56 + 1600 + 200 + 4.8 + 220 = 2296.16 pJ.

    Latency: every footprint is small, so every level counts as double-buffered; no link takes
      longer than its window: SS_comb = 0.
    On-loading: the sram read port (shared by I1 and I2) loads the 1024 weights once: 8 cycles at
      1024 bits/cycle. During the 4 compute cycles the port is busy with I at 256 bits/cycle on
      average, so (1024 - 256)/1024 * 4 = 3 cycles can be hidden: 5 cycles remain. The rf_w fill
      (1 cycle, a port of rf_w alone) pairs with it as a "half shared" link: max(1, 5) = 5.
    Off-loading: the 4 outputs of rf_acc to the sram, max(1 cycle th, 1 cycle fl) = 1.
    latency_total2 = 4 + 0 + 5 + 1 = 10 cycles.
    """
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    spec = {"name": "gemm", "operator_type": "Gemm", "equation": "O[d][k]+=I[d][c]*W[c][k]",
            "loop_dims": ["C", "D", "K"], "loop_sizes": [32, 4, 32],
            "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8}}
    layer = our_layer(spec)
    spatial = SpatialMapping((("D1", (("K", 32),)), ("D2", (("C", 32),))))
    temporal = TemporalMapping((("O", ((("D", 4),), ())), ("I", ((("D", 4),),)), ("W", ((("D", 4),), ()))))
    c = evaluate(core, layer, {"C": 32, "D": 4, "K": 32}, spatial, temporal)

    assert c.word_accesses["W"][0] == {"rd_out_to_low": 1024, "wr_in_by_low": 0, "rd_out_to_high": 0,
                                       "wr_in_by_high": 1024}
    assert c.word_accesses["W"][1]["rd_out_to_low"] == 8
    assert c.word_accesses["I"][0]["rd_out_to_low"] == 1
    assert c.word_accesses["O"][0] == {"rd_out_to_low": 0, "wr_in_by_low": 128, "rd_out_to_high": 32,
                                       "wr_in_by_high": 0}
    assert c.word_accesses["O"][1]["wr_in_by_low"] == 1
    assert c.memory_energy["W"] == pytest.approx((66.56, 1600.0))
    assert c.memory_energy["I"] == pytest.approx((200.0,))
    assert c.memory_energy["O"] == pytest.approx((4.8, 220.0))
    assert c.mac_energy == pytest.approx(204.8)
    assert c.energy_total == pytest.approx(2296.16)
    assert (c.ideal_cycle, c.ideal_temporal_cycle, c.stall_slack) == (4, 4, 0)
    assert (c.onloading, c.offloading) == (5, 1)
    assert (c.latency_total0, c.latency_total1, c.latency_total2) == (4, 9, 10)
    assert c.footprint_bits == {"O": (32, 1024), "I": (1024,), "W": (8, 8192)}

    # ZigZag's own LOMA, given this loop order, evaluates exactly this mapping
    (record,) = loma("tpu_32x32", spec | {"temporal_ordering": [["D", 4]]})
    assert mappings_of(record)[0] == spatial and dict(mappings_of(record)[1].levels) == dict(temporal.levels)
    assert max(differences(c, record, spec["operand_precision"]).values()) <= TOL


def _narrow_core() -> Core:
    """8 MAC lanes (K) under one SRAM with a 64-bit read port and a 128-bit write port."""
    sram = Memory(
        name="sram", size_bits=1 << 20, r_cost=1.0, w_cost=2.0, operands=("I1", "I2", "O"),
        ports=(Port("r_port_1", "read", 64, 64, (("I1", "tl"), ("I2", "tl"), ("O", "tl"), ("O", "th"))),
               Port("w_port_1", "write", 128, 128, (("I1", "fh"), ("I2", "fh"), ("O", "fh"), ("O", "fl")))),
        served_dimensions=("D1",),
    )
    return Core(0, "narrow", "compute", OperationalArray(("D1",), (8,), 0.5), (sram,),
                dataflows=(("D1", (("K", 8),)),))


def test_hand_derived_bandwidth_bound_stalls():
    """O[d][k] += I[d][c] * W[c][k], C=4, D=2, K=8 on 8 lanes (K), one SRAM: read port 64 bits,
    write port 128 bits (the widest that keeps ZigZag from cutting the K unrolling). Loop order
    C4 (inner), D2. T = 8 cycles, MACs = 64.

    Per cycle the lanes read 8 weights (64 bits: 1 cycle), 1 input broadcast (8 bits: 1 cycle),
    and, since the C loop keeps partial sums in the SRAM, read and write back 8 psums of 16 bits
    (128 bits: 2 cycles on the read port, 1 on the write port).
    Word accesses (bw_min = bw_max): W 1 x 8 = 8; I 1 x 8 = 8 (a whole word for 8 bits);
      O read 2 x 8 = 16, O write 1 x 8 = 8.
    Energy: 8*1 + 8*1 + 16*1 + 8*2 = 48 pJ memory + 64 * 0.5 = 32 pJ MACs = 80 pJ.
    Stalls: nothing is double-buffered below the SRAM, so each link may only use its period
      (1 cycle). Read port: psum reads stall (2 - 1) * (8 - 1) = 7; the three links' windows
      (3 x 7 cycles) must share one port whose union of windows is only 8 cycles: 13 more.
      SS_comb = 7 + 13 = 20. Write port: 1 cycle per 1-cycle period, no stall.
    One memory level: no on-/off-loading. latency_total2 = 8 + 20 = 28 cycles.
    """
    core = _narrow_core()
    spec = {"name": "gemm", "operator_type": "Gemm", "equation": "O[d][k]+=I[d][c]*W[c][k]",
            "loop_dims": ["C", "D", "K"], "loop_sizes": [4, 2, 8],
            "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8}}
    layer = our_layer(spec)
    spatial = SpatialMapping((("D1", (("K", 8),)),))
    loops = ((("C", 4), ("D", 2)),)
    temporal = TemporalMapping((("O", loops), ("I", loops), ("W", loops)))
    c = evaluate(core, layer, {"C": 4, "D": 2, "K": 8}, spatial, temporal)

    assert c.word_accesses["W"][0]["rd_out_to_low"] == 8
    assert c.word_accesses["I"][0]["rd_out_to_low"] == 8
    assert c.word_accesses["O"][0] == {"rd_out_to_low": 16, "wr_in_by_low": 8, "rd_out_to_high": 0,
                                       "wr_in_by_high": 0}
    assert c.energy_total == pytest.approx(80.0)
    assert (c.ideal_cycle, c.ideal_temporal_cycle) == (8, 8)
    assert c.stall_slack == 20
    assert (c.onloading, c.offloading) == (0, 0)
    assert (c.latency_total0, c.latency_total2) == (28, 28)

    (record,) = loma("narrow", spec | {"temporal_ordering": [["C", 4], ["D", 2]]}, core=core)
    assert mappings_of(record)[0] == spatial and dict(mappings_of(record)[1].levels) == dict(temporal.levels)
    assert max(differences(c, record, spec["operand_precision"]).values()) <= TOL


def test_irrelevant_loops_sink_through_an_empty_level():
    """Stationarity merge-down: an irrelevant loop at the bottom of a level moves into the level
    below, through empty levels. Weights on tpu_32x32: rf_w [] | sram [D4] behaves like
    rf_w [D4] | sram [] (D is irrelevant to W)."""
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    layer = our_layer({"name": "g", "equation": "O[d][k]+=I[d][c]*W[c][k]", "loop_dims": ["C", "D", "K"],
                       "loop_sizes": [32, 4, 32], "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8}})
    spatial = SpatialMapping((("D1", (("K", 32),)), ("D2", (("C", 32),))))

    def cost(w_levels):
        return evaluate(core, layer, {"C": 32, "D": 4, "K": 32}, spatial, TemporalMapping(
            (("O", ((("D", 4),), ())), ("I", ((("D", 4),),)), ("W", w_levels))))

    assert cost(((), (("D", 4),))) == cost(((("D", 4),), ()))


def test_one_input_layer_costs_like_a_zero_precision_second_input():
    """A pooling layer without W (our IR) has the energy of ZigZag's W-of-precision-0 form."""
    core = load_core(CORES / "pool_3x3x8.yaml", 0)
    with_w = our_layer(MAXPOOL)
    without_w = our_layer(MAXPOOL | {"equation": "O[b][k][oy][ox]+=I[b][k][iy][ix]",
                                     "operand_precision": {"I": 8, "O": 8, "O_final": 8}})
    assert [op.name for op in without_w.operands] == ["O", "I"]
    for record in loma("pool_3x3x8", MAXPOOL)[:6]:
        spatial, temporal = mappings_of(record)
        a = evaluate(core, with_w, dict(zip(with_w.dims, with_w.sizes)), spatial, temporal)
        only_i = TemporalMapping(tuple((op, levels) for op, levels in temporal.levels if op != "W"))
        b = evaluate(core, without_w, dict(zip(without_w.dims, without_w.sizes)), spatial, only_i)
        assert b.energy_total == pytest.approx(a.energy_total)
        assert "W" not in b.memory_energy and b.ideal_temporal_cycle == a.ideal_temporal_cycle
        assert b.latency_total2 >= b.latency_total0 >= b.ideal_temporal_cycle


def _union_brute_force(acts) -> int:
    """ZigZag's memory-updating-window union: mark the first `allowed` cycles of each period over
    the longest period, times that link's period count."""
    for _, a, p, c in acts:
        if p == a:
            return p * c
    pmax = max(p for _, _, p, _ in acts)
    pc = next(c for _, _, p, c in acts if p == pmax)
    covered = [False] * pmax
    for _, a, p, _ in acts:
        for t in range(pmax):
            if t % p < a:
                covered[t] = True
    return sum(covered) * pc


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=5), st.data())
def test_window_union_matches_zigzag_over_loop_prefix_periods(loops, data):
    """Periods on one port are prefix products of one loop order (a divisibility chain)."""
    periods = [math.prod(loops[:i + 1]) for i in range(len(loops))]
    total = periods[-1] * data.draw(st.integers(1, 3))
    picks = data.draw(st.lists(st.sampled_from(periods), min_size=2, max_size=4))
    acts = [(0, data.draw(st.integers(1, p)), p, total // p) for p in picks]
    assert _window_union(acts) == _union_brute_force(acts)
