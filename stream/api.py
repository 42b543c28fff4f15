"""The one entry point: ``run(workload, hardware, mapping=None, mode="fused") -> Result``.

:func:`run_detailed` keeps every intermediate value; :func:`compare_allocators` runs
several allocators on one case (tiling and costs once) and simulates each answer;
:func:`memory_aware_fusion` picks the chunk size and fusion cuts that fit an on-chip
memory budget at the least latency.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream.allocation import Allocation, AllocationSettings, allocate
from stream.cost import DEFAULT_OBJECTIVE, CostModel
from stream.errors import StreamError
from stream.hardware import Accelerator, load_hardware
from stream.mapping import NO_MAPPING, Mapping, load_mapping, plan_layers
from stream.mapping.fusion import cut_candidates, fused_mapping
from stream.results import Result, summarize
from stream.simulation import POLICIES, Trace, simulate
from stream.tiling import MODES, CNGraph, tile
from stream.workload import Workload, load_workload

INPUTS = Path(__file__).resolve().parent.parent / "inputs"
DEFAULT_WORKLOAD = INPUTS / "workloads" / "resnet18.yaml"
DEFAULT_HARDWARE = INPUTS / "hardware" / "quad_core.yaml"  # names its mapping (default_mapping)


def resolve_mapping(mapping, accelerator: Accelerator) -> tuple[Mapping | None, str]:
    """The mapping a run uses and a line saying which: the one given (a path or a Mapping),
    else the hardware's ``default_mapping``, else none (``NO_MAPPING`` asks for none)."""
    if isinstance(mapping, Mapping):
        return mapping, Path(mapping.source_file).name if mapping.source_file else "given as an object"
    if mapping is None and accelerator.default_mapping:
        return load_mapping(accelerator.default_mapping), f"{Path(accelerator.default_mapping).name} (the hardware's default)"
    if mapping is None or mapping == NO_MAPPING:
        return None, ("none: each layer runs whole on the cores made for its operator, consecutive layers "
                      "grouped while their weights fill half the weight memories")
    return load_mapping(mapping), Path(mapping).name


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


def run(workload, hardware, mapping=None, mode: str = "fused", allocator: str = "cpsat",
        cost_model: str = "zigzag", objective: str = DEFAULT_OBJECTIVE, cache_dir=None, policy: str | None = None,
        allocation: AllocationSettings | None = None) -> Result:
    """Simulate ``workload`` on ``hardware``; each may be a loaded object or a file path.

    ``allocator``: :data:`stream.allocation.METHODS`, searching as ``allocation`` says
    (objective, time limit, seed: :class:`stream.allocation.AllocationSettings`);
    ``cost_model``: ``"zigzag"`` (ZigZag's per-core equations with a mapping search) or
    ``"roofline"``; ``objective``: what the per-core mapping search minimises; ``cache_dir``:
    the cost cache (see :class:`stream.cost.CostModel`); ``policy``: the cores' scheduling
    policy (:data:`stream.simulation.POLICIES`; default ``depth_first`` when fused,
    ``layer_by_layer`` otherwise).
    """
    return run_detailed(workload, hardware, mapping, mode, allocator, cost_model, objective, cache_dir,
                        policy, allocation=allocation).result


@dataclass
class _Prepared:
    """A case loaded, tiled and costed: what every allocator starts from."""

    workload: Workload
    accelerator: Accelerator
    mapping: Mapping | None
    mapping_text: str  # which mapping, for the summary
    cngraph: CNGraph
    costs: object
    cost_info: dict
    notes: tuple[str, ...]
    policy: str | None
    seconds: dict[str, float]
    progress: object = None  # hears long simulations
    recent: dict = field(default_factory=dict)  # the last traces evaluate() made, by allocation

    def evaluate(self, core) -> tuple[int, float]:
        """Simulated (latency cycles, energy pJ) with CN i on ``core[i]``."""
        began = time.perf_counter()
        trace = simulate(self.cngraph, Allocation(core, "candidate", 0), self.costs, self.accelerator, self.policy,
                         self.progress)
        if len(self.recent) >= 2:  # an allocator judges its answer last: keep only the latest
            self.recent.pop(next(iter(self.recent)))
        self.recent[np.asarray(core).tobytes()] = (trace, time.perf_counter() - began)
        return trace.latency_cycles, trace.energy_pj

    def simulate(self, allocation: Allocation, progress=None) -> tuple[Trace, float]:
        """The trace of ``allocation`` and the seconds of its simulation that were spent
        while allocating: an evaluate() of the same allocation just made is reused."""
        made = self.recent.get(np.asarray(allocation.core).tobytes())
        if made is not None:
            return dataclasses.replace(made[0], allocation=allocation), made[1]
        return simulate(self.cngraph, allocation, self.costs, self.accelerator, self.policy, progress), 0.0


