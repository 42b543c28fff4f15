"""The discrete-event simulator (stream.simulation), checked against timings worked out by hand.

Every run uses the roofline cost model, so a CN's cycles are easy to count: on the 4x4
array without ``dataflows`` used by most tests, ``ceil(MACs / 16)`` (the SRAM ports are
1024 bits wide, so the memory side of the roofline never dominates). DRAM has one 32-bit
read/write port at 100 pJ per 32-bit word, so a DRAM transfer over a bus of bandwidth B
takes ``ceil(bits / min(B, 32))`` cycles. All tensors are 8 bits per element
(``O_final: 8``; no test splits a reduction dim, so no partial sums).
"""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import test_pipeline
from conftest import INPUTS
from stream.api import run_detailed
from stream.errors import InputError
from stream.hardware import load_hardware
from stream.mapping import load_mapping, plan_layers
from stream.simulation import CAUSES, EXTERNAL, OUTPUT, PREFETCH_DEPTH
from stream.simulation.network import CHUNK_CYCLES
from stream.simulation.order import ranks
from stream.tiling import tile
from stream.workload import load_workload

# -- hardware and workload snippets ------------------------------------------------------


def core_yaml(size_bits: int = 1 << 20, dataflows: str = "") -> str:
    """A 4x4 MAC array (16 units, 1 pJ/MAC) under one SRAM holding all operands."""
    return f"""\
version: 1
name: core
type: compute
memories:
  sram:
    size: {size_bits}
    r_cost: 10
    w_cost: 10
    operands: [I1, I2, O]
    ports:
      - {{name: r, type: read, bandwidth_min: 1024, bandwidth_max: 1024, allocation: ["I1, tl", "I2, tl", "O, tl", "O, th"]}}
      - {{name: w, type: write, bandwidth_min: 1024, bandwidth_max: 1024, allocation: ["I1, fh", "I2, fh", "O, fh", "O, fl"]}}
    served_dimensions: [D1, D2]
operational_array: {{dimensions: [D1, D2], sizes: [4, 4], unit_energy: 1}}
{dataflows}"""


def split_core_yaml(act_bits: int = 1 << 20, weight_bits: int = 1 << 20) -> str:
    """As core_yaml, but weights (I2) in their own SRAM, activations (I1, O) in another."""
    return f"""\
version: 1
name: split
type: compute
memories:
  wsram:
    size: {weight_bits}
    r_cost: 10
    w_cost: 10
    operands: [I2]
    ports:
      - {{name: r, type: read, bandwidth_min: 1024, bandwidth_max: 1024, allocation: ["I2, tl"]}}
      - {{name: w, type: write, bandwidth_min: 1024, bandwidth_max: 1024, allocation: ["I2, fh"]}}
    served_dimensions: [D1, D2]
  asram:
    size: {act_bits}
    r_cost: 10
    w_cost: 10
    operands: [I1, O]
    ports:
      - {{name: r, type: read, bandwidth_min: 1024, bandwidth_max: 1024, allocation: ["I1, tl", "O, tl", "O, th"]}}
      - {{name: w, type: write, bandwidth_min: 1024, bandwidth_max: 1024, allocation: ["I1, fh", "O, fh", "O, fl"]}}
    served_dimensions: [D1, D2]
operational_array: {{dimensions: [D1, D2], sizes: [4, 4], unit_energy: 1}}
"""


DRAM = textwrap.dedent(test_pipeline.DRAM)  # one 32-bit read/write port at 100 pJ per word


def system_yaml(cores: dict[int, str], dram: int, links: list[str]) -> str:
    listed = ", ".join(f"{i}: {f}" for i, f in cores.items())
    body = "\n".join(f"  - {link}" for link in links)
    return f"version: 1\nname: system\ncores: {{{listed}, {dram}: dram.yaml}}\noffchip_core_id: {dram}\n" \
           f"core_connectivity:\n{body}\n"


def gemm(name: str, L: int, D: int, C: int, src: str | None = None) -> str:
    """O[l][d] += W[d][c] * I[l][c]: weights D*C, input L*C, output L*D elements."""
    text = f"""\
  - name: {name}
    operator_type: Gemm
    equation: O[l][d]+=W[d][c]*I[l][c]
    loop_dims: [L, D, C]
    loop_sizes: [{L}, {D}, {C}]
    operand_precision: {{O: 16, O_final: 8, W: 8, I: 8}}
"""
    return text + (f"    operand_source: {{I: {src}}}\n" if src else "")


def conv(name: str, K: int, C: int, OY: int, OX: int, src: str | None = None) -> str:
    """3x3 conv, stride 1, padding 1: output K x OY x OX, input C x OY x OX, weights K*C*9."""
    text = f"""\
  - name: {name}
    operator_type: Conv
    equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
    dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
    loop_dims: [B, K, C, OY, OX, FY, FX]
    loop_sizes: [1, {K}, {C}, {OY}, {OX}, 3, 3]
    operand_precision: {{O: 16, O_final: 8, W: 8, I: 8}}
    padding: {{IY: [1, 1], IX: [1, 1]}}
"""
    return text + (f"    operand_source: {{I: {src}}}\n" if src else "")


def add(name: str, L: int, D: int, i_src: str, w_src: str) -> str:
    return f"""\
  - name: {name}
    operator_type: Add
    equation: O[l][d]=I[l][d]+W[l][d]
    loop_dims: [L, D]
    loop_sizes: [{L}, {D}]
    operand_precision: {{O: 8, O_final: 8, I: 8, W: 8}}
    operand_source: {{I: {i_src}, W: {w_src}}}
"""


def workload(*layers: str) -> str:
    return "version: 1\nname: w\nlayers:\n" + "".join(layers)


def simulate_files(directory: Path, hardware: str, layers: str, mapping: str | None = None,
                   cores: dict[str, str] | None = None, **kwargs):
    """Write the files into ``directory``, run with the roofline cost, check the trace."""
    directory = Path(directory)
    for name, text in {"dram.yaml": DRAM, "system.yaml": hardware, "workload.yaml": layers,
                       **(cores or {"core.yaml": core_yaml()})}.items():
        (directory / name).write_text(text)
    if mapping is not None:
        (directory / "mapping.yaml").write_text(mapping)
    detail = run_detailed(directory / "workload.yaml", directory / "system.yaml",
                          directory / "mapping.yaml" if mapping is not None else None,
                          cost_model="roofline", **kwargs)
    detail.trace.check()
    return detail


def rows(trace, cause: str) -> list[tuple]:
    """(cn, src, dst, bits, start, end, shared) of every transfer of ``cause``, by start, end, dst."""
    t = trace.transfers
    mask = t.of(cause)
    found = zip(t.cn[mask].tolist(), t.src[mask].tolist(), t.dst[mask].tolist(), t.bits[mask].tolist(),
                t.start[mask].tolist(), t.end[mask].tolist(), t.shared[mask].tolist())
    return sorted(found, key=lambda r: (r[4], r[5], r[2], r[1], r[0]))


def counts(trace) -> dict[str, int]:
    return {cause: int(trace.transfers.of(cause).sum()) for cause in CAUSES}


def test_constants_the_hand_arithmetic_relies_on():
    assert PREFETCH_DEPTH == 2 and CHUNK_CYCLES == 512
    assert CAUSES == ("input_fetch", "weight_fetch", "core_to_core", "dram_write", "dram_read", "sink_write",
                      "spill", "refetch", "stream")


# -- 1. core to core over a point-to-point link ---------------------------------------------

TWO_CORES = system_yaml({0: "core.yaml", 1: "core.yaml"}, 2, [
    "{type: link, cores: [0, 1], bandwidth: 24, unit_energy_cost: 0.25}",  # link 0
    "{type: bus, cores: [0, 1, 2], bandwidth: 32, unit_energy_cost: 0.5}",  # link 1
])
CONV_CORE = core_yaml(dataflows='dataflows: {D1: ["K, 4"], D2: ["C, 4"]}\n')


