"""Figures: checked for what they show, not only that files appear."""

from __future__ import annotations

import pytest

from conftest import INPUTS
from stream.api import run_detailed
from stream.results import timeline_of
from stream.viz import comparison, energy_breakdown, figures, gantt, memory_trace, utilisation
from test_pipeline import chain  # noqa: F401  (fixture)


@pytest.fixture
def chain_run(chain):  # noqa: F811
    return run_detailed(*chain, mode="fused", cost_model="roofline", allocator="greedy")


def test_memory_trace_marks_the_peak_the_result_reports(chain_run, tmp_path):
    drawn = memory_trace(chain_run.result, timeline_of(chain_run.trace), tmp_path / "memory.pdf")
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
    assert drawn == {"core 0 (tiny)": pytest.approx(576 / 680), "bus 0-1 (#0)": pytest.approx(176 / 680)}


def test_gantt_rows_are_the_cores_links_and_dram_ports_that_worked(chain_run, tmp_path):
    drawn = gantt(chain_run.result, timeline_of(chain_run.trace), tmp_path / "gantt.png")
    # one core ran both CNs (a bar each: two colours); the bus carried the three reads (0..72,
    # 72..88, 88..160 touch and merge into one bar) and the write-back (664..680), the DRAM's
    # one port the same as a read and a write: 2 + 2 + 1 + 1 bars
    assert drawn == {"rows": ["core 0 (tiny)", "bus 0-1 (#0)", "DRAM reads", "DRAM writes"], "bars": 6,
                     "legend": ["conv_a", "conv_b"]}
    # zoomed into 300..700: both CNs still show, the reads end before it begins
    zoom = gantt(chain_run.result, timeline_of(chain_run.trace), tmp_path / "zoom.png", window=(300, 700))
    assert zoom == {"rows": drawn["rows"], "bars": 2 + 1 + 0 + 1, "legend": ["conv_a", "conv_b"]}
    # 400..600 is conv_b alone (the legend lists what ran in the window)
    assert gantt(chain_run.result, timeline_of(chain_run.trace), tmp_path / "z.png",
                 window=(400, 600))["legend"] == ["conv_b"]


def test_memory_trace_stacks_partial_sums_apart(chain, write, tmp_path):  # noqa: F811
    # conv_a split in two along C (its reduction dim): the first half's output is a partial
    # sum, 8 x 4 x 4 elements at 16 bits = 2048 bits, held from the load at t = 0 until the
    # second half, which completes the reduction, ends (620); weights: two halves of W_a
    # (1152 bits each) and W_b (2304), each freed when its CN ends (332, 620, 908)
    mapping = write("psum.yaml", """\
        version: 1
        layers:
          - {name: conv_a, core_allocation: [0], intra_core_tiling: ["C, 2"]}
          - {name: conv_b, core_allocation: [0]}
    """)
    detail = run_detailed(*chain, mapping, mode="fused", cost_model="roofline", allocator="greedy")
    detail.trace.check()
    (memory,) = detail.trace.memories
    assert memory.times.tolist() == [0, 332, 620, 908, 924]
    assert memory.partial_bits.tolist() == [2048, 2048, 0, 0, 0]
    assert memory.weight_bits.tolist() == [4608, 3456, 2304, 0, 0]
    drawn = memory_trace(detail.result, timeline_of(detail.trace), tmp_path / "memory.png")
    assert drawn["core0.sram"]["peak_bytes"] == detail.result.peak_memory_bytes["core0.sram"] == 8192 // 8


