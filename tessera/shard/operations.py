"""The closed set of update operations. Each one is a WAL record, exactly as applied.

Operations are columnar (one array per vector name for a whole batch) so that applying an
upsert of many points copies blocks, not points. Filters are resolved to explicit ids before
an operation is built, so replaying a record can never touch points written after it.

The byte format of a record payload is explicit, versioned and documented field by field in
tessera.shard.op_codec (format 2); format 1, a pickle, is refused rather than unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.ids import PointId

FloatArray = npt.NDArray[np.float32]
SparseValue = tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class DenseColumn:
    """Dense vectors of one name for a batch; rows where `present` is False are ignored."""

    present: npt.NDArray[np.bool_]
    values: FloatArray


@dataclass(frozen=True)
class ObjectColumn:
    """Sparse (indices, values) or multivector (m, d) arrays of one name, None where absent."""

    values: list[Any]


VectorColumn = DenseColumn | ObjectColumn


@dataclass(frozen=True)
class UpsertPoints:
    ids: list[PointId]
    vectors: dict[str, VectorColumn]
    payloads: list[dict[str, Any] | None]


@dataclass(frozen=True)
class UpdateVectors:
    ids: list[PointId]
    vectors: dict[str, VectorColumn]


@dataclass(frozen=True)
class DeleteVectors:
    ids: list[PointId]
    names: list[str]


@dataclass(frozen=True)
class SetPayload:
    ids: list[PointId]
    payload: dict[str, Any]
    key: str | None


@dataclass(frozen=True)
class OverwritePayload:
    ids: list[PointId]
    payload: dict[str, Any]


@dataclass(frozen=True)
class DeletePayload:
    ids: list[PointId]
    keys: list[str]


@dataclass(frozen=True)
class ClearPayload:
    ids: list[PointId]


@dataclass(frozen=True)
class DeletePoints:
    ids: list[PointId]


@dataclass(frozen=True)
class CreateFieldIndex:
    key: str
    schema: Any


@dataclass(frozen=True)
class DeleteFieldIndex:
    key: str


@dataclass(frozen=True)
class CreateVectorName:
    """A new named vector (tessera.shard.vector_schema): `config` is {"dense": params} or
    {"sparse": params}, the params as the collection config renders them."""

    name: str
    config: dict[str, Any]


@dataclass(frozen=True)
class DeleteVectorName:
    name: str


PointOperation = (
    UpsertPoints
    | UpdateVectors
    | DeleteVectors
    | SetPayload
    | OverwritePayload
    | DeletePayload
    | ClearPayload
    | DeletePoints
)
Operation = (
    PointOperation | CreateFieldIndex | DeleteFieldIndex | CreateVectorName | DeleteVectorName
)


@dataclass(frozen=True)
class OperationBatch:
    """Several operations that must be applied in order as one WAL record (batch update)."""

    operations: list[Operation]


Record = Operation | OperationBatch


def encode(record: Record) -> bytes:
    """The WAL payload of `record` (see tessera.shard.op_codec for the format)."""
    from tessera.shard.op_codec import encode_record  # op_codec imports this module

    return encode_record(record)


def decode(data: bytes) -> Record:
    """The record in a WAL payload; op_codec.RecordFormatError (a ValueError) for anything
    that is not a record this version wrote."""
    from tessera.shard.op_codec import decode_record

    return decode_record(data)
