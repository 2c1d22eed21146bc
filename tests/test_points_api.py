"""Every section of the Points chapter, driven through the official client.

Runs against the server and, with TESSERA_TEST_TARGET=local, against qdrant-client's local mode,
which proves these expectations are Qdrant's. Tests marked ``server_only`` check behaviour that
local mode does not implement (payload indexes, atomic update_vectors).
"""

from __future__ import annotations

import math
import uuid
import warnings
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import LOCAL

Distance = models.Distance
VP = models.VectorParams
PS = models.PointStruct

UUID_CANON = "936da01f-9abd-4d9d-80c7-02af85c822a8"
UUID_SPELLINGS = [
    "936DA01F9ABD4d9d80C702AF85C822A8",  # simple, mixed case
    "936DA01F-9ABD-4D9D-80C7-02AF85C822A8",  # hyphenated, upper case
    "urn:uuid:936da01f-9abd-4d9d-80c7-02af85c822a8",  # urn
    "{936da01f-9abd-4d9d-80c7-02af85c822a8}",  # braced
]


def create_index(
    client: QdrantClient, name: str, field: str, schema: models.PayloadSchemaType
) -> models.UpdateResult:
    with warnings.catch_warnings():
        if LOCAL:  # local mode warns that payload indexes do nothing there
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        return client.create_payload_index(name, field, field_schema=schema, wait=True)


def delete_index(client: QdrantClient, name: str, field: str) -> models.UpdateResult:
    with warnings.catch_warnings():
        if LOCAL:
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        return client.delete_payload_index(name, field, wait=True)


def by_id(records: list[Any]) -> dict[Any, Any]:
    return {r.id: r for r in records}


def scroll_all(client: QdrantClient, name: str, **kwargs: Any) -> list[models.Record]:
    records, offset = client.scroll(name, limit=10_000, **kwargs)
    assert offset is None
    return records


def ids_of(records: list[Any]) -> list[Any]:
    return [r.id for r in records]


def approx(values: Any, rel: float = 1e-5, abs: float = 1e-6) -> Any:
    return pytest.approx(values, rel=rel, abs=abs)


@pytest.fixture
def plain(client: QdrantClient, collection) -> str:
    """A collection with one unnamed 3-d Dot vector."""
    return collection(vectors_config=VP(size=3, distance=Distance.DOT))


@pytest.fixture
def named(client: QdrantClient, collection) -> str:
    """Named dense vectors ``image`` (4-d) and ``text`` (8-d), plus sparse ``words``."""
    return collection(
        vectors_config={
            "image": VP(size=4, distance=Distance.DOT),
            "text": VP(size=8, distance=Distance.EUCLID),
        },
        sparse_vectors_config={"words": models.SparseVectorParams()},
    )


# --------------------------------------------------------------------------------------------
# Point ids


def test_u64_ids_up_to_the_maximum(client: QdrantClient, plain: str) -> None:
    ids = [0, 1, 2**53 + 1, 2**63, 2**64 - 1]
    client.upsert(plain, [PS(id=i, vector=[1, 0, 0], payload={"i": str(i)}) for i in ids])
    assert sorted(ids_of(client.retrieve(plain, ids))) == ids
    records = scroll_all(client, plain)
    assert ids_of(records) == ids
    assert [r.payload["i"] for r in records] == [str(i) for i in ids]


def test_uuid_spellings_are_one_point_returned_hyphenated(client: QdrantClient, plain: str) -> None:
    for n, spelling in enumerate(UUID_SPELLINGS):
        client.upsert(plain, [PS(id=spelling, vector=[1, 2, 3], payload={"n": n})])
    assert client.count(plain, exact=True).count == 1
    (record,) = scroll_all(client, plain)
    assert record.id == UUID_CANON
    assert record.payload == {"n": len(UUID_SPELLINGS) - 1}
    for spelling in [*UUID_SPELLINGS, UUID_CANON, uuid.UUID(UUID_CANON)]:
        got = client.retrieve(plain, [spelling])
        assert ids_of(got) == [UUID_CANON], spelling
    client.delete(plain, points_selector=models.PointIdsList(points=[UUID_SPELLINGS[2]]))
    assert client.count(plain).count == 0


def test_numeric_ids_sort_before_uuids(client: QdrantClient, plain: str) -> None:
    ids: list[Any] = [
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
        7,
        "00000000-0000-4000-8000-000000000001",
        2**64 - 1,
        0,
        "7fffffff-0000-4000-8000-000000000000",
    ]
    client.upsert(plain, [PS(id=i, vector=[1, 1, 1]) for i in ids])
    assert ids_of(scroll_all(client, plain)) == [
        0,
        7,
        2**64 - 1,
        "00000000-0000-4000-8000-000000000001",
        "7fffffff-0000-4000-8000-000000000000",
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
    ]


# --------------------------------------------------------------------------------------------
# Upload points


def test_record_and_column_oriented_upserts_are_equivalent(
    client: QdrantClient, collection
) -> None:
    rows = collection(vectors_config=VP(size=3, distance=Distance.DOT))
    cols = collection(vectors_config=VP(size=3, distance=Distance.DOT))
    ids: list[Any] = [1, 2, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]
    payloads = [{"color": "red"}, {"color": "green"}, {"color": "blue", "n": [1, 2]}]
    vectors = [[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]]
    result = client.upsert(
        rows, [PS(id=i, vector=v, payload=p) for i, v, p in zip(ids, vectors, payloads)]
    )
    assert result.status == models.UpdateStatus.COMPLETED
    result = client.upsert(cols, models.Batch(ids=ids, vectors=vectors, payloads=payloads))
    assert result.status == models.UpdateStatus.COMPLETED
    got_rows = scroll_all(client, rows, with_vectors=True)
    got_cols = scroll_all(client, cols, with_vectors=True)
    assert ids_of(got_rows) == ids_of(got_cols) == ids
    for a, b, payload, vector in zip(got_rows, got_cols, payloads, vectors):
        assert a.payload == b.payload == payload
        assert a.vector == approx(vector)
        assert b.vector == approx(vector)


