"""Export real PyTorch models to ONNX as shape-only test fixtures (tests/data/onnx/).

Each model is exported twice, with random weights (no downloads):

* ``<model>.classic.onnx``: ``torch.onnx.export(..., dynamo=False, opset_version=17)``
  (the TorchScript-based exporter);
* ``<model>.dynamo.onnx``: ``torch.onnx.export(..., dynamo=True, opset_version=20)``
  (the torch.export-based exporter; the opset actually written is in the manifest).

An export that fails is recorded in the manifest with its error line; the others go on.

Models: torchvision's resnet18, resnet50, mobilenet_v2, mobilenet_v3_small, efficientnet_b0,
squeezenet1_0, convnext_tiny and vit_b_16 (``weights=None``, 1x3x224x224); a small U-Net
(1x3x128x128), FSRCNN (x2) and ESPCN (x3) written below (1x1x64x64); tiny GPT-2, Llama
(grouped-query attention) and BERT built from transformers configs (vocabulary 1000),
taking ``input_ids`` and an all-ones ``attention_mask`` of 1x64 and returning the logits.

Weights convention (shapes only): every tensor with more than 64 elements, initializers
and the ``value`` of Constant nodes alike, is stored as EXTERNAL data pointing into
``<model>.<exporter>.weights`` (offsets as if laid end to end), a file that is never
written nor committed. Dims and dtype stay, so ``onnx.load(path,
load_external_data=False)`` and ``onnx.shape_inference.infer_shapes`` work on the .onnx
file alone; tensors of at most 64 elements (shape constants, indices, axes, scalars) stay
inline because shape inference needs their values. (This is what ``onnx.save_model(...,
save_as_external_data=True)`` followed by deleting the weights file gives, except that the
limit is counted in elements, not bytes.) The dynamo exporter's per-node
``pkg.torch.onnx.stack_trace`` metadata is dropped (it holds this machine's absolute
paths); everything else is kept as exported.

``manifest.json`` (sorted keys, indent 1) records per model the input shapes, the torch
version, per exporter 'ok' or the error line, and for the files written their opset, size
in bytes, node count, op-type histogram, output shape and how many node outputs ONNX
shape inference leaves without a shape; then the MACs PyTorch itself counts
(``FlopCounterMode``, MACs = flops / 2) for conv (incl. transposed), linear (mm, addmm)
and matmul (bmm, baddbmm, scaled-dot-product attention), their total and the count per
aten operator; and for models with convolutions one entry per Conv/ConvTranspose module.

Install what it needs (the ``export`` extra: torch, torchvision, transformers, onnx,
onnxscript) in a venv of its own, not the test one, as torch is large:

    python -m venv .venv-export
    .venv-export/bin/pip install -e '.[export]'

Usage:

    python scripts/export_models.py [--out tests/data/onnx] [--only resnet18,espcn,...]

With ``--only`` the other models' entries already in the manifest are kept.
Deterministic: every model is built after ``torch.manual_seed(0)``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper
from torch import nn
from torch.utils import flop_counter

MAX_INLINE_ELEMENTS = 64
CLASSIC_OPSET = 17
DYNAMO_OPSET = 20
DROPPED_NODE_METADATA = {"pkg.torch.onnx.stack_trace"}
SEED = 0

aten = torch.ops.aten
CONV_OPS = {"aten.convolution", "aten._convolution", "aten._slow_conv2d_forward"}
LINEAR_OPS = {"aten.mm", "aten.addmm"}
MATMUL_OPS = {"aten.bmm", "aten.baddbmm", "aten._scaled_dot_product_flash_attention_for_cpu",
              "aten._scaled_dot_product_efficient_attention",
              "aten._scaled_dot_product_flash_attention"}


# ---------------------------------------------------------------- small models written here


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
    )


class SmallUNet(nn.Module):
    """U-Net with 2 down and 2 up levels (ConvTranspose2d upsampling, concatenated skips)
    and a deep-supervision side path: bottleneck -> 1x1 conv -> bilinear Upsample x4,
    added to the logits (exporters write it as Resize)."""

    def __init__(self, c_in: int = 3, n_classes: int = 2, base: int = 16):
        super().__init__()
        self.enc1 = double_conv(c_in, base)
        self.enc2 = double_conv(base, 2 * base)
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(2 * base, 4 * base)
        self.up2 = nn.ConvTranspose2d(4 * base, 2 * base, 2, stride=2)
        self.dec2 = double_conv(4 * base, 2 * base)
        self.up1 = nn.ConvTranspose2d(2 * base, base, 2, stride=2)
        self.dec1 = double_conv(2 * base, base)
        self.head = nn.Conv2d(base, n_classes, 1)
        self.side = nn.Conv2d(4 * base, n_classes, 1)
        self.side_up = nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.enc1(x)
        s2 = self.enc2(self.pool(s1))
        b = self.bottleneck(self.pool(s2))
        d2 = self.dec2(torch.cat([self.up2(b), s2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), s1], dim=1))
        return self.head(d1) + self.side_up(self.side(b))


class FSRCNN(nn.Module):
    """FSRCNN (Dong et al. 2016): extract, shrink, m maps, expand, 9x9 deconvolution."""

    def __init__(self, scale: int = 2, channels: int = 1, d: int = 56, s: int = 12, m: int = 4):
        super().__init__()
        layers = [nn.Conv2d(channels, d, 5, padding=2), nn.PReLU(d),
                  nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4,
                                         output_padding=scale - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.body(x))


class ESPCN(nn.Module):
    """ESPCN (Shi et al. 2016): three convolutions, then PixelShuffle (sub-pixel layer)."""

    def __init__(self, scale: int = 3, channels: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 64, 5, padding=2), nn.Tanh(),
            nn.Conv2d(64, 32, 3, padding=1), nn.Tanh(),
            nn.Conv2d(32, channels * scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.body(x))


class LogitsOnly(nn.Module):
    """A Hugging Face model (built with ``use_cache=False``) returning the logits alone.

    It takes an attention mask as the Hugging Face ONNX exports do; without one,
    transformers looks for packed sequences with torch.diff, which the classic exporter
    cannot export."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


