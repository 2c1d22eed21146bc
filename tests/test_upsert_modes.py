"""Conditional upserts: `update_mode` (insert_only / update_only) and `update_filter`."""

from __future__ import annotations

from typing import Any

from qdrant_client import QdrantClient, models


def _setup(client: QdrantClient, collection: Any) -> str:
    name: str = collection(vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(
        name,
        points=[
            models.PointStruct(id=1, vector=[1, 0], payload={"v": 1, "color": "red"}),
            models.PointStruct(id=2, vector=[0, 1], payload={"v": 1, "color": "blue"}),
        ],
        wait=True,
    )
    return name


def _payloads(client: QdrantClient, name: str) -> dict[Any, Any]:
    return {r.id: r.payload for r in client.scroll(name, limit=10)[0]}


def _points(*ids: int) -> list[models.PointStruct]:
    return [models.PointStruct(id=i, vector=[1, 1], payload={"v": 2}) for i in ids]


def test_insert_only_keeps_existing_points(client: QdrantClient, collection: Any) -> None:
    name = _setup(client, collection)
    client.upsert(name, points=_points(1, 3), update_mode=models.UpdateMode.INSERT_ONLY, wait=True)
    got = _payloads(client, name)
    assert got[1] == {"v": 1, "color": "red"}
    assert got[3] == {"v": 2}


def test_update_only_inserts_nothing(client: QdrantClient, collection: Any) -> None:
    name = _setup(client, collection)
    client.upsert(name, points=_points(2, 4), update_mode=models.UpdateMode.UPDATE_ONLY, wait=True)
    got = _payloads(client, name)
    assert got[2] == {"v": 2}
    assert 4 not in got


def test_update_filter_guards_existing_points(client: QdrantClient, collection: Any) -> None:
    name = _setup(client, collection)
    only_red = models.Filter(
        must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]
    )
    client.upsert(name, points=_points(1, 2, 5), update_filter=only_red, wait=True)
    got = _payloads(client, name)
    assert got[1] == {"v": 2}  # matched the filter: replaced
    assert got[2] == {"v": 1, "color": "blue"}  # did not: kept
    assert got[5] == {"v": 2}  # new: inserted regardless
