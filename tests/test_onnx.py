"""ONNX loader: small hand-checked models built in-test, the peers' files and ours."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import PEERS, needs_peers, save_graph
from stream.errors import InputError, UnsupportedOperatorsError
from stream.workload.ir import AxisExpr, Broadcast, DimKind, Gathered, Place, Reshape, Role, Slice, Source, Transpose
from stream.workload.onnx_loader import load_onnx

ROOT = Path(__file__).resolve().parents[1]
ONE = AxisExpr((), 1)
PAR, RED = DimKind.PARALLEL, DimKind.REDUCTION
mk = helper.make_node


def weight(name, shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def save(tmp_path, nodes, inputs, outputs, inits=(), opset=17, name="model"):
    """Write a model: ``inputs`` is [(name, shape)], ``outputs`` a list of names."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return path


def single(tmp_path, node, inputs, inits=(), opset=17, **kw):
    """Load a one-layer model and return its layer."""
    wl = load_onnx(save(tmp_path, [node], inputs, list(node.output[:1]), inits, opset), **kw)
    assert len(wl) == 1
    return wl.layers[0]


def sizes(layer):
    return dict(zip(layer.dims, layer.sizes))


# -- convolution --------------------------------------------------------------------


def test_conv_strided_padded_dilated(tmp_path):
    node = mk("Conv", ["x", "w", "b"], ["y"], name="conv", strides=[2, 2], pads=[2, 1, 2, 1],
              dilations=[2, 2])
    layer = single(tmp_path, node, [("x", [1, 3, 17, 19])], [weight("w", (8, 3, 3, 3)), weight("b", (8,))],
                   act_bits=4, weight_bits=2, psum_bits=24)
    # OY = (17 + 4 - 2*2 - 1) // 2 + 1 = 9, OX = (19 + 2 - 5) // 2 + 1 = 9
    assert layer.dims == ("B", "K", "C", "OY", "OX", "FY", "FX")
    assert layer.sizes == (1, 8, 3, 9, 9, 3, 3)
    assert layer.kinds == (PAR, PAR, RED, PAR, PAR, RED, RED)
    assert layer.macs == 8 * 3 * 81 * 9 == 17496
    i = layer.operand("I")
    assert i.axes[2] == AxisExpr((("OY", 2), ("FY", 2)), 17, -2)
    assert i.axes[3] == AxisExpr((("OX", 2), ("FX", 2)), 19, -1)
    assert i.role is Role.ACTIVATION and i.sources == () and i.precision == 4
    w = layer.operand("W")
    assert w.role is Role.WEIGHT and w.precision == 2 and w.shape == (8, 3, 3, 3)
    assert layer.output.precision == 4 and layer.output.partial_precision == 24
    # iy = 2*(oy + fy) - 2 with oy + fy in 0..10: 11 distinct rows (padding included).
    assert layer.footprint("I") == 3 * 11 * 11
    assert layer.footprint("W") == 216 and layer.footprint("O") == 8 * 81
    assert i.axes[2].index_range(layer.full_box) == (0, 17)
    assert i.axes[3].index_range({"OX": (0, 1), "FX": (0, 1)}) == (0, 0)  # only padding (ix = -1)
    assert i.axes[3].index_range({"OX": (0, 1), "FX": (0, 3)}) == (0, 4)  # ix = -1, 1, 3
    assert layer.attr("bias") is True
    # the field's 2-D conv node (b, ox, oy, fx, fy, c, k): D2 is the rows, D6 the output channels
    assert layer.aliases == (("D0", "B"), ("D1", "OX"), ("D2", "OY"), ("D3", "FX"), ("D4", "FY"),
                             ("D5", "C"), ("D6", "K"), ("channels", "K"), ("rows", "OY"))


@pytest.mark.parametrize("auto_pad, begin", [("SAME_UPPER", 0), ("SAME_LOWER", 1), ("VALID", 0)])
def test_conv_auto_pad(tmp_path, auto_pad, begin):
    node = mk("Conv", ["x", "w"], ["y"], strides=[2], auto_pad=auto_pad)
    layer = single(tmp_path, node, [("x", [1, 2, 10])], [weight("w", (4, 2, 3))])
    # SAME: OX = 5, total pad = 4*2 + 3 - 10 = 1; VALID: OX = (10 - 3)//2 + 1 = 4
    assert layer.size("OX") == (4 if auto_pad == "VALID" else 5)
    assert layer.operand("I").axes[2] == AxisExpr((("OX", 2), ("FX", 1)), 10, -begin)


def test_conv_1d(tmp_path):
    node = mk("Conv", ["x", "w"], ["y"])
    layer = single(tmp_path, node, [("x", [2, 4, 20])], [weight("w", (5, 4, 3))])
    assert sizes(layer) == {"B": 2, "K": 5, "C": 4, "OX": 18, "FX": 3}
    assert layer.macs == 2 * 5 * 4 * 18 * 3
    assert layer.footprint("I") == 2 * 4 * 20


def test_grouped_conv(tmp_path):
    node = mk("Conv", ["x", "w"], ["y"], group=4)
    layer = single(tmp_path, node, [("x", [1, 8, 6, 6])], [weight("w", (12, 2, 3, 3))])
    assert layer.dims == ("B", "G", "K", "C", "OY", "OX", "FY", "FX")
    assert layer.sizes == (1, 4, 3, 2, 4, 4, 3, 3)
    assert layer.macs == 4 * 3 * 2 * 16 * 9
    assert layer.operand("I").axes[1] == AxisExpr((("G", 2), ("C", 1)), 8)
    assert layer.output.axes[1] == AxisExpr((("G", 3), ("K", 1)), 12)
    assert layer.operand("W").axes[:2] == (AxisExpr((("G", 3), ("K", 1)), 12), AxisExpr((("C", 1),), 2))
    assert layer.footprint("I") == 8 * 36 and layer.footprint("W") == 12 * 2 * 9
    assert layer.footprint("O") == 12 * 16
    # One group touches its own 2 input channels only.
    box = dict(layer.full_box, G=(1, 2))
    assert layer.footprint("I", box) == 2 * 36
    assert layer.operand("I").axes[1].index_range(box) == (2, 4)


