"""ONNX models -> Workload IR.

Only shapes matter: the model is read without its external weight data, ONNX shape
inference gives every tensor's shape, and each node is translated by a small function
picked by ``op_type`` (whatever its domain, so ``com.example`` ``Silu`` is a Silu).

Nodes fall in four groups:

* layers (conv, gemm/matmul, pooling, elementwise, normalisation, reductions): one
  :class:`Layer` each;
* views (reshape, transpose, slice, concat, ...): no layer; the consumer's
  :class:`Source` carries the composed index maps;
* constant work (``Constant``, ``Shape``, any node whose inputs are all constants): folded
  away, its outputs are constants (weights, read from DRAM);
* anything else: collected and reported together in one
  :class:`UnsupportedOperatorsError`.

Custom operators live in the ``stream`` domain (a model using them declares
``opset_import`` domain ``"stream"`` version 1; an unknown op type in that domain is an
:class:`InputError`). There is one, ``stream::SelectiveScan``, the selective scan of a
Mamba (state-space) block: inputs ``dA`` and ``dBx`` of one shape, e.g. ``(B, L, D, N)``
(any rank >= 2), attribute ``axis`` (int, default 1: the sequential axis, negative counts
from the end), output ``h`` of the same shape, the linear recurrence along ``axis``::

    h[..., l, ...] = dA[..., l, ...] * h[..., l - 1, ...] + dBx[..., l, ...],  h[..., -1, ...] = 0

It becomes one layer (op type ``SelectiveScan``) with inputs ``I`` (dA) and ``W`` (dBx),
every dim parallel except the ``axis`` dim, named ``L``, which is
:attr:`~stream.workload.ir.DimKind.SEQUENTIAL` (tiles along it chain in order on one
core); the other dims are ``B`` before it and ``D``, ``N`` after it for ``(B, L, D, N)``.
ONNX has no schema for it, so its output shape is inferred as its input's.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from stream.errors import InputError, UnsupportedOperatorsError
from stream.workload.ir import (
    AxisExpr, Broadcast, DimKind, Gathered, Layer, Operand, Place, Reshape, Role, Slice, Source, Transpose, Workload,
)

PAR, RED = DimKind.PARALLEL, DimKind.REDUCTION
ONE = AxisExpr((), 1)  # a broadcast axis of size 1

UNARY_OPS = frozenset({
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Softplus", "Softsign", "Gelu", "Erf", "Sqrt",
    "Reciprocal", "Neg", "Abs", "Silu", "Swish", "Mish", "Clip", "LeakyRelu", "Elu", "Selu",
    "Celu", "HardSigmoid", "HardSwish", "Cast", "Dropout", "Floor", "Ceil", "Round", "Sign",
    "Sin", "Cos", "IsNaN", "IsInf", "Not",
})
# Elementwise over all their inputs, broadcast numpy-style (Where: condition, then, else).
BINARY_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu", "Sum", "Mean", "Mod",
                        "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor",
                        "Where"})
# Nodes whose outputs are constants (or shapes, known after inference) whatever their inputs.
CONSTANT_OPS = frozenset({"Constant", "ConstantOfShape", "Shape", "Size"})
# Our custom operators: domain, the opset version of it we read, and its op types.
STREAM_DOMAIN, STREAM_OPSET = "stream", 1
STREAM_OPS = frozenset({"SelectiveScan"})
SELECTIVE_SCAN_FORM = "SelectiveScan(dA, dBx) -> h, dA and dBx of one shape of rank >= 2 (e.g. B x L x D x N)"


# Element types whose width is the accelerator's number format: a model stored in one of
# these is priced at its width (the field's 2026 tool reads the element type too).
NARROW_TYPE_BITS = {
    onnx.TensorProto.BOOL: 8,  # a byte per element, as ONNX stores it
    onnx.TensorProto.INT4: 4, onnx.TensorProto.UINT4: 4,
    onnx.TensorProto.INT8: 8, onnx.TensorProto.UINT8: 8,
    onnx.TensorProto.FLOAT8E4M3FN: 8, onnx.TensorProto.FLOAT8E5M2: 8,
    onnx.TensorProto.INT16: 16, onnx.TensorProto.UINT16: 16,
    onnx.TensorProto.FLOAT16: 16, onnx.TensorProto.BFLOAT16: 16,
}


def load_onnx(path, *, dims: dict[str, int] | None = None, act_bits: int = 8, weight_bits: int = 8,
              psum_bits: int = 16) -> Workload:
    """Read an ONNX file into a :class:`Workload` (bits are per element).

    A tensor of a narrow element type (:data:`NARROW_TYPE_BITS`: int8, bf16, ...) has that
    width. Wider types (float32, as every framework exports) say nothing about the
    accelerator's number format, so they take ``act_bits`` and ``weight_bits``, as the
    field's classic tool does, and the workload says so in a warning. Partial sums have
    ``psum_bits``, or the output's width if that is wider.

    Every axis must have a size: ``dims`` sizes the graph inputs' symbolic dims by name
    (``{"batch": 1, "seq": 128}``); an axis still unknown after shape inference and constant
    folding is an error naming the tensor."""
    file = str(path)
    model = _fuse_gelu(_read_model(file))
    ctx = _Context(file, model, act_bits, weight_bits, psum_bits, dict(dims or {}))
    for index, node in enumerate(model.graph.node):
        ctx.visit(node, index)
    if ctx.unsupported:
        raise UnsupportedOperatorsError(file, ctx.unsupported)
    return Workload.from_layers(Path(file).stem, ctx.layers, source_file=file,
                                warnings=ctx.warnings + ctx.precision_note())


# -- reading --------------------------------------------------------------------------


def _read_model(file: str) -> onnx.ModelProto:
    try:
        model = onnx.load(file, load_external_data=False)
    except Exception as exc:  # protobuf decode errors, missing file, ...
        raise InputError(file, "<file>", "a readable ONNX model", note=f"{type(exc).__name__}: {exc}") from None
    # Random bytes can decode as an empty message; a real model has a version and nodes.
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise InputError(file, "<file>", "an ONNX model with a graph of nodes")
    return model


def _fuse_gelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """The erf form of GELU as exporters write it before opset 20, x * (1 + erf(x / sqrt 2))
    * 0.5 (Div, Erf, Add, Mul, Mul), is one Gelu layer, as it is one operation on the
    accelerator's vector unit; the intermediate tensors must have no other reader."""
    nodes = list(model.graph.node)
    readers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for t in node.input:
            readers.setdefault(t, []).append(i)
    producer = {t: i for i, node in enumerate(nodes) for t in node.output}
    scalars = _scalar_constants(model)

    def only_reader(tensor: str, op: str) -> int | None:
        found = readers.get(tensor, [])
        return found[0] if len(found) == 1 and nodes[found[0]].op_type == op else None

    def other(node, tensor: str) -> str:
        return node.input[1] if node.input[0] == tensor else node.input[0]

    def near(tensor: str, value: float) -> bool:
        return tensor in scalars and abs(scalars[tensor] - value) < 1e-3

    fused, drop = {}, set()
    for e, erf in enumerate(nodes):
        if erf.op_type != "Erf" or erf.input[0] not in producer:
            continue
        d = producer[erf.input[0]]
        div = nodes[d]
        if div.op_type != "Div" or not near(div.input[1], math.sqrt(2)) or only_reader(div.output[0], "Erf") != e:
            continue
        x = div.input[0]
        a = only_reader(erf.output[0], "Add")
        m1 = only_reader(nodes[a].output[0], "Mul") if a is not None and near(other(nodes[a], erf.output[0]), 1.0) else None
        if m1 is None or other(nodes[m1], nodes[a].output[0]) != x:
            continue
        m2 = only_reader(nodes[m1].output[0], "Mul")
        if m2 is None or not near(other(nodes[m2], nodes[m1].output[0]), 0.5):
            continue
        scope = erf.name.rsplit("/", 1)[0] if "/" in erf.name else erf.name
        fused[m2] = helper.make_node("Gelu", [x], [nodes[m2].output[0]], name=f"{scope}/Gelu" if scope else "")
        drop.update((d, e, a, m1))
    if not fused:
        return model
    model = copy.deepcopy(model)
    del model.graph.node[:]
    model.graph.node.extend(fused.get(i, node) for i, node in enumerate(nodes) if i not in drop)
    return model


