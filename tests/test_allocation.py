"""Allocation worked out by hand and checked against the simulator.

HEFT and CP-SAT schedules on two cores are computed on paper; on instances small enough
to enumerate (5 layers on 3 cores, 243 allocations) every allocation is simulated and
CP-SAT's choice is compared with the simulated optimum.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from stream.allocation import AllocationSettings, allocate, pieces
from stream.allocation.greedy import upward_ranks
from stream.allocation.tasks import build_tasks
from stream.api import _prepare, run_detailed
from stream.errors import StreamError
from conftest import INPUTS
from test_pipeline import CORE, DRAM

# Two compute cores joined by a 1-bit link (link 0), both on a 32-bit DRAM bus (link 1).
SYSTEM = """\
    version: 1
    name: slow_pair
    cores: {0: core.yaml, 1: core.yaml, 2: dram.yaml}
    offchip_core_id: 2
    core_connectivity:
      - {type: link, cores: [0, 1], bandwidth: 1}
      - {type: bus, cores: [0, 1, 2], bandwidth: 32}
"""
CONV = """\
      - name: {name}
        operator_type: Conv
        equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
        dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
        loop_dims: [B, K, C, OY, OX, FY, FX]
        loop_sizes: [1, {k}, {c}, 4, 4, 3, 3]
        operand_precision: {{O: 16, O_final: 8, W: 8, I: 8}}
        padding: {{IY: [1, 1], IX: [1, 1]}}
"""
# a feeds c; b, independent, keeps core 0 busy in between
WORKLOAD = "version: 1\nname: detour\nlayers:\n" + CONV.format(name="a", k=8, c=4) + CONV.format(
    name="b", k=8, c=4) + CONV.format(name="c", k=4, c=8) + "        operand_source: {I: a}\n"
MAPPING = """\
    version: 1
    layers:
      - {name: a, core_allocation: [0]}
      - {name: b, core_allocation: [0]}
      - {name: c, core_allocation: [0, 1]}
