"""The cost table: canonical keys, the disk cache, operator costs, both models."""

from __future__ import annotations

import json
import textwrap

import pytest

from conftest import INPUTS, save_graph
from test_pipeline import DRAM
from stream.cost import CostModel, core_signature
from stream.errors import InputError
from stream.hardware import load_hardware
from stream.mapping import load_mapping, plan_layers
from stream.tiling import tile
from stream.workload import load_workload

QUAD = INPUTS / "hardware" / "quad_core.yaml"


def _conv(name, dims, sizes, equation, relations, precision="{O: 16, O_final: 8, W: 8, I: 8}", source=None,
          padding="{IY: [1, 1], IX: [1, 1]}"):
    text = f"""
      - name: {name}
        operator_type: Conv
        equation: {equation}
        dimension_relations: {relations}
        loop_dims: {dims}
        loop_sizes: {sizes}
        operand_precision: {precision}
        padding: {padding}"""
    return text + (f"\n        operand_source: {{I: {source}}}" if source else "")


CONV = "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"
CONV_RELATIONS = "[ix=1*ox+1*fx, iy=1*oy+1*fy]"
# the same convolution with every dim the cores' dataflows do not name (K, C) renamed, and
# the loop dims listed in another order
RENAMED = "O[n][k][h][w]+=W[k][c][r][s]*I[n][c][ih][iw]"
RENAMED_RELATIONS = "[iw=1*w+1*s, ih=1*h+1*r]"
RULE = """
  - name: {name}
    core_allocation: [0, 1, 2, 3]
    intra_core_tiling: ["{row}, all"]"""


def _workload(write, *layers) -> str:
    return write("w.yaml", "version: 1\nname: w\nlayers:" + "".join(layers) + "\n")


def _graph(write, workload, rows=None):
    """Tiled one row per CN (``rows``: the row dim per layer name, default OY for Conv)."""
    w, acc = load_workload(workload), load_hardware(QUAD)
    rules = "".join(RULE.format(name=n, row=r) for n, r in (rows or {"Conv": "OY"}).items())
    mapping = load_mapping(write("m.yaml", "version: 1\nlayers:" + rules + "\n"))
    return acc, tile(w, plan_layers(w, acc, mapping), "fused")


A = _conv("a", "[B, K, C, OY, OX, FY, FX]", "[1, 16, 8, 6, 6, 3, 3]", CONV, CONV_RELATIONS)


def test_identical_cores_share_entries(write):
    acc, g = _graph(write, _workload(write, A))
    table = CostModel(acc, model="roofline").table(g)
    # 6 one-row tiles; rows 0 and 5 read one padded row, but the cost depends on the shape only
    assert len({tuple((g.stops - g.starts)[cn].tolist()) for cn in range(g.num_cns)}) == 1
    assert len(table) == 1  # one shape x four identical cores
    assert (table.misses, table.hits) == (1, 3)
    assert len({core_signature(acc.core(i)) for i in range(4)}) == 1
    assert len({core_signature(acc.core(i)) for i in (0, 4, 5)}) == 3
    assert table.get(0, 0) is table.get(5, 3)


def test_pinned_pieces_are_costed_on_their_core(write):
    w, acc = load_workload(_workload(write, A)), load_hardware(QUAD)
    mapping = load_mapping(write("m.yaml", """\
        version: 1
        layers:
          - {name: Conv, core_allocation: [2, 3], core_allocation_is_fixed: true, intra_core_tiling: ["OY, all"]}
    """))
    g = tile(w, plan_layers(w, acc, mapping), "fused")
    assert g.plans["a"].pinned == (2, 3)
    table = CostModel(acc, model="roofline").table(g)
    assert (table.misses, table.hits) == (1, 1)  # K split in two: one shape, on cores 2 and 3
    assert len(table._memo) == 2 and {key[-1] for key in table._memo} == {2, 3}


