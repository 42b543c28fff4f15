"""The command line: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import INPUTS, PEERS, needs_peers, save_graph
from stream.cli import EXIT_INPUT_ERROR, main

RESULT_KEYS = {"schema_version", "latency_cycles", "latency_s", "energy_pj", "peak_memory_bytes", "num_cns"}


def test_run_writes_result_json_and_plots(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "-w", str(INPUTS / "workloads" / "two_conv.yaml"),
                 "-a", str(INPUTS / "hardware" / "single_core.yaml"), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "latency" in printed and "cycles" in printed and "offchip_memory" in printed
    data = json.loads((out / "result.json").read_text())
    assert RESULT_KEYS <= data.keys()
    assert set(data["energy_pj"]) == {"total", "mac", "onchip_memory", "offchip_memory", "interconnect"}
    assert data["energy_pj"]["total"] == pytest.approx(sum(v for k, v in data["energy_pj"].items() if k != "total"))
    assert data["latency_s"] == pytest.approx(data["latency_cycles"] / data["clock_hz"])
    # single_core.yaml names its mapping: one output row per CN, 32 rows in each conv
    assert data["num_cns"] == 2 * 32 and data["mode"] == "fused"
    assert data["mapping"] == "single_core.yaml (the hardware's default)"
    assert "  mapping           single_core.yaml (the hardware's default)" in printed
    assert (out / "gantt.png").stat().st_size > 0 and (out / "gantt.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "summary.txt").read_text() == printed.split("\n\nwrote")[0] + "\n"


def test_run_output_is_byte_identical_across_runs(tmp_path):
    args = ["run", "-q", "-w", str(INPUTS / "workloads" / "swiglu.onnx"), "-a", str(INPUTS / "hardware" / "quad_core.yaml")]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    for name in ("result.json", "summary.txt", "layers.csv", "events.csv", "gantt.pdf", "gantt.png", "memory.pdf",
                 "memory.png", "energy.pdf", "energy.png", "utilisation.pdf", "utilisation.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_run_takes_a_scheduling_policy(tmp_path, capsys):
    base = ["run", "-q", "-w", str(INPUTS / "workloads" / "fsrcnn.yaml"), "-a", str(INPUTS / "hardware" / "quad_core.yaml"),
            "-m", "none"]
    results = {}
    for policy in ("depth_first", "latency", "layer_by_layer"):
        assert main(base + ["--policy", policy, "--out", str(tmp_path / policy)]) == 0
        results[policy] = json.loads((tmp_path / policy / "result.json").read_text())
        assert results[policy]["policy"] == policy and results[policy]["mode"] == "fused"
    # the same CNs and the same MACs, in another order
    assert len({r["num_cns"] for r in results.values()}) == 1
    assert len({r["energy_pj"]["mac"] for r in results.values()}) == 1
    with pytest.raises(SystemExit) as exc:
        main(base + ["--policy", "fastest"])
    assert exc.value.code == 2
    assert "invalid choice: 'fastest'" in capsys.readouterr().err


def test_run_reports_progress_on_stderr_unless_quiet(capsys, monkeypatch):
    import stream.progress
    import stream.simulation.engine as engine

    monkeypatch.setattr(engine, "PROGRESS_EVERY", 1)  # look at the clock after every CN
    monkeypatch.setattr(engine, "PROGRESS_SECONDS", 0.0)  # and report each time
    monkeypatch.setattr(stream.progress, "REPORT_SECONDS", 0.0)  # tiling and costing: every layer
    args = ["run", "-w", str(INPUTS / "workloads" / "two_conv.yaml"), "-a", str(INPUTS / "hardware" / "single_core.yaml"),
            "-m", "none"]
    assert main(args) == 0  # stderr is not a terminal here: no progress unless asked
    assert capsys.readouterr().err == ""
    args.append("--progress")
    assert main(args) == 0
    err = capsys.readouterr().err.splitlines()
    steps = [line.split("] ", 1)[1] for line in err]
    assert steps[0] == "loaded two_conv (2 layers) and single_core"
    assert steps[1:3] == ["tiling: dependencies of layer 1 of 2 (conv_a)",
                          "tiling: dependencies of layer 2 of 2 (conv_b)"]
    assert steps[3] == "tiled: 2 CNs, 1 dependencies"
    assert [s.split(",")[0] for s in steps[4:6]] == ["costing: layer 1 of 2 (conv_a)", "costing: layer 2 of 2 (conv_b)"]
    assert steps[6].startswith("costed: ")
    # the allocator has the simulator judge its answer: one report per finished CN
    assert steps[7] == "allocating (cpsat, 10 s budget)"
    assert [s.split(",")[0] for s in steps[8:10]] == ["simulating: 1 of 2 CNs done", "simulating: 2 of 2 CNs done"]
    # that simulation is the run's: the end, without simulating again
    assert steps[10] == "allocated (cpsat)" and steps[11].startswith("simulated: ") and len(steps) == 12
    assert main(args + ["-q"]) == 0
    assert capsys.readouterr() == ("", "")


def test_fixed_allocator_takes_cores_from_the_mapping_only(tmp_path, capsys):
    single = ["run", "-q", "-w", str(INPUTS / "workloads" / "two_conv.yaml"),
              "-a", str(INPUTS / "hardware" / "single_core.yaml")]
    # one compute core: every layer has a single candidate, so fixed and greedy agree
    assert main(single + ["--allocator", "fixed", "--out", str(tmp_path / "fixed")]) == 0
    assert main(single + ["--allocator", "greedy", "--out", str(tmp_path / "greedy")]) == 0
    fixed, greedy = (json.loads((tmp_path / name / "result.json").read_text()) for name in ("fixed", "greedy"))
    assert fixed["allocator"] == "fixed" and greedy["allocator"] == "greedy"
    assert fixed["latency_cycles"] == greedy["latency_cycles"]
    # four compute cores and no mapping: the convs may run on any of them
    quad = ["run", "-q", "-w", str(INPUTS / "workloads" / "two_conv.yaml"), "-a", str(INPUTS / "hardware" / "quad_core.yaml")]
    assert main(quad + ["--allocator", "fixed"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("error: allocator 'fixed': layer 'conv_a' may run on cores [0, 1, 2, 3]")


def test_run_without_arguments_uses_the_bundled_default(capsys):
    assert main(["run"]) == 0
    assert capsys.readouterr().out.startswith("resnet18 on quad_core: fused, depth_first order")


def test_bad_input_gives_one_line_and_exit_code_1(write, capsys):
    hardware = write("hw.yaml", "version: 1\nname: x\ncores: {0: missing.yaml}\noffchip_core_id: 0\ncore_connectivity: []\n")
    code = main(["run", "-w", str(INPUTS / "workloads" / "two_conv.yaml"), "-a", str(hardware)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "hw.yaml" in err and "cores.0" in err


def test_run_needs_both_workload_and_hardware(capsys):
    assert main(["run", "-w", str(INPUTS / "workloads" / "two_conv.yaml")]) == 1
    assert "both a workload and a hardware" in capsys.readouterr().err


def test_validate_reports_each_file(write, capsys):
    bad = write("bad.yaml", "version: 1\nname: w\nlayers: [{name: a, equation: 'O[k]=I[k]', loop_dims: [K], loop_sizes: [0], operand_precision: {O: 8, I: 8}}]\n")
    files = [INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
             INPUTS / "hardware" / "cores" / "tpu_32x32.yaml", INPUTS / "mappings" / "quad_core.yaml",
             INPUTS / "workloads" / "transformer_block.onnx", bad]
    code = main(["validate", *map(str, files)])
    captured = capsys.readouterr()
    assert code == 1
    kinds = [line.split(": ")[1].split(" ")[0] for line in captured.out.splitlines() if line.startswith("ok")]
    assert kinds == ["workload", "hardware", "core", "mapping", "workload"]
    assert "bad.yaml: layers[0].loop_sizes[0]: expected an integer >= 1, got 0" in captured.err


@needs_peers
def test_validate_shows_peer_warnings(capsys):
    assert main(["validate", str(PEERS / "2026" / "workload" / "simple_example_workload.yaml")]) == 0
    assert "warning:" in capsys.readouterr().out


def test_inspect_prints_the_layer_table(capsys):
    assert main(["inspect", str(INPUTS / "workloads" / "two_conv.yaml")]) == 0
    out = capsys.readouterr().out
    assert "two_conv: 2 layers, 5,898,240 MACs" in out  # 16*8*32*32*9 + 32*16*32*32*9
    assert "conv_b" in out and "I<-conv_a" in out


def test_console_script_exit_codes(tmp_path):
    stream = [sys.executable, "-m", "stream.cli"]
    ok = subprocess.run(stream + ["inspect", str(INPUTS / "workloads" / "two_conv.yaml")], capture_output=True, text=True)
    assert ok.returncode == 0
    missing = subprocess.run(stream + ["inspect", str(tmp_path / "none.yaml")], capture_output=True, text=True)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr and "file not found" in missing.stderr
    usage = subprocess.run(stream + ["run", "--mode", "sideways"], capture_output=True, text=True)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_run_with_cpsat_reports_the_search_and_stays_reproducible(tmp_path, capsys):
    args = ["run", "-w", str(INPUTS / "workloads" / "fsrcnn.yaml"), "-a", str(INPUTS / "hardware" / "hetero.yaml"),
            "-m", "none", "--allocator", "cpsat", "--time-limit", "2"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "  allocation        cpsat " in printed and "gap" in printed
    data = json.loads((tmp_path / "a" / "result.json").read_text())
    search = data["allocation"]
    assert data["allocator"] == "cpsat" and search["method"] == "cpsat"
    assert search["status"] in ("optimal", "feasible") and search["objective"] == "latency"
    assert 0 <= search["gap"] <= 1 and search["best_bound"] <= search["objective_value"]
    assert search["time_limit_s"] == 2 and search["kept"] in ("solver", "warm_start")
    assert "wall_seconds" not in search  # it varies: timing.json has it
    timing = json.loads((tmp_path / "a" / "timing.json").read_text())["seconds"]
    assert timing["allocation_search"] > 0 and all(v >= 0 for v in timing.values())
    assert timing["total"] == pytest.approx(sum(v for k, v in timing.items() if k not in ("total", "allocation_search")))
    assert main(args + ["-q", "--out", str(tmp_path / "b")]) == 0
    for name in ("result.json", "summary.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_run_takes_the_allocation_objective(tmp_path):
    base = ["run", "-q", "-w", str(INPUTS / "workloads" / "fsrcnn.yaml"), "-a", str(INPUTS / "hardware" / "hetero.yaml"),
            "-m", "none", "--time-limit", "2"]
    results = {}
    for objective in ("latency", "energy"):
        assert main(base + ["--allocation-objective", objective, "--out", str(tmp_path / objective)]) == 0
        results[objective] = json.loads((tmp_path / objective / "result.json").read_text())
        assert results[objective]["allocation"]["objective"] == objective
    # each is no worse than the other on its own objective, as the simulator judges
    assert results["energy"]["energy_pj"]["total"] <= results["latency"]["energy_pj"]["total"] * (1 + 1e-9)
    assert main(base + ["--allocation-objective", "weighted", "--latency-weight", "0.3"]) == 0


@pytest.mark.parametrize("flag, value", [("--latency-weight", "1.5"), ("--time-limit", "0"), ("--workers", "-1"),
                                         ("--seed", "-1")])
def test_allocation_flags_are_checked(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", flag, value])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def test_compare_allocators_tabulates_each_allocator(tmp_path, capsys):
    args = ["compare-allocators", "-w", str(INPUTS / "workloads" / "fsrcnn.yaml"),
            "-a", str(INPUTS / "hardware" / "hetero.yaml"), "--allocators", "greedy,cpsat,genetic",
            "--time-limit", "2", "-q", "--out", str(tmp_path)]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fsrcnn on hetero: fused, depth_first order, allocation objective latency")
    assert lines[1].split()[:3] == ["allocator", "latency", "cycles"]
    rows = {line.split()[0]: line for line in lines[3:6]}
    assert set(rows) == {"greedy", "cpsat", "genetic"}
    assert "1.000x latency" in rows["greedy"]
    data = json.loads((tmp_path / "compare.json").read_text())["allocators"]
    assert [row["allocator"] for row in data] == ["greedy", "cpsat", "genetic"]
    by = {row["allocator"]: row for row in data}
    # the solver is checked against its warm start, the genetic search starts from it
    assert by["cpsat"]["latency_cycles"] <= by["greedy"]["latency_cycles"]
    assert by["genetic"]["latency_cycles"] <= by["greedy"]["latency_cycles"]
    assert by["cpsat"]["gap"] is not None and by["greedy"]["gap"] is None
    assert by["genetic"]["allocation"]["evaluations"] >= 1
    assert all(row["solve_seconds"] >= 0 for row in data)


def test_compare_allocators_keeps_going_past_a_failing_allocator(capsys):
    # two_conv on quad_core without a mapping: fixed cannot decide, the others can
    args = ["compare-allocators", "-q", "-w", str(INPUTS / "workloads" / "two_conv.yaml"),
            "-a", str(INPUTS / "hardware" / "quad_core.yaml"), "--allocators", "greedy,fixed,cpsat"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: allocator fixed: allocator 'fixed': layer 'conv_a' may run on cores")
    assert [line.split()[0] for line in out.splitlines()[3:]] == ["greedy", "cpsat"]


def test_compare_allocators_rejects_unknown_names(capsys):
    assert main(["compare-allocators", "--allocators", "greedy,magic"]) == 2
    assert "error: --allocators: expected a comma-separated list" in capsys.readouterr().err


def test_the_cli_defaults_are_the_librarys():
    from stream.cli import _parser
    from stream.cost import DEFAULT_OBJECTIVE
    from stream.sweep.spec import Base

    args = _parser().parse_args(["run"])
    assert args.objective == DEFAULT_OBJECTIVE == Base.__dataclass_fields__["objective"].default


def test_dim_sizes_a_symbolic_input(tmp_path, capsys):
    """An ONNX model with a symbolic batch runs only once --dim gives its size."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
        [helper.make_tensor_value_info("x", TensorProto.INT8, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, ["batch", 16])])
    path = tmp_path / "sym.onnx"
    save_graph(graph, path)
    case = ["run", "-w", str(path), "-a", str(INPUTS / "hardware" / "single_core.yaml"), "--allocator", "greedy", "-q"]
    assert main(case) == EXIT_INPUT_ERROR
    assert "expected a size for every symbolic dim (--dim NAME=VALUE, dims= in the API), got \"'batch' (x axis 0)\"" \
        in capsys.readouterr().err
    assert main(case + ["--dim", "batch=4", "-o", str(tmp_path / "out")]) == 0
    assert '"workload": "sym"' in (tmp_path / "out" / "result.json").read_text()
