"""Sweeps: the spec, its expansion, materialised inputs, execution, resuming, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import yaml

from conftest import INPUTS
from stream.api import run
from stream.cli import main
from stream.errors import InputError
from stream.hardware import load_hardware
from stream.sweep import load_sweep, materialise, point_id, run_sweep

SIZE = "hardware.cores.0.memories.sram_1mib.size"
BUS = "hardware.core_connectivity.0.bandwidth"
SMALL_AXES = f"""\
  - {{key: {SIZE}, values: [4194304, 8388608]}}
  - {{key: {BUS}, values: [32, 64]}}
  - {{key: mode, values: [fused, layer_by_layer]}}
"""


def make_spec(directory, axes=SMALL_AXES, combine="product", hardware="single_core.yaml", base="",
              name="spec.yaml"):
    """A sweep of two_conv on a bundled system (greedy, roofline, no mapping: each conv one
    CN), paths relative to the spec."""
    directory.mkdir(parents=True, exist_ok=True)

    def rel(*parts):
        return os.path.relpath(INPUTS.joinpath(*parts), directory)

    path = directory / name
    path.write_text(f"""\
version: 1
name: small
base:
  workload: {rel("workloads", "two_conv.yaml")}
  hardware: {rel("hardware", hardware)}
{"" if "mapping:" in base else "  mapping: none" + chr(10)}  allocator: greedy
  cost_model: roofline
{base}axes:
{axes}combine: {combine}
""")
    return path


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- spec and expansion ----------------------------------------------------------------


def test_product_expands_in_order_with_stable_ids(tmp_path):
    sweep = load_sweep(make_spec(tmp_path))
    points = sweep.points()
    assert len(points) == 8 and [p.index for p in points] == list(range(8))
    assert points[0].params == {SIZE: 4194304, BUS: 32, "mode": "fused"}
    assert points[1].params == {SIZE: 4194304, BUS: 32, "mode": "layer_by_layer"}  # the last axis fastest
    assert points[2].params == {SIZE: 4194304, BUS: 64, "mode": "fused"}
    assert points[7].params == {SIZE: 8388608, BUS: 64, "mode": "layer_by_layer"}
    assert len({p.id for p in points}) == 8
    assert all(len(p.id) == 10 and int(p.id, 16) >= 0 and p.id == point_id(p.params) for p in points)
    # the id is the values', not the position's: reordered values give the same ids
    reordered = SMALL_AXES.replace("[32, 64]", "[64, 32]").replace("[fused, layer_by_layer]",
                                                                   "[layer_by_layer, fused]")
    again = load_sweep(make_spec(tmp_path, reordered, name="reordered.yaml")).points()
    assert {p.id: p.params for p in again} == {p.id: p.params for p in points}
    assert again[0].params == {SIZE: 4194304, BUS: 64, "mode": "layer_by_layer"}
    assert sweep.name == "small" and sweep.base.allocator == "greedy" and sweep.base.mode == "fused"
    assert sweep.base.workload == str(INPUTS / "workloads" / "two_conv.yaml")  # resolved against the spec


def test_zip_and_groups(tmp_path):
    zipped = load_sweep(make_spec(tmp_path, combine="zip")).points()
    assert [p.params for p in zipped] == [{SIZE: 4194304, BUS: 32, "mode": "fused"},
                                          {SIZE: 8388608, BUS: 64, "mode": "layer_by_layer"}]
    grouped = load_sweep(make_spec(tmp_path, combine=f"[[{SIZE}, {BUS}], mode]", name="g.yaml")).points()
    assert len(grouped) == 4
    assert [(p.params[SIZE], p.params[BUS], p.params["mode"]) for p in grouped] == [
        (4194304, 32, "fused"), (4194304, 32, "layer_by_layer"),
        (8388608, 64, "fused"), (8388608, 64, "layer_by_layer")]


def test_ranges_and_stars_in_key_paths(tmp_path):
    axes = """\
  - {key: hardware.cores.0-3.memories.sram_1mib.size, values: [4194304]}
  - {key: hardware.core_connectivity.0-3.bandwidth, values: [96]}
  - {key: hardware.cores.4.memories.*.size, values: [65536]}
