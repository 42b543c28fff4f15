"""Small helpers for reading YAML input files with precise error messages.

A :class:`Where` remembers the file and the key path of a value, so every check can say
exactly which entry is wrong. Loaders in ``workload``, ``hardware`` and ``mapping`` use
these instead of indexing dicts directly.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from stream.errors import InputError

MISSING = object()


@dataclass(frozen=True)
class Where:
    """A position in an input file: the file and a dotted key path."""

    file: str
    path: str = ""

    def __truediv__(self, key: object) -> "Where":
        if isinstance(key, int):
            return Where(self.file, f"{self.path}[{key}]")
        return Where(self.file, f"{self.path}.{key}" if self.path else str(key))

    def error(self, expected: str, got: object = ..., note: str = "") -> InputError:
        return InputError(self.file, self.path, expected, got, note)


def load_yaml(path: str | os.PathLike, unique_keys: bool = True) -> tuple[Any, Where]:
    """Read a YAML file; a missing file, a syntax error or a repeated key is an InputError.

    PyYAML silently keeps the last of two equal keys; ``unique_keys`` (the default)
    rejects a key repeated with a different value.
    """
    path = os.fspath(path)
    where = Where(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise where.error("an existing file", note="file not found") from None
    except IsADirectoryError:
        raise where.error("a YAML file", note="this is a directory") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(path, at, "valid YAML", note=str(problem)) from None
    if data is None:
        raise where.error("a non-empty YAML document", note="file is empty")
    if unique_keys:
        _reject_duplicate_keys(where)
    return data, where


def _reject_duplicate_keys(where: Where) -> None:
    with open(where.file, encoding="utf-8") as handle:
        root = yaml.compose(handle, Loader=yaml.SafeLoader)
    stack = [(root, where)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, str] = {}
            for key_node, value_node in node.value:
                key = getattr(key_node, "value", repr(key_node))
                value = getattr(value_node, "value", None)
                # the field's files repeat a key with the same value now and then: harmless
                if key in seen and (not isinstance(value, str) or seen[key] != value):
                    raise (at / key).error(
                        "each key once", note=f"repeated key on line {key_node.start_mark.line + 1}")
                seen[key] = value
                stack.append((value_node, at / key))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, at / i) for i, item in enumerate(node.value))


def expect_dict(value: Any, where: Where) -> dict:
    if not isinstance(value, dict):
        raise where.error("a mapping of keys to values", value)
    return value


def expect_list(value: Any, where: Where) -> list:
    if not isinstance(value, list):
        raise where.error("a list", value)
    return value


def check_keys(
    data: dict, where: Where, required: Iterable[str] = (), optional: Iterable[str] = ()
) -> None:
    """Reject unknown keys and report the first missing required key."""
    required = tuple(required)
    allowed = set(required) | set(optional)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise (where / str(unknown[0])).error(
            "a known key", unknown[0], note="allowed keys: " + ", ".join(sorted(map(str, allowed)))
        )
    for key in required:
        if key not in data:
            raise (where / key).error("this key to be present", note="missing required key")


def expect_str(value: Any, where: Where) -> str:
    if not isinstance(value, str) or not value:
        raise where.error("a non-empty string", value)
    return value


def expect_bool(value: Any, where: Where) -> bool:
    if not isinstance(value, bool):
        raise where.error("true or false", value)
    return value


def expect_int(value: Any, where: Where, minimum: int | None = None) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        value = int(value)  # the field's "K, 16" pairs carry numbers as text
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise where.error("an integer" + (f" >= {minimum}" if minimum is not None else ""), value)
    if minimum is not None and value < minimum:
        raise where.error(f"an integer >= {minimum}", value)
    return value


_NUMBER = re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def expect_number(value: Any, where: Where, minimum: float | None = None, positive: bool = False) -> float:
    # PyYAML reads 1e9 (no dot) as a string; YAML 1.2 and users mean a number
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        value = float(value.strip().replace("_", ""))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise where.error("a finite number", value)
    if positive and value <= 0:
        raise where.error("a number > 0", value)
    if minimum is not None and value < minimum:
        raise where.error(f"a number >= {minimum}", value)
    return float(value)


def split_pair(value: Any, where: Where) -> tuple[str, str]:
    """Parse the field's ``"A, B"`` string form (also accepts a two-item list)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return str(value[0]).strip(), str(value[1]).strip()
    if isinstance(value, str) and value.count(",") == 1:
        left, right = value.split(",")
        if left.strip() and right.strip():
            return left.strip(), right.strip()
    raise where.error('a pair written "A, B"', value)


ANY_VALUE = object()


def unmodelled(data: dict, where: Where, keys: dict[str, Any]) -> list[str]:
    """Key paths of ``data`` that are read but not modelled.

    ``keys`` maps each such key to the value our model behaves as (``ANY_VALUE``: no value
    is modelled, the key is reported whenever present). A key left at that value changes
    nothing, so only the others are reported; the loaders turn them into one warning line
    per file (see :func:`unmodelled_note`).
    """
    found = []
    for key, modelled in keys.items():
        if key in data and (modelled is ANY_VALUE or data[key] != modelled):
            found.append((where / key).path)
    return found


def unmodelled_note(file: str, paths: Iterable[str]) -> tuple[str, ...]:
    """One warning line naming every key of ``file`` that is read but not modelled, or none."""
    paths = list(dict.fromkeys(paths))
    if not paths:
        return ()
    return (f"{file}: read but not modelled (no effect on the results): {', '.join(paths)}",)