def test_producer_and_consumer_on_two_cores_joined_by_a_link(tmp_path):
    # conv_a (K 8, C 4, 4x4) on core 0 feeds conv_b (K 4, C 8, 4x4) on core 1.
    # Roofline with K and C unrolled 4 ways: conv_a ceil(8/4)*ceil(4/4)*4*4*3*3 = 288 cycles,
    # conv_b 1*2*144 = 288 (the SRAM side, (2304 + 512) / 1024 -> 3 cycles, is hidden).
    # Bits: W_a = 8*4*9*8 = 2304, I_a = 4*4*4*8 = 512, conv_a's output 8*16*8 = 1024,
    # W_b = 4*8*9*8 = 2304, conv_b's output 4*16*8 = 512.
    # Bus and DRAM port, 32 bits/cycle, first come first served:
    #   W_a 0..72 and I_a 72..88 for core 0 (core 0's loader goes first), W_b 88..160 for core 1.
    # conv_a 88..376; its output crosses the 24-bit link (lowest link id among the one-hop
    # routes): ceil(1024 / 24) = 43 cycles, 376..419; conv_b 419..707; its output to DRAM
    # over the bus: 512 / 32 = 16 cycles, 707..723.
    mapping = "version: 1\nlayers:\n  - {name: conv_a, core_allocation: [0]}\n" \
              "  - {name: conv_b, core_allocation: [1]}\n"
    layers = workload(conv("conv_a", 8, 4, 4, 4), conv("conv_b", 4, 8, 4, 4, "conv_a"))
    detail = simulate_files(tmp_path, TWO_CORES, layers, mapping, cores={"core.yaml": CONV_CORE})
    trace = detail.trace
    assert list(trace.allocation.core) == [0, 1]
    assert list(trace.compute_cycles) == [288, 288]
    assert rows(trace, "weight_fetch") == [(0, 2, 0, 2304, 0, 72, False), (1, 2, 1, 2304, 88, 160, False)]
    assert rows(trace, "input_fetch") == [(0, 2, 0, 512, 72, 88, False)]
    assert rows(trace, "core_to_core") == [(1, 0, 1, 1024, 376, 419, False)]
    c2c = trace.transfers.of("core_to_core")
    assert trace.transfers.routes[int(trace.transfers.route[c2c][0])] == (0,)  # over the link, not the bus
    assert list(trace.start) == [88, 376 + 43] and list(trace.end) == [376, 419 + 288]
    assert trace.ready[1] == 419  # its input landed exactly when it started
    assert rows(trace, "sink_write") == [(-1, 1, 2, 512, 707, 723, False)]
    assert detail.result.latency_cycles == 723
    # interconnect energy = bits x link energy per bit: 1024 x 0.25 on the link, no DRAM energy
    assert trace.transfers.interconnect_energy_pj[c2c].tolist() == [256.0]
    assert trace.transfers.dram_energy_pj[c2c].tolist() == [0.0]
    # the link carried 43 cycles, the bus 72 + 16 + 72 + 16 = 176
    assert trace.link_busy_cycles == (43, 176)
    # the bus rows: (2304 + 512 + 2304 + 512) x 0.5 pJ/bit = 2816 pJ, plus the link's 256
    assert detail.result.energy_pj["interconnect"] == 2816 + 256
    assert detail.result.traffic_bytes["core_to_core"] == 128


# -- 2. contending transfers serialise on one link ------------------------------------------

SLOW_LINK = system_yaml({0: "core.yaml", 1: "core.yaml"}, 2, [
    "{type: link, cores: [0, 1], bandwidth: 8, unit_energy_cost: 0.25}",
    "{type: bus, cores: [0, 1, 2], bandwidth: 32, unit_energy_cost: 0.5}",
])


def test_two_transfers_on_one_link_serialise(tmp_path):
    # p (L 8, D 16, C 4) on core 0 in two L-tiles (CNs 0, 1) feeds q (L 8, D 4, C 16) on
    # core 1 in two L-tiles (CNs 2, 3). Each p tile: 4*16*4 = 256 MACs -> 16 cycles, output
    # 4*16*8 = 512 bits; each q tile: 4*4*16 = 256 MACs -> 16 cycles, output 128 bits.
    # Bus (32 bits/cycle): W_p 512 bits 0..16, I tile 0 (4*4*8 = 128) 16..20, I tile 1
    # 20..24 (p's second tile loads at once: two CNs per core), W_q 512 bits 24..40.
    # p0 20..36; its output crosses the 8-bit link in 512 / 8 = 64 cycles: 36..100.
    # p1 36..52 (ready at 24); its output asks for the link at 52 while p0's holds it until
    # 100, so it goes 100..164: the second starts when the first ends.
    # q0 100..116, q1 164..180; sink writes 128 / 32 = 4 cycles: 116..120, 180..184.
    mapping = """\
version: 1
layers:
  - {name: p, core_allocation: [0], intra_core_tiling: ["L, 2"]}
  - {name: q, core_allocation: [1], intra_core_tiling: ["L, 2"]}
"""
    detail = simulate_files(tmp_path, SLOW_LINK, workload(gemm("p", 8, 16, 4), gemm("q", 8, 4, 16, "p")), mapping)
    trace = detail.trace
    assert list(trace.compute_cycles) == [16, 16, 16, 16]
    first, second = rows(trace, "core_to_core")
    assert first == (2, 0, 1, 512, 36, 100, False)
    assert second == (3, 0, 1, 512, 100, 164, False)
    assert second[4] == first[5]  # start of the second = end of the first
    assert trace.end[1] == 52 < second[4]  # it was asked for at 52 and waited for the link
    assert list(trace.start) == [20, 36, 100, 164] and list(trace.end) == [36, 52, 116, 180]
    # on the bus too: each DRAM read starts when the previous one ends
    bus = rows(trace, "weight_fetch") + rows(trace, "input_fetch")
    assert sorted((r[4], r[5]) for r in bus) == [(0, 16), (16, 20), (20, 24), (24, 40)]
    assert [r[4:6] for r in rows(trace, "sink_write")] == [(116, 120), (180, 184)]
    assert detail.result.latency_cycles == 184
    assert trace.link_busy_cycles == (128, 16 + 4 + 4 + 16 + 4 + 4)


def test_a_long_transfer_goes_in_chunks_and_lets_others_in(tmp_path):
    # Core 0 fetches 19200 bits of weights (p: L 1, D 600, C 4): 600 cycles on the 32-bit
    # bus, more than CHUNK_CYCLES = 512, so a 512-cycle chunk (0..512) goes first. Requests
    # made meanwhile queue behind it: core 0's input (1*4*8 = 32 bits, 512..513), core 1's
    # weights for q (L 1, D 4, C 4: 128 bits, 513..517) and q's input (32 bits, 517..518).
    # The second chunk (19200 - 512*32 = 2816 bits, 88 cycles) asks at 512, goes 518..606.
    # q: 16 MACs -> 1 cycle, 518..519; its 32-bit output waits for the bus: 606..607.
    # p: 2400 MACs -> 150 cycles, 606..756; its 4800-bit output 756..906.
    mapping = "version: 1\nlayers:\n  - {name: p, core_allocation: [0]}\n  - {name: q, core_allocation: [1]}\n"
    detail = simulate_files(tmp_path, SLOW_LINK, workload(gemm("p", 1, 600, 4), gemm("q", 1, 4, 4)), mapping)
    trace = detail.trace
    assert rows(trace, "weight_fetch") == [(0, 2, 0, 19200, 0, 606, False), (1, 2, 1, 128, 513, 517, False)]
    assert [r[4:6] for r in rows(trace, "input_fetch")] == [(512, 513), (517, 518)]
    assert list(trace.start) == [606, 518] and list(trace.end) == [756, 519]
    assert [r[4:6] for r in rows(trace, "sink_write")] == [(606, 607), (756, 906)]
    assert detail.result.latency_cycles == 906
    # the bus carried every bit once: 600 + 1 + 4 + 1 + 1 + 150 cycles
    assert trace.link_busy_cycles == (0, 757)
    assert sorted(trace.transfers.interconnect_energy_pj[trace.transfers.of("weight_fetch")].tolist()) == [64.0, 9600.0]


