"""A formula variable's values for the candidates: from the payload, or as the field's
payload index holds them.

Qdrant reads a variable from the field's payload index when it has one (integer, float,
datetime, keyword, uuid, geo or bool; `value_retriever.rs`) and from the payload otherwise
(a text index holds words, not values). An index holds only the values of its type, so a
value of another type (`null`, `"abc"` under a float index, an unparsable date under a
datetime index) is missing there, and the formula's `defaults` apply to it, where read
from the payload it fails the query ("Expected number value ...").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tessera.query.geo_math import valid_geo_point_of
from tessera.query.payload_path import extract_values
from tessera.segment.field_index import datetime_key, parse_uuid_text
from tessera.segment.field_index_scalar import int64_of
from tessera.segment.segment import Segment

Kept = Callable[[Any], bool]


def _float(value: Any) -> bool:
    return type(value) in (int, float) and value == value


def _datetime(value: Any) -> bool:
    return isinstance(value, str) and datetime_key(value) is not None


def _uuid(value: Any) -> bool:
    return isinstance(value, str) and parse_uuid_text(value) is not None


# What an index of each type holds of a point's values (as its `_convert` keeps them).
HELD: dict[str, Kept] = {
    "integer": lambda value: int64_of(value) is not None,  # 3.0 is held as 3
    "float": _float,
    "datetime": _datetime,
    "keyword": lambda value: isinstance(value, str),
    "uuid": _uuid,
    "geo": lambda value: valid_geo_point_of(value) is not None,
    "bool": lambda value: isinstance(value, bool),
}


def variable_values(
    path: str, segments: Sequence[Segment], payloads: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """Each candidate's values at `path` (the candidate's segment, its payload)."""
    values = [extract_values(payload, path) for payload in payloads]
    held: dict[int, Kept | None] = {}
    for i, segment in enumerate(segments):
        key = id(segment)
        if key not in held:
            index = segment.field_indexes.get(path)
            held[key] = None if index is None else HELD.get(index.schema_type())
        kept = held[key]
        if kept is not None:
            values[i] = [v for v in values[i] if kept(v)]
    return values
