"""Command line: ``stream run | plot | compare | compare-allocators | sweep | validate | inspect``.

Bad input prints one ``error:`` line naming the file, key and expected form, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from stream.errors import StreamError

# stream.simulation.POLICIES, written out so that parsing arguments imports no numpy (a test
# keeps the two equal)
POLICIES = ("depth_first", "latency", "layer_by_layer", "memory")

EXIT_INPUT_ERROR = 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    try:
        return args.func(args)
    except StreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # an output directory that is a file, a full disk, no permission
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="simulate a workload on an accelerator (default: ResNet-18 on quad_core)")
    _case_arguments(run)
    run.add_argument("--allocator", choices=("cpsat", "greedy", "genetic", "fixed"), default="cpsat",
                     help="who decides the core of each piece: CP-SAT (default), HEFT list scheduling, "
                          "NSGA-II on the simulator, or the mapping alone")
    _allocation_arguments(run)
    run.add_argument("--prefetch-depth", type=_positive(int), metavar="N",
                     help="CNs every core holds loaded, the running one included (overrides the core files' "
                          "prefetch_depth, default 2; 1: no data movement overlaps compute)")
    run.add_argument("--out", "-o", help="directory for result.json, summary.txt, layers.csv, events.csv, "
                                          "links.csv, memory.csv, timing.json and the figures")
    run.add_argument("--perfetto", action="store_true",
                     help="also write trace.perfetto.json (open in ui.perfetto.dev or chrome://tracing) to --out")
    run.add_argument("--window", type=_window, metavar="FIRST:LAST",
                     help="also draw the Gantt chart and memory trace of these cycles only (a zoom)")
    run.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    _progress_argument(run)
    run.set_defaults(func=cmd_run)

    plot = sub.add_parser("plot", help="draw the figures of a saved run again (DIR/result.json and the tables "
                                        "beside it), without simulating, or a sweep's trade-offs (results.csv)")
    plot.add_argument("result", help="result.json written by `stream run --out DIR` (or DIR); or the "
                                     "results.csv of `stream sweep` for its trade-off figure")
    plot.add_argument("--color-by", metavar="COLUMN", help="sweep tables: the column that colours the points "
                                                          "(default: the first parameter that varies)")
    plot.add_argument("--window", type=_window, metavar="FIRST:LAST",
                      help="draw only the Gantt chart and memory trace of these cycles (a zoom)")
    plot.add_argument("--out", "-o", help="directory for the figures (default: beside result.json)")
    plot.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    plot.set_defaults(func=cmd_plot)

    compare = sub.add_parser("compare-allocators", help="run several allocators on one case and tabulate "
                                                         "simulated latency, energy and solve time")
    _case_arguments(compare)
    compare.add_argument("--allocators", default="greedy,cpsat,genetic",
                         help="comma-separated, from cpsat, greedy, genetic, fixed (default: greedy,cpsat,genetic)")
    _allocation_arguments(compare)
    compare.add_argument("--out", "-o", help="directory for compare.json")
    compare.add_argument("--quiet", "-q", action="store_true", help="print only the table")
    _progress_argument(compare)
    compare.set_defaults(func=cmd_compare)

    compare = sub.add_parser("compare", help="two runs side by side: fused vs layer-by-layer (default), or two "
                                              "hardware files, mappings or allocators")
    compare.add_argument("--workload", "-w", help="workload file (.yaml or .onnx)")
    _dim_argument(compare)
    compare.add_argument("--hardware", "-a", nargs="+", help="one accelerator file, or two to compare")
    compare.add_argument("--mapping", "-m", nargs="+", help="one mapping file, or two to compare")
    compare.add_argument("--mode", nargs="+", choices=("fused", "layer_by_layer"),
                         help="one mode, or two to compare (default: fused and layer_by_layer)")
    compare.add_argument("--allocator", nargs="+", choices=("cpsat", "greedy", "genetic", "fixed"),
                         help="one allocator (default cpsat), or two to compare")
    compare.add_argument("--policy", choices=POLICIES)
    compare.add_argument("--cost-model", choices=("zigzag", "roofline"), default="zigzag")
    compare.add_argument("--objective", choices=("energy", "latency", "edp"), default="edp")
    _allocation_arguments(compare)
    compare.add_argument("--out", "-o", help="directory for comparison.json and comparison.png / .pdf")
    compare.add_argument("--quiet", "-q", action="store_true", help="print only the table")
    _progress_argument(compare)
    compare.set_defaults(func=cmd_compare_runs)

    validate = sub.add_parser("validate", help="check input files (workload, hardware, core, mapping)")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=cmd_validate)

    inspect = sub.add_parser("inspect", help="print a workload's layer table, or its compute nodes (--cns)")
    inspect.add_argument("workload")
    inspect.add_argument("--cns", action="store_true", help="split into compute nodes: counts per layer and group")
    inspect.add_argument("--mapping", "-m", help="mapping file for --cns")
    inspect.add_argument("--hardware", "-a", help="accelerator for --cns (checks cores, derives fusion groups)")
    inspect.add_argument("--mode", choices=("fused", "layer_by_layer"), default="fused")
    inspect.set_defaults(func=cmd_inspect)

    sweep = sub.add_parser("sweep", help="run every point of a sweep spec (hardware, mapping and run arguments "
                                          "varied) into one table; running it again resumes")
    sweep.add_argument("spec", help="sweep spec (.yaml, version: 1)")
    sweep.add_argument("--out", "-o", required=True,
                       help="directory for results.jsonl, results.csv, sweep.json and points/<id>/ (the inputs of "
                            "each point); points already recorded there are skipped")
    sweep.add_argument("--workers", type=_positive(int), metavar="N",
                       help="local worker processes (default 1: the points run in this process)")
    sweep.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run the points on this Dask scheduler instead (pip install 'stream-sim[cluster]')")
    sweep.add_argument("--retry-failed", action="store_true", help="run the points recorded with an error again")
    sweep.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    _progress_argument(sweep)
    sweep.set_defaults(func=cmd_sweep)
    return parser


def _dim_argument(parser) -> None:
    parser.add_argument("--dim", action="append", type=_dim, default=[], metavar="NAME=VALUE",
                        help="size of a symbolic dim of an ONNX model's inputs (batch, sequence length); "
                             "repeat for several")


def _dim(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with a positive integer VALUE, got {text}")
    return name, int(value)


def _with_dims(workload, args):
    """The workload loaded with the --dim sizes, or its path when none are given."""
    if not args.dim:
        return workload
    from stream.workload import load_workload

    return load_workload(workload, dims=dict(args.dim))


def _case_arguments(parser) -> None:
    parser.add_argument("--workload", "-w", help="workload file (.yaml or .onnx)")
    _dim_argument(parser)
    parser.add_argument("--hardware", "-a", help="accelerator system file (.yaml)")
    parser.add_argument("--mapping", "-m", help="mapping file (.yaml); default: the hardware file's default_mapping; "
                                                "'none' for no mapping at all")
    parser.add_argument("--mode", choices=("fused", "layer_by_layer"), default="fused")
    parser.add_argument("--policy", choices=POLICIES,
                        help="order each core runs its CNs in (default: depth_first when fused, "
                             "layer_by_layer otherwise)")
    parser.add_argument("--cost-model", choices=("zigzag", "roofline"), default="zigzag",
                        help="per-core cost: ZigZag's equations with a mapping search (default) or a roofline")
    parser.add_argument("--objective", choices=("energy", "latency", "edp"), default="edp",
                        help="what the per-core mapping search minimises")


def _progress_argument(parser) -> None:
    parser.add_argument("--progress", action="store_true",
                        help="progress lines on stderr even when it is not a terminal (a log file, say)")


def _allocation_arguments(parser) -> None:
    parser.add_argument("--allocation-objective", choices=("latency", "energy", "edp", "weighted"),
                        default="latency", help="what cpsat and genetic minimise (default: latency)")
    parser.add_argument("--latency-weight", type=_fraction, default=0.5, metavar="W",
                        help="for --allocation-objective weighted: W x latency + (1 - W) x energy, each "
                             "relative to the greedy allocation's (default 0.5)")
    parser.add_argument("--time-limit", type=_positive(float), default=10.0, metavar="S",
                        help="search budget in seconds for cpsat and genetic (default 10)")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed of the search (default 0)")
    parser.add_argument("--workers", type=_positive(int), default=1, metavar="N",
                        help="CP-SAT threads; 1 (default) is reproducible, more search faster but may "
                             "answer differently from run to run")
    parser.add_argument("--strict-capacity", action="store_true",
                        help="cpsat: weights that cannot stay resident on their cores are an error, "
                             "not a note")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2147483647, got {text}")
    return value


def _plot_sweep(path: Path, args) -> int:
    """Trade-off figures of a sweep's results.csv (latency, energy, on-chip peak; Pareto front)."""
    import csv

    from stream.viz import TRADEOFFS, tradeoff

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise StreamError(f"{path}: cannot read it ({exc.strerror}); expected the results.csv of "
                          "`stream sweep`") from None
    needed = ["point", "status"] + [key for key, _, _ in TRADEOFFS]
    missing = [c for c in needed if rows and c not in rows[0]]
    if not rows or missing:
        raise StreamError(f"{path}: expected a results.csv of `stream sweep` with columns {', '.join(needed)}"
                          + (f"; missing {', '.join(missing)}" if rows else "; it has no rows"))
    if args.color_by is not None and args.color_by not in rows[0]:
        raise StreamError(f"--color-by: expected a column of {path} ({', '.join(rows[0])}), got {args.color_by!r}")
    out = Path(args.out or path.parent)
    try:  # the sweep's own name, when its sweep.json is beside the table
        name = json.loads((path.parent / "sweep.json").read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError, TypeError):
        name = path.parent.name
    drawn = {}
    for suffix in ("png", "pdf"):
        drawn = tradeoff(rows, out / f"tradeoff.{suffix}", f"sweep {name}: {len(rows)} points", args.color_by)
    if not args.quiet:
        front = ", ".join(map(str, drawn["pareto"]))
        print(f"wrote tradeoff.png and tradeoff.pdf to {out}: {drawn['points']} points, "
              f"Pareto front (latency, energy, on-chip peak): points {front}")
    return 0


