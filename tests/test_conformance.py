"""Qdrant's answers and errors, exactly: rendering, aliases, and a table of invalid inputs.

Each row of the table is a request Qdrant refuses, with the status and the start of the
text Qdrant answers (actix's JSON extractor: 400 "Format error in JSON body"; the
`validator` crate: 422 "Validation error in JSON body"; the engine: 400 "Wrong input").
After every refusal the collection must be as it was: nothing written, nothing created.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from qdrant_client import QdrantClient, models

from tessera.api.json_depth import check_depth
from tessera.errors import BadRequest
from tests.conftest import free_port

Make = Callable[..., str]

SPARSE_AND_DENSE = {
    "vectors": {"size": 3, "distance": "Dot"},
    "sparse_vectors": {"text": {}},
}


def _create(http: httpx.Client, name: str, body: dict[str, Any]) -> None:
    response = http.put(f"/collections/{name}", json=body)
    assert response.status_code == 200, response.text


def _upsert(http: httpx.Client, name: str, points: list[dict[str, Any]]) -> None:
    response = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
    assert response.status_code == 200, response.text


def _raw(response: httpx.Response) -> str:
    return response.content.decode()


# --------------------------------------------------------------------------------------------
# Rendering


def test_unnamed_vector_beside_sparse_renders_bare(http: httpx.Client, collection: Make) -> None:
    name = collection()
    _create(http, name, SPARSE_AND_DENSE)
    _upsert(
        http,
        name,
        [
            {"id": 1, "vector": [0.15, 0.2, 0.3]},
            {"id": 2, "vector": {"": [1, 2, 3], "text": {"indices": [7], "values": [0.5]}}},
        ],
    )
    got = http.post(f"/collections/{name}/points", json={"ids": [1, 2], "with_vector": True})
    records = {r["id"]: r["vector"] for r in got.json()["result"]}
    assert records[1] == [0.15, 0.2, 0.3]
    assert records[2] == {"": [1.0, 2.0, 3.0], "text": {"indices": [7], "values": [0.5]}}
    only = http.post(f"/collections/{name}/points", json={"ids": [2], "with_vector": [""]})
    assert only.json()["result"][0]["vector"] == [1.0, 2.0, 3.0]


def test_point_without_vectors_renders_empty_map(http: httpx.Client, collection: Make) -> None:
    """As qdrant-edge answers: the unnamed vector deleted, the point has `{}`, not null."""
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    _upsert(http, name, [{"id": 1, "vector": [1, 2]}])
    deleted = http.post(
        f"/collections/{name}/points/vectors/delete?wait=true", json={"points": [1], "vector": [""]}
    )
    assert deleted.status_code == 200, deleted.text
    assert http.get(f"/collections/{name}/points/1").json()["result"]["vector"] == {}


def test_float32_values_render_shortest(http: httpx.Client, collection: Make) -> None:
    name = collection()
    _create(http, name, {"vectors": {"size": 3, "distance": "Dot"}, "sparse_vectors": {"s": {}}})
    _upsert(
        http,
        name,
        [{"id": 1, "vector": {"": [0.15, 0.1, 1 / 3], "s": {"indices": [1], "values": [0.7]}}}],
    )
    body = _raw(http.get(f"/collections/{name}/points/1"))
    assert "[0.15,0.1,0.33333334]" in body
    assert '"values":[0.7]' in body
    assert "0.15000000596" not in body
    found = http.post(
        f"/collections/{name}/points/query",
        json={"query": [0.5, 0.0, 0.0], "with_vector": True},
    )
    hit = json.loads(found.content)["result"]["points"][0]
    assert hit["score"] == 0.075  # the f32 0.075 would widen to 0.07500000298...
    assert '"score":0.075,' in _raw(found)


def test_root_and_probes_answer_as_qdrant(http: httpx.Client) -> None:
    root = http.get("/").json()
    assert set(root) == {"title", "version", "commit"}
    assert http.get("/livez").text == "healthz check passed"
    assert http.get("/healthz").text == "healthz check passed"
    assert http.get("/readyz").text == "all shards are ready"


# --------------------------------------------------------------------------------------------
# Accepted as Qdrant accepts


def test_delete_vectors_takes_vectors_alias(http: httpx.Client, collection: Make) -> None:
    name = collection()
    _create(
        http,
        name,
        {"vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}}},
    )
    _upsert(http, name, [{"id": 1, "vector": {"a": [1, 2], "b": [3, 4]}}])
    response = http.post(
        f"/collections/{name}/points/vectors/delete?wait=true",
        json={"points": [1], "vectors": ["a"]},
    )
    assert response.status_code == 200, response.text
    got = http.get(f"/collections/{name}/points/1").json()["result"]["vector"]
    assert got == {"b": [3.0, 4.0]}


def test_search_params_acorn_and_indexed_only(http: httpx.Client, collection: Make) -> None:
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    _upsert(http, name, [{"id": 1, "vector": [1, 2]}])
    params = {"acorn": {"enable": True, "max_selectivity": 0.4}, "indexed_only": True}
    found = http.post(f"/collections/{name}/points/query", json={"query": [1, 0], "params": params})
    assert found.status_code == 200, found.text
    assert [p["id"] for p in found.json()["result"]["points"]] == [1]
    legacy = {"vector": [1, 0], "limit": 1, "params": params}
    assert http.post(f"/collections/{name}/points/search", json=legacy).status_code == 200


def test_dense_vector_for_multivector_is_one_row(http: httpx.Client, collection: Make) -> None:
    name = collection()
    multi = {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}
    _create(http, name, {"vectors": {"m": multi}})
    _upsert(http, name, [{"id": 1, "vector": {"m": [1, 2]}}])
    assert http.get(f"/collections/{name}/points/1").json()["result"]["vector"] == {
        "m": [[1.0, 2.0]]
    }
    # a plain dense query against the multivector is one row too (as qdrant-edge answers)
    found = http.post(f"/collections/{name}/points/query", json={"query": [1, 0], "using": "m"})
    assert found.status_code == 200, found.text
    assert [(p["id"], p["score"]) for p in found.json()["result"]["points"]] == [(1, 1.0)]
    # `[]` is an empty dense vector to serde (the first form it tries): for a multivector,
    # a dimension error (400), written nowhere, as an upsert, a batch or a query example.
    dim = "Wrong input: Vector dimension error: expected dim: 2, got 0"
    for path, body in (
        ("/points", {"points": [{"id": 2, "vector": {"m": []}}]}),
        ("/points", {"batch": {"ids": [2], "vectors": {"m": [[]]}}}),
        ("/points/query", {"query": {"recommend": {"positive": [[]]}}, "using": "m"}),
        ("/points/recommend", {"positive": [[]], "using": "m", "limit": 2}),
    ):
        method = http.put if path == "/points" else http.post
        response = method(f"/collections/{name}{path}", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["status"]["error"] == dim
    assert http.get(f"/collections/{name}/points/2").status_code == 404


def test_patch_metadata_null_deletes_key(http: httpx.Client, collection: Make) -> None:
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}, "metadata": {"a": 1, "b": 2}})
    response = http.patch(f"/collections/{name}", json={"metadata": {"a": None, "c": 3}})
    assert response.status_code == 200, response.text
    config = http.get(f"/collections/{name}").json()["result"]["config"]
    assert config["metadata"] == {"b": 2, "c": 3}
    # The first metadata of a collection is taken as it comes, nulls too; later updates
    # leave the keys they do not name alone.
    other = collection()
    _create(http, other, {"vectors": {"size": 2, "distance": "Dot"}})
    response = http.patch(f"/collections/{other}", json={"metadata": {"a": None, "b": 1}})
    assert response.status_code == 200, response.text
    response = http.patch(f"/collections/{other}", json={"metadata": {}})
    assert response.status_code == 200, response.text
    shown = http.get(f"/collections/{other}").json()["result"]["config"]["metadata"]
    assert shown == {"a": None, "b": 1}


def test_formula_null_payload_is_not_a_number(http: httpx.Client, collection: Make) -> None:
    """A payload null is a value, not a missing one: Qdrant's engine (qdrant-edge) and
    local mode both refuse it even with a default; a missing value takes the default."""
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    _upsert(
        http,
        name,
        [
            {"id": 1, "vector": [1, 0], "payload": {}},
            {"id": 2, "vector": [1, 0], "payload": {"boost": 2}},
        ],
    )
    query = {
        "prefetch": {"query": [1, 0], "limit": 10},
        "query": {"formula": {"sum": ["$score", "boost"]}, "defaults": {"boost": 5}},
    }
    response = http.post(f"/collections/{name}/points/query", json=query)
    assert response.status_code == 200, response.text
    scores = {p["id"]: p["score"] for p in response.json()["result"]["points"]}
    assert scores == {1: 6.0, 2: 3.0}
    _upsert(http, name, [{"id": 3, "vector": [1, 0], "payload": {"boost": None}}])
    refused = http.post(f"/collections/{name}/points/query", json=query)
    assert refused.status_code == 400, refused.text
    message = refused.json()["status"]["error"]
    assert message.startswith("Wrong input: Expected number value for boost"), message
    assert message.endswith("Value is not a number"), message


def test_sample_offset_as_qdrant(http: httpx.Client, collection: Make) -> None:
    """A random sample of the whole collection ignores `offset` (Qdrant: its output is not
    stable); over prefetches the offset applies."""
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    _upsert(http, name, [{"id": i, "vector": [1, 0]} for i in range(1, 6)])
    url = f"/collections/{name}/points/query"
    whole = http.post(url, json={"query": {"sample": "random"}, "limit": 10, "offset": 3})
    assert whole.status_code == 200, whole.text
    assert len(whole.json()["result"]["points"]) == 5
    prefetched = {"prefetch": {"query": [1, 0], "limit": 5}, "query": {"sample": "random"}}
    over = http.post(url, json={**prefetched, "limit": 10, "offset": 3})
    assert over.status_code == 200, over.text
    assert len(over.json()["result"]["points"]) == 2


def test_root_filter_merges_into_prefetch_clause_by_clause(
    http: httpx.Client, collection: Make
) -> None:
    """Qdrant merges the root's filter into each prefetch's clause by clause: two `should`
    lists become one list of alternatives (a OR b), not two groups (a AND b)."""
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    points = [
        {"id": i, "vector": [1, i / 10], "payload": {"a": i % 2, "b": i // 2 % 2}}
        for i in range(1, 9)
    ]
    _upsert(http, name, points)

    def should(key: str) -> dict[str, Any]:
        return {"should": [{"key": key, "match": {"value": 1}}]}

    body = {
        "prefetch": {"query": [1, 0], "filter": should("b"), "limit": 10},
        "query": {"fusion": "rrf"},
        "filter": should("a"),
        "limit": 10,
    }
    response = http.post(f"/collections/{name}/points/query", json=body)
    assert response.status_code == 200, response.text
    found = sorted(p["id"] for p in response.json()["result"]["points"])
    assert found == [p["id"] for p in points if p["payload"]["a"] or p["payload"]["b"]]


def test_validation_places_as_qdrant_names_them(http: httpx.Client, collection: Make) -> None:
    """Texts of Qdrant 1.19's validator (its own openapi tests and reports against it)."""
    name = collection()
    too_wide = {"vectors": {"size": 65537, "distance": "Dot"}}
    refused = http.put(f"/collections/{name}", json=too_wide)
    assert refused.status_code == 422, refused.text
    assert refused.json()["status"]["error"] == (
        "Validation error in JSON body: [vectors.size: value 65537 invalid, must be from 1 to "
        "65536]"
    )
    _create(http, name, {"vectors": {}, "sparse_vectors": {"s": {}}})
    repeated = {"indices": [1, 1], "values": [0.5, 0.5]}
    url = f"/collections/{name}/points/query"
    root = http.post(url, json={"query": repeated, "using": "s"})
    assert root.status_code == 422, root.text
    assert root.json()["status"]["error"] == (
        "Validation error in JSON body: [internal.query.indices: Validation error: must be "
        "unique [{}]]"
    )
    ok = {"query": {"indices": [1], "values": [1.0]}, "using": "s"}
    body = {"prefetch": [ok, {"query": repeated, "using": "s"}], "query": {"fusion": "rrf"}}
    nested = http.post(url, json=body)
    assert nested.status_code == 422, nested.text
    assert nested.json()["status"]["error"] == (
        "Validation error in JSON body: [internal.prefetch[1].query.indices: Validation error: "
        "must be unique [{}]]"
    )


