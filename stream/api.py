"""The one entry point: ``run(workload, hardware, mapping=None, mode="fused") -> Result``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from stream.allocation import Allocation, allocate
from stream.cost import CostModel
from stream.hardware import Accelerator, load_hardware
from stream.mapping import Mapping, load_mapping, plan_layers
from stream.results import Result, summarize
from stream.simulation import POLICIES, Trace, simulate
from stream.tiling import MODES, CNGraph, tile
from stream.workload import Workload, load_workload

INPUTS = Path(__file__).resolve().parent.parent / "inputs"
DEFAULT_WORKLOAD = INPUTS / "workloads" / "resnet18.yaml"
DEFAULT_HARDWARE = INPUTS / "hardware" / "quad_core.yaml"
DEFAULT_MAPPING = INPUTS / "mappings" / "quad_core.yaml"


@dataclass
class Run:
    """Every intermediate value of one run, for scripts that want more than the Result."""

    workload: Workload
    accelerator: Accelerator
    mapping: Mapping | None
    cngraph: CNGraph
    allocation: Allocation
    trace: Trace
    result: Result
    seconds: dict[str, float] = field(default_factory=dict)  # per pipeline step
    cost_stats: dict[str, int] = field(default_factory=dict)  # cost table: entries, cache hits, misses


def run(workload, hardware, mapping=None, mode: str = "fused", allocator: str = "greedy",
        cost_model: str = "zigzag", objective: str = "energy", cache_dir=None, policy: str | None = None) -> Result:
    """Simulate ``workload`` on ``hardware``; each may be a loaded object or a file path.

    ``cost_model``: ``"zigzag"`` (ZigZag's per-core equations with a mapping search) or
    ``"roofline"``; ``objective``: what the per-core mapping search minimises; ``cache_dir``:
    the cost cache (see :class:`stream.cost.CostModel`); ``policy``: the cores' scheduling
    policy (:data:`stream.simulation.POLICIES`; default ``depth_first`` when fused,
    ``layer_by_layer`` otherwise).
    """
    return run_detailed(workload, hardware, mapping, mode, allocator, cost_model, objective, cache_dir,
                        policy).result


def run_detailed(workload, hardware, mapping=None, mode: str = "fused", allocator: str = "greedy",
                 cost_model: str = "zigzag", objective: str = "energy", cache_dir=None,
                 policy: str | None = None, progress=None) -> Run:
    """As :func:`run`, keeping every intermediate value; ``progress(message)``, if given, hears
    each step as it ends and the simulation every few seconds."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if policy is not None and policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    seconds = {}
    t0 = time.perf_counter()
    workload = workload if isinstance(workload, Workload) else load_workload(workload)
    accelerator = hardware if isinstance(hardware, Accelerator) else load_hardware(hardware)
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    plans = plan_layers(workload, accelerator, mapping)
    t1 = time.perf_counter()
    say = progress or (lambda message: None)
    say(f"loaded {workload.name} ({len(workload.layers)} layers) and {accelerator.name}")
    cngraph = tile(workload, plans, mode)
    t2 = time.perf_counter()
    say(f"tiled: {cngraph.num_cns:,} CNs, {cngraph.num_edges:,} dependencies")
    model = CostModel(accelerator, cost_model, objective, cache_dir)
    costs = model.table(cngraph)  # fills every entry now
    t3 = time.perf_counter()
    say(f"costed: {len(costs)} distinct tiles ({cost_model})")
    allocation = allocate(cngraph, costs, allocator, accelerator)
    t4 = time.perf_counter()
    say(f"allocated ({allocator})")
    trace = simulate(cngraph, allocation, costs, accelerator, policy, progress)
    t5 = time.perf_counter()
    say(f"simulated: {trace.latency_cycles:,} cycles")
    fallbacks = sorted({c.model for c in costs.values()} - {cost_model})
    # cache hits and misses depend on what earlier runs left in the cache: kept out of the
    # result (byte-identical for the same inputs), available on Run.cost_stats
    cost_info = {"model": cost_model, "objective": objective, "entries": len(costs)}
    notes = workload.warnings + tuple(cngraph.notes) + tuple(
        f"cost: some tiles fit no mapping on their core and use the {f}" for f in fallbacks)
    result = summarize(trace, warnings=notes, cost_model=cost_info)
    t6 = time.perf_counter()
    seconds = {"load": t1 - t0, "tiling": t2 - t1, "cost": t3 - t2, "allocation": t4 - t3,
               "simulation": t5 - t4, "results": t6 - t5, "total": t6 - t0}
    return Run(workload, accelerator, mapping, cngraph, allocation, trace, result, seconds,
               {"entries": len(costs), "hits": costs.hits, "misses": costs.misses})


def resolve_inputs(workload=None, hardware=None, mapping=None):
    """The bundled default (ResNet-18 on the quad-core system) for whatever is not given."""
    if workload is None and hardware is None:
        return DEFAULT_WORKLOAD, DEFAULT_HARDWARE, (DEFAULT_MAPPING if mapping is None else mapping)
    if workload is None or hardware is None:
        raise ValueError("give both a workload and a hardware file, or neither for the bundled default")
    return os.fspath(workload), os.fspath(hardware), mapping