"""
    sweep = load_sweep(make_spec(tmp_path, axes, hardware="quad_core.yaml"))
    (point,) = sweep.points()
    files = materialise(sweep, point, tmp_path / "point")
    acc = load_hardware(files.hardware)
    sizes = {core.id: {m.name: m.size_bits for m in core.memories} for core in acc.cores}
    for core_id in range(4):
        assert sizes[core_id]["sram_1mib"] == 4194304
        assert sizes[core_id]["rf_w"] == 32  # the rest of the core as it was
    assert sizes[4] == {"sram_128kib": 65536}
    assert sizes[5] == {"sram_256kib": 2097152}  # the SIMD core untouched
    assert [link.bandwidth for link in acc.links] == [96] * 4 + [64] * 9
    with pytest.raises(InputError, match=r"no 'unit_energy_cost' under core_connectivity\.0; there: type, cores, "
                                         r"bandwidth \(in .*quad_core\.yaml\)"):
        load_sweep(make_spec(tmp_path, axes + "  - {key: hardware.core_connectivity.*.unit_energy_cost, values: [1]}\n",
                             hardware="quad_core.yaml", name="energy.yaml"))


def test_mapping_paths_and_overlapping_axes(tmp_path):
    mapping = os.path.relpath(INPUTS / "mappings" / "quad_core.yaml", tmp_path)
    axes = """\
  - {key: mapping.layers.0.intra_core_tiling, values: [["OY, all"], ["OY, 4"]]}
  - {key: allocation.time_limit_s, values: [1, 2]}
"""
    spec = make_spec(tmp_path, axes, combine="zip", hardware="quad_core.yaml", base=f"  mapping: {mapping}\n")
    sweep = load_sweep(spec)
    point = sweep.points()[1]
    files = materialise(sweep, point, tmp_path / "point")
    written = yaml.safe_load(open(files.mapping))
    original = yaml.safe_load((INPUTS / "mappings" / "quad_core.yaml").read_text())
    original["layers"][0]["intra_core_tiling"] = ["OY, 4"]
    assert written == original
    assert files.arguments["allocation"] == {"time_limit_s": 2} and files.arguments["allocator"] == "greedy"

    axes = """\
  - {key: hardware.cores.0-3.memories.sram_1mib.size, values: [4194304]}
  - {key: hardware.cores.2.memories.sram_1mib, values: [{}]}
"""
    spec = make_spec(tmp_path, axes, hardware="quad_core.yaml", name="overlap.yaml")
    with pytest.raises(InputError, match=r"overlap\.yaml: axes\[1\]\.key: expected a key path no other axis also "
                                         r"sets, got 'hardware\.cores\.2\.memories\.sram_1mib' \(hardware\.cores\.0-3"):
        load_sweep(spec)


def test_materialised_hardware_has_exactly_the_overridden_values(tmp_path):
    axes = """\
  - {key: hardware.cores.0-3.memories.sram_1mib.size, values: [4194304, 16777216]}
  - {key: hardware.core_connectivity.12.bandwidth, values: [32, 128]}