LINE = system_yaml({0: "core.yaml", 1: "core.yaml", 2: "core.yaml"}, 3, [
    "{type: link, cores: [0, 1], bandwidth: 32, unit_energy_cost: 0.25}",  # link 0
    "{type: link, cores: [1, 2], bandwidth: 16, unit_energy_cost: 0.5}",  # link 1
    "{type: bus, cores: [0, 1, 3], bandwidth: 32, unit_energy_cost: 0.5}",  # link 2: core 2 is not on it
])


def test_a_route_over_two_links_runs_at_the_slowest_and_pays_for_both(tmp_path):
    # p (L 4, D 32, C 4) on core 0 feeds q (L 4, D 4, C 32) on core 2; core 2 reaches
    # core 0 over links 0 and 1 (via core 1) and DRAM over link 1 and the bus.
    # Bits: W_p = 32*4*8 = 1024, I_p = 4*4*8 = 128, p's output 4*32*8 = 1024, W_q = 4*32*8 =
    # 1024, q's output 4*4*8 = 128. Both CNs: 512 MACs -> 32 cycles.
    #   W_p over the bus, 1024 / 32: 0..32; I_p 32..36; p 36..68.
    #   W_q, DRAM -> core 1 -> core 2: bus and link 1, min(32, 16, port 32) = 16 bits/cycle,
    #   1024 / 16 = 64 cycles, once the bus and the port are free: 36..100.
    #   p's output, core 0 -> 1 -> 2 (links 0 and 1): 16 bits/cycle again, 64 cycles, but link 1
    #   is held by W_q until 100: 100..164. q 164..196; its output 2 -> 1 -> DRAM at 16
    #   bits/cycle: 8 cycles, 196..204.
    # Energy per bit of a route = the sum over its links: 0.25 + 0.5 for p's output,
    # 0.5 + 0.5 for W_q.
    mapping = "version: 1\nlayers:\n  - {name: p, core_allocation: [0]}\n  - {name: q, core_allocation: [2]}\n"
    detail = simulate_files(tmp_path, LINE, workload(gemm("p", 4, 32, 4), gemm("q", 4, 4, 32, "p")), mapping)
    trace, t = detail.trace, detail.trace.transfers
    assert rows(trace, "weight_fetch") == [(0, 3, 0, 1024, 0, 32, False), (1, 3, 2, 1024, 36, 100, False)]
    assert rows(trace, "core_to_core") == [(1, 0, 2, 1024, 100, 164, False)]
    assert rows(trace, "sink_write") == [(-1, 2, 3, 128, 196, 204, False)]
    assert list(trace.start) == [36, 164] and list(trace.end) == [68, 196]
    routes = {cause: t.routes[int(t.route[t.of(cause)][-1])] for cause in ("core_to_core", "sink_write")}
    assert routes == {"core_to_core": (0, 1), "sink_write": (1, 2)}
    assert t.interconnect_energy_pj[t.of("core_to_core")].tolist() == [1024 * 0.75]
    assert sorted(t.interconnect_energy_pj[t.of("weight_fetch")].tolist()) == [1024 * 0.5, 1024 * 1.0]
    # link 0: 64 cycles; link 1: 64 + 64 + 8; the bus: 32 + 4 + 64 + 8
    assert trace.link_busy_cycles == (64, 136, 108)
    assert detail.result.latency_cycles == 204


# -- 3. four cores on one DRAM bus: serialised weights, multicast input -------------------

FOUR_ON_A_BUS = system_yaml({c: "core.yaml" for c in range(4)}, 4, [
    "{type: bus, cores: [0, 1, 2, 3, 4], bandwidth: 32, unit_energy_cost: 0.5}",
])


