"""The WAL record codec (tessera.shard.op_codec): exact round trips of every operation, the
refusal of the old pickle format, and decoding of corrupt or hostile bytes, which must give a
record or RecordFormatError and nothing else."""

from __future__ import annotations

import math
import pickle  # noqa: S403 - only to write old (format 1) records and check they are refused
import random
import struct
import time
import tracemalloc
import uuid
from typing import Any

import numpy as np
import pytest

from tessera.shard import op_codec
from tessera.shard import operations as ops
from tessera.shard.op_codec import RecordFormatError

U64_MAX = 2**64 - 1

ID_SETS: dict[str, list[ops.PointId]] = {
    "int": [0, 1, 7, 2**53 + 1, U64_MAX],
    "uuid": [
        uuid.UUID("00000000-0000-0000-0000-000000000005"),
        uuid.UUID("936da01f-9abd-4d9d-80c7-02af85c822a8"),
        uuid.UUID(int=2**128 - 1),
        uuid.UUID(int=0),
        uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
    ],
    "mixed": [
        5,
        uuid.UUID("00000000-0000-0000-0000-000000000005"),
        U64_MAX,
        uuid.UUID("936da01f-9abd-4d9d-80c7-02af85c822a8"),
        0,
    ],
}
N = 5

PAYLOADS: list[dict[str, Any] | None] = [
    {"city": "Zürich", "emoji": "🦀 ok", "cjk": "東京", "nul": "a\x00b", "": "empty key"},
    None,
    {},
    {"nested": {"a": [1, {"b": [None, True, False, "x"]}], "deep": [[[[{"z": 1}]]]]}},
    {
        "u64": U64_MAX,
        "i64": -(2**63),
        "floats": [0.1, 1e308, -0.0, 5e-324, 1.7976931348623157e308, 2.5, -1e-300],
        "whole": 3.0,
    },
]


# --------------------------------------------------------------------------- helpers


def nest(depth: int) -> Any:
    """A JSON value nested `depth` levels deep."""
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return value


