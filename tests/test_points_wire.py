"""The wire, where the client hides it: envelopes, status codes, exact error strings, wait modes.

Plain HTTP (httpx) against the server; every successful response is validated against the
route's schema in Qdrant's OpenAPI document. Skipped in local mode.

Status codes follow Qdrant's actix layer (src/actix/mod.rs, src/actix/helpers.rs):
a body that does not deserialize is 400 "Format error in JSON body: ...", a body that parses but
fails validation is 422 "Validation error in JSON body: [...]", a bad path parameter is 422
"Validation error in path parameters: [...]"; storage errors map BadInput -> 400 "Wrong input: ",
NotFound -> 404 "Not found: ", AlreadyExists -> 409 "Wrong input: ", BadRequest -> 400
"Bad request: ".
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from tests.openapi_check import assert_error, assert_ok, validate_component

pytestmark = pytest.mark.server_only(reason="plain HTTP checks need a server")

C = "/collections/{collection_name}"
UUID_CANON = "936da01f-9abd-4d9d-80c7-02af85c822a8"
UUID_SPELLINGS = [
    "936DA01F9ABD4d9d80C702AF85C822A8",
    "936DA01F-9ABD-4D9D-80C7-02AF85C822A8",
    "urn:uuid:936da01f-9abd-4d9d-80c7-02af85c822a8",
    "{936da01f-9abd-4d9d-80c7-02af85c822a8}",
]
# Qdrant answers an unparseable or wrongly shaped JSON body with 400 (actix JsonPayloadError ->
# "Format error in JSON body"); 422 is reserved for bodies that parse but fail validation.
UNPARSEABLE_STATUS = 400


def create(http: httpx.Client, name: str, body: dict[str, Any] | None = None) -> None:
    body = body or {"vectors": {"size": 3, "distance": "Dot"}}
    assert assert_ok(http.put(f"/collections/{name}", json=body), "put", C) is True


def upsert(http: httpx.Client, name: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = assert_ok(
        http.put(f"/collections/{name}/points", params={"wait": "true"}, json={"points": points}),
        "put",
        f"{C}/points",
    )
    return result


def count(http: httpx.Client, name: str) -> int:
    result = assert_ok(
        http.post(f"/collections/{name}/points/count", json={"exact": True}),
        "post",
        f"{C}/points/count",
    )
    n: int = result["count"]
    return n


def scroll(http: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = assert_ok(
        http.post(f"/collections/{name}/points/scroll", json=body), "post", f"{C}/points/scroll"
    )
    return result


@pytest.fixture
def coll(http: httpx.Client, collection) -> str:
    """A fresh collection with one unnamed 3-d Dot vector."""
    name: str = collection()
    create(http, name)
    return name


# --------------------------------------------------------------------------------------------
# Service


def test_root_and_health(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    body = response.json()
    validate_component("VersionInfo", body)
    assert "tessera" in body["title"].lower()
    assert body["version"].startswith("1.")
    for probe in ("/healthz", "/livez", "/readyz"):
        assert http.get(probe).status_code == 200, probe


# --------------------------------------------------------------------------------------------
# Collections


def test_collection_lifecycle_envelopes(http: httpx.Client, collection) -> None:
    name = collection()
    body = {
        "vectors": {
            "dense": {"size": 4, "distance": "Cosine", "on_disk": True},
            "half": {"size": 2, "distance": "Euclid", "datatype": "float16"},
            "multi": {
                "size": 2,
                "distance": "Dot",
                "multivector_config": {"comparator": "max_sim"},
            },
        },
        "sparse_vectors": {"bm25": {"modifier": "idf"}},
    }
    assert assert_ok(http.put(f"/collections/{name}", json=body), "put", C) is True

    info = assert_ok(http.get(f"/collections/{name}"), "get", C)
    assert info["status"] == "green"
    assert info["points_count"] == 0
    assert info["payload_schema"] == {}
    vectors = info["config"]["params"]["vectors"]
    assert vectors["dense"]["size"] == 4
    assert vectors["dense"]["distance"] == "Cosine"
    assert vectors["dense"]["on_disk"] is True
    assert vectors["half"]["datatype"] == "float16"
    assert vectors["multi"]["multivector_config"] == {"comparator": "max_sim"}
    assert info["config"]["params"]["sparse_vectors"]["bm25"]["modifier"] == "idf"

    listed = assert_ok(http.get("/collections"), "get", "/collections")
    assert {"name": name} in listed["collections"]
    exists = assert_ok(http.get(f"/collections/{name}/exists"), "get", f"{C}/exists")
    assert exists == {"exists": True}

    assert assert_ok(http.delete(f"/collections/{name}"), "delete", C) is True
    assert_error(
        http.get(f"/collections/{name}"), 404, f"Not found: Collection `{name}` doesn't exist!"
    )
    assert assert_ok(http.get(f"/collections/{name}/exists")) == {"exists": False}
    # Deleting a collection that is not there: 200 with result false, as Qdrant does.
    assert assert_ok(http.delete(f"/collections/{name}"), "delete", C) is False


def test_duplicate_create_is_409(http: httpx.Client, coll: str) -> None:
    message = assert_error(
        http.put(f"/collections/{coll}", json={"vectors": {"size": 8, "distance": "Cosine"}}),
        409,
    )
    assert message == f"Wrong input: Collection `{coll}` already exists!"
    vectors = assert_ok(http.get(f"/collections/{coll}"))["config"]["params"]["vectors"]
    assert (vectors["size"], vectors["distance"]) == (3, "Dot")


@pytest.mark.parametrize(
    ("raw", "char"),
    [
        ("bad:name", ":"),
        ("bad*name", "*"),
        ("bad%3Fname", "?"),
        ("bad%7Cname", "|"),
        ("bad%3Cname", "<"),
        ("bad%3Ename", ">"),
        ("bad%22name", '"'),
        ("bad%5Cname", "\\"),
    ],
)
def test_bad_collection_names_are_422(http: httpx.Client, raw: str, char: str) -> None:
    response = http.put(f"/collections/{raw}", json={"vectors": {"size": 2, "distance": "Dot"}})
    if response.status_code == 200:  # leave nothing behind for the other cases
        http.delete(f"/collections/{raw}")
    message = assert_error(response, 422)
    assert message.startswith("Validation error in path parameters: [name: "), message
    assert f'collection name cannot contain "{char}" char' in message
    names = {c["name"] for c in assert_ok(http.get("/collections"))["collections"]}
    assert not any(n.startswith("bad") for n in names), names


def test_too_long_collection_name_is_422(http: httpx.Client) -> None:
    response = http.put(
        f"/collections/{'a' * 256}", json={"vectors": {"size": 2, "distance": "Dot"}}
    )
    if response.status_code == 200:
        http.delete(f"/collections/{'a' * 256}")
    message = assert_error(response, 422)
    assert message.startswith("Validation error in path parameters: [name: "), message


@pytest.mark.parametrize("raw", ["%09", "%0A", "%0D", "name%09with%09tabs"])
@pytest.mark.parametrize("route", ["exists", "create", "info", "delete"])
def test_control_characters_in_a_collection_name_are_422(
    http: httpx.Client, raw: str, route: str
) -> None:
    """As Qdrant's own REST tests (test_collection_exists.py): a tab or newline in the
    collection path is a validation error on every collection route."""
    path = f"/collections/{raw}"
    if route == "exists":
        response = http.get(path + "/exists")
    elif route == "create":
        response = http.put(path, json={"vectors": {"size": 2, "distance": "Dot"}})
    elif route == "info":
        response = http.get(path)
    else:
        response = http.delete(path)
    message = assert_error(response, 422)
    assert message == (
        "Validation error in path parameters: [name: collection name cannot contain control "
        "characters]"
    )
    names = {c["name"] for c in assert_ok(http.get("/collections"))["collections"]}
    assert not any(not n.isprintable() for n in names), names


def test_empty_collection_name_is_422(http: httpx.Client) -> None:
    message = assert_error(http.get("/collections//exists"), 422)
    assert message.startswith("Validation error in path parameters: [name: "), message
    assert http.get("/collections/").status_code == 404  # no collection route at all


def test_leading_double_slashes_are_merged(http: httpx.Client, coll: str) -> None:
    """`//collections/...` is served as `/collections/...` (Qdrant's basic API test sends
    one, as does a client whose base URL ends in a slash); Tessera answered 404. An empty
    segment further on stays one (the 422 above)."""
    upsert(http, coll, [{"id": 1, "vector": [1, 0, 0]}, {"id": 2, "vector": [0, 1, 0]}])
    base = str(http.base_url).rstrip("/")
    listed = assert_ok(http.get(base + "//collections"))["collections"]
    assert coll in {c["name"] for c in listed}
    body = {"vector": [1, 0, 0], "limit": 1}
    found = assert_ok(http.post(f"{base}///collections/{coll}/points/search", json=body))
    assert [p["id"] for p in found] == [1]
    assert assert_error(http.get(base + "//collections//exists"), 422)


@pytest.mark.parametrize("raw", ["%2E%2E", "%2E", "evil%2F..%2F..%2Fescape", "%2Fabs"])
def test_path_tricks_create_nothing(http: httpx.Client, server, raw: str) -> None:
    storage = getattr(server, "storage", None)
    outside_before = sorted(p.name for p in storage.parent.iterdir()) if storage else None
    listed_before = assert_ok(http.get("/collections"))["collections"]
    response = http.put(f"/collections/{raw}", json={"vectors": {"size": 2, "distance": "Dot"}})
    if response.status_code == 200:
        http.delete(f"/collections/{raw}")
    assert response.status_code in (400, 404, 405, 422), response.text
    assert assert_ok(http.get("/collections"))["collections"] == listed_before
    if storage is not None:
        assert sorted(p.name for p in storage.parent.iterdir()) == outside_before


def test_missing_collection_is_404_everywhere(http: httpx.Client, collection) -> None:
    name = collection()
    expected = f"Not found: Collection `{name}` doesn't exist!"
    base = f"/collections/{name}"
    requests = [
        http.get(base),
        http.put(f"{base}/points?wait=true", json={"points": [{"id": 1, "vector": [1, 2]}]}),
        http.post(f"{base}/points", json={"ids": [1]}),
        http.get(f"{base}/points/1"),
        http.post(f"{base}/points/scroll", json={}),
        http.post(f"{base}/points/count", json={}),
        http.post(f"{base}/points/delete?wait=true", json={"points": [1]}),
        http.post(f"{base}/points/payload?wait=true", json={"payload": {}, "points": [1]}),
        http.post(f"{base}/points/query", json={"query": [1, 2]}),
        http.post(f"{base}/points/search", json={"vector": [1, 2], "limit": 1}),
        http.put(f"{base}/index?wait=true", json={"field_name": "a", "field_schema": "integer"}),
    ]
    for response in requests:
        assert_error(response, 404, expected)


# --------------------------------------------------------------------------------------------
# Bodies that do not parse, or do not validate


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b'{"points": "nope"}', b'{"points": [{"id": 1, "vector": "abc"}]}', b"[]"],
    ids=["syntax", "empty", "points-not-list", "vector-not-list", "array"],
)
def test_unparseable_upsert_body(http: httpx.Client, coll: str, content: bytes) -> None:
    response = http.put(
        f"/collections/{coll}/points?wait=true",
        content=content,
        headers={"content-type": "application/json"},
    )
    message = assert_error(response, UNPARSEABLE_STATUS)
    assert message.startswith("Format error in JSON body: "), message
    assert count(http, coll) == 0


def test_unparseable_create_body(http: httpx.Client, collection) -> None:
    name = collection()
    response = http.put(
        f"/collections/{name}",
        content=b'{"vectors": {"size": ',
        headers={"content-type": "application/json"},
    )
    assert_error(response, UNPARSEABLE_STATUS)
    response = http.put(f"/collections/{name}", json={"vectors": {"size": 3, "distance": "Nope"}})
    assert_error(response, UNPARSEABLE_STATUS)
    assert assert_ok(http.get(f"/collections/{name}/exists")) == {"exists": False}


@pytest.mark.parametrize(
    ("sparse", "fragment"),
    [
        ({"indices": [1, 2, 3], "values": [0.1, 0.2]}, "must be the same length as indices"),
        ({"indices": [4, 4], "values": [0.1, 0.2]}, "must be unique"),
    ],
)
def test_bad_sparse_vector_is_422(http: httpx.Client, collection, sparse, fragment) -> None:
    name = collection()
    create(http, name, {"sparse_vectors": {"text": {}}})
    response = http.put(
        f"/collections/{name}/points?wait=true",
        json={
            "points": [
                {"id": 1, "vector": {"text": {"indices": [1], "values": [1.0]}}},
                {"id": 2, "vector": {"text": sparse}},
            ]
        },
    )
    message = assert_error(response, 422)
    assert message.startswith("Validation error in JSON body: ["), message
    assert fragment in message
    assert count(http, name) == 0


def test_wrong_dimension_and_unknown_name_are_400(http: httpx.Client, coll: str) -> None:
    response = http.put(
        f"/collections/{coll}/points?wait=true",
        json={"points": [{"id": 1, "vector": [1, 2, 3]}, {"id": 2, "vector": [1, 2]}]},
    )
    message = assert_error(response, 400)
    assert message == "Wrong input: Vector dimension error: expected dim: 3, got 2"
    response = http.put(
        f"/collections/{coll}/points?wait=true",
        json={"points": [{"id": 1, "vector": {"nope": [1, 2, 3]}}]},
    )
    message = assert_error(response, 400)
    assert message.startswith("Wrong input: ") and "nope" in message, message
    assert count(http, coll) == 0


# --------------------------------------------------------------------------------------------
# Point ids


@pytest.mark.parametrize(
    "bad_id",
    [-1, 1.5, 1.0, 2**64, "not-a-uuid", "12", "", True, None, [1], {"id": 1}],
    ids=lambda v: repr(v)[:20],
)
def test_invalid_point_ids_are_refused(http: httpx.Client, coll: str, bad_id: Any) -> None:
    points = [{"id": 1, "vector": [1, 2, 3]}, {"id": bad_id, "vector": [1, 2, 3]}]
    response = http.put(f"/collections/{coll}/points?wait=true", json={"points": points})
    assert_error(response, 400)
    response = http.put(
        f"/collections/{coll}/points?wait=true",
        json={"batch": {"ids": [1, bad_id], "vectors": [[1, 2, 3], [1, 2, 3]]}},
    )
    assert_error(response, 400)
    assert_error(http.post(f"/collections/{coll}/points", json={"ids": [bad_id]}), 400)
    assert count(http, coll) == 0


def test_max_u64_id_roundtrips_exactly(http: httpx.Client, coll: str) -> None:
    upsert(http, coll, [{"id": 2**64 - 1, "vector": [1, 2, 3]}, {"id": 0, "vector": [1, 1, 1]}])
    points = scroll(http, coll)["points"]
    assert [p["id"] for p in points] == [0, 2**64 - 1]
    record = assert_ok(
        http.get(f"/collections/{coll}/points/{2**64 - 1}"), "get", f"{C}/points/{{id}}"
    )
    assert record["id"] == 2**64 - 1


def test_uuid_spellings_on_the_wire(http: httpx.Client, coll: str) -> None:
    for n, spelling in enumerate(UUID_SPELLINGS):
        upsert(http, coll, [{"id": spelling, "vector": [1, 2, 3], "payload": {"n": n}}])
    assert count(http, coll) == 1
    (point,) = scroll(http, coll)["points"]
    assert point["id"] == UUID_CANON
    assert point["payload"] == {"n": 3}
    got = assert_ok(
        http.post(f"/collections/{coll}/points", json={"ids": UUID_SPELLINGS[:2]}),
        "post",
        f"{C}/points",
    )
    assert [p["id"] for p in got] == [UUID_CANON]
    for spelling in [*UUID_SPELLINGS, UUID_CANON]:
        response = http.get(f"/collections/{coll}/points/{quote(spelling, safe='')}")
        assert assert_ok(response, "get", f"{C}/points/{{id}}")["id"] == UUID_CANON, spelling


def test_get_point_by_id(http: httpx.Client, coll: str) -> None:
    upsert(http, coll, [{"id": 5, "vector": [1, 2, 3], "payload": {"color": "red"}}])
    record = assert_ok(http.get(f"/collections/{coll}/points/5"), "get", f"{C}/points/{{id}}")
    assert record["id"] == 5
    assert record["payload"] == {"color": "red"}
    assert record["vector"] == pytest.approx([1, 2, 3])
    message = assert_error(http.get(f"/collections/{coll}/points/42"), 404)
    assert message == "Not found: Point with id 42 does not exists!"
    missing = str(uuid.UUID(int=7))
    message = assert_error(http.get(f"/collections/{coll}/points/{missing}"), 404)
    assert message == f"Not found: Point with id {missing} does not exists!"
    for bad in ("abc", "-1", "1.5", str(2**64)):
        message = assert_error(http.get(f"/collections/{coll}/points/{bad}"), 400)
        assert message == f'Wrong input: Can not recognize "{bad}" as point id'


# --------------------------------------------------------------------------------------------
# wait=false / wait=true


def test_wait_modes_and_operation_ids(http: httpx.Client, coll: str) -> None:
    op_ids = []
    for i, params in enumerate([{"wait": "false"}, {}, {"wait": "false"}, {"wait": "false"}]):
        response = http.put(
            f"/collections/{coll}/points",
            params=params,
            json={"points": [{"id": i, "vector": [i, 1, 1], "payload": {"i": i}}]},
        )
        result = assert_ok(response, "put", f"{C}/points")
        # Without ?wait the default is false, as in Qdrant.
        assert set(result) == {"operation_id", "status"}, result
        assert result["status"] == "acknowledged"
        op_ids.append(result["operation_id"])
    response = http.post(
        f"/collections/{coll}/points/payload",
        params={"wait": "false"},
        json={"payload": {"x": 1}, "points": [0]},
    )
    result = assert_ok(response, "post", f"{C}/points/payload")
    assert result["status"] == "acknowledged"
    op_ids.append(result["operation_id"])
    result = upsert(http, coll, [{"id": 10, "vector": [1, 1, 1]}])
    assert result["status"] == "completed"
    op_ids.append(result["operation_id"])
    assert all(isinstance(op, int) for op in op_ids), op_ids
    assert op_ids == sorted(op_ids) and len(set(op_ids)) == len(op_ids), op_ids
    # Applied strictly in order: after the wait=true write, every earlier one is visible.
    assert count(http, coll) == 5
    assert scroll(http, coll, limit=1)["points"][0]["payload"] == {"i": 0, "x": 1}


def test_query_parameters_are_read_as_qdrant_reads_them(http: httpx.Client, coll: str) -> None:
    """`wait` is `true` or `false`, `ordering` one of WriteOrdering, `consistency` a number
    or one of ReadConsistencyType; anything else is a 400 and writes nothing."""
    point = {"points": [{"id": 1, "vector": [1, 1, 1]}]}
    deserialize = "Deserialize error in query parameters: "
    for params, text in (
        ({"wait": "1"}, "provided string was not `true` or `false`"),
        ({"wait": "True"}, "provided string was not `true` or `false`"),
        (
            {"wait": "true", "ordering": "fast"},
            "unknown variant `fast`, expected one of `weak`, `medium`, `strong`",
        ),
    ):
        response = http.put(f"/collections/{coll}/points", params=params, json=point)
        assert_error(response, 400, deserialize + text)
    response = http.put(f"/collections/{coll}/index", params={"ordering": "x"}, json={})
    assert_error(response, 400, deserialize + "unknown variant `x`")
    assert count(http, coll) == 0
    for ordering in ("weak", "medium", "strong"):
        response = http.put(
            f"/collections/{coll}/points",
            params={"wait": "true", "ordering": ordering},
            json=point,
        )
        assert assert_ok(response, "put", f"{C}/points")["status"] == "completed"
    for consistency in ("2", "majority", "quorum", "all"):
        response = http.post(
            f"/collections/{coll}/points/count", params={"consistency": consistency}, json={}
        )
        assert assert_ok(response, "post", f"{C}/points/count") == {"count": 1}
    for path in ("/points/count", "/points/scroll", "/points/query"):
        response = http.post(f"/collections/{coll}{path}", params={"consistency": "most"}, json={})
        assert_error(
            response,
            400,
            deserialize + "data did not match any variant of untagged enum ReadConsistency",
        )


# --------------------------------------------------------------------------------------------
# Every update route, and its documented response


def test_update_routes_answer_update_results(http: httpx.Client, collection) -> None:
    name = collection()
    create(
        http,
        name,
        {
            "vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}},
            "sparse_vectors": {"s": {}},
        },
    )
    base = f"/collections/{name}"
    w = {"wait": "true"}
    calls = [
        (
            "put",
            "/points",
            {
                "batch": {
                    "ids": [1, 2, 3],
                    "vectors": {"a": [[1, 0], [0, 1], [1, 1]]},
                    "payloads": [{"k": 1}, {"k": 2}, None],
                }
            },
        ),
        ("put", "/points/vectors", {"points": [{"id": 1, "vector": {"b": [5, 5]}}]}),
        ("post", "/points/vectors/delete", {"points": [2], "vector": ["a"]}),
        ("post", "/points/payload", {"payload": {"n": {"m": 1}}, "points": [1, 3]}),
        ("post", "/points/payload", {"payload": {"z": 0}, "points": [1], "key": "n"}),
        (
            "put",
            "/points/payload",
            {"payload": {"only": True}, "filter": {"must": [{"has_id": [3]}]}},
        ),
        ("post", "/points/payload/delete", {"keys": ["k"], "points": [2]}),
        ("post", "/points/payload/clear", {"filter": {"must": [{"has_id": [3]}]}}),
        ("put", "/index", {"field_name": "k", "field_schema": "integer"}),
    ]
    for method, route, body in calls:
        response = http.request(method.upper(), f"{base}{route}", params=w, json=body)
        result = assert_ok(response, method, f"{C}{route}")
        assert result["status"] == "completed", (route, result)
        assert isinstance(result["operation_id"], int), (route, result)
    response = http.delete(f"{base}/index/k", params=w)
    assert assert_ok(response, "delete", f"{C}/index/{{field_name}}")["status"] == "completed"

    records = {
        p["id"]: p
        for p in assert_ok(
            http.post(
                f"{base}/points", json={"ids": [1, 2, 3], "with_vector": True, "with_payload": True}
            ),
            "post",
            f"{C}/points",
        )
    }
    assert records[1]["vector"] == {"a": [1, 0], "b": [5, 5]}
    assert records[1]["payload"] == {"k": 1, "n": {"m": 1, "z": 0}}
    assert not records[2].get("vector")
    assert records[2]["payload"] == {}
    assert records[3]["payload"] == {}

    batch = {
        "operations": [
            {"upsert": {"points": [{"id": 9, "vector": {"a": [1, 2]}, "payload": {}}]}},
            {"update_vectors": {"points": [{"id": 9, "vector": {"b": [3, 4]}}]}},
            {"delete_vectors": {"points": [9], "vector": ["a"]}},
            {"overwrite_payload": {"payload": {"t": "1"}, "points": [9]}},
            {"set_payload": {"payload": {"t2": "2", "t3": "3"}, "points": [9]}},
            {"delete_payload": {"keys": ["t2"], "points": [9]}},
            {"clear_payload": {"points": [1]}},
            {"delete": {"points": [2]}},
        ]
    }
    results = assert_ok(
        http.post(f"{base}/points/batch", params=w, json=batch), "post", f"{C}/points/batch"
    )
    assert [r["status"] for r in results] == ["completed"] * 8
    nine = assert_ok(http.get(f"{base}/points/9"))
    assert nine["vector"] == {"b": [3, 4]}
    assert nine["payload"] == {"t": "1", "t3": "3"}
    assert_error(http.get(f"{base}/points/2"), 404)

    result = assert_ok(
        http.post(f"{base}/points/delete", params=w, json={"filter": {"must": [{"has_id": [9]}]}}),
        "post",
        f"{C}/points/delete",
    )
    assert result["status"] == "completed"
    assert count(http, name) == 2


def test_update_vectors_of_missing_point_is_404(http: httpx.Client, coll: str) -> None:
    upsert(http, coll, [{"id": 1, "vector": [1, 1, 1]}])
    response = http.put(
        f"/collections/{coll}/points/vectors?wait=true",
        json={"points": [{"id": 1, "vector": [2, 2, 2]}, {"id": 99, "vector": [3, 3, 3]}]},
    )
    assert assert_error(response, 404) == "Not found: No point with id 99 found"
    # As Qdrant: the points that exist are updated first; the missing one is not made.
    assert assert_ok(http.get(f"/collections/{coll}/points/1"))["vector"] == [2, 2, 2]
    assert count(http, coll) == 1


# --------------------------------------------------------------------------------------------
# Reads and their documented responses


@pytest.fixture
def filled(http: httpx.Client, coll: str) -> str:
    upsert(
        http,
        coll,
        [
            {"id": i, "vector": [i, 1, 0], "payload": {"i": i, "odd": i % 2 == 1}}
            for i in range(1, 13)
        ]
        + [{"id": UUID_CANON, "vector": [0, 0, 1]}],
    )
    return coll


def test_retrieve_scroll_count_shapes(http: httpx.Client, filled: str) -> None:
    base = f"/collections/{filled}"
    got = assert_ok(
        http.post(f"{base}/points", json={"ids": [3, 100, UUID_CANON]}), "post", f"{C}/points"
    )
    by_id = {p["id"]: p for p in got}
    assert set(by_id) == {3, UUID_CANON}
    assert by_id[3]["payload"] == {"i": 3, "odd": True}  # default: payload, no vector
    assert by_id[3].get("vector") is None
    assert by_id[UUID_CANON]["payload"] == {}

    page = scroll(http, filled, limit=5)
    assert [p["id"] for p in page["points"]] == [1, 2, 3, 4, 5]
    assert page["next_page_offset"] == 6
    assert page["points"][0]["payload"] == {"i": 1, "odd": True}
    assert page["points"][0].get("vector") is None
    page = scroll(http, filled, limit=10, offset=6, with_payload=False, with_vector=True)
    assert [p["id"] for p in page["points"]] == [6, 7, 8, 9, 10, 11, 12, UUID_CANON]
    assert page["next_page_offset"] is None
    assert page["points"][0].get("payload") is None
    assert page["points"][0]["vector"] == [6, 1, 0]
    # `with_vectors` is accepted as an alias of `with_vector`.
    page = scroll(http, filled, limit=1, with_vectors=True)
    assert page["points"][0]["vector"] == [1, 1, 0]
    odd = {"must": [{"key": "odd", "match": {"value": True}}]}
    page = scroll(http, filled, limit=2, filter=odd, offset=4)
    assert [p["id"] for p in page["points"]] == [5, 7]
    assert page["next_page_offset"] == 9

    result = assert_ok(
        http.post(f"{base}/points/count", json={"filter": odd, "exact": True}),
        "post",
        f"{C}/points/count",
    )
    assert result == {"count": 6}
    assert count(http, filled) == 13
    assert assert_ok(http.post(f"{base}/points/count", json={})) == {"count": 13}


def test_scroll_order_by_on_the_wire(http: httpx.Client, filled: str) -> None:
    base = f"/collections/{filled}"
    message = assert_error(http.post(f"{base}/points/scroll", json={"order_by": "i"}), 400)
    assert "No range index for `order_by` key" in message, message
    assert message.startswith("Bad request: ") or message.startswith("Wrong input: "), message
    assert_ok(
        http.put(f"{base}/index?wait=true", json={"field_name": "i", "field_schema": "integer"})
    )
    info = assert_ok(http.get(base), "get", C)
    assert info["payload_schema"]["i"]["data_type"] == "integer"
    assert info["payload_schema"]["i"]["points"] == 12

    page = scroll(
        http, filled, order_by={"key": "i", "direction": "desc", "start_from": 10}, limit=3
    )
    assert [p["id"] for p in page["points"]] == [10, 9, 8]
    assert [p["order_value"] for p in page["points"]] == [10, 9, 8]
    assert page.get("next_page_offset") is None
    page = scroll(http, filled, order_by="i", limit=2)
    assert [p["id"] for p in page["points"]] == [1, 2]
    assert page.get("next_page_offset") is None


def test_order_by_start_from_compares_an_integer_index_as_integers(
    http: httpx.Client, coll: str
) -> None:
    """A whole `start_from` meets an integer index as an i64, as Qdrant's does: 2^53 + 1 is
    past 2^53 (both are the same float)."""
    big = 2**53
    upsert(
        http,
        coll,
        [{"id": i, "vector": [1, 0, 0], "payload": {"i": big + i}} for i in range(3)],
    )
    assert_ok(
        http.put(
            f"/collections/{coll}/index?wait=true",
            json={"field_name": "i", "field_schema": "integer"},
        )
    )
    desc = {"key": "i", "direction": "desc", "start_from": big + 1}
    assert [p["id"] for p in scroll(http, coll, order_by=desc, limit=5)["points"]] == [1, 0]
    asc = {"key": "i", "start_from": big + 1}
    assert [p["id"] for p in scroll(http, coll, order_by=asc, limit=5)["points"]] == [1, 2]


def oracle_order(
    distance: str, data: np.ndarray, query: np.ndarray
) -> tuple[list[int], np.ndarray]:
    d, q = data.astype(np.float64), query.astype(np.float64)
    if distance == "Cosine":
        s = (d / np.linalg.norm(d, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    elif distance == "Dot":
        s = d @ q
    elif distance == "Euclid":
        s = np.sqrt(((d - q) ** 2).sum(axis=1))
    else:
        s = np.abs(d - q).sum(axis=1)
    higher = distance in ("Cosine", "Dot")
    order = sorted(range(len(s)), key=lambda i: -s[i] if higher else s[i])
    return order, s


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid", "Manhattan"])
def test_search_and_query_endpoints(http: httpx.Client, collection, distance: str) -> None:
    rng = np.random.default_rng(99)
    data = rng.normal(size=(40, 6)).astype(np.float32)
    query = rng.normal(size=6).astype(np.float32)
    name = collection()
    create(http, name, {"vectors": {"v": {"size": 6, "distance": distance}}})
    upsert(
        http,
        name,
        [
            {"id": i, "vector": {"v": row.tolist()}, "payload": {"g": i % 3}}
            for i, row in enumerate(data)
        ],
    )
    order, scores = oracle_order(distance, data, query)
    base = f"/collections/{name}"

    response = http.post(
        f"{base}/points/search",
        json={"vector": {"name": "v", "vector": query.tolist()}, "limit": 5, "with_payload": True},
    )
    hits = assert_ok(response)
    assert isinstance(hits, list)
    for hit in hits:
        validate_component("ScoredPoint", hit)
    assert [h["id"] for h in hits] == order[:5]
    assert [h["score"] for h in hits] == pytest.approx(
        scores[order[:5]].tolist(), rel=1e-4, abs=1e-4
    )
    assert all(h["payload"] == {"g": h["id"] % 3} for h in hits)

    g0 = {"must": [{"key": "g", "match": {"value": 0}}]}
    response = http.post(
        f"{base}/points/search",
        json={
            "vector": {"name": "v", "vector": query.tolist()},
            "limit": 3,
            "offset": 1,
            "filter": g0,
            "with_vector": True,
        },
    )
    hits = assert_ok(response)
    assert [h["id"] for h in hits] == [i for i in order if i % 3 == 0][1:4]
    assert all(set(h["vector"]) == {"v"} for h in hits)

    threshold = float((scores[order[3]] + scores[order[4]]) / 2)
    response = http.post(
        f"{base}/points/search",
        json={
            "vector": {"name": "v", "vector": query.tolist()},
            "limit": 20,
            "score_threshold": threshold,
        },
    )
    assert [h["id"] for h in assert_ok(response)] == order[:4]

    response = http.post(
        f"{base}/points/query",
        json={"query": query.tolist(), "using": "v", "limit": 5, "with_payload": False},
    )
    result = assert_ok(response, "post", f"{C}/points/query")
    assert [p["id"] for p in result["points"]] == order[:5]
    assert all(p.get("payload") is None for p in result["points"])
    assert [p["score"] for p in result["points"]] == pytest.approx(
        scores[order[:5]].tolist(), rel=1e-4, abs=1e-4
    )

    response = http.post(
        f"{base}/points/search", json={"vector": {"name": "v", "vector": [1, 2]}, "limit": 1}
    )
    assert (
        assert_error(response, 400) == "Wrong input: Vector dimension error: expected dim: 6, got 2"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/collections/{c}/exists"),  # a route's path with a method it lacks
        ("DELETE", "/collections/{c}/points/scroll"),
        ("GET", "/collections/{c}/"),  # a slash more than a route's
        ("GET", "/collections/"),
        ("GET", "/no/such/route"),
    ],
)
def test_no_route_is_a_404_without_redirect(
    http: httpx.Client, collection, method: str, path: str
) -> None:
    """As Qdrant's router: what no route takes in full is 404, never 405 or a redirect."""
    name = collection(vectors_config={"size": 2, "distance": "Dot"})
    response = http.request(method, path.format(c=name), follow_redirects=False)
    assert response.status_code == 404, (response.status_code, response.text)
    assert http.get(f"/collections/{name}/exists").json()["result"]["exists"] is True