def _window(text: str) -> tuple[int, int]:
    first, sep, last = text.partition(":")
    try:
        window = int(first), int(last)
    except ValueError:
        window = None
    if not sep or window is None or not 0 <= window[0] < window[1]:
        raise argparse.ArgumentTypeError(f"expected FIRST:LAST, two cycles with 0 <= FIRST < LAST, got {text}")
    return window


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
        return value

    return parse


def _settings(args):
    from stream.allocation import AllocationSettings

    return AllocationSettings(objective=args.allocation_objective, latency_weight=args.latency_weight,
                              time_limit_s=args.time_limit, workers=args.workers, seed=args.seed,
                              strict_capacity=args.strict_capacity)


# -- run ------------------------------------------------------------------------------


def cmd_run(args) -> int:
    from stream.api import resolve_inputs, run_detailed

    if args.perfetto and not args.out:
        print("error: --perfetto writes into the --out directory; give --out DIR", file=sys.stderr)
        return 2
    workload, hardware, mapping = resolve_inputs(args.workload, args.hardware, args.mapping)
    workload = _with_dims(workload, args)
    if args.prefetch_depth is not None:
        from stream.hardware import load_hardware

        hardware = load_hardware(hardware).with_prefetch_depth(args.prefetch_depth)
    outcome = run_detailed(workload, hardware, mapping, mode=args.mode, cost_model=args.cost_model,
                           objective=args.objective, policy=args.policy, allocator=args.allocator,
                           progress=_progress_printer(args), allocation=_settings(args))
    result = outcome.result
    summary = format_summary(result)
    if args.out:
        from stream.export import write_events_csv, write_layers_csv, write_links_csv, write_memory_csv, write_perfetto
        from stream.results import timeline_of, write_atomic
        from stream.viz import figures

        out = Path(args.out)
        saved = timeline_of(outcome.trace)
        result.save(out / "result.json")
        write_atomic(out / "summary.txt", summary + "\n")
        write_layers_csv(result, out / "layers.csv")
        write_events_csv(outcome.trace, out / "events.csv")
        write_links_csv(saved, out / "links.csv")
        write_memory_csv(saved, out / "memory.csv")
        if args.perfetto:
            write_perfetto(outcome.trace, out / "trace.perfetto.json")
        # the one output that differs between runs of the same inputs: seconds per step
        write_atomic(out / "timing.json", json.dumps({"seconds": outcome.seconds}, indent=2) + "\n")
        drawn = figures(result, saved, out)
        if args.window:
            drawn += figures(result, saved, out, args.window)
    if not args.quiet:
        print(summary)
        if args.out:
            extra = ", trace.perfetto.json" if args.perfetto else ""
            print(f"\nwrote result.json, summary.txt, layers.csv, events.csv, links.csv, memory.csv, "
                  f"timing.json{extra} and {len(drawn)} figures ({', '.join(drawn)}) to {args.out}")
    return 0