@pytest.mark.parametrize("model", ["roofline", "zigzag"])
def test_renamed_dims_share_one_entry(write, model):
    b = _conv("b", "[W, S, R, C, K, H, N]", "[6, 3, 3, 8, 16, 6, 1]", RENAMED, RENAMED_RELATIONS,
               padding="{IH: [1, 1], IW: [1, 1]}")
    acc, g = _graph(write, _workload(write, A, b), rows={"a": "OY", "b": "H"})
    assert g.num_cns == 12
    table = CostModel(acc, model=model, cache_dir=False).table(g)
    assert len(table) == 1 and table.misses == 1
    a_cost, b_cost = table.get(0, 0), table.get(g.num_cns - 1, 2)
    assert (a_cost.latency_cycles, a_cost.energy_pj) == (b_cost.latency_cycles, b_cost.energy_pj)
    assert (a_cost.spatial is not None) == (a_cost.model == "zigzag")
    if a_cost.spatial is not None:  # the mapping is told in each layer's own dim names
        assert a_cost.spatial == b_cost.spatial
        assert _temporal_dims(a_cost) <= set(load_workload(_workload(write, A)).layers[0].dims)
        assert _temporal_dims(b_cost) <= {"N", "K", "C", "H", "W", "R", "S"}


def _temporal_dims(cost) -> set:
    return {d for _, levels in cost.temporal.levels for level in levels for d, _ in level}


def test_different_precisions_or_shapes_do_not_share(write):
    w4 = _conv("w4", "[B, K, C, OY, OX, FY, FX]", "[1, 16, 8, 6, 6, 3, 3]", CONV, CONV_RELATIONS,
               precision="{O: 16, O_final: 8, W: 4, I: 8}")
    wide = _conv("wide", "[B, K, C, OY, OX, FY, FX]", "[1, 16, 8, 6, 7, 3, 3]", CONV, CONV_RELATIONS)
    strided = _conv("strided", "[B, K, C, OY, OX, FY, FX]", "[1, 16, 8, 6, 6, 3, 3]", CONV,
                    "[ix=2*ox+1*fx, iy=2*oy+1*fy]")
    acc, g = _graph(write, _workload(write, A, w4, wide, strided))
    table = CostModel(acc, model="roofline").table(g)
    assert len(table) == 4


def test_dims_named_by_the_dataflow_keep_their_identity(write):
    # K and C swapped in name: the 32x32 core unrolls "K" and "C" by name, so no sharing
    swapped = _conv("swapped", "[B, K, C, OY, OX, FY, FX]", "[1, 8, 16, 6, 6, 3, 3]",
                    "O[b][c][oy][ox]+=W[c][k][fy][fx]*I[b][k][iy][ix]", CONV_RELATIONS)
    acc, g = _graph(write, _workload(write, A, swapped))
    assert len(CostModel(acc, model="roofline").table(g)) == 2


def _all_costs(table, g, cores=(0, 1, 2, 3)):
    return [table.get(cn, c) for cn in range(g.num_cns) for c in cores]


