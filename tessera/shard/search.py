"""Nearest-neighbour search over the segment holder: per segment, then merged.

Per segment the candidates are the live points that match the filter and have the vector;
they are scored in one vectorised call (exact), or by the segment's ANN index when the
planner prefers it. The shard merges each segment's best `offset + limit`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tessera import deadline, hw_meter
from tessera.collection_config import DenseVectorParams
from tessera.query import exact_knn
from tessera.query.filter_model import Filter
from tessera.query.query_model import QuantizationParams
from tessera.query.scoring import (
    Distance,
    check_datatype,
    check_distance,
    higher_is_better,
    passes_threshold,
    prepare_query,
    score_dense,
    top_k,
)
from tessera.segment.ann_index import distance_count
from tessera.segment.filter_eval import evaluate
from tessera.segment.quantization import default_rescoring, quantization_for
from tessera.segment.segment import Segment
from tessera.segment.vector_storage import DenseStorage, ObjectStorage
from tessera.shard.explain import QueryReport, SegmentPlan, now
from tessera.shard.holder import SegmentHolder
from tessera.shard.read import PointRef, refs_in, tuple_maker

FloatArray = npt.NDArray[np.float32]

# From this many candidates on, an exact scan of a segment with a graph runs in faiss over
# its flat storage (no gather of the candidates); below it numpy's gather + GEMV is faster.
FLAT_SCAN_MIN = 4096

# Filters kept per segment (the oldest dropped first): at most this many,
# holding at most FILTER_CACHE_BYTES (masks, offsets, gathered rows). Applications cycle
# through a few dozen filters (categories, tenants): fewer entries than that and a cyclic
# use never hits.
_FILTER_CACHE_LOCK = threading.Lock()
FILTER_CACHE_SIZE = 64
FILTER_CACHE_BYTES = 32 << 20
# A cached filter keeps its candidates' rows gathered up to this size (counted in the
# cache's bytes when the next filter is added).
GATHERED_ROWS_BYTES = 1 << 20


_NO_QUANTIZATION_PARAMS = QuantizationParams()


@dataclass(slots=True)
class VectorQuery:
    """A query vector for one vector name: dense (d,), sparse (indices, values) or multi
    (m, d). Not frozen (a frozen dataclass's __init__ costs three times as much, and every
    search makes one); nothing changes it after it is made."""

    using: str
    kind: str  # "dense" | "sparse" | "multi"
    value: Any
    _prepared: tuple[Distance, FloatArray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def prepared(self, metric: Distance) -> FloatArray:
        """`prepare_query(metric, value)` for float32 rows, made once per query and metric:
        every segment's exact scan and a quantized walk's rescoring ask for it again. The
        array is shared: callers must not write to it."""
        memo = self._prepared
        if memo is None or memo[0] != metric:
            memo = self._prepared = (metric, prepare_query(metric, self.value))
        return memo[1]


class ScoredRef(NamedTuple):
    """A hit of one segment: its score and where the point lives (a tuple: a search builds
    one per hit of every segment)."""

    score: float
    ref: PointRef


_new_scored = tuple_maker(ScoredRef)  # ScoredRef((score, ref))


@dataclass(slots=True)
class CachedFilter:
    """What a segment keeps of one filter (`Segment.filter_masks`) until it changes: the
    candidate mask and its count; once an exact scan wanted them, the mask's offsets and,
    when small, the candidates' rows gathered into one block."""

    generation: int
    mask: npt.NDArray[np.bool_]
    count: int
    offsets: npt.NDArray[np.int64] | None = None
    rows: npt.NDArray[Any] | None = None
    # A graph walk's faiss parameters for this mask (HnswIndex.search's `walks`).
    walks: dict[Any, Any] = field(default_factory=dict)

    def nbytes(self) -> int:
        held = self.mask.nbytes
        for part in (self.offsets, self.rows):
            held += part.nbytes if part is not None else 0
        return held


