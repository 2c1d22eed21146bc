"""Segment files: a consistent snapshot taken under the shard lock, written outside it.

Every file is an array file (`tessera.fileformat`, kind in parentheses) except the graph,
which is faiss's own format. Each file name carries the flush generation that wrote it; the
shard manifest names a segment's files with their size and crc32, checked before loading.

    ids.<gen>.tsr          ("ids") meta {"size", "appendable", "index_schemas", "build":
                           what each graph was built with (segment.build_record; none
                           before it was recorded: inferred from the graphs on load)};
                           arrays key_kind u8, key_hi u64, key_lo u64 (the external ids:
                           kind 0 a number = hi, kind 1 a UUID = hi << 64 | lo),
                           versions u64, deleted bool; all of length size
    payload.<gen>.tsr      ("payload") arrays starts u64 (size + 1), data u8: the payload of
                           offset i is the JSON object data[starts[i]:starts[i+1]], empty for
                           none
    vec<i>.<gen>.tsr       the i-th vector name (sorted) by offset, meta {"name"}; none
                           for a storage never written (a name added later, see
                           shard.vector_schema):
                           ("dense")  matrix (size, dim) in the storage dtype, present bool
                                      (turbo4: (size, ceil(dim / 2) + 4) int8, packed
                                      codes and scale; turbo8: (size, ceil(dim / 2) + 2)
                                      int16; turbo16: (size, dim + 2) uint16; see
                                      tessera.query.turbo)
                           ("sparse") present bool, starts u64 (size + 1), indices i32,
                                      values f32: offset i's pairs at starts[i]:starts[i+1]
                           ("multi")  present bool, starts u64 (size + 1), rows (total, dim)
                                      in the storage dtype
    hnsw<i>.<gen>.faiss    the faiss HNSW index of the i-th vector name (immutable segments),
                           in faiss's own format (its fourcc headers say the index kind and
                           layout), float or quantized (segment.quantization: codes,
                           codebooks, rotation). Its manifest entry may add "codec", what
                           the file does not say: binary graphs {"kind": "binary", "dim":
                           int, "encoding": one_bit | two_bits | one_and_half_bits,
                           "query_encoding": default | scalar4bits | scalar8bits,
                           "version": 2 (absent: 1, the older encoding), "mean" and
                           "stddev" (version 2, two_bits and one_and_half_bits: base64 of
                           `dim` little-endian float32 each; segment.binary_codec)}
                           (required: missing or unknown is damage); turbo bits1 /
                           bits1_5 Cosine graphs of version 2 {"kind": "turbo",
                           "version": 2, "dim": int, "bits": bits1 | bits1_5, "shift" and
                           "scale" (base64 of the padded dimension's little-endian
                           float32 each), "norm": float} (segment.turbo_codec; a turbo
                           graph without it is version 1, everything in its file; an
                           invalid one is damage); quantized Dot graphs {"kind":
                           "float", "lift_norm2": float}. Covered by the manifest's checksum
    fidx<j>.<gen>.tsr      ("field-index") the j-th payload index of the flush (meta {"key",
                           "state": the index's own meta}; arrays: the index's arrays, plus
                           `deleted_at_write` bool so that points deleted later are taken out
                           of it on load). A text index's state meta holds
                           "tokenizer_version" (int): one saved under another version, or
                           before it was recorded, is rebuilt from the payloads on load
                           (logged once per shard and key) and written anew by the next
                           flush; so is a geo index holding a point outside lat [-90; 90]
                           / lon [-180; 180] (saved before such points were left out)

A component is rewritten only when it changed since the last flush, so an immutable segment
costs one small `ids` file per flush. Files are fsynced, and the directory once, before the
manifest refers to them.
"""

from __future__ import annotations

import itertools
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tessera.collection_config import (
    CollectionConfig,
    ids_mapped,
    payload_on_disk,
    placed_on_disk,
)
from tessera.fileformat import (
    FormatError,
    file_crc,
    read_array_file,
    verify_file,
    write_array_file,
)
from tessera.fsutil import fsync_dir, fsync_file, mkdir_durable
from tessera.memory import zero_pages
from tessera.query.turbo import ROW_DTYPES, row_width
from tessera.segment import build_record, mapped_pages
from tessera.segment.ann_index import HnswIndex
from tessera.segment.payload_storage import MappedPayloads
from tessera.segment.quantization import keeps_in_ram, quantization_for
from tessera.segment.segment import Segment
from tessera.segment.vector_storage import DenseStorage, ObjectStorage

