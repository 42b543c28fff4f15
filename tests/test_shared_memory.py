"""Cores sharing one top memory: tracked once, no transfer between them."""

from __future__ import annotations

import numpy as np

from stream.api import run_detailed
from stream.simulation import CAUSES
from test_pipeline import CHAIN, CORE, DRAM

SHARED = """\
    version: 1
    name: shared_pair
    cores: {0: core.yaml, 1: core.yaml, 2: dram.yaml}
    offchip_core_id: 2
    core_connectivity:
      - {type: link, cores: [0, 2], bandwidth: 32}
      - {type: link, cores: [1, 2], bandwidth: 32}
    core_memory_sharing:
      - [0, 1]
"""
SPLIT = """\
    version: 1
    layers:
      - {name: conv_a, core_allocation: [0]}
      - {name: conv_b, core_allocation: [1]}
"""


def test_cores_sharing_a_memory_hand_data_over_in_place(write):
    write("core.yaml", CORE)
    write("dram.yaml", DRAM)
    detail = run_detailed(write("chain.yaml", CHAIN), write("system.yaml", SHARED), write("mapping.yaml", SPLIT),
                          cost_model="roofline")
    trace = detail.trace
    trace.check()
    assert [m.name for m in trace.memories] == ["core0+1.sram"]
    t = trace.transfers
    # conv_a's output is read by core 1 where core 0 left it: nothing moves between them
    assert not t.of("core_to_core").any()
    assert list(trace.allocation.core) == [0, 1]
    # W_a (2304 bits at 32/cycle: 0..72) and I_a (72..88) over link 0-2; W_b over link 1-2 at
    # the same time but the single DRAM port serialises it: 88..160. conv_a 88..376 (288
    # cycles); conv_b starts the moment conv_a ends.
    assert list(trace.start) == [88, 376] and list(trace.end) == [376, 664]
    causes = [CAUSES[c] for c in t.cause]
    assert causes == ["weight_fetch", "input_fetch", "weight_fetch", "sink_write"]
    assert list(t.start) == [0, 72, 88, 664] and list(t.end) == [72, 88, 160, 680]
    # one memory holds everything: both CNs' data at t = 0, as the single core in test_pipeline
    assert trace.memories[0].peak_bits == 2304 + 512 + 1024 + 2304 + 512
    assert np.all(trace.memories[0].bits <= trace.memories[0].capacity_bits)
