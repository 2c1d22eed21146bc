"""Qdrant's issues dashboard (`GET /issues`): performance problems and configuration
suggestions found while serving, each with a ready-made solution.

- `UNINDEXED_FIELD/<collection>/<field>`: a filtered read checked a payload field that has
  no (suitable) payload index, and the read was slow (Qdrant's 1.2 s) or the collection is
  large enough (`LARGE_COLLECTION` points) that every such read walks that many payloads.
  The solution is the `PUT /collections/<collection>/index` request that creates the index
  (a choice of requests when the condition fits several index types), as Qdrant words it.
- `TOO_MANY_COLLECTIONS/`: more than 30 collections holding few points each (Qdrant's
  rule: the average collection size divided by the number of collections under 10000/30);
- `DAMAGED_COLLECTION/<collection>`: the collection's files could not be loaded, or parts
  of it were set aside; what is wrong is in the description (Tessera's own issue).

Issues live in one board per process (as Qdrant's dashboard) until cleared
(`DELETE /issues`) or solved: an index issue disappears once the index exists or the
collection is gone, a damage issue once the collection is healthy or gone (a deleted
collection's issues go with it at once, so a new one of that name starts with none).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from tessera.query import filter_model as fm
from tessera.query import query_model as qm
from tessera.segment.field_index import parse_field_schema

if TYPE_CHECKING:  # collection.py imports this module
    from tessera.collection.collection import Collection

# Qdrant's default slow-query threshold: a filtered read slower than this reports its
# unindexed fields. `service.slow_query_secs` replaces it (`set_slow_query_seconds`); like
# Qdrant's, the threshold is process-wide, as the board of issues is.
SLOW_QUERY_SECONDS = 1.2
_slow_query_seconds = SLOW_QUERY_SECONDS


def set_slow_query_seconds(seconds: float | None) -> None:
    """The threshold from `service.slow_query_secs`; None: Qdrant's default (1.2 s)."""
    global _slow_query_seconds
    _slow_query_seconds = SLOW_QUERY_SECONDS if seconds is None else float(seconds)


def slow_query_seconds() -> float:
    return _slow_query_seconds


# A filtered read on a collection of at least this many points reports them regardless of
# how long it took: each such read checks that many payloads one by one.
LARGE_COLLECTION = 10_000

UNINDEXED = "UNINDEXED_FIELD"
DAMAGED = "DAMAGED_COLLECTION"
TOO_MANY = "TOO_MANY_COLLECTIONS/"  # Qdrant's id: the name, then an empty instance id
MANY_COLLECTIONS = 30
FEW_POINTS = 10_000
INDEX_DOCS = "https://qdrant.tech/documentation/concepts/indexing/#payload-index"
# Every payload index type, in Qdrant's order: the choices offered when any index would do.
ALL_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")
TEXT_SCHEMA = {"type": "text", "tokenizer": "word"}


@dataclass(frozen=True)
class Issue:
    id: str
    collection: str
    description: str
    solution: dict[str, Any]
    timestamp: float
    # UNINDEXED_FIELD: the field and the index types that would serve it.
    field: str | None = None
    types: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(self.timestamp, UTC).isoformat().replace("+00:00", "Z")
        return {
            "id": self.id,
            "description": self.description,
            "solution": self.solution,
            "timestamp": stamp,
        }


_lock = threading.Lock()
_board: dict[str, Issue] = {}
# Bumped whenever an issue leaves the board. `_told`: the filters already looked at, with
# the board's `_removals` then and the index schema of each field they check; the same
# filters are looked at again only when an issue has left the board or one of those
# fields' indexes has changed.
_removals = 0
_told: dict[tuple[str, tuple[Any, ...]], tuple[int, tuple[tuple[str, Any], ...]]] = {}
_TOLD_SIZE = 1024


# The board takes unindexed-field issues while it holds fewer than this many issues:
# filters on ever new field names of a large collection (each read files an issue per
# field) must not grow it without bound. Damage and crowding issues (at most one per
# collection, and one) are always taken.
MAX_ISSUES = 1000


def submit(issue: Issue) -> bool:
    """Adds the issue unless one with its id is active (which keeps its first timestamp) or
    it is an unindexed-field issue and the board is full."""
    with _lock:
        if issue.id in _board or (issue.field is not None and len(_board) >= MAX_ISSUES):
            return False
        _board[issue.id] = issue
        return True


def clear() -> None:
    global _removals
    with _lock:
        _board.clear()
        _removals += 1


