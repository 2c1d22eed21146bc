"""BM25 ranking over a payload field's text index: the Query API's `text` query.

The field's index must have `scoring` set. A document is a *unit* of the index: a point's
strings at the field together, or with `nested` those of one element of the array
(`TextIndex.term_counts`, `unit_lengths`); a point scores its best element. The statistics
are the shard's, over every segment's live units that hold at least one token: `N` such
units, their average length `avgdl`, and for each query term the number `n` of them holding
it. Qdrant Edge scores the same way (Lucene's BM25):

    score = sum over the query's distinct terms t of
            ln(1 + (N - n + 0.5) / (n + 0.5)) * tf * (k + 1) / (tf + k * (1 - b + b * dl / avgdl))

Only points holding at least one query term score; the request's filter then picks among
them and does not change the statistics. Callers hold the shard's read lock.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest
from tessera.query.filter_model import Filter
from tessera.query.query_model import TextQuery
from tessera.query.scoring import top_k
from tessera.segment.field_index import parse_field_schema
from tessera.segment.field_index_text import TextIndex
from tessera.segment.segment import Segment
from tessera.shard.holder import SegmentHolder
from tessera.shard.read import PointRef, refs_in, segment_mask

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def check_scoring_index(holder: SegmentHolder, field: str) -> None:
    """400 unless `field` has a text index with `scoring` (Qdrant's wording)."""
    if not field:
        raise BadRequest(
            "Wrong input: Validation failed: a text query ranks by the text index of the "
            "payload field named by `using`, and none is named"
        )
    raw = holder.index_schemas.get(field)
    schema = parse_field_schema(raw) if raw is not None else None
    if schema is None or schema.data_type != "text":
        raise BadRequest(
            f"Wrong input: Validation failed: BM25 requires a text index on field {field}, "
            "which has none"
        )
    if schema.param("scoring") in (None, False):
        raise BadRequest(
            f"Wrong input: Validation failed: The text index on `{field}` does not score: "
            "set `scoring` on it to query it"
        )


def _segment_terms(
    segment: Segment, index: TextIndex, terms: list[str]
) -> tuple[I64, list[tuple[I64, I64]]]:
    """The segment's live units' lengths and, per term, its live holders and counts."""
    live = np.append(segment.live_mask(), False)  # an offset past the segment: not live

    def alive(units: I64) -> npt.NDArray[np.bool_]:
        return live[np.minimum(index.unit_offsets(units), segment.size)]

    lengths = index.unit_lengths(segment.size)
    lengths = np.where(alive(np.arange(len(lengths))), lengths, 0)
    found = []
    for term in terms:
        units, counts = index.term_counts(term)
        keep = alive(units)
        found.append((units[keep], counts[keep]))
    return lengths, found


def rank(
    holder: SegmentHolder, field: str, query: TextQuery, filt: Filter | None, want: int
) -> list[tuple[float, PointRef]]:
    """The `want` best points by BM25 over `field`, best first (ties: segment, offset)."""
    check_scoring_index(holder, field)
    segments: list[tuple[Segment, I64, list[tuple[I64, I64]]]] = []
    terms: list[str] | None = None
    for segment in holder.segments:
        index = segment.field_index(field)
        if not segment.size or not isinstance(index, TextIndex):
            continue
        if terms is None:  # every segment's index tokenizes alike
            terms = list(dict.fromkeys(index.tokenizer.query_terms(query.text)))
        lengths, found = _segment_terms(segment, index, terms)
        segments.append((segment, lengths, found))
    if not terms or want <= 0:
        return []
    documents = sum(int(np.count_nonzero(lengths)) for _, lengths, _ in segments)
    total = sum(int(lengths.sum()) for _, lengths, _ in segments)
    if not documents:
        return []
    held = np.zeros(len(terms), dtype=np.float64)
    for _, _, found in segments:
        held += [len(offsets) for offsets, _ in found]
    idf = np.log1p((documents - held + 0.5) / (held + 0.5))
    average = total / documents
    k, b = float(query.k), float(query.b)
    rows: list[tuple[float, int, PointRef]] = []
    for number, (segment, lengths, found) in enumerate(segments):
        units = np.concatenate([u for u, _ in found])
        if not len(units):
            continue
        tf = np.concatenate([c for _, c in found]).astype(np.float64)
        weight = np.repeat(idf, [len(u) for u, _ in found])
        norm = k * (1.0 - b + b * lengths[units] / average)
        parts = weight * tf * (k + 1.0) / (tf + norm)
        scored, which = np.unique(units, return_inverse=True)
        per_unit = np.bincount(which, weights=parts, minlength=len(scored))
        index = segment.field_index(field)
        assert isinstance(index, TextIndex)
        # a point scores its best unit (one per point without `nested`)
        points, owner = np.unique(index.unit_offsets(scored), return_inverse=True)
        scores = np.full(len(points), -np.inf)
        np.maximum.at(scores, owner, per_unit)
        if filt is not None:
            keep = segment_mask(segment, filt)[points]
            points, scores = points[keep], scores[keep]
        reported = scores.astype(np.float32)
        best = top_k(reported, want, True)
        for score, ref in zip(
            reported[best].tolist(), refs_in(segment, points[best].tolist()), strict=True
        ):
            rows.append((score, number, ref))
    rows.sort(key=lambda r: (-r[0], r[1], r[2].offset))
    return [(score, ref) for score, _, ref in rows[:want]]