@pytest.mark.parametrize("model", ["roofline", "zigzag"])
def test_cache_round_trip(write, tmp_path, model):
    b = _conv("b", "[B, K, C, OY, OX, FY, FX]", "[1, 8, 16, 6, 6, 3, 3]", CONV, CONV_RELATIONS, source="a")
    acc, g = _graph(write, _workload(write, A, b))
    cold_model = CostModel(acc, model=model, cache_dir=tmp_path / "cache")
    cold = cold_model.table(g)
    assert cold.misses == len(cold) == 2 and cold.hits == 6
    files = list((tmp_path / "cache").glob("costs-*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["format"] == 1 and len(data["entries"]) == 2
    assert all(k.startswith(cold_model.version + "/") for k in data["entries"])

    warm = CostModel(acc, model=model, cache_dir=tmp_path / "cache").table(g)
    assert warm.misses == 0 and warm.hits == 8 and len(warm) == 2
    assert _all_costs(warm, g) == _all_costs(cold, g)
    # another objective is another entry
    other = CostModel(acc, model=model, objective="latency", cache_dir=tmp_path / "cache").table(g)
    assert other.misses == 2


def test_no_disk_cache_for_the_roofline_by_default(write, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAM_CACHE_DIR", str(tmp_path / "env"))
    acc, g = _graph(write, _workload(write, A))
    assert CostModel(acc, model="roofline").disk is None
    zz = CostModel(acc, model="zigzag")
    assert zz.disk is not None and zz.disk.directory == tmp_path / "env"
    zz.table(g)
    assert list((tmp_path / "env").glob("costs-*.json"))
    assert CostModel(acc, model="zigzag", cache_dir=False).disk is None


@pytest.mark.parametrize("garbage", ["{not json", '{"format": 99, "entries": {}}', "[1, 2]", "\udcff"])
def test_corrupted_cache_is_ignored(write, tmp_path, garbage):
    acc, g = _graph(write, _workload(write, A))
    reference = _all_costs(CostModel(acc, model="roofline").table(g), g)
    model = CostModel(acc, model="roofline", cache_dir=tmp_path)
    model.disk.path.write_bytes(garbage.encode("utf-8", "surrogateescape"))
    with pytest.warns(UserWarning, match="ignoring cost cache"):
        model = CostModel(acc, model="roofline", cache_dir=tmp_path)
    table = model.table(g)
    assert table.misses == 1 and _all_costs(table, g) == reference
    assert json.loads(model.disk.path.read_text())["format"] == 1  # replaced by a valid file


def test_malformed_entry_is_recomputed(write, tmp_path):
    acc, g = _graph(write, _workload(write, A))
    model = CostModel(acc, model="roofline", cache_dir=tmp_path)
    reference = _all_costs(model.table(g), g)
    data = json.loads(model.disk.path.read_text())
    for entry in data["entries"].values():
        entry["value"] = {"latency": "soon"}
    model.disk.path.write_text(json.dumps(data))
    table = CostModel(acc, model="roofline", cache_dir=tmp_path).table(g)
    assert table.misses == 1 and _all_costs(table, g) == reference


def test_unwritable_cache_dir_warns(write, tmp_path):
    acc, g = _graph(write, _workload(write, A))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="not saved"):
        table = CostModel(acc, model="roofline", cache_dir=blocker / "cache").table(g)
    assert table.misses == 1


# -- operator costs ---------------------------------------------------------------------

ELEMENTWISE = """
      - name: {name}
        operator_type: {op}
        equation: O[b][k][oy][ox]={rhs}
        loop_dims: [B, K, OY, OX]
        loop_sizes: [1, 64, 4, 56]
        operand_precision: {precision}"""


def test_operator_costs_parsed():
    acc = load_hardware(QUAD)
    simd = acc.core(5)
    costs = dict(simd.operator_costs)
    assert costs["Exp"] == 4.0 and costs["Gelu"] == 8.0 and costs["Softmax"] == 6.0
    assert "Add" not in costs and "Relu" not in costs
    assert all(costs[op] > 1 for op in ("Exp", "Sigmoid", "Tanh", "Gelu", "Silu", "Softplus", "Softmax",
                                        "LayerNormalization"))
    assert list(simd.operator_costs) == sorted(simd.operator_costs)
    assert acc.core(0).operator_costs == ()


def _simd_core(tmp_path, costs: str):
    text = (INPUTS / "hardware" / "cores" / "simd_64.yaml").read_text()
    text = text[: text.index("operator_costs:")] + costs + "\n"
    path = tmp_path / "simd.yaml"
    path.write_text(text)
    from stream.hardware.loader import load_core

    return load_core(path, 0)


def test_operator_costs_checked(tmp_path):
    assert _simd_core(tmp_path, "operator_costs: {Exp: 2.5}").operator_costs == (("Exp", 2.5),)
    with pytest.raises(InputError, match="a number > 0"):
        _simd_core(tmp_path, "operator_costs: {Exp: 0}")
    with pytest.raises(InputError, match="an operator type this core runs"):
        _simd_core(tmp_path, "operator_costs: {Conv: 2}")
    with pytest.raises(InputError):
        _simd_core(tmp_path, "operator_costs: [Exp]")


def test_operator_costs_applied_by_hand(write):
    # One row (OY = 1) of a 64 x 56 map on the 64-lane SIMD core (K across the lanes):
    # compute ceil(64/64) * 56 = 56 cycles per element op. The SRAM's 512-bit ports move
    # 64 x 56 x 8 = 28,672 bits per operand: 56 cycles.
    #   Add (two inputs): max(56 compute, 2 x 56 read) = 112 cycles; MAC 3584 x 0.08 pJ.
    #   Exp (4 cycles and 4 x unit_energy per op): max(4 x 56, 56) = 224; MAC 4 x 286.72.
    layers = [ELEMENTWISE.format(name="add", op="Add", rhs="I[b][k][oy][ox]+W[b][k][oy][ox]",
                                  precision="{O: 8, O_final: 8, I: 8, W: 8}"),
              ELEMENTWISE.format(name="exp", op="Exp", rhs="I[b][k][oy][ox]", precision="{O: 8, I: 8}"),
              ELEMENTWISE.format(name="relu", op="Relu", rhs="I[b][k][oy][ox]", precision="{O: 8, I: 8}")]
    w = load_workload(_workload(write, *layers))
    acc = load_hardware(QUAD)
    model = CostModel(acc, model="roofline")
    box = {"B": (0, 1), "K": (0, 64), "OY": (0, 1), "OX": (0, 56)}
    add, exp, relu = (model.cost(layer, box, acc.core(5)) for layer in w.layers)
    assert (add.latency_cycles, add.compute_cycles, add.memory_cycles) == (112, 56, 112)
    assert (exp.latency_cycles, exp.compute_cycles, exp.memory_cycles) == (224, 224, 56)
    assert (relu.latency_cycles, relu.compute_cycles) == (56, 56)
    assert add.mac_energy_pj == pytest.approx(3584 * 0.08)
    assert exp.mac_energy_pj == pytest.approx(4 * 3584 * 0.08)
    assert exp.onchip_energy_pj == relu.onchip_energy_pj  # memory traffic is not scaled
    assert exp.energy_pj == pytest.approx(exp.mac_energy_pj + exp.onchip_energy_pj)

    # the zigzag model scales the same parts: Exp and Relu differ in the operator alone
    zz = CostModel(acc, model="zigzag", cache_dir=False)
    exp, relu = (zz.cost(layer, box, acc.core(5)) for layer in w.layers[1:])
    assert exp.compute_cycles == 4 * relu.compute_cycles
    assert exp.latency_cycles == max(exp.compute_cycles, relu.latency_cycles)
    assert exp.mac_energy_pj == pytest.approx(4 * relu.mac_energy_pj)
    assert exp.onchip_energy_pj == pytest.approx(relu.onchip_energy_pj)


# -- models -----------------------------------------------------------------------------


def test_zigzag_is_the_default_and_the_roofline_still_available(write):
    acc, g = _graph(write, _workload(write, A))
    assert CostModel(acc, cache_dir=False).model == "zigzag"
    roofline = CostModel(acc, model="roofline").table(g)
    cost = roofline.get(0, 0)
    assert cost.model == "roofline"
    # 32x32 array, K=16 and C=8 unrolled, OX=6 x FY x FX = 54 temporal cycles
    assert cost.compute_cycles == 54
    assert cost.onchip_energy_pj == pytest.approx(sum(e for _, levels in cost.operand_energy_pj for _, e in levels))
    with pytest.raises(ValueError, match="model"):
        CostModel(acc, model="timeloop")
    with pytest.raises(ValueError, match="objective"):
        CostModel(acc, objective="area")


def test_zigzag_entries_are_consistent(write):
    acc, g = _graph(write, _workload(write, A))
    model = CostModel(acc, model="zigzag", cache_dir=False)
    cost = model.table(g).get(0, 0)
    assert cost.latency_cycles >= max(cost.compute_cycles, 1)
    assert cost.energy_pj == pytest.approx(cost.mac_energy_pj + cost.onchip_energy_pj)
    assert cost.onchip_energy_pj == pytest.approx(sum(e for _, levels in cost.operand_energy_pj for _, e in levels))
    if model.model == "zigzag" and cost.model == "zigzag":
        mems = {m.name for m in acc.core(0).memories}
        assert {op for op, _ in cost.operand_energy_pj} == {"O", "W", "I"}
        assert all(m in mems for _, levels in cost.operand_energy_pj for m, _ in levels)
        assert cost.spatial is not None and set(cost.spatial.factors()) <= {"K", "C"}
        assert cost.temporal is not None


def test_zigzag_plumbing_with_a_stub_search(write, tmp_path, monkeypatch):
    """What the table does with a search result, independent of the search itself."""
    from types import SimpleNamespace

    import stream.cost as cost_module
    from stream.cost.mapping import CostBreakdown, SpatialMapping, TemporalMapping

    class NoFit(Exception):
        pass

    calls = []

    def search(core, layer, sizes, objective="energy", seed=0, ordering=None):
        calls.append(list(sizes.items()))
        if layer.name == "big":
            raise NoFit
        inner = list(sizes)[-1]  # the last canonical dim: FX for A, S for B
        spatial = SpatialMapping((("D1", (("K", 16),)), ("D2", (("C", 8),))))
        temporal = TemporalMapping(tuple((op, (((inner, sizes[inner]),), ())) for op in ("O", "W", "I")))
        energies = {"O": (1.0, 2.0), "W": (0.5, 0.5), "I": (2.0,)}
        c = CostBreakdown(energy_total=10.0, mac_energy=4.0, memory_energy=energies,
                          energy_per_direction={}, word_accesses={}, ideal_cycle=10, ideal_temporal_cycle=12,
                          stall_slack=3.5, onloading=7, offloading=2, latency_total0=15.5, latency_total1=22.5,
                          latency_total2=24.5, spatial_utilization=0.8)
        return SimpleNamespace(cost=c, spatial=spatial, temporal=temporal, evaluated=42)

    monkeypatch.setattr(cost_module, "_load_search", lambda: (search, NoFit))
    b = _conv("b", "[W, S, R, C, K, H, N]", "[6, 3, 3, 8, 16, 6, 1]", RENAMED, RENAMED_RELATIONS,
              padding="{IH: [1, 1], IW: [1, 1]}")
    big = _conv("big", "[B, K, C, OY, OX, FY, FX]", "[1, 16, 8, 6, 9, 3, 3]", CONV, CONV_RELATIONS)
    acc, g = _graph(write, _workload(write, A, b, big), rows={"a": "OY", "b": "H", "big": "OY"})
    model = CostModel(acc, model="zigzag", cache_dir=tmp_path)
    table = model.table(g)
    assert model.model == "zigzag" and len(table) == 2 and len(calls) == 2
    # the search sees dims in canonical order (order of appearance in the equation)
    assert [d for d, _ in calls[0]] == ["B", "K", "OY", "OX", "C", "FY", "FX"]
    a_cost, b_cost = table.get(0, 0), table.get(6, 1)
    # latency_total2 = 12 + 3.5 + 7 on-loading + 2 off-loading -> 25 cycles; energies from
    # the breakdown
    assert (a_cost.latency_cycles, a_cost.compute_cycles, a_cost.memory_cycles) == (25, 12, 13)
    assert (a_cost.mac_energy_pj, a_cost.onchip_energy_pj) == (4.0, 6.0)
    assert a_cost.operand_energy_pj == (("O", (("rf_acc", 1.0), ("sram_1mib", 2.0))),
                                        ("W", (("rf_w", 0.5), ("sram_1mib", 0.5))), ("I", (("sram_1mib", 2.0),)))
    assert (a_cost.onload_cycles, a_cost.offload_cycles, a_cost.evaluated) == (7.0, 2.0, 42)
    # one entry, told in each layer's own dim names
    assert a_cost.temporal.of("O") == ((("FX", 3),), ()) and b_cost.temporal.of("O") == ((("S", 3),), ())
    assert b_cost.spatial == a_cost.spatial
    # no mapping fits: that entry falls back to the roofline, and says so
    assert table.get(g.num_cns - 1, 0).model == "roofline (no mapping fits)"
    warm = CostModel(acc, model="zigzag", cache_dir=tmp_path).table(g)
    assert warm.misses == 0 and len(calls) == 2 and warm.get(6, 1) == b_cost


def test_partial_sum_tiles_are_costed_with_partial_outputs(write):
    """A tile split along C that does not finish its sums keeps 16-bit partial sums at the
    top memory: it writes twice the output bits of the finishing tile of the same shape."""
    from stream.mapping import LayerPlan, TileSpec
    from stream.tiling import tile
    from stream.workload import load_workload

    path = write("red.yaml", """\
        version: 1
        name: red
        layers:
          - {name: mm, operator_type: Gemm, equation: "O[b][k]+=W[k][c]*I[b][c]", loop_dims: [B, K, C],
             loop_sizes: [1, 32, 64], operand_precision: {O: 16, O_final: 8, W: 8, I: 8}}
        """)
    acc = load_hardware(INPUTS / "hardware" / "single_core.yaml")
    w = load_workload(path)
    core = acc.compute_cores[0].id
    g = tile(w, {"mm": LayerPlan("mm", (core,), None, (), (TileSpec("C", count=2),))}, "fused")
    assert g.completes.tolist() == [False, True]
    table = CostModel(acc, model="roofline", cache_dir=False).table(g)
    first, last = table.get(0, core), table.get(1, core)
    assert len(table) == 2  # same tile shape, two entries: partial and final outputs
    top = acc.core(core).top_memory
    # roofline on-chip energy: inputs read once + outputs written once; only the output
    # precision differs (16 vs 8 bits for 32 outputs)
    assert first.onchip_energy_pj - last.onchip_energy_pj == pytest.approx(
        top.access_energy(32 * 16, write=True) - top.access_energy(32 * 8, write=True))


# A weight-stationary 128x128 array: one 8-bit weight register per PE (131,072 bits in
# all), filled from a weight SRAM that reads 4,096 bits a cycle.
WS_CORE = """\
    version: 1
    name: ws128
    type: compute
    memories:
      rf_w:
        size: 8
        r_cost: 0.01
        w_cost: 0.01
        operands: [I2]
        ports:
          - {name: r, type: read, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I2, tl"]}
          - {name: w, type: write, bandwidth_min: 8, bandwidth_max: 8, allocation: ["I2, fh"]}
        served_dimensions: []
      sram_w:
        size: 1048576
        r_cost: 100
        w_cost: 100
        operands: [I2]
        ports:
          - {name: r, type: read, bandwidth_min: 4096, bandwidth_max: 4096, allocation: ["I2, tl"]}
          - {name: w, type: write, bandwidth_min: 4096, bandwidth_max: 4096, allocation: ["I2, fh"]}
        served_dimensions: [D1, D2]
      sram_a:
        size: 8388608
        r_cost: 100
        w_cost: 100
        operands: [I1, O]
        ports:
          - {name: r, type: read, bandwidth_min: 8192, bandwidth_max: 8192, allocation: ["I1, tl", "O, tl", "O, th"]}
          - {name: w, type: write, bandwidth_min: 8192, bandwidth_max: 8192, allocation: ["I1, fh", "O, fh", "O, fl"]}
        served_dimensions: [D1, D2]
    operational_array: {dimensions: [D1, D2], sizes: [128, 128], unit_energy: 1}
    dataflows: {D1: ["K, 128"], D2: ["C, 128"]}
"""
WS_GEMM = """\
    version: 1
    name: g
    layers:
      - name: g
        operator_type: Gemm
        equation: O[l][k]+=W[k][c]*I[l][c]
        loop_dims: [L, K, C]
        loop_sizes: [16, 128, 128]
        operand_precision: {O: 8, O_final: 8, W: 8, I: 8}
"""


def test_a_cn_pays_for_loading_its_array(write):
    """ZigZag's on-loading between the core's top memory and the array is part of a CN's
    latency. The Gemm (L 16, K 128, C 128) runs 16 x 128 x 128 / 16,384 = 16 cycles on the
    array; its weights, 131,072 bits, take 131,072 / 4,096 = 32 cycles to load into the
    registers, and ZigZag lets data loaded once hide behind the compute's cycles (16), so
    16 remain: 32 cycles per CN (16 before, without the loading)."""
    write("core.yaml", WS_CORE)
    write("dram.yaml", textwrap.dedent(DRAM))
    acc = load_hardware(write("system.yaml", "version: 1\nname: ws\ncores: {0: core.yaml, 1: dram.yaml}\n"
                                             "offchip_core_id: 1\ncore_connectivity:\n"
                                             "  - {type: bus, cores: [0, 1], bandwidth: 64}\n"))
    w = load_workload(write("w.yaml", WS_GEMM))
    g = tile(w, plan_layers(w, acc), "fused")
    cost = CostModel(acc, model="zigzag").table(g).get(0, 0)
    assert (cost.compute_cycles, cost.onload_cycles, cost.offload_cycles) == (16, 16.0, 0.0)
    assert cost.latency_cycles == 16 + 16


@pytest.mark.parametrize("model", ["zigzag", "roofline"])
def test_a_dataflow_names_a_dim_by_any_of_its_names(tmp_path, model):
    """A core's dataflow may name a dim by an alias: the field's SIMD cores unroll ``K, 64``,
    which for a 4-D elementwise layer is its last axis (the field's classic names B, H, D,
    K). An Add over one row of a 64-channel, 56-column map puts its 56 columns on 56 of the
    64 lanes and runs its 64 channels in time: 64 cycles, not 3,584 on one lane."""
    from onnx import TensorProto, helper

    from stream.hardware.loader import load_core
    from stream.workload.onnx_loader import load_onnx

    shape = [1, 64, 1, 56]
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")], "g",
        [helper.make_tensor_value_info(n, TensorProto.INT8, shape) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.INT8, shape)])
    save_graph(graph, tmp_path / "add.onnx")
    add = load_onnx(tmp_path / "add.onnx").layer("add")
    assert add.dims == ("B", "C", "OY", "OX") and add.resolve_dim("K") == "OX"
    text = (INPUTS / "hardware" / "cores" / "simd_64.yaml").read_text()
    (tmp_path / "simd.yaml").write_text(text.replace("operator_types:", 'dataflows: {D1: ["K, 64"]}\n\noperator_types:'))
    core = load_core(tmp_path / "simd.yaml", 0)
    acc = load_hardware(INPUTS / "hardware" / "quad_core.yaml")
    cost = CostModel(acc, model=model, cache_dir=False).cost(add, {d: (0, n) for d, n in zip(add.dims, add.sizes)}, core)
    assert cost.compute_cycles == 64
    if model == "zigzag":
        assert cost.spatial.unrolling == (("D1", (("OX", 56),)),)


