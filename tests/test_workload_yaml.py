"""YAML workloads: the IR values they produce, peer and bundled files, and bad inputs."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from conftest import INPUTS, PEERS, needs_peers, peer_files
from stream.errors import InputError
from stream.workload import AxisExpr, DimKind, Role, load_workload


@pytest.fixture(scope="module")
def resnet18():
    return load_workload(INPUTS / "workloads" / "resnet18.yaml")


def test_resnet18_conv1_values(resnet18):
    conv1 = resnet18.layer("conv1")
    assert conv1.macs == 64 * 3 * 112 * 112 * 7 * 7 == 118_013_952
    # input rows: 2*111 + 6 + 1 = 229 indices from -3, clipped to the 224 real rows
    assert conv1.footprint("I") == 3 * 224 * 224
    assert conv1.footprint("W") == 64 * 3 * 7 * 7
    assert conv1.footprint_bits("O") == 64 * 112 * 112 * 8  # final output precision
    assert conv1.footprint_bits("O", final=False) == 64 * 112 * 112 * 16  # partial sums
    iy = conv1.operand("I").axes[2]
    assert (iy.extent, iy.offset) == (224, -3)
    assert conv1.relevance("I") == {"B": "r", "K": "ir", "C": "r", "OY": "pr", "OX": "pr", "FY": "pr", "FX": "pr"}
    assert conv1.relevance("W")["OY"] == "ir" and conv1.relevance("O")["C"] == "ir"
    assert [conv1.kind(d) for d in ("K", "C", "FY")] == [DimKind.PARALLEL, DimKind.REDUCTION, DimKind.REDUCTION]


def test_resnet18_totals_and_graph(resnet18):
    assert len(resnet18) == 31
    convs = sum(l.macs for l in resnet18.layers if l.op_type in ("Conv", "Gemm"))
    assert convs == 1_814_073_344  # the textbook 1.81 GMAC of ResNet-18
    add = resnet18.layer("layer2.0.add")
    assert resnet18.predecessors("layer2.0.add") == ["layer2.0.conv2", "layer2.0.downsample"]
    assert add.operand("I").role is Role.ACTIVATION and add.operand("W").sources[0].layer == "layer2.0.downsample"
    assert resnet18.layers[0].name == "conv1" and resnet18.layers[-1].name == "fc"


def test_stride_two_box_ranges(resnet18):
    conv = resnet18.layer("layer2.0.conv1")  # 3x3 stride 2, padding 1, 56 -> 28
    iy = conv.operand("I").axes[2]
    # output rows 0..27 read input rows -1..55: clipped to [0, 56)
    assert iy.index_range({"OY": (0, 28), "FY": (0, 3)}) == (0, 56)
    # output row 5 alone reads rows 9, 10, 11
    assert iy.index_range({"OY": (5, 6), "FY": (0, 3)}) == (9, 12)
    assert iy.index_range({"OY": (0, 1), "FY": (0, 3)}) == (0, 2)  # top border: one padded row
    down = resnet18.layer("layer2.0.downsample")  # 1x1 stride 2 reads every other row
    assert down.footprint("I") == 64 * 28 * 28


def test_dilation_and_explicit_padding(write):
    path = write("dilated.yaml", """\
        version: 1
        name: dilated
        layers:
          - name: conv
            equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
            dimension_relations: [ix=1*ox+2*fx, iy=1*oy+2*fy]
            loop_dims: [B, K, C, OY, OX, FY, FX]
            loop_sizes: [1, 4, 2, 8, 8, 3, 3]
            operand_precision: {O: 24, O_final: 8, W: 4, I: 8}
            padding: {IY: [2, 2], IX: [0, 0]}
        """)
    conv = load_workload(path).layers[0]
    iy, ix = conv.operand("I").axes[2:]
    # rows: oy + 2*fy spans 0..11 (12 values), 2 of them at each side are padding
    assert (iy.extent, iy.offset) == (8, -2)
    assert (ix.extent, ix.offset) == (12, 0)
    assert conv.footprint("I") == 2 * 8 * 12
    assert conv.footprint_bits("W") == 4 * 2 * 3 * 3 * 4
    assert conv.operand("O").partial_precision == 24


def test_sequential_kind_and_sources_by_name(write):
    path = write("scan.yaml", """\
        version: 1
        name: scan
        layers:
          - name: proj
            operator_type: Gemm
            equation: O[l][d]+=W[d][c]*I[l][c]
            loop_dims: [L, D, C]
            loop_sizes: [64, 16, 8]
            operand_precision: {O: 16, O_final: 8, W: 8, I: 8}
          - name: scan
            operator_type: Scan
            equation: O[l][d]+=I[l][d]*W[d]
            loop_dims: [L, D]
            loop_sizes: [64, 16]
            loop_kinds: {L: sequential}
            operand_precision: {O: 16, O_final: 8, W: 8, I: 8}
            operand_source: {I: proj}
        """)
    w = load_workload(path)
    scan = w.layer("scan")
    assert scan.kind("L") is DimKind.SEQUENTIAL and scan.kind("D") is DimKind.PARALLEL
    assert scan.operand("I").sources[0].layer == "proj"
    assert scan.operand("W").role is Role.WEIGHT and w.layer("proj").operand("I").role is Role.ACTIVATION


@needs_peers
@pytest.mark.parametrize("path", peer_files("*/workload/*.yaml"), ids=lambda p: p.name)
def test_peer_yaml_workloads_load(path):
    w = load_workload(path)
    assert len(w) >= 4 and w.macs > 0


@needs_peers
def test_peer_resnet18_yaml_conventions():
    w = load_workload(PEERS / "classic-2025" / "workload" / "resnet18.yaml")
    assert len(w) == 31
    pool = w.layers[1]
    assert pool.operand("W").precision == 0 and pool.footprint("W") == 0  # pooling's empty W
    # no padding given: 3x3/2 over 112 rows needs 113 indices, so one padded row at the start
    iy = pool.operand("I").axes[2]
    assert (iy.extent, iy.offset) == (112, -1)


@needs_peers
def test_peer_quirks_become_warnings():
    w = load_workload(PEERS / "2026" / "workload" / "simple_example_workload.yaml")
    assert any("operand_precision.Y" in m and "ignored" in m for m in w.warnings)
    assert any("operand_precision.I: missing" in m for m in w.warnings)
    assert w.layers[3].operand("I").precision == 8


@pytest.mark.parametrize("name", ["resnet18", "two_conv", "fsrcnn"])
def test_bundled_yaml_workloads_load(name):
    w = load_workload(INPUTS / "workloads" / f"{name}.yaml")
    assert not w.warnings


@given(s=st.integers(1, 6), d=st.integers(1, 6), a=st.integers(1, 12), b=st.integers(1, 12))
def test_two_term_distinct_count_matches_brute_force(s, d, a, b):
    axis = AxisExpr((("X", s), ("Y", d)), extent=10**9)
    assert axis.distinct({"X": a, "Y": b}) == len({s * x + d * y for x in range(a) for y in range(b)})


# -- bad inputs ---------------------------------------------------------------------------

LAYER = """\
    version: 1
    name: bad
    layers:
      - name: a
        equation: O[b][k]+=W[k][c]*I[b][c]
        loop_dims: [B, K, C]
        loop_sizes: [1, 4, 4]
        operand_precision: {O: 16, O_final: 8, W: 8, I: 8}
