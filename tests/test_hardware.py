"""Hardware loader: the field's two dialects, our format, hand-checked values, bad inputs."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from conftest import PEERS, needs_peers
from stream.errors import InputError
from stream.hardware.ir import Memory, Port
from stream.hardware.loader import load_core, load_hardware

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "inputs" / "hardware"
PEER = PEERS
CLASSIC = PEER / "classic-2025" / "hardware"
NEW = PEER / "2026" / "hardware"

PEER_SYSTEMS = sorted(CLASSIC.glob("*.yaml")) + sorted(NEW.glob("*.yaml"))
PEER_CORES = sorted(CLASSIC.glob("cores/*.yaml")) + sorted(NEW.glob("cores/*.yaml"))
BUNDLED_SYSTEMS = sorted(BUNDLED.glob("*.yaml"))


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.parent.name != "hardware" else f"{path.parents[1].name}/{path.name}"


def test_peer_inputs_present():
    # CI checks out ../shared beside the repository: there its absence is a broken set-up,
    # not a skip; a clone of the repository alone skips the tests that read the peer files
    if not PEER.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"peer inputs not found at {PEER}")
    assert PEER.is_dir(), f"peer inputs missing at {PEER}"
    assert CLASSIC.is_dir() and NEW.is_dir() and len(PEER_SYSTEMS) >= 17 and len(PEER_CORES) >= 26


def _check_accelerator(acc):
    ids = acc.core_ids
    assert len(set(ids)) == len(ids) and list(ids) == sorted(ids)
    assert acc.offchip_core.kind == "offchip" and not acc.offchip_core.is_compute
    assert [link.id for link in acc.links] == list(range(len(acc.links)))
    assert all(set(link.cores) <= set(ids) for link in acc.links)
    assert acc.compute_cores


@needs_peers
@pytest.mark.parametrize("path", PEER_SYSTEMS, ids=_id)
def test_peer_systems_load(path):
    _check_accelerator(load_hardware(path))


@needs_peers
@pytest.mark.parametrize("path", PEER_CORES, ids=_id)
def test_peer_cores_load(path):
    core = load_core(path, 3)
    assert core.id == 3 and core.memories


@pytest.mark.parametrize("path", BUNDLED_SYSTEMS, ids=lambda p: p.name)
def test_bundled_systems_load(path):
    acc = load_hardware(path)
    _check_accelerator(acc)
    assert yaml.safe_load(path.read_text())["version"] == 1
    for core in acc.cores:
        assert yaml.safe_load(Path(core.source_file).read_text())["version"] == 1
    for op in ("Conv", "Gemm", "MatMul"):
        assert any(c.supports(op) and c.operator_types is None for c in acc.compute_cores)


def test_bundled_names():
    assert {p.name for p in BUNDLED_SYSTEMS} >= {"single_core.yaml", "quad_core.yaml", "hetero.yaml", "mesh_4x4.yaml"}


# --- hand-checked values ------------------------------------------------------------


@needs_peers
def test_classic_tpu_like_quad_core():
    acc = load_hardware(CLASSIC / "tpu_like_quad_core.yaml")
    assert acc.name == "tpu_like_quad_core"
    assert len(acc.cores) == 7 and acc.offchip_core_id == 6
    # 12 listed links, then one implicit link per core to DRAM at its 64-bit port
    assert len(acc.links) == 18
    assert acc.links[0].cores == (0, 1) and acc.links[0].bandwidth == 32
    assert [l.cores for l in acc.links[12:]] == [(i, 6) for i in range(6)]
    assert {l.bandwidth for l in acc.links[12:]} == {64}
    assert [c.is_compute for c in acc.cores] == [True] * 6 + [False]
    assert acc.core(0).dataflows == (("D1", (("K", 32),)), ("D2", (("C", 32),)))


@needs_peers
def test_classic_tpu_like_sram_ports():
    sram = load_core(CLASSIC / "cores" / "tpu_like.yaml", 0).top_memory
    assert sram.name == "sram_2MB" and sram.size_bits == 16777216
    assert sram.served_dimensions == ("D1", "D2")
    read, write = sram.ports
    assert (read.name, read.kind, read.bw_min, read.bw_max) == ("r_port_1", "read", 64, 2048)
    assert (write.name, write.kind, write.bw_min, write.bw_max) == ("w_port_1", "write", 64, 2048)
    assert read.allocation == (("I1", "tl"), ("I2", "tl"), ("O", "tl"), ("O", "th"))
    assert write.allocation == (("I1", "fh"), ("I2", "fh"), ("O", "fh"), ("O", "fl"))


@needs_peers
def test_classic_rw_ports_and_default_granularity():
    eyeriss = load_core(CLASSIC / "cores" / "eyeriss_like.yaml", 0)
    sram = eyeriss.memories[-1]
    assert [(p.name, p.kind, p.bw_min, p.bw_max) for p in sram.ports] == [
        ("rw_port_1", "read_write", 384, 384), ("rw_port_2", "read_write", 384, 384)]
    assert sram.port_for("I1", "tl").name == "rw_port_2"
    assert sram.port_for("O", "th").name == "rw_port_1"
    meta = load_core(CLASSIC / "cores" / "meta_prototype.yaml", 0)  # `multipliers:` array key
    assert meta.array.sizes == (32, 2, 4, 4) and meta.array.units == 1024


@needs_peers
@pytest.mark.parametrize("name", ["tpu_like", "eyeriss_like", "simba_chiplet", "offchip"])
def test_both_dialects_describe_the_same_memories(name):
    def shape(core):
        return [(m.name, m.size_bits, m.operands, m.served_dimensions, m.r_cost, m.w_cost,
                 sorted((p.name, p.kind, p.bw_min, p.bw_max, tuple(sorted(p.allocation))) for p in m.ports))
                for m in core.memories]
    assert shape(load_core(CLASSIC / "cores" / f"{name}.yaml", 0)) == shape(load_core(NEW / "cores" / f"{name}.yaml", 0))


@needs_peers
def test_2026_core_types_and_operator_types():
    acc = load_hardware(NEW / "tpu_like_quad_core.yaml")
    assert acc.core(4).operator_types == ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
    assert acc.core(4).supports("MaxPool") and not acc.core(4).supports("Conv")
    assert acc.core(0).operator_types is None and acc.core(0).supports("Conv")
    assert acc.coordinates[2] == (2, (1, 1))
    assert acc.links[-1].kind == "bus" and acc.links[-1].cores == tuple(range(7))
    ironwood = load_hardware(NEW / "tpu_v7_ironwood.yaml")
    assert ironwood.core(9).kind == "memory" and not ironwood.core(9).is_compute
    assert len(ironwood.compute_cores) == 36 and ironwood.offchip_core_id == 40


@needs_peers
@pytest.mark.parametrize("dialect", [CLASSIC, NEW])
def test_fusemax_memory_sharing_and_core_path_fallback(dialect):
    acc = load_hardware(dialect / "fusemax.yaml")
    assert acc.memory_sharing == ((0, 1),)
    # the file names stream/inputs/examples/hardware/cores/...; found under cores/
    assert Path(acc.core(0).source_file) == (dialect / "cores" / "fusemax_array.yaml").resolve()
    assert acc.offchip_core_id == 2 and acc.dram.size_bits == 10**16


def test_units_and_link_energy():
    acc = load_hardware(BUNDLED / "quad_core.yaml")
    assert acc.clock_hz == 1e9
    assert acc.dram.read_bw == 64 and acc.dram.read_bw * acc.clock_hz / 8 == 8e9  # bytes/s
    sram = acc.core(0).top_memory
    assert sram.size_bits == 8 * 2**20  # 1 MiB
    assert acc.links[0].energy_per_bit == 0.1 and acc.links[-1].energy_per_bit == 0.5
    assert acc.links[-1].kind == "bus" and acc.links[-1].bandwidth == 64
    assert load_core(BUNDLED / "cores" / "pool_3x3x8.yaml", 0).operator_types[-1] == "Pooling"
    assert load_hardware(BUNDLED / "hetero.yaml").core(2).dataflows[0] == ("D1", (("FY", 3), ("C", 4)))


@needs_peers
def test_access_energy_hand_example():
    # A 2048-bit port with 64-bit granularity moving 256 bits: ceil(256/64) * 64/2048 = 4/32 word.
    sram = load_core(CLASSIC / "cores" / "tpu_like.yaml", 0).top_memory
    assert sram.access_energy(256, write=False) == pytest.approx(4 / 32 * 416.16)
    assert sram.access_energy(256, write=True) == pytest.approx(4 / 32 * 378.4)
    assert sram.access_energy(2048, write=False) == pytest.approx(416.16)
    port = Port("p", "read", 64, 2048, (("I1", "tl"),))
    mem = Memory("m", 2**20, 100.0, 0.0, ("I1",), (port,), ())
    assert mem.access_energy(65, write=False) == pytest.approx(2 * 64 / 2048 * 100)


# --- bad inputs ------------------------------------------------------------------------

CORE = {
    "version": 1,
    "name": "tiny",
    "type": "compute",
    "memories": {
        "rf": {
            "size": 64, "r_cost": 0.1, "w_cost": 0.1, "operands": ["O"], "served_dimensions": [],
            "ports": [
                {"name": "r1", "type": "read", "bandwidth_min": 16, "bandwidth_max": 32,
                 "allocation": ["O, tl", "O, th"]},
                {"name": "w1", "type": "write", "bandwidth_max": 32, "allocation": ["O, fh", "O, fl"]},
            ],
        },
        "sram": {
            "size": 8192, "r_cost": 10, "w_cost": 12, "operands": ["I1", "I2", "O"],
            "served_dimensions": ["D1", "D2"],
            "ports": [{"name": "rw1", "type": "read_write", "bandwidth_max": 128,
                       "allocation": ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]}],
        },
    },
    "operational_array": {"dimensions": ["D1", "D2"], "sizes": [4, 4], "unit_energy": 0.1},
    "dataflows": {"D1": ["K, 4"], "D2": ["C, 4"]},
}
DRAM = {
    "version": 1, "name": "dram", "type": "offchip",
    "memories": {"dram": {
        "size": 2**30, "r_cost": 100, "w_cost": 100, "operands": ["I1", "I2", "O"],
        "served_dimensions": [],
        "ports": [{"name": "rw1", "type": "read_write", "bandwidth_max": 64,
                   "allocation": ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]}],
    }},
    "operational_array": {"dimensions": ["D1"], "sizes": [0], "unit_energy": 0},
}
SYSTEM = {
    "version": 1, "name": "tiny_system",
    "cores": {0: "core.yaml", 1: "core.yaml", 2: "dram.yaml"},
    "offchip_core_id": 2,
    "core_connectivity": [{"type": "link", "cores": [0, 1], "bandwidth": 32},
                          {"type": "bus", "cores": [0, 1, 2], "bandwidth": 64}],
}


def _write(tmp_path, system=None, core=None, dram=None) -> Path:
    """Write the tiny system after letting each callback edit a copy of its dict."""
    for name, base, edit in (("system.yaml", SYSTEM, system), ("core.yaml", CORE, core), ("dram.yaml", DRAM, dram)):
        data = copy.deepcopy(base)
        if edit:
            edit(data)
        (tmp_path / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path / "system.yaml"


def _error(path: Path, file: str, key: str, expected: str) -> str:
    with pytest.raises(InputError) as info:
        load_hardware(path)
    message = str(info.value)
    assert file in message and key in message and expected in message, message
    return message


def test_tiny_system_is_valid(tmp_path):
    acc = load_hardware(_write(tmp_path))
    assert len(acc.cores) == 3 and acc.core(1).memories[0].ports[0].bw_min == 16
    assert acc.core(1).memories[0].ports[1].bw_min == 32  # bandwidth_min defaults to bandwidth_max
    assert acc.clock_hz == 1e9


def test_missing_key(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["sram"].pop("size"))
    _error(path, "core.yaml", "memories.sram.size", "this key to be present")


def test_wrong_type(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["rf"].update(size="big"))
    _error(path, "core.yaml", "memories.rf.size", "an integer")


@pytest.mark.parametrize("size", [0, -8])
def test_nonpositive_size(tmp_path, size):
    path = _write(tmp_path, core=lambda c: c["memories"]["rf"].update(size=size))
    _error(path, "core.yaml", "memories.rf.size", "an integer >= 1")


def test_zero_bandwidth(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["sram"]["ports"][0].update(bandwidth_max=0))
    _error(path, "core.yaml", "memories.sram.ports[0].bandwidth_max", "a number > 0")


def test_negative_link_bandwidth(tmp_path):
    path = _write(tmp_path, system=lambda s: s["core_connectivity"][0].update(bandwidth=-1))
    _error(path, "system.yaml", "core_connectivity[0].bandwidth", "a number > 0")


def test_allocation_unknown_operand(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["rf"]["ports"][0]["allocation"].append("I1, tl"))
    _error(path, "core.yaml", "memories.rf.ports[0].allocation[2]", "an operand this memory holds (O)")


def test_allocation_unknown_direction(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["rf"]["ports"][0]["allocation"].__setitem__(0, "O, up"))
    _error(path, "core.yaml", "memories.rf.ports[0].allocation[0]", "a direction fh, tl, fl or th")


def test_read_direction_on_write_port(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["rf"]["ports"][1]["allocation"].__setitem__(0, "O, tl"))
    _error(path, "core.yaml", "memories.rf.ports[1].allocation[0]", "tl on a read or read_write port")


def test_unallocated_direction(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["rf"]["ports"][0]["allocation"].pop())
    _error(path, "core.yaml", "memories.rf.ports", "a port allocated to O, th")


def test_bad_operand(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["rf"].update(operands=["W"]))
    _error(path, "core.yaml", "memories.rf.operands[0]", "one of I1, I2, O")


def test_connectivity_unknown_core(tmp_path):
    path = _write(tmp_path, system=lambda s: s["core_connectivity"][0].update(cores=[0, 7]))
    _error(path, "system.yaml", "core_connectivity[0].cores", "one of the core ids [0, 1, 2]")


def test_duplicate_core_id(tmp_path):
    path = _write(tmp_path)
    # the same key with a different value; an identical repeat is harmless and accepted
    text = path.read_text().replace("  2: dram.yaml", "  1: dram.yaml\n  2: dram.yaml")
    path.write_text(text)
    _error(path, "system.yaml", "cores.1", "each key once")


def test_offchip_core_id_not_among_cores(tmp_path):
    path = _write(tmp_path, system=lambda s: s.update(offchip_core_id=9))
    _error(path, "system.yaml", "offchip_core_id", "one of the core ids [0, 1, 2]")


def test_core_file_not_found(tmp_path):
    path = _write(tmp_path, system=lambda s: s["cores"].update({1: "nowhere/missing.yaml"}))
    message = _error(path, "system.yaml", "cores.1", "an existing core file")
    assert "missing.yaml" in message


def test_sizes_and_dimensions_differ(tmp_path):
    path = _write(tmp_path, core=lambda c: c["operational_array"].update(sizes=[4, 4, 2]))
    _error(path, "core.yaml", "operational_array.sizes", "one size per dimension (2 for ['D1', 'D2'])")


def test_served_dimension_unknown(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["sram"].update(served_dimensions=["D1", "D3"]))
    _error(path, "core.yaml", "memories.sram.served_dimensions[1]", "one of the array dimensions ['D1', 'D2']")


def test_dataflow_unknown_array_dim(tmp_path):
    path = _write(tmp_path, core=lambda c: c["dataflows"].update(D5=["K, 2"]))
    _error(path, "core.yaml", "dataflows.D5", "one of the array dimensions ['D1', 'D2']")


def test_unknown_key_in_our_format(tmp_path):
    path = _write(tmp_path, core=lambda c: c["memories"]["sram"].update(mem_type="sram"))
    _error(path, "core.yaml", "memories.sram.mem_type", "a known key")


def test_wrong_version(tmp_path):
    path = _write(tmp_path, system=lambda s: s.update(version=2))
    _error(path, "system.yaml", "version", "expected 1")


def test_link_with_three_cores(tmp_path):
    path = _write(tmp_path, system=lambda s: s["core_connectivity"][0].update(cores=[0, 1, 2]))
    _error(path, "system.yaml", "core_connectivity[0].cores", "exactly two cores for a link")


def test_core_cut_off_from_dram(tmp_path):
    def isolate_core_1(system):
        system["core_connectivity"] = [{"type": "link", "cores": [0, 2], "bandwidth": 64}]
    message = _error(_write(tmp_path, system=isolate_core_1), "system.yaml", "core_connectivity",
                     "connect every core to the off-chip core 2")
    assert "cores [1] are cut off" in message


def test_second_offchip_core(tmp_path):
    path = _write(tmp_path, system=lambda s: s["cores"].update({1: "dram.yaml"}))
    _error(path, "system.yaml", "cores.1", "a core that is not of type offchip")


def test_clock_written_1e9(tmp_path):
    # PyYAML reads 1e9 as a string; we take it as the number the user meant
    path = _write(tmp_path)
    path.write_text(path.read_text() + "clock_hz: 2e9\n")
    assert load_hardware(path).clock_hz == 2e9
    path.write_text(path.read_text().replace("clock_hz: 2e9", "clock_hz: fast"))
    _error(path, "system.yaml", "clock_hz", "a finite number")


@needs_peers
def test_classic_undeclared_port(tmp_path):
    core = yaml.safe_load((CLASSIC / "cores" / "tpu_like.yaml").read_text())
    core["memories"]["rf_128B"]["ports"][0]["tl"] = "r_port_2"
    (tmp_path / "tpu.yaml").write_text(yaml.safe_dump(core))
    with pytest.raises(InputError) as info:
        load_core(tmp_path / "tpu.yaml", 0)
    message = str(info.value)
    assert "tpu.yaml" in message and "memories.rf_128B.ports[0].tl" in message
    assert "one of the declared ports ['r_port_1', 'w_port_1']" in message


@needs_peers
def test_classic_system_missing_bandwidth(tmp_path):
    system = yaml.safe_load((CLASSIC / "tpu_like_quad_core.yaml").read_text())
    system.pop("bandwidth")
    for core_id, ref in system["cores"].items():
        system["cores"][core_id] = str(CLASSIC / "cores" / ref)
    system["offchip_core"] = str(CLASSIC / "cores" / system["offchip_core"])
    (tmp_path / "classic.yaml").write_text(yaml.safe_dump(system))
    _error(tmp_path / "classic.yaml", "classic.yaml", "bandwidth", "this key to be present")