def _drop_where(gone: Callable[[Issue], bool]) -> None:
    """Removes the issues `gone` says are solved (under `_lock`), counted in `_removals`."""
    global _removals
    for key, issue in list(_board.items()):
        if gone(issue):
            del _board[key]
            _removals += 1


def forget(collection: str) -> None:
    """Drops the issues of a collection deleted just now (as Qdrant solves them on its
    deletion event): one created again under that name starts with none."""
    with _lock:
        _drop_where(lambda issue: issue.collection == collection and issue.id != TOO_MANY)


def report(collections: Mapping[str, Collection]) -> list[Issue]:
    """The active issues, oldest first, after dropping those solved meanwhile and adding the
    damaged collections."""
    for name, collection in list(collections.items()):
        damage = collection.damage
        if damage:
            submit(damaged_issue(name, damage))
    crowded = too_many_collections(collections)
    if crowded:
        submit(too_many_issue())
    with _lock:
        _drop_where(lambda issue: not _still_active(issue, collections, crowded))
        return sorted(_board.values(), key=lambda i: i.timestamp)


def too_many_collections(collections: Mapping[str, Collection]) -> bool:
    """Qdrant's rule: many collections, and few points per collection for that many."""
    count = len(collections)
    if count <= MANY_COLLECTIONS:
        return False
    sizes = [c.shard.holder.live_count() for c in collections.values() if c.failure is None]
    density = sum(sizes) // count / count
    return density < FEW_POINTS / MANY_COLLECTIONS


def too_many_issue() -> Issue:
    return Issue(
        TOO_MANY,
        "",
        "It looks like you have too many collections.\nIf your architecture creates "
        "collections programmatically, it's probably better to restructure your solution "
        "into a fixed number of them.\n\nLearn more here: "
        "https://qdrant.tech/documentation/guides/multiple-partitions/\nOr, for some more "
        "complex cases: https://qdrant.tech/documentation/guides/distributed_deployment/"
        "#user-defined-sharding",
        {"refactor": "Restructure your usage of Qdrant into a fixed number of collections"},
        time.time(),
    )


def _still_active(issue: Issue, collections: Mapping[str, Collection], crowded: bool) -> bool:
    if issue.id == TOO_MANY:
        return crowded
    collection = collections.get(issue.collection)
    if collection is None:
        return False
    if issue.field is None:
        return bool(collection.damage)
    schema = _index_types(collection).get(issue.field)
    return schema is None or schema not in issue.types


def damaged_issue(name: str, damage: Sequence[str]) -> Issue:
    return Issue(
        f"{DAMAGED}/{name}",
        name,
        f"Collection '{name}' is damaged: {'; '.join(damage)}",
        {
            "refactor": "Inspect the collection's files with `tessera check`, then recover it "
            "from a snapshot or re-create it"
        },
        time.time(),
    )


# ------------------------------------------------------------------ unindexed fields


class watch:
    """Times a read; afterwards reports the unindexed fields its filters checked when it
    was slow or the collection is large. Costs nothing for a read without a filter. (A
    class, not a generator: every filtered search takes one.)"""

    __slots__ = ("_collection", "_filters", "_started")

    def __init__(self, collection: Collection, filters: Sequence[fm.Filter | None]) -> None:
        self._collection = collection
        self._filters = filters
        self._started = 0.0

    def __enter__(self) -> None:
        if self._filters.count(None) < len(self._filters):  # any filter: no generator
            self._started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None or not self._started:
            return
        observe_read(self._collection, self._filters, time.perf_counter() - self._started)


def observe_read(
    collection: Collection, filters: Sequence[fm.Filter | None], seconds: float
) -> None:
    """`observe` a read that took `seconds`: what `watch` does after it."""
    try:
        observe(collection, filters, seconds)
    except Exception:  # a report must never fail the read it watched
        return


