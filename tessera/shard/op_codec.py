"""Byte format of a WAL record payload: one update operation (or a batch of them).

This is what `operations.encode` writes and `operations.decode` reads; the WAL around it
(tessera.shard.wal_format) frames each payload and checks it with a CRC, so this format only
has to describe the operation, refuse what it does not know and never trust a length.  Only
data is stored: no class names, no pickles, so decoding an uploaded snapshot cannot run code
and renaming a Python class cannot make a WAL unreadable.

All integers are little-endian and unsigned (except the i32 sparse indices), floats are
IEEE 754 binary32, little-endian; offsets below are relative to the start of the field.

Record
======

::

    offset  size  field
    0       1     version    u8, FORMAT_VERSION (2); 1 was a pickle and is refused
    1       1     tag        u8, the operation (table below)
    2       ...   body       the operation's fields, in the order listed below

The body must end exactly where the payload ends: trailing bytes are an error. Tags::

    tag  operation          body
    1    UpsertPoints       ids, vectors, payloads
    2    UpdateVectors      ids, vectors
    3    DeleteVectors      ids, strings (names)
    4    SetPayload         ids, json (payload: an object), optional string (key)
    5    OverwritePayload   ids, json (payload: an object)
    6    DeletePayload      ids, strings (keys)
    7    ClearPayload       ids
    8    DeletePoints       ids
    9    CreateFieldIndex   string (key), json (schema: any JSON value)
    10   DeleteFieldIndex   string (key)
    11   OperationBatch     u32 count, then count times: u8 tag (1..10) + that tag's body
    12   CreateVectorName   string (vector name), json (config: {"dense"|"sparse": params})
    13   DeleteVectorName   string (vector name)

A batch holds operations, never another batch.

Field encodings
===============

string::

    0       4     length     u32, byte length of the text
    4       n     text       UTF-8, strictly valid

optional string: a u8 (0 = None, 1 = present) followed, when present, by a string.

strings (a list of strings): a u32 count, then count strings.

ids (a list of point ids; see tessera.ids)::

    0       4        n        u32, number of ids
    4       n        kinds    u8 per id, in order: 0 = unsigned 64-bit int, 1 = UUID
    4+n     8*a      ints     u64 per int id (a = number of kind 0), in id order; the
                              encoder takes any integer (__index__), so numpy integers work
    4+n+8a  16*(n-a) uuids    16 bytes per UUID (n - a of them), in id order, as
                              uuid.UUID.bytes (RFC 4122, big-endian)

vectors (a dict name -> column): a u32 count, then count times a string (the vector name,
unique within the dict) followed by a column.  A column starts with a u8 kind:

kind 0, DenseColumn (one dense vector per point, absent where ``present`` is 0)::

    0       1        kind     u8, 0
    1       4        n        u32, rows: must equal the number of ids
    5       4        d        u32, dimension
    9       n        present  u8 per row, 0 or 1
    9+n     4*n*d    values   f32, row-major (n, d); rows that are not present are still
                              stored (whatever the column held, usually zeros)

kind 1, ObjectColumn (sparse vectors or multivectors, one item per point or None)::

    0       1        kind     u8, 1
    1       4        n        u32, items: must equal the number of ids
    5       n        kinds    u8 per item: 0 = None, 1 = sparse vector, 2 = multivector
    5+n     ...      items    the bodies of the items that are not None, in order

    sparse vector body (a tuple (indices int32 (k,), values float32 (k,)))::

        0       4     k        u32, number of entries
        4       4*k   indices  i32
        4+4k    4*k   values   f32

    multivector body (a float32 (m, d) array)::

        0       4     m        u32, rows
        4       4     d        u32, dimension
        8       4*m*d values   f32, row-major (m, d)

json (a payload, a list of payloads or a field index schema)::

    0       1     flavour    u8: 0 = JSON (RFC 8259) as orjson writes it; read with orjson
                                 1 = extended JSON as Python's json module writes it with
                                     allow_nan=True: may hold NaN, Infinity, -Infinity and
                                     integers of any size; read with json.loads
    1       4     length     u32, byte length of the text
    5       n     text       UTF-8 (flavour 1 is ASCII: non-ASCII is \\u-escaped)

payloads (UpsertPoints): one json holding a JSON array with one element per id, each an
object or null (no payload).

Flavour 1 exists because orjson, which is fast, is not lossless for everything a payload can
hold: it writes NaN and +-inf as null (the gRPC API accepts them as double_value), refuses
integers outside [-2**63, 2**64) (only the in-process Engine can pass those: the REST API
reads such numbers as floats, gRPC has i64), strings holding lone surrogates (Engine only;
flavour 1 \\u-escapes them) and nesting deeper than 254 levels (the REST parser accepts up
to 1024).  The encoder uses orjson and falls back to flavour 1 for the value concerned (the
whole payload list of an UpsertPoints), which must then be nested at most MAX_FALLBACK_DEPTH
levels (json.loads recurses) and have only string keys; anything else is refused with
ValueError before it is logged.  Values of other types are never written as something that
decode would refuse: tuples become lists, UUIDs strings and enums their value (as orjson
writes them), subclasses of str, int, float, dict and list their base type (numpy.float64 is
a float), and anything else (other numpy scalars, datetimes, dataclasses, sets, bytes) is
refused with TypeError; the REST and gRPC APIs only produce JSON types.  Floats round-trip
exactly (both writers use the shortest repr that reads back as the same double).

Decoded arrays
==============

Dense columns are read-only numpy views into the record's bytes (the apply path only reads
them, through fancy indexing, which copies).  Sparse and multivector items are writable,
native-endian copies: they are kept as they are by the segment's storage, and a view would
pin the whole record buffer for as long as any one of them lives.

Decoding allocates nothing whose size comes from an unchecked length: every length is checked
against the bytes that remain before anything is allocated, and every failure (truncation,
bad UTF-8 or JSON, unknown version, tag or kind, inconsistent counts, trailing bytes) is raised
as RecordFormatError naming the operation and field.  The encoder checks what the decoder
will check (counts, dtypes, shapes, JSON), so it never logs a record that cannot be read back.
"""

