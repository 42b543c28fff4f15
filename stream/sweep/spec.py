"""Sweep specs: load and check a spec, expand it into points, materialise a point's inputs.

See the package docstring (:mod:`stream.sweep`) for the format.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stream.errors import InputError
from stream.mapping import NO_MAPPING
from stream.spec import Where, check_keys, expect_dict, expect_list, expect_str, load_yaml

VERSION = 1
ARGUMENTS = ("workload", "hardware", "mapping", "mode", "allocator", "cost_model", "objective", "policy")
FILE_ARGUMENTS = ("workload", "hardware", "mapping")
BASE_KEYS = ARGUMENTS + ("allocation",)
COMBINES = ("product", "zip")
ID_LENGTH = 10

_RANGE = re.compile(r"^(\d+)-(\d+)$")


def _choices() -> dict[str, tuple]:
    """The allowed values of each choice argument, from the modules that define them."""
    from stream.allocation import METHODS
    from stream.cost import MODELS, OBJECTIVES
    from stream.simulation import POLICIES
    from stream.tiling import MODES

    return {"mode": MODES, "allocator": METHODS, "cost_model": MODELS, "objective": OBJECTIVES,
            "policy": POLICIES + (None,)}


@dataclass(frozen=True)
class Base:
    """The run every point starts from: :func:`stream.api.run`'s arguments. File paths are
    absolute (the spec gives them relative to itself); ``allocation`` holds
    :class:`stream.allocation.AllocationSettings` fields as (name, value) pairs."""

    workload: str
    hardware: str
    mapping: str | None = None
    mode: str = "fused"
    allocator: str = "cpsat"
    cost_model: str = "zigzag"
    objective: str = "edp"  # stream.cost.DEFAULT_OBJECTIVE (the spec module stays light)
    policy: str | None = None
    allocation: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Axis:
    """One swept key and its values. ``kind``: ``argument`` (a run argument), ``allocation``
    (an AllocationSettings field), ``hardware`` or ``mapping`` (a key path into those files);
    ``path``: the key's segments after the first (empty for a run argument)."""

    key: str
    values: tuple
    kind: str
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Point:
    """One configuration: its place in the expansion order, its id (a hash of ``params``),
    and each axis key's value, in spec order."""

    index: int
    id: str
    params: dict


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep spec. ``combine``: groups of axis keys; the axes of a group are zipped
    (taken together), the groups are crossed (their product, the last varying fastest)."""

    name: str
    base: Base
    axes: tuple[Axis, ...]
    combine: tuple[tuple[str, ...], ...]
    source_file: str

    def points(self) -> list[Point]:
        """Every point, in expansion order."""
        by_key = {axis.key: axis for axis in self.axes}
        groups = [list(zip(*(by_key[key].values for key in group))) for group in self.combine]
        points = []
        for index, choice in enumerate(itertools.product(*groups)):
            chosen = {key: value for group, values in zip(self.combine, choice) for key, value in zip(group, values)}
            params = {axis.key: chosen[axis.key] for axis in self.axes}
            points.append(Point(index, point_id(params), params))
        return points

    def arguments(self, point: Point) -> dict:
        """The run arguments of ``point``: the base with the point's argument axes applied
        (file paths resolved against the spec's directory), and ``allocation`` as a dict."""
        args = {name: getattr(self.base, name) for name in ARGUMENTS}
        allocation = dict(self.base.allocation)
        for axis in self.axes:
            value = point.params[axis.key]
            if axis.kind == "argument":
                args[axis.key] = self._path(value) if axis.key in FILE_ARGUMENTS and _is_file(value) else value
            elif axis.kind == "allocation":
                allocation[axis.path[0]] = value
        args["allocation"] = allocation
        return args

    def base_document(self) -> dict:
        """The base as the spec writes it (paths relative to the spec's directory)."""
        here = os.path.dirname(self.source_file)
        out = {}
        for name in BASE_KEYS:
            value = getattr(self.base, name)
            if name in FILE_ARGUMENTS and _is_file(value):
                value = os.path.relpath(value, here).replace(os.sep, "/")
            if name == "allocation":
                value = dict(value)
            out[name] = value
        return out

    def _path(self, value: str) -> str:
        return _absolute(value, self.source_file)


def point_id(params: dict) -> str:
    """A short, stable hash of a point's parameter values."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


def _absolute(value: str, spec_file: str) -> str:
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = Path(spec_file).resolve().parent / path
    return os.path.normpath(str(path))


# ---------------------------------------------------------------------------------------
# loading


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and check a sweep spec; every problem is one :class:`InputError` naming the spec
    file and the key."""
    data, where = load_yaml(path)
    expect_dict(data, where)
    check_keys(data, where, required=("version", "name", "base", "axes"), optional=("combine",))
    if data["version"] != VERSION:
        raise (where / "version").error(str(VERSION), data["version"])
    name = expect_str(str(data["name"]) if isinstance(data["name"], (int, float)) else data["name"], where / "name")
    source = os.path.abspath(where.file)
    base = _base(data["base"], where / "base", source)
    axes = _axes(data["axes"], where / "axes", source, base)
    combine = _combine(data.get("combine", "product"), where / "combine", axes)
    sweep = Sweep(name, base, axes, combine, source)
    _check_key_paths(sweep, where / "axes")
    _check_distinct(sweep, where)
    return sweep


def _base(raw: Any, where: Where, source: str) -> Base:
    raw = expect_dict(raw, where)
    check_keys(raw, where, required=("workload", "hardware"), optional=BASE_KEYS)
    fields = {}
    for name in FILE_ARGUMENTS:
        if name == "mapping" and raw.get(name) == NO_MAPPING:
            fields[name] = NO_MAPPING
        elif raw.get(name) is not None:
            fields[name] = _existing_file(raw[name], where / name, source)
    for name, allowed in _choices().items():
        if name in raw:
            fields[name] = _choice(raw[name], where / name, allowed)
    allocation = expect_dict(raw.get("allocation") or {}, where / "allocation")
    check_keys(allocation, where / "allocation", optional=_allocation_fields())
    for key, value in allocation.items():
        _allocation_value(str(key), value, where / "allocation" / str(key), dict(allocation))
    fields["allocation"] = tuple((str(k), v) for k, v in allocation.items())
    return Base(**fields)


def _is_file(value: Any) -> bool:
    """A file argument's value names a file (not null, and not the mapping 'none')."""
    return value is not None and value != NO_MAPPING


def _existing_file(value: Any, where: Where, source: str) -> str:
    text = expect_str(value, where)
    path = _absolute(text, source)
    if not os.path.isfile(path):
        raise where.error("a file path relative to the sweep spec", value, note=f"no file {path}")
    return path


def _choice(value: Any, where: Where, allowed: tuple) -> Any:
    if value not in allowed:
        shown = ", ".join("null" if a is None else str(a) for a in allowed)
        raise where.error(f"one of {shown}", value)
    return value


def _allocation_fields() -> tuple[str, ...]:
    from stream.allocation import AllocationSettings

    return tuple(f.name for f in dataclasses.fields(AllocationSettings))


def _allocation_value(name: str, value: Any, where: Where, settings: dict) -> None:
    """Check that AllocationSettings accepts ``value`` for ``name`` (with the other settings)."""
    from stream.allocation import AllocationSettings

    fields = _allocation_fields()
    if name not in fields:
        raise where.error("an allocation setting", name, note="settings: " + ", ".join(fields))
    default = getattr(AllocationSettings(), name)
    kind = type(default)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise where.error(f"a {kind.__name__} for the allocation setting {name}", value)
    try:
        AllocationSettings(**(settings | {name: value}))
    except (TypeError, ValueError) as exc:
        raise where.error(f"a valid value of the allocation setting {name}", value, note=str(exc)) from None


def _axes(raw: Any, where: Where, source: str, base: Base) -> tuple[Axis, ...]:
    entries = expect_list(raw, where)
    if not entries:
        raise where.error("at least one axis")
    axes, seen = [], set()
    for i, entry in enumerate(entries):
        at = where / i
        entry = expect_dict(entry, at)
        check_keys(entry, at, required=("key", "values"))
        key = expect_str(entry["key"], at / "key")
        if key in seen:
            raise (at / "key").error("each axis key once", key)
        seen.add(key)
        values = expect_list(entry["values"], at / "values")
        if not values:
            raise (at / "values").error("a non-empty list of values")
        for j, value in enumerate(values):
            _check_json(value, at / "values" / j)
        axes.append(_axis(key, tuple(values), at, source, base))
    return tuple(axes)


def _check_json(value: Any, where: Where) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise where.error("a finite number", value)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, where / i)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise where.error("keys that are text or integers", key)
            _check_json(item, where / str(key))
        return
    raise where.error("a number, text, true/false, null, a list or a mapping", value)