"""


@pytest.mark.parametrize("edit, key, expected", [
    (("loop_sizes: [1, 4, 4]", "loop_sizes: [1, -4, 4]"), "layers[0].loop_sizes[1]", "an integer >= 1"),
    (("loop_sizes: [1, 4, 4]", "loop_sizes: [1, 4]"), "layers[0].loop_sizes", "3 sizes"),
    (("loop_dims: [B, K, C]", "loop_dims: B"), "layers[0].loop_dims", "a list"),
    (("        equation: O[b][k]+=W[k][c]*I[b][c]\n", ""), "layers[0].equation", "present"),
    (("equation: O[b][k]+=W[k][c]*I[b][c]", "equation: O[b][k]+=W[k][z]*I[b][c]"), "layers[0].equation", "loop dims"),
    (("equation: O[b][k]+=W[k][c]*I[b][c]", "equation: O[b][k] W[k]"), "layers[0].equation", "an equation like"),
    (("name: a", "name: a\n        colour: red"), "layers[0].colour", "a known key"),
    (("W: 8, I: 8}", "W: 8, X: 8, I: 8}"), "layers[0].operand_precision.X", "an operand of the equation"),
    (("W: 8, I: 8}", "W: 8}"), "layers[0].operand_precision.I", "a precision"),
    (("version: 1", "version: 2"), "version", "1"),
    (("W: 8, I: 8}", "W: 8, I: 8}\n        operand_source: {I: ghost}"), "layers[0].operand_source.I", "the id of a layer"),
    (("W: 8, I: 8}", "W: 8, I: eight}"), "layers[0].operand_precision.I", "an integer"),
])
def test_bad_workload_names_file_key_and_expectation(write, edit, key, expected):
    text = LAYER.replace(*edit)
    assert text != LAYER
    path = write("bad.yaml", text)
    with pytest.raises(InputError) as info:
        load_workload(path)
    message = str(info.value)
    assert str(path) in message and key in message and expected in message, message


def test_cycle_is_reported_with_its_path(write):
    path = write("cycle.yaml", """\
        version: 1
        name: cycle
        layers:
          - {name: a, equation: "O[k]=I[k]", loop_dims: [K], loop_sizes: [4], operand_precision: {O: 8, I: 8}, operand_source: {I: b}}
          - {name: b, equation: "O[k]=I[k]", loop_dims: [K], loop_sizes: [4], operand_precision: {O: 8, I: 8}, operand_source: {I: a}}
        """)
    with pytest.raises(InputError, match=r"acyclic.*cycle: (a -> b -> a|b -> a -> b)"):
        load_workload(path)


def test_padding_too_small_for_producer(write):
    path = write("pad.yaml", """\
        version: 1
        name: pad
        layers:
          - {name: a, equation: "O[b][k][oy]+=W[k][c]*I[b][c][oy]", loop_dims: [B, K, C, OY], loop_sizes: [1, 2, 2, 8], operand_precision: {O: 8, W: 8, I: 8}}
          - name: b
            equation: O[b][k][oy]+=W[k][c][fy]*I[b][c][iy]
            dimension_relations: [iy=1*oy+1*fy]
            loop_dims: [B, K, C, OY, FY]
            loop_sizes: [1, 2, 2, 8, 3]
            operand_precision: {O: 8, W: 8, I: 8}
            operand_source: {I: a}
            padding: {IY: [0, 0]}
        """)
    with pytest.raises(InputError, match=r"layers\[1\]\.padding\.IY.*10 indices.*8 elements"):
        load_workload(path)


def test_malformed_yaml_and_missing_file(write, tmp_path):
    path = write("broken.yaml", "layers: [\n  - name: a\n")
    with pytest.raises(InputError, match=r"broken\.yaml: line \d+, column \d+: expected valid YAML"):
        load_workload(path)
    with pytest.raises(InputError, match="file not found"):
        load_workload(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match=r"a \.yaml, \.yml or \.onnx"):
        load_workload(tmp_path / "model.txt")