def test_depthwise_conv(tmp_path):
    node = mk("Conv", ["x", "w"], ["y"], group=6, pads=[1, 1, 1, 1])
    layer = single(tmp_path, node, [("x", [1, 6, 8, 8])], [weight("w", (6, 1, 3, 3))])
    assert layer.dims == ("B", "G", "OY", "OX", "FY", "FX")
    assert layer.sizes == (1, 6, 8, 8, 3, 3)
    assert layer.macs == 6 * 64 * 9
    assert layer.operand("W").axes[:2] == (AxisExpr((("G", 1),), 6), ONE)
    assert layer.operand("I").axes[1] == AxisExpr((("G", 1),), 6)
    assert layer.footprint("W") == 54 and layer.footprint("O") == 6 * 64


# -- matrix products ----------------------------------------------------------------


def test_gemm_trans_b(tmp_path):
    node = mk("Gemm", ["a", "w", "c"], ["y"], transB=1)
    layer = single(tmp_path, node, [("a", [6, 10])], [weight("w", (7, 10)), weight("c", (7,))])
    assert layer.dims == ("D", "C", "K") and layer.sizes == (6, 10, 7)
    assert layer.kinds == (PAR, RED, PAR)
    assert layer.macs == 420
    assert layer.operand("W").axes == (AxisExpr((("K", 1),), 7), AxisExpr((("C", 1),), 10))
    assert layer.footprint("W") == 70 and layer.footprint("I") == 60 and layer.footprint("O") == 42
    assert layer.aliases == (("D0", "D"), ("D1", "C"), ("D2", "K"), ("channels", "K"), ("rows", "D"))
    assert layer.attr("bias") is True


def test_batched_matmul_missing_batch_axis(tmp_path):
    node = mk("MatMul", ["a", "b"], ["y"])
    layer = single(tmp_path, node, [("a", [2, 3, 5, 4]), ("b", [3, 4, 6])])
    assert layer.dims == ("B", "H", "D", "C", "K") and layer.sizes == (2, 3, 5, 4, 6)
    assert layer.macs == 2 * 3 * 5 * 4 * 6
    assert layer.operand("W").dims == {"H", "C", "K"} and len(layer.operand("W").axes) == 3
    assert layer.operand("W").role is Role.ACTIVATION and layer.operand("W").precision == 8
    assert layer.relevance("W")["B"] == "ir"


def test_batched_matmul_broadcast_size1(tmp_path):
    node = mk("MatMul", ["a", "b"], ["y"])
    layer = single(tmp_path, node, [("a", [2, 1, 5, 4]), ("b", [1, 3, 4, 6])])
    assert sizes(layer) == {"B": 2, "H": 3, "D": 5, "C": 4, "K": 6}
    assert layer.operand("I").axes[1] == ONE and layer.operand("W").axes[0] == ONE
    assert layer.footprint("I") == 2 * 5 * 4 and layer.footprint("O") == 2 * 3 * 5 * 6


# -- pooling --------------------------------------------------------------------------


