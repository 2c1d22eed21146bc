"""Sorted (key, owner) entries: the columnar core every payload field index is built on.

An entry says "owner (a point offset, or a text document) holds key". Entries live in numpy
columns sorted by (key, owner), so a value lookup or a range is a binary search and a slice.

Writes never touch the sorted columns:

- `replace(owner, keys)` bumps the owner's generation and appends the new entries, tagged
  with the new generation, to a small unsorted *pending* buffer;
- an entry is live while its generation equals its owner's current one, so replacing or
  removing an owner retires all its old entries at once, in O(1).

Reads search the sorted columns, scan the pending buffer, and drop retired entries with one
vectorised comparison. The pending buffer is merged in (and retired entries compacted out)
when it grows past a fraction of the sorted part, so the sorting cost is amortised over many
writes. Reads may run concurrently; the segment serialises writes against reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
# int64 or float64 keys, depending on the index
KeyArray = npt.NDArray[Any]
U32 = npt.NDArray[np.uint32]
# (keys, extra) -> which entries qualify; `extra` is the optional second value column.
EntryTest = Callable[[KeyArray, F64], npt.NDArray[np.bool_]]

_MERGE_MIN = 256


class Postings:
    def __init__(self, key_dtype: type[np.int64] | type[np.float64]) -> None:
        self._dtype = key_dtype
        self._keys: KeyArray = np.empty(0, dtype=key_dtype)
        self._owners: I64 = np.empty(0, dtype=np.int64)
        self._gens: U32 = np.empty(0, dtype=np.uint32)
        self._extra: F64 = np.empty(0, dtype=np.float64)
        self._pk: list[float] = []
        self._po: list[int] = []
        self._pg: list[int] = []
        self._px: list[float] = []
        self._pending_cache: tuple[KeyArray, I64, U32, F64] | None = None
        self._gen: U32 = np.zeros(0, dtype=np.uint32)
        self._live: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._stale = 0
        # Guards merging and the pending lists; writes are serialised by the segment.
        self._lock = threading.Lock()

    def _grow(self, owner: int) -> None:
        if owner >= len(self._gen):
            size = max(owner + 1, 2 * len(self._gen), 64)
            self._gen = np.concatenate([self._gen, np.zeros(size - len(self._gen), np.uint32)])
            self._live = np.concatenate([self._live, np.zeros(size - len(self._live), np.int32)])

    def replace(
        self, owner: int, keys: Sequence[float], extra: Sequence[float] | None = None
    ) -> None:
        """Make `keys` (distinct) the owner's only entries."""
        with self._lock:
            self._replace(owner, keys, extra)

    def _replace(self, owner: int, keys: Sequence[float], extra: Sequence[float] | None) -> None:
        self._grow(owner)
        self._stale += int(self._live[owner])
        gen = int(self._gen[owner]) + 1
        self._gen[owner] = gen
        self._live[owner] = len(keys)
        if keys:
            self._pk.extend(keys)
            self._po.extend([owner] * len(keys))
            self._pg.extend([gen] * len(keys))
            self._px.extend(extra if extra is not None else [0.0] * len(keys))
        self._pending_cache = None

    def replace_many(self, owners: I64, counts: I64, keys: Sequence[float]) -> None:
        """`replace` of distinct owners at once: owner i's keys are the next counts[i] of
        `keys` (distinct, at least one each)."""
        with self._lock:
            self._grow(int(owners.max()))
            self._stale += int(self._live[owners].sum())
            gens = self._gen[owners] + np.uint32(1)
            self._gen[owners] = gens
            self._live[owners] = counts
            self._pk.extend(keys)
            if len(keys) == len(owners):
                self._po.extend(owners.tolist())
                self._pg.extend(gens.tolist())
            else:
                self._po.extend(np.repeat(owners, counts).tolist())
                self._pg.extend(np.repeat(gens, counts).tolist())
            self._px.extend([0.0] * len(keys))
            self._pending_cache = None

    def remove(self, owner: int) -> None:
        if owner < len(self._gen) and self._live[owner]:
            self.replace(owner, [])

    def _pending(self) -> tuple[KeyArray, I64, U32, F64]:
        if self._pending_cache is None:
            self._pending_cache = (
                np.asarray(self._pk, dtype=self._dtype),
                np.asarray(self._po, dtype=np.int64),
                np.asarray(self._pg, dtype=np.uint32),
                np.asarray(self._px, dtype=np.float64),
            )
        return self._pending_cache

    def _sync(self) -> None:
        n_main = len(self._keys)
        if len(self._pk) > _MERGE_MIN + n_main // 16 or self._stale > _MERGE_MIN + n_main // 2:
            self._merge()

    def _merge(self) -> None:
        pk, po, pg, px = self._pending()
        keys = np.concatenate([self._keys, pk])
        owners = np.concatenate([self._owners, po])
        gens = np.concatenate([self._gens, pg])
        extra = np.concatenate([self._extra, px])
        live = gens == self._gen[owners]
        keys, owners, gens, extra = keys[live], owners[live], gens[live], extra[live]
        order = np.lexsort((owners, keys))
        self._keys, self._owners = keys[order], owners[order]
        self._gens, self._extra = gens[order], extra[order]
        self._pk, self._po, self._pg, self._px = [], [], [], []
        self._pending_cache = None
        self._stale = 0

    def _view(self) -> _View:
        """A consistent snapshot for one read; merges first when the pending part is big.
        Reads may run concurrently (the lock keeps two of them from merging at once)."""
        with self._lock:
            self._sync()
            return _View(
                self._keys, self._owners, self._gens, self._extra, *self._pending(), self._gen
            )

    def owners_in_range(
        self, lo: float | None, lo_open: bool, hi: float | None, hi_open: bool
    ) -> I64:
        """Owners of live entries with lo <(=) key <(=) hi; owners may repeat."""
        v = self._view()
        start = (
            0 if lo is None else int(np.searchsorted(v.keys, lo, "right" if lo_open else "left"))
        )
        stop = (
            len(v.keys)
            if hi is None
            else int(np.searchsorted(v.keys, hi, "left" if hi_open else "right"))
        )
        parts = [v.live(v.owners[start:stop], v.gens[start:stop])]
        if len(v.pk):
            sel = np.ones(len(v.pk), dtype=np.bool_)
            if lo is not None:
                sel &= (v.pk > lo) if lo_open else (v.pk >= lo)
            if hi is not None:
                sel &= (v.pk < hi) if hi_open else (v.pk <= hi)
            parts.append(v.live(v.po[sel], v.pg[sel]))
        return np.concatenate(parts)

    def owners_of_keys(self, keys: Sequence[float]) -> I64:
        """Owners of live entries whose key is one of `keys`: one binary search per key."""
        if not keys:
            return np.empty(0, dtype=np.int64)
        v = self._view()
        wanted = np.asarray(keys, dtype=self._dtype)
        starts = np.searchsorted(v.keys, wanted, "left")
        lengths = np.searchsorted(v.keys, wanted, "right") - starts
        total = int(lengths.sum())
        # positions of every entry in every [start, stop) run, without a Python loop
        before = np.cumsum(lengths) - lengths
        index = np.arange(total) + np.repeat(starts - before, lengths)
        parts = [v.live(v.owners[index], v.gens[index])]
        if len(v.pk):
            sel = np.isin(v.pk, wanted)
            parts.append(v.live(v.po[sel], v.pg[sel]))
        return np.concatenate(parts)

    def entries_of_key(self, key: float) -> tuple[I64, F64]:
        """The live entries holding `key`: their owners and `extra` values."""
        v = self._view()
        start = int(np.searchsorted(v.keys, key, "left"))
        stop = int(np.searchsorted(v.keys, key, "right"))
        owners, gens, extra = v.owners[start:stop], v.gens[start:stop], v.extra[start:stop]
        if len(v.pk):
            sel = v.pk == key
            owners = np.concatenate([owners, v.po[sel]])
            gens = np.concatenate([gens, v.pg[sel]])
            extra = np.concatenate([extra, v.px[sel]])
        live = gens == v.gen[owners]
        return owners[live], extra[live]

    def owners_where(self, test: EntryTest) -> I64:
        """Owners of live entries passing a vectorised test over all entries (a full scan)."""
        v = self._view()
        return v.test_runs(test, 0, len(v.keys))

    def owners_where_in_range(self, lo: float, hi: float, test: EntryTest) -> I64:
        """Like owners_where, but only entries with lo <= key <= hi are tested."""
        v = self._view()
        start = int(np.searchsorted(v.keys, lo, "left"))
        stop = int(np.searchsorted(v.keys, hi, "right"))
        return v.test_runs(test, start, stop)

    def sorted_live(self) -> tuple[KeyArray, I64]:
        """All live entries as (keys, owners), sorted by key then owner."""
        with self._lock:
            if self._pk or self._stale:
                self._merge()
            return self._keys, self._owners

    def live_entry_count(self) -> int:
        return int(self._live.sum())

    # --- state (field_index_state) ------------------------------------------------------

    def export_state(self) -> tuple[KeyArray, I64, F64]:
        """All live entries as (keys, owners, extra), sorted by key then owner, merged first.
        The arrays are never written in place later (a merge builds new ones): safe to hand
        out without a copy."""
        with self._lock:
            if self._pk or self._stale:
                self._merge()
            return self._keys, self._owners, self._extra

    def load_state(
        self, keys: KeyArray, owners: I64, extra: F64 | None, owner_limit: int
    ) -> npt.NDArray[np.int32]:
        """Make (keys, owners, extra), as `export_state` gave them, the only entries, with
        owners below `owner_limit`. The columns are kept as given, possibly read-only: they
        are only ever read. Returns the live entry count of each owner below the limit.
        ValueError when the columns are not sorted by (key, owner) without repeats."""
        n = len(keys)
        if len(owners) != n or (extra is not None and len(extra) != n):
            raise ValueError("postings columns differ in length")
        if n:
            if int(owners.min()) < 0 or int(owners.max()) >= owner_limit:
                raise ValueError(f"postings owner out of range [0, {owner_limit})")
            if keys.dtype.kind == "f" and bool(np.isnan(keys).any()):
                raise ValueError("postings key is NaN")
            k0, k1 = keys[:-1], keys[1:]
            if not bool(((k1 > k0) | ((k1 == k0) & (owners[1:] > owners[:-1]))).all()):
                raise ValueError("postings entries are not sorted by (key, owner) or repeat")
        live = np.bincount(owners, minlength=owner_limit).astype(np.int32)
        with self._lock:
            self._keys, self._owners = keys, owners
            self._gens = np.ones(n, dtype=np.uint32)
            self._extra = extra if extra is not None else np.zeros(n, dtype=np.float64)
            self._pk, self._po, self._pg, self._px = [], [], [], []
            self._pending_cache = None
            # Every owner at generation 1: its entries are live, its next replace retires them.
            self._gen = np.ones(owner_limit, dtype=np.uint32)
            self._live = live
            self._stale = 0
        return live


class _View(NamedTuple):
    keys: KeyArray
    owners: I64
    gens: U32
    extra: F64
    pk: KeyArray
    po: I64
    pg: U32
    px: F64
    gen: U32

    def live(self, owners: I64, gens: U32) -> I64:
        kept: I64 = owners[gens == self.gen[owners]]
        return kept

    def test_runs(self, test: EntryTest, start: int, stop: int) -> I64:
        parts: list[I64] = []
        for keys, owners, gens, extra in (
            (self.keys[start:stop], self.owners[start:stop], self.gens[start:stop],
             self.extra[start:stop]),
            (self.pk, self.po, self.pg, self.px),
        ):  # fmt: skip
            if len(keys):
                sel = test(keys, extra)
                parts.append(self.live(owners[sel], gens[sel]))
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