def _prepare(workload, hardware, mapping, mode, cost_model, objective, cache_dir, policy, say,
             progress=None) -> _Prepared:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if policy is not None and policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    t0 = time.perf_counter()
    workload = workload if isinstance(workload, Workload) else load_workload(workload)
    accelerator = hardware if isinstance(hardware, Accelerator) else load_hardware(hardware)
    mapping, mapping_text = resolve_mapping(mapping, accelerator)
    plans = plan_layers(workload, accelerator, mapping)
    t1 = time.perf_counter()
    say(f"loaded {workload.name} ({len(workload.layers)} layers) and {accelerator.name}")
    cngraph = tile(workload, plans, mode, progress)
    t2 = time.perf_counter()
    say(f"tiled: {cngraph.num_cns:,} CNs, {cngraph.num_edges:,} dependencies")
    model = CostModel(accelerator, cost_model, objective, cache_dir)
    costs = model.table(cngraph, progress=progress)  # fills every entry now
    t3 = time.perf_counter()
    say(f"costed: {len(costs)} distinct tiles ({cost_model})")
    fallbacks = sorted({c.model for c in costs.values()} - {cost_model})
    # cache hits and misses depend on what earlier runs left in the cache: kept out of the
    # result (byte-identical for the same inputs), available on Run.cost_stats
    cost_info = {"model": cost_model, "objective": objective, "entries": len(costs)}
    notes = workload.warnings + accelerator.warnings + tuple(cngraph.notes) + tuple(
        f"cost: some tiles are priced by the {f}" for f in fallbacks)
    return _Prepared(workload, accelerator, mapping, mapping_text, cngraph, costs, cost_info, notes, policy,
                     {"load": t1 - t0, "tiling": t2 - t1, "cost": t3 - t2}, progress)


def run_detailed(workload, hardware, mapping=None, mode: str = "fused", allocator: str = "cpsat",
                 cost_model: str = "zigzag", objective: str = DEFAULT_OBJECTIVE, cache_dir=None,
                 policy: str | None = None, progress=None, allocation: AllocationSettings | None = None) -> Run:
    """As :func:`run`, keeping every intermediate value; ``progress(message)``, if given, hears
    each step as it ends and the simulation every few seconds."""
    say = progress or (lambda message: None)
    case = _prepare(workload, hardware, mapping, mode, cost_model, objective, cache_dir, policy, say, progress)
    return _allocate_and_simulate(case, allocator, allocation, say, progress)


def _allocate_and_simulate(case: _Prepared, allocator: str, settings: AllocationSettings | None, say,
                           progress=None) -> Run:
    case.recent.clear()  # traces of another allocator's search are not this one's to reuse
    t3 = time.perf_counter()
    if allocator in ("cpsat", "genetic"):
        limit = (settings or AllocationSettings()).time_limit_s
        say(f"allocating ({allocator}, {limit:g} s budget)")
    allocation = allocate(case.cngraph, case.costs, case.accelerator, allocator, settings, case.evaluate,
                          progress)
    t4 = time.perf_counter()
    say(f"allocated ({allocator})")
    trace, reused = case.simulate(allocation, progress)
    t5 = time.perf_counter()
    say(f"simulated: {trace.latency_cycles:,} cycles")
    result = summarize(trace, warnings=case.notes + allocation.notes, cost_model=case.cost_info,
                       mapping=case.mapping_text)
    t6 = time.perf_counter()
    # a simulation the allocator already ran for this allocation counts as the simulation step
    seconds = dict(case.seconds, allocation=t4 - t3 - reused, simulation=t5 - t4 + reused, results=t6 - t5)
    seconds["total"] = sum(seconds.values())
    if "wall_seconds" in allocation.stats:
        seconds["allocation_search"] = allocation.stats["wall_seconds"]
    return Run(case.workload, case.accelerator, case.mapping, case.cngraph, allocation, trace, result, seconds,
               {"entries": len(case.costs), "hits": case.costs.hits, "misses": case.costs.misses})


