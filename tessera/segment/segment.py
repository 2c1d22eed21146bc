"""One segment: id tracker, vector storages, payloads and payload indexes, by offset.

A segment is either appendable (takes new points, rewritten whole at each flush, kept small
by the optimizer) or immutable (built by the optimizer; afterwards only its deleted bits and
versions change). Points are addressed by offset; `id_map` holds live points only.

Thread safety: a segment has no lock of its own. The shard's lock guards every call: writers
hold it exclusively, readers shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.collection_config import CollectionConfig, deferred_limit
from tessera.ids import PointId
from tessera.query.scoring import check_datatype, check_distance, prepare_stored
from tessera.segment.field_index import make_field_index, parse_field_schema
from tessera.segment.payload_storage import MappedPayloads
from tessera.segment.vector_storage import (
    DenseStorage,
    ObjectStorage,
    _grow,
)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Storage = DenseStorage | ObjectStorage


def id_keys(
    ids: list[PointId],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    n = len(ids)
    if all(type(pid) is int for pid in ids):
        hi = np.fromiter(ids, dtype=np.uint64, count=n)  # type: ignore[arg-type]
        return np.zeros(n, dtype=np.uint8), hi, np.zeros(n, dtype=np.uint64)
    kind = np.zeros(n, dtype=np.uint8)
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    for i, pid in enumerate(ids):
        if isinstance(pid, int):
            hi[i] = pid
        else:
            kind[i] = 1
            hi[i] = pid.int >> 64
            lo[i] = pid.int & 0xFFFFFFFFFFFFFFFF
    return kind, hi, lo


# From this many ids of a kind `_SortedIds.find` takes the one-offset hits in numpy calls
# (1,000 ids: 190-600 -> 65-105 us); fewer go one by one, cheaper than those calls.
_FIND_VECTORISED_FROM = 32

# `external_ids_at` reads fewer offsets than this one `item` each: numpy's gather + tolist
# cost more than the lookups themselves.
_ITEMS_BELOW = 16


class _SortedIds:
    """Id -> offset lookups over the key arrays (no Python object per point): the offsets
    of each id kind sorted by key. Offsets deleted are skipped at lookup time (an immutable
    segment never takes new points; an appendable one builds `id_map` before writing)."""

    def __init__(
        self,
        kind: npt.NDArray[np.uint8],
        hi: npt.NDArray[np.uint64],
        lo: npt.NDArray[np.uint64],
        size: int,
    ) -> None:
        self.kind, self.hi, self.lo = kind, hi, lo
        self.sorted: list[tuple[npt.NDArray[np.uint64], IntArray]] = []
        for k in (0, 1):
            offs = np.flatnonzero(kind[:size] == k)
            order = np.argsort(hi[offs], kind="stable")
            offs = offs[order]
            self.sorted.append((hi[offs], offs.astype(np.int64)))

    def find(self, ids: list[PointId], deleted: BoolArray) -> IntArray:
        """The live offset of each id, -1 where there is none."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if not ids:
            return out
        kind, hi, lo = id_keys(ids)
        for k in (0, 1):
            sel = np.flatnonzero(kind == k)
            keys, offs = self.sorted[k]
            if not len(sel) or not len(keys):
                continue
            left = np.searchsorted(keys, hi[sel], side="left")
            right = np.searchsorted(keys, hi[sel], side="right")
            if len(sel) >= _FIND_VECTORISED_FROM:
                span = right - left
                one = span == 1  # the usual hit: one offset holds the key (0: a new id)
                if one.any():
                    at, cand = sel[one], offs[left[one]]
                    ok = ~deleted[cand]
                    if k == 1:
                        ok &= self.lo[cand] == lo[at]
                    out[at[ok]] = cand[ok]
                several = np.flatnonzero(span > 1)
                sel, left, right = sel[several], left[several], right[several]
            for i, a, b in zip(sel.tolist(), left.tolist(), right.tolist(), strict=True):
                # equal high words: a number deleted and written again, UUIDs sharing them
                for j in range(a, b):
                    off = int(offs[j])
                    if (k == 0 or self.lo[off] == lo[i]) and not deleted[off]:
                        out[i] = off
                        break
        return out


def make_storages(config: CollectionConfig) -> dict[str, Storage]:
    names = [*config.vectors, *config.sparse_vectors]
    return {name: make_storage(config, name) for name in names}


def make_storage(config: CollectionConfig, name: str) -> Storage:
    """An empty storage for vector `name` of `config` (dense, multivector or sparse)."""
    p = config.vectors.get(name)
    if p is None:
        return ObjectStorage("sparse", 0)
    if p.multivector:
        return ObjectStorage("multi", p.size, p.datatype)
    return DenseStorage(p.size, p.datatype)


