r"""Reference harness: run zigzag-dse 3.9.1's LOMA + cost model on OUR cores and layers.

Used by the cross-check tests of ``stream.cost``'s ``zigzag`` mode: for one core and one layer it
returns every mapping ZigZag evaluated, each as a plain JSON-able record, plus the one ZigZag picks.

Public functions
----------------
* ``core_to_zigzag_yaml(core) -> dict``         a stream ``Core`` as ZigZag's accelerator YAML dict.
* ``layer_to_zigzag_yaml(layer_spec) -> list``  a layer spec (format below) as ZigZag's workload.
* ``mapping_to_zigzag_yaml(core, ...) -> list`` the mapping YAML (spatial mapping from the core's dataflows).
* ``run_loma(core, layer_spec, lpf_limit=4, opt="energy") -> {"best": record, "all": [record, ...]}``.
* ``conv_spec(...)``, ``gemm_spec(...)``         small helpers that build layer specs.

Layer spec (a plain dict)::

    {"name": "conv3x3", "operator_type": "Conv",
     "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
     "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"],
     "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
     "loop_sizes": [1, 64, 64, 14, 14, 3, 3],
     "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
     # optional:
     "padding": {"IY": [1, 1], "IX": [1, 1]},   # clips the pr (input) dimension sizes
     "temporal_ordering": [["OX", 14], ...],    # forwarded to ZigZag's mapping (innermost first);
    }                                            # complete -> only that ordering (still allocated by LOMA)

The layer operands must be called ``O``, ``W`` and ``I`` (links ``O->O, W->I2, I->I1``).

Record format (one per evaluated CostModelEvaluation; ZigZag attribute names kept where they exist)
---------------------------------------------------------------------------------------------------
Operands are ZigZag's *layer* operands ``"W"``, ``"I"``, ``"O"``. "Memory level" lists are bottom-up
(index 0 = innermost memory of that operand, last = its top memory), per operand: an operand only
has the memories that store its memory operand (``mem_names`` lists them). "Arch level" lists have
one more entry: arch level 0 is the MAC array, arch level m (m >= 1) is memory level m-1.
Directions are ZigZag's ``DataDirection`` values: ``rd_out_to_low`` (tl), ``wr_in_by_low`` (fl),
``rd_out_to_high`` (th), ``wr_in_by_high`` (fh). Energies in pJ, sizes in bits unless "elem", cycles.

* ``spatial``: {array_dim: [[layer_dim, factor], ...]} as ZigZag used it for energy: the requested
  mapping clipped (see ``spatial_generated``), then made "greedy": where f does not divide N the
  factor becomes N / ceil(N/f) (a float; ZigZag gives floats here even when integral, e.g. 32.0).
  ``spatial_int``: the same with int() of that fraction; ZigZag uses it for latency.
  ``spatial_generated``: the integer mapping the spatial-mapping generator produced
  (``cme.layer.spatial_mapping``): the core's dataflow clipped to the array size, the layer size,
  the innermost memories' bandwidth (bw_max // precision, for non-irrelevant dims) and capacity.
  The systolic drain term uses it. Array dims use OUR names (see ``_dim_names``).
* ``spatial_per_level`` / ``spatial_per_level_int``: {op: [per ARCH level: [[layer_dim, factor], ...]]}
  (``SpatialMappingInternal.mapping_dict_origin``): arch level m holds the unrollings over array dims
  first served by memory level m of that operand (the last entry: dims served by none of them).
* ``unit_count``: {op: [per arch level]} = U_m, number of instances of memory level m-1 (index 0 = MACs).
  ``unit_unique``: the same restricted to relevant unrollings (instances with distinct data).
* ``temporal``: {op: [per MEMORY level: [[layer_dim, size], ...] innermost loop first]}: LOMA's allocation
  (``TemporalMapping.mapping_dic_origin``) before the stationarity merge-down.
  ``temporal_stationary``: after merge-down (``mapping_dic_stationary``; the one the cost model uses).
  ``temporal_ordering``: the LOMA loop ordering (innermost first), read off ``temporal``'s levels of O.
  ``mac_level_stationary``: {op: S_X} (``mac_level_data_stationary_cycle``).
* ``mem_names``: {op: [memory name per memory level]}; ``mem_operand``: {op: "I1"/"I2"/"O"}.
* Energy: ``energy_total``; ``mac_energy`` (= MACs * unit_energy); ``mem_energy``: {op: [pJ per memory
  level]} (ZigZag calls this ``mem_energy_breakdown``); ``mem_energy_total`` (ZigZag's scalar
  ``mem_energy``); ``mem_energy_breakdown_further``: {op: [per memory level: {direction: pJ}]}.
* ``memory_word_access``: {op: [per memory level: {direction: word accesses}]} (ints; fractional
  spatial mapping, i.e. what energy uses).
* Latency (cycles): ``ideal_cycle``, ``ideal_temporal_cycle``, ``stall_slack_comb`` (alias ``SS_comb``),
  ``data_onloading_cycle``, ``data_offloading_cycle``, ``systolic_drain_cycle``,
  ``latency_total0`` (= T + SS_comb), ``latency_total1`` (+ onloading),
  ``latency_total2`` (+ offloading + drain), ``mac_spatial_utilization`` (alias ``spatial_utilization``
  = ideal_cycle / ideal_temporal_cycle), ``mac_utilization0/1/2`` (= ideal_cycle / latency_total0/1/2).
* Footprints: ``mem_utili_individual`` / ``mem_utili_shared``: {op: [per memory level: footprint / size]}
  (shared = summed over the operands sharing the memory); ``data_bit_per_level_unrolled`` /
  ``data_elem_per_level_unrolled``: {op: [per ARCH level]} footprint of one instance (arch level m+1 is the
  footprint in memory level m; index 0 is one MAC's operand); ``effective_data_bit``: {op: [per arch
  level]} the tile slice used by the double-buffer test; ``double_buffer_true``: {op: [per arch level]}
  (index 0 is the MAC level, always False); ``psum_flag``: [per output arch level ... + False].
* ``data_movement``: {op: [per memory level: {"amount_per_period", "period", "period_count",
  "precision": {direction: value}}]} (the fractional-mapping pattern that the word accesses use).

ZigZag quirks worth knowing (3.9.1, as installed)
--------------------------------------------------
* Memory hierarchy order is the YAML dict order of ``memories``: never dump with sorted keys.
* Cerberus schema: sizes, latency and port bandwidths must be ints; port names must match
  ``^[r]?[w]?_port_\d+$`` and array dims ``^D\d$``; ``area`` is required unless CACTI is used;
  ``operand_source`` must be present in the workload (the factory indexes it).
* Layer dims are upper-cased by ZigZag (``LayerDim``); size-1 dims stay in the layer. A requested
  unrolling of a size-1 dim is clipped to 1 (e.g. ``OX, 16`` on a gemm -> ``OX, 1.0``), it is not
  dropped, so the array dim is not re-filled by the generator.
* Spatial clipping by bandwidth: e.g. simd_64's ``K, 64`` becomes ``K, 32`` (512-bit port / 16-bit O).
* ``lpf_limit`` is raised to the number of temporal loop dims (LomaEngine.update_min_lpf_factor), so
  e.g. the 3x3 conv on tpu_32x32 always has 6 LPFs (720 orderings) at lpf_limit 4, 5 or 6. Above the
  limit, the smallest two prime factors of the dim with most LPFs are merged repeatedly.
* Orderings LOMA cannot allocate (MemoryTooSmall / HierarchyTooSmall) are skipped silently: they are
  not in "all". No ordering at all raises NoValidLoopOrderingFoundException.
* ``ideal_temporal_cycle`` / ``latency_total*`` come out as floats; word accesses are ints.
* The reduce stage for "energy" keeps the first CME of minimal (energy_total, latency_total2).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from stream.hardware.ir import Core

# Layer operand -> ZigZag memory operand (fixed: the cost model cross-checks assume it).
MEMORY_OPERAND_LINKS = {"O": "O", "W": "I2", "I": "I1"}

_PORT_PREFIX = {"read": "r", "write": "w", "read_write": "rw"}
_PORT_REGEX = re.compile(r"^[r]?[w]?_port_\d+$")  # ZigZag's AcceleratorValidator.PORT_REGEX
_DIM_REGEX = re.compile(r"^D\d$")  # ZigZag's AcceleratorValidator.DIMENSION_REGEX


# ---------------------------------------------------------------------------------------
# layer specs


def conv_spec(name="conv", K=64, C=64, OY=14, OX=14, FY=3, FX=3, B=1, stride=1, padding=None,
              precision=(8, 8, 16, 8)) -> dict:
    """A Conv layer spec. ``precision`` = (W, I, O partial sums, O_final) in bits."""
    w, i, o, o_final = precision
    spec = {
        "name": name,
        "operator_type": "Conv",
        "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
        "dimension_relations": [f"ix={stride}*ox+1*fx", f"iy={stride}*oy+1*fy"],
        "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
        "loop_sizes": [B, K, C, OY, OX, FY, FX],
        "operand_precision": {"W": w, "I": i, "O": o, "O_final": o_final},
    }
    if padding:
        spec["padding"] = dict(padding)
    return spec


def gemm_spec(name="gemm", K=128, C=256, B=1, precision=(8, 8, 16, 8)) -> dict:
    """A Gemm written as a 1x1 conv on a 1x1 image (OY=OX=FY=FX=1), so conv dataflows still apply."""
    spec = conv_spec(name, K=K, C=C, OY=1, OX=1, FY=1, FX=1, B=B, precision=precision)
    spec["operator_type"] = "Gemm"
    return spec


# ---------------------------------------------------------------------------------------
# YAML translation


def _dim_names(core: Core) -> dict[str, str]:
    """Our array dim name -> ZigZag's (``D1``..``D9``; renamed by position only when needed)."""
    dims = core.array.dims
    if all(_DIM_REGEX.match(d) for d in dims):
        return {d: d for d in dims}
    return {d: f"D{i + 1}" for i, d in enumerate(dims)}


