"""Quantization (scalar, product, binary with its encodings, turbo): configs checked and
echoed as Qdrant does over REST and gRPC, PATCH with "Disabled", and the effect: segments
walk quantized codes (less memory than the vectors), results rescored with the originals,
the `ignore` / `rescore` / `oversampling` search params, and a restart keeps it all."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tessera.collection.values import Quantization, SearchParams, VectorInput
from tessera.engine import Engine
from tessera.query import turbo
from tessera.query.filter_parse import parse_filter
from tessera.segment.quantization import code_bytes
from tests.conftest import free_port

N, DIM = 2000, 64

CONFIGS: list[dict[str, Any]] = [
    {"scalar": {"type": "int8", "quantile": 0.99}},
    {"product": {"compression": "x8"}},
    {"binary": {}},
    {"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}},
    {"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar4bits"}},
    {"turbo": {}},
    {"turbo": {"bits": "bits2"}},
    {"turbo": {"bits": "bits8"}},
    {"turbo": {"bits": "bits1"}},
    {"turbo": {"bits": "bits1_5"}},
]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "storage")
    yield eng
    eng.close()


def _data(seed: int = 0) -> np.ndarray[Any, Any]:
    """Clusters of low intrinsic dimension (8), as embeddings are; the bases are shared by
    every seed, so queries drawn with another seed come from the same distribution."""
    bases = np.random.default_rng(99).standard_normal((20, 8, DIM)) / np.sqrt(8)
    centers = np.random.default_rng(98).standard_normal((20, DIM))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 20, N)
    spread = np.einsum("nk,nkd->nd", rng.standard_normal((N, 8)), bases[labels])
    return (centers[labels] + spread + 0.05 * rng.standard_normal((N, DIM))).astype(np.float32)


def _search(
    engine: Engine, name: str, q: np.ndarray[Any, Any], exact: bool = False, **quant: Any
) -> tuple[list[Any], list[float]]:
    params = SearchParams(exact=exact, hnsw_ef=64, quantization=Quantization(**quant))
    query = VectorInput("", "dense", np.asarray(q, dtype=np.float32))
    hits = engine.toc.get(name).search(query, parse_filter(None), 10, params=params)
    return list(hits.ids), list(hits.scores or ())


def _build(engine: Engine, name: str, distance: str, config: dict[str, Any]) -> None:
    engine.create_collection(
        name,
        {
            "vectors": {"size": DIM, "distance": distance},
            "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
            "hnsw_config": {"full_scan_threshold": 10, "m": 16, "ef_construct": 64},
            "quantization_config": config,
        },
    )
    vectors = _data()
    for start in range(0, N, 1000):
        ids = list(range(start, start + 1000))
        engine.upsert_arrays(name, ids, vectors[ids], [{} for _ in ids])
    engine.wait_optimized(name)


@pytest.mark.parametrize("distance", ["Cosine", "Dot"])
def test_every_quantization_walks_codes_and_rescores(engine: Engine, distance: str) -> None:
    queries = _data(7)[:15]
    for i, config in enumerate(CONFIGS):
        name = f"q{i}"
        _build(engine, name, distance, config)
        segment = engine.toc.get(name).shard.holder.segments[0]
        index = segment.vector_indexes[""]
        assert index.quantized, config
        assert code_bytes(index.index) < N * DIM * 4, config  # codes, not float vectors
        found = 0
        for q in queries:
            exact_ids, exact_scores = _search(engine, name, q, exact=True)
            ids, scores = _search(engine, name, q, oversampling=4.0, rescore=True)
            found += len(set(ids) & set(exact_ids))
            by_id = dict(zip(exact_ids, exact_scores, strict=True))
            for pid, score in zip(ids, scores, strict=True):
                if pid in by_id:  # rescored with the original vectors: the exact score
                    assert score == pytest.approx(by_id[pid], abs=1e-4), config
        assert found / (10 * len(queries)) >= 0.8, (config, found)


@pytest.mark.parametrize(
    ("config", "rescored"),
    [
        ({"scalar": {"type": "int8"}}, False),
        ({"product": {"compression": "x8"}}, False),
        ({"binary": {}}, True),
        ({"turbo": {}}, False),
        ({"turbo": {"bits": "bits2"}}, True),
        ({"turbo": {"bits": "bits1"}}, True),
    ],
    ids=["scalar", "product", "binary", "turbo4", "turbo2", "turbo1"],
)
def test_a_search_that_does_not_say_rescores_as_the_quantization_decides(
    engine: Engine, config: dict[str, Any], rescored: bool
) -> None:
    """Qdrant's `default_rescoring`: binary and TurboQuant under 4 bits rescore with the
    original vectors, scalar, product and 4-bit TurboQuant answer their codes' scores;
    `rescore` given either way is obeyed."""
    _build(engine, "d", "Dot", config)
    queries = _data(9)[:8]
    exact = [dict(zip(*_search(engine, "d", q, exact=True), strict=True)) for q in queries]

    def all_exact(**quant: Any) -> bool:
        for q, by_id in zip(queries, exact, strict=True):
            ids, scores = _search(engine, "d", q, **quant)
            for pid, score in zip(ids, scores, strict=True):
                if pid in by_id and score != pytest.approx(by_id[pid], abs=1e-4):
                    return False
        return True

    assert all_exact() is rescored
    assert all_exact(rescore=True)
    assert not all_exact(rescore=False)


def test_search_params_rescore_ignore_and_restart(engine: Engine, tmp_path: Path) -> None:
    _build(engine, "t", "Cosine", {"turbo": {}})
    q = _data(3)[0]
    exact_ids, exact_scores = _search(engine, "t", q, exact=True)
    raw_ids, raw_scores = _search(engine, "t", q, rescore=False)
    rescored_ids, _ = _search(engine, "t", q)
    ignored_ids, ignored_scores = _search(engine, "t", q, ignore=True)
    # Without rescoring the scores are the codes' approximations, not the exact ones.
    exact_by_id = dict(zip(exact_ids, exact_scores, strict=True))
    assert any(
        abs(s - exact_by_id[p]) > 1e-4
        for p, s in zip(raw_ids, raw_scores, strict=True)
        if p in exact_by_id
    )
    # `ignore`: scores from the original vectors over the whole beam.
    assert len(set(ignored_ids) & set(exact_ids)) >= 8
    assert ignored_scores == pytest.approx(sorted(ignored_scores, reverse=True))
    engine.close()
    reopened = Engine(tmp_path / "storage")
    try:
        index = reopened.toc.get("t").shard.holder.segments[0].vector_indexes[""]
        assert index.quantized
        assert _search(reopened, "t", q)[0] == rescored_ids
    finally:
        reopened.close()


def test_binary_survives_restart(engine: Engine, tmp_path: Path) -> None:
    config = {"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}}
    _build(engine, "b", "Euclid", config)
    q = _data(5)[1]
    before = _search(engine, "b", q)
    codec = engine.toc.get("b").shard.holder.segments[0].vector_indexes[""].codec
    engine.close()
    reopened = Engine(tmp_path / "storage")
    try:
        index = reopened.toc.get("b").shard.holder.segments[0].vector_indexes[""]
        assert index.codec == codec
        assert _search(reopened, "b", q) == before
    finally:
        reopened.close()


def test_configs_are_echoed_and_patched(http: httpx.Client, collection: Any) -> None:
    name = collection()
    body = {
        "vectors": {
            "a": {
                "size": 8,
                "distance": "Dot",
                "quantization_config": {"binary": {"encoding": "one_and_half_bits"}},
            },
            "b": {"size": 8, "distance": "Cosine"},
        },
        "quantization_config": {"product": {"compression": "x16", "always_ram": True}},
    }
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    config = http.get(f"/collections/{name}").json()["result"]["config"]
    assert config["quantization_config"] == {"product": {"compression": "x16", "always_ram": True}}
    vectors = config["params"]["vectors"]
    assert vectors["a"]["quantization_config"] == {"binary": {"encoding": "one_and_half_bits"}}
    assert "quantization_config" not in vectors["b"]
    patch = {
        "vectors": {
            "a": {"quantization_config": "Disabled"},
            "b": {"quantization_config": {"turbo": {"bits": "bits1_5"}}},
        },
        "quantization_config": {"scalar": {"type": "int8", "quantile": 0.95, "memory": "cold"}},
    }
    assert http.patch(f"/collections/{name}", json=patch).status_code == 200
    config = http.get(f"/collections/{name}").json()["result"]["config"]
    assert config["quantization_config"] == {
        "scalar": {"type": "int8", "quantile": 0.95, "memory": "cold"}
    }
    assert "quantization_config" not in config["params"]["vectors"]["a"]
    assert config["params"]["vectors"]["b"]["quantization_config"] == {"turbo": {"bits": "bits1_5"}}
    assert (
        http.patch(f"/collections/{name}", json={"quantization_config": "Disabled"}).json()[
            "status"
        ]
        == "ok"
    )
    config = http.get(f"/collections/{name}").json()["result"]["config"]
    assert config["quantization_config"] is None


@pytest.mark.parametrize(
    ("config", "status", "message"),
    [
        ({"scalar": {"type": "int4"}}, 400, "did not match any variant of untagged enum"),
        ({"product": {"compression": "x3"}}, 400, "untagged enum QuantizationConfig"),
        ({"binary": {"encoding": "three_bits"}}, 400, "untagged enum QuantizationConfig"),
        ({"turbo": {"bits": "bits16"}}, 400, "untagged enum QuantizationConfig"),
        ("Disabled", 400, "untagged enum QuantizationConfig"),
        (
            {"scalar": {"type": "int8", "quantile": 0.3}},
            422,
            "quantization_config.scalar.quantile: value 0.3 invalid, must be from 0.5 to 1.0",
        ),
    ],
)
def test_bad_configs_are_refused(
    http: httpx.Client, collection: Any, config: Any, status: int, message: str
) -> None:
    name = collection()
    body = {"vectors": {"size": 4, "distance": "Dot"}, "quantization_config": config}
    response = http.put(f"/collections/{name}", json=body)
    assert response.status_code == status
    assert message in response.json()["status"]["error"]
    assert http.get(f"/collections/{name}").status_code == 404


def test_bad_patch_changes_nothing(http: httpx.Client, collection: Any) -> None:
    name = collection()
    body = {"vectors": {"size": 4, "distance": "Dot"}, "quantization_config": {"binary": {}}}
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    patch = {"optimizers_config": {"indexing_threshold": 7}, "quantization_config": {"x": {}}}
    assert http.patch(f"/collections/{name}", json=patch).status_code == 400
    config = http.get(f"/collections/{name}").json()["result"]["config"]
    assert config["quantization_config"] == {"binary": {}}
    assert config["optimizer_config"]["indexing_threshold"] != 7


def test_grpc_create_and_update(server_factory: Any, collection: Any) -> None:
    name = collection()
    server = server_factory(grpc_port=free_port())
    client = QdrantClient(
        host="127.0.0.1", port=server.port, grpc_port=server.grpc_port, prefer_grpc=True
    )
    client.create_collection(
        name,
        vectors_config={
            "v": models.VectorParams(
                size=16,
                distance=models.Distance.COSINE,
                quantization_config=models.BinaryQuantization(
                    binary=models.BinaryQuantizationConfig(
                        encoding=models.BinaryQuantizationEncoding.TWO_BITS,
                        query_encoding=models.BinaryQuantizationQueryEncoding.SCALAR4BITS,
                    )
                ),
            ),
            "t": models.VectorParams(
                size=16, distance=models.Distance.DOT, datatype=models.Datatype.TURBO4
            ),
        },
        quantization_config=models.TurboQuantization(
            turbo=models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS2)
        ),
    )
    info = client.get_collection(name)
    assert info.config.quantization_config == models.TurboQuantization(
        turbo=models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS2)
    )
    params = info.config.params.vectors["v"]  # type: ignore[index]
    binary = params.quantization_config.binary
    assert binary.encoding == models.BinaryQuantizationEncoding.TWO_BITS
    assert binary.query_encoding == models.BinaryQuantizationQueryEncoding.SCALAR4BITS
    assert info.config.params.vectors["t"].datatype == models.Datatype.TURBO4  # type: ignore[index]
    client.update_collection(
        name,
        vectors_config={"v": models.VectorParamsDiff(quantization_config=models.Disabled.DISABLED)},
        quantization_config=models.ProductQuantization(
            product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X32)
        ),
    )
    info = client.get_collection(name)
    assert info.config.params.vectors["v"].quantization_config is None  # type: ignore[index]
    assert info.config.quantization_config == models.ProductQuantization(
        product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X32)
    )
    client.close()


def test_rest_search_with_quantization_params(client: QdrantClient, collection: Any) -> None:
    name = collection()
    vectors = _data(11)[:600]
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
        hnsw_config=models.HnswConfigDiff(full_scan_threshold=10),
        quantization_config=models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True)
        ),
    )
    client.upload_collection(name, vectors=vectors, ids=list(range(600)), wait=True)
    q = vectors[3] + 0.01
    exact = client.query_points(
        name, query=q, limit=5, search_params=models.SearchParams(exact=True)
    ).points
    for quant in (
        models.QuantizationSearchParams(rescore=True, oversampling=2.0),
        models.QuantizationSearchParams(ignore=True),
    ):
        hits = client.query_points(
            name,
            query=q,
            limit=5,
            search_params=models.SearchParams(hnsw_ef=64, quantization=quant),
        ).points
        assert hits[0].id == exact[0].id == 3
        assert hits[0].score == pytest.approx(exact[0].score, abs=1e-4)

    # The Query API takes params.quantization too: without rescoring the scores are the
    # codes' (approximate), with it the originals' (exact).
    deadline = time.monotonic() + 60
    while client.get_collection(name).indexed_vectors_count != 600:
        assert time.monotonic() < deadline, "the segment was never indexed"
        time.sleep(0.1)
    exact_scores = {
        h.id: h.score
        for h in client.query_points(
            name, query=q, limit=20, search_params=models.SearchParams(exact=True)
        ).points
    }

    def scores(rescore: bool) -> list[float]:
        hits = client.query_points(
            name,
            query=q,
            limit=20,
            search_params=models.SearchParams(
                hnsw_ef=128, quantization=models.QuantizationSearchParams(rescore=rescore)
            ),
        ).points
        return [h.score - exact_scores[h.id] for h in hits if h.id in exact_scores]

    assert max(abs(d) for d in scores(True)) < 1e-4
    assert max(abs(d) for d in scores(False)) > 1e-4


def test_query_quantization_params_are_checked(http: httpx.Client, collection: Any) -> None:
    name = collection()
    body = {"vectors": {"size": DIM, "distance": "Dot"}}
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    url = f"/collections/{name}/points/query"
    query = {"query": [0.1] * DIM}
    r = http.post(url, json={**query, "params": {"quantization": {"oversampling": 0.5}}})
    assert r.status_code == 422, r.text
    assert r.json()["status"]["error"] == (
        "Validation error in JSON body: [params.quantization.oversampling: value 0.5 invalid, "
        "must be 1.0 or larger]"
    )
    r = http.post(url, json={**query, "params": {"quantization": {"ignore": "yes"}}})
    assert r.status_code == 400, r.text
    r = http.post(url, json={**query, "params": {"quantization": {"oversampling": 3}}})
    assert r.status_code == 200, r.text


def test_turbo4_datatype_stores_4_bits_and_returns_decoded(
    client: QdrantClient, collection: Any
) -> None:
    name = collection()
    vectors = _data(13)[:400]
    client.create_collection(
        name,
        vectors_config=models.VectorParams(
            size=DIM, distance=models.Distance.COSINE, datatype=models.Datatype.TURBO4
        ),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
        hnsw_config=models.HnswConfigDiff(full_scan_threshold=10),
    )
    info = client.get_collection(name)
    assert info.config.params.vectors.datatype == models.Datatype.TURBO4  # type: ignore[union-attr]
    client.upload_collection(name, vectors=vectors, ids=list(range(400)), wait=True)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    got = np.array(client.retrieve(name, [0, 1], with_vectors=True)[0].vector)
    # The dequantized vector: the 4-bit codec's output, close to (not equal to) the input.
    assert np.allclose(got, turbo.decode(turbo.encode(unit[0])), atol=1e-6)
    assert 0.98 < float(got @ unit[0]) / float(np.linalg.norm(got)) < 1.0
    for exact in (True, False):
        hits = client.query_points(
            name, query=vectors[7], limit=3, search_params=models.SearchParams(exact=exact)
        ).points
        assert hits[0].id == 7
        assert hits[0].score == pytest.approx(float(unit[7] @ turbo.decode(turbo.encode(unit[7]))))


def test_turbo4_rows_are_half_a_byte_per_dimension(engine: Engine, tmp_path: Path) -> None:
    engine.create_collection(
        "t4", {"vectors": {"size": 33, "distance": "Euclid", "datatype": "turbo4"}}
    )
    vectors = np.random.default_rng(2).standard_normal((50, 33)).astype(np.float32)
    engine.upsert_arrays("t4", list(range(50)), vectors, [{} for _ in range(50)])
    storage = engine.toc.get("t4").shard.holder.segments[0].storages[""]
    assert storage.matrix.shape[1] == 17 + 4  # 33 codes of 4 bits, a float32 scale
    before = storage.get(3)
    assert len(before) == 33 and before != vectors[3].tolist()
    engine.close()
    reopened = Engine(tmp_path / "storage")
    try:
        assert reopened.toc.get("t4").shard.holder.segments[0].storages[""].get(3) == before
        hits = reopened.search("t4", vectors[3], 1)
        assert hits[0][0] == 3
    finally:
        reopened.close()


def test_unknown_datatype_lists_turbo4(http: httpx.Client, collection: Any) -> None:
    name = collection()
    body = {"vectors": {"size": 4, "distance": "Dot", "datatype": "turbo32"}}
    response = http.put(f"/collections/{name}", json=body)
    assert response.status_code == 400
    wanted = "expected one of `float32`, `uint8`, `float16`, `turbo4`, `turbo8`, `turbo16`"
    assert wanted in response.text


@pytest.mark.parametrize("datatype", ["turbo4", "turbo8", "turbo16"])
def test_turbo_round_trip_error_matches_qdrant_edge(tmp_path: Path, datatype: str) -> None:
    """Qdrant Edge's turbo storage is the oracle: a returned vector is as far from the one
    sent as Edge's is (the codecs' rotations differ, so the values themselves do too)."""
    import qdrant_edge as qe

    x = np.random.default_rng(4).standard_normal((100, 96)).astype(np.float32)
    kind = getattr(qe.VectorStorageDatatype, datatype.capitalize())
    params = qe.EdgeVectorParams(size=96, distance=qe.Distance.Dot, datatype=kind)
    shard = qe.EdgeShard.create(str(tmp_path / "edge"), qe.EdgeConfig(vectors=params))
    shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, x[i].tolist()) for i in range(100)]))
    got = shard.retrieve(list(range(100)), with_payload=False, with_vector=True)
    edge = np.array([p.vector for p in sorted(got, key=lambda p: p.id)], dtype=np.float32)
    shard.close()
    ours = turbo.decode(turbo.encode_as(x, datatype))
    norms = np.linalg.norm(x, axis=1)
    edge_error = float(np.mean(np.linalg.norm(edge - x, axis=1) / norms))
    our_error = float(np.mean(np.linalg.norm(ours - x, axis=1) / norms))
    assert 0.0 < edge_error < 0.2
    assert 0.0 < our_error < 1.2 * edge_error


@pytest.mark.parametrize(("always_ram", "mapped"), [(True, False), (False, True)])
def test_always_ram_keeps_codes_off_the_map(tmp_path: Path, always_ram: bool, mapped: bool) -> None:
    """Vectors on disk: the quantized graph follows them into a file map, unless
    `always_ram` asks for the codes in RAM."""
    engine = Engine(tmp_path / "storage")
    engine.create_collection(
        "r",
        {
            "vectors": {"size": DIM, "distance": "Dot", "on_disk": True},
            "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
            "quantization_config": {"scalar": {"type": "int8", "always_ram": always_ram}},
        },
    )
    vectors = _data(21)[:600]
    engine.upsert_arrays("r", list(range(600)), vectors, [{} for _ in range(600)])
    engine.wait_optimized("r")
    engine.close()
    reopened = Engine(tmp_path / "storage")
    try:
        index = reopened.toc.get("r").shard.holder.segments[0].vector_indexes[""]
        assert index.quantized
        assert index.mapped is mapped
        ((exact_id, exact_score),) = reopened.search("r", vectors[9], 1, exact=True)
        ((found_id, found_score),) = reopened.search("r", vectors[9], 1)
        assert found_id == exact_id
        # the int8 codes' score: scalar quantization is not rescored unless a search asks
        assert found_score == pytest.approx(exact_score, rel=1e-2)
    finally:
        reopened.close()


def test_binary_graph_without_a_valid_codec_entry_is_damage(tmp_path: Path) -> None:
    # The codes cannot be read without the manifest's codec entry: one that is missing or
    # names no known encoding fails the load (the shard's damage handling reports it)
    # instead of reading the codes with a guessed encoding.
    from tessera.fileformat import FormatError
    from tessera.segment.ann_index import HnswIndex

    vectors = _data()[:200]
    config = {"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}}
    built = HnswIndex.build(vectors, "Cosine", 16, 64, config)
    path = tmp_path / "hnsw0.faiss"
    built.save(path)
    meta = built.codec_meta()
    loaded = HnswIndex.load(path, "Cosine", meta=meta)
    assert loaded.codec == built.codec
    bad: list[Any] = [
        None,
        {**(meta or {}), "encoding": "three_bits"},
        {**(meta or {}), "query_encoding": "scalar2bits"},
        {**(meta or {}), "dim": DIM + 8},
        {**(meta or {}), "dim": "64"},
    ]
    for entry in bad:
        with pytest.raises(FormatError):
            HnswIndex.load(path, "Cosine", meta=entry)


def test_turbo4_odd_dimension_with_unwritten_rows(engine: Engine) -> None:
    # A point without the turbo4 vector leaves an all-zero row, whose +0.0 scale does not
    # mark the dimension odd: decoding a batch that starts with one gave d + 1 columns, and
    # the optimizer built the graph one dimension too wide (every search then failed).
    rows = turbo.encode(np.ones((3, 5), dtype=np.float32))
    rows[0] = 0
    assert turbo.decode(rows).shape == (3, 5)
    assert turbo.decode(np.zeros_like(rows), dim=5).shape == (3, 5)
    engine.create_collection(
        "odd",
        {
            "vectors": {
                "t": {"size": 5, "distance": "Dot", "datatype": "turbo4"},
                "b": {"size": 2, "distance": "Dot"},
            },
            "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
            "hnsw_config": {"full_scan_threshold": 10},
        },
    )
    vectors = np.random.default_rng(5).standard_normal((3000, 5)).astype(np.float32)
    points: list[dict[str, Any]] = [{"id": 0, "vector": {"b": [1.0, 2.0]}}]
    points += [{"id": i, "vector": {"t": vectors[i].tolist()}} for i in range(1, 3000)]
    engine.upsert("odd", {"points": points})
    engine.wait_optimized("odd")
    collection = engine.toc.get("odd")
    graphs = [s.vector_indexes["t"] for s in collection.shard.holder.segments]
    assert graphs and all(g.index.d == 5 + 1 for g in graphs)  # Dot lifts by one dimension
    q = VectorInput("t", "dense", np.ones(5, dtype=np.float32))
    graph = collection.search(q, parse_filter(None), 5, params=SearchParams(hnsw_ef=64))
    exact = collection.search(q, parse_filter(None), 5, params=SearchParams(exact=True))
    assert len(set(graph.ids) & set(exact.ids)) >= 4


def test_a_damaged_quantized_graph_is_contained_to_its_collection(tmp_path: Path) -> None:
    # A flipped byte in a quantized graph's file: the checksum catches it at open, that
    # collection reports the damage and refuses to serve; the others load and answer.
    storage = tmp_path / "storage"
    engine = Engine(storage)
    try:
        _build(engine, "hit", "Cosine", {"scalar": {"type": "int8"}})
        _build(engine, "fine", "Cosine", {"binary": {}})
    finally:
        engine.close()
    graphs = sorted((storage / "collections" / "hit").rglob("hnsw*.faiss"))
    assert graphs
    for path in graphs:  # every generation's copy: no older checkpoint to fall back to
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    reopened = Engine(storage)
    try:
        assert reopened.toc.get("hit").damage
        with pytest.raises(Exception, match="damaged"):
            _search(reopened, "hit", _data(3)[0])
        assert not reopened.toc.get("fine").damage
        assert len(_search(reopened, "fine", _data(3)[0])[0]) == 10
    finally:
        reopened.close()


# ---------------------------------------------------------------- binary codes vs Qdrant Edge

_EDGE_ENCODING = {"one_bit": "OneBit", "two_bits": "TwoBits", "one_and_half_bits": "OneAndHalfBits"}
_EDGE_QUERY = {"default": "Default", "scalar4bits": "Scalar4Bits", "scalar8bits": "Scalar8Bits"}


def _edge_found(shard: Any, truth: list[set[int]], queries: Any) -> int:
    """How many of the true top-10 Edge returns over all queries (hnsw_ef 64, oversampling
    4, rescored)."""
    return sum(
        len(truth[j] & {int(h.id) for h in _edge_search(shard, q, 10, 64, oversampling=4.0)})
        for j, q in enumerate(queries)
    )


def _our_found(engine: Engine, name: str, truth: list[set[int]], queries: Any) -> int:
    """The same for Tessera's collection `name`."""
    return sum(
        len(truth[j] & set(_search(engine, name, q, oversampling=4.0)[0]))
        for j, q in enumerate(queries)
    )