"""


def prepared(workload, hardware, mapping=None, mode="fused"):
    return _prepare(workload, hardware, mapping, mode, "roofline", "energy", None, None, lambda message: None)


def run_allocator(case, method, **settings):
    return allocate(case.cngraph, case.costs, case.accelerator, method, AllocationSettings(**settings),
                    case.evaluate)


@pytest.fixture
def detour(write):
    write("core.yaml", CORE)
    write("dram.yaml", DRAM)
    return write("detour.yaml", WORKLOAD), write("system.yaml", SYSTEM), write("mapping.yaml", MAPPING)


def test_heft_ranks_and_the_transfer_into_a_candidate_core(detour):
    case = prepared(*detour)
    tasks = build_tasks(case.cngraph, case.costs, case.accelerator)
    # Roofline cycles (K and C unrolled 4 ways): a and b ceil(8/4)*1*4*4*9 = 288 each, c 1*2*144 = 288.
    assert tasks.duration[:, 0].tolist() == [288, 288, 288]
    # Upward ranks: b and c end the graph (288); a's edge to c carries 1024 bits, 0 cycles on
    # one core and 1024 over the 1-bit link, a mean of 512: rank(a) = 288 + 512 + 288.
    assert upward_ranks(tasks).tolist() == [1088.0, 288.0, 288.0]
    # DRAM reads on the 32-bit bus: weights 8*4*9*8 = 2304 bits (72 cycles) for each layer,
    # plus the 4x4x4 8-bit network input (512 bits, 16 cycles) for a and b.
    assert tasks.load_cycles.tolist() == [88, 88, 72]
    # HEFT order a, c, b. a: loads 0..88, runs 88..376 on core 0. c: loads 88..160; on core 1
    # its input crosses the link in 1024 cycles (376 + 1024 + 288 = 1688), on core 0 it runs
    # 376..664: core 0. b: loads 160..248, runs after c, 664..952.
    greedy = run_allocator(case, "greedy")
    assert greedy.core.tolist() == [0, 0, 0] and greedy.estimated_latency_cycles == 952
    # the simulator agrees: c stays on core 0 and nothing crosses the slow link
    detail = run_detailed(*detour, cost_model="roofline", allocator="greedy")
    detail.trace.check()
    assert detail.allocation.core.tolist() == [0, 0, 0]
    assert not detail.trace.transfers.of("core_to_core").any()


# Two identical cores on a fast (1024-bit) link and DRAM bus: DRAM reads take a few cycles.
FAST_PAIR = SYSTEM.replace("bandwidth: 1}", "bandwidth: 1024}").replace("bandwidth: 32}", "bandwidth: 1024}")
FAST_DRAM = DRAM.replace("bandwidth_min: 32, bandwidth_max: 32", "bandwidth_min: 1024, bandwidth_max: 1024")
# five independent layers: p and q 3*144 = 432 cycles, r, s and t 2*144 = 288
FIVE = "version: 1\nname: five\nlayers:\n" + "".join(
    CONV.format(name=n, k=k, c=4) for n, k in (("p", 12), ("q", 12), ("r", 8), ("s", 8), ("t", 8)))


def test_cpsat_finds_the_balanced_split_heft_misses(write):
    write("core.yaml", CORE)
    write("dram.yaml", FAST_DRAM)
    case = prepared(write("five.yaml", FIVE), write("system.yaml", FAST_PAIR))
    # DRAM reads (weights + input): p, q ceil((3456 + 512) / 1024) = 4 cycles, r, s, t 3.
    tasks = build_tasks(case.cngraph, case.costs, case.accelerator)
    assert tasks.load_cycles.tolist() == [4, 4, 3, 3, 3]
    # HEFT, by rank p q r s t; reads end at 4, 8, 11, 14, 17. p 4..436 on core 0, q 8..440 on
    # core 1, r on core 0 (436..724), s on core 1 (440..728), t on core 0 (724..1012).
    greedy = run_allocator(case, "greedy")
    assert greedy.core.tolist() == [0, 1, 0, 1, 0] and greedy.estimated_latency_cycles == 1012
    # The optimum: p and q on one core, r, s, t on the other, 864 cycles each. Both first reads
    # end no earlier than 3 and 3 + 4 = 7, so the later core finishes at 7 + 864 = 871.
    solved = run_allocator(case, "cpsat")
    stats = solved.stats
    assert stats["status"] == "optimal" and stats["objective_value"] == 871 and stats["gap"] == 0
    assert sorted(solved.core.tolist()[:2]) == [solved.core[0]] * 2 and len(set(solved.core.tolist()[2:])) == 1
    assert solved.core[0] != solved.core[2]
    # the simulator confirms: the balanced split is faster, so the solver's answer is kept
    assert stats["kept"] == "solver"
    simulated = stats["simulated"]
    assert simulated["solver"]["latency_cycles"] < simulated["warm_start"]["latency_cycles"]
    assert 871 <= simulated["solver"]["latency_cycles"] <= 871 * 1.02


# -- every allocation of a small instance through the simulator ------------------------------
SMALL = CORE.replace("name: tiny", "name: small")
WIDE = SMALL.replace("name: small", "name: wide").replace("sizes: [4, 4], unit_energy: 1", "sizes: [8, 8], unit_energy: 2") \
    .replace('"K, 4"', '"K, 8"').replace('"C, 4"', '"C, 8"')
TALL = SMALL.replace("name: small", "name: tall").replace("sizes: [4, 4]", "sizes: [2, 16]") \
    .replace('"K, 4"', '"K, 2"').replace('"C, 4"', '"C, 16"')
TRIO = """\
    version: 1
    name: trio
    cores: {0: small.yaml, 1: wide.yaml, 2: tall.yaml, 3: dram.yaml}
    offchip_core_id: 3
    core_connectivity:
      - {type: link, cores: [0, 1], bandwidth: 64, unit_energy_cost: 0.1}
      - {type: link, cores: [1, 2], bandwidth: 64, unit_energy_cost: 0.1}
      - {type: link, cores: [0, 2], bandwidth: 16, unit_energy_cost: 0.1}
      - {type: bus, cores: [0, 1, 2, 3], bandwidth: 256, unit_energy_cost: 0.5}