def test_group_requests_refused_as_qdrant(http: httpx.Client, collection: Make) -> None:
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    url = f"/collections/{name}/points"
    base = {"query": [1, 0], "group_by": "g"}
    cases = [
        (
            "/query/groups",
            {**base, "group_size": 0},
            422,
            "Validation error in JSON body: [search_group_request.group_request.group_size: "
            "value 0 invalid, must be 1 or larger]",
        ),
        (
            "/query/groups",
            {**base, "limit": 0},
            422,
            "Validation error in JSON body: [search_group_request.group_request.limit: "
            "value 0 invalid, must be 1 or larger]",
        ),
        (
            "/query/groups",
            {**base, "group_by": ""},
            400,
            "Format error in JSON body: Invalid json path: ''",
        ),
        (
            "/query/groups",
            {"query": [1, 0]},
            400,
            "Format error in JSON body: missing field `group_by`",
        ),
        (
            "/search/groups",
            {"vector": [1, 0], "group_by": "g", "group_size": 0, "limit": 3},
            422,
            "Validation error in JSON body: [search_group_request.group_request.group_size: "
            "value 0 invalid, must be 1 or larger]",
        ),
        (
            "/recommend/groups",
            {"positive": [1], "group_by": "g", "group_size": 1, "limit": 0},
            422,
            "Validation error in JSON body: [recommend_group_request.group_request.limit: "
            "value 0 invalid, must be 1 or larger]",
        ),
    ]
    for route, body, status, text in cases:
        answer = http.post(url + route, json=body)
        assert answer.status_code == status, (route, body, answer.text)
        assert answer.json()["status"]["error"] == text


