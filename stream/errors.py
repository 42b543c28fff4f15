"""Errors that reach the user.

Every problem with an input file is an :class:`InputError` that names the file, the key
path inside it and the expected form, so the CLI can print one line and exit non-zero
instead of a traceback.
"""

from __future__ import annotations


class StreamError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(StreamError):
    """A bad input: ``file: key: expected ..., got ...``."""

    def __init__(self, file: str | None, key: str, expected: str, got: object = ..., note: str = ""):
        self.file = file or "<input>"
        self.key = key or "<top level>"
        self.expected = expected
        self.got = got
        parts = [f"{self.file}: {self.key}: expected {expected}"]
        if got is not ...:
            parts.append(f", got {_short(got)}")
        if note:
            parts.append(f" ({note})")
        super().__init__("".join(parts))


class UnsupportedOperatorsError(InputError):
    """An ONNX model uses operators the loader cannot translate; lists all of them at once."""

    def __init__(self, file: str, nodes: list[tuple[str, str]]):
        self.nodes = nodes
        listing = "; ".join(f"{name or '<unnamed>'} ({op})" for name, op in nodes)
        super().__init__(
            file,
            "graph.node",
            "supported operators only",
            note=f"{len(nodes)} unsupported node(s): {listing}",
        )


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