def _axis(key: str, values: tuple, at: Where, source: str, base: Base) -> Axis:
    head, _, rest = key.partition(".")
    path = tuple(rest.split(".")) if rest else ()
    if not rest and head in ARGUMENTS:
        choices = _choices()
        for j, value in enumerate(values):
            if head in choices:
                _choice(value, at / "values" / j, choices[head])
            elif head == "mapping" and not _is_file(value):
                continue
            else:
                _existing_file(value, at / "values" / j, source)
        return Axis(key, values, "argument")
    if head == "allocation" and len(path) == 1:
        settings = dict(base.allocation)
        for j, value in enumerate(values):
            _allocation_value(path[0], value, at / "values" / j, settings)
        return Axis(key, values, "allocation", path)
    if head in ("hardware", "mapping") and path and all(path):
        return Axis(key, values, head, path)
    raise (at / "key").error(
        "a run argument (" + ", ".join(ARGUMENTS) + "), allocation.<setting>, hardware.<key path> or "
        "mapping.<key path>", key)


def _combine(raw: Any, where: Where, axes: tuple[Axis, ...]) -> tuple[tuple[str, ...], ...]:
    keys = [axis.key for axis in axes]
    if raw == "product":
        return tuple((key,) for key in keys)
    if raw == "zip":
        groups: list[list[str]] = [keys]
    elif isinstance(raw, list) and raw:
        groups = []
        for i, item in enumerate(raw):
            items = item if isinstance(item, list) else [item]
            if not items:
                raise (where / i).error("an axis key or a non-empty list of axis keys", item)
            for j, key in enumerate(items):
                if key not in keys:
                    at = where / i / j if isinstance(item, list) else where / i
                    raise at.error("one of the axis keys " + ", ".join(keys), key)
            groups.append(list(items))
    else:
        raise where.error("product, zip, or a list of axis keys and lists of axis keys to zip", raw)
    used = [key for group in groups for key in group]
    twice = sorted({key for key in used if used.count(key) > 1})
    missing = [key for key in keys if key not in used]
    if twice or missing:
        raise where.error("every axis key exactly once", raw,
                          note=(f"more than once: {', '.join(twice)}" if twice else f"missing: {', '.join(missing)}"))
    lengths = {axis.key: len(axis.values) for axis in axes}
    for group in groups:
        if len({lengths[key] for key in group}) > 1:
            raise where.error("zipped axes with the same number of values", raw,
                              note=", ".join(f"{key}: {lengths[key]} values" for key in group))
    return tuple(tuple(group) for group in groups)