def test_column_oriented_named_vectors_without_payloads(client: QdrantClient, named: str) -> None:
    client.upsert(
        named,
        models.Batch(
            ids=[10, 11],
            vectors={"image": [[1, 2, 3, 4], [5, 6, 7, 8]]},
        ),
    )
    got = by_id(client.retrieve(named, [10, 11], with_vectors=True))
    assert got[10].vector == {"image": approx([1, 2, 3, 4])}
    assert got[11].vector == {"image": approx([5, 6, 7, 8])}
    assert got[10].payload == {}


def test_reupload_is_idempotent(client: QdrantClient, plain: str) -> None:
    points = [PS(id=i, vector=[i, 1, 0], payload={"i": i}) for i in range(1, 6)]
    for _ in range(3):
        client.upsert(plain, points)
    assert client.count(plain, exact=True).count == 5
    records = scroll_all(client, plain, with_vectors=True)
    assert [(r.id, r.payload, r.vector) for r in records] == [
        (i, {"i": i}, approx([i, 1, 0])) for i in range(1, 6)
    ]


def test_named_vectors_may_be_omitted(client: QdrantClient, named: str) -> None:
    image = [0.9, 0.1, 0.1, 0.2]
    text = [0.4, 0.7, 0.1, 0.8, 0.1, 0.1, 0.9, 0.2]
    client.upsert(
        named,
        [PS(id=1, vector={"image": image}), PS(id=2, vector={"text": text}), PS(id=3, vector={})],
    )
    assert client.count(named).count == 3
    got = by_id(client.retrieve(named, [1, 2, 3], with_vectors=True))
    assert got[1].vector == {"image": approx(image)}
    assert got[2].vector == {"text": approx(text)}
    assert not got[3].vector
    hits = client.query_points(named, query=text, using="text", limit=10).points
    assert ids_of(hits) == [2]
    hits = client.query_points(named, query=image, using="image", limit=10).points
    assert ids_of(hits) == [1]


def test_upsert_replaces_the_whole_point(client: QdrantClient, named: str) -> None:
    client.upsert(
        named,
        [
            PS(
                id=1,
                vector={
                    "image": [1, 1, 1, 1],
                    "text": [1] * 8,
                    "words": models.SparseVector(indices=[1], values=[1.0]),
                },
                payload={"color": "red", "size": 3},
            )
        ],
    )
    client.upsert(named, [PS(id=1, vector={"image": [2, 2, 2, 2]})])
    (record,) = client.retrieve(named, [1], with_vectors=True, with_payload=True)
    assert record.payload == {}
    assert record.vector == {"image": approx([2, 2, 2, 2])}
    assert client.count(named).count == 1


def test_wrong_dimension_is_refused_and_nothing_is_written(
    client: QdrantClient, plain: str, expect_error
) -> None:
    with expect_error(400, "Vector dimension error: expected dim: 3, got 2"):
        client.upsert(plain, [PS(id=1, vector=[1, 2, 3]), PS(id=2, vector=[1, 2])])
    assert client.count(plain, exact=True).count == 0
    with expect_error(400, "expected dim: 3, got 4"):
        client.upsert(plain, models.Batch(ids=[1, 2], vectors=[[1, 2, 3], [1, 2, 3, 4]]))
    assert client.count(plain, exact=True).count == 0


def test_unknown_vector_name_is_refused(client: QdrantClient, named: str, expect_error) -> None:
    with expect_error(400, "nope"):
        client.upsert(
            named,
            [PS(id=1, vector={"image": [1, 2, 3, 4]}), PS(id=2, vector={"nope": [1, 2, 3, 4]})],
        )
    assert client.count(named, exact=True).count == 0


def test_sparse_vectors_unsorted_indices_are_accepted(client: QdrantClient, named: str) -> None:
    client.upsert(
        named,
        [
            PS(id=1, vector={"words": models.SparseVector(indices=[6, 7], values=[1.0, 2.0])}),
            PS(
                id=2,
                vector={
                    "words": models.SparseVector(indices=[9, 2, 5, 0], values=[0.9, 0.2, 0.5, 0.1])
                },
            ),
        ],
    )
    got = by_id(client.retrieve(named, [1, 2], with_vectors=["words"]))
    first = got[1].vector["words"]
    assert (first.indices, first.values) == ([6, 7], approx([1.0, 2.0]))
    second = got[2].vector["words"]
    # Sorted internally: the pairs survive, in index order.
    assert second.indices == [0, 2, 5, 9]
    assert second.values == approx([0.1, 0.2, 0.5, 0.9])


@pytest.mark.parametrize(
    ("indices", "values", "message"),
    [
        ([1, 2, 3], [0.1, 0.2], "must be the same length as indices"),
        ([1, 2, 3, 4, 5], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "must be the same length as indices"),
        ([1, 1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4, 0.5], "must be unique"),
    ],
)
def test_bad_sparse_vectors_are_refused(
    client: QdrantClient, named: str, expect_error, indices, values, message
) -> None:
    # Qdrant validates the body before anything runs: 422 "Validation error in JSON body".
    with expect_error(422, message):
        client.upsert(
            named,
            [
                PS(id=1, vector={"words": models.SparseVector(indices=[1], values=[1.0])}),
                PS(id=2, vector={"words": models.SparseVector(indices=indices, values=values)}),
            ],
        )
    assert client.count(named, exact=True).count == 0