# ---------------------------------------------------------------- the models and their inputs


def torchvision_model(name: str):
    def build() -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None)
    return build


def tiny_gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=1000, n_positions=128,
                        bos_token_id=0, eos_token_id=0, use_cache=False)
    return LogitsOnly(GPT2LMHeadModel(config))


def tiny_llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=256, vocab_size=1000,
                         max_position_embeddings=128, use_cache=False)
    return LogitsOnly(LlamaForCausalLM(config))


def tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=4,
                        intermediate_size=256, vocab_size=1000, max_position_embeddings=128,
                        use_cache=False)
    return LogitsOnly(BertForMaskedLM(config))


IMAGE = ("image", (1, 3, 224, 224), torch.float32)
TOKENS = [("input_ids", (1, 64), torch.int64), ("attention_mask", (1, 64), torch.int64)]

# name -> (builder, [(input name, shape, dtype)])
MODELS = {
    **{name: (torchvision_model(name), [IMAGE]) for name in (
        "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
        "squeezenet1_0", "convnext_tiny", "vit_b_16")},
    "unet_small": (SmallUNet, [("image", (1, 3, 128, 128), torch.float32)]),
    "fsrcnn": (FSRCNN, [("image", (1, 1, 64, 64), torch.float32)]),
    "espcn": (ESPCN, [("image", (1, 1, 64, 64), torch.float32)]),
    "gpt2_tiny": (tiny_gpt2, TOKENS),
    "llama_tiny_gqa": (tiny_llama, TOKENS),
    "bert_tiny": (tiny_bert, TOKENS),
}


