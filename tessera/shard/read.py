"""Reads over the segment holder: retrieve, scroll (by id or by payload), count.

Callers hold the shard's read lock. Each segment answers with numpy masks over its offsets;
results are merged across segments here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest
from tessera.ids import PointId
from tessera.query.filter_eval import estimate_cardinality, evaluate
from tessera.query.filter_model import Filter
from tessera.segment.segment import Segment, id_keys
from tessera.shard.holder import SegmentHolder

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PointRef:
    segment: Segment
    offset: int

    @property
    def id(self) -> PointId:
        return self.segment.ext_ids[self.offset]


def segment_mask(segment: Segment, filt: Filter | None) -> BoolArray:
    live = segment.live_mask()
    if filt is None:
        return live
    matched: BoolArray = evaluate(filt, segment) & live
    return matched


def select_ids(holder: SegmentHolder, filt: Filter | None) -> list[PointId]:
    out: list[PointId] = []
    for segment in holder.segments:
        mask = segment_mask(segment, filt)
        out.extend(segment.ext_ids[i] for i in np.flatnonzero(mask).tolist())
    return out


def retrieve(holder: SegmentHolder, ids: list[PointId]) -> list[PointRef]:
    out: list[PointRef] = []
    seen: set[PointId] = set()
    for pid in ids:
        if pid in seen:
            continue
        seen.add(pid)
        found = holder.locate(pid)
        if found is not None:
            out.append(PointRef(found[0], found[1]))
    return out


def count(holder: SegmentHolder, filt: Filter | None, exact: bool) -> int:
    if filt is None:
        return holder.live_count()
    if not exact:
        return sum(estimate_cardinality(filt, s)[1] for s in holder.segments)
    return sum(int(segment_mask(s, filt).sum()) for s in holder.segments)


def _at_or_after(segment: Segment, start: PointId) -> BoolArray:
    kind, hi, lo = (a[0] for a in id_keys([start]))
    size = segment.size
    sk, sh, sl = segment.key_kind[:size], segment.key_hi[:size], segment.key_lo[:size]
    after: BoolArray = (sk > kind) | ((sk == kind) & ((sh > hi) | ((sh == hi) & (sl >= lo))))
    return after


def _smallest(segment: Segment, offsets: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    """The k offsets with the smallest ids, in id order."""
    kinds = segment.key_kind[offsets]
    if not kinds.any():
        keys = segment.key_hi[offsets]
        if len(offsets) > k:
            part = np.argpartition(keys, k - 1)[:k]
            offsets, keys = offsets[part], keys[part]
        return offsets[np.argsort(keys, kind="stable")]
    order = np.lexsort((segment.key_lo[offsets], segment.key_hi[offsets], kinds))
    return offsets[order[:k]]


def scroll_by_id(
    holder: SegmentHolder, filt: Filter | None, start: PointId | None, limit: int
) -> tuple[list[PointRef], PointId | None]:
    candidates: list[tuple[tuple[int, int, int], PointRef]] = []
    for segment in holder.segments:
        mask = segment_mask(segment, filt)
        if start is not None:
            mask &= _at_or_after(segment, start)
        offsets = np.flatnonzero(mask)
        for off in _smallest(segment, offsets, limit + 1).tolist():
            key = (int(segment.key_kind[off]), int(segment.key_hi[off]), int(segment.key_lo[off]))
            candidates.append((key, PointRef(segment, off)))
    candidates.sort(key=lambda kv: kv[0])
    page = [ref for _, ref in candidates[:limit]]
    next_id = candidates[limit][1].id if len(candidates) > limit else None
    return page, next_id


ORDERABLE = ("integer", "float", "datetime")


def scroll_by_payload(
    holder: SegmentHolder,
    filt: Filter | None,
    key: str,
    descending: bool,
    start_from: float | None,
    limit: int,
) -> list[tuple[PointRef, Any]]:
    """Points ordered by a payload value from its range index; a point with several values
    appears once per value, as Qdrant does."""
    schema = holder.index_schemas.get(key)
    index_type = _schema_type(schema)
    if index_type not in ORDERABLE:
        raise BadRequest(
            f"Bad request: No range index for `order_by` key: `{key}`. "
            "Please create one to use `order_by`. Check https://qdrant.tech/documentation/"
            "concepts/indexing/#payload-index to see which payload schemas support Range "
            "conditions"
        )
    rows: list[tuple[float, tuple[int, int, int], PointRef]] = []
    for segment in holder.segments:
        index = segment.field_index(key)
        if index is None:
            continue
        mask = segment_mask(segment, filt)
        values, offsets = index.ordered_offsets(descending, start_from)
        keep = mask[offsets]
        values, offsets = values[keep][:limit], offsets[keep][:limit]
        for value, off in zip(values.tolist(), offsets.tolist(), strict=True):
            key_tuple = (
                int(segment.key_kind[off]),
                int(segment.key_hi[off]),
                int(segment.key_lo[off]),
            )
            rows.append((value, key_tuple, PointRef(segment, off)))
    rows.sort(key=lambda r: (-r[0] if descending else r[0], r[1]))
    return [(ref, value) for value, _, ref in rows[:limit]]


def _schema_type(schema: Any) -> str | None:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "integer" and schema.get("range") is False:
            return "integer-lookup-only"
        return kind if isinstance(kind, str) else None
    return None
