"""Per-core cost of a compute node (CN): latency and energy inside one core.

``CostModel(accelerator, model=, objective=, cache_dir=).table(cngraph)`` gives a
:class:`CostTable`; ``table.get(cn, core_id) -> CNCost``. Two models:

* ``zigzag``: per unique (tile, core), the best mapping :func:`stream.cost.search.search`
  finds for ``objective`` (energy, latency or EDP), costed with ZigZag's equations
  (:mod:`stream.cost.zigzag_model`). Where no mapping fits the core's memories, or
  ZigZag's equations do not describe the layer (more than the two inputs its operands I
  and W hold, as a Where; an output axis summing two loop dims, as a grouped or a
  transposed conv), that entry falls back to the roofline (``CNCost.model`` says which). A layer rule's
  ``temporal_ordering`` pins the loop order the search may use.
* ``roofline``: compute cycles (with a fixed ``dataflows`` unrolling, the product over
  loop dims of ``ceil(span / unroll)``; without, ``ceil(MACs / units)``) against memory
  cycles (every operand crosses the core's top memory once: inputs read at its read
  bandwidth, the final output written at its write bandwidth); energy = MACs x
  ``unit_energy`` plus those top-memory accesses, priced per ZigZag's port rule.

**The core boundary.** A CN's cost covers what happens *inside* its core, from the core's
top memory down: the simulator moves every tensor into and out of that top memory (over
links, buses and the DRAM port) and prices those transfers itself, so nothing is counted
twice. Hence, in ZigZag's terms (the "simulator mode"):

* ``latency_cycles`` = ZigZag's ``latency_total2`` = temporal cycles + stall/slack
  (``SS_comb``) + on-loading + off-loading: the fill of the core's hierarchy *below* its
  top memory before compute (the array's registers and lower buffers loaded from the top
  memory: on a weight-stationary array, loading the array for every CN) and the drain of
  the last outputs back up to it; both are also kept in ``onload_cycles``/``offload_cycles``
  (our arrays have no systolic dims, so no drain term);
* ``onchip_energy_pj`` = ZigZag's memory energy: every level's reads and writes, including
  the top memory's reads towards the array and output writes from it, but not the writes
  that bring data into the top memory or the reads that take final outputs out (ZigZag has
  none either: its top level's ``fh``/``th`` are zero);
* ``mac_energy_pj`` = MACs (element operations) x ``unit_energy``.

**Operator costs.** A core may price element operations per operator type
(``Core.operator_costs``, cycles and multiples of ``unit_energy`` per element operation
per lane, default 1): the compute cycles and the MAC energy are multiplied by it; the
latency is then ``max(factor x temporal cycles, ZigZag's latency)`` (the roofline:
``max(factor x compute, memory)``).

**Canonical keys.** Entries are shared by every (tile, core) pair with the same key:

* the layer: op type; dims relabelled ``d0, d1, ...`` in order of first appearance in the
  equation (output axes, then each input's, terms within an axis in label order; dims no
  operand uses last), with their tile spans and kinds; per operand its name (the search
  links ``W``/``I``/``O`` to memory operands by name), role, precisions and axes as
  ``(label, coefficient)`` terms; an axis's extent only where it clips the tile's
  footprint (ZigZag clips to the real input size); attributes, with dim names relabelled;
* per dim, the names by which the core's ``dataflows`` refer to it (names or aliases), as
  the fixed spatial unrolling picks dims by name;
* the core signature: a hash of the core's array, memories, ports, dataflows and operator
  costs (not its id, name or operator list), so identical cores share entries;
* the objective, and a pinned temporal ordering if any. The model and its version (for the zigzag model, a hash of the search
  and model sources) name the disk cache entries (:mod:`stream.cost.cache`).

The search sees the tile's dims in canonical order, so layers that differ only in dim names
and order get the same mapping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.cost.cache import DiskCache, default_cache_dir, digest
from stream.cost.mapping import SpatialMapping, TemporalMapping
from stream.cost.search import NoValidMapping, layer_dataflows, search
from stream.cost.zigzag_model import NotZigZag
from stream.hardware.ir import Accelerator, Core
from stream.progress import Every
from stream.workload.ir import AxisExpr, Layer

MODELS = ("zigzag", "roofline")
OBJECTIVES = ("energy", "latency", "edp")
# what the per-core mapping search minimises unless told: measured over the bundled and the
# field's cases (docs/mapping-objective.md), EDP is never worse in EDP than energy and costs
# at most 0.6% energy; latency costs up to 26% energy for under 1% latency
DEFAULT_OBJECTIVE = "edp"
TABLE_VERSION = 3  # bump when the key or the value format below changes
_LINKS = {"O": "O", "W": "I2", "I": "I1"}  # the search's default operand -> memory operand links


@dataclass(frozen=True)
class CNCost:
    """A CN's cost on one core. Cycles are whole cycles, energies pJ.

    ``compute_cycles``: the temporal cycles (ZigZag) or compute-bound cycles (roofline),
    times the operator cost; ``memory_cycles``: the stall cycles on top of them (ZigZag) or
    the top-memory transfer cycles (roofline). ``operand_energy_pj``: per layer operand,
    per memory level bottom-up, ``(memory name, pJ)``; it sums to ``onchip_energy_pj``.
    ``spatial``/``temporal``: the mapping chosen (zigzag model), in the layer's dim names.
    """

    latency_cycles: int
    compute_cycles: int
    memory_cycles: int
    mac_energy_pj: float
    onchip_energy_pj: float
    operand_energy_pj: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    onload_cycles: float = 0.0
    offload_cycles: float = 0.0
    spatial_utilization: float = 1.0
    model: str = "roofline"  # "zigzag", "roofline", or "roofline (why the zigzag model did not apply)"
    spatial: SpatialMapping | None = None
    temporal: TemporalMapping | None = None
    evaluated: int = 0  # mappings the search costed

    @property
    def energy_pj(self) -> float:
        return self.mac_energy_pj + self.onchip_energy_pj


class CostTable:
    """Costs per CN and core; look up with :meth:`get`.

    ``hits``/``misses`` count lookups of distinct (layer, tile shape, core) triples: a hit
    was answered by the model's store (an entry another layer or an earlier table already
    needed, or the disk cache), a miss ran the cost model. ``len(table)`` is the number of
    distinct canonical entries this table used.
    """

    def __init__(self, model: "CostModel", cngraph):
        self._model = model
        self._cngraph = cngraph
        self._memo: dict[tuple, CNCost] = {}
        self._layers: dict[int, _LayerInfo] = {}
        self._keys: set[str] = set()
        self._spans = cngraph.stops - cngraph.starts
        self.hits = 0
        self.misses = 0

    def get(self, cn: int, core_id: int) -> CNCost:
        g = self._cngraph
        layer_index = int(g.layer[cn])
        n = len(g.workload.layers[layer_index].dims)
        spans = tuple(self._spans[cn, :n].tolist())
        partial = not g.completes[cn]
        cost = self._memo.get((layer_index, partial, spans, core_id))
        if cost is None:
            cost = self._lookup(layer_index, partial, spans, core_id)
        return cost

    def fill(self, progress=None) -> "CostTable":
        """Cost every distinct (tile shape, candidate core) of the graph now; ``progress``, if
        given, hears every few seconds how far it is."""
        g = self._cngraph
        report = Every(progress)
        for layer_index, layer in enumerate(g.workload.layers):
            report("costing: layer {} of {} ({}), {} distinct tiles so far", layer_index + 1,
                   len(g.workload.layers), layer.name, len(self))
            cns = g.layer_cns(layer_index)
            if not len(cns):
                continue
            rows = self._spans[cns.start:cns.stop, : len(layer.dims)]
            partial = (~g.completes[cns.start:cns.stop]).astype(np.int64)
            plan = g.plans[layer.name]
            if plan.pinned is None:
                for row in _unique_rows(np.column_stack([rows, partial]))[0].tolist():
                    for core_id in plan.candidates:
                        self._cached(layer_index, bool(row[-1]), tuple(row[:-1]), core_id)
            else:
                cores = np.asarray(plan.pinned, dtype=np.int64)[g.piece[cns.start:cns.stop]]
                for row in _unique_rows(np.column_stack([rows, partial, cores]))[0].tolist():
                    self._cached(layer_index, bool(row[-2]), tuple(row[:-2]), int(row[-1]))
        return self

    def arrays(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latency (cycles), MAC and on-chip energy (pJ) of every CN on ``cores[cn]``, as arrays:
        :meth:`get` once per distinct (layer, tile shape, core), not once per CN."""
        g = self._cngraph
        latency = np.zeros(g.num_cns, dtype=np.int64)
        mac, onchip = np.zeros(g.num_cns), np.zeros(g.num_cns)
        for layer_index, layer in enumerate(g.workload.layers):
            cns = g.layer_cns(layer_index)
            if not len(cns):
                continue
            rows = np.column_stack([self._spans[cns.start:cns.stop, : len(layer.dims)],
                                    ~g.completes[cns.start:cns.stop], cores[cns.start:cns.stop]])
            unique, inverse = _unique_rows(rows)
            costs = [self._cached(layer_index, bool(row[-2]), tuple(row[:-2]), int(row[-1]))
                     for row in unique.tolist()]
            latency[cns] = np.array([c.latency_cycles for c in costs], dtype=np.int64)[inverse]
            mac[cns] = np.array([c.mac_energy_pj for c in costs])[inverse]
            onchip[cns] = np.array([c.onchip_energy_pj for c in costs])[inverse]
        return latency, mac, onchip

    def save(self) -> int:
        """Write new entries to the disk cache (if any); the number written."""
        return self._model.save()

    def __len__(self) -> int:
        return len(self._keys)

    def values(self) -> list[CNCost]:
        """The costs looked up so far, one per distinct (layer, tile shape, core)."""
        return list(self._memo.values())

    def _cached(self, layer_index: int, partial: bool, spans: tuple, core_id: int) -> CNCost:
        cost = self._memo.get((layer_index, partial, spans, core_id))
        return self._lookup(layer_index, partial, spans, core_id) if cost is None else cost

    def _lookup(self, layer_index: int, partial: bool, spans: tuple, core_id: int) -> CNCost:
        info = self._layers.get((layer_index, partial))
        if info is None:
            layer = self._cngraph.workload.layers[layer_index]
            ordering = self._cngraph.plans[layer.name].temporal_ordering
            if partial:  # a tile that does not finish its sums leaves partial sums in the top memory
                out = layer.output
                out = dataclasses.replace(out, precision=out.partial_precision or out.precision)
                layer = dataclasses.replace(layer, operands=(out,) + layer.inputs)
            info = self._layers[(layer_index, partial)] = _LayerInfo(layer, ordering)
        key, cost, hit = self._model._entry(info, spans, self._model.accelerator.core(core_id))
        self._keys.add(key)
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        self._memo[(layer_index, partial, spans, core_id)] = cost
        return cost


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a non-negative int matrix and each row's index among them (as
    ``np.unique(axis=0)``, which sorts rows as bytes and is slow on a million of them)."""
    try:
        keys = np.ravel_multi_index(rows.T, rows.max(axis=0) + 1)
    except ValueError:  # the rows do not fit one int64 key
        unique, inverse = np.unique(rows, axis=0, return_inverse=True)
        return unique, inverse.reshape(-1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first], inverse.reshape(-1)


class CostModel:
    """Costs of layer tiles on the cores of ``accelerator``.

    ``model``: ``"zigzag"`` or ``"roofline"``; ``objective``: what the mapping search
    minimises (``"energy"``, ``"latency"`` or ``"edp"``). ``cache_dir``: where the disk cache
    lives (:mod:`stream.cost.cache`); ``None`` means ``$STREAM_CACHE_DIR`` or
    ``~/.cache/stream`` for the zigzag model and no disk cache for the roofline (computing
    it is cheaper than reading it); ``False`` keeps entries in memory only.
    """

    def __init__(self, accelerator: Accelerator, model: str = "zigzag", objective: str = DEFAULT_OBJECTIVE,
                 cache_dir=None):
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.accelerator = accelerator
        self.model = model
        self.objective = objective
        self._search = _load_search() if model == "zigzag" else None
        self.version = _model_version(model)
        self._cores = {c.id: c for c in accelerator.cores}
        self._signatures = {c.id: core_signature(c) for c in accelerator.cores}
        self._store: dict[str, dict] = {}  # key text -> entry value (JSON-able)
        self._costs: dict[tuple[str, tuple], CNCost] = {}  # (key, layer names) -> CNCost
        self.hits = 0
        self.misses = 0
        if cache_dir is None and model == "zigzag":
            cache_dir = default_cache_dir()
        self.disk = DiskCache(cache_dir, hardware_signature(accelerator)) if cache_dir not in (None, False) else None

    def table(self, cngraph, fill: bool = True, progress=None) -> CostTable:
        """A cost table for ``cngraph``; with ``fill``, every distinct (tile shape, candidate
        core) is costed now (``progress`` hears how far) and new entries are saved to the disk
        cache."""
        table = CostTable(self, cngraph)
        if fill:
            table.fill(progress)
            self.save()
        return table

    def save(self) -> int:
        """Write the entries computed since the last save to the disk cache; the number written."""
        return self.disk.save() if self.disk is not None else 0

    def cost(self, layer: Layer, box, core: Core) -> CNCost:
        """The cost of ``layer`` over the loop box ``box`` (dim -> (start, stop)) on ``core``."""
        spans = tuple(box[d][1] - box[d][0] for d in layer.dims)
        return self._entry(_LayerInfo(layer), spans, core)[1]

    # -- entries -----------------------------------------------------------------------
    def _entry(self, info: "_LayerInfo", spans: tuple, core: Core) -> tuple[str, CNCost, bool]:
        own = self._cores.get(core.id) is core
        signature = self._signatures[core.id] if own else core_signature(core)
        key = info.key(spans, core, signature, self.objective)
        cached = self._costs.get((key, info.names))
        if cached is not None:
            self.hits += 1
            return key, cached, True
        value, hit = self._store.get(key), True
        if value is None and self.disk is not None:
            value = self.disk.get(self.version, key)
        if value is not None:
            try:
                cost = info.cost(value)
            except (KeyError, TypeError, ValueError, IndexError):  # a malformed disk entry: recompute
                value = None
        if value is None:
            hit = False
            value = self._compute(info, spans, core)
            cost = info.cost(value)
            if self.disk is not None:
                self.disk.put(self.version, key, value)
        self._store[key] = value
        self._costs[(key, info.names)] = cost
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        return key, cost, hit

    def _compute(self, info: "_LayerInfo", spans: tuple, core: Core) -> dict:
        layer = info.layer
        factor = float(dict(core.operator_costs).get(layer.op_type, 1.0))
        if self._search is None:
            return _roofline(info, spans, core, factor, "roofline")
        search, no_fit = self._search
        if len(layer.inputs) > 2:
            return _roofline(info, spans, core, factor, "roofline (more than two inputs)")
        tile = dataclasses.replace(layer, sizes=spans)
        sizes = {layer.dims[k]: spans[k] for k in info.order}  # canonical order
        try:
            result = search(core, tile, sizes, objective=self.objective, seed=0, ordering=info.ordering or None)
        except no_fit:
            return _roofline(info, spans, core, factor, "roofline (no mapping fits)")
        except NotZigZag as why:  # a grouped conv's or a transposed conv's output, say
            return _roofline(info, spans, core, factor, f"roofline ({why})")
        return _zigzag(info, result, core, factor)


# -- the two models, as JSON-able entry values --------------------------------------------


def _zigzag(info: "_LayerInfo", result, core: Core, factor: float) -> dict:
    c = result.cost
    temporal = c.ideal_temporal_cycle
    compute = _ceil(temporal * factor)
    latency = max(compute, _ceil(c.latency_total2), 1)
    operands = []
    for op in info.layer.operands:
        energies = c.memory_energy.get(op.name)
        if energies is None:
            continue
        link = _LINKS.get(op.name)
        names = [m.name for m in core.memories if link in m.operands]
        if len(names) != len(energies):
            names = [f"L{i}" for i in range(len(energies))]
        operands.append([op.name, [[n, float(e)] for n, e in zip(names, energies)]])
    label = info.labels
    return {
        "model": "zigzag",
        "latency": latency,
        "compute": compute,
        "memory": max(0, _ceil(c.latency_total2 - temporal)),
        "mac": float(c.mac_energy) * factor,
        "onchip": float(sum(e for _, levels in operands for _, e in levels)),
        "operands": operands,
        "onload": float(c.onloading),
        "offload": float(c.offloading),
        "utilization": float(c.spatial_utilization),
        "evaluated": int(result.evaluated),
        "spatial": [[adim, [[label[d], f] for d, f in entries]] for adim, entries in result.spatial.unrolling],
        "temporal": [[op, [[[label[d], int(n)] for d, n in level] for level in levels]]
                     for op, levels in result.temporal.levels],
    }


def _roofline(info: "_LayerInfo", spans: tuple, core: Core, factor: float, name: str) -> dict:
    layer = info.layer
    box = {d: (0, n) for d, n in zip(layer.dims, spans)}
    macs = math.prod(spans)
    compute = _ceil(_compute_cycles(layer, dict(zip(layer.dims, spans)), macs, core) * factor)
    top = core.top_memory
    operands = []
    in_bits = 0
    for op in layer.inputs:
        bits = layer.footprint_bits(op.name, box)
        in_bits += bits
        operands.append([op.name, [[top.name, top.access_energy(bits, write=False)]]])
    out_bits = layer.footprint_bits(layer.output.name, box)
    operands.insert(0, [layer.output.name, [[top.name, top.access_energy(out_bits, write=True)]]])
    memory = max(_cycles(in_bits, top.read_bw), _cycles(out_bits, top.write_bw))
    onchip = top.access_energy(in_bits, write=False) + top.access_energy(out_bits, write=True)
    return {
        "model": name,
        "latency": max(compute, memory, 1),
        "compute": compute,
        "memory": memory,
        "mac": macs * core.array.unit_energy * factor,
        "onchip": onchip,
        "operands": operands,
        "utilization": macs / (compute * core.array.units) if compute and core.array.units else 1.0,
    }


def _compute_cycles(layer: Layer, spans: dict[str, int], macs: int, core: Core) -> int:
    if not core.dataflows:
        return -(-macs // max(core.array.units, 1))
    unroll: dict[str, int] = {}
    for _array_dim, entries in layer_dataflows(core, layer):
        for dim, factor in entries:
            unroll[dim] = unroll.get(dim, 1) * factor
    return math.prod(-(-n // min(unroll.get(d, 1), n)) for d, n in spans.items())


def _cycles(bits: float, bandwidth: float) -> int:
    if bits <= 0:
        return 0
    if bandwidth <= 0:
        raise ValueError("memory without a port in that direction")
    return math.ceil(bits / bandwidth)


def _ceil(x: float) -> int:
    """Whole cycles; float noise just above an integer does not add a cycle."""
    return math.ceil(x - 1e-9 * max(1.0, abs(x)))


# -- canonical keys ---------------------------------------------------------------------


class _LayerInfo:
    """A layer's canonical form: everything of its key that does not depend on the tile."""

    def __init__(self, layer: Layer, ordering: tuple = ()):
        self.layer = layer
        self.ordering = ordering  # a pinned temporal ordering (dim, size or None), or ()
        order: list[str] = []
        for op in layer.operands:
            for axis in op.axes:
                for dim, _ in axis.terms:
                    if dim not in order:
                        order.append(dim)
        order += [d for d in layer.dims if d not in order]
        self.order = [layer.dims.index(d) for d in order]  # canonical position -> layer dim index
        self.labels = {d: f"d{i}" for i, d in enumerate(order)}
        self.dims = {f"d{i}": d for i, d in enumerate(order)}
        self.names = tuple(order)  # the layer's dim per label: what a CNCost's mapping is told in
        label = self.labels
        self._axes = [(op, axis) for op in layer.operands for axis in op.axes]
        self._unbounded = [AxisExpr(axis.terms, 2**62) for _, axis in self._axes]
        attrs = sorted((k, label.get(v, v) if isinstance(v, str) else repr(v)) for k, v in layer.attrs)
        self.static = [
            layer.op_type,
            [layer.kinds[k].value for k in self.order],
            [[op.name, op.role.value, op.precision, op.partial_precision,
              [sorted([label[d], c] for d, c in axis.terms) for axis in op.axes]] for op in layer.operands],
            attrs,
        ]
        self._tags: dict[tuple, list] = {}

    def key(self, spans: tuple, core: Core, signature: str, objective: str) -> str:
        sizes = {d: spans[i] for i, d in enumerate(self.layer.dims)}
        clips = []
        for (_, axis), free in zip(self._axes, self._unbounded):
            clips.append(axis.extent if axis.extent < free.distinct(sizes) else None)
        tags = self._tags.get(core.dataflows)
        if tags is None:
            tags = self._tags[core.dataflows] = self._dataflow_tags(core)
        key = [f"cost-key/{TABLE_VERSION}", objective, signature, self.static,
               [spans[k] for k in self.order], clips, tags]
        if self.ordering:
            key.append([[self.labels[d], n] for d, n in self.ordering])
        return json.dumps(key, separators=(",", ":"))

    def _dataflow_tags(self, core: Core) -> list:
        """Per canonical dim, the dataflow names (dim names or aliases) that refer to it."""
        named = {dim for _, entries in core.dataflows for dim, _ in entries}
        tags = {d: [] for d in self.labels}
        for name in sorted(named):
            if self.layer.has_dim(name):
                tags[self.layer.resolve_dim(name)].append(name)
        return [tags[self.layer.dims[k]] for k in self.order]

    def cost(self, value: dict) -> CNCost:
        """A JSON-able entry value as a CNCost in this layer's dim names."""
        dim = self.dims
        spatial = temporal = None
        if value.get("spatial") is not None:
            spatial = SpatialMapping(tuple((adim, tuple((dim[d], f) for d, f in entries))
                                           for adim, entries in value["spatial"]))
        if value.get("temporal") is not None:
            temporal = TemporalMapping(tuple((op, tuple(tuple((dim[d], n) for d, n in level) for level in levels))
                                             for op, levels in value["temporal"]))
        return CNCost(
            latency_cycles=int(value["latency"]),
            compute_cycles=int(value["compute"]),
            memory_cycles=int(value["memory"]),
            mac_energy_pj=float(value["mac"]),
            onchip_energy_pj=float(value["onchip"]),
            operand_energy_pj=tuple((op, tuple((m, float(e)) for m, e in levels)) for op, levels in value["operands"]),
            onload_cycles=float(value.get("onload", 0.0)),
            offload_cycles=float(value.get("offload", 0.0)),
            spatial_utilization=float(value.get("utilization", 1.0)),
            model=str(value["model"]),
            spatial=spatial,
            temporal=temporal,
            evaluated=int(value.get("evaluated", 0)),
        )