def cmd_plot(args) -> int:
    from stream.export import read_timeline
    from stream.results import Result
    from stream.viz import figures

    path = Path(args.result)
    if path.is_dir():
        path = path / ("results.csv" if (path / "results.csv").exists() and not (path / "result.json").exists()
                       else "result.json")
    if path.suffix == ".csv":
        return _plot_sweep(path, args)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StreamError(f"{path}: cannot read it ({exc.strerror}); expected the result.json that "
                          f"`stream run --out DIR` writes") from None
    except json.JSONDecodeError as exc:
        raise StreamError(f"{path}: line {exc.lineno}: expected JSON ({exc.msg})") from None
    try:
        result = Result.from_dict(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise StreamError(f"{path}: expected a result.json of `stream run` ({exc})") from None
    drawn = figures(result, read_timeline(path.parent, result), args.out or path.parent, args.window)
    if not args.quiet:
        print(f"wrote {', '.join(drawn)} to {args.out or path.parent}")
    return 0


def cmd_compare(args) -> int:
    from stream.allocation import METHODS
    from stream.api import compare_allocators, resolve_inputs

    names = [n.strip() for n in args.allocators.split(",") if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        print(f"error: --allocators: expected a comma-separated list from {list(METHODS)}, got "
              f"{args.allocators!r}", file=sys.stderr)
        return 2
    workload, hardware, mapping = resolve_inputs(args.workload, args.hardware, args.mapping)
    workload = _with_dims(workload, args)
    failed = []

    def skip(name: str, error: StreamError) -> None:
        failed.append(name)
        print(f"error: allocator {name}: {error}", file=sys.stderr)

    runs = compare_allocators(workload, hardware, mapping, names, mode=args.mode, cost_model=args.cost_model,
                              objective=args.objective, policy=args.policy, allocation=_settings(args),
                              progress=_progress_printer(args), on_error=skip)
    if not runs:
        return EXIT_INPUT_ERROR
    rows = [_comparison(run) for run in runs]
    first = runs[0].result
    print(f"{first.workload} on {first.hardware}: {first.mode}, {first.policy} order, "
          f"allocation objective {args.allocation_objective}")
    base = rows[0]
    table = [("allocator", "latency cycles", "energy", "EDP (cycles x J)", "vs " + base["allocator"],
              "solve s", "gap")]
    for row in rows:
        ratio = row["latency_cycles"] / base["latency_cycles"] if base["latency_cycles"] else 1.0
        table.append((row["allocator"], f"{row['latency_cycles']:,}", _si(row["energy_pj"] * 1e-12, "J"),
                      f"{row['latency_cycles'] * row['energy_pj'] * 1e-12:.4g}", f"{ratio:.3f}x latency",
                      f"{row['solve_seconds']:.2f}", "-" if row["gap"] is None else f"{row['gap']:.1%}"))
    _print_table(table, right={1, 2, 3, 4, 5, 6})
    if args.out:
        from stream.results import write_atomic

        # solve seconds vary between runs; everything else is reproducible
        write_atomic(Path(args.out) / "compare.json", json.dumps({"allocators": rows}, indent=2) + "\n")
        if not args.quiet:
            print(f"\nwrote compare.json to {args.out}")
    return EXIT_INPUT_ERROR if failed else 0


def cmd_compare_runs(args) -> int:
    from stream.api import resolve_inputs, run_detailed
    from stream.results import comparison

    options = {"hardware": args.hardware, "mapping": args.mapping, "mode": args.mode, "allocator": args.allocator}
    varied = [name for name, values in options.items() if values and len(values) > 1]
    too_many = [name for name, values in options.items() if values and len(values) > 2]
    if len(varied) > 1 or too_many:
        print(f"error: compare varies one thing at a time, with two values; got several for "
              f"{', '.join('--' + n for n in (too_many or varied))}", file=sys.stderr)
        return 2
    if not varied:
        varied, options["mode"] = ["mode"], ["fused", "layer_by_layer"]
    name = varied[0]
    base = {n: (v[0] if v else None) for n, v in options.items()}
    base["mode"] = base["mode"] or "fused"
    base["allocator"] = base["allocator"] or "cpsat"
    say = _progress_printer(args)
    runs = {}
    for value in options[name]:
        setting = dict(base, **{name: value})
        workload, hardware, mapping = resolve_inputs(args.workload, setting["hardware"], setting["mapping"])
        workload = _with_dims(workload, args)
        label = Path(value).stem if name in ("hardware", "mapping") else value
        if label in runs:
            label = f"{label} ({len(runs) + 1})"
        run = run_detailed(workload, hardware, mapping, mode=setting["mode"], allocator=setting["allocator"],
                           cost_model=args.cost_model, objective=args.objective, policy=args.policy,
                           progress=say, allocation=_settings(args))
        if name == "mode" and value == "fused" and not run.cngraph.fuses:
            print(f"error: compare: the fused plan fuses nothing ({run.result.mapping}): no fusion group cuts its "
                  "layers into intra-core tiles, so fused and layer by layer run the same compute nodes; give a "
                  "mapping with intra_core_tiling (--mapping)", file=sys.stderr)
            return EXIT_INPUT_ERROR
        runs[label] = run.result
    rows = comparison(runs)
    labels = list(runs)
    first = runs[labels[0]]
    print(f"{first.workload}: {' vs '.join(labels)} ({name})")
    table = [("metric", "unit", *labels, f"{labels[1]} / {labels[0]}")]
    for row in rows:
        ratio = row["relative"][labels[1]]
        table.append((row["metric"], row["unit"], *(_number(row["values"][l]) for l in labels),
                      "-" if ratio is None else f"{ratio:.3f}"))
    _print_table(table, right={2, 3, 4})
    if args.out:
        from stream.results import write_atomic
        from stream.viz import comparison as figure

        out = Path(args.out)
        write_atomic(out / "comparison.json", json.dumps({"varied": name, "rows": rows}, indent=2) + "\n")
        for suffix in ("png", "pdf"):
            figure(runs, out / f"comparison.{suffix}")
        if not args.quiet:
            print(f"\nwrote comparison.json, comparison.png and comparison.pdf to {args.out}")
    return 0


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _comparison(run) -> dict:
    r, stats = run.result, run.allocation.stats
    return {"allocator": r.allocator, "latency_cycles": r.latency_cycles, "energy_pj": r.energy_pj["total"],
            "solve_seconds": run.seconds["allocation"], "gap": stats.get("gap"),
            "estimated_latency_cycles": run.allocation.estimated_latency_cycles,
            "allocation": {k: v for k, v in r.allocation.items() if k not in ("method",)}}


def _progress_printer(args):
    """Progress lines on stderr, each with the seconds since the run began: on a terminal,
    or anywhere with --progress; never with --quiet."""
    if args.quiet or not (args.progress or sys.stderr.isatty()):
        return None
    began = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - began:7.1f} s] {message}", file=sys.stderr, flush=True)

    return say


