"""Named vectors added to and removed from a live collection (Qdrant 1.19):
`PUT/DELETE /collections/{c}/vectors/{name}`, the gRPC twins, and their durability."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.conftest import free_port, make_grpc_client

pytestmark = pytest.mark.server_only(reason="wire errors and restarts")


def _wait_green(client: QdrantClient, name: str, timeout: float = 60.0) -> models.CollectionInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_collection(name)
        if info.status == models.CollectionStatus.GREEN or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def _vectors(config: models.CollectionConfig) -> dict[str, Any]:
    vectors = config.params.vectors
    assert isinstance(vectors, dict)
    return vectors


def test_dense_vector_added_and_removed_on_a_live_collection(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    collection = collection()
    client.create_collection(
        collection,
        vectors_config={"a": models.VectorParams(size=4, distance=models.Distance.COSINE)},
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1),
    )
    rng = np.random.default_rng(7)
    a = rng.random((300, 4)).astype(np.float32)
    client.upsert(
        collection,
        [models.PointStruct(id=i, vector={"a": a[i].tolist()}) for i in range(300)],
    )
    _wait_green(client, collection)  # the existing points live in an indexed segment

    result = client.create_vector_name(
        collection,
        "b",
        models.DenseVectorNameConfig(
            dense=models.DenseVectorConfig(size=3, distance=models.Distance.DOT)
        ),
    )
    assert result.status == models.UpdateStatus.COMPLETED
    params = _vectors(client.get_collection(collection).config)
    assert set(params) == {"a", "b"}
    assert params["b"].size == 3 and params["b"].distance == models.Distance.DOT

    # Existing points have no value for it; writes may now carry it.
    record = client.retrieve(collection, [5], with_vectors=True)[0]
    assert set(record.vector or {}) == {"a"}
    client.update_vectors(collection, [models.PointVectors(id=5, vector={"b": [1, 0, 0]})])
    client.upsert(
        collection, [models.PointStruct(id=1000, vector={"a": [1, 1, 1, 1], "b": [0, 1, 0]})]
    )
    record = client.retrieve(collection, [5], with_vectors=True)[0]
    assert record.vector == {"a": pytest.approx(a[5] / np.linalg.norm(a[5])), "b": [1, 0, 0]}
    hits = client.query_points(collection, query=[1, 0.5, 0], using="b", limit=10).points
    assert [h.id for h in hits] == [5, 1000]
    assert (
        client.count(
            collection, count_filter=models.Filter(must=[models.HasVectorCondition(has_vector="b")])
        ).count
        == 2
    )

    # The same schema again changes nothing; another one is refused.
    again = http.put(
        f"/collections/{collection}/vectors/b", json={"dense": {"size": 3, "distance": "Dot"}}
    )
    assert again.status_code == 200, again.text
    for body, text in [
        (
            {"dense": {"size": 5, "distance": "Dot"}},
            "Wrong input: Vector `b` already exists with a different configuration",
        ),
        ({"sparse": {}}, "Wrong input: Vector `b` already exists as a dense vector"),
    ]:
        r = http.put(f"/collections/{collection}/vectors/b", json=body)
        assert r.status_code == 400 and r.json()["status"]["error"] == text, r.text
    for body in [{}, {"dense": {"size": 0, "distance": "Dot"}}, {"dense": {"size": 3}}, []]:
        r = http.put(f"/collections/{collection}/vectors/c", json=body)
        assert r.status_code in (400, 422), r.text
    assert set(_vectors(client.get_collection(collection).config)) == {"a", "b"}

    # Removing drops the data everywhere; an unknown name is a no-op, as in Qdrant.
    client.delete_vector_name(collection, "a")
    assert set(_vectors(client.get_collection(collection).config)) == {"b"}
    record = client.retrieve(collection, [5], with_vectors=True)[0]
    assert record.vector == {"b": [1, 0, 0]}
    r = http.delete(f"/collections/{collection}/vectors/nope")
    assert r.status_code == 200, r.text
    with pytest.raises(UnexpectedResponse) as bad:
        client.upsert(collection, [models.PointStruct(id=1, vector={"a": [1, 1, 1, 1]})])
    assert bad.value.status_code == 400
    assert client.count(collection).count == 301


def test_sparse_vector_name_and_unnamed_default(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    collection = collection()
    client.create_collection(
        collection, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    client.upsert(collection, [models.PointStruct(id=i, vector=[i, 1]) for i in range(1, 4)])
    r = http.delete(f"/collections/{collection}/vectors/")
    assert r.status_code == 404
    client.create_vector_name(
        collection,
        "text",
        models.SparseVectorNameConfig(
            sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)
        ),
    )
    config = client.get_collection(collection).config
    assert config.params.sparse_vectors == {
        "text": models.SparseVectorParams(modifier=models.Modifier.IDF)
    }
    r = http.put(f"/collections/{collection}/vectors/text", json={"sparse": {"modifier": "none"}})
    assert r.status_code == 400
    assert r.json()["status"]["error"] == (
        "Wrong input: Sparse vector `text` already exists with a different configuration"
    )
    client.update_vectors(
        collection,
        [
            models.PointVectors(
                id=2, vector={"text": models.SparseVector(indices=[7], values=[2.0])}
            )
        ],
    )
    hits = client.query_points(
        collection, query=models.SparseVector(indices=[7], values=[1.0]), using="text"
    ).points
    assert [h.id for h in hits] == [2]
    client.delete_vector_name(collection, "text")
    # Qdrant keeps the map, empty, once its last sparse name is gone (an absent one is None)
    assert client.get_collection(collection).config.params.sparse_vectors == {}
    record = client.retrieve(collection, [2], with_vectors=True)[0]
    assert record.vector == [2, 1]


def test_sparse_vectors_map_shown_as_given(server_factory: Any) -> None:
    """`params.sparse_vectors` is absent only when no map was ever given: a create with
    `{}` shows `{}`, as does a collection whose last sparse name was deleted, over REST and
    gRPC and after a restart (Qdrant's `Option<BTreeMap>`, skipped only when None)."""
    server = server_factory(grpc_port=free_port())
    http = httpx.Client(base_url=server.url, timeout=30)
    dot = {"size": 2, "distance": "Dot"}
    bodies: dict[str, dict[str, Any]] = {
        "given_empty": {"vectors": dot, "sparse_vectors": {}},
        "absent": {"vectors": dot},
        "null": {"vectors": dot, "sparse_vectors": None},
        "emptied": {"vectors": dot, "sparse_vectors": {"s": {}}},
        "added_then_deleted": {"vectors": dot},
    }
    for name, body in bodies.items():
        assert http.put(f"/collections/{name}", json=body).status_code == 200
    assert http.delete("/collections/emptied/vectors/s").status_code == 200
    assert http.put("/collections/added_then_deleted/vectors/t", json={"sparse": {}}).is_success
    assert http.delete("/collections/added_then_deleted/vectors/t").status_code == 200
    grpc = make_grpc_client(server, timeout=30, check_compatibility=False)
    grpc.create_collection(
        "grpc_empty",
        vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
        sparse_vectors_config={},
    )
    grpc.create_collection(
        "grpc_absent", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    expected = {
        "given_empty": {},
        "absent": None,
        "null": None,
        "emptied": {},
        "added_then_deleted": {},
        "grpc_empty": {},
        "grpc_absent": None,
    }

    def shown() -> tuple[dict[str, Any], dict[str, Any]]:
        rest = {
            name: http.get(f"/collections/{name}")
            .json()["result"]["config"]["params"]
            .get("sparse_vectors")
            for name in expected
        }
        over_grpc = {
            name: grpc.get_collection(name).config.params.sparse_vectors for name in expected
        }
        return rest, over_grpc

    assert shown() == (expected, expected)
    grpc.close()
    server.restart()
    grpc = make_grpc_client(server, timeout=30, check_compatibility=False)
    assert shown() == (expected, expected)
    grpc.close()


def test_vector_name_changes_survive_crash_and_replay(server_factory: Any) -> None:
    """Each change is logged between writes that use it: kill -9 at any point, the replay
    must rebuild the same state, including a name removed and re-created with another size."""
    server = server_factory(grpc_port=free_port())
    _grpc_twins(server)
    url = server.url
    client = QdrantClient(url=url, timeout=30, check_compatibility=False)
    client.create_collection(
        "c", vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)}
    )
    client.upsert("c", [models.PointStruct(id=1, vector={"a": [1, 0]})])
    dense = models.DenseVectorNameConfig
    client.create_vector_name(
        "c", "b", dense(dense=models.DenseVectorConfig(size=3, distance=models.Distance.DOT))
    )
    client.upsert("c", [models.PointStruct(id=2, vector={"a": [0, 1], "b": [1, 2, 3]})])
    client.delete_vector_name("c", "b")
    client.create_vector_name(
        "c", "b", dense(dense=models.DenseVectorConfig(size=2, distance=models.Distance.DOT))
    )
    client.upsert("c", [models.PointStruct(id=3, vector={"b": [5, 6]})])
    client.close()
    server.kill()
    server.start()
    client = QdrantClient(url=url, timeout=30, check_compatibility=False)
    try:
        vectors = _vectors(client.get_collection("c").config)
        assert set(vectors) == {"a", "b"} and vectors["b"].size == 2
        records = {r.id: r.vector for r in client.retrieve("c", [1, 2, 3], with_vectors=True)}
        assert records == {1: {"a": [1, 0]}, 2: {"a": [0, 1]}, 3: {"b": [5, 6]}}
        client.delete_vector_name("c", "a")
    finally:
        client.close()
    server.restart(graceful=True)
    client = QdrantClient(url=url, timeout=30, check_compatibility=False)
    try:
        assert set(_vectors(client.get_collection("c").config)) == {"b"}
        records = {r.id: r.vector for r in client.retrieve("c", [1, 2, 3], with_vectors=True)}
        assert records == {1: {}, 2: {}, 3: {"b": [5, 6]}}
    finally:
        client.close()


