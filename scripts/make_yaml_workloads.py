"""Write the bundled YAML workloads (ResNet-18, two-conv chain, FSRCNN, a Mamba block).

Deterministic: running it again rewrites the same bytes. Usage:
    python scripts/make_yaml_workloads.py [OUT_DIR]   (default: inputs/workloads)
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

PRECISION = {"O": 16, "O_final": 8, "W": 8, "I": 8}


def conv(name, source, k, c, oy, ox, f=3, stride=1, pad=None, op="Conv"):
    """A conv layer; ``pad`` is an int (both sides) or a (begin, end) pair."""
    pad = (f - 1) // 2 if pad is None else pad
    pad = [pad, pad] if isinstance(pad, int) else list(pad)
    layer = {
        "name": name,
        "operator_type": op,
        "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
        "dimension_relations": [f"ix={stride}*ox+1*fx", f"iy={stride}*oy+1*fy"],
        "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
        "loop_sizes": [1, k, c, oy, ox, f, f],
        "operand_precision": dict(PRECISION),
        "padding": {"IY": pad, "IX": list(pad)},
    }
    if source:
        layer["operand_source"] = {"I": source}
    return layer


def add(name, a, b, g, oy, ox):
    return {
        "name": name,
        "operator_type": "Add",
        "equation": "O[b][g][oy][ox]=I[b][g][oy][ox]+W[b][g][oy][ox]",
        "loop_dims": ["B", "G", "OY", "OX"],
        "loop_sizes": [1, g, oy, ox],
        "operand_precision": {"O": 8, "O_final": 8, "I": 8, "W": 8},
        "operand_source": {"I": a, "W": b},
    }


def resnet18() -> dict:
    # 7x7/2 over a 224x224 image: PyTorch's padding 3 touches 3 padded rows at the start
    # and 2 at the end (the last padded row is never read), so the input is 224 rows.
    layers = [conv("conv1", None, 64, 3, 112, 112, f=7, stride=2, pad=(3, 2))]
    layers.append({
        "name": "maxpool",
        "operator_type": "MaxPool",
        "equation": "O[b][g][oy][ox]+=I[b][g][iy][ix]",
        "dimension_relations": ["ix=2*ox+1*fx", "iy=2*oy+1*fy"],
        "loop_dims": ["B", "G", "OY", "OX", "FY", "FX"],
        "loop_sizes": [1, 64, 56, 56, 3, 3],
        "operand_precision": {"O": 8, "O_final": 8, "I": 8},
        "operand_source": {"I": "conv1"},
        "padding": {"IY": [1, 1], "IX": [1, 1]},
    })
    previous, channels, size = "maxpool", 64, 56
    for stage, out_channels in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if (stage > 1 and block == 0) else 1
            out_size = size // stride
            prefix = f"layer{stage}.{block}"
            layers.append(conv(f"{prefix}.conv1", previous, out_channels, channels, out_size, out_size, stride=stride))
            layers.append(conv(f"{prefix}.conv2", f"{prefix}.conv1", out_channels, out_channels, out_size, out_size))
            shortcut = previous
            if stride != 1 or channels != out_channels:
                shortcut = f"{prefix}.downsample"
                layers.append(conv(shortcut, previous, out_channels, channels, out_size, out_size, f=1, stride=stride, pad=0))
            layers.append(add(f"{prefix}.add", f"{prefix}.conv2", shortcut, out_channels, out_size, out_size))
            previous, channels, size = f"{prefix}.add", out_channels, out_size
    layers.append({
        "name": "avgpool",
        "operator_type": "GlobalAveragePool",
        "equation": "O[b][g]+=I[b][g][fy][fx]",
        "loop_dims": ["B", "G", "FY", "FX"],
        "loop_sizes": [1, 512, 7, 7],
        "operand_precision": {"O": 16, "O_final": 8, "I": 8},
        "operand_source": {"I": previous},
    })
    layers.append({
        "name": "fc",
        "operator_type": "Gemm",
        "equation": "O[b][k]+=W[k][c]*I[b][c]",
        "loop_dims": ["B", "K", "C"],
        "loop_sizes": [1, 1000, 512],
        "operand_precision": dict(PRECISION),
        "operand_source": {"I": "avgpool"},
    })
    return {"version": 1, "name": "resnet18", "layers": layers}


def two_conv() -> dict:
    return {"version": 1, "name": "two_conv", "layers": [
        conv("conv_a", None, 16, 8, 32, 32),
        conv("conv_b", "conv_a", 32, 16, 32, 32),
    ]}


def fsrcnn() -> dict:
    # FSRCNN(d=56, s=12, m=4) at 240x320, the transposed 9x9 output conv as a 9x9 conv
    h, w = 240, 320
    layers = [conv("feature", None, 56, 1, h, w, f=5),
              conv("shrink", "feature", 12, 56, h, w, f=1)]
    previous = "shrink"
    for i in range(4):
        layers.append(conv(f"map{i}", previous, 12, 12, h, w))
        previous = f"map{i}"
    layers.append(conv("expand", previous, 56, 12, h, w, f=1))
    layers.append(conv("deconv", "expand", 1, 56, h, w, f=9))
    return {"version": 1, "name": "fsrcnn", "layers": layers}


def mamba_block() -> dict:
    """A small Mamba block (d_model 256, 512 tokens, bf16): stream.workload.models' layers."""
    from stream.workload.models import mamba_block_document

    return mamba_block_document(256, seq_len=512, precision=16, name="mamba_block")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "inputs" / "workloads"
    out.mkdir(parents=True, exist_ok=True)
    for name, build in (("resnet18", resnet18), ("two_conv", two_conv), ("fsrcnn", fsrcnn),
                        ("mamba_block", mamba_block)):
        text = f"# {name}: written by scripts/make_yaml_workloads.py\n" + yaml.safe_dump(build(), sort_keys=False, width=120, default_flow_style=None)
        (out / f"{name}.yaml").write_text(text)
        print(out / f"{name}.yaml")


if __name__ == "__main__":
    main()
