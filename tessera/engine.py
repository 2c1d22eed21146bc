"""Tessera in-process: the engine without HTTP, for embedding and for benchmarks.

It sits beside `api/` (it takes the same JSON bodies and validates them the same way) and
adds a typed fast path for nearest-neighbour search that skips JSON altogether. Like the
transports, it reaches the data only through the collection's methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.api.collections import collection_info
from tessera.api.points_parse import parse_upsert
from tessera.collection import writes
from tessera.collection.values import SearchParams, VectorInput
from tessera.collection_config import parse_create_collection
from tessera.ids import PointId
from tessera.query.filter_parse import parse_filter
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
        column = writes.DenseColumn(np.ones(len(ids), dtype=bool), block)
        write = writes.upsert(list(ids), {using: column}, payloads or [None] * len(ids))
        return collection.update(write).operation_id

    def create_field_index(self, name: str, field: str, schema: Any) -> None:
        collection = self.toc.get(name)
        collection.update(writes.create_field_index(field, schema))

    def info(self, name: str) -> dict[str, Any]:
        return collection_info(self.toc.get(name))

    def wait_optimized(self, name: str, timeout: float = 3600.0) -> None:
        self.toc.get(name).wait_optimized(timeout)

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
        query = VectorInput(using, "dense", np.asarray(vector, dtype=np.float32))
        params = SearchParams(exact=exact, hnsw_ef=hnsw_ef)
        hits = collection.search(query, parse_filter(filter), limit, params=params)
        return list(zip(hits.ids, hits.scores or (), strict=True))

    def close(self) -> None:
        self.toc.close()