def assert_json_equal(a: Any, b: Any) -> None:
    """Equal values of equal types; floats bit for bit (so -0.0 and NaN are checked too)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_json_equal(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_json_equal(x, y)
    else:
        assert a == b


def assert_array_equal(a: Any, b: Any) -> None:
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    assert a.tobytes() == b.tobytes()


def assert_ids_equal(a: list[ops.PointId], b: list[ops.PointId]) -> None:
    assert [type(x) for x in a] == [type(x) for x in b]
    assert a == b


def assert_column_equal(a: ops.VectorColumn, b: ops.VectorColumn) -> None:
    assert type(a) is type(b)
    if isinstance(a, ops.DenseColumn):
        assert isinstance(b, ops.DenseColumn)
        assert_array_equal(a.present, b.present)
        assert_array_equal(a.values, b.values)
        return
    assert isinstance(b, ops.ObjectColumn)
    assert len(a.values) == len(b.values)
    for x, y in zip(a.values, b.values):
        if x is None:
            assert y is None
        elif isinstance(x, tuple):
            assert type(y) is tuple and len(y) == 2
            assert_array_equal(x[0], y[0])
            assert_array_equal(x[1], y[1])
        else:
            assert_array_equal(x, y)


def assert_vectors_equal(a: dict[str, ops.VectorColumn], b: dict[str, ops.VectorColumn]) -> None:
    assert list(a) == list(b)
    for name in a:
        assert_column_equal(a[name], b[name])


def assert_op_equal(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    match a:
        case ops.OperationBatch():
            assert len(a.operations) == len(b.operations)
            for x, y in zip(a.operations, b.operations):
                assert_op_equal(x, y)
        case ops.UpsertPoints():
            assert_ids_equal(a.ids, b.ids)
            assert_vectors_equal(a.vectors, b.vectors)
            assert_json_equal(a.payloads, b.payloads)
        case ops.UpdateVectors():
            assert_ids_equal(a.ids, b.ids)
            assert_vectors_equal(a.vectors, b.vectors)
        case ops.DeleteVectors():
            assert_ids_equal(a.ids, b.ids)
            assert_json_equal(a.names, b.names)
        case ops.SetPayload():
            assert_ids_equal(a.ids, b.ids)
            assert_json_equal(a.payload, b.payload)
            assert a.key == b.key and type(a.key) is type(b.key)
        case ops.OverwritePayload():
            assert_ids_equal(a.ids, b.ids)
            assert_json_equal(a.payload, b.payload)
        case ops.DeletePayload():
            assert_ids_equal(a.ids, b.ids)
            assert_json_equal(a.keys, b.keys)
        case ops.ClearPayload() | ops.DeletePoints():
            assert_ids_equal(a.ids, b.ids)
        case ops.CreateFieldIndex():
            assert a.key == b.key
            assert_json_equal(a.schema, b.schema)
        case ops.DeleteFieldIndex():
            assert a.key == b.key
        case _:
            raise AssertionError(f"unexpected {type(a)}")


def round_trip(record: ops.Record) -> ops.Record:
    data = ops.encode(record)
    assert data[0] == op_codec.FORMAT_VERSION
    decoded = ops.decode(data)
    assert_op_equal(record, decoded)
    assert ops.encode(decoded) == data  # the encoding is deterministic
    return decoded


def dense(n: int, d: int, absent: tuple[int, ...] = ()) -> ops.DenseColumn:
    rows = [i for i in absent if i < n]
    present = np.ones(n, dtype=bool)
    present[rows] = False
    values = (np.arange(n * d, dtype=np.float32).reshape(n, d) - 3.5) / 8
    values[rows] = 0.0
    return ops.DenseColumn(present, values)


def sparse(indices: list[int], values: list[float]) -> tuple[Any, Any]:
    # As vectors_parse.parse_sparse builds them: u32 indices sorted, stored as int32.
    return (
        np.asarray(indices, dtype=np.uint32).astype(np.int32),
        np.asarray(values, dtype=np.float32),
    )


def multi(m: int, d: int, start: float = 0.0) -> Any:
    return np.stack([np.arange(d, dtype=np.float32) + start + i for i in range(m)])


def all_vectors() -> dict[str, ops.VectorColumn]:
    return {
        "": dense(N, 4, absent=(1, 3)),
        "full": dense(N, 3),
        "sparse": ops.ObjectColumn(
            [
                sparse([1, 5, 2**32 - 1], [0.5, -1.0, 3.25]),
                None,
                sparse([], []),
                sparse([0], [float("nan")]),
                sparse([7, 9], [1e-45, 3.4e38]),
            ]
        ),
        "colbert": ops.ObjectColumn([multi(2, 3), multi(1, 3, 9.0), None, None, multi(4, 3, -2.0)]),
        "névé 名前": ops.ObjectColumn([None] * N),
    }


def every_operation(ids: list[ops.PointId]) -> list[ops.Operation]:
    return [
        ops.UpsertPoints(list(ids), all_vectors(), list(PAYLOADS)),
        ops.UpsertPoints(list(ids), {}, [None] * len(ids)),
        ops.UpdateVectors(list(ids), all_vectors()),
        ops.UpdateVectors(list(ids), {"only": dense(len(ids), 2, absent=(0,))}),
        ops.DeleteVectors(list(ids), ["", "sparse", "névé"]),
        ops.DeleteVectors(list(ids), []),
        ops.SetPayload(list(ids), {"a": {"b": 1}, "c": [1.5, "x"]}, None),
        ops.SetPayload(list(ids), {"x": 1}, "nested.path[0]"),
        ops.SetPayload(list(ids), {}, ""),
        ops.OverwritePayload(list(ids), PAYLOADS[0] or {}),
        ops.OverwritePayload(list(ids), {}),
        ops.DeletePayload(list(ids), ["city", "a.b", "名前"]),
        ops.DeletePayload(list(ids), []),
        ops.ClearPayload(list(ids)),
        ops.DeletePoints(list(ids)),
    ]


SCHEMAS: list[Any] = [
    "keyword",
    {"type": "text", "tokenizer": "word", "min_token_len": 2, "lowercase": True},
    {"type": "integer", "range": True, "lookup": False},
    None,
    ["odd", 1, 2.5],
]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", list(ID_SETS))
def test_every_point_operation_round_trips(kind: str) -> None:
    for op in every_operation(ID_SETS[kind]):
        round_trip(op)


def test_empty_id_lists_round_trip() -> None:
    for op in every_operation([]):
        if isinstance(op, ops.UpsertPoints | ops.UpdateVectors):
            op = type(op)(**{**op.__dict__, "vectors": {"v": dense(0, 3)}})
            if isinstance(op, ops.UpsertPoints):
                op = ops.UpsertPoints([], op.vectors, [])
        round_trip(op)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_field_index_operations_round_trip(schema: Any) -> None:
    round_trip(ops.CreateFieldIndex("meta.tags[]", schema))
    round_trip(ops.CreateFieldIndex("", schema))
    round_trip(ops.DeleteFieldIndex("meta.tags[]"))
    round_trip(ops.DeleteFieldIndex("ключ"))


def test_batch_round_trips() -> None:
    operations: list[ops.Operation] = []
    for ids in ID_SETS.values():
        operations.extend(every_operation(ids))
    operations += [ops.CreateFieldIndex("k", SCHEMAS[1]), ops.DeleteFieldIndex("k")]
    decoded = round_trip(ops.OperationBatch(operations))
    assert isinstance(decoded, ops.OperationBatch) and len(decoded.operations) == len(operations)
    round_trip(ops.OperationBatch([]))
    round_trip(ops.OperationBatch([ops.DeletePoints([1])]))


def test_decoded_arrays_are_what_apply_expects() -> None:
    decoded = round_trip(ops.UpsertPoints(ID_SETS["int"], all_vectors(), list(PAYLOADS)))
    assert isinstance(decoded, ops.UpsertPoints)
    column = decoded.vectors[""]
    assert isinstance(column, ops.DenseColumn)
    assert column.present.dtype == np.bool_ and column.values.dtype == np.float32
    assert column.present.tolist() == [True, False, True, False, True]
    sparse_col = decoded.vectors["sparse"]
    assert isinstance(sparse_col, ops.ObjectColumn)
    indices, values = sparse_col.values[0]
    # Sparse and multivector items are kept by the storage: own, writable, native arrays.
    for arr in (indices, values, decoded.vectors["colbert"].values[0]):  # type: ignore[union-attr]
        assert arr.flags.writeable and arr.flags.owndata and arr.dtype.isnative
    assert indices.tolist() == [1, 5, -1]  # u32 2**32-1 as vectors_parse stores it (int32)


@pytest.mark.parametrize(
    "payload",
    [
        {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "null": None},
        {"big": 2**64, "neg": -(2**63) - 1, "huge": 3**200, "ok": 1},
        {"lone surrogate": "\ud800", "pair": "😀"},
        {"deep": nest(300), "nan": [float("nan")]},
    ],
    ids=["nonfinite", "bigint", "surrogate", "deep"],
)
def test_payloads_orjson_cannot_write_round_trip(payload: dict[str, Any]) -> None:
    round_trip(ops.SetPayload([1], payload, None))
    round_trip(ops.OverwritePayload([1], payload))
    round_trip(ops.UpsertPoints([1, 2, 3], {}, [None, payload, {"x": 0.1}]))
    round_trip(ops.CreateFieldIndex("k", payload))


def test_deep_payloads_use_the_fallback_up_to_its_limit() -> None:
    # orjson stops at 254 levels; the REST parser accepts up to 1024.
    payload = {"deep": nest(400)}
    data = ops.encode(ops.OverwritePayload([1], payload))
    # version, tag, u32 count, kind, u64 id, then the payload's flavour byte
    assert data[15] == op_codec.JSON_EXTENDED
    round_trip(ops.OverwritePayload([1], payload))
    round_trip(ops.OverwritePayload([1], {"nan": float("nan"), "deep": nest(500)}))
    with pytest.raises(ValueError, match="nested deeper"):
        ops.encode(ops.OverwritePayload([1], {"deep": nest(600)}))


def test_nulls_in_payloads_are_not_mistaken_for_nan() -> None:
    record = ops.UpsertPoints([1, 2], {}, [None, {"a": None, "s": "null"}])
    data = ops.encode(record)
    assert b"NaN" not in data
    decoded = round_trip(record)
    assert isinstance(decoded, ops.UpsertPoints)
    assert decoded.payloads[1] == {"a": None, "s": "null"}


def test_integers_of_other_types_are_written_as_ints() -> None:
    decoded = ops.decode(ops.encode(ops.DeletePoints([np.uint64(U64_MAX), np.int64(3)])))  # type: ignore[list-item]
    assert isinstance(decoded, ops.DeletePoints)
    assert_ids_equal(decoded.ids, [U64_MAX, 3])


def test_many_points_decode_in_bulk() -> None:
    n, d = 100_000, 16
    ids: list[ops.PointId] = list(range(U64_MAX - n + 1, U64_MAX + 1))
    column = ops.DenseColumn(np.ones(n, dtype=bool), np.ones((n, d), dtype=np.float32))
    data = ops.encode(ops.UpsertPoints(ids, {"": column}, [None] * n))
    started = time.perf_counter()
    decoded = ops.decode(data)
    elapsed = time.perf_counter() - started
    assert isinstance(decoded, ops.UpsertPoints) and decoded.ids == ids
    assert elapsed < 0.5, f"decoding 100k points took {elapsed:.3f}s"


# --------------------------------------------------------------------------- no pickles


class _Trap:
    """Unpickling this calls _sprung: the kind of record a stranger's snapshot could hold."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_sprung, ("unpickled",))


