"""Figures: checked for what they show, not only that files appear."""

from __future__ import annotations

import pytest

from conftest import INPUTS
from stream.api import run_detailed
from stream.viz import energy_breakdown, gantt, memory_trace, utilisation
from test_pipeline import chain  # noqa: F401  (fixture)


@pytest.fixture
def chain_run(chain):  # noqa: F811
    return run_detailed(*chain, mode="fused", cost_model="roofline", allocator="greedy")


def test_memory_trace_marks_the_peak_the_result_reports(chain_run, tmp_path):
    drawn = memory_trace(chain_run.trace, tmp_path / "memory.pdf")
    r = chain_run.result
    # the chain's one SRAM: peak (2304 + 512 + 1024 + 2304 + 512) / 8 bytes at t = 0; 1,048,576 bits
    assert drawn == {"core0.sram": {"peak_bytes": 832, "capacity_bytes": 131072}}
    assert drawn["core0.sram"]["peak_bytes"] == r.peak_memory_bytes["core0.sram"]
    pdf = (tmp_path / "memory.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf  # TrueType fonts embedded


def test_energy_breakdown_adds_up(chain_run, tmp_path):
    drawn = energy_breakdown(chain_run.result, tmp_path / "energy.png")
    r = chain_run.result
    # the hand-worked energies of test_pipeline: 9216 + 1200 + 17600 + 2816 = 30832 pJ
    assert drawn["parts"] == {"mac": 9216.0, "onchip_memory": 1200.0, "offchip_memory": 17600.0,
                              "interconnect": 2816.0}
    assert sum(drawn["parts"].values()) == r.energy_pj["total"]
    # every layer that ran has a bar, compute plus its transfers
    assert list(drawn["layers"]) == ["conv_a", "conv_b"]
    layer_total = sum(c + t for c, t in drawn["layers"].values())
    assert layer_total == pytest.approx(r.energy_pj["total"])
    assert (tmp_path / "energy.png").read_bytes().startswith(b"\x89PNG")


def test_utilisation_shows_every_compute_core_and_busy_link(chain_run, tmp_path):
    drawn = utilisation(chain_run.result, tmp_path / "utilisation.png")
    # conv_a and conv_b run 88..376 and 376..664 of 680 cycles; the bus carries 72 + 16 + 72 + 16 cycles
    assert drawn == {"core 0": pytest.approx(576 / 680), "link 0": pytest.approx(176 / 680)}


def test_gantt_rows_are_the_cores_and_links_that_worked(chain_run, tmp_path):
    drawn = gantt(chain_run.trace, tmp_path / "gantt.png")
    # one core ran both CNs; the bus carried the four DRAM transfers (0..72, 72..88, 88..160
    # touch and merge into one bar; 664..680 is another), conv_a and conv_b touch too
    assert drawn == {"rows": ["core 0 (tiny)", "bus 0-1 (#0)"], "bars": 1 + 1 + 2}


def test_gantt_of_a_long_schedule_merges_what_a_pixel_cannot_separate(tmp_path):
    detail = run_detailed(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
                          INPUTS / "mappings" / "quad_core.yaml", allocator="greedy")
    drawn = gantt(detail.trace, tmp_path / "gantt.png")
    used_links = {l for r in set(detail.trace.transfers.route.tolist()) for l in detail.trace.transfers.routes[r]}
    assert len(drawn["rows"]) == 6 + len(used_links)  # four compute cores, pooling, SIMD
    # depth-first interleaves the layers row by row, so mostly the back-to-back transfer
    # chunks on the links merge: 4,447 bars for 11,374 CN and link events when measured
    t = detail.trace.transfers
    events = detail.cngraph.num_cns + sum(len(t.spans(row)) * len(t.routes[int(t.route[row])])
                                          for row in range(len(t)) if not t.shared[row])
    assert drawn["bars"] < 0.5 * events