def test_a_port_narrower_than_one_element_unrolls_nothing_it_serves(tmp_path, write):
    """tpu_32x32 without its fixed dataflow, its accumulators' ports cut to 16 bits, a Gemm
    with 32-bit partial sums: the accumulators D2 shares cannot take one partial sum a
    cycle, so D2 unrolls no dim the output depends on (the search once divided by zero
    here) and takes C; D1 takes K. K 64 x C 64 x L 16 = 65,536 MACs on 32 x 32: 64 cycles."""
    from stream.hardware.loader import load_core

    text = (INPUTS / "hardware" / "cores" / "tpu_32x32.yaml").read_text()
    acc = text.index("  rf_acc:")
    end = text.index("  sram_1mib:")
    narrow = text[acc:end].replace("bandwidth_min: 32, bandwidth_max: 32", "bandwidth_min: 16, bandwidth_max: 16")
    (tmp_path / "core.yaml").write_text(text[:acc] + narrow + text[end: text.index("dataflows:")])
    core = load_core(tmp_path / "core.yaml", 0)
    w = load_workload(write("w.yaml", """\
        version: 1
        name: w
        layers:
          - name: g
            operator_type: Gemm
            equation: O[l][k]+=W[k][c]*I[l][c]
            loop_dims: [L, K, C]
            loop_sizes: [16, 64, 64]
            operand_precision: {O: 32, O_final: 8, W: 8, I: 8}
        """))
    layer = w.layer("g")
    cost = CostModel(load_hardware(QUAD), cache_dir=False).cost(layer, {"L": (0, 16), "K": (0, 64), "C": (0, 64)}, core)
    assert dict(cost.spatial.unrolling) == {"D1": (("K", 32),), "D2": (("C", 32),)}
    assert cost.compute_cycles == 64