def test_multivectors_roundtrip(client: QdrantClient, collection, expect_error) -> None:
    name = collection(
        vectors_config={
            "colbert": VP(
                size=3,
                distance=Distance.DOT,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            )
        }
    )
    matrix = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]
    client.upsert(
        name,
        [PS(id=1, vector={"colbert": matrix}), PS(id=2, vector={"colbert": [[1.0, 0.0, 0.0]]})],
    )
    got = by_id(client.retrieve(name, [1, 2], with_vectors=True))
    assert [approx(row) for row in matrix] == got[1].vector["colbert"]
    assert got[2].vector["colbert"] == [approx([1.0, 0.0, 0.0])]
    # rows of two dimensions: Qdrant's validator refuses the body before it checks the size
    with expect_error(422, "all vectors must have the same dimension"):
        client.upsert(name, [PS(id=3, vector={"colbert": [[1.0, 0.0, 0.0], [1.0, 0.0]]})])
    with expect_error(400, "expected dim: 3, got 2"):
        client.upsert(name, [PS(id=3, vector={"colbert": [[1.0, 0.0], [0.0, 1.0]]})])
    assert client.count(name, exact=True).count == 2


def test_datatypes_roundtrip(client: QdrantClient, collection) -> None:
    name = collection(
        vectors_config={
            "half": VP(size=4, distance=Distance.DOT, datatype=models.Datatype.FLOAT16),
            "byte": VP(size=4, distance=Distance.DOT, datatype=models.Datatype.UINT8),
            "disk": VP(size=4, distance=Distance.DOT, on_disk=True),
        }
    )
    client.upsert(
        name,
        [
            PS(
                id=1,
                vector={
                    "half": [0.5, -0.25, 0.1, 3.0],
                    "byte": [0, 7, 128, 255],
                    "disk": [0.1, 0.2, 0.3, 0.4],
                },
            )
        ],
    )
    (record,) = client.retrieve(name, [1], with_vectors=True)
    assert record.vector["half"] == pytest.approx([0.5, -0.25, 0.1, 3.0], abs=1e-3)
    assert record.vector["byte"] == [0, 7, 128, 255]
    assert record.vector["disk"] == approx([0.1, 0.2, 0.3, 0.4])


# --------------------------------------------------------------------------------------------
# Modify points: vectors


def test_update_vectors_keeps_the_rest(client: QdrantClient, named: str) -> None:
    client.upsert(
        named,
        [
            PS(id=1, vector={"image": [1, 1, 1, 1], "text": [1] * 8}, payload={"p": 1}),
            PS(id=2, vector={"image": [2, 2, 2, 2]}, payload={"p": 2}),
        ],
    )
    result = client.update_vectors(
        named,
        points=[
            models.PointVectors(id=1, vector={"image": [0.1, 0.2, 0.3, 0.4]}),
            models.PointVectors(id=2, vector={"text": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]}),
        ],
    )
    assert result.status == models.UpdateStatus.COMPLETED
    got = by_id(client.retrieve(named, [1, 2], with_vectors=True))
    assert got[1].vector == {"image": approx([0.1, 0.2, 0.3, 0.4]), "text": approx([1] * 8)}
    assert got[2].vector == {
        "image": approx([2, 2, 2, 2]),
        "text": approx([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]),
    }
    assert (got[1].payload, got[2].payload) == ({"p": 1}, {"p": 2})


def test_update_vectors_of_a_missing_point_fails(
    client: QdrantClient, named: str, expect_error
) -> None:
    client.upsert(named, [PS(id=1, vector={"image": [1, 1, 1, 1]})])
    with expect_error(404, "No point with id 99 found"):
        client.update_vectors(
            named, points=[models.PointVectors(id=99, vector={"image": [2, 2, 2, 2]})]
        )
    assert client.count(named).count == 1
    assert client.retrieve(named, [99]) == []


def test_update_vectors_naming_a_point_twice_merges_its_items(
    client: QdrantClient, named: str
) -> None:
    """As Qdrant merges the items of one point: each vector from the last item giving it."""
    client.upsert(named, [PS(id=i, vector={"image": [i] * 4, "text": [i] * 8}) for i in (1, 2)])
    words = models.SparseVector(indices=[3, 1], values=[0.5, 0.25])
    client.update_vectors(
        named,
        points=[
            models.PointVectors(id=1, vector={"text": [2] * 8}),
            models.PointVectors(id=2, vector={"image": [7] * 4}),
            models.PointVectors(id=1, vector={"image": [3] * 4, "words": words}),
            models.PointVectors(id=1, vector={"text": [4] * 8}),
        ],
    )
    got = {r.id: r.vector for r in client.retrieve(named, [1, 2], with_vectors=True)}
    assert got[1]["image"] == approx([3] * 4) and got[1]["text"] == approx([4] * 8)
    assert got[1]["words"].indices == [1, 3] and got[1]["words"].values == approx([0.25, 0.5])
    assert got[2] == {"image": approx([7] * 4), "text": approx([2] * 8)}


def test_vector_writes_naming_a_missing_point_write_the_others(
    client: QdrantClient, named: str, expect_error
) -> None:
    """As Qdrant (Qdrant Edge, local mode, qdrant-client's congruence tests): the points
    found are written, then the first missing id is a 404."""
    client.upsert(named, [PS(id=i, vector={"image": [i] * 4, "text": [i] * 8}) for i in (1, 2)])
    with expect_error(404, "No point with id 99 found"):
        client.update_vectors(
            named,
            points=[
                models.PointVectors(id=1, vector={"image": [5, 5, 5, 5]}),
                models.PointVectors(id=99, vector={"image": [2, 2, 2, 2]}),
                models.PointVectors(id=2, vector={"image": [6, 6, 6, 6]}),
            ],
        )
    got = {r.id: r.vector for r in client.retrieve(named, [1, 2], with_vectors=True)}
    assert got[1] == {"image": approx([5] * 4), "text": approx([1] * 8)}
    assert got[2] == {"image": approx([6] * 4), "text": approx([2] * 8)}
    assert client.retrieve(named, [99]) == []
    with expect_error(404, "No point with id 99 found"):
        client.delete_vectors(named, ["text"], points=[1, 99, 2])
    got = {r.id: r.vector for r in client.retrieve(named, [1, 2], with_vectors=True)}
    assert got == {1: {"image": approx([5] * 4)}, 2: {"image": approx([6] * 4)}}


