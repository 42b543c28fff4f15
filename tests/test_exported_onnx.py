"""PyTorch's own exports (tests/data/onnx, made by scripts/export_models.py): the models
the loader reads load with exactly the MACs PyTorch counts, and every convolution has the
module's channels, groups, kernel and output size.

The manifest holds PyTorch's counts (FlopCounterMode, MACs = flops / 2); the files hold
shapes only (weights stripped, see the script's docstring).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.workload.onnx_loader import load_onnx

DATA = Path(__file__).parent / "data" / "onnx"
MANIFEST = json.loads((DATA / "manifest.json").read_text())["models"]
# The models the loader reads today, with each exporter (issue: real exporter output).
LOADING = [("resnet18", "classic"), ("resnet18", "dynamo"), ("resnet50", "classic"), ("resnet50", "dynamo"),
           ("mobilenet_v2", "classic"), ("mobilenet_v2", "dynamo"), ("mobilenet_v3_small", "classic"),
           ("mobilenet_v3_small", "dynamo"), ("efficientnet_b0", "classic"), ("efficientnet_b0", "dynamo"),
           ("squeezenet1_0", "classic"), ("squeezenet1_0", "dynamo"), ("convnext_tiny", "classic"),
           ("espcn", "classic"), ("espcn", "dynamo"), ("vit_b_16", "dynamo"), ("vit_b_16", "classic"),
           ("convnext_tiny", "dynamo"), ("gpt2_tiny", "classic"), ("gpt2_tiny", "dynamo"),
           ("llama_tiny_gqa", "classic"), ("llama_tiny_gqa", "dynamo"), ("bert_tiny", "classic"),
           ("bert_tiny", "dynamo"), ("fsrcnn", "classic"), ("fsrcnn", "dynamo"), ("unet_small", "classic"),
           ("unet_small", "dynamo")]


def test_every_export_is_in_the_manifest_and_on_disk():
    files = {p.name for p in DATA.glob("*.onnx")}
    listed = {e["file"] for m in MANIFEST.values() for e in m["exports"].values() if e["status"] == "ok"}
    assert files == listed and len(files) == 28


@pytest.mark.parametrize("model, exporter", LOADING)
def test_conv_and_gemm_macs_equal_pytorchs(model, exporter):
    entry = MANIFEST[model]
    wl = load_onnx(DATA / entry["exports"][exporter]["file"])
    convs = [l for l in wl.layers if l.op_type in ("Conv", "ConvTranspose")]
    dense = [l for l in wl.layers if l.op_type in ("Gemm", "MatMul")]
    assert sum(l.macs for l in convs) == entry["macs"]["conv"]
    assert sum(l.macs for l in dense) == entry["macs"]["linear"] + entry["macs"]["matmul"]
    # one Conv layer per module, in order, with the module's shape
    modules = entry.get("conv_layers", [])  # language models have none
    assert len(convs) == len(modules)
    for layer, module in zip(convs, modules):
        size = {d: layer.size(d) for d in layer.dims}
        groups = size.get("G", 1)  # a depthwise conv has G and neither K nor C
        assert groups == module["groups"], module["module"]
        assert size.get("K", 1) * groups == module["out_channels"], module["module"]
        assert size.get("C", 1) * groups == module["in_channels"], module["module"]
        assert (size["FY"], size["FX"]) == tuple(module["kernel_size"]), module["module"]
        rows = [layer.output.axes[2].extent, layer.output.axes[3].extent]  # OY, OX; a transposed conv's sums
        assert rows == list(module["output_size"]), module["module"]


def test_classic_exports_of_gpt2_and_llama_have_their_projection_sizes():
    """The classic exporter computes reshape and expand targets at run time (Shape, Gather,
    Where, ...), which ONNX's inference leaves unknown; folded at load time they give every
    projection its size: 64 tokens x 512 x 128 for GPT-2's MLP c_proj (4,194,304 MACs, not
    the 65,536 a guessed 1 gave), 64 x 128 x 128 for Llama's o_proj."""
    gpt2 = load_onnx(DATA / "gpt2_tiny.classic.onnx")
    assert gpt2.layer("/model/transformer/h.0/mlp/c_proj/Gemm").macs == 64 * 512 * 128
    assert gpt2.layer("/model/transformer/h.0/attn/c_proj/Gemm").macs == 64 * 128 * 128
    llama = load_onnx(DATA / "llama_tiny_gqa.classic.onnx")
    assert llama.layer("/model/model/layers.0/self_attn/o_proj/MatMul").macs == 64 * 128 * 128
    # grouped-query attention: 2 key heads of 32 serve 4 query heads; scores are 4 x 64 x 64 x 32
    assert llama.layer("/model/model/layers.0/self_attn/k_proj/MatMul").macs == 64 * 128 * 64
    assert llama.layer("/model/model/layers.0/self_attn/MatMul").macs == 4 * 64 * 64 * 32


CNNS = [(m, e) for m, e in LOADING if m not in ("gpt2_tiny", "llama_tiny_gqa", "bert_tiny", "vit_b_16")]
FAST = {("resnet18", "classic"), ("espcn", "dynamo")}


@pytest.mark.parametrize("model, exporter", [
    pytest.param(m, e, marks=() if (m, e) in FAST else pytest.mark.slow) for m, e in CNNS])
def test_fused_is_no_slower_than_layer_by_layer_on_the_bundled_quad_core(model, exporter):
    """Every exported CNN runs both ways on the bundled quad_core with its bundled mapping,
    and fusing is never slower."""
    from stream import api

    path = DATA / MANIFEST[model]["exports"][exporter]["file"]
    hardware = Path(__file__).parents[1] / "inputs" / "hardware" / "quad_core.yaml"
    fused, lbl = (api.run(path, hardware, mode=mode, allocator="greedy") for mode in ("fused", "layer_by_layer"))
    assert fused.latency_cycles <= lbl.latency_cycles