"""
    sweep = load_sweep(make_spec(tmp_path, axes, hardware="quad_core.yaml"))
    point = sweep.points()[3]
    assert point.params == {"hardware.cores.0-3.memories.sram_1mib.size": 16777216,
                            "hardware.core_connectivity.12.bandwidth": 128}
    files = materialise(sweep, point, tmp_path / "points" / point.id)
    directory = tmp_path / "points" / point.id / "hardware"
    assert files.hardware == str(directory / "quad_core.yaml")
    original = yaml.safe_load((INPUTS / "hardware" / "quad_core.yaml").read_text())
    system = yaml.safe_load((directory / "quad_core.yaml").read_text())
    assert system["core_connectivity"][12]["bandwidth"] == 128
    # nothing else changed but the core files' places, and the default mapping's path (the
    # same file, named from the new place)
    expected = dict(original, cores=system["cores"],
                    default_mapping=str((INPUTS / "hardware" / original["default_mapping"]).resolve()))
    expected["core_connectivity"] = [dict(link) for link in original["core_connectivity"]]
    expected["core_connectivity"][12]["bandwidth"] = 128
    assert system == expected
    assert [system["cores"][i] for i in range(7)] == ["cores/core0-1-2-3/tpu_32x32.yaml"] * 4 + [
        "cores/pool_3x3x8.yaml", "cores/simd_64.yaml", "cores/dram.yaml"]
    core = yaml.safe_load((directory / "cores" / "core0-1-2-3" / "tpu_32x32.yaml").read_text())
    expected_core = yaml.safe_load((INPUTS / "hardware" / "cores" / "tpu_32x32.yaml").read_text())
    expected_core["memories"]["sram_1mib"]["size"] = 16777216
    assert core == expected_core
    for name in ("pool_3x3x8.yaml", "simd_64.yaml", "dram.yaml"):  # copied as they are
        assert (directory / "cores" / name).read_text() == (INPUTS / "hardware" / "cores" / name).read_text()
    assert json.loads((tmp_path / "points" / point.id / "point.json").read_text())["params"] == point.params


def test_bad_key_path_names_the_spec_the_axis_and_what_exists(tmp_path):
    spec = make_spec(tmp_path, "  - {key: hardware.cores.0.memories.sram_2mib.size, values: [1]}\n")
    with pytest.raises(InputError) as exc:
        load_sweep(spec)
    text = str(exc.value)
    assert "\n" not in text and text.startswith(f"{spec}: axes[0].key: expected a key path into ")
    assert "hardware.cores.0.memories.sram_2mib.size" in text
    assert "no 'sram_2mib' under memories; there: rf_w, rf_acc, sram_1mib" in text and "core 0" in text

    spec = make_spec(tmp_path, "  - {key: hardware.cores.*.memories.sram_1mib.size, values: [1]}\n",
                     hardware="quad_core.yaml", name="star.yaml")
    with pytest.raises(InputError, match=r"star\.yaml: axes\[0\]\.key: .*there: sram_128kib .*core 4"):
        load_sweep(spec)
    spec = make_spec(tmp_path, "  - {key: hardware.core_connectivity.13.bandwidth, values: [1]}\n",
                     hardware="quad_core.yaml", name="link.yaml")
    with pytest.raises(InputError, match=r"link\.yaml: axes\[0\]\.key: .*no '13' under core_connectivity; "
                                         r"there: list indices 0-12"):
        load_sweep(spec)
    spec = make_spec(tmp_path, "  - {key: mapping.layers.0.intra_core_tiling, values: [[OY, all]]}\n",
                     name="nomap.yaml")
    with pytest.raises(InputError, match=r"nomap\.yaml: axes\[0\]\.key: expected a base mapping file"):
        load_sweep(spec)


def test_unknown_keys_and_unequal_zip_are_one_line_errors(tmp_path):
    spec = make_spec(tmp_path, base="  alocator: greedy\n")
    with pytest.raises(InputError) as exc:
        load_sweep(spec)
    assert str(exc.value).startswith(f"{spec}: base.alocator: expected a known key")
    spec = tmp_path / "top.yaml"
    spec.write_text(make_spec(tmp_path).read_text() + "workers: 4\n")
    with pytest.raises(InputError, match=r"top\.yaml: workers: expected a known key"):
        load_sweep(spec)
    spec = make_spec(tmp_path, "  - {key: moed, values: [fused]}\n", name="arg.yaml")
    with pytest.raises(InputError, match=r"arg\.yaml: axes\[0\]\.key: expected a run argument"):
        load_sweep(spec)
    spec = make_spec(tmp_path, "  - {key: mode, values: [fused, fast]}\n", name="choice.yaml")
    with pytest.raises(InputError, match=r"choice\.yaml: axes\[0\]\.values\[1\]: expected one of fused, "
                                         r"layer_by_layer, got 'fast'"):
        load_sweep(spec)
    axes = SMALL_AXES.replace("[fused, layer_by_layer]", "[fused]")
    spec = make_spec(tmp_path, axes, combine="zip", name="zip.yaml")
    with pytest.raises(InputError) as exc:
        load_sweep(spec)
    text = str(exc.value)
    assert "\n" not in text and text.startswith(f"{spec}: combine: expected zipped axes with the same number")
    assert f"{SIZE}: 2 values, {BUS}: 2 values, mode: 1 values" in text


# -- running ---------------------------------------------------------------------------


def test_process_pool_and_dask_give_byte_identical_tables(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = make_spec(tmp_path)
    pool = run_sweep(spec, tmp_path / "pool", workers=2)
    assert (pool.ran, pool.skipped, pool.failed, pool.points) == (8, 0, 0, 8)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        dask = run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address)
    finally:
        cluster.close()
    assert (dask.ran, dask.failed) == (8, 0)
    table = (tmp_path / "pool" / "results.csv").read_bytes()
    assert table == (tmp_path / "dask" / "results.csv").read_bytes()
    lines = table.decode().splitlines()
    assert lines[0] == ",".join(["point", "id", SIZE, BUS, "mode", "status", "error", "latency_cycles", "latency_s",
                                 "energy_pj", "dram_read_bytes", "dram_write_bytes", "peak_memory_bytes",
                                 "onchip_peak_bytes", "num_cns", "spills"])
    assert len(lines) == 9 and pool.rows == dask.rows
    rows = {(r[SIZE], r[BUS], r["mode"]): r for r in pool.rows}
    own = rows[8388608, 64, "fused"]  # the file's own values: the same as running the file itself
    direct = run(INPUTS / "workloads" / "two_conv.yaml", INPUTS / "hardware" / "single_core.yaml", "none",
                 allocator="greedy", cost_model="roofline")
    assert own["latency_cycles"] == direct.latency_cycles
    assert own["energy_pj"] == direct.energy_pj["total"]
    # fused: the weights (16x8x3x3 + 32x16x3x3 bytes) and the input (8x32x32) in, conv_b's output out
    assert own["dram_read_bytes"] == 1152 + 4608 + 8192
    assert own["dram_write_bytes"] == 32 * 32 * 32
    assert all(r["num_cns"] == 2 and r["status"] == "ok" and r["error"] is None for r in pool.rows)
    assert rows[8388608, 32, "fused"]["latency_cycles"] > own["latency_cycles"]  # a slower DRAM bus
    records = jsonl(tmp_path / "pool" / "results.jsonl")
    assert sorted(r["point"] for r in records) == list(range(8))
    assert all(r["seconds"] >= 0 and r["metrics"]["num_cns"] == 2 for r in records)
    summary = json.loads((tmp_path / "dask" / "sweep.json").read_text())
    assert summary["counts"] == {"points": 8, "ok": 8, "error": 0, "pending": 0}
    assert summary["name"] == "small" and [a["key"] for a in summary["axes"]] == [SIZE, BUS, "mode"]


def test_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    spec = make_spec(tmp_path)
    seen = []

    def stop_after_three(record):
        seen.append(record["point"])
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "out", on_point=stop_after_three)
    assert len(jsonl(tmp_path / "out" / "results.jsonl")) == 3
    assert len((tmp_path / "out" / "results.csv").read_text().splitlines()) == 1 + 3  # written on the way out
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["counts"]["pending"] == 5

    again = run_sweep(spec, tmp_path / "out")
    assert (again.ran, again.skipped, again.failed) == (5, 3, 0)
    records = jsonl(tmp_path / "out" / "results.jsonl")
    assert sorted(r["point"] for r in records) == list(range(8))
    assert len({r["id"] for r in records}) == 8
    straight = run_sweep(spec, tmp_path / "straight")
    assert (tmp_path / "out" / "results.csv").read_bytes() == straight.csv_path.read_bytes()

    # a last line cut short by a crash is dropped and its point runs again
    path = tmp_path / "out" / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:40])
    third = run_sweep(spec, tmp_path / "out")
    assert (third.ran, third.skipped) == (1, 7)
    assert len(jsonl(path)) == 8 and (tmp_path / "out" / "results.csv").read_bytes() == straight.csv_path.read_bytes()
    assert run_sweep(spec, tmp_path / "out").ran == 0


def test_a_bad_point_is_recorded_and_the_others_run(tmp_path, capsys):
    axes = f"""\
  - {{key: {BUS}, values: [64, 0]}}
  - {{key: mode, values: [fused, layer_by_layer]}}
