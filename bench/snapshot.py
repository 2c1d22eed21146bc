"""Snapshot and restore of one collection, in process: time, size, throughput.

    python bench/snapshot.py [--points 100000] [--dim 128] [--no-index]

Fills a collection (float32 vectors, a small payload each), waits for the optimizer (the
HNSW graph is built unless --no-index), then times a snapshot, a restore of it into a new
collection (unpack, verify, trial load, swap) and single-point upserts made while another
snapshot is being packed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tessera.engine import Engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--no-index", action="store_true")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        run(base, args.points, args.dim, not args.no_index)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(base: Path, n: int, dim: int, index: bool) -> None:
    engine = Engine(base / "storage")
    body: dict[str, object] = {"vectors": {"size": dim, "distance": "Cosine"}}
    if not index:
        body["optimizers_config"] = {"indexing_threshold": 0}
    engine.create_collection("c", body)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for start in range(0, n, 10_000):
        ids = list(range(start, min(n, start + 10_000)))
        vectors = rng.random((len(ids), dim), dtype=np.float32)
        engine.upsert_arrays("c", ids, vectors, [{"i": i, "tag": f"t{i % 10}"} for i in ids])
    print(f"upsert {n} x {dim}: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    engine.wait_optimized("c")
    print(f"optimized ({'indexed' if index else 'no index'}): {time.perf_counter() - t0:.1f} s")
    store = engine.toc.snapshots

    t0 = time.perf_counter()
    made = store.create("c")
    took = time.perf_counter() - t0
    size = int(made["size"])
    print(f"snapshot: {took:.2f} s, {size / 1e6:.1f} MB, {size / 1e6 / took:.0f} MB/s")

    archive = store.path("c", made["name"])
    t0 = time.perf_counter()
    store.recover("restored", archive.as_uri())
    took = time.perf_counter() - t0
    print(f"restore (unpack, verify, trial load, swap): {took:.2f} s, {size / 1e6 / took:.0f} MB/s")
    assert engine.toc.get("restored").count(None, exact=True) == n

    latencies: list[float] = []
    done = threading.Event()
    second: dict[str, object] = {}

    def snapshot() -> None:
        second.update(store.create("c"))
        done.set()

    worker = threading.Thread(target=snapshot)
    t0 = time.perf_counter()
    worker.start()
    next_id = n
    while not done.is_set():
        t1 = time.perf_counter()
        engine.upsert_arrays("c", [next_id], rng.random((1, dim), dtype=np.float32))
        latencies.append(time.perf_counter() - t1)
        next_id += 1
    worker.join()
    took = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    print(
        f"upserts during a {took:.2f} s snapshot: {len(lat)}, p50 {np.median(lat):.1f} ms, "
        f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms"
    )
    engine.toc.close()


if __name__ == "__main__":
    main()