log = logging.getLogger(__name__)

# Checksums at load: threads (crc32 runs without the GIL) once the files add up to this much.
_VERIFY_THREADS = min(4, os.cpu_count() or 1)
_VERIFY_PARALLEL_BYTES = 64 << 20

# A file as the manifest names it.
FileEntry = dict[str, Any]  # {"name": str, "size": int, "crc32": int}


@dataclass
class SegmentSnapshot:
    segment_id: str
    components: dict[str, Any]  # component -> data to write
    files: dict[str, list[FileEntry]]  # unchanged components keep their files


def take_snapshot(segment: Segment) -> SegmentSnapshot:
    """Copy what changed; must be called under the shard's exclusive lock."""
    size = segment.size
    # What changed, plus whatever has never been written (a segment's first flush).
    wanted = set(segment.dirty)
    if "payload" in wanted:
        # New payloads went into every field index (deletions are replayed on load instead).
        wanted.update(f"fidx:{key}" for key in segment.field_indexes)
    for component in component_names(segment):
        if component not in segment.files_by_component:
            wanted.add(component)
    current = set(component_names(segment))
    parts = {c: _component_data(segment, c, size) for c in sorted(wanted & current)}
    segment.dirty.clear()
    kept = {k: v for k, v in segment.files_by_component.items() if k in current and k not in parts}
    return SegmentSnapshot(segment.segment_id, parts, kept)


def component_names(segment: Segment) -> list[str]:
    vectors = [name for name, storage in segment.storages.items() if _has_rows(storage)]
    names = ["ids", "payload", *(f"vec:{name}" for name in vectors)]
    names += [f"hnsw:{name}" for name in segment.vector_indexes]
    names += [f"fidx:{key}" for key in segment.field_indexes]
    return names


def _has_rows(storage: DenseStorage | ObjectStorage) -> bool:
    """Whether a vector storage was ever written. One that was not (a vector name added to
    a live collection, which no point of this segment has) gets no file: loading a segment
    without it gives the same empty storage, and an immutable segment of many points does
    not write a matrix of zeros."""
    if isinstance(storage, DenseStorage):
        return bool(storage.matrix.shape[0] or storage.present.shape[0])
    return bool(storage.items)


def _component_data(segment: Segment, component: str, size: int) -> Any:
    """A copy of one component that later writes to the segment cannot change."""
    if component == "ids":
        return (
            {
                "size": size,
                "appendable": segment.appendable,
                "index_schemas": dict(segment.index_schemas),
                "build": build_record.to_json(segment.build_record),
            },
            {
                "key_kind": segment.key_kind[:size].copy(),
                "key_hi": segment.key_hi[:size].copy(),
                "key_lo": segment.key_lo[:size].copy(),
                "versions": segment.versions[:size].copy(),
                "deleted": segment.deleted[:size].copy(),
            },
        )
    if component == "payload":
        # Payload dicts are replaced, never mutated (Segment.set_payloads): sharing is safe.
        return segment.payloads[:size]
    if component.startswith("hnsw:"):
        return segment.vector_indexes[component[5:]]
    if component.startswith("fidx:"):
        from tessera.segment.field_index_state import export_field_index

        key = component[5:]
        meta, arrays = export_field_index(segment.field_indexes[key])
        arrays = dict(arrays)
        arrays["deleted_at_write"] = segment.deleted[:size].copy()
        return ({"key": key, "state": meta}, arrays)
    storage = segment.storages[component[4:]]
    if isinstance(storage, DenseStorage):
        rows = storage.rows(size)
        # An immutable segment's rows never change (a write moves the point into the
        # appendable segment first), and a graph's view keeps its index alive: shared, not
        # copied (a copy of every vector at the build's peak, 0.5 GB at 1M x 128).
        return ("dense", rows.copy() if segment.appendable else rows, storage.has(size))
    storage.ensure(size)
    return (storage.kind, list(storage.items[:size]), storage.dim)


def _pack_payloads(payloads: list[dict[str, Any] | None]) -> dict[str, npt.NDArray[Any]]:
    blobs = [orjson.dumps(p) if p else b"" for p in payloads]
    lengths = np.fromiter((len(b) for b in blobs), dtype=np.uint64, count=len(blobs))
    starts = np.zeros(len(blobs) + 1, dtype=np.uint64)
    np.cumsum(lengths, out=starts[1:])
    return {"starts": starts, "data": np.frombuffer(b"".join(blobs), dtype=np.uint8)}


