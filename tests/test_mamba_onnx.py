"""A Mamba block from ONNX: the custom op stream::SelectiveScan, and the block built from
standard ops (stream.workload.mamba_onnx) against the Python builder (models.mamba_block)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from stream.api import run_detailed
from stream.errors import InputError
from stream.hardware import load_hardware
from stream.mapping.fusion import fused_mapping, unfused_mapping
from stream.mapping.ir import FusionGroup, TileSpec
from stream.tiling import SEQUENTIAL
from stream.workload.ir import DimKind, Role
from stream.workload.mamba_onnx import mamba_block_onnx, save_mamba_block_onnx
from stream.workload.models import mamba_block
from stream.workload.onnx_loader import load_onnx

from conftest import INPUTS

SSM = str(INPUTS / "hardware" / "ssm.yaml")
PAR, SEQ = DimKind.PARALLEL, DimKind.SEQUENTIAL
# the small block of every test: d_model M, d_inner E = 2M, d_state N, d_conv K, dt_rank R = ceil(M/16)
M, N, K, L = 32, 4, 4, 16
E, R = 2 * M, 2
BITS = dict(act_bits=16, weight_bits=16, psum_bits=32)  # the builder's precision=16
PROJECTIONS = ("in_proj_x", "in_proj_z", "x_proj_dt", "x_proj_b", "x_proj_c", "dt_proj", "out_proj")


def load_block(tmp_path, batch=1, **kw):
    path = save_mamba_block_onnx(tmp_path / "mamba_block.onnx", M, d_state=N, d_conv=K, seq_len=L, batch=batch, **kw)
    return load_onnx(path, **BITS)


def weight_bits(workload):
    return sum(l.footprint_bits(op.name) for l in workload.layers for op in l.inputs if op.role is Role.WEIGHT)


# -- the block as ONNX ----------------------------------------------------------------------


def test_model_is_valid_onnx_with_the_stream_domain():
    model = mamba_block_onnx(M, d_state=N, d_conv=K, seq_len=L)
    onnx.checker.check_model(model, full_check=True)
    assert {(o.domain, o.version) for o in model.opset_import} == {("", 17), ("stream", 1)}
    scans = [n for n in model.graph.node if n.domain == "stream"]
    assert [(n.op_type, n.name) for n in scans] == [("SelectiveScan", "scan")]
    assert {t.data_type for t in model.graph.initializer if t.name.endswith("weight")} == {TensorProto.FLOAT16}
    assert not any(n.op_type == "Silu" for n in model.graph.node)  # no standard Silu: Sigmoid and Mul
    with pytest.raises(ValueError, match="precision"):
        mamba_block_onnx(M, precision=8)


class SelectiveScan(OpRun):  # the reference evaluator matches ops by class name
    """stream::SelectiveScan for ONNX's reference evaluator."""

    op_domain = "stream"

    def _run(self, da, dbx, axis=1):
        da, dbx = np.moveaxis(da, axis, 0), np.moveaxis(dbx, axis, 0)
        h, state = np.empty_like(dbx), np.zeros_like(dbx[0])
        for step in range(len(dbx)):
            state = da[step] * state + dbx[step]
            h[step] = state
        return (np.moveaxis(h, 0, axis),)


