"""What strict mode measures in a request or a collection (tessera.collection.strict_mode).

- the conditions of a filter and the biggest one's input (`filter_max_conditions`,
  `condition_max_size`), as Qdrant's `Filter::total_conditions_count` and
  `max_condition_input_size` count them;
- the first key a filter (or a formula) uses without a payload index able to answer it,
  with the index types that would (Qdrant's `problems/unindexed_field.rs`): an index's
  capabilities, each condition's needs;
- the bytes of a collection's vectors and payloads, as Qdrant estimates them for
  `max_collection_vector_size_bytes` and `max_collection_payload_size_bytes`, and the
  process's share of memory (`max_resident_memory_percent`);
- the rate limit cost of a read, as Qdrant charges it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tessera.collection_config import CollectionConfig
from tessera.query import filter_model as fm
from tessera.query import formula as fx
from tessera.query import query_model as qm
from tessera.segment.field_index import parse_uuid_text
from tessera.segment.field_schema import FieldSchema
from tessera.segment.segment import Segment
from tessera.shard.holder import SegmentHolder

# Index capabilities (Qdrant's FieldIndexType) and the schema each is shown as.
SHOWN_AS = {
    "int_match": "integer",
    "int_range": "integer",
    "keyword_match": "keyword",
    "keyword_prefix": "keyword",
    "float_range": "float",
    "text": "text",
    "text_phrase": "text (with phrase_matching: true)",
    "bool_match": "bool",
    "uuid_match": "uuid",
    "uuid_range": "uuid",
    "datetime_range": "datetime",
    "geo": "geo",
}
ANY_INDEX = tuple(SHOWN_AS)
NUMERIC = ("int_match", "int_range", "float_range")


def iter_conditions(filt: fm.Filter) -> Iterator[fm.Condition]:
    """must, must_not, should, then min_should's, as Qdrant's `Filter::iter_conditions`."""
    yield from filt.must or ()
    yield from filt.must_not or ()
    yield from filt.should or ()
    if filt.min_should is not None:
        yield from filt.min_should.conditions


def conditions_count(filt: fm.Filter) -> int:
    total = 0
    for cond in iter_conditions(filt):
        if isinstance(cond, fm.Filter):
            total += conditions_count(cond)
        elif isinstance(cond, fm.Nested):
            total += conditions_count(cond.filter)
        else:
            total += 1
    return total


def max_condition_size(filt: fm.Filter) -> int:
    """The biggest input of one condition: the values of `any` / `except`, the ids of
    `has_id`."""
    biggest = 0
    for cond in iter_conditions(filt):
        if isinstance(cond, fm.MatchAny | fm.MatchExcept):
            size = len(cond.values)
        elif isinstance(cond, fm.HasId):
            size = len(cond.ids)
        elif isinstance(cond, fm.Filter):
            size = max_condition_size(cond)
        elif isinstance(cond, fm.Nested):
            size = max_condition_size(cond.filter)
        else:
            size = 0
        biggest = max(biggest, size)
    return biggest


def substring_key(filt: fm.Filter) -> str | None:
    for cond in iter_conditions(filt):
        if isinstance(cond, fm.MatchSubstring):
            return cond.key.text
        inner = cond if isinstance(cond, fm.Filter) else getattr(cond, "filter", None)
        if isinstance(inner, fm.Filter) and (key := substring_key(inner)) is not None:
            return key
    return None


def filter_keys(filt: fm.Filter) -> Iterator[str]:
    """The payload keys a filter's field conditions test (nested ones included)."""
    for cond in iter_conditions(filt):
        if isinstance(cond, fm.Filter):
            yield from filter_keys(cond)
        elif isinstance(cond, fm.Nested):
            yield from (f"{cond.key.text}[].{k}" for k in filter_keys(cond.filter))
        elif (key := getattr(cond, "key", None)) is not None:
            yield key.text


# ------------------------------------------------------------------ index coverage


def capabilities(schema: FieldSchema) -> set[str]:
    kind = schema.data_type
    if kind == "keyword":
        return {"keyword_match", "keyword_prefix"} if schema.param("prefix") else {"keyword_match"}
    if kind == "integer":
        out = {"int_match"} if schema.param("lookup", True) else set()
        return out | ({"int_range"} if schema.param("range", True) else set())
    if kind == "text":
        return {"text", "text_phrase"} if schema.param("phrase_matching") else {"text"}
    return {
        "uuid": {"uuid_match", "uuid_range"},
        "bool": {"bool_match"},
        "float": {"float_range"},
        "geo": {"geo"},
        "datetime": {"datetime_range"},
    }.get(kind, set())