def _pack_objects(kind: str, items: list[Any], dim: int) -> dict[str, npt.NDArray[Any]]:
    n = len(items)
    present = np.fromiter((x is not None for x in items), dtype=bool, count=n)
    counts = np.fromiter(
        (0 if x is None else len(x[0] if kind == "sparse" else x) for x in items),
        dtype=np.uint64,
        count=n,
    )
    starts = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(counts, out=starts[1:])
    held = [x for x in items if x is not None]
    if kind == "sparse":
        indices = np.concatenate([x[0] for x in held]) if held else np.zeros(0, np.int32)
        values = np.concatenate([x[1] for x in held]) if held else np.zeros(0, np.float32)
        return {
            "present": present,
            "starts": starts,
            "indices": indices.astype(np.int32, copy=False),
            "values": values.astype(np.float32, copy=False),
        }
    rows = np.concatenate([np.asarray(x) for x in held]) if held else np.zeros((0, dim), np.float32)
    return {"present": present, "starts": starts, "rows": rows}


def write_snapshot(
    snapshot: SegmentSnapshot, directory: Path, gen: int, names: list[str]
) -> dict[str, list[FileEntry]]:
    """Write the changed components, durable with their directory entries; return
    component -> files of the whole segment."""
    mkdir_durable(directory)
    files = dict(snapshot.files)
    fidx_keys = sorted(c for c in snapshot.components if c.startswith("fidx:"))
    for component, data in snapshot.components.items():
        if component == "ids":
            meta, arrays = data
            files[component] = [_write(directory, f"ids.{gen}.tsr", "ids", meta, arrays)]
        elif component == "payload":
            files[component] = [
                _write(directory, f"payload.{gen}.tsr", "payload", {}, _pack_payloads(data))
            ]
        elif component.startswith("hnsw:"):
            fname = f"hnsw{names.index(component[5:])}.{gen}.faiss"
            path = directory / fname
            data.save(path)
            fsync_file(path)
            size, crc = file_crc(path)
            entry: dict[str, Any] = {"name": fname, "size": size, "crc32": crc}
            codec = data.codec_meta()  # a quantized graph's encoding (segment.quantization)
            if codec is not None:
                entry["codec"] = codec
            files[component] = [entry]
        elif component.startswith("fidx:"):
            meta, arrays = data
            fname = f"fidx{fidx_keys.index(component)}.{gen}.tsr"
            files[component] = [_write(directory, fname, "field-index", meta, arrays)]
        else:
            name = component[4:]
            fname = f"vec{names.index(name)}.{gen}.tsr"
            kind = data[0]
            if kind == "dense":
                arrays = {"matrix": data[1], "present": data[2]}
            else:
                arrays = _pack_objects(kind, data[1], data[2])
            files[component] = [_write(directory, fname, kind, {"name": name}, arrays)]
    fsync_dir(directory)
    return files


def _write(
    directory: Path, fname: str, kind: str, meta: Any, arrays: dict[str, npt.NDArray[Any]]
) -> FileEntry:
    size, crc = write_array_file(directory / fname, kind, meta, arrays)
    return {"name": fname, "size": size, "crc32": crc}


# ---- loading ----------------------------------------------------------------------------


def verify_segment_files(directory: Path, files: dict[str, list[FileEntry]]) -> None:
    """Every file the manifest names, checked against its size and crc32 (FormatError)."""
    verify_segments([(directory, files)])


def verify_segments(segments: list[tuple[Path, dict[str, list[FileEntry]]]]) -> None:
    """`verify_segment_files` for several segments, every file read in full and checked
    before this returns (nothing is loaded meanwhile). zlib's crc32 releases the GIL, so
    large files are checked on several threads, largest first; the error raised is that
    of the first bad file in manifest order, whatever the order they were read in."""
    checks = [
        (directory / entry["name"], int(entry["size"]), int(entry["crc32"]))
        for directory, files in segments
        for entries in files.values()
        for entry in entries
    ]
    total = sum(size for _, size, _ in checks)
    workers = min(_VERIFY_THREADS, len(checks))
    if workers < 2 or total < _VERIFY_PARALLEL_BYTES:
        for path, size, crc in checks:
            verify_file(path, size, crc)
        return
    order = sorted(range(len(checks)), key=lambda i: -checks[i][1])
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        futures = {i: pool.submit(verify_file, *checks[i]) for i in order}
        for i in range(len(checks)):
            futures[i].result()  # raises the first failure in manifest order


