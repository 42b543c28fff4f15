"""The mapping search: its parts worked out by hand, determinism, and quality against LOMA."""

from __future__ import annotations


import pytest

from conftest import INPUTS
from stream.cost.search import (
    NoValidMapping, _Context, allocate, loop_factors, multiset_permutations, prime_factors, search,
    spatial_mapping,
)
from stream.errors import StreamError
from stream.hardware import load_core
from stream.workload import load_workload

CORES = INPUTS / "hardware" / "cores"


def _conv(write, k=64, c=64, size=14, f=3, stride=1, name="conv"):
    path = write(f"{name}.yaml", f"""\
        version: 1
        name: {name}
        layers:
          - name: {name}
            operator_type: Conv
            equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
            dimension_relations: [ix={stride}*ox+1*fx, iy={stride}*oy+1*fy]
            loop_dims: [B, K, C, OY, OX, FY, FX]
            loop_sizes: [1, {k}, {c}, {size}, {size}, {f}, {f}]
            operand_precision: {{O: 16, O_final: 8, W: 8, I: 8}}
        """)
    return load_workload(path).layers[0]


def test_prime_factors_and_loma_merging():
    assert prime_factors(56) == [2, 2, 2, 7] and prime_factors(1) == [] and prime_factors(97) == [97]
    # OX 56 = 2.2.2.7 and C 4 = 2.2: six factors; limit 4 merges the two smallest of OX twice
    assert loop_factors({"OX": 56, "C": 4}, 6) == [("C", 2), ("C", 2), ("OX", 2), ("OX", 2), ("OX", 2), ("OX", 7)]
    assert loop_factors({"OX": 56, "C": 4}, 4) == [("C", 2), ("C", 2), ("OX", 7), ("OX", 8)]


def test_multiset_permutations_count():
    # 5 factors with one pair equal: 5! / 2! = 60 distinct orderings
    items = [("C", 2), ("C", 2), ("K", 3), ("OX", 5), ("OX", 7)]
    orders = multiset_permutations(items)
    assert len(orders) == 60 == len(set(orders))


def test_spatial_mapping_clips_to_tile_and_goes_fractional(write):
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    # K 32 on D1 and C 32 on D2 for a 64/64 layer
    assert spatial_mapping(core, _conv(write), {"B": 1, "K": 64, "C": 64, "OY": 1, "OX": 14, "FY": 3, "FX": 3}
                           ).factors() == {"K": 32, "C": 32}
    # C = 3 (conv1): clipped to 3; K = 40: 40 / ceil(40 / 32) = 20 per pass, as ZigZag
    assert spatial_mapping(core, _conv(write), {"B": 1, "K": 40, "C": 3, "OY": 1, "OX": 14, "FY": 3, "FX": 3}
                           ).factors() == {"K": 20, "C": 3}


def test_allocator_fills_the_top_memory_with_everything_left(write):
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    layer = _conv(write, k=32, c=32, size=4, f=1)  # fully unrolled channels, 4x4 pixels left
    sizes = dict(zip(layer.dims, layer.sizes))
    spatial = spatial_mapping(core, layer, sizes)
    ctx = _Context(core, layer, sizes, spatial, {"O": "O", "W": "I2", "I": "I1"})
    temporal = allocate(ctx, (("OX", 2), ("OX", 2), ("OY", 4)))
    # W: the pixel loops are irrelevant to it, so one weight per PE register serves them all
    # (32-bit rf_w, 8-bit weights): every loop stays in rf_w, nothing is left for the SRAM.
    assert temporal.of("W") == ((("OX", 2), ("OX", 2), ("OY", 4)), ())
    # O: C is unrolled below the accumulator and no reduction loop remains, so it holds final
    # 8-bit outputs: 4 of them fill its 32 bits (OX 2 x 2); OY 4 goes to the SRAM.
    assert temporal.of("O") == ((("OX", 2), ("OX", 2)), (("OY", 4),))
    # I lives only in the SRAM, its top level: it takes everything.
    assert temporal.of("I") == ((("OX", 2), ("OX", 2), ("OY", 4)),)


