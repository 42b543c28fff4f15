"""Build the bundled ONNX workloads in inputs/workloads/ (deterministic bytes on re-run).

* swiglu.onnx: a SwiGLU FFN on 64 tokens, d_model 512, hidden 1376, with SiLU written
  as Sigmoid + Mul (as exporters emit it).
* transformer_block.onnx: one pre-LN decoder block, seq 128, d_model 256, 4 heads of 64,
  FFN 1024.

Only shapes matter to the simulator, so the weights are stored as EXTERNAL data pointing
to a file that is not shipped: the .onnx files stay a few KB. Small constants that shape
inference needs (reshape targets, the attention scale) are stored inline.

Usage: python scripts/make_onnx_workloads.py [OUT_DIR]   (default: inputs/workloads)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 20  # Gelu and LayerNormalization are standard ops from opset 20 / 17
IR_VERSION = 9
FLOAT = TensorProto.FLOAT


def external_weight(name: str, shape: tuple[int, ...], weights_file: str) -> TensorProto:
    """A float initializer whose data lives in ``weights_file`` (absent on purpose)."""
    tensor = TensorProto(name=name, dims=list(shape), data_type=FLOAT)
    tensor.data_location = TensorProto.EXTERNAL
    entries = {"location": weights_file, "offset": "0", "length": str(4 * int(np.prod(shape)))}
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=value)
    return tensor


def inline(name: str, value) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def make_model(name: str, nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="stream-sim",
        ir_version=IR_VERSION,
    )
    check(model)
    return model


def check(model: onnx.ModelProto) -> None:
    """Full ONNX check and strict shape inference, on a copy whose weights are zeros
    (the checker insists that external data files exist)."""
    filled = onnx.ModelProto()
    filled.CopyFrom(model)
    for tensor in filled.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            tensor.data_location = TensorProto.DEFAULT
            del tensor.external_data[:]
            tensor.raw_data = bytes(4 * int(np.prod(tensor.dims)))
    onnx.checker.check_model(filled, full_check=True)


def swiglu(tokens: int = 64, d_model: int = 512, hidden: int = 1376) -> onnx.ModelProto:
    """y = (silu(x @ Wg) * (x @ Wu)) @ Wd, silu(g) = g * sigmoid(g)."""
    weights = "swiglu.weights.bin"
    init = [
        external_weight("w_gate", (d_model, hidden), weights),
        external_weight("w_up", (d_model, hidden), weights),
        external_weight("w_down", (hidden, d_model), weights),
    ]
    mk = helper.make_node
    nodes = [
        mk("MatMul", ["x", "w_gate"], ["gate"], name="gate_proj"),
        mk("MatMul", ["x", "w_up"], ["up"], name="up_proj"),
        mk("Sigmoid", ["gate"], ["gate_sigmoid"], name="silu_sigmoid"),
        mk("Mul", ["gate", "gate_sigmoid"], ["gate_silu"], name="silu_mul"),
        mk("Mul", ["gate_silu", "up"], ["hidden"], name="gate_mul"),
        mk("MatMul", ["hidden", "w_down"], ["y"], name="down_proj"),
    ]
    return make_model(
        "swiglu", nodes,
        [helper.make_tensor_value_info("x", FLOAT, [tokens, d_model])],
        [helper.make_tensor_value_info("y", FLOAT, [tokens, d_model])],
        init,
    )


def transformer_block(seq: int = 128, d_model: int = 256, heads: int = 4, ffn: int = 1024) -> onnx.ModelProto:
    """x + attn(LN1(x)), then h + FFN(LN2(h)); attention split into heads by views."""
    head = d_model // heads
    weights = "transformer_block.weights.bin"
    init = [
        external_weight("ln1_scale", (d_model,), weights),
        external_weight("ln1_bias", (d_model,), weights),
        external_weight("w_q", (d_model, d_model), weights),
        external_weight("w_k", (d_model, d_model), weights),
        external_weight("w_v", (d_model, d_model), weights),
        external_weight("w_o", (d_model, d_model), weights),
        external_weight("ln2_scale", (d_model,), weights),
        external_weight("ln2_bias", (d_model,), weights),
        external_weight("w_ffn1", (d_model, ffn), weights),
        external_weight("w_ffn2", (ffn, d_model), weights),
        inline("heads_shape", np.array([seq, heads, head], dtype=np.int64)),
        inline("model_shape", np.array([seq, d_model], dtype=np.int64)),
        inline("attn_scale", np.array(1.0 / np.sqrt(head), dtype=np.float32)),
    ]
    mk = helper.make_node
    nodes = [
        mk("LayerNormalization", ["x", "ln1_scale", "ln1_bias"], ["ln1"], name="ln1", axis=-1),
        mk("MatMul", ["ln1", "w_q"], ["q"], name="q_proj"),
        mk("MatMul", ["ln1", "w_k"], ["k"], name="k_proj"),
        mk("MatMul", ["ln1", "w_v"], ["v"], name="v_proj"),
        # [seq, d_model] -> [heads, seq, head]; K goes straight to [heads, head, seq].
        mk("Reshape", ["q", "heads_shape"], ["q_split"], name="q_split"),
        mk("Transpose", ["q_split"], ["q_heads"], name="q_heads", perm=[1, 0, 2]),
        mk("Reshape", ["k", "heads_shape"], ["k_split"], name="k_split"),
        mk("Transpose", ["k_split"], ["k_heads_t"], name="k_heads_t", perm=[1, 2, 0]),
        mk("Reshape", ["v", "heads_shape"], ["v_split"], name="v_split"),
        mk("Transpose", ["v_split"], ["v_heads"], name="v_heads", perm=[1, 0, 2]),
        mk("MatMul", ["q_heads", "k_heads_t"], ["scores"], name="qk"),
        mk("Mul", ["scores", "attn_scale"], ["scores_scaled"], name="scale"),
        mk("Softmax", ["scores_scaled"], ["probs"], name="softmax", axis=-1),
        mk("MatMul", ["probs", "v_heads"], ["ctx_heads"], name="av"),
        mk("Transpose", ["ctx_heads"], ["ctx_split"], name="ctx_merge_t", perm=[1, 0, 2]),
        mk("Reshape", ["ctx_split", "model_shape"], ["ctx"], name="ctx_merge"),
        mk("MatMul", ["ctx", "w_o"], ["attn"], name="o_proj"),
        mk("Add", ["x", "attn"], ["h"], name="residual1"),
        mk("LayerNormalization", ["h", "ln2_scale", "ln2_bias"], ["ln2"], name="ln2", axis=-1),
        mk("MatMul", ["ln2", "w_ffn1"], ["ffn_up"], name="ffn_up"),
        mk("Gelu", ["ffn_up"], ["ffn_act"], name="gelu"),
        mk("MatMul", ["ffn_act", "w_ffn2"], ["ffn_down"], name="ffn_down"),
        mk("Add", ["h", "ffn_down"], ["y"], name="residual2"),
    ]
    return make_model(
        "transformer_block", nodes,
        [helper.make_tensor_value_info("x", FLOAT, [seq, d_model])],
        [helper.make_tensor_value_info("y", FLOAT, [seq, d_model])],
        init,
    )


def main(argv: list[str]) -> None:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "inputs" / "workloads"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, model in (("swiglu", swiglu()), ("transformer_block", transformer_block())):
        path = out_dir / f"{name}.onnx"
        # Serialise directly: onnx.save would try to resolve the external weight file.
        path.write_bytes(model.SerializeToString(deterministic=True))
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv)
