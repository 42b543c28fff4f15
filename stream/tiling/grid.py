"""How one layer is cut into compute nodes: a regular grid of intervals per split dim.

Inter-core pieces cut a dim into balanced parts (one per core); intra-core tiles cut
each piece further into consecutive tiles of a given size (the last one ragged). Per dim
this is one partition of ``[0, size)``; a CN is one interval of every split dim.

The order of the tiling lists sets the nesting of the tile loops, as in the field's CN
generation (KULeuven-MICAS/stream, ``TiledWorkloadGenerationStage``: the loops are
``inter_core_tiling + intra_core_tiling``, the first entry innermost). So CNs are numbered
row-major over the split dims from the last intra-core entry (outermost) to the first
inter-core entry (innermost): consecutive CNs are a layer's pieces for different cores,
and ``[K, 4], [OX, 8], [OY, all]`` walks row by row, then column blocks, then channel
blocks. A tile's index within its piece follows the same nesting; a piece's index runs
over the split dims in the layer's dim order (the order pinned cores are listed in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stream.mapping import LayerPlan
from stream.workload.ir import DimKind, Layer


@dataclass(frozen=True, eq=False)
class DimSplit:
    """One split dim: its partition into intervals, and each interval's piece and tile."""

    dim: str
    position: int  # index of the dim in the layer's dims
    kind: DimKind
    bounds: np.ndarray  # (m+1,) int64: interval i is [bounds[i], bounds[i+1])
    piece: np.ndarray  # (m,) int64: inter-core piece of each interval along this dim
    tile: np.ndarray  # (m,) int64: intra-core tile of each interval within its piece

    @property
    def count(self) -> int:
        return int(self.bounds.shape[0] - 1)


@dataclass(frozen=True, eq=False)
class LayerGrid:
    layer: Layer
    index: int  # the layer's index in the workload
    splits: tuple[DimSplit, ...]  # dims cut into more than one interval, outermost loop first
    first: int  # id of the layer's first CN

    @property
    def count(self) -> int:
        return math.prod(s.count for s in self.splits)

    def split(self, dim: str) -> DimSplit | None:
        for s in self.splits:
            if s.dim == dim:
                return s
        return None

    def interval_indices(self, local: np.ndarray) -> list[np.ndarray]:
        """Per split dim, the interval index of each CN (``local`` = id - first)."""
        out, rest = [], np.asarray(local, dtype=np.int64)
        for s in reversed(self.splits):
            out.append(rest % s.count)
            rest = rest // s.count
        return out[::-1]

    def local_ids(self, indices: list[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`interval_indices`."""
        local = np.zeros_like(indices[0]) if indices else np.zeros(1, dtype=np.int64)
        for s, i in zip(self.splits, indices):
            local = local * s.count + i
        return local

    def boxes(self, n_dims: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and stop of every CN per layer dim: two (count, n_dims) int64 arrays."""
        n = self.count
        starts = np.zeros((n, n_dims), dtype=np.int64)
        stops = np.ones((n, n_dims), dtype=np.int64)
        stops[:, : len(self.layer.sizes)] = np.asarray(self.layer.sizes, dtype=np.int64)
        for s, idx in zip(self.splits, self.interval_indices(np.arange(n))):
            starts[:, s.position] = s.bounds[idx]
            stops[:, s.position] = s.bounds[idx + 1]
        return starts, stops

    def pieces_and_tiles(self) -> tuple[np.ndarray, np.ndarray]:
        """Inter-core piece and intra-core tile of every CN (mixed radix over split dims)."""
        n = self.count
        piece = np.zeros(n, dtype=np.int64)
        tile = np.zeros(n, dtype=np.int64)
        indices = self.interval_indices(np.arange(n))
        for s, idx in zip(self.splits, indices):
            tile = tile * (int(s.tile.max()) + 1) + s.tile[idx]
        for s, idx in sorted(zip(self.splits, indices), key=lambda x: x[0].position):
            piece = piece * (int(s.piece.max()) + 1) + s.piece[idx]
        return piece, tile


def layer_grid(layer: Layer, index: int, plan: LayerPlan, first: int, intra: bool) -> LayerGrid:
    """The grid of ``layer`` under ``plan``; ``intra=False`` ignores intra-core tiling."""
    inter = dict(plan.inter_core)
    tiles = {spec.dim: spec for spec in plan.intra_core} if intra else {}
    splits = []
    for position, (dim, size, kind) in enumerate(zip(layer.dims, layer.sizes, layer.kinds)):
        count = inter.get(dim, 1)
        piece_bounds = [size * i // count for i in range(count + 1)]
        bounds, piece, tile = [0], [], []
        for p in range(count):
            lo, hi = piece_bounds[p], piece_bounds[p + 1]
            spec = tiles.get(dim)
            step = hi - lo if spec is None else (spec.tile or -(-(hi - lo) // spec.count))
            for t, start in enumerate(range(lo, hi, max(step, 1))):
                bounds.append(min(start + step, hi))
                piece.append(p)
                tile.append(t)
        if len(piece) > 1:
            splits.append(DimSplit(dim, position, kind, np.asarray(bounds, dtype=np.int64),
                                   np.asarray(piece, dtype=np.int64), np.asarray(tile, dtype=np.int64)))
    nesting = [spec.dim for spec in reversed(plan.intra_core) if intra] + [dim for dim, _ in reversed(plan.inter_core)]
    outer_first = {dim: i for i, dim in reversed(list(enumerate(nesting)))}
    splits.sort(key=lambda s: outer_first[s.dim])
    return LayerGrid(layer, index, tuple(splits), first)
