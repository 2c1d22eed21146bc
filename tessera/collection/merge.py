"""Answers of several shards made into the collection's one answer (cluster mode).

Each shard answers a read over its own points, best first and with the request's offset
added to its limit; the merge keeps the collection's order (by score, in the direction the
query ranks; by payload value for `order_by`; by id for scrolls and queries without a
score), then applies the offset and the limit once. Counts and facet counts add up.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from tessera.collection.values import FacetHit, Points, ScrollPage
from tessera.collection_config import CollectionConfig
from tessera.ids import PointId, id_sort_key
from tessera.query import query_model as qm
from tessera.query.scoring import higher_is_better
from tessera.shard.facet import top_hits

Key = Callable[[int], Any]


def concat(parts: Sequence[Points]) -> Points:
    """The points of `parts` one after the other (the columns every part has)."""
    parts = [p for p in parts if len(p)] or list(parts[:1])
    if not parts:
        return Points([])

    def column(name: str) -> list[Any] | None:
        columns = [getattr(p, name) for p in parts]
        if any(c is None for c in columns):
            return None
        return [item for c in columns for item in c]

    return Points(
        [pid for p in parts for pid in p.ids],
        column("payloads"),
        column("vectors"),
        column("versions"),
        column("scores"),
        column("order_values"),
        column("shard_keys"),
    )


def take(points: Points, rows: Sequence[int]) -> Points:
    def pick(column: list[Any] | None) -> list[Any] | None:
        return None if column is None else [column[i] for i in rows]

    return Points(
        [points.ids[i] for i in rows],
        pick(points.payloads),
        pick(points.vectors),
        pick(points.versions),
        pick(points.scores),
        pick(points.order_values),
        pick(points.shard_keys),
    )


def sorted_points(parts: Sequence[Points], order: str, offset: int, limit: int | None) -> Points:
    """The points of `parts` in `order` ("desc"/"asc": by score; "id"; "value_asc" /
    "value_desc": by order value; "random"), rows `offset` to `offset + limit`."""
    merged = concat(parts)
    rows = list(range(len(merged)))
    if order == "random":
        random.shuffle(rows)
    else:
        rows.sort(key=_key(merged, order))
    rows = _first_of_each(merged, rows)
    end = None if limit is None else offset + limit
    return take(merged, rows[offset:end])


def _first_of_each(points: Points, rows: list[int]) -> list[int]:
    """`rows` without a point already answered (the same id under two shard keys is one
    answer, as Qdrant merges it)."""
    seen: set[Any] = set()
    kept = []
    for row in rows:
        pid = points.ids[row]
        if pid not in seen:
            seen.add(pid)
            kept.append(row)
    return kept


def _key(points: Points, order: str) -> Key:
    if order in ("desc", "asc"):
        scores = points.scores or [0.0] * len(points)
        sign = -1.0 if order == "desc" else 1.0
        return lambda i: (sign * scores[i], id_sort_key(points.ids[i]))
    if order in ("value_asc", "value_desc"):
        values = points.order_values or [None] * len(points)
        descending = order == "value_desc"
        ids = points.ids

        def by_value(i: int) -> Any:
            # As one shard orders them: by value (exact for big integers), ties by id.
            value = values[i]
            if isinstance(value, int | float) and not isinstance(value, bool):
                return (0, -value if descending else value, id_sort_key(ids[i]))
            return (1, 0, id_sort_key(ids[i]))

        return by_value
    return lambda i: id_sort_key(points.ids[i])


def plan_order(plan: qm.Plan, config: CollectionConfig) -> str:
    """How the answers of `plan` are ordered (see `sorted_points`)."""
    root = plan.root
    query = root.query
    if isinstance(query, qm.OrderBy):
        return "value_desc" if query.descending else "value_asc"
    if isinstance(query, qm.Sample):
        return "random"
    if query is None:
        return "id"
    if isinstance(query, qm.Nearest) or (
        isinstance(query, qm.Recommend) and query.strategy == "average_vector"
    ):
        return nearest_order(config, root.using)
    return "desc"


def nearest_order(config: CollectionConfig, using: str) -> str:
    """A nearest search (a plain one, or `average_vector` recommend, which is one) reports
    distances for Euclid and Manhattan, dense or multi (smaller first); sparse and every
    other query rank by similarity."""
    dense = config.vectors.get(using)
    if dense is None:
        return "desc"
    if not higher_is_better(dense.distance):  # type: ignore[arg-type]
        return "asc"
    return "desc"


def scroll_pages(pages: Sequence[ScrollPage], limit: int, by_value: str | None) -> ScrollPage:
    """One page from the pages of every shard, each from the same offset: the first `limit`
    points in id order, and the next page's first id (the smallest id not answered)."""
    if by_value is not None:
        return ScrollPage(sorted_points([p.points for p in pages], by_value, 0, limit), None)
    merged = concat([p.points for p in pages])
    rows = _first_of_each(
        merged, sorted(range(len(merged)), key=lambda i: id_sort_key(merged.ids[i]))
    )
    following: list[PointId] = [p.next_offset for p in pages if p.next_offset is not None]
    if len(rows) > limit:
        following.append(merged.ids[rows[limit]])
    next_offset = min(following, key=id_sort_key) if following else None
    return ScrollPage(take(merged, rows[:limit]), next_offset)


def facet_hits(parts: Sequence[list[FacetHit]], limit: int) -> list[FacetHit]:
    """Every shard's counts (of every value: a value first in no shard may be first over
    all) added up, ranked as one shard ranks them."""
    totals: dict[Any, int] = {}
    for hits in parts:
        for hit in hits:
            totals[hit.value] = totals.get(hit.value, 0) + hit.count
    return [FacetHit(value, count) for value, count in top_hits(totals, limit)]