def test_lookups_answer_before_the_node_rules(http: httpx.Client, collection: Make) -> None:
    """Qdrant reads the vectors a query names (and their `lookup_from` collection) before it
    checks the node rules: a missing collection, vector or point is the answer."""
    name, other = collection(), collection()
    _create(http, name, {"vectors": {"image": {"size": 2, "distance": "Dot"}}})
    _create(http, other, {"vectors": {"image": {"size": 2, "distance": "Dot"}}})
    _upsert(http, other, [{"id": 1, "vector": {"image": [1, 0]}}])

    def answer(lookup: dict[str, Any], positive: list[int]) -> Any:
        prefetch = {"query": {"recommend": {"positive": positive}}, "using": "image"}
        body = {
            "prefetch": [{**prefetch, "lookup_from": lookup}],
            "query": {"fusion": "rrf"},
            "using": "image",  # refused with fusion, but only after the reads
        }
        return http.post(f"/collections/{name}/points/query", json=body).json()["status"]

    missing = answer({"collection": "no_such_coll_y"}, [1])
    assert missing["error"] == "Not found: Collection no_such_coll_y not found"
    assert answer({"collection": other, "vector": "nope"}, [1])["error"] == (
        "Wrong input: Not existing vector name error: nope"
    )
    assert answer({"collection": other}, [1, 3])["error"] == "Not found: No point with id 3 found"
    assert answer({"collection": other}, [1])["error"] == (
        "Bad request: Fusion queries cannot be combined with the 'using' field."
    )
    # `with_lookup` of a groups query names a missing collection in the same words.
    body = {
        "query": [1, 0],
        "using": "image",
        "group_by": "g",
        "with_lookup": {"collection": "no_such_coll_y"},
    }
    status = http.post(f"/collections/{name}/points/query/groups", json=body)
    assert status.status_code == 404
    assert status.json()["status"]["error"] == "Not found: Collection no_such_coll_y not found"


