"""The two file formats of Tessera's data files (the WAL has its own: shard/wal_format.py).

Nothing here is a pickle: every file is JSON or raw little-endian arrays described by JSON,
so a file from a stranger (an uploaded snapshot) can only ever decode to data.

Array file (`*.tsr`)
====================

Segment components (ids, payloads, vectors, field indexes). All integers little-endian::

    offset  size  field
    0       8     magic        b"TSRARR\\x00\\x01"
    8       4     version      u32, ARRAY_FORMAT_VERSION (1)
    12      4     kind_len     u32, length of the kind string (ASCII, at most 32 bytes)
    16      32    kind         what the file holds ("ids", "payload", "dense", ...), NUL padded
    48      8     meta_len     u64, length of the JSON meta block at offset 64
    56      4     meta_crc     u32, zlib.crc32 of the meta block
    60      4     header_crc   u32, zlib.crc32 of bytes 0..60
    64      m     meta         JSON object: {"meta": <the writer's JSON>, "arrays": [...]}

Each entry of "arrays" is {"name", "dtype" (a numpy little-endian dtype string from the
whitelist below), "shape" (list of ints), "offset"}. The data area starts at the first
64-byte boundary after the meta block; an array lies at data start + offset (a multiple of
64), zero-padded between, so `numpy.memmap(path, dtype, "r", offset, shape)` maps one
without a copy. The file ends zero-padded to a multiple of 64.

The header and meta check themselves (header_crc, meta_crc). The array bytes are covered by
the crc32 of the whole file, which the manifest naming the file records with its size and
which is verified (streamed, `file_crc`) before any of its data is served.

Checked JSON file
=================

Manifests and collection configs: one header line, then the body::

    {"format": "<kind>", "version": <int>, "length": <body bytes>, "crc32": <crc of body>}\\n
    <body: a JSON document of exactly `length` bytes>

Readable with any text tool, and self-verifying. A reader refuses an unknown format, an
unknown version, a length or checksum mismatch with a `FormatError` that says which.
"""

from __future__ import annotations

import base64
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import orjson

from tessera.fsutil import write_durable, write_file_synced

ARRAY_MAGIC = b"TSRARR\x00\x01"
ARRAY_FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sII32sQI")
HEADER_SIZE = 64
_ALIGN = 64
_CHUNK = 1 << 20
_MAX_META = 1 << 30
# Plain little-endian numeric dtypes only: never "O" (objects), which would need pickle.
_DTYPES = frozenset(
    ["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"]
)

assert _HEADER.size + 4 == HEADER_SIZE


class FormatError(ValueError):
    """A file that is not what it claims: wrong magic, unknown version, bad checksum, a shape
    that does not fit. The message names the file and what was wrong."""


def _dtype_str(dtype: np.dtype[Any]) -> str:
    s = dtype.newbyteorder("<").str if dtype.byteorder not in ("|", "<", "=") else dtype.str
    return s.replace("=", "<")


def _pad(n: int) -> int:
    return (-n) % _ALIGN