def _edge_shard(path: Path, x: np.ndarray[Any, Any], quantization: Any) -> Any:
    """A one-segment Qdrant Edge shard of `x` (Cosine) with `quantization`, indexed."""
    import qdrant_edge as qe

    shard = qe.EdgeShard.create(
        str(path),
        qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(
                size=x.shape[1], distance=qe.Distance.Cosine, quantization_config=quantization
            ),
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=64, full_scan_threshold=1),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1, default_segment_number=1),
            max_search_threads=1,
        ),
    )
    shard.update(
        qe.UpdateOperation.upsert_points([qe.Point(i, x[i].tolist()) for i in range(len(x))])
    )
    shard.optimize()
    return shard


def _edge_binary_shard(path: Path, x: np.ndarray[Any, Any], encoding: str, query: str) -> Any:
    import qdrant_edge as qe

    config = qe.BinaryQuantizationConfig(
        always_ram=True,
        encoding=getattr(qe.BinaryQuantizationEncoding, _EDGE_ENCODING[encoding]),
        query_encoding=getattr(qe.BinaryQuantizationQueryEncoding, _EDGE_QUERY[query]),
    )
    return _edge_shard(path, x, config)


def _edge_search(shard: Any, q: np.ndarray[Any, Any], limit: int, ef: int, **quant: Any) -> Any:
    import qdrant_edge as qe

    params = qe.SearchParams(hnsw_ef=ef, quantization=qe.QuantizationSearchParams(**quant))
    request = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(q.tolist()), params=params)
    return shard.query(request)


