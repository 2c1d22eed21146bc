"""Tessera's in-process engine behind the small interface `bench/common.py` expects
(see `open_tessera_engine` there): no HTTP, no JSON on the search path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tessera.engine import Engine
from tessera.query.filter_parse import parse_filter

NAME = "bench"


class TesseraInProcess:
    def __init__(self, path: Path, dim: int, hnsw: Any) -> None:
        self.engine = Engine(path)
        self.engine.create_collection(
            NAME,
            {
                "vectors": {"size": dim, "distance": "Cosine"},
                "hnsw_config": {
                    "m": hnsw.m,
                    "ef_construct": hnsw.ef_construct,
                    "full_scan_threshold": hnsw.full_scan_threshold,
                },
            },
        )

    def create_field_index(self, field: str, schema: str) -> None:
        self.engine.create_field_index(NAME, field, schema)

    def upsert(
        self, ids: list[int], vectors: np.ndarray[Any, Any], payloads: list[Any] | None
    ) -> None:
        self.engine.upsert_arrays(NAME, list(ids), vectors, payloads)

    def wait_indexed(self, timeout: float) -> int:
        self.engine.wait_optimized(NAME, timeout)
        return int(self.engine.info(NAME)["indexed_vectors_count"])

    def prepare_filter(self, filter: dict[str, Any] | None) -> Any:
        """A request body's filter, parsed: what `search` takes query after query."""
        return None if filter is None else parse_filter(filter)

    def search(
        self,
        vector: np.ndarray[Any, Any],
        limit: int,
        filter: Any,
        hnsw_ef: int | None,
        exact: bool,
    ) -> list[int]:
        hits = self.engine.search(NAME, vector, limit, filter, hnsw_ef, exact)
        return [int(pid) for pid, _ in hits]  # type: ignore[call-overload]

    def search_batch(
        self,
        vectors: np.ndarray[Any, Any],
        limit: int,
        filter: Any,
        hnsw_ef: int | None,
        exact: bool,
    ) -> list[list[int]]:
        return [self.search(v, limit, filter, hnsw_ef, exact) for v in vectors]

    def close(self) -> None:
        self.engine.close()


def open_engine(path: Path, dim: int, hnsw: Any) -> TesseraInProcess:
    return TesseraInProcess(path, dim, hnsw)