def test_weights_that_fit_nowhere_raise(write):
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    # 3x3 512 -> 512: 2.36 MB of weights, more than the 1 MiB SRAM, and no DRAM level
    with pytest.raises(NoValidMapping, match="fits the memories of core tpu_32x32"):
        search(core, _conv(write, k=512, c=512, size=7))


def test_search_is_deterministic_for_a_seed(write):
    core = load_core(CORES / "os_16x64.yaml", 0)
    layer = _conv(write, k=64, c=32, size=8)
    a, b = search(core, layer, seed=3), search(core, layer, seed=3)
    assert a.temporal == b.temporal and a.cost == b.cost and a.evaluated == b.evaluated > 10


def test_latency_objective_finds_latency_no_worse(write):
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    layer = _conv(write, k=128, c=64, size=14)
    by_energy, by_latency = search(core, layer, objective="energy"), search(core, layer, objective="latency")
    assert by_latency.cost.latency_total2 <= by_energy.cost.latency_total2
    assert by_energy.cost.energy_total <= by_latency.cost.energy_total


@pytest.mark.parametrize("core_name", ["tpu_32x32", "os_16x64"])
def test_quality_against_loma_on_the_fc_layer(core_name, write):
    """Our search vs ZigZag's LOMA (lpf 6) on ResNet-18's fc: energy within 5%, latency 10%.
    The whole ResNet-18 table is scripts/mapping_quality.py (README)."""
    pytest.importorskip("zigzag")
    from zigzag_ref import conv_spec, run_loma

    core = load_core(CORES / f"{core_name}.yaml", 0)
    layer = _conv(write, k=1000, c=512, size=1, f=1, name="fc")
    spec = conv_spec(name="fc", K=1000, C=512, OY=1, OX=1, FY=1, FX=1)
    energy = search(core, layer, objective="energy").cost.energy_total
    latency = search(core, layer, objective="latency").cost.latency_total2
    assert energy <= 1.05 * run_loma(core, spec, lpf_limit=6, opt="energy")["best"]["energy_total"]
    assert latency <= 1.10 * run_loma(core, spec, lpf_limit=6, opt="latency")["best"]["latency_total2"]


def test_pinned_temporal_ordering(write):
    from stream.cost.search import pinned_ordering

    # whole loops by name; unnamed loops go outermost, largest first
    assert pinned_ordering([("OX", None), ("FX", None)], {"OX": 14, "FX": 3, "FY": 3, "C": 2}) == \
        (("OX", 14), ("FX", 3), ("FY", 3), ("C", 2))
    assert pinned_ordering([("OX", 7), ("C", None), ("OX", 2)], {"OX": 14, "C": 2}) == (("OX", 7), ("C", 2), ("OX", 2))
    with pytest.raises(StreamError, match="OX loops multiply to 7, but the tile has 14 OX iterations"):
        pinned_ordering([("OX", 7)], {"OX": 14})
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    layer = _conv(write, k=64, c=64, size=8)
    pinned = search(core, layer, ordering=(("OX", None), ("OY", None), ("FX", None), ("FY", None), ("K", None)))
    assert pinned.evaluated == 1
    # C (64 over 32 lanes: 2 left) is not named: it goes outermost
    assert [l for level in pinned.temporal.of("I") for l in level] == \
        [("OX", 8), ("OY", 8), ("FX", 3), ("FY", 3), ("K", 2), ("C", 2)]
    assert pinned.cost.energy_total >= search(core, layer).cost.energy_total  # the search does at least as well


