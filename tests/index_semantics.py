"""Where Qdrant's engine answers a filter from a payload index by other rules than a check of
the payloads (qdrant-client's local mode, which has no indexes), for the differential tests
that compare the two."""

from __future__ import annotations

from typing import Any

from tessera.segment.field_index import parse_uuid_text

# Qdrant's map indexes answer `except`, and its integer index `range`, from their own values
# (tests/test_indexed_conditions.py checks both against Qdrant Edge): a point holding only
# values of another type (2.5 under an integer index) does not match.
MAP_INDEX_TYPES = ("keyword", "integer", "uuid")


def schema_type(schema: Any) -> str | None:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        kind = schema.get("type")
        return kind if isinstance(kind, str) else None
    kind = getattr(schema, "type", schema)  # qdrant-client's schema models and enums
    value = getattr(kind, "value", kind)
    return value if isinstance(value, str) else None


def index_rule_differs(raw: Any, schemas: dict[str, Any] | None) -> bool:
    """Whether the filter holds a test that an index answers from its own values only: an
    `except` whose list is of a map index's type (strings for keyword, UUIDs for uuid, a
    non-empty list of integers for integer; any other list the index declines, and the
    payloads decide), or a `range` on an integer index."""
    if not schemas:
        return False
    if isinstance(raw, list):
        return any(index_rule_differs(item, schemas) for item in raw)
    if not isinstance(raw, dict):
        return False
    key = raw.get("key")
    kind = schema_type(schemas.get(key)) if isinstance(key, str) else None
    bounds = raw.get("range")
    if kind == "integer" and isinstance(bounds, dict) and not _datetimes(bounds):
        return True
    if crossed_range(raw, schemas):
        return True
    match = raw.get("match")
    if kind is not None and isinstance(match, dict) and "except" in match:
        values = match["except"]
        if kind == "keyword" and all(isinstance(v, str) for v in values):
            return True
        if kind == "uuid" and all(isinstance(v, str) and is_uuid(v) for v in values):
            return True
        if kind == "integer" and values and all(type(v) is int for v in values):
            return True
    return any(index_rule_differs(v, schemas) for v in raw.values())


def is_uuid(text: str) -> bool:
    """As the uuid index reads a string (tessera's own rule)."""
    return parse_uuid_text(text) is not None


def crossed_range(raw: Any, schemas: dict[str, Any]) -> bool:
    """A datetime range on an integer or float index, or a numeric one on a datetime index:
    Qdrant compares the index's numbers with the timestamps (microseconds), which local mode
    has no reading of."""
    if not isinstance(raw, dict) or not isinstance(raw.get("key"), str):
        return False
    kind = schema_type(schemas.get(raw["key"]))
    bounds = raw.get("range")
    if not isinstance(bounds, dict):
        return False
    if kind in ("integer", "float"):
        return _datetimes(bounds)
    return kind == "datetime" and not _datetimes(bounds)


def _datetimes(bounds: dict[str, Any]) -> bool:
    """A datetime range (bounds as RFC 3339 strings), which no integer index answers."""
    return any(isinstance(v, str) for v in bounds.values())