from __future__ import annotations

import array
import json
import math
import struct
import sys
import uuid
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import orjson

from tessera.ids import PointId
from tessera.shard import operations as ops

FORMAT_VERSION = 2
PICKLE_FORMAT_VERSION = 1

TAG_UPSERT_POINTS = 1
TAG_UPDATE_VECTORS = 2
TAG_DELETE_VECTORS = 3
TAG_SET_PAYLOAD = 4
TAG_OVERWRITE_PAYLOAD = 5
TAG_DELETE_PAYLOAD = 6
TAG_CLEAR_PAYLOAD = 7
TAG_DELETE_POINTS = 8
TAG_CREATE_FIELD_INDEX = 9
TAG_DELETE_FIELD_INDEX = 10
TAG_OPERATION_BATCH = 11
TAG_CREATE_VECTOR_NAME = 12
TAG_DELETE_VECTOR_NAME = 13

ID_INT = 0
ID_UUID = 1

COLUMN_DENSE = 0
COLUMN_OBJECT = 1

ITEM_NONE = 0
ITEM_SPARSE = 1
ITEM_MULTI = 2

JSON_ORJSON = 0
JSON_EXTENDED = 1

# Nesting allowed in a flavour-1 json value: json.loads recurses once per level, and the
# default recursion limit is 1000 frames, some of which the caller is using.
MAX_FALLBACK_DEPTH = 512

_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_EXTENDED_ENCODER = json.JSONEncoder(
    ensure_ascii=True, allow_nan=True, check_circular=True, separators=(",", ":")
)

_U8 = np.dtype("u1")
_U64 = np.dtype("<u8")
_BE_U64 = np.dtype(">u8")
_I32 = np.dtype("<i4")
_F32 = np.dtype("<f4")

_U32_STRUCT = struct.Struct("<I")
_HEAD_STRUCT = struct.Struct("<BB")
_DENSE_HEAD = struct.Struct("<BII")
_TWO_U32 = struct.Struct("<II")

_U32_MAX = 0xFFFFFFFF
_BIG_ENDIAN = sys.byteorder == "big"
assert array.array("Q").itemsize == 8