def test_unselected_payload_and_vector_are_left_out(http: httpx.Client, collection) -> None:
    """As Qdrant's `ScoredPoint` and `Record`: a payload or vector the request did not
    select is no key at all (not null); selected, it is there (an empty payload as {})."""
    name = collection(vectors_config={"size": 2, "distance": "Dot"})
    base = f"/collections/{name}"
    points = [{"id": 1, "vector": [1, 0], "payload": {"a": 1}}, {"id": 2, "vector": [0, 1]}]
    assert_ok(http.put(f"{base}/points?wait=true", json={"points": points}))
    unselected = {"with_payload": False}  # scroll and retrieve select the payload by default
    bare = [
        assert_ok(http.post(f"{base}/points/query", json={"query": [1, 1]}))["points"],
        assert_ok(http.post(f"{base}/points/search", json={"vector": [1, 1], "limit": 5})),
        assert_ok(http.post(f"{base}/points/scroll", json=unselected))["points"],
        assert_ok(http.post(f"{base}/points", json={"ids": [1, 2], **unselected})),
    ]
    for found in bare:
        assert len(found) == 2
        assert all("payload" not in p and "vector" not in p for p in found), found
    full = assert_ok(
        http.post(
            f"{base}/points/query",
            json={"query": [1, 1], "with_payload": True, "with_vector": True},
        )
    )["points"]
    by_id = {p["id"]: p for p in full}
    assert by_id[1]["payload"] == {"a": 1} and by_id[2]["payload"] == {}
    assert by_id[1]["vector"] == [1, 0]
    one = assert_ok(http.get(f"{base}/points/2"))
    assert one == {"id": 2, "payload": {}, "vector": [0.0, 1.0]}


