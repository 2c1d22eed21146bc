"""BM25 over a text index (`scoring`, the Query API's `text` query): Tessera's engine against
Qdrant Edge, in process, one thread, the same documents and queries.

    .venv/bin/python bench/text_rank.py                 # 100k documents
    .venv/bin/python bench/text_rank.py --n 20000 --queries 300

Documents are 4-20 words drawn from a 20,000-word vocabulary with Zipf-like frequencies
(a few very common words, a long tail), payload `{"t": text}` with a `word` text index and
`scoring: true`. Queries are 1-3 words drawn the same way. Each engine answers every query
(limit 10); the script checks that both give the same scores for the first query of each
size, then prints queries per second and the ratio Tessera / Edge from one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as edge

from tessera.engine import Engine
from tessera.query import query_model as qm

VOCAB = 20_000


def words(rng: np.random.Generator, n: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.3, n), VOCAB) - 1
    return [f"w{r}" for r in ranks.tolist()]


def corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(words(rng, int(rng.integers(4, 21)))) for _ in range(n)]


def queries(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(words(rng, 1 + i % 3)) for i in range(count)]


def load_tessera(path: Path, texts: list[str]) -> Engine:
    engine = Engine(path)
    engine.create_collection("c", {"vectors": {"size": 2, "distance": "Dot"}})
    engine.create_field_index("c", "t", {"type": "text", "scoring": True})
    for start in range(0, len(texts), 2000):
        points = [
            {"id": i, "vector": [1.0, 0.5], "payload": {"t": texts[i]}}
            for i in range(start, min(start + 2000, len(texts)))
        ]
        engine.upsert("c", {"points": points})
    engine.wait_optimized("c")
    return engine


def load_edge(path: Path, texts: list[str]) -> Any:
    config = edge.EdgeConfig(
        vectors=edge.EdgeVectorParams(size=2, distance=edge.Distance.Dot), max_search_threads=1
    )
    shard = edge.EdgeShard.create(str(path), config)
    shard.update(edge.UpdateOperation.create_field_index("t", edge.TextIndexParams(scoring=True)))
    for start in range(0, len(texts), 2000):
        points = [
            edge.Point(i, [1.0, 0.5], {"t": texts[i]})
            for i in range(start, min(start + 2000, len(texts)))
        ]
        shard.update(edge.UpdateOperation.upsert_points(points))
    shard.optimize()
    return shard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=600)
    args = parser.parse_args()
    texts, asked = corpus(args.n, 1), queries(args.queries, 2)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        engine = load_tessera(Path(tmp) / "tessera", texts)
        t1 = time.perf_counter()
        shard = load_edge(Path(tmp) / "edge", texts)
        t2 = time.perf_counter()
        print(f"{args.n} documents: load Tessera {t1 - t0:.1f} s, Edge {t2 - t1:.1f} s")

        def ours(text: str) -> list[tuple[Any, float]]:
            node = qm.QueryNode(query=qm.TextQuery(text), using="t", limit=10)
            found = engine.query("c", qm.Plan(node))
            return [(p.id, p.score) for p in found]

        def theirs(text: str) -> list[tuple[Any, float]]:
            request = edge.QueryRequest(limit=10, query=edge.TextQuery("t", text))
            return [(p.id, p.score) for p in shard.query(request)]

        for text in asked[:3]:
            a, b = ours(text), theirs(text)
            assert np.allclose([s for _, s in a], [s for _, s in b], rtol=1e-4), (text, a, b)
        rows = []
        for name, run in (("Tessera engine", ours), ("Qdrant Edge", theirs)):
            for text in asked[:20]:
                run(text)  # warm up
            start = time.perf_counter()
            for text in asked:
                run(text)
            rows.append((name, len(asked) / (time.perf_counter() - start)))
        for name, qps in rows:
            print(f"{name:16} {qps:9,.0f} QPS (limit 10, 1-3 query words)")
        print(f"Tessera / Edge   {rows[0][1] / rows[1][1]:9.2f}x")
        shard.close()
        engine.close()


if __name__ == "__main__":
    main()