def write_array_file(
    path: Path, kind: str, meta: Any, arrays: Mapping[str, npt.NDArray[Any]]
) -> tuple[int, int]:
    """Write a new array file, fsynced (the caller fsyncs the directory). Returns (size,
    crc32 of the whole file) for the manifest."""
    kind_bytes = kind.encode("ascii")
    if len(kind_bytes) > 32:
        raise ValueError(f"kind {kind!r} is longer than 32 bytes")
    prepared: list[tuple[str, npt.NDArray[Any]]] = []
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        dt = _dtype_str(a.dtype)
        if dt not in _DTYPES:
            raise ValueError(f"array {name!r} has dtype {a.dtype}, which files cannot hold")
        prepared.append((name, a))
    entries: list[dict[str, Any]] = []
    rel = 0
    for name, a in prepared:
        entries.append(
            {"name": name, "dtype": _dtype_str(a.dtype), "shape": list(a.shape), "offset": rel}
        )
        rel += int(a.nbytes)
        rel += _pad(rel)
    meta_bytes = orjson.dumps({"meta": meta, "arrays": entries})
    data_start = HEADER_SIZE + len(meta_bytes)
    data_start += _pad(data_start)
    head = _HEADER.pack(
        ARRAY_MAGIC,
        ARRAY_FORMAT_VERSION,
        len(kind_bytes),
        kind_bytes.ljust(32, b"\x00"),
        len(meta_bytes),
        zlib.crc32(meta_bytes),
    )
    header = head + struct.pack("<I", zlib.crc32(head))
    state = {"crc": 0, "pos": 0}

    def put(f: BinaryIO, data: bytes | memoryview) -> None:
        f.write(data)
        state["crc"] = zlib.crc32(data, state["crc"])
        state["pos"] += len(data)

    def write(f: BinaryIO) -> None:
        put(f, header)
        put(f, meta_bytes)
        for entry, (_, a) in zip(entries, prepared, strict=True):
            put(f, bytes(data_start + entry["offset"] - state["pos"]))
            flat = a.reshape(-1).view(np.uint8).data if a.size else memoryview(b"")
            for start in range(0, len(flat), _CHUNK):
                put(f, flat[start : start + _CHUNK])
        put(f, bytes(_pad(state["pos"])))

    write_file_synced(path, write)
    return state["pos"], state["crc"]


def file_crc(path: Path) -> tuple[int, int]:
    """(size, crc32) of a whole file, streamed in chunks."""
    crc = 0
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            crc = zlib.crc32(view[:n], crc)
            size += n
    return size, crc


def verify_file(path: Path, size: int, crc: int) -> None:
    """Raise FormatError unless the file has exactly this size and crc32."""
    try:
        actual_size = os.path.getsize(path)
    except FileNotFoundError:
        raise FormatError(f"{path}: missing") from None
    if actual_size != size:
        raise FormatError(f"{path}: size {actual_size}, the manifest says {size}")
    _, actual = file_crc(path)
    if actual != crc:
        raise FormatError(
            f"{path}: checksum mismatch (crc32 {actual:#010x}, the manifest says {crc:#010x})"
        )