def compare_allocators(workload, hardware, mapping=None, allocators=("greedy", "cpsat", "genetic"),
                       mode: str = "fused", cost_model: str = "zigzag", objective: str = DEFAULT_OBJECTIVE, cache_dir=None,
                       policy: str | None = None, allocation: AllocationSettings | None = None,
                       progress=None, on_error=None) -> list[Run]:
    """One :class:`Run` per allocator on the same case, loaded, tiled and costed once.
    ``on_error(allocator, error)``, if given, hears an allocator that fails on the case
    (``fixed`` on an open mapping, say), which is then left out; without it the error is raised."""
    say = progress or (lambda message: None)
    case = _prepare(workload, hardware, mapping, mode, cost_model, objective, cache_dir, policy, say, progress)
    runs = []
    for name in allocators:
        try:
            runs.append(_allocate_and_simulate(case, name, allocation, say, progress))
        except StreamError as error:
            if on_error is None:
                raise
            on_error(name, error)
    return runs


@dataclass(frozen=True)
class FusionCandidate:
    """One fusion choice and what simulating it gave: ``onchip_bytes`` is the sum over
    on-chip memories of their peaks (the memory the choice needs), ``fits`` whether that
    is within the budget."""

    chunk: int
    isolate: tuple[str, ...]
    latency_cycles: int
    energy_pj: float
    onchip_bytes: int
    dram_bytes: int
    fits: bool


def memory_aware_fusion(workload, hardware, budget_bytes: int, chunks=(16, 32, 64, 128, 256, 512), dim: str = "L",
                        probe=None, cuts=None, allocator: str = "greedy", cost_model: str = "zigzag",
                        cache_dir=None, progress=None) -> tuple[Mapping, FusionCandidate, list[FusionCandidate]]:
    """Fusion along ``dim`` that fits ``budget_bytes`` of on-chip memory at the least latency.

    Each chunk size of ``chunks`` (those below the dim's size) with each set of fusion cuts
    of ``cuts`` (default :func:`stream.mapping.fusion.cut_candidates`) is simulated on
    ``probe`` (default the workload itself; for a stack of identical blocks, one block
    gives the same choice much faster). The fastest candidate whose on-chip peak fits wins
    (the least memory if none fits). Returns the mapping of that choice for ``workload``,
    the choice, and every candidate in the order tried."""
    workload = workload if isinstance(workload, Workload) else load_workload(workload)
    accelerator = hardware if isinstance(hardware, Accelerator) else load_hardware(hardware)
    probe = workload if probe is None else (probe if isinstance(probe, Workload) else load_workload(probe))
    size = max((l.size(dim) for l in probe.layers if l.has_dim(dim)), default=0)
    if not size:
        raise StreamError(f"memory-aware fusion along {dim}: no layer of {probe.name} has a dim {dim}")
    sizes = sorted({c for c in chunks if c < size} or {size})
    say = progress or (lambda message: None)
    tried = []
    for isolate in (cut_candidates(probe) if cuts is None else cuts):
        for chunk in sizes:
            mapping = fused_mapping(probe, accelerator, chunk, dim, isolate=isolate)
            r = run_detailed(probe, accelerator, mapping, "fused", allocator, cost_model, cache_dir=cache_dir).result
            onchip = sum(r.peak_memory_bytes.values())
            tried.append(FusionCandidate(chunk, tuple(isolate), r.latency_cycles, r.energy_pj["total"], onchip,
                                         r.dram_traffic_bytes["read"] + r.dram_traffic_bytes["write"],
                                         onchip <= budget_bytes))
            say(f"fusion: chunk {chunk}, cut {', '.join(isolate) or 'none'}: {r.latency_cycles:,} cycles, "
                f"{onchip:,} B on chip")
    fitting = [c for c in tried if c.fits]
    best = (min(fitting, key=lambda c: (c.latency_cycles, c.onchip_bytes)) if fitting
            else min(tried, key=lambda c: (c.onchip_bytes, c.latency_cycles)))
    return fused_mapping(workload, accelerator, best.chunk, dim, isolate=best.isolate), best, tried


def resolve_inputs(workload=None, hardware=None, mapping=None):
    """The bundled default (ResNet-18 on the quad-core system, with that system's mapping)
    for whatever is not given."""
    if workload is None and hardware is None:
        return DEFAULT_WORKLOAD, DEFAULT_HARDWARE, mapping
    if workload is None or hardware is None:
        raise StreamError("give both a workload and a hardware file, or neither for the bundled default")
    return os.fspath(workload), os.fspath(hardware), mapping
