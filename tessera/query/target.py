"""What a segment exposes to the filter evaluator and the scorers.

A segment addresses its points by *offset* (0..point_count-1, stable for the segment's
life). Deleted offsets stay addressable; callers AND the result with `live_mask()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tessera.ids import PointId

BoolMask = npt.NDArray[np.bool_]


class FieldIndexView(Protocol):
    """A payload field index, as the filter evaluator queries it (segment/field_index.py)."""

    def schema_type(self) -> str:
        """keyword, integer, float, bool, geo, datetime, text or uuid."""
        ...


class FilterTarget(Protocol):
    def point_count(self) -> int: ...

    def live_mask(self) -> BoolMask: ...

    def payload_at(self, offset: int) -> dict[str, Any]:
        """The payload of one point ({} when it has none)."""
        ...

    def external_id_at(self, offset: int) -> PointId: ...

    def offsets_of(self, ids: Iterable[PointId]) -> npt.NDArray[np.int64]:
        """Offsets of the given ids that live in this segment (deleted ones excluded)."""
        ...

    def vector_mask(self, name: str) -> BoolMask:
        """Which offsets have a vector under this name ('' is the unnamed vector)."""
        ...

    def field_index(self, key: str) -> Any | None:
        """The payload index on exactly this key, or None."""
        ...
