"""`GET /telemetry`'s key sets by details level, as Qdrant's own test checks them
(tests/openapi/test_service.py::test_telemetry_detail), every answer validated against
Qdrant's `TelemetryData` schema: `memory` and `hardware` from level 1, `init_time_ms` from
level 2, shards with their key and partial snapshot state and local shards with size
estimates from level 3, segments from level 4; a sharded collection reports each shard.
"""

from __future__ import annotations

from typing import Any

import httpx
from qdrant_client import QdrantClient, models

from tests.openapi_check import assert_ok, validate_component

COLLECTION_KEYS = {"id", "init_time_ms", "config", "shards", "transfers", "resharding"}
SHARD_KEYS = {"id", "key", "local", "remote", "replicate_states", "partial_snapshot"}
LOCAL_KEYS = {
    "variant_name",
    "status",
    "total_optimized_points",
    "vectors_size_bytes",
    "payloads_size_bytes",
    "num_points",
    "num_vectors",
    "num_vectors_by_name",  # Tessera's too (the schema has it)
    "optimizations",
    "async_scorer",
    "update_queue",
}


def telemetry(http: httpx.Client, level: int, **params: Any) -> dict[str, Any]:
    result = assert_ok(
        http.get("/telemetry", params={"details_level": level, **params}), "GET", "/telemetry"
    )
    validate_component("TelemetryData", result)
    return dict(result)


def mine(result: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in result["collections"]["collections"] if c["id"] == name]
    return dict(found)


def test_telemetry_keys_by_details_level(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    name = collection(
        vectors_config={
            "dense": models.VectorParams(size=4, distance=models.Distance.COSINE),
            "multi": models.VectorParams(
                size=2,
                distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
        },
        sparse_vectors_config={"text": models.SparseVectorParams()},
    )
    client.create_payload_index(name, "city", models.PayloadSchemaType.KEYWORD, wait=True)
    points = [
        models.PointStruct(
            id=i,
            vector={
                "dense": [0.1 * i, 0.2, 0.3, 0.4],
                "multi": [[1.0, 2.0], [3.0, float(i)]],
                "text": models.SparseVector(indices=[1, 7], values=[0.5, 1.5]),
            },
            payload={"city": ["Berlin", "London"] if i % 2 else "Paris", "n": i},
        )
        for i in range(6)
    ]
    client.upsert(name, points, wait=True)
    client.delete(name, [5], wait=True)

    level0 = telemetry(http, 0)
    assert "memory" not in level0 and "hardware" not in level0

    level1 = telemetry(http, 1)
    assert {"memory", "hardware"} <= set(level1)
    usage = level1["hardware"]["collection_data"][name]
    assert usage["vector_io_write"] == 6 * (4 * 4 + 4 * 4 + 2 * (4 + 4))  # dense, multi, sparse
    assert usage["payload_io_write"] > 0 and usage["cpu"] == 0

    level2 = mine(telemetry(http, 2), name)
    assert set(level2) == {"id", "init_time_ms", "config"}
    assert isinstance(level2["init_time_ms"], int) and level2["init_time_ms"] >= 0

    level3 = mine(telemetry(http, 3), name)
    assert set(level3) == COLLECTION_KEYS
    (shard,) = level3["shards"]
    assert set(shard) == SHARD_KEYS
    assert shard["key"] is None and shard["remote"] == []
    assert shard["partial_snapshot"] == {
        "ongoing_create_snapshot_requests": 0,
        "is_recovering": False,
        "recovery_timestamp": 0,
    }
    local = shard["local"]
    assert set(local) == LOCAL_KEYS
    assert local["num_points"] == 5 and local["async_scorer"] is False
    assert local["update_queue"]["length"] == 0 and local["update_queue"]["op_num"] > 0
    # live dense vectors, and the multivector rows stored (point 5's until an optimization)
    assert local["vectors_size_bytes"] == 5 * 4 * 4 + 6 * 2 * 2 * 4
    assert local["payloads_size_bytes"] > 0

    level4 = mine(telemetry(http, 4), name)
    segments = level4["shards"][0]["local"]["segments"]
    assert set(level4["shards"][0]["local"]) == LOCAL_KEYS | {
        "segments",
        "indexed_only_excluded_vectors",
    }
    assert segments
    assert sum(s["info"]["num_points"] for s in segments) == 5
    assert sum(s["info"]["num_deleted_vectors"] for s in segments) >= 3  # point 5's vectors
    with_points = [s for s in segments if s["info"]["num_points"]]
    info, config = with_points[0]["info"], with_points[0]["config"]
    assert set(info["vector_data"]) == {"dense", "multi", "text"}
    assert info["index_schema"]["city"]["data_type"] == "keyword"
    assert config["vector_data"]["dense"]["distance"] == "Cosine"
    assert config["vector_data"]["multi"]["multivector_config"] == {"comparator": "max_sim"}
    assert set(config["sparse_vector_data"]) == {"text"}
    (index,) = with_points[0]["payload_field_indices"]
    assert index["field_name"] == "city" and index["points_count"] == 5
    assert index["points_values_count"] == 7  # two cities for points 1 and 3
    searches = with_points[0]["vector_index_searches"]
    assert {s["index_name"] for s in searches} == {"dense", "multi", "text"}

    hidden = telemetry(http, 4, anonymize="true")
    assert name not in hidden["hardware"]["collection_data"]


def test_telemetry_reports_each_shard(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    name = collection(
        vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT), shard_number=2
    )
    client.upsert(
        name,
        [models.PointStruct(id=i, vector=[1.0, float(i)]) for i in range(20)],
        wait=True,
    )
    found = mine(telemetry(http, 4), name)
    shards = found["shards"]
    assert [s["id"] for s in shards] == [0, 1]
    for shard in shards:
        assert set(shard) == SHARD_KEYS and shard["key"] is None
        assert set(shard["replicate_states"].values()) == {"Active"}
    assert sum(s["local"]["num_points"] for s in shards) == 20
    usage = telemetry(http, 1)["hardware"]["collection_data"][name]
    assert usage["vector_io_write"] == 20 * 2 * 4
