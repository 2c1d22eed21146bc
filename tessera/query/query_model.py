"""A parsed Query API request: a tree of nodes, each with its query and its prefetches.

`api/query_parse.py` builds these from Qdrant's JSON (and `api/query_legacy.py` from the
older search / recommend / discover bodies); `query_exec.execute` runs them over a segment
holder. Everything here is validated already: raw vectors have the right kind and size for
the node's `using` vector, filters and formulas are parsed.

A vector input is either a value (`VectorValue`) or a `PointInput`, a point whose stored
vector stands in for it, looked up in the searched collection or in `lookup_from`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from tessera.config_model import rust_f32
from tessera.errors import BadRequest, bad_input
from tessera.ids import PointId
from tessera.query.filter_model import Filter
from tessera.query.formula import Formula

# A dense vector (d,) float32 array, a multivector (m, d) array, or a sparse vector as
# (indices int array, values float32 array).
VectorValue = Any


@dataclass(frozen=True)
class PointInput:
    """The vector of an existing point used as a query input."""

    id: PointId


VectorInput = PointInput | VectorValue


@dataclass(frozen=True)
class ContextPair:
    positive: VectorInput
    negative: VectorInput


@dataclass(frozen=True)
class Nearest:
    vector: VectorInput
    mmr_diversity: float | None = None
    mmr_candidates: int | None = None
    mmr: bool = False


@dataclass(frozen=True)
class Recommend:
    positive: tuple[VectorInput, ...]
    negative: tuple[VectorInput, ...]
    strategy: Literal["average_vector", "best_score", "sum_scores"] = "average_vector"


@dataclass(frozen=True)
class Discover:
    target: VectorInput
    pairs: tuple[ContextPair, ...]


@dataclass(frozen=True)
class Context:
    pairs: tuple[ContextPair, ...]


@dataclass(frozen=True)
class FeedbackItem:
    example: VectorInput
    score: float


@dataclass(frozen=True)
class RelevanceFeedback:
    target: VectorInput
    feedback: tuple[FeedbackItem, ...]
    a: float
    b: float
    c: float


@dataclass(frozen=True)
class OrderBy:
    key: str
    descending: bool = False
    start_from: float | None = None


@dataclass(frozen=True)
class Fusion:
    method: Literal["rrf", "dbsf"]
    k: int | None = None
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class FormulaQuery:
    formula: Formula
    # The parsed filter of each `ConditionVar` of the formula, by index.
    conditions: tuple[Filter, ...] = ()


@dataclass(frozen=True)
class Sample:
    pass


@dataclass(frozen=True)
class TextQuery:
    """BM25 over the text index (with `scoring`) of the payload field the node's `using`
    names: `k` saturates term frequencies, `b` normalises by document length."""

    text: str
    k: float = 1.2
    b: float = 0.75


def text_query(text: str, k: float | None, b: float | None) -> TextQuery:
    """A text query after BM25's rules on its parameters (Qdrant's wording)."""
    if k is not None and not (math.isfinite(k) and k >= 0):
        raise BadRequest(
            f"Wrong input: Validation failed: BM25 k1 must be finite and non-negative, "
            f"got {rust_f32(k)}"
        )
    if b is not None and not (math.isfinite(b) and 0 <= b <= 1):
        raise BadRequest(
            f"Wrong input: Validation failed: BM25 b must be finite and within [0, 1], "
            f"got {rust_f32(b)}"
        )
    return TextQuery(text, 1.2 if k is None else k, 0.75 if b is None else b)


VectorQuery = Nearest | Recommend | Discover | Context | RelevanceFeedback
Query = VectorQuery | OrderBy | Fusion | FormulaQuery | Sample | TextQuery


@dataclass(frozen=True)
class LookupFrom:
    collection: str
    vector: str | None = None


@dataclass(frozen=True)
class QueryNode:
    """The root request or one prefetch."""

    query: Query | None = None
    prefetch: tuple[QueryNode, ...] = ()
    using: str = ""
    filter: Filter | None = None
    score_threshold: float | None = None
    limit: int = 10
    lookup_from: LookupFrom | None = None
    exact: bool = False
    hnsw_ef: int | None = None
    # `params.idf.corpus`: sparse IDF statistics over the points matching it, not all.
    idf_corpus: Filter | None = None
    # `params.quantization`: None when absent (Qdrant's defaults: use, rescore, oversampling 1).
    quantization: QuantizationParams | None = None
    # `params.indexed_only`: leave out segments without a graph that are not small.
    indexed_only: bool = False


@dataclass(frozen=True)
class QuantizationParams:
    """`params.quantization` of a search or query (one type for every layer): skip the
    quantized codes (`ignore`), rescore the walk's results on the original vectors
    (`rescore`; None: as the quantization decides, `segment.quantization.default_rescoring`),
    and walk `oversampling` times more candidates for it."""

    ignore: bool = False
    rescore: bool | None = None
    oversampling: float = 1.0


@dataclass(frozen=True)
class GroupSpec:
    group_by: str
    group_size: int
    limit: int
    # From the Query API's `/query/groups` (not the older `/search/groups` and
    # `/recommend/groups`): strict mode weighs those differently, as Qdrant does.
    query_api: bool = True


@dataclass(frozen=True)
class Plan:
    """One request to execute: the tree, the root's offset and, for groups, the grouping."""

    root: QueryNode
    offset: int = 0
    groups: GroupSpec | None = None

    def __post_init__(self) -> None:
        # Qdrant ignores the offset of a random sample over the whole collection (a root
        # sample without prefetches): its output is not stable, so there is no next page.
        if self.offset and isinstance(self.root.query, Sample) and not self.root.prefetch:
            object.__setattr__(self, "offset", 0)


