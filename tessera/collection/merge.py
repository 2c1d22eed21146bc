"""Answers of several shards made into the collection's one answer (cluster mode).

Each shard answers a read over its own points, best first and with the request's offset
added to its limit; the merge keeps the collection's order (by score, in the direction the
query ranks; by payload value for `order_by`; by id for scrolls and queries without a
score), then applies the offset and the limit once. Counts and facet counts add up.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from typing import Any

from tessera.collection.values import FacetHit, Group, Points, ScrollPage
from tessera.collection_config import CollectionConfig
from tessera.ids import PointId, id_sort_key
from tessera.query import query_model as qm
from tessera.query.scoring import higher_is_better

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
    end = None if limit is None else offset + limit
    return take(merged, rows[offset:end])


def _key(points: Points, order: str) -> Key:
    if order in ("desc", "asc"):
        scores = points.scores or [0.0] * len(points)
        sign = -1.0 if order == "desc" else 1.0
        return lambda i: (sign * scores[i], id_sort_key(points.ids[i]))
    if order in ("value_asc", "value_desc"):
        values = points.order_values or [None] * len(points)
        descending = order == "value_desc"

        def by_value(i: int) -> Any:
            value = values[i]
            if value is None:
                return (1, 0.0)
            number = float(value) if not isinstance(value, str) else 0.0
            return (0, -number if descending else number)

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
    if isinstance(query, qm.Nearest):
        return nearest_order(config, root.using)
    return "desc"


def nearest_order(config: CollectionConfig, using: str) -> str:
    """A nearest query reports distances for Euclid and Manhattan (smaller first)."""
    dense = config.vectors.get(using)
    if dense is None or dense.multivector:
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
    rows = sorted(range(len(merged)), key=lambda i: id_sort_key(merged.ids[i]))
    following: list[PointId] = [p.next_offset for p in pages if p.next_offset is not None]
    if len(rows) > limit:
        following.append(merged.ids[rows[limit]])
    next_offset = min(following, key=id_sort_key) if following else None
    return ScrollPage(take(merged, rows[:limit]), next_offset)


def facet_hits(parts: Sequence[list[FacetHit]], limit: int) -> list[FacetHit]:
    totals: dict[Any, int] = {}
    for hits in parts:
        for hit in hits:
            totals[hit.value] = totals.get(hit.value, 0) + hit.count
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], _facet_value_key(kv[0])))
    return [FacetHit(value, count) for value, count in ranked[:limit]]


def _facet_value_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int):
        return (1, value)
    return (2, str(value))


def groups(parts: Sequence[list[Group]], order: str, group_size: int, limit: int) -> list[Group]:
    """Groups of every shard with the same id made one: their best `group_size` hits, the
    groups ordered by their best hit, the first `limit`."""
    hits: dict[Any, list[Points]] = {}
    for found in parts:
        for group in found:
            hits.setdefault(group.id, []).append(group.hits)
    merged = [
        Group(gid, sorted_points(points, order, 0, group_size)) for gid, points in hits.items()
    ]
    best = [g.hits.scores[0] if g.hits.scores else 0.0 for g in merged]
    sign = -1.0 if order == "desc" else 1.0
    ranked = heapq.nsmallest(limit, range(len(merged)), key=lambda i: sign * best[i])
    return [merged[i] for i in ranked]