SPRUNG: list[str] = []


def _sprung(value: str) -> str:
    SPRUNG.append(value)
    return value


def test_old_pickle_records_are_refused_without_unpickling() -> None:
    old = b"\x01" + pickle.dumps(ops.DeletePoints([1, 2]), protocol=5)
    with pytest.raises(RecordFormatError, match=r"format 1 \(pickle\) is no longer readable"):
        ops.decode(old)
    trap = b"\x01" + pickle.dumps(_Trap(), protocol=5)
    with pytest.raises(RecordFormatError, match="pickle"):
        ops.decode(trap)
    assert SPRUNG == []


def test_encoded_records_hold_no_pickle() -> None:
    operations = [*every_operation(ID_SETS["mixed"]), ops.CreateFieldIndex("k", SCHEMAS[1])]
    for record in [*operations, ops.OperationBatch(operations)]:
        data = ops.encode(record)
        for header in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
            assert header not in data
        for name in (b"tessera", b"numpy", b"UpsertPoints", b"builtins", b"uuid\n"):
            assert name not in data
    assert not hasattr(op_codec, "pickle") and not hasattr(ops, "pickle")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty WAL record"),
        (b"\x00\x08", "unknown WAL record format 0"),
        (b"\x03\x08", "unknown WAL record format 3"),
        (b"\xff", "unknown WAL record format 255"),
        (b"\x02", "operation tag"),
        (b"\x02\x00", "unknown operation tag 0"),
        (b"\x02\x0e", "unknown operation tag 14"),
        (b"\x02\xff\x00\x00\x00\x00", "unknown operation tag 255"),
        (b"\x02\x0b\x01\x00\x00\x00\x0b\x00\x00\x00\x00", "nested OperationBatch"),
        (b"\x02\x0b\x01\x00\x00\x00\x63", "unknown operation tag 99 in batch item 0"),
        (b"\x02\x08\x01\x00\x00\x00\x02" + bytes(8), "unknown id kind"),
        (b"\x02\x08\x02\x00\x00\x00\x00\x00" + bytes(8), "integer ids"),
        (b"\x02\x0a\x02\x00\x00\x00\xff\xfe", "not valid UTF-8"),
        (b"\x02\x08\x00\x00\x00\x00\x00", "1 trailing bytes"),
        (b"\x02\x09\x01\x00\x00\x00k\x00\x02\x00\x00\x00{]", "not valid JSON"),
        (b"\x02\x09\x01\x00\x00\x00k\x01\x03\x00\x00\x00Nan", "not valid extended JSON"),
        (b"\x02\x09\x01\x00\x00\x00k\x07\x00\x00\x00\x00", "unknown JSON flavour 7"),
        (b"\x02\x05\x00\x00\x00\x00\x00\x02\x00\x00\x00[]", "not an object"),
    ],
)
def test_bad_records_are_refused_by_name(data: bytes, message: str) -> None:
    with pytest.raises(RecordFormatError, match=message):
        ops.decode(data)