def _grpc_twins(server: Any) -> None:
    collection = "g"
    grpc = QdrantClient(
        host=server.host,
        port=server.port,
        grpc_port=server.grpc_port,
        prefer_grpc=True,
        timeout=30,
        check_compatibility=False,
    )
    try:
        grpc.create_collection(
            collection,
            vectors_config=models.VectorParams(
                size=2, distance=models.Distance.DOT, memory=models.Memory.CACHED
            ),
            payload=models.PayloadStorageParams(memory=models.Memory.COLD),
        )
        params = grpc.get_collection(collection).config.params
        assert params.payload == models.PayloadStorageParams(memory=models.Memory.COLD)
        assert isinstance(params.vectors, models.VectorParams)
        assert params.vectors.memory == models.Memory.CACHED
        with pytest.raises(Exception, match="Cannot delete the unnamed vector"):
            grpc.delete_vector_name(collection, "")
        grpc.create_vector_name(
            collection,
            "m",
            models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(
                    size=2,
                    distance=models.Distance.EUCLID,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                    datatype=models.VectorStorageDatatype.FLOAT16,
                )
            ),
        )
        vectors = _vectors(grpc.get_collection(collection).config)
        assert set(vectors) == {"", "m"}
        assert vectors["m"].multivector_config is not None
        assert vectors["m"].datatype == models.Datatype.FLOAT16
        grpc.upsert(collection, [models.PointStruct(id=1, vector={"": [1, 2], "m": [[1, 1]]})])
        hits = grpc.query_points(collection, query=[[1, 1]], using="m").points
        assert [h.id for h in hits] == [1]
        grpc.delete_vector_name(collection, "m")
        assert set(_vectors(grpc.get_collection(collection).config)) == {""}

        # A sparse name over gRPC, queried with an IDF corpus (SearchParams.idf).
        grpc.create_vector_name(
            collection,
            "s",
            models.SparseVectorNameConfig(
                sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)
            ),
        )
        term = {"s": models.SparseVector(indices=[4], values=[1.0])}
        grpc.upsert(
            collection,
            [
                models.PointStruct(id=i, vector={"": [1, 1], **term}, payload={"odd": i % 2})
                for i in range(2, 6)
            ],
        )
        odd = models.Filter(
            must=[models.FieldCondition(key="odd", match=models.MatchValue(value=1))]
        )
        hits = grpc.query_points(
            collection,
            query=models.SparseVector(indices=[4], values=[1.0]),
            using="s",
            search_params=models.SearchParams(idf=models.IdfCorpusParams(corpus=odd)),
        ).points
        # df 2 of the 2 odd points: ln((2 - 2 + 0.5) / (2 + 0.5) + 1)
        assert hits[0].score == pytest.approx(float(np.log(0.5 / 2.5 + 1)), rel=1e-5)
    finally:
        grpc.close()


