"""Workloads built from a few numbers: Mamba (selective state-space) blocks and models.

Each builder returns the YAML document of our workload format (:func:`mamba_block_document`,
:func:`mamba_model_document`), so the same content exists as a file (``yaml.safe_dump``
of it loads back to the same workload), and the :class:`~stream.workload.ir.Workload`
read from it (:func:`mamba_block`, :func:`mamba_model`).

A Mamba block (Gu and Dao, 2023) on an input ``u`` of ``batch x seq_len x d_model``, with
``d_inner = expand x d_model`` channels (dim ``D``), ``d_state`` states per channel (dim
``N``) and ``dt_rank = ceil(d_model / 16)``, as layers (projections are MatMuls over ``K``
outputs and ``C`` inputs, the names the field's matrix dataflows use; every layer has the
token dim ``L``):

* ``in_proj_x``, ``in_proj_z``: the two halves of the input projection (MatMul, M -> D);
* ``conv1d``: causal depthwise convolution over ``d_conv`` taps (Conv; padding d_conv - 1
  at the start of L, none at the end);
* ``silu_x``: SiLU;
* ``x_proj_dt``, ``x_proj_b``, ``x_proj_c``: the three parts of x_proj (MatMul, D -> R, N, N);
* ``dt_proj`` (MatMul, R -> D), ``softplus``;
* ``disc_a``: exp(dt x A) (Exp, B x L x D x N); ``dt_x``: dt x x and ``disc_b``: dt x x x B
  (Mul, the second B x L x D x N);
* ``scan``: h_l = dA_l * h_(l-1) + dBx_l (SelectiveScan; ``L`` is **sequential**, so tiles
  along L chain in order and the D x N state at the last step passes from tile to tile);
* ``readout``: y = sum over N of h x C (Readout); ``skip_scale``: D_skip x x (Mul) and
  ``skip``: their sum (Add);
* ``silu_z`` (SiLU of z) and ``gate``: y x SiLU(z) (Mul); ``out_proj`` (MatMul, D -> M).

Every layer has at most two inputs, ``I`` and ``W`` (weights are listed as constant
operands; a ``W`` may also be an activation), the operands a per-core cost model knows.

Unfused, dA, dBx and h (each ``B x L x D x N``) go through DRAM; fused along L they stay on
chip a chunk at a time. A model (:func:`mamba_model`) stacks blocks, each as
``norm`` (RMSNormalization) -> block -> ``residual`` (Add), and ends with a final norm; the
embedding and the language-model head are left out (they are a gather and one MatMul).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream.spec import Where
from stream.workload.ir import Workload
from stream.workload.yaml_loader import workload_from_document


@dataclass(frozen=True)
class MambaShape:
    """The published shape of a Mamba model."""

    d_model: int
    n_layer: int
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2


MAMBA_SHAPES = {  # state-spaces/mamba-130m and mamba-2.8b
    "mamba-130m": MambaShape(d_model=768, n_layer=24),
    "mamba-2.8b": MambaShape(d_model=2560, n_layer=64),
}


def mamba_block(d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, seq_len: int = 1024,
                batch: int = 1, precision: int = 16, name: str = "mamba_block") -> Workload:
    """One Mamba block as a workload (see the module's docstring for its layers)."""
    document = mamba_block_document(d_model, d_state, d_conv, expand, seq_len, batch, precision, name)
    return workload_from_document(document, Where(f"<{name}>"), name)


def mamba_model(shape: MambaShape | str, seq_len: int = 1024, batch: int = 1, precision: int = 16,
                n_layer: int | None = None, name: str | None = None) -> Workload:
    """A stack of Mamba blocks with RMSNorm and residuals: ``shape`` is a :class:`MambaShape`
    or a name of :data:`MAMBA_SHAPES`; ``n_layer`` overrides its number of blocks."""
    shape, name = _shape(shape, name)
    document = mamba_model_document(shape, seq_len, batch, precision, n_layer, name)
    return workload_from_document(document, Where(f"<{name}>"), name)


def mamba_block_document(d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, seq_len: int = 1024,
                         batch: int = 1, precision: int = 16, name: str = "mamba_block") -> dict:
    """The YAML document (our format) of one Mamba block; its input comes from DRAM."""
    _check(d_model=d_model, d_state=d_state, d_conv=d_conv, expand=expand, seq_len=seq_len, batch=batch,
           precision=precision)
    sizes = _Sizes(batch, seq_len, d_model, expand * d_model, d_state, d_conv, math.ceil(d_model / 16))
    return {"version": 1, "name": name, "layers": _block_layers("", None, sizes, precision)}


def mamba_model_document(shape: MambaShape | str, seq_len: int = 1024, batch: int = 1, precision: int = 16,
                         n_layer: int | None = None, name: str | None = None) -> dict:
    shape, name = _shape(shape, name)
    blocks = shape.n_layer if n_layer is None else n_layer
    _check(seq_len=seq_len, batch=batch, precision=precision, n_layer=blocks)
    s = _Sizes(batch, seq_len, shape.d_model, shape.expand * shape.d_model, shape.d_state, shape.d_conv,
               math.ceil(shape.d_model / 16))
    layers, residual = [], None  # the residual stream: the network input, then each block's sum
    for i in range(blocks):
        prefix = f"b{i}."
        layers.append(_norm(f"{prefix}norm", residual, s, precision))
        layers += _block_layers(prefix, f"{prefix}norm", s, precision)
        layers.append(_layer(f"{prefix}residual", "Add", "O[b][l][m]=I[b][l][m]+W[b][l][m]",
                             {"B": s.batch, "L": s.seq, "M": s.model}, precision, weights=(),
                             sources={"I": f"{prefix}out_proj", **({"W": residual} if residual else {})}))
        residual = f"{prefix}residual"
    layers.append(_norm("norm_f", residual, s, precision))
    return {"version": 1, "name": name, "layers": layers}


@dataclass(frozen=True)
class _Sizes:
    batch: int
    seq: int
    model: int
    inner: int
    state: int
    conv: int
    rank: int


def _block_layers(prefix: str, source: str | None, s: _Sizes, p: int) -> list[dict]:
    """The layers of one block; ``source`` feeds the input projections (None: DRAM)."""
    b, l, m, d, n, k, r = s.batch, s.seq, s.model, s.inner, s.state, s.conv, s.rank
    bld, bldn = {"B": b, "L": l, "D": d}, {"B": b, "L": l, "D": d, "N": n}

    def at(name: str) -> str:
        return prefix + name

    def layer(name, op, equation, dims, weights=(), sources=None, **extra) -> dict:
        return _layer(at(name), op, equation, dims, p, weights,
                      {key: at(value) for key, value in (sources or {}).items()}, **extra)

    projection_input = {"I": source} if source else {}
    layers = [
        _layer(at("in_proj_x"), "MatMul", MATMUL, _matmul(b, l, d, m), p, ("W",), projection_input),
        _layer(at("in_proj_z"), "MatMul", MATMUL, _matmul(b, l, d, m), p, ("W",), projection_input),
        layer("conv1d", "Conv", "O[b][l][k]+=W[k][f]*I[b][il][k]", {"B": b, "L": l, "K": d, "F": k}, ("W",),
              {"I": "in_proj_x"}, dimension_relations=["il=1*l+1*f"], padding={"IL": [k - 1, 0]}),
        layer("silu_x", "Silu", "O[b][l][d]=I[b][l][d]", bld, (), {"I": "conv1d"}),
        layer("x_proj_dt", "MatMul", MATMUL, _matmul(b, l, r, d), ("W",), {"I": "silu_x"}),
        layer("x_proj_b", "MatMul", MATMUL, _matmul(b, l, n, d), ("W",), {"I": "silu_x"}),
        layer("x_proj_c", "MatMul", MATMUL, _matmul(b, l, n, d), ("W",), {"I": "silu_x"}),
        layer("dt_proj", "MatMul", MATMUL, _matmul(b, l, d, r), ("W",), {"I": "x_proj_dt"}),
        layer("softplus", "Softplus", "O[b][l][d]=I[b][l][d]", bld, (), {"I": "dt_proj"}),
        layer("disc_a", "Exp", "O[b][l][d][n]=I[b][l][d]*W[d][n]", bldn, ("W",), {"I": "softplus"}),
        layer("dt_x", "Mul", "O[b][l][d]=I[b][l][d]*W[b][l][d]", bld, (), {"I": "softplus", "W": "silu_x"}),
        layer("disc_b", "Mul", "O[b][l][d][n]=I[b][l][d]*W[b][l][n]", bldn, (), {"I": "dt_x", "W": "x_proj_b"}),
        layer("scan", "SelectiveScan", "O[b][l][d][n]=I[b][l][d][n]*W[b][l][d][n]", bldn, (),
              {"I": "disc_a", "W": "disc_b"}, loop_kinds={"L": "sequential"}),
        layer("readout", "Readout", "O[b][l][d]+=I[b][l][d][n]*W[b][l][n]", bldn, (), {"I": "scan", "W": "x_proj_c"}),
        layer("skip_scale", "Mul", "O[b][l][d]=I[b][l][d]*W[d]", bld, ("W",), {"I": "silu_x"}),
        layer("skip", "Add", "O[b][l][d]=I[b][l][d]+W[b][l][d]", bld, (), {"I": "readout", "W": "skip_scale"}),
        layer("silu_z", "Silu", "O[b][l][d]=I[b][l][d]", bld, (), {"I": "in_proj_z"}),
        layer("gate", "Mul", "O[b][l][d]=I[b][l][d]*W[b][l][d]", bld, (), {"I": "skip", "W": "silu_z"}),
        layer("out_proj", "MatMul", MATMUL, _matmul(b, l, m, d), ("W",), {"I": "gate"}),
    ]
    return layers


MATMUL = "O[b][l][k]+=W[k][c]*I[b][l][c]"  # K outputs, C inputs: the names matrix cores' dataflows use


def _matmul(batch: int, tokens: int, outputs: int, inputs: int) -> dict[str, int]:
    return {"B": batch, "L": tokens, "K": outputs, "C": inputs}


def _norm(name: str, source: str | None, s: _Sizes, p: int) -> dict:
    return _layer(name, "RMSNormalization", "O[b][l][m]=I[b][l][m]*W[m]", {"B": s.batch, "L": s.seq, "M": s.model},
                  p, ("W",), {"I": source} if source else {})


def _layer(name: str, op: str, equation: str, dims: dict[str, int], precision: int, weights=(), sources=None,
           **extra) -> dict:
    """One layer of our YAML format. Accumulating layers keep partial sums at twice the
    precision; operands without a source come from DRAM (weights are those listed)."""
    operands = [part.split("[")[0] for part in equation.replace("+=", "=").replace("=", "*").replace("+", "*")
                .split("*")]
    bits = {op: precision for op in operands}
    bits["O"] = 2 * precision if "+=" in equation else precision
    bits["O_final"] = precision
    out = {"name": name, "operator_type": op, "equation": equation, "loop_dims": list(dims),
           "loop_sizes": list(dims.values()), "operand_precision": bits, "constant_operands": list(weights)}
    if sources:
        out["operand_source"] = dict(sources)
    out.update(extra)
    return out


def _shape(shape: MambaShape | str, name: str | None) -> tuple[MambaShape, str]:
    if isinstance(shape, str):
        if shape not in MAMBA_SHAPES:
            raise ValueError(f"unknown Mamba shape {shape!r}; expected one of {sorted(MAMBA_SHAPES)} "
                             f"or a MambaShape")
        return MAMBA_SHAPES[shape], name or shape
    return shape, name or f"mamba_{shape.d_model}x{shape.n_layer}"


def _check(**values: int) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")


__all__ = ["MAMBA_SHAPES", "MambaShape", "mamba_block", "mamba_block_document", "mamba_model",
           "mamba_model_document"]