def _check_distinct(sweep: Sweep, where: Where) -> None:
    seen: dict[str, Point] = {}
    for point in sweep.points():
        if point.id in seen:
            first = seen[point.id]
            raise (where / "axes").error(
                "distinct points", point.params,
                note=f"points {first.index} and {point.index} have the same values (repeated axis values?)")
        seen[point.id] = point


# ---------------------------------------------------------------------------------------
# key paths


class _PathError(Exception):
    """A key path segment that does not exist: where it was looked for and what is there."""

    def __init__(self, prefix: tuple, segment: str, there: str):
        self.prefix, self.segment, self.there = prefix, segment, there
        at = ".".join(map(str, prefix)) or "the top level"
        super().__init__(f"no {segment!r} under {at}; there: {there}")


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        return ", ".join(map(str, node)) or "an empty mapping"
    if isinstance(node, list):
        return f"list indices 0-{len(node) - 1}" if node else "an empty list"
    return f"the value {node!r}, nothing below it"


def _select(node: Any, segment: str, prefix: tuple) -> list:
    """The keys (dict) or indices (list) of ``node`` that ``segment`` names: a key, an
    index, a range ``a-b`` (inclusive) or ``*``."""
    if isinstance(node, dict):
        if segment in node:
            return [segment]
        if segment == "*":
            if not node:
                raise _PathError(prefix, segment, _describe(node))
            return list(node)
        numbers = _numbers(segment)
        if numbers is not None:
            keys = []
            for n in numbers:
                key = n if n in node else str(n) if str(n) in node else None
                if key is None:
                    raise _PathError(prefix, str(n), _describe(node))
                keys.append(key)
            return keys
        raise _PathError(prefix, segment, _describe(node))
    if isinstance(node, list):
        if segment == "*":
            if not node:
                raise _PathError(prefix, segment, _describe(node))
            return list(range(len(node)))
        numbers = _numbers(segment)
        if numbers is None or any(n >= len(node) for n in numbers):
            bad = segment if numbers is None else str(next(n for n in numbers if n >= len(node)))
            raise _PathError(prefix, bad, _describe(node))
        return numbers
    raise _PathError(prefix, segment, _describe(node))