def supports_match(schema: FieldSchema) -> bool:
    if schema.data_type == "integer" and schema.params is not None:
        return schema.param("lookup") is True
    return schema.data_type in ("keyword", "integer", "uuid", "bool")


def _strings_need(values: tuple[Any, ...]) -> tuple[str, ...]:
    if all(isinstance(v, str) and parse_uuid_text(v) is not None for v in values):
        return ("uuid_match", "keyword_match")
    return ("keyword_match",)


def needs(cond: fm.FieldTest) -> tuple[str, ...]:
    """The index capabilities any one of which answers `cond`; () for none needed."""
    if isinstance(cond, fm.MatchValue):
        value = cond.value
        if isinstance(value, bool):
            return ("bool_match",)
        if isinstance(value, int):
            return ("int_match",)
        return _strings_need((value,))
    if isinstance(cond, fm.MatchAny | fm.MatchExcept):
        if not cond.values:
            return ()
        return ("int_match",) if isinstance(cond.values[0], int) else _strings_need(cond.values)
    if isinstance(cond, fm.MatchText):
        return ("text",)
    if isinstance(cond, fm.MatchPhrase):
        return ("text_phrase",)
    if isinstance(cond, fm.MatchPrefix):
        return ("keyword_prefix",)
    if isinstance(cond, fm.NumericRange):
        return ("float_range", "int_range")
    if isinstance(cond, fm.DatetimeRange):
        return ("datetime_range",)
    if isinstance(cond, fm.GeoBoundingBox | fm.GeoRadius | fm.GeoPolygon):
        return ("geo",)
    return ANY_INDEX  # values_count, is_empty, is_null: any index keeps their counts


Found = tuple[str, list[str]]


def _missing(key: str, required: tuple[str, ...], schemas: dict[str, FieldSchema]) -> Found | None:
    if not required:
        return None
    schema = schemas.get(key)
    if schema is not None and capabilities(schema) & set(required):
        return None
    return key, [SHOWN_AS[r] for r in required]


def unindexed_key(
    filt: fm.Filter, schemas: dict[str, FieldSchema], prefix: str = ""
) -> Found | None:
    """The first key of `filt` no index of `schemas` answers, and the schemas that would."""
    for cond in iter_conditions(filt):
        found: Found | None = None
        if isinstance(cond, fm.Filter):
            found = unindexed_key(cond, schemas, prefix)
        elif isinstance(cond, fm.Nested):
            found = unindexed_key(cond.filter, schemas, f"{prefix}{cond.key.text}[].")
        elif isinstance(cond, fm.HasId | fm.HasVector | fm.Slice):
            continue
        else:
            found = _missing(prefix + cond.key.text, needs(cond), schemas)
        if found is not None:
            return found
    return None


def unindexed_formula_key(query: qm.FormulaQuery, schemas: dict[str, FieldSchema]) -> Found | None:
    for condition in query.conditions:
        found = unindexed_key(condition, schemas)
        if found is not None:
            return found
    return _expression_key(query.formula.root, schemas)


def _expression_key(expr: Any, schemas: dict[str, FieldSchema]) -> Found | None:
    if isinstance(expr, fx.PayloadVar):
        return _missing(expr.path, NUMERIC, schemas)
    if isinstance(expr, fx.GeoDistance):
        return _missing(expr.path, ("geo",), schemas)
    if isinstance(expr, fx.DatetimeKey):
        return _missing(expr.path, ("datetime_range",), schemas)
    if isinstance(expr, fx.Nary):
        parts: tuple[Any, ...] = expr.items
    elif isinstance(expr, fx.Unary):
        parts = (expr.arg,)
    elif isinstance(expr, fx.Div):
        parts = (expr.left, expr.right)
    elif isinstance(expr, fx.Pow):
        parts = (expr.base, expr.exponent)
    elif isinstance(expr, fx.Decay):
        parts = (expr.x,) if expr.target is None else (expr.x, expr.target)
    else:
        return None
    for part in parts:
        found = _expression_key(part, schemas)
        if found is not None:
            return found
    return None


# ------------------------------------------------------------------ collection size


def vector_bytes(holder: SegmentHolder, config: CollectionConfig) -> int:
    """The bytes of the live dense vectors and of the stored multivector rows."""
    return sum(segment_vector_bytes(s, config) for s in holder.segments)


