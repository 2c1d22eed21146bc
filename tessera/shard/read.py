"""Reads over the segment holder: retrieve, scroll (by id or by payload), count.

Callers hold the shard's read lock. Each segment answers with numpy masks over its offsets;
results are merged across segments here.
"""

from __future__ import annotations

import functools
import itertools
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from tessera import deadline
from tessera.errors import BadRequest
from tessera.ids import PointId
from tessera.query.filter_model import Filter
from tessera.segment.field_index import parse_field_schema
from tessera.segment.filter_eval import estimate_cardinality, evaluate
from tessera.segment.segment import Segment, id_keys
from tessera.shard.holder import SegmentHolder

BoolArray = npt.NDArray[np.bool_]


class PointRef(NamedTuple):
    """A point by where it lives: its segment and offset there."""

    segment: Segment
    offset: int

    @property
    def id(self) -> PointId:
        return self.segment.external_id_at(self.offset)


T = TypeVar("T", bound=tuple[Any, ...])


def tuple_maker(cls: type[T]) -> Callable[[tuple[Any, ...]], T]:
    """`cls(*fields)` for a NamedTuple class, called with the fields' tuple and without
    NamedTuple's Python-level `__new__` (~0.2 us a call): results build one per hit, pages
    of scroll results thousands."""
    made: Callable[[tuple[Any, ...]], T] = functools.partial(tuple.__new__, cls)  # type: ignore[arg-type]
    return made


_new_ref = tuple_maker(PointRef)


def refs_in(segment: Segment, offsets: list[int]) -> list[PointRef]:
    return list(map(_new_ref, zip(itertools.repeat(segment), offsets)))


def segment_mask(segment: Segment, filt: Filter | None) -> BoolArray:
    """The segment's live points matching the filter, as a fresh mask the caller may change."""
    if filt is None:
        return segment.live_mask()
    return evaluate(filt, segment)  # already ANDed with the live mask


def select_ids(holder: SegmentHolder, filt: Filter | None) -> list[PointId]:
    out: list[PointId] = []
    for segment in holder.segments:
        deadline.check()
        mask = segment_mask(segment, filt)
        out.extend(segment.external_ids_at(np.flatnonzero(mask).tolist()))
    return out


def retrieve(holder: SegmentHolder, ids: list[PointId]) -> list[PointRef]:
    out: list[PointRef] = []
    seen: set[PointId] = set()
    for pid in ids:
        if pid in seen:
            continue
        seen.add(pid)
        found = holder.locate(pid)
        if found is not None and not found[0].is_deferred(found[1]):
            out.append(PointRef(found[0], found[1]))
    return out


def count(holder: SegmentHolder, filt: Filter | None, exact: bool) -> int:
    if filt is None:
        return sum(s.visible_count() for s in holder.segments)
    if not exact:
        return sum(estimate_cardinality(filt, s)[1] for s in holder.segments)
    total = 0
    for segment in holder.segments:
        deadline.check()
        total += int(np.count_nonzero(segment_mask(segment, filt)))
    return total


def _at_or_after(segment: Segment, start: PointId) -> BoolArray:
    kind, hi, lo = (a[0] for a in id_keys([start]))
    size = segment.size
    sk, sh, sl = segment.key_kind[:size], segment.key_hi[:size], segment.key_lo[:size]
    after: BoolArray = (sk > kind) | ((sk == kind) & ((sh > hi) | ((sh == hi) & (sl >= lo))))
    return after


# Segment -> (offsets checked, whether ids increase with offsets over them). The id at an
# offset never changes, so the answer for a prefix stays true and only new offsets are checked.
_ID_ORDER: weakref.WeakKeyDictionary[Segment, tuple[int, bool]] = weakref.WeakKeyDictionary()