def test_query_limit_and_long_names_as_qdrant(http: httpx.Client, collection: Make) -> None:
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    url = f"/collections/{name}/points/query"
    zero = http.post(url, json={"query": [1, 0], "limit": 0})
    assert zero.status_code == 422
    assert zero.json()["status"]["error"] == (
        "Validation error in JSON body: [internal.limit: value 0 invalid, must be 1 or larger]"
    )
    batch = http.post(url + "/batch", json={"searches": [{"query": [1, 0]}, {"limit": 0}]})
    assert batch.status_code == 422
    assert batch.json()["status"]["error"] == (
        "Validation error in JSON body: [searches[1].internal.limit: value 0 invalid, must be 1 "
        "or larger]"
    )
    long = http.get(f"/collections/{'x' * 300}/points/1")
    assert long.status_code == 422
    assert long.json()["status"]["error"].startswith("Validation error in path parameters:")
    # An image names its model (required): without one no VectorInput form matches. (A
    # `text` without a model is a BM25 text query, which needs the field in `using`.)
    no_model = http.post(url, json={"query": {"image": "hello"}})
    assert no_model.status_code == 400
    assert "did not match any variant of untagged enum" in no_model.json()["status"]["error"]
    no_field = http.post(url, json={"query": {"text": "hello"}})
    assert no_field.status_code == 400
    assert "`using`" in no_field.json()["status"]["error"]
    # A model other than BM25 goes to Qdrant's inference service; none is configured, and
    # Qdrant answers a service error in words applications test for (to send vectors instead).
    unavailable = (
        "Service internal error: InferenceService is not initialized. Please check if it was "
        "properly configured and initialized during startup."
    )
    for inference in (
        {"text": "hello", "model": "m"},
        {"image": "https://example.com/a.png", "model": "clip"},
        {"object": {"x": 1}, "model": "m"},
    ):
        response = http.post(url, json={"query": inference})
        assert response.status_code == 500, inference
        assert response.json()["status"]["error"] == unavailable
    point = {"id": 5, "vector": {"text": "hello", "model": "m"}}
    response = http.put(f"/collections/{name}/points", json={"points": [point]})
    assert response.status_code == 500
    assert response.json()["status"]["error"] == unavailable
    # An empty model breaks the validator's `length(min = 1)`, before any inference: 422.
    empty = "length must be at least 1]"
    for body, place in (
        ({"query": {"text": "hello", "model": ""}}, "internal.query.model"),
        (
            {"prefetch": {"query": {"image": "a.png", "model": ""}}},
            "internal.prefetch[0].query.model",
        ),
    ):
        response = http.post(url, json=body)
        assert response.status_code == 422, body
        assert (
            response.json()["status"]["error"]
            == f"Validation error in JSON body: [{place}: {empty}"
        )
    point = {"id": 5, "vector": {"object": "x", "model": ""}}
    response = http.put(f"/collections/{name}/points", json={"points": [point]})
    assert response.status_code == 422
    assert response.json()["status"]["error"] == (
        f"Validation error in JSON body: [points[0].vector.model: {empty}"
    )
    count = http.post(f"/collections/{name}/points/count", json={}).json()["result"]["count"]
    assert count == 0


# --------------------------------------------------------------------------------------------
# Refused as Qdrant refuses, nothing written

VECTORS = {"vectors": {"size": 2, "distance": "Dot"}, "sparse_vectors": {"s": {}}}


def _filtered(condition: dict[str, Any]) -> dict[str, Any]:
    return {"filter": {"must": [condition]}}


P = "/collections/{c}/points"

