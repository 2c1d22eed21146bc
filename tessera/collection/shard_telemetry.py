"""What `/telemetry` tells about one local shard beyond its counts (details level 3 and
up): the size estimates Qdrant's `LocalShardTelemetry` carries and, from level 4, each
segment as Qdrant's `SegmentTelemetry` (info, config, vector index searches, payload field
indexes). Read under the shard's read lock; answers Qdrant's JSON shapes, which the API
layer passes on (it may not reach segments itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tessera.collection import strict_filters as sf
from tessera.collection.collection import Collection
from tessera.collection.stats import as_uuid
from tessera.collection_config import CollectionConfig
from tessera.segment.field_index import parse_field_schema
from tessera.segment.segment import Segment
from tessera.shard.holder import SegmentHolder
from tessera.shard.search import unindexed_and_large

# Qdrant's search categories (`VectorIndexSearchesTelemetry`). Tessera keeps no per-plan
# search counters, so each is reported with a count of 0.
SEARCH_CATEGORIES = (
    "unfiltered_plain",
    "unfiltered_hnsw",
    "unfiltered_sparse",
    "filtered_plain",
    "filtered_small_cardinality",
    "filtered_large_cardinality",
    "filtered_exact",
    "filtered_sparse",
    "unfiltered_exact",
)


@dataclass(frozen=True)
class ShardDetail:
    vectors_size_bytes: int
    payloads_size_bytes: int
    segments: list[dict[str, Any]] = field(default_factory=list)  # with `segments` asked
    # By dense vector name: the points `params.indexed_only` leaves out (segments without a
    # graph holding more than full_scan_threshold), Qdrant's `indexed_only_excluded_vectors`.
    indexed_only_excluded: dict[str, int] = field(default_factory=dict)


def shard_detail(collection: Collection, segments: bool) -> ShardDetail | None:
    """None for a damaged collection. `collection`: one local shard (a plain collection or
    one replica of a sharded one)."""
    if collection.failure is not None:
        return None
    config = collection.config
    sizes = collection.strict.payload_bytes
    with collection.shard.read() as holder:
        vectors = sum(sf.segment_vector_bytes(s, config) for s in holder.segments)
        payloads = sum(sizes.of(s) for s in holder.segments)
        described = (
            [segment_telemetry(s, config, sizes) for s in holder.segments] if segments else []
        )
        excluded = _excluded(holder, config)
    return ShardDetail(vectors, payloads, described, excluded)


def indexed_only_excluded(collection: Collection) -> dict[str, int] | None:
    """By dense vector name, the points `params.indexed_only` leaves out of this peer's
    shards of `collection` (0 for a name with none), as Qdrant's /metrics sums its local
    shards' `indexed_only_excluded_vectors`; None for a damaged collection."""
    if collection.failure is not None:
        return None
    total: dict[str, int] = {}
    for replica in collection.local_replicas():
        if replica.failure is not None:
            continue
        with replica.shard.read() as holder:
            for name, n in _excluded(holder, replica.config).items():
                total[name] = total.get(name, 0) + n
    return total


def _excluded(holder: SegmentHolder, config: CollectionConfig) -> dict[str, int]:
    return {
        name: sum(s.live_count() for s in holder.segments if unindexed_and_large(holder, s, name))
        for name in config.vectors
    }


def _vector_data(segment: Segment) -> dict[str, dict[str, int]]:
    stored = segment.stored_mask()
    deleted = ~stored
    out: dict[str, dict[str, int]] = {}
    for name, storage in segment.storages.items():
        has = storage.has(segment.size)[: segment.size]
        n = min(len(has), len(stored))
        live = int(np.count_nonzero(has[:n] & stored[:n]))
        out[name] = {
            "num_vectors": live,
            "num_indexed_vectors": live if name in segment.vector_indexes else 0,
            # vectors of deleted points, until the optimizer rewrites the segment
            "num_deleted_vectors": int(np.count_nonzero(has[:n] & deleted[:n])),
        }
    return out