def test_maxpool(tmp_path):
    node = mk("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    layer = single(tmp_path, node, [("x", [1, 4, 8, 8])])
    assert layer.dims == ("B", "C", "OY", "OX", "FY", "FX")
    assert layer.sizes == (1, 4, 4, 4, 3, 3)
    assert [op.name for op in layer.operands] == ["O", "I"]
    assert layer.operand("I").axes[2] == AxisExpr((("OY", 2), ("FY", 1)), 8, -1)
    assert layer.kind("FY") is RED and layer.kind("C") is PAR


def test_average_pool_ceil_mode(tmp_path):
    node = mk("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    layer = single(tmp_path, node, [("x", [1, 2, 9, 9])])
    assert sizes(layer)["OY"] == 5 and sizes(layer)["OX"] == 5  # floor mode would give 4


def test_global_average_pool(tmp_path):
    layer = single(tmp_path, mk("GlobalAveragePool", ["x"], ["y"]), [("x", [1, 16, 5, 7])])
    assert layer.dims == ("B", "C", "FY", "FX") and layer.sizes == (1, 16, 5, 7)
    assert layer.kinds == (PAR, PAR, RED, RED)
    assert layer.output.axes[2:] == (ONE, ONE) and layer.output.shape == (1, 16, 1, 1)
    assert layer.output.partial_precision == 16


# -- elementwise, normalisation, reductions --------------------------------------------


def test_broadcast_add(tmp_path):
    layer = single(tmp_path, mk("Add", ["a", "b"], ["y"]), [("a", [2, 3, 4, 5]), ("b", [3, 1, 5])])
    assert layer.dims == ("B", "C", "OY", "OX") and set(layer.kinds) == {PAR}
    assert layer.operand("W").axes == (AxisExpr((("C", 1),), 3), ONE, AxisExpr((("OX", 1),), 5))
    assert layer.footprint("W") == 15 and layer.macs == 120
    assert layer.output.partial_precision is None


def test_add_of_constant_scalar(tmp_path):
    layer = single(tmp_path, mk("Mul", ["a", "s"], ["y"]), [("a", [4, 6])],
                   [numpy_helper.from_array(np.array(0.5, dtype=np.float32), "s")], weight_bits=3)
    assert layer.dims == ("D", "K")
    assert layer.operand("W").axes == () and layer.operand("W").role is Role.WEIGHT
    assert layer.operand("W").precision == 3


def test_softmax_axis(tmp_path):
    layer = single(tmp_path, mk("Softmax", ["x"], ["y"], axis=1), [("x", [2, 8, 16])])
    assert layer.dims == ("B", "D", "K") and layer.attr("axis") == "D"
    layer = single(tmp_path, mk("LogSoftmax", ["x"], ["y"]), [("x", [8, 16])])
    assert layer.attr("axis") == "K" and layer.op_type == "LogSoftmax"


def test_layer_norm_and_batch_norm(tmp_path):
    node = mk("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)
    layer = single(tmp_path, node, [("x", [1, 10, 32])], [weight("g", (32,)), weight("b", (32,))])
    assert layer.attr("axis") == "K"
    assert layer.operand("W").axes == (AxisExpr((("K", 1),), 32),)
    node = mk("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    inits = [weight(n, (6,)) for n in "sbmv"]
    layer = single(tmp_path, node, [("x", [1, 6, 4, 4])], inits)
    assert layer.operand("W").axes == (AxisExpr((("C", 1),), 6),) and layer.operand("W").role is Role.WEIGHT


def test_reduce_mean_attribute_axes(tmp_path):
    node = mk("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=1)
    layer = single(tmp_path, node, [("x", [2, 8, 16, 4])])
    assert layer.dims == ("B", "C", "R0", "R1") and layer.kinds == (PAR, PAR, RED, RED)
    assert layer.output.axes[2:] == (ONE, ONE) and layer.output.shape == (2, 8, 1, 1)
    assert layer.macs == 2 * 8 * 16 * 4 and layer.output.partial_precision == 16


def test_reduce_sum_input_axes_no_keepdims(tmp_path):
    node = mk("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    layer = single(tmp_path, node, [("x", [3, 5, 7])], [ints("axes", [-1])], opset=18)
    assert layer.dims == ("B", "D", "R0") and layer.sizes == (3, 5, 7)
    assert layer.output.shape == (3, 5)


# -- views ----------------------------------------------------------------------------


def test_flatten_feeds_gemm_through_reshape(tmp_path):
    nodes = [
        mk("GlobalAveragePool", ["x"], ["p"], name="gap"),
        mk("Flatten", ["p"], ["f"], name="flat"),
        mk("Gemm", ["f", "w"], ["y"], name="fc", transB=1),
    ]
    wl = load_onnx(save(tmp_path, nodes, [("x", [1, 8, 3, 3])], ["y"], [weight("w", (10, 8))]))
    assert [l.name for l in wl.layers] == ["gap", "fc"]
    fc = wl.layer("fc")
    assert fc.operand("I").sources == (Source("gap", (Reshape((1, 8, 1, 1), (1, 8)),)),)
    assert wl.predecessors("fc") == ["gap"]


def test_concat_gives_one_source_per_input(tmp_path):
    nodes = [
        mk("Conv", ["x", "w1"], ["a"], name="c1"),
        mk("Conv", ["x", "w2"], ["b"], name="c2"),
        mk("Concat", ["a", "b"], ["cat"], axis=1),
        mk("Relu", ["cat"], ["y"], name="relu"),
    ]
    inits = [weight("w1", (4, 3, 1, 1)), weight("w2", (8, 3, 1, 1))]
    wl = load_onnx(save(tmp_path, nodes, [("x", [1, 3, 5, 5])], ["y"], inits))
    assert len(wl) == 3
    assert wl.layer("relu").operand("I").sources == (
        Source("c1", (Place(1, 0, 12),)), Source("c2", (Place(1, 4, 12),)),
    )


def test_split_and_slice(tmp_path):
    nodes = [
        mk("Conv", ["x", "w"], ["c"], name="conv"),
        mk("Split", ["c", "parts"], ["s0", "s1"], axis=1),
        mk("Relu", ["s0"], ["r0"], name="r0"),
        mk("Relu", ["s1"], ["r1"], name="r1"),
        mk("Slice", ["c", "starts", "ends", "axes", "steps"], ["sl"]),
        mk("Relu", ["sl"], ["r2"], name="r2"),
    ]
    inits = [
        weight("w", (8, 3, 1, 1)), ints("parts", [3, 5]),
        ints("starts", [1, -4]), ints("ends", [9, 2**62]), ints("axes", [2, 3]), ints("steps", [2, 1]),
    ]
    wl = load_onnx(save(tmp_path, nodes, [("x", [1, 3, 10, 10])], ["r0", "r1", "r2"], inits))
    assert wl.layer("r0").operand("I").sources == (Source("conv", (Slice(1, 0, 3, 1),)),)
    assert wl.layer("r1").operand("I").sources == (Source("conv", (Slice(1, 3, 8, 1),)),)
    assert wl.layer("r2").operand("I").sources == (Source("conv", (Slice(2, 1, 9, 2), Slice(3, 6, 10, 1))),)
    assert wl.layer("r2").output.shape == (1, 8, 4, 4)


def test_shape_subgraph_and_constant_views(tmp_path):
    """Shape/Gather/Concat feeding a Reshape make no layers; a transposed weight stays a weight;
    a view of a graph input reads from DRAM."""
    nodes = [
        mk("Relu", ["x"], ["r"], name="relu"),
        mk("Shape", ["r"], ["shape"]),
        mk("Gather", ["shape", "zero"], ["batch"], axis=0),
        mk("Unsqueeze", ["batch", "zero1"], ["batch1"]),
        mk("Concat", ["batch1", "minus1"], ["target"], axis=0),
        mk("Reshape", ["r", "target"], ["flat"]),
        mk("Transpose", ["wt"], ["w"], perm=[1, 0]),
        mk("MatMul", ["flat", "w"], ["y"], name="mm"),
        mk("Reshape", ["x", "target"], ["xflat"]),
        mk("MatMul", ["xflat", "w"], ["y2"], name="mm2"),
    ]
    inits = [ints("zero", 0), ints("zero1", [0]), ints("minus1", [-1]), weight("wt", (5, 24))]
    wl = load_onnx(save(tmp_path, nodes, [("x", [2, 4, 6])], ["y", "y2"], inits))
    assert [l.name for l in wl.layers] == ["relu", "mm", "mm2"]
    mm = wl.layer("mm")
    assert mm.operand("I").sources == (Source("relu", (Reshape((2, 4, 6), (2, 24)),)),)
    assert mm.operand("W").role is Role.WEIGHT and mm.operand("W").sources == ()
    assert sizes(mm) == {"D": 2, "C": 24, "K": 5}
    assert wl.layer("mm2").operand("I").sources == ()
    assert wl.layer("mm2").operand("I").role is Role.ACTIVATION


# -- naming, domains, symbolic dims, errors ----------------------------------------------


def test_names_custom_domain_and_symbolic_batch(tmp_path):
    nodes = [
        mk("Relu", ["x"], ["a"], name="dup"),
        mk("Silu", ["a"], ["b"], name="dup", domain="com.example"),
        mk("Sigmoid", ["b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    path = tmp_path / "my_net.onnx"
    onnx.save(model, path)
    # a symbolic dim is sized by name, never guessed
    with pytest.raises(InputError, match=r"my_net\.onnx: graph\.input: expected a size for every symbolic dim "
                                         r"\(--dim NAME=VALUE, dims= in the API\), got \"'N' \(x axis 0\)\""):
        load_onnx(path)
    with pytest.raises(InputError, match=r"graph\.input: expected --dim names among the model's symbolic dims \['N'\]"):
        load_onnx(path, dims={"N": 2, "seq": 4})
    wl = load_onnx(path, dims={"N": 3})
    assert wl.name == "my_net" and wl.source_file == str(path)
    assert [(l.name, l.op_type) for l in wl.layers] == [("dup", "Relu"), ("dup_1", "Silu"), ("Sigmoid_2", "Sigmoid")]
    assert all(l.sizes == (3, 4) for l in wl.layers)
    assert len(wl.warnings) == 1 and "float32 tensors priced as 8-bit" in wl.warnings[0]


def test_all_unsupported_nodes_reported_at_once(tmp_path):
    nodes = [
        mk("NonMaxSuppression", ["boxes", "scores"], ["sel"], name="nms"),
        mk("TopK", ["x", "k"], ["vals", "idx"], name="topk", axis=-1),
        mk("Relu", ["vals"], ["y"], name="relu"),
    ]
    path = save(tmp_path, nodes, [("boxes", [1, 10, 4]), ("scores", [1, 1, 10]), ("x", [2, 16])],
                ["y"], [ints("k", [3])])
    with pytest.raises(UnsupportedOperatorsError) as err:
        load_onnx(path)
    assert err.value.nodes == [("nms", "NonMaxSuppression"), ("topk", "TopK")]
    assert str(path) in str(err.value) and "nms" in str(err.value) and "topk" in str(err.value)


def test_a_node_of_a_form_we_lack_is_reported_behind_an_unsupported_one(tmp_path):
    """TopK, then a BatchNormalization of a vector (a form the loader lacks): both in one
    error, though the second sits downstream of the first; the Relu between is fine."""
    nodes = [
        mk("TopK", ["x", "k"], ["vals", "idx"], name="topk", axis=-1),
        mk("Reshape", ["vals", "flat"], ["v"], name="flatten"),
        mk("Relu", ["v"], ["r"], name="relu"),
        mk("BatchNormalization", ["r", "s", "b", "m", "var"], ["y"], name="norm"),
    ]
    path = save(tmp_path, nodes, [("x", [2, 16])], ["y"],
                [ints("k", [3]), ints("flat", [6])] + [weight(n, [6]) for n in ("s", "b", "m", "var")])
    with pytest.raises(UnsupportedOperatorsError) as err:
        load_onnx(path)
    assert err.value.nodes == [("topk", "TopK"), ("norm", "BatchNormalization")]


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x00\xffthis is not an onnx model\x13\x37" * 10)
    with pytest.raises(InputError, match="garbage.onnx"):
        load_onnx(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.onnx"):
        load_onnx(empty)
    with pytest.raises(InputError, match="absent.onnx"):
        load_onnx(tmp_path / "absent.onnx")


# -- the peers' files and ours -----------------------------------------------------------


def _peer_files():
    files = sorted(PEERS.glob("*/workload/*.onnx"))
    if not files:
        pytest.fail(f"no peer ONNX files under {PEERS}")
    return files


@needs_peers
def test_every_peer_onnx_file_loads():
    names = set()
    for path in _peer_files():
        wl = load_onnx(path)
        assert len(wl) > 0 and wl.macs > 0, path
        names.add(path.name)
        for layer in wl.layers:
            assert [op.name for op in layer.operands][:2] == ["O", "I"], (path, layer.name)
    for expected in ("resnet18.onnx", "fsrcnn.onnx", "attention_head.onnx", "swiglu_1_16_32.onnx",
                     "swiglu_64_128_256.onnx", "2conv_1_8_32_32_16_32_3.onnx"):
        assert expected in names


@needs_peers
def test_resnet18():
    wl = load_onnx(PEERS / "classic-2025" / "workload" / "resnet18.onnx")
    counts = Counter(l.op_type for l in wl.layers)
    assert counts == {"Conv": 20, "Relu": 17, "MaxPool": 1, "Add": 8, "GlobalAveragePool": 1, "Gemm": 1}
    assert len(wl) == 48
    macs = sum(l.macs for l in wl.layers if l.op_type in ("Conv", "Gemm"))
    assert macs == 1_814_073_344
    fc = wl.layers[-1]
    assert fc.op_type == "Gemm" and fc.operand("W").role is Role.WEIGHT
    (src,) = fc.operand("I").sources
    assert src.layer == "/avgpool/GlobalAveragePool" and src.views == (Reshape((1, 512, 1, 1), (1, 512)),)
    conv1 = wl.layers[0]
    assert sizes(conv1) == {"B": 1, "K": 64, "C": 3, "OY": 112, "OX": 112, "FY": 7, "FX": 7}
    assert conv1.operand("I").axes[2] == AxisExpr((("OY", 2), ("FY", 1)), 224, -3)
    adds = [l for l in wl.layers if l.op_type == "Add"]
    assert all(len(wl.predecessors(a.name)) == 2 for a in adds)


@needs_peers
def test_peer_attention_head_and_custom_silu():
    wl = load_onnx(PEERS / "2026" / "workload" / "attention_head.onnx")
    qk = [l for l in wl.layers if l.op_type == "MatMul" and sizes(l) == {"D": 128, "C": 64, "K": 128}]
    (qk,) = qk
    (src,) = qk.operand("W").sources
    assert src.views == (Transpose((1, 0)),)
    wl = load_onnx(PEERS / "2026" / "workload" / "swiglu_64_128_256.onnx")
    assert Counter(l.op_type for l in wl.layers) == {"Gemm": 3, "Silu": 1, "Mul": 1}
    assert sizes(wl.layer("Silu")) == {"D": 64, "K": 256}


def test_bundled_workloads():
    swiglu = load_onnx(ROOT / "inputs" / "workloads" / "swiglu.onnx")
    assert Counter(l.op_type for l in swiglu.layers) == {"MatMul": 3, "Sigmoid": 1, "Mul": 2}
    assert sum(l.macs for l in swiglu.layers if l.op_type == "MatMul") == 3 * 64 * 512 * 1376
    block = load_onnx(ROOT / "inputs" / "workloads" / "transformer_block.onnx")
    counts = Counter(l.op_type for l in block.layers)
    assert counts == {"MatMul": 8, "LayerNormalization": 2, "Mul": 1, "Softmax": 1, "Add": 2, "Gelu": 1}
    assert len(block) == 15 and len(block.warnings) == 1 and "float32 tensors priced as 8-bit" in block.warnings[0]
    qk = block.layer("qk")
    assert sizes(qk) == {"B": 4, "D": 128, "C": 64, "K": 128}
    assert qk.operand("I").sources == (
        Source("q_proj", (Reshape((128, 256), (128, 4, 64)), Transpose((1, 0, 2)))),
    )
    assert qk.operand("W").role is Role.ACTIVATION
    assert block.layer("scale").operand("W").role is Role.WEIGHT


def test_bundled_files_are_reproducible(tmp_path):
    import runpy

    script = runpy.run_path(str(ROOT / "scripts" / "make_onnx_workloads.py"))
    script["main"](["make", str(tmp_path)])
    for name in ("swiglu.onnx", "transformer_block.onnx"):
        assert (tmp_path / name).read_bytes() == (ROOT / "inputs" / "workloads" / name).read_bytes()
        model = onnx.load(tmp_path / name, load_external_data=False)
        assert any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer)


@pytest.mark.parametrize("elem_type, bits, psum, noted", [
    (TensorProto.FLOAT, 8, 16, True),  # a float32 export: the defaults, said in a warning
    (TensorProto.BFLOAT16, 16, 16, False),
    (TensorProto.FLOAT16, 16, 16, False),
    (TensorProto.INT8, 8, 16, False),
])
def test_element_type_sets_the_width(tmp_path, elem_type, bits, psum, noted):
    """A narrow element type is the accelerator's number format and is priced at its width
    (the field's 2026 tool does the same); float32 says nothing about it and takes the
    loader's defaults, with one warning naming the type."""
    weight = helper.make_tensor("w", elem_type, [4, 8], [0] * 32)
    graph = helper.make_graph(
        [mk("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", elem_type, [2, 4])],
        [helper.make_tensor_value_info("y", elem_type, [2, 8])], [weight])
    path = tmp_path / "mm.onnx"
    save_graph(graph, path)
    wl = load_onnx(path)
    layer = wl.layer("mm")
    assert [(op.name, op.precision) for op in layer.operands] == [("O", bits), ("I", bits), ("W", bits)]
    assert layer.output.partial_precision == psum
    # 2 x 8 outputs, 4 x 8 weights, 2 x 4 inputs, in bits
    assert layer.footprint_bits("W", {d: (0, n) for d, n in zip(layer.dims, layer.sizes)}) == 32 * bits
    assert [w for w in wl.warnings if "priced as" in w] == (
        [f"{path}: float32 tensors priced as 8-bit activations and 8-bit weights with 16-bit partial sums "
         "(a float32 export says nothing about the accelerator's number format; int8, fp16 and bf16 "
         "tensors keep their width)"] if noted else [])


# -- what PyTorch's exporters write: lookups, selects, pixel shuffles, masks --------------


def test_an_embedding_reads_only_the_rows_it_selects(tmp_path):
    """Gather of a 1000 x 128 table by 64 computed token ids: a lookup layer over
    (B 1, D 64, K 128) that reads 64 rows of the table, 64 x 128 x 8 bits, not the table's
    1000 rows, and its ids elementwise."""
    graph = helper.make_graph(
        [mk("Gather", ["table", "ids"], ["e"], name="embed", axis=0)], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 64])],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 64, 128])], [weight("table", [1000, 128])])
    path = tmp_path / "embed.onnx"
    save_graph(graph, path)
    layer = load_onnx(path).layer("embed")
    assert layer.op_type == "Gather" and sizes(layer) == {"B": 1, "D": 64, "K": 128} and layer.macs == 64 * 128
    box = {d: (0, n) for d, n in zip(layer.dims, layer.sizes)}
    assert layer.operand("W").role is Role.WEIGHT and layer.footprint_bits("W", box) == 64 * 128 * 8
    assert layer.operand("I").role is Role.ACTIVATION and layer.footprint_bits("I", box) == 64 * 8
    half = dict(box, D=(0, 32))  # half the tokens: half the rows
    assert layer.footprint_bits("W", half) == 32 * 128 * 8


def test_a_select_by_a_constant_index_is_a_view(tmp_path):
    """Gather of index 1 along axis 0 of a (3, 4, 5) layer output (a ``select``, as the
    dynamo exporter writes q, k, v = qkv[0], qkv[1], qkv[2]): no layer, a slice of row 1
    reshaped to (4, 5)."""
    path = save(tmp_path, [mk("Relu", ["x"], ["r"], name="r"),
                           mk("Gather", ["r", "one"], ["s"], name="sel", axis=0),
                           mk("Relu", ["s"], ["y"], name="y")],
                [("x", [3, 4, 5])], ["y"], [numpy_helper.from_array(np.array(1, dtype=np.int64), "one")])
    wl = load_onnx(path)
    assert [l.name for l in wl.layers] == ["r", "y"]
    assert wl.layer("y").operand("I").sources == (Source("r", (Slice(0, 1, 2, 1), Reshape((1, 4, 5), (4, 5)))),)


def test_depth_to_space_is_a_view(tmp_path):
    """ESPCN's pixel shuffle, DepthToSpace (blocksize 3, DCR) of (1, 9, 4, 4) into
    (1, 1, 12, 12): the operator's own reshape, transpose and reshape, no layer."""
    path = save(tmp_path, [mk("Relu", ["x"], ["r"], name="r"),
                           mk("DepthToSpace", ["r"], ["d"], name="shuffle", blocksize=3),
                           mk("Relu", ["d"], ["y"], name="y")], [("x", [1, 9, 4, 4])], ["y"])
    wl = load_onnx(path)
    assert [l.name for l in wl.layers] == ["r", "y"] and sizes(wl.layer("y")) == {"B": 1, "C": 1, "OY": 12, "OX": 12}
    assert wl.layer("y").operand("I").sources == (Source("r", (
        Reshape((1, 9, 4, 4), (1, 3, 3, 1, 4, 4)), Transpose((0, 3, 4, 1, 5, 2)),
        Reshape((1, 1, 4, 3, 4, 3), (1, 1, 12, 12)))),)


def test_nan_guards_and_masks_are_elementwise(tmp_path):
    """The guard torch puts after an attention softmax, Where(IsNaN(p), 0, p): two
    elementwise layers, Where reading all three of its inputs."""
    path = save(tmp_path, [mk("Softmax", ["x"], ["p"], name="p", axis=-1),
                           mk("IsNaN", ["p"], ["nan"], name="nan"),
                           mk("Where", ["nan", "zero", "p"], ["y"], name="guard")],
                [("x", [4, 8])], ["y"], [weight("zero", [1])])
    wl = load_onnx(path)
    assert [(l.name, l.op_type) for l in wl.layers] == [("p", "Softmax"), ("nan", "IsNaN"), ("guard", "Where")]
    guard = wl.layer("guard")
    assert [op.name for op in guard.inputs] == ["I", "W", "W2"] and sizes(guard) == {"D": 4, "K": 8}
    assert guard.operand("I").sources == (Source("nan"),) and guard.operand("W2").sources == (Source("p"),)


def test_an_axis_of_unknown_size_is_an_error_not_a_guess(tmp_path):
    """A reshape to a shape that is a graph input: its output's size is known only at run
    time. The loader names the tensor; it does not put 1 in its place."""
    graph = helper.make_graph(
        [mk("Reshape", ["x", "shape"], ["r"], name="reshape"), mk("Relu", ["r"], ["y"], name="y")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 6]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "runtime_shape.onnx"
    save_graph(graph, path)
    with pytest.raises(InputError, match=r"runtime_shape\.onnx: tensor r: expected axes of known size after shape "
                                         r"inference and constant folding, got 'axis 0 of unknown size'"):
        load_onnx(path)


def test_shape_arithmetic_is_folded_at_load_time(tmp_path):
    """Where(Equal(s, -1), 1, s) on a Shape: the pattern the classic exporter writes before
    an Expand, which ONNX's own inference does not follow. Folded, the Expand's output is
    (4, 6), and the Relu after it is sized."""
    nodes = [mk("Relu", ["x"], ["a"], name="a"), mk("Shape", ["x2"], ["s"]),
             mk("Equal", ["s", "minus_one"], ["eq"]), mk("Where", ["eq", "ones", "s"], ["target"]),
             mk("Expand", ["a", "target"], ["e"], name="expand"), mk("Relu", ["e"], ["y"], name="y")]
    path = save(tmp_path, nodes, [("x", [1, 6]), ("x2", [4, 6])], ["y"],
                [ints("minus_one", [-1, -1]), ints("ones", [1, 1])])
    wl = load_onnx(path)
    assert sizes(wl.layer("y")) == {"D": 4, "K": 6}
    assert wl.layer("y").operand("I").sources == (Source("a", (Broadcast(0, 4),)),)


def test_a_broadcast_is_read_once_per_element(tmp_path):
    """Expand of (1, 2, 1, 4) to (1, 2, 2, 4), then (1, 4, 4): grouped-query attention's
    repeat of 2 key heads for 4 query heads. The consumer reads 32 values but only the
    producer's 8 distinct elements move: 8 x 8 = 64 bits, counted exactly."""
    from stream.hardware import load_hardware
    from stream.mapping import plan_layers
    from stream.tiling import tile

    nodes = [mk("Relu", ["x"], ["k"], name="k"), mk("Expand", ["k", "to"], ["e"]),
             mk("Reshape", ["e", "shape"], ["r"]), mk("Relu", ["r"], ["y"], name="y")]
    path = save(tmp_path, nodes, [("x", [1, 2, 1, 4])], ["y"], [ints("to", [1, 2, 2, 4]), ints("shape", [1, 4, 4])])
    wl = load_onnx(path)
    assert wl.layer("y").operand("I").sources == (Source("k", (Broadcast(2, 2), Reshape((1, 2, 2, 4), (1, 4, 4)))),)
    g = tile(wl, plan_layers(wl, load_hardware(ROOT / "inputs" / "hardware" / "single_core.yaml")), "layer_by_layer")
    assert g.num_edges == 1 and int(g.edge_bits[0]) == 8 * 8 and not g.notes


def test_every_tile_along_a_broadcast_axis_reads_the_element_it_repeats(tmp_path):
    """The expanded (1, 2, 2, 4) read directly, cut into its 2 rows along the broadcast
    axis: each row tile reads all 8 elements of k (64 bits), the second as much as the
    first."""
    from stream.hardware import load_hardware
    from stream.mapping import load_mapping, plan_layers
    from stream.tiling import tile

    nodes = [mk("Relu", ["x"], ["k"], name="k"), mk("Expand", ["k", "to"], ["e"]), mk("Relu", ["e"], ["y"], name="y")]
    path = save(tmp_path, nodes, [("x", [1, 2, 1, 4])], ["y"], [ints("to", [1, 2, 2, 4])])
    wl = load_onnx(path)
    mapping = tmp_path / "rows.yaml"
    mapping.write_text("version: 1\nlayers:\n  - {name: y, core_allocation: [0], intra_core_tiling: ['OY, 2']}\n")
    acc = load_hardware(ROOT / "inputs" / "hardware" / "single_core.yaml")
    g = tile(wl, plan_layers(wl, acc, load_mapping(mapping)), "fused")
    assert sorted(int(b) for b in g.edge_bits) == [64, 64]


def test_a_gather_by_computed_indices_depends_on_all_of_its_source(tmp_path):
    """GatherElements of a layer's output by constant positions: a lookup layer reading one
    element per output element, and, since which ones is a run-time matter, depending on
    the whole source."""
    nodes = [mk("Relu", ["x"], ["a"], name="a"), mk("GatherElements", ["a", "pos"], ["g"], name="pick", axis=1),
             mk("Relu", ["g"], ["y"], name="y")]
    path = save(tmp_path, nodes, [("x", [2, 16])], ["y"], [ints("pos", [[0, 3, 5], [1, 1, 2]])])
    wl = load_onnx(path)
    pick = wl.layer("pick")
    assert pick.op_type == "GatherElements" and sizes(pick) == {"D": 2, "K": 3}
    assert pick.operand("W").sources == (Source("a", (Gathered((2, 3)),)),)
    assert pick.operand("I").role is Role.WEIGHT  # constant positions, read from DRAM


def test_a_transposed_conv_is_summed_over_its_inputs(tmp_path):
    """ConvTranspose (4 -> 2 channels, 3x3, stride 2, pads 1, output_padding 1) of a 5x5
    map: a layer over (B, K, C, IY, IX, FY, FX) = (1, 2, 4, 5, 5, 3, 3), 1,800 MACs as
    PyTorch counts them, writing output row 2*iy + fy - 1 of 10."""
    path = save(tmp_path, [mk("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2], pads=[1, 1, 1, 1],
                              output_padding=[1, 1])], [("x", [1, 4, 5, 5])], ["y"], [weight("w", [4, 2, 3, 3])])
    layer = load_onnx(path).layer("up")
    assert sizes(layer) == {"B": 1, "K": 2, "C": 4, "IY": 5, "IX": 5, "FY": 3, "FX": 3} and layer.macs == 1800
    assert layer.output.axes[2] == AxisExpr((("IY", 2), ("FY", 1)), 10, -1)
    assert layer.resolve_dim("rows") == "IY" and layer.resolve_dim("channels") == "K"


def test_an_upsampling_transposed_conv_has_exact_dependencies(tmp_path):
    """U-Net's 2x2, stride-2 ConvTranspose writes each output row from one input row
    (oy = 2*iy + fy): cut both layers by rows, each of the Relu's 8 rows depends on one
    of the 4 deconv tiles only, for its 3 channels x 8 columns x 8 bits = 192 bits."""
    from stream.hardware import load_hardware
    from stream.mapping import load_mapping, plan_layers
    from stream.tiling import tile

    graph = helper.make_graph(
        [mk("ConvTranspose", ["x", "w"], ["u"], name="up", strides=[2, 2]), mk("Relu", ["u"], ["y"], name="relu")],
        "g", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 3, 8, 8])],
        [helper.make_tensor("w", TensorProto.INT8, [2, 3, 2, 2], [0] * 24)])
    path = tmp_path / "up.onnx"
    save_graph(graph, path)
    wl = load_onnx(path)
    mapping = tmp_path / "rows.yaml"
    mapping.write_text("version: 1\nfusion_groups:\n  - {layers: [up, relu]}\nlayers:\n"
                       "  - {name: default, core_allocation: [0], intra_core_tiling: ['rows, all']}\n")
    acc = load_hardware(ROOT / "inputs" / "hardware" / "single_core.yaml")
    g = tile(wl, plan_layers(wl, acc, load_mapping(mapping)), "fused")
    up = [c for c in range(g.num_cns) if g.layer_of(c).name == "up"]
    relu = [c for c in range(g.num_cns) if g.layer_of(c).name == "relu"]
    assert len(up) == 4 and len(relu) == 8 and not g.notes
    pairs = sorted((int(s) - up[0], int(d) - relu[0], int(b)) for s, d, b in zip(g.edge_src, g.edge_dst, g.edge_bits))
    assert pairs == [(r // 2, r, 192) for r in range(8)]


def _resize_model(tmp_path, mode):
    graph = helper.make_graph(
        [mk("Relu", ["x"], ["r"], name="relu"),
         mk("Resize", ["r", "", "scales"], ["y"], name="up", mode=mode, coordinate_transformation_mode="half_pixel")],
        "g", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 1, 8, 8])],
        [numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")])
    path = tmp_path / f"{mode}.onnx"
    save_graph(graph, path)
    return load_onnx(path)


def test_bilinear_upsampling_reads_the_two_rows_it_blends(tmp_path):
    """Resize x2, linear, half-pixel: output row j blends input rows floor((j + 0.5)/2 -
    0.5) and the next, read as rows j - 1 + 2*fy (fy = 0, 1) of the input repeated twice;
    2 x 2 taps per output element: 256 operations. Cut by rows, row 0 needs input row 0,
    rows 1-2 rows 0-1, rows 3-4 rows 1-2, rows 5-6 rows 2-3, row 7 row 3: each a row of 4
    values, 32 bits, however many copies of it the repeat makes."""
    from stream.hardware import load_hardware
    from stream.mapping import load_mapping, plan_layers
    from stream.tiling import tile

    wl = _resize_model(tmp_path, "linear")
    up = wl.layer("up")
    assert up.op_type == "Resize" and sizes(up) == {"B": 1, "C": 1, "OY": 8, "OX": 8, "FY": 2, "FX": 2}
    assert up.macs == 256 and up.operand("I").axes[2] == AxisExpr((("OY", 1), ("FY", 2)), 8, -1)
    mapping = tmp_path / "rows.yaml"
    mapping.write_text("version: 1\nfusion_groups:\n  - {layers: [relu, up]}\nlayers:\n"
                       "  - {name: default, core_allocation: [0], intra_core_tiling: ['rows, all']}\n")
    acc = load_hardware(ROOT / "inputs" / "hardware" / "single_core.yaml")
    g = tile(wl, plan_layers(wl, acc, load_mapping(mapping)), "fused")
    assert not g.notes
    relu = [c for c in range(g.num_cns) if g.layer_of(c).name == "relu"]
    resized = [c for c in range(g.num_cns) if g.layer_of(c).name == "up"]
    needs = {j: sorted(int(s) - relu[0] for s, d in zip(g.edge_src, g.edge_dst) if d == resized[j]) for j in range(8)}
    assert needs == {0: [0], 1: [0, 1], 2: [0, 1], 3: [1, 2], 4: [1, 2], 5: [2, 3], 6: [2, 3], 7: [3]}
    assert set(int(b) for b in g.edge_bits) == {32}


def test_nearest_upsampling_is_a_view(tmp_path):
    """Resize x2, nearest: each value repeated twice along each axis, no layer."""
    wl = _resize_model(tmp_path, "nearest")
    assert [l.name for l in wl.layers] == ["relu"]


def _erf_gelu(extra_reader: bool):
    nodes = [mk("Relu", ["x"], ["h"], name="h"),
             mk("Div", ["h", "sqrt2"], ["d"], name="act/Div"), mk("Erf", ["d"], ["e"], name="act/Erf"),
             mk("Add", ["e", "one"], ["a"], name="act/Add"), mk("Mul", ["h", "a"], ["m"], name="act/Mul"),
             mk("Mul", ["m", "half"], ["y"], name="act/Mul_1")]
    if extra_reader:
        nodes.append(mk("Relu", ["e"], ["z"], name="z"))
    inits = [numpy_helper.from_array(np.array(v, dtype=np.float32), n)
             for n, v in (("sqrt2", 1.4142135), ("one", 1.0), ("half", 0.5))]
    return nodes, inits


def test_the_erf_form_of_gelu_is_one_layer(tmp_path):
    """x * (1 + erf(x / sqrt 2)) * 0.5, as the classic exporter writes GELU at opset 17
    (Div, Erf, Add, Mul, Mul): one Gelu layer reading x, named after its scope; with a
    second reader of erf's output it stays five layers."""
    nodes, inits = _erf_gelu(extra_reader=False)
    wl = load_onnx(save(tmp_path, nodes, [("x", [4, 8])], ["y"], inits, name="fused"))
    assert [(l.name, l.op_type) for l in wl.layers] == [("h", "Relu"), ("act/Gelu", "Gelu")]
    assert wl.layer("act/Gelu").operand("I").sources == (Source("h"),)
    nodes, inits = _erf_gelu(extra_reader=True)
    wl = load_onnx(save(tmp_path, nodes, [("x", [4, 8])], ["y", "z"], inits, name="shared"))
    assert [l.op_type for l in wl.layers] == ["Relu", "Div", "Erf", "Add", "Mul", "Mul", "Relu"]


@pytest.mark.parametrize("attrs, crop", [
    ({"auto_pad": "SAME_UPPER"}, 0),  # total 2*4 + 3 - 10 = 1 cropped: the odd one at the end
    ({"auto_pad": "SAME_LOWER"}, 1),  # ... at the start
    ({"output_shape": [10, 10]}, 1),  # pads derived as for SAME_LOWER (ONNX's ConvTranspose)
    ({"pads": [1, 1, 1, 1], "output_padding": [1, 1]}, 1),  # 8 + 3 - 2 + 1 = 10
])
def test_a_transposed_conv_crops_its_output_as_onnx_says(tmp_path, attrs, crop):
    """A 5x5 input, 3x3 kernel, stride 2, into a 10x10 output: output row 2*iy + fy - crop."""
    path = save(tmp_path, [mk("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2], **attrs)],
                [("x", [1, 4, 5, 5])], ["y"], [weight("w", [4, 2, 3, 3])])
    layer = load_onnx(path).layer("up")
    assert layer.output.axes[2] == AxisExpr((("IY", 2), ("FY", 1)), 10, -crop)