def format_summary(result) -> str:
    e = result.energy_pj
    lines = [
        f"{result.workload} on {result.hardware}: {result.mode}, {result.policy} order, "
        f"{result.allocator} allocation",
        *([f"  mapping           {result.mapping}"] if result.mapping else []),
        f"  compute nodes     {result.num_cns:,} ({result.num_edges:,} dependencies)",
        f"  latency           {result.latency_cycles:,} cycles = {_si(result.latency_s, 's')} "
        f"at {_si(result.clock_hz, 'Hz')}",
        f"  energy            {_si(e['total'] * 1e-12, 'J')}",
    ]
    for part in ("mac", "onchip_memory", "offchip_memory", "interconnect"):
        share = e[part] / e["total"] if e["total"] else 0.0
        lines.append(f"    {part:<15} {_si(e[part] * 1e-12, 'J'):>10}  {share:6.1%}")
    a = result.allocation
    if a.get("status") and a.get("objective_value") is None:
        lines.append(f"  allocation        cpsat {a['status']}: no solution within {a['time_limit_s']:g} s; "
                     "kept the warm start")
    elif a.get("status"):
        lines.append(f"  allocation        cpsat {a['status']}: model {a['objective']} {_objective(a, 'objective_value')}, "
                     f"bound {_objective(a, 'best_bound')}, gap {a['gap']:.1%}; kept the {a['kept'].replace('_', ' ')}")
    elif a.get("generations") is not None:
        lines.append(f"  allocation        genetic: {a['evaluations']} simulations over {a['generations']} "
                     f"generations, stopped by {a['stopped_by'].replace('_', ' ')}")
    if result.cost_model:
        c = result.cost_model
        lines.append(f"  per-core cost     {c['model']} model, {c['objective']} objective, "
                     f"{c['entries']} distinct tile costs")
    lines.append(f"  DRAM traffic      read {_bytes(result.dram_traffic_bytes['read'])}, "
                 f"write {_bytes(result.dram_traffic_bytes['write'])}, {result.spills} spills")
    moved = [f"{cause} {_bytes(n)}" for cause, n in result.traffic_bytes.items() if n]
    if moved:
        lines.append(f"    by cause        {', '.join(moved)}")
    lines.append("  peak memory       (per memory: peak / capacity; of which feature maps)")
    for key, peak in result.peak_memory_bytes.items():
        lines.append(f"    {key:<28} {_bytes(peak):>10} / {_bytes(result.memory_capacity_bytes[key]):<10} "
                     f"{_bytes(result.peak_activation_bytes[key])}")
    for warning in result.warnings:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def _objective(allocation: dict, key: str) -> str:
    """A CP-SAT objective value in its units: cycles, J, cycles x J, or a weighted sum."""
    value, objective = allocation[key], allocation["objective"]
    if objective == "latency":
        return f"{value:,.0f} cycles"
    if objective == "energy":
        return _si(value * 1e-12, "J")
    if objective == "edp":
        return f"{value * 1e-12:.4g} cycles x J"
    return f"{value:.4g}"


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u"),
                           (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"0 {unit}"


def _bytes(n: int) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n} B"


