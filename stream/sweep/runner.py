"""Running a sweep: points on an executor, results appended as they finish, tables at the end.

See the package docstring (:mod:`stream.sweep`) for the outputs and the resume rules.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import io
import json
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stream.errors import InputError, StreamError
from stream.sweep.spec import Point, Sweep, load_sweep, materialise

METRICS = ("latency_cycles", "latency_s", "energy_pj", "dram_read_bytes", "dram_write_bytes", "peak_memory_bytes",
           "onchip_peak_bytes", "num_cns", "spills")
REPORT_SECONDS = 2.0
RESULTS, TABLE, SUMMARY, POINTS = "results.jsonl", "results.csv", "sweep.json", "points"


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` did. ``rows``: one dict per recorded point, as in
    ``results.csv`` (typed values; ``None`` where the CSV is empty), sorted by point index.
    ``ran``: points run this time; ``skipped``: points already in ``results.jsonl``;
    ``failed``: rows with status ``error`` (this run's or earlier); ``pending``: points
    with no record (their worker was lost; re-run to resume)."""

    rows: list
    csv_path: Path
    ran: int
    skipped: int
    failed: int
    points: int
    pending: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.pending


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to run one point (the materialised files and the arguments)."""

    index: int
    id: str
    workload: str
    hardware: str
    mapping: str | None
    arguments: dict
    out_dir: str  # stripped from error messages, so they read the same wherever OUT is


def metrics_of(result) -> dict:
    """A point's metrics from its :class:`stream.results.Result`."""
    peaks = result.peak_memory_bytes.values()
    return {
        "latency_cycles": result.latency_cycles,
        "latency_s": result.latency_s,
        "energy_pj": result.energy_pj["total"],
        "dram_read_bytes": result.dram_traffic_bytes["read"],
        "dram_write_bytes": result.dram_traffic_bytes["write"],
        "peak_memory_bytes": max(peaks, default=0),
        "onchip_peak_bytes": sum(peaks),
        "num_cns": result.num_cns,
        "spills": result.spills,
    }


def run_point(task: PointTask) -> dict:
    """Run one point (in a worker): ``{"status", "error", "metrics", "seconds"}``; an
    exception becomes status ``error`` with ``"Type: message"`` on one line."""
    began = time.perf_counter()
    try:
        from stream.allocation import AllocationSettings
        from stream.api import run

        args = dict(task.arguments)
        settings = args.pop("allocation", None)
        result = run(task.workload, task.hardware, task.mapping,
                     allocation=AllocationSettings(**settings) if settings else None, **args)
        status, error, metrics = "ok", None, metrics_of(result)
    except Exception as exc:  # noqa: BLE001 - any failure of a point is recorded, and the sweep goes on
        status, error, metrics = "error", _error_text(exc, task.out_dir), None
    return {"status": status, "error": error, "metrics": metrics, "seconds": round(time.perf_counter() - began, 3)}


def _error_text(exc: BaseException, out_dir: str) -> str:
    text = f"{type(exc).__name__}: {exc}"
    text = text.replace(os.path.join(out_dir, ""), "")
    return " ".join(text.split())


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent, which records what finished and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---------------------------------------------------------------------------------------
# results.jsonl