def test_four_cores_on_one_bus_serialise_weights_and_share_the_input(tmp_path):
    # p (L 4, D 16, C 8) split D four ways over cores 0..3: each core's weights are its own
    # 4*8*8 = 256 bits (8 bus cycles); every core reads the same whole input, 4*8*8 = 256 bits.
    # Loaders run in core order at t = 0: core 0 asks for W0 (0..8) then the input (8..16);
    # cores 1-3 find that input read still queued on the bus and ride along (multicast,
    # 8..16); their weights queue behind: W1 16..24, W2 24..32, W3 32..40.
    # Each CN: 4*4*8 = 128 MACs -> 8 cycles: core c runs 16+8c..24+8c. Outputs (4*4*8 = 128
    # bits, 4 cycles) go back in turn once the bus is free: 40..44, 44..48, 48..52, 52..56.
    mapping = 'version: 1\nlayers:\n  - {name: p, core_allocation: [0, 1, 2, 3], inter_core_tiling: ["D, 4"]}\n'
    detail = simulate_files(tmp_path, FOUR_ON_A_BUS, workload(gemm("p", 4, 16, 8)), mapping)
    trace, t = detail.trace, detail.trace.transfers
    assert list(trace.allocation.core) == [0, 1, 2, 3]
    weights = rows(trace, "weight_fetch")
    assert weights == [(0, 4, 0, 256, 0, 8, False), (1, 4, 1, 256, 16, 24, False),
                       (2, 4, 2, 256, 24, 32, False), (3, 4, 3, 256, 32, 40, False)]
    inputs = rows(trace, "input_fetch")
    assert inputs == [(0, 4, 0, 256, 8, 16, False), (1, 4, 1, 256, 8, 16, True),
                      (2, 4, 2, 256, 8, 16, True), (3, 4, 3, 256, 8, 16, True)]
    # the same data: one external tensor, read once
    fetch = t.of("input_fetch")
    assert set(t.data_kind[fetch].tolist()) == {EXTERNAL} and len(set(t.data[fetch].tolist())) == 1
    # energy only on the one real read: 256 / 32 = 8 words x 100 pJ, 256 x 0.5 pJ on the bus
    assert t.dram_energy_pj[fetch & ~t.shared].tolist() == [800.0]
    assert t.interconnect_energy_pj[fetch & ~t.shared].tolist() == [128.0]
    assert np.all(t.dram_energy_pj[fetch & t.shared] == 0) and np.all(t.interconnect_energy_pj[fetch & t.shared] == 0)
    assert list(trace.start) == [16, 24, 32, 40] and list(trace.end) == [24, 32, 40, 48]
    assert [r[4:6] for r in rows(trace, "sink_write")] == [(40, 44), (44, 48), (48, 52), (52, 56)]
    r = detail.result
    assert r.latency_cycles == 56
    # DRAM reads counted once: 4 x 256 weight bits + 256 input bits = 1280 bits = 160 bytes
    assert r.dram_traffic_bytes == {"read": 160, "write": 4 * 128 // 8}
    assert r.traffic_bytes["input_fetch"] == 32 and r.traffic_bytes["weight_fetch"] == 128
    # DRAM: 1280 read + 512 written bits = 56 words x 100 pJ; bus (1280 + 512) x 0.5
    assert r.energy_pj["offchip_memory"] == 5600.0 and r.energy_pj["interconnect"] == 896.0
    # the bus was busy 8 x 5 + 4 x 4 cycles: the multicast took no time of its own
    assert trace.link_busy_cycles == (56,)


# -- 4. one spill and one re-fetch ----------------------------------------------------------

ONE_CORE = system_yaml({0: "core.yaml"}, 1, ["{type: bus, cores: [0, 1], bandwidth: 32, unit_energy_cost: 0.5}"])
SKIP_CHAIN = workload(gemm("a", 4, 8, 8), gemm("b", 4, 8, 8, "a"), gemm("c", 4, 8, 8, "b"), add("d", 4, 8, "c", "a"))
ONE_GROUP = "version: 1\nfusion_groups:\n  - {layers: [a, b, c, d]}\n"


def test_a_memory_one_tensor_too_small_spills_once_and_refetches_once(tmp_path):
    # a -> b -> c -> d with a skip a -> d (d = c + a), one fusion group, one core whose SRAM
    # holds 1024 bits. Every gemm: weights 8*8*8 = 512 bits, output 4*8*8 = 256 bits,
    # 4*8*8 = 256 MACs -> 16 cycles; a's input 4*8*8 = 256 bits; d: 32 adds -> 2 cycles.
    #   0: a loads: W_a 512 + I_a 256 + O_a 256 = 1024, full. W_a 0..16, I_a 16..24; a 24..40.
    #  40: W_a, I_a freed; b loads: O_a 256 + W_b 512 + O_b 256 = 1024. W_b 40..56; b 56..72.
    #  72: W_b freed; O_a (kept for d) + O_b = 512. c needs W_c 512 + O_c 256 more: 1280 > 1024,
    #      so O_a, the tensor whose next use is furthest, spills to DRAM: 256 bits, 72..80.
    #  80: O_a gone (256), c loads (1024). W_c 80..96; c 96..112.
    # 112: O_b, W_c freed (256: O_c); d loads O_a back (re-fetch 112..120) and its output.
    #      d 120..122; its 256-bit output goes to DRAM 122..130.
    hw = ONE_CORE
    detail = simulate_files(tmp_path, hw, SKIP_CHAIN, ONE_GROUP, cores={"core.yaml": core_yaml(1024)})
    trace = detail.trace
    assert detail.cngraph.groups == (("a", "b", "c", "d"),)
    assert counts(trace)["spill"] == 1 and counts(trace)["refetch"] == 1 and counts(trace)["stream"] == 0
    assert rows(trace, "spill") == [(-1, 0, 1, 256, 72, 80, False)]
    assert rows(trace, "refetch") == [(3, 1, 0, 256, 112, 120, False)]
    t = trace.transfers
    assert t.data_kind[t.of("spill")].tolist() == [OUTPUT] and t.data[t.of("spill")].tolist() == [0]  # a's output
    assert t.data[t.of("refetch")].tolist() == [0]
    assert list(trace.start) == [24, 56, 96, 120] and list(trace.end) == [40, 72, 112, 122]
    (memory,) = trace.memories
    assert memory.capacity_bits == 1024
    assert list(zip(memory.times.tolist(), memory.bits.tolist())) == [
        (0, 1024), (40, 1024), (72, 512), (80, 1024), (112, 768), (122, 256), (130, 0)]
    assert memory.peak_bits == 1024 and np.all(memory.bits <= memory.capacity_bits)
    assert detail.result.spills == 1 and detail.result.latency_cycles == 130
    # with room for O_a beside c's working set (1280 bits), nothing spills
    roomy = simulate_files(tmp_path, hw, SKIP_CHAIN, ONE_GROUP, cores={"core.yaml": core_yaml(1280)})
    assert counts(roomy.trace)["spill"] == counts(roomy.trace)["refetch"] == 0


# -- 5./6. a fused chain of 3x3 convs vs the same chain layer by layer -----------------------

CONV_CHAIN = workload(conv("a", 4, 4, 16, 8), conv("b", 4, 4, 16, 8, "a"))
ROWS = 'version: 1\nlayers:\n  - {name: Conv, core_allocation: [0], intra_core_tiling: ["OY, all"]}\n'


def test_fused_conv_chain_holds_a_few_rows(tmp_path):
    # Two 3x3 convs, K = C = 4, 16 rows of 8 columns, one CN per output row (CNs 0-15: a,
    # 16-31: b). Every row of every feature map is 4*8*8 = 256 bits. Weights 4*4*9*8 = 1152
    # bits each, in their own SRAM; activations (inputs and outputs) in another.
    # A row of a (or b): 4*4*8*9 = 1152 MACs -> 72 cycles. Depth first: a0, a1, b0, a2, b1, ...
    # Bus: W_a 0..36, a0's input rows 0-1 (512 bits) 36..52, a1's new row 2 (256) 52..60,
    # W_b (prefetched) 60..96. a0 52..124, a1 124..196, then the core never waits: each next
    # a-row's new input row (8 cycles) comes in while the CN before it runs, so the other 30
    # CNs run back to back, 196 + 30 * 72 = 2356, and b15's row goes out in 8 cycles: 2364.
    # Peak of the activation SRAM, e.g. at 268 (b0 ends, a2 starts, b1 loads next):
    # a0, a1, a2 output rows (3 x 256) + a2's 3-row input slice (768) + b0's row being
    # written out (256) + b1's row reserved (256) = 2048 bits = 8 rows.
    fused = simulate_files(tmp_path, ONE_CORE, CONV_CHAIN, ROWS, cores={"core.yaml": split_core_yaml()})
    trace = fused.trace
    assert fused.cngraph.num_cns == 32 and fused.cngraph.groups == (("a", "b"),)
    assert set(trace.compute_cycles.tolist()) == {72}
    order = np.argsort(trace.start, kind="stable").tolist()
    assert order[:3] == [0, 1, 16] and order[3:5] == [2, 17] and order[-2:] == [30, 31]
    assert trace.start[0] == 52 and trace.start[16] == 196
    assert fused.result.latency_cycles == 196 + 30 * 72 + 8 == 2364
    act = next(m for m in trace.memories if m.memory == "asram")
    weights = next(m for m in trace.memories if m.memory == "wsram")
    assert act.peak_bits == 8 * 256 == 2048
    assert weights.peak_bits == 2 * 1152
    # every feature map of the chain (a's input, a's and b's outputs) is 16 rows = 4096 bits:
    # the fused chain never holds more than half of one
    assert act.peak_bits == 4096 // 2
    # no spill, no stream, nothing through DRAM but the input rows and b's output rows
    assert counts(trace)["spill"] == counts(trace)["stream"] == counts(trace)["dram_write"] == 0
    assert counts(trace)["sink_write"] == 16
    # each row of a reads a 3-row input window (2 rows at the edges); the input is cut at the
    # windows' edges into its 16 rows, and a row stays on chip until the last window holding
    # it has run: every input row comes from DRAM once, 16 x 256 = 4096 bits (overlapping
    # slices, fetched per window, were 2 x 512 + 14 x 768 = 11776)
    fetched = trace.transfers.bits[trace.transfers.of("input_fetch")]
    assert fetched.tolist() == [256] * 16 and int(fetched.sum()) == 4096
    assert counts(trace)["refetch"] == 0

    # The same chain layer by layer: every feature map whole. At t = 0, a and b (the core
    # loads two CNs) reserve a's input, a's output, b's copy of it (read back from DRAM) and
    # b's output: 4 x 4096 = 16384 bits.
    lbl = simulate_files(tmp_path, ONE_CORE, CONV_CHAIN, ROWS, cores={"core.yaml": split_core_yaml()},
                         mode="layer_by_layer")
    lbl_act = next(m for m in lbl.trace.memories if m.memory == "asram")
    assert lbl_act.peak_bits == 4 * 4096 == 8 * act.peak_bits


def test_fused_conv_chain_runs_in_eight_rows_of_memory(tmp_path):
    # The activation SRAM cut to those 2048 bits (the group forced, since automatic groups
    # would split a 2048-bit memory): the same schedule, nothing spilled or streamed.
    mapping = ROWS + "fusion_groups:\n  - {layers: [a, b]}\n"
    detail = simulate_files(tmp_path, ONE_CORE, CONV_CHAIN, mapping, cores={"core.yaml": split_core_yaml(2048)})
    trace = detail.trace
    assert detail.result.latency_cycles == 2364
    assert counts(trace)["spill"] == counts(trace)["stream"] == counts(trace)["refetch"] == 0
    act = next(m for m in trace.memories if m.memory == "asram")
    assert act.peak_bits == act.capacity_bits == 2048


def test_conv_chain_layer_by_layer_by_hand(tmp_path):
    # Whole layers: a and b each 16*4*4*8*9 = 18432 MACs -> 1152 cycles; every feature map
    # 4*16*8*8 = 4096 bits (128 bus cycles), weights 1152 bits (36 cycles).
    #   W_a 0..36, a's input 36..164; a 164..1316.
    #   b is loaded at t = 0 too (two CNs per core): W_b queues behind, 164..200.
    #   a's output crosses groups: written to DRAM 1316..1444, read back 1444..1572.
    #   b 1572..2724; its output to DRAM 2724..2852.
    detail = simulate_files(tmp_path, ONE_CORE, CONV_CHAIN, ROWS, cores={"core.yaml": split_core_yaml()},
                            mode="layer_by_layer")
    trace = detail.trace
    assert detail.cngraph.num_cns == 2 and list(trace.compute_cycles) == [1152, 1152]
    assert [r[4:6] for r in rows(trace, "weight_fetch")] == [(0, 36), (164, 200)]
    assert [r[4:6] for r in rows(trace, "input_fetch")] == [(36, 164)]
    assert rows(trace, "dram_write") == [(-1, 0, 1, 4096, 1316, 1444, False)]
    assert rows(trace, "dram_read") == [(1, 1, 0, 4096, 1444, 1572, False)]
    assert rows(trace, "sink_write") == [(-1, 0, 1, 4096, 2724, 2852, False)]
    assert list(trace.start) == [164, 1572] and list(trace.end) == [1316, 2724]
    assert detail.result.latency_cycles == 2852
    assert detail.result.dram_traffic_bytes == {"read": (1152 * 2 + 4096 * 2) // 8, "write": 4096 * 2 // 8}


# -- 7. scheduling policies -------------------------------------------------------------------

POLICY_GRAPH = workload(conv("a", 4, 4, 4, 4), conv("b", 4, 4, 4, 4, "a"), gemm("c", 4, 4, 4))
POLICY_MAPPING = 'version: 1\nlayers:\n  - {name: Conv, intra_core_tiling: ["OY, all"]}\n'


def test_policy_ranks_by_hand(tmp_path):
    # CNs: a0..a3 = 0..3 (rows of a), b0..b3 = 4..7, c = 8 (independent, reads a network
    # input), all in one fusion group (no hardware: no capacity limit).
    (tmp_path / "w.yaml").write_text(POLICY_GRAPH)
    (tmp_path / "m.yaml").write_text(POLICY_MAPPING)
    wl = load_workload(tmp_path / "w.yaml")
    g = tile(wl, plan_layers(wl, None, load_mapping(tmp_path / "m.yaml")), "fused")
    assert g.num_cns == 9 and set(g.group.tolist()) == {0}
    cycles = np.array([10, 30, 20, 5, 7, 7, 7, 7, 3])

    def order(policy):
        return np.argsort(ranks(g, policy, cycles)).tolist()

    # layer_by_layer: CN index.
    assert ranks(g, "layer_by_layer", cycles).tolist() == list(range(9))
    # depth_first: wave = tile, raised to the producers' waves; b_j needs a_{j+1}, so
    # waves a: 0 1 2 3, b: 1 2 3 3, c: 0. Sorted by (wave, layer, CN):
    # a0 c | a1 b0 | a2 b1 | a3 b2 b3
    assert order("depth_first") == [0, 8, 1, 4, 2, 5, 3, 6, 7]
    # latency: earliest start over compute cycles: a's and c 0; b0 = max(10, 30) = 30,
    # b1 = max(10, 30, 20) = 30, b2 = max(30, 20, 5) = 30, b3 = max(20, 5) = 20.
    assert order("latency") == [0, 1, 2, 3, 8, 7, 4, 5, 6]
    # memory: the deepest ready CN first. a's rows and c are ready (depth 0); after a0 and
    # a1, b0 (depth 1) is ready and goes first, and so on; c, as shallow as a, comes last
    assert order("memory") == [0, 1, 4, 2, 5, 3, 6, 7, 8]
    # every policy is a linear extension of the graph
    from stream.cli import POLICIES as CLI_POLICIES
    from stream.simulation import POLICIES

    assert CLI_POLICIES == POLICIES
    for policy in POLICIES:
        rank = ranks(g, policy, cycles)
        assert np.all(rank[g.edge_src] < rank[g.edge_dst])
    with pytest.raises(ValueError):
        ranks(g, "fastest", cycles)


@pytest.mark.parametrize("policy, expected", [
    ("depth_first", [0, 8, 1, 4, 2, 5, 3, 6, 7]),
    # the simulator's own cycles: a, b rows 4*4*4*9 = 576 MACs -> 36 cycles, c 64 -> 4;
    # b_j's earliest start is 36, so c (0) goes before every b
    ("latency", [0, 1, 2, 3, 8, 4, 5, 6, 7]),
    ("layer_by_layer", list(range(9))),
    ("memory", [0, 1, 4, 2, 5, 3, 6, 7, 8]),
])
def test_one_core_runs_its_cns_in_rank_order(tmp_path, policy, expected):
    mapping = POLICY_MAPPING.replace("{name: Conv,", "{name: Conv, core_allocation: [0],")
    detail = simulate_files(tmp_path, ONE_CORE, POLICY_GRAPH, mapping, policy=policy)
    trace = detail.trace
    assert trace.policy == policy
    assert list(trace.compute_cycles) == [36] * 8 + [4]
    assert np.argsort(ranks(detail.cngraph, policy, trace.compute_cycles)).tolist() == expected
    assert np.argsort(trace.start, kind="stable").tolist() == expected
    if policy == "layer_by_layer":  # each layer waits for the one before it to finish
        assert trace.start[4:8].min() >= trace.end[0:4].max() and trace.start[8] >= trace.end[4:8].max()


def test_unknown_policy_is_refused(tmp_path):
    with pytest.raises(ValueError, match="policy"):
        simulate_files(tmp_path, ONE_CORE, POLICY_GRAPH, POLICY_MAPPING, policy="fastest")


# -- 8. too large for the memory: streams ----------------------------------------------------


BIG_AND_SMALL = system_yaml({0: "big.yaml", 1: "small.yaml"}, 2, ["{type: link, cores: [0, 1], bandwidth: 32}",
                                                                  "{type: bus, cores: [0, 1, 2], bandwidth: 32}"])
PRODUCER_CONSUMER = workload(gemm("a", 8, 64, 4), gemm("b", 8, 4, 64, "a"))
A_ON_0_B_ON_1 = "version: 1\nlayers:\n  - {name: a, core_allocation: [0]}\n  - {name: b, core_allocation: [1]}\n" \
                "fusion_groups:\n  - {layers: [a, b]}\n"


def test_an_input_from_another_core_too_large_for_the_memory_streams_from_that_core(tmp_path):
    # a (L 8, D 64, C 4) on core 0 feeds b (L 8, D 4, C 64) on core 1, whose SRAM holds 2048
    # bits. Bits: W_a = 64*4*8 = 2048, I_a = 8*4*8 = 256, a's output 8*64*8 = 4096, W_b =
    # 4*64*8 = 2048, b's output 8*4*8 = 256. Both CNs: 2048 MACs -> 128 cycles.
    # b needs 4096 + 2048 + 256 bits: the largest first streams until the rest fits: a's
    # output (4096, from core 0 over the link) and W_b (2048, from DRAM); b's output stays.
    #   core 0: W_a 0..64, I_a 64..72 on the bus; a 72..200.
    #   b starts when a ends, 200: the link carries 4096 / 32 = 128 cycles, 200..328, the bus
    #   W_b in 64, 200..264, the compute 200..328: b ends at 328; its output 328..336.
    # Inputs from other cores stream too (from the producer's core), so every operand of a
    # CN can stream and no CN is too large for its memory: the StreamError of
    # Engine._cannot_fit cannot be reached (see the next test).
    detail = simulate_files(tmp_path, BIG_AND_SMALL, PRODUCER_CONSUMER, A_ON_0_B_ON_1,
                            cores={"big.yaml": core_yaml(), "small.yaml": core_yaml(2048)})
    trace = detail.trace
    assert rows(trace, "stream") == [(1, 2, 1, 2048, 200, 264, False), (1, 0, 1, 4096, 200, 328, False)]
    assert counts(trace)["core_to_core"] == 0
    assert list(trace.start) == [72, 200] and list(trace.end) == [200, 328]
    assert rows(trace, "sink_write") == [(-1, 1, 2, 256, 328, 336, False)]
    small = next(m for m in trace.memories if m.name == "core1.sram")
    assert small.peak_bits == 256  # only b's output was ever in it
    assert detail.result.latency_cycles == 336


def test_a_stream_carries_the_rows_its_consumer_reads_not_the_whole_tile(tmp_path):
    # conv_a (K 8, C 4, 4x4) runs whole on core 0; conv_b (K 1, C 8, 4x4, 3x3 padded) runs
    # a row per CN on core 1, whose SRAM holds 1000 bits. A conv_b CN needs its weights
    # (1*8*9*8 = 576 bits, fetched once and kept), its output row (4*8 = 32) and conv_a's
    # output (8*4*4*8 = 1024): that does not fit, so the largest, conv_a's output, streams
    # from core 0 for every row. Each stream carries the rows that conv_b row reads:
    # rows 0-1, 0-2, 1-3 and 2-3 of conv_a, 2 or 3 rows x 4 columns x 8 channels x 8 bits.
    mapping = ("version: 1\nlayers:\n  - {name: conv_a, core_allocation: [0]}\n"
               "  - {name: conv_b, core_allocation: [1], intra_core_tiling: [\"OY, all\"]}\n"
               "fusion_groups:\n  - {layers: [conv_a, conv_b]}\n")
    detail = simulate_files(tmp_path, BIG_AND_SMALL, workload(conv("conv_a", 8, 4, 4, 4), conv("conv_b", 1, 8, 4, 4, "conv_a")),
                            mapping, cores={"big.yaml": core_yaml(), "small.yaml": core_yaml(1000)})
    t = detail.trace.transfers
    outputs = t.of("stream") & (t.data_kind == OUTPUT)
    assert sorted(zip(t.cn[outputs].tolist(), t.bits[outputs].tolist())) == [
        (1, 2 * 32 * 8), (2, 3 * 32 * 8), (3, 3 * 32 * 8), (4, 2 * 32 * 8)]
    assert t.src[outputs].tolist() == [0] * 4  # from conv_a's core, over the link
    assert counts(detail.trace)["core_to_core"] == 0


def test_in_an_eight_bit_memory_everything_streams(tmp_path):
    # The same pair with 8-bit SRAMs on both cores: nothing fits, everything streams, nothing
    # fails. a streams W_a 0..64, I_a 64..72 and its output to DRAM 72..200 on the bus while
    # computing 0..128: it ends at 200. b then reads a's output from DRAM 200..328, W_b
    # 328..392 and writes its output 392..400 (all on the one bus), computing 200..328.
    detail = simulate_files(tmp_path, BIG_AND_SMALL, PRODUCER_CONSUMER, A_ON_0_B_ON_1,
                            cores={"big.yaml": core_yaml(8), "small.yaml": core_yaml(8)})
    trace = detail.trace
    assert [r[1:] for r in rows(trace, "stream")] == [
        (2, 0, 2048, 0, 64, False), (2, 0, 256, 64, 72, False), (0, 2, 4096, 72, 200, False),
        (2, 1, 4096, 200, 328, False), (2, 1, 2048, 328, 392, False), (1, 2, 256, 392, 400, False)]
    assert counts(trace)["stream"] == len(trace.transfers)
    assert list(trace.start) == [0, 200] and list(trace.end) == [200, 400]
    assert all(m.peak_bits == 0 for m in trace.memories)
    assert detail.result.latency_cycles == 400


def test_an_operand_too_large_alone_streams(tmp_path):
    # One gemm (L 4, D 16, C 16) in a 1536-bit SRAM: weights 16*16*8 = 2048 bits cannot fit
    # even alone; input 4*16*8 = 512 and output 512 fit beside each other. The weights
    # stream while the CN runs. Bus 16 bits/cycle: input 512/16 = 32 cycles, 0..32; the CN
    # starts at 32, the stream 2048/16 = 128 cycles, 32..160, the compute 4*16*16/16 = 64
    # cycles: the CN lasts as long as its stream, 32..160; its output 160..192.
    hw = system_yaml({0: "core.yaml"}, 1, ["{type: bus, cores: [0, 1], bandwidth: 16, unit_energy_cost: 0.5}"])
    detail = simulate_files(tmp_path, hw, workload(gemm("big", 4, 16, 16)), cores={"core.yaml": core_yaml(1536)})
    trace = detail.trace
    assert rows(trace, "stream") == [(0, 1, 0, 2048, 32, 160, False)]
    assert counts(trace)["weight_fetch"] == 0
    assert trace.compute_cycles[0] == 64 and trace.start[0] == 32 and trace.end[0] == 160
    assert trace.end[0] - trace.start[0] >= 2048 // 16 > trace.compute_cycles[0]
    (memory,) = trace.memories
    assert memory.peak_bits == 1024 <= memory.capacity_bits  # input + output, never the weights
    assert detail.result.latency_cycles == 192
    assert detail.result.traffic_bytes["stream"] == 256


# -- 9. properties over random small graphs ----------------------------------------------------


@st.composite
def scenarios(draw, memory: str):
    """(files, kwargs): a chain or diamond of convs or gemms on 1-3 cores, randomly tiled.

    ``memory``: ``roomy``, the SRAMs hold everything; ``tight``, each SRAM holds 1-3 times
    the largest working set of any whole layer (every operand of the layer, its producers'
    whole outputs, outputs at 16 bits), so any CN fits once the rest is evicted, and spills
    happen; ``shared``, 2-4 cores share one SRAM of 8 bits up to that working set, so CNs
    wait for each other's room, and stream.
    """
    shared = memory == "shared"
    n_cores = draw(st.integers(2, 4) if shared else st.integers(1, 3))
    shape = draw(st.sampled_from(["conv_chain", "gemm_chain", "gemm_diamond"]))
    layers, rules, sizes = [], [], {}  # sizes: layer -> (input bits or producer, weight bits, output bits)

    def cores_and_split(parallel_dim: str, parallel_size: int) -> dict:
        cores = draw(st.lists(st.integers(0, n_cores - 1), min_size=1, max_size=n_cores, unique=True))
        rule = {"core_allocation": cores}
        if len(cores) > 1 and parallel_size >= 2 and draw(st.booleans()):
            rule["inter_core_tiling"] = [f"{parallel_dim}, {draw(st.integers(2, min(len(cores), parallel_size)))}"]
        return rule

    if shape == "conv_chain":
        n = draw(st.integers(1, 3))
        oy, ox = draw(st.integers(2, 6)), draw(st.integers(2, 5))
        ch = draw(st.lists(st.integers(1, 6), min_size=n + 1, max_size=n + 1))
        for i in range(n):
            name, src = f"l{i}", (f"l{i - 1}" if i else None)
            layers.append(conv(name, ch[i + 1], ch[i], oy, ox, src))
            rule = cores_and_split("K", ch[i + 1])
            intra = draw(st.sampled_from([None, "OY, all", "OY, 2"]))
            if intra:
                rule["intra_core_tiling"] = [intra]
            rules.append((name, rule))
            sizes[name] = (src or ch[i] * oy * ox * 8, ch[i + 1] * ch[i] * 9 * 8, ch[i + 1] * oy * ox * 16)
    else:
        L = draw(st.integers(1, 8))
        if shape == "gemm_chain":  # l0 -> l1 -> ...
            dims = draw(st.lists(st.integers(1, 12), min_size=2, max_size=4))
            specs = [(dims[i + 1], dims[i], f"l{i - 1}" if i else None) for i in range(len(dims) - 1)]
        else:  # l0 -> l1, l0 -> l2, l3 = l1 + l2
            c, d1, d2 = draw(st.lists(st.integers(1, 12), min_size=3, max_size=3))
            specs = [(d1, c, None), (d2, d1, "l0"), (d2, d1, "l0")]
        for i, (d, c, src) in enumerate(specs):
            layers.append(gemm(f"l{i}", L, d, c, src))
            sizes[f"l{i}"] = (src or L * c * 8, d * c * 8, L * d * 16)
        if shape == "gemm_diamond":
            layers.append(add("l3", L, d2, "l1", "l2"))
            sizes["l3"] = (("l1", "l2"), 0, L * d2 * 16)
            specs.append((d2, d2, None))
        for i, (d, _, _) in enumerate(specs):
            rule = cores_and_split("D", d)
            intra = draw(st.sampled_from([None, "L, all", "L, 2"]))
            if intra and L >= 2:
                rule["intra_core_tiling"] = [intra]
            rules.append((f"l{i}", rule))

    def input_bits(source) -> int:
        if isinstance(source, int):
            return source
        names = source if isinstance(source, tuple) else (source,)
        return sum(sizes[s][2] for s in names)

    working_set = max(input_bits(i) + w + o for i, w, o in sizes.values())
    if memory == "tight":
        capacity = int(working_set * draw(st.floats(1.0, 3.0)))
    elif shared:
        capacity = max(8, int(working_set * draw(st.floats(0.0, 1.0))))
    else:
        capacity = 4 * sum(input_bits(i) + w + o for i, w, o in sizes.values())
    if shared:  # sharing cores talk through their memory; each reaches DRAM alone
        links = [f"{{type: bus, cores: [{c}, {n_cores}], bandwidth: {draw(st.sampled_from([16, 32, 64]))}, "
                 "unit_energy_cost: 0.5}" for c in range(n_cores)]
    else:
        links = [f"{{type: link, cores: [{a}, {b}], bandwidth: {draw(st.sampled_from([8, 16, 64]))}}}"
                 for a in range(n_cores) for b in range(a + 1, n_cores)]
        links.append(f"{{type: bus, cores: [{', '.join(map(str, range(n_cores + 1)))}], "
                     f"bandwidth: {draw(st.sampled_from([16, 32, 64]))}, unit_energy_cost: 0.5}}")
    mapping = "version: 1\nlayers:\n" + "".join(
        f"  - {{name: {name}, " + ", ".join(f"{k}: {v!r}".replace("'", '"') for k, v in rule.items()) + "}\n"
        for name, rule in rules)
    if draw(st.booleans()):  # one fusion group (automatic groups split where weights fill half the SRAM)
        mapping += f"fusion_groups:\n  - {{layers: [{', '.join(name for name, _ in rules)}]}}\n"
    system = system_yaml({c: "core.yaml" for c in range(n_cores)}, n_cores, links)
    if shared:
        system += f"core_memory_sharing:\n  - [{', '.join(map(str, range(n_cores)))}]\n"
    files = {
        "system.yaml": system,
        "workload.yaml": workload(*layers),
        "mapping.yaml": mapping,
        "core.yaml": core_yaml(capacity),
    }
    kwargs = {"mode": draw(st.sampled_from(["fused", "layer_by_layer"])),
              "policy": draw(st.sampled_from([None, "depth_first", "latency", "layer_by_layer", "memory"]))}
    return files, kwargs


def run_scenario(files: dict, kwargs: dict):
    with tempfile.TemporaryDirectory() as tmp:
        cores = {"core.yaml": files["core.yaml"]}
        return simulate_files(Path(tmp), files["system.yaml"], files["workload.yaml"], files["mapping.yaml"],
                              cores=cores, **kwargs)


def check_properties(files: dict, kwargs: dict):
    detail = run_scenario(files, kwargs)  # trace.check() inside
    again = run_scenario(files, kwargs)
    r = detail.result
    assert r.to_json() == again.result.to_json()
    assert np.array_equal(detail.trace.start, again.trace.start)
    e = r.energy_pj
    assert e["total"] == pytest.approx(e["mac"] + e["onchip_memory"] + e["offchip_memory"] + e["interconnect"])
    assert sum(r.transfer_energy_pj.values()) == pytest.approx(e["offchip_memory"] + e["interconnect"])
    assert sum(layer.macs for layer in r.layers) == detail.workload.macs
    t = detail.trace.transfers
    # multicast riders cost nothing; every moved bit of a route costs its links' energy per bit
    assert np.all(t.interconnect_energy_pj[t.shared] == 0) and np.all(t.dram_energy_pj[t.shared] == 0)
    assert np.allclose(t.interconnect_energy_pj[~t.shared], 0.5 * t.bits[~t.shared] * np.array(
        [sum(1 for link in t.routes[rid] if detail.accelerator.links[link].kind == "bus")
         for rid in t.route[~t.shared].tolist()]))
    for memory in detail.trace.memories:
        assert memory.peak_bits <= memory.capacity_bits
    return detail


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios("roomy"))
def test_random_graphs_with_roomy_memories(scenario):
    detail = check_properties(*scenario)
    # nothing had to leave a memory for lack of room
    assert counts(detail.trace)["spill"] == counts(detail.trace)["refetch"] == counts(detail.trace)["stream"] == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios("tight"))