def _int(value: float, what: str) -> int:
    if float(value) != int(value):
        raise ValueError(f"ZigZag needs an integer {what}, got {value}")
    return int(value)


def core_to_zigzag_yaml(core: Core) -> dict:
    """Translate a stream compute ``Core`` into ZigZag 3.9.1's accelerator YAML dict.

    * Memories keep their order (bottom-up) and names; sizes are bits, costs pJ per full-width word.
    * Port names are kept when ZigZag's regex (``r_port_1``, ``w_port_2``, ``rw_port_1``...) accepts
      them, otherwise renamed ``<r|w|rw>_port_<n>`` (only identity matters to ZigZag).
    * ``auto_cost_extraction`` is always off: our r_cost / w_cost are used as given (no CACTI).
    * Array dims are renamed ``D1..Dn`` only if not already of that form (``_dim_names``).
    * The core's dataflows go to the mapping file, not here (ZigZag ignores accelerator dataflows).
    """
    if not core.is_compute:
        raise ValueError(f"core {core.name} is not a compute core")
    dim_map = _dim_names(core)
    memories = {}
    for mem in core.memories:
        ports, used = [], set()
        for port in mem.ports:
            name = port.name
            if not _PORT_REGEX.match(name) or name in used:
                n = 1
                while f"{_PORT_PREFIX[port.kind]}_port_{n}" in used or any(
                    p.name == f"{_PORT_PREFIX[port.kind]}_port_{n}" for p in mem.ports if p is not port
                ):
                    n += 1
                name = f"{_PORT_PREFIX[port.kind]}_port_{n}"
            used.add(name)
            ports.append({
                "name": name,
                "type": port.kind,
                "bandwidth_min": _int(port.bw_min, f"bandwidth_min of {mem.name}.{port.name}"),
                "bandwidth_max": _int(port.bw_max, f"bandwidth_max of {mem.name}.{port.name}"),
                "allocation": [f"{op}, {direction}" for op, direction in port.allocation],
            })
        memories[mem.name] = {
            "size": int(mem.size_bits),
            "r_cost": float(mem.r_cost),
            "w_cost": float(mem.w_cost),
            "area": float(mem.area),
            "latency": int(mem.latency),
            "auto_cost_extraction": False,
            "operands": list(mem.operands),
            "ports": ports,
            "served_dimensions": [dim_map[d] for d in mem.served_dimensions],
            "force_double_buffering": bool(mem.double_buffering),
        }
    return {
        "name": core.name,
        "memories": memories,
        "operational_array": {
            "unit_energy": float(core.array.unit_energy),
            "unit_area": float(core.array.unit_area),
            "dimensions": [dim_map[d] for d in core.array.dims],
            "sizes": [int(s) for s in core.array.sizes],
            # not in our IR yet; translated if it appears (ZigZag 3.9.1: adds a drain term to latency)
            "systolic_dimensions": [dim_map[d] for d in getattr(core.array, "systolic_dimensions", ())],
        },
    }