# -- validate -------------------------------------------------------------------------


def cmd_validate(args) -> int:
    failures = 0
    for file in args.files:
        try:
            kind, summary, warnings = _validate_one(file)
        except StreamError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        print(f"ok  {file}: {kind} ({summary})")
        for warning in warnings:
            print(f"    warning: {warning}")
    return EXIT_INPUT_ERROR if failures else 0


def _validate_one(file: str):
    from stream.spec import load_yaml, unmodelled_note

    if file.lower().endswith(".onnx"):
        from stream.workload import load_workload

        w = load_workload(file)
        return "workload", f"{len(w)} layers, {w.macs:,} MACs", w.warnings
    data, _ = load_yaml(file)
    if isinstance(data, dict) and "cores" in data:
        from stream.hardware import load_hardware

        acc = load_hardware(file)
        return "hardware", f"{len(acc.cores)} cores, {len(acc.links)} links", acc.warnings
    if isinstance(data, dict) and ("memories" in data or "operational_array" in data):
        from stream.hardware import load_core

        core = load_core(file, 0)
        return "core", f"{core.array.units} MAC units, {len(core.memories)} memories", unmodelled_note(file, core.unmodelled)
    entries = data.get("layers", []) if isinstance(data, dict) else data
    if isinstance(entries, list) and any(isinstance(e, dict) and "equation" in e for e in entries):
        from stream.workload import load_workload

        w = load_workload(file)
        return "workload", f"{len(w)} layers, {w.macs:,} MACs", w.warnings
    from stream.mapping import load_mapping

    m = load_mapping(file)
    return "mapping", f"{len(m.rules)} rules, {len(m.fusion_groups)} fusion groups", ()