# A relevance feedback query without feedback (Qdrant's RelevanceFeedbackInput rule refuses it).
NO_FEEDBACK = {
    "relevance_feedback": {
        "target": [1, 0],
        "feedback": [],
        "strategy": {"naive": {"a": 1, "b": 1, "c": 1}},
    }
}
# (method, path, body, status, the start of Qdrant's message)
REFUSED: list[tuple[str, str, Any, int, str]] = [
    (
        "POST",
        P + "/vectors/delete",
        {"points": [1], "vector": []},
        422,
        "Validation error in JSON body: [vector: must specify vector names to delete]",
    ),
    (
        "PUT",
        P + "/vectors",
        {"points": [{"id": 1, "vector": {}}]},
        422,
        "Validation error in JSON body: [points[0].vector: must specify vectors to update",
    ),
    ("PUT", P, {"points": [{"id": 9, "vector": [3.5e38, 1]}]}, 400, "Wrong input:"),
    # null is none of a vector's forms, named or in a batch's column
    (
        "PUT",
        P,
        {"points": [{"id": 9, "vector": {"": [1, 1], "s": None}}]},
        400,
        "Format error in JSON body: data did not match any variant of untagged enum VectorStruct",
    ),
    (
        "PUT",
        P + "/vectors",
        {"points": [{"id": 1, "vector": {"s": None}}]},
        400,
        "Format error in JSON body: data did not match any variant of untagged enum VectorStruct",
    ),
    (
        "PUT",
        P,
        {"batch": {"ids": [9], "vectors": {"": [None]}}},
        400,
        "Format error in JSON body: data did not match any variant of untagged enum "
        "BatchVectorStruct",
    ),
    (
        "PUT",
        P,
        {"points": [{"id": 9, "vector": {"": [1, 1], "s": {"indices": [1], "values": [1e39]}}}]},
        400,
        "Wrong input:",
    ),
    (
        "PUT",
        P,
        # a raw body: Python's json cannot nest that deep
        '{"points": [{"id": 9, "vector": [1, 1], "payload": {"a": '
        + "[" * 1000
        + "]" * 1000
        + "}}]}",
        400,
        "Format error in JSON body: recursion limit exceeded",
    ),
    (
        "PUT",
        P,
        {"points": [{"id": 9, "vector": [1, 2, 3]}]},
        400,
        "Wrong input: Vector dimension error: expected dim: 2, got 3",
    ),
    (
        "PUT",
        P,
        {"points": [{"vector": [1, 2]}]},
        400,
        "Format error in JSON body: missing field `id`",
    ),
    (
        "POST",
        P,
        {"ids": [1], "with_vector": ["nope"]},
        400,
        "Wrong input: Not existing vector name error: nope",
    ),
    (
        "POST",
        P + "/scroll",
        {"with_vector": ["nope"]},
        400,
        "Wrong input: Not existing vector name",
    ),
    (
        "POST",
        P + "/query",
        {"query": [1, 0], "with_vector": ["nope"]},
        400,
        "Wrong input: Not existing vector name",
    ),
    (
        "POST",
        P + "/scroll",
        {"order_by": "n", "offset": 1},
        400,
        "Wrong input: Cannot use an `offset` when using `order_by`",
    ),
    (
        "POST",
        P + "/query",
        {"query": [1, 0], "params": {"hnsw_ef": 0}},
        422,
        "Validation error in JSON body: [params.hnsw_ef",
    ),
    (
        "POST",
        P + "/search",
        {"vector": [1, 0], "limit": 3, "params": {"hnsw_ef": 0}},
        422,
        "Validation error in JSON body: [search_request.params.hnsw_ef",
    ),
    (
        "POST",
        P + "/query",
        {"query": [1, 0], "params": {"acorn": {"enable": True, "max_selectivity": 1.5}}},
        422,
        "Validation error in JSON body: [params.acorn.max_selectivity: value 1.5 invalid",
    ),
    (
        "POST",
        P + "/search",
        {"vector": [1, 0], "limit": 3, "params": {"acorn": {"max_selectivity": -0.1}}},
        422,
        "Validation error in JSON body: [search_request.params.acorn.max_selectivity",
    ),
    (
        "POST",
        P + "/query?timeout=0",
        {"query": [1, 0]},
        400,
        "Deserialize error in query parameters: invalid value: integer `0`",
    ),
    (
        "POST",
        P + "/query",
        {"query": [1, 0], "lookup_from": {"collection": "no_such_coll_x"}},
        404,
        "Not found: Collection no_such_coll_x not found",
    ),
    (
        "POST",
        P + "/query",
        {"query": NO_FEEDBACK},
        422,
        "Validation error in JSON body: [internal.query.relevance_feedback.feedback: feedback "
        "elements must be non-empty]",
    ),
    (
        "POST",
        P + "/query",
        {
            "prefetch": {
                "query": {
                    "relevance_feedback": {
                        "target": [1, 0],
                        "feedback": [{"example": [0, 1], "score": 0.5}],
                        "strategy": {"naive": {"a": 1, "b": -1, "c": 1}},
                    }
                }
            },
            "query": {"fusion": "rrf"},
        },
        422,
        "Validation error in JSON body: [internal.prefetch[0].query.relevance_feedback.strategy"
        ".naive.b: value -1.0 invalid, must be 0.0 or larger]",
    ),
    (  # (Qdrant's QueryGroupsRequest flattens its query part under search_group_request)
        "POST",
        P + "/query/groups",
        {"group_by": "g", "query": NO_FEEDBACK},
        422,
        "Validation error in JSON body: [search_group_request.query.relevance_feedback.feedback: "
        "feedback elements must be non-empty]",
    ),
    ("POST", P + "/query", {"query": [1, 0], "limit": 0}, 422, "Validation error in JSON body:"),
    ("POST", P + "/query", {"query": {"fusion": "nope"}}, 400, "Format error in JSON body:"),
    ("POST", P + "/query", {"query": {"order_by": None}}, 400, "Format error in JSON body:"),
    (
        "POST",
        P + "/query",
        {"query": {"recommend": {"positive": [], "negative": [1]}}},
        400,
        # The Query API averages the examples while converting the query (avg_vectors); the
        # "At least one positive vector ID" check belongs to the legacy recommend routes.
        "Wrong input: Validation failed: Positive vectors should not be empty with `average` "
        "strategy",
    ),
    # no example at all breaks RecommendInput's validation rule, before the query runs
    (
        "POST",
        P + "/query",
        {"query": {"recommend": {"positive": [], "strategy": "best_score"}}},
        422,
        "Validation error in JSON body: [internal.query.recommend.positives, negatives: At "
        "least one positive or negative vector/id must be provided]",
    ),
    (
        "POST",
        P + "/recommend",
        {"positive": [], "negative": [], "strategy": "best_score", "limit": 3},
        400,
        "Bad request: At least one positive or negative vector ID required with this strategy",
    ),
    ("POST", P + "/query", {"query": [1, 0], "limit": "x"}, 400, "Format error in JSON body:"),
    (
        "POST",
        P + "/scroll",
        {"limit": 0},
        422,
        "Validation error in JSON body: [scroll_request.limit",
    ),
    (
        "POST",
        P + "/search/matrix/pairs",
        {"sample": 0},
        422,
        "Validation error in JSON body: [search_request.sample: value 0 invalid, must be 2 or "
        "larger]",
    ),
    (
        "POST",
        P + "/scroll",
        _filtered({"key": "n", "match": {"value": 1.5}}),
        400,
        "Format error in JSON body:",
    ),
    (
        "POST",
        P + "/scroll",
        _filtered({"key": "n", "range": {"gt": "x"}}),
        400,
        "Format error in JSON body:",
    ),
    ("POST", P + "/scroll", _filtered({"foo": 1}), 400, "Format error in JSON body:"),
    (
        "POST",
        P + "/count",
        _filtered({"key": "g", "geo_radius": {"center": {"lat": 100, "lon": 0}, "radius": 1}}),
        400,
        "Format error in JSON body:",
    ),
    (
        "POST",
        P + "/count",
        _filtered(
            {
                "key": "g",
                "geo_polygon": {
                    "exterior": {
                        "points": [{"lat": 0, "lon": 0}, {"lat": 1, "lon": 1}, {"lat": 0, "lon": 0}]
                    }
                },
            }
        ),
        422,
        "Validation error in JSON body:",
    ),
    (
        "POST",
        P + "/count",
        _filtered({"key": "n", "values_count": {"gt": -1}}),
        400,
        "Format error in JSON body:",
    ),
    ("POST", P + "/delete", _filtered({"has_id": [-5]}), 400, "Format error in JSON body:"),
    (
        "POST",
        P + "/payload",
        {"payload": {"a": 1}, "points": [1], "filter": {"must": {"bad": 1}}},
        400,
        "Format error in JSON body:",
    ),
    (
        "POST",
        P + "/search",
        {"vector": [1, 0], "limit": 0},
        422,
        "Validation error in JSON body: [search_request.limit",
    ),
    (
        "POST",
        "/collections/{c}/facet",
        {"key": "n", "limit": 0},
        422,
        "Validation error in JSON body: [facet_request.limit",
    ),
    ("POST", P + "/count", {"exact": "yes"}, 400, "Format error in JSON body:"),
    ("PUT", P, {"points": {"id": 9}}, 400, "Format error in JSON body:"),
    ("PUT", P, {"points": [{"id": -1, "vector": [1, 2]}]}, 400, "Format error in JSON body:"),
    (
        "PUT",
        P,
        {"batch": {"ids": [8, 9], "vectors": [[1, 2]]}},
        422,
        "Validation error in JSON body: [batch: number of ids and vectors must be equal (2 != 1)]",
    ),
    (
        "PUT",
        P,
        {"batch": {"ids": [9], "vectors": [[1, 2]], "payloads": [{}, {}]}},
        422,
        "Validation error in JSON body: [batch: number of ids and payloads must be equal (1 != 2)]",
    ),
    ("POST", P + "/payload", {"points": [1]}, 400, "Format error in JSON body:"),
    ("POST", P + "/delete", {}, 400, "Format error in JSON body:"),
    ("POST", P + "/batch", {"operations": [{"explode": {}}]}, 400, "Format error in JSON body:"),
    ("POST", P + "/query", {"prefetch": {"query": [1, 0]}}, 400, "Bad request: A query is needed"),
    (
        "POST",
        P + "/query",
        {"query": [1, 0], "using": "nope"},
        400,
        "Wrong input: Not existing vector name error: nope",
    ),
    ("POST", P + "/query", {"query": [1, 0, 0]}, 400, "Wrong input: Vector dimension error"),
    # Qdrant's validator paths run through the field a request struct is flattened from
    (
        "POST",
        P + "/search/batch",
        {"searches": [{"vector": [1, 0], "limit": 3}, {"vector": [1, 0], "limit": 0}]},
        422,
        "Validation error in JSON body: [searches[1].search_request.limit: value 0 invalid",
    ),
    (
        "POST",
        P + "/recommend",
        {"positive": [1], "limit": 0},
        422,
        "Validation error in JSON body: [recommend_request.limit: value 0 invalid",
    ),
    (
        "POST",
        P + "/discover",
        {"target": 1, "limit": 0},
        422,
        "Validation error in JSON body: [discover_request.limit: value 0 invalid",
    ),
    (
        "POST",
        P + "/query",
        {"query": {"nearest": [1, 0], "mmr": {"diversity": 2}}},
        422,
        "Validation error in JSON body: [internal.query.mmr.diversity: value 2.0 invalid",
    ),
    (
        "POST",
        P + "/query",
        {"prefetch": [{"query": [1, 0]}], "query": {"rrf": {"k": 0}}},
        422,
        "Validation error in JSON body: [internal.query.rrf.k: value 0 invalid",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "text"),
    REFUSED,
    ids=[f"{m} {p.removeprefix(P)} {s}" for m, p, _, s, _ in REFUSED],
)
def test_refused_changes_nothing(
    http: httpx.Client,
    collection: Make,
    method: str,
    path: str,
    body: Any,
    status: int,
    text: str,
) -> None:
    name = collection()
    _create(http, name, VECTORS)
    _upsert(
        http,
        name,
        [
            {
                "id": 1,
                "vector": {"": [1, 2], "s": {"indices": [3], "values": [0.5]}},
                "payload": {"n": 1},
            }
        ],
    )
    before = http.post(f"/collections/{name}/points/scroll", json={"with_vector": True}).json()
    if isinstance(body, str):
        response = http.request(
            method, path.format(c=name), content=body, headers={"content-type": "application/json"}
        )
    else:
        response = http.request(method, path.format(c=name), json=body)
    assert response.status_code == status, response.text
    message = response.json()["status"]["error"]
    assert message.startswith(text), message
    after = http.post(f"/collections/{name}/points/scroll", json={"with_vector": True}).json()
    assert after["result"] == before["result"]