def test_slice_total_0_is_refused_as_it_is_read(http: httpx.Client, collection) -> None:
    """`slice.total` is Qdrant's NonZeroU32: 0 fails deserialization (400), where an index
    outside the slices is a validation error (422)."""
    name = collection(vectors_config={"size": 2, "distance": "Dot"})
    scroll = f"/collections/{name}/points/scroll"
    zero = {"filter": {"must": [{"slice": {"total": 0, "index": 0}}]}, "limit": 1}
    assert assert_error(http.post(scroll, json=zero), 400) == (
        "Format error in JSON body: filter.must[0].slice.total: invalid value: integer `0`, "
        "expected a nonzero u32"
    )
    outside = {"filter": {"must": [{"slice": {"total": 2, "index": 2}}]}, "limit": 1}
    assert_error(http.post(scroll, json=outside), 422)


def test_distance_matrix_of_a_missing_vector_name_is_400(http: httpx.Client, collection) -> None:
    name = collection(vectors_config={"size": 2, "distance": "Dot"})
    points = [{"id": i, "vector": [1, i]} for i in range(1, 5)]
    assert_ok(http.put(f"/collections/{name}/points?wait=true", json={"points": points}))
    for route in ("pairs", "offsets"):
        path = f"/collections/{name}/points/search/matrix/{route}"
        response = http.post(path, json={"sample": 4, "limit": 1, "using": "nope"})
        assert assert_error(response, 400) == "Wrong input: Not existing vector name error: nope"
        assert_ok(http.post(path, json={"sample": 4, "limit": 1}))


