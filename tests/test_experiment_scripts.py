"""scripts/fused_vs_lbl.py and scripts/allocators.py on their smallest cases: the tables
agree with stream.api.run and the figures are written."""

from __future__ import annotations

import csv
import importlib.util

import pytest

from conftest import INPUTS, REPO
from stream.api import run

PNG, PDF = b"\x89PNG\r\n\x1a\n", b"%PDF"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures(directory, name: str) -> None:
    assert (directory / f"{name}.png").read_bytes().startswith(PNG)
    assert (directory / f"{name}.pdf").read_bytes().startswith(PDF)


def test_fused_vs_lbl_on_two_conv_single_core(tmp_path):
    script = _script("fused_vs_lbl")
    assert script.main(["--workloads", "two_conv", "--hardware", "single_core", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "fused_vs_lbl.csv").open()))
    assert [(r["workload"], r["hardware"], r["mapping"], r["mode"]) for r in rows] == [
        ("two_conv", "single_core", "single_core.yaml", "layer_by_layer"),
        ("two_conv", "single_core", "single_core.yaml", "fused")]
    assert list(rows[0]) == list(script.COLUMNS)
    for row in rows:
        expected = run(INPUTS / "workloads" / "two_conv.yaml", INPUTS / "hardware" / "single_core.yaml",
                       INPUTS / "mappings" / "single_core.yaml", mode=row["mode"], allocator="greedy")
        assert int(row["latency_cycles"]) == expected.latency_cycles
        assert float(row["energy_pj"]) == pytest.approx(expected.energy_pj["total"])
        parts = ("mac_pj", "onchip_memory_pj", "offchip_memory_pj", "interconnect_pj")
        assert sum(float(row[p]) for p in parts) == pytest.approx(float(row["energy_pj"]))
        assert int(row["dram_read_bytes"]) == expected.dram_traffic_bytes["read"]
        assert int(row["dram_write_bytes"]) == expected.dram_traffic_bytes["write"]
        assert int(row["peak_memory_bytes"]) == max(expected.peak_memory_bytes.values())
        assert int(row["peak_activation_bytes"]) <= int(row["peak_memory_bytes"])
        assert int(row["num_cns"]) == expected.num_cns and row["allocator"] == "greedy"
    _figures(tmp_path, "fused_vs_lbl")


def test_fused_vs_lbl_takes_the_hardware_mapping_and_cuts_splits_to_size():
    script = _script("fused_vs_lbl")
    from stream.hardware import load_hardware
    from stream.workload import load_workload

    quad = load_hardware(INPUTS / "hardware" / "quad_core.yaml")
    # quad_core's mapping splits every Conv's K four ways; FSRCNN's last layer has K = 1,
    # so that one split is cut to one piece and the row says so
    mapping, name, note = script.mapping_for(load_workload(INPUTS / "workloads" / "fsrcnn.yaml"), quad, "quad_core")
    assert mapping is not None and (name, note) == ("quad_core.yaml", "1 splits cut to the layer's size")
    mapping, name, note = script.mapping_for(load_workload(INPUTS / "workloads" / "two_conv.yaml"), quad, "quad_core")
    assert mapping is not None and (name, note) == ("quad_core.yaml", "")
    ssm = load_hardware(INPUTS / "hardware" / "ssm.yaml")
    assert script.mapping_for(load_workload(INPUTS / "workloads" / "two_conv.yaml"), ssm, "ssm")[1:] == (
        "ssm.yaml", "")


def test_fused_vs_lbl_rejects_unknown_names(tmp_path):
    script = _script("fused_vs_lbl")
    with pytest.raises(SystemExit) as stop:
        script.main(["--workloads", "no_such_net", "--out", str(tmp_path)])
    assert stop.value.code == 2


def test_allocators_on_two_conv_quad_core(tmp_path):
    script = _script("allocators")
    assert script.main(["--cases", "two_conv:quad_core", "--time-limit", "0.5", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "allocators.csv").open()))
    assert [(r["case"], r["mapping"], r["allocator"]) for r in rows] == [
        ("two_conv:quad_core", "quad_core.yaml", name) for name in ("greedy", "cpsat", "genetic")]
    greedy, cpsat, genetic = rows
    expected = run(INPUTS / "workloads" / "two_conv.yaml", INPUTS / "hardware" / "quad_core.yaml",
                   INPUTS / "mappings" / "quad_core.yaml", mode="fused", allocator="greedy")
    assert int(greedy["latency_cycles"]) == expected.latency_cycles
    assert float(greedy["energy_pj"]) == pytest.approx(expected.energy_pj["total"])
    assert float(greedy["latency_vs_greedy"]) == 1.0 and greedy["cpsat_status"] == greedy["cpsat_gap"] == ""
    # CP-SAT keeps the best of what it simulated, its greedy warm start included
    assert int(cpsat["latency_cycles"]) <= int(greedy["latency_cycles"])
    assert cpsat["cpsat_status"] in ("optimal", "feasible") and float(cpsat["cpsat_gap"]) >= 0
    for row in rows:
        assert float(row["latency_vs_greedy"]) == pytest.approx(int(row["latency_cycles"]) / expected.latency_cycles,
                                                                rel=1e-5)
        assert float(row["edp_cycles_j"]) == pytest.approx(int(row["latency_cycles"]) * float(row["energy_pj"]) * 1e-12)
        assert float(row["solve_seconds"]) >= 0
    assert int(genetic["num_cns"]) == expected.num_cns
    _figures(tmp_path, "allocators")


def test_allocators_rejects_a_bad_case(tmp_path):
    script = _script("allocators")
    with pytest.raises(SystemExit) as stop:
        script.main(["--cases", "two_conv-quad_core", "--out", str(tmp_path)])
    assert stop.value.code == 2


def test_memory_sweep_on_two_conv_single_core(tmp_path):
    script = _script("memory_sweep")
    args = ["--out", str(tmp_path), "--sizes-kib", "512,1024", "--workload", str(INPUTS / "workloads" / "two_conv.yaml"),
            "--hardware", str(INPUTS / "hardware" / "single_core.yaml"), "--mapping", "",
            "--memory-key", "hardware.cores.0.memories.sram_1mib.size"]
    assert script.main(args) == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    key = "hardware.cores.0.memories.sram_1mib.size"
    assert [(r[key], r["mode"], r["status"]) for r in rows] == [
        ("4194304", "fused", "ok"), ("4194304", "layer_by_layer", "ok"),
        ("8388608", "fused", "ok"), ("8388608", "layer_by_layer", "ok")]
    # 1 MiB is the file's own size: that point is stream.api.run of the bundled files
    r = run(INPUTS / "workloads" / "two_conv.yaml", INPUTS / "hardware" / "single_core.yaml", mode="fused",
            allocator="greedy")
    assert int(rows[2]["latency_cycles"]) == r.latency_cycles
    _figures(tmp_path, "memory_sweep")
    assert script.main(args) == 0  # again: every point already done
    assert list(csv.DictReader((tmp_path / "results.csv").open())) == rows