def make_inputs(spec) -> tuple[torch.Tensor, ...]:
    """Random inputs for ``spec``: token ids below the tiny models' vocabulary of 1000,
    attention masks of ones."""
    tensors = []
    for name, shape, dtype in spec:
        if name == "attention_mask":
            tensors.append(torch.ones(shape, dtype=dtype))
        elif dtype == torch.int64:
            tensors.append(torch.randint(0, 1000, shape, dtype=dtype))
        else:
            tensors.append(torch.randn(shape, dtype=dtype))
    return tuple(tensors)


# ---------------------------------------------------------------- what PyTorch counts


def sdpa_cpu_flop(query_shape, key_shape, value_shape, *_args, **_kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def count_macs(model: nn.Module, inputs) -> dict:
    """MACs per class of operator, as torch's FlopCounterMode counts them (flops / 2).

    On CPU, F.scaled_dot_product_attention runs as _scaled_dot_product_flash_attention_for_cpu,
    which FlopCounterMode has no formula for: torch's own SDPA formula is mapped onto it.
    """
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: sdpa_cpu_flop}
    counter = flop_counter.FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        model(*inputs)
    by_op = {str(op): flops // 2 for op, flops in counter.get_flop_counts()["Global"].items()}
    unknown = sorted(set(by_op) - CONV_OPS - LINEAR_OPS - MATMUL_OPS)
    if unknown:
        raise RuntimeError(f"unclassified counted operators: {unknown}")
    macs = {
        "conv": sum(v for k, v in by_op.items() if k in CONV_OPS),
        "linear": sum(v for k, v in by_op.items() if k in LINEAR_OPS),
        "matmul": sum(v for k, v in by_op.items() if k in MATMUL_OPS),
    }
    macs["total"] = sum(macs.values())
    macs["by_op"] = dict(sorted(by_op.items()))
    return macs


def conv_layers(model: nn.Module, inputs) -> list[dict]:
    """One entry per Conv/ConvTranspose module in call order, from forward hooks."""
    layers = []

    def hook(module, _args, output):
        layers.append({
            "module": names[module], "type": type(module).__name__,
            "in_channels": module.in_channels, "out_channels": module.out_channels,
            "groups": module.groups, "kernel_size": list(module.kernel_size),
            "stride": list(module.stride), "padding": list(module.padding),
            "dilation": list(module.dilation), "output_size": list(output.shape[2:]),
        })
        if module.transposed:
            layers[-1]["output_padding"] = list(module.output_padding)

    names = {m: n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)}
    handles = [m.register_forward_hook(hook) for m in names]
    try:
        model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return layers


# ---------------------------------------------------------------- exporting


@contextlib.contextmanager
def quiet():
    """Silence progress lines, warnings and log records, also those that C++ writes
    straight to file descriptors 1 and 2 (the classic exporter's graph dumps)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    sink = io.StringIO()
    with open(os.devnull, "w") as null, warnings.catch_warnings(), \
            contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def export(model: nn.Module, inputs, spec, exporter: str) -> onnx.ModelProto:
    """Export with ``exporter`` ('classic' or 'dynamo') and load the result, weights included."""
    input_names = [name for name, _shape, _dtype in spec]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        if exporter == "classic":
            torch.onnx.export(model, inputs, str(path), dynamo=False, opset_version=CLASSIC_OPSET,
                              input_names=input_names, output_names=["output"])
        else:
            torch.onnx.export(model, inputs, str(path), dynamo=True, opset_version=DYNAMO_OPSET,
                              input_names=input_names, output_names=["output"])
        return onnx.load(str(path))


def all_tensors(graph: onnx.GraphProto):
    """Initializers and node attribute tensors of ``graph`` and its subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from all_tensors(sub)