def _expect(cond: bool, path: Path, what: str) -> None:
    if not cond:
        raise FormatError(f"{path}: {what}")


def load_segment(
    directory: Path,
    segment_id: str,
    files: dict[str, list[FileEntry]],
    config: CollectionConfig,
    map_graphs: bool = False,
) -> Segment:
    """A segment from files already verified (verify_segment_files). Raises FormatError when
    the files do not fit together or the config. `map_graphs`: the graphs' stored vectors stay
    in their files whatever the config says (a read worker's copy: the page cache holds them
    once for every process that maps them)."""
    ids_path = directory / files["ids"][0]["name"]
    # `id_tracker.memory` cold / cached: an indexed segment's id keys (never written once
    # sealed) stay mapped; versions and deletion flags change, so they are always copied.
    mapped = ids_mapped(config.params_extra)
    meta, arrays = read_array_file(ids_path, "ids", mmap=mapped)
    size = int(meta["size"])
    for name in ("key_kind", "key_hi", "key_lo", "versions", "deleted"):
        _expect(name in arrays and arrays[name].shape == (size,), ids_path, f"bad {name}")
    segment = Segment(segment_id, config, appendable=bool(meta["appendable"]))
    segment.size = size
    keep = mapped and not segment.appendable
    keys = ("key_kind", np.uint8), ("key_hi", np.uint64), ("key_lo", np.uint64)
    for name, dtype in keys:
        if keep:  # left in the file, untouched until a lookup (no scan for zeros)
            setattr(segment, name, arrays[name].astype(dtype, copy=False))
        else:  # arrays read without `mapped` are this segment's own copies already
            setattr(segment, name, _own(arrays[name], dtype, copy=mapped))
    segment.versions = arrays["versions"].astype(np.uint64, copy=mapped)
    segment.deleted = _own(arrays["deleted"], np.bool_, copy=mapped)
    # No Python object per point: ids are answered from the key arrays, and the id list and
    # map are built only if a write needs them (Segment.ext_ids / id_map).
    segment.ext_ids = None
    segment.id_map = None

    payload_path = directory / files["payload"][0]["name"]
    segment.payloads = _load_payloads(payload_path, size, mapped=_payload_on_disk(segment))
    for name, storage in segment.storages.items():
        entries = files.get(f"vec:{name}")
        if entries is None:
            continue
        path = directory / entries[0]["name"]
        mapped = not segment.appendable and isinstance(storage, DenseStorage)
        vmeta, varrays = read_array_file(path, storage.kind, mmap=mapped)
        _expect(vmeta.get("name") == name, path, f"holds vector {vmeta.get('name')!r}")
        present = varrays.get("present")
        _expect(present is not None and present.shape == (size,), path, "bad present mask")
        assert present is not None
        if isinstance(storage, DenseStorage):
            matrix = varrays.get("matrix")
            _expect(
                matrix is not None
                and matrix.shape == (size, storage.matrix.shape[1])  # turbo4: packed rows
                and matrix.dtype == storage.matrix.dtype,
                path,
                "matrix does not fit the config",
            )
            assert matrix is not None
            # Immutable segments map their vectors; the page cache holds them, not the heap.
            storage.matrix = matrix
            storage.present = np.array(present, dtype=bool)
        else:
            storage.set_items(_unpack_objects(path, storage, varrays, size))
    for component, entries in files.items():
        if component.startswith("hnsw:"):
            name = component[5:]
            params = config.vectors.get(name)
            _expect(params is not None, directory, f"graph of unknown vector {name!r}")
            assert params is not None
            hnsw = config.hnsw_for(name)
            on_disk = params.vectors_on_disk() or placed_on_disk(hnsw, hnsw.get("on_disk"))
            on_disk = (on_disk or map_graphs) and not keeps_in_ram(quantization_for(config, name))
            index = HnswIndex.load(
                directory / entries[0]["name"],
                params.distance,
                mmap=on_disk,
                meta=entries[0].get("codec"),
            )
            segment.vector_indexes[name] = index
            dense = segment.storages[name]
            if isinstance(dense, DenseStorage) and not params.multivector:
                _expect(index.size == size, directory, f"graph of {name!r} has {index.size} rows")
                view = index.vectors_view()
                if view is not None and dense.matrix.dtype == np.float32:
                    dense.matrix = view
    segment.build_record = build_record.from_json(
        meta.get("build"), segment.vector_indexes, str(ids_path)
    )
    rebuilt = _load_field_indexes(directory, segment, files, meta["index_schemas"])
    segment.files_by_component = dict(files)
    for key in rebuilt:  # its file holds the old state: the next flush writes the new one
        segment.files_by_component.pop(f"fidx:{key}", None)
    segment.dirty.clear()
    return segment


