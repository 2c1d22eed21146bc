"""Named vectors added to and removed from a live collection (Qdrant 1.19):
`PUT /collections/{c}/vectors/{name}` with a `VectorNameConfig` body and
`DELETE /collections/{c}/vectors/{name}`, and their gRPC twins.

A new vector holds nothing for the existing points; upserts and vector updates may carry it
from then on (an updated point moves to the appendable segment, as any edit does), and the
segments the optimizer builds from then on index it. Removing a name drops its data and its
graph from every segment. As in Qdrant, creating a name that exists with the same schema and
removing a name that does not exist change nothing and succeed.

Durability (see tessera.shard.vector_schema for the replay side): the change is a WAL
record, logged and fsynced like any write; then a checkpoint is written, whose manifest
holds the new schema; only then is `config.json` rewritten. A crash anywhere in between
replays the record from the previous checkpoint's schema.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tessera.collection_config import SparseVectorParams, dense_params
from tessera.config_json import SPARSE_DATATYPES, decode_dense, decode_modifier, expect_dict
from tessera.config_model import SparseIndexSpec, SparseSpec, VectorSpec
from tessera.errors import BadRequest
from tessera.shard import operations as ops
from tessera.shard.errors import ShardClosed
from tessera.shard.holder import SegmentHolder
from tessera.shard.shard import LocalShard
from tessera.shard.vector_schema import (
    existing_params,
    params_from_json,
    params_json,
    same_schema,
)

log = logging.getLogger(__name__)


# Called under the shard's write lock: the record to log, or None when nothing changes.
SchemaWrite = Callable[[SegmentHolder], ops.Record | None]


def parse_vector_name_config(raw: Any) -> dict[str, Any]:
    """A `VectorNameConfig` body ({"dense": {...}} or {"sparse": {...}}) checked, as the
    params JSON the WAL record carries (shard.vector_schema.params_json)."""
    if not isinstance(raw, dict) or not ("dense" in raw or "sparse" in raw):
        raise BadRequest(
            "Format error in JSON body: data did not match any variant of untagged enum "
            "VectorNameConfig"
        )
    if "dense" in raw:
        body = expect_dict(raw["dense"], "dense")
        # Only what defines the vector space: tuning is set later with PATCH, as in Qdrant.
        wanted = ("size", "distance", "datatype", "multivector_config")
        return vector_name_config(decode_dense({k: body[k] for k in wanted if k in body}, "dense"))
    body = expect_dict(raw["sparse"] if raw["sparse"] is not None else {}, "sparse")
    modifier = decode_modifier(body.get("modifier"), "sparse.modifier")
    return vector_name_config(sparse_creation(modifier, body.get("datatype")))


def sparse_creation(modifier: str | None, datatype: Any) -> SparseSpec:
    """A new sparse vector's spec (`VectorNameConfig.sparse`: a modifier and a datatype)."""
    if datatype is not None and datatype not in SPARSE_DATATYPES:
        raise BadRequest(
            f"Format error in JSON body: sparse.datatype: unknown variant `{datatype}`, "
            "expected one of `float32`, `float16`, `uint8`"
        )
    index = SparseIndexSpec(datatype=datatype) if datatype is not None else None
    return SparseSpec(modifier=modifier, index=index)


def vector_name_config(spec: VectorSpec | SparseSpec) -> dict[str, Any]:
    """A new vector's spec (REST or gRPC) checked, as the params JSON the WAL record
    carries (shard.vector_schema.params_json)."""
    if isinstance(spec, VectorSpec):
        spec.check("dense", "dense")
        return params_json(dense_params(spec))
    index = spec.index.given() if spec.index is not None else None
    return params_json(SparseVectorParams(modifier=spec.modifier, index=index))


def create_vector_name(name: str, config_json: dict[str, Any]) -> SchemaWrite:
    """Add vector `name` (`config_json` from parse_vector_name_config)."""
    params = params_from_json(config_json)
    kind = "dense" if "dense" in config_json else "sparse"

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        current = existing_params(holder.config, name)
        if current is None:
            return ops.CreateVectorName(name, config_json)
        if same_schema(current, params):
            return None  # idempotent, as in Qdrant
        current_kind = "sparse" if isinstance(current, SparseVectorParams) else "dense"
        if current_kind != kind:
            raise BadRequest(
                f"Wrong input: Vector `{name}` already exists as a {current_kind} vector"
            )
        label = "Sparse vector" if kind == "sparse" else "Vector"
        raise BadRequest(
            f"Wrong input: {label} `{name}` already exists with a different configuration"
        )

    return prepare


def delete_vector_name(name: str) -> SchemaWrite:
    """Remove vector `name`; nothing to do when there is none (as in Qdrant)."""

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        config = holder.config
        if existing_params(config, name) is None:
            return None
        if config.unnamed and name == "":
            raise BadRequest(
                "Wrong input: Cannot delete the unnamed vector when it is the only dense "
                "vector in the collection"
            )
        return ops.DeleteVectorName(name)

    return prepare


def apply_schema_change(shard: LocalShard, write: SchemaWrite) -> tuple[int, bool]:
    """Log and apply the change, then checkpoint it. Returns (operation id, whether the
    caller must now rewrite config.json): False when nothing changed, or when the checkpoint
    failed (the WAL holds the change; config.json must not be ahead of every manifest)."""
    logged: list[bool] = []

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        record = write(holder)
        logged.append(record is not None)
        return record

    seq = shard.update(prepare)
    if not any(logged):
        return seq, False
    try:
        shard.flush(force=True)
    except ShardClosed:  # its collection was deleted meanwhile: nothing left to checkpoint
        return seq, False
    except Exception:
        log.exception("checkpoint after a vector name change in %s failed", shard.path)
        return seq, False
    return seq, True