_TAG_NAMES = {
    TAG_UPSERT_POINTS: "UpsertPoints",
    TAG_UPDATE_VECTORS: "UpdateVectors",
    TAG_DELETE_VECTORS: "DeleteVectors",
    TAG_SET_PAYLOAD: "SetPayload",
    TAG_OVERWRITE_PAYLOAD: "OverwritePayload",
    TAG_DELETE_PAYLOAD: "DeletePayload",
    TAG_CLEAR_PAYLOAD: "ClearPayload",
    TAG_DELETE_POINTS: "DeletePoints",
    TAG_CREATE_FIELD_INDEX: "CreateFieldIndex",
    TAG_DELETE_FIELD_INDEX: "DeleteFieldIndex",
    TAG_OPERATION_BATCH: "OperationBatch",
    TAG_CREATE_VECTOR_NAME: "CreateVectorName",
    TAG_DELETE_VECTOR_NAME: "DeleteVectorName",
}


class RecordFormatError(ValueError):
    """A WAL record payload that this version cannot decode; the message names the field."""


# =========================================================================== encoding


def encode_record(record: ops.Record) -> bytes:
    """The payload bytes of one WAL record.  Raises ValueError (or TypeError for a value of
    the wrong type) for an operation that cannot be stored losslessly; nothing is written."""
    out: list[bytes | memoryview] = []
    if isinstance(record, ops.OperationBatch):
        out.append(_HEAD_STRUCT.pack(FORMAT_VERSION, TAG_OPERATION_BATCH))
        out.append(_u32(len(record.operations), "batch size"))
        for op in record.operations:
            if isinstance(op, ops.OperationBatch):
                raise ValueError("an OperationBatch cannot hold another OperationBatch")
            _encode_operation(out, op)
    else:
        out.append(bytes((FORMAT_VERSION,)))
        _encode_operation(out, record)
    return b"".join(out)


def _u32(value: int, what: str) -> bytes:
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"{what} {value} does not fit in an unsigned 32-bit integer")
    return _U32_STRUCT.pack(value)


def _encode_operation(out: list[bytes | memoryview], op: ops.Operation) -> None:
    match op:
        case ops.UpsertPoints():
            if len(op.payloads) != len(op.ids):
                raise ValueError(
                    f"UpsertPoints has {len(op.payloads)} payloads for {len(op.ids)} ids"
                )
            out.append(bytes((TAG_UPSERT_POINTS,)))
            _encode_ids(out, op.ids)
            _encode_vectors(out, op.vectors, len(op.ids))
            nones = _payload_nones(op.payloads)
            if nones is None:
                if not all(p is None or isinstance(p, dict) for p in op.payloads):
                    raise TypeError("UpsertPoints payloads must each be a dict or None")
                nones = op.payloads.count(None)  # dict subclasses: written as dicts
            _encode_json(out, op.payloads, nones)
        case ops.UpdateVectors():
            out.append(bytes((TAG_UPDATE_VECTORS,)))
            _encode_ids(out, op.ids)
            _encode_vectors(out, op.vectors, len(op.ids))
        case ops.DeleteVectors():
            out.append(bytes((TAG_DELETE_VECTORS,)))
            _encode_ids(out, op.ids)
            _encode_strings(out, op.names)
        case ops.SetPayload():
            out.append(bytes((TAG_SET_PAYLOAD,)))
            _encode_ids(out, op.ids)
            _encode_json(out, _payload_dict(op.payload))
            if op.key is None:
                out.append(b"\x00")
            else:
                out.append(b"\x01")
                _encode_string(out, op.key)
        case ops.OverwritePayload():
            out.append(bytes((TAG_OVERWRITE_PAYLOAD,)))
            _encode_ids(out, op.ids)
            _encode_json(out, _payload_dict(op.payload))
        case ops.DeletePayload():
            out.append(bytes((TAG_DELETE_PAYLOAD,)))
            _encode_ids(out, op.ids)
            _encode_strings(out, op.keys)
        case ops.ClearPayload():
            out.append(bytes((TAG_CLEAR_PAYLOAD,)))
            _encode_ids(out, op.ids)
        case ops.DeletePoints():
            out.append(bytes((TAG_DELETE_POINTS,)))
            _encode_ids(out, op.ids)
        case ops.CreateFieldIndex():
            out.append(bytes((TAG_CREATE_FIELD_INDEX,)))
            _encode_string(out, op.key)
            _encode_json(out, op.schema)
        case ops.DeleteFieldIndex():
            out.append(bytes((TAG_DELETE_FIELD_INDEX,)))
            _encode_string(out, op.key)
        case ops.CreateVectorName():
            out.append(bytes((TAG_CREATE_VECTOR_NAME,)))
            _encode_string(out, op.name)
            _encode_json(out, op.config)
        case ops.DeleteVectorName():
            out.append(bytes((TAG_DELETE_VECTOR_NAME,)))
            _encode_string(out, op.name)
        case _:
            raise TypeError(f"not a WAL operation: {type(op).__name__}")


