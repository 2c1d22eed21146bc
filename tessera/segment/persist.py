"""Segment files: a consistent snapshot taken under the shard lock, written outside it.

Layout of a segment directory (`segments/<segment_id>/`); every file name carries the flush
generation that wrote it, and the shard manifest names the files that make up the segment:

    ids.<gen>.pkl          pickle: {"size", "ext_ids", "versions" (u64 array),
                           "deleted" (bool array), "index_schemas", "appendable"}
    payload.<gen>.pkl      pickle: list of payload dicts (None for none), by offset
    vec<i>.<gen>.npy       dense matrix of the i-th vector name (sorted), rows by offset
    vec<i>.<gen>.has.npy   bool mask: which offsets have that vector
    vec<i>.<gen>.pkl       sparse / multi vectors: list by offset
    hnsw<i>.<gen>.faiss    the faiss HNSW index of the i-th vector name (immutable segments)

A component is rewritten only when it changed since the last flush, so an immutable segment
costs one small `ids` file per flush. Files are fsynced before the manifest refers to them.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tessera.collection.config import CollectionConfig
from tessera.fsutil import fsync_file
from tessera.segment.ann_index import HnswIndex
from tessera.segment.segment import Segment
from tessera.segment.vector_storage import DenseStorage, ObjectStorage


@dataclass
class SegmentSnapshot:
    segment_id: str
    components: dict[str, Any]  # component -> data to write
    files: dict[str, list[str]]  # unchanged components keep their files


def take_snapshot(segment: Segment) -> SegmentSnapshot:
    """Copy what changed; must be called under the shard's exclusive lock."""
    size = segment.size
    # What changed, plus whatever has never been written (a segment's first flush).
    wanted = set(segment.dirty)
    for component in ("ids", "payload", *(f"vec:{name}" for name in segment.storages)):
        if component not in segment.files_by_component:
            wanted.add(component)
    parts = {c: _component_data(segment, c, size) for c in sorted(wanted)}
    segment.dirty.clear()
    kept = {k: v for k, v in segment.files_by_component.items() if k not in parts}
    return SegmentSnapshot(segment.segment_id, parts, kept)


def _component_data(segment: Segment, component: str, size: int) -> Any:
    """A copy of one component that later writes to the segment cannot change."""
    if component == "ids":
        return {
            "size": size,
            "ext_ids": list(segment.ext_ids),
            "versions": segment.versions[:size].copy(),
            "deleted": segment.deleted[:size].copy(),
            "index_schemas": dict(segment.index_schemas),
            "appendable": segment.appendable,
        }
    if component == "payload":
        return list(segment.payloads)
    if component.startswith("hnsw:"):
        return segment.vector_indexes[component[5:]]
    storage = segment.storages[component[4:]]
    if isinstance(storage, DenseStorage):
        return (storage.rows(size).copy(), storage.has(size))
    storage.ensure(size)
    return list(storage.items[:size])


def _fsync_write(path: Path, write: Any) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def write_snapshot(
    snapshot: SegmentSnapshot, directory: Path, gen: int, names: list[str]
) -> dict[str, list[str]]:
    """Write the changed components; return component -> file names of the whole segment."""
    directory.mkdir(parents=True, exist_ok=True)
    files = dict(snapshot.files)
    for component, data in snapshot.components.items():
        if component in ("ids", "payload"):
            fname = f"{component}.{gen}.pkl"
            _fsync_write(directory / fname, lambda f, d=data: pickle.dump(d, f, protocol=5))
            files[component] = [fname]
        elif component.startswith("hnsw:"):
            i = names.index(component[5:])
            fname = f"hnsw{i}.{gen}.faiss"
            data.save(directory / fname)
            fsync_file(directory / fname)
            files[component] = [fname]
        else:
            i = names.index(component[4:])
            if isinstance(data, tuple):
                matrix, has = data
                fm, fh = f"vec{i}.{gen}.npy", f"vec{i}.{gen}.has.npy"
                _fsync_write(directory / fm, lambda f, m=matrix: np.save(f, m))
                _fsync_write(directory / fh, lambda f, h=has: np.save(f, h))
                files[component] = [fm, fh]
            else:
                fname = f"vec{i}.{gen}.pkl"
                _fsync_write(directory / fname, lambda f, d=data: pickle.dump(d, f, protocol=5))
                files[component] = [fname]
    return files


def load_segment(
    directory: Path, segment_id: str, files: dict[str, list[str]], config: CollectionConfig
) -> Segment:
    with open(directory / files["ids"][0], "rb") as f:
        ids = pickle.load(f)
    segment = Segment(segment_id, config, appendable=bool(ids["appendable"]))
    size = int(ids["size"])
    segment.size = size
    segment.ext_ids = list(ids["ext_ids"])
    segment._set_keys(0, segment.ext_ids)
    segment.versions = np.array(ids["versions"], dtype=np.uint64)
    segment.deleted = np.array(ids["deleted"], dtype=bool)
    live = np.flatnonzero(~segment.deleted[:size]).tolist()
    segment.id_map = {segment.ext_ids[off]: off for off in live}
    with open(directory / files["payload"][0], "rb") as f:
        segment.payloads = pickle.load(f)
    for name, storage in segment.storages.items():
        names = files.get(f"vec:{name}")
        if names is None:
            continue
        if isinstance(storage, DenseStorage):
            # Immutable segments map their vectors; the page cache holds them, not the heap.
            if segment.appendable:
                storage.matrix = np.load(directory / names[0])
            else:
                storage.matrix = np.load(directory / names[0], mmap_mode="r")
            storage.present = np.load(directory / names[1])
        elif isinstance(storage, ObjectStorage):
            with open(directory / names[0], "rb") as f:
                storage.set_items(pickle.load(f))
    for component, names in files.items():
        if component.startswith("hnsw:"):
            name = component[5:]
            distance = config.vectors[name].distance
            index = HnswIndex.load(directory / names[0], distance)
            segment.vector_indexes[name] = index
            dense = segment.storages[name]
            view = index.vectors_view()
            if view is not None and isinstance(dense, DenseStorage):
                dense.matrix = view if dense.matrix.dtype == np.float32 else dense.matrix
    for key, schema in ids["index_schemas"].items():
        segment.create_field_index(key, schema)
    segment.files_by_component = dict(files)
    segment.dirty.clear()
    return segment