def test_update_vectors_with_wrong_dimension_is_refused(
    client: QdrantClient, named: str, expect_error
) -> None:
    client.upsert(named, [PS(id=1, vector={"image": [1, 1, 1, 1]})])
    with expect_error(400, "expected dim: 4, got 3"):
        client.update_vectors(
            named, points=[models.PointVectors(id=1, vector={"image": [1, 2, 3]})]
        )
    (record,) = client.retrieve(named, [1], with_vectors=True)
    assert record.vector == {"image": approx([1, 1, 1, 1])}


def test_delete_vectors_keeps_the_point(client: QdrantClient, named: str) -> None:
    client.upsert(
        named,
        [
            PS(
                id=i,
                vector={
                    "image": [i, 1, 1, 1],
                    "text": [i] * 8,
                    "words": models.SparseVector(indices=[i], values=[1.0]),
                },
                payload={"keep": i},
            )
            for i in (0, 3, 5)
        ],
    )
    result = client.delete_vectors(named, vectors=["text", "words"], points=[0, 3])
    assert result.status == models.UpdateStatus.COMPLETED
    got = by_id(client.retrieve(named, [0, 3, 5], with_vectors=True))
    assert got[0].vector == {"image": approx([0, 1, 1, 1])}
    assert got[3].vector == {"image": approx([3, 1, 1, 1])}
    assert set(got[5].vector) == {"image", "text", "words"}
    assert got[0].payload == {"keep": 0}
    assert client.count(named).count == 3
    # By filter
    client.delete_vectors(
        named,
        vectors=["image"],
        points=models.Filter(
            must=[models.FieldCondition(key="keep", match=models.MatchValue(value=5))]
        ),
    )
    assert set(client.retrieve(named, [5], with_vectors=True)[0].vector) == {"text", "words"}


def test_delete_the_unnamed_vector(client: QdrantClient, plain: str) -> None:
    client.upsert(plain, [PS(id=1, vector=[1, 2, 3], payload={"a": 1})])
    client.delete_vectors(plain, vectors=[""], points=[1])
    (record,) = client.retrieve(plain, [1], with_vectors=True)
    assert not record.vector
    assert record.payload == {"a": 1}
    assert client.query_points(plain, query=[1, 2, 3]).points == []


# --------------------------------------------------------------------------------------------
# Modify points: payload


@pytest.fixture
def colored(client: QdrantClient, plain: str) -> str:
    client.upsert(
        plain,
        [
            PS(id=1, vector=[1, 0, 0], payload={"color": "red", "size": 1, "meta": {"a": 1}}),
            PS(id=2, vector=[0, 1, 0], payload={"color": "green", "size": 2}),
            PS(id=3, vector=[0, 0, 1], payload={"color": "red", "size": 3}),
            PS(id=4, vector=[1, 1, 0]),
        ],
    )
    return plain


def red() -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]
    )


def payloads(client: QdrantClient, name: str) -> dict[Any, Any]:
    return {r.id: r.payload for r in scroll_all(client, name)}


def test_set_payload_merges_by_ids_and_by_filter(client: QdrantClient, colored: str) -> None:
    result = client.set_payload(colored, payload={"size": 10, "new": True}, points=[1, 4])
    assert result.status == models.UpdateStatus.COMPLETED
    client.set_payload(colored, payload={"hot": "yes"}, points=red())
    assert payloads(client, colored) == {
        1: {"color": "red", "size": 10, "meta": {"a": 1}, "new": True, "hot": "yes"},
        2: {"color": "green", "size": 2},
        3: {"color": "red", "size": 3, "hot": "yes"},
        4: {"size": 10, "new": True},
    }


def test_set_payload_with_a_nested_key(client: QdrantClient, colored: str) -> None:
    client.set_payload(colored, payload={"b": 2}, points=[1], key="meta")
    client.set_payload(colored, payload={"z": 9}, points=[1], key="meta.inner")
    client.set_payload(colored, payload={"deep": "x"}, points=[2], key="fresh.path")
    got = payloads(client, colored)
    assert got[1] == {"color": "red", "size": 1, "meta": {"a": 1, "b": 2, "inner": {"z": 9}}}
    assert got[2] == {"color": "green", "size": 2, "fresh": {"path": {"deep": "x"}}}


def test_overwrite_payload_replaces_it(client: QdrantClient, colored: str) -> None:
    client.overwrite_payload(colored, payload={"only": 1}, points=[1])
    client.overwrite_payload(colored, payload={"only": 2}, points=red())
    got = payloads(client, colored)
    assert got[1] == {"only": 1}  # no longer red when the filter ran
    assert got[3] == {"only": 2}
    assert got[2] == {"color": "green", "size": 2}


def test_delete_payload_keys(client: QdrantClient, colored: str) -> None:
    client.delete_payload(colored, keys=["size", "missing"], points=[1, 2])
    client.delete_payload(colored, keys=["meta.a"], points=[1])
    client.delete_payload(colored, keys=["color"], points=red())
    got = payloads(client, colored)
    assert got[1] == {"meta": {}}
    assert got[2] == {"color": "green"}
    assert got[3] == {"size": 3}


