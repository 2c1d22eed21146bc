"""Payload field indexes: what a condition on an indexed key is answered from.

Every index, whatever its type, keeps per-offset facts about the key, taken on `add`:
whether it is empty, whether it holds a null, its `values_count` counts, and which *kinds*
of non-null values it holds that this index does not store (`other_kinds`: a float under an
integer index, a string under a geo index, ...). The typed part stores the values of its own
type in sorted columns (`postings.Postings`) and answers matches, ranges and geo shapes with
binary searches and vectorised tests, never a Python loop over points.

The evaluator turns an index answer into the exact answer of the unindexed condition by
checking on payloads only the offsets whose `other_kinds` could still satisfy the condition;
that set is empty whenever the payloads follow the index's type. So indexed and unindexed
filtering return the same points, as Qdrant's local mode defines them. The one deliberate
exception is full text: a text index tokenizes with its own configuration, like Qdrant.

An index with `nested` (an array, `offers[]` for the key `offers[].price`) treats each object
element of the array as its own entry: `is_empty` matches a point when one of its elements
lacks the field (null and empty arrays included), and never a point without elements, as in
Qdrant; the element groups reach the typed part (`_store_groups`: a text index ranks and
matches per element). Matches, ranges and counts answer as without it.

Call `add(offset, payload)` for every point written (a point without the key just records
"missing"); an offset never added reads as a point without the key. Reads may run
concurrently with each other; writes must be serialised against reads (the segment's lock).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest
from tessera.query.datetime_parse import parse_datetime_micros
from tessera.query.payload_path import (
    is_empty_values,
    is_null_values,
    nested_elements,
    parse_path,
    raw_values,
    value_counts,
)
from tessera.segment.field_schema import FieldSchema, parse_field_schema
from tessera.segment.postings import I64, KeyArray

if TYPE_CHECKING:
    from tessera.segment.field_index_state import StateReader, StateWriter

__all__ = [
    "K_ALL",
    "K_ARR",
    "K_BOOL",
    "K_FLOAT",
    "K_INT",
    "K_OBJ",
    "K_STR",
    "FieldIndex",
    "FieldSchema",
    "kind_of",
    "make_field_index",
    "parse_field_schema",
]

BoolMask = npt.NDArray[np.bool_]

# Kinds of JSON values, as bits of `other_kinds`.
K_STR, K_INT, K_FLOAT, K_BOOL, K_OBJ, K_ARR = 1, 2, 4, 8, 16, 32
K_ALL = 63
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def kind_of(value: Any) -> int:
    if isinstance(value, bool):
        return K_BOOL
    if isinstance(value, int):
        return K_INT
    if isinstance(value, float):
        return K_FLOAT
    if isinstance(value, str):
        return K_STR
    if isinstance(value, dict):
        return K_OBJ
    if isinstance(value, list):
        return K_ARR
    return 0


def _unwrapped(raw: list[Any]) -> list[Any]:
    """The non-null values of `raw_values`, arrays unwrapped one level."""
    out: list[Any] = []
    for value in raw:
        for v in value if isinstance(value, list) else (value,):
            if v is not None:
                out.append(v)
    return out


def owners_mask(owners: I64, n: int) -> BoolMask:
    mask = np.zeros(n, dtype=np.bool_)
    mask[owners[owners < n]] = True
    return mask


def _fit(arr: npt.NDArray[Any], n: int, fill: Any) -> npt.NDArray[Any]:
    """A copy of the first n entries, padded with `fill` past the end."""
    if len(arr) >= n:
        return arr[:n].copy()
    return np.concatenate([arr, np.full(n - len(arr), fill, dtype=arr.dtype)])


def int_bounds(
    gt: float | None, gte: float | None, lt: float | None, lte: float | None
) -> tuple[int, int] | None:
    """The inclusive integer interval equal to the bounds, clamped to int64; None if empty.
    Exact for any float bound, unlike comparing int64 keys with floats in numpy."""
    lo, hi = _I64_MIN, _I64_MAX
    for bound, open_ in ((gt, True), (gte, False)):
        if bound is None or bound == -math.inf:
            continue
        if bound == math.inf:
            return None
        lo = max(lo, math.floor(bound) + 1 if open_ else math.ceil(bound))
    for bound, open_ in ((lt, True), (lte, False)):
        if bound is None or bound == math.inf:
            continue
        if bound == -math.inf:
            return None
        hi = min(hi, math.ceil(bound) - 1 if open_ else math.floor(bound))
    return (lo, hi) if lo <= hi else None


def float_bounds(
    gt: float | None, gte: float | None, lt: float | None, lte: float | None
) -> tuple[float | None, bool, float | None, bool]:
    """(lo, lo_open, hi, hi_open): the tighter of each pair of bounds."""
    lo: float | None = None
    lo_open = False
    if gte is not None:
        lo = gte
    if gt is not None and (lo is None or gt >= lo):
        lo, lo_open = gt, True
    hi: float | None = None
    hi_open = False
    if lte is not None:
        hi = lte
    if lt is not None and (hi is None or lt <= hi):
        hi, hi_open = lt, True
    return lo, lo_open, hi, hi_open


class FieldIndex:
    """Base: per-offset facts shared by every index type; typed queries default to None
    ("this index cannot answer that"), and the evaluator then reads payloads."""

    data_type: ClassVar[str] = ""
    # Whether `_drop` is a no-op for an offset holding no values of the index's type (`_has`
    # false), so that points without the key are cleared in one numpy pass (`_clear_many`).
    _bulk_clear: ClassVar[bool] = True
    # Whether `_store_many` stores a batch's plain values (`add_many`).
    _bulk_store: ClassVar[bool] = False
    # Whether a batch's plain values are stored one point at a time, in payload order (`add`'s
    # `_store`: a text index numbers documents and terms as it meets them), their per-point
    # facts still set together.
    _store_inline: ClassVar[bool] = False
    # The tests this index answers in full, from its own values only, as Qdrant's does:
    # `except` from a map index (keyword, integer, uuid) and `range` from the integer index
    # leave out a point whose values are all of another type (an integer under a keyword
    # index, 2.5 under an integer index). Any other answer is completed from the payloads of
    # the points holding values the index does not.
    complete_for: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, key: str, schema: FieldSchema) -> None:
        self.key = key
        self._path = parse_path(key)
        self._schema = schema
        nested = schema.param("nested")
        # (the array's path, the key's path inside one element) of a nested index
        self._nested = (
            None
            if nested is None
            else (parse_path(nested.removesuffix("[]")), parse_path(key[len(nested) + 1 :]))
        )
        self._empty: BoolMask = np.ones(0, dtype=np.bool_)
        self._null: BoolMask = np.zeros(0, dtype=np.bool_)
        # One values_count count per offset; -1 marks an offset whose counts are in _multi.
        self._count: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._multi: dict[int, tuple[int, ...]] = {}
        self._other: npt.NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
        # How many offsets have each nonzero `_other` value, so that a query can tell
        # without a pass over the points whether any could need a payload check.
        self._other_hist = [0] * (K_ALL + 1)
        self._has: BoolMask = np.zeros(0, dtype=np.bool_)
        self._points = 0

    # --- writes -------------------------------------------------------------------------

    def _ensure(self, offset: int) -> None:
        size = len(self._empty)
        if offset < size:
            return
        new = max(offset + 1, 2 * size, 64)
        self._empty = _fit(self._empty, new, True)
        self._null = _fit(self._null, new, False)
        self._count = _fit(self._count, new, 0)
        self._other = _fit(self._other, new, 0)
        self._has = _fit(self._has, new, False)

    def add(self, offset: int, payload: dict[str, Any]) -> None:
        """Index the point's values at the key, replacing whatever the offset had."""
        self._ensure(offset)
        raw = raw_values(payload, self._path)
        groups = None
        if self._nested is None:
            self._empty[offset] = is_empty_values(raw)
        else:
            array, inner = self._nested
            elements = [raw_values(e, inner) for e in nested_elements(payload, array)]
            self._empty[offset] = any(is_empty_values(e) for e in elements)
            groups = [self._converted(e) for e in elements]
        self._null[offset] = is_null_values(raw)
        counts = value_counts(raw)
        if len(counts) == 1:
            self._count[offset] = counts[0]
            self._multi.pop(offset, None)
        else:
            self._count[offset] = -1
            self._multi[offset] = tuple(counts)
        other = 0
        kept: list[Any] = []
        for v in _unwrapped(raw):
            converted = self._convert(v)
            if converted is None:
                other |= kind_of(v)
            else:
                kept.append(converted)
        self._set_other(offset, other)
        if groups is None:
            self._store(offset, kept)
        else:
            self._store_groups(offset, kept, groups)
        self._set_has(offset, bool(kept))

    def add_many(self, offsets: list[int], payloads: Sequence[dict[str, Any] | None]) -> None:
        """`add` for each point in turn, but two kinds of points go together in numpy passes
        instead of ~5 us of Python each: those without a value at the key (no payload, or a
        payload without the key: every point when writes carry no payload), and, where the
        index stores them so (`_bulk_store`), those whose one value at the key is a plain
        value of the index's type or a non-empty array of such values (a keyword, a number,
        a list of tags; a text index's strings, stored one point at a time, `_store_inline`).
        Anything else (nulls, objects, values of other kinds, several values at the path)
        goes through `add`."""
        bulk_clear, bulk_store = self._bulk_clear, self._bulk_store
        if (
            self._nested is not None
            or not (bulk_clear or bulk_store)
            or len(set(offsets)) < len(offsets)
        ):
            # Nested indexes mark a point without elements differently; a repeated offset
            # must see its writes in order.
            for offset, payload in zip(offsets, payloads, strict=True):
                self.add(offset, payload or {})
            return
        path, convert, inline = self._path, self._convert, self._store_inline
        absent: list[int] = []
        plain: list[int] = []  # offsets
        counts: list[int] = []  # their values_count counts
        stored: list[int] = []  # how many distinct keys each stores
        keys: list[Any] = []
        for offset, payload in zip(offsets, payloads, strict=True):
            raw = raw_values(payload, path) if payload else []
            if not raw and bulk_clear:
                absent.append(offset)
                continue
            if bulk_store and len(raw) == 1:
                # Converting in payload order interns strings in the order `add` would.
                value = raw[0]
                converted = (
                    [convert(v) for v in value] if isinstance(value, list) else [convert(value)]
                )
                if converted and None not in converted:
                    plain.append(offset)
                    counts.append(len(converted))  # an array counts its length
                    if inline:
                        self._store(offset, converted)
                    else:
                        distinct = (
                            converted if len(converted) == 1 else list(dict.fromkeys(converted))
                        )
                        stored.append(len(distinct))
                        keys.extend(distinct)
                    continue
            self.add(offset, payload or {})
        if absent:
            self._clear_many(np.asarray(absent, dtype=np.int64))
        if plain:
            self._set_plain(np.asarray(plain, dtype=np.int64), counts, stored, keys)

    def _set_plain(
        self, offsets: npt.NDArray[np.int64], counts: list[int], stored: list[int], keys: list[Any]
    ) -> None:
        """What `add` leaves at offsets (distinct) whose values are all of the index's type,
        not null, one value or one non-empty array at the path: `counts` their values_count
        counts, and `keys` the converted distinct values, `stored` of them per offset."""
        self._ensure(int(offsets.max()))
        self._empty[offsets] = False
        self._null[offsets] = False
        self._count[offsets] = counts
        self._forget_multi(offsets)
        self._zero_other(offsets)
        self._points += int(np.count_nonzero(~self._has[offsets]))
        self._has[offsets] = True
        if not self._store_inline:
            self._store_many(offsets, np.asarray(stored, dtype=np.int64), keys)

    def _store_many(
        self, offsets: npt.NDArray[np.int64], stored: npt.NDArray[np.int64], keys: list[Any]
    ) -> None:
        """`_store` at each offset of its `stored` keys, in order (only with `_bulk_store`)."""
        raise NotImplementedError

    def remove_many(self, offsets: npt.NDArray[np.int64]) -> None:
        """`remove` for each offset (in one numpy pass for those holding no typed values)."""
        if not self._bulk_clear:
            for offset in offsets.tolist():
                self.remove(offset)
            return
        inside = offsets[offsets < len(self._empty)]
        if len(inside):
            self._clear_many(inside)

    def _clear_many(self, offsets: npt.NDArray[np.int64]) -> None:
        """The facts of `add` with no value at the key (what `remove` leaves) at every offset:
        offsets holding typed values go through `remove`; for the others `_drop` has
        nothing to drop (`_bulk_clear`), so only the per-offset arrays change."""
        self._ensure(int(offsets.max()))
        for offset in offsets[self._has[offsets]].tolist():
            self.remove(offset)
        self._empty[offsets] = True
        self._null[offsets] = False
        self._count[offsets] = 0
        self._forget_multi(offsets)
        self._zero_other(offsets)

    def _forget_multi(self, offsets: npt.NDArray[np.int64]) -> None:
        """`_multi.pop(offset)` at each offset (their counts are single ones again)."""
        if self._multi:
            for offset in self._multi.keys() & set(offsets.tolist()):
                del self._multi[offset]

    def _zero_other(self, offsets: npt.NDArray[np.int64]) -> None:
        """`_set_other(offset, 0)` at each offset, each counted once."""
        old = self._other[offsets]
        changed = np.unique(offsets[old != 0])
        if len(changed):
            for value in self._other[changed].tolist():
                self._other_hist[value] -= 1
                self._other_hist[0] += 1
            self._other[changed] = 0

    def remove(self, offset: int) -> None:
        if offset >= len(self._empty):
            return
        self._empty[offset] = True
        self._null[offset] = False
        self._count[offset] = 0
        self._multi.pop(offset, None)
        self._set_other(offset, 0)
        self._drop(offset)
        self._set_has(offset, False)

    def _set_other(self, offset: int, other: int) -> None:
        old = int(self._other[offset])
        if old != other:
            self._other_hist[old] -= 1
            self._other_hist[other] += 1
            self._other[offset] = other

    def _set_has(self, offset: int, has: bool) -> None:
        if bool(self._has[offset]) != has:
            self._points += 1 if has else -1
            self._has[offset] = has

    def _converted(self, raw: list[Any]) -> list[Any]:
        """The stored forms of the values of this index's type among `raw_values`."""
        return [c for v in _unwrapped(raw) if (c := self._convert(v)) is not None]

    def _convert(self, value: Any) -> Any | None:
        """The stored form of a value of this index's type, None for any other value."""
        return None

    def _store(self, offset: int, values: list[Any]) -> None:
        pass

    def _drop(self, offset: int) -> None:
        pass

    def _store_groups(self, offset: int, values: list[Any], groups: list[list[Any]]) -> None:
        """A nested index's values, and the same values grouped by array element."""
        self._store(offset, values)

    # --- state (field_index_state) ------------------------------------------------------

    def export_state(self, w: StateWriter) -> None:
        """Write the per-offset facts, then the typed part (`_export_typed`)."""
        differs = ~self._empty | self._null | (self._count != 0) | (self._other != 0) | self._has
        found = np.flatnonzero(differs)
        # Offsets past the last one that differs from "never added" read the same when absent.
        size = int(found[-1]) + 1 if len(found) else 0
        w.meta["size"] = size
        # Copies: these columns are written in place by later adds.
        w.put("empty", self._empty[:size].copy())
        w.put("null", self._null[:size].copy())
        w.put("count", self._count[:size].copy())
        w.put("other", self._other[:size].copy())
        multi = sorted(self._multi.items())
        flat = [c for _, counts in multi for c in counts]
        w.meta["multi"], w.meta["multi_values"] = len(multi), len(flat)
        w.put("multi_at", np.asarray([o for o, _ in multi], dtype=np.int64))
        w.put("multi_len", np.asarray([len(c) for _, c in multi], dtype=np.int64))
        w.put("multi_val", np.asarray(flat, dtype=np.int64))
        self._export_typed(w, size)

    def import_state(self, r: StateReader) -> None:
        """Load what `export_state` wrote into this fresh index (ValueError if inconsistent)."""
        size = r.count("size")
        empty = r.owned("empty", np.bool_, size)
        null = r.owned("null", np.bool_, size)
        count = r.owned("count", np.int64, size)
        other = r.owned("other", np.uint8, size)
        r.in_range("other kinds", other, 0, K_ALL + 1)
        r.in_range("values count", count, -1, _I64_MAX)
        m = r.count("multi")
        at = r.array("multi_at", np.int64, m)
        lens = r.array("multi_len", np.int64, m)
        vals = r.array("multi_val", np.int64, r.count("multi_values"))
        r.in_range("multi-count offset", at, 0, size)
        r.in_range("multi-count length", lens, 0, len(vals) + 1)
        r.in_range("multi-count value", vals, 0, _I64_MAX)
        if m > 1 and bool((at[1:] <= at[:-1]).any()):
            raise r.fail("multi-count offsets are not strictly increasing")
        if int(lens.sum()) != len(vals):
            raise r.fail("multi-count lengths do not add up to the values")
        if int(np.count_nonzero(count == -1)) != m or bool((count[at] != -1).any()):
            raise r.fail("multi-count offsets disagree with the counts")
        bounds = np.concatenate([[0], np.cumsum(lens)]).tolist()
        flat = vals.tolist()
        multi = {o: tuple(flat[a:b]) for o, a, b in zip(at.tolist(), bounds[:-1], bounds[1:])}
        has = self._import_typed(r, size)
        # (with `nested`, a point whose one element lacks the field is empty and may hold
        # values in the others)
        if self._nested is None and bool((has & empty).any()):
            raise r.fail("an offset holds values but is marked empty")
        self._empty, self._null, self._count, self._other = empty, null, count, other
        self._multi = multi
        self._other_hist = np.bincount(other, minlength=K_ALL + 1).tolist()
        self._has = has
        self._points = int(np.count_nonzero(has))

    def _export_typed(self, w: StateWriter, size: int) -> None:
        pass

    def _import_typed(self, r: StateReader, size: int) -> BoolMask:
        """Load the typed part; returns which of the `size` offsets hold indexed values."""
        return np.zeros(size, dtype=np.bool_)

    # --- facts --------------------------------------------------------------------------

    def schema(self) -> FieldSchema:
        return self._schema

    def schema_type(self) -> str:
        return self.data_type

    def points_count(self) -> int:
        """Points holding at least one value of this index's type."""
        return self._points

    def values_total(self) -> int:
        """The values counted over every offset (`values_count`'s counts; a nested index's
        several counts per point summed), for /telemetry's `points_values_count`."""
        single = int(self._count[self._count > 0].sum())
        return single + sum(sum(counts) for counts in self._multi.values())

    def is_empty_mask(self, n: int) -> BoolMask:
        return _fit(self._empty, n, True)

    def is_null_mask(self, n: int) -> BoolMask:
        return _fit(self._null, n, False)

    def other_kinds(self, n: int) -> npt.NDArray[np.uint8]:
        return _fit(self._other, n, 0)

    def has_other_kinds(self, kinds: int) -> bool:
        """Whether any offset holds a value of one of these kinds that the index leaves out."""
        return any(count for value, count in enumerate(self._other_hist) if value & kinds)

    def values_count_mask(
        self, gt: float | None, gte: float | None, lt: float | None, lte: float | None, n: int
    ) -> BoolMask:
        counts = _fit(self._count, n, 0)
        mask = counts >= 0
        if gt is not None:
            mask &= counts > gt
        if gte is not None:
            mask &= counts >= gte
        if lt is not None:
            mask &= counts < lt
        if lte is not None:
            mask &= counts <= lte
        for offset, many in self._multi.items():
            if offset < n:
                mask[offset] = any(
                    (gt is None or c > gt)
                    and (gte is None or c >= gte)
                    and (lt is None or c < lt)
                    and (lte is None or c <= lte)
                    for c in many
                )
        return mask

    # --- typed queries: None means "not answerable by this index" -----------------------

    def match_values(self, values: Sequence[str | int | bool], n: int) -> BoolMask | None:
        return None

    def match_except(self, values: Sequence[str | int], n: int) -> BoolMask | None:
        return None

    def match_prefix(self, prefix: str, n: int) -> BoolMask | None:
        return None

    def match_substring(self, substring: str, n: int) -> BoolMask | None:
        return None

    def match_text(self, text: str, any_token: bool, n: int) -> BoolMask | None:
        return None

    def match_phrase(self, phrase: str, n: int) -> BoolMask | None:
        return None

    def range_mask(
        self, gt: float | None, gte: float | None, lt: float | None, lte: float | None, n: int
    ) -> BoolMask | None:
        return None

    def datetime_range_mask(
        self, gt: float | None, gte: float | None, lt: float | None, lte: float | None, n: int
    ) -> BoolMask | None:
        return None

    def geo_radius(self, lat: float, lon: float, radius: float, n: int) -> BoolMask | None:
        return None

    def geo_bbox(
        self, top_left: tuple[float, float], bottom_right: tuple[float, float], n: int
    ) -> BoolMask | None:
        return None

    def geo_polygon(
        self,
        exterior: tuple[tuple[float, float], ...],
        interiors: tuple[tuple[tuple[float, float], ...], ...],
        n: int,
    ) -> BoolMask | None:
        return None

    def ordered_offsets(self, descending: bool, start_from: float | None) -> tuple[KeyArray, I64]:
        """(values, offsets) for scroll `order_by`; integer, float and datetime only."""
        raise BadRequest(
            f"Bad request: order_by requires an integer, float or datetime index on "
            f"`{self.key}`, it has a {self.data_type} index"
        )

    def facet_counts(self, mask: BoolMask) -> dict[Any, int]:
        """How many points under the mask hold each value; keyword, integer, bool, uuid."""
        raise BadRequest(
            f"Bad request: facet requires a keyword, integer, bool or uuid index on "
            f"`{self.key}`, it has a {self.data_type} index"
        )


def make_field_index(key: str, schema: FieldSchema) -> FieldIndex:
    # Imported here: the typed indexes build on this module's base class.
    from tessera.segment.field_index_geo import GeoIndex
    from tessera.segment.field_index_scalar import (
        BoolIndex,
        DatetimeIndex,
        FloatIndex,
        IntegerIndex,
        KeywordIndex,
        UuidIndex,
    )
    from tessera.segment.field_index_text import TextIndex

    classes: dict[str, type[FieldIndex]] = {
        "keyword": KeywordIndex,
        "integer": IntegerIndex,
        "float": FloatIndex,
        "bool": BoolIndex,
        "datetime": DatetimeIndex,
        "uuid": UuidIndex,
        "geo": GeoIndex,
        "text": TextIndex,
    }
    return classes[schema.data_type](key, schema)


def parse_uuid_text(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def datetime_key(value: str) -> int | None:
    return parse_datetime_micros(value)