def segment_telemetry(
    segment: Segment, config: CollectionConfig, sizes: sf.PayloadBytes
) -> dict[str, Any]:
    vector_data = _vector_data(segment)
    vector_bytes = sf.segment_vector_bytes(segment, config)
    payload_bytes = sizes.of(segment)
    on_disk = {n for n, p in config.vectors.items() if p.vectors_on_disk()}
    ram_vectors = sf.segment_vector_bytes(segment, _only(config, set(config.vectors) - on_disk))
    in_ram_payload = payload_bytes if isinstance(segment.payloads, list) else 0
    disk = sum(int(f.get("size", 0)) for fs in segment.files_by_component.values() for f in fs)
    schema: dict[str, Any] = {}
    indices: list[dict[str, Any]] = []
    for key, raw in sorted(segment.index_schemas.items()):
        index = segment.field_index(key)
        points = index.points_count() if index is not None else 0
        rendered = parse_field_schema(raw).to_json()
        schema[key] = {**rendered, "points": points}
        if index is not None:
            indices.append(
                {
                    "field_name": key,
                    "index_type": rendered["data_type"],
                    "points_values_count": index.values_total(),
                    "points_count": points,
                }
            )
    info = {
        "uuid": as_uuid(segment.segment_id),
        "segment_type": "indexed" if segment.vector_indexes else "plain",
        "num_vectors": sum(v["num_vectors"] for v in vector_data.values()),
        "num_points": segment.live_count(),
        # Qdrant's SegmentInfo reports these for every segment (0 when nothing is deferred):
        # num_points counts deferred points too, reads see num_points - num_deferred_points.
        "num_deferred_points": segment.live_count() - segment.visible_count(),
        "num_deleted_deferred_points": segment.deleted_deferred_count(),
        # As the collection's info counts it (sparse vectors of an indexed segment too).
        "num_indexed_vectors": segment.indexed_vector_count(),
        "num_deleted_vectors": sum(v["num_deleted_vectors"] for v in vector_data.values()),
        "vectors_size_bytes": vector_bytes,
        "payloads_size_bytes": payload_bytes,
        "ram_usage_bytes": ram_vectors + in_ram_payload,
        "disk_usage_bytes": disk,
        "is_appendable": segment.appendable,
        "index_schema": schema,
        "vector_data": vector_data,
    }
    deferred_from = segment.deferred_internal_id()
    if deferred_from is not None:
        info["deferred_internal_id"] = deferred_from
    return {
        "info": info,
        "config": segment_config(segment, config),
        "vector_index_searches": [
            {"index_name": name, **{c: {"count": 0} for c in SEARCH_CATEGORIES}}
            for name in segment.storages
        ],
        "payload_field_indices": indices,
    }


def _only(config: CollectionConfig, names: set[str]) -> CollectionConfig:
    """`config` with only the dense vectors `names` (to size part of a segment)."""
    kept = {n: p for n, p in config.vectors.items() if n in names}
    return CollectionConfig(vectors=kept, sparse_vectors={}, unnamed=config.unnamed)


def segment_config(segment: Segment, config: CollectionConfig) -> dict[str, Any]:
    """Qdrant's `SegmentConfig`: how each vector is stored and indexed in this segment."""
    dense: dict[str, Any] = {}
    for name, p in config.vectors.items():
        if name not in segment.storages:
            continue
        # Qdrant's names: appendable segments keep chunked files, built ones single files;
        # `InRam*` while the vectors are served from memory.
        kind = "ChunkedMmap" if segment.appendable else "Mmap"
        index: dict[str, Any] = {"type": "plain", "options": {}}
        if name in segment.vector_indexes:
            index = {"type": "hnsw", "options": {**config.hnsw_config, **(p.hnsw_config or {})}}
        entry: dict[str, Any] = {
            "size": p.size,
            "distance": p.distance,
            "storage_type": kind if p.vectors_on_disk() else f"InRam{kind}",
            "index": index,
            "datatype": p.datatype,
        }
        quantization = p.quantization_config or config.quantization_config
        if quantization is not None:
            entry["quantization_config"] = quantization
        if p.multivector:
            entry["multivector_config"] = {"comparator": "max_sim"}
        dense[name] = entry
    sparse: dict[str, Any] = {}
    for name, sp in config.sparse_vectors.items():
        if name not in segment.storages:
            continue
        params = sp.index or {}
        on_disk = bool(params.get("on_disk"))
        sparse_index: dict[str, Any] = {
            "index_type": "Mmap"
            if on_disk
            else "MutableRam"
            if segment.appendable
            else "ImmutableRam"
        }
        for key in ("full_scan_threshold", "datatype"):
            if params.get(key) is not None:
                sparse_index[key] = params[key]
        entry = {"index": sparse_index, "storage_type": "mmap"}
        if sp.modifier is not None:
            entry["modifier"] = sp.modifier
        sparse[name] = entry
    on_disk_payload = config.params_extra.get("on_disk_payload", True)
    return {
        "vector_data": dense,
        "sparse_vector_data": sparse,
        "payload_storage_type": {"type": "mmap" if on_disk_payload else "in_ram_mmap"},
    }
