"""Allocation worked out by hand: transfers change the greedy choice; fixed follows the mapping."""

from __future__ import annotations

import pytest

from stream.allocation import allocate
from stream.api import run_detailed
from stream.cost import CostModel
from stream.errors import StreamError
from stream.hardware import load_hardware
from stream.mapping import load_mapping, plan_layers
from stream.tiling import tile
from stream.workload import load_workload
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


@pytest.fixture
def detour(write):
    write("core.yaml", CORE)
    write("dram.yaml", DRAM)
    return write("detour.yaml", WORKLOAD), write("system.yaml", SYSTEM), write("mapping.yaml", MAPPING)


def test_greedy_counts_the_transfer_into_a_candidate_core(detour):
    workload, hardware, mapping = load_workload(detour[0]), load_hardware(detour[1]), load_mapping(detour[2])
    g = tile(workload, plan_layers(workload, hardware, mapping), "fused")
    costs = CostModel(hardware, "roofline").table(g)
    # Roofline cycles (K and C unrolled 4 ways): a and b ceil(8/4)*1*4*4*9 = 288 each, c 1*2*144 = 288.
    # Without transfers: a 0..288 and b 288..576 on core 0; c could end at max(576, 288) + 288 = 864
    # on core 0, or at max(0, 288) + 288 = 576 on idle core 1: core 1.
    blind = allocate(g, costs, "greedy")
    assert list(blind.core) == [0, 0, 1] and blind.estimated_latency_cycles == 576
    # With them: a's 1024-bit output crosses the 1-bit link in 1024 cycles, so on core 1 c ends at
    # 288 + 1024 + 288 = 1600; on core 0, where the output already is, still at 864: core 0.
    aware = allocate(g, costs, "greedy", hardware)
    assert list(aware.core) == [0, 0, 0] and aware.estimated_latency_cycles == 864
    # the simulator agrees: c stays on core 0 and nothing crosses the slow link
    detail = run_detailed(*detour, cost_model="roofline")
    detail.trace.check()
    assert list(detail.allocation.core) == [0, 0, 0]
    assert not detail.trace.transfers.of("core_to_core").any()


def test_fixed_allocator_names_the_open_layer(detour):
    with pytest.raises(StreamError, match=r"allocator 'fixed': layer 'c' may run on cores \[0, 1\]"):
        run_detailed(*detour, cost_model="roofline", allocator="fixed")