"""
BRANCH = CONV.replace("[1, {k}, {c}, 4, 4, 3, 3]", "[1, {k}, {c}, 8, 8, 3, 3]")
# How far the model's schedule may be from the simulator's on these instances (they differ
# by tens of cycles: contention the model does not see); measured at under 2%.
MODEL_TOLERANCE = 0.02


def branches(seed: int) -> str:
    """a feeds b and c; b feeds d, c feeds e; channel counts drawn from ``seed``."""
    r = random.Random(seed)
    k = [r.choice([4, 8, 16, 32]) for _ in range(5)]
    c0 = r.choice([4, 8, 16])
    layers = [("a", k[0], c0, None), ("b", k[1], k[0], "a"), ("c", k[2], k[0], "a"), ("d", k[3], k[1], "b"),
              ("e", k[4], k[2], "c")]
    text = "version: 1\nname: branches\nlayers:\n"
    for name, kk, cc, source in layers:
        text += BRANCH.format(name=name, k=kk, c=cc) + (f"        operand_source: {{I: {source}}}\n" if source else "")
    return text


@pytest.fixture
def trio(write):
    for name, text in (("small.yaml", SMALL), ("wide.yaml", WIDE), ("tall.yaml", TALL), ("dram.yaml", DRAM)):
        write(name, text.replace("bandwidth_min: 32, bandwidth_max: 32", "bandwidth_min: 256, bandwidth_max: 256"))
    return write("trio.yaml", TRIO)


def enumerate_allocations(case) -> dict[tuple, tuple[int, float]]:
    g = case.cngraph
    cns = pieces(g)
    out = {}
    for combo in itertools.product(range(3), repeat=len(cns)):
        core = np.empty(g.num_cns, dtype=np.int32)
        for piece, c in zip(cns, combo):
            core[piece] = c
        out[combo] = case.evaluate(core)
    return out


def chosen(case, allocation) -> tuple:
    return tuple(int(allocation.core[p[0]]) for p in pieces(case.cngraph))


# seed 3: HEFT is 21% slower than the best allocation; seeds 0 and 6: it is close
@pytest.mark.parametrize("seed", [0, 3, 6])
def test_cpsat_against_every_allocation_simulated(write, trio, seed):
    case = prepared(write("branches.yaml", branches(seed)), trio)
    simulated = enumerate_allocations(case)
    assert len(simulated) == 3 ** 5
    best_latency = min(v[0] for v in simulated.values())
    best_energy = min(v[1] for v in simulated.values())

    greedy = simulated[chosen(case, run_allocator(case, "greedy"))]
    fast = run_allocator(case, "cpsat")
    assert fast.stats["status"] == "optimal"
    latency = simulated[chosen(case, fast)][0]
    assert latency <= best_latency * (1 + fast.stats["gap"] + MODEL_TOLERANCE)
    assert latency <= greedy[0]
    # energy has no ordering to get wrong: the solver's optimum is the simulator's
    frugal = run_allocator(case, "cpsat", objective="energy")
    assert simulated[chosen(case, frugal)][1] == pytest.approx(best_energy, rel=1e-9)
    if seed == 3:
        assert greedy[0] > 1.2 * best_latency and latency < 1.02 * best_latency


def test_weighted_objective_at_its_ends_is_latency_or_energy(write, trio):
    case = prepared(write("branches.yaml", branches(3)), trio)
    by = {name: chosen(case, run_allocator(case, "cpsat", **kw)) for name, kw in (
        ("latency", {}), ("energy", {"objective": "energy"}),
        ("w1", {"objective": "weighted", "latency_weight": 1.0}),
        ("w0", {"objective": "weighted", "latency_weight": 0.0}))}
    simulated = enumerate_allocations(case)
    assert simulated[by["w1"]][0] == simulated[by["latency"]][0]
    assert simulated[by["w0"]][1] == pytest.approx(simulated[by["energy"]][1], rel=1e-9)
    edp = run_allocator(case, "cpsat", objective="edp")
    assert edp.stats["objective"] == "edp" and edp.stats["status"] in ("optimal", "feasible")
    lat, energy = simulated[chosen(case, edp)]
    best_edp = min(l * e for l, e in simulated.values())
    assert lat * energy <= best_edp * (1 + edp.stats["gap"] + 2 * MODEL_TOLERANCE)


def test_cpsat_is_reproducible(write, trio):
    drop = lambda stats: {k: v for k, v in stats.items() if k != "wall_seconds"}  # noqa: E731
    case = prepared(write("branches.yaml", branches(3)), trio)
    first, second = run_allocator(case, "cpsat"), run_allocator(case, "cpsat")
    assert first.core.tolist() == second.core.tolist()
    assert drop(first.stats) == drop(second.stats) and first.stats["reproducible"]
    # a search its budget stops (not proven optimal) answers the same too: the budget is work, not time
    resnet = prepared(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
                      INPUTS / "mappings" / "quad_core.yaml")
    stopped = [run_allocator(resnet, "cpsat", time_limit_s=0.5) for _ in range(2)]
    assert stopped[0].stats["status"] == "feasible" and stopped[0].stats["reproducible"]
    assert stopped[0].core.tolist() == stopped[1].core.tolist()
    assert drop(stopped[0].stats) == drop(stopped[1].stats)


def test_genetic_searches_with_the_simulator(write, trio):
    case = prepared(write("branches.yaml", branches(3)), trio)
    simulated = enumerate_allocations(case)
    greedy = simulated[chosen(case, run_allocator(case, "greedy"))][0]
    runs = [run_allocator(case, "genetic", population=8, generations=6, seed=1) for _ in range(2)]
    assert runs[0].core.tolist() == runs[1].core.tolist()  # a generation budget is reproducible
    stats = runs[0].stats
    assert stats["stopped_by"] == "generations" and stats["reproducible"] and stats["generations"] == 6
    assert 8 <= stats["evaluations"] <= 8 * 7
    # it starts from HEFT and keeps the best the simulator saw
    latency = simulated[chosen(case, runs[0])][0]
    assert latency <= greedy
    front = stats["pareto_front"]
    assert front and all(a["latency_cycles"] < b["latency_cycles"] and a["energy_pj"] > b["energy_pj"]
                         for a, b in zip(front, front[1:]))


# -- weights that cannot stay resident ------------------------------------------------------
# A core whose 1000-bit memory holds one K=1 piece of a K=3, C=8 layer (8*9*8 = 576 bits).
CRAMPED = CORE.replace("size: 1048576", "size: 1000")
SPLIT3 = CONV.format(name="wide", k=3, c=8)
PAIR = SYSTEM.replace("bandwidth: 1}", "bandwidth: 64}")


def _split_mapping(count: int, cores: str = "[0, 1]") -> str:
    return f"""\
    version: 1
    layers:
      - {{name: wide, core_allocation: {cores}, inter_core_tiling: ["K, {count}"]}}