@pytest.mark.parametrize("absent", ["unknown", "deleted"])
@pytest.mark.parametrize("operation", ["set", "overwrite", "delete", "clear"])
def test_payload_write_naming_a_missing_point_writes_the_others(
    client: QdrantClient, colored: str, expect_error, operation: str, absent: str
) -> None:
    """As Qdrant (and qdrant-client's congruence tests): the points found are written, the
    ones listed after the missing id too, and the first missing id is a 404 afterwards; a
    deleted point stays deleted."""
    client.delete(colored, [4])
    missing = 4 if absent == "deleted" else 99
    with expect_error(404, f"No point with id {missing} found"):
        if operation == "set":
            client.set_payload(colored, payload={"tag": 1}, points=[1, missing, 2])
        elif operation == "overwrite":
            client.overwrite_payload(colored, payload={"tag": 2}, points=[1, missing, 2])
        elif operation == "delete":
            client.delete_payload(colored, keys=["size"], points=[1, missing, 2])
        else:
            client.clear_payload(colored, points_selector=[1, missing, 2])
    expected = {
        "set": ({"color": "red", "size": 1, "meta": {"a": 1}, "tag": 1},
                {"color": "green", "size": 2, "tag": 1}),
        "overwrite": ({"tag": 2}, {"tag": 2}),
        "delete": ({"color": "red", "meta": {"a": 1}}, {"color": "green"}),
        "clear": ({}, {}),
    }[operation]  # fmt: skip
    got = payloads(client, colored)
    assert (got[1], got[2]) == expected
    assert got[3] == {"color": "red", "size": 3}
    assert client.retrieve(colored, [missing]) == []


def test_clear_payload_by_ids_and_by_filter(client: QdrantClient, colored: str) -> None:
    client.clear_payload(colored, points_selector=[2])
    assert payloads(client, colored)[2] == {}
    client.clear_payload(colored, points_selector=models.FilterSelector(filter=red()))
    got = payloads(client, colored)
    assert got == {1: {}, 2: {}, 3: {}, 4: {}}
    assert client.count(colored).count == 4  # points stay, with their vectors
    assert len(scroll_all(client, colored, with_vectors=True)[0].vector) == 3


# --------------------------------------------------------------------------------------------
# Delete points


def test_delete_by_ids(client: QdrantClient, colored: str) -> None:
    result = client.delete(colored, points_selector=models.PointIdsList(points=[1, 3, 100]))
    assert result.status == models.UpdateStatus.COMPLETED
    assert ids_of(scroll_all(client, colored)) == [2, 4]
    assert client.retrieve(colored, [1, 3]) == []


def test_delete_by_filter(client: QdrantClient, colored: str) -> None:
    client.delete(colored, points_selector=models.FilterSelector(filter=red()))
    assert ids_of(scroll_all(client, colored)) == [2, 4]
    assert client.count(colored, count_filter=red()).count == 0


# --------------------------------------------------------------------------------------------
# Retrieve points


@pytest.fixture
def rich(client: QdrantClient, named: str) -> str:
    client.upsert(
        named,
        [
            PS(
                id=i,
                vector={
                    "image": [i, 0, 0, 1],
                    "text": [i] * 8,
                    "words": models.SparseVector(indices=[i], values=[0.5]),
                },
                payload={"a": i, "b": {"c": i, "d": "x"}, "e": [i, i]},
            )
            for i in (1, 2, 3)
        ],
    )
    return named


def test_retrieve_returns_only_existing_points(client: QdrantClient, rich: str) -> None:
    got = client.retrieve(rich, [3, 100, 1])
    assert sorted(ids_of(got)) == [1, 3]
    assert all(r.payload["a"] == r.id for r in got)
    assert all(r.vector is None for r in got)  # default: no vectors


@pytest.mark.parametrize(
    ("with_payload", "expected"),
    [
        (True, {"a": 2, "b": {"c": 2, "d": "x"}, "e": [2, 2]}),
        (False, None),
        (["a", "e"], {"a": 2, "e": [2, 2]}),
        (models.PayloadSelectorInclude(include=["b"]), {"b": {"c": 2, "d": "x"}}),
        (models.PayloadSelectorExclude(exclude=["b", "e"]), {"a": 2}),
    ],
    ids=["true", "false", "list", "include", "exclude"],
)
def test_retrieve_with_payload(client: QdrantClient, rich: str, with_payload, expected) -> None:
    (record,) = client.retrieve(rich, [2], with_payload=with_payload)
    assert record.payload == expected


@pytest.mark.parametrize(
    ("with_vectors", "names"),
    [
        (True, {"image", "text", "words"}),
        (False, None),
        (["text"], {"text"}),
        (["image", "words"], {"image", "words"}),
    ],
    ids=["true", "false", "one", "two"],
)
def test_retrieve_with_vectors(client: QdrantClient, rich: str, with_vectors, names) -> None:
    (record,) = client.retrieve(rich, [2], with_vectors=with_vectors, with_payload=False)
    assert record.payload is None
    if names is None:
        assert record.vector is None
        return
    assert set(record.vector) == names
    if "image" in names:
        assert record.vector["image"] == approx([2, 0, 0, 1])
    if "text" in names:
        assert record.vector["text"] == approx([2] * 8)
    if "words" in names:
        assert record.vector["words"].indices == [2]


# --------------------------------------------------------------------------------------------
# Scroll points


