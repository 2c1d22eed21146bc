"""Cluster mode (issue 15): what a replicated write and a fanned-out query cost, against one
standalone node, on this machine, in one run.

Starts a real etcd and three Tessera nodes on loopback (the test harness,
``tests.cluster_harness``), plus one standalone node, all with the same data:

- writes: ``--writes`` upserts of 10 points (``wait=true``) one after the other through the
  official client, into a collection with ``shard_number`` 3 and ``replication_factor`` 1, 2
  and 3 (``write_consistency_factor`` 1: the leader waits for every live replica anyway; see
  docs/cluster.md), and into the standalone node; p50 / p99 latency;
- queries: ``--queries`` nearest-neighbour queries (top 10) one after the other over
  ``--points`` points (``--dim``, cosine), through one node, on a collection of 3 shards
  (one per node: every query fans out to 2 other peers) and on the standalone node; QPS and
  p50 latency.

Ratios are cluster / standalone (for latency, lower is better; for QPS, higher). All the
processes share this machine's cores, so the cluster's figures include the other nodes'
work and the etcd; the ratios are an upper bound of the overhead on separate machines.

    .venv/bin/python bench/cluster.py
    .venv/bin/python bench/cluster.py --points 50000 --queries 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402

from tests.cluster_harness import running_cluster, running_etcd  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402


def client(url: str) -> QdrantClient:
    return QdrantClient(url=url, timeout=120, check_compatibility=False)


def create(c: QdrantClient, name: str, dim: int, shards: int, replicas: int) -> None:
    c.create_collection(
        name,
        vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
        shard_number=shards,
        replication_factor=replicas,
    )


def load(c: QdrantClient, name: str, vectors: np.ndarray[Any, Any]) -> None:
    for start in range(0, len(vectors), 1000):
        block = vectors[start : start + 1000]
        c.upsert(
            name,
            models.Batch(ids=list(range(start, start + len(block))), vectors=block.tolist()),
        )


def settle(c: QdrantClient, name: str) -> None:
    """Until the collection is indexed (status green), so that queries meet the index."""
    deadline = time.monotonic() + 600
    while c.get_collection(name).status != models.CollectionStatus.GREEN:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} still optimizing")
        time.sleep(0.5)


def write_latency(c: QdrantClient, name: str, dim: int, writes: int) -> list[float]:
    rng = np.random.default_rng(5)
    took = []
    for i in range(writes):
        ids = list(range(10_000_000 + i * 10, 10_000_000 + i * 10 + 10))
        vectors = rng.normal(size=(10, dim)).astype(np.float32).tolist()
        started = time.perf_counter()
        c.upsert(name, models.Batch(ids=ids, vectors=vectors), wait=True)
        took.append(time.perf_counter() - started)
    return took


def query_latency(c: QdrantClient, name: str, queries: np.ndarray[Any, Any]) -> list[float]:
    took = []
    for q in queries:
        started = time.perf_counter()
        c.query_points(name, query=q.tolist(), limit=10)
        took.append(time.perf_counter() - started)
    return took


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p)) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    data = rng.normal(size=(args.points, args.dim)).astype(np.float32)
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        single = ServerProcess(base / "single" / "storage", base / "single.log")
        single.start()
        rows: list[tuple[str, float, float, float | None]] = []
        try:
            s = client(single.url)
            create(s, "w", args.dim, 1, 1)
            w = write_latency(s, "w", args.dim, args.writes)
            rows.append(("write, standalone", pct(w, 50), pct(w, 99), None))
            create(s, "q", args.dim, 1, 1)
            load(s, "q", data)
            settle(s, "q")
            query_latency(s, "q", queries[:50])  # warm
            q_single = query_latency(s, "q", queries)
            s.close()
        finally:
            single.stop()
        (base / "etcd").mkdir()
        with running_etcd(base / "etcd") as etcd, running_cluster(base / "cluster", etcd) as cl:
            c = client(cl.nodes[0].url)
            for replicas in (1, 2, 3):
                name = f"w{replicas}"
                create(c, name, args.dim, 3, replicas)
                w = write_latency(c, name, args.dim, args.writes)
                rows.append((f"write, 3 shards, RF {replicas}", pct(w, 50), pct(w, 99), None))
            create(c, "q", args.dim, 3, 1)
            load(c, "q", data)
            for node in cl.nodes:
                settle(client(node.url), "q")
            query_latency(c, "q", queries[:50])
            q_cluster = query_latency(c, "q", queries)
            c.close()

    base_write = rows[0][1]
    print(f"\n{args.points} points x {args.dim}, cosine; {args.writes} writes of 10 points\n")
    print(f"{'':28} {'p50 ms':>8} {'p99 ms':>8} {'p50 / standalone':>17}")
    for label, p50, p99, _ in rows:
        print(f"{label:28} {p50:8.2f} {p99:8.2f} {p50 / base_write:16.2f}x")
    qps_single = len(q_single) / sum(q_single)
    qps_cluster = len(q_cluster) / sum(q_cluster)
    print(f"\n{'':28} {'QPS':>8} {'p50 ms':>8} {'QPS / standalone':>17}")
    print(f"{'query, standalone':28} {qps_single:8.0f} {pct(q_single, 50):8.2f} {1.0:16.2f}x")
    print(
        f"{'query, 3 shards on 3 peers':28} {qps_cluster:8.0f} {pct(q_cluster, 50):8.2f} "
        f"{qps_cluster / qps_single:16.2f}x"
    )
    print("\n(one client, requests one after the other)")


if __name__ == "__main__":
    main()