def test_inconsistent_columns_are_refused() -> None:
    good = ops.encode(ops.UpsertPoints([1, 2], {"v": dense(2, 2)}, [None, None]))
    # The column's row count (u32 after the kind byte) must match the ids.
    at = good.index(b"v") + 2
    bad = good[:at] + struct.pack("<I", 3) + good[at + 4 :]
    with pytest.raises(RecordFormatError, match="3 rows for 2 ids"):
        ops.decode(bad)
    # Presence flags are 0 or 1.
    flags = at + 8
    with pytest.raises(RecordFormatError, match="presence flag"):
        ops.decode(good[:flags] + b"\x02" + good[flags + 1 :])
    # Payloads: one per id.
    short = ops.encode(ops.UpsertPoints([1, 2], {}, [None, None])).replace(
        b"[null,null]", b"[null,7]  "
    )
    with pytest.raises(RecordFormatError, match="JSON object or null"):
        ops.decode(short.replace(b"\x0b\x00\x00\x00", b"\x08\x00\x00\x00").rstrip(b" "))


def test_huge_lengths_are_checked_before_allocating() -> None:
    big = struct.pack("<I", 0xFFFFFFFF)
    cases = [
        b"\x02\x08" + big,  # 4G ids
        b"\x02\x0a" + big + b"abc",  # a 4 GB string
        b"\x02\x01\x01\x00\x00\x00\x00" + bytes(8) + b"\x01\x00\x00\x00\x00\x01\x00"
        b"\x00\x00\x00\x00\x00\x00" + big,  # shape (1, 4G) dense column
        b"\x02\x02\x01\x00\x00\x00\x00" + bytes(8) + b"\x01\x00\x00\x00\x00\x01\x01"
        b"\x00\x00\x00\x02" + big + big,  # a (4G, 4G) multivector
        b"\x02\x02\x01\x00\x00\x00\x00" + bytes(8) + b"\x01\x00\x00\x00\x00\x01\x01"
        b"\x00\x00\x00\x01" + big,  # a sparse vector of 4G entries
        b"\x02\x09\x00\x00\x00\x00\x00" + big,  # 4 GB of JSON
        b"\x02\x0b" + big,  # a batch of 4G operations, none present
        b"\x02\x03\x00\x00\x00\x00" + big,  # 4G names
    ]
    tracemalloc.start()
    try:
        for data in cases:
            with pytest.raises(RecordFormatError, match="truncated"):
                ops.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# --------------------------------------------------------------------------- fuzzing


