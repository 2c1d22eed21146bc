"""qdrant-client's bulk uploads into Tessera against Qdrant Edge's in-process upsert (issue 13,
target 4: `upload_points` >= 0.6x Edge's points/s).

One Tessera server (REST and gRPC) per row, one client thread, `wait=true`, the same data
(default 100k x 128 cosine with the benchmark payload) and batch size as Edge's `update`
calls. Rows: `upload_points` (the caller builds `PointStruct`s, timed, as Edge's row builds
its `Point`s) and `upload_collection` (numpy rows in), each over REST and over gRPC. Besides
points/s and the ratio to Edge, each row prints the CPU seconds the client process spent (the
server is another process): `n / client CPU` is what that client could reach against a
server that took no time at all, the ceiling no server can lift.

    .venv/bin/python bench/uploads.py [--n 100000] [--batch 1000] [--parallel 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import ingest
from common import Dataset, TesseraServer, free_port

ROWS = (
    "upload_points REST",
    "upload_points gRPC",
    "upload_collection REST",
    "upload_collection gRPC",
)


def run_edge(ds: Dataset, batch: int) -> float:
    """Edge's in-process points/s, as `ingest.py` measures it (payload, no indexes)."""
    r = ingest.run_edge(ds, argparse.Namespace(batch=batch, indexes=False, no_payload=False))
    return ds.n / r["upsert_s"]


def run_client(
    ds: Dataset, row: str, batch: int, venv: str | None, parallel: int = 1
) -> dict[str, float]:
    from qdrant_client import QdrantClient, models

    payloads = ds.payloads(0, ds.n)
    grpc_port = free_port()
    with TesseraServer(venv=venv, extra_args=["--grpc-port", str(grpc_port)]) as srv:
        client = QdrantClient(
            url=srv.url, grpc_port=grpc_port, prefer_grpc=row.endswith("gRPC"), timeout=300
        )
        client.create_collection(
            "c", vectors_config=models.VectorParams(size=ds.dim, distance=models.Distance.COSINE)
        )
        cpu0, t0 = time.process_time(), time.perf_counter()
        if row.startswith("upload_points"):
            points: Any = (
                models.PointStruct(id=i, vector=ds.vectors[i].tolist(), payload=payloads[i])
                for i in range(ds.n)
            )
            client.upload_points("c", points, batch_size=batch, wait=True, parallel=parallel)
        else:
            client.upload_collection(
                "c",
                vectors=ds.vectors,
                payload=payloads,
                ids=range(ds.n),
                batch_size=batch,
                wait=True,
                parallel=parallel,
            )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        count = int(client.count("c", exact=True).count)
        client.close()
    if count != ds.n:
        raise RuntimeError(f"{row}: {count} points counted, {ds.n} sent")
    return {"pps": ds.n / seconds, "client_cpu_s": cpu, "ceiling_pps": ds.n / cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(ap, queries=1)
    ap.add_argument("--batch", type=int, default=1000, help="points per request (default 1000)")
    ap.add_argument("--venv", default=None, help="Tessera's virtualenv (default .venv)")
    ap.add_argument(
        "--parallel", type=int, default=1, help="the client's worker processes (its `parallel`)"
    )
    ap.add_argument("--rows", default=",".join(ROWS), help="which rows, comma-separated")
    args = ap.parse_args()

    ds = common.make_dataset(args.n, args.dim, n_queries=1, seed=args.seed)
    print(f"uploads: {ds.n} x {ds.dim} cosine with payload, batch {args.batch}", flush=True)
    edge = run_edge(ds, args.batch)
    print(f"Qdrant Edge in-process: {edge:,.0f} points/s", flush=True)
    rows = []
    for row in [r for r in args.rows.split(",") if r]:
        r = run_client(ds, row, args.batch, args.venv, args.parallel)
        print(f"{row}: {r}", flush=True)
        rows.append(
            [
                row,
                r["pps"],
                common.ratio(r["pps"], edge),
                r["client_cpu_s"],
                r["ceiling_pps"],
                common.ratio(r["ceiling_pps"], edge),
            ]
        )
    common.print_table(
        [
            "qdrant-client into Tessera",
            "points/s",
            "/ Edge",
            "client CPU s",
            "client ceiling points/s",
            "ceiling / Edge",
        ],
        rows,
        title=f"Bulk uploads, {ds.n} x {ds.dim}, batches of {args.batch} (Edge: {edge:,.0f}/s)",
    )


if __name__ == "__main__":
    main()
