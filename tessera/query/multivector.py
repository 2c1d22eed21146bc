"""Multivector (late interaction) scoring: Qdrant's `max_sim` comparator.

A segment keeps all rows of all its multivectors in one flat (total_rows, d) matrix, with
`offsets` (n + 1,) marking point i's rows as rows[offsets[i]:offsets[i + 1]]. Every row is
stored like a dense vector (`scoring.prepare_stored`: Cosine rows normalised one by one).

max_sim(query, point) = sum over query rows of max over the point's rows of the core
similarity (`scoring.similarity`). Euclid and Manhattan report it turned back into a
distance, sqrt(|sum|) and |sum|, exactly as a single dense vector would be.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest
from tessera.query.scoring import (
    Datatype,
    Distance,
    FloatArray,
    prepare_query,
    similarity,
    to_reported,
)

# Bound on the (query rows x stored rows) similarity block held at once.
_BLOCK_ELEMENTS = 1 << 22


def check_offsets(offsets: npt.ArrayLike, total_rows: int) -> npt.NDArray[np.int64]:
    off = np.asarray(offsets, dtype=np.int64)
    if off.ndim != 1 or off.size == 0 or off[0] != 0 or off[-1] != total_rows:
        raise BadRequest("Multivector offsets must start at 0 and end at the number of rows")
    if np.any(np.diff(off) < 0):
        raise BadRequest("Multivector offsets must not decrease")
    return off


def select_points(
    rows: npt.NDArray[Any], offsets: npt.ArrayLike, points: npt.ArrayLike
) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """(rows, offsets) of just the given points, in that order (one gather, no loop)."""
    off = np.asarray(offsets, dtype=np.int64)
    pts = np.asarray(points, dtype=np.int64).reshape(-1)
    starts = off[pts]
    lengths = off[pts + 1] - starts
    new_off = np.zeros(pts.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_off[1:])
    gather = np.repeat(starts - new_off[:-1], lengths) + np.arange(new_off[-1], dtype=np.int64)
    return rows[gather], new_off


def max_sim(
    distance: Distance,
    query: npt.ArrayLike,
    rows: npt.NDArray[Any],
    offsets: npt.ArrayLike,
    points: npt.ArrayLike | None = None,
    datatype: Datatype = "float32",
) -> FloatArray:
    """Core max_sim (bigger is better) of one query multivector (m, d) against every point,
    or against `points` only (segment offsets, e.g. the filtered candidates), in that order.

    Points without rows (which Qdrant never stores) get -inf, so they are never results.
    """
    q = prepare_query(distance, np.asarray(query, dtype=np.float32), datatype)
    if q.ndim != 2 or q.shape[0] == 0:
        raise BadRequest("Multivector query must be a non-empty list of vectors")
    off = check_offsets(offsets, rows.shape[0])
    if points is not None:
        rows, off = select_points(rows, off, points)
    n = off.size - 1
    out = np.full(n, -np.inf, dtype=np.float32)
    nonempty = np.flatnonzero(off[1:] > off[:-1])
    if nonempty.size == 0:
        return out
    # Points in blocks whose similarity matrix stays bounded; a block is whole points.
    rows_per_block = max(1, _BLOCK_ELEMENTS // q.shape[0])
    ends = off[nonempty + 1]
    block_start = 0
    while block_start < nonempty.size:
        first = nonempty[block_start]
        limit = off[first] + rows_per_block
        block_end = int(np.searchsorted(ends, limit, side="right"))
        block_end = max(block_end, block_start + 1)
        points = nonempty[block_start:block_end]
        lo, hi = int(off[points[0]]), int(off[points[-1] + 1])
        sims = similarity(distance, q, rows[lo:hi], datatype, query_prepared=True)
        starts = off[points] - lo
        # reduceat over each point's contiguous row span: max over its rows, per query row.
        best = np.maximum.reduceat(sims, starts, axis=1)
        out[points] = best.sum(axis=0, dtype=np.float32)
        block_start = block_end
    return out


def score_multi(
    distance: Distance,
    query: npt.ArrayLike,
    rows: npt.NDArray[Any],
    offsets: npt.ArrayLike,
    points: npt.ArrayLike | None = None,
    datatype: Datatype = "float32",
) -> FloatArray:
    """max_sim as a nearest query reports it (a distance for Euclid / Manhattan)."""
    return to_reported(distance, max_sim(distance, query, rows, offsets, points, datatype))


def flatten(multivectors: list[npt.ArrayLike]) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """(rows, offsets) from a list of per-point (m_i, d) matrices (not yet prepared)."""
    mats = [np.asarray(m, dtype=np.float32) for m in multivectors]
    lengths = np.fromiter((m.shape[0] for m in mats), dtype=np.int64, count=len(mats))
    offsets = np.zeros(len(mats) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if not mats:
        return np.empty((0, 0), dtype=np.float32), offsets
    return np.concatenate(mats, axis=0), offsets