def vector_inputs(query: Query | None) -> list[VectorInput]:
    """Every vector input of a query, in order."""
    match query:
        case Nearest(vector=v):
            return [v]
        case Recommend(positive=pos, negative=neg):
            return [*pos, *neg]
        case Discover(target=t, pairs=pairs):
            return [t, *(x for p in pairs for x in (p.positive, p.negative))]
        case Context(pairs=pairs):
            return [x for p in pairs for x in (p.positive, p.negative)]
        case RelevanceFeedback(target=t, feedback=items):
            return [t, *(i.example for i in items)]
    return []


def referenced_ids(query: Query | None) -> list[PointId]:
    return [v.id for v in vector_inputs(query) if isinstance(v, PointInput)]


def rrf_weights_mismatch(weights: int, prefetches: int) -> BadRequest:
    """Qdrant's query planner refuses RRF weights that do not pair up with the prefetches
    (an OperationError::ValidationError, answered as BadInput: 400, gRPC INVALID_ARGUMENT)."""
    return bad_input(
        f"Validation failed: RRF weights length ({weights}) does not match number of "
        f"prefetches ({prefetches})"
    )


MAX_PREFETCH_DEPTH = 64


def check_node(node: QueryNode) -> None:
    """Qdrant's rules on a query (the root node) and its prefetches, in Qdrant's order: the
    collection's `CollectionQueryRequest` validation of every node first, then its shard
    query planner's (the nesting depth, then RRF weights against each node's prefetches).
    Qdrant checks them after it has read the vectors of the points the query names, so a
    missing point, vector or `lookup_from` collection is what a request with both problems
    answers: the collection runs this after those reads."""
    _check_request_rules(node)
    depth = prefetch_depth(node)
    if depth > MAX_PREFETCH_DEPTH:
        raise bad_input(
            f"Validation failed: prefetches depth {depth} exceeds max depth {MAX_PREFETCH_DEPTH}"
        )
    _check_fusion_weights(node)


def prefetch_depth(node: QueryNode) -> int:
    """How deep the prefetches nest under a node (0 without any), as Qdrant counts it."""
    return max((1 + prefetch_depth(p) for p in node.prefetch), default=0)


def _check_request_rules(node: QueryNode) -> None:
    query = node.query
    if node.prefetch and query is None:
        raise BadRequest(
            "Bad request: A query is needed to merge the prefetches. "
            "Can't have prefetches without defining a query."
        )
    if node.score_threshold is not None:
        if query is None:
            raise BadRequest(
                "Bad request: A query is needed to use the score_threshold. "
                "Can't have score_threshold without defining a query."
            )
        if isinstance(query, OrderBy):
            raise BadRequest("Bad request: Can't use score_threshold with an order_by query.")
    if isinstance(query, Fusion) and node.using:
        raise BadRequest("Bad request: Fusion queries cannot be combined with the 'using' field.")
    for prefetch in node.prefetch:
        _check_request_rules(prefetch)


def _check_fusion_weights(node: QueryNode) -> None:
    weights = node.query.weights if isinstance(node.query, Fusion) else None
    if weights is not None and len(weights) != len(node.prefetch):
        raise rrf_weights_mismatch(len(weights), len(node.prefetch))
    for prefetch in node.prefetch:
        _check_fusion_weights(prefetch)