FULL_SCAN_5 = "value 5 invalid, must be 10 or larger]"
CREATE_REFUSED: list[tuple[dict[str, Any], int, str]] = [
    (
        {"vectors": {"size": 4}},
        400,
        "Format error in JSON body: data did not match any variant of untagged enum VectorsConfig",
    ),
    (
        {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 0},
        422,
        "Validation error in JSON body: [shard_number: value 0 invalid, must be 1 or larger]",
    ),
    (
        {"vectors": {"size": 2, "distance": "Dot"}, "replication_factor": 0},
        422,
        "Validation error in JSON body: [replication_factor",
    ),
    (
        {"vectors": {"size": 2, "distance": "Dot"}, "write_consistency_factor": 0},
        422,
        "Validation error in JSON body: [write_consistency_factor",
    ),
    ({"sparse_vectors": {"s": {"index": {"datatype": "turbo4"}}}}, 400, "Wrong input:"),
    (
        {"sparse_vectors": {"s": {"index": {"datatype": "float64"}}}},
        400,
        "Format error in JSON body:",
    ),
    ({"vectors": {"size": 0, "distance": "Dot"}}, 422, "Validation error in JSON body:"),
    ({"vectors": {"size": 2, "distance": "Cos"}}, 400, "Format error in JSON body:"),
    ({"vectors": {"size": 2}}, 400, "Format error in JSON body:"),
    (
        {"vectors": {"size": 2, "distance": "Dot"}, "metadata": -1},
        400,
        "Format error in JSON body: metadata",
    ),
    (
        {"vectors": {"size": 2, "distance": "Dot"}, "hnsw_config": {"m": -1}},
        400,
        "Format error in JSON body: hnsw_config.m: invalid value: integer `-1`, expected usize",
    ),
    (
        {"vectors": {"size": 2, "distance": "Dot"}, "optimizers_config": {"deleted_threshold": 5}},
        422,
        "Validation error in JSON body: [optimizers_config.deleted_threshold: value 5 invalid",
    ),
    (
        {
            "vectors": {"size": 2, "distance": "Dot"},
            "optimizers_config": {"vacuum_min_vector_number": 5},
        },
        422,
        "Validation error in JSON body: [optimizers_config.vacuum_min_vector_number",
    ),
    (
        {
            "vectors": {"size": 2, "distance": "Dot"},
            "optimizers_config": {"indexing_threshold": "x"},
        },
        400,
        "Format error in JSON body: optimizers_config.indexing_threshold: invalid type",
    ),
    (
        {"vectors": {"size": 2, "distance": "Dot"}, "wal_config": {"wal_capacity_mb": 0}},
        422,
        "Validation error in JSON body: [wal_config.wal_capacity_mb: value 0 invalid",
    ),
    # Qdrant's least full_scan_threshold is 10 (KB); the path as its validator prints it: a
    # named vector's params are validated item by item, under `?`.
    (
        {"vectors": {"size": 2, "distance": "Dot"}, "hnsw_config": {"full_scan_threshold": 5}},
        422,
        f"Validation error in JSON body: [hnsw_config.full_scan_threshold: {FULL_SCAN_5}",
    ),
    (
        {"vectors": {"size": 2, "distance": "Dot", "hnsw_config": {"full_scan_threshold": 5}}},
        422,
        f"Validation error in JSON body: [vectors.hnsw_config.full_scan_threshold: {FULL_SCAN_5}",
    ),
    (
        {
            "vectors": {
                "x": {"size": 2, "distance": "Dot", "hnsw_config": {"full_scan_threshold": 5}}
            }
        },
        422,
        "Validation error in JSON body: [vectors.?.hnsw_config.full_scan_threshold: " + FULL_SCAN_5,
    ),
]


