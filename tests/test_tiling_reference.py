"""stream.tiling.tile against a brute-force reference (tests/tiling_reference.py).

* Hand-checked counts: small conv chains whose edges are worked out in the comments.
  Each runs on the reference and on the analytic tiler.
* Sanity checks of the reference itself: views against numpy, tile splitting.
* Property tests: random small layers (conv with stride/dilation/padding/groups,
  matmul, pooling, broadcast elementwise, sequential) chained directly and through
  Transpose, Reshape, Place (concat) and Slice, random inter- and intra-core tilings,
  both modes. CN boxes, data edges and bits, partial-sum and sequential chains and
  external tensors must equal the reference exactly.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiling_reference import (
    DATA,
    PSUM,
    SEQ,
    External,
    Reference,
    cn_boxes,
    intra_tiles,
    key_of,
    reference,
    to_producer,
    touched,
    view_shapes,
)

from stream.mapping import LayerPlan, TileSpec
from stream.workload.ir import (
    AxisExpr,
    Broadcast,
    DimKind,
    Layer,
    Operand,
    Place,
    Reshape,
    Role,
    Slice,
    Source,
    Transpose,
    Workload,
)

PAR, RED, SEQUENTIAL = DimKind.PARALLEL, DimKind.REDUCTION, DimKind.SEQUENTIAL
ACT, WGT, PSUM_BITS = 8, 4, 24  # distinct precisions, so a mix-up shows in the bits
ONE = AxisExpr((), 1)  # a broadcast axis of size 1


# -- building layers directly with the IR ----------------------------------------------


def ax(dim: str, extent: int, coef: int = 1) -> AxisExpr:
    return AxisExpr(((dim, coef),), extent)


def act(name: str, axes, sources=()) -> Operand:
    return Operand(name, Role.ACTIVATION, tuple(axes), ACT, sources=tuple(sources))


def weight(name: str, axes) -> Operand:
    return Operand(name, Role.WEIGHT, tuple(axes), WGT)


def src(layer: str, *views) -> tuple[Source, ...]:
    return (Source(layer, tuple(views)),)


def make_layer(name: str, op_type: str, dims, out_axes, inputs) -> Layer:
    """``dims`` = [(dim, size, kind), ...]; the output gets a partial precision if it reduces."""
    reduces = any(k is RED for _, _, k in dims)
    out = Operand("O", Role.OUTPUT, tuple(out_axes), ACT, PSUM_BITS if reduces else None)
    return Layer(name, op_type, tuple(d for d, _, _ in dims), tuple(n for _, n, _ in dims),
                 tuple(k for _, _, k in dims), (out, *inputs))


def out_size(n: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    return (n + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def conv(name, x_shape, k, kernel=3, stride=1, dilation=1, pad=0, groups=1, sources=()) -> Layer:
    """O[b][k][oy][ox] += W[k][c][fy][fx] * I[b][c][s*oy+d*fy-p][s*ox+d*fx-p] (ONNX loader's form)."""
    b, c, h, w = x_shape
    oy, ox = (out_size(n, kernel, stride, dilation, pad) for n in (h, w))
    assert oy >= 1 and ox >= 1
    if groups == 1:
        dims = [("B", b, PAR), ("K", k, PAR), ("C", c, RED)]
        i_ch, o_ch, w_ch = ax("C", c), ax("K", k), [ax("K", k), ax("C", c)]
    elif groups == c == k:  # depthwise
        dims = [("B", b, PAR), ("G", groups, PAR)]
        i_ch, o_ch, w_ch = ax("G", c), ax("G", k), [ax("G", k), ONE]
    else:
        cg, kg = c // groups, k // groups
        assert cg * groups == c and kg * groups == k
        dims = [("B", b, PAR), ("G", groups, PAR), ("K", kg, PAR), ("C", cg, RED)]
        i_ch = AxisExpr((("G", cg), ("C", 1)), c)
        o_ch = AxisExpr((("G", kg), ("K", 1)), k)
        w_ch = [o_ch, ax("C", cg)]
    dims += [("OY", oy, PAR), ("OX", ox, PAR), ("FY", kernel, RED), ("FX", kernel, RED)]
    win = [AxisExpr((("OY", stride), ("FY", dilation)), h, -pad),
           AxisExpr((("OX", stride), ("FX", dilation)), w, -pad)]
    inputs = [act("I", [ax("B", b), i_ch, *win], sources),
              weight("W", [*w_ch, ax("FY", kernel), ax("FX", kernel)])]
    return make_layer(name, "Conv", dims, [ax("B", b), o_ch, ax("OY", oy), ax("OX", ox)], inputs)


def pool(name, x_shape, kernel=2, stride=2, dilation=1, pad=0, sources=()) -> Layer:
    b, c, h, w = x_shape
    oy, ox = (out_size(n, kernel, stride, dilation, pad) for n in (h, w))
    dims = [("B", b, PAR), ("C", c, PAR), ("OY", oy, PAR), ("OX", ox, PAR),
            ("FY", kernel, RED), ("FX", kernel, RED)]
    win = [AxisExpr((("OY", stride), ("FY", dilation)), h, -pad),
           AxisExpr((("OX", stride), ("FX", dilation)), w, -pad)]
    return make_layer(name, "MaxPool", dims, [ax("B", b), ax("C", c), ax("OY", oy), ax("OX", ox)],
                      [act("I", [ax("B", b), ax("C", c), *win], sources)])


def global_pool(name, x_shape, sources=()) -> Layer:
    """O[b][c][0][0] over all of I[b][c][fy][fx]: output [B, C, 1, 1]."""
    b, c, h, w = x_shape
    dims = [("B", b, PAR), ("C", c, PAR), ("FY", h, RED), ("FX", w, RED)]
    return make_layer(name, "GlobalAveragePool", dims, [ax("B", b), ax("C", c), ONE, ONE],
                      [act("I", [ax("B", b), ax("C", c), ax("FY", h), ax("FX", w)], sources)])


def matmul(name, d, c, k, i_sources=(), w_sources=None) -> Layer:
    """O[d][k] += I[d][c] * W[c][k]; W a weight unless ``w_sources`` is given."""
    dims = [("D", d, PAR), ("C", c, RED), ("K", k, PAR)]
    w_op = weight("W", [ax("C", c), ax("K", k)]) if w_sources is None else act("W", [ax("C", c), ax("K", k)], w_sources)
    return make_layer(name, "MatMul", dims, [ax("D", d), ax("K", k)],
                      [act("I", [ax("D", d), ax("C", c)], i_sources), w_op])


NAMES = {4: ("B", "C", "OY", "OX"), 3: ("B", "D", "K"), 2: ("D", "K"), 1: ("K",)}


def eltwise(name, shape, inputs) -> Layer:
    """O[...] = f(I[...], W[...]); ``inputs`` = [(shape, sources), ...], numpy broadcasting."""
    names = NAMES[len(shape)]
    dims = [(n, s, PAR) for n, s in zip(names, shape)]
    ops = []
    for i, (in_shape, sources) in enumerate(inputs):
        lead = len(shape) - len(in_shape)
        axes = [ONE if n == 1 and shape[lead + j] != 1 else ax(names[lead + j], n) for j, n in enumerate(in_shape)]
        ops.append(act(("I", "W")[i], axes, sources))
    return make_layer(name, "Add" if len(inputs) > 1 else "Relu", dims,
                      [ax(n, s) for n, s in zip(names, shape)], ops)


def scan(name, length, k, c=None, sources=()) -> Layer:
    """A recurrence over L: O[l][k] = f(O[l-1], I[l][k]); with ``c``, O[l][k] += I[l][c] * W[c][k]."""
    if c is None:
        dims = [("L", length, SEQUENTIAL), ("K", k, PAR)]
        return make_layer(name, "Scan", dims, [ax("L", length), ax("K", k)],
                          [act("I", [ax("L", length), ax("K", k)], sources)])
    dims = [("L", length, SEQUENTIAL), ("K", k, PAR), ("C", c, RED)]
    return make_layer(name, "RNN", dims, [ax("L", length), ax("K", k)],
                      [act("I", [ax("L", length), ax("C", c)], sources), weight("W", [ax("C", c), ax("K", k)])])


def heads_matmul(name, d, h, c, k, sources=()) -> Layer:
    """O[h][d][k] += I[d][h][c] * W[h][c][k]: per-head projection of a [D, H, C] tensor."""
    dims = [("H", h, PAR), ("D", d, PAR), ("C", c, RED), ("K", k, PAR)]
    return make_layer(name, "MatMul", dims, [ax("H", h), ax("D", d), ax("K", k)],
                      [act("I", [ax("D", d), ax("H", h), ax("C", c)], sources),
                       weight("W", [ax("H", h), ax("C", c), ax("K", k)])])


def tokens_matmul(name, b, t, c, k, sources=()) -> Layer:
    """O[b][t][k] += I[b][t][c] * W[c][k]."""
    dims = [("B", b, PAR), ("D", t, PAR), ("C", c, RED), ("K", k, PAR)]
    return make_layer(name, "MatMul", dims, [ax("B", b), ax("D", t), ax("K", k)],
                      [act("I", [ax("B", b), ax("D", t), ax("C", c)], sources), weight("W", [ax("C", c), ax("K", k)])])


def plan(layer: str, inter=(), intra=()) -> LayerPlan:
    return LayerPlan(layer, (0,), None, tuple(inter), tuple(intra))


def workload(*layers: Layer) -> Workload:
    return Workload.from_layers("test", list(layers))


# -- the analytic graph in the reference's terms ------------------------------------------


def observe(g) -> Reference:
    """Read a CNGraph into a :class:`Reference` (CNs named by layer and box)."""
    for attr in ("edge_kind", "ext_uses"):
        if not hasattr(g, attr):
            pytest.fail(f"stream.tiling.CNGraph has no {attr!r} yet (the new tiler has not landed)")
    keys = [key_of(g.layer_of(i), g.box(i)) for i in range(g.num_cns)]
    assert len(set(keys)) == len(keys), "two CNs with the same layer and box"
    cns = defaultdict(list)
    for k in keys:
        cns[k[0]].append(k)
    data_bits, data_edges, psum, seq = defaultdict(int), defaultdict(int), set(), set()
    for s, d, b, kind in zip(*(np.asarray(a).tolist() for a in (g.edge_src, g.edge_dst, g.edge_bits, g.edge_kind))):
        edge = (keys[s], keys[d])
        if kind == DATA:
            data_bits[edge] += b
            data_edges[edge] += 1
        elif kind == PSUM:
            assert (*edge, b) not in psum, f"duplicate partial-sum edge {edge}"
            psum.add((*edge, b))
        elif kind == SEQ:
            assert (*edge, b) not in seq, f"duplicate sequential edge {edge}"
            seq.add((*edge, b))
        else:
            raise AssertionError(f"unknown edge kind {kind}")
    externals = {}
    for i in range(g.num_cns):
        layer, box = g.layer_of(i), g.box(i)
        for e in np.asarray(g.external_inputs(i)).tolist():
            t = g.externals[e]
            if e not in externals:
                op = layer.operand(t.operand)
                externals[e] = External(g.workload.layers[t.layer].name, t.operand, t.role,
                                        tuple(a.index_range(box) for a in op.axes), bits={int(t.bits)})
            assert externals[e].layer == layer.name, f"external {e} used by a CN of another layer"
            externals[e].cns.append(keys[i])
    for e, ext in externals.items():
        assert int(g.ext_uses[e]) == len(ext.cns), f"ext_uses[{e}] = {g.ext_uses[e]}, used by {len(ext.cns)} CNs"
    return Reference(dict(cns), dict(data_bits), dict(data_edges), psum, seq, externals)


def run(impl: str, wl: Workload, plans, mode: str = "fused") -> Reference:
    if impl == "reference":
        return reference(wl, plans, mode)
    from stream.tiling import tile

    return observe(tile(wl, plans, mode))


IMPLS = pytest.mark.parametrize("impl", ["reference", "tiling"])


# -- comparing ---------------------------------------------------------------------------


def _short(key) -> str:
    name, box = key
    return f"{name}{[f'{a}:{b}' for a, b in box]}"


def _diff_dicts(what: str, want: dict, got: dict, limit: int = 6) -> list[str]:
    lines = []
    for k in sorted(set(want) | set(got), key=str):
        if want.get(k) != got.get(k):
            lines.append(f"  {what} {_short(k[0])} -> {_short(k[1])}: expected {want.get(k)}, got {got.get(k)}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"  ... {len(lines) - limit} more"]
    return lines


def _diff_sets(what: str, want: set, got: set, limit: int = 6) -> list[str]:
    lines = [f"  missing {what} {_short(a)} -> {_short(b)} ({bits} bits)" for a, b, bits in sorted(want - got, key=str)]
    lines += [f"  extra {what} {_short(a)} -> {_short(b)} ({bits} bits)" for a, b, bits in sorted(got - want, key=str)]
    if len(lines) > limit:
        lines = lines[:limit] + [f"  ... {len(lines) - limit} more"]
    return lines


def _ext_partition(refs) -> dict:
    """(layer, operand) -> sorted list of (users, role, bits)."""
    out = defaultdict(list)
    for ext in refs:
        out[ext.layer, ext.operand].append((tuple(sorted(ext.cns)), ext.role, tuple(sorted(ext.bits))))
    return {k: sorted(v) for k, v in out.items()}


def describe(wl: Workload, plans, mode: str) -> str:
    lines = [f"mode={mode}"]
    for layer in wl.layers:
        p = plans[layer.name]
        sizes = ", ".join(f"{d}={n}" for d, n in zip(layer.dims, layer.sizes))
        srcs = [f"{op.name}<-{s.layer}{list(s.views) if s.views else ''}" for op in layer.inputs for s in op.sources]
        intra = [(t.dim, f"tile={t.tile}" if t.tile is not None else f"count={t.count}") for t in p.intra_core]
        lines.append(f"  {layer.name} {layer.op_type}({sizes}) {srcs} inter={list(p.inter_core)} intra={intra}")
    return "\n".join(lines)


def check(wl: Workload, plans, mode: str) -> None:
    """The analytic graph equals the reference: CNs, data edges, chains, externals."""
    want = reference(wl, plans, mode)
    got = run("tiling", wl, plans, mode)
    head = describe(wl, plans, mode)
    for name in want.cns:
        w, g = sorted(want.cns[name]), sorted(got.cns.get(name, []))
        assert w == g, f"{head}\nCN boxes of {name}: expected {len(w)} {[_short(k) for k in w[:4]]}..., got {len(g)} {[_short(k) for k in g[:4]]}..."
    problems = _diff_dicts("data bits", want.data_bits, got.data_bits)
    assert not problems, f"{head}\ndata edges differ:\n" + "\n".join(problems)
    # At most one data edge per (producer CN, consumer CN) and operand-source; the tiler
    # may merge the edges of several operands reading the same producer CN into one.
    problems = [f"  {_short(p)} -> {_short(c)}: {n} data edges, expected 1..{want.data_edges[p, c]}"
                for (p, c), n in got.data_edges.items() if not 1 <= n <= want.data_edges.get((p, c), 0)]
    assert not problems, f"{head}\ndata edge counts:\n" + "\n".join(problems[:6])
    problems = _diff_sets("partial-sum edge", want.psum_chain, got.psum_chain)
    assert not problems, f"{head}\npartial-sum chains differ:\n" + "\n".join(problems)
    problems = _diff_sets("sequential edge", want.seq_chain, got.seq_chain)
    assert not problems, f"{head}\nsequential chains differ:\n" + "\n".join(problems)
    w, g = _ext_partition(want.externals.values()), _ext_partition(got.externals.values())
    assert set(w) == set(g), f"{head}\nexternal operands: expected {sorted(w)}, got {sorted(g)}"
    for k in w:
        strip = lambda groups: [(users, role) for users, role, _ in groups]
        assert strip(w[k]) == strip(g[k]), (
            f"{head}\nexternals of {k}: expected {len(w[k])} groups "
            f"{[[_short(u) for u in users] for users, _ in strip(w[k])][:3]}, got {len(g[k])} "
            f"{[[_short(u) for u in users] for users, _ in strip(g[k])][:3]}")
        for (users, _, wbits), (_, _, gbits) in zip(w[k], g[k]):
            if len(wbits) == 1:  # all users touch the same number of elements
                layer = wl.layer(k[0])
                formula = layer.footprint_bits(k[1], dict(zip(layer.dims, users[0][1])))
                assert wbits == gbits, (
                    f"{head}\nexternal {k} used by {[_short(u) for u in users][:3]}: expected {wbits[0]} bits "
                    f"(elements actually touched), got {gbits[0]} (Layer.footprint_bits gives {formula})")


# -- hand-checked counts ----------------------------------------------------------------

# Producer "p": a 1x1 conv from the network input, K=4 output channels, H x W.
# Consumer "c": a 3x3 (or 1x1) conv of p's output, pad 1, K=2. Both tiled by output rows.


def conv_pair(h=6, w=6, kernel=3, stride=1, pad=1, c_in=4) -> tuple[Layer, Layer]:
    p = conv("p", (1, 3, h, w), c_in, kernel=1)
    c = conv("c", (1, c_in, h, w), 2, kernel=kernel, stride=stride, pad=pad, sources=src("p"))
    return p, c


def rows_in(ref: Reference, consumer: Layer, row: int) -> dict[int, int]:
    """Producer row (OY start) -> data bits into the consumer CN of output row ``row``."""
    out = defaultdict(int)
    for (p, c), bits in ref.data_bits.items():
        if c[0] == consumer.name and dict(zip(consumer.dims, c[1]))["OY"] == (row, row + 1):
            out[dict(zip(("B", "K", "C", "OY"), p[1]))["OY"][0]] += bits
    return dict(out)


def edges_into(ref: Reference, consumer: Layer, row: int) -> list:
    return [(p, c) for (p, c) in ref.data_edges if c[0] == consumer.name
            and dict(zip(consumer.dims, c[1]))["OY"] == (row, row + 1)]


@IMPLS
def test_hand_3x3_stride1_reads_three_rows(impl):
    p, c = conv_pair()
    ref = run(impl, workload(p, c), {"p": plan("p", intra=[TileSpec("OY", tile=1)]),
                                      "c": plan("c", intra=[TileSpec("OY", tile=1)])})
    row_bits = 4 * 6 * ACT  # one producer row: C=4 channels x OX=6 columns x 8 bits = 192
    assert rows_in(ref, c, 0) == {0: row_bits, 1: row_bits}  # top border: rows -1 (padding), 0, 1
    for r in range(1, 5):
        assert rows_in(ref, c, r) == {r - 1: row_bits, r: row_bits, r + 1: row_bits}  # 3 x 192 = 576
    assert rows_in(ref, c, 5) == {4: row_bits, 5: row_bits}  # bottom border: 384
    assert len(ref.data_bits) == 2 + 4 * 3 + 2


@IMPLS
def test_hand_3x3_stride2_reads_rows_2r_minus_1_to_2r_plus_1(impl):
    p, c = conv_pair(h=8, w=8, stride=2)
    assert c.size("OY") == 4 and c.size("OX") == 4  # (8 + 2 - 3) // 2 + 1
    ref = run(impl, workload(p, c), {"p": plan("p", intra=[TileSpec("OY", tile=1)]),
                                      "c": plan("c", intra=[TileSpec("OY", tile=1)])})
    # columns 2*ox-1 .. 2*ox+1 for ox in 0..3 cover -1..7: all 8 producer columns
    row_bits = 4 * 8 * ACT  # 256
    assert rows_in(ref, c, 0) == {0: row_bits, 1: row_bits}  # rows -1, 0, 1
    assert rows_in(ref, c, 1) == {1: row_bits, 2: row_bits, 3: row_bits}
    assert rows_in(ref, c, 2) == {3: row_bits, 4: row_bits, 5: row_bits}
    assert rows_in(ref, c, 3) == {5: row_bits, 6: row_bits, 7: row_bits}


@IMPLS
def test_hand_1x1_reads_exactly_its_row(impl):
    p, c = conv_pair(kernel=1, pad=0)
    ref = run(impl, workload(p, c), {"p": plan("p", intra=[TileSpec("OY", tile=1)]),
                                      "c": plan("c", intra=[TileSpec("OY", tile=1)])})
    for r in range(6):
        assert rows_in(ref, c, r) == {r: 4 * 6 * ACT}  # one row: 192 bits
    assert len(ref.data_bits) == 6


@IMPLS
def test_hand_producer_k_split_multiplies_in_edges(impl):
    p, c = conv_pair()
    ref = run(impl, workload(p, c), {"p": plan("p", inter=[("K", 4)], intra=[TileSpec("OY", tile=1)]),
                                      "c": plan("c", intra=[TileSpec("OY", tile=1)])})
    piece_bits = 1 * 6 * ACT  # one channel of one row: 48
    for r in range(6):
        rows = 2 if r in (0, 5) else 3
        edges = edges_into(ref, c, r)
        assert len(edges) == rows * 4  # 12 in-edges (8 at the borders): 3 rows x 4 K pieces
        assert all(ref.data_bits[e] == piece_bits for e in edges)
        assert sum(ref.data_bits[e] for e in edges) == rows * 4 * 6 * ACT  # same total as unsplit
        assert {dict(zip(p.dims, e[0][1]))["K"] for e in edges} == {(0, 1), (1, 2), (2, 3), (3, 4)}


@IMPLS
def test_hand_reduction_split_chains_and_feeds_from_last_tile(impl):
    # p: 1x1 conv, C=8 split into 4 tiles of 2 (intra C count 4), K=4, 4x4, by rows.
    p = conv("p", (1, 8, 4, 4), 4, kernel=1)
    c = conv("c", (1, 4, 4, 4), 2, kernel=1, sources=src("p"))
    ref = run(impl, workload(p, c), {"p": plan("p", intra=[TileSpec("OY", tile=1), TileSpec("C", count=4)]),
                                      "c": plan("c", intra=[TileSpec("OY", tile=1)])})
    assert len(ref.cns["p"]) == 16  # 4 rows x 4 C tiles
    chain_bits = 4 * 4 * PSUM_BITS  # K=4 x OX=4 partial sums of 24 bits = 384
    assert len(ref.psum_chain) == 4 * 3  # 3 chain edges per output row
    for a, b, bits in ref.psum_chain:
        ba, bb = dict(zip(p.dims, a[1])), dict(zip(p.dims, b[1]))
        assert ba["OY"] == bb["OY"] and ba["C"][1] == bb["C"][0]  # consecutive C tiles of one row
        assert bits == chain_bits
    assert not ref.seq_chain
    for r in range(4):
        edges = edges_into(ref, c, r)
        assert len(edges) == 1  # only the tile that completes the sum
        (pk, _), = edges
        assert dict(zip(p.dims, pk[1]))["C"] == (6, 8) and dict(zip(p.dims, pk[1]))["OY"] == (r, r + 1)
        assert ref.data_bits[edges[0]] == 4 * 4 * ACT  # 128: final outputs of one row
    assert not any(a[0] == "p" and dict(zip(p.dims, a[1]))["C"] != (6, 8) for a, _ in ref.data_bits)


@IMPLS
def test_hand_sequential_tiles_chain_in_order(impl):
    x = eltwise("x", (8, 4), [((8, 4), ())])  # network input -> [L=8, K=4]
    s = scan("s", 8, 4, sources=src("x"))
    ref = run(impl, workload(x, s), {"x": plan("x"),
                                      "s": plan("s", inter=[("K", 2)], intra=[TileSpec("L", tile=2)])})
    assert len(ref.cns["s"]) == 8  # 2 K pieces x 4 chunks of L
    want = set()
    for k in ((0, 2), (2, 4)):  # per K piece: L 0:2 -> 2:4 -> 4:6 -> 6:8, handing on the
        for l0 in (0, 2, 4):    # state: the last row of the chunk, 2 K elements
            want.add((("s", ((l0, l0 + 2), k)), ("s", ((l0 + 2, l0 + 4), k)), 2 * ACT))
    assert ref.seq_chain == want
    assert not ref.psum_chain
    # each chunk reads its own 2x2 slice of x (one CN): 4 elements x 8 bits
    assert all(bits == 2 * 2 * ACT for bits in ref.data_bits.values()) and len(ref.data_bits) == 8


@IMPLS
def test_hand_layer_by_layer_ignores_intra_core_tiling(impl):
    p, c = conv_pair()
    ref = run(impl, workload(p, c), {"p": plan("p", inter=[("K", 2)], intra=[TileSpec("OY", tile=1)]),
                                      "c": plan("c", intra=[TileSpec("OY", tile=1)])}, "layer_by_layer")
    assert len(ref.cns["p"]) == 2 and len(ref.cns["c"]) == 1
    # the whole consumer reads each K half of p whole: 2 channels x 6 x 6 x 8 bits = 576
    assert sorted(ref.data_bits.values()) == [576, 576]
    assert not ref.psum_chain and not ref.seq_chain


@IMPLS
def test_hand_externals_weights_and_input_slices(impl):
    # first layer: 3x3 pad 1 conv of the network input [1, 4, 6, 6], K=4 in 2 pieces, by rows
    c = conv("c", (1, 4, 6, 6), 4, kernel=3, pad=1)
    ref = run(impl, workload(c), {"c": plan("c", inter=[("K", 2)], intra=[TileSpec("OY", tile=1)])})
    by_operand = defaultdict(list)
    for ext in ref.externals.values():
        by_operand[ext.operand].append(ext)
    # weights: one slice per K piece, used by its 6 row CNs: 2 K x 4 C x 3 x 3 x 4 bits = 288
    assert sorted((len(e.cns), sorted(e.bits)) for e in by_operand["W"]) == [(6, [288]), (6, [288])]
    assert all(e.role is Role.WEIGHT for e in by_operand["W"])
    # a row CN reads input rows r-1..r+1 (2 at the borders), all 4 channels and 6 columns:
    # the rows are cut at every such boundary, one tensor a row, read by the CNs of both K
    # pieces whose window holds it (rows 0 and 5: two windows; rows 1-4: three)
    rows = sorted((len(e.cns), sorted(e.bits)) for e in by_operand["I"])
    assert rows == [(4, [4 * 6 * ACT])] * 2 + [(6, [4 * 6 * ACT])] * 4
    assert all(e.role is Role.ACTIVATION for e in by_operand["I"])


@IMPLS
def test_hand_concat_reads_each_half_from_its_producer(impl):
    a = conv("a", (1, 3, 4, 4), 2, kernel=1)
    b = conv("b", (1, 3, 4, 4), 3, kernel=1)
    cat = (Source("a", (Place(1, 0, 5),)), Source("b", (Place(1, 2, 5),)))
    e = eltwise("e", (1, 5, 4, 4), [((1, 5, 4, 4), cat)])
    ref = run(impl, workload(a, b, e), {"a": plan("a"), "b": plan("b"),
                                         "e": plan("e", intra=[TileSpec("C", tile=1)])})
    for ch in range(5):  # channel ch of the concat: a's channel ch, or b's channel ch - 2
        edges = [(pk[0], bits) for (pk, ck), bits in ref.data_bits.items() if ck[1][1] == (ch, ch + 1)]
        assert edges == [("a" if ch < 2 else "b", 4 * 4 * ACT)]  # one channel of 4x4: 128 bits


@IMPLS
def test_hand_strided_slice_reads_one_piece(impl):
    p = conv("p", (1, 3, 4, 4), 6, kernel=1)
    e = eltwise("e", (1, 3, 4, 4), [((1, 3, 4, 4), src("p", Slice(1, 1, 6, 2)))])  # channels 1, 3, 5
    ref = run(impl, workload(p, e), {"p": plan("p", inter=[("K", 3)]),  # pieces K 0:2, 2:4, 4:6
                                      "e": plan("e", intra=[TileSpec("C", tile=1)])})
    got = sorted((dict(zip(p.dims, pk[1]))["K"], ck[1][1], bits) for (pk, ck), bits in ref.data_bits.items())
    assert got == [((0, 2), (0, 1), 16 * ACT), ((2, 4), (1, 2), 16 * ACT), ((4, 6), (2, 3), 16 * ACT)]


@IMPLS
def test_hand_transpose_and_two_operands_of_one_producer(impl):
    # q = p @ p^T: I reads p as is, W reads it transposed; p split D into 2 pieces
    x = matmul("p", 4, 3, 6)
    q = matmul("q", 4, 6, 4, i_sources=src("p"), w_sources=src("p", Transpose((1, 0))))
    ref = run(impl, workload(x, q), {"p": plan("p", inter=[("D", 2)]),
                                      "q": plan("q", intra=[TileSpec("D", tile=1)])})
    for d in range(4):
        edges = {pk[1][0]: bits for (pk, ck), bits in ref.data_bits.items() if ck[1][0] == (d, d + 1)}
        own = (0, 2) if d < 2 else (2, 4)
        other = (2, 4) if d < 2 else (0, 2)
        # I: row d of p (6 values); W: all of p^T, i.e. 2 rows x 6 of each piece (12 values)
        assert edges == {own: (6 + 12) * ACT, other: 12 * ACT}
        # the reference has one edge per operand (2 from the own piece); the tiler may merge them
        assert ref.data_edges[("p", (own, (0, 3), (0, 6))), ("q", ((d, d + 1), (0, 6), (0, 4)))] in (
            (1, 2) if impl == "tiling" else (2,))


@IMPLS
def test_hand_reshape_heads(impl):
    # p: [D=2, K=6] -> [D, H=3, 2]; K split in 3 pieces of 2 = one head each
    p = matmul("p", 2, 4, 6)
    h = heads_matmul("h", 2, 3, 2, 5, sources=src("p", Reshape((2, 6), (2, 3, 2))))
    ref = run(impl, workload(p, h), {"p": plan("p", inter=[("K", 3)]),
                                      "h": plan("h", intra=[TileSpec("H", tile=1)])})
    got = sorted((pk[1][2], ck[1][0], bits) for (pk, ck), bits in ref.data_bits.items())
    assert got == [((2 * i, 2 * i + 2), (i, i + 1), 2 * 2 * ACT) for i in range(3)]  # D=2 x 2 values


# -- sanity checks of the reference itself ---------------------------------------------------


def test_reference_intra_tiles():
    assert intra_tiles(0, 5, TileSpec("X", count=4)) == [(0, 2), (2, 4), (4, 5)]  # ceil(5/4)=2, never empty
    assert intra_tiles(2, 9, TileSpec("X", count=2)) == [(2, 6), (6, 9)]
    assert intra_tiles(0, 3, TileSpec("X", count=7)) == [(0, 1), (1, 2), (2, 3)]
    assert intra_tiles(3, 10, TileSpec("X", tile=3)) == [(3, 6), (6, 9), (9, 10)]
    assert intra_tiles(0, 2, TileSpec("X", tile=5)) == [(0, 2)]
    layer = matmul("m", 5, 4, 7)
    boxes = cn_boxes(layer, plan("m", inter=[("K", 3)], intra=[TileSpec("K", tile=2), TileSpec("C", count=3)]))
    # K pieces 0:2, 2:4, 4:7 -> tiles 0:2 | 2:4 | 4:6, 6:7; C in tiles of 2: 0:2, 2:4
    assert sorted({b["K"] for b in boxes}) == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert sorted({b["C"] for b in boxes}) == [(0, 2), (2, 4)]
    assert len(boxes) == 8
    assert len(cn_boxes(layer, plan("m", inter=[("K", 3)], intra=[TileSpec("K", tile=1)]), "layer_by_layer")) == 3


def _forward(label: np.ndarray, views) -> np.ndarray:
    """Apply views to a tensor with numpy's own operations (-1 where nothing lands)."""
    for v in views:
        if isinstance(v, Transpose):
            label = np.transpose(label, v.perm)
        elif isinstance(v, Reshape):
            label = label.reshape(v.shape_out)
        elif isinstance(v, Slice):
            label = np.take(label, np.arange(v.start, min(v.stop, label.shape[v.axis]), v.step), axis=v.axis)
        elif isinstance(v, Place):
            shape = list(label.shape)
            shape[v.axis] = v.size
            big = np.full(shape, -1, dtype=label.dtype)
            index = [slice(None)] * label.ndim
            index[v.axis] = slice(v.offset, v.offset + label.shape[v.axis])
            big[tuple(index)] = label
            label = big
    return label


@st.composite
def view_chains(draw):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    views, cur = [], shape
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["transpose", "reshape", "slice", "place"]))
        if kind == "transpose":
            v = Transpose(tuple(draw(st.permutations(range(len(cur))))))
        elif kind == "reshape":
            total = int(np.prod(cur))
            divisors = [d for d in range(1, total + 1) if total % d == 0]
            first = draw(st.sampled_from(divisors))
            out = (first, total // first) if draw(st.booleans()) else (total,)
            v = Reshape(cur, out)
        elif kind == "slice":
            axis = draw(st.integers(0, len(cur) - 1))
            start = draw(st.integers(0, cur[axis] - 1))
            v = Slice(axis, start, draw(st.integers(start + 1, cur[axis] + 2)), draw(st.integers(1, 3)))
        else:
            axis = draw(st.integers(0, len(cur) - 1))
            offset = draw(st.integers(0, 3))
            v = Place(axis, offset, offset + cur[axis] + draw(st.integers(0, 3)))
        views.append(v)
        cur = view_shapes(cur, [v])[-1]
    return shape, tuple(views)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(view_chains())
def test_reference_views_agree_with_numpy(chain):
    shape, views = chain
    labels = np.arange(int(np.prod(shape))).reshape(shape)
    forward = _forward(labels, views)
    shapes = view_shapes(shape, views)
    assert forward.shape == shapes[-1]
    for x in np.ndindex(*forward.shape):
        y = to_producer(tuple(x), views, shapes)
        assert (-1 if y is None else labels[y]) == forward[x], (x, y)


def test_reference_every_element_has_one_writer():
    """Summed over producers, each consumer CN gets exactly its distinct in-range inputs."""
    p = conv("p", (1, 2, 7, 7), 3, kernel=1)
    c = conv("c", (1, 3, 7, 7), 2, kernel=3, stride=2, dilation=2, pad=2, sources=src("p"))
    plans = {"p": plan("p", inter=[("OY", 3)], intra=[TileSpec("OX", tile=2), TileSpec("C", count=2)]),
             "c": plan("c", inter=[("K", 2)], intra=[TileSpec("OX", count=2), TileSpec("FY", tile=2)])}
    ref = reference(workload(p, c), plans)
    for key in ref.cns["c"]:
        box = dict(zip(c.dims, key[1]))
        ys = {s * oy + 2 * fy - 2 for oy in range(*box["OY"]) for fy in range(*box["FY"]) for s in (2,)}
        xs = {2 * ox + 2 * fx - 2 for ox in range(*box["OX"]) for fx in range(*box["FX"])}
        n = len([y for y in ys if 0 <= y < 7]) * len([x for x in xs if 0 <= x < 7]) * 3  # x C=3
        assert sum(b for (pk, ck), b in ref.data_bits.items() if ck == key) == n * ACT
    assert all(dict(zip(p.dims, pk[1]))["C"] == (1, 2) for pk, _ in ref.data_bits)  # completing tile only


# -- property tests ----------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True)


@st.composite
def layer_plan(draw, layer: Layer, fixed=(), align=None) -> LayerPlan:
    """Random inter-core splits of parallel dims and intra-core tilings of any dim.

    ``fixed`` dims stay whole; ``align[dim] = m`` keeps every cut on a multiple of m.
    """
    align = align or {}
    par = [d for d, n, k in zip(layer.dims, layer.sizes, layer.kinds) if k is PAR and n >= 2 and d not in fixed]
    inter = []
    for d in draw(st.lists(st.sampled_from(par), unique=True, max_size=2)) if par else []:
        n, m = layer.size(d), align.get(d, 1)
        options = [c for c in range(2, min(n, 4) + 1) if (n // m) % c == 0]
        if options:
            inter.append((d, draw(st.sampled_from(options))))
    splittable = [d for d, n in zip(layer.dims, layer.sizes) if n >= 2 and d not in fixed]
    intra = []
    how_many = draw(st.sampled_from([0, 1, 1, 2, 2, 3]))
    for d in draw(st.lists(st.sampled_from(splittable), unique=True, min_size=min(how_many, len(splittable)),
                           max_size=min(how_many, len(splittable)))) if splittable else []:
        n, m = layer.size(d), align.get(d, 1)
        if m > 1:
            intra.append(TileSpec(d, tile=m * draw(st.integers(1, n // m))))
        elif draw(st.booleans()):
            intra.append(TileSpec(d, tile=draw(st.integers(1, n))))
        else:
            intra.append(TileSpec(d, count=draw(st.integers(1, n))))
    return plan(layer.name, inter, intra)


@st.composite
def plans_for(draw, layers, constraints=None):
    constraints = constraints or {}
    plans = {l.name: draw(layer_plan(l, **constraints.get(l.name, {}))) for l in layers}
    mode = draw(st.sampled_from(["fused", "layer_by_layer"]))
    return workload(*layers), plans, mode


@st.composite
def conv_params(draw, x_shape, max_k=4):
    """(k, kernel, stride, dilation, pad, groups) giving a valid, non-empty conv of ``x_shape``."""
    _, c, h, w = x_shape
    kind = draw(st.sampled_from(["plain", "plain", "depthwise", "grouped"]))
    k = draw(st.integers(1, max_k))
    groups = 1
    if kind == "depthwise":
        k = groups = c
    elif kind == "grouped":
        common = [g for g in range(2, c + 1) if c % g == 0 and g <= max_k]
        if common:
            groups = draw(st.sampled_from(common))
            k = groups * draw(st.integers(1, max(1, max_k // groups)))
    kernel = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    reach = dilation * (kernel - 1)
    pad = draw(st.integers(0, reach))  # every output row touches at least one input row
    stride = draw(st.integers(1, 3))
    if min(h, w) + 2 * pad < reach + 1:
        kernel, dilation, pad = 1, 1, 0
    return {"k": k, "kernel": kernel, "stride": stride, "dilation": dilation, "pad": pad, "groups": groups}


@st.composite
def conv_chains(draw):
    """network input -> conv -> conv (-> max pool), each with random stride, dilation, padding, groups."""
    x = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(3, 7)), draw(st.integers(3, 7)))
    c1 = conv("c1", x, **draw(conv_params(x)))
    c2 = conv("c2", c1.output.shape, **draw(conv_params(c1.output.shape)), sources=src("c1"))
    layers = [c1, c2]
    if draw(st.booleans()) and min(c2.output.shape[2:]) >= 2:
        layers.append(pool("mp", c2.output.shape, kernel=2, stride=draw(st.integers(1, 2)),
                           pad=draw(st.integers(0, 1)), sources=src("c2")))
    return draw(plans_for(layers))


@st.composite
def pool_broadcast(draw):
    """conv -> global pool; conv + broadcast pool -> add; pool -> flatten -> gemm."""
    x = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    c1 = conv("c1", x, **draw(conv_params(x)))
    shape = c1.output.shape
    gp = global_pool("gp", shape, sources=src("c1"))
    add = eltwise("add", shape, [(shape, src("c1")), (gp.output.shape, src("gp"))])
    b, k = shape[:2]
    fc = matmul("fc", b, k, draw(st.integers(1, 4)), i_sources=src("gp", Reshape((b, k, 1, 1), (b, k))))
    layers = [c1, gp, add, fc]
    if min(shape[2:]) >= 2 and draw(st.booleans()):
        layers.append(pool("mp", shape, kernel=2, stride=draw(st.integers(1, 2)), sources=src("add")))
    return draw(plans_for(layers))


@st.composite
def matmul_transposes(draw):
    """input -> mm1 [D, K] -> mm2 = mm1 @ mm1^T -> elementwise over mm2^T; mm1^T -> gemm."""
    d, c, k = (draw(st.integers(1, 5)) for _ in range(3))
    mm1 = matmul("mm1", d, c, k)
    mm2 = matmul("mm2", d, k, d, i_sources=src("mm1"), w_sources=src("mm1", Transpose((1, 0))))
    e = eltwise("e", (d, d), [((d, d), src("mm2", Transpose((1, 0))))])
    mm3 = matmul("mm3", k, d, draw(st.integers(1, 3)), i_sources=src("mm1", Transpose((1, 0))))
    return draw(plans_for([mm1, mm2, e, mm3]))


@st.composite
def reshapes(draw):
    """[D, K] -> [D, H, K/H] heads (K cut on head boundaries); conv [B,K,Y,X] -> [B,K,YX] -> [B,YX,K]."""
    d, heads, per = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    p = matmul("p", d, draw(st.integers(1, 3)), heads * per)
    h = heads_matmul("h", d, heads, per, draw(st.integers(1, 3)),
                     sources=src("p", Reshape((d, heads * per), (d, heads, per))))
    x = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(2, 5)), draw(st.integers(2, 5)))
    c1 = conv("c1", x, **draw(conv_params(x)))
    b, k, y, xx = c1.output.shape
    tok = tokens_matmul("tok", b, y * xx, k, draw(st.integers(1, 3)),
                        sources=src("c1", Reshape((b, k, y, xx), (b, k, y * xx)), Transpose((0, 2, 1))))
    perm = draw(st.permutations(range(4)))
    nhwc = eltwise("perm", tuple(c1.output.shape[i] for i in perm),
                   [(tuple(c1.output.shape[i] for i in perm), src("c1", Transpose(tuple(perm))))])
    constraints = {"p": {"align": {"K": per}}, "c1": {"fixed": ("OX",)}}
    return draw(plans_for([p, h, c1, tok, nhwc], constraints))


@st.composite
def repeats(draw):
    """[A, 1, B] repeated along its size-1 axis (an Expand), then merged into its neighbour
    (grouped-query attention's repeat_kv, a nearest upsample): [A, R, B] -> [A*R, B] or
    [A, R*B] -> consumed elementwise, cut anyhow."""
    a, r, b = draw(st.integers(1, 4)), draw(st.integers(2, 3)), draw(st.integers(1, 4))
    p = eltwise("p", (a, 1, b), [((a, 1, b), ())])
    merged = (a * r, b) if draw(st.booleans()) else (a, r * b)
    views = (Broadcast(1, r), Reshape((a, r, b), merged))
    c = eltwise("c", merged, [(merged, src("p", *views))])
    return draw(plans_for([p, c]))


@st.composite
def concat_slice(draw):
    """input -> conv a, conv b -> concat on channels -> conv; a -> strided slice -> elementwise."""
    x = (1, draw(st.integers(1, 3)), draw(st.integers(3, 6)), draw(st.integers(3, 6)))
    pa = draw(conv_params(x))
    pb = {**pa, "k": draw(st.integers(1, 3)), "groups": 1}
    a = conv("a", x, **{**pa, "groups": 1, "k": draw(st.integers(1, 3))})
    b = conv("b", x, **pb)
    ka, kb = a.output.shape[1], b.output.shape[1]
    cat_shape = (1, ka + kb, *a.output.shape[2:])
    cat = (Source("a", (Place(1, 0, ka + kb),)), Source("b", (Place(1, ka, ka + kb),)))
    c = conv("c", cat_shape, **draw(conv_params(cat_shape)), sources=cat)
    axis = draw(st.integers(1, 3))
    n = a.output.shape[axis]
    start = draw(st.integers(0, n - 1))
    sl = Slice(axis, start, draw(st.integers(start + 1, n)), draw(st.integers(1, 2)))  # clamped, as the loader emits
    shape = view_shapes(a.output.shape, [sl])[-1]
    e = eltwise("e", shape, [(shape, src("a", sl))])
    return draw(plans_for([a, b, c, e]))


@st.composite
def sequential(draw):
    """input -> elementwise [L, K] -> scan (sequential L) -> RNN-like (sequential L, reduction C) -> matmul."""
    length, k, k2 = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x = eltwise("x", (length, k), [((length, k), ())])
    s = scan("s", length, k, sources=src("x"))
    r = scan("r", length, k2, c=k, sources=src("s"))
    m = matmul("m", length, k2, draw(st.integers(1, 3)), i_sources=src("r"))
    return draw(plans_for([x, s, r, m]))


@PROPERTY
@given(conv_chains())
def test_property_conv_chains(case):
    check(*case)


@PROPERTY
@given(pool_broadcast())
def test_property_pool_broadcast_flatten(case):
    check(*case)


@PROPERTY
@given(matmul_transposes())
def test_property_matmul_transposes(case):
    check(*case)


@PROPERTY
@given(reshapes())
def test_property_reshapes(case):
    check(*case)


@PROPERTY
@given(repeats())
def test_property_repeats(case):
    check(*case)


@PROPERTY
@given(concat_slice())
def test_property_concat_slice(case):
    check(*case)


@PROPERTY
@given(sequential())
def test_property_sequential(case):
    check(*case)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.one_of(conv_chains(), pool_broadcast(), matmul_transposes(), reshapes(), concat_slice(), sequential()))
def test_reference_data_bits_sum_to_touched_inputs(case):
    """Reference self-check: without Place, each consumer CN's in-bits = its distinct inputs."""
    wl, plans, mode = case
    ref = reference(wl, plans, mode)
    into = defaultdict(int)
    for (_, c), bits in ref.data_bits.items():
        into[c] += bits
    for layer in wl.layers:
        for key in ref.cns[layer.name]:
            box = dict(zip(layer.dims, key[1]))
            want = 0
            for op in layer.inputs:
                if op.sources and not any(isinstance(v, Place) for s in op.sources for v in s.views):
                    want += len(touched(op, box)) * op.precision * len(op.sources)
                elif op.sources:  # concat: the slabs partition the operand
                    want += len(touched(op, box)) * op.precision
            assert into[key] == want, (key, into[key], want)
