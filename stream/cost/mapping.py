"""Values shared by the per-core cost model and its mapping search.

A mapping of one layer tile onto one core, in ZigZag's terms:

* :class:`SpatialMapping`: per array dim, the loop dims unrolled on it and their factors
  (several entries on one array dim are a "mixed" unrolling; a factor may be fractional
  after ZigZag's clipping, e.g. OX=7 on 4 lanes gives 3.5);
* :class:`TemporalMapping`: per layer operand (``"W"``, ``"I"``, ``"O"``), per memory level
  of that operand bottom-up, the temporal loops allocated to the level, innermost first,
  as ``(dim, size)``. This is the allocation before ZigZag's stationarity merge-down
  (``mapping_dic_origin``); the model applies the merge-down itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SpatialMapping:
    unrolling: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # (array dim, ((loop dim, factor), ...))

    def factors(self) -> dict[str, float]:
        """Total unrolling per loop dim."""
        out: dict[str, float] = {}
        for _, entries in self.unrolling:
            for dim, factor in entries:
                out[dim] = out.get(dim, 1) * factor
        return out


@dataclass(frozen=True)
class TemporalMapping:
    levels: tuple[tuple[str, tuple[tuple[tuple[str, int], ...], ...]], ...]  # (operand, per level loops)

    def of(self, operand: str) -> tuple[tuple[tuple[str, int], ...], ...]:
        return dict(self.levels)[operand]


@dataclass(frozen=True)
class CostBreakdown:
    """Everything one mapping evaluation yields. Energies in pJ, latencies in cycles.

    Per operand and memory level (bottom-up), ``word_accesses`` and ``energy_per_direction``
    are keyed by direction: ``rd_out_to_low``, ``wr_in_by_low``, ``rd_out_to_high``,
    ``wr_in_by_high`` (ZigZag's names for tl, fl, th, fh).
    """

    energy_total: float
    mac_energy: float
    memory_energy: dict[str, tuple[float, ...]]  # operand -> per level
    energy_per_direction: dict[str, tuple[dict[str, float], ...]]
    word_accesses: dict[str, tuple[dict[str, float], ...]]
    ideal_cycle: float
    ideal_temporal_cycle: float
    stall_slack: float  # ZigZag's SS_comb
    onloading: float
    offloading: float
    latency_total0: float  # temporal cycles + stall/slack
    latency_total1: float  # + onloading
    latency_total2: float  # + offloading (+ systolic drain)
    footprint_bits: dict[str, tuple[int, ...]] = field(default_factory=dict)  # operand -> per level, one instance
    spatial_utilization: float = 1.0
    # (memory, port) -> (average, peak) bits per cycle at one instance of the memory:
    # average = sum of (amount x precision / period) over the transfers using the port;
    # peak = the same over each transfer's allowed window (ZigZag's instantaneous demand)
    port_bandwidth: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
