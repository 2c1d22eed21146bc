"""Named vectors added to or removed from a live shard, and the vector schema of a checkpoint.

Adding or removing a vector name is a WAL record (`CreateVectorName`, `DeleteVectorName`),
applied in sequence with the point operations: every record that carries vector `v` comes
after the record that created `v` and before the one that deleted it, so replaying the WAL
from a checkpoint applies each record against the schema it was validated with.

For that, the replay must start from the schema *of the checkpoint*, not the newest one:
every manifest holds the vector schema at its operation (`schema_json`), and recovery sets
it on the config before loading the segments (`restore_schema`); the replayed records then
bring it up to date. The collection's `config.json` is rewritten only after a checkpoint
that holds the change (tessera.collection.vector_names), so a shard without any manifest
replays from the schema the collection was created with.

Applying is idempotent for a name that already has the same schema, as the shard-level
operation in Qdrant is. The config's dicts are replaced, never changed in place, so a
reader (the optimizer, building outside the lock) iterating the old one is not disturbed.
"""

from __future__ import annotations

from typing import Any

from tessera.collection_config import (
    CollectionConfig,
    DenseVectorParams,
    SparseVectorParams,
    parse_dense_params,
)
from tessera.errors import BadRequest
from tessera.shard.holder import SegmentHolder

VectorParams = DenseVectorParams | SparseVectorParams


def params_json(params: VectorParams) -> dict[str, Any]:
    """{"dense": ...} or {"sparse": ...}: the params as the collection config renders them."""
    if isinstance(params, DenseVectorParams):
        return {"dense": params.to_json()}
    return {"sparse": params.to_json()}


def params_from_json(raw: dict[str, Any]) -> VectorParams:
    """The inverse of `params_json`; ValueError for anything it did not write."""
    if "dense" in raw:
        try:
            return parse_dense_params(raw["dense"], "dense")
        except BadRequest as exc:
            raise ValueError(str(exc)) from None
    body = raw["sparse"]
    if not isinstance(body, dict):
        raise ValueError("sparse vector params must be an object")
    return SparseVectorParams(modifier=body.get("modifier"), index=body.get("index"))


def _index_datatype(params: SparseVectorParams) -> str:
    return str((params.index or {}).get("datatype") or "float32")


def same_schema(a: VectorParams, b: VectorParams) -> bool:
    """Whether two params define the same vector space; what can be tuned later (HNSW,
    quantization, on_disk, index thresholds) is not compared."""
    if isinstance(a, DenseVectorParams) and isinstance(b, DenseVectorParams):
        return (a.size, a.distance, a.datatype, a.multivector) == (
            b.size,
            b.distance,
            b.datatype,
            b.multivector,
        )
    if isinstance(a, SparseVectorParams) and isinstance(b, SparseVectorParams):
        modifier_a = a.modifier if a.modifier != "none" else None
        modifier_b = b.modifier if b.modifier != "none" else None
        return modifier_a == modifier_b and _index_datatype(a) == _index_datatype(b)
    return False


def existing_params(config: CollectionConfig, name: str) -> VectorParams | None:
    dense = config.vectors.get(name)
    return dense if dense is not None else config.sparse_vectors.get(name)


def set_params(config: CollectionConfig, name: str, params: VectorParams | None) -> None:
    """Set (or, with None, remove) vector `name` in the config, replacing both dicts. The
    shard's record and cluster mode's etcd config change the same way."""
    dense = {k: v for k, v in config.vectors.items() if k != name}
    sparse = {k: v for k, v in config.sparse_vectors.items() if k != name}
    if config.sparse_vectors or isinstance(params, SparseVectorParams):
        config.sparse_map = True  # the map stays, empty, once its last name is deleted
    if isinstance(params, DenseVectorParams):
        dense[name] = params
    elif isinstance(params, SparseVectorParams):
        sparse[name] = params
    config.vectors = dense
    config.sparse_vectors = sparse
    if params is not None and config.unnamed and name != "":
        # The single unnamed vector becomes the named vector "" among others.
        config.unnamed = False


def apply_create(holder: SegmentHolder, name: str, raw: dict[str, Any]) -> None:
    """Add vector `name` to the config and an empty storage for it to every segment."""
    config = holder.config
    params = params_from_json(raw)
    current = existing_params(config, name)
    if current is not None and same_schema(current, params):
        return
    if current is not None:  # never logged (validated first); replaced rather than mixed
        for segment in holder.segments:
            segment.drop_vector_storage(name)
    set_params(config, name, params)
    for segment in holder.segments:
        segment.add_vector_storage(name)


def apply_delete(holder: SegmentHolder, name: str) -> None:
    """Remove vector `name` from the config and its data from every segment."""
    config = holder.config
    if existing_params(config, name) is None:
        return
    set_params(config, name, None)
    for segment in holder.segments:
        segment.drop_vector_storage(name)


# ---- the schema of a checkpoint ----------------------------------------------------------


def schema_json(config: CollectionConfig) -> dict[str, Any]:
    """What a manifest records: {"unnamed": bool, "vectors": {name: params_json}}."""
    vectors = {name: params_json(p) for name, p in config.vectors.items()}
    vectors.update({name: params_json(p) for name, p in config.sparse_vectors.items()})
    return {"unnamed": config.unnamed, "vectors": vectors}


def restore_schema(config: CollectionConfig, raw: Any) -> None:
    """Make the config's vector names those of a checkpoint (`schema_json`). A name whose
    schema is unchanged keeps the config's params (their tuning may be newer than the
    checkpoint: it is not logged); so does a sparse name that is sparse in both, since
    PATCH may change a sparse vector's modifier and index, which same_schema compares (a
    sparse name re-created with other params is a Delete and a Create record, replayed
    after this). Raises ValueError/KeyError/TypeError when `raw` is not a schema."""
    if not isinstance(raw, dict) or not isinstance(raw.get("vectors"), dict):
        raise ValueError("not a vector schema")
    dense: dict[str, DenseVectorParams] = {}
    sparse: dict[str, SparseVectorParams] = {}
    for name, body in raw["vectors"].items():
        params = params_from_json(body)
        current = existing_params(config, name)
        both_sparse = isinstance(current, SparseVectorParams) and isinstance(
            params, SparseVectorParams
        )
        if current is not None and (both_sparse or same_schema(current, params)):
            params = current
        if isinstance(params, DenseVectorParams):
            dense[name] = params
        else:
            sparse[name] = params
    config.vectors = dense
    config.sparse_vectors = sparse
    config.sparse_map = config.sparse_map or bool(sparse)
    config.unnamed = bool(raw.get("unnamed", False))
