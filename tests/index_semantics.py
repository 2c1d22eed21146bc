"""Where Qdrant's engine answers a filter from a payload index by other rules than a check of
the payloads (qdrant-client's local mode, which has no indexes), for the differential tests
that compare the two."""

from __future__ import annotations

import uuid
from typing import Any

# Qdrant's map indexes answer `except` from their own values (tests/test_except_on_indexes.py
# checks it against Qdrant Edge): a point holding only values of another type does not match.
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


def index_answers_except(raw: Any, schemas: dict[str, Any] | None) -> bool:
    """Whether the filter holds an `except` on a key that a map index answers (its list of the
    index's type: strings for keyword, UUIDs for uuid, a non-empty list of integers for
    integer; any other list the index declines, and the payloads decide)."""
    if not schemas:
        return False
    if isinstance(raw, list):
        return any(index_answers_except(item, schemas) for item in raw)
    if not isinstance(raw, dict):
        return False
    match = raw.get("match")
    if isinstance(raw.get("key"), str) and isinstance(match, dict) and "except" in match:
        kind = schema_type(schemas.get(raw["key"]))
        values = match["except"]
        if kind == "keyword" and all(isinstance(v, str) for v in values):
            return True
        if kind == "uuid" and all(isinstance(v, str) and is_uuid(v) for v in values):
            return True
        if kind == "integer" and values and all(type(v) is int for v in values):
            return True
    return any(index_answers_except(v, schemas) for v in raw.values())


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