def test_scroll_pages_in_id_order(client: QdrantClient, plain: str) -> None:
    ids = [
        17,
        3,
        25,
        1,
        9,
        4,
        12,
        20,
        2,
        8,
        15,
        6,
        23,
        11,
        5,
        19,
        7,
        14,
        22,
        10,
        13,
        24,
        16,
        18,
        21,
    ]
    client.upsert(plain, [PS(id=i, vector=[i, 1, 0], payload={"i": i}) for i in ids])
    page, offset = client.scroll(plain, limit=10)
    assert ids_of(page) == list(range(1, 11))
    assert offset == 11
    assert page[0].payload == {"i": 1}
    assert page[0].vector is None
    page, offset = client.scroll(plain, limit=10, offset=offset)
    assert ids_of(page) == list(range(11, 21))
    assert offset == 21
    page, offset = client.scroll(plain, limit=10, offset=offset)
    assert ids_of(page) == list(range(21, 26))
    assert offset is None
    # Exactly a page left: no next page either.
    page, offset = client.scroll(plain, limit=5, offset=21)
    assert ids_of(page) == list(range(21, 26))
    assert offset is None
    # The default page size is 10.
    assert len(client.scroll(plain)[0]) == 10


def test_scroll_offset_need_not_exist(client: QdrantClient, plain: str) -> None:
    client.upsert(plain, [PS(id=i, vector=[1, 1, 1]) for i in (1, 3, 5, 7)])
    page, offset = client.scroll(plain, limit=2, offset=4)
    assert ids_of(page) == [5, 7]
    assert offset is None
    page, offset = client.scroll(plain, limit=1, offset=2)
    assert (ids_of(page), offset) == ([3], 5)


def test_scroll_with_filter_and_flags(client: QdrantClient, colored: str) -> None:
    page, offset = client.scroll(
        colored, scroll_filter=red(), limit=1, with_payload=False, with_vectors=True
    )
    assert ids_of(page) == [1]
    assert offset == 3
    assert page[0].payload is None
    assert page[0].vector == approx([1, 0, 0])
    page, offset = client.scroll(colored, scroll_filter=red(), limit=1, offset=offset)
    assert ids_of(page) == [3]
    assert offset is None


ORDER_CASES = {
    "integer": (models.PayloadSchemaType.INTEGER, [40, -5, 17, 3, 99, 0], 17),
    "float": (models.PayloadSchemaType.FLOAT, [2.5, -1.25, 0.0, 9.75, 3.5, 1.0], 2.5),
    "datetime": (
        models.PayloadSchemaType.DATETIME,
        [
            "2024-03-01T00:00:00Z",
            "2023-12-31T23:59:59Z",
            "2024-01-15T12:00:00Z",
            "2024-02-29T08:30:00Z",
            "2025-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z",
        ],
        "2024-02-01T00:00:00Z",
    ),
}


def order_key(value: Any) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


@pytest.mark.parametrize("kind", sorted(ORDER_CASES))
def test_scroll_order_by_payload_key(client: QdrantClient, plain: str, kind: str) -> None:
    schema, values, start = ORDER_CASES[kind]
    client.upsert(
        plain,
        [PS(id=i, vector=[1, 1, 1], payload={"k": v}) for i, v in enumerate(values, start=1)],
    )
    client.upsert(plain, [PS(id=100, vector=[1, 1, 1], payload={"other": 1})])
    assert create_index(client, plain, "k", schema).status == models.UpdateStatus.COMPLETED
    by_value = sorted(range(1, len(values) + 1), key=lambda i: order_key(values[i - 1]))

    page, offset = client.scroll(plain, order_by="k", limit=100)
    assert ids_of(page) == by_value  # points without the key are not listed
    assert offset is None  # ordered scrolls never page by id
    assert [r.payload["k"] for r in page] == [values[i - 1] for i in by_value]
    assert all(r.order_value is not None for r in page)
    if kind == "datetime":
        assert [r.order_value for r in page] == [
            int(order_key(values[i - 1]) * 1_000_000) for i in by_value
        ]
    else:
        assert [r.order_value for r in page] == [values[i - 1] for i in by_value]

    page, offset = client.scroll(plain, order_by=models.OrderBy(key="k"), limit=3)
    assert ids_of(page) == by_value[:3]
    assert offset is None

    page, _ = client.scroll(
        plain, order_by=models.OrderBy(key="k", direction=models.Direction.DESC), limit=100
    )
    assert ids_of(page) == by_value[::-1]

    page, _ = client.scroll(plain, order_by=models.OrderBy(key="k", start_from=start), limit=100)
    assert ids_of(page) == [i for i in by_value if order_key(values[i - 1]) >= order_key(start)]

    page, _ = client.scroll(
        plain,
        order_by=models.OrderBy(key="k", direction=models.Direction.DESC, start_from=start),
        limit=100,
    )
    assert ids_of(page) == [
        i for i in by_value[::-1] if order_key(values[i - 1]) <= order_key(start)
    ]

    only = models.Filter(must=[models.HasIdCondition(has_id=[1, 3, 100])])
    page, _ = client.scroll(plain, order_by="k", limit=100, scroll_filter=only)
    assert ids_of(page) == [i for i in by_value if i in (1, 3)]


@pytest.mark.server_only(reason="local mode orders without an index")
def test_scroll_order_by_needs_a_range_index(
    client: QdrantClient, plain: str, expect_error
) -> None:
    client.upsert(
        plain, [PS(id=i, vector=[1, 1, 1], payload={"n": i, "s": str(i)}) for i in (1, 2)]
    )
    with expect_error(400, "No range index for `order_by` key"):
        client.scroll(plain, order_by="n")
    create_index(client, plain, "s", models.PayloadSchemaType.KEYWORD)
    with expect_error(400, "No range index for `order_by` key"):
        client.scroll(plain, order_by=models.OrderBy(key="s", direction=models.Direction.DESC))