def _payload_dict(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise TypeError(f"a payload must be a dict, not {type(payload).__name__}")
    return payload


def _encode_string(out: list[bytes | memoryview], text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"expected a str, not {type(text).__name__}")
    raw = text.encode("utf-8")
    out.append(_u32(len(raw), "string length"))
    out.append(raw)


def _encode_strings(out: list[bytes | memoryview], texts: list[str]) -> None:
    out.append(_u32(len(texts), "string count"))
    for text in texts:
        _encode_string(out, text)


def _encode_ids(out: list[bytes | memoryview], ids: list[PointId]) -> None:
    """Integer ids are anything with __index__ (numpy integers, bool: written as their value);
    array("Q") converts them in C and refuses UUIDs, which sends a batch to the slow path."""
    n = len(ids)
    out.append(_u32(n, "id count"))
    try:
        ints = _u64_bytes(ids)
    except TypeError:
        pass
    else:
        out.append(bytes(n))
        out.append(ints)
        return
    is_uuid = [isinstance(pid, uuid.UUID) for pid in ids]
    try:
        ints = _u64_bytes([pid for pid, u in zip(ids, is_uuid) if not u])
    except TypeError:
        bad = sorted({type(pid).__name__ for pid in ids if not isinstance(pid, uuid.UUID | int)})
        raise TypeError(f"point ids must be int or uuid.UUID, not {', '.join(bad)}") from None
    uuids = b"".join([pid.bytes for pid in ids if isinstance(pid, uuid.UUID)])
    out.append(bytes(is_uuid))
    out.append(ints)
    out.append(uuids)


def _u64_bytes(values: list[Any]) -> memoryview:
    """Little-endian u64s; TypeError for a value that is not an integer."""
    try:
        arr = array.array("Q", values)
    except OverflowError:
        raise ValueError("a point id is outside the unsigned 64-bit range") from None
    if _BIG_ENDIAN:  # pragma: no cover
        arr.byteswap()
    return memoryview(arr).cast("B")


def _raw(arr: npt.NDArray[Any], dtype: npt.DTypeLike) -> memoryview:
    """The bytes of `arr` in `dtype`, without a copy where it is already laid out so."""
    return np.ascontiguousarray(arr, dtype=dtype).reshape(-1).data.cast("B")


def _encode_vectors(
    out: list[bytes | memoryview], vectors: dict[str, ops.VectorColumn], n: int
) -> None:
    out.append(_u32(len(vectors), "vector name count"))
    for name, column in vectors.items():
        _encode_string(out, name)
        if isinstance(column, ops.DenseColumn):
            _encode_dense(out, name, column, n)
        elif isinstance(column, ops.ObjectColumn):
            _encode_objects(out, name, column, n)
        else:
            raise TypeError(f"vector `{name}`: not a vector column: {type(column).__name__}")


def _encode_dense(
    out: list[bytes | memoryview], name: str, column: ops.DenseColumn, n: int
) -> None:
    present, values = column.present, column.values
    if not isinstance(present, np.ndarray) or present.dtype != np.bool_ or present.shape != (n,):
        raise ValueError(f"vector `{name}`: `present` must be a bool array of shape ({n},)")
    if (
        not isinstance(values, np.ndarray)
        or values.dtype != np.float32
        or values.ndim != 2
        or values.shape[0] != n
    ):
        raise ValueError(f"vector `{name}`: dense values must be a float32 array of shape ({n}, d)")
    d = values.shape[1]
    if d > _U32_MAX:
        raise ValueError(f"vector `{name}`: dimension {d} does not fit in 32 bits")
    out.append(_DENSE_HEAD.pack(COLUMN_DENSE, n, d))
    out.append(_raw(present, np.bool_))
    out.append(_raw(values, _F32))


def _encode_objects(
    out: list[bytes | memoryview], name: str, column: ops.ObjectColumn, n: int
) -> None:
    items = column.values
    if len(items) != n:
        raise ValueError(f"vector `{name}`: {len(items)} items for {n} ids")
    kinds = bytearray(n)
    bodies: list[bytes | memoryview] = []
    for i, item in enumerate(items):
        if item is None:
            continue
        if isinstance(item, tuple):
            if len(item) != 2:
                raise ValueError(f"vector `{name}`: a sparse vector is an (indices, values) pair")
            indices, vals = item
            if (
                not isinstance(indices, np.ndarray)
                or not isinstance(vals, np.ndarray)
                or indices.dtype != np.int32
                or vals.dtype != np.float32
                or indices.ndim != 1
                or indices.shape != vals.shape
            ):
                raise ValueError(
                    f"vector `{name}`: a sparse vector must be int32 indices and float32 "
                    "values of the same length"
                )
            kinds[i] = ITEM_SPARSE
            bodies.append(_u32(len(indices), "sparse vector length"))
            bodies.append(_raw(indices, _I32))
            bodies.append(_raw(vals, _F32))
        elif isinstance(item, np.ndarray):
            if item.dtype != np.float32 or item.ndim != 2:
                raise ValueError(f"vector `{name}`: a multivector must be a float32 (m, d) array")
            m, d = item.shape
            if m > _U32_MAX or d > _U32_MAX:
                raise ValueError(f"vector `{name}`: multivector shape {item.shape} is too large")
            kinds[i] = ITEM_MULTI
            bodies.append(_TWO_U32.pack(m, d))
            bodies.append(_raw(item, _F32))
        else:
            raise TypeError(f"vector `{name}`: unsupported vector item {type(item).__name__}")
    out.append(bytes((COLUMN_OBJECT,)))
    out.append(_u32(n, "item count"))
    out.append(bytes(kinds))
    out.extend(bodies)


def _encode_json(out: list[bytes | memoryview], value: Any, nulls: int = 0) -> None:
    """`nulls`: how many `null`s the text has for sure (the None items of a payload list),
    so that the NaN check runs only when there could be more."""
    try:
        text = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        text = None
    # orjson writes NaN and +-inf as null: look for them only where a null could be one.
    if text is not None and (text.count(b"null") == nulls or not _has_nonfinite(value)):
        out.append(bytes((JSON_ORJSON,)) + _u32(len(text), "JSON length"))
        out.append(text)
        return
    _check_extended(value)
    try:
        extended = _EXTENDED_ENCODER.encode(value).encode("ascii")
    except RecursionError:  # pragma: no cover - bounded by _check_extended
        raise ValueError("a JSON value is nested too deeply to be stored") from None
    out.append(bytes((JSON_EXTENDED,)) + _u32(len(extended), "JSON length"))
    out.append(extended)


def _has_nonfinite(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return False


def _check_extended(value: Any) -> None:
    """What the fallback writer needs: string keys (json.dumps would turn 1 into "1") and
    bounded nesting (json.loads recurses)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if depth > MAX_FALLBACK_DEPTH:
                break
            for key, item in v.items():
                if not isinstance(key, str):
                    raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
                stack.append((item, depth + 1))
        elif isinstance(v, (list, tuple)):
            if depth > MAX_FALLBACK_DEPTH:
                break
            stack.extend((item, depth + 1) for item in v)
    else:
        return
    raise ValueError(
        f"a JSON value that orjson cannot write is nested deeper than {MAX_FALLBACK_DEPTH} levels"
    )


# =========================================================================== decoding


def decode_record(data: bytes) -> ops.Record:
    """The operation in one WAL record payload; RecordFormatError for anything else."""
    if not isinstance(data, bytes):
        data = bytes(data)  # views into a bytes object stay valid and read-only
    if not data:
        raise RecordFormatError("empty WAL record")
    version = data[0]
    if version == PICKLE_FORMAT_VERSION:
        raise RecordFormatError(
            "WAL record format 1 (pickle) is no longer readable; open this storage with a "
            "Tessera release from before format 2 and let it flush (or snapshot) the WAL "
            "into segments, then upgrade"
        )
    if version != FORMAT_VERSION:
        raise RecordFormatError(
            f"unknown WAL record format {version} (this version reads format {FORMAT_VERSION})"
        )
    r = _Reader(data, 1)
    tag = r.u8("operation tag")
    record: ops.Record
    if tag == TAG_OPERATION_BATCH:
        count = r.u32("batch size")
        operations: list[ops.Operation] = []
        for i in range(count):
            inner = r.u8(f"operation tag of batch item {i}")
            if inner == TAG_OPERATION_BATCH:
                raise RecordFormatError(f"batch item {i} is a nested OperationBatch")
            operations.append(_decode_operation(r, inner, f"batch item {i}"))
        record = ops.OperationBatch(operations)
    else:
        record = _decode_operation(r, tag, "record")
    if r.pos != len(data):
        raise RecordFormatError(
            f"{len(data) - r.pos} trailing bytes after the {_TAG_NAMES[tag]} record "
            f"(at offset {r.pos} of {len(data)})"
        )
    return record


def _decode_operation(r: _Reader, tag: int, where: str) -> ops.Operation:
    name = _TAG_NAMES.get(tag)
    if name is None or tag == TAG_OPERATION_BATCH:
        raise RecordFormatError(f"unknown operation tag {tag} in {where}")
    try:
        return _decode_fields(r, tag)
    except RecordFormatError as exc:
        # Field labels are static (cheap on the good path); the context is added here.
        raise RecordFormatError(f"{name} ({where}): {exc}") from None


def _decode_fields(r: _Reader, tag: int) -> ops.Operation:
    if tag == TAG_CREATE_FIELD_INDEX:
        return ops.CreateFieldIndex(r.string("key"), r.json("schema"))
    if tag == TAG_DELETE_FIELD_INDEX:
        return ops.DeleteFieldIndex(r.string("key"))
    if tag == TAG_CREATE_VECTOR_NAME:
        name = r.string("vector name")
        config = r.json("vector config")
        if not isinstance(config, dict):
            r.fail("vector config is not an object")
        return ops.CreateVectorName(name, config)
    if tag == TAG_DELETE_VECTOR_NAME:
        return ops.DeleteVectorName(r.string("vector name"))
    ids = r.ids()
    n = len(ids)
    if tag == TAG_UPSERT_POINTS:
        vectors = r.vectors(n)
        return ops.UpsertPoints(ids, vectors, r.payloads(n))
    if tag == TAG_UPDATE_VECTORS:
        return ops.UpdateVectors(ids, r.vectors(n))
    if tag == TAG_DELETE_VECTORS:
        return ops.DeleteVectors(ids, r.strings("vector names"))
    if tag == TAG_SET_PAYLOAD:
        payload = r.payload()
        has_key = r.u8("key flag")
        if has_key > 1:
            r.fail(f"key flag is {has_key}, not 0 or 1")
        key = r.string("key") if has_key else None
        return ops.SetPayload(ids, payload, key)
    if tag == TAG_OVERWRITE_PAYLOAD:
        return ops.OverwritePayload(ids, r.payload())
    if tag == TAG_DELETE_PAYLOAD:
        return ops.DeletePayload(ids, r.strings("keys"))
    if tag == TAG_CLEAR_PAYLOAD:
        return ops.ClearPayload(ids)
    assert tag == TAG_DELETE_POINTS
    return ops.DeletePoints(ids)


class _Reader:
    """Bounds-checked reads from a record; every failure is a RecordFormatError whose message
    names the field (callers prefix the operation, vector and item it belongs to)."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.view = memoryview(data)
        self.pos = pos

    def fail(self, message: str) -> NoReturn:
        raise RecordFormatError(message)

    def need(self, size: int, what: str) -> int:
        """Reserves `size` bytes for `what` and returns where they start."""
        start = self.pos
        if size > len(self.data) - start:
            self.fail(
                f"truncated WAL record: {what} needs {size} bytes at offset {start}, "
                f"only {len(self.data) - start} left"
            )
        self.pos = start + size
        return start

    def u8(self, what: str) -> int:
        pos = self.pos
        if pos >= len(self.data):
            self.need(1, what)
        self.pos = pos + 1
        return self.data[pos]

    def u32(self, what: str) -> int:
        pos = self.pos
        if pos + 4 > len(self.data):
            self.need(4, what)
        self.pos = pos + 4
        value: int = _U32_STRUCT.unpack_from(self.data, pos)[0]
        return value

    def array(self, dtype: np.dtype[Any], count: int, what: str) -> npt.NDArray[Any]:
        """A read-only view of `count` items; checked against what remains first."""
        start = self.need(count * dtype.itemsize, what)
        if count == 0:
            return np.empty(0, dtype=dtype)
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=start)

    def kinds(self, count: int, limit: int, what: str) -> tuple[int, bytes]:
        """`count` kind bytes, each at most `limit`: (offset, the bytes)."""
        start = self.need(count, what)
        raw = self.data[start : start + count]
        known = raw.count(0)
        if known != count:  # else all zero, the common case for id kinds
            known += raw.count(1) + (raw.count(2) if limit >= 2 else 0)
        if known != count:
            self.fail(f"unknown {what} value {max(raw)} (at most {limit} is defined)")
        return start, raw

    def string(self, what: str) -> str:
        size = self.u32(f"length of {what}")
        start = self.need(size, what)
        try:
            return str(self.view[start : start + size], "utf-8")
        except UnicodeDecodeError as exc:
            self.fail(f"{what} is not valid UTF-8: {exc}")

    def strings(self, what: str) -> list[str]:
        count = self.u32(f"count of {what}")
        return [self.string(what) for _ in range(count)]

    def json(self, what: str) -> Any:
        flavour = self.u8(f"JSON flavour of {what}")
        size = self.u32(f"length of {what}")
        start = self.need(size, what)
        text = self.view[start : start + size]
        if flavour == JSON_ORJSON:
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                self.fail(f"{what} is not valid JSON: {exc}")
        if flavour == JSON_EXTENDED:
            try:
                return json.loads(str(text, "ascii"))
            except (ValueError, RecursionError) as exc:
                self.fail(f"{what} is not valid extended JSON: {exc}")
        self.fail(f"unknown JSON flavour {flavour} for {what}")

    def ids(self) -> list[PointId]:
        n = self.u32("id count")
        _, kinds = self.kinds(n, ID_UUID, "id kind")
        n_uuid = kinds.count(ID_UUID)
        if not n_uuid:
            start = self.need(8 * n, "integer ids")
            result: list[PointId] = np.frombuffer(self.data, _U64, n, start).tolist() if n else []
            return result
        ints = self.array(_U64, n - n_uuid, "integer ids")
        halves = self.array(_BE_U64, 2 * n_uuid, "UUIDs").tolist()
        make = _uuid_from_int
        uuids: list[PointId] = [make((hi << 64) | lo) for hi, lo in zip(halves[::2], halves[1::2])]
        if n_uuid == n:
            return uuids
        int_iter = iter(ints.tolist())
        uuid_iter = iter(uuids)
        return [next(uuid_iter) if k else next(int_iter) for k in kinds]

    def vectors(self, n: int) -> dict[str, ops.VectorColumn]:
        count = self.u32("vector name count")
        columns: dict[str, ops.VectorColumn] = {}
        for i in range(count):
            name = self.string(f"vector name {i}")
            if name in columns:
                self.fail(f"vector `{name}` appears twice")
            try:
                kind = self.u8("column kind")
                if kind == COLUMN_DENSE:
                    columns[name] = self.dense(n)
                elif kind == COLUMN_OBJECT:
                    columns[name] = self.objects(n)
                else:
                    self.fail(f"unknown column kind {kind}")
            except RecordFormatError as exc:
                self.fail(f"vector `{name}`: {exc}")
        return columns

    def dense(self, n: int) -> ops.DenseColumn:
        rows, d = _TWO_U32.unpack_from(self.data, self.need(8, "dense column shape"))
        if rows != n:
            self.fail(f"dense column has {rows} rows for {n} ids")
        start, _ = self.kinds(n, 1, "presence flag")
        present = np.frombuffer(self.data, np.bool_, n, start) if n else np.empty(0, np.bool_)
        values = self.array(_F32, n * d, "dense values").reshape(n, d)
        return ops.DenseColumn(present, values)

    def objects(self, n: int) -> ops.ObjectColumn:
        count = self.u32("item count")
        if count != n:
            self.fail(f"object column has {count} items for {n} ids")
        _, kinds = self.kinds(n, ITEM_MULTI, "item kind")
        items: list[Any] = [None] * n
        for i, kind in enumerate(kinds):
            if kind == ITEM_NONE:
                continue
            try:
                items[i] = self.sparse() if kind == ITEM_SPARSE else self.multi()
            except RecordFormatError as exc:
                self.fail(f"item {i}: {exc}")
        return ops.ObjectColumn(items)

    def sparse(self) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        k = self.u32("sparse vector length")
        indices = self.array(_I32, k, "sparse indices").astype(np.int32)
        values = self.array(_F32, k, "sparse values").astype(np.float32)
        return indices, values

    def multi(self) -> npt.NDArray[np.float32]:
        m, d = _TWO_U32.unpack_from(self.data, self.need(8, "multivector shape"))
        flat = self.array(_F32, m * d, "multivector values")
        return flat.reshape(m, d).astype(np.float32)

    def payload(self) -> dict[str, Any]:
        value = self.json("payload")
        if type(value) is not dict:
            self.fail(f"payload is a JSON {type(value).__name__}, not an object")
        return value

    def payloads(self, n: int) -> list[dict[str, Any] | None]:
        value = self.json("payloads")
        if type(value) is not list or len(value) != n:
            self.fail(f"payloads must be a JSON array of {n} payloads")
        if _payload_nones(value) is None:
            self.fail("payloads: each payload must be a JSON object or null")
        return value


def _uuid_fast(value: int) -> uuid.UUID:
    """uuid.UUID(int=value) for a value known to be in range, built the way UUID.__setstate__
    (unpickling) builds one: twice as fast, which matters for 100k UUID ids."""
    u = _new_object(uuid.UUID)
    _set_attr(u, "int", value)
    _set_attr(u, "is_safe", uuid.SafeUUID.unknown)
    return u


def _uuid_checked(value: int) -> uuid.UUID:
    return uuid.UUID(int=value)


_new_object = object.__new__
_set_attr = object.__setattr__


def _fast_uuids_work() -> bool:
    """Whether _uuid_fast makes the same UUID as the constructor on this Python."""
    value = 0x936DA01F9ABD4D9D80C702AF85C822A8
    try:
        fast, slow = _uuid_fast(value), uuid.UUID(int=value)
        return fast == slow and str(fast) == str(slow) and hash(fast) == hash(slow)
    except (AttributeError, TypeError):  # pragma: no cover - a Python with other internals
        return False


_uuid_from_int = _uuid_fast if _fast_uuids_work() else _uuid_checked


def _payload_nones(items: list[Any]) -> int | None:
    """How many items are None if every item is a plain dict or None, else None: one pass in C
    for the usual lists (all dicts, all None), where comparing mismatches would cost most."""
    n = len(items)
    if n and items[0] is None:
        nones = items.count(None)
        if nones == n:
            return nones
        dicts = list(map(type, items)).count(dict)
    else:
        dicts = list(map(type, items)).count(dict)
        if dicts == n:
            return 0
        nones = items.count(None)
    return nones if dicts + nones == n else None