def _numbers(segment: str) -> list[int] | None:
    if segment.isdigit():
        return [int(segment)]
    match = _RANGE.match(segment)
    if match:
        first, last = int(match.group(1)), int(match.group(2))
        if first <= last:
            return list(range(first, last + 1))
    return None


def _resolve(node: Any, segments: tuple[str, ...], prefix: tuple = ()) -> list[tuple]:
    """Every concrete path (keys and indices) that ``segments`` names in ``node``."""
    if not segments:
        return [prefix]
    out = []
    for key in _select(node, segments[0], prefix):
        out.extend(_resolve(node[key], segments[1:], prefix + (key,)))
    return out


def _set(node: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = copy.deepcopy(value)


class _Hardware:
    """A system file and its core files as YAML data, for key paths and materialising.

    ``cores.<id>`` (and a classic file's ``offchip_core``) followed by more segments
    descends into that core's file; ``cores.<id>`` alone replaces the core file."""

    def __init__(self, path: str):
        from stream.hardware.loader import _resolve_core_file  # the loader's own rule for core files

        self.path = path
        self.data, self.where = load_yaml(path)
        expect_dict(self.data, self.where)
        self.refs: dict[Any, Path] = {}  # key in the system file ("offchip_core" or a core id) -> core file
        cores = expect_dict(self.data.get("cores"), self.where / "cores")
        base = Path(path).parent
        for key, ref in cores.items():
            self.refs[key] = _resolve_core_file(expect_str(ref, self.where / "cores" / str(key)), base,
                                                self.where / "cores" / str(key))
        if isinstance(self.data.get("offchip_core"), str):  # the classic form names the DRAM's file
            self.refs["offchip_core"] = _resolve_core_file(self.data["offchip_core"], base,
                                                           self.where / "offchip_core")
        self._cores: dict[Path, Any] = {}

    def core_data(self, file: Path) -> Any:
        if file not in self._cores:
            self._cores[file] = load_yaml(file)[0]
        return self._cores[file]

    def targets(self, path: tuple[str, ...]) -> list[tuple]:
        """``(None, keys)`` for a key of the system file, ``(core key, keys)`` for one inside
        a core's file; raises :class:`_PathError` with the file's name in ``there``."""
        if path[0] == "cores" and len(path) >= 2:
            keys = self._core_keys(path[1])
            if len(path) == 2:
                return [(None, ("cores", key)) for key in keys]
            return [(key, p) for key in keys for p in self._in_core(key, path[2:])]
        if path[0] == "offchip_core" and "offchip_core" in self.refs and len(path) >= 2:
            return [("offchip_core", p) for p in self._in_core("offchip_core", path[1:])]
        if path == ("cores",):
            raise _PathError((), "cores", "cores.<id> to replace a core file, or cores.<id>.<key> inside one")
        try:
            return [(None, p) for p in _resolve(self.data, path)]
        except _PathError as exc:
            raise _PathError(exc.prefix, exc.segment, f"{exc.there} (in {self.path})") from None

    def _core_keys(self, segment: str) -> list:
        try:
            return _select(self.data["cores"], segment, ("cores",))
        except _PathError as exc:
            raise _PathError(exc.prefix, exc.segment, f"core ids {exc.there} (in {self.path})") from None

    def _in_core(self, key: Any, path: tuple[str, ...]) -> list[tuple]:
        file = self.refs[key]
        try:
            return _resolve(self.core_data(file), path)
        except _PathError as exc:
            label = "the off-chip core" if key == "offchip_core" else f"core {key}"
            raise _PathError(exc.prefix, exc.segment, f"{exc.there} (in {file}, {label})") from None


def _check_key_paths(sweep: Sweep, where: Where) -> None:
    """Every hardware and mapping key path exists in every file it may apply to, and no two
    axes set the same value."""
    index = {axis.key: i for i, axis in enumerate(sweep.axes)}
    for kind in ("hardware", "mapping"):
        axes = [axis for axis in sweep.axes if axis.kind == kind]
        if not axes:
            continue
        files = _candidate_files(sweep, kind, where)
        if not files:
            axis = axes[0]
            raise (where / index[axis.key] / "key").error(
                f"a base {kind} file (or a {kind} axis) for this key path to edit", axis.key)
        for file in files:
            hardware = _Hardware(file) if kind == "hardware" else None
            data = None if hardware else load_yaml(file)[0]
            claimed: dict[tuple, str] = {}
            for axis in axes:
                at = where / index[axis.key] / "key"
                try:
                    targets = hardware.targets(axis.path) if hardware else [(None, p) for p in _resolve(data, axis.path)]
                except _PathError as exc:
                    raise at.error(f"a key path into {file}", axis.key, note=str(exc)) from None
                for target in targets:
                    for other_target, other in claimed.items():
                        if _overlaps(target, other_target):
                            raise at.error("a key path no other axis also sets", axis.key,
                                           note=f"{other} sets the same value in {file}")
                    claimed[target] = axis.key
                if hardware and axis.path[0] == "cores" and len(axis.path) == 2:
                    for j, value in enumerate(axis.values):
                        _existing_file(value, where / index[axis.key] / "values" / j, sweep.source_file)


def _overlaps(a: tuple, b: tuple) -> bool:
    """Two targets (file, keys) set the same value, or one sets a value inside the other's."""
    (file_a, path_a), (file_b, path_b) = a, b
    n = min(len(path_a), len(path_b))
    return file_a == file_b and path_a[:n] == path_b[:n]


def _candidate_files(sweep: Sweep, kind: str, where: Where) -> list[str]:
    """The files the ``kind.<key path>`` axes may edit: the base's, or the values of a
    ``kind`` axis."""
    files = [getattr(sweep.base, kind)] if _is_file(getattr(sweep.base, kind)) else []
    for i, axis in enumerate(sweep.axes):
        if axis.kind == "argument" and axis.key == kind:
            if not all(_is_file(v) for v in axis.values):
                raise (where / i / "values").error(f"{kind} files for the {kind}.<key path> axes to edit",
                                                   list(axis.values))
            files = [sweep._path(v) for v in axis.values]
    return sorted(set(files))


# ---------------------------------------------------------------------------------------
# materialising


@dataclass(frozen=True)
class Materialised:
    """A point's inputs written out: the files to load and the run's other arguments."""

    directory: str
    workload: str
    hardware: str
    mapping: str | None
    arguments: dict


def materialise(sweep: Sweep, point: Point, directory: str | os.PathLike) -> Materialised:
    """Write ``point``'s hardware (system file and core files) and mapping, with its
    overrides applied, under ``directory`` (``hardware/``, ``hardware/cores/``,
    ``mapping/``), and ``point.json`` (its parameters and run arguments)."""
    from stream.results import write_atomic

    directory = Path(directory)
    args = sweep.arguments(point)
    axes = {kind: [axis for axis in sweep.axes if axis.kind == kind] for kind in ("hardware", "mapping")}
    header = f"# written by stream sweep {sweep.name}, point {point.index} ({point.id}): {_params_text(point, axes)}\n"
    hardware = _write_hardware(sweep, point, args["hardware"], axes["hardware"], directory / "hardware", header)
    mapping = args["mapping"] if args["mapping"] == NO_MAPPING else None
    if _is_file(args["mapping"]):
        source = args["mapping"]
        mapping = str(directory / "mapping" / Path(source).name)
        if axes["mapping"]:
            data = load_yaml(source)[0]
            for axis in axes["mapping"]:
                for path in _targets_or_error(sweep, axis, lambda a: [(None, p) for p in _resolve(data, a.path)], source):
                    _set(data, path[1], point.params[axis.key])
            write_atomic(mapping, header + _dump(data))
        else:
            write_atomic(mapping, Path(source).read_text(encoding="utf-8"))
    run = {k: v for k, v in args.items() if k not in FILE_ARGUMENTS}
    document = {"point": point.index, "id": point.id, "params": point.params,
                "run": {"workload": args["workload"], "hardware": hardware, "mapping": mapping, **run}}
    write_atomic(directory / "point.json", json.dumps(document, indent=2) + "\n")
    return Materialised(str(directory), args["workload"], hardware, mapping, run)


def _params_text(point: Point, axes: dict) -> str:
    edited = [a.key for kind in axes.values() for a in kind]
    return ", ".join(f"{key} = {json.dumps(point.params[key])}" for key in edited) or "no edits"


def _targets_or_error(sweep: Sweep, axis: Axis, targets, file: str) -> list[tuple]:
    try:
        return targets(axis)
    except _PathError as exc:
        i = [a.key for a in sweep.axes].index(axis.key)
        raise InputError(sweep.source_file, f"axes[{i}].key", f"a key path into {file}", axis.key,
                         note=str(exc)) from None


def _write_hardware(sweep: Sweep, point: Point, source: str, axes: list[Axis], out: Path, header: str) -> str:
    from stream.results import write_atomic

    hw = _Hardware(source)
    system = copy.deepcopy(hw.data)
    edits: dict[Any, list] = {key: [] for key in hw.refs}  # core key -> [(keys, value)]
    # core files replaced first, so that edits inside a core apply to its new file
    replacing = [axis for axis in axes if axis.path[0] == "cores" and len(axis.path) == 2]
    for axis in replacing:
        for _, keys in _targets_or_error(sweep, axis, lambda a: hw.targets(a.path), source):
            hw.refs[keys[1]] = Path(sweep._path(point.params[axis.key]))
    for axis in axes:
        if axis in replacing:
            continue
        value = point.params[axis.key]
        for core, keys in _targets_or_error(sweep, axis, lambda a: hw.targets(a.path), source):
            if core is None:
                _set(system, keys, value)
            else:
                edits[core].append((keys, value))
    refs = hw.refs

    # one file per distinct content; a core keeps its file's name (the loaders name a core
    # without a name key after its file)
    written: dict[tuple, str] = {}
    taken: set[str] = set()
    for key in refs:
        file, changes = refs[key], edits[key]
        signature = (str(file), json.dumps([[list(k), v] for k, v in changes], default=str))
        if signature not in written:
            sub = ""
            if changes:
                sub = "core" + "-".join(str(k) for k in refs if k != "offchip_core" and edits[k] == changes
                                        and refs[k] == file) + "/"
                if key == "offchip_core":
                    sub = "offchip_core/"
            name = f"cores/{sub}{file.name}"
            n = 1
            while name in taken:
                n += 1
                name = f"cores/{sub}{n}/{file.name}"
            taken.add(name)
            if changes:
                data = copy.deepcopy(hw.core_data(file))
                for keys, value in changes:
                    _set(data, keys, value)
                write_atomic(out / name, header + _dump(data))
            else:
                write_atomic(out / name, file.read_text(encoding="utf-8"))
            written[signature] = name
        if key == "offchip_core":
            system["offchip_core"] = written[signature]
        else:
            system["cores"][key] = written[signature]
    if isinstance(system.get("default_mapping"), str):  # relative to the system file it came from
        system["default_mapping"] = str((Path(source).parent / system["default_mapping"]).resolve())
    path = out / Path(source).name
    write_atomic(path, header + _dump(system))
    return str(path)


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of plain values on one line (``cores: [0, 1]``), as our files write them."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(item, (str, int, float, bool)) or item is None for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