class ResultsLog:
    """``results.jsonl``: one JSON record per finished point, appended and synced at once.
    The last record of an id wins; a last line cut short (a crash mid-write) is dropped."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[str, dict] = {}
        self._handle = None
        if not path.exists():
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):  # a truncated last line: drop it, so appends start on a fresh line
            with open(path, "r+b") as handle:
                handle.truncate(cut)
            data = data[:cut]
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("id"), str) or \
                    record.get("status") not in ("ok", "error"):
                raise InputError(str(path), f"line {number}", "one JSON record of a sweep point per line", line,
                                 note="only the last line may be cut short; remove or fix this one")
            self.records[record["id"]] = record

    def forget(self, ids: set[str]) -> None:
        """Drop the records of ``ids`` (points about to run again), rewriting the file."""
        from stream.results import write_atomic

        if not ids & self.records.keys():
            return
        self.records = {k: v for k, v in self.records.items() if k not in ids}
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.records.values()))

    def append(self, record: dict) -> None:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.records[record["id"]] = record

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# ---------------------------------------------------------------------------------------
# running


def run_sweep(sweep_or_path, out_dir, workers: int = 1, scheduler: str | None = None, retry_failed: bool = False,
              progress: Callable[[str], None] | None = None, on_point: Callable[[dict], None] | None = None,
              executor: cf.Executor | None = None) -> SweepOutcome:
    """Run every point of a sweep not yet in ``OUT/results.jsonl`` and write the tables.

    ``workers``: local processes (1 runs the points in this process); ``scheduler``: a Dask
    scheduler address (``tcp://host:port``) to run them on instead (needs the ``cluster``
    extra); ``executor``: any other :class:`concurrent.futures.Executor` (the caller shuts
    it down). ``retry_failed`` runs the points recorded with an error again. ``progress``
    hears a line every couple of seconds; ``on_point(record)`` each record as it is written.
    On KeyboardInterrupt the points already finished are recorded, the tables written, and
    the interrupt raised again.
    """
    sweep = sweep_or_path if isinstance(sweep_or_path, Sweep) else load_sweep(sweep_or_path)
    if workers < 1:
        raise StreamError(f"workers: expected an integer >= 1, got {workers}")
    run = dict(workers=workers, retry_failed=retry_failed, progress=progress, on_point=on_point)
    if executor is None and scheduler:
        client, dask_executor = _dask(scheduler)  # before anything is written: an unreachable one stops here
        try:
            return _run(sweep, Path(out_dir), dask_executor, owned=True, **run)
        finally:
            client.close()
    return _run(sweep, Path(out_dir), executor, owned=False, **run)


def _run(sweep: Sweep, out: Path, executor: cf.Executor | None, owned: bool, workers: int, retry_failed: bool,
         progress, on_point) -> SweepOutcome:
    out.mkdir(parents=True, exist_ok=True)
    _check_same_sweep(out / SUMMARY, sweep)
    points = sweep.points()
    log = ResultsLog(out / RESULTS)
    todo = [p for p in points if p.id not in log.records
            or (retry_failed and log.records[p.id]["status"] == "error")]
    if retry_failed:
        log.forget({p.id for p in todo})
    skipped = len(points) - len(todo)
    state = _State(sweep.name, len(points), skipped, len(todo), progress)
    root = str(out.resolve())

    def record(point: Point, outcome: dict, notify: bool = True) -> None:
        entry = {"point": point.index, "id": point.id, "params": point.params, **outcome}
        log.append(entry)
        state.finished(entry["status"] == "error")
        if notify and on_point is not None:
            on_point(entry)

    try:
        _write_summary(out, sweep, points, log)
        tasks = []
        for point in todo:
            began = time.perf_counter()
            try:
                files = materialise(sweep, point, out / POINTS / point.id)
            except StreamError as exc:  # a key path the point's own files lack, say
                record(point, {"status": "error", "error": _error_text(exc, root), "metrics": None,
                               "seconds": round(time.perf_counter() - began, 3)})
                continue
            tasks.append((point, PointTask(point.index, point.id, files.workload, files.hardware, files.mapping,
                                           files.arguments, root)))
        if executor is None and workers > 1 and len(tasks) > 1:
            executor = cf.ProcessPoolExecutor(min(workers, len(tasks)), initializer=_ignore_sigint,
                                              mp_context=multiprocessing.get_context("spawn"))
            owned = True
        if executor is not None:
            _on_executor(executor, tasks, record, state, owned)
        else:
            for point, task in tasks:
                record(point, run_point(task))
                state.report()
    finally:
        log.close()
        rows = table_rows(sweep, points, log.records)
        _write_results_csv(out / TABLE, sweep, rows)
        _write_summary(out, sweep, points, log)
    failed = sum(row["status"] == "error" for row in rows)
    return SweepOutcome(rows, out / TABLE, state.ran, skipped, failed, len(points), len(points) - len(rows))


class _State:
    """Counts and the throttled progress line."""

    def __init__(self, name: str, total: int, skipped: int, todo: int, progress):
        self.name, self.total, self.skipped, self.todo, self.progress = name, total, skipped, todo, progress
        self.ran = self.failed = 0
        self.began = self.last = time.perf_counter()

    def finished(self, failed: bool) -> None:
        self.ran += 1
        self.failed += failed

    def report(self, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if not force and now - self.last < REPORT_SECONDS:
            return
        self.last = now
        left = self.todo - self.ran
        eta = _duration((now - self.began) / self.ran * left) if self.ran else "unknown"
        self.progress(f"sweep {self.name}: {self.skipped + self.ran}/{self.total} points done, "
                      f"{self.failed} failed, ETA {eta}")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


def _on_executor(executor: cf.Executor, tasks: list, record, state: _State, owned: bool) -> None:
    """Submit every task, record each as it finishes; on KeyboardInterrupt record those
    already finished, cancel the rest (and stop an owned pool's workers), raise again."""
    futures = {executor.submit(run_point, task): point for point, task in tasks}
    recorded: set = set()
    pending = set(futures)
    timeout = REPORT_SECONDS if state.progress is not None else None
    stopped = False
    try:
        while pending:
            done, pending = cf.wait(pending, timeout=timeout, return_when=cf.FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: futures[f].index):
                outcome = _outcome(future, futures[future])
                recorded.add(future)
                if outcome is not None:
                    record(futures[future], outcome)
            state.report()
    except BaseException as exc:
        stopped = True
        for future in futures:
            future.cancel()
        if isinstance(exc, KeyboardInterrupt):  # keep what finished meanwhile
            for future in sorted(futures, key=lambda f: futures[f].index):
                if future not in recorded and future.done() and not future.cancelled() and future.exception() is None:
                    recorded.add(future)
                    record(futures[future], future.result(), notify=False)
        raise
    finally:
        if owned:
            _shutdown(executor, stopped)


def _outcome(future: cf.Future, point: Point) -> dict | None:
    """A finished future's record fields; None if it was cancelled."""
    if future.cancelled():
        return None
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, cf.BrokenExecutor):
        raise StreamError(f"a worker process died while the sweep ran (point {point.index} among others; out of "
                          f"memory?); the points finished so far are recorded: run the sweep again to resume "
                          f"(with --workers 1 to see which point it is)") from None
    if not isinstance(error, Exception):  # a worker interrupted
        raise KeyboardInterrupt
    # the machinery failed (a lost Dask worker, a result that would not pickle): the point's error
    return {"status": "error", "error": _error_text(error, ""), "metrics": None, "seconds": None}


