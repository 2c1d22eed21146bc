"""Tessera in-process: the engine without HTTP, for embedding and for benchmarks.

It sits beside `api/` (it takes the same JSON bodies and validates them the same way) and
adds a typed fast path for nearest-neighbour search that skips JSON altogether.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.api.collections import collection_info
from tessera.api.points_parse import parse_upsert
from tessera.collection_config import parse_create_collection
from tessera.ids import PointId
from tessera.query.filter_parse import parse_filter
from tessera.shard import operations as ops
from tessera.shard.search import VectorQuery, search
from tessera.storage.toc import TableOfContents


class Engine:
    def __init__(self, storage: Path | str) -> None:
        path = Path(storage)
        path.mkdir(parents=True, exist_ok=True)
        self.toc = TableOfContents(path)

    def create_collection(self, name: str, body: dict[str, Any]) -> None:
        self.toc.create(name, parse_create_collection(body))

    def upsert(self, name: str, body: dict[str, Any]) -> int:
        """`body` as for `PUT /collections/{name}/points`; returns the operation id."""
        collection = self.toc.get(name)
        return collection.update(parse_upsert(collection.config, body)).operation_id

    def upsert_arrays(
        self,
        name: str,
        ids: list[PointId],
        vectors: npt.NDArray[np.float32],
        payloads: list[dict[str, Any] | None] | None = None,
        using: str = "",
    ) -> int:
        """Bulk upsert of one dense vector per point, without JSON."""
        collection = self.toc.get(name)
        params = collection.config.vectors[using]
        block = np.asarray(vectors, dtype=np.float32).reshape(len(ids), params.size)
        column = ops.DenseColumn(np.ones(len(ids), dtype=bool), block)
        op = ops.UpsertPoints(list(ids), {using: column}, payloads or [None] * len(ids))
        return collection.update(lambda holder: op).operation_id

    def create_field_index(self, name: str, field: str, schema: Any) -> None:
        collection = self.toc.get(name)
        collection.update(lambda holder: ops.CreateFieldIndex(field, schema))

    def info(self, name: str) -> dict[str, Any]:
        return collection_info(self.toc.get(name))

    def wait_optimized(self, name: str, timeout: float = 3600.0) -> None:
        optimizer = self.toc.get(name).shard.optimizer
        deadline = time.monotonic() + timeout
        optimizer.poke()
        while optimizer.pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"collection {name} still optimizing")
            time.sleep(0.1)

    def search(
        self,
        name: str,
        vector: npt.NDArray[np.float32],
        limit: int = 10,
        filter: dict[str, Any] | None = None,
        hnsw_ef: int | None = None,
        exact: bool = False,
        using: str = "",
    ) -> list[tuple[PointId, float]]:
        collection = self.toc.get(name)
        query = VectorQuery(using, "dense", np.asarray(vector, dtype=np.float32))
        filt = parse_filter(filter)
        with collection.shard.read() as holder:
            hits = search(holder, query, filt, limit, exact=exact, hnsw_ef=hnsw_ef)
            return [(h.ref.id, h.score) for h in hits]

    def close(self) -> None:
        self.toc.close()
