"""Vector spaces, query inputs turned into vectors, and scoring over one segment.

A `Space` is one vector name of a collection as the scoring code needs it (kind, distance,
datatype, size, IDF). Scores come in two scales (see `scoring`): the core *similarity*
(bigger is better, what every query ranks by) and, for nearest queries, the *reported*
score (a distance for Euclid and Manhattan). Everything is vectorised per segment: one
matrix product for dense vectors, one sparse product per example, one max_sim pass per
multivector example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest, NotFound, point_not_found
from tessera.ids import PointId, render_point_id
from tessera.query import sparse as sparse_math
from tessera.query.filter_model import Filter
from tessera.query.multivector import max_sim
from tessera.query.scoring import Datatype, Distance, similarity
from tessera.segment.filter_eval import evaluate
from tessera.segment.segment import Segment
from tessera.segment.vector_storage import DenseStorage, ObjectStorage
from tessera.shard.holder import SegmentHolder

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Kind = Literal["dense", "sparse", "multi"]


@dataclass(frozen=True)
class Space:
    name: str
    kind: Kind
    distance: Distance
    datatype: Datatype
    dim: int
    idf: bool = False
    # `params.idf.corpus`: the points IDF statistics are computed over (None: all).
    idf_corpus: Filter | None = None

    @property
    def threshold_distance(self) -> Distance:
        """The distance whose comparison `score_threshold` uses (sparse compares like Dot)."""
        return "Dot" if self.kind == "sparse" else self.distance


def unknown_vector(name: str) -> BadRequest:
    return BadRequest(f"Wrong input: Not existing vector name error: {name}")


def space_of(config: CollectionConfig, name: str) -> Space:
    dense = config.vectors.get(name)
    if dense is not None:
        kind: Kind = "multi" if dense.multivector else "dense"
        return Space(name, kind, dense.distance, dense.datatype, dense.size)  # type: ignore[arg-type]
    sparse = config.sparse_vectors.get(name)
    if sparse is not None:
        return Space(name, "sparse", "Dot", "float32", 0, idf=sparse.modifier == "idf")
    raise unknown_vector(name)


# --------------------------------------------------------------------------- inputs


def vector_at(segment: Segment, name: str, offset: int) -> Any:
    """The stored vector of one offset as a query input (None when it has none)."""
    storage = segment.storages.get(name)
    if storage is None:
        raise unknown_vector(name)
    if isinstance(storage, DenseStorage):
        if offset < storage.present.shape[0] and storage.present[offset]:
            return np.asarray(storage.matrix[offset], dtype=np.float32)
        return None
    if offset >= len(storage.items) or storage.items[offset] is None:
        return None
    value = storage.items[offset]
    if storage.kind == "sparse":
        return (np.asarray(value[0], dtype=np.int64), np.asarray(value[1], dtype=np.float32))
    return np.asarray(value, dtype=np.float32)


def stored_vector(holder: SegmentHolder, name: str, pid: PointId) -> Any:
    """The stored vector of a point, as a query input; 404 when the point or vector is absent."""
    found = holder.locate(pid)
    if found is None:
        raise point_not_found(render_point_id(pid))
    value = vector_at(found[0], name, found[1])
    if value is None:
        raise NotFound(
            f'Not found: Vector with name "{name}" for point {render_point_id(pid)} not found'
        )
    return value


def check_value(space: Space, value: Any) -> Any:
    """A looked-up vector must fit the searched space (kind and size)."""
    if space.kind == "sparse":
        if not isinstance(value, tuple):
            raise _mismatch(space)
        return value
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != (2 if space.kind == "multi" else 1):
        raise _mismatch(space)
    if arr.shape[-1] != space.dim:
        raise BadRequest(
            f"Wrong input: Vector dimension error: expected dim: {space.dim}, got {arr.shape[-1]}"
        )
    return arr


def _mismatch(space: Space) -> BadRequest:
    return BadRequest(f"Wrong input: Vector type mismatch for vector `{space.name}`")


# --------------------------------------------------------------------------- sparse data


def sparse_matrix(segment: Segment, name: str) -> sparse_math.SparseMatrix:
    """The segment's sparse vectors (inverted form), cached by the storage until a write."""
    storage = segment.storages[name]
    assert isinstance(storage, ObjectStorage)
    matrix: sparse_math.SparseMatrix = storage.packed(segment.size)
    return matrix