def _shutdown(executor: cf.Executor, stopped: bool) -> None:
    if not stopped:
        executor.shutdown(wait=True)
        return
    if isinstance(executor, cf.ProcessPoolExecutor):
        executor.shutdown(wait=False, cancel_futures=True)
        stop = getattr(executor, "terminate_workers", None)  # Python 3.14
        if stop is not None:
            stop()
        else:  # points already running would otherwise finish before the interpreter exits
            for process in list((getattr(executor, "_processes", None) or {}).values()):
                process.terminate()
    else:
        executor.shutdown(wait=False)


def _dask(address: str):
    """A Dask client of the scheduler at ``address`` and its executor."""
    try:
        import distributed
    except ImportError:
        raise StreamError("--scheduler runs the points on a Dask cluster, which needs the optional package "
                          "distributed: pip install 'stream-sim[cluster]'") from None
    try:
        client = distributed.Client(address, timeout=10)
    except (OSError, TimeoutError, ValueError) as exc:
        raise StreamError(f"scheduler {address}: expected a reachable Dask scheduler (tcp://HOST:PORT), "
                          f"got {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    return client, client.get_executor(pure=False)


# ---------------------------------------------------------------------------------------
# tables


def table_rows(sweep: Sweep, points: list[Point], records: dict[str, dict]) -> list[dict]:
    """One row per point with a record, in point order: point, id, the axis values, status,
    error and the metrics (None for a failed point)."""
    rows = []
    for point in points:
        record = records.get(point.id)
        if record is None:
            continue
        metrics = record.get("metrics") or {}
        rows.append({"point": point.index, "id": point.id, **point.params, "status": record["status"],
                     "error": record.get("error"), **{m: metrics.get(m) for m in METRICS}})
    return rows


def columns(sweep: Sweep) -> list[str]:
    return ["point", "id", *(axis.key for axis in sweep.axes), "status", "error", *METRICS]


def _write_results_csv(path: Path, sweep: Sweep, rows: list[dict]) -> None:
    """``results.csv``, atomically: no wall-clock column, so the same sweep gives the same
    bytes however it ran."""
    from stream.results import write_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = columns(sweep)
    writer.writerow(names)
    for row in rows:
        writer.writerow([_cell(row[name]) for name in names])
    write_atomic(path, buffer.getvalue())


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _summary(sweep: Sweep, points: list[Point], records: dict[str, dict]) -> dict:
    statuses = [records[p.id]["status"] for p in points if p.id in records]
    return {
        "name": sweep.name,
        "base": sweep.base_document(),
        "axes": [{"key": axis.key, "values": list(axis.values)} for axis in sweep.axes],
        "combine": [list(group) for group in sweep.combine],
        "counts": {"points": len(points), "ok": statuses.count("ok"), "error": statuses.count("error"),
                   "pending": len(points) - len(statuses)},
    }


def _write_summary(out: Path, sweep: Sweep, points: list[Point], log: ResultsLog) -> None:
    from stream.results import write_atomic

    write_atomic(out / SUMMARY, json.dumps(_summary(sweep, points, log.records), indent=2) + "\n")


def _check_same_sweep(path: Path, sweep: Sweep) -> None:
    """Resuming into a directory another base wrote would mix results: refuse."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    base = sweep.base_document()
    if isinstance(previous, dict) and "base" in previous and previous["base"] != base:
        raise InputError(str(path), "base", f"the base of {sweep.source_file} to resume into this directory",
                         previous["base"], note="another sweep wrote it: give another output directory")
