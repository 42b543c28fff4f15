"""Mapping files: both field dialects and ours, resolution per layer, bad mappings."""

from __future__ import annotations

import textwrap

import pytest

from conftest import INPUTS, PEERS, needs_peers, peer_files
from stream.api import run_detailed
from stream.errors import InputError
from stream.hardware import load_hardware
from stream.mapping import TileSpec, load_mapping, plan_layers
from stream.workload import load_workload

CLASSIC = PEERS / "classic-2025"


@pytest.fixture(scope="module")
def quad():
    return load_hardware(INPUTS / "hardware" / "quad_core.yaml")


@pytest.fixture(scope="module")
def resnet18():
    return load_workload(INPUTS / "workloads" / "resnet18.yaml")


@needs_peers
def test_classic_tiling_forms():
    m = load_mapping(CLASSIC / "mapping" / "tpu_like_quad_core.yaml")
    conv = next(r for r in m.rules if r.selector == "Conv")
    assert conv.core_allocation == (0, 1, 2, 3) and not conv.allocation_is_fixed
    assert conv.intra_core_tiling == (TileSpec("OY", tile=1),)  # "OY, all": one row per piece
    assert conv.inter_core_tiling == (TileSpec("K"),)  # "K, *": the allocator decides
    ga = load_mapping(CLASSIC / "mapping" / "tpu_like_quad_core_ga.yaml")
    assert next(r for r in ga.rules if r.selector == "Conv").inter_core_tiling == (TileSpec("K", count=4),)
    assert not m.strict


@needs_peers
def test_newer_dialect_forms():
    m = load_mapping(PEERS / "2026" / "mapping" / "resnet18_tpu_quad_core.yaml")
    conv = next(r for r in m.rules if r.selector == "Conv")
    assert conv.core_allocation == (0, 1, 2, 3)
    assert conv.inter_core_tiling == (TileSpec("D6", count=4),)
    assert len(m.fusion_groups) == 11
    assert m.fusion_groups[0].layers == ("Conv", "Relu", "MaxPool")
    assert m.fusion_groups[0].intra_core_tiling == (TileSpec("/maxpool/MaxPool.D2", tile=1),)


@needs_peers
def test_plan_classic_on_resnet18_onnx():
    workload = load_workload(CLASSIC / "workload" / "resnet18.onnx")
    acc = load_hardware(CLASSIC / "hardware" / "tpu_like_quad_core.yaml")
    plans = plan_layers(workload, acc, load_mapping(CLASSIC / "mapping" / "tpu_like_quad_core.yaml"))
    conv = plans["/conv1/Conv"]
    assert conv.candidates == (0, 1, 2, 3) and conv.inter_core == (("K", 4),)  # '*' -> one per core
    assert conv.intra_core == (TileSpec("OY", tile=1),)
    assert plans["/maxpool/MaxPool"].candidates == (4,)
    add = plans["/layer1/layer1.0/Add"]
    # the field's rule says "H, *" and "D, all": by the classic names of a 4-D elementwise
    # layer (B, H, D, K by position) the channels over its one core, and its rows
    assert add.candidates == (5,) and add.inter_core == (("C", 1),) and add.intra_core == (TileSpec("OY", tile=1),)


@needs_peers
def test_fixed_split_pins_pieces_in_order():
    workload = load_workload(CLASSIC / "workload" / "resnet18.onnx")
    acc = load_hardware(CLASSIC / "hardware" / "tpu_like_quad_core.yaml")
    mapping = load_mapping(CLASSIC / "mapping" / "tpu_like_quad_core_resnet18_fixed_split.yaml")
    detail = run_detailed(workload, acc, mapping)
    plan = detail.cngraph.plans["/layer4/layer4.0/conv2/Conv"]
    assert plan.pinned == (2, 1, 2, 2, 0, 1, 1, 3) and plan.inter_core == (("K", 8),)
    cns = [cn for cn in range(detail.cngraph.num_cns)
           if detail.cngraph.layer_of(cn).name == "/layer4/layer4.0/conv2/Conv"]
    assert [detail.allocation[cn] for cn in cns] == [2, 1, 2, 2, 0, 1, 1, 3]
    # each piece computes 512 / 8 = 64 output channels
    assert [detail.cngraph.box(cn)["K"] for cn in cns][:2] == [(0, 64), (64, 128)]
    detail.trace.check()
    # the mapping pins every layer, so the fixed allocator runs it as given, core for core
    fixed = run_detailed(workload, acc, mapping, allocator="fixed")
    assert fixed.result.allocator == "fixed"
    assert (fixed.allocation.core == detail.allocation.core).all()