@pytest.mark.server_only(reason="local mode orders without an index")
def test_order_by_over_no_candidates_still_needs_a_range_index(
    client: QdrantClient, plain: str, expect_error
) -> None:
    """Qdrant checks the index before reading: an order_by over a prefetch that found
    nothing is refused too, also inside a fusion whose other branch found points."""
    client.upsert(plain, [PS(id=i, vector=[1, 1, i], payload={"n": i}) for i in (1, 2)])
    empty = models.Prefetch(query=[1, 0, 0], limit=5, score_threshold=100.0)
    with expect_error(400, "No range index for `order_by` key: `n`"):
        client.query_points(plain, prefetch=[empty], query=models.OrderByQuery(order_by="n"))
    nested = [
        models.Prefetch(prefetch=[empty], query=models.OrderByQuery(order_by="n"), limit=2),
        models.Prefetch(query=[1, 0, 0], limit=2),
    ]
    with expect_error(400, "No range index for `order_by` key: `n`"):
        client.query_points(plain, prefetch=nested, query=models.FusionQuery(fusion="rrf"))


def test_fusion_keeps_the_order_value_of_an_order_by_prefetch(
    client: QdrantClient, plain: str
) -> None:
    """Qdrant's fusion keeps each point as its first prefetch found it and sets its score:
    points from an order_by prefetch keep their `order_value`."""
    client.upsert(plain, [PS(id=i, vector=[1, 1, i], payload={"n": i * 10}) for i in (1, 2, 3)])
    create_index(client, plain, "n", models.PayloadSchemaType.INTEGER)
    found = client.query_points(
        plain,
        prefetch=[models.Prefetch(query=models.OrderByQuery(order_by="n"), limit=2)],
        query=models.FusionQuery(fusion="rrf"),
    ).points
    assert [(p.id, p.order_value) for p in found] == [(1, 10), (2, 20)]


# --------------------------------------------------------------------------------------------
# Count points


def test_count_exact_with_and_without_filter(client: QdrantClient, colored: str) -> None:
    assert client.count(colored, exact=True).count == 4
    assert client.count(colored).count == 4
    assert client.count(colored, count_filter=red(), exact=True).count == 2
    client.delete(colored, points_selector=models.PointIdsList(points=[1]))
    assert client.count(colored, count_filter=red(), exact=True).count == 1
    assert client.count(colored, exact=True).count == 3


# --------------------------------------------------------------------------------------------
# Batch update


def test_batch_update_applies_all_eight_operations_in_order(
    client: QdrantClient, collection
) -> None:
    name = collection(vectors_config=VP(size=4, distance=Distance.DOT))
    operations = [
        models.UpsertOperation(
            upsert=models.PointsList(
                points=[
                    PS(id=1, vector=[1.0, 2.0, 3.0, 4.0], payload={}),
                    PS(id=2, vector=[2.0, 2.0, 2.0, 2.0], payload={"two": 2}),
                    PS(id=3, vector=[3.0, 3.0, 3.0, 3.0], payload={"three": 3}),
                ]
            )
        ),
        models.UpdateVectorsOperation(
            update_vectors=models.UpdateVectors(
                points=[models.PointVectors(id=1, vector=[4.0, 3.0, 2.0, 1.0])]
            )
        ),
        models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[3], vector=[""])),
        models.OverwritePayloadOperation(
            overwrite_payload=models.SetPayload(payload={"test_payload": 1}, points=[1])
        ),
        models.SetPayloadOperation(
            set_payload=models.SetPayload(
                payload={"test_payload_2": 2, "test_payload_3": 3}, points=[1]
            )
        ),
        models.DeletePayloadOperation(
            delete_payload=models.DeletePayload(keys=["test_payload_2"], points=[1])
        ),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[3])),
        models.DeleteOperation(delete=models.PointIdsList(points=[2])),
    ]
    results = client.batch_update_points(name, update_operations=operations)
    assert len(results) == 8
    assert all(r.status == models.UpdateStatus.COMPLETED for r in results)
    got = by_id(scroll_all(client, name, with_vectors=True))
    assert sorted(got) == [1, 3]
    assert got[1].vector == approx([4.0, 3.0, 2.0, 1.0])
    assert got[1].payload == {"test_payload": 1, "test_payload_3": 3}
    assert got[3].payload == {}
    assert not got[3].vector

    # Order matters: delete-then-upsert keeps the point, upsert-then-delete removes it.
    client.batch_update_points(
        name,
        update_operations=[
            models.DeleteOperation(delete=models.PointIdsList(points=[3])),
            models.UpsertOperation(
                upsert=models.PointsList(points=[PS(id=3, vector=[0, 0, 0, 1], payload={"v": 2})])
            ),
            models.UpsertOperation(
                upsert=models.PointsBatch(
                    batch=models.Batch(ids=[4], vectors=[[1, 1, 1, 1]], payloads=[{"v": 4}])
                )
            ),
            models.DeleteOperation(
                delete=models.FilterSelector(
                    filter=models.Filter(
                        must=[models.FieldCondition(key="v", match=models.MatchValue(value=4))]
                    )
                )
            ),
        ],
    )
    got = by_id(scroll_all(client, name))
    assert sorted(got) == [1, 3]
    assert got[3].payload == {"v": 2}


# --------------------------------------------------------------------------------------------
# Payload indexes


@pytest.mark.parametrize(
    "schema",
    [
        models.PayloadSchemaType.INTEGER,
        models.PayloadSchemaType.FLOAT,
        models.PayloadSchemaType.DATETIME,
        models.PayloadSchemaType.KEYWORD,
    ],
)
def test_create_and_delete_payload_index(client: QdrantClient, plain: str, schema) -> None:
    client.upsert(plain, [PS(id=1, vector=[1, 1, 1], payload={"f": 1})])
    result = create_index(client, plain, "f", schema)
    assert result.status == models.UpdateStatus.COMPLETED
    result = delete_index(client, plain, "f")
    assert result.status == models.UpdateStatus.COMPLETED
    assert client.count(plain).count == 1


# --------------------------------------------------------------------------------------------
# Search: query_points with a plain vector, checked against numpy