def test_random_graphs_with_tight_memories(scenario):
    detail = check_properties(*scenario)
    # every CN fits once the rest is evicted: nothing streams
    assert counts(detail.trace)["stream"] == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios("shared"))
def test_random_graphs_on_shared_and_tiny_memories(scenario):
    check_properties(*scenario)  # it ends: the engine cannot stall (see its docstring)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios("shared"))
def test_random_graphs_on_shared_and_tiny_memories_at_length(scenario):
    check_properties(*scenario)


@pytest.mark.parametrize("policy", ["layer_by_layer", "depth_first", "latency"])
def test_four_cores_sharing_a_small_memory_run_resnet18_layer_by_layer(tmp_path, policy):
    """Once a stall: four cores share one 256 KiB SRAM; layer by layer, an Add needs its two
    inputs and its output (about 600 KB) at once. Each core loaded its next CN and the
    cores waited for each other's room. The lowest-ranked CN not yet loaded never waits
    for room other loaded CNs hold: it streams, and the run goes on."""
    core = (INPUTS / "hardware" / "cores" / "tpu_32x32.yaml").read_text().replace("size: 8388608", "size: 2097152")
    (tmp_path / "tpu.yaml").write_text(core)
    (tmp_path / "dram.yaml").write_text(DRAM)
    links = [f"{{type: link, cores: [{c}, 4], bandwidth: 64}}" for c in range(4)]
    (tmp_path / "system.yaml").write_text(system_yaml({c: "tpu.yaml" for c in range(4)}, 4, links)
                                          + "core_memory_sharing:\n  - [0, 1, 2, 3]\n")
    detail = run_detailed(INPUTS / "workloads" / "resnet18.yaml", tmp_path / "system.yaml", "none",
                          mode="layer_by_layer", policy=policy, cost_model="roofline", allocator="greedy")
    detail.trace.check()
    (memory,) = detail.trace.memories
    assert memory.name == "core0+1+2+3.sram_1mib" and memory.peak_bits <= 2097152
    assert counts(detail.trace)["stream"] > 0
    assert sum(l.macs for l in detail.result.layers) == detail.workload.macs


