"""The plain values a collection's reads take and answer.

Transports parse a request into these (selectors, vector inputs, search parameters), the
collection runs it under its locks and answers points, pages, counts, facet hits, groups
and its info with the selection already applied: nothing here refers to a shard, a segment
or a lock, so a REST or gRPC renderer (or a future merge across shards) reads them as they
are.

The points of an answer come as `Points`, one list per field (the hot paths render them
with one `zip`, without an object per point); iterating or indexing it gives `Record`s.
Each point has its id (an u64 or a UUID), payload (when selected: a dict), vector (when
selected: the collection's single unnamed dense vector as a bare list, otherwise {name:
value} with the point's vectors: a dense or multi vector as lists of floats, a sparse one
as {"indices", "values"}) and, in scored answers, its version, score and, for `order_by`,
the value it was ordered by.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tessera.collection import payload_select as select
from tessera.collection_config import CollectionConfig
from tessera.ids import PointId
from tessera.query.filter_model import Filter
from tessera.query.query_model import QuantizationParams

# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class PayloadSelector:
    """`with_payload`: none, all, only some paths (`include`) or all but some (`exclude`)."""

    enabled: bool
    include: list[str] | None = None
    exclude: list[str] | None = None

    def apply(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        if self.include is not None:
            picked: dict[str, Any] = select.include(payload, self._tree)
            return picked
        if self.exclude is not None:
            kept: dict[str, Any] = select.exclude(payload, self._tree)
            return kept
        return payload

    @functools.cached_property
    def _tree(self) -> select.Tree:
        """The paths' prefix tree, made once per selector (a read applies it per point)."""
        return select.selector_tree(
            self.include if self.include is not None else self.exclude or ()
        )


@dataclass(frozen=True)
class VectorSelector:
    """`with_vector`: none, all, or the named ones."""

    enabled: bool
    names: list[str] | None = None


@dataclass(frozen=True)
class Selection:
    """What a read answers of each point besides its id."""

    payload: PayloadSelector
    vectors: VectorSelector


NOTHING = Selection(PayloadSelector(False), VectorSelector(False))
EVERYTHING = Selection(PayloadSelector(True), VectorSelector(True))


@dataclass(frozen=True)
class Lookup:
    """`with_lookup` of a groups request: records of the group ids in another collection."""

    collection: str
    select: Selection


# --------------------------------------------------------------------------- requests

ShardKey = str | int


@dataclass(frozen=True)
class ShardSelector:
    """`shard_key` of a request (custom sharding): the shards of these keys; with
    `fallback`, those of the fallback key when the (one) target key does not exist."""

    keys: tuple[ShardKey, ...]
    fallback: ShardKey | None = None


@dataclass(slots=True)
class VectorInput:
    """A query vector for one vector name: dense (d,) array, sparse (indices, values) or
    multi (m, d) array, validated against the collection config. Not frozen (a frozen
    dataclass's __init__ costs three times as much, and every search makes one); nothing
    changes it after it is made."""

    using: str
    kind: str  # "dense" | "sparse" | "multi"
    value: Any


# `params.quantization` of a search: one type for every layer (tessera.query.query_model).
Quantization = QuantizationParams


@dataclass(frozen=True)
class SearchParams:
    exact: bool = False
    hnsw_ef: int | None = None
    quantization: Quantization = field(default_factory=Quantization)
    idf_corpus: Filter | None = None  # `idf.corpus`: IDF statistics over these points
    indexed_only: bool = False  # leave out segments without a graph that are not small


# --------------------------------------------------------------------------- answers


class Record(NamedTuple):
    """One point of an answer (see the module docstring); None where not selected."""

    id: PointId
    payload: dict[str, Any] | None
    vector: Any
    version: int | None = None
    score: float | None = None
    order_value: Any = None


@dataclass(slots=True)
class Points:
    """The points of an answer in answer order, one list per field, all of one length.
    `payloads` / `vectors` are None when the request did not select them; `versions` and
    `scores` are set in scored answers, `order_values` in answers ordered by a payload value
    (where a point may still have None), `shard_keys` under custom sharding."""

    ids: list[PointId]
    payloads: list[dict[str, Any]] | None = None
    vectors: list[Any] | None = None
    versions: list[int] | None = None
    scores: list[float] | None = None
    order_values: list[Any] | None = None
    # Custom sharding: the shard key each point was found under (None elsewhere).
    shard_keys: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Record:
        def at(column: list[Any] | None) -> Any:
            return None if column is None else column[i]

        return Record(
            self.ids[i],
            at(self.payloads),
            at(self.vectors),
            at(self.versions),
            at(self.scores),
            at(self.order_values),
        )

    def __iter__(self) -> Iterator[Record]:
        return (self[i] for i in range(len(self.ids)))


class ScrollPage(NamedTuple):
    points: Points
    next_offset: PointId | None


@dataclass(frozen=True, slots=True)
class FacetHit:
    value: str | int | bool
    count: int


class Group(NamedTuple):
    """One group of a groups request: its id (a payload value), its best hits and, with
    `with_lookup`, the record of the point with that id in the lookup collection."""

    id: int | str
    hits: Points
    lookup: Record | None = None


class Matrix(NamedTuple):
    """A distance matrix over a sample: the sampled ids in id order and, per sampled point,
    its nearest others as (column, score)."""

    ids: list[PointId]
    rows: list[list[tuple[int, float]]]


@dataclass(frozen=True)
class PayloadIndexInfo:
    schema: dict[str, Any]  # the field schema as Qdrant renders it: data_type, params
    points: int


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's state: `status` green (idle), yellow (optimizing) or red (damaged,
    `damage` says why)."""

    status: str
    damage: list[str]
    points_count: int
    indexed_vectors_count: int
    segments_count: int
    config: CollectionConfig
    payload_schema: dict[str, PayloadIndexInfo]
