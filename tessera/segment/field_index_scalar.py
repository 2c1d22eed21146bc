"""Scalar field indexes: keyword, uuid, integer, float, bool and datetime.

All keep one `Postings` of (value, offset). Strings are interned to integer ids first, so
every column is numeric; prefix and substring matches scan the (small) dictionary of
distinct strings, then look the matching ids up. Integer bounds are converted to an exact
integer interval before the binary search (`int_bounds`), so `gt: 2.5` on an integer field
is decided exactly, as on the payload.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tessera.segment.field_index import (
    BoolMask,
    FieldIndex,
    datetime_key,
    float_bounds,
    int_bounds,
    owners_mask,
    parse_uuid_text,
)
from tessera.segment.field_schema import FieldSchema
from tessera.segment.postings import I64, KeyArray, Postings

if TYPE_CHECKING:
    from tessera.segment.field_index_state import StateReader, StateWriter


class _PostingsIndex(FieldIndex):
    _dtype: type[np.int64] | type[np.float64] = np.int64
    _bulk_store = True

    def __init__(self, key: str, schema: FieldSchema) -> None:
        super().__init__(key, schema)
        self._postings = Postings(self._dtype)

    def _store(self, offset: int, values: list[Any]) -> None:
        self._postings.replace(offset, list(dict.fromkeys(values)))

    def _store_many(self, offsets: I64, stored: I64, keys: list[Any]) -> None:
        self._postings.replace_many(offsets, stored, keys)

    def _drop(self, offset: int) -> None:
        self._postings.remove(offset)

    def _keys_mask(self, keys: Sequence[float], n: int) -> BoolMask:
        return owners_mask(self._postings.owners_of_keys(keys), n)

    # State: the live (value, offset) entries, sorted; keys stay as given on import.

    def _export_typed(self, w: StateWriter, size: int) -> None:
        keys, owners, _ = self._postings.export_state()
        w.meta["entries"] = len(keys)
        w.put("keys", self._export_keys(w, keys))
        w.put("owners", owners)

    def _import_typed(self, r: StateReader, size: int) -> BoolMask:
        entries = r.count("entries")
        keys = r.array("keys", self._dtype, entries)
        owners = r.array("owners", np.int64, entries)
        self._import_keys(r, keys)
        try:
            live = self._postings.load_state(keys, owners, None, size)
        except ValueError as exc:
            raise r.fail(str(exc)) from exc
        has: BoolMask = live[:size] > 0
        return has

    def _export_keys(self, w: StateWriter, keys: KeyArray) -> KeyArray:
        return keys

    def _import_keys(self, r: StateReader, keys: KeyArray) -> None:
        pass

    def _except_mask(self, keys: Sequence[float], n: int) -> BoolMask:
        if not keys:
            return owners_mask(
                self._postings.owners_where(lambda k, _x: np.ones(len(k), dtype=np.bool_)), n
            )
        excluded = np.asarray(keys, dtype=self._dtype)
        return owners_mask(self._postings.owners_where(lambda k, _x: ~np.isin(k, excluded)), n)

    def _counts(self, mask: BoolMask) -> tuple[KeyArray, I64]:
        keys, owners = self._postings.sorted_live()
        inside = owners < len(mask)
        keys, owners = keys[inside], owners[inside]
        values, counts = np.unique(keys[mask[owners]], return_counts=True)
        return values, counts.astype(np.int64)


class _OrderedMixin(_PostingsIndex):
    def ordered_offsets(self, descending: bool, start_from: float | None) -> tuple[KeyArray, I64]:
        keys, owners = self._postings.sorted_live()
        if not descending:
            if start_from is not None:
                start = int(np.searchsorted(keys, start_from, "left"))
                keys, owners = keys[start:], owners[start:]
            return keys, owners
        if start_from is not None:
            stop = int(np.searchsorted(keys, start_from, "right"))
            keys, owners = keys[:stop], owners[:stop]
        keys, owners = keys[::-1], owners[::-1]
        if len(keys) > 1:
            # reversed, equal values list their offsets descending; put them back ascending
            group = np.concatenate([[0], np.cumsum(keys[1:] != keys[:-1])])
            order = np.lexsort((owners, group))
            keys, owners = keys[order], owners[order]
        return keys, owners


class _InternedIndex(_PostingsIndex):
    """Strings interned to ids; ids are never reused, dead strings stay in the dictionary."""

    def __init__(self, key: str, schema: FieldSchema) -> None:
        super().__init__(key, schema)
        self._ids: dict[str, int] = {}
        self._strings: list[str] = []

    def _intern(self, value: str) -> int:
        found = self._ids.get(value)
        if found is None:
            found = self._ids[value] = len(self._strings)
            self._strings.append(value)
        return found

    def _export_keys(self, w: StateWriter, keys: KeyArray) -> KeyArray:
        """Only the strings live entries use, renumbered in id order (keeps keys sorted)."""
        first = np.ones(len(keys), dtype=np.bool_)
        first[1:] = keys[1:] != keys[:-1]
        used = keys[first]
        strings = self._strings
        w.meta["strings"] = len(used)
        w.put_strings("str", [strings[i] for i in used.tolist()])
        renumbered: KeyArray = np.cumsum(first) - 1
        return renumbered

    def _import_keys(self, r: StateReader, keys: KeyArray) -> None:
        strings = r.strings("str", r.count("strings"))
        ids = {s: i for i, s in enumerate(strings)}
        if len(ids) != len(strings):
            raise r.fail("interned strings repeat")
        r.in_range("string id", keys[:1], 0, len(strings))  # keys are checked sorted
        r.in_range("string id", keys[-1:], 0, len(strings))
        self._strings, self._ids = strings, ids

    def _known(self, values: Sequence[Any]) -> list[float]:
        return [self._ids[v] for v in values if isinstance(v, str) and v in self._ids]

    def match_values(self, values: Sequence[str | int | bool], n: int) -> BoolMask | None:
        return self._keys_mask(self._known(values), n)

    def match_except(self, values: Sequence[str | int], n: int) -> BoolMask | None:
        if not all(isinstance(v, str) for v in values):
            return None  # integers: Qdrant's keyword index declines, the payload decides
        return self._except_mask(self._known(values), n)


class KeywordIndex(_InternedIndex):
    data_type = "keyword"
    complete_for = frozenset({"except"})

    def _convert(self, value: Any) -> Any | None:
        return self._intern(value) if isinstance(value, str) else None

    def match_prefix(self, prefix: str, n: int) -> BoolMask | None:
        ids = [i for s, i in self._ids.items() if s.startswith(prefix)]
        return self._keys_mask(ids, n)

    def match_substring(self, substring: str, n: int) -> BoolMask | None:
        ids = [i for s, i in self._ids.items() if substring in s]
        return self._keys_mask(ids, n)

    def facet_counts(self, mask: BoolMask) -> dict[Any, int]:
        values, counts = self._counts(mask)
        return {self._strings[int(v)]: int(c) for v, c in zip(values, counts)}


class UuidIndex(_InternedIndex):
    """Strings that read as UUIDs, interned by their spelling on the payload. Matches compare
    UUIDs, as Qdrant's uuid index does (it stores and looks up 128-bit values): any spelling
    of the query's UUID selects every spelling stored. A query value that is not a UUID
    leaves the condition to the payload check (string equality), as in Qdrant. Facets render
    the canonical form."""

    data_type = "uuid"
    complete_for = frozenset({"except"})

    def __init__(self, key: str, schema: FieldSchema) -> None:
        super().__init__(key, schema)
        # Canonical spellings for facets, filled lazily (readers share it under the lock).
        self._canon_text: list[str] = []
        self._canon_ids: dict[str, int] = {}
        self._canon: I64 = np.zeros(0, dtype=np.int64)
        self._canon_lock = threading.Lock()

    def _convert(self, value: Any) -> Any | None:
        if isinstance(value, str) and parse_uuid_text(value) is not None:
            return self._intern(value)
        return None

    def match_values(self, values: Sequence[str | int | bool], n: int) -> BoolMask | None:
        spelled = self._spellings_of(values)
        return None if spelled is None else self._keys_mask(spelled, n)

    def match_except(self, values: Sequence[str | int], n: int) -> BoolMask | None:
        spelled = self._spellings_of(values)
        return None if spelled is None else self._except_mask(spelled, n)

    def _spellings_of(self, values: Sequence[Any]) -> list[float] | None:
        """The interned ids of every stored spelling of the values' UUIDs; None when a value
        is not a UUID string (Qdrant's index then declines the condition)."""
        wanted: set[int] = set()
        canon = self._canonical_ids()  # fills _canon_ids for every interned string
        for value in values:
            text = parse_uuid_text(value) if isinstance(value, str) else None
            if text is None:
                return None
            found = self._canon_ids.get(text)
            if found is not None:
                wanted.add(found)
        if not wanted:
            return []
        return [float(i) for i in np.flatnonzero(np.isin(canon, list(wanted)))]

    def facet_counts(self, mask: BoolMask) -> dict[Any, int]:
        """Counts per canonical UUID: a point holding two spellings of one UUID counts once."""
        keys, owners = self._postings.sorted_live()
        inside = owners < len(mask)
        keys, owners = keys[inside], owners[inside]
        keep = mask[owners]
        keys, owners = keys[keep], owners[keep]
        if not len(keys):
            return {}
        canon = self._canonical_ids()
        pairs = np.unique(np.stack([canon[keys], owners]), axis=1)
        values, counts = np.unique(pairs[0], return_counts=True)
        return {self._canon_text[int(v)]: int(c) for v, c in zip(values, counts)}

    def _canonical_ids(self) -> I64:
        """Interned id -> id of its canonical spelling; strings are only ever appended."""
        with self._canon_lock:
            self._extend_canonical()
            return self._canon

    def _extend_canonical(self) -> None:
        done = len(self._canon)
        if done < len(self._strings):
            ids = self._canon_ids
            extra = []
            for text in self._strings[done:]:
                canonical = str(parse_uuid_text(text))
                found = ids.get(canonical)
                if found is None:
                    found = ids[canonical] = len(self._canon_text)
                    self._canon_text.append(canonical)
                extra.append(found)
            self._canon = np.concatenate([self._canon, np.asarray(extra, dtype=np.int64)])


def int64_of(value: Any) -> int | None:
    """What an integer index holds of a payload value: an int64, or a float with an integral
    value inside int64 (1.0 is indexed as 1, as Qdrant's `value_to_integer` takes it);
    None for anything else, which is left to the payload."""
    if isinstance(value, float):
        ok = value.is_integer() and -(2.0**63) <= value < 2.0**63
        return int(value) if ok else None
    ok = isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    return value if ok else None


class IntegerIndex(_OrderedMixin):
    data_type = "integer"
    complete_for = frozenset({"except", "range"})

    def _convert(self, value: Any) -> Any | None:
        return int64_of(value)

    @staticmethod
    def _ints(values: Sequence[Any]) -> list[float]:
        return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]

    def match_values(self, values: Sequence[str | int | bool], n: int) -> BoolMask | None:
        return self._keys_mask(self._ints(values), n)

    def match_except(self, values: Sequence[str | int], n: int) -> BoolMask | None:
        ints = self._ints(values)
        if not values or len(ints) != len(values):
            # strings (an empty list reads as strings, serde's first variant): declined
            return None
        return self._except_mask(ints, n)

    def range_mask(
        self, gt: float | None, gte: float | None, lt: float | None, lte: float | None, n: int
    ) -> BoolMask | None:
        return _int_range_mask(self._postings, gt, gte, lt, lte, n)

    # Qdrant's numeric indexes take a datetime range too, its bounds as microseconds since
    # the epoch: numbers compared with timestamps (Qdrant Edge answers so).
    datetime_range_mask = range_mask

    def facet_counts(self, mask: BoolMask) -> dict[Any, int]:
        values, counts = self._counts(mask)
        return {int(v): int(c) for v, c in zip(values, counts)}


