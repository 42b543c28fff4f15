"""Sweeps: many runs of one case, each changing a few inputs, for one figure.

Spec
----

A sweep spec is a YAML file in our format (``version: 1``)::

    version: 1
    name: memory_x_bandwidth
    base:                                   # one run: stream.api.run's arguments
      workload: ../workloads/resnet18.yaml  # paths relative to the spec file
      hardware: ../hardware/quad_core.yaml
      mapping: ../mappings/quad_core.yaml   # optional
      mode: fused                           # optional: mode, allocator, cost_model,
      allocator: greedy                     #   objective, policy (defaults as stream.api.run)
      allocation: {time_limit_s: 2}         # optional: AllocationSettings fields
    axes:
      - {key: hardware.cores.0-3.memories.sram_1mib.size, values: [4194304, 8388608]}
      - {key: hardware.core_connectivity.12.bandwidth, values: [32, 64, 128]}
      - {key: mode, values: [fused, layer_by_layer]}
    combine: product                        # default; or zip, or groups (below)

Top-level keys: ``version``, ``name``, ``base``, ``axes`` (required) and ``combine``.
``base`` needs ``workload`` and ``hardware``. Each axis is ``{key, values}``, ``values`` a
non-empty list. An axis key is one of

* a run argument: ``mode``, ``allocator``, ``cost_model``, ``objective``, ``policy``
  (values checked against the allowed choices when the spec loads), or ``workload``,
  ``hardware``, ``mapping`` (file paths relative to the spec; ``null`` for no mapping);
* ``allocation.<setting>``: a field of :class:`stream.allocation.AllocationSettings`
  (``time_limit_s``, ``seed``, ``objective``, ...);
* ``hardware.<key path>``: a key in the hardware system file. ``cores.<id>`` followed by
  more segments descends into that core's file, so
  ``hardware.cores.0.memories.sram_1mib.size`` edits core 0's memory only, even when
  other cores share its file; ``hardware.cores.<id>`` alone replaces the core's file (the
  values are core file paths relative to the spec). A classic system's ``offchip_core``
  descends likewise;
* ``mapping.<key path>``: a key in the mapping file, e.g.
  ``mapping.layers.0.intra_core_tiling``.

Key path segments are separated by dots; a list index is a number; one segment may also
be a range ``0-3`` (inclusive) or ``*`` (every entry of that list or mapping), so one axis
can change several cores or links at once (``hardware.cores.*.memories.sram_1mib.size``).
Every segment must exist in the file (to sweep a key the file leaves out, add it to the
file first): a path that does not exist, in the base file or in any file a ``hardware`` or
``mapping`` axis names, is an :class:`stream.errors.InputError` naming the spec file, the
axis (``axes[i].key``) and what exists there (the memory names of that core, the link
indices, ...). So is an unknown key, a value outside a choice, two axes setting the same
value, and two points with the same values. The values themselves are checked by the
normal loaders when a point runs: a memory of size 0 is that point's error.

``combine``: ``product`` (every combination; the last axis varies fastest), ``zip`` (all
axes the same length, taken together), or a list of groups, e.g.
``[[hardware.cores.0-3.memories.sram_1mib.size, hardware.core_connectivity.12.bandwidth], mode]``:
the axes of a group are zipped (same length), the groups crossed. Every axis appears
exactly once.

Points
------

:meth:`Sweep.points` expands the spec: each :class:`Point` has its ``index`` in the
expansion order, its ``params`` (axis key -> value, in spec order) and its ``id``, the
first 10 hex digits of the SHA-256 of its params as canonical JSON. The id does not depend
on the order of the axes' values, so a sweep re-run with values added still finds the
points it ran.

To run a point, its inputs are materialised under ``OUT/points/<id>/``: ``hardware/``
holds the system file (under its own name) with the overrides applied and its core files
under ``hardware/cores/`` (a core keeps its file's name; a core with overrides gets its own
copy in ``cores/core<ids>/``, shared by the cores with the same overrides), ``mapping/``
the mapping, and ``point.json`` the point's parameters and run arguments. The files are
then loaded by the normal loaders, so every point's inputs can be inspected, validated
(``stream validate``) or run alone (``stream run -a OUT/points/<id>/hardware/...``).
Edited files are written back as plain YAML (comments go; a header says what changed);
files without overrides are copied verbatim.

Running
-------

:func:`run_sweep` runs the points on a :class:`concurrent.futures.Executor`: a local
``ProcessPoolExecutor(workers)`` (spawned processes; ``workers=1`` runs in-process), or,
with ``scheduler="tcp://HOST:PORT"``, a Dask ``distributed`` cluster
(``Client(address).get_executor()``; install the ``cluster`` extra,
``pip install 'stream-sim[cluster]'``). Dask workers must see ``OUT`` and the input files
at the same paths (one machine, or a shared file system) and have this package installed.

Outputs in ``OUT``:

* ``results.jsonl``: one JSON line per finished point, appended and synced (``fsync``) as
  soon as it finishes: ``{"point": index, "id": ..., "params": {axis key: value},
  "status": "ok" | "error", "error": "Type: message" or null, "metrics": {...} or null,
  "seconds": wall seconds}``. A point that fails (a bad value the loaders reject, a CN
  that cannot fit, any exception in the worker) is recorded with its error, and the sweep
  goes on. Paths inside ``OUT`` appear in errors relative to it.
* ``results.csv`` (written atomically when the sweep ends, is interrupted or fails): one
  row per recorded point, sorted by point index; columns ``point``, ``id``, one per axis
  key (spec order; lists and mappings as compact JSON), ``status``, ``error``, then the
  metrics ``latency_cycles``, ``latency_s``, ``energy_pj`` (total), ``dram_read_bytes``,
  ``dram_write_bytes``, ``peak_memory_bytes`` (the busiest on-chip memory's peak),
  ``onchip_peak_bytes`` (the sum of every on-chip memory's peak), ``num_cns``, ``spills``
  (empty for a failed point). No wall-clock column: the same sweep gives a byte-identical
  CSV whether it ran in one process, a pool or a cluster, at once or resumed.
* ``sweep.json``: the spec's name, base (paths relative to the spec), axes, combine, and
  counts (``points``, ``ok``, ``error``, ``pending``).

Resuming: running the same sweep into the same ``OUT`` again skips every point already in
``results.jsonl`` (ok or error, by id); ``retry_failed=True`` (``--retry-failed``) runs
the failed ones again (their old records are dropped first). A last line cut short by a
crash is dropped and that point runs again; any other malformed line is an error naming
the line. A directory written by a sweep with another ``base`` is refused. On
KeyboardInterrupt the points already finished are recorded, the pool's workers are
stopped, the tables are written, and the interrupt propagates (the CLI exits 130); the
next run does the rest. ``on_point(record)`` hears each record as it is written (tests
use it to interrupt), ``progress(message)`` a line every couple of seconds with the
points done out of all, the failures and an ETA.

Command line: ``stream sweep SPEC.yaml --out DIR [--workers N] [--scheduler
tcp://HOST:PORT] [--retry-failed] [--progress] [-q]`` prints the points run, skipped and
failed and where the table is; it exits 0 when every point is ok and 1 when any failed
(the table is still written).
"""

from stream.sweep.runner import METRICS, SweepOutcome, run_point, run_sweep
from stream.sweep.spec import Axis, Base, Materialised, Point, Sweep, load_sweep, materialise, point_id

__all__ = ["METRICS", "Axis", "Base", "Materialised", "Point", "Sweep", "SweepOutcome", "load_sweep", "materialise",
           "point_id", "run_point", "run_sweep"]