def segment_vector_bytes(segment: Segment, config: CollectionConfig) -> int:
    """`vector_bytes` of one segment (also /telemetry's per-segment estimate)."""
    total = 0
    for name, params in config.vectors.items():
        itemsize = np.dtype(params.datatype).itemsize
        storage = segment.storages.get(name)
        if params.multivector:
            rows = getattr(storage, "rows_total", 0)
            total += rows * params.size * itemsize
        else:
            total += segment.base_mask(name)[1] * params.size * itemsize
    return total


class PayloadBytes:
    """Payload JSON bytes of a collection: the payload files of flushed immutable segments,
    the encoded payloads of those kept in memory.

    Checked before every write that adds data, so the encoded sizes of in-memory segments
    are kept per offset and only the points written since the last count are encoded
    again: every payload change stamps its points' versions with the write's sequence
    number (tessera.shard.apply), which is above any version seen before. A count runs
    under the shard's write lock (strict mode's write checks)."""

    def __init__(self) -> None:
        self._sizes: weakref.WeakKeyDictionary[Segment, tuple[npt.NDArray[np.int64], int]] = (
            weakref.WeakKeyDictionary()
        )

    def total(self, holder: SegmentHolder) -> int:
        return sum(self.of(segment) for segment in holder.segments)

    def of(self, segment: Segment) -> int:
        """One segment's payload bytes. Also counted under the read lock (/telemetry):
        readers then race only to store the same sizes, since no write runs meanwhile."""
        if isinstance(segment.payloads, list):
            return self._in_memory(segment, segment.payloads)
        files = segment.files_by_component.get("payload", [])
        return sum(int(f.get("size", 0)) for f in files)

    def _in_memory(self, segment: Segment, payloads: list[dict[str, Any] | None]) -> int:
        n = len(payloads)
        versions = segment.versions[:n]
        cached = self._sizes.get(segment)
        if cached is None:
            sizes = np.zeros(n, dtype=np.int64)
            changed = np.arange(n, dtype=np.int64)
        else:
            sizes, seen = cached
            if len(sizes) < n:
                sizes = np.concatenate([sizes, np.zeros(n - len(sizes), dtype=np.int64)])
            sizes = sizes[:n]
            changed = np.flatnonzero(versions > seen)
        for off in changed.tolist():
            payload = payloads[off]
            sizes[off] = len(orjson.dumps(payload)) if payload else 0
        self._sizes[segment] = (sizes, int(versions.max(initial=0)))
        return int(sizes.sum())


# ------------------------------------------------------------------ process memory


def resident_memory_percent() -> int | None:
    """This process's resident memory as a whole percentage of the memory it may use (the
    cgroup's limit when there is one, else the machine's); None when unreadable."""
    try:
        rss_kb = next(
            int(line.split()[1])
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        total_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration, ValueError):
        return None
    total = total_kb * 1024
    limit = cgroup_memory_limit()
    if limit is not None:
        total = min(total, limit)
    return int(rss_kb * 1024 * 100 // total) if total else None


def cgroup_memory_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of this process's cgroup (v2 `memory.max`, else v1
    `memory.limit_in_bytes`, where a container under cgroup v1 finds its limit); None
    without one ("max", or v1's page-rounded 2^63)."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


# ---------------------------------------------------------------------- rate costs


def filter_cost(filt: fm.Filter | None) -> int:
    return conditions_count(filt) if filt is not None else 0


def similarity_cost(value: Any, kind: str | None = None) -> int:
    """Qdrant's cost of one vector: 1 dense, its indices sparse, its rows multi."""
    if isinstance(value, tuple):
        return max(1, len(value[0]))
    if kind == "multi" or getattr(value, "ndim", 1) == 2:
        return max(1, len(value))
    return 1


def node_cost(node: qm.QueryNode) -> int:
    """A prefetch tree's searches and scrolls, as Qdrant's planned query charges them."""
    if node.prefetch:
        return sum(node_cost(p) for p in node.prefetch)
    query = node.query
    if isinstance(query, qm.VectorQuery):
        if isinstance(query, qm.Recommend) and query.strategy == "average_vector":
            vectors: list[Any] = [None]
        else:
            vectors = qm.vector_inputs(query)
        cost = sum(similarity_cost(v) if not isinstance(v, qm.PointInput) else 1 for v in vectors)
        return max(1, cost) + filter_cost(node.filter)
    return 1 + filter_cost(node.filter)
