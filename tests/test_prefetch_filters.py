"""A query over prefetched points sees those points, whatever the filters above them.

Qdrant merges a node's filter into each of its prefetches' filters (`Filter::merge_opts`:
`must` lists joined, `should` lists joined into one list of alternatives) and then rescores
the prefetched points by id alone (`planned_query.rs`, `rescore.rs`). So a prefetch's own
`should` widens what a `should` above it lets in, and the rescoring does not apply the
filter a second time. qdrant-client's local mode applies it again; Qdrant Edge, Qdrant's
own engine in process, is the reference here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import ServerProcess

edge = pytest.importorskip("qdrant_edge")

POINTS = [(i, [i / 10, 1.0], {"c": "x" if i % 2 else "y", "n": 7 - i}) for i in range(1, 7)]


def should(value: str) -> models.Filter:
    return models.Filter(
        should=[models.FieldCondition(key="c", match=models.MatchValue(value=value))]
    )


def edge_should(value: str) -> Any:
    return edge.Filter(should=[edge.FieldCondition("c", match=edge.MatchValue(value))])


@pytest.fixture
def shard(tmp_path: Path) -> Any:
    config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=2, distance=edge.Distance.Dot))
    shard = edge.EdgeShard.create(str(tmp_path / "edge"), config)
    shard.update(edge.UpdateOperation.upsert_points([edge.Point(*p) for p in POINTS]))
    shard.update(edge.UpdateOperation.create_field_index("n", edge.PayloadSchemaType.Integer))
    yield shard
    shard.close()


def test_filters_above_a_prefetch_are_not_applied_again(server: ServerProcess, shard: Any) -> None:
    qc = QdrantClient(url=server.url, timeout=30)
    name = "prefetch_filters"
    if qc.collection_exists(name):
        qc.delete_collection(name)
    qc.create_collection(name, models.VectorParams(size=2, distance=models.Distance.DOT))
    qc.upsert(name, [models.PointStruct(id=i, vector=v, payload=p) for i, v, p in POINTS])
    qc.create_payload_index(name, "n", models.PayloadSchemaType.INTEGER, wait=True)
    prefetch = [models.Prefetch(query=[1.0, 0.0], filter=should("y"), limit=10)]
    edge_prefetch = [
        edge.Prefetch(limit=10, query=edge.Query.Nearest([1.0, 0.0]), filter=edge_should("y"))
    ]
    for ours, theirs in [
        (models.NearestQuery(nearest=[1.0, 0.0]), edge.Query.Nearest([1.0, 0.0])),
        (models.OrderByQuery(order_by="n"), edge.OrderBy("n")),
    ]:
        found = qc.query_points(
            name, prefetch=prefetch, query=ours, query_filter=should("x"), limit=10
        )
        request = edge.QueryRequest(
            limit=10, query=theirs, prefetches=edge_prefetch, filter=edge_should("x")
        )
        expected = shard.query(request)
        assert [p.id for p in found.points] == [p.id for p in expected] == [6, 5, 4, 3, 2, 1]
        if isinstance(ours, models.NearestQuery):
            assert [p.score for p in found.points] == pytest.approx([p.score for p in expected])
    # A `must` above still narrows every prefetch (n <= 3: ids 4-6; the prefetch's `should`
    # keeps the even ones).
    narrowed = qc.query_points(
        name,
        prefetch=prefetch,
        query=[1.0, 0.0],
        query_filter=models.Filter(
            must=[models.FieldCondition(key="n", range=models.Range(lte=3))]
        ),
        limit=10,
    )
    assert [p.id for p in narrowed.points] == [6, 4]
    qc.delete_collection(name)
    qc.close()