def layer_to_zigzag_yaml(layer_spec: dict, layer_id: int = 0) -> list[dict]:
    """A layer spec as ZigZag's workload YAML (a one-layer list).

    Both inputs get ``operand_source`` = the layer itself (ZigZag's convention for a first layer: the
    operands are "constant"; this only matters to stages we do not run). Padding, if given as
    {pr_dim: [before, after]}, becomes ``pr_loop_dims`` + ``padding``: ZigZag subtracts it from the
    pr dimension's total size (e.g. IX = OX + FX - 1 - pad), which clips input footprints.
    """
    layer = {
        "id": layer_id,
        "name": layer_spec.get("name", f"layer{layer_id}"),
        "operator_type": layer_spec.get("operator_type", "Conv"),
        "equation": layer_spec["equation"],
        "dimension_relations": list(layer_spec.get("dimension_relations", [])),
        "loop_dims": [d.upper() for d in layer_spec["loop_dims"]],
        "loop_sizes": [int(s) for s in layer_spec["loop_sizes"]],
        "operand_precision": {k: int(v) for k, v in layer_spec["operand_precision"].items()},
        "operand_source": {"W": layer_id, "I": layer_id},
    }
    padding = layer_spec.get("padding")
    if padding:
        layer["pr_loop_dims"] = [d.upper() for d in padding]
        layer["padding"] = [[int(p[0]), int(p[1])] for p in padding.values()]
    return [layer]