def core_signature(core: Core) -> str:
    """A stable hash of what a core's costs depend on: array, memories and their ports,
    dataflows, operator costs. Not its id, name, source file or operator list."""
    fields = dataclasses.asdict(core)
    for name in ("id", "name", "source_file", "operator_types"):
        fields.pop(name, None)
    return digest(json.dumps(fields, sort_keys=True, separators=(",", ":")), 16)


def hardware_signature(accelerator: Accelerator) -> str:
    """A hash of the distinct signatures of the accelerator's compute cores (a cache file each)."""
    signatures = sorted({core_signature(c) for c in accelerator.cores if c.is_compute})
    return digest(json.dumps(signatures), 16)


# -- the search -------------------------------------------------------------------------


def _load_search():
    """(search, the exception it raises when no mapping fits): the seam tests replace."""
    return search, NoValidMapping


def _model_version(model: str) -> str:
    """Names the disk cache entries: the model, this table's version and, for the zigzag
    model, a hash of the search and model sources (a code change invalidates the entries)."""
    if model == "roofline":
        return f"roofline/{TABLE_VERSION}"
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("search.py", "zigzag_model.py", "mapping.py"):
        h.update(name.encode())
        h.update((here / name).read_bytes())
    return f"zigzag/{TABLE_VERSION}/{h.hexdigest()[:16]}"