def test_figures_draw_every_file(chain_run, tmp_path):
    out = tmp_path / "figures"
    written = figures(chain_run.result, timeline_of(chain_run.trace), out, formats=("png",))
    assert written == ["gantt.png", "memory.png", "energy.png", "utilisation.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(written)
    zoomed = figures(chain_run.result, timeline_of(chain_run.trace), out, window=(0, 100), formats=("pdf",))
    assert zoomed == ["gantt-0-100.pdf", "memory-0-100.pdf"]


def test_gantt_of_a_long_schedule_merges_what_a_pixel_cannot_separate(tmp_path):
    detail = run_detailed(INPUTS / "workloads" / "resnet18.yaml", INPUTS / "hardware" / "quad_core.yaml",
                          INPUTS / "mappings" / "quad_core.yaml", allocator="greedy")
    drawn = gantt(detail.result, timeline_of(detail.trace), tmp_path / "gantt.png")
    used_links = {l for r in set(detail.trace.transfers.route.tolist()) for l in detail.trace.transfers.routes[r]}
    # four compute cores, pooling, SIMD; the links; DRAM's read and write ports
    assert len(drawn["rows"]) == 6 + len(used_links) + 2
    assert drawn["legend"] == [l.name for l in detail.result.layers]  # every layer ran
    # depth-first interleaves the layers row by row, so mostly the back-to-back transfer
    # chunks on the links merge: 4,447 bars for 11,374 CN and link events when measured
    t = detail.trace.transfers
    events = detail.cngraph.num_cns + sum(len(t.spans(row)) * len(t.routes[int(t.route[row])])
                                          for row in range(len(t)) if not t.shared[row])
    assert drawn["bars"] < 0.5 * events


def test_comparison_draws_each_run_side_by_side(chain, chain_run, tmp_path):  # noqa: F811
    # test_pipeline's hand-worked chain: fused 680 cycles, layer by layer 744; peaks 832 and 960 bytes;
    # DRAM 640 + 64 and 768 + 192 bytes; conv_a's 1024-bit output to DRAM and back costs
    # 2 x 32 words x 100 pJ and 2 x 1024 bits x 0.5 pJ on the bus
    lbl = run_detailed(*chain, mode="layer_by_layer", cost_model="roofline", allocator="greedy")
    drawn = comparison({"fused": chain_run.result, "lbl": lbl.result}, tmp_path / "comparison.png")
    assert drawn["latency_cycles"] == {"fused": 680, "lbl": 744}
    assert drawn["peak_bytes"] == {"fused": 832, "lbl": 960}
    assert drawn["dram_bytes"] == {"fused": 704, "lbl": 960}
    assert drawn["energy_pj"] == {"fused": 30832.0, "lbl": 30832.0 + 2 * 32 * 100 + 2 * 1024 * 0.5}


def test_pareto_front_by_hand():
    from stream.viz import pareto

    # (latency, energy, memory): the 4th is dominated by the 2nd, the 5th by the 1st (as
    # good everywhere, worse memory); the first three each win somewhere
    points = [[1, 5, 3], [2, 2, 2], [3, 1, 1], [3, 3, 3], [1, 5, 4]]
    assert pareto(points).tolist() == [True, True, True, False, False]
    assert pareto([[1, 1, 1], [1, 1, 1]]).tolist() == [True, True]  # equals do not dominate


def test_tradeoff_plot_of_sweep_rows(tmp_path):
    from stream.viz import tradeoff

    rows = [{"point": str(i), "id": f"p{i}", "sram": str(m), "status": "ok", "error": "", "latency_s": str(l),
             "energy_pj": str(e), "onchip_peak_bytes": str(b)}
            for i, (m, (l, e, b)) in enumerate(zip((1, 1, 2, 2, 3), [[1, 5, 3], [2, 2, 2], [3, 1, 1], [3, 3, 3],
                                                                     [1, 5, 4]]))]
    rows.append({"point": "5", "id": "p5", "sram": "0", "status": "error", "error": "size 0", "latency_s": "",
                 "energy_pj": "", "onchip_peak_bytes": ""})
    drawn = tradeoff(rows, tmp_path / "tradeoff.png", "sweep")
    assert drawn == {"points": 5, "pareto": [0, 1, 2]}  # the failed point is left out
    assert (tmp_path / "tradeoff.png").read_bytes().startswith(b"\x89PNG")