def test_write_without_wait_naming_a_missing_point_is_acknowledged(
    http: httpx.Client, coll: str
) -> None:
    """Qdrant answers a write it does not wait for before running it ("acknowledged") and
    only logs that a point was missing; the points found are written all the same."""
    upsert(http, coll, [{"id": 1, "vector": [1, 1, 1]}, {"id": 2, "vector": [2, 2, 2]}])
    response = http.post(
        f"/collections/{coll}/points/payload", json={"payload": {"t": 1}, "points": [1, 99, 2]}
    )
    assert assert_ok(response)["status"] == "acknowledged"
    for pid in (1, 2):
        assert assert_ok(http.get(f"/collections/{coll}/points/{pid}"))["payload"] == {"t": 1}
    assert count(http, coll) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"sparse_vectors": {"": {}}}, "Wrong input: Sparse vector name cannot be empty"),
        (
            {"vectors": {"size": 2, "distance": "Dot"}, "sparse_vectors": {"s": {}, "": {}}},
            "Wrong input: Sparse vector name cannot be empty",
        ),
        (
            {
                "vectors": {"image": {"size": 2, "distance": "Dot"}},
                "sparse_vectors": {"image": {}},
            },
            "Wrong input: Dense and sparse vector names must be unique - duplicate found with "
            "'image'",
        ),
    ],
)
def test_sparse_vector_names_are_checked_on_create(
    http: httpx.Client, body: dict[str, Any], message: str
) -> None:
    """Qdrant's checks and words (qdrant-client's congruence suite and Qdrant's REST tests
    ask for them): no empty sparse name, no name both dense and sparse."""
    name = f"sparse_names_{uuid.uuid4().hex[:8]}"
    assert assert_error(http.put(f"/collections/{name}", json=body), 400) == message
    assert http.get(f"/collections/{name}/exists").json()["result"]["exists"] is False


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/points/payload", {"payload": {"x": 1}, "points": [1], "key": "a b"}),
        ("put", "/points/payload", {"payload": {"x": 1}, "points": [1], "key": "a b"}),
        (
            "post",
            "/points/batch",
            {
                "operations": [
                    {"overwrite_payload": {"payload": {"x": 1}, "points": [1], "key": "a b"}}
                ]
            },
        ),
        ("post", "/points/payload/delete", {"keys": ["tag", "a b"], "points": [1]}),
        ("put", "/index", {"field_name": "a b", "field_schema": "keyword"}),
        ("post", "/points/scroll", {"with_payload": ["tag", "a b"]}),
        ("post", "/points/scroll", {"with_payload": {"exclude": ["a b"]}}),
        ("post", "/points/scroll", {"order_by": "a b"}),
        ("post", "/points/scroll", {"order_by": {"key": "a b", "direction": "desc"}}),
        ("post", "/points/query", {"query": {"order_by": "a b"}}),
        ("post", "/points/query", {"query": [1, 0, 0], "with_payload": {"include": ["a b"]}}),
        ("post", "/facet", {"key": "a b"}),
        ("post", "/points/scroll", {"filter": {"must": [{"key": "a b", "match": {"value": 1}}]}}),
    ],
)
def test_a_malformed_payload_path_is_refused_and_changes_nothing(
    http: httpx.Client, coll: str, method: str, path: str, body: dict[str, Any]
) -> None:
    """Wherever Qdrant's wire carries a payload key path (`JsonPath`), a malformed one is a
    400 in its words; Tessera took a set / delete payload key, a payload selector, an
    `order_by` key as they came (set_payload at "a b" wrote a key with a space)."""
    upsert(http, coll, [{"id": 1, "vector": [1, 0, 0], "payload": {"tag": "x"}}])
    response = http.request(method, f"/collections/{coll}{path}", json=body)
    assert assert_error(response, 400) == "Format error in JSON body: Invalid json path: 'a b'"
    assert scroll(http, coll, with_payload=True)["points"] == [{"id": 1, "payload": {"tag": "x"}}]
    info = assert_ok(http.get(f"/collections/{coll}"), "get", C)
    assert info["payload_schema"] == {}