def mapping_to_zigzag_yaml(core: Core, spatial_mapping: dict | None = None,
                           temporal_ordering: list | None = None) -> list[dict]:
    """ZigZag's mapping YAML: one ``default`` entry.

    ``spatial_mapping`` ({array_dim: [(layer_dim, factor), ...]}) defaults to the core's dataflows;
    with neither, ``spatial_mapping`` is left out and ZigZag generates one.
    """
    dim_map = _dim_names(core)
    if spatial_mapping is None and core.dataflows:
        spatial_mapping = {dim: list(unrolls) for dim, unrolls in core.dataflows}
    entry: dict[str, Any] = {"name": "default", "memory_operand_links": dict(MEMORY_OPERAND_LINKS)}
    if spatial_mapping:
        entry["spatial_mapping"] = {
            dim_map[dim]: [f"{layer_dim.upper()}, {int(factor)}" for layer_dim, factor in unrolls]
            for dim, unrolls in spatial_mapping.items()
        }
    if temporal_ordering:
        entry["temporal_ordering"] = [[str(d).upper(), int(s)] for d, s in temporal_ordering]
    return [entry]


# ---------------------------------------------------------------------------------------
# running ZigZag


@contextlib.contextmanager
def _quiet_zigzag():
    """Silence ZigZag's loggers (it logs warnings for every clipped unrolling) for the run."""
    logger = logging.getLogger("zigzag")
    old_level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(old_level)


