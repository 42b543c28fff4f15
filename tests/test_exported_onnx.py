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
           ("espcn", "classic"), ("espcn", "dynamo"), ("vit_b_16", "dynamo")]


def test_every_export_is_in_the_manifest_and_on_disk():
    files = {p.name for p in DATA.glob("*.onnx")}
    listed = {e["file"] for m in MANIFEST.values() for e in m["exports"].values() if e["status"] == "ok"}
    assert files == listed and len(files) == 28


@pytest.mark.parametrize("model, exporter", LOADING)
def test_conv_and_gemm_macs_equal_pytorchs(model, exporter):
    entry = MANIFEST[model]
    wl = load_onnx(DATA / entry["exports"][exporter]["file"])
    convs = [l for l in wl.layers if l.op_type == "Conv"]
    dense = [l for l in wl.layers if l.op_type in ("Gemm", "MatMul")]
    assert sum(l.macs for l in convs) == entry["macs"]["conv"]
    assert sum(l.macs for l in dense) == entry["macs"]["linear"] + entry["macs"]["matmul"]
    # one Conv layer per module, in order, with the module's shape
    modules = entry["conv_layers"]
    assert len(convs) == len(modules)
    for layer, module in zip(convs, modules):
        size = {d: layer.size(d) for d in layer.dims}
        groups = size.get("G", 1)  # a depthwise conv has G and neither K nor C
        assert groups == module["groups"], module["module"]
        assert size.get("K", 1) * groups == module["out_channels"], module["module"]
        assert size.get("C", 1) * groups == module["in_channels"], module["module"]
        assert (size["FY"], size["FX"]) == tuple(module["kernel_size"]), module["module"]
        assert (size["OY"], size["OX"]) == tuple(module["output_size"]), module["module"]