def candidate_entry(
    segment: Segment, using: str, filt: Filter | None
) -> tuple[npt.NDArray[np.bool_], int, CachedFilter | None]:
    """The candidate mask (read-only), how many it holds, and the filter's cache entry (None
    without a filter, or for one that cannot be kept): what a search keeps of the filter
    besides the mask."""
    if filt is None:
        base, base_count = segment.base_mask(using)
        return base, base_count, None
    # Applications repeat filters (a tenant, a category) from query to query: the mask is
    # kept per segment until the segment changes.
    key: tuple[str, Filter] | None = (using, filt)
    try:
        cached = segment.filter_masks.get(key)
    except TypeError:  # a filter holding something unhashable is simply not cached
        key, cached = None, None
    if cached is not None and cached.generation == segment.generation:
        return cached.mask, cached.count, cached
    generation = segment.generation
    base = segment.base_mask(using)[0]
    matched: npt.NDArray[np.bool_] = evaluate(filt, segment) & base
    count = int(np.count_nonzero(matched))
    if key is None:
        return matched, count, None
    matched.flags.writeable = False
    # Readers share the read lock, so several may fill a segment's cache at once: the
    # eviction (an iterator over the dict) must not see another's insert ("dictionary
    # changed size during iteration", a 500 seen under load) nor pop the same key twice.
    entry = CachedFilter(generation, matched, count)
    with _FILTER_CACHE_LOCK:
        cache = segment.filter_masks
        cache.pop(key, None)  # a stale entry of this filter
        held = sum(e.nbytes() for e in cache.values()) + entry.nbytes()
        while cache and (len(cache) >= FILTER_CACHE_SIZE or held > FILTER_CACHE_BYTES):
            held -= cache.pop(next(iter(cache))).nbytes()
        cache[key] = entry
    return matched, count, entry


def candidate_offsets(
    mask: npt.NDArray[np.bool_], cached: CachedFilter | None
) -> npt.NDArray[np.int64]:
    """The offsets of `mask`; `cached`: the filter's cache entry the mask came from, which
    keeps them: a selective filter repeated query after query (a tenant) is then scored
    without a pass over the whole segment's mask."""
    if cached is None:
        return np.flatnonzero(mask)
    if cached.offsets is None:
        offsets = np.flatnonzero(mask)
        offsets.flags.writeable = False
        cached.offsets = offsets  # one attribute store: atomic for concurrent readers
    return cached.offsets


def candidate_rows(
    segment: Segment,
    storage: DenseStorage,
    candidates: npt.NDArray[np.int64],
    cached: CachedFilter | None,
) -> npt.NDArray[Any]:
    """The stored rows of `candidates`, in their order. A cached filter small enough keeps
    them gathered: the gather (a random read of every candidate row) is most of a selective
    query's exact scan."""
    if len(candidates) == segment.size:
        return storage.rows(segment.size)
    gathered = _gathered(storage, candidates, cached)
    return gathered if gathered is not None else _gather(storage, candidates)