def _make_stages():
    """ZigZag imports are deferred so that importing this module never needs zigzag-dse."""
    from zigzag.stages.mapping.spatial_mapping_conversion import (
        SpatialMappingConversionStage,
    )
    from zigzag.stages.stage import Stage

    class _SpatialProbe(SpatialMappingConversionStage):
        """Re-runs ZigZag's own conversion only to capture the per-array-dim mappings it clipped
        (fractional first, then integer); ZigZag keeps them local to ``convert_user_spatial_mapping``."""

        def generate_mapping_per_mem_lvl(self, user_spatial_mapping):
            self.captured.append(user_spatial_mapping)
            return super().generate_mapping_per_mem_lvl(user_spatial_mapping)

    class CollectAllStage(Stage):
        """Sits between the spatial mapping conversion and LOMA (where ZigZag's api puts the inner
        reduce stage). It turns every CostModelEvaluation into a record, appends it to the ``sink``
        list and yields every CME on, so the reduce stage above still picks ZigZag's own best."""

        def __init__(self, list_of_callables, *, zigzag_ref_sink: list, zigzag_ref_dim_names: dict,
                     **kwargs):
            super().__init__(list_of_callables, **kwargs)
            self.sink = zigzag_ref_sink
            self.dim_names = zigzag_ref_dim_names  # ZigZag's array dim -> ours

        def run(self):
            layer, accelerator = self.kwargs["layer"], self.kwargs["accelerator"]
            probe = _SpatialProbe(self.list_of_callables, accelerator=accelerator, layer=layer)
            probe.captured = []
            probe.convert_user_spatial_mapping(layer.spatial_mapping)
            spatial = {
                "spatial": _oa_mapping(probe.captured[0], self.dim_names),
                "spatial_int": _oa_mapping(probe.captured[1], self.dim_names),
                "spatial_generated": _oa_mapping(layer.spatial_mapping, self.dim_names),
            }
            substage = self.list_of_callables[0](self.list_of_callables[1:], **self.kwargs)
            for cme, extra_info in substage.run():
                cme._zigzag_ref_index = len(self.sink)
                self.sink.append(cme_to_record(cme, spatial))
                yield cme, extra_info

    return CollectAllStage