@pytest.mark.parametrize("encoding", list(_EDGE_ENCODING))
def test_binary_scores_are_qdrant_edges(tmp_path: Path, encoding: str) -> None:
    """Qdrant Edge is the oracle: with rescoring off and a beam over every point, Edge
    answers each point's quantized score (dim - 2 x Hamming, or its scalar-query form).
    Tessera's codes of the same vectors give every point the same score, bit for bit, for
    every query encoding (an odd dimension exercises the 1.5-bit pairing's last one)."""
    from tessera.segment.ann_index import HnswIndex
    from tessera.segment.quantization import binary_codes_view

    rng = np.random.default_rng(11)
    n, dim = 300, 37
    x = (rng.standard_normal((n, dim)) + 0.3 * rng.standard_normal(dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # Cosine: both store unit vectors
    queries = rng.standard_normal((3, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for query in _EDGE_QUERY:
        shard = _edge_binary_shard(tmp_path / f"edge-{query}", x, encoding, query)
        config = {"binary": {"encoding": encoding, "query_encoding": query}}
        index = HnswIndex.build(x, "Cosine", 16, 64, config)
        assert index.codec is not None
        codes = binary_codes_view(index.index)
        try:
            for q in queries:
                hits = _edge_search(shard, q, n, n, rescore=False)
                assert len(hits) == n
                edge = np.zeros(n, dtype=np.float32)
                for hit in hits:
                    edge[int(hit.id)] = hit.score
                ours = index.codec.query_scores(q, codes)
                np.testing.assert_array_equal(ours, edge, err_msg=f"{encoding} {query}")
                # the walk's own scores (rescoring off) are the same numbers
                walked, labels = index.search(q, n, n, None)
                assert len(labels) > n // 2
                np.testing.assert_array_equal(walked, edge[labels], err_msg=f"walk {encoding}")
        finally:
            shard.close()


def test_binary_recall_is_not_below_qdrant_edges(tmp_path: Path, engine: Engine) -> None:
    """The same vectors, config and search (hnsw_ef 64, oversampling 4, rescored) in Edge
    and in Tessera: recall@10 against exact cosine is at least Edge's for every binary
    encoding (a point of slack over 300 results: the two graphs are built differently)."""
    vectors = _data()
    x = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = _data(7)[:30]
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = [set(np.argsort(-(x @ q))[:10].tolist()) for q in qn]
    configs = [
        ("one_bit", "default"),
        ("one_and_half_bits", "default"),
        ("two_bits", "default"),
        ("two_bits", "scalar8bits"),
    ]
    for i, (encoding, query) in enumerate(configs):
        shard = _edge_binary_shard(tmp_path / f"edge{i}", x, encoding, query)
        try:
            edge = _edge_found(shard, truth, qn)
        finally:
            shard.close()
        name = f"r{i}"
        _build(engine, name, "Cosine", {"binary": {"encoding": encoding, "query_encoding": query}})
        ours = _our_found(engine, name, truth, queries)
        assert ours >= edge - 3, (encoding, query, ours, edge)


def test_binary_segment_with_a_version_1_codec_loads_and_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment written before the codec had a version (per-vector thresholds, no
    statistics, a codec entry without "version") is read with the encoding it was written
    with: its queries are encoded alike, and it answers as before the upgrade."""
    from dataclasses import replace

    from tessera.segment.binary_codec import BinaryCodec

    config = {"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}}
    # The build as the code before version 2 did it: v1 codes, a codec entry without
    # "version", "mean" or "stddev".
    monkeypatch.setattr(BinaryCodec, "fitted", lambda self, data: replace(self, version=1))
    storage = tmp_path / "storage"
    engine = Engine(storage)
    queries = _data(5)[:10]
    try:
        _build(engine, "old", "Cosine", config)
        index = engine.toc.get("old").shard.holder.segments[0].vector_indexes[""]
        assert index.codec is not None and index.codec.version == 1
        meta = index.codec_meta()
        assert meta is not None and not {"version", "mean", "stddev"} & set(meta)
        before = [_search(engine, "old", q, oversampling=4.0) for q in queries]
        exact = [_search(engine, "old", q, exact=True)[0] for q in queries]
    finally:
        engine.close()
    monkeypatch.undo()
    reopened = Engine(storage)
    try:
        index = reopened.toc.get("old").shard.holder.segments[0].vector_indexes[""]
        assert index.codec is not None and index.codec.version == 1
        after = [_search(reopened, "old", q, oversampling=4.0) for q in queries]
        assert [ids for ids, _ in after] == [ids for ids, _ in before]
        found = sum(len(set(a[0]) & set(e)) for a, e in zip(after, exact, strict=True))
        assert found >= 0.8 * 10 * len(queries)
    finally:
        reopened.close()


def test_binary_codec_entry_round_trips_its_statistics(tmp_path: Path) -> None:
    """Version 2 keeps the per-dimension statistics in the codec entry (base64 of
    float32): a load encodes queries exactly as the build did; a missing or short one is
    damage."""
    from tessera.fileformat import FormatError
    from tessera.segment.ann_index import HnswIndex

    vectors = _data()[:300]
    built = HnswIndex.build(vectors, "Dot", 16, 64, {"binary": {"encoding": "one_and_half_bits"}})
    path = tmp_path / "hnsw0.faiss"
    built.save(path)
    meta = built.codec_meta()
    assert meta is not None and meta["version"] == 2 and meta["mean"] and meta["stddev"]
    loaded = HnswIndex.load(path, "Dot", meta=meta)
    assert loaded.codec == built.codec
    q = _data(3)[0]
    assert loaded.search(q, 10, 64, None)[1].tolist() == built.search(q, 10, 64, None)[1].tolist()
    short = meta["mean"][:-8]
    for entry in ({k: v for k, v in meta.items() if k != "stddev"}, {**meta, "mean": short}):
        with pytest.raises(FormatError):
            HnswIndex.load(path, "Dot", meta=entry)
    with pytest.raises(FormatError):
        HnswIndex.load(path, "Dot", meta={**meta, "version": 3})


# ---------------------------------------------------------------- turbo codes vs Qdrant Edge

_EDGE_TURBO = {"bits1": "Bits1", "bits1_5": "Bits1_5"}


def _edge_turbo_shard(path: Path, x: np.ndarray[Any, Any], bits: str) -> Any:
    import qdrant_edge as qe

    config = qe.TurboQuantQuantizationConfig(
        always_ram=True, bits=getattr(qe.TurboQuantBitSize, _EDGE_TURBO[bits])
    )
    return _edge_shard(path, x, config)


def _edge_turbo_files(path: Path, n: int, row: int) -> tuple[Any, np.ndarray[Any, Any]]:
    """Edge's TQ+ statistics (quantized.meta.json) and stored rows (quantized.data: the
    code, then 8 bytes of per-vector factors) of its indexed segment."""
    import json

    for data in path.rglob("quantized.data"):
        if data.stat().st_size == n * row:
            meta = json.loads((data.parent / "quantized.meta.json").read_text())
            return meta, np.fromfile(data, dtype=np.uint8).reshape(n, row)
    raise AssertionError("no indexed Edge segment with turbo codes")


@pytest.mark.parametrize("bits", list(_EDGE_TURBO))
def test_turbo_codes_and_scores_are_qdrant_edges(tmp_path: Path, bits: str) -> None:
    """Qdrant Edge is the oracle. With Edge's own TQ+ statistics, Tessera's rotation and
    packing give Edge's stored code of every vector bit for bit, and its score (rescoring
    off, a beam over every point) is Edge's to float precision (Edge quantizes the
    rotated query to 16 bits). Tessera's statistics are fitted from the same vectors
    (exact quantiles; Edge estimates them): the codes agree but for a few bits."""
    from tessera.segment.ann_index import HnswIndex
    from tessera.segment.turbo_codec import TurboCodec

    rng = np.random.default_rng(11)
    n, dim = 300, 37
    x = (rng.standard_normal((n, dim)) + 0.5 * rng.standard_normal(dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = rng.standard_normal((3, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    shard = _edge_turbo_shard(tmp_path / "edge", x, bits)
    try:
        hits = [_edge_search(shard, q, n, n, rescore=False) for q in queries]
    finally:
        shard.close()
    index = HnswIndex.build(x, "Cosine", 16, 64, {"turbo": {"bits": bits}})
    ours = index.turbo
    assert ours is not None
    meta, rows = _edge_turbo_files(tmp_path / "edge", n, ours.code_size + 8)
    assert meta["mode"] == "plus"
    stats = [np.asarray(meta["error_correction"][k], dtype="<f4") for k in ("shift", "scale")]
    edge = TurboCodec(dim, bits, stats[0].tobytes(), stats[1].tobytes())
    codes = edge.encode(x)
    np.testing.assert_array_equal(codes, rows[:, : ours.code_size])
    # Edge's stored factor 1 / |v|, from the same codes.
    norms = np.linalg.norm(edge.dequantize(codes), axis=1)
    np.testing.assert_allclose(rows[:, -8:-4].copy().view("<f4")[:, 0], 1 / norms, rtol=1e-5)
    for q, found in zip(queries, hits, strict=True):
        assert len(found) == n
        theirs = np.zeros(n, dtype=np.float32)
        for hit in found:
            theirs[int(hit.id)] = hit.score
        np.testing.assert_allclose(edge.query_scores(q, codes), theirs, atol=2e-4)
    differ = np.unpackbits(np.bitwise_xor(index.turbo.encode(x), codes)).mean()
    assert differ < 0.03, differ


def test_turbo_recall_is_not_below_qdrant_edges(tmp_path: Path, engine: Engine) -> None:
    """The same vectors, config and search (hnsw_ef 64, oversampling 4, rescored) in Edge
    and in Tessera: recall@10 against exact cosine is at least Edge's for turbo 1 and 1.5
    bits (a point of slack over 300 results: the two graphs are built differently)."""
    vectors = _data()
    x = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = _data(7)[:30]
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = [set(np.argsort(-(x @ q))[:10].tolist()) for q in qn]
    for bits in _EDGE_TURBO:
        shard = _edge_turbo_shard(tmp_path / f"edge-{bits}", x, bits)
        try:
            edge = _edge_found(shard, truth, qn)
        finally:
            shard.close()
        name = f"t{bits}"
        _build(engine, name, "Cosine", {"turbo": {"bits": bits}})
        index = engine.toc.get(name).shard.holder.segments[0].vector_indexes[""]
        assert index.turbo is not None and index.turbo.bits == bits
        ours = _our_found(engine, name, truth, queries)
        assert ours >= edge - 3, (bits, ours, edge)


def test_turbo_segment_written_before_version_2_loads_and_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turbo 1-bit segment written before version 2 (a rotated product quantizer in the
    faiss file, no codec entry) still loads as what it is and answers as before."""
    from tessera.segment import ann_index

    monkeypatch.setattr(ann_index, "turbo_v2_applies", lambda quantization, distance: False)
    storage = tmp_path / "storage"
    engine = Engine(storage)
    queries = _data(5)[:10]
    try:
        _build(engine, "old", "Cosine", {"turbo": {"bits": "bits1"}})
        index = engine.toc.get("old").shard.holder.segments[0].vector_indexes[""]
        assert index.turbo is None and index.quantized and index.codec_meta() is None
        before = [_search(engine, "old", q, oversampling=4.0) for q in queries]
        unscored = [_search(engine, "old", q, rescore=False) for q in queries]
        exact = [_search(engine, "old", q, exact=True)[0] for q in queries]
    finally:
        engine.close()
    monkeypatch.undo()
    reopened = Engine(storage)
    try:
        index = reopened.toc.get("old").shard.holder.segments[0].vector_indexes[""]
        assert index.turbo is None and index.quantized
        assert [_search(reopened, "old", q, oversampling=4.0) for q in queries] == before
        assert [_search(reopened, "old", q, rescore=False) for q in queries] == unscored
        found = sum(len(set(b[0]) & set(e)) for b, e in zip(before, exact, strict=True))
        assert found >= 0.7 * 10 * len(queries)
    finally:
        reopened.close()


def test_turbo_codec_entry_round_trips(tmp_path: Path) -> None:
    """Version 2 keeps the TQ+ statistics in the codec entry: a load scores queries as the
    build did, with the same walk; an entry without its statistics, a short one or an
    unknown one is damage."""
    from tessera.fileformat import FormatError
    from tessera.segment.ann_index import HnswIndex

    vectors = _data()[:300]
    x = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    built = HnswIndex.build(x, "Cosine", 16, 64, {"turbo": {"bits": "bits1_5"}})
    path = tmp_path / "hnsw0.faiss"
    built.save(path)
    meta = built.codec_meta()
    assert meta is not None and meta["kind"] == "turbo" and meta["version"] == 2
    q = x[3]
    for mmap in (False, True):
        loaded = HnswIndex.load(path, "Cosine", mmap=mmap, meta=meta)
        assert loaded.turbo == built.turbo
        got, want = loaded.search(q, 10, 64, None), built.search(q, 10, 64, None)
        assert got[1].tolist() == want[1].tolist()
        np.testing.assert_array_equal(got[0], want[0])
    for entry in (
        {k: v for k, v in meta.items() if k != "scale"},
        {**meta, "shift": meta["shift"][:-8]},
        {**meta, "version": 3},
        {**meta, "bits": "bits1"},
    ):
        with pytest.raises(FormatError):
            HnswIndex.load(path, "Cosine", meta=entry)


@pytest.mark.parametrize("dim", [37, 256, 1100])
def test_turbo_query_rotation_is_the_transform(dim: int) -> None:
    """A query is rotated by one cached matrix product up to 1024 padded coordinates, by
    the transforms beyond: both are the codes' rotation (up to float64 summation order)."""
    from tessera.segment import turbo_codec

    size = turbo_codec.padded_dim(dim, "bits1")
    codec = turbo_codec.TurboCodec(dim, "bits1", b"", b"")
    q = np.random.default_rng(dim).standard_normal(dim).astype(np.float32)
    expected = turbo_codec.rotate(q.reshape(1, -1), size)[0].astype(np.float32)
    np.testing.assert_allclose(codec.query(q), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "config", [{"binary": {"encoding": "two_bits"}}, {"turbo": {"bits": "bits1"}}], ids=str
)
def test_a_filtered_walk_over_codes_keeps_to_the_filter(config: dict[str, Any]) -> None:
    """Binary and turbo walks take the filter as a faiss selector over a bitmap: every hit
    of every query is a candidate, query after query (the bitmap lives through the walk)."""
    from tessera.segment.ann_index import HnswIndex

    x = _data()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = HnswIndex.build(x, "Cosine", 16, 64, config)
    rng = np.random.default_rng(4)
    for q in _data(9)[:40]:
        mask = rng.random(N) < 0.3
        _scores, labels = index.search(q / np.linalg.norm(q), 10, 64, mask)
        assert len(labels) and mask[labels].all(), config
    # A filter's cache entry keeps the walk's parameters (and the bitmap they point at)
    # from query to query.
    walks: dict[Any, Any] = {}
    mask = rng.random(N) < 0.2
    for q in _data(9)[40:80]:
        gc.collect()
        _scores, labels = index.search(q / np.linalg.norm(q), 10, 64, mask, walks=walks)
        assert len(labels) and mask[labels].all(), config
    assert len(walks) == 1


WIDE = [("turbo8", 17 + 2, np.int16), ("turbo16", 33 + 2, np.uint16)]


@pytest.mark.parametrize(("datatype", "width", "dtype"), WIDE)
def test_turbo8_and_turbo16_rows(
    engine: Engine, tmp_path: Path, datatype: str, width: int, dtype: Any
) -> None:
    """8 and 16 bits per dimension in rows of their own dtype, kept across a restart; what
    comes back is the decoded vector, and searches score it."""
    engine.create_collection(
        "t", {"vectors": {"size": 33, "distance": "Euclid", "datatype": datatype}}
    )
    vectors = np.random.default_rng(2).standard_normal((50, 33)).astype(np.float32)
    engine.upsert_arrays("t", list(range(50)), vectors, [{} for _ in range(50)])
    storage = engine.toc.get("t").shard.holder.segments[0].storages[""]
    assert storage.matrix.shape[1] == width and storage.matrix.dtype == dtype
    before = storage.get(3)
    tolerance = 0.02 if datatype == "turbo8" else 1e-4
    assert np.linalg.norm(np.array(before) - vectors[3]) < tolerance * np.linalg.norm(vectors[3])
    assert before != vectors[3].tolist()
    engine.close()
    reopened = Engine(tmp_path / "storage")
    try:
        assert reopened.toc.get("t").shard.holder.segments[0].storages[""].get(3) == before
        ((found, score),) = reopened.search("t", vectors[3], 1)
        assert found == 3
        assert score == pytest.approx(
            float(np.linalg.norm(np.array(before) - vectors[3])), abs=1e-4
        )
    finally:
        reopened.close()


@pytest.mark.parametrize("dim", [7, 33, 256])
@pytest.mark.parametrize("encoding", ["two_bits", "one_and_half_bits"])
def test_binary_codes_follow_the_band_rule_with_flat_dimensions(dim: int, encoding: str) -> None:
    """The codes against the module's rule, computed here value by value: dimensions whose
    standard deviation is under f32 epsilon (every third here) take the sign and no second
    bit; the others their band of z = (x - mean) / sd."""
    from tessera.segment.binary_codec import BinaryCodec

    rng = np.random.default_rng(dim)
    data = rng.standard_normal((300, dim)).astype(np.float32)
    data[:, ::3] = 0.25
    codec = BinaryCodec.from_config(dim, {"binary": {"encoding": encoding}}).fitted(data)
    mean = np.frombuffer(codec.mean or b"", dtype="<f4")
    sd = np.frombuffer(codec.stddev or b"", dtype="<f4")
    queries = rng.standard_normal((20, dim)).astype(np.float32)
    bits = np.unpackbits(codec.encode(queries), axis=1, bitorder="little")
    for q, row in zip(queries, bits, strict=True):
        first, second = [], []
        for i in range(dim):
            if sd[i] < np.finfo(np.float32).eps:
                first.append(q[i] > 0)
                second.append(False)
            else:
                z = (q[i] - mean[i]) / sd[i]
                first.append(z > np.float32(2 / 3) * -1)
                second.append(z >= np.float32(2 / 3))
        if encoding == "one_and_half_bits":
            second += [False] * (dim % 2)
            second = [a or b for a, b in zip(second[0::2], second[1::2], strict=True)]
        expected = first + second
        assert row[: len(expected)].astype(bool).tolist() == expected
        assert not row[len(expected) :].any()
