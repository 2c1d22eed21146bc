"""Tessera in-process: the engine without HTTP, for embedding and for benchmarks.

It sits beside `api/`: it takes the same JSON bodies and validates them the same way, and
the same typed requests the transports decode into (`collection.requests` reads, query
plans, the collection's writes: `read`, `query`, `write`), run by the same functions; plus
a fast path for nearest-neighbour search and bulk upserts from numpy arrays. Like the
transports, it reaches the data only through the collection's methods.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.api.points_parse import parse_upsert
from tessera.api.render import collection_info
from tessera.collection import requests, writes
from tessera.collection.values import NOTHING, Points, SearchParams, Selection, VectorInput
from tessera.collection_config import parse_create_collection
from tessera.ids import PointId
from tessera.query import query_model as qm
from tessera.query.filter_model import Filter
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
        filter: dict[str, Any] | Filter | None = None,
        hnsw_ef: int | None = None,
        exact: bool = False,
        using: str = "",
    ) -> list[tuple[PointId, float]]:
        """`filter`: as in a request body, or parsed once beforehand (`parse_filter`) by a
        caller that sends the same one query after query."""
        collection = self.toc.get(name)
        query = VectorInput(using, "dense", np.asarray(vector, dtype=np.float32))
        filt = filter if filter is None or isinstance(filter, Filter) else parse_filter(filter)
        hits = collection.search(query, filt, limit, params=_search_params(exact, hnsw_ef))
        return list(zip(hits.ids, hits.scores or (), strict=True))

    # ------------------------------------------------------------ typed requests

    def read(self, name: str, request: ReadRequest) -> Any:
        """A typed read, run as the REST and gRPC routes run it: points (retrieve, search),
        a scroll page, a count, facet hits or a distance matrix."""
        from tessera.api import facet as facets  # the REST layer's modules (Starlette with
        from tessera.api import points_read as reads  # them) only for the typed requests
        from tessera.api import query_routes as queries

        collection = self.toc.get(name)
        match request:
            case requests.Retrieve():
                return reads.run_retrieve(collection, request)()
            case requests.Scroll():
                return reads.run_scroll(collection, request)()
            case requests.Count():
                return reads.run_count(collection, request)()
            case requests.Facet():
                return facets.run_facet(collection, request)()
            case requests.DistanceMatrix():
                return queries.run_matrix(collection, request)()
            case requests.Search():
                return reads.run_search(collection, request)()
        raise TypeError(f"not a read request: {type(request).__name__}")

    def query(self, name: str, plan: qm.Plan, select: Selection = NOTHING) -> Points:
        """A Query API plan (`api.query_parse.parse_query_request` builds one from JSON)."""
        from tessera.api import query_routes as queries

        collection = self.toc.get(name)
        return queries.run_plans(self.toc, collection, [(plan, select)])()[0]

    def write(self, name: str, write: writes.Write, wait: bool = True) -> int:
        """One of the collection's writes (`collection.writes`); returns the operation id."""
        return self.toc.get(name).update(write, wait).operation_id

    def close(self) -> None:
        self.toc.close()


@functools.lru_cache(maxsize=64)
def _search_params(exact: bool, hnsw_ef: int | None) -> SearchParams:
    return SearchParams(exact=exact, hnsw_ef=hnsw_ef)  # frozen: one per setting


ReadRequest = (
    requests.Retrieve
    | requests.Scroll
    | requests.Count
    | requests.Facet
    | requests.DistanceMatrix
    | requests.Search
)