def read_array_file(
    path: Path, kind: str, mmap: bool = False
) -> tuple[Any, dict[str, npt.NDArray[Any]]]:
    """(meta, arrays) of an array file. `mmap`: arrays are read-only maps of the file, else
    in-memory copies. The caller verified the whole file's crc first (verify_file)."""
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
        if len(head) < HEADER_SIZE:
            raise FormatError(f"{path}: shorter than its header")
        magic, version, kind_len, kind_raw, meta_len, meta_crc = _HEADER.unpack_from(head)
        (header_crc,) = struct.unpack_from("<I", head, _HEADER.size)
        if magic != ARRAY_MAGIC:
            if head.startswith(b"\x80"):
                raise FormatError(
                    f"{path}: a pickle from an older Tessera; this format is no longer "
                    "readable (export the data with that version, or re-create the collection)"
                )
            raise FormatError(f"{path}: not a Tessera array file (magic {magic!r})")
        if zlib.crc32(head[: _HEADER.size]) != header_crc:
            raise FormatError(f"{path}: header checksum mismatch")
        if version != ARRAY_FORMAT_VERSION:
            raise FormatError(
                f"{path}: array file format version {version}; this Tessera reads version "
                f"{ARRAY_FORMAT_VERSION}"
            )
        found_kind = kind_raw[: min(kind_len, 32)].decode("ascii", "replace")
        if found_kind != kind:
            raise FormatError(f"{path}: holds {found_kind!r}, expected {kind!r}")
        file_size = os.fstat(f.fileno()).st_size
        if meta_len > min(_MAX_META, file_size - HEADER_SIZE):
            raise FormatError(f"{path}: meta length {meta_len} exceeds the file")
        meta_bytes = f.read(meta_len)
        if zlib.crc32(meta_bytes) != meta_crc:
            raise FormatError(f"{path}: meta checksum mismatch")
        data_start = HEADER_SIZE + meta_len + _pad(HEADER_SIZE + meta_len)
        try:
            doc = orjson.loads(meta_bytes)
            entries = doc["arrays"]
            meta = doc["meta"]
            arrays: dict[str, npt.NDArray[Any]] = {}
            for e in entries:
                name, dt, shape = str(e["name"]), str(e["dtype"]), tuple(int(x) for x in e["shape"])
                if dt not in _DTYPES:
                    raise FormatError(f"{path}: array {name!r} has dtype {dt!r}")
                dtype = np.dtype(dt)
                if min(shape, default=0) < 0:
                    raise FormatError(f"{path}: array {name!r} has shape {shape}")
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                offset = data_start + int(e["offset"])
                if int(e["offset"]) < 0 or offset + nbytes > file_size:
                    raise FormatError(f"{path}: array {name!r} lies outside the file")
                if mmap and nbytes:
                    arrays[name] = np.memmap(
                        path, dtype=dtype, mode="r", offset=offset, shape=shape
                    )
                else:
                    # Read straight into the array: no bytes object beside it, whose freed
                    # pages glibc would keep (the process's resident set after a load).
                    array = np.empty(shape, dtype=dtype)
                    f.seek(offset)
                    if nbytes and f.readinto(array.data.cast("B")) != nbytes:
                        raise FormatError(f"{path}: array {name!r} lies outside the file")
                    arrays[name] = array
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            raise FormatError(f"{path}: malformed meta block ({exc})") from None
    return meta, arrays


# ---- checked JSON -----------------------------------------------------------------------


def float32_field(entry: dict[str, Any], key: str, count: int, what: str) -> bytes:
    """`count` little-endian float32 values kept as base64 under `key` of a JSON entry (a
    quantization codec's statistics in a segment manifest); FormatError, naming `what`,
    when the key is missing, is not base64 or holds another number of values."""
    try:
        raw = base64.b64decode(entry[key], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{what} entry lacks {key}: {entry!r}") from exc
    if len(raw) != 4 * count:
        raise FormatError(f"{what} {key} is not {count} float32 values")
    return raw


def encode_checked_json(kind: str, version: int, body: Any) -> bytes:
    data = orjson.dumps(body)
    header = orjson.dumps(
        {"format": kind, "version": version, "length": len(data), "crc32": zlib.crc32(data)}
    )
    return header + b"\n" + data


def write_checked_json(path: Path, kind: str, version: int, body: Any) -> None:
    """Replace `path` atomically and durably with a checked JSON file."""
    write_durable(path, encode_checked_json(kind, version, body))


def decode_checked_json(raw: bytes, kind: str, versions: tuple[int, ...], where: str) -> Any:
    line, sep, data = raw.partition(b"\n")
    try:
        header = orjson.loads(line) if sep else None
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict):
        raise FormatError(f"{where}: no checked-JSON header line (not written by this Tessera)")
    if header.get("format") != kind:
        raise FormatError(f"{where}: holds {header.get('format')!r}, expected {kind!r}")
    if header.get("version") not in versions:
        raise FormatError(
            f"{where}: {kind} format version {header.get('version')}; this Tessera reads "
            f"version {', '.join(map(str, versions))}"
        )
    if header.get("length") != len(data):
        raise FormatError(
            f"{where}: {len(data)} body bytes, the header says {header.get('length')}"
        )
    if header.get("crc32") != zlib.crc32(data):
        raise FormatError(f"{where}: checksum mismatch")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"{where}: body is not JSON ({exc})") from None


def read_checked_json(path: Path, kind: str, versions: tuple[int, ...] = (1,)) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path}: missing") from None
    return decode_checked_json(raw, kind, versions, str(path))
