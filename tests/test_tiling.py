"""Tiling: grid shapes, counts on ResNet-18 worked out by hand, views, the CLI listing."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import INPUTS, save_graph
from stream.cli import main
from stream.errors import InputError
from stream.hardware import load_hardware
from stream.mapping import LayerPlan, TileSpec, load_mapping, plan_layers
from stream.tiling import DATA, tile
from stream.workload import AxisExpr, DimKind, Layer, Operand, Reshape, Role, Slice, Source, Workload, load_workload


@pytest.fixture(scope="module")
def resnet18_fused():
    workload = load_workload(INPUTS / "workloads" / "resnet18.yaml")
    plans = plan_layers(workload, load_hardware(INPUTS / "hardware" / "quad_core.yaml"),
                        load_mapping(INPUTS / "mappings" / "quad_core.yaml"))
    return tile(workload, plans, "fused")


def _in_data(g, layer: str) -> int:
    cns = g.layer_cns(g.workload.index(layer))
    dst = g.edge_dst[g.edge_kind == DATA]
    return int(((dst >= cns.start) & (dst < cns.stop)).sum())


def test_resnet18_counts_by_hand(resnet18_fused):
    g = resnet18_fused
    assert g.num_cns == 2595
    # 3x3/1 conv, one row per CN, input produced by the SIMD add in one piece per row:
    # 56 rows x 4 K-pieces x 3 producer rows, one fewer at the top and bottom rows
    assert _in_data(g, "layer1.1.conv1") == (56 * 3 - 2) * 4
    # ... and by a conv split into 4 K-pieces: every input row comes in 4 pieces
    assert _in_data(g, "layer1.0.conv2") == (56 * 3 - 2) * 4 * 4
    # maxpool 3x3/2 over conv1: rows 2r-1..2r+1 of 112, only the first row clipped; x 4 pieces
    assert _in_data(g, "maxpool") == (56 * 3 - 1) * 4
    # 1x1/2 downsample: exactly one input row (2r) per output row, from the add (1 piece)
    assert _in_data(g, "layer2.0.downsample") == 28 * 4
    # weights: one DRAM tensor per K-piece, read by every row of that piece
    conv = g.workload.index("layer1.0.conv1")
    weights = [i for i, e in enumerate(g.externals) if e.layer == conv and e.operand == "W"]
    assert len(weights) == 4 and all(g.ext_uses[i] == 56 for i in weights)
    assert sum(g.externals[i].bits for i in weights) == 64 * 64 * 9 * 8


def test_edge_bits_exclude_halo_double_counting(resnet18_fused):
    g = resnet18_fused
    layer = g.workload.index("layer1.1.conv1")
    first = g.layer_cns(layer).start  # row 0, K-piece 0: reads rows 0 and 1 of 64 x 56 bytes
    bits = g.edge_bits[g.in_ptr[first]:g.in_ptr[first + 1]]
    assert bits.tolist() == [64 * 56 * 8, 64 * 56 * 8]


def test_ragged_last_tile_and_chains(write):
    path = write("mm.yaml", """\
        version: 1
        name: mm
        layers:
          - {name: a, operator_type: Gemm, equation: "O[d][k]+=W[c][k]*I[d][c]", loop_dims: [D, C, K],
             loop_sizes: [10, 6, 4], operand_precision: {O: 32, O_final: 8, W: 8, I: 8}}
        """)
    w = load_workload(path)
    # the tiling list nests its first entry innermost: C's two tiles inside each D tile
    plan = LayerPlan("a", (0,), None, (), (TileSpec("C", count=2), TileSpec("D", tile=4)))
    g = tile(w, {"a": plan}, "fused")
    assert [g.box(cn)["D"] for cn in range(0, g.num_cns, 2)] == [(0, 4), (4, 8), (8, 10)]
    # C in two tiles of 3: the first holds partial sums (32 bits), the second finishes them
    assert g.completes.tolist() == [False, True] * 3
    assert g.out_bits.tolist() == [4 * 4 * 32, 4 * 4 * 8, 4 * 4 * 32, 4 * 4 * 8, 2 * 4 * 32, 2 * 4 * 8]
    assert list(zip(g.edge_src.tolist(), g.edge_dst.tolist(), g.edge_bits.tolist())) == \
        [(0, 1, 4 * 4 * 32), (2, 3, 4 * 4 * 32), (4, 5, 2 * 4 * 32)]
    assert g.to_networkx().number_of_edges() == 3


def _chain_through(views, producer_shape=(4, 6), consumer_shape=(4, 3)):
    def ax(*dims):
        return tuple(AxisExpr(((d, 1),), n) for d, n in dims)

    a = Layer("a", "Relu", ("D", "K"), producer_shape, (DimKind.PARALLEL,) * 2,
              (Operand("O", Role.OUTPUT, ax(("D", producer_shape[0]), ("K", producer_shape[1])), 8),
               Operand("I", Role.ACTIVATION, ax(("D", producer_shape[0]), ("K", producer_shape[1])), 8)))
    b = Layer("b", "Relu", ("D", "K"), consumer_shape, (DimKind.PARALLEL,) * 2,
              (Operand("O", Role.OUTPUT, ax(("D", consumer_shape[0]), ("K", consumer_shape[1])), 8),
               Operand("I", Role.ACTIVATION, ax(("D", consumer_shape[0]), ("K", consumer_shape[1])), 8,
                       sources=(Source("a", views),))))
    w = Workload.from_layers("chain", [a, b])
    plans = {"a": LayerPlan("a", (0,), None, (("K", 3),), ()), "b": LayerPlan("b", (0,), None, (), ())}
    return tile(w, plans, "fused")


def test_slice_of_merged_axes_from_the_start_is_exact():
    # the first 12 of 24 elements are rows 0 and 1: each K-piece holds 2 x 2 of them
    g = _chain_through((Reshape((4, 6), (24,)), Slice(0, 0, 12, 1), Reshape((12,), (4, 3))))
    assert g.edge_bits.tolist() == [2 * 2 * 8] * 3 and not g.notes


def test_slice_past_the_end_is_clamped():
    # K = 6 in three pieces of 2; the slice keeps K 0, 2, 4 (stop beyond the axis, as Python allows)
    g = _chain_through((Slice(1, 0, 99, 2),))
    assert list(zip(g.edge_src.tolist(), g.edge_bits.tolist())) == [(0, 4 * 8), (1, 4 * 8), (2, 4 * 8)]
    assert not g.notes


def test_unsupported_view_chain_is_counted_conservatively_and_noted():
    # an offset slice of axes a reshape merged, reshaped again: not expressible as groups of
    # boxes, so every producer piece counts with its whole output, and a note says so
    g = _chain_through((Reshape((4, 6), (24,)), Slice(0, 4, 16, 1), Reshape((12,), (4, 3))))
    assert g.edge_bits.tolist() == [4 * 2 * 8] * 3
    assert len(g.notes) == 1 and "conservatively" in g.notes[0]


def test_duplicate_tiling_dim_is_an_error(write):
    workload = load_workload(INPUTS / "workloads" / "two_conv.yaml")
    mapping = write("m.yaml", 'version: 1\nlayers:\n  - {name: Conv, intra_core_tiling: ["OY, all", "OY, 4"]}\n')
    with pytest.raises(InputError, match=r"m\.yaml: layers\[0\]\.intra_core_tiling: expected each dim at most once"):
        plan_layers(workload, load_hardware(INPUTS / "hardware" / "single_core.yaml"), load_mapping(mapping))


def test_layer_by_layer_ignores_intra_core_tiling():
    workload = load_workload(INPUTS / "workloads" / "resnet18.yaml")
    plans = plan_layers(workload, load_hardware(INPUTS / "hardware" / "quad_core.yaml"),
                        load_mapping(INPUTS / "mappings" / "quad_core.yaml"))
    g = tile(workload, plans, "layer_by_layer")
    assert g.num_cns == 94 and len(g.groups) == len(workload)
    assert np.array_equal(g.group, g.layer)


def test_inspect_cns_lists_layers_and_groups(capsys):
    code = main(["inspect", str(INPUTS / "workloads" / "two_conv.yaml"), "--cns",
                 "--mapping", str(INPUTS / "mappings" / "quad_core.yaml")])
    out = capsys.readouterr().out
    assert code == 0
    # no hardware: the mapping alone; conv_a and conv_b: 4 K-pieces x 32 rows each
    assert out.splitlines()[0] == "mapping: quad_core.yaml"
    assert out.splitlines()[1].startswith("two_conv (fused): 256 CNs")
    line = next(l for l in out.splitlines() if l.startswith("conv_b"))
    # conv_b rows read 3 conv_a rows (2 at the borders) from each of its 4 pieces
    assert line.split()[2:6] == ["128", "4", "32", f"{(32 * 3 - 2) * 4 * 4:,}"]


def test_a_network_input_two_layers_read_is_one_dram_tensor(tmp_path):
    """x (4 x 8, int8) feeds two MatMuls, as a SwiGLU's input feeds its two up-projections:
    cut by rows into 2 tiles, x is 2 segments of 2 x 8 x 8 = 128 bits that both layers'
    CNs share, so the run fetches 256 bits of it, once, not 512."""
    from onnx import TensorProto, helper

    from stream import api

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["a"], name="up"),
         helper.make_node("MatMul", ["x", "w2"], ["b"], name="gate"),
         helper.make_node("Add", ["a", "b"], ["y"], name="add")], "g",
        [helper.make_tensor_value_info("x", TensorProto.INT8, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [4, 4])],
        [helper.make_tensor(w, TensorProto.INT8, [8, 4], [0] * 32) for w in ("w1", "w2")])
    path = tmp_path / "two_readers.onnx"
    save_graph(graph, path)
    w = load_workload(path)
    assert w.layer("up").operand("I").tensor == w.layer("gate").operand("I").tensor == "x"
    mapping = tmp_path / "rows.yaml"
    mapping.write_text("version: 1\nfusion_groups:\n  - {layers: [up, gate, add]}\nlayers:\n"
                       "  - {name: default, core_allocation: [0], intra_core_tiling: ['D, 2']}\n")
    acc = load_hardware(INPUTS / "hardware" / "single_core.yaml")
    g = tile(w, plan_layers(w, acc, load_mapping(mapping)), "fused")
    x_tensors = {int(i) for cn in range(g.num_cns) if g.layer_of(cn).name in ("up", "gate")
                 for i in g.ext_ids[g.ext_ptr[cn]:g.ext_ptr[cn + 1]] if g.externals[i].role is Role.ACTIVATION}
    assert sorted(g.externals[i].bits for i in x_tensors) == [128, 128]
    run = api.run_detailed(w, acc, load_mapping(mapping), allocator="greedy")
    t = run.trace.transfers
    from stream.simulation.trace import CAUSE

    assert int(t.bits[t.cause == CAUSE["input_fetch"]].sum()) == 256
