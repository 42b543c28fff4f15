"""A Mamba block as an ONNX model, the selective scan as the custom op ``stream::SelectiveScan``.

:func:`mamba_block_onnx` builds the block :func:`stream.workload.models.mamba_block`
describes, from standard ONNX ops (opset 17) and one custom op (domain ``stream``,
version 1; see :mod:`stream.workload.onnx_loader`), with seeded random weights as
initializers. Tensors and nodes carry the builder's layer names where there is one layer
for one of the builder's. On an input ``u`` of ``batch x seq_len x d_model``, ``E = expand
x d_model``, ``N = d_state``, ``R = ceil(d_model / 16)``:

* ``in_proj_x``, ``in_proj_z``: MatMul by a ``d_model x E`` weight each;
* ``conv1d``: Transpose to ``B x E x L``, depthwise Conv (``group = E``, kernel ``d_conv``,
  pads ``[d_conv - 1, 0]``: causal), Transpose back;
* ``silu_x``: x * Sigmoid(x) (``silu_x_sigmoid``, then the Mul ``silu_x``);
* ``x_proj_dt``, ``x_proj_b``, ``x_proj_c``: MatMul, ``E -> R, N, N``; ``dt_proj``
  (MatMul, ``R -> E``) and ``softplus`` (Softplus);
* ``dt_a``: Unsqueeze(dt) (``B x L x E x 1``) x A (``E x N``) and ``disc_a``: its Exp;
* ``dt_x``: dt x x; ``disc_b``: Unsqueeze(dt_x) x Unsqueeze(B) (``B x L x 1 x N``);
* ``scan``: ``stream::SelectiveScan(disc_a, disc_b)``, axis 1;
* ``readout``: MatMul(h, Unsqueeze(C) ``B x L x N x 1``) then Reshape to ``B x L x E``;
* ``skip_scale``: x x D_skip, ``skip``: Add; ``silu_z`` as ``silu_x``; ``gate``: Mul;
  ``out_proj``: MatMul, ``E -> d_model``.

There are no biases (the builder has none). The element type is ``precision`` bits
(float16 or float32); the simulator's bit widths are chosen when loading
(``load_onnx(path, act_bits=16, weight_bits=16, psum_bits=32)``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stream.workload.onnx_loader import STREAM_DOMAIN, STREAM_OPSET

OPSET = 17
_TYPES = {16: (np.float16, TensorProto.FLOAT16), 32: (np.float32, TensorProto.FLOAT)}


def mamba_block_onnx(d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, seq_len: int = 1024,
                     batch: int = 1, precision: int = 16, name: str = "mamba_block", seed: int = 0) -> onnx.ModelProto:
    """One Mamba block as an ONNX model (see the module's docstring for its nodes)."""
    for key, value in dict(d_model=d_model, d_state=d_state, d_conv=d_conv, expand=expand, seq_len=seq_len,
                           batch=batch).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    if precision not in _TYPES:
        raise ValueError(f"precision must be one of {sorted(_TYPES)} (float16 or float32 tensors), "
                         f"got {precision!r}")
    dtype, elem = _TYPES[precision]
    m, e, n, k, r = d_model, expand * d_model, d_state, d_conv, math.ceil(d_model / 16)
    rng = np.random.default_rng(seed)
    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def weight(tensor: str, shape: tuple[int, ...], scale: float) -> str:
        inits.append(numpy_helper.from_array((scale * rng.standard_normal(shape)).astype(dtype), tensor))
        return tensor

    def ints(tensor: str, values: list[int]) -> str:
        inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), tensor))
        return tensor

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def silu(x: str, out: str) -> str:
        return node("Mul", [x, node("Sigmoid", [x], f"{out}_sigmoid")], out)

    axis2, axis3 = ints("axes_2", [2]), ints("axes_3", [3])
    x = node("MatMul", ["u", weight("in_proj_x_weight", (m, e), m ** -0.5)], "in_proj_x")
    z = node("MatMul", ["u", weight("in_proj_z_weight", (m, e), m ** -0.5)], "in_proj_z")
    x_t = node("Transpose", [x], "conv1d_input", perm=[0, 2, 1])
    conv = node("Conv", [x_t, weight("conv1d_weight", (e, 1, k), k ** -0.5)], "conv1d", group=e, kernel_shape=[k],
                pads=[k - 1, 0])
    x = silu(node("Transpose", [conv], "conv1d_output", perm=[0, 2, 1]), "silu_x")
    dt_low = node("MatMul", [x, weight("x_proj_dt_weight", (e, r), e ** -0.5)], "x_proj_dt")
    b_ssm = node("MatMul", [x, weight("x_proj_b_weight", (e, n), e ** -0.5)], "x_proj_b")
    c_ssm = node("MatMul", [x, weight("x_proj_c_weight", (e, n), e ** -0.5)], "x_proj_c")
    dt = node("Softplus", [node("MatMul", [dt_low, weight("dt_proj_weight", (r, e), r ** -0.5)], "dt_proj")],
              "softplus")
    a = numpy_helper.from_array(-np.tile(np.arange(1, n + 1, dtype=np.float64), (e, 1)).astype(dtype), "A")
    inits.append(a)  # A = -exp(A_log) with Mamba's initialisation A_log = log(1..N)
    d_a = node("Exp", [node("Mul", [node("Unsqueeze", [dt, axis3], "dt_unsqueezed"), "A"], "dt_a")], "disc_a")
    dt_x = node("Mul", [dt, x], "dt_x")
    d_bx = node("Mul", [node("Unsqueeze", [dt_x, axis3], "dt_x_unsqueezed"),
                        node("Unsqueeze", [b_ssm, axis2], "x_proj_b_unsqueezed")], "disc_b")
    h = node("SelectiveScan", [d_a, d_bx], "scan", domain=STREAM_DOMAIN, axis=1)
    y = node("MatMul", [h, node("Unsqueeze", [c_ssm, axis3], "x_proj_c_unsqueezed")], "readout")
    y = node("Reshape", [y, ints("readout_shape", [batch, seq_len, e])], "readout_reshaped")
    skip = node("Add", [y, node("Mul", [x, weight("D", (e,), 1.0)], "skip_scale")], "skip")
    gate = node("Mul", [skip, silu(z, "silu_z")], "gate")
    node("MatMul", [gate, weight("out_proj_weight", (e, m), e ** -0.5)], "out_proj")

    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("u", elem, [batch, seq_len, m])],
        [helper.make_tensor_value_info("out_proj", elem, [batch, seq_len, m])], initializer=inits,
    )
    model = helper.make_model(graph, producer_name="stream", opset_imports=[
        helper.make_opsetid("", OPSET), helper.make_opsetid(STREAM_DOMAIN, STREAM_OPSET)])
    model.ir_version = 8  # readable by onnxruntime releases of the last years
    return model


def save_mamba_block_onnx(path, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                          seq_len: int = 1024, batch: int = 1, precision: int = 16, name: str = "mamba_block",
                          seed: int = 0) -> Path:
    """Write :func:`mamba_block_onnx` to ``path`` (an ``.onnx`` file); returns the path."""
    model = mamba_block_onnx(d_model, d_state, d_conv, expand, seq_len, batch, precision, name, seed)
    path = Path(path)
    onnx.save(model, path)
    return path


__all__ = ["mamba_block_onnx", "save_mamba_block_onnx"]