def fuzz_corpus() -> list[bytes]:
    small = [
        ops.UpsertPoints(ID_SETS["mixed"], all_vectors(), list(PAYLOADS)),
        ops.UpdateVectors(ID_SETS["uuid"], {"s": all_vectors()["sparse"]}),
        ops.SetPayload([3, 4], {"k": [1, 2.5, "x"], "n": None}, "a.b"),
        ops.SetPayload([3], {"nan": float("nan")}, None),
        ops.DeletePayload([uuid.UUID(int=9)], ["a", "b"]),
        ops.CreateFieldIndex("k", SCHEMAS[1]),
        ops.DeleteFieldIndex("k"),
        ops.OperationBatch([ops.DeletePoints([1, 2]), ops.DeleteVectors([1], ["x", ""])]),
    ]
    return [ops.encode(r) for r in small]


def check_decodes_or_refuses(data: bytes) -> None:
    try:
        record = ops.decode(data)
    except RecordFormatError:
        return
    # Anything accepted is a well-formed record: it encodes again and survives a round trip.
    assert isinstance(
        record,
        ops.OperationBatch
        | ops.UpsertPoints
        | ops.UpdateVectors
        | ops.DeleteVectors
        | ops.SetPayload
        | ops.OverwritePayload
        | ops.DeletePayload
        | ops.ClearPayload
        | ops.DeletePoints
        | ops.CreateFieldIndex
        | ops.DeleteFieldIndex,
    )
    assert_op_equal(record, ops.decode(ops.encode(record)))