class FloatIndex(_OrderedMixin):
    """Numbers as float64, integers beyond 2**53 rounded to the nearest float as Qdrant's float
    index holds them (ranges compare as f64 everywhere, tessera.query.filter_check)."""

    data_type = "float"
    _dtype = np.float64

    def _convert(self, value: Any) -> Any | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return float(value)
        if isinstance(value, float) and value == value:
            return value
        return None

    def range_mask(
        self, gt: float | None, gte: float | None, lt: float | None, lte: float | None, n: int
    ) -> BoolMask | None:
        lo, lo_open, hi, hi_open = float_bounds(gt, gte, lt, lte)
        return owners_mask(self._postings.owners_in_range(lo, lo_open, hi, hi_open), n)

    datetime_range_mask = range_mask  # as the integer index's


class BoolIndex(_PostingsIndex):
    data_type = "bool"

    def _convert(self, value: Any) -> Any | None:
        return int(value) if isinstance(value, bool) else None

    def _import_keys(self, r: StateReader, keys: KeyArray) -> None:
        r.in_range("bool key", keys[:1], 0, 2)  # keys are checked sorted
        r.in_range("bool key", keys[-1:], 0, 2)

    def match_values(self, values: Sequence[str | int | bool], n: int) -> BoolMask | None:
        return self._keys_mask([int(v) for v in values if isinstance(v, bool)], n)

    def match_except(self, values: Sequence[str | int], n: int) -> BoolMask | None:
        # `except` lists hold strings or integers, never booleans: every bool qualifies
        return self._except_mask([], n)

    def facet_counts(self, mask: BoolMask) -> dict[Any, int]:
        values, counts = self._counts(mask)
        return {bool(v): int(c) for v, c in zip(values, counts)}


class DatetimeIndex(_OrderedMixin):
    """Datetime strings as microseconds since the epoch."""

    data_type = "datetime"
    complete_for = frozenset({"range"})

    def _convert(self, value: Any) -> Any | None:
        return datetime_key(value) if isinstance(value, str) else None

    def datetime_range_mask(
        self, gt: float | None, gte: float | None, lt: float | None, lte: float | None, n: int
    ) -> BoolMask | None:
        return _int_range_mask(self._postings, gt, gte, lt, lte, n)

    # A numeric range compares its numbers with the timestamps (microseconds), as Qdrant's
    # datetime index does; numbers on the payload are no datetimes to it.
    range_mask = datetime_range_mask


def _int_range_mask(
    postings: Any, gt: float | None, gte: float | None, lt: float | None, lte: float | None, n: int
) -> BoolMask:
    """Owners of integer-keyed values (integers, datetimes in microseconds) in a range."""
    interval = int_bounds(gt, gte, lt, lte)
    if interval is None:
        return np.zeros(n, dtype=np.bool_)
    lo, hi = interval
    return owners_mask(postings.owners_in_range(lo, False, hi, False), n)