RUNS = [  # (mapping, hardware, workload): every classic mapping with its system
    ("tpu_like_quad_core", "tpu_like_quad_core", "resnet18.yaml"),
    ("tpu_like_quad_core_ga", "tpu_like_quad_core", "resnet18.onnx"),
    ("tpu_like_quad_core_resnet18_fixed_split", "tpu_like_quad_core", "resnet18.onnx"),
    ("simba", "simba", "resnet18.yaml"),
    ("simba_small", "simba_small", "resnet18.yaml"),
    ("simba_small_fixed", "simba_small", "fsrcnn.onnx"),
    ("array_and_vec", "fusemax", "fsrcnn.onnx"),
]


@needs_peers
@pytest.mark.parametrize("mapping, hardware, workload", RUNS, ids=[r[0] for r in RUNS])
def test_classic_mappings_drive_a_run(mapping, hardware, workload):
    # greedy and the roofline: the mapping is the point here (CP-SAT and the zigzag model run
    # on every bundled case in test_pipeline)
    detail = run_detailed(CLASSIC / "workload" / workload, CLASSIC / "hardware" / f"{hardware}.yaml",
                          CLASSIC / "mapping" / f"{mapping}.yaml", allocator="greedy", cost_model="roofline")
    detail.trace.check()
    assert detail.result.latency_cycles > 0


@needs_peers
def test_every_mapping_file_loads():
    for path in peer_files("*/mapping/*.yaml") + [INPUTS / "mappings" / "quad_core.yaml"]:
        assert load_mapping(path).rules


def test_default_plan_prefers_specialised_cores(quad, resnet18):
    plans = plan_layers(resnet18, quad)
    assert plans["conv1"].candidates == (0, 1, 2, 3)  # general cores
    assert plans["maxpool"].candidates == (4,)  # the pooling core lists MaxPool
    assert plans["layer1.0.add"].candidates == (5,)  # the SIMD core lists Add
    assert plans["conv1"].inter_core == ()


# -- bad mappings (our strict format) -------------------------------------------------------


BASE = """\
    version: 1
    layers:
      - name: Conv
        core_allocation: [0, 1, 2, 3]
        inter_core_tiling: ["K, 4"]
"""


@pytest.mark.parametrize("edit, key, expected", [
    (('name: Conv\n        core_allocation: [0, 1, 2, 3]\n        inter_core_tiling: ["K, 4"]',
      'name: conv1\n        core_allocation: [0, 1, 2, 3]\n        inter_core_tiling: ["Q, 4"]'),
     "layers[0].inter_core_tiling", "a dim of the layer"),
    (('"K, 4"', '"C, 4"'), "layers[0].inter_core_tiling", "a parallel dim"),
    (("[0, 1, 2, 3]", "[0, 9]"), "layers[0].core_allocation[1]", "a core id of quad_core"),
    (("[0, 1, 2, 3]", "[0, 6]"), "layers[0].core_allocation[1]", "a compute core that supports 'Conv'"),
    (('"K, 4"', '"K, four"'), "layers[0].inter_core_tiling[0]", '"DIM, N"'),
    (('inter_core_tiling: ["K, 4"]', 'intra_core_tiling: ["OY, 0"]'), "layers[0].intra_core_tiling[0]", ">= 1"),
    (("core_allocation: [0, 1, 2, 3]", "cores: [0]"), "layers[0].cores", "a known key"),
])
def test_bad_mapping_names_file_key_and_expectation(write, quad, resnet18, edit, key, expected):
    text = BASE.replace(*edit)
    assert text != BASE
    path = write("bad_mapping.yaml", text)
    with pytest.raises(InputError) as info:
        plan_layers(resnet18, quad, load_mapping(path))
    message = str(info.value)
    assert str(path) in message and key in message and expected in message, message


def test_fusion_groups_name_real_layers_once(write, quad, resnet18):
    good = write("groups.yaml", textwrap.dedent(BASE) + "fusion_groups:\n  - {name: stem, layers: [conv1, maxpool]}\n")
    plans = plan_layers(resnet18, quad, load_mapping(good))
    assert plans["conv1"].group == plans["maxpool"].group == "stem"
    assert plans["fc"].group.startswith("auto")  # layers in no given group are grouped automatically
    ghost = write("ghost.yaml", textwrap.dedent(BASE) + "fusion_groups:\n  - {layers: [conv1, ghost]}\n")
    with pytest.raises(InputError, match=r"ghost\.yaml: fusion_groups\[0\]\.layers\[1\]: expected the name of a layer"):
        plan_layers(resnet18, quad, load_mapping(ghost))
    twice = write("twice.yaml", textwrap.dedent(BASE) + "fusion_groups:\n  - {layers: [conv1]}\n  - {layers: [conv1]}\n")
    with pytest.raises(InputError, match=r"fusion_groups\[1\]\.layers\[0\]: expected each layer in one fusion group at most.*already in group0"):
        plan_layers(resnet18, quad, load_mapping(twice))
    # two groups of one name would run as one group
    same = write("same.yaml", textwrap.dedent(BASE) + "fusion_groups:\n  - {name: g, layers: [conv1]}\n"
                                                     "  - {name: g, layers: [maxpool]}\n")
    with pytest.raises(InputError, match=r"same\.yaml: fusion_groups\[1\]\.name: expected a name no other group has, got 'g'"):
        plan_layers(resnet18, quad, load_mapping(same))