"""


@pytest.fixture
def cramped(write):
    write("core.yaml", CRAMPED)
    write("dram.yaml", DRAM)
    return write("wide.yaml", "version: 1\nname: wide\nlayers:\n" + SPLIT3), write("system.yaml", PAIR)


@pytest.mark.parametrize("count, cores, error, note", [
    # one piece of 3 * 576 = 1728 bits (216 B) fits neither 125 B memory
    (1, "[0, 1]", r"layer wide: a piece's 216 B of weights fit no candidate core's weight memory \(largest 125 B\)",
     "fit no candidate core"),
    # three 576-bit pieces on two 1000-bit memories: 1728 <= 2000 together, but two share a core
    (3, "[0, 1]", r"fusion group 0 \(wide\): its pieces' weights cannot be packed into their cores' weight "
                  r"memories \(largest: layer wide, 72 B per piece\)", "cannot be packed"),
    # one core for the three pieces: 216 B of weights, 125 B of memory
    (3, "[1]", r"fusion group 0 \(wide\): 216 B of weights, but the weight memories of cores \[1\] hold 125 B "
               r"together", "hold 125 B together"),
], ids=["fits-nowhere", "cannot-be-packed", "group-too-heavy"])
def test_weights_that_cannot_stay_resident_are_named(write, cramped, count, cores, error, note):
    mapping = write("m.yaml", _split_mapping(count, cores))
    with pytest.raises(StreamError, match=error + r" \(constraint: resident weights per core\)"):
        run_allocator(prepared(*cramped, mapping), "cpsat", strict_capacity=True)
    # without --strict-capacity the limit is lifted there, with a note, and the weights stream
    relaxed = run_allocator(prepared(*cramped, mapping), "cpsat")
    assert [n for n in relaxed.notes if note in n and "stream from DRAM" in n]
    if cores == "[0, 1]" and count == 3:  # still spread as far as the cores allow
        assert sorted(np.bincount(relaxed.core, minlength=2).tolist()) == [1, 2]


def test_pinned_weights_that_overflow_a_memory_are_named(write, cramped):
    # w's two 576-bit pieces must both sit on core 0 (1000 bits); x (144 bits) on core 1 leaves
    # the group 2000 bits in all, so only the packing of the pinned pieces shows the overflow
    workload = write("pinned.yaml", "version: 1\nname: pinned\nlayers:\n" + CONV.format(name="w", k=2, c=8)
                     + CONV.format(name="x", k=1, c=2) + "        operand_source: {I: w}\n")
    mapping = write("m.yaml", """\
        version: 1
        layers:
          - {name: w, core_allocation: [0], inter_core_tiling: ["K, 2"]}
          - {name: x, core_allocation: [1]}
        fusion_groups:
          - {name: g, layers: [w, x]}
    """)
    case = prepared(workload, cramped[1], mapping)
    with pytest.raises(StreamError, match=r"fusion group 0 \(w \.\. x\): its pieces' weights cannot be packed"):
        run_allocator(case, "cpsat", strict_capacity=True)
    assert any("cannot be packed" in note for note in run_allocator(case, "cpsat").notes)


def test_operator_no_core_supports_is_named(write):
    write("core.yaml", CORE.replace("type: compute", "type: compute\n    operator_types: [Gemm]"))
    write("dram.yaml", DRAM)
    with pytest.raises(StreamError, match=r"operator type 'Conv' \(layer a\)"):
        prepared(write("detour.yaml", WORKLOAD), write("system.yaml", SYSTEM))


def test_fixed_allocator_names_the_open_layer(detour):
    with pytest.raises(StreamError, match=r"allocator 'fixed': layer 'c' may run on cores \[0, 1\]"):
        run_detailed(*detour, cost_model="roofline", allocator="fixed")


@pytest.mark.parametrize("field, value, message", [
    ("objective", "speed", "allocation objective must be one of"),
    ("latency_weight", 1.5, "latency_weight must be in"),
    ("time_limit_s", 0, "time_limit_s must be positive"),
    ("seed", -1, "seed must be from 0 to 2\\*\\*31 - 1"),
])
def test_settings_are_checked(field, value, message):
    with pytest.raises(ValueError, match=message):
        AllocationSettings(**{field: value})


def test_cpsat_reports_its_solutions(write, trio, monkeypatch):
    import stream.allocation.cpsat as cpsat

    monkeypatch.setattr(cpsat, "REPORT_SECONDS", 0.0)  # report every solution
    case = prepared(write("branches.yaml", branches(3)), trio)
    heard: list[str] = []
    allocation = allocate(case.cngraph, case.costs, case.accelerator, "cpsat", AllocationSettings(),
                          case.evaluate, heard.append)
    assert heard and all(m.startswith("cpsat: solution ") and ", model latency " in m for m in heard)
    # the last report is the answer: the proven optimum
    assert f"model latency {allocation.stats['objective_value']:,.0f} (bound " in heard[-1]
