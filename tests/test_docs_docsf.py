"""Qdrant's documentation pages on filtering, payload and indexing, run against the server.

Each test is an example (or a rule) from concepts/filtering, concepts/payload or
concepts/indexing whose answer once differed from Qdrant's; both wires are checked: plain
HTTP and qdrant-client over gRPC (a private server of this module has gRPC on).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc as grpc_lib
import httpx
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import ServerProcess, make_grpc_client, module_server

pytestmark = pytest.mark.server_only(reason="plain HTTP and gRPC need a server")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-docs-docsf", grpc=True)


@pytest.fixture
def web(srv: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=30.0) as hc:
        yield hc


@pytest.fixture
def grpc(srv: ServerProcess) -> Iterator[QdrantClient]:
    qc = make_grpc_client(srv, timeout=30, check_compatibility=False)
    try:
        yield qc
    finally:
        qc.close()


@pytest.fixture
def name(web: httpx.Client) -> Iterator[str]:
    """A fresh collection name, deleted afterwards."""
    found = f"docsf_{uuid.uuid4().hex[:10]}"
    yield found
    web.delete(f"/collections/{found}")


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["result"]


# ------------------------------------------------------------------ indexing: sparse vectors


SPARSE_CREATE = {
    "sparse_vectors": {
        "text": {
            "index": {"on_disk": False, "full_scan_threshold": 5000, "datatype": "float16"},
            "modifier": "idf",
        }
    }
}


def sparse_index(web: httpx.Client, name: str) -> Any:
    return ok(web.get(f"/collections/{name}"))["config"]["params"]["sparse_vectors"]["text"]


def test_sparse_index_update_keeps_the_fields_it_does_not_give(
    web: httpx.Client, name: str
) -> None:
    """PATCH of a sparse vector's `index` merges into the stored one (Qdrant's
    SparseIndexParams::update_from_other): full_scan_threshold and datatype survive a
    change of on_disk alone."""
    ok(web.put(f"/collections/{name}", json=SPARSE_CREATE))
    patch = {"sparse_vectors": {"text": {"index": {"on_disk": True}}}}
    assert ok(web.patch(f"/collections/{name}", json=patch)) is True
    assert sparse_index(web, name) == {
        "index": {"full_scan_threshold": 5000, "on_disk": True, "datatype": "float16"},
        "modifier": "idf",
    }
    patch = {"sparse_vectors": {"text": {"index": {"full_scan_threshold": 100}}}}
    assert ok(web.patch(f"/collections/{name}", json=patch)) is True
    assert sparse_index(web, name)["index"] == {
        "full_scan_threshold": 100,
        "on_disk": True,
        "datatype": "float16",
    }


def test_sparse_index_update_over_grpc_merges_too(
    web: httpx.Client, grpc: QdrantClient, name: str
) -> None:
    ok(web.put(f"/collections/{name}", json=SPARSE_CREATE))
    grpc.update_collection(
        name,
        sparse_vectors_config={
            "text": models.SparseVectorParams(index=models.SparseIndexParams(on_disk=True))
        },
    )
    params = grpc.get_collection(name).config.params.sparse_vectors
    assert params is not None
    index = params["text"].index
    assert index is not None
    assert (index.full_scan_threshold, index.on_disk, index.datatype) == (
        5000,
        True,
        models.Datatype.FLOAT16,
    )


# ------------------------------------------------------------------ indexing: uuid index

UUID_LOWER = "550e8400-e29b-41d4-a716-446655440000"
UUID_SPELLINGS = {
    1: UUID_LOWER,
    2: UUID_LOWER.upper(),
    3: UUID_LOWER.replace("-", ""),
    4: "not-a-uuid",
    5: [UUID_LOWER, "x"],
    6: "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
}


def uuid_collection(web: httpx.Client, name: str, indexed: bool) -> None:
    ok(web.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}}))
    if indexed:
        body = {"field_name": "user", "field_schema": "uuid"}
        ok(web.put(f"/collections/{name}/index", params={"wait": "true"}, json=body))
    points = [
        {"id": i, "vector": [1.0, 0.5], "payload": {"user": v}} for i, v in UUID_SPELLINGS.items()
    ]
    ok(web.put(f"/collections/{name}/points", params={"wait": "true"}, json={"points": points}))


def selected(web: httpx.Client, name: str, condition: dict[str, Any]) -> list[int]:
    body = {"filter": {"must": [condition]}, "limit": 100}
    found = ok(web.post(f"/collections/{name}/points/scroll", json=body))["points"]
    return sorted(p["id"] for p in found)


def grpc_selected(grpc: QdrantClient, name: str, match: Any) -> list[int]:
    condition = models.FieldCondition(key="user", match=match)
    found, _ = grpc.scroll(name, scroll_filter=models.Filter(must=[condition]), limit=100)
    return sorted(int(p.id) for p in found)


def test_uuid_index_matches_every_spelling_of_the_uuid(
    web: httpx.Client, grpc: QdrantClient, name: str
) -> None:
    """A uuid index compares UUIDs, not strings (Qdrant stores them as 128-bit values): the
    upper-case, the simple and the hyphenated spelling of one UUID all match each other."""
    uuid_collection(web, name, indexed=True)
    for query in (UUID_LOWER, UUID_LOWER.upper(), UUID_LOWER.replace("-", "")):
        condition = {"key": "user", "match": {"value": query}}
        assert selected(web, name, condition) == [1, 2, 3, 5], query
        assert grpc_selected(grpc, name, models.MatchValue(value=query)) == [1, 2, 3, 5]
    condition = {"key": "user", "match": {"any": [UUID_LOWER.upper(), UUID_SPELLINGS[6]]}}
    assert selected(web, name, condition) == [1, 2, 3, 5, 6]
    any_both = models.MatchAny(any=[UUID_LOWER.upper(), str(UUID_SPELLINGS[6])])
    assert grpc_selected(grpc, name, any_both) == [1, 2, 3, 5, 6]


def test_uuid_index_leaves_a_non_uuid_query_to_the_payload(web: httpx.Client, name: str) -> None:
    """A query value that is not a UUID: Qdrant's index declines, the payload answers by
    string equality (so the spellings stop matching each other)."""
    uuid_collection(web, name, indexed=True)
    condition = {"key": "user", "match": {"any": [UUID_LOWER.replace("-", ""), "not-a-uuid"]}}
    assert selected(web, name, condition) == [3, 4]
    assert selected(web, name, {"key": "user", "match": {"value": "x"}}) == [5]


def test_uuid_strings_without_an_index_compare_as_strings(web: httpx.Client, name: str) -> None:
    uuid_collection(web, name, indexed=False)
    assert selected(web, name, {"key": "user", "match": {"value": UUID_LOWER.upper()}}) == [2]


# ------------------------------------------------------------------ indexing: gRPC CreateFieldIndex


def create_index_grpc(srv: ServerProcess, request: Any) -> Any:
    from qdrant_client import grpc as pb

    with grpc_lib.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as channel:
        return pb.PointsStub(channel).CreateFieldIndex(request, timeout=30)


def test_grpc_create_index_reads_type_and_params_as_qdrant(
    srv: ServerProcess, web: httpx.Client, name: str
) -> None:
    """Qdrant's convert_field_type: params of another type than `field_type` are refused
    (INVALID_ARGUMENT "field_type (Keyword) and field_index_params do not match", nothing
    created), a request without `field_type` is "cannot convert field_type", a text index
    without a tokenizer is "unknown tokenizer type" (REST's default, word, is no gRPC
    default), and params whose oneof is empty mean the bare type."""
    from qdrant_client import grpc as pb

    ok(web.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}}))
    integer = pb.PayloadIndexParams(integer_index_params=pb.IntegerIndexParams(lookup=True))
    refused = [
        (
            pb.CreateFieldIndexCollection(
                collection_name=name,
                field_name="a",
                field_type=pb.FieldType.FieldTypeKeyword,
                field_index_params=integer,
                wait=True,
            ),
            "field_type (Keyword) and field_index_params do not match",
        ),
        (
            pb.CreateFieldIndexCollection(
                collection_name=name, field_name="a", field_index_params=integer, wait=True
            ),
            "cannot convert field_type",
        ),
        (
            pb.CreateFieldIndexCollection(collection_name=name, field_name="a", wait=True),
            "cannot convert field_type",
        ),
        (
            pb.CreateFieldIndexCollection(
                collection_name=name,
                field_name="a",
                field_type=pb.FieldType.FieldTypeText,
                field_index_params=pb.PayloadIndexParams(
                    text_index_params=pb.TextIndexParams(lowercase=True)
                ),
                wait=True,
            ),
            "unknown tokenizer type",
        ),
    ]
    for request, message in refused:
        with pytest.raises(grpc_lib.RpcError) as info:
            create_index_grpc(srv, request)
        assert info.value.code() == grpc_lib.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == message
    assert ok(web.get(f"/collections/{name}"))["payload_schema"] == {}
    create_index_grpc(
        srv,
        pb.CreateFieldIndexCollection(
            collection_name=name,
            field_name="b",
            field_type=pb.FieldType.FieldTypeUuid,
            field_index_params=pb.PayloadIndexParams(),
            wait=True,
        ),
    )
    assert ok(web.get(f"/collections/{name}"))["payload_schema"] == {
        "b": {"data_type": "uuid", "points": 0}
    }


# ------------------------------------------------------------------ indexing: stopwords


def test_stopword_sets_are_kept_as_sets(web: httpx.Client, grpc: QdrantClient, name: str) -> None:
    """Qdrant's StopwordsSet holds BTreeSets: languages and custom words come back
    deduplicated and sorted (languages in the enum's order, words by their bytes), over REST
    and over gRPC."""
    ok(web.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}}))
    stopwords = {"languages": ["spanish", "english", "en"], "custom": ["the", "My", "a", "the"]}
    body = {"field_name": "t", "field_schema": {"type": "text", "stopwords": stopwords}}
    ok(web.put(f"/collections/{name}/index", params={"wait": "true"}, json=body))
    params = ok(web.get(f"/collections/{name}"))["payload_schema"]["t"]["params"]
    assert params["stopwords"] == {
        "languages": ["english", "spanish"],
        "custom": ["My", "a", "the"],
    }
    info = grpc.get_collection(name).payload_schema["t"].params
    assert isinstance(info, models.TextIndexParams)
    assert isinstance(info.stopwords, models.StopwordsSet)
    assert info.stopwords.languages == [models.Language.ENGLISH, models.Language.SPANISH]
    assert info.stopwords.custom == ["My", "a", "the"]


# ------------------------------------------------------------------ indexing: integer index


def test_integer_index_takes_integral_floats_as_integers(
    web: httpx.Client, grpc: QdrantClient, name: str
) -> None:
    """An integer index indexes 1.0 as 1 (Qdrant's `value_to_integer`), so matches, the
    indexed points count and facets over it see the value; a fraction or a string does not."""
    ok(web.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}}))
    body = {"field_name": "count", "field_schema": "integer"}
    ok(web.put(f"/collections/{name}/index", params={"wait": "true"}, json=body))
    values = {1: 1, 2: 1.0, 3: 1.5, 4: [2.0, 7], 5: "1"}
    points = [{"id": i, "vector": [1.0, 0.5], "payload": {"count": v}} for i, v in values.items()]
    ok(web.put(f"/collections/{name}/points", params={"wait": "true"}, json={"points": points}))

    def chosen(condition: dict[str, Any]) -> list[int]:
        return selected_by(web, name, condition)

    assert chosen({"key": "count", "match": {"value": 1}}) == [1, 2]
    assert chosen({"key": "count", "match": {"any": [2]}}) == [4]
    match_one = models.FieldCondition(key="count", match=models.MatchValue(value=1))
    found, _ = grpc.scroll(name, scroll_filter=models.Filter(must=[match_one]), limit=10)
    assert sorted(int(p.id) for p in found) == [1, 2]
    schema = ok(web.get(f"/collections/{name}"))["payload_schema"]["count"]
    assert schema["points"] == 3
    facet = ok(web.post(f"/collections/{name}/facet", json={"key": "count", "exact": True}))
    assert {h["value"]: h["count"] for h in facet["hits"]} == {1: 2, 2: 1, 7: 1}


def selected_by(web: httpx.Client, name: str, condition: dict[str, Any]) -> list[int]:
    body = {"filter": {"must": [condition]}, "limit": 100}
    found = ok(web.post(f"/collections/{name}/points/scroll", json=body))["points"]
    return sorted(p["id"] for p in found)