def idf_weighted(holder: SegmentHolder, space: Space, value: Any) -> Any:
    """A sparse query with its values multiplied by the IDF of their indices (if the space
    has the `idf` modifier); statistics over every live point holding a non-empty vector, or
    over those matching the request's `idf.corpus` filter (`sparse.document_frequencies`)."""
    if space.kind != "sparse" or not space.idf:
        return value
    indices, values = value
    df = np.zeros(len(indices), dtype=np.int64)
    total = 0
    for segment in holder.segments:
        if not segment.size:
            continue
        matrix = sparse_matrix(segment, space.name)
        if space.idf_corpus is None:
            corpus = segment.live_mask()
        else:
            corpus = evaluate(space.idf_corpus, segment)  # the live points matching it
        seg_df, seg_n = sparse_math.document_frequencies(
            matrix, indices, corpus, corpus=space.idf_corpus is not None
        )
        df += seg_df
        total += seg_n
    return indices, sparse_math.apply_idf(values, df, total)


# --------------------------------------------------------------------------- scoring


def _dense_rows(segment: Segment, space: Space, candidates: IntArray) -> npt.NDArray[Any]:
    storage = segment.storages[space.name]
    assert isinstance(storage, DenseStorage)
    rows = storage.rows(segment.size)
    if len(candidates) == segment.size:
        return rows
    return rows[candidates]


def example_sims(
    segment: Segment, space: Space, examples: list[Any], candidates: IntArray
) -> FloatArray:
    """Core similarities (k, c) of k example vectors to the candidate offsets."""
    k, c = len(examples), len(candidates)
    if k == 0 or c == 0:
        return np.zeros((k, c), dtype=np.float32)
    if space.kind == "dense":
        queries = np.stack([np.asarray(e, dtype=np.float32) for e in examples])
        stored = _dense_rows(segment, space, candidates)
        return similarity(space.distance, queries, stored, space.datatype).reshape(k, c)
    out = np.empty((k, c), dtype=np.float32)
    if space.kind == "sparse":
        matrix = sparse_matrix(segment, space.name)
        for row, (idx, vals) in enumerate(examples):
            out[row] = sparse_math.score_sparse(idx, vals, matrix)[candidates]
        return out
    storage = segment.storages[space.name]
    assert isinstance(storage, ObjectStorage)
    flat, starts = storage.packed(segment.size)
    for row, example in enumerate(examples):
        out[row] = max_sim(space.distance, example, flat, starts, candidates, space.datatype)
    return out


def nearest_sims(
    segment: Segment, space: Space, value: Any, candidates: IntArray
) -> tuple[FloatArray, BoolArray]:
    """(core similarity, scorable) of one nearest query; sparse results must share an index
    with the query, multivectors must have rows."""
    if space.kind == "sparse":
        idx, vals = value
        matrix = sparse_matrix(segment, space.name)
        scores = sparse_math.score_sparse(idx, vals, matrix)
        return scores[candidates], sparse_math.shares_index(idx, matrix)[candidates]
    sims = example_sims(segment, space, [value], candidates)[0]
    if space.kind == "multi":
        return sims, np.isfinite(sims)
    return sims, np.ones(len(candidates), dtype=np.bool_)


def pair_sims(space: Space, vectors: list[Any], queries: list[Any]) -> tuple[FloatArray, BoolArray]:
    """Core similarities (q, s) of a few query vectors to a few stored vectors (the distance
    matrix, MMR), and which pairs could be nearest results (for sparse vectors: those sharing
    an index; the others score 0)."""
    return PairScorer(space, vectors).score(queries)


class PairScorer:
    """`pair_sims` against one set of stored vectors, prepared once for several blocks of
    queries (a distance matrix's rows)."""

    def __init__(self, space: Space, vectors: list[Any]) -> None:
        self.space = space
        self.count = len(vectors)
        if space.kind == "dense":
            self._stored: Any = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
        elif space.kind == "sparse":
            self._stored = sparse_math.build_sparse([(v[0], v[1]) for v in vectors])
        else:
            self._stored = np.concatenate([np.asarray(v, dtype=np.float32) for v in vectors])
            self._starts = np.zeros(self.count + 1, dtype=np.int64)
            np.cumsum([len(v) for v in vectors], out=self._starts[1:])

    def score(self, queries: list[Any]) -> tuple[FloatArray, BoolArray]:
        space, q, s = self.space, len(queries), self.count
        keep = np.ones((q, s), dtype=np.bool_)
        if space.kind == "dense":
            batch = np.stack([np.asarray(v, dtype=np.float32) for v in queries])
            sims = similarity(space.distance, batch, self._stored, space.datatype)
            return sims.reshape(q, s), keep
        out = np.empty((q, s), dtype=np.float32)
        if space.kind == "sparse":
            for row, (idx, vals) in enumerate(queries):
                out[row] = sparse_math.score_sparse(idx, vals, self._stored)
                keep[row] = sparse_math.shares_index(idx, self._stored)
            return out, keep
        for row, v in enumerate(queries):
            out[row] = max_sim(space.distance, v, self._stored, self._starts, None, space.datatype)
        return out, np.isfinite(out)