def test_vector_name_records_round_trip() -> None:
    from tessera.shard import op_codec
    from tessera.shard import operations as ops

    dense = {"dense": {"size": 3, "distance": "Dot", "datatype": "float16"}}
    for record in [
        ops.CreateVectorName("b", dense),
        ops.CreateVectorName("s", {"sparse": {"modifier": "idf"}}),
        ops.DeleteVectorName("b"),
    ]:
        assert ops.decode(ops.encode(record)) == record
    with pytest.raises(op_codec.RecordFormatError, match="vector config is not an object"):
        op_codec.decode_record(b"\x02\x0c\x01\x00\x00\x00b\x00\x02\x00\x00\x00[]")


def _open(path: Any, config: Any) -> Any:
    from tessera.shard.shard import LocalShard

    return LocalShard(path, config)


def test_replay_from_an_older_checkpoint_applies_each_record_to_its_schema(tmp_path: Any) -> None:
    """A crash after the records but before any checkpoint that holds them: recovery starts
    from the checkpoint's schema (not config.json's newer one) and replays the records in
    order, including a name removed and re-created with another size in between."""
    import copy

    from tessera.collection_config import parse_create_collection
    from tessera.shard import operations as ops

    created = parse_create_collection({"vectors": {"a": {"size": 2, "distance": "Dot"}}})

    def upsert(pid: int, vectors: dict[str, list[float]]) -> ops.UpsertPoints:
        columns: dict[str, ops.VectorColumn] = {
            name: ops.DenseColumn(np.ones(1, dtype=bool), np.asarray([v], dtype=np.float32))
            for name, v in vectors.items()
        }
        return ops.UpsertPoints([pid], columns, [None])

    dense = {"dense": {"size": 3, "distance": "Dot"}}
    smaller = {"dense": {"size": 2, "distance": "Dot"}}
    shard = _open(tmp_path, copy.deepcopy(created))
    try:
        shard.update(lambda h: upsert(1, {"a": [1, 0]}))
        shard.flush(force=True)  # the checkpoint knows only "a"
        for record in [
            ops.CreateVectorName("b", dense),
            upsert(2, {"a": [0, 1], "b": [1, 2, 3]}),
            ops.DeleteVectorName("b"),
            ops.CreateVectorName("b", smaller),
            upsert(3, {"b": [5, 6]}),
        ]:
            shard.update(lambda h, r=record: r)
        newest = copy.deepcopy(shard.config)
    finally:
        shard.close(flush=False)  # a crash: the WAL holds the records, no checkpoint does

    for config in (copy.deepcopy(created), newest):  # whatever config.json says
        shard = _open(tmp_path, config)
        try:
            assert set(shard.config.vectors) == {"a", "b"}
            assert shard.config.vectors["b"].size == 2
            with shard.read() as holder:
                found = {
                    pid: seg.vectors_at(off)
                    for pid in (1, 2, 3)
                    for seg, off in [holder.locate(pid)]  # type: ignore[misc]
                }
            assert found == {1: {"a": [1, 0]}, 2: {"a": [0, 1]}, 3: {"b": [5, 6]}}
        finally:
            shard.close(flush=False)


