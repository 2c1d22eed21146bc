"""Collections through the official client: create, info, list, exists, delete, duplicates.

Runs against the server and, with TESSERA_TEST_TARGET=local, against qdrant-client's local mode
(tests marked ``server_only`` are skipped there).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import LOCAL, make_client

Distance = models.Distance


def create_index(
    client: QdrantClient, name: str, field: str, schema: models.PayloadSchemaType
) -> models.UpdateResult:
    # Local mode warns that payload indexes do nothing there; the server must not warn.
    with warnings.catch_warnings():
        if LOCAL:
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        return client.create_payload_index(name, field, field_schema=schema, wait=True)


def test_create_unnamed_vector_and_get_info(client: QdrantClient, collection) -> None:
    name = collection()
    assert client.create_collection(
        name, vectors_config=models.VectorParams(size=4, distance=Distance.DOT)
    )
    info = client.get_collection(name)
    assert info.status == models.CollectionStatus.GREEN
    assert info.points_count == 0
    assert info.segments_count >= 1
    assert info.payload_schema == {}
    vectors = info.config.params.vectors
    assert isinstance(vectors, models.VectorParams)
    assert vectors.size == 4
    assert vectors.distance == Distance.DOT
    assert not info.config.params.sparse_vectors
    assert info.config.hnsw_config.m > 0
    assert info.config.optimizer_config.flush_interval_sec > 0


@pytest.mark.parametrize(
    "distance", [Distance.COSINE, Distance.EUCLID, Distance.DOT, Distance.MANHATTAN]
)
def test_create_with_each_distance(client: QdrantClient, collection, distance) -> None:
    name = collection(vectors_config=models.VectorParams(size=3, distance=distance))
    vectors = client.get_collection(name).config.params.vectors
    assert isinstance(vectors, models.VectorParams)
    assert vectors.distance == distance
    assert vectors.size == 3


def test_create_named_vectors_map(client: QdrantClient, collection) -> None:
    name = collection(
        vectors_config={
            "image": models.VectorParams(size=4, distance=Distance.DOT),
            "text": models.VectorParams(size=8, distance=Distance.COSINE),
            "geo": models.VectorParams(size=2, distance=Distance.EUCLID),
        }
    )
    vectors = client.get_collection(name).config.params.vectors
    assert isinstance(vectors, dict)
    assert set(vectors) == {"image", "text", "geo"}
    assert (vectors["image"].size, vectors["image"].distance) == (4, Distance.DOT)
    assert (vectors["text"].size, vectors["text"].distance) == (8, Distance.COSINE)
    assert (vectors["geo"].size, vectors["geo"].distance) == (2, Distance.EUCLID)


def test_create_multivector_datatypes_and_on_disk(client: QdrantClient, collection) -> None:
    name = collection(
        vectors_config={
            "colbert": models.VectorParams(
                size=4,
                distance=Distance.COSINE,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
            "half": models.VectorParams(
                size=4, distance=Distance.DOT, datatype=models.Datatype.FLOAT16
            ),
            "bytes": models.VectorParams(
                size=4, distance=Distance.EUCLID, datatype=models.Datatype.UINT8
            ),
            "cold": models.VectorParams(size=4, distance=Distance.MANHATTAN, on_disk=True),
        }
    )
    vectors = client.get_collection(name).config.params.vectors
    assert isinstance(vectors, dict)
    colbert = vectors["colbert"].multivector_config
    assert colbert is not None
    assert colbert.comparator == models.MultiVectorComparator.MAX_SIM
    assert vectors["half"].datatype == models.Datatype.FLOAT16
    assert vectors["bytes"].datatype == models.Datatype.UINT8
    assert vectors["cold"].on_disk is True
    # Nothing was asked of the others: they must not pretend otherwise.
    assert vectors["half"].multivector_config is None
    assert vectors["colbert"].datatype in (None, models.Datatype.FLOAT32)


def test_create_sparse_vectors_with_idf_modifier(client: QdrantClient, collection) -> None:
    name = collection(
        vectors_config={"dense": models.VectorParams(size=2, distance=Distance.DOT)},
        sparse_vectors_config={
            "bm25": models.SparseVectorParams(modifier=models.Modifier.IDF),
            "splade": models.SparseVectorParams(),
        },
    )
    params = client.get_collection(name).config.params
    assert params.sparse_vectors is not None
    assert set(params.sparse_vectors) == {"bm25", "splade"}
    assert params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert params.sparse_vectors["splade"].modifier in (None, models.Modifier.NONE)


def test_sparse_only_collection(client: QdrantClient, collection) -> None:
    name = collection(
        vectors_config={}, sparse_vectors_config={"text": models.SparseVectorParams()}
    )
    client.upsert(
        name,
        [models.PointStruct(id=1, vector={"text": models.SparseVector(indices=[3], values=[1.0])})],
    )
    assert client.get_collection(name).points_count == 1


def test_points_count_follows_writes(client: QdrantClient, collection) -> None:
    name = collection(vectors_config=models.VectorParams(size=2, distance=Distance.DOT))
    client.upsert(name, [models.PointStruct(id=i, vector=[i, 1.0]) for i in range(5)])
    assert client.get_collection(name).points_count == 5
    client.delete(name, points_selector=models.PointIdsList(points=[0, 1]))
    assert client.get_collection(name).points_count == 3


def test_list_collections(client: QdrantClient, collection) -> None:
    first = collection(vectors_config=models.VectorParams(size=2, distance=Distance.DOT))
    second = collection(vectors_config=models.VectorParams(size=2, distance=Distance.DOT))
    names = {c.name for c in client.get_collections().collections}
    assert {first, second} <= names
    client.delete_collection(first)
    names = {c.name for c in client.get_collections().collections}
    assert first not in names
    assert second in names


def test_exists_and_delete(client: QdrantClient, collection, expect_error) -> None:
    name = collection(vectors_config=models.VectorParams(size=2, distance=Distance.DOT))
    assert client.collection_exists(name) is True
    assert client.delete_collection(name) is True
    assert client.collection_exists(name) is False
    with expect_error(404, f"Collection `{name}` doesn't exist!"):
        client.get_collection(name)
    # Deleting what is not there is not an error in Qdrant: it answers false.
    assert client.delete_collection(name) is False
    assert client.collection_exists(collection()) is False


def test_delete_then_recreate_starts_empty(client: QdrantClient, collection) -> None:
    name = collection(vectors_config=models.VectorParams(size=2, distance=Distance.DOT))
    client.upsert(name, [models.PointStruct(id=1, vector=[1, 2], payload={"a": 1})])
    client.delete_collection(name)
    client.create_collection(
        name, vectors_config=models.VectorParams(size=3, distance=Distance.DOT)
    )
    info = client.get_collection(name)
    assert info.points_count == 0
    assert info.config.params.vectors.size == 3
    assert client.retrieve(name, [1]) == []


def test_duplicate_create_is_refused(client: QdrantClient, collection, expect_error) -> None:
    name = collection(vectors_config=models.VectorParams(size=2, distance=Distance.DOT))
    client.upsert(name, [models.PointStruct(id=1, vector=[1, 2])])
    with expect_error(409, f"Collection `{name}` already exists!"):
        client.create_collection(
            name, vectors_config=models.VectorParams(size=5, distance=Distance.COSINE)
        )
    info = client.get_collection(name)
    assert info.config.params.vectors.size == 2
    assert info.config.params.vectors.distance == Distance.DOT
    assert info.points_count == 1


def test_operations_on_missing_collection_are_404(
    client: QdrantClient, collection, expect_error
) -> None:
    name = collection()
    contains = f"Collection `{name}` doesn't exist!"
    with expect_error(404, contains):
        client.upsert(name, [models.PointStruct(id=1, vector=[1, 2])])
    with expect_error(404, contains):
        client.scroll(name)
    with expect_error(404, contains):
        client.count(name)
    with expect_error(404, contains):
        client.retrieve(name, [1])
    with expect_error(404, contains):
        client.query_points(name, query=[1.0, 2.0])
    assert client.collection_exists(name) is False


@pytest.mark.server_only(reason="local mode has no payload indexes (payload_schema stays empty)")
def test_payload_schema_reports_indexes(client: QdrantClient, collection) -> None:
    name = collection(vectors_config=models.VectorParams(size=2, distance=Distance.DOT))
    client.upsert(
        name,
        [
            models.PointStruct(
                id=i,
                vector=[1, i],
                payload={
                    "n": i,
                    "x": i / 2,
                    "ts": f"2024-01-0{i + 1}T00:00:00Z",
                    **({"tag": "even"} if i % 2 == 0 else {}),
                },
            )
            for i in range(4)
        ],
    )
    expected = {
        "n": models.PayloadSchemaType.INTEGER,
        "x": models.PayloadSchemaType.FLOAT,
        "ts": models.PayloadSchemaType.DATETIME,
        "tag": models.PayloadSchemaType.KEYWORD,
    }
    for field, schema in expected.items():
        result = create_index(client, name, field, schema)
        assert result.status == models.UpdateStatus.COMPLETED
    payload_schema = client.get_collection(name).payload_schema
    assert set(payload_schema) == set(expected)
    for field, schema in expected.items():
        assert payload_schema[field].data_type == schema
    assert payload_schema["n"].points == 4
    assert payload_schema["tag"].points == 2

    result = client.delete_payload_index(name, "x", wait=True)
    assert result.status == models.UpdateStatus.COMPLETED
    assert set(client.get_collection(name).payload_schema) == {"n", "ts", "tag"}


@pytest.mark.server_only(reason="restarts a server")
def test_collection_config_survives_kill_9(server_factory) -> None:
    srv = server_factory()
    qc = make_client(srv.url)
    before = datetime.now(UTC)
    try:
        qc.create_collection(
            "persisted",
            vectors_config={
                "a": models.VectorParams(size=3, distance=Distance.MANHATTAN, on_disk=True),
                "m": models.VectorParams(
                    size=2,
                    distance=Distance.DOT,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                ),
            },
            sparse_vectors_config={"s": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        qc.upsert("persisted", [models.PointStruct(id=7, vector={"a": [1, 2, 3]})], wait=True)
    finally:
        qc.close()
    srv.kill()
    srv.start()
    qc = make_client(srv.url)
    try:
        assert {c.name for c in qc.get_collections().collections} == {"persisted"}
        info = qc.get_collection("persisted")
        vectors = info.config.params.vectors
        assert isinstance(vectors, dict)
        assert (vectors["a"].size, vectors["a"].distance, vectors["a"].on_disk) == (
            3,
            Distance.MANHATTAN,
            True,
        )
        assert vectors["m"].multivector_config is not None
        assert info.config.params.sparse_vectors["s"].modifier == models.Modifier.IDF
        assert info.points_count == 1
        assert qc.retrieve("persisted", [7], with_vectors=True)[0].vector == {"a": [1, 2, 3]}
        # the time it was made, kept across the restart
        assert info.created_at is not None and before <= info.created_at <= datetime.now(UTC)
        raw = httpx.get(f"{srv.url}/collections/persisted").json()["result"]["created_at"]
        assert raw.endswith("Z") and datetime.fromisoformat(raw) == info.created_at
    finally:
        qc.close()


@pytest.mark.parametrize("value", ["yes", 1, [True]])
def test_on_disk_payload_must_be_a_boolean(http: httpx.Client, collection, value) -> None:
    """A create or PATCH with a non-boolean `on_disk_payload` is a 400 and changes nothing
    (it was stored as given, and qdrant-client then failed to read the collection)."""
    name = collection()
    body = {"vectors": {"size": 2, "distance": "Dot"}, "on_disk_payload": value}
    refused = http.put(f"/collections/{name}", json=body)
    assert refused.status_code == 400, refused.text
    assert "on_disk_payload: invalid type" in refused.json()["status"]["error"]
    assert http.get(f"/collections/{name}/exists").json()["result"]["exists"] is False
    made = http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
    assert made.status_code == 200
    patched = http.patch(f"/collections/{name}", json={"params": {"on_disk_payload": value}})
    assert patched.status_code == 400, patched.text
    assert "params.on_disk_payload: invalid type" in patched.json()["status"]["error"]
    params = http.get(f"/collections/{name}").json()["result"]["config"]["params"]
    assert params["on_disk_payload"] is True


def test_a_given_float32_datatype_is_shown(http: httpx.Client, collection) -> None:
    """Qdrant keeps a vector's `datatype` as given: an explicit float32 is shown (and kept),
    a default one is absent."""
    given, default = collection(), collection()
    body = {"vectors": {"size": 2, "distance": "Dot", "datatype": "float32"}}
    assert http.put(f"/collections/{given}", json=body).status_code == 200
    assert (
        http.put(
            f"/collections/{default}", json={"vectors": {"size": 2, "distance": "Dot"}}
        ).status_code
        == 200
    )
    shown = http.get(f"/collections/{given}").json()["result"]["config"]["params"]["vectors"]
    assert shown == {"size": 2, "distance": "Dot", "datatype": "float32"}
    plain = http.get(f"/collections/{default}").json()["result"]["config"]["params"]["vectors"]
    assert "datatype" not in plain


def test_optimizer_config_shows_prevent_unoptimized(http: httpx.Client, collection) -> None:
    """Qdrant's OptimizersConfig always carries `prevent_unoptimized` (null unless set)."""
    name = collection()
    assert http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
    shown = http.get(f"/collections/{name}").json()["result"]["config"]["optimizer_config"]
    assert "prevent_unoptimized" in shown and shown["prevent_unoptimized"] is None
    body = {"optimizers_config": {"prevent_unoptimized": True}}
    assert http.patch(f"/collections/{name}", json=body).status_code == 200
    shown = http.get(f"/collections/{name}").json()["result"]["config"]["optimizer_config"]
    assert shown["prevent_unoptimized"] is True


def test_float_settings_are_shown_as_floats(http: httpx.Client, collection) -> None:
    """`deleted_threshold` (f64) and a scalar `quantile` (f32) are floats in Qdrant: a whole
    number given for them is shown as one (1.0)."""
    name = collection()
    body = {
        "vectors": {"size": 2, "distance": "Dot"},
        "optimizers_config": {"deleted_threshold": 1},
        "quantization_config": {"scalar": {"type": "int8", "quantile": 1}},
    }
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    raw = http.get(f"/collections/{name}").text
    assert '"deleted_threshold":1.0' in raw and '"quantile":1.0' in raw, raw