def _gather(storage: DenseStorage, candidates: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    # ndarray.take over the plain array: the same rows as `matrix[candidates]`, without the
    # subclass's and fancy indexing's overhead (~2x faster for a few hundred rows).
    rows: npt.NDArray[Any] = np.asarray(storage.matrix).take(candidates, axis=0)
    return rows


def _gathered(
    storage: DenseStorage, candidates: npt.NDArray[np.int64], cached: CachedFilter | None
) -> npt.NDArray[Any] | None:
    """The rows of a cached filter's `candidates` kept gathered in one block (gathered at
    the first use, when they fit `GATHERED_ROWS_BYTES`); None when there is no such block."""
    if cached is None:
        return None
    if cached.rows is None and cached.offsets is candidates:
        matrix = storage.matrix
        row_bytes = matrix.itemsize * int(np.prod(matrix.shape[1:], dtype=np.int64))
        if len(candidates) * row_bytes <= GATHERED_ROWS_BYTES:
            rows = _gather(storage, candidates)
            rows.flags.writeable = False
            cached.rows = rows  # one attribute store: atomic for concurrent readers
    return cached.rows


def _native_source(
    segment: Segment,
    query: VectorQuery,
    candidates: npt.NDArray[np.int64],
    metric: Distance,
    cached: CachedFilter | None,
) -> tuple[FloatArray, npt.NDArray[Any], npt.NDArray[np.int64] | None, bool] | None:
    """What `exact_knn` scans for the best of `candidates`: (the prepared query, the rows,
    the subset of them to read, whether the rows are the candidates' gathered ones, whose
    labels index `candidates`); None where it cannot answer as `score_candidates` +
    `top_k` would, and those run instead."""
    storage = segment.storages[query.using]
    if not isinstance(storage, DenseStorage) or storage.datatype != "float32":
        return None
    if metric not in exact_knn.METRICS:
        return None
    vector = query.prepared(metric)  # contiguous float32 of the storage's width
    if len(candidates) == segment.size:
        return vector, storage.rows(segment.size), None, False
    rows = (
        cached.rows  # (`_gathered`'s answer once gathered, without the call)
        if cached is not None and cached.rows is not None
        else _gathered(storage, candidates, cached)
    )
    if rows is not None:
        return vector, rows, None, True
    # No gathered block: faiss reads the candidates' rows where they are.
    return vector, np.asarray(storage.matrix), candidates, False


def _native_nearest(
    segment: Segment,
    query: VectorQuery,
    candidates: npt.NDArray[np.int64],
    distance: str,
    want: int,
    cached: CachedFilter | None,
) -> tuple[FloatArray, npt.NDArray[np.int64]] | None:
    """The best `want` of `candidates` scored exactly by `exact_knn` (one native call)."""
    metric = check_distance(distance)
    source = _native_source(segment, query, candidates, metric, cached)
    if source is None:
        return None
    vector, rows, subset, gathered = source
    found = exact_knn.nearest(metric, vector, rows, want, subset)
    if found is None or not gathered:
        return found
    return found[0], candidates[found[1]]


def _native_listed(
    segment: Segment,
    query: VectorQuery,
    candidates: npt.NDArray[np.int64],
    distance: Distance,
    want: int,
    cached: CachedFilter | None,
) -> tuple[list[float], list[int]] | None:
    """`_native_nearest`'s answer as lists (scores, offsets), for the hits of a search
    without a score threshold: a selective filter's whole scan in fewer numpy calls.
    `distance` checked (`check_distance`); None where `_best_of` must answer."""
    source = _native_source(segment, query, candidates, distance, cached)
    if source is None:
        return None
    vector, rows, subset, gathered = source
    found = exact_knn.nearest_listed(distance, vector, rows, want, subset)
    if found is None or not gathered:
        return found
    # (one `item` per hit in a C map: a gather and `tolist` are two numpy calls)
    return found[0], list(map(candidates.item, found[1]))


def score_candidates(
    segment: Segment,
    query: VectorQuery,
    candidates: npt.NDArray[np.int64],
    distance: str,
    sparse_idf: FloatArray | None = None,
    cached: CachedFilter | None = None,
) -> FloatArray:
    """Scores of `candidates`; `cached`: the filter's cache entry they came from, if any."""
    storage = segment.storages[query.using]
    if isinstance(storage, DenseStorage):
        stored = candidate_rows(segment, storage, candidates, cached)
        return score_dense(
            check_distance(distance), query.value, stored, check_datatype(storage.datatype)
        )
    assert isinstance(storage, ObjectStorage)
    packed = storage.packed(segment.size)
    if storage.kind == "sparse":
        from tessera.query.sparse import score_sparse

        idx, vals = query.value
        if sparse_idf is not None:
            vals = vals * sparse_idf
        return score_sparse(idx, vals, packed)[candidates]
    from tessera.query.multivector import score_multi

    flat, starts = packed
    return score_multi(
        check_distance(distance),
        query.value,
        flat,
        starts,
        candidates,
        check_datatype(storage.datatype),
    )


def query_distance(holder: SegmentHolder, using: str) -> str:
    params = holder.config.vectors.get(using)
    return params.distance if params is not None else "Dot"


class Run(NamedTuple):
    """The hits of a search that all come from one segment, best first, as lists: what
    `search_run` answers when one segment's scan or walk is the whole answer (the usual
    case), without a ScoredRef and a PointRef per hit."""

    segment: Segment
    scores: list[float]
    offsets: list[int]

    def scored_refs(self) -> list[ScoredRef]:
        return list(map(_new_scored, zip(self.scores, refs_in(self.segment, self.offsets))))


_new_run = tuple_maker(Run)


def search(
    holder: SegmentHolder,
    query: VectorQuery,
    filt: Filter | None,
    limit: int,
    offset: int = 0,
    score_threshold: float | None = None,
    exact: bool = False,
    hnsw_ef: int | None = None,
    quantization: QuantizationParams | None = None,
    idf_corpus: Filter | None = None,
    indexed_only: bool = False,
    report: QueryReport | None = None,
) -> list[ScoredRef]:
    """`report`: where to record the plan of each segment and the time of each stage
    (`explain`); None records nothing and reads no clock."""
    found = search_run(
        holder,
        query,
        filt,
        limit,
        offset,
        score_threshold,
        exact,
        hnsw_ef,
        quantization,
        idf_corpus,
        indexed_only,
        report,
    )
    return found.scored_refs() if isinstance(found, Run) else found


def search_run(
    holder: SegmentHolder,
    query: VectorQuery,
    filt: Filter | None,
    limit: int,
    offset: int = 0,
    score_threshold: float | None = None,
    exact: bool = False,
    hnsw_ef: int | None = None,
    quantization: QuantizationParams | None = None,
    idf_corpus: Filter | None = None,
    indexed_only: bool = False,
    report: QueryReport | None = None,
) -> list[ScoredRef] | Run:
    """`search`'s hits; a `Run` where they all come from one segment's run (no merge)."""
    quantization = quantization or _NO_QUANTIZATION_PARAMS
    if quantization.rescore is None:
        quantized = quantization_for(holder.config, query.using)
        if quantized:  # (without quantization nothing reads it: no copy per search)
            quantization = replace(quantization, rescore=default_rescoring(quantized))
    params = holder.config.vectors.get(query.using)  # (query_distance, inline: per query)
    distance = check_distance(params.distance if params is not None else "Dot")
    better_high = higher_is_better(distance) if query.kind != "sparse" else True
    want = limit + offset
    # Each segment's hits: (segment, scores, offsets), made ScoredRefs only to be merged.
    parts: list[tuple[Segment, list[float], list[int]]] = []
    runs, unsorted = 0, False
    idf = sparse_idf_for(holder, query, idf_corpus) if query.kind == "sparse" else None
    seg: SegmentPlan | None = None
    t = 0.0
    meter = hw_meter.current()  # None unless the request reports its hardware usage
    for number, segment in enumerate(holder.segments):
        if want <= 0:
            break
        deadline.check()
        if report is not None:
            t = now()
        mask, count, cached = candidate_entry(segment, query.using, filt)
        if report is not None:
            seg = _segment_report(report, number, segment, query.using, count)
            t = seg.add("filter", t)
        if not count:
            continue
        index = segment.vector_indexes.get(query.using) if query.kind == "dense" else None
        if indexed_only and unindexed_and_large(holder, segment, query.using):
            if seg is not None:
                seg.plan, seg.reason = "skipped", "params.indexed_only: no graph, not small"
            continue
        graph = (
            index is not None
            and not exact
            and _has_global_graph(segment, query.using)
            and _graph_pays_off(holder, query.using, count, index.size)
        )
        flat = (
            not graph
            and count >= FLAT_SCAN_MIN  # first: a selective filter stops here
            and index is not None
            and index.exact_capable
            and holder.config.vectors[query.using].datatype == "float32"
        )
        if seg is not None:
            _explain_plan(seg, holder, query, segment, count, exact, graph, flat)
        if index is not None and (graph or flat):
            walks = cached.walks if cached is not None else None
            compared = distance_count() if meter is not None and not flat else 0
            hits = _graph_search(
                holder, index, query, mask, count, want, hnsw_ef, quantization, flat, seg, walks
            )
            if meter is not None:
                scored = count if flat else max(0, distance_count() - compared)
                _meter_scored(meter, params, query, scored)
            if seg is not None:
                seg.scored = count if flat else 0
                t = seg.add("search", t)
            rescored = index.quantized and (quantization.rescore or quantization.ignore)
            if rescored:
                if seg is not None:
                    seg.rescored = True
                    seg.scored += len(hits[1])
                # By the original vectors; a threshold applies below, as to any walk.
                hits = _best_of(segment, query, hits[1], distance, want, better_high)
                if seg is not None:
                    t = seg.add("rescore", t)
            if score_threshold is not None:
                hits = (
                    hits[0][passes_threshold(hits[0], score_threshold, distance)],
                    hits[1][passes_threshold(hits[0], score_threshold, distance)],
                )
            parts.append((segment, hits[0].tolist(), hits[1].tolist()))
            # faiss answers a float graph's walk best first (scores are a monotone map of
            # its distances); a binary or turbo walk ranks by codes, not by these scores.
            if rescored or (index.codec is None and index.turbo is None):
                runs += 1
            else:
                unsorted = True
            if seg is not None:
                seg.returned = len(hits[1])
            continue
        candidates = (
            cached.offsets
            if cached is not None and cached.offsets is not None
            else candidate_offsets(mask, cached)
        )
        if not len(candidates):
            continue
        multi_index = None if exact else segment.vector_indexes.get(query.using)
        if (
            query.kind == "multi"
            and multi_index is not None
            and _has_global_graph(segment, query.using)
            and _graph_pays_off(holder, query.using, count, segment.size)
        ):
            candidates = _multi_first_stage(segment, multi_index, query, mask, want, hnsw_ef)
            if seg is not None:
                seg.plan = "graph+exact"
                seg.reason = (
                    "multivector graph over every row: the points owning the nearest rows "
                    "are scored exactly (max_sim)"
                )
        if seg is not None:
            seg.scored = len(candidates)
        if meter is not None:
            _meter_scored(meter, params, query, len(candidates))
        native = score_threshold is None and query.kind == "dense"
        listed = (
            _native_listed(segment, query, candidates, distance, want, cached) if native else None
        )
        if listed is not None:  # `_best_of`'s answer, as lists (no threshold to apply)
            parts.append((segment, listed[0], listed[1]))
            returned = len(listed[1])
        else:
            # (where the native scan was tried it failed as `_best_of`'s would: a tie at the
            # cut or a storage it does not read; numpy answers without a second try)
            best_found = _best_of(
                segment,
                query,
                candidates,
                distance,
                want,
                better_high,
                cached,
                idf,
                score_threshold,
                native=not native,
            )
            parts.append((segment, best_found[0].tolist(), best_found[1].tolist()))
            returned = len(best_found[1])
        runs += 1  # each run comes best first (top_k): one alone needs no merge
        if seg is not None:
            seg.returned = returned
            t = seg.add("search", t)
    if report is not None:
        t = now()
    found: list[ScoredRef] | Run
    if len(parts) == 1 and not unsorted:  # one run, best first: nothing to merge
        segment, scores, offsets = parts[0]
        found = _new_run((segment, scores[offset:want], offsets[offset:want]))
        results = len(found.offsets)
    else:
        merged: list[ScoredRef] = []
        for segment, scores, offsets in parts:
            merged.extend(map(_new_scored, zip(scores, refs_in(segment, offsets))))
        if runs > 1 or unsorted:
            merged.sort(key=lambda s: -s.score if better_high else s.score)
        found = merged[offset:want]
        results = len(found)
    if report is not None:
        report.add("merge", t)
        report.results = results
    return found


def _meter_scored(
    meter: hw_meter.Meter, params: DenseVectorParams | None, query: VectorQuery, scored: int
) -> None:
    """`scored` vectors compared with the query: Qdrant's scorers count their elements as
    `cpu`, and as `vector_io_read` the bytes read from an on-disk storage."""
    if query.kind == "sparse":
        elements = len(query.value[0])  # the query's non-zero elements, each looked up
        meter.add(cpu=scored * elements)
        return
    size = params.size if params is not None else 0
    meter.add(cpu=scored * size)
    if params is not None and params.vectors_on_disk():
        meter.add(vector_io_read=scored * size * np.dtype(params.datatype).itemsize)


def _best_of(
    segment: Segment,
    query: VectorQuery,
    candidates: npt.NDArray[np.int64],
    distance: Distance,
    want: int,
    better_high: bool,
    cached: CachedFilter | None = None,
    idf: FloatArray | None = None,
    score_threshold: float | None = None,
    native: bool = True,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """(scores, offsets) of the best `want` of `candidates` passing `score_threshold`, best
    first, scored exactly: in one native call where `exact_knn` answers as `_numpy_best`
    would (a selective filter's candidates, a quantized walk's to rescore), else by numpy
    (`native` False: the caller has tried the native call already)."""
    found = (
        _native_nearest(segment, query, candidates, distance, want, cached)
        if native and query.kind == "dense"
        else None
    )
    if found is None:
        return _numpy_best(
            segment, query, candidates, distance, idf, cached, score_threshold, want, better_high
        )
    if score_threshold is not None:
        # monotone: the best k that pass are the best that pass
        keep = passes_threshold(found[0], score_threshold, distance)
        found = (found[0][keep], found[1][keep])
    return found


def _numpy_best(
    segment: Segment,
    query: VectorQuery,
    candidates: npt.NDArray[np.int64],
    distance: Distance,
    idf: FloatArray | None,
    cached: CachedFilter | None,
    score_threshold: float | None,
    want: int,
    better_high: bool,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """(scores, offsets) of the best `want` of `candidates` passing `score_threshold`, best
    first, scored by `score_candidates` (every kind of vector)."""
    scores = score_candidates(segment, query, candidates, distance, idf, cached)
    if query.kind == "sparse":
        # Qdrant only returns sparse results that share at least one index.
        keep = _shares_index(segment, query, candidates)
        candidates, scores = candidates[keep], scores[keep]
    if score_threshold is not None:
        keep = passes_threshold(
            scores, score_threshold, distance if query.kind != "sparse" else "Dot"
        )
        candidates, scores = candidates[keep], scores[keep]
    best = top_k(scores, want, better_high)
    return scores[best], candidates[best]


def _segment_report(
    report: QueryReport, number: int, segment: Segment, using: str, count: int
) -> SegmentPlan:
    index = segment.vector_indexes.get(using)
    return report.segment(number, segment.size, index.size if index is not None else 0, count)


def unindexed_and_large(holder: SegmentHolder, segment: Segment, using: str) -> bool:
    """What `params.indexed_only` leaves out, as Qdrant: a segment with no graph of dense
    vector `using` holding more points than `full_scan_threshold` (a small one is searched,
    exactly). Sparse and multivector searches are never left out."""
    params = holder.config.vectors.get(using)
    if params is None or params.multivector or using in segment.vector_indexes:
        return False
    return segment.live_count() > _threshold_points(holder, using)[1]


def _threshold_points(holder: SegmentHolder, using: str) -> tuple[int, int]:
    """`full_scan_threshold` of vector `using`: (KB, the points that many KB hold)."""
    params = holder.config.vectors[using]
    threshold_kb = int(holder.config.hnsw_setting(using, "full_scan_threshold") or 0)
    return threshold_kb, threshold_kb * 1024 // max(params.size * 4, 1)


def _explain_plan(
    seg: SegmentPlan,
    holder: SegmentHolder,
    query: VectorQuery,
    segment: Segment,
    count: int,
    exact: bool,
    graph: bool,
    flat: bool,
) -> None:
    """The planner's choice for one segment, and why, in words (explain only)."""
    if query.kind == "sparse":
        seg.plan, seg.reason = "exact", "sparse vectors: every candidate is scored"
        return
    kb, points = _threshold_points(holder, query.using)
    seg.full_scan_threshold_kb, seg.full_scan_threshold_points = kb, points
    index = segment.vector_indexes.get(query.using)
    indexed = index.size if index is not None else 0
    share = count / max(indexed, 1)
    if graph:
        seg.plan = "graph"
        if count > points:
            seg.reason = (
                f"{count} candidates > full_scan_threshold ({kb} KB = {points} points): "
                "HNSW walk with the filter inside"
            )
        else:
            seg.reason = (
                f"the filter keeps {share:.1%} (>= 10%) of the indexed points: HNSW walk "
                "with the filter inside"
            )
        return
    seg.plan = "flat" if flat else "exact"
    if exact:
        seg.reason = "params.exact: every candidate is scored"
    elif query.kind == "multi" and index is None:
        seg.reason = "no multivector graph on this segment: every candidate is scored"
    elif index is None:
        seg.reason = "no HNSW graph on this segment (not indexed yet): every candidate is scored"
    else:
        seg.reason = (
            f"{count} candidates <= full_scan_threshold ({kb} KB = {points} points) and "
            f"{share:.1%} of the indexed points (< 10%): every candidate is scored"
        )
    if flat:
        seg.reason += f" (in faiss over the flat storage: >= {FLAT_SCAN_MIN} candidates)"


def _unit_rows(vectors: FloatArray) -> FloatArray:
    """A vector (d,) or rows (q, d) scaled to unit length, zero ones left as they are: Cosine
    graphs and flat storages hold unit vectors."""
    if vectors.ndim == 1:  # a query (a per-query cost): the same float32 arithmetic
        norm = np.sqrt(np.add.reduce(vectors * vectors))
        # (the quotient is a fresh array already: no copy of it)
        return (
            (vectors / norm).astype(np.float32, copy=False)
            if norm > 0
            else vectors.astype(np.float32)
        )
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1)).astype(np.float32)


def _has_global_graph(segment: Segment, using: str) -> bool:
    """False for a graph built with `m: 0`: Qdrant builds no global graph then (only the
    payload-based links of `payload_m`, the multitenancy setup), so its searches scan the
    candidates instead of walking a graph (the index kept here is only a flat store)."""
    entry = segment.build_record.get(using)
    return entry is None or int(entry.get("m", 1)) != 0


def _graph_pays_off(holder: SegmentHolder, using: str, count: int, indexed: int) -> bool:
    """Qdrant's planner: candidates under `full_scan_threshold` (KB of vectors) are scored
    exactly; above it the graph is walked with the filter inside. One refinement: a filter
    that keeps 10% or more of the segment walks the graph anyway, since the filtered walk
    keeps its recall there (0.99 at ef 64, bench/ANN_LIBRARIES.md) and scoring that many
    candidates exactly costs several times more."""
    # (the share first: an unfiltered or broad search needs no threshold read)
    return count >= 0.1 * max(indexed, 1) or count > _threshold_points(holder, using)[1]


def _multi_first_stage(
    segment: Segment,
    index: Any,
    query: VectorQuery,
    mask: npt.NDArray[np.bool_],
    want: int,
    hnsw_ef: int | None,
) -> npt.NDArray[np.int64]:
    """Candidates for a multivector query: the points owning the nearest rows of each
    query row in the graph over all rows; the caller rescores them with exact max_sim."""
    storage = segment.storages[query.using]
    assert isinstance(storage, ObjectStorage)
    _, starts = storage.packed(segment.size)
    counts = np.diff(starts)
    row_mask = np.repeat(mask, counts)
    row_owner = np.repeat(np.arange(segment.size, dtype=np.int64), counts)
    k = max(4 * want, 32)
    ef = max(hnsw_ef or 0, 2 * k)
    found: list[npt.NDArray[np.int64]] = []
    for row in np.asarray(query.value, dtype=np.float32):
        q = _unit_rows(row) if index.distance == "Cosine" else row
        _, rows = index.search(q, k, ef, row_mask)
        found.append(row_owner[rows])
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def _graph_search(
    holder: SegmentHolder,
    index: Any,
    query: VectorQuery,
    mask: npt.NDArray[np.bool_],
    count: int,
    want: int,
    hnsw_ef: int | None,
    quantization: QuantizationParams,
    flat: bool = False,
    seg: SegmentPlan | None = None,
    walks: dict[Any, Any] | None = None,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    distance = query_distance(holder, query.using)
    ef = hnsw_ef or int(holder.config.hnsw_setting(query.using, "ef_construct") or 100)
    # faiss walks the unfiltered path and keeps the matches it meets: measured on 200k x 96,
    # recall@10 holds at ef 128 down to ~3% selectivity (0.97) and collapses near 0.5%. So
    # widen the beam only below 10%, by sqrt(0.1 / selectivity), at most 8x; the planner has
    # sent the smallest candidate sets to the exact scan already.
    selectivity = max(count / max(index.size, 1), 1e-4)
    if selectivity < 0.1:
        ef = int(ef * min(np.sqrt(0.1 / selectivity), 8.0))
    datatype = holder.config.vectors[query.using].datatype
    # The query as stored vectors are (half precision, truncated bytes), then unit length
    # for Cosine: graphs of Cosine vectors are built over unit vectors. A float32 Cosine
    # query is made unit once (prepare_query's normalisation, then _unit_rows', differ in
    # the last bit at most; below prepare_query's EPSILON only _unit_rows scales).
    if distance == "Cosine" and datatype == "float32":
        q = _unit_rows(np.asarray(query.value, dtype=np.float32))
    else:
        q = prepare_query(check_distance(distance), query.value, check_datatype(datatype))
        if distance == "Cosine":
            q = _unit_rows(q)
    k = want
    if index.quantized and quantization.rescore:
        over = quantization.oversampling
        # NaN passes Qdrant's `>= 1` rule and oversamples nothing there; inf takes all.
        if not np.isnan(over):
            k = max(want, int(min(np.ceil(want * over), index.size)))
    if index.quantized and quantization.ignore:
        # Scores from the original vectors only: the whole beam of the walk is rescored.
        k = max(k, ef)
    # No beam or result list longer than the segment: faiss takes C ints (a limit, offset or
    # hnsw_ef of 2^31 was a 500) and allocates both; past its points there is nothing more.
    k, ef = min(k, max(index.size, 1)), min(ef, max(index.size, 1))
    if seg is not None:
        seg.hnsw_ef = None if flat else ef
        seg.walked = k
        seg.quantized = bool(index.quantized)
        if index.quantized:
            seg.oversampling = quantization.oversampling
    # Every indexed offset a candidate: no filter to apply inside faiss.
    everything = count == index.size and len(mask) == index.size
    result: tuple[FloatArray, npt.NDArray[np.int64]] = index.search(
        q, k, ef, None if everything else mask, flat, walks
    )
    return result


def _shares_index(
    segment: Segment, query: VectorQuery, candidates: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    from tessera.query.sparse import shares_index

    storage = segment.storages[query.using]
    assert isinstance(storage, ObjectStorage)
    return shares_index(query.value[0], storage.packed(segment.size))[candidates]


def sparse_idf_for(
    holder: SegmentHolder, query: VectorQuery, corpus: Filter | None = None
) -> FloatArray | None:
    """IDF weights of a sparse query's indices, over the live points holding a non-empty
    vector (or matching `corpus`, the request's `idf.corpus`, and holding one at all: see
    `sparse.document_frequencies`)."""
    if query.kind != "sparse":
        return None
    params = holder.config.sparse_vectors.get(query.using)
    if params is None or params.modifier != "idf":
        return None
    from tessera.query.sparse import document_frequencies, idf_weights

    idx = query.value[0]
    total = 0
    df = np.zeros(len(idx), dtype=np.float64)
    for segment in holder.segments:
        storage = segment.storages[query.using]
        assert isinstance(storage, ObjectStorage)
        live = segment.live_mask() if corpus is None else evaluate(corpus, segment)
        live &= storage.has(segment.size)
        matrix = storage.packed(segment.size)
        seg_df, seg_n = document_frequencies(matrix, idx, live, corpus=corpus is not None)
        df += seg_df
        total += seg_n
    return np.asarray(idf_weights(df, total), dtype=np.float32)


def exact_batch(
    holder: SegmentHolder, using: str, queries: FloatArray, want: int
) -> list[list[ScoredRef]]:
    """Exact, unfiltered nearest search for several dense queries at once: one matrix product
    (BLAS GEMM) per segment instead of one scan per query. Best `want` per query."""
    distance = check_distance(query_distance(holder, using))
    datatype = check_datatype(holder.config.vectors[using].datatype)
    better_high = higher_is_better(distance)
    found: list[list[ScoredRef]] = [[] for _ in range(len(queries))]
    for segment in holder.segments:
        deadline.check()
        mask, count = segment.base_mask(using)
        if not count:
            continue
        storage = segment.storages[using]
        assert isinstance(storage, DenseStorage)
        index = segment.vector_indexes.get(using)
        if index is not None and index.exact_capable and datatype == "float32":
            prepared = _unit_rows(queries) if distance == "Cosine" else queries
            all_scores, all_labels = index.flat_search_many(prepared, want, mask)
            for row, labels, hits in zip(all_scores, all_labels, found, strict=True):
                keep = labels >= 0
                hits.extend(
                    ScoredRef(float(sc), PointRef(segment, int(off)))
                    for sc, off in zip(row[keep].tolist(), labels[keep].tolist(), strict=True)
                )
            continue
        if count == segment.size:
            offsets = None
            stored = storage.rows(segment.size)
        else:
            offsets = np.flatnonzero(mask)
            stored = storage.matrix[offsets]
        scores = np.atleast_2d(score_dense(distance, queries, stored, datatype))
        key = -scores if better_high else scores
        k = min(want, key.shape[1])
        # One partition over the whole (queries x points) matrix, then the k best sorted.
        best = np.argpartition(key, k - 1, axis=1)[:, :k] if k < key.shape[1] else None
        if best is None:
            best = np.broadcast_to(np.arange(key.shape[1]), key.shape)
        order = np.take_along_axis(best, np.argsort(np.take_along_axis(key, best, 1), 1), 1)
        for row, picks, hits in zip(scores, order, found, strict=True):
            points = picks if offsets is None else offsets[picks]
            hits.extend(
                ScoredRef(float(sc), PointRef(segment, int(off)))
                for sc, off in zip(row[picks].tolist(), points.tolist(), strict=True)
            )
    for hits in found:
        hits.sort(key=lambda s: -s.score if better_high else s.score)
        del hits[want:]
    return found
