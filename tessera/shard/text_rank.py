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

import weakref

import numpy as np
import numpy.typing as npt

from tessera import deadline
from tessera.errors import BadRequest
from tessera.query.filter_model import Filter
from tessera.query.query_model import TextQuery
from tessera.segment.field_index import parse_field_schema
from tessera.segment.field_index_text import TextIndex
from tessera.segment.segment import Segment
from tessera.shard.holder import SegmentHolder
from tessera.shard.read import PointRef, refs_in, segment_mask

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def _best(scores: npt.NDArray[np.float32], points: I64, want: int) -> I64:
    """Positions of the `want` best scores, best first, ties by offset. BM25 scores tie
    a lot (same counts, same lengths: a few dozen distinct values over thousands of points),
    where numpy's partition is slow (~10x a pass): a small `want` takes the best value and
    all its ties, then the next, until there are enough."""
    if len(scores) <= want:
        kept = np.arange(len(scores))
    elif want <= 64:
        rest = scores.copy()
        taken: list[I64] = []
        count = 0
        while count < want:
            ties = np.flatnonzero(rest == rest.max())
            taken.append(ties)
            count += len(ties)
            rest[ties] = -np.inf
        kept = np.concatenate(taken)
    else:
        kept = np.argpartition(-scores, want - 1)[:want]
    order: I64 = kept[np.lexsort((points[kept], -scores[kept]))][:want]
    return order


def check_scoring_index(holder: SegmentHolder, field: str) -> None:
    """400 unless `field` has a text index with `scoring` (Qdrant's wording)."""
    if not field:
        raise BadRequest(
            "Wrong input: Validation failed: a text query needs `using`: the payload field "
            "whose text index ranks the points"
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


# Per segment and field, until the segment changes (its generation): the live units'
# lengths (0 for the others), how many hold a token, and their tokens in all.
_LENGTHS: weakref.WeakKeyDictionary[Segment, dict[str, tuple[tuple[int, int], I64, int, int]]] = (
    weakref.WeakKeyDictionary()
)


def _by_unit(mask: Bools, segment: Segment, index: TextIndex, units: I64) -> Bools:
    """A mask over the segment's offsets read for each unit: its point's entry."""
    if not index.per_element:  # a unit is a point: its number is the offset
        return mask[units]
    padded = np.append(mask, False)  # an offset past the segment: not in it
    return padded[np.minimum(index.unit_offsets(units), segment.size)]


def _live_lengths(segment: Segment, index: TextIndex, field: str) -> tuple[I64, int, int]:
    generation = (segment.generation, id(index))  # a re-created index is another one
    kept = _LENGTHS.get(segment, {}).get(field)
    if kept is not None and kept[0] == generation:
        return kept[1], kept[2], kept[3]
    lengths = index.unit_lengths(segment.size)
    live = _by_unit(segment.live_mask(), segment, index, np.arange(len(lengths)))
    lengths = np.where(live, lengths, 0)
    documents, total = int(np.count_nonzero(lengths)), int(lengths.sum())
    _LENGTHS.setdefault(segment, {})[field] = (generation, lengths, documents, total)
    return lengths, documents, total


def _segment_terms(segment: Segment, index: TextIndex, terms: list[str]) -> list[tuple[I64, F64]]:
    """Per term, the segment's live units holding it and its counts there."""
    live = segment.live_mask()
    found = []
    for term in terms:
        units, counts = index.term_counts(term, segment.size)
        keep = _by_unit(live, segment, index, units)
        found.append((units[keep], counts[keep]))
    return found


def rank(
    holder: SegmentHolder,
    field: str,
    query: TextQuery,
    filt: Filter | None,
    want: int,
    corpus: Filter | None = None,
) -> list[tuple[float, PointRef]]:
    """The `want` best points by BM25 over `field`, best first (ties: segment, offset).
    `corpus` (`params.idf.corpus`): the statistics (N, avgdl, each term's n) are those of
    the points matching it; every point holding a query term still scores."""
    check_scoring_index(holder, field)
    segments: list[tuple[Segment, TextIndex, I64, list[tuple[I64, F64]]]] = []
    documents = total = 0
    held = np.zeros(0, dtype=np.float64)
    terms: list[str] | None = None
    for segment in holder.segments:
        deadline.check()
        index = segment.field_index(field)
        if not segment.size or not isinstance(index, TextIndex):
            continue
        if terms is None:  # every segment's index tokenizes alike
            terms = list(dict.fromkeys(index.tokenizer.query_terms(query.text)))
            held = np.zeros(len(terms), dtype=np.float64)
        lengths, holding, tokens = _live_lengths(segment, index, field)
        found = _segment_terms(segment, index, terms)
        if corpus is None:
            held += [len(units) for units, _ in found]
        else:
            inside = segment_mask(segment, corpus)  # live points matching the corpus, once
            counted = np.where(
                _by_unit(inside, segment, index, np.arange(len(lengths))), lengths, 0
            )
            holding, tokens = int(np.count_nonzero(counted)), int(counted.sum())
            held += [int(_by_unit(inside, segment, index, units).sum()) for units, _ in found]
        documents, total = documents + holding, total + tokens
        segments.append((segment, index, lengths, found))
    if not terms or want <= 0 or not documents:
        return []
    idf = np.log1p((documents - held + 0.5) / (held + 0.5))
    average = total / documents
    k, b = float(query.k), float(query.b)
    rows: list[tuple[float, int, PointRef]] = []
    for number, (segment, index, lengths, found) in enumerate(segments):
        parts = [
            (units, weight * tf * (k + 1.0) / (tf + k * (1.0 - b + b * lengths[units] / average)))
            for weight, (units, tf) in zip(idf.tolist(), found, strict=True)
            if len(units)
        ]
        if not parts:
            continue
        if len(parts) == 1:  # one term's units are distinct: nothing to add up
            scored, unit_scores = parts[0]
        else:  # dense over the units; every part is > 0
            per_unit = np.zeros(len(lengths), dtype=np.float64)
            for units, part in parts:
                per_unit[units] += part
            scored = np.flatnonzero(per_unit)
            unit_scores = per_unit[scored]
        if index.per_element:  # a point scores its best element
            best_of = np.zeros(segment.size, dtype=np.float64)
            np.maximum.at(best_of, index.unit_offsets(scored), unit_scores)
            points = np.flatnonzero(best_of)
            scores = best_of[points]
        else:
            points, scores = scored, unit_scores
        if filt is not None:
            keep = segment_mask(segment, filt)[points]
            points, scores = points[keep], scores[keep]
        reported = scores.astype(np.float32)
        best = _best(reported, points, want)
        for score, ref in zip(
            reported[best].tolist(), refs_in(segment, points[best].tolist()), strict=True
        ):
            rows.append((score, number, ref))
    rows.sort(key=lambda r: (-r[0], r[1], r[2].offset))
    return [(score, ref) for score, _, ref in rows[:want]]