def _scalar_constants(model: onnx.ModelProto) -> dict[str, float]:
    """Values of the one-element constants (initializers and Constant nodes)."""
    return {name: float(value.reshape(-1)[0]) for name, value in _constant_values(model.graph, 1).items()
            if value.size == 1}


def _constant_values(graph: onnx.GraphProto, limit: int) -> dict[str, np.ndarray]:
    """Values of the constants of at most ``limit`` elements stored in the file
    (initializers and Constant nodes with a tensor value; weights left out have none)."""
    tensors = [(t.name, t) for t in graph.initializer]
    tensors += [(n.output[0], a.t) for n in graph.node if n.op_type == "Constant"
                for a in n.attribute if a.name == "value"]
    out = {}
    for name, t in tensors:
        if math.prod(t.dims) <= limit and t.data_location != onnx.TensorProto.EXTERNAL:
            try:
                out[name] = numpy_helper.to_array(t)
            except (ValueError, TypeError):  # declared without its data
                pass
    return out


def _opset(model: onnx.ModelProto, domain: str = "") -> int:
    for entry in model.opset_import:
        if entry.domain in (domain, "ai.onnx" if domain == "" else domain):
            return entry.version
    return onnx.defs.onnx_opset_version()


def _infer_shapes(file: str, model: onnx.ModelProto, dims: dict[str, int]) -> onnx.ModelProto:
    """Shape inference on a copy prepared so that it can succeed.

    Symbolic input dims take their size from ``dims``, and elementwise nodes ONNX has no
    schema for (custom domains, ops newer than the model's opset) are swapped for a
    shape-equivalent standard op, so the shapes behind them are still inferred.
    """
    work = copy.deepcopy(model)
    graph = work.graph
    missing, named = [], set()
    for value in graph.input:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                named.add(dim.dim_param)
                if dim.dim_param in dims:
                    dim.dim_value = dims[dim.dim_param]
                else:
                    missing.append(f"'{dim.dim_param}' ({value.name} axis {axis})" if dim.dim_param
                                   else f"an unnamed dim ({value.name} axis {axis})")
    if missing:
        raise InputError(file, "graph.input", "a size for every symbolic dim (--dim NAME=VALUE, dims= in the API)",
                         ", ".join(missing))
    unknown = sorted(set(dims) - named)
    if unknown:
        raise InputError(file, "graph.input", f"--dim names among the model's symbolic dims {sorted(named - {''})}",
                         ", ".join(unknown))
    for value in list(graph.output) + list(graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:  # let inference fill it from the concrete inputs
                dim.ClearField("dim_param")
    opset = _opset(model)
    for node in graph.node:
        if _has_schema(node, opset):
            continue
        if node.op_type in UNARY_OPS:
            node.CopyFrom(helper.make_node("Identity", node.input[:1], node.output[:1], name=node.name))
        elif node.op_type in BINARY_OPS:
            node.CopyFrom(helper.make_node("Sum", node.input, node.output[:1], name=node.name))
        elif node.op_type == "SelectiveScan" and node.input and node.input[0] and node.output:
            # h has dA's shape; a node of the wrong form is reported when it is translated
            node.CopyFrom(helper.make_node("Identity", node.input[:1], node.output[:1], name=node.name))
    inferred = _infer(file, work)
    for _ in range(FOLD_ROUNDS):  # each round can size tensors the next one folds
        if not _fold_constants(work, inferred):
            break
        inferred = _infer(file, work)
    return inferred


def _infer(file: str, model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise InputError(file, "graph", "a model ONNX shape inference accepts", note=str(exc)) from None


FOLD_ROUNDS = 4
FOLD_LIMIT = 4096  # elements: shape arithmetic folds, arrays of data are never evaluated


def _fold_constants(work: onnx.ModelProto, inferred: onnx.ModelProto) -> bool:
    """Make the outputs of nodes computable at load time initializers of ``work``: the
    shapes of statically shaped tensors and the small arithmetic on them, by which
    exporters compute reshape and expand targets (ONNX's inference does not follow a
    Where or a Mod). True if anything new was folded."""
    from onnx.reference import ReferenceEvaluator

    graph = work.graph
    known = _constant_values(graph, FOLD_LIMIT)
    static = {}
    for value in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim if value.type.HasField("tensor_type") else ()
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape") \
                and all(d.HasField("dim_value") for d in dims):
            static[value.name] = [d.dim_value for d in dims]
    folded = []
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or not node.output or node.output[0] in known:
            continue
        if node.op_type == "Shape" and node.input[0] in static:
            shape = static[node.input[0]]
            start, end = _attr(node, "start", 0), _attr(node, "end", len(shape))
            outputs = [np.array(shape[start:end], dtype=np.int64)]
        elif node.op_type == "Size" and node.input[0] in static:
            outputs = [np.array(math.prod(static[node.input[0]]), dtype=np.int64)]
        elif node.op_type != "Shape" and all(i in known for i in node.input if i):
            if any(known[i].size > FOLD_LIMIT for i in node.input if i):
                continue
            try:
                outputs = ReferenceEvaluator(node).run(None, {i: known[i] for i in node.input if i})
            except Exception:  # an operator the evaluator lacks: its output stays unknown
                continue
        else:
            continue
        for name, value in zip(node.output, outputs):
            value = np.asarray(value)
            if name and value.size <= FOLD_LIMIT:
                known[name] = value
                folded.append(numpy_helper.from_array(value, name))
    initialised = {t.name for t in graph.initializer}
    new = [t for t in folded if t.name not in initialised]
    graph.initializer.extend(new)
    return bool(new)


def _has_schema(node: onnx.NodeProto, opset: int) -> bool:
    if node.domain not in ("", "ai.onnx"):
        return False
    try:
        onnx.defs.get_schema(node.op_type, opset, "")
    except Exception:
        return False
    return True


# -- translation context --------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """Where (part of) a tensor comes from: a layer's output, a graph input or a constant."""

    kind: str  # "layer" | "input" | "const"
    layer: str | None = None
    views: tuple = ()
    tensor: str = ""  # a graph input or initializer: its name


class _Unsupported(Exception):
    """A node of a known op_type in a form the loader cannot express."""


class _Context:
    def __init__(self, file: str, model: onnx.ModelProto, act_bits: int, weight_bits: int, psum_bits: int,
                 dims: dict[str, int]):
        self.file = file
        self.act_bits, self.weight_bits, self.psum_bits = act_bits, weight_bits, psum_bits
        self.opset = _opset(model)
        self.stream_opset = next((e.version for e in model.opset_import if e.domain == STREAM_DOMAIN), None)
        self.warnings: list[str] = []
        self.layers: list[Layer] = []
        self.unsupported: list[tuple[str, str]] = []
        self._names: set[str] = set()
        graph = model.graph
        inferred = _infer_shapes(file, model, dims).graph
        self._shapes: dict[str, tuple] = {}
        for value in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
            if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
                self._shapes[value.name] = tuple(value.type.tensor_type.shape.dim)
        self._initializers = {t.name: t for t in graph.initializer}
        for t in list(graph.initializer) + list(inferred.initializer):  # and values folded for inference
            self._shapes[t.name] = tuple(t.dims)
        self._types = {v.name: v.type.tensor_type.elem_type for v in
                       list(inferred.input) + list(inferred.value_info) + list(inferred.output)
                       if v.type.HasField("tensor_type")}
        self._types.update({t.name: t.data_type for t in graph.initializer})
        self._wide_types: set[int] = set()  # element types priced at the default widths
        self._constants: dict[str, onnx.NodeProto] = {}
        # None marks a tensor downstream of an unsupported node: its consumers are skipped.
        self.origins: dict[str, tuple[_Part, ...] | None] = {"": ()}
        for value in graph.input:
            self.origins[value.name] = (_Part("input", tensor=value.name),)
        for name in self._initializers:  # an initializer listed as an input is a constant
            self.origins[name] = (_Part("const", tensor=name),)

    # -- per node -------------------------------------------------------------------
    def visit(self, node: onnx.NodeProto, index: int) -> None:
        name = self._unique(node.name or f"{node.op_type}_{index}")
        if node.domain == STREAM_DOMAIN:
            self._check_stream_node(node, name)
        for tensor in node.input:
            if tensor not in self.origins:
                raise InputError(self.file, f"graph.node {name}.input", "a graph input, initializer "
                                 "or output of an earlier node", tensor)
        inputs = [self.origins[t] for t in node.input if t]
        op = node.op_type
        known = op in LAYER_OPS or op in VIEW_OPS or op in CONSTANT_OPS
        if any(parts is None for parts in inputs):
            if not known or not self._translatable(node, name):
                self.unsupported.append((name, op))
            self._set_outputs(node, None)
        elif op == "Constant":
            self._constants[node.output[0]] = node
            self._set_outputs(node, (_Part("const"),))
        elif op in CONSTANT_OPS or all(p.kind == "const" for parts in inputs for p in parts):
            self._set_outputs(node, (_Part("const"),))  # folded at load time: no work at run time
        else:
            try:
                layer = self._translate(node, name)
                if layer is not None:
                    self.layers.append(layer)
                    self._set_outputs(node, (_Part("layer", name),))
            except _Unsupported:
                self.unsupported.append((name, op))
                self._set_outputs(node, None)

    def _translatable(self, node: onnx.NodeProto, name: str) -> bool:
        """Whether a node downstream of an unsupported one has a form we translate, so that
        one error lists every node to fix: tried with its unknown inputs taken as graph
        inputs, the result thrown away (a node whose shapes are unknown passes)."""
        unknown = [t for t in node.input if t and self.origins[t] is None]
        for t in unknown:
            self.origins[t] = (_Part("input"),)
        try:
            self._translate(node, name)
            return True
        except _Unsupported:
            return False
        except InputError:
            return True
        finally:
            for t in unknown:
                self.origins[t] = None

    def _translate(self, node: onnx.NodeProto, name: str) -> Layer | None:
        """The node's layer; None for a view (which aliases its output), including a
        Gather of constant indices. Raises _Unsupported for a form we lack."""
        if node.op_type in VIEW_OPS:
            VIEW_OPS[node.op_type](self, node)
            return None
        if node.op_type in LAYER_OPS:
            return LAYER_OPS[node.op_type](self, node, name)
        raise _Unsupported

    def _check_stream_node(self, node: onnx.NodeProto, name: str) -> None:
        """A node of our ``stream`` domain: the model imports the domain, and the op exists."""
        if self.stream_opset != STREAM_OPSET:
            got = "no opset_import of it" if self.stream_opset is None else f"version {self.stream_opset}"
            raise InputError(self.file, f"graph.node {name}.domain",
                             f"a model whose opset_import has domain '{STREAM_DOMAIN}' version {STREAM_OPSET}",
                             got)
        if node.op_type not in STREAM_OPS:
            raise InputError(self.file, f"graph.node {name}.op_type",
                             f"an operator of the '{STREAM_DOMAIN}' domain ({', '.join(sorted(STREAM_OPS))})",
                             node.op_type)
        if node.op_type == "SelectiveScan":
            _check_scan_arity(self, node, name)

    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def _set_outputs(self, node: onnx.NodeProto, parts) -> None:
        for tensor in node.output:
            if tensor:
                self.origins[tensor] = parts

    def alias(self, out: str, src: str, *views) -> None:
        """``out`` is ``src`` seen through ``views`` (a view node makes no layer)."""
        self.origins[out] = tuple(_Part(p.kind, p.layer, p.views + views, p.tensor) for p in self.origins[src])

    # -- facts about tensors ----------------------------------------------------------
    def shape(self, tensor: str) -> tuple[int, ...]:
        if tensor not in self._shapes:
            raise InputError(self.file, f"tensor {tensor}", "a shape known after ONNX shape inference")
        out = []
        for axis, dim in enumerate(self._shapes[tensor]):
            if isinstance(dim, int):
                out.append(dim)
            elif dim.HasField("dim_value") and dim.dim_value > 0:
                out.append(dim.dim_value)
            else:
                raise InputError(self.file, f"tensor {tensor}", "axes of known size after shape inference and "
                                 "constant folding", f"axis {axis} of unknown size",
                                 note="sizes of the inputs' symbolic dims are set with --dim NAME=VALUE")
        self._shapes[tensor] = tuple(out)
        return tuple(out)

    def const_value(self, tensor: str, node: onnx.NodeProto):
        """Value of an initializer or Constant-node output as a list (e.g. Slice starts)."""
        if tensor in self._initializers:
            init = self._initializers[tensor]
            if init.data_location != onnx.TensorProto.EXTERNAL:
                return numpy_helper.to_array(init).reshape(-1).tolist()
        elif tensor in self._constants:
            attr = self._constants[tensor].attribute[0]
            value = helper.get_attribute_value(attr)
            if isinstance(value, onnx.TensorProto):
                return numpy_helper.to_array(value).reshape(-1).tolist()
            return list(value) if isinstance(value, (list, tuple)) else [value]
        raise InputError(self.file, f"graph.node {node.name or node.op_type}.input {tensor}",
                         "a constant (an initializer with data, or a Constant node)")

    # -- operands -------------------------------------------------------------------
    def operand(self, name: str, tensor: str, axes) -> Operand:
        """An input operand; a WEIGHT if every part of it is constant."""
        parts = self.origins[tensor]
        weight = all(p.kind == "const" for p in parts)
        sources = tuple(Source(p.layer, p.views) for p in parts if p.kind == "layer")
        # read straight from a graph input or initializer: layers reading it share its slices
        whole = parts[0].tensor if len(parts) == 1 and not parts[0].views and parts[0].kind != "layer" else ""
        return Operand(
            name, Role.WEIGHT if weight else Role.ACTIVATION, tuple(axes),
            self.bits(tensor, self.weight_bits if weight else self.act_bits), sources=sources, tensor=whole,
        )

    def bits(self, tensor: str, default: int) -> int:
        """Bits per element of ``tensor``: its narrow element type's width, else ``default``."""
        elem_type = self._types.get(tensor, onnx.TensorProto.UNDEFINED)
        if elem_type in NARROW_TYPE_BITS:
            return NARROW_TYPE_BITS[elem_type]
        if elem_type != onnx.TensorProto.UNDEFINED:
            self._wide_types.add(elem_type)
        return default

    def precision_note(self) -> list[str]:
        """The warning that wide element types were priced at the default widths."""
        if not self._wide_types:
            return []
        spelled = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}
        names = ", ".join(sorted(spelled.get(t, onnx.TensorProto.DataType.Name(t).lower()) for t in self._wide_types))
        return [f"{self.file}: {names} tensors priced as {self.act_bits}-bit activations and "
                f"{self.weight_bits}-bit weights with {self.psum_bits}-bit partial sums (a {names} export "
                "says nothing about the accelerator's number format; int8, fp16 and bf16 tensors keep "
                "their width)"]

    def layer(self, node, name, dims, out_axes, inputs, attrs=(), field_order=None, names=()) -> Layer:
        """A layer from ``dims`` = [(dim, size, kind), ...], its output axes and input operands.

        ``field_order`` lists the dims in the order the field's tool numbers them ``D0, D1,
        ...`` where it differs from the default (see :func:`_aliases`); ``names`` are further
        (alias, dim) pairs the field's files use."""
        reduces = any(kind is RED for _, _, kind in dims)
        bits = self.bits(node.output[0], self.act_bits)
        out = Operand("O", Role.OUTPUT, tuple(out_axes), bits, max(self.psum_bits, bits) if reduces else None)
        return Layer(
            name, node.op_type,
            dims=tuple(d for d, _, _ in dims), sizes=tuple(n for _, n, _ in dims),
            kinds=tuple(k for _, _, k in dims), operands=(out, *inputs), attrs=tuple(attrs),
            aliases=_aliases([d for d, _, _ in dims], [*inputs, out], field_order) + tuple(names),
        )


def _aliases(dims: list[str], operands, field_order=None) -> tuple[tuple[str, str], ...]:
    """D0, D1, ...: the field's 2026 names, the position of each dim in the argument list of
    the node's affine maps (KULeuven-MICAS/stream, ``stream/parser/onnx/*.py``). By default
    the dims in order of first appearance in I, W, ..., then O, which is the field's order
    for Gemm, MatMul and elementwise operators; Conv and pooling pass theirs."""
    order: list[str] = list(field_order or ())
    for op in operands:
        for axis in op.axes:
            for dim, _ in axis.terms:
                if dim not in order:
                    order.append(dim)
    order += [d for d in dims if d not in order]
    return tuple((f"D{i}", d) for i, d in enumerate(order))


# -- small helpers --------------------------------------------------------------------


def _attr(node: onnx.NodeProto, key: str, default=None):
    for a in node.attribute:
        if a.name == key:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _ax(dim: str, extent: int, coef: int = 1) -> AxisExpr:
    return AxisExpr(((dim, coef),), extent)


def _elementwise_names(rank: int) -> tuple[str, ...]:
    named = {4: ("B", "C", "OY", "OX"), 3: ("B", "D", "K"), 2: ("D", "K"), 1: ("K",), 0: ()}
    return named.get(rank, tuple(f"A{i}" for i in range(rank)))


def _classic_elementwise_names(names) -> tuple[tuple[str, str], ...]:
    """The field's classic names of a 4-D elementwise layer's dims, by position: ``B, H, D,
    K`` (KULeuven-MICAS/stream, ``SimdParser.DEFAULT_LAYER_DIMENSIONS``), so its mappings'
    ``D, all`` tiles the rows. (Its classic Conv parser calls axis 2 ``OX``; we keep OY for
    the rows throughout, so a conv's ``OY, all`` and an elementwise ``D, all`` cut the same
    axis and the depth-first pipeline holds.)"""
    if tuple(names) != ("B", "C", "OY", "OX"):
        return ()
    return (("H", "C"), ("D", "OY"), ("K", "OX"))


def _spatial(n: int) -> tuple[str, ...]:
    """Suffixes of the spatial dims: OX/FX for 1-D, OY/OX... for 2-D, OZ/OY/OX for 3-D."""
    return {1: ("X",), 2: ("Y", "X"), 3: ("Z", "Y", "X")}.get(n) or tuple(str(i) for i in range(n))


def _broadcast_axes(shape, names, out_shape) -> list[AxisExpr]:
    """Numpy broadcasting: align right; size-1 axes against a larger output are broadcast."""
    lead = len(out_shape) - len(shape)
    return [ONE if n == 1 and out_shape[lead + i] != 1 else _ax(names[lead + i], n)
            for i, n in enumerate(shape)]


def _normalise_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _pad_begins(node, in_sizes, out_sizes, kernel, strides, dilations) -> list[int]:
    """Padding before each spatial axis, from ``pads`` or ``auto_pad``."""
    n = len(in_sizes)
    auto = _attr(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins = []
        for i in range(n):
            total = max(0, (out_sizes[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_sizes[i])
            # SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the start.
            begins.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
        return begins
    if auto == "VALID":
        return [0] * n
    return list(_attr(node, "pads", [0] * (2 * n)))[:n]


def _window_axes(node, ctx, x, y, kernel):
    """Sliding-window input axes ``s*o + d*f - pad`` and the O*/F* dims, for conv and pooling."""
    xs, ys = ctx.shape(x), ctx.shape(y)
    n = len(xs) - 2
    strides = list(_attr(node, "strides", [1] * n))
    dilations = list(_attr(node, "dilations", [1] * n))
    pads = _pad_begins(node, xs[2:], ys[2:], kernel, strides, dilations)
    sp = _spatial(n)
    axes = [AxisExpr(((f"O{s}", strides[i]), (f"F{s}", dilations[i])), xs[2 + i], -pads[i])
            for i, s in enumerate(sp)]
    out_dims = [(f"O{s}", ys[2 + i], PAR) for i, s in enumerate(sp)]
    win_dims = [(f"F{s}", kernel[i], RED) for i, s in enumerate(sp)]
    return axes, out_dims, win_dims


# -- layer translators ----------------------------------------------------------------


def _conv(ctx: _Context, node, name) -> Layer:
    """O[b][k][oy][ox] += W[k][c][fy][fx] * I[b][c][s*oy+d*fy-p][...], with groups."""
    x, w, y = node.input[0], node.input[1], node.output[0]
    xs, ws, ys = ctx.shape(x), ctx.shape(w), ctx.shape(y)
    if len(xs) < 3:
        raise _Unsupported
    group = _attr(node, "group", 1)
    cin, kout, cg = xs[1], ys[1], ws[1]
    kg = kout // group
    win_axes, out_dims, win_dims = _window_axes(node, ctx, x, y, list(ws[2:]))
    win_w = [_ax(d, n) for d, n, _ in win_dims]
    out_sp = [_ax(d, n) for d, n, _ in out_dims]
    b = [("B", xs[0], PAR)]
    if group == 1:
        dims = b + [("K", kout, PAR), ("C", cin, RED)]
        i_ch, o_ch, w_ch = _ax("C", cin), _ax("K", kout), [_ax("K", kout), _ax("C", cg)]
    elif kg == 1 and cg == 1:  # depthwise: one channel per group
        dims = b + [("G", group, PAR)]
        i_ch, o_ch, w_ch = _ax("G", cin), _ax("G", kout), [_ax("G", kout), ONE]
    else:
        dims = b + [("G", group, PAR), ("K", kg, PAR), ("C", cg, RED)]
        i_ch = AxisExpr((("G", cg), ("C", 1)), cin)
        o_ch = AxisExpr((("G", kg), ("K", 1)), kout)
        w_ch = [AxisExpr((("G", kg), ("K", 1)), kout), _ax("C", cg)]
    dims += out_dims + win_dims
    inputs = [
        ctx.operand("I", x, [_ax("B", xs[0]), i_ch, *win_axes]),
        ctx.operand("W", w, [*w_ch, *win_w]),
    ]
    attrs = [("bias", True)] if len(node.input) > 2 and node.input[2] else []
    # the field's 2-D conv: (b, ox, oy, fx, fy, c, k), so D2 is OY and D6 is K
    order = ["B", "OX", "OY", "FX", "FY", "C", "K"] if group == 1 and len(xs) == 4 else None
    return ctx.layer(node, name, dims, [_ax("B", ys[0]), o_ch, *out_sp], inputs, attrs, field_order=order)


def _conv_transpose(ctx: _Context, node, name) -> Layer:
    """A transposed conv, written as ONNX defines it, by its inputs: every input element
    and kernel tap adds to one output element,
    ``O[b][k][s*iy + d*fy - p][...] += W[c][k][fy][fx] * I[b][c][iy][ix]``, so its MACs
    are PyTorch's (input elements x kernel x output channels) and its rows are the input's
    rows (``rows`` names IY). Where taps overlap (kernel longer than the stride) an output
    row sums the products of neighbouring input rows; a consumer of it then depends on
    every producer tile (counted conservatively). Groups: one only."""
    x, w, y = node.input[0], node.input[1], node.output[0]
    xs, ws, ys = ctx.shape(x), ctx.shape(w), ctx.shape(y)
    if len(xs) < 3 or _attr(node, "group", 1) != 1:
        raise _Unsupported
    n = len(xs) - 2
    kernel = list(ws[2:])
    strides = list(_attr(node, "strides", [1] * n))
    dilations = list(_attr(node, "dilations", [1] * n))
    pads = _transpose_pad_begins(node, xs[2:], ys[2:], kernel, strides, dilations)
    sp = _spatial(n)
    dims = [("B", xs[0], PAR), ("K", ys[1], PAR), ("C", xs[1], RED)]
    dims += [(f"I{s}", xs[2 + i], PAR) for i, s in enumerate(sp)] + [(f"F{s}", kernel[i], RED) for i, s in enumerate(sp)]
    out_sp = [AxisExpr(((f"I{s}", strides[i]), (f"F{s}", dilations[i])), ys[2 + i], -pads[i]) for i, s in enumerate(sp)]
    inputs = [
        ctx.operand("I", x, [_ax("B", xs[0]), _ax("C", xs[1]), *[_ax(f"I{s}", xs[2 + i]) for i, s in enumerate(sp)]]),
        ctx.operand("W", w, [_ax("C", ws[0]), _ax("K", ws[1]), *[_ax(f"F{s}", kernel[i]) for i, s in enumerate(sp)]]),
    ]
    attrs = [("bias", True)] if len(node.input) > 2 and node.input[2] else []
    return ctx.layer(node, name, dims, [_ax("B", ys[0]), _ax("K", ys[1]), *out_sp], inputs, attrs,
                     names=(("rows", f"I{sp[0]}"),))


def _transpose_pad_begins(node, in_sizes, out_sizes, kernel, strides, dilations) -> list[int]:
    """Output elements a transposed conv crops at the start of each spatial axis (ONNX's
    ConvTranspose): ``pads``, or, with ``auto_pad`` SAME_* or an ``output_shape``, the total
    ``s*(in - 1) + output_padding + d*(k - 1) + 1 - out`` split with the odd one at the end
    for SAME_UPPER and at the start otherwise."""
    n = len(in_sizes)
    auto = _attr(node, "auto_pad", "NOTSET")
    if auto == "VALID":
        return [0] * n
    if auto in ("SAME_UPPER", "SAME_LOWER") or _attr(node, "output_shape") is not None:
        extra = list(_attr(node, "output_padding", [0] * n))
        total = [strides[i] * (in_sizes[i] - 1) + extra[i] + dilations[i] * (kernel[i] - 1) + 1 - out_sizes[i]
                 for i in range(n)]
        return [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
    return list(_attr(node, "pads", [0] * (2 * n)))[:n]


def _resize(ctx: _Context, node, name) -> Layer | None:
    """Resize of an image's spatial axes by whole factors s. ``nearest`` repeats each
    element s times along each axis: a view, no layer. ``linear`` with half-pixel
    coordinates blends, for output row j, input rows floor((j + 0.5)/s - 0.5) and the next:
    row (j - s//2 + s*fy) // s of the nearest repeat, for the taps fy = 0, 1, so a layer of
    2 x 2 taps per output element reads the repeat through a window (rows past the border
    are left out: ONNX reads the border row there again)."""
    x, y = node.input[0], node.output[0]
    xs, ys = ctx.shape(x), ctx.shape(y)
    factors = [b // a if a and b % a == 0 else 0 for a, b in zip(xs, ys)]
    mode = _attr(node, "mode", "nearest")
    coords = _attr(node, "coordinate_transformation_mode", "half_pixel")
    if len(xs) < 3 or factors[:2] != [1, 1] or 0 in factors:
        raise _Unsupported
    if mode == "nearest":
        rounding = _attr(node, "nearest_mode", "round_prefer_floor")
        if not ((coords in ("half_pixel", "pytorch_half_pixel") and rounding in ("round_prefer_floor", "floor"))
                or (coords == "asymmetric" and rounding == "floor")):
            raise _Unsupported
        ctx.alias(y, x, *_repeat_views(xs, factors))
        return None
    if mode != "linear" or coords not in ("half_pixel", "pytorch_half_pixel"):
        raise _Unsupported
    sp = _spatial(len(xs) - 2)
    repeated = [n * f for n, f in zip(xs, factors)]
    dims = [("B", ys[0], PAR), ("C", ys[1], PAR)] + [(f"O{s}", ys[2 + i], PAR) for i, s in enumerate(sp)]
    dims += [(f"F{s}", 2, RED) for s in sp]
    window = [AxisExpr(((f"O{s}", 1), (f"F{s}", factors[2 + i])), repeated[2 + i], -(factors[2 + i] // 2))
              for i, s in enumerate(sp)]
    blended = ctx.operand("I", x, [_ax("B", ys[0]), _ax("C", ys[1]), *window])
    blended = dataclasses.replace(blended, tensor="", sources=tuple(
        Source(src.layer, src.views + tuple(_repeat_views(xs, factors))) for src in blended.sources))
    return ctx.layer(node, name, dims, [_ax("B", ys[0]), _ax("C", ys[1]), *[_ax(d, n) for d, n, _ in dims[2:2 + len(sp)]]],
                     [blended], [("mode", mode)])


def _repeat_views(shape, factors) -> list:
    """Each axis repeated ``factor`` times element by element: a size-1 axis after it,
    broadcast, then merged."""
    split = tuple(v for n in shape for v in (n, 1))
    views: list = [Reshape(tuple(shape), split)]
    views += [Broadcast(2 * i + 1, f) for i, f in enumerate(factors) if f > 1]
    return views + [Reshape(tuple(v for n, f in zip(shape, factors) for v in (n, f)),
                            tuple(n * f for n, f in zip(shape, factors)))]


def _gemm(ctx: _Context, node, name) -> Layer:
    """O[d][k] += I[d][c] * W[c][k], with transA/transB."""
    a, b = node.input[0], node.input[1]
    sa, sb = ctx.shape(a), ctx.shape(b)
    trans_a, trans_b = _attr(node, "transA", 0), _attr(node, "transB", 0)
    d, c = (sa[1], sa[0]) if trans_a else sa
    k = sb[0] if trans_b else sb[1]
    i_axes = [_ax("C", c), _ax("D", d)] if trans_a else [_ax("D", d), _ax("C", c)]
    w_axes = [_ax("K", k), _ax("C", c)] if trans_b else [_ax("C", c), _ax("K", k)]
    dims = [("D", d, PAR), ("C", c, RED), ("K", k, PAR)]
    inputs = [ctx.operand("I", a, i_axes), ctx.operand("W", b, w_axes)]
    attrs = [("bias", True)] if len(node.input) > 2 and node.input[2] else []
    return ctx.layer(node, name, dims, [_ax("D", d), _ax("K", k)], inputs, attrs)


def _batch_names(n: int) -> list[str]:
    named = {0: [], 1: ["B"], 2: ["B", "H"]}
    return named.get(n) or [f"B{i}" for i in range(n - 2)] + ["B", "H"]


def _matmul(ctx: _Context, node, name) -> Layer:
    """O[b][h][d][k] += I[b][h][d][c] * W[b][h][c][k], numpy matmul broadcasting."""
    a, b = node.input[0], node.input[1]
    sa, sb = ctx.shape(a), ctx.shape(b)
    vec_a, vec_b = len(sa) == 1, len(sb) == 1  # 1-D operands have no D (resp. K) axis
    ma = (1, *sa) if vec_a else sa
    mb = (*sb, 1) if vec_b else sb
    batch_a, batch_b = ma[:-2], mb[:-2]
    nb = max(len(batch_a), len(batch_b))
    pad_a, pad_b = (1,) * (nb - len(batch_a)) + batch_a, (1,) * (nb - len(batch_b)) + batch_b
    batch = tuple(max(p, q) for p, q in zip(pad_a, pad_b))
    names = _batch_names(nb)
    d, c, k = ma[-2], ma[-1], mb[-1]
    dims = [(n, s, PAR) for n, s in zip(names, batch)]
    dims += ([] if vec_a else [("D", d, PAR)]) + [("C", c, RED)] + ([] if vec_b else [("K", k, PAR)])
    i_axes = _broadcast_axes(batch_a, names, batch) + ([] if vec_a else [_ax("D", d)]) + [_ax("C", c)]
    w_axes = _broadcast_axes(batch_b, names, batch) + [_ax("C", c)] + ([] if vec_b else [_ax("K", k)])
    o_axes = [_ax(n, s) for n, s in zip(names, batch)]
    o_axes += ([] if vec_a else [_ax("D", d)]) + ([] if vec_b else [_ax("K", k)])
    inputs = [ctx.operand("I", a, i_axes), ctx.operand("W", b, w_axes)]
    return ctx.layer(node, name, dims, o_axes, inputs)


def _pool(ctx: _Context, node, name) -> Layer:
    """O[b][c][oy][ox] over the window I[b][c][s*oy+d*fy-p][...] (max or average)."""
    x, y = node.input[0], node.output[0]
    xs, ys = ctx.shape(x), ctx.shape(y)
    kernel = list(_attr(node, "kernel_shape", []))
    if len(xs) < 3 or len(kernel) != len(xs) - 2:
        raise _Unsupported
    win_axes, out_dims, win_dims = _window_axes(node, ctx, x, y, kernel)
    dims = [("B", xs[0], PAR), ("C", xs[1], PAR)] + out_dims + win_dims
    i_axes = [_ax("B", xs[0]), _ax("C", xs[1]), *win_axes]
    o_axes = [_ax("B", ys[0]), _ax("C", ys[1])] + [_ax(d, n) for d, n, _ in out_dims]
    # the field's 2-D pooling: (b, k, oy, ox, fy, fx); its classic files call the channels K
    order = ["B", "C", "OY", "OX", "FY", "FX"] if len(xs) == 4 else None
    return ctx.layer(node, name, dims, o_axes, [ctx.operand("I", x, i_axes)], field_order=order, names=[("K", "C")])


def _global_pool(ctx: _Context, node, name) -> Layer:
    """O[b][c][0][0] over all of I[b][c][fy][fx]; the output keeps size-1 spatial axes."""
    x = node.input[0]
    xs = ctx.shape(x)
    if len(xs) < 3:
        raise _Unsupported
    win = [(f"F{s}", xs[2 + i], RED) for i, s in enumerate(_spatial(len(xs) - 2))]
    dims = [("B", xs[0], PAR), ("C", xs[1], PAR)] + win
    i_axes = [_ax("B", xs[0]), _ax("C", xs[1])] + [_ax(d, n) for d, n, _ in win]
    o_axes = [_ax("B", xs[0]), _ax("C", xs[1])] + [ONE] * len(win)
    return ctx.layer(node, name, dims, o_axes, [ctx.operand("I", x, i_axes)], names=[("K", "C")])


def _elementwise(ctx: _Context, node, name, attrs=()) -> Layer:
    """O[...] = f(I[...], W[...], ...): all dims parallel, inputs broadcast numpy-style.

    Unary ops use their first input only (Clip bounds, Dropout ratio are not data).
    """
    y = node.output[0]
    ys = ctx.shape(y)
    names = _elementwise_names(len(ys))
    data = node.input[:1] if node.op_type in UNARY_OPS else node.input
    inputs = []
    for i, tensor in enumerate(t for t in data if t):
        op_name = ("I", "W")[i] if i < 2 else f"W{i}"
        inputs.append(ctx.operand(op_name, tensor, _broadcast_axes(ctx.shape(tensor), names, ys)))
    dims = [(n, s, PAR) for n, s in zip(names, ys)]
    return ctx.layer(node, name, dims, [_ax(n, s) for n, s in zip(names, ys)], inputs, attrs,
                     names=_classic_elementwise_names(names))


def _check_scan_arity(ctx: _Context, node, name) -> None:
    """SelectiveScan takes two inputs (none omitted) and gives one output."""
    for key, tensors, count in (("input", list(node.input), 2), ("output", list(node.output), 1)):
        if len(tensors) != count or not all(tensors):
            raise InputError(ctx.file, f"graph.node {name}.{key}", SELECTIVE_SCAN_FORM, tensors)


def _scan_names(rank: int, axis: int) -> list[str]:
    """``L`` for the sequential axis; ``B`` (``B0``, ``B1``, ...) before it, ``D``, ``N``
    (``S0``, ``S1``, ... if more) after it: ``(B, L, D, N)`` for Mamba's layout."""
    before, after = axis, rank - axis - 1
    lead = ["B"] if before == 1 else [f"B{i}" for i in range(before)]
    trail = {0: [], 1: ["D"], 2: ["D", "N"]}.get(after) or [f"S{i}" for i in range(after)]
    return lead + ["L"] + trail


def _selective_scan(ctx: _Context, node, name) -> Layer:
    """stream::SelectiveScan: h[l] = dA[l] * h[l-1] + dBx[l] along ``axis`` (sequential)."""
    _check_scan_arity(ctx, node, name)
    da, dbx, h = node.input[0], node.input[1], node.output[0]
    sa, sb = ctx.shape(da), ctx.shape(dbx)
    if sa != sb or len(sa) < 2:
        raise InputError(ctx.file, f"graph.node {name}.input", SELECTIVE_SCAN_FORM,
                         f"{da} {list(sa)} and {dbx} {list(sb)}")
    axis = _attr(node, "axis", 1)
    if not isinstance(axis, int) or not -len(sa) <= axis < len(sa):
        raise InputError(ctx.file, f"graph.node {name}.axis", f"an int axis in [{-len(sa)}, {len(sa)})", axis)
    axis = _normalise_axis(axis, len(sa))
    hs = ctx.shape(h)
    if hs != sa:  # inference gives h dA's shape; a value_info may say otherwise
        raise InputError(ctx.file, f"graph.node {name}.output", f"h of the inputs' shape {list(sa)}", list(hs))
    names = _scan_names(len(sa), axis)
    dims = [(n, s, DimKind.SEQUENTIAL if i == axis else PAR) for i, (n, s) in enumerate(zip(names, sa))]
    axes = [_ax(n, s) for n, s in zip(names, sa)]
    inputs = [ctx.operand("I", da, axes), ctx.operand("W", dbx, axes)]
    return ctx.layer(node, name, dims, axes, inputs)


def _softmax(ctx: _Context, node, name) -> Layer:
    """Elementwise over the output dims; the normalised axis is recorded in attrs."""
    rank = len(ctx.shape(node.output[0]))
    axis = _normalise_axis(_attr(node, "axis", 1 if ctx.opset < 13 else -1), rank)
    return _elementwise(ctx, node, name, attrs=[("axis", _elementwise_names(rank)[axis])])


def _layer_norm(ctx: _Context, node, name) -> Layer:
    """O = norm(I) * W, W the scale over the normalised (trailing) axes."""
    x, y = node.input[0], node.output[0]
    ys = ctx.shape(y)
    names = _elementwise_names(len(ys))
    axis = _normalise_axis(_attr(node, "axis", -1), len(ys))
    inputs = [ctx.operand("I", x, _broadcast_axes(ctx.shape(x), names, ys))]
    if len(node.input) > 1 and node.input[1]:
        scale = node.input[1]
        inputs.append(ctx.operand("W", scale, _broadcast_axes(ctx.shape(scale), names, ys)))
    attrs = [("axis", names[axis])]
    if len(node.input) > 2 and node.input[2]:
        attrs.append(("bias", True))
    dims = [(n, s, PAR) for n, s in zip(names, ys)]
    return ctx.layer(node, name, dims, [_ax(n, s) for n, s in zip(names, ys)], inputs, attrs,
                     names=_classic_elementwise_names(names))


def _batch_norm(ctx: _Context, node, name) -> Layer:
    """Inference batch norm folds to O = I * W, W the per-channel scale (axis 1)."""
    x, scale, y = node.input[0], node.input[1], node.output[0]
    if len(ctx.shape(x)) < 2:  # no channel axis
        raise _Unsupported
    ys = ctx.shape(y)
    names = _elementwise_names(len(ys))
    inputs = [
        ctx.operand("I", x, _broadcast_axes(ctx.shape(x), names, ys)),
        ctx.operand("W", scale, [_ax(names[1], ys[1])]),
    ]
    dims = [(n, s, PAR) for n, s in zip(names, ys)]
    return ctx.layer(node, name, dims, [_ax(n, s) for n, s in zip(names, ys)], inputs)


def _reduce(ctx: _Context, node, name) -> Layer:
    """Reduced axes become REDUCTION dims R0, R1, ...; the others keep elementwise names."""
    x = node.input[0]
    xs = ctx.shape(x)
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = ctx.const_value(node.input[1], node)
    if not axes:
        if _attr(node, "noop_with_empty_axes", 0):
            axes = []
        else:
            axes = range(len(xs))
    axes = sorted({_normalise_axis(int(a), len(xs)) for a in axes})
    keep = _attr(node, "keepdims", 1)
    names = list(_elementwise_names(len(xs)))
    for r, a in enumerate(axes):
        names[a] = f"R{r}"
    dims = [(n, s, RED if i in axes else PAR) for i, (n, s) in enumerate(zip(names, xs))]
    i_axes = [_ax(n, s) for n, s in zip(names, xs)]
    o_axes = [(ONE if keep else None) if i in axes else _ax(n, s) for i, (n, s) in enumerate(zip(names, xs))]
    return ctx.layer(node, name, dims, [a for a in o_axes if a is not None],
                     [ctx.operand("I", x, i_axes)])


def _gather(ctx: _Context, node, name) -> Layer | None:
    """Gather, GatherElements, GatherND: a lookup layer over the output's elements that
    reads, per element, its index and the one element of the data it selects (an
    embedding reads only the rows of the table its ids pick). Which elements of a layer's
    output those are is known only at run time, so the lookup depends on all of it
    (:class:`Gathered`). Gather by constant indices in a progression (the dynamo exporter's
    select of q, k, v) is a Slice view instead, no layer."""
    data, indices, y = node.input[0], node.input[1], node.output[0]
    xs, ys = ctx.shape(data), ctx.shape(y)
    if node.op_type == "Gather" and all(p.kind == "const" for p in ctx.origins[indices]):
        axis = _normalise_axis(_attr(node, "axis", 0), len(xs))
        try:
            values = ctx.const_value(indices, node)
        except InputError:  # a constant stored elsewhere (weights stripped): indices unknown
            values = None
        picked = _progression([int(v) % xs[axis] for v in values]) if values is not None else None
        if picked is not None:
            start, stop, step = picked
            sliced = tuple(len(range(start, stop, step)) if i == axis else n for i, n in enumerate(xs))
            ctx.alias(y, data, Slice(axis, start, stop, step), *([Reshape(sliced, ys)] if sliced != ys else []))
            return None
    names = _elementwise_names(len(ys))
    out_axes = [_ax(n, s) for n, s in zip(names, ys)]
    index = ctx.operand("I", indices, _index_axes(ctx, node, out_axes))
    selected = ctx.operand("W", data, out_axes)
    selected = dataclasses.replace(selected, tensor="", sources=tuple(
        Source(s.layer, s.views + (Gathered(tuple(ys)),)) for s in selected.sources))
    dims = [(n, s, PAR) for n, s in zip(names, ys)]
    return ctx.layer(node, name, dims, out_axes, [index, selected])


def _index_axes(ctx: _Context, node, out_axes: list[AxisExpr]) -> list[AxisExpr]:
    """The output axes an index tensor's axes run along. GatherND's last index axis holds
    the coordinates of one element; only its first is counted (a few bytes)."""
    shape = ctx.shape(node.input[1])
    if node.op_type == "GatherElements":
        return out_axes
    if node.op_type == "GatherND":
        return out_axes[:len(shape) - 1] + [AxisExpr((), shape[-1])]
    axis = _normalise_axis(_attr(node, "axis", 0), len(ctx.shape(node.input[0])))
    return out_axes[axis:axis + len(shape)]


def _progression(values: list[int]) -> tuple[int, int, int] | None:
    """(start, stop, step > 0) of an increasing arithmetic progression, else None."""
    if not values:
        return None
    step = values[1] - values[0] if len(values) > 1 else 1
    if step <= 0 or any(b - a != step for a, b in zip(values, values[1:])):
        return None
    return values[0], values[-1] + 1, step


LAYER_OPS: dict[str, Callable[[_Context, onnx.NodeProto, str], Layer | None]] = {
    "Gather": _gather,
    "GatherElements": _gather,
    "GatherND": _gather,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Resize": _resize,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "LayerNormalization": _layer_norm,
    "RMSNormalization": _layer_norm,
    "SimplifiedLayerNormalization": _layer_norm,
    "BatchNormalization": _batch_norm,
    "SelectiveScan": _selective_scan,
    **{op: _reduce for op in (
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
        "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp",
    )},
    **{op: _elementwise for op in UNARY_OPS | BINARY_OPS},
}


# -- view translators (no layer) ------------------------------------------------------


def _view_reshape(ctx: _Context, node) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze: a row-major reinterpretation."""
    x, y = node.input[0], node.output[0]
    sx, sy = ctx.shape(x), ctx.shape(y)
    ctx.alias(y, x, *([Reshape(sx, sy)] if sx != sy else []))


def _view_expand(ctx: _Context, node) -> None:
    """Expand: size-1 axes repeated (numpy broadcasting, leading axes added first); one
    that copies nothing is a reshape."""
    x, y = node.input[0], node.output[0]
    sx, sy = ctx.shape(x), ctx.shape(y)
    if math.prod(sx) == math.prod(sy):
        _view_reshape(ctx, node)
        return
    aligned = (1,) * (len(sy) - len(sx)) + tuple(sx)
    if len(aligned) != len(sy) or any(a not in (1, b) for a, b in zip(aligned, sy)):
        raise _Unsupported
    views = [Reshape(tuple(sx), aligned)] if aligned != tuple(sx) else []
    views += [Broadcast(i, b) for i, (a, b) in enumerate(zip(aligned, sy)) if a != b]
    ctx.alias(y, x, *views)


def _view_identity(ctx: _Context, node) -> None:
    ctx.alias(node.output[0], node.input[0])


def _view_transpose(ctx: _Context, node) -> None:
    x = node.input[0]
    rank = len(ctx.shape(x))
    perm = tuple(_attr(node, "perm", list(range(rank))[::-1]))
    ctx.alias(node.output[0], x, *([Transpose(perm)] if perm != tuple(range(rank)) else []))


def _view_slice(ctx: _Context, node) -> None:
    """One Slice view per sliced axis, bounds clamped as ONNX (and Python) do."""
    x = node.input[0]
    xs = ctx.shape(x)
    if ctx.opset < 10:
        starts, ends = _attr(node, "starts"), _attr(node, "ends")
        axes, steps = _attr(node, "axes"), None
    else:
        arg = lambda i: ctx.const_value(node.input[i], node) if len(node.input) > i and node.input[i] else None
        starts, ends, axes, steps = arg(1), arg(2), arg(3), arg(4)
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    views = []
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _normalise_axis(int(axis), len(xs))
        lo, hi, st = slice(int(start), int(end), int(step)).indices(xs[axis])
        if (lo, hi, st) != (0, xs[axis], 1):
            views.append(Slice(axis, lo, hi, st))
    ctx.alias(node.output[0], x, *views)


def _view_split(ctx: _Context, node) -> None:
    """Each output is a Slice of the input along ``axis``; sizes from the output shapes."""
    x = node.input[0]
    axis = _normalise_axis(_attr(node, "axis", 0), len(ctx.shape(x)))
    offset = 0
    for y in node.output:
        n = ctx.shape(y)[axis]
        if y:
            ctx.alias(y, x, Slice(axis, offset, offset + n, 1))
        offset += n


def _view_concat(ctx: _Context, node) -> None:
    """One part per input, each placed at its offset along ``axis`` of the output."""
    y = node.output[0]
    ys = ctx.shape(y)
    axis = _normalise_axis(_attr(node, "axis"), len(ys))
    parts, offset = [], 0
    for x in node.input:
        if not x:
            continue
        place = Place(axis, offset, ys[axis])
        parts += [_Part(p.kind, p.layer, p.views + (place,), p.tensor) for p in ctx.origins[x]]
        offset += ctx.shape(x)[axis]
    ctx.origins[y] = tuple(parts)


def _view_depth_to_space(ctx: _Context, node) -> None:
    """DepthToSpace (a pixel shuffle) and SpaceToDepth: a reshape, a transpose and a reshape
    (the operators' own definitions, DCR and CRD modes)."""
    x, y = node.input[0], node.output[0]
    sx, sy = ctx.shape(x), ctx.shape(y)
    if len(sx) != 4:
        raise _Unsupported
    bs = int(_attr(node, "blocksize"))
    n, c, h, w = sx
    if node.op_type == "SpaceToDepth":
        split, perm = (n, c, h // bs, bs, w // bs, bs), (0, 3, 5, 1, 2, 4)
    elif _attr(node, "mode", "DCR") == "CRD":
        split, perm = (n, c // (bs * bs), bs, bs, h, w), (0, 1, 4, 2, 5, 3)
    else:
        split, perm = (n, bs, bs, c // (bs * bs), h, w), (0, 3, 4, 1, 5, 2)
    moved = tuple(split[i] for i in perm)
    ctx.alias(y, x, Reshape(sx, split), Transpose(perm), Reshape(moved, sy))


VIEW_OPS: dict[str, Callable[[_Context, onnx.NodeProto], None]] = {
    "DepthToSpace": _view_depth_to_space,
    "SpaceToDepth": _view_depth_to_space,
    "Reshape": _view_reshape,
    "Flatten": _view_reshape,
    "Squeeze": _view_reshape,
    "Unsqueeze": _view_reshape,
    "Expand": _view_expand,
    "Identity": _view_identity,
    "Transpose": _view_transpose,
    "Slice": _view_slice,
    "Split": _view_split,
    "Concat": _view_concat,
}