def _payload_on_disk(segment: Segment) -> bool:
    return not segment.appendable and payload_on_disk(segment.config.params_extra)


_RELEASE_FROM = 1 << 20  # smaller maps are not worth a walk over /proc/self/maps


def _own(array: npt.NDArray[Any], dtype: Any, copy: bool) -> npt.NDArray[Any]:
    """`array` as `dtype` (a copy when `copy`), or, when it holds only zeros, zeros that take
    no memory until written: with numeric ids the id kinds and `key_lo`, and the deletion
    flags of a segment without deletions, are all zeros (1 + 8 + 1 bytes a point; 10 MiB of
    the resident set at 1M points)."""
    if len(array) and not array.any():
        return zero_pages(len(array), dtype)
    return array.astype(dtype, copy=copy)


def _load_payloads(
    path: Path, size: int, mapped: bool
) -> list[dict[str, Any] | None] | MappedPayloads:
    _, arrays = read_array_file(path, "payload", mmap=mapped)
    data = arrays.get("data")
    _expect(data is not None, path, "missing arrays")
    assert data is not None
    starts = _checked_starts(path, arrays, size, len(data))
    if mapped:
        if starts.nbytes >= _RELEASE_FROM:
            # The check read every offset; a read needs only those of the points it returns.
            mapped_pages.release(path)
        return MappedPayloads(starts, data)
    raw = data.tobytes()
    bounds = starts.tolist()
    try:
        return [orjson.loads(raw[a:b]) if b > a else None for a, b in itertools.pairwise(bounds)]
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"{path}: a payload is not JSON ({exc})") from None


def _checked_starts(
    path: Path, arrays: dict[str, npt.NDArray[Any]], size: int, total: int
) -> npt.NDArray[np.uint64]:
    """The `starts` array of a file holding variable-length items (payloads, sparse vectors,
    multivectors): size + 1 rising u64 offsets from 0 to `total`, checked with numpy."""
    starts = arrays.get("starts")
    _expect(
        starts is not None and starts.shape == (size + 1,) and starts.dtype == np.uint64,
        path,
        "bad starts",
    )
    assert starts is not None
    _expect(
        int(starts[0]) == 0 and bool(np.all(starts[1:] >= starts[:-1])),
        path,
        "starts out of order",
    )
    _expect(int(starts[-1]) == total, path, "bad sizes")
    return starts


def _unpack_objects(
    path: Path, storage: ObjectStorage, arrays: dict[str, npt.NDArray[Any]], size: int
) -> list[Any]:
    present = arrays["present"]
    items: list[Any] = [None] * size
    if storage.kind == "sparse":
        indices, values = arrays.get("indices"), arrays.get("values")
        _expect(indices is not None and values is not None, path, "missing arrays")
        assert indices is not None and values is not None
        _expect(len(indices) == len(values), path, "bad sizes")
        bounds = _checked_starts(path, arrays, size, len(indices)).tolist()
        for off in np.flatnonzero(present).tolist():
            a, b = bounds[off], bounds[off + 1]
            items[off] = (indices[a:b], values[a:b])
    else:
        rows = arrays.get("rows")
        is_turbo = storage.datatype in ROW_DTYPES
        # turbo rows hold codes and a scale, in the datatype's own row dtype
        width = row_width(storage.dim, storage.datatype) if is_turbo else storage.dim
        _expect(
            rows is not None
            and rows.ndim == 2
            and rows.shape[1] == width
            and (not is_turbo or rows.dtype == ROW_DTYPES[storage.datatype]),
            path,
            "rows",
        )
        assert rows is not None
        bounds = _checked_starts(path, arrays, size, rows.shape[0]).tolist()
        for off in np.flatnonzero(present).tolist():
            items[off] = rows[bounds[off] : bounds[off + 1]]
    return items


# (shard's segments directory, key) of the stale field indexes already logged
_stale_logged: set[tuple[str, str]] = set()