# -- inspect --------------------------------------------------------------------------


def cmd_inspect(args) -> int:
    from stream.workload import Role, load_workload

    workload = load_workload(args.workload)
    if args.cns:
        return _inspect_cns(workload, args)
    print(f"{workload.name}: {len(workload)} layers, {workload.macs:,} MACs (loop iterations)")
    rows = [("layer", "type", "MACs", "output B", "act in B", "weights B", "loop dims", "inputs from")]
    for layer in workload.layers:
        in_bytes = {role: sum(layer.footprint_bits(op.name) for op in layer.inputs if op.role is role) // 8
                    for role in (Role.ACTIVATION, Role.WEIGHT)}
        rows.append((
            layer.name, layer.op_type, f"{layer.macs:,}", f"{layer.footprint_bits(layer.output.name) // 8:,}",
            f"{in_bytes[Role.ACTIVATION]:,}", f"{in_bytes[Role.WEIGHT]:,}",
            " ".join(f"{d}{n}" for d, n in zip(layer.dims, layer.sizes)),
            ", ".join(f"{op.name}<-{s.layer}" for op in layer.inputs for s in op.sources) or "DRAM",
        ))
    _print_table(rows, right={2, 3, 4, 5})
    for warning in workload.warnings:
        print(f"warning: {warning}")
    return 0