def run_loma(core: Core, layer_spec: dict, lpf_limit: int = 4, opt: str = "energy", *,
             spatial_mapping: dict | None = None, nb_spatial_mappings_generated: int = 1,
             temporal_mapping_type: str = "uneven") -> dict:
    """Run ZigZag's LOMA + cost model for one layer on one core; collect every evaluated mapping.

    The stage pipeline is ZigZag's ``get_hardware_performance_zigzag`` one without the save,
    visualization and sum stages: workload parser -> accelerator parser -> layer iterator ->
    reduce (``opt``) -> spatial mapping generator (+ conversion) -> CollectAllStage -> LOMA ->
    cost model. All files live in a temporary directory; logging is silenced, no progress bar.

    Returns {"best": record, "all": [record, ...]}: "all" in ZigZag's evaluation order (spatial
    mappings in generated order, then LOMA's orderings); "best" is the CME ZigZag's reduce stage for
    ``opt`` ("energy": min energy, ties by latency_total2; "latency": min latency_total2, ties by
    energy; "EDP") chose, with "index" into "all".
    """
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import (
        SpatialMappingGeneratorStage,
    )
    from zigzag.stages.mapping.temporal_mapping_generator_stage import (
        TemporalMappingGeneratorStage,
    )
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage
    from zigzag.stages.results.reduce_stages import (
        MinimalEDPStage,
        MinimalEnergyStage,
        MinimalLatencyStage,
    )
    from zigzag.stages.workload_iterator import WorkloadStage

    opt_stage = {"energy": MinimalEnergyStage, "latency": MinimalLatencyStage, "EDP": MinimalEDPStage}[opt]
    collect_stage = _make_stages()
    dim_names = {zz: ours for ours, zz in _dim_names(core).items()}
    sink: list[dict] = []

    with tempfile.TemporaryDirectory(prefix="zigzag_ref_") as tmp, _quiet_zigzag():
        tmp = Path(tmp)
        accelerator_path = tmp / "accelerator.yaml"
        mapping_path = tmp / "mapping.yaml"
        accelerator_path.write_text(yaml.safe_dump(core_to_zigzag_yaml(core), sort_keys=False))
        mapping_path.write_text(yaml.safe_dump(
            mapping_to_zigzag_yaml(core, spatial_mapping, layer_spec.get("temporal_ordering")), sort_keys=False))
        main = MainStage(
            [WorkloadParserStage, AcceleratorParserStage, WorkloadStage, opt_stage,
             SpatialMappingGeneratorStage, collect_stage, TemporalMappingGeneratorStage, CostModelStage],
            accelerator=str(accelerator_path),
            workload=layer_to_zigzag_yaml(layer_spec),
            mapping=str(mapping_path),
            dump_folder=str(tmp),
            loma_lpf_limit=lpf_limit,
            loma_show_progress_bar=False,
            nb_mappings_generated=nb_spatial_mappings_generated,
            enable_mix_spatial_mapping_generation=False,
            access_same_data_considered_as_no_access=True,  # as in ZigZag's api
            temporal_mapping_type=TemporalMappingType(temporal_mapping_type),
            zigzag_ref_sink=sink,
            zigzag_ref_dim_names=dim_names,
        )
        answers = main.run()

    assert len(answers) == 1, "one layer in, one reduced result out"
    best_cme = answers[0][0]
    best = dict(sink[best_cme._zigzag_ref_index], index=best_cme._zigzag_ref_index)
    return {"best": best, "all": sink}


# ---------------------------------------------------------------------------------------
# CME -> record


def _num(x: Any) -> int | float:
    """Python int/float from ints, floats, numpy scalars, sympy numbers."""
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return int(x)
    f = float(x)
    return int(f) if f.is_integer() and not isinstance(x, float) else f


def _loops(loops) -> list[list]:
    return [[str(dim), _num(size)] for dim, size in loops]


def _oa_mapping(spatial_mapping, dim_names: dict) -> dict:
    """ZigZag SpatialMapping (per array dim) -> {our array dim: [[layer_dim, factor], ...]}."""
    return {
        dim_names.get(str(oa_dim), str(oa_dim)): [[str(d), _num(f)] for d, f in single.items()]
        for oa_dim, single in spatial_mapping.items()
    }


def _per_op(d: dict, convert) -> dict:
    return {str(op): convert(value) for op, value in d.items()}


def _directions(four_way) -> dict:
    return {str(direction.value): _num(value) for direction, value in four_way.data.items()}