def _load_field_indexes(
    directory: Path,
    segment: Segment,
    files: dict[str, list[FileEntry]],
    index_schemas: dict[str, Any],
) -> list[str]:
    """Load the segment's field indexes; the keys of those rebuilt from the payloads because
    their state was made by rules this build does not follow (`StaleIndexState`)."""
    from tessera.segment.field_index import make_field_index, parse_field_schema
    from tessera.segment.field_index_state import StaleIndexState, import_field_index

    rebuilt: list[str] = []
    for key, schema_json in index_schemas.items():
        entries = files.get(f"fidx:{key}")
        if entries is None:
            segment.create_field_index(key, schema_json)
            continue
        path = directory / entries[0]["name"]
        meta, arrays = read_array_file(path, "field-index")
        _expect(meta.get("key") == key, path, f"holds the index of {meta.get('key')!r}")
        deleted_then = arrays.pop("deleted_at_write", None)
        _expect(deleted_then is not None, path, "no deleted_at_write")
        assert deleted_then is not None
        try:
            index = import_field_index(key, parse_field_schema(schema_json), meta["state"], arrays)
        except StaleIndexState as exc:
            # Answers must follow this build's rules: the payloads are the source of truth.
            where = (str(directory.parent), key)
            if where not in _stale_logged:
                _stale_logged.add(where)
                log.warning("%s: rebuilding payload index %r from payloads: %s", path, key, exc)
            index = make_field_index(key, parse_field_schema(schema_json))
            # every point not deleted, deferred ones too (reads hide those, not the indexes)
            for off in np.flatnonzero(~segment.deleted[: segment.size]).tolist():
                payload = segment.payloads[off]
                if payload:
                    index.add(off, payload)
            segment.field_indexes[key] = index
            segment.index_schemas[key] = schema_json
            rebuilt.append(key)
            continue
        except ValueError as exc:
            raise FormatError(f"{path}: {exc}") from None
        n = min(len(deleted_then), segment.size)
        for off in np.flatnonzero(segment.deleted[:n] & ~deleted_then[:n]).tolist():
            index.remove(off)
        segment.field_indexes[key] = index
        segment.index_schemas[key] = schema_json
    return rebuilt


def map_on_disk_data(segment: Segment, directory: Path, config: CollectionConfig) -> None:
    """After a flush wrote an immutable segment: vectors configured `on_disk` (and payloads,
    with `on_disk_payload`) are swapped for maps of the files just written, so the heap copy
    built by the optimizer is freed and the process holds only what the page cache lends it.
    Caller holds the shard's write lock.

    The files hold the segment as the flush's snapshot saw it; the flush wrote them without
    the lock. A component changed since (marked dirty again: the optimizer may have sealed
    the segment meanwhile, and a write edited or appended to it) stays in memory: its file
    is older than its data, and mapping it would undo acknowledged writes. The next flush
    writes it again and maps it then."""
    if segment.appendable:
        return
    payload_files = segment.files_by_component.get("payload")
    if (
        "payload" not in segment.dirty
        and "ids" not in segment.dirty
        and _payload_on_disk(segment)
        and payload_files
        and isinstance(segment.payloads, list)
    ):
        path = directory / payload_files[0]["name"]
        segment.payloads = _load_payloads(path, segment.size, mapped=True)
    for name, storage in segment.storages.items():
        params = config.vectors.get(name)
        if params is None or not params.vectors_on_disk() or not isinstance(storage, DenseStorage):
            continue
        if {f"vec:{name}", f"hnsw:{name}", "ids"} & segment.dirty:
            continue  # changed since the snapshot (see above)
        index = segment.vector_indexes.get(name)
        if isinstance(storage.matrix, np.memmap) or (index is not None and index.mapped):
            continue  # mapped already: reloading would only free what readers may hold
        hnsw_files = segment.files_by_component.get(f"hnsw:{name}")
        vec_files = segment.files_by_component.get(f"vec:{name}")
        if vec_files is None:
            continue
        in_ram = keeps_in_ram(quantization_for(config, name))
        if index is not None and hnsw_files is not None and not params.multivector and not in_ram:
            mapped = HnswIndex.load(
                directory / hnsw_files[0]["name"],
                params.distance,
                mmap=True,
                meta=hnsw_files[0].get("codec"),
            )
            segment.vector_indexes[name] = mapped
            view = mapped.vectors_view()
            if view is not None and storage.matrix.dtype == np.float32:
                storage.matrix = view
                continue
        _, arrays = read_array_file(directory / vec_files[0]["name"], "dense", mmap=True)
        if arrays["matrix"].shape == storage.matrix[: segment.size].shape:
            storage.matrix = arrays["matrix"]
