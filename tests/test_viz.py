"""Figures: checked for what they show, not only that files appear."""

from __future__ import annotations

import pytest

from stream.api import run_detailed
from stream.viz import energy_breakdown, memory_trace, utilisation
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