def test_fusion_group_must_be_contiguous(write, quad, resnet18):
    # conv1 -> maxpool -> layer1.0.conv1: a group of conv1 and layer1.0.conv1 skips maxpool
    gap = write("gap.yaml", textwrap.dedent(BASE) + "fusion_groups:\n  - {layers: [conv1, layer1.0.conv1]}\n")
    with pytest.raises(InputError, match=r"gap\.yaml: fusion_groups\[0\]\.layers: expected layers contiguous.*maxpool lies between"):
        plan_layers(resnet18, quad, load_mapping(gap))


def test_automatic_groups_cut_when_weights_exceed_the_cores(quad, resnet18):
    plans = plan_layers(resnet18, quad)
    groups = [plans[l.name].group for l in resnet18.layers]
    assert groups == sorted(groups, key=lambda g: int(g[4:]))  # consecutive runs of layers
    capacity = 4 * quad.core(0).top_memory.size_bits + quad.core(4).top_memory.size_bits + quad.core(5).top_memory.size_bits
    for name in dict.fromkeys(groups):
        members = [l for l in resnet18.layers if plans[l.name].group == name]
        weights = sum(l.footprint_bits("W") for l in members if any(op.name == "W" and op.role.value == "weight" for op in l.inputs))
        assert weights <= capacity or len(members) == 1
    assert len(set(groups)) > 1  # ResNet-18's 11.7 MB of weights do not fit 4.4 MB of SRAM


def test_group_intra_core_tiling_applies_to_its_layers(write, quad, resnet18):
    path = write("tiles.yaml", textwrap.dedent(BASE) + """\
        fusion_groups:
          - name: stem
            layers: [conv1, maxpool]
            intra_core_tiling: [{dim: OY, tile: 4}, {dim: conv1.OX, tile: 56}]
        """.replace("        ", ""))
    plans = plan_layers(resnet18, quad, load_mapping(path))
    assert plans["conv1"].intra_core == (TileSpec("OY", tile=4), TileSpec("OX", tile=56))
    assert plans["maxpool"].intra_core == (TileSpec("OY", tile=4),)
    bad = write("bad_tiles.yaml", textwrap.dedent(BASE) + "fusion_groups:\n  - {layers: [conv1], intra_core_tiling: [{dim: L, tile: 4}]}\n")
    with pytest.raises(InputError, match=r"fusion_groups\[0\]\.intra_core_tiling\[0\]: expected a dim of a layer in the group"):
        plan_layers(resnet18, quad, load_mapping(bad))


def test_sequential_dim_cannot_be_split_across_cores(write, quad):
    workload = write("scan.yaml", """\
        version: 1
        name: scan
        layers:
          - {name: scan, operator_type: Scan, equation: "O[l][d]+=I[l][d]*W[d]", loop_dims: [L, D],
             loop_sizes: [64, 16], loop_kinds: {L: sequential}, operand_precision: {O: 16, O_final: 8, W: 8, I: 8}}
        """)
    mapping = write("scan_map.yaml", 'version: 1\nlayers:\n  - {name: scan, core_allocation: [0, 1], inter_core_tiling: ["L, 2"]}\n')
    with pytest.raises(InputError, match=r"scan_map\.yaml: layers\[0\]\.inter_core_tiling: expected a parallel dim.*got 'L'"):
        plan_layers(load_workload(workload), quad, load_mapping(mapping))


def test_normalised_axis_cannot_be_split(write, quad):
    workload = load_workload(INPUTS / "workloads" / "transformer_block.onnx")
    assert workload.layer("softmax").attr("axis") == "K"
    ok = write("ok.yaml", 'version: 1\nlayers:\n  - {name: Softmax, core_allocation: [5], intra_core_tiling: ["D, all"]}\n')
    assert plan_layers(workload, quad, load_mapping(ok))["softmax"].intra_core == (TileSpec("D", tile=1),)
    bad = write("bad.yaml", 'version: 1\nlayers:\n  - {name: Softmax, core_allocation: [5], intra_core_tiling: ["K, 4"]}\n')
    with pytest.raises(InputError, match=r"bad\.yaml: layers\[0\]\.intra_core_tiling: expected no split of K, the axis Softmax normalises over"):
        plan_layers(workload, quad, load_mapping(bad))