@pytest.mark.parametrize("depth, starts, latency", [
    # one CN loaded at a time: a row's input comes only once the row before has ended, behind
    # that row's output: 64 + 4 x (16 in + 16 compute + 1 out) = 196
    (1, [80, 113, 146, 179], 196),
    # double buffering: row 1's input (80..96) comes while row 0 runs; then each next input
    # queues behind the output just written: rows at 80, 96, 113, 130, out 146..147
    (2, [80, 96, 113, 130], 147),
])
def test_prefetch_depth_is_how_far_a_core_loads_ahead(tmp_path, depth, starts, latency):
    # One gemm (L 4, D 4, C 64), a row per CN on one 4x4 core: 256 MACs = 16 cycles a row.
    # Over the 32-bit bus: the weights (4 x 64 x 8 = 2048 bits) 0..64, each input row (512)
    # 16 cycles, each output row (32) 1 cycle; the core's prefetch_depth set per run.
    for name, text in {"core.yaml": core_yaml(), "dram.yaml": DRAM, "system.yaml": ONE_CORE,
                       "w.yaml": workload(gemm("g", 4, 4, 64)),
                       "m.yaml": 'version: 1\nlayers:\n  - {name: g, core_allocation: [0], intra_core_tiling: ["L, all"]}\n'
                       }.items():
        (tmp_path / name).write_text(text)
    acc = load_hardware(tmp_path / "system.yaml").with_prefetch_depth(depth)
    detail = run_detailed(tmp_path / "w.yaml", acc, tmp_path / "m.yaml", cost_model="roofline", allocator="greedy")
    detail.trace.check()
    assert detail.trace.start.tolist() == starts and detail.result.latency_cycles == latency
    assert [r[4:6] for r in rows(detail.trace, "input_fetch")][:2] == [(64, 80), (80 if depth == 2 else 97, 96 if depth == 2 else 113)]


