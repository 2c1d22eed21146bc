"""Typed point reads: what a retrieve, scroll, count, facet, distance-matrix or search asks,
decoded by each transport from its own wire form (REST JSON in `api/points_read`,
`api/facet` and `api/query_routes`; protobuf in `api/grpc_reads`) and run by the same code.
Every field is parsed and typed; the rules that need the collection's config (vector names,
`order_by` with `offset`) are checked where the request meets its collection.

The shard key selector is not part of a request: the transport picks the collection's view
(`Collection.with_shards`) before the request runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.collection.values import SearchParams, Selection, VectorInput
from tessera.ids import PointId
from tessera.query.filter_model import Filter
from tessera.query.query_model import OrderBy


@dataclass(frozen=True)
class Retrieve:
    ids: tuple[PointId, ...]
    select: Selection


@dataclass(frozen=True)
class Scroll:
    filter: Filter | None
    offset: PointId | None
    limit: int
    select: Selection
    order_by: OrderBy | None


@dataclass(frozen=True)
class Count:
    filter: Filter | None
    exact: bool = True


@dataclass(frozen=True)
class Facet:
    key: str
    filter: Filter | None
    limit: int
    exact: bool
    # the limit the request gave, None for the default: strict mode checks only a given one
    # (Qdrant's FacetRequestInternal.limit is optional)
    given_limit: int | None


@dataclass(frozen=True)
class DistanceMatrix:
    using: str
    filter: Filter | None
    sample: int
    limit: int


@dataclass(frozen=True)
class Search:
    """`/points/search` (gRPC `Search`): one vector's nearest points."""

    vector: VectorInput
    filter: Filter | None
    limit: int
    offset: int
    score_threshold: float | None
    params: SearchParams
    select: Selection