def test_a_new_name_costs_no_file_until_a_point_has_it(tmp_path: Any) -> None:
    """Adding a vector to segments of many points must not write matrices of zeros: the
    manifest names no file for a storage that was never written."""
    from tessera.collection_config import parse_create_collection
    from tessera.shard import operations as ops
    from tessera.shard.shard import manifest_generations, manifest_name, read_manifest

    config = parse_create_collection({"vectors": {"a": {"size": 2, "distance": "Dot"}}})
    shard = _open(tmp_path, config)
    try:
        column = ops.DenseColumn(np.ones(50, dtype=bool), np.ones((50, 2), dtype=np.float32))
        points = ops.UpsertPoints(list(range(50)), {"a": column}, [None] * 50)
        shard.update(lambda h: points)
        shard.update(lambda h: ops.CreateVectorName("b", {"dense": {"size": 8, "distance": "Dot"}}))
        shard.flush(force=True)
        manifest = read_manifest(tmp_path / manifest_name(manifest_generations(tmp_path)[0]))
        assert manifest["vectors"]["vectors"]["b"] == {"dense": {"size": 8, "distance": "Dot"}}
        components = {c for entry in manifest["segments"] for c in entry["files"]}
        assert "vec:a" in components and "vec:b" not in components
    finally:
        shard.close(flush=False)
    shard = _open(
        tmp_path, parse_create_collection({"vectors": {"a": {"size": 2, "distance": "Dot"}}})
    )
    try:
        assert set(shard.config.vectors) == {"a", "b"}
        with shard.read() as holder:
            located = holder.locate(7)
            assert located is not None
            assert located[0].vectors_at(located[1]) == {"a": [1.0, 1.0]}
    finally:
        shard.close(flush=False)


