"""Point ids: unsigned 64-bit integers or UUIDs, as Qdrant accepts and renders them."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tessera.errors import BadRequest

PointId = int | uuid.UUID

MAX_U64 = 2**64 - 1


def parse_point_id(raw: Any) -> PointId:
    """Accept an u64 or a UUID in simple, hyphenated, urn or braced form."""
    if isinstance(raw, bool):
        raise BadRequest(f"Unable to parse point id: {raw!r} is not an unsigned integer or UUID")
    if isinstance(raw, int):
        if 0 <= raw <= MAX_U64:
            return raw
        raise BadRequest(
            f"Unable to parse point id: {raw} is out of range for an unsigned 64-bit integer"
        )
    if isinstance(raw, str):
        try:
            return uuid.UUID(raw)
        except ValueError:
            pass
        raise BadRequest(f"Unable to parse UUID: {raw}")
    raise BadRequest(f"Unable to parse point id: {raw!r} is not an unsigned integer or UUID")


def not_a_point_id(raw: Any) -> str:
    """Qdrant's words for a JSON value that is not a point id (its `ExtendedPointId`
    deserializer's; a string is shown without quotes)."""
    shown = raw if isinstance(raw, str) else json.dumps(raw)
    return (
        f"value {shown} is not a valid point ID, valid values are either an unsigned integer "
        "or a UUID"
    )


def render_point_id(pid: PointId) -> int | str:
    return str(pid) if isinstance(pid, uuid.UUID) else pid


def id_sort_key(pid: PointId) -> tuple[int, int]:
    """Qdrant orders numeric ids before UUIDs."""
    return (1, pid.int) if isinstance(pid, uuid.UUID) else (0, pid)
