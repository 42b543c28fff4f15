"""Workload IR and loaders: ``load_workload(path)`` reads YAML or ONNX."""

from __future__ import annotations

import os

from stream.errors import InputError
from stream.workload.ir import (
    AxisExpr, Broadcast, DimKind, Gathered, Layer, Operand, Place, Reshape, Role, Slice, Source, Transpose, View,
    Workload,
)


def load_workload(path: str | os.PathLike, dims: dict[str, int] | None = None) -> Workload:
    """Load a workload file: ``.yaml``/``.yml`` (the field's vocabulary) or ``.onnx``;
    ``dims`` sizes an ONNX model's symbolic input dims by name."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".yaml", ".yml"):
        from stream.workload.yaml_loader import load_yaml_workload

        if dims:
            raise InputError(path, "--dim", "an ONNX model (a YAML workload has no symbolic dims)", sorted(dims))
        return load_yaml_workload(path)
    if suffix == ".onnx":
        from stream.workload.onnx_loader import load_onnx

        return load_onnx(path, dims=dims)
    raise InputError(path, "<file name>", "a .yaml, .yml or .onnx workload file", suffix or path)


__all__ = [
    "AxisExpr", "Broadcast", "DimKind", "Gathered", "Layer", "Operand", "Place", "Reshape", "Role", "Slice", "Source",
    "Transpose", "View", "Workload", "load_workload",
]