def _inspect_cns(workload, args) -> int:
    import numpy as np

    from stream.api import NO_MAPPING, resolve_mapping
    from stream.hardware import load_hardware
    from stream.mapping import load_mapping, plan_layers
    from stream.tiling import DATA, tile

    accelerator = load_hardware(args.hardware) if args.hardware else None
    if accelerator is not None:
        mapping, text = resolve_mapping(args.mapping, accelerator)
    else:
        mapping = load_mapping(args.mapping) if args.mapping and args.mapping != NO_MAPPING else None
        text = Path(mapping.source_file).name if mapping else "none"
    g = tile(workload, plan_layers(workload, accelerator, mapping), args.mode)
    print(f"mapping: {text}")
    data = g.edge_kind == DATA
    in_data = np.bincount(g.edge_dst[data], minlength=g.num_cns)
    in_chain = np.bincount(g.edge_dst[~data], minlength=g.num_cns)
    ext_layer = np.array([e.layer for e in g.externals], dtype=np.int64)
    print(f"{workload.name} ({args.mode}): {g.num_cns:,} CNs, {g.num_edges:,} edges "
          f"({int(data.sum()):,} data, {int((~data).sum()):,} chain), {len(g.externals):,} DRAM tensors, "
          f"{len(g.groups)} fusion groups")
    rows = [("layer", "group", "CNs", "pieces", "tiles", "data in", "chain in", "DRAM tensors", "dim/intervals")]
    for grid in g.grids:
        cns = slice(grid.first, grid.first + grid.count)
        split = " ".join(f"{s.dim}/{s.count}" for s in grid.splits)
        rows.append((grid.layer.name, str(int(g.group[grid.first])) if grid.count else "-", f"{grid.count:,}",
                     f"{int(g.piece[cns].max()) + 1:,}", f"{int(g.tile[cns].max()) + 1:,}",
                     f"{int(in_data[cns].sum()):,}", f"{int(in_chain[cns].sum()):,}",
                     f"{int((ext_layer == grid.index).sum()):,}", split or "-"))
    _print_table(rows, right={2, 3, 4, 5, 6, 7})
    print()
    rows = [("group", "layers", "CNs", "edges inside", "edges in from other groups")]
    same = g.group[g.edge_src] == g.group[g.edge_dst]
    for i, members in enumerate(g.groups):
        inside = int((same & (g.group[g.edge_dst] == i)).sum())
        incoming = int((~same & (g.group[g.edge_dst] == i)).sum())
        rows.append((str(i), f"{members[0]} .. {members[-1]} ({len(members)})",
                     f"{int((g.group == i).sum()):,}", f"{inside:,}", f"{incoming:,}"))
    _print_table(rows, right={2, 3, 4})
    for note in g.notes:
        print(f"note: {note}")
    return 0


def _print_table(rows: list[tuple[str, ...]], right: set[int]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


# -- sweep ----------------------------------------------------------------------------


def cmd_sweep(args) -> int:
    from stream.sweep import load_sweep, run_sweep

    if args.scheduler and args.workers is not None:
        print("error: --workers starts local processes, --scheduler uses a Dask cluster: give one of them",
              file=sys.stderr)
        return 2
    sweep = load_sweep(args.spec)
    outcome = run_sweep(sweep, args.out, workers=args.workers or 1, scheduler=args.scheduler,
                        retry_failed=args.retry_failed, progress=_progress_printer(args))
    if not args.quiet:
        print(f"{sweep.name}: {outcome.points} points: ran {outcome.ran}, skipped {outcome.skipped} (already in "
              f"results.jsonl), {outcome.failed} failed")
        print(f"wrote {outcome.csv_path} (and results.jsonl, sweep.json, points/)")
    if outcome.failed:
        first = next(row for row in outcome.rows if row["status"] == "error")
        print(f"error: {outcome.failed} of {outcome.points} points failed (first: point {first['point']}, "
              f"{first['error']}); see {outcome.csv_path}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    if outcome.pending:
        print(f"error: {outcome.pending} of {outcome.points} points did not run (their workers were lost); run the "
              f"sweep again to resume", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
