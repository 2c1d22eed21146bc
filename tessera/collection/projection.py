"""A 2-D map of a collection's vectors for the dashboard: a random sample, projected by PCA.

The sample is drawn uniformly among the live points that have the vector (and match the
filter), without reading any vector that is not drawn: the candidates are counted per
segment from masks, the draw picks positions in that count, and only those rows are read.
So a map of 1M points costs the masks plus `sample` rows, never the whole collection.

PCA is the SVD of the centered sample: its first two right singular vectors are the axes;
each point's coordinates are its projections on them. Multivectors are projected by the
mean of their rows; sparse vectors have no fixed dimension to project and are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tessera.collection.collection import Collection
from tessera.errors import BadRequest
from tessera.ids import PointId
from tessera.query.filter_model import Filter
from tessera.query.payload_path import extract_values
from tessera.segment.segment import Segment
from tessera.segment.vector_storage import DenseStorage
from tessera.shard import read

MAX_SAMPLE = 10_000
# At most this many coordinates are projected at once (16 MB as float64): the SVD costs
# n * d * min(n, d), so 10,000 points of 4096 dimensions would take minutes and gigabytes.
# Large vectors get a smaller sample (the answer's `sampled` says how many).
MAX_CELLS = 2_000_000
FloatMatrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Projection:
    """Per projected point its id, (x, y) and the `color_by` value (None without one);
    `matched`: how many points the sample was drawn from; `explained`: the share of the
    sample's variance each axis explains."""

    ids: list[PointId]
    xy: FloatMatrix
    colors: list[Any]
    matched: int
    dim: int
    explained: list[float]


def check_vector(collection: Collection, using: str) -> None:
    config = collection.config
    if using in config.sparse_vectors:
        raise BadRequest(f"Wrong input: sparse vector `{using}` has no fixed dimension to project")
    if using not in config.vectors:
        shown = "the unnamed vector" if using == "" else f"vector `{using}`"
        raise BadRequest(f"Wrong input: Not existing vector name error: {shown}")


def project(
    collection: Collection,
    using: str,
    sample: int,
    filt: Filter | None,
    color_by: str | None,
    ids: list[PointId] | None = None,
    seed: int | None = None,
) -> Projection:
    """Project a random sample of `sample` points (or exactly the points `ids` that exist
    and have the vector) onto the sample's first two principal axes."""
    check_vector(collection, using)
    if not 1 <= sample <= MAX_SAMPLE:
        raise BadRequest(f"Wrong input: `sample` must be between 1 and {MAX_SAMPLE}")
    dim = collection.config.vectors[using].size
    limit = sample_limit(dim)
    if ids is not None and len(ids) > limit:
        raise BadRequest(
            f"Wrong input: at most {limit} `ids` can be projected"
            + (f" (vectors of {dim} dimensions)" if limit < MAX_SAMPLE else "")
        )
    sample = min(sample, limit)
    with collection.shard.read() as holder:
        if ids is not None:
            refs = _with_vector(read.retrieve(holder, ids), using)
            matched = len(refs)
        else:
            refs, matched = _draw(holder.segments, using, filt, sample, seed)
        vectors = _rows(refs, using, dim)
        point_ids = [ref.id for ref in refs]
        colors = [
            None if color_by is None else _first(ref.segment.payload_at(ref.offset), color_by)
            for ref in refs
        ]
    xy, explained = pca_2d(vectors)
    return Projection(point_ids, xy, colors, matched, vectors.shape[1], explained)


def sample_limit(dim: int) -> int:
    """The most points projected at once for vectors of `dim` dimensions."""
    return max(1, min(MAX_SAMPLE, MAX_CELLS // max(dim, 1)))


def pca_2d(vectors: FloatMatrix) -> tuple[FloatMatrix, list[float]]:
    """(n, 2) coordinates on the first two principal axes and the variance share of each;
    fewer than two axes (one point, identical points, one dimension) leave zeros."""
    n = vectors.shape[0]
    xy = np.zeros((n, 2), dtype=np.float64)
    if n < 2:
        return xy, [0.0, 0.0]
    centered = vectors - vectors.mean(axis=0)
    _, singular, axes = np.linalg.svd(centered, full_matrices=False)
    k = min(2, axes.shape[0])
    xy[:, :k] = centered @ axes[:k].T
    variance = singular**2
    total = float(variance.sum())
    shares = [float(v / total) if total > 0 else 0.0 for v in variance[:2]]
    return xy, shares + [0.0] * (2 - len(shares))


def _with_vector(refs: list[read.PointRef], using: str) -> list[read.PointRef]:
    """The refs whose point has vector `using` (one mask per segment)."""
    masks: dict[int, npt.NDArray[np.bool_]] = {}
    out: list[read.PointRef] = []
    for ref in refs:
        mask = masks.get(id(ref.segment))
        if mask is None:
            mask = masks[id(ref.segment)] = ref.segment.vector_mask(using)
        if mask[ref.offset]:
            out.append(ref)
    return out


def _draw(
    segments: list[Segment], using: str, filt: Filter | None, sample: int, seed: int | None
) -> tuple[list[read.PointRef], int]:
    """A uniform draw without replacement of up to `sample` candidates, and their number."""
    offsets = [np.flatnonzero(read.segment_mask(s, filt) & s.vector_mask(using)) for s in segments]
    sizes = np.array([len(o) for o in offsets], dtype=np.int64)
    matched = int(sizes.sum())
    if matched == 0:
        return [], 0
    picks = np.random.default_rng(seed).choice(matched, size=min(sample, matched), replace=False)
    picks.sort()
    starts = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.searchsorted(starts, picks, side="right") - 1
    refs: list[read.PointRef] = []
    for i, segment in enumerate(segments):
        chosen = picks[owner == i] - starts[i]
        if len(chosen):
            refs.extend(read.refs_in(segment, offsets[i][chosen].tolist()))
    return refs, matched


def _rows(refs: list[read.PointRef], using: str, dim: int) -> FloatMatrix:
    """The vectors of `refs` as one float64 matrix (a multivector: the mean of its rows),
    read segment by segment with one fancy index each."""
    out = np.zeros((len(refs), dim), dtype=np.float64)
    groups: dict[int, tuple[Segment, list[int], list[int]]] = {}
    for position, (segment, offset) in enumerate(refs):
        entry = groups.setdefault(id(segment), (segment, [], []))
        entry[1].append(position)
        entry[2].append(offset)
    for segment, positions, offsets in groups.values():
        storage = segment.storages[using]
        if isinstance(storage, DenseStorage):
            out[positions] = storage.rows(segment.size)[offsets]
        else:
            out[positions] = [np.asarray(storage.items[o], np.float64).mean(0) for o in offsets]
    return out


def _first(payload: dict[str, Any], key: str) -> Any:
    """The first value at `key` (arrays unwrapped), as a JSON scalar (an object as its JSON
    text); None when absent."""
    values = extract_values(payload, key)
    if not values:
        return None
    value = values[0]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return orjson.dumps(value).decode()  # an object: its JSON text, not Python's repr