_UNTAGGED = (
    "Format error in JSON body: data did not match any variant of untagged enum PointsSelector"
)
_IDS_OR_FILTER = "Format error in JSON body: Either list of point ids or filter must be provided"


@pytest.mark.parametrize("selector", [{}, {"filter": None}, {"points": None, "filter": None}])
@pytest.mark.parametrize(
    ("path", "body", "status", "text"),
    [
        ("/points/delete", {}, 400, _UNTAGGED),
        ("/points/payload/clear", {}, 400, _UNTAGGED),
        ("/points/payload", {"payload": {"b": 1}}, 400, _IDS_OR_FILTER),
        ("/points/payload/delete", {"keys": ["tag"]}, 400, _IDS_OR_FILTER),
        ("/points/vectors/delete", {"vector": [""]}, 400, "No filter or points provided"),
    ],
)
def test_a_write_that_selects_no_points_is_refused_and_changes_nothing(
    http: httpx.Client,
    coll: str,
    selector: dict[str, Any],
    path: str,
    body: dict[str, Any],
    status: int,
    text: str,
) -> None:
    """`"filter": null` selects nothing, as a missing selector: Qdrant refuses both in its
    words per operation. Tessera took a null filter for one that matches every point, so a
    delete with `{"filter": null}` emptied the collection."""
    upsert(http, coll, [{"id": 1, "vector": [1, 0, 0], "payload": {"tag": "x"}}])
    response = http.post(f"/collections/{coll}{path}?wait=true", json={**body, **selector})
    assert text in assert_error(response, status)
    points = scroll(http, coll, with_payload=True, with_vector=True)["points"]
    assert points == [{"id": 1, "payload": {"tag": "x"}, "vector": [1.0, 0.0, 0.0]}]
    # the same operation inside POST /points/batch
    operation = {_BATCH_NAMES[path]: {**body, **selector}}
    batched = http.post(
        f"/collections/{coll}/points/batch?wait=true", json={"operations": [operation]}
    )
    assert text in assert_error(batched, status)
    assert scroll(http, coll, with_payload=True, with_vector=True)["points"] == points