def test_onnx_block_computes_a_mamba_block():
    """The graph (conv padding, transposes, broadcasts, readout) against plain numpy."""
    batch = 2
    model = mamba_block_onnx(M, d_state=N, d_conv=K, seq_len=L, batch=batch, precision=32)
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    u = np.random.default_rng(1).standard_normal((batch, L, M)).astype(np.float32)
    got = ReferenceEvaluator(model, new_ops=[SelectiveScan]).run(None, {"u": u})[0]

    def silu(v):
        return v / (1 + np.exp(-v))

    x, z = u @ w["in_proj_x_weight"], u @ w["in_proj_z_weight"]
    padded = np.pad(x, ((0, 0), (K - 1, 0), (0, 0)))  # causal: K - 1 zeros before the first token
    x = silu(sum(padded[:, j:j + L, :] * w["conv1d_weight"][:, 0, j] for j in range(K)))
    dt = np.log1p(np.exp(x @ w["x_proj_dt_weight"] @ w["dt_proj_weight"]))
    b, c = x @ w["x_proj_b_weight"], x @ w["x_proj_c_weight"]
    h, ys = np.zeros((batch, E, N)), []
    for step in range(L):
        h = np.exp(dt[:, step, :, None] * w["A"]) * h + dt[:, step, :, None] * b[:, step, None, :] * x[:, step, :, None]
        ys.append((h * c[:, step, None, :]).sum(-1))
    want = ((np.stack(ys, 1) + w["D"] * x) * silu(z)) @ w["out_proj_weight"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# -- loading ---------------------------------------------------------------------------


def test_scan_layer(tmp_path):
    wl = load_block(tmp_path, batch=2)
    assert wl.warnings == ()
    scan = wl.layer("scan")
    assert scan.op_type == "SelectiveScan"
    assert dict(zip(scan.dims, scan.sizes)) == {"B": 2, "L": L, "D": E, "N": N}
    assert scan.kinds == (PAR, SEQ, PAR, PAR) and scan.kind("L") is SEQ
    i, w = scan.operand("I"), scan.operand("W")
    assert i.shape == w.shape == scan.output.shape == (2, L, E, N)
    assert i.role is w.role is Role.ACTIVATION and i.precision == w.precision == 16
    assert [s.layer for s in i.sources] == ["disc_a"] and [s.layer for s in w.sources] == ["disc_b"]
    assert scan.output.partial_precision is None  # no reduction: nothing accumulates
    assert scan.macs == 2 * L * E * N


def test_same_block_as_the_builder(tmp_path):
    batch = 2
    onnx_wl = load_block(tmp_path, batch=batch)
    built = mamba_block(M, d_state=N, d_conv=K, seq_len=L, batch=batch, precision=16)
    # the builder's 19 layers; ONNX has SiLU as Sigmoid + Mul (twice) and exp(dt x A) as
    # Mul + Exp, so 22, and its readout is a MatMul (the builder's op type is Readout)
    assert len(built) == 19 and len(onnx_wl) == 22
    extra = {"silu_x_sigmoid", "silu_z_sigmoid", "dt_a"}
    assert {l.name for l in onnx_wl.layers} == {l.name for l in built.layers} | extra
    assert Counter(l.op_type for l in onnx_wl.layers) == {
        "MatMul": 8, "Mul": 7, "Sigmoid": 2, "Conv": 1, "Softplus": 1, "Exp": 1, "SelectiveScan": 1, "Add": 1}

    # weights, 16 bits each: in_proj 2*E*M = 4096, conv1d E*K = 256, x_proj (R+2N)*E = 640,
    # dt_proj E*R = 128, A E*N = 256, D_skip E = 64, out_proj M*E = 2048: 7488 elements
    assert 2 * E * M + E * K + (R + 2 * N) * E + E * R + E * N + E + M * E == 7488
    assert weight_bits(onnx_wl) == weight_bits(built) == 7488 * 16 == 119808

    # projection MACs, B*L = 32 tokens: in_proj 2*32*M*E = 131072, x_proj 32*E*(R+2N) = 20480,
    # dt_proj 32*R*E = 4096, out_proj 32*E*M = 65536
    macs = {name: onnx_wl.layer(name).macs for name in PROJECTIONS}
    assert macs == {name: built.layer(name).macs for name in PROJECTIONS}
    assert sum(macs.values()) == 131072 + 20480 + 4096 + 65536 == 221184
    assert onnx_wl.layer("conv1d").macs == built.layer("conv1d").macs == batch * L * E * K == 8192
    assert onnx_wl.layer("readout").macs == built.layer("readout").macs == batch * L * E * N == 8192

    # B*L*D*N tensors (2*16*64*4 = 8192 elements): the builder's dA, dBx and h; the ONNX
    # graph also writes dt x A before its Exp (the builder's disc_a computes exp(dt x A) at once)
    def bldn(workload):
        return sorted(l.name for l in workload.layers if l.output.elements == batch * L * E * N)

    assert bldn(built) == ["disc_a", "disc_b", "scan"]
    assert bldn(onnx_wl) == ["disc_a", "disc_b", "dt_a", "scan"]


# -- running ---------------------------------------------------------------------------


def _scan_chain(detail):
    """The scan's CNs: their L ranges, the cores they run on, and the SEQUENTIAL edges between them."""
    g, index = detail.cngraph, detail.workload.index("scan")
    cns = list(g.layer_cns(index))
    boxes = [g.box(cn)["L"] for cn in cns]
    cores = {detail.allocation[cn] for cn in cns}
    seq = g.edge_kind == SEQUENTIAL
    edges = sorted(zip(g.edge_src[seq].tolist(), g.edge_dst[seq].tolist(), g.edge_bits[seq].tolist()))
    return cns, boxes, cores, edges


def test_runs_fused_and_layer_by_layer(tmp_path):
    wl = load_block(tmp_path)
    accelerator = load_hardware(SSM)

    detail = run_detailed(wl, SSM, unfused_mapping(wl, accelerator), mode="layer_by_layer", allocator="greedy")
    detail.trace.check()
    assert len(list(detail.cngraph.layer_cns(wl.index("scan")))) == 1

    detail = run_detailed(wl, SSM, fused_mapping(wl, accelerator, chunk=4), mode="fused", allocator="greedy")
    detail.trace.check()
    cns, boxes, cores, edges = _scan_chain(detail)
    assert boxes == [(0, 4), (4, 8), (8, 12), (12, 16)]  # in L order
    assert len(cores) == 1  # the vector core
    # one chain, each edge carrying the D x N state of the last step (16 bits each)
    assert edges == [(a, b, E * N * 16) for a, b in zip(cns, cns[1:])]


def test_runs_fused_along_the_token_dim_of_every_layer(tmp_path):
    """fused_mapping(dim="L") tiles only layers with a dim named L: here the scan alone, as
    the loader names the token dim by position (D in a MatMul, C in a rank-4 elementwise
    layer, OX in the Conv). Tiling every layer's own token dim fuses the whole block."""
    wl = load_block(tmp_path)
    accelerator = load_hardware(SSM)
    assert [l.name for l in wl.layers if l.has_dim("L")] == ["scan"]
    token = {l.name: next(d for d, n in zip(l.dims, l.sizes) if n == L) for l in wl.layers}
    assert Counter(token.values()) == {"D": 16, "C": 3, "OX": 1, "H": 1, "L": 1}
    mapping = fused_mapping(wl, accelerator, chunk=4)
    group = FusionGroup("g0", tuple(token), tuple(TileSpec(f"{name}.{dim}", tile=4) for name, dim in token.items()))
    detail = run_detailed(wl, SSM, dataclasses.replace(mapping, fusion_groups=(group,)), mode="fused",
                          allocator="greedy")
    detail.trace.check()
    g = detail.cngraph
    for name, dim in token.items():  # four chunks of L everywhere
        spans = {g.box(cn)[dim] for cn in g.layer_cns(wl.index(name))}
        assert spans == {(0, 4), (4, 8), (8, 12), (12, 16)}, name
    cns, boxes, cores, edges = _scan_chain(detail)
    assert boxes == [(0, 4), (4, 8), (8, 12), (12, 16)] and len(cores) == 1
    assert edges == [(a, b, E * N * 16) for a, b in zip(cns, cns[1:])]


# -- the custom op on its own, and bad input --------------------------------------------------


def _save(tmp_path, nodes, inputs, opsets=(("", 17), ("stream", 1)), name="model"):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=8)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return path