class Segment:
    def __init__(self, segment_id: str, config: CollectionConfig, appendable: bool) -> None:
        self.segment_id = segment_id
        self.config = config
        self.appendable = appendable
        self.size = 0  # offsets in use, deleted included
        # External ids by offset, and live id -> offset. A segment loaded from disk starts
        # without either (None): `key_*` answer by offset and a sorted copy of the keys
        # (`_SortedIds`) answers lookups; the Python objects are built only when a write
        # needs them (`allocate`) or a caller asks for the whole list.
        self._ext_ids: list[PointId] | None = []
        self._id_map: dict[PointId, int] | None = {}
        self._sorted_ids: _SortedIds | None = None
        self._live: tuple[int, int] = (-1, 0)  # (generation, live count) without `_id_map`
        self._sparse_indexed: tuple[int, int] = (-1, 0)  # (generation, indexed sparse count)
        self.versions = np.zeros(0, dtype=np.uint64)
        self.deleted = np.zeros(0, dtype=bool)
        # Sort keys of the external ids by offset (see tessera.ids.id_sort_key): kind 0 for
        # numbers (hi = the number), 1 for UUIDs (hi, lo = the 128 bits), so scroll can
        # order and page points with numpy instead of sorting Python objects.
        self.key_kind = np.zeros(0, dtype=np.uint8)
        self.key_hi = np.zeros(0, dtype=np.uint64)
        self.key_lo = np.zeros(0, dtype=np.uint64)
        # (key_kind array, offsets checked, whether all of them are numbers): see
        # `_numbers_below`.
        self._numeric_keys: tuple[Any, int, bool] = (None, 0, True)
        self.storages: dict[str, Storage] = make_storages(config)
        # A list in memory, or (immutable segments with on_disk_payload) a map of the file.
        self.payloads: list[dict[str, Any] | None] | MappedPayloads = []
        self.field_indexes: dict[str, Any] = {}
        self.index_schemas: dict[str, Any] = {}
        # Components changed since the last flush: "ids", "payload", "vec:<name>".
        self.dirty: set[str] = set()
        # Files of the last flush, per component (see segment/persist.py).
        self.files_by_component: dict[str, list[dict[str, Any]]] = {}
        # ANN indexes per dense vector name, attached by the optimizer (issue 5).
        self.vector_indexes: dict[str, Any] = {}
        # What each graph was built with (segment.build_record), for the config-mismatch
        # optimizer; persisted in the `ids` file.
        self.build_record: dict[str, dict[str, Any]] = {}
        # Bumped by every change to liveness or vectors; keys the search masks cached below.
        self.generation = 0
        self._base_masks: dict[str, tuple[int, BoolArray, int]] = {}
        # Search-side cache of filter masks, keyed by (vector name, filter): a
        # shard.search.CachedFilter each (the layer above owns its shape).
        self.filter_masks: dict[Any, Any] = {}

    # ---- reading (FilterTarget protocol) -------------------------------------------

    def point_count(self) -> int:
        return self.size

    @property
    def ext_ids(self) -> list[PointId]:
        """External ids by offset (deleted offsets included), built on first use."""
        if self._ext_ids is None:
            self._ext_ids = self.external_ids_at(range(self.size))
        return self._ext_ids

    @ext_ids.setter
    def ext_ids(self, ids: list[PointId] | None) -> None:
        self._ext_ids = ids

    @property
    def id_map(self) -> dict[PointId, int]:
        """Live external id -> offset, built on first use (writes need it)."""
        if self._id_map is None:
            ids = self.ext_ids
            live = np.flatnonzero(~self.deleted[: self.size]).tolist()
            self._id_map = {ids[off]: off for off in live}
            self._sorted_ids = None
        return self._id_map

    @id_map.setter
    def id_map(self, mapping: dict[PointId, int] | None) -> None:
        self._id_map = mapping
        self._sorted_ids = None

    def live_count(self) -> int:
        if self._id_map is not None:
            return len(self._id_map)
        if self._live[0] != self.generation:
            self._live = (self.generation, int(np.count_nonzero(~self.deleted[: self.size])))
        return self._live[1]

    def indexed_vector_count(self) -> int:
        """Vectors the ANN indexes hold: for each indexed vector name, the live points that
        have that vector. Qdrant sums the count of every vector index of a segment, so a
        point with two indexed named vectors counts twice and one without a vector not at
        all."""
        if not self.vector_indexes:
            return 0
        stored = self.stored_mask()
        total = 0
        for name in self.vector_indexes:
            storage = self.storages.get(name)
            if storage is not None:
                has = storage.has(self.size)[: self.size]
                total += int(np.count_nonzero(has & stored))
        return total + self._indexed_sparse_count(stored)

    def _indexed_sparse_count(self, stored: BoolArray) -> int:
        """The sparse vectors an indexed segment's inverted indexes hold in Qdrant: every
        non-empty one of a live point. Counted from each storage's per-offset lengths, once
        per change of the segment, not on every collection info."""
        if self._sparse_indexed[0] == self.generation:
            return self._sparse_indexed[1]
        total = 0
        for storage in self.storages.values():
            if isinstance(storage, ObjectStorage) and storage.kind == "sparse":
                nonempty = storage.sparse_lengths(self.size) > 0
                total += int(np.count_nonzero(nonempty & stored[: self.size]))
        self._sparse_indexed = (self.generation, total)
        return total

    def live_mask(self) -> BoolArray:
        """Live points as reads see them: deferred ones (see `deferred_from`) are not."""
        mask = ~self.deleted[: self.size]
        start = self.deferred_from()
        if start is not None and start < self.size:
            mask[start:] = False
        return mask

    def stored_mask(self) -> BoolArray:
        """Every live point, deferred ones included (what the optimizer rebuilds)."""
        return ~self.deleted[: self.size]

    def deferred_from(self) -> int | None:
        """With `prevent_unoptimized`, points past the indexing threshold of a segment that
        has no index yet are stored but hidden until the optimizer has indexed them
        (collection_config.deferred_limit); None: every live point is visible."""
        if self.vector_indexes:
            return None
        limit = deferred_limit(self.config)
        # Below the threshold the optimizer leaves a segment alone: nothing is held back.
        return None if limit is None or self.live_count() < limit else limit

    def deferred_internal_id(self) -> int | None:
        """The offset from which points of this segment are deferred (Qdrant's
        `deferred_internal_id`): set for an appendable segment without an index while
        `prevent_unoptimized` holds points back, whether or not any is held yet."""
        if self.vector_indexes or not self.appendable:
            return None
        return deferred_limit(self.config)

    def deleted_deferred_count(self) -> int:
        """Deleted points at deferred offsets (Qdrant's `num_deleted_deferred_points`)."""
        start = self.deferred_internal_id()
        if start is None or start >= self.size:
            return 0
        return int(np.count_nonzero(self.deleted[start : self.size]))

    def is_deferred(self, offset: int) -> bool:
        start = self.deferred_from()
        return start is not None and offset >= start

    def visible_count(self) -> int:
        start = self.deferred_from()
        if start is None or start >= self.size:
            return self.live_count()
        return int(np.count_nonzero(self.live_mask()))

    def payload_at(self, offset: int) -> dict[str, Any]:
        return self.payloads[offset] or {}

    def payloads_at(self, offsets: list[int]) -> list[dict[str, Any]]:
        """`payload_at` of each offset; mapped payloads are read in one batch."""
        many = getattr(self.payloads, "many", None)
        found = many(offsets) if many is not None else [self.payloads[o] for o in offsets]
        return [p or {} for p in found]

    def external_id_at(self, offset: int) -> PointId:
        if self._ext_ids is not None:
            return self._ext_ids[offset]
        # `item` answers a Python int without a numpy scalar between (a top-10 reads ten).
        if self.key_kind.item(offset) == 0:
            number: int = self.key_hi.item(offset)
            return number
        return uuid.UUID(int=(self.key_hi.item(offset) << 64) | self.key_lo.item(offset))

    def external_ids_at(self, offsets: Sequence[int]) -> list[PointId]:
        if self._ext_ids is not None:
            ids = self._ext_ids
            return [ids[off] for off in offsets]
        if len(offsets) < _ITEMS_BELOW:
            if self._numbers_below(self.size):  # a map in C, no kind read per offset
                return list(map(self.key_hi.item, offsets))
            kind, high = self.key_kind.item, self.key_hi.item
            return [high(o) if kind(o) == 0 else self.external_id_at(o) for o in offsets]
        offs = np.fromiter(offsets, dtype=np.int64)
        out: list[PointId] = self.key_hi[offs].tolist()
        for i in np.flatnonzero(self.key_kind[offs] == 1).tolist():
            off = int(offs[i])
            out[i] = uuid.UUID(int=(int(self.key_hi[off]) << 64) | int(self.key_lo[off]))
        return out

    def _numbers_below(self, size: int) -> bool:
        """Whether every id below offset `size` is a number (key kind 0), remembered per
        `key_kind` array: keys are only ever written past the segment's size (`_set_keys`)
        or into a new array, so only offsets not checked yet are looked at."""
        kinds = self.key_kind
        memo = self._numeric_keys
        if memo[0] is kinds and memo[1] >= size:
            return memo[2]
        if memo[0] is kinds:
            numeric = memo[2] and not kinds[memo[1] : size].any()
        else:
            numeric = not kinds[:size].any()
        self._numeric_keys = (kinds, size, bool(numeric))  # one store: atomic for readers
        return bool(numeric)

    def _lookup(self) -> _SortedIds:
        if self._sorted_ids is None:
            self._sorted_ids = _SortedIds(self.key_kind, self.key_hi, self.key_lo, self.size)
        return self._sorted_ids

    def offsets_of(self, ids: Iterable[PointId]) -> IntArray:
        if self._id_map is None:
            found = self._lookup().find(list(ids), self.deleted)
            return found[found >= 0]
        get = self._id_map.get
        found_list = [off for off in (get(i) for i in ids) if off is not None]
        return np.asarray(found_list, dtype=np.int64)

    def offset_of(self, pid: PointId) -> int | None:
        if self._id_map is None:
            off = int(self._lookup().find([pid], self.deleted)[0])
            return None if off < 0 else off
        return self._id_map.get(pid)

    def _changed(self, component: str) -> None:
        self.dirty.add(component)
        self.generation += 1

    def base_mask(self, name: str) -> tuple[BoolArray, int]:
        """Live points that have vector `name`, and how many: cached until the next change.
        The mask is shared: callers must not modify it."""
        cached = self._base_masks.get(name)
        if cached is not None and cached[0] == self.generation:
            return cached[1], cached[2]
        generation = self.generation
        mask = self.live_mask() & self.vector_mask(name)
        mask.flags.writeable = False
        count = int(np.count_nonzero(mask))
        self._base_masks[name] = (generation, mask, count)
        return mask, count

    def vector_mask(self, name: str) -> BoolArray:
        storage = self.storages.get(name)
        if storage is None:
            return np.zeros(self.size, dtype=bool)
        return storage.has(self.size)

    def field_index(self, key: str) -> Any | None:
        return self.field_indexes.get(key)

    def vector_at(self, offset: int, name: str) -> Any:
        storage = self.storages.get(name)
        return None if storage is None else storage.get(offset)

    def vectors_at(self, offset: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, storage in self.storages.items():
            value = storage.get(offset)
            if value is not None:
                out[name] = value
        return out

    # ---- writing --------------------------------------------------------------------

    def _ensure(self, size: int) -> None:
        if size > self.versions.shape[0]:
            self.versions = _grow(self.versions, size)
            self.deleted = _grow(self.deleted, size)
        elif not self.deleted.flags.writeable:
            self.versions = np.array(self.versions)
            self.deleted = np.array(self.deleted)

    def allocate(self, ids: list[PointId], seq: int) -> IntArray:
        """Offsets for these ids: the existing one for a live point, a new one otherwise."""
        offsets = np.empty(len(ids), dtype=np.int64)
        new_ids: list[PointId] = []
        get = self.id_map.get
        for i, pid in enumerate(ids):
            off = get(pid)
            if off is None:
                off = self.size + len(new_ids)
                new_ids.append(pid)
                self.id_map[pid] = off
            offsets[i] = off
        if new_ids:
            self._ensure(self.size + len(new_ids))
            self._set_keys(self.size, new_ids)
            self.ext_ids.extend(new_ids)
            assert isinstance(self.payloads, list), "only appendable segments take points"
            self.payloads.extend([None] * len(new_ids))
            self.size += len(new_ids)
        self.versions[offsets] = seq
        self._changed("ids")
        return offsets

    def _set_keys(self, start: int, ids: list[PointId]) -> None:
        end = start + len(ids)
        if end > self.key_kind.shape[0]:
            self.key_kind = _grow(self.key_kind, end)
            self.key_hi = _grow(self.key_hi, end)
            self.key_lo = _grow(self.key_lo, end)
        kind, hi, lo = id_keys(ids)
        self.key_kind[start:end] = kind
        self.key_hi[start:end] = hi
        self.key_lo[start:end] = lo

    def touch(self, offsets: IntArray, seq: int) -> None:
        self._ensure(self.size)
        self.versions[offsets] = seq
        self._changed("ids")

    def write_dense(self, name: str, offsets: IntArray, values: npt.NDArray[np.float32]) -> None:
        storage = self.storages[name]
        assert isinstance(storage, DenseStorage)
        params = self.config.vectors[name]
        storage.write(
            offsets,
            prepare_stored(
                check_distance(params.distance), values, check_datatype(params.datatype)
            ),
        )
        self._changed(f"vec:{name}")

    def write_objects(self, name: str, offsets: IntArray, values: list[Any]) -> None:
        storage = self.storages[name]
        assert isinstance(storage, ObjectStorage)
        if storage.kind == "multi":
            params = self.config.vectors[name]
            distance = check_distance(params.distance)
            datatype = check_datatype(params.datatype)
            values = [None if v is None else prepare_stored(distance, v, datatype) for v in values]
        storage.write_items(offsets, values)
        self._changed(f"vec:{name}")

    def clear_vectors(self, name: str, offsets: IntArray) -> None:
        storage = self.storages.get(name)
        if storage is not None and len(offsets):
            storage.clear(offsets)
            self._changed(f"vec:{name}")

    def set_payloads(self, offsets: IntArray, payloads: list[dict[str, Any] | None]) -> None:
        """Payload dicts are replaced, never mutated, so a flush snapshot can share them."""
        if not isinstance(self.payloads, list):
            self.payloads = list(self.payloads)
        stored = self.payloads
        offs = offsets.tolist()
        for off, payload in zip(offs, payloads, strict=True):
            stored[off] = payload or None
        for index in self.field_indexes.values():
            index.add_many(offs, payloads)
        self._changed("payload")

    def delete(self, offsets: IntArray, seq: int) -> None:
        if not len(offsets):
            return
        self._ensure(self.size)
        self.deleted[offsets] = True
        self.versions[offsets] = seq
        id_map = self._id_map  # None: lookups go by the deleted mask, nothing to drop
        if id_map is not None:
            for off in offsets.tolist():
                pid = self.ext_ids[off]
                if id_map.get(pid) == off:
                    del id_map[pid]
        gone = np.asarray(offsets, dtype=np.int64)
        for index in self.field_indexes.values():
            index.remove_many(gone)
        self._changed("ids")

    def copy_point_from(self, source: Segment, src_offset: int, seq: int) -> int:
        """Copy-on-write: bring a point from an immutable segment into this appendable one."""
        pid = source.external_id_at(src_offset)
        offsets = self.allocate([pid], seq)
        for name, storage in source.storages.items():
            value = storage.get(src_offset)
            if value is None:
                self.clear_vectors(name, offsets)
            elif isinstance(storage, DenseStorage):
                target = self.storages[name]
                assert isinstance(target, DenseStorage)
                target.write(offsets, storage.matrix[src_offset : src_offset + 1])
                self._changed(f"vec:{name}")
            else:
                target_obj = self.storages[name]
                assert isinstance(target_obj, ObjectStorage)
                target_obj.write_items(offsets, [storage.items[src_offset]])
                self._changed(f"vec:{name}")
        self.set_payloads(offsets, [source.payloads[src_offset]])
        return int(offsets[0])

    # ---- vector names (tessera.shard.vector_schema) ---------------------------------

    def add_vector_storage(self, name: str) -> None:
        """An empty storage for a vector name just added to the config: no point has it.
        Marked dirty, so the next flush writes its file and the manifest names it."""
        self.storages[name] = make_storage(self.config, name)
        self.files_by_component.pop(f"vec:{name}", None)
        self._changed(f"vec:{name}")

    def drop_vector_storage(self, name: str) -> None:
        """Forget vector `name`: its data, its graph and its files (the next manifest no
        longer names them, so they are deleted once no kept checkpoint does)."""
        self.storages.pop(name, None)
        self.vector_indexes.pop(name, None)
        for component in (f"vec:{name}", f"hnsw:{name}"):
            self.files_by_component.pop(component, None)
            self.dirty.discard(component)
        self._base_masks.pop(name, None)
        self.filter_masks.clear()
        self.generation += 1
        self.dirty.add("ids")

    # ---- payload indexes ------------------------------------------------------------

    def create_field_index(self, key: str, schema_json: Any) -> None:
        schema = parse_field_schema(schema_json)
        index = make_field_index(key, schema)
        live = self.live_mask()
        for off in np.flatnonzero(live).tolist():
            payload = self.payloads[off]
            if payload:
                index.add(off, payload)
        self.field_indexes[key] = index
        self.index_schemas[key] = schema_json
        self.files_by_component.pop(f"fidx:{key}", None)  # a new index: written afresh
        self._changed("ids")

    def drop_field_index(self, key: str) -> None:
        self.field_indexes.pop(key, None)
        self.index_schemas.pop(key, None)
        self.files_by_component.pop(f"fidx:{key}", None)
        self._changed("ids")
