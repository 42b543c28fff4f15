"""End to end: a two-conv chain worked out by hand, invariants, determinism."""

from __future__ import annotations

import pytest

from conftest import INPUTS
from stream.allocation import AllocationSettings
from stream.api import NO_MAPPING, compare_allocators, run, run_detailed

# One 4x4 core (K and C unrolled 4 ways), 1 pJ/MAC, a 64-bit SRAM at 10 pJ per word;
# DRAM with one 32-bit port at 100 pJ per word; one 32-bit bus at 0.5 pJ/bit.
CORE = """\
    version: 1
    name: tiny
    type: compute
    memories:
      sram:
        size: 1048576
        r_cost: 10
        w_cost: 10
        operands: [I1, I2, O]
        ports:
          - {name: r, type: read, bandwidth_min: 64, bandwidth_max: 64, allocation: ["I1, tl", "I2, tl", "O, tl", "O, th"]}
          - {name: w, type: write, bandwidth_min: 64, bandwidth_max: 64, allocation: ["I1, fh", "I2, fh", "O, fh", "O, fl"]}
        served_dimensions: [D1, D2]
    operational_array: {dimensions: [D1, D2], sizes: [4, 4], unit_energy: 1}
    dataflows: {D1: ["K, 4"], D2: ["C, 4"]}
"""
DRAM = """\
    version: 1
    name: dram
    type: offchip
    memories:
      dram:
        size: 8000000000
        r_cost: 100
        w_cost: 100
        operands: [I1, I2, O]
        ports:
          - {name: rw, type: read_write, bandwidth_min: 32, bandwidth_max: 32,
             allocation: ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]}
        served_dimensions: [D1, D2]
    operational_array: {dimensions: [D1, D2], sizes: [0, 0], unit_energy: 0}
"""
SYSTEM = """\
    version: 1
    name: tiny_system
    clock_hz: 2.0e+8
    cores: {0: core.yaml, 1: dram.yaml}
    offchip_core_id: 1
    core_connectivity:
      - {type: bus, cores: [0, 1], bandwidth: 32, unit_energy_cost: 0.5}
"""
CHAIN = """\
    version: 1
    name: chain
    layers:
      - name: conv_a
        operator_type: Conv
        equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
        dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
        loop_dims: [B, K, C, OY, OX, FY, FX]
        loop_sizes: [1, 8, 4, 4, 4, 3, 3]
        operand_precision: {O: 16, O_final: 8, W: 8, I: 8}
        padding: {IY: [1, 1], IX: [1, 1]}
      - name: conv_b
        operator_type: Conv
        equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
        dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
        loop_dims: [B, K, C, OY, OX, FY, FX]
        loop_sizes: [1, 4, 8, 4, 4, 3, 3]
        operand_precision: {O: 16, O_final: 8, W: 8, I: 8}
        operand_source: {I: conv_a}
        padding: {IY: [1, 1], IX: [1, 1]}
"""


@pytest.fixture
def chain(write):
    write("core.yaml", CORE)
    write("dram.yaml", DRAM)
    return write("chain.yaml", CHAIN), write("system.yaml", SYSTEM)


