"""A batch of exact nearest queries (answered with one matrix product per segment) equals the
same queries sent one by one."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import LOCAL

pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact")


@pytest.mark.parametrize("indexed", [False, True])
@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.EUCLID])
def test_exact_batch_equals_single_queries(
    client: QdrantClient, collection: Any, distance: models.Distance, indexed: bool
) -> None:
    name = collection(
        vectors_config=models.VectorParams(size=16, distance=distance),
        # Indexed: the batch is answered from the graph segment's flat storage in faiss.
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1 if indexed else 0),
    )
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((700, 16)).astype(np.float32)
    client.upsert(
        name, points=models.Batch(ids=list(range(700)), vectors=vectors.tolist()), wait=True
    )
    client.delete(name, points_selector=models.PointIdsList(points=list(range(0, 700, 7))))
    if indexed and not LOCAL:
        deadline = time.monotonic() + 30
        while client.get_collection(name).indexed_vectors_count == 0:
            assert time.monotonic() < deadline, "the optimizer never indexed the collection"
            time.sleep(0.1)
    queries = rng.standard_normal((6, 16)).astype(np.float32)
    exact = models.SearchParams(exact=True)
    requests = [
        models.QueryRequest(query=q.tolist(), limit=5, offset=i % 3, params=exact)
        for i, q in enumerate(queries)
    ]
    batched = client.query_batch_points(name, requests=requests)
    for i, (q, got) in enumerate(zip(queries, batched, strict=True)):
        single = client.query_points(
            name, query=q.tolist(), limit=5, offset=i % 3, search_params=exact
        ).points
        assert [p.id for p in got.points] == [p.id for p in single]
        assert np.allclose([p.score for p in got.points], [p.score for p in single], atol=1e-5)
        assert all(p.id % 7 for p in got.points)  # deleted points never come back
