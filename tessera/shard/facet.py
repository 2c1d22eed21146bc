"""Facet counts over the segment holder: how many points hold each value of a payload key.

Qdrant facets only over an index that maps values to points: keyword, integer (with its
`lookup` capability, the default), bool and uuid. Each segment counts, under the filter's
mask, the points holding each value (a point with a value several times counts once); the
counts are summed across segments and the top `limit` are kept, by count descending, then
by value ascending (strings by code point, which is Qdrant's byte order of UTF-8; integers
numerically; false before true; UUIDs as canonical text, which is their numeric order).

Callers hold the shard's read lock. Every point lives in exactly one segment, so the counts
are exact whether or not the request asks for `exact`.

Qdrant's missing-index error is raised by each segment that has points, in the approximate
path only after a shortcut for segments without available points; the exact path reads the
index of every segment first. So a collection without points answers an approximate facet
with no hits even when the key has no suitable index, as Qdrant does, and an exact one with
the error.
"""

from __future__ import annotations

from typing import Any

from tessera import deadline
from tessera.errors import BadRequest
from tessera.query.filter_model import Filter
from tessera.shard.holder import SegmentHolder
from tessera.shard.read import segment_mask

FacetValue = str | int | bool
FACETABLE = ("keyword", "integer", "bool", "uuid")


def missing_facet_index(key: str) -> BadRequest:
    return BadRequest(
        f"Bad request: No appropriate index for faceting: `{key}`. Please create one to facet "
        "on this field. Check https://qdrant.tech/documentation/concepts/indexing/"
        "#payload-index to see which payload schemas support Match conditions"
    )


def facetable(schema: Any) -> bool:
    """Whether a payload index schema (as the user gave it) supports facets."""
    if isinstance(schema, str):
        return schema in FACETABLE
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "integer":
            return schema.get("lookup") is not False
        return kind in FACETABLE
    return False


def facet(
    holder: SegmentHolder, key: str, filt: Filter | None, limit: int, exact: bool
) -> list[tuple[FacetValue, int]]:
    """The top `limit` (value, count) pairs of `key` among the live points matching `filt`."""
    indexed = facetable(holder.index_schemas.get(key))
    if not indexed and (exact or holder.live_count()):
        raise missing_facet_index(key)
    totals: dict[FacetValue, int] = {}
    for segment in holder.segments:
        deadline.check()
        index = segment.field_index(key) if indexed else None
        if index is None or segment.live_count() == 0:
            continue
        for value, count in index.facet_counts(segment_mask(segment, filt)).items():
            if count:
                totals[value] = totals.get(value, 0) + count
    return top_hits(totals, limit)


def top_hits(totals: dict[FacetValue, int], limit: int) -> list[tuple[FacetValue, int]]:
    """By count descending, then value ascending."""
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:limit]