@pytest.mark.parametrize("blocking, starts, latency", [
    # the write-back of a row's output runs while the next row computes
    (False, [80, 96, 113, 130], 147),
    # each row waits for the one before it to be written out (1 cycle): row 1 starts at 97,
    # row 2 (its input 97..113) at 114 after row 1's output 113..114, row 3 at 131; 148
    (True, [80, 97, 114, 131], 148),
])
def test_blocking_writeback_holds_the_next_cn(tmp_path, blocking, starts, latency):
    # The row-tiled Gemm of the prefetch-depth test, double-buffered.
    for name, text in {"core.yaml": core_yaml() + f"blocking_writeback: {str(blocking).lower()}\n",
                       "dram.yaml": DRAM, "system.yaml": ONE_CORE, "w.yaml": workload(gemm("g", 4, 4, 64)),
                       "m.yaml": 'version: 1\nlayers:\n  - {name: g, core_allocation: [0], intra_core_tiling: ["L, all"]}\n'
                       }.items():
        (tmp_path / name).write_text(text)
    detail = run_detailed(tmp_path / "w.yaml", tmp_path / "system.yaml", tmp_path / "m.yaml",
                          cost_model="roofline", allocator="greedy")
    detail.trace.check()
    assert detail.trace.start.tolist() == starts and detail.result.latency_cycles == latency