def oracle(distance: Distance, data: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, bool]:
    """Scores of every row and whether a larger score is better, as Qdrant defines them."""
    d = data.astype(np.float64)
    q = query.astype(np.float64)
    if distance == Distance.COSINE:
        d = d / np.linalg.norm(d, axis=1, keepdims=True)
        q = q / np.linalg.norm(q)
        return d @ q, True
    if distance == Distance.DOT:
        return d @ q, True
    if distance == Distance.EUCLID:
        return np.sqrt(((d - q) ** 2).sum(axis=1)), False
    return np.abs(d - q).sum(axis=1), False


def ranked(scores: np.ndarray, higher_is_better: bool, candidates: list[int]) -> list[int]:
    return sorted(candidates, key=lambda i: -scores[i] if higher_is_better else scores[i])


@pytest.mark.parametrize(
    "distance", [Distance.COSINE, Distance.DOT, Distance.EUCLID, Distance.MANHATTAN]
)
def test_query_points_matches_numpy(client: QdrantClient, collection, distance) -> None:
    rng = np.random.default_rng(20240601)
    n, dim = 60, 8
    data = rng.normal(size=(n, dim)).astype(np.float32)
    query = rng.normal(size=dim).astype(np.float32)
    name = collection(vectors_config=VP(size=dim, distance=distance))
    client.upsert(
        name,
        models.Batch(
            ids=list(range(n)),
            vectors=data.tolist(),
            payloads=[{"parity": i % 2, "i": i} for i in range(n)],
        ),
    )
    scores, higher = oracle(distance, data, query)
    order = ranked(scores, higher, list(range(n)))
    gaps = np.abs(np.diff(scores[order][:21]))
    assert gaps.min() > 1e-4  # the test data has no near-ties to make ranks ambiguous

    hits = client.query_points(name, query=query.tolist(), limit=10).points
    assert ids_of(hits) == order[:10]
    assert [h.score for h in hits] == approx(scores[order[:10]].tolist(), rel=1e-4, abs=1e-4)
    assert all(h.payload == {"parity": h.id % 2, "i": h.id} for h in hits)
    assert all(h.vector is None for h in hits)

    hits = client.query_points(name, query=query.tolist(), limit=5, offset=5).points
    assert ids_of(hits) == order[5:10]

    even = models.Filter(
        must=[models.FieldCondition(key="parity", match=models.MatchValue(value=0))]
    )
    hits = client.query_points(name, query=query.tolist(), limit=7, query_filter=even).points
    assert ids_of(hits) == [i for i in order if i % 2 == 0][:7]

    # A threshold halfway between the 7th and 8th best scores keeps exactly seven.
    threshold = float((scores[order[6]] + scores[order[7]]) / 2)
    hits = client.query_points(
        name, query=query.tolist(), limit=50, score_threshold=threshold
    ).points
    assert ids_of(hits) == order[:7]

    hits = client.query_points(
        name, query=query.tolist(), limit=3, with_payload=False, with_vectors=True
    ).points
    assert ids_of(hits) == order[:3]
    for hit in hits:
        assert hit.payload is None
        expected = data[hit.id].astype(np.float64)
        if distance == Distance.COSINE:  # Cosine vectors are stored normalised
            expected = expected / np.linalg.norm(expected)
        assert hit.vector == approx(expected.tolist(), rel=1e-4, abs=1e-5)

    hits = client.query_points(
        name, query=query.tolist(), limit=2, with_payload=["i"], query_filter=even, offset=1
    ).points
    assert ids_of(hits) == [i for i in order if i % 2 == 0][1:3]
    assert all(h.payload == {"i": h.id} for h in hits)


def test_query_points_on_a_named_vector(client: QdrantClient, named: str) -> None:
    client.upsert(
        named,
        [
            PS(id=1, vector={"image": [1, 0, 0, 0], "text": [0] * 8}),
            PS(id=2, vector={"image": [0, 1, 0, 0], "text": [3] * 8}),
            PS(id=3, vector={"image": [0.5, 0.5, 0, 0], "text": [1] * 8}),
        ],
    )
    hits = client.query_points(named, query=[1, 0.1, 0, 0], using="image", limit=2).points
    assert ids_of(hits) == [1, 3]
    assert [h.score for h in hits] == approx([1.0, 0.55])
    hits = client.query_points(named, query=[1] * 8, using="text", limit=3).points
    assert ids_of(hits) == [3, 1, 2]  # Euclid: closest first
    assert [h.score for h in hits] == approx([0.0, math.sqrt(8), math.sqrt(32)])


def test_query_points_multivector_max_sim(client: QdrantClient, collection) -> None:
    rng = np.random.default_rng(7)
    name = collection(
        vectors_config=VP(
            size=4,
            distance=Distance.DOT,
            multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM
            ),
        )
    )
    docs = [rng.normal(size=(int(rng.integers(1, 5)), 4)).astype(np.float32) for _ in range(12)]
    client.upsert(name, [PS(id=i, vector=m.tolist()) for i, m in enumerate(docs)])
    query = rng.normal(size=(3, 4)).astype(np.float32)
    q64 = query.astype(np.float64)
    scores = np.array([(q64 @ m.astype(np.float64).T).max(axis=1).sum() for m in docs])
    order = ranked(scores, True, list(range(len(docs))))
    hits = client.query_points(name, query=query.tolist(), limit=5).points
    assert ids_of(hits) == order[:5]
    assert [h.score for h in hits] == approx(scores[order[:5]].tolist(), rel=1e-4, abs=1e-4)


def test_query_without_results(client: QdrantClient, plain: str) -> None:
    assert client.query_points(plain, query=[1, 2, 3]).points == []
    client.upsert(plain, [PS(id=1, vector=[1, 2, 3])])
    nothing = models.Filter(must=[models.HasIdCondition(has_id=[2])])
    assert client.query_points(plain, query=[1, 2, 3], query_filter=nothing).points == []