@pytest.mark.parametrize(("body", "status", "text"), CREATE_REFUSED)
def test_create_refused_leaves_no_collection(
    http: httpx.Client, collection: Make, body: dict[str, Any], status: int, text: str
) -> None:
    name = collection()
    response = http.put(f"/collections/{name}", json=body)
    assert response.status_code == status, response.text
    message = response.json()["status"]["error"]
    assert message.startswith(text), message
    assert http.get(f"/collections/{name}/exists").json()["result"]["exists"] is False


PATCH_REFUSED: list[tuple[dict[str, Any], int, str]] = [
    (
        {"hnsw_config": {"full_scan_threshold": 5}},
        422,
        f"Validation error in JSON body: [hnsw_config.full_scan_threshold: {FULL_SCAN_5}",
    ),
    (
        {"vectors": {"": {"hnsw_config": {"full_scan_threshold": 5}}}},
        422,
        "Validation error in JSON body: [vectors.?.hnsw_config.full_scan_threshold: " + FULL_SCAN_5,
    ),
    (
        {"params": {"replication_factor": 0}},
        400,
        "Format error in JSON body: params.replication_factor: invalid value: integer `0`",
    ),
    ({"optimizers_config": {"deleted_threshold": -1}}, 422, "Validation error in JSON body:"),
    (
        {"hnsw_config": {"ef_construct": 2}},
        422,
        "Validation error in JSON body: [hnsw_config.ef_construct: value 2 invalid",
    ),
    ({"metadata": {"a": None}, "hnsw_config": {"m": "x"}}, 400, "Format error in JSON body:"),
]


@pytest.mark.parametrize(("body", "status", "text"), PATCH_REFUSED)
def test_patch_refused_changes_nothing(
    http: httpx.Client, collection: Make, body: dict[str, Any], status: int, text: str
) -> None:
    name = collection()
    _create(http, name, {"vectors": {"size": 2, "distance": "Dot"}, "metadata": {"a": 1}})
    before = http.get(f"/collections/{name}").json()["result"]["config"]
    response = http.patch(f"/collections/{name}", json=body)
    assert response.status_code == status, response.text
    message = response.json()["status"]["error"]
    assert message.startswith(text), message
    assert http.get(f"/collections/{name}").json()["result"]["config"] == before