def test_more_than_two_inputs_use_the_roofline(tmp_path):
    """ZigZag's operands are one input and one weight: a Where (condition, then, else),
    as every exported attention mask has, is priced by the roofline and says so."""
    from onnx import TensorProto, helper

    from stream.workload.onnx_loader import load_onnx

    graph = helper.make_graph(
        [helper.make_node("Where", ["c", "a", "b"], ["y"], name="where")], "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [8, 16])]
        + [helper.make_tensor_value_info(n, TensorProto.INT8, [8, 16]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [8, 16])])
    save_graph(graph, tmp_path / "where.onnx")
    where = load_onnx(tmp_path / "where.onnx").layer("where")
    acc = load_hardware(QUAD)
    cost = CostModel(acc, cache_dir=False).cost(where, {d: (0, n) for d, n in zip(where.dims, where.sizes)}, acc.core(5))
    # 128 elements on the 64-lane SIMD core: 2 cycles of compute; the SRAM's 512-bit ports
    # read 3 x 1,024 bits (6 cycles) and write 1,024 (2): 6 cycles
    assert cost.model == "roofline (more than two inputs)"
    assert (cost.compute_cycles, cost.memory_cycles, cost.latency_cycles) == (2, 6, 6)


def test_a_grouped_conv_is_priced_by_the_roofline_not_a_crash(tmp_path):
    """A conv of 2 groups (8 -> 8 channels, 3x3, 6x6): its output channel is g*4 + k, an
    axis summing two loop dims, which ZigZag's equations do not describe (they raised
    before). The roofline prices it, and says why: on the 32x32 core's fixed K x C dataflow,
    ceil(4/32) x ceil(4/32) x 2 x 36 x 9 = 648 cycles."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from stream.workload.onnx_loader import load_onnx

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="gc", group=2, pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 8, 6, 6])],
        [numpy_helper.from_array(np.zeros((8, 4, 3, 3), dtype=np.int8), "w")])
    save_graph(graph, tmp_path / "g.onnx")
    conv = load_onnx(tmp_path / "g.onnx").layer("gc")
    acc = load_hardware(QUAD)
    cost = CostModel(acc, cache_dir=False).cost(conv, {d: (0, n) for d, n in zip(conv.dims, conv.sizes)}, acc.core(0))
    assert cost.model == "roofline (an output axis sums two loop dims)"
    assert cost.compute_cycles == 648