def strip_weights(model: onnx.ModelProto, location: str) -> None:
    """Point every tensor of more than MAX_INLINE_ELEMENTS elements at ``location`` (a
    file never written), keeping dims and dtype; drop machine-specific node metadata."""
    offset = 0
    for tensor in all_tensors(model.graph):
        if math.prod(tensor.dims) <= MAX_INLINE_ELEMENTS or tensor.data_type == TensorProto.STRING:
            continue
        length = math.prod(tensor.dims) * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                      "uint64_data", "external_data"):
            tensor.ClearField(field)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)),
                           ("length", str(length))):
            tensor.external_data.add(key=key, value=value)
        offset += length
    for node in model.graph.node:
        kept = [p for p in node.metadata_props if p.key not in DROPPED_NODE_METADATA]
        node.ClearField("metadata_props")
        node.metadata_props.extend(kept)


def describe(path: Path) -> dict:
    """Size, opset, nodes and op types of the written file; shape inference must pass on it."""
    model = onnx.load(str(path), load_external_data=False)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    known = {v.name for v in list(inferred.graph.value_info) + list(inferred.graph.output)
             if v.type.tensor_type.HasField("shape")}
    known |= {i.name for i in inferred.graph.initializer} | {i.name for i in inferred.graph.input}
    outputs = [o for n in inferred.graph.node for o in n.output if o]
    op_types: dict[str, int] = {}
    for node in model.graph.node:
        key = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        op_types[key] = op_types.get(key, 0) + 1
    return {
        "status": "ok", "file": path.name, "bytes": path.stat().st_size,
        "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "nodes": len(model.graph.node), "op_types": dict(sorted(op_types.items())),
        "outputs_without_inferred_shape": sum(1 for o in outputs if o not in known),
        "output_shape": shape_of(inferred.graph.output[0]),
    }


def shape_of(value: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
            for d in value.type.tensor_type.shape.dim]


# ---------------------------------------------------------------- driver


def export_one(name: str, out: Path) -> dict:
    """Build ``name``, count what torch counts, export it both ways; its manifest entry."""
    builder, spec = MODELS[name]
    torch.manual_seed(SEED)
    model = builder().eval()
    inputs = make_inputs(spec)
    entry = {
        "inputs": {n: {"shape": list(shape), "dtype": str(dtype).removeprefix("torch.")}
                   for n, shape, dtype in spec},
        "torch_version": torch.__version__,
        "macs": count_macs(model, inputs),
        "exports": {},
    }
    layers = conv_layers(model, inputs)
    if layers:
        entry["conv_layers"] = layers
    for exporter in ("classic", "dynamo"):
        entry["exports"][exporter] = export_to_file(model, inputs, spec, name, exporter, out)
    return entry


def export_to_file(model, inputs, spec, name: str, exporter: str, out: Path) -> dict:
    path = out / f"{name}.{exporter}.onnx"
    path.unlink(missing_ok=True)
    try:
        proto = export(model, inputs, spec, exporter)
    except Exception as error:  # noqa: BLE001 - any exporter failure is recorded and skipped
        return {"status": "error", "error": error_line(error)}
    strip_weights(proto, f"{name}.{exporter}.weights")
    onnx.save_model(proto, str(path))
    return describe(path)


def error_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def versions() -> dict:
    import importlib.metadata as md

    packages = ("torch", "torchvision", "transformers", "onnx", "onnxscript", "onnx-ir")
    found = {}
    for package in packages:
        with contextlib.suppress(md.PackageNotFoundError):
            found[package] = md.version(package)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/onnx"))
    parser.add_argument("--only", default="", help="comma-separated model names")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    unknown = set(names) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; known: {', '.join(MODELS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.setdefault("models", {})
    for name in names:
        with quiet():
            entry = export_one(name, args.out)
        manifest["models"][name] = entry
        status = ", ".join(f"{e} {r['status']}" for e, r in entry["exports"].items())
        print(f"{name}: {status}, {entry['macs']['total'] / 1e6:.1f} MMACs", flush=True)
    manifest["versions"] = versions()
    manifest["convention"] = (
        f"tensors of more than {MAX_INLINE_ELEMENTS} elements are external data in "
        "<model>.<exporter>.weights, which is not shipped: load with load_external_data=False")
    manifest_path.write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n")


if __name__ == "__main__":
    main()