def test_zero_timeout_as_qdrant(http: httpx.Client, collection: Make) -> None:
    """`?timeout=0`: a collection operation's fails Qdrant's validator (422), a read's is no
    `NonZeroU64` (400), a point write's is taken; what is no number is 400."""
    name = collection()
    body = {"vectors": {"size": 2, "distance": "Dot"}}
    response = http.put(f"/collections/{name}?timeout=0", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["status"]["error"] == (
        "Validation error in query parameters: [timeout: value 0 invalid, must be 1 or larger]"
    )
    assert http.get(f"/collections/{name}/exists").json()["result"]["exists"] is False
    negative = http.put(f"/collections/{name}?timeout=-5", json=body)
    assert negative.status_code == 400
    assert negative.json()["status"]["error"] == (
        "Deserialize error in query parameters: invalid digit found in string"
    )
    assert http.put(f"/collections/{name}?timeout=5", json=body).status_code == 200
    refused = http.post(f"/collections/{name}/points/count?timeout=0", json={})
    assert refused.status_code == 400
    assert refused.json()["status"]["error"].startswith("Deserialize error in query parameters:")
    assert http.post(f"/collections/{name}/points/count?timeout=1", json={}).status_code == 200
    point = {"points": [{"id": 1, "vector": [1, 0]}]}
    written = http.put(f"/collections/{name}/points?wait=true&timeout=0", json=point)
    assert written.status_code == 200, written.text


def test_long_utf8_name_is_refused_without_path(http: httpx.Client) -> None:
    name = "\U0001f600" * 100  # 100 characters, 400 bytes
    response = http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
    assert response.status_code == 422, response.text
    assert "/" not in response.json()["status"]["error"].split("]")[0].split(":", 1)[1]
    assert http.get(f"/collections/{name}/exists").json()["result"]["exists"] is False


# --------------------------------------------------------------------------------------------
# The same answers over gRPC (the transport shares the parse layer)


def test_grpc_siblings(server_factory: Callable[..., Any]) -> None:
    srv = server_factory(grpc_port=free_port())
    g = QdrantClient(host=srv.host, port=srv.port, grpc_port=srv.grpc_port, prefer_grpc=True)
    try:
        g.create_collection(
            "c",
            vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
            sparse_vectors_config={"s": models.SparseVectorParams()},
        )
        g.upsert("c", [models.PointStruct(id=1, vector=[0.15, 0.5], payload={"n": 1})])
        (record,) = g.retrieve("c", [1], with_vectors=True)
        assert record.vector == pytest.approx([0.15, 0.5])  # bare, not {"": ...}

        def refused(call: Callable[[], Any], text: str) -> None:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert text in (info.value.details() or "")

        refused(lambda: g.retrieve("c", [1], with_vectors=["nope"]), "Not existing vector name")
        refused(
            lambda: g.upsert("c", [models.PointStruct(id=2, vector=[3.5e38, 1.0])]),
            "finite float32",
        )
        # The gRPC message has no rule on its names (Qdrant's build.rs names a field
        # `vector_names` the message lacks): an empty list deletes nothing.
        g.delete_vectors("c", vectors=[], points=[1])
        refused(
            lambda: g.scroll("c", order_by="n", offset=1),
            "Cannot use an `offset` when using `order_by`",
        )
        assert [p.id for p in g.scroll("c", with_vectors=True)[0]] == [1]  # nothing written
    finally:
        g.close()


# --------------------------------------------------------------------------------------------
# serde_json's nesting limit, scanned over the raw body


@pytest.mark.parametrize(
    ("body", "refused_at"),
    [
        ("[" * 127 + "]" * 127, None),  # 127 levels: serde_json reads it
        ("[" * 128 + "]" * 128, "line 1 column 128"),
        ('{"a":' * 128 + "1" + "}" * 128, "line 1 column 636"),
        ('{"s": "' + "[" * 500 + '"}', None),  # brackets inside a string do not nest
        ('{"s": "\\"' + "{" * 300 + '"}', None),  # nor after an escaped quote
        ('{"s": "\\\\", "t": ' + "[" * 200 + "]" * 200 + "}", "line 1 column"),  # \\ ends
        ("\n" + "[\n" * 130, "line 129 column 1"),
    ],
)
def test_json_depth_limit(body: str, refused_at: str | None) -> None:
    if refused_at is None:
        check_depth(body.encode())
        return
    with pytest.raises(BadRequest) as info:
        check_depth(body.encode())
    assert info.value.message.startswith("Format error in JSON body: recursion limit exceeded")
    assert refused_at in info.value.message


def test_condition_fields_beyond_those_read_are_ignored(
    http: httpx.Client, collection: Make
) -> None:
    """Qdrant's condition structs (a field condition, `match`, `has_id`, `is_empty`, `nested`)
    ignore fields they do not read, where its `Filter` refuses them; an object that is no
    condition gets its words, and a field condition without a test its validator's."""
    name = collection()
    _create(http, name, VECTORS)
    _upsert(
        http,
        name,
        [
            {"id": 1, "vector": [1, 0], "payload": {"k": 1, "a": [{"t": "x"}]}},
            {"id": 2, "vector": [0, 1], "payload": {"k": 2}},
        ],
    )
    url = f"/collections/{name}/points/count"

    def count(condition: Any) -> httpx.Response:
        return http.post(url, json={"filter": {"must": [condition]}, "exact": True})

    for condition, expected in (
        ({"key": "k", "match": {"value": 1, "foo": 1}, "foo": 1}, 1),
        ({"key": "k", "range": {"gt": 1, "foo": 1}}, 1),
        ({"has_id": [1], "foo": 1}, 1),
        ({"is_empty": {"key": "a", "foo": 1}}, 1),
        (
            {
                "nested": {
                    "key": "a",
                    "filter": {"must": [{"key": "t", "match": {"value": "x"}}]},
                    "foo": 1,
                }
            },
            1,
        ),
    ):
        answer = count(condition)
        assert answer.status_code == 200, (condition, answer.text)
        assert answer.json()["result"]["count"] == expected, condition
    answer = count({"key": "k", "datetime_range": {"gt": "2020-01-01T00:00:00Z"}})
    assert answer.status_code == 422
    assert answer.json()["status"]["error"] == (
        "Validation error in JSON body: [filter.must[0]: At least one field condition must be "
        "specified]"
    )
    answer = count({"foo": 1})
    assert answer.status_code == 400
    assert "Expected some form of condition, which can be a field condition" in answer.text
    answer = http.post(url, json={"filter": {"foo": 1}})
    assert answer.status_code == 400
    assert answer.json()["status"]["error"] == (
        "Format error in JSON body: filter: unknown field `foo`, expected one of `should`, "
        "`min_should`, `must`, `must_not`"
    )