"""
    spec = make_spec(tmp_path, axes)
    outcome = run_sweep(spec, tmp_path / "out")
    assert (outcome.ran, outcome.failed) == (4, 2)
    assert [r["status"] for r in outcome.rows] == ["ok", "ok", "error", "error"]
    bad = outcome.rows[2]
    assert bad["error"] == (f"InputError: points/{bad['id']}/hardware/single_core.yaml: core_connectivity[0]."
                            f"bandwidth: expected a number > 0, got 0")
    assert bad["latency_cycles"] is None
    row = (tmp_path / "out" / "results.csv").read_text().splitlines()[3]
    assert row.startswith(f"2,{bad['id']},0,fused,error,") and row.endswith(",,,,,,,,,")

    # the CLI: everything recorded (skipped), two failed: exit 1 with one error line
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "-q"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: 2 of 4 points failed (first: point 2,")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--retry-failed"]) == 1
    assert "ran 2, skipped 2 (already in results.jsonl), 2 failed" in capsys.readouterr().out
    assert len(jsonl(tmp_path / "out" / "results.jsonl")) == 4  # the old records of the retried points went


def test_resuming_into_another_sweeps_directory_is_refused(tmp_path):
    axes = "  - {key: mode, values: [fused]}\n"
    run_sweep(make_spec(tmp_path, axes), tmp_path / "out")
    other = make_spec(tmp_path, axes, base="  policy: latency\n", name="other.yaml")
    with pytest.raises(InputError, match=r"sweep\.json: base: expected the base of .*other\.yaml"):
        run_sweep(other, tmp_path / "out")


def test_progress_lines(tmp_path, monkeypatch):
    import stream.sweep.runner

    monkeypatch.setattr(stream.sweep.runner, "REPORT_SECONDS", 0.0)
    lines = []
    run_sweep(make_spec(tmp_path, "  - {key: mode, values: [fused, layer_by_layer]}\n"), tmp_path / "out",
              progress=lines.append)
    assert len(lines) == 2 and lines[-1].startswith("sweep small: 2/2 points done, 0 failed, ETA 0 s")


def test_bundled_sweep_expands_to_100_points_and_runs(tmp_path):
    sweep = load_sweep(INPUTS / "sweeps" / "memory_bandwidth.yaml")
    points = sweep.points()
    size, bus = "hardware.cores.0-3.memories.sram_1mib.size", "hardware.core_connectivity.12.bandwidth"
    assert len(points) == 100 and len({p.id for p in points}) == 100
    assert points[0].params == {size: 2097152, bus: 16} and points[99].params == {size: 67108864, bus: 512}
    assert (sweep.base.mode, sweep.base.allocator) == ("fused", "greedy")
    acc = load_hardware(materialise(sweep, points[0], tmp_path / "p0").hardware)
    assert [core.memories[-1].size_bits for core in acc.cores[:4]] == [2097152] * 4
    assert acc.links[12].kind == "bus" and acc.links[12].bandwidth == 16
    # one point, the files' own values, runs as the files do
    small = dataclasses.replace(sweep, axes=tuple(dataclasses.replace(a, values=(v,))
                                                  for a, v in zip(sweep.axes, (8388608, 64))), combine=((size,), (bus,)))
    outcome = run_sweep(small, tmp_path / "out")
    (row,) = outcome.rows
    direct = run(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
                 INPUTS / "mappings" / "quad_core.yaml", allocator="greedy")
    assert row["status"] == "ok" and row["latency_cycles"] == direct.latency_cycles
    assert row["num_cns"] == direct.num_cns and row["spills"] == direct.spills


# -- command line ----------------------------------------------------------------------


def test_cli_writes_the_table_and_reports_a_bad_spec_in_one_line(tmp_path, capsys):
    spec = make_spec(tmp_path)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert len((tmp_path / "out" / "results.csv").read_text().splitlines()) == 9
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "small: 8 points: ran 0, skipped 8 (already in results.jsonl), 0 failed" in out
    assert str(tmp_path / "out" / "results.csv") in out

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nbase: {workload: x.yaml\naxes: []\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {bad}: line ")
    bad.write_text(make_spec(tmp_path).read_text().replace("sram_1mib", "sram_1mb"))
    assert main(["sweep", str(bad), "--out", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {bad}: axes[0].key: expected a key path into ")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(spec)])  # --out is required
    assert exc.value.code == 2