def test_automatic_groups_weigh_weights_against_the_weight_memory(write):
    """A core whose weights have their own 1 MiB SRAM beside a 16 KiB activation SRAM:
    three Gemms of 64 x 128 8-bit weights (8 KiB each) fit half the weight SRAM together,
    one group; measured against half the activation SRAM each would be alone."""
    from test_simulation import DRAM, gemm, split_core_yaml, system_yaml, workload

    write("core.yaml", split_core_yaml(act_bits=16 * 8192, weight_bits=1024 * 8192))
    write("dram.yaml", DRAM)
    acc = load_hardware(write("system.yaml", system_yaml({0: "core.yaml"}, 1, ["{type: bus, cores: [0, 1], bandwidth: 64}"])))
    w = load_workload(write("w.yaml", workload(gemm("a", 16, 64, 128), gemm("b", 16, 64, 64, "a"), gemm("c", 16, 64, 64, "b"))))
    assert [w.layer(n).footprint_bits("W") for n in "abc"] == [65536, 32768, 32768]
    plans = plan_layers(w, acc)
    assert {p.group for p in plans.values()} == {"auto0"}
    # a weight memory of 128 Kbit: half is 65,536 bits, so a (65,536) alone, then b and c
    write("core.yaml", split_core_yaml(act_bits=16 * 8192, weight_bits=128 * 1024))
    acc = load_hardware(write("system.yaml", system_yaml({0: "core.yaml"}, 1, ["{type: bus, cores: [0, 1], bandwidth: 64}"])))
    assert [plan_layers(w, acc)[n].group for n in "abc"] == ["auto0", "auto1", "auto1"]


def test_a_rule_names_dims_by_role(write):
    """'channels, 4' splits the output channels of every layer it selects: K of a dense conv,
    G of a depthwise one, K of a matrix product; 'rows, all' cuts an image's OY and a
    sequence's tokens. One bundled rule then serves MobileNet's depthwise convs too."""
    from stream.workload import load_workload

    w = load_workload(write("w.yaml", """\
        version: 1
        name: w
        layers:
          - name: dense
            operator_type: Conv
            equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
            dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
            loop_dims: [B, K, C, OY, OX, FY, FX]
            loop_sizes: [1, 8, 4, 6, 6, 3, 3]
            operand_precision: {O: 16, O_final: 8, W: 8, I: 8}
            padding: {IY: [1, 1], IX: [1, 1]}
          - name: depthwise
            operator_type: Conv
            equation: O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]
            dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
            loop_dims: [B, G, OY, OX, FY, FX]
            loop_sizes: [1, 8, 6, 6, 3, 3]
            operand_precision: {O: 16, O_final: 8, W: 8, I: 8}
            operand_source: {I: dense}
            padding: {IY: [1, 1], IX: [1, 1]}
        """))
    assert [w.layer(n).resolve_dim("channels") for n in ("dense", "depthwise")] == ["K", "G"]
    assert [w.layer(n).resolve_dim("rows") for n in ("dense", "depthwise")] == ["OY", "OY"]
    quad = load_hardware(INPUTS / "hardware" / "quad_core.yaml")
    plans = plan_layers(w, quad, load_mapping(INPUTS / "mappings" / "quad_core.yaml"))
    assert plans["depthwise"].inter_core == (("G", 4),)
    assert plans["dense"].inter_core == (("K", 4),)


def test_an_elementwise_layer_follows_its_producers_rows():
    """PyTorch's ResNet-18 keeps each Relu as a layer; the bundled mapping tiles convs by
    rows and says nothing of Relu. Fused with its conv, the Relu is cut into the same 112
    rows (it would otherwise be one whole-map CN between two row pipelines); a Relu whose
    producer is untiled, or layer by layer, stays whole."""
    from stream.mapping.ir import TileSpec
    from stream.workload import load_workload

    w = load_workload(INPUTS.parent / "tests" / "data" / "onnx" / "resnet18.classic.onnx")
    quad = load_hardware(INPUTS / "hardware" / "quad_core.yaml")
    plans = plan_layers(w, quad, load_mapping(INPUTS / "mappings" / "quad_core.yaml"))
    assert plans["/relu/Relu"].intra_core == (TileSpec("OY", tile=1),)
    assert plans["/relu/Relu"].group == plans["/conv1/Conv"].group
    assert plans["/layer4/layer4.1/relu_1/Relu"].intra_core == (TileSpec("OY", tile=1),)
    assert plans["/fc/Gemm"].intra_core == ()  # a Gemm: not elementwise, and no rows rule