def test_a_name_removed_and_recreated_during_a_rebuild_keeps_no_old_data(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optimizer builds outside the lock: a name deleted and created again (another
    size) meanwhile must not come back in the rebuilt segment with the deleted data, nor
    with rows of the old size under the new schema."""
    from tessera.collection_config import parse_create_collection
    from tessera.shard import operations as ops
    from tessera.shard import optimizer as optimizer_module

    config = parse_create_collection(
        {
            "vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}},
            "optimizers_config": {"indexing_threshold": 1},
        }
    )
    shard = _open(tmp_path, config)
    try:
        shard.optimizer.stop()  # driven by hand below
        n = 200
        a = ops.DenseColumn(np.ones(n, dtype=bool), np.ones((n, 2), dtype=np.float32))
        b = ops.DenseColumn(np.ones(n, dtype=bool), np.full((n, 2), 7.0, dtype=np.float32))
        shard.update(lambda h: ops.UpsertPoints(list(range(n)), {"a": a, "b": b}, [None] * n))
        build = optimizer_module.build_segment

        def racing_build(*args: Any, **kwargs: Any) -> Any:
            new = build(*args, **kwargs)
            shard.update(lambda h: ops.DeleteVectorName("b"))
            three = {"dense": {"size": 3, "distance": "Dot"}}
            shard.update(lambda h: ops.CreateVectorName("b", three))
            return new

        monkeypatch.setattr(optimizer_module, "build_segment", racing_build)
        monkeypatch.setattr(optimizer_module, "idle_since", lambda seconds: True)
        assert shard.optimizer.run_once()
        assert shard.config.vectors["b"].size == 3
        with shard.read() as holder:
            located = holder.locate(5)
            assert located is not None
            assert located[0].vectors_at(located[1]) == {"a": [1.0, 1.0]}
            for segment in holder.segments:
                assert not segment.storages["b"].has(segment.size).any()
                assert "b" not in segment.vector_indexes
    finally:
        shard.close(flush=False)


def test_a_patched_sparse_modifier_survives_a_restart_before_any_checkpoint(
    tmp_path: Any,
) -> None:
    """PATCH may change a sparse vector's modifier (and index); it is not logged, only
    config.json has it. Recovery restores the checkpoint's vector names, and must keep
    config.json's tuning of a sparse name the checkpoint holds too, not the older one."""
    from tessera.collection_config import apply_update, parse_create_collection
    from tessera.config_json import decode_update

    created = {"sparse_vectors": {"s": {}}}
    shard = _open(tmp_path, parse_create_collection(created))
    try:
        shard.flush(force=True)  # the checkpoint has "s" without a modifier
    finally:
        shard.close(flush=False)
    patched = parse_create_collection(created)
    apply_update(patched, decode_update({"sparse_vectors": {"s": {"modifier": "idf"}}}))
    assert patched.sparse_vectors["s"].modifier == "idf"
    shard = _open(tmp_path, patched)  # config.json as the PATCH left it
    try:
        assert shard.config.sparse_vectors["s"].modifier == "idf"
    finally:
        shard.close(flush=False)


def test_a_patch_during_a_vector_name_change_is_not_lost(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATCH and a vector name change both rewrite the config: a PATCH that lands while the
    name change replaces the config's vector dicts must not be undone by it, in memory or
    in config.json."""
    import threading

    from tessera.collection.collection import Collection, read_config
    from tessera.collection.vector_names import create_vector_name
    from tessera.collection_config import parse_create_collection
    from tessera.config_json import decode_update
    from tessera.shard import vector_schema

    config = parse_create_collection({"vectors": {"a": {"size": 2, "distance": "Dot"}}})
    collection = Collection("c", tmp_path, config)
    inside, go = threading.Event(), threading.Event()
    set_params = vector_schema.set_params

    def slow_set_params(config: Any, name: str, params: Any) -> None:
        """The copy of the dicts is taken, then the new ones are assigned a moment later."""
        dense = dict(config.vectors)
        inside.set()
        go.wait(10)
        config.vectors = dense
        set_params(config, name, params)

    monkeypatch.setattr(vector_schema, "set_params", slow_set_params)
    try:
        adding = threading.Thread(
            target=collection.update_vector_names,
            args=(create_vector_name("b", {"dense": {"size": 3, "distance": "Dot"}}),),
        )
        adding.start()
        assert inside.wait(10)
        patching = threading.Thread(
            target=collection.update_config,
            args=(decode_update({"vectors": {"a": {"on_disk": True}}}),),
        )
        patching.start()
        patching.join(1.0)  # without serialization it is done by now (never a false failure)
        go.set()
        adding.join(10)
        patching.join(10)
        assert not adding.is_alive() and not patching.is_alive()
        for seen in (collection.config, read_config(tmp_path)):
            assert set(seen.vectors) == {"a", "b"}
            assert seen.vectors["a"].on_disk is True
    finally:
        go.set()
        collection.close(flush=False)


def test_a_crash_between_the_checkpoint_and_config_json(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint holds the new name, config.json does not yet: reopening takes the
    checkpoint's schema and rewrites config.json to match."""
    from tessera.collection import collection as collection_module
    from tessera.collection.collection import Collection, read_config, write_config
    from tessera.collection.vector_names import create_vector_name
    from tessera.collection_config import parse_create_collection

    config = parse_create_collection({"vectors": {"a": {"size": 2, "distance": "Dot"}}})
    write_config(tmp_path, config)
    collection = Collection("c", tmp_path, config)
    monkeypatch.setattr(collection_module, "write_config", lambda path, config: None)
    try:
        collection.update_vector_names(
            create_vector_name("b", {"dense": {"size": 3, "distance": "Dot"}})
        )
    finally:
        collection.close(flush=False)  # the crash: config.json was never rewritten
    monkeypatch.undo()
    assert set(read_config(tmp_path).vectors) == {"a"}
    reopened = Collection("c", tmp_path, None)
    try:
        assert reopened.failure is None
        assert set(reopened.config.vectors) == {"a", "b"}
        assert set(read_config(tmp_path).vectors) == {"a", "b"}
    finally:
        reopened.close(flush=False)