def cme_to_record(cme, spatial: dict | None = None) -> dict:
    """One CostModelEvaluation -> a plain JSON-able dict (format in the module docstring)."""
    from zigzag.mapping.data_movement import DataMoveAttr

    tm = cme.temporal_mapping
    sm, sm_int = cme.spatial_mapping, cme.spatial_mapping_int
    mapping = cme.mapping
    links = cme.memory_operand_links
    hierarchy = cme.accelerator.memory_hierarchy
    ops = [str(op) for op in cme.layer.layer_operands]

    record: dict[str, Any] = dict(spatial or {})
    record["spatial_per_level"] = _per_op(sm.mapping_dict_origin, lambda lv: [_loops(x) for x in lv])
    record["spatial_per_level_int"] = _per_op(sm_int.mapping_dict_origin, lambda lv: [_loops(x) for x in lv])
    record["unit_count"] = _per_op(sm.unit_count, lambda v: [_num(x) for x in v])
    record["unit_unique"] = _per_op(sm.unit_unique, lambda v: [_num(x) for x in v])

    record["temporal"] = _per_op(tm.mapping_dic_origin, lambda lv: [_loops(x) for x in lv])
    record["temporal_stationary"] = _per_op(tm.mapping_dic_stationary, lambda lv: [_loops(x) for x in lv])
    # The LOMA ordering is every operand's levels concatenated (the allocator cuts one ordering);
    # all operands give the same list, O is used.
    record["temporal_ordering"] = [loop for level in record["temporal"]["O"] for loop in level]
    record["mac_level_stationary"] = _per_op(tm.mac_level_data_stationary_cycle, _num)

    record["mem_operand"] = {op: str(links.layer_to_mem_op(op_obj)) for op, op_obj in
                             zip(ops, cme.layer.layer_operands)}
    record["mem_names"] = {
        str(op): [lvl.name for lvl in hierarchy.get_memory_levels(links.layer_to_mem_op(op))]
        for op in cme.layer.layer_operands
    }

    # energy
    record["energy_total"] = float(cme.energy_total)
    record["mac_energy"] = float(cme.mac_energy)
    record["mem_energy"] = _per_op(cme.mem_energy_breakdown, lambda v: [float(x) for x in v])
    record["mem_energy_total"] = float(cme.mem_energy)
    record["mem_energy_breakdown_further"] = _per_op(cme.mem_energy_breakdown_further,
                                                     lambda v: [_directions(x) for x in v])
    record["memory_word_access"] = _per_op(cme.memory_word_access, lambda v: [_directions(x) for x in v])

    # latency
    for name in ("ideal_cycle", "ideal_temporal_cycle", "stall_slack_comb", "data_onloading_cycle",
                 "data_offloading_cycle", "systolic_drain_cycle", "latency_total0", "latency_total1",
                 "latency_total2", "mac_spatial_utilization", "mac_utilization0", "mac_utilization1",
                 "mac_utilization2"):
        record[name] = _num(getattr(cme, name))
    record["SS_comb"] = record["stall_slack_comb"]
    record["spatial_utilization"] = record["mac_spatial_utilization"]

    # footprints / buffering
    record["mem_utili_individual"] = _per_op(cme.mem_utili_individual, lambda v: [float(x) for x in v])
    record["mem_utili_shared"] = _per_op(cme.mem_utili_shared, lambda v: [float(x) for x in v])
    record["data_bit_per_level_unrolled"] = _per_op(mapping.data_bit_per_level_unrolled, lambda v: [_num(x) for x in v])
    record["data_elem_per_level_unrolled"] = _per_op(mapping.data_elem_per_level_unrolled,
                                                     lambda v: [_num(x) for x in v])
    record["effective_data_bit"] = _per_op(mapping.effective_data_bit, lambda v: [_num(x) for x in v])
    record["double_buffer_true"] = _per_op(cme.double_buffer_true, lambda v: [bool(x) for x in v])
    record["psum_flag"] = [bool(x) for x in mapping.psum_flag]

    # per-link data movement pattern (what memory_word_access is computed from)
    attrs = {"amount_per_period": DataMoveAttr.DATA_TRANS_AMOUNT_PER_PERIOD,
             "period": DataMoveAttr.DATA_TRANS_PERIOD,
             "period_count": DataMoveAttr.DATA_TRANS_PERIOD_COUNT,
             "precision": DataMoveAttr.DATA_PRECISION}
    record["data_movement"] = _per_op(
        mapping.unit_mem_data_movement,
        lambda v: [{key: _directions(pattern.get_attribute(attr)) for key, attr in attrs.items()} for pattern in v],
    )
    return record


def total_macs(layer_spec: dict) -> int:
    return math.prod(int(s) for s in layer_spec["loop_sizes"])


__all__ = [
    "MEMORY_OPERAND_LINKS",
    "cme_to_record",
    "conv_spec",
    "core_to_zigzag_yaml",
    "gemm_spec",
    "layer_to_zigzag_yaml",
    "mapping_to_zigzag_yaml",
    "run_loma",
    "total_macs",
]