def scan_node(inputs=("a", "b"), name="scan", op="SelectiveScan", **attrs):
    return helper.make_node(op, list(inputs), ["h"], name=name, domain="stream", **attrs)


def test_scan_shape_is_inferred_for_its_consumers(tmp_path):
    """Rank 3 with a negative axis: (L, D, N) scanned over axis -3; a Relu after it gets its shape."""
    nodes = [scan_node(axis=-3), helper.make_node("Relu", ["h"], ["y"], name="relu")]
    wl = load_onnx(_save(tmp_path, nodes, [("a", [8, 3, 2]), ("b", [8, 3, 2])]))
    scan, relu = wl.layers
    assert scan.dims == ("L", "D", "N") and scan.sizes == (8, 3, 2) and scan.kinds == (SEQ, PAR, PAR)
    assert relu.sizes == (8, 3, 2) and [s.layer for s in relu.operand("I").sources] == ["scan"]


@pytest.mark.parametrize("node, inputs, opsets, key, expected", [
    (scan_node(op="SelectiveScan2", name="bogus"), [("a", [1, 4, 3, 2]), ("b", [1, 4, 3, 2])], None,
     "graph.node bogus.op_type", "an operator of the 'stream' domain (SelectiveScan)"),
    (scan_node(("a",), name="lonely"), [("a", [1, 4, 3, 2])], None,
     "graph.node lonely.input", "SelectiveScan(dA, dBx) -> h"),
    (scan_node(name="mismatch"), [("a", [1, 4, 3, 2]), ("b", [1, 4, 3, 1])], None,
     "graph.node mismatch.input", "dA and dBx of one shape"),
    (scan_node(name="far", axis=4), [("a", [1, 4, 3, 2]), ("b", [1, 4, 3, 2])], None,
     "graph.node far.axis", "an int axis in [-4, 4)"),
    (scan_node(name="undeclared"), [("a", [1, 4, 3, 2]), ("b", [1, 4, 3, 2])], (("", 17),),
     "graph.node undeclared.domain", "domain 'stream' version 1"),
])
def test_bad_stream_nodes(tmp_path, node, inputs, opsets, key, expected):
    path = _save(tmp_path, [node], inputs, **({"opsets": opsets} if opsets else {}))
    with pytest.raises(InputError) as err:
        load_onnx(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: {key}: expected ")
    assert expected in message
