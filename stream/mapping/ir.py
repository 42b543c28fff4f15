"""Mapping IR: which cores may run each layer, how layers split, and fusion groups.

Rules are matched per layer by name first, then by operator type, then ``default``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.workload.ir import Layer


@dataclass(frozen=True)
class TileSpec:
    """How one dim splits: into ``count`` pieces, or into pieces of ``tile`` elements.

    Both None means the allocator chooses (the field's ``K, *``). ``OY, all`` is
    ``tile=1``: one element per piece. Inter-core pieces are balanced; intra-core tiles
    are ``tile`` elements (or ``ceil(piece / count)``) with a ragged last tile, so a
    count that does not divide the piece can give fewer tiles than asked.
    """

    dim: str
    count: int | None = None
    tile: int | None = None

    @property
    def chosen_by_allocator(self) -> bool:
        return self.count is None and self.tile is None

    def pieces(self, size: int, default_count: int = 1) -> int:
        """Number of pieces for a dim of ``size`` (ragged last piece allowed)."""
        if self.tile is not None:
            return -(-size // max(1, min(self.tile, size)))
        count = default_count if self.count is None else self.count
        return max(1, min(count, size))


@dataclass(frozen=True)
class LayerRule:
    selector: str  # layer name, operator type, or "default"
    core_allocation: tuple[int, ...] = ()  # candidate cores (or, if fixed, one per piece)
    allocation_is_fixed: bool = False
    inter_core_tiling: tuple[TileSpec, ...] = ()
    intra_core_tiling: tuple[TileSpec, ...] = ()
    temporal_ordering: tuple[tuple[str, int | None], ...] = ()  # pinned loop order, innermost first
    where: str = ""  # "file: key" of the rule, for error messages


@dataclass(frozen=True)
class FusionGroup:
    name: str
    layers: tuple[str, ...]  # layer names (the 2026 dialect also writes operator-type labels)
    intra_core_tiling: tuple[TileSpec, ...] = ()  # dims may be qualified "layer.dim"


DIALECTS = ("ours", "classic", "2026")


@dataclass(frozen=True)
class Mapping:
    """A mapping file. ``dialect`` says whose conventions its fusion groups follow (see
    :mod:`stream.mapping.groups`); in ours a tiling naming a dim the layer lacks is an
    error, in the field's files a rule is a template and such a tiling is skipped."""

    rules: tuple[LayerRule, ...] = ()
    fusion_groups: tuple[FusionGroup, ...] = ()
    dialect: str = "ours"
    source_file: str | None = None

    @property
    def strict(self) -> bool:
        return self.dialect == "ours"

    def rule_for(self, layer: "Layer") -> LayerRule | None:
        for key in (layer.name, layer.op_type, "default"):
            for rule in self.rules:
                if rule.selector == key:
                    return rule
        return None