def test_two_conv_chain_fused_by_hand(chain):
    # The simulator's arithmetic, checked with the roofline cost (simple to work out by hand).
    # Roofline per CN: conv_a computes ceil(8/4)*ceil(4/4)*4*4*3*3 = 288 cycles; its SRAM
    # traffic (W 2304 + I 512 bits in at 64/cycle = 44) is hidden. conv_b: 1*2*144 = 288.
    # DRAM (32 bits/cycle, one port, the bus is the route):
    #   W_a 2304 bits: 0..72, then I_a 512 bits: 72..88; conv_a runs 88..376;
    #   W_b is prefetched once conv_a starts: 88..160; conv_b runs 376..664 (conv_a's
    #   output stays on the core); its 512-bit output goes back to DRAM: 664..680.
    detail = run_detailed(*chain, mode="fused", cost_model="roofline")
    detail.trace.check()
    r = detail.result
    assert (r.num_cns, r.num_edges) == (2, 1)
    assert list(detail.trace.start) == [88, 376] and list(detail.trace.end) == [376, 664]
    assert r.latency_cycles == 680
    assert r.latency_s == pytest.approx(680 / 2e8)
    # MAC 2 x 4608 x 1 pJ; SRAM (44 + 16) + (52 + 8) words x 10 pJ;
    # DRAM (72 + 16 + 72) read + 16 write words x 100 pJ; bus 5632 bits x 0.5 pJ
    assert r.energy_pj == {"total": 30832.0, "mac": 9216.0, "onchip_memory": 1200.0,
                           "offchip_memory": 17600.0, "interconnect": 2816.0}
    assert r.dram_traffic_bytes == {"read": 640, "write": 64}
    # a core reserves memory for a CN when it loads it, the running CN and the next: at t = 0
    # conv_a (W_a, I_a and its output) and conv_b (W_b and its output) together
    assert r.peak_memory_bytes == {"core0.sram": (2304 + 512 + 1024 + 2304 + 512) // 8}
    steps = detail.trace.memories[0]
    # conv_a's inputs go when it ends (376), its output when conv_b has read it (664), conv_b's
    # output once written back (680)
    assert list(zip(steps.times.tolist(), steps.bits.tolist())) == [(0, 6656), (376, 3840), (664, 512), (680, 0)]


def test_two_conv_chain_layer_by_layer_by_hand(chain):
    # As fused until conv_a ends at 376; then its 1024-bit output goes to DRAM (376..408)
    # and comes back for conv_b (408..440); conv_b runs 440..728, writes back 728..744.
    detail = run_detailed(*chain, mode="layer_by_layer", cost_model="roofline")
    detail.trace.check()
    r = detail.result
    assert list(detail.trace.start) == [88, 440]
    assert r.latency_cycles == 744
    assert r.dram_traffic_bytes == {"read": 640 + 128, "write": 64 + 128}
    assert r.energy_pj["offchip_memory"] == 17600.0 + 2 * 32 * 100
    assert r.energy_pj["total"] == pytest.approx(sum(v for k, v in r.energy_pj.items() if k != "total"))
    # conv_b reserves W_b, conv_a's output read back from DRAM, and its own output at t = 0
    assert r.peak_memory_bytes == {"core0.sram": (2304 + 512 + 1024 + 2304 + 1024 + 512) // 8}


@pytest.mark.parametrize("mode", ["fused", "layer_by_layer"])
def test_resnet18_on_quad_core_invariants(mode):
    detail = run_detailed(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
                          INPUTS / "mappings" / "quad_core.yaml", mode=mode)
    detail.trace.check()
    r = detail.result
    if mode == "layer_by_layer":  # intra-core tiling is ignored: 20 convs and fc split 4 ways, 10 layers whole
        assert r.num_cns == 21 * 4 + 10 == 94
    else:  # one output row per CN: convs x 4 K-pieces x rows, maxpool and adds x rows, GAP 1, fc 4
        assert r.num_cns == (112 * 4 + 56) + (4 * 56 * 4 + 2 * 56) + (5 * 28 * 4 + 2 * 28) \
            + (5 * 14 * 4 + 2 * 14) + (5 * 7 * 4 + 2 * 7) + 1 + 4 == 2595
    assert sum(l.macs for l in r.layers) == detail.workload.macs
    conv = next(l for l in r.layers if l.name == "layer1.0.conv1")
    assert conv.cores == (0, 1, 2, 3)
    assert next(l for l in r.layers if l.name == "maxpool").cores == (4,)
    assert next(l for l in r.layers if l.name == "layer1.0.add").cores == (5,)


def test_fused_moves_less_dram_traffic_than_layer_by_layer():
    args = (INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
            INPUTS / "mappings" / "quad_core.yaml")
    detail = run_detailed(*args, mode="fused", allocator="greedy")  # the allocator is not the point here
    fused, lbl = detail.result, run(*args, mode="layer_by_layer", allocator="greedy")
    workload = detail.workload
    # automatic fusion groups fill half of the 4.5 MB of SRAM with weights: up to layer3.1.conv1
    # (2.19 MB), then layer3.1.conv2 to layer4.0.conv1 (1.77 MB), then the 2.36 MB convs alone
    assert [g[-1] for g in detail.cngraph.groups] == ["layer3.1.conv1", "layer4.0.conv1", "layer4.0.conv2",
                                                      "layer4.0.add", "layer4.1.conv1", "layer4.1.conv2", "fc"]
    # fused: only data that leaves its group reaches DRAM. layer3.0.add (for layer3.1.add) and
    # layer3.1.conv1 send 256 x 14 x 14 bytes each; layer3.1.add -> layer4.0.downsample (1x1,
    # stride 2) needs the 7 even rows of 256 x 14 bytes; layer4.0.conv1, conv2, add and
    # layer4.1.conv1, conv2 each send all of 512 x 7 x 7 bytes; fc writes its 1000 bytes.
    assert fused.dram_traffic_bytes["write"] == 2 * 256 * 14 * 14 + 7 * 256 * 14 + 5 * 512 * 7 * 7 + 1000
    # layer by layer writes every output and reads every intermediate back
    assert lbl.dram_traffic_bytes["write"] == sum(l.footprint_bits("O") // 8 for l in workload.layers)
    assert lbl.dram_traffic_bytes["read"] > fused.dram_traffic_bytes["read"]
    assert lbl.energy_pj["offchip_memory"] > fused.energy_pj["offchip_memory"]


def test_same_inputs_give_identical_results(chain):
    assert run(*chain).to_json() == run(*chain).to_json()


def test_check_catches_a_broken_trace(chain):
    trace = run_detailed(*chain).trace
    trace.start[1] -= 1  # conv_b would start before conv_a's output exists
    trace.end[1] -= 1
    with pytest.raises(AssertionError, match="started before its inputs"):
        trace.check()


WORKLOADS = ["resnet18.yaml", "two_conv.yaml", "fsrcnn.yaml", "swiglu.onnx", "transformer_block.onnx"]
HARDWARE = ["single_core.yaml", "quad_core.yaml", "hetero.yaml", "mesh_4x4.yaml"]


@pytest.mark.parametrize("hardware", HARDWARE)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_every_bundled_workload_runs_on_every_bundled_hardware(workload, hardware):
    check_bundled_case(INPUTS / "workloads" / workload, INPUTS / "hardware" / hardware, NO_MAPPING)


@pytest.mark.parametrize("system", ["quad_core", "hetero"])
def test_resnet18_with_the_bundled_mappings(system):
    check_bundled_case(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / f"{system}.yaml",
                       INPUTS / "mappings" / f"{system}.yaml")


def check_bundled_case(workload, hardware, mapping):
    """Both modes, greedy and CP-SAT (the default): valid traces, every MAC run once, and
    CP-SAT never slower than greedy in the simulator."""
    settings = AllocationSettings(time_limit_s=2.0)
    for mode in ("fused", "layer_by_layer"):
        greedy, cpsat = compare_allocators(workload, hardware, mapping, ("greedy", "cpsat"), mode=mode,
                                           allocation=settings)
        for detail in (greedy, cpsat):
            detail.trace.check()
            r = detail.result
            assert r.latency_cycles > 0 and r.energy_pj["mac"] > 0
            # every MAC of the workload ran exactly once
            assert sum(l.macs for l in r.layers) == detail.workload.macs
        assert cpsat.result.latency_cycles <= greedy.result.latency_cycles


def test_result_round_trips_through_json(chain):
    import json

    from stream.results import Result

    result = run(*chain)
    assert Result.from_dict(json.loads(result.to_json())) == result


def test_weights_that_cannot_stay_between_tiles_get_a_note():
    # single_core's 1 MiB SRAM cannot hold layer4's 3x3 512x512 weights (2.25 MiB); cut into
    # one output row per CN (7 rows at 7x7), each row streams them again: 7 times over
    r = run(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "single_core.yaml",
            INPUTS / "mappings" / "single_core.yaml", allocator="greedy")
    notes = [w for w in r.warnings if "came from DRAM" in w]
    assert [n.split(":")[0] for n in notes] == [f"layer layer4.{b}.conv{c}" for b, c in ((0, 1), (0, 2), (1, 1), (1, 2))]
    assert notes[1].startswith("layer layer4.0.conv2: its weights (2.25 MiB) came from DRAM 7.0 times over: "
                               "they did not stay on chip between its 7 tiles")
    # on the quad-core system each core holds a quarter of them: no note
    quad = run(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
               INPUTS / "mappings" / "quad_core.yaml", allocator="greedy")
    assert not [w for w in quad.warnings if "came from DRAM" in w]