def test_every_truncation_is_refused() -> None:
    for data in fuzz_corpus():
        for end in range(len(data)):
            with pytest.raises(RecordFormatError):
                ops.decode(data[:end])


def test_random_corruption_decodes_or_is_refused() -> None:
    rng = random.Random(20240607)
    corpus = fuzz_corpus()
    for _ in range(4000):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.choice((1, 1, 2, 3, 8))):
            at = rng.randrange(len(data))
            if rng.random() < 0.5:
                data[at] = rng.randrange(256)
            else:
                data[at] ^= 1 << rng.randrange(8)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data) + 1)]
        if rng.random() < 0.1:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        check_decodes_or_refuses(bytes(data))


def test_random_bytes_after_a_valid_header_are_refused_or_decoded() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        check_decodes_or_refuses(bytes((2, rng.randrange(0, 13))) + body)


# --------------------------------------------------------------------------- encoding errors


def test_operations_that_cannot_be_stored_are_refused_before_logging() -> None:
    with pytest.raises(TypeError, match=r"point ids must be int or uuid\.UUID"):
        ops.encode(ops.DeletePoints([1, "2"]))  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"point ids must be int or uuid\.UUID, not float, str"):
        ops.encode(ops.DeletePoints([uuid.UUID(int=1), 1.0, "x"]))  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        ops.encode(ops.DeletePoints([-1]))
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        ops.encode(ops.DeletePoints([uuid.UUID(int=1), 2**64]))
    with pytest.raises(ValueError, match="float32"):
        column = ops.DenseColumn(np.ones(1, dtype=bool), np.ones((1, 2)))
        ops.encode(ops.UpdateVectors([1], {"v": column}))
    with pytest.raises(ValueError, match="shape"):
        ops.encode(ops.UpdateVectors([1, 2], {"v": dense(3, 2)}))
    with pytest.raises(ValueError, match="sparse vector"):
        bad = (np.array([1], dtype=np.int64), np.array([1.0], dtype=np.float32))
        ops.encode(ops.UpdateVectors([1], {"s": ops.ObjectColumn([bad])}))
    with pytest.raises(TypeError, match="str"):
        ops.encode(ops.OverwritePayload([1], {1: "x"}))  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="nested"):
        loop: list[Any] = []
        loop.append(loop)
        ops.encode(ops.OverwritePayload([1], {"loop": loop}))
    with pytest.raises(ValueError, match="another OperationBatch"):
        ops.encode(ops.OperationBatch([ops.OperationBatch([])]))  # type: ignore[list-item]
    with pytest.raises(ValueError, match="payloads for"):
        ops.encode(ops.UpsertPoints([1, 2], {}, [None]))