def test_temporal_ordering_in_a_mapping_reaches_the_cost(write):
    from stream.cost import CostModel
    from stream.hardware import load_hardware
    from stream.mapping import load_mapping, plan_layers
    from stream.tiling import tile

    workload = load_workload(INPUTS / "workloads" / "two_conv.yaml")
    acc = load_hardware(INPUTS / "hardware" / "single_core.yaml")
    mapping = load_mapping(write("pin.yaml", "version: 1\nlayers:\n  - {name: Conv, temporal_ordering: [FY, FX, OX, OY, C, K]}\n"))
    plans = plan_layers(workload, acc, mapping)
    assert plans["conv_a"].temporal_ordering == (("FY", None), ("FX", None), ("OX", None), ("OY", None), ("C", None), ("K", None))
    g = tile(workload, plans, "fused")
    core = g.plans["conv_a"].candidates[0]
    cost = CostModel(acc, cache_dir=False).table(g).get(0, core)
    order = [d for level in cost.temporal.of("O") for d, _ in level]
    named = [d for d in ("FY", "FX", "OX", "OY", "C", "K") if d in order]
    assert order == named and cost.evaluated == 1


def test_depthwise_conv_uses_one_column_of_a_kc_array(write):
    # A depthwise 3x3 conv has no K or C loop for tpu_32x32's K/C dataflow: nothing unrolls,
    # one of 1024 MACs works. 32 channels x 8 x 8 pixels x 9 taps = 18,432 MACs take 18,432
    # temporal cycles against an ideal ceil(18,432 / 1024) = 18.
    path = write("dw.yaml", """\
        version: 1
        name: dw
        layers:
          - name: dw
            operator_type: Conv
            equation: O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]
            dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
            loop_dims: [B, G, OY, OX, FY, FX]
            loop_sizes: [1, 32, 8, 8, 3, 3]
            operand_precision: {O: 16, O_final: 8, W: 8, I: 8}
        """)
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    result = search(core, load_workload(path).layers[0])
    assert result.spatial.unrolling == ()
    assert (result.cost.ideal_cycle, result.cost.ideal_temporal_cycle) == (18, 18432)
    assert result.cost.spatial_utilization == pytest.approx(18 / 18432)


def test_port_bandwidth_demand(write):
    # gemm-like 1x1 conv, K=C=32 fully unrolled on tpu_32x32, 4x4 pixels: every cycle the
    # array reads one 8-bit input per row from the SRAM (32 x 8 = 256 bits) and each PE
    # keeps its weight: the SRAM read port serves at least 256 bits per cycle on average.
    core = load_core(CORES / "tpu_32x32.yaml", 0)
    result = search(core, _conv(write, k=32, c=32, size=4, f=1))
    bw = result.cost.port_bandwidth
    sram = {port: v for (memory, port), v in bw.items() if memory == "sram_1mib"}
    assert sram and all(avg <= peak + 1e-9 for avg, peak in sram.values())
    assert max(avg for avg, _ in sram.values()) >= 256


def test_latency_counts_the_in_core_loading(write):
    from stream.cost.search import score

    core = load_core(CORES / "tpu_32x32.yaml", 0)
    layer = _conv(write, k=64, c=32, size=8)
    cost = search(core, layer, objective="latency").cost
    assert score(cost, "latency") == cost.latency_total2 == cost.latency_total0 + cost.onloading + cost.offloading
    assert cost.onloading > 0  # the array's weight registers are filled from the SRAM first
    assert score(cost, "edp") == cost.energy_total * cost.latency_total2


def test_mismatched_pinned_ordering_is_one_clear_cli_error(write, capsys):
    from stream.cli import main

    mapping = write("pin.yaml", "version: 1\nlayers:\n  - {name: Conv, temporal_ordering: [[OX, 5]]}\n")
    code = main(["run", "-q", "-w", str(INPUTS / "workloads" / "two_conv.yaml"),
                 "-a", str(INPUTS / "hardware" / "single_core.yaml"), "-m", str(mapping)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: layer conv_a on core") and "OX loops multiply to 5, but the tile has 32" in err