def observe(collection: Collection, filters: Sequence[fm.Filter | None], seconds: float) -> None:
    if collection.failure is not None or collection.closed:  # (closed: deleted meanwhile)
        return
    holder = collection.shard.holder
    if seconds <= _slow_query_seconds and holder.live_count() < LARGE_COLLECTION:
        return
    # The usual case on a busy collection: the same filters again, nothing new to tell.
    schemas = holder.index_schemas
    seen: tuple[str, tuple[Any, ...]] | None = (collection.name, tuple(filters))
    try:
        told = _told.get(seen)  # type: ignore[arg-type]
    except TypeError:  # a filter holding something unhashable is looked at every time
        told, seen = None, None
    if told is not None and told[0] == _removals:
        for key, raw in told[1]:  # a loop, not all(<generator>): every filtered read asks
            if schemas.get(key) != raw:
                break
        else:
            return
    removals = _removals
    wanted: dict[str, list[str]] = {}
    for filt in filters:
        if filt is not None:
            _collect(filt, "", wanted)
    with _lock:
        reported = {key for key in wanted if f"{UNINDEXED}/{collection.name}/{key}" in _board}
    if len(reported) < len(wanted):
        indexed = _index_types(collection)
        for key, types in wanted.items():
            if key not in reported and indexed.get(key) not in types and not collection.closed:
                submit(unindexed_issue(collection.name, key, types))
    if seen is not None:
        if len(_told) >= _TOLD_SIZE:
            _told.clear()
        _told[seen] = (removals, tuple((key, schemas.get(key)) for key in wanted))


def unindexed_issue(collection: str, field: str, types: Sequence[str]) -> Issue:
    unique = tuple(dict.fromkeys(types))
    choices = [_index_solution(collection, field, t) for t in unique]
    solution = {"immediate": choices[0]} if len(choices) == 1 else {"immediate_choice": choices}
    return Issue(
        f"{UNINDEXED}/{collection}/{field}",
        collection,
        f"Unindexed field '{field}' is slowing queries down in collection '{collection}'",
        solution,
        time.time(),
        field,
        unique,
    )


def _index_solution(collection: str, field: str, data_type: str) -> dict[str, Any]:
    schema: Any = TEXT_SCHEMA if data_type == "text" else data_type
    return {
        "message": f"Create an index on field '{field}' of schema "
        f"{orjson.dumps(schema).decode()} in collection '{collection}'. Check the "
        f"documentation for more details: {INDEX_DOCS}",
        "action": {
            "method": "PUT",
            "uri": f"/collections/{collection}/index",
            "headers": {"content-type": "application/json"},
            "body": {"field_name": field, "field_schema": schema},
        },
    }


def _index_types(collection: Collection) -> dict[str, str]:
    """Field -> the data type of its payload index."""
    if collection.failure is not None:
        return {}
    schemas = dict(collection.shard.holder.index_schemas)
    return {key: parse_field_schema(raw).data_type for key, raw in schemas.items()}


def _suitable(cond: Any) -> tuple[str, ...]:
    """The index types that would answer a field condition (Qdrant's inference)."""
    match cond:
        case fm.MatchValue(value=bool()):
            return ("bool",)
        case fm.MatchValue(value=int()):
            return ("integer",)
        case fm.MatchValue():
            return ("keyword",)
        case fm.MatchAny(values=values) | fm.MatchExcept(values=values):
            return ("integer",) if values and isinstance(values[0], int) else ("keyword",)
        case fm.MatchText() | fm.MatchPhrase() | fm.MatchPrefix() | fm.MatchSubstring():
            return ("text",)
        case fm.NumericRange():
            return ("float", "integer")
        case fm.DatetimeRange():
            return ("datetime",)
        case fm.GeoBoundingBox() | fm.GeoRadius() | fm.GeoPolygon():
            return ("geo",)
        case fm.ValuesCount() | fm.IsEmpty() | fm.IsNull():
            return ALL_TYPES
    return ()


def _collect(filt: fm.Filter, prefix: str, out: dict[str, list[str]]) -> None:
    groups = [filt.must, filt.should, filt.must_not]
    if filt.min_should is not None:
        groups.append(filt.min_should.conditions)
    for group in groups:
        for cond in group or ():
            if isinstance(cond, fm.Filter):
                _collect(cond, prefix, out)
            elif isinstance(cond, fm.Nested):
                _collect(cond.filter, f"{prefix}{cond.key.text}[].", out)
            else:
                types = _suitable(cond)
                key = getattr(cond, "key", None)
                if types and key is not None:
                    out.setdefault(prefix + key.text, []).extend(types)


def plan_filters(plans: Sequence[qm.Plan]) -> list[fm.Filter | None]:
    """Every filter of Query API plans: each node's, each prefetch's, a formula's conditions
    (a walk by hand: `dataclasses.fields` over every node cost ~12 us per query)."""
    found: list[fm.Filter | None] = []

    def walk(node: qm.QueryNode) -> None:
        if node.filter is not None:
            found.append(node.filter)
        if node.idf_corpus is not None:
            found.append(node.idf_corpus)
        if isinstance(node.query, qm.FormulaQuery):
            found.extend(node.query.conditions)
        for prefetch in node.prefetch:
            walk(prefetch)

    for plan in plans:
        walk(plan.root)
    return found