_BATCH_NAMES = {
    "/points/delete": "delete",
    "/points/payload/clear": "clear_payload",
    "/points/payload": "set_payload",
    "/points/payload/delete": "delete_payload",
    "/points/vectors/delete": "delete_vectors",
}


def _named_points(http: httpx.Client, name: str) -> None:
    body = {"vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}}}
    create(http, name, body)
    upsert(
        http,
        name,
        [
            {"id": i, "vector": {"a": [1, 0], "b": [0, 1]}, "payload": {"k": int(i <= 2)}}
            for i in range(1, 6)
        ],
    )


def _with_a(http: httpx.Client, name: str) -> list[int]:
    points = scroll(http, name, with_vector=["a"], limit=10)["points"]
    return [p["id"] for p in points if "a" in p["vector"]]


@pytest.mark.parametrize("batched", [False, True])
def test_delete_vectors_by_filter_and_points_runs_both(
    http: httpx.Client, collection, batched: bool
) -> None:
    """A delete_vectors naming both a filter and points is two operations in Qdrant, the
    filter's then the points' (`do_delete_vectors`), answered with the last one's result;
    Tessera deleted the named points' vectors only. A missing id among the points: the
    filter's deletion stays, the points found lose theirs, then 404."""
    name = collection()
    _named_points(http, name)
    before = upsert(http, name, [])["operation_id"]
    body = {"filter": {"must": [{"key": "k", "match": {"value": 1}}]}, "points": [4]}
    body["vector"] = ["a"]
    if batched:
        operation = {"delete_vectors": body}
        response = http.post(
            f"/collections/{name}/points/batch?wait=true",
            json={"operations": [operation, {"delete_vectors": {"points": [5], "vector": ["b"]}}]},
        )
        results = assert_ok(response, "post", f"{C}/points/batch")
        assert [r["operation_id"] for r in results] == [before + 2, before + 3]
    else:
        response = http.post(f"/collections/{name}/points/vectors/delete?wait=true", json=body)
        result = assert_ok(response, "post", f"{C}/points/vectors/delete")
        assert result == {"operation_id": before + 2, "status": "completed"}
    assert _with_a(http, name) == [3, 5]
    # a missing id: 404 after both operations ran (the filter's, then the points found)
    body = {"filter": {"must": [{"key": "k", "match": {"value": 0}}]}, "points": [5, 99]}
    body["vector"] = ["b"]
    response = http.post(f"/collections/{name}/points/vectors/delete?wait=true", json=body)
    assert "No point with id 99 found" in assert_error(response, 404)
    points = scroll(http, name, with_vector=True, limit=10)["points"]
    assert {p["id"]: sorted(p["vector"]) for p in points} == {
        1: ["b"],
        2: ["b"],
        3: ["a"],
        4: [],
        5: ["a"],
    }


def test_shard_keys_a_standalone_collection_lacks(http: httpx.Client, coll: str) -> None:
    """A collection without shard keys: a named key is Qdrant's bad request
    (`get_shard_ids_by_key`), a key with a fallback its not-found
    (`route_with_fallback_for_read` / `_for_write`, whose `CollectionError::NotFound` adds
    " not found"); the fallback was reported as a plain missing key."""
    upsert(http, coll, [{"id": 1, "vector": [1, 0, 0]}])
    fallback = {"target": "shard_1", "fallback": "shard_backup"}
    neither = (
        "Not found: Neither target shard key shard_1 nor fallback shard key shard_backup "
        "exist not found"
    )
    query = {"query": [1, 0, 0], "shard_key": fallback}
    assert assert_error(http.post(f"/collections/{coll}/points/query", json=query), 404) == neither
    write = {"points": [{"id": 2, "vector": [0, 1, 0]}], "shard_key": fallback}
    response = http.put(f"/collections/{coll}/points", params={"wait": "true"}, json=write)
    assert assert_error(response, 404) == neither
    query = {"query": [1, 0, 0], "shard_key": "shard_1"}
    response = http.post(f"/collections/{coll}/points/query", json=query)
    assert assert_error(response, 400) == "Bad request: Shard key shard_1 not found"
    assert count(http, coll) == 1


def test_text_index_languages_by_short_name(http: httpx.Client, coll: str) -> None:
    """`en`, `es` (Qdrant's serde aliases) stand for `english`, `spanish`; the index keeps
    the long names and stems and drops stopwords as with them."""
    schema = {
        "type": "text",
        "stopwords": {"languages": ["en", "es"]},
        "stemmer": {"type": "snowball", "language": "en"},
    }
    body = {"field_name": "t", "field_schema": schema}
    response = http.put(f"/collections/{coll}/index", params={"wait": "true"}, json=body)
    assert_ok(response, "put", f"{C}/index")
    upsert(
        http,
        coll,
        [
            {"id": 1, "vector": [1, 0, 0], "payload": {"t": "the runners were running"}},
            {"id": 2, "vector": [0, 1, 0], "payload": {"t": "a quiet afternoon"}},
        ],
    )
    info = assert_ok(http.get(f"/collections/{coll}"), "get", C)
    params = info["payload_schema"]["t"]["params"]
    assert params["stopwords"] == {"languages": ["english", "spanish"]}
    assert params["stemmer"] == {"type": "snowball", "language": "english"}
    found = scroll(http, coll, filter={"must": [{"key": "t", "match": {"text": "run"}}]})
    assert [p["id"] for p in found["points"]] == [1]
    found = scroll(http, coll, filter={"must": [{"key": "t", "match": {"text": "el"}}]})
    assert found["points"] == []  # "el" is a Spanish stopword: no term to match


def test_default_vector_in_a_map_of_named_vectors(http: httpx.Client, collection) -> None:
    """`""` names the default vector: a map may hold it beside named ones (Qdrant checks only
    sparse names for emptiness; its documentation's multivector rescoring example builds such
    a collection). A bare vector goes to it, and a query without `using` searches it."""
    name = collection()
    vectors = {
        "": {"size": 3, "distance": "Dot"},
        "colbert": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
    }
    create(http, name, {"vectors": vectors})
    info = assert_ok(http.get(f"/collections/{name}"), "get", C)
    assert info["config"]["params"]["vectors"] == vectors
    upsert(
        http,
        name,
        [
            {"id": 1, "vector": [1, 0, 0]},
            {"id": 2, "vector": {"": [0, 1, 0], "colbert": [[1, 0], [0, 1]]}},
        ],
    )
    url = f"/collections/{name}/points/query"
    found = assert_ok(http.post(url, json={"query": [1, 0, 0]}), "post", f"{C}/points/query")
    assert [(p["id"], p["score"]) for p in found["points"]] == [(1, 1.0), (2, 0.0)]
    body = {"prefetch": {"query": [0, 1, 0]}, "query": [[1, 0]], "using": "colbert"}
    found = assert_ok(http.post(url, json=body), "post", f"{C}/points/query")
    assert [p["id"] for p in found["points"]] == [2]
    points = scroll(http, name, with_vector=True)["points"]
    assert [p["vector"] for p in points] == [
        [1.0, 0.0, 0.0],  # only the default vector: rendered bare, as Qdrant renders it
        {"": [0.0, 1.0, 0.0], "colbert": [[1.0, 0.0], [0.0, 1.0]]},
    ]


@pytest.mark.parametrize(
    ("vectors", "sparse", "error"),
    [
        (
            {"a*b": {"size": 2, "distance": "Dot"}},
            None,
            'Wrong input: Invalid dense vector name `a*b`: vector name cannot contain "*" char',
        ),
        (
            {"v": {"size": 2, "distance": "Dot"}},
            {"s/t": {}},
            'Wrong input: Invalid sparse vector name `s/t`: vector name cannot contain "/" char',
        ),
        (
            {"x" * 201: {"size": 2, "distance": "Dot"}},
            None,
            f"Wrong input: Invalid dense vector name `{'x' * 201}`: vector name must be at "
            "most 200 bytes long",
        ),
    ],
)
def test_vector_names_a_file_name_cannot_hold_are_refused(
    http: httpx.Client, collection, vectors: Any, sparse: Any, error: str
) -> None:
    """Vector names name directories in Qdrant's storage (`validate_vector_name`): at most
    200 bytes, none of `<>:"/\\|?*`; Tessera took any."""
    name = collection()
    body: dict[str, Any] = {"vectors": vectors}
    if sparse is not None:
        body["sparse_vectors"] = sparse
    assert assert_error(http.put(f"/collections/{name}", json=body), 400) == error
    assert http.get(f"/collections/{name}/exists").json()["result"]["exists"] is False


def test_a_new_vector_name_is_checked_as_at_creation(http: httpx.Client, coll: str) -> None:
    response = http.put(f"/collections/{coll}/vectors/a:b", json={"dense": {"size": 2}})
    assert assert_error(response, 422) == (
        'Validation error in path parameters: [vector_name: vector name cannot contain ":" char]'
    )
    info = assert_ok(http.get(f"/collections/{coll}"), "get", C)
    assert info["config"]["params"]["vectors"] == {"size": 3, "distance": "Dot"}


def test_query_reads_without_scoring_carry_version_zero(http: httpx.Client, coll: str) -> None:
    """A query root that only reads (no query, `order_by`, `sample`) is Qdrant's
    `query_scroll`: score 1 and version 0 per point; a scored query gives the point's
    version."""
    points = [{"id": i, "vector": [1, i, 0], "payload": {"n": i}} for i in range(1, 4)]
    written = upsert(http, coll, points)["operation_id"]
    body = {"field_name": "n", "field_schema": "integer"}
    response = http.put(f"/collections/{coll}/index", params={"wait": "true"}, json=body)
    assert_ok(response, "put", f"{C}/index")
    url = f"/collections/{coll}/points/query"
    prefetch = {"prefetch": {"limit": 10}}
    for query in (
        {},
        {"query": {"order_by": "n"}},
        {"query": {"sample": "random"}},
        # rescored over prefetches, by Qdrant's scroll of the prefetched ids
        {**prefetch, "query": {"order_by": "n"}},
        {**prefetch, "query": {"sample": "random"}},
    ):
        found = assert_ok(http.post(url, json=query), "post", f"{C}/points/query")["points"]
        assert len(found) == 3 and all(p["version"] == 0 for p in found), (query, found)
        assert all(p["score"] == 1.0 for p in found), (query, found)
    found = assert_ok(http.post(url, json={"query": [1, 0, 0]}), "post", f"{C}/points/query")
    assert [p["version"] for p in found["points"]] == [written] * 3


def test_operations_are_numbered_from_zero(http: httpx.Client, coll: str) -> None:
    """As Qdrant numbers them: a new collection's first write answers `operation_id: 0` and
    the points it wrote carry version 0; the next write is operation 1."""
    first = upsert(http, coll, [{"id": 1, "vector": [1, 0, 0]}, {"id": 2, "vector": [0, 1, 0]}])
    assert first == {"operation_id": 0, "status": "completed"}
    second = upsert(http, coll, [{"id": 2, "vector": [1, 1, 0]}])
    assert second["operation_id"] == 1
    response = http.post(f"/collections/{coll}/points/query", json={"query": [1, 0, 0]})
    hits = assert_ok(response, "post", f"{C}/points/query")["points"]
    assert {h["id"]: h["version"] for h in hits} == {1: 0, 2: 1}


def test_a_conditional_upsert_that_writes_nothing_is_still_an_operation(
    http: httpx.Client, coll: str
) -> None:
    """Qdrant logs a write before its condition is applied: an `insert_only` upsert of an
    existing point (or an `update_only` of a new one, or an `update_filter` that matches
    nothing) answers a new operation id, as a delete of a missing point does, and changes
    nothing (Tessera answered the previous id)."""
    first = upsert(http, coll, [{"id": 7, "vector": [1, 0, 0], "payload": {"a": 1}}])
    bodies = [
        {"points": [{"id": 7, "vector": [0, 1, 0]}], "update_mode": "insert_only"},
        {"points": [{"id": 8, "vector": [0, 1, 0]}], "update_mode": "update_only"},
        {
            "points": [{"id": 7, "vector": [0, 1, 0]}],
            "update_filter": {"must": [{"key": "a", "match": {"value": 2}}]},
        },
    ]
    ids = []
    for body in bodies:
        response = http.put(f"/collections/{coll}/points", params={"wait": "true"}, json=body)
        ids.append(assert_ok(response, "put", f"{C}/points")["operation_id"])
    assert ids == [first["operation_id"] + 1, first["operation_id"] + 2, first["operation_id"] + 3]
    points = scroll(http, coll, with_vector=True)["points"]
    assert points == [{"id": 7, "payload": {"a": 1}, "vector": [1.0, 0.0, 0.0]}]


def test_huge_beams_and_limits_on_an_indexed_segment(http: httpx.Client, collection) -> None:
    """faiss takes C ints: an `hnsw_ef`, limit or offset of 2^31 on an indexed segment, or
    an infinite / NaN oversampling, answered 500; the walk is bounded by the segment."""
    name = collection()
    body = {
        "vectors": {"size": 8, "distance": "Cosine"},
        "optimizers_config": {"indexing_threshold": 1},
        "quantization_config": {"scalar": {"type": "int8"}},
    }
    create(http, name, body)
    rng = np.random.default_rng(0)
    upsert(http, name, [{"id": i, "vector": rng.random(8).tolist()} for i in range(1, 301)])
    for _ in range(300):
        info = assert_ok(http.get(f"/collections/{name}"), "get", C)
        if info["indexed_vectors_count"] >= 300:
            break
        time.sleep(0.1)
    assert info["indexed_vectors_count"] >= 300
    q = rng.random(8).tolist()
    url = f"/collections/{name}/points/query"
    for extra in (
        {"params": {"hnsw_ef": 2**31}},
        {"limit": 2**31},
        {"offset": 2**31},
        {"params": {"quantization": {"rescore": True, "oversampling": 1e300}}},
    ):
        found = assert_ok(http.post(url, json={"query": q, **extra}), "post", f"{C}/points/query")
        assert len(found["points"]) == (
            0 if "offset" in extra else min(300, extra.get("limit", 10))
        )


@pytest.mark.parametrize(
    ("raw", "shown"), [(-1, "-1"), ("abc", "abc"), (1.5, "1.5"), (True, "true")]
)
def test_invalid_point_id_in_qdrants_words(
    http: httpx.Client, coll: str, raw: Any, shown: str
) -> None:
    """What is neither an unsigned integer nor a UUID, as Qdrant's point id deserializer
    words it (a string shown without quotes), in a body and in a filter's has_id."""
    text = (
        f"value {shown} is not a valid point ID, valid values are either an unsigned integer "
        "or a UUID"
    )
    body = {"points": [{"id": raw, "vector": [1, 0, 0]}]}
    answer = http.put(f"/collections/{coll}/points", params={"wait": "true"}, json=body)
    assert answer.status_code == 400
    assert answer.json()["status"]["error"] == f"Format error in JSON body: {text}"
    body = {"filter": {"must": [{"has_id": [raw]}]}}
    answer = http.post(f"/collections/{coll}/points/count", json=body)
    assert answer.status_code == 400
    assert answer.json()["status"]["error"].endswith(text)
    assert count(http, coll) == 0


def test_batch_vectors_are_required(http: httpx.Client, coll: str) -> None:
    """Qdrant's `Batch` requires `vectors` (an object of no names, `{}`, is points without
    vectors); absent or null it is a 400 and nothing is written."""
    url = f"/collections/{coll}/points"
    for batch, text in (
        ({"ids": [77]}, "Format error in JSON body: missing field `vectors`"),
        (
            {"ids": [77], "vectors": None},
            "Format error in JSON body: data did not match any variant of untagged enum "
            "BatchVectorStruct",
        ),
    ):
        answer = http.put(url, params={"wait": "true"}, json={"batch": batch})
        assert answer.status_code == 400, answer.text
        assert answer.json()["status"]["error"] == text
    assert count(http, coll) == 0
    done = http.put(url, params={"wait": "true"}, json={"batch": {"ids": [77], "vectors": {}}})
    assert done.status_code == 200, done.text
    assert count(http, coll) == 1


@pytest.mark.parametrize(
    "selector",
    [{"include": ["k"], "foo": 1}, {"include": ["k"], "exclude": ["j"]}, {"only": ["k"]}, 3],
)
def test_payload_selector_with_other_fields_is_refused(
    http: httpx.Client, coll: str, selector: Any
) -> None:
    """Qdrant's payload selectors are `{"include": [...]}` or `{"exclude": [...]}` and refuse
    any other field beside (400), as its untagged `WithPayloadInterface` words it."""
    upsert(http, coll, [{"id": 1, "vector": [1, 0, 0], "payload": {"k": 1, "j": 2}}])
    answer = http.post(f"/collections/{coll}/points/scroll", json={"with_payload": selector})
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"]["error"] == (
        "Format error in JSON body: data did not match any variant of untagged enum "
        "WithPayloadInterface"
    )
    fine = http.post(
        f"/collections/{coll}/points/scroll", json={"with_payload": {"include": ["k"]}}
    )
    assert fine.json()["result"]["points"][0]["payload"] == {"k": 1}