def test_prefetch_depth_is_a_core_file_key(tmp_path):
    (tmp_path / "core.yaml").write_text(core_yaml() + "prefetch_depth: 1\n")
    (tmp_path / "dram.yaml").write_text(DRAM)
    (tmp_path / "system.yaml").write_text(ONE_CORE)
    assert load_hardware(tmp_path / "system.yaml").core(0).prefetch_depth == 1
    (tmp_path / "core.yaml").write_text(core_yaml() + "prefetch_depth: 0\n")
    with pytest.raises(InputError, match="prefetch_depth: expected an integer >= 1"):
        load_hardware(tmp_path / "system.yaml")


@pytest.mark.parametrize("channels, copies, latency", [
    (None, [(20, 148), (32, 160)], 170),  # any number: both copies come at once
    (2, [(20, 148), (32, 160)], 170),
    (1, [(20, 148), (148, 276)], 286),  # one channel: c's copy waits for a's
])
def test_dma_channels_bound_the_transfers_a_core_has_under_way(tmp_path, channels, copies, latency):
    # a (core 0) and c (core 2), Gemms L 4, D 8, C 4, feed d = a + c on core 1, one fusion
    # group. Over the 32-bit bus: W_a (256 bits) 0..8, I_a (128) 8..12, W_c 12..20, I_c
    # 20..24; a runs 12..20 and c 24..32 (128 MACs / 16). Their 256-bit outputs reach core 1
    # over links of 2 bits a cycle (128 cycles each): a's 20..148, c's from 32. d (32 adds,
    # 2 cycles) starts when both are in and writes its 256 bits out in 8.
    system = system_yaml({0: "core.yaml", 1: "core.yaml", 2: "core.yaml"}, 3,
                         ["{type: link, cores: [0, 1], bandwidth: 2}", "{type: link, cores: [2, 1], bandwidth: 2}",
                          "{type: bus, cores: [0, 1, 2, 3], bandwidth: 32}"])
    mapping = ("version: 1\nlayers:\n  - {name: a, core_allocation: [0]}\n  - {name: c, core_allocation: [2]}\n"
               "  - {name: d, core_allocation: [1]}\nfusion_groups:\n  - {layers: [a, c, d]}\n")
    core = core_yaml()
    (tmp_path / "dram.yaml").write_text(DRAM)
    (tmp_path / "core.yaml").write_text(core)
    (tmp_path / "core1.yaml").write_text(core + (f"dma_channels: {channels}\n" if channels else ""))
    (tmp_path / "system.yaml").write_text(system.replace("1: core.yaml", "1: core1.yaml"))
    (tmp_path / "w.yaml").write_text(workload(gemm("a", 4, 8, 4), gemm("c", 4, 8, 4), add("d", 4, 8, "a", "c")))
    (tmp_path / "m.yaml").write_text(mapping)
    assert load_hardware(tmp_path / "system.yaml").core(1).dma_channels == channels
    detail = run_detailed(tmp_path / "w.yaml", tmp_path / "system.yaml", tmp_path / "m.yaml",
                          cost_model="roofline", allocator="greedy")
    detail.trace.check()
    assert [r[4:6] for r in rows(detail.trace, "core_to_core")] == copies
    assert detail.result.latency_cycles == latency


# -- loads waiting on prefetched weights in flight (once a stall) ---------------------------


def test_a_core_waiting_for_a_prefetched_weight_resumes_when_it_lands(tmp_path):
    # One core, 3200-bit SRAM, a -> b -> c forced into one fusion group:
    #   a: L 4, D 2, C 2: W 32, I 64, O 64 bits (working set 160), 1 cycle;
    #   b: L 4, D 64, C 2: W 1024, O 2048 (working set with O_a 3136 <= 3200);
    #   c: L 4, D 2, C 64: W 1024.
    # While a runs, b does not fit beside it (160 + 3072 > 3200), so it is not loaded, but
    # its weights are prefetched, one tensor at a time in the order the CNs need them:
    # W_b 3..35 (1024 bits over the 32-bit bus). a ends at 4; b then fits (O_a 64 + W_b 1024
    # + O_b 2048 = 3136 <= 3200), loads, waits for W_b still on its way and starts when it
    # lands, 35. W_c (1024 more) fits only once b has ended and W_b and O_a are gone.
    detail = simulate_files(tmp_path, ONE_CORE, workload(gemm("a", 4, 2, 2), gemm("b", 4, 64, 2, "a"),
                                                         gemm("c", 4, 2, 64, "b")),
                            "version: 1\nfusion_groups:\n  - {layers: [a, b, c]}\n",
                            cores={"core.yaml": core_yaml(3200)})
    trace = detail.trace
    # b runs 35..67 (32 cycles); W_c comes over the bus 67..99 (1024 / 32); c runs 99..131
    # and writes its 64-bit output 131..133.
    assert list(trace.start) == [3, 35, 99] and list(trace.end) == [4, 67, 131]
    rows = [(CAUSES[c], int(s), int(e)) for c, s, e in zip(trace.transfers.cause, trace.transfers.start,
                                                             trace.transfers.end)]
    assert rows == [("weight_fetch", 0, 1), ("input_fetch", 1, 3), ("weight_fetch", 3, 35),
                    ("weight_fetch", 67, 99), ("sink_write", 131, 133)]
    assert detail.result.spills == 0  # evicting a weight writes nothing


def test_a_memory_of_the_largest_working_set_completes_a_diamond(tmp_path):
    # l0 (L 4, D 1, C 1) -> l1 (L 4, D 7, C 1) and l2 (same, one CN per row); l3 = l1 + l2 per
    # row. The largest working set, an l3 row: l1's whole output 4*7*8 = 224 + an l2 row 56 +
    # its output 56 = 336 bits, the SRAM's size. Every CN fits once the rest is evicted.
    # Bus 16 bits/cycle: W_l0 (8 bits) 0..1, l0's input (32) 1..3; l0 3..4. l1 (W 56 + output
    # 224) does not fit beside l0 (72 bits), but W_l1 and W_l2 are prefetched (72 + 112 + margin
    # 2 x 72 <= 336): 3..7 and 7..11. At 4, l1 needs 224 bits beside O_l0 + W_l1 + W_l2 = 144:
    # 368 > 336, and W_l2 is still arriving; it lands at 11 and the loader goes on.
    hw = ONE_CORE.replace("bandwidth: 32", "bandwidth: 16")
    layers = workload(gemm("l0", 4, 1, 1), gemm("l1", 4, 7, 1, "l0"), gemm("l2", 4, 7, 1, "l0"),
                      add("l3", 4, 7, "l1", "l2"))
    mapping = 'version: 1\nlayers:\n  - {name: l0, core_allocation: [0]}\n  - {name: l1, core_allocation: [0]}\n' \
              '  - {name: l2, core_allocation: [0], intra_core_tiling: ["L, all"]}\n' \
              '  - {name: l3, core_allocation: [0], intra_core_tiling: ["L, all"]}\n'
    detail = simulate_files(tmp_path, hw, layers, mapping, cores={"core.yaml": core_yaml(336)})
    assert detail.cngraph.groups == (("l0", "l1", "l2", "l3"),)
    assert counts(detail.trace)["stream"] == 0