def _id_ordered(segment: Segment) -> bool:
    """Whether the segment's offsets are in id order (points written in id order: the usual
    bulk load, and every segment the optimizer builds from such)."""
    size = segment.size
    checked, ordered = _ID_ORDER.get(segment, (0, True))
    if checked >= size or not ordered:
        return ordered
    begin = max(checked - 1, 0)
    k, h, lo = (a[begin:size] for a in (segment.key_kind, segment.key_hi, segment.key_lo))
    same_kind, same_hi = k[1:] == k[:-1], h[1:] == h[:-1]
    rising = (k[1:] > k[:-1]) | (same_kind & ((h[1:] > h[:-1]) | (same_hi & (lo[1:] > lo[:-1]))))
    ordered = bool(rising.all())
    _ID_ORDER[segment] = (size, ordered)
    return ordered


def _first_set(mask: BoolArray, k: int) -> npt.NDArray[np.int64]:
    """The first k set positions of the mask, scanning only as far as it takes."""
    found: list[npt.NDArray[np.int64]] = []
    total, begin, step = 0, 0, 1 << 16
    while begin < len(mask) and total < k:
        hits = np.flatnonzero(mask[begin : begin + step]) + begin
        found.append(hits)
        total += len(hits)
        begin += step
        step *= 2
    if not found:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(found)[:k]


def _smallest(segment: Segment, mask: BoolArray, k: int) -> npt.NDArray[np.int64]:
    """The k offsets under the mask with the smallest ids, in id order."""
    if _id_ordered(segment):
        return _first_set(mask, k)
    offsets = np.flatnonzero(mask)
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
    """One page of the matching points in id order from `start`, and the next page's id."""
    parts: list[tuple[Segment, npt.NDArray[np.int64]]] = []
    for segment in holder.segments:
        deadline.check()
        mask = segment_mask(segment, filt)
        if start is not None:
            mask &= _at_or_after(segment, start)
        chosen = _smallest(segment, mask, limit + 1)
        if len(chosen):
            parts.append((segment, chosen))
    if not parts:
        return [], None
    if len(parts) == 1:
        segment, offsets = parts[0]
        refs = refs_in(segment, offsets.tolist())
    else:
        refs = _merge_by_id(parts, limit + 1)
    next_id = refs[limit].id if len(refs) > limit else None
    return refs[:limit], next_id


def _merge_by_id(parts: list[tuple[Segment, npt.NDArray[np.int64]]], k: int) -> list[PointRef]:
    """The k smallest ids over several segments' id-ordered offsets."""
    kinds = np.concatenate([s.key_kind[o] for s, o in parts])
    his = np.concatenate([s.key_hi[o] for s, o in parts])
    offsets = np.concatenate([o for _, o in parts])
    which = np.repeat(np.arange(len(parts)), [len(o) for _, o in parts])
    if kinds.any():
        los = np.concatenate([s.key_lo[o] for s, o in parts])
        order = np.lexsort((los, his, kinds))[:k]
    else:
        order = np.argsort(his, kind="stable")[:k]
    segments = [s for s, _ in parts]
    return [
        _new_ref((segments[w], o))
        for w, o in zip(which[order].tolist(), offsets[order].tolist(), strict=True)
    ]


ORDERABLE = ("integer", "float", "datetime")


def require_range_index(holder: SegmentHolder, key: str) -> None:
    """BadRequest unless `key` has an index that orders (Qdrant checks it before reading,
    whether or not there is anything to order)."""
    schema = holder.index_schemas.get(key)
    parsed = parse_field_schema(schema) if schema is not None else None
    orderable = parsed is not None and parsed.data_type in ORDERABLE
    if parsed is not None and parsed.data_type == "integer" and parsed.param("range") is False:
        orderable = False  # a lookup-only integer index has no order
    if not orderable:
        raise BadRequest(
            f"Bad request: No range index for `order_by` key: `{key}`. "
            "Please create one to use `order_by`. Check https://qdrant.tech/documentation/"
            "concepts/indexing/#payload-index to see which payload schemas support Range "
            "conditions"
        )


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
    require_range_index(holder, key)
    rows: list[tuple[float, tuple[int, int, int], PointRef]] = []
    for segment in holder.segments:
        deadline.check()
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
