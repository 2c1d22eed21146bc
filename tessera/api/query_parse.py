"""Query API bodies (QueryRequest, Prefetch, QueryGroupsRequest) parsed into `query_model`.

Everything is validated against the collection config before the engine runs: raw vectors
against the node's `using` vector (kind, size), filters, formulas, strategies, limits, and
the rules Qdrant checks on each node (no prefetch without a query, no score_threshold with
order_by, no `using` with fusion).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tessera.api.envelope import expect_object
from tessera.api.points_read import _parse_order_by, parse_limit, positive_limit
from tessera.api.render import (
    check_vector_names,
    parse_payload_selector,
    parse_selection,
    parse_vector_selector,
)
from tessera.api.vectors_parse import (
    VectorRule,
    check_model,
    checked_vector,
    parse_one_vector,
    unknown_name,
)
from tessera.collection.values import Lookup, PayloadSelector, Selection, VectorSelector
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest, UnprocessableEntity, inference_unavailable
from tessera.ids import PointId, parse_point_id
from tessera.query import query_model as qm
from tessera.query.bm25 import infer as bm25_infer
from tessera.query.bm25 import is_document, names_a_model
from tessera.query.filter_model import Filter
from tessera.query.filter_parse import parse_filter
from tessera.query.formula import parse_formula
from tessera.query.recommend import check_examples

MMR_CANDIDATES_MAX = 16384

_QUERY_KEYS = (
    "nearest",
    "recommend",
    "discover",
    "context",
    "order_by",
    "fusion",
    "rrf",
    "formula",
    "sample",
    "relevance_feedback",
)


def shape_error(message: str) -> BadRequest:
    return BadRequest(f"Format error in JSON body: {message}")


def validation_error(field: str, message: str) -> UnprocessableEntity:
    return UnprocessableEntity(f"Validation error in JSON body: [{field}: {message}]")


positive_int = positive_limit  # the name this module's callers use


def parse_threshold(raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise shape_error("`score_threshold` must be a number")
    return float(raw)


def parse_params(raw: Any) -> tuple[bool, int | None]:
    if raw is None:
        return False, None
    params = expect_object(raw, "params")
    exact = params.get("exact", False)
    if not isinstance(exact, bool):
        raise shape_error("`params.exact` must be a boolean")
    ef = params.get("hnsw_ef")
    if ef is not None and (isinstance(ef, bool) or not isinstance(ef, int) or ef < 0):
        raise shape_error("`params.hnsw_ef` must be a non-negative integer")
    if params.get("indexed_only") is not None and not isinstance(params["indexed_only"], bool):
        raise shape_error("`params.indexed_only` must be a boolean")
    if params.get("acorn") is not None:
        check_acorn(expect_object(params["acorn"], "params.acorn"))
    return exact, checked_hnsw_ef(ef)


def parse_indexed_only(raw: Any) -> bool:
    """`params.indexed_only` (checked by `parse_params`)."""
    return raw is not None and expect_object(raw, "params").get("indexed_only") is True


def check_acorn(acorn: dict[str, Any]) -> None:
    """`params.acorn` (`AcornSearchParams`), checked as Qdrant checks it. Nothing more: a
    filtered graph walk keeps its recall without ACORN (faiss's walk steps through points
    outside the filter and keeps only the candidates; bench/README.md's ANN figures)."""
    if acorn.get("enable") is not None and not isinstance(acorn["enable"], bool):
        raise shape_error("`params.acorn.enable` must be a boolean")
    selectivity = acorn.get("max_selectivity")
    if selectivity is None:
        return
    if isinstance(selectivity, bool) or not isinstance(selectivity, int | float):
        raise shape_error("`params.acorn.max_selectivity` must be a number")
    if not 0.0 <= selectivity <= 1.0:
        raise validation_error(
            "params.acorn.max_selectivity", f"value {selectivity} invalid, must be from 0.0 to 1.0"
        )


def checked_hnsw_ef(ef: int | None) -> int | None:
    if ef == 0:
        raise validation_error("params.hnsw_ef", "value 0 invalid, must be 1 or larger")
    return ef


def parse_quantization(raw: Any) -> qm.QuantizationParams | None:
    """`params.quantization` (Qdrant's `QuantizationSearchParams`) of a query or a search:
    `ignore` (default false), `rescore` (default: as the quantization decides, Qdrant's
    `default_rescoring`), `oversampling` (a number, at least 1). With `ignore` the originals
    are searched: nothing to rescore or oversample."""
    if raw is None:
        return None
    quant = expect_object(raw, "params").get("quantization")
    if quant is None:
        return None
    quant = expect_object(quant, "params.quantization")
    ignore = quant.get("ignore", False)
    if not isinstance(ignore, bool):
        raise shape_error("`params.quantization.ignore` must be a boolean")
    rescore = quant.get("rescore")
    if rescore is not None and not isinstance(rescore, bool):
        raise shape_error("`params.quantization.rescore` must be a boolean")
    oversampling = quant.get("oversampling")
    if oversampling is not None and (
        isinstance(oversampling, bool) or not isinstance(oversampling, int | float)
    ):
        raise shape_error("`params.quantization.oversampling` must be a number")
    return quantization_params(ignore, rescore, oversampling)


def quantization_params(
    ignore: bool, rescore: bool | None, oversampling: float | None
) -> qm.QuantizationParams:
    """The params after their rules (`oversampling` at least 1), with Qdrant's defaults."""
    if oversampling is not None and oversampling < 1:
        raise validation_error(
            "params.quantization.oversampling",
            f"value {oversampling} invalid, must be 1.0 or larger",
        )
    if ignore:
        return qm.QuantizationParams(ignore=True, rescore=True, oversampling=1.0)
    return qm.QuantizationParams(
        ignore=ignore,
        rescore=rescore,
        oversampling=1.0 if oversampling is None else float(oversampling),
    )


def parse_idf_corpus(raw: Any) -> Filter | None:
    """`params.idf` (`IdfParams`): "global" (collection-wide statistics, as when absent) or
    {"corpus": filter}: the population that sparse IDF statistics are computed over."""
    if raw is None:
        return None
    idf = expect_object(raw, "params").get("idf")
    if idf is None or idf == "global":
        return None
    if not isinstance(idf, dict) or "corpus" not in idf:
        raise BadRequest(
            "Format error in JSON body: params.idf: data did not match any variant of "
            "untagged enum IdfParams"
        )
    if idf["corpus"] is None:
        raise BadRequest("Format error in JSON body: params.idf.corpus: expected a filter")
    return parse_filter(idf["corpus"])


def parse_lookup_from(raw: Any) -> qm.LookupFrom | None:
    if raw is None:
        return None
    obj = expect_object(raw, "lookup_from")
    collection = obj.get("collection")
    vector = obj.get("vector")
    if not isinstance(collection, str):
        raise shape_error("`lookup_from` needs a `collection`")
    if vector is not None and not isinstance(vector, str):
        raise shape_error("`lookup_from.vector` must be a string")
    return qm.LookupFrom(collection, vector)


def parse_with_lookup(raw: Any) -> Lookup | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return Lookup(raw, Selection(PayloadSelector(True), VectorSelector(False)))
    obj = expect_object(raw, "with_lookup")
    if not isinstance(obj.get("collection"), str):
        raise shape_error("`with_lookup` needs a `collection`")
    select = Selection(
        parse_payload_selector(obj.get("with_payload"), default=True),
        parse_vector_selector(obj.get("with_vectors", obj.get("with_vector"))),
    )
    return Lookup(obj["collection"], select)


# --------------------------------------------------------------------------- inputs


class InputParser:
    """Vector inputs of one node: raw vectors checked against its `using` vector."""

    def __init__(self, config: CollectionConfig, using: str) -> None:
        self.config = config
        self.using = using

    def input(self, raw: Any) -> Any:
        if isinstance(raw, bool):
            raise shape_error("a vector input must be a vector or a point id")
        if isinstance(raw, int | str):
            return self.point(parse_point_id(raw))
        check_model(raw)
        if is_document(raw):  # server-side BM25: a query document, weight 1 per token
            raw = bm25_infer(raw, query=True)
        if isinstance(raw, dict) and not ("indices" in raw and "values" in raw):
            # A Document, Image or InferenceObject names its `model` (required): without one
            # the input matches none of VectorInput's forms.
            if names_a_model(raw):
                raise inference_unavailable()
            raise shape_error("data did not match any variant of untagged enum VectorInput")
        return self._as_input(parse_one_vector(self.config, self.using, raw))

    def point(self, pid: PointId) -> qm.PointInput:
        """A point whose stored `using` vector is the input."""
        if self.using not in self.config.vectors and self.using not in self.config.sparse_vectors:
            raise unknown_name(self.using)
        return qm.PointInput(pid)

    def vector(self, kind: str, value: Any) -> Any:
        """A vector decoded from a typed wire form (see `checked_vector`)."""
        return self._as_input(checked_vector(self.config, self.using, kind, value))

    @staticmethod
    def _as_input(value: Any) -> Any:
        return value if isinstance(value, tuple) else value.astype("float32", copy=False)

    def pair(self, raw: Any) -> qm.ContextPair:
        obj = expect_object(raw, "context pair")
        if "positive" not in obj or "negative" not in obj:
            raise shape_error("a context pair needs `positive` and `negative`")
        return qm.ContextPair(self.input(obj["positive"]), self.input(obj["negative"]))

    def pairs(self, raw: Any) -> tuple[qm.ContextPair, ...]:
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        return tuple(self.pair(p) for p in items)

    def inputs(self, raw: Any, field: str) -> tuple[Any, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise shape_error(f"`{field}` must be a list")
        return tuple(self.input(x) for x in raw)


# --------------------------------------------------------------------------- queries


def parse_query(
    raw: Any, config: CollectionConfig, using: str, where: str = "internal"
) -> qm.Query | None:
    """`where`: the node's place as Qdrant's validator names it (`internal` for the root,
    `internal.prefetch[1]` for a prefetch), for the rule errors of a plain query vector."""
    if raw is None:
        return None
    inputs = InputParser(config, using)
    found = [k for k in _QUERY_KEYS if k in raw] if isinstance(raw, dict) else []
    if isinstance(raw, dict) and not found and "text" in raw and "model" not in raw:
        return _text_query(raw, where)  # (a Document has a `model`)
    if not found or ("indices" in raw and "values" in raw):
        try:  # a plain vector input: a vector, a point id, a document
            return qm.Nearest(inputs.input(raw))
        except VectorRule as exc:
            raise validation_error(f"{where}.query.{exc.field}", exc.shown) from None
    kind = found[0]
    body = raw[kind]
    if kind == "nearest":
        return _nearest(inputs, body, raw.get("mmr"), f"{where}.query.")
    if kind == "recommend":
        obj = expect_object(body, "recommend")
        if obj.get("positive") in (None, []) and obj.get("negative") in (None, []):
            raise no_examples(where)
        return _recommend(inputs, obj)
    if kind == "discover":
        obj = expect_object(body, "discover")
        if "target" not in obj:
            raise shape_error("missing field `target`")
        return qm.Discover(inputs.input(obj["target"]), inputs.pairs(obj.get("context")))
    if kind == "context":
        return context_query(inputs.pairs(body))
    if kind == "order_by":
        parsed = _parse_order_by(body)
        if parsed is None:
            raise shape_error("data did not match any variant of untagged enum Query")
        return qm.OrderBy(*parsed)
    if kind == "fusion":
        if body not in ("rrf", "dbsf"):
            raise shape_error(f"unknown variant `{body}`, expected `rrf` or `dbsf`")
        return qm.Fusion(body)
    if kind == "rrf":
        return _rrf(expect_object(body or {}, "rrf"), f"{where}.query.rrf.")
    if kind == "formula":
        return _formula(body, raw.get("defaults"))
    if kind == "sample":
        if body != "random":
            raise shape_error(f"unknown variant `{body}`, expected `random`")
        return qm.Sample()
    return _feedback(inputs, expect_object(body, "relevance_feedback"), where)


def _text_query(raw: dict[str, Any], where: str) -> qm.TextQuery:
    """`{"text": "..."}` or `{"text": {"query": "...", "k": .., "b": ..}}` (Qdrant's form), or
    with the parameters under `scoring.bm25` (as Qdrant Edge's `TextQuery` holds them)."""
    if set(raw) != {"text"}:
        raise shape_error("data did not match any variant of untagged enum QueryInterface")
    body = raw["text"]
    if isinstance(body, str):
        return qm.text_query(body, None, None)
    obj = expect_object(body, "text")
    unknown = set(obj) - {"query", "k", "b", "scoring"}
    if unknown:
        raise shape_error(
            f"text: unknown field `{sorted(unknown)[0]}`, expected one of `query`, `k`, `b`, "
            "`scoring`"
        )
    text = obj.get("query")
    if not isinstance(text, str):
        raise shape_error(
            "text: missing field `query`" if text is None else "text.query: expected a string"
        )
    params, at = obj, "text"
    scoring = obj.get("scoring")
    if scoring is not None:
        if "k" in obj or "b" in obj:
            raise shape_error("text: `k` and `b` go either in `text` or in `scoring.bm25`")
        scoring = expect_object(scoring, "text.scoring")
        if set(scoring) != {"bm25"}:
            raise shape_error("text.scoring: unknown variant, expected `bm25`")
        params, at = expect_object(scoring["bm25"] or {}, "text.scoring.bm25"), "text.scoring.bm25"
        extra = set(params) - {"k", "b"}
        if extra:
            raise shape_error(f"{at}: unknown field `{sorted(extra)[0]}`, expected `k` or `b`")
    values: list[float | None] = []
    for name in ("k", "b"):
        value = params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise shape_error(f"{at}.{name}: expected a number")
        values.append(None if value is None else float(value))
    k, b = values
    if scoring is None:  # Qdrant's form: the ranges are rules of the request's schema (422)
        # (k and b are f32s: compared as such, -1e-50 is -0.0 and 1.00000001 is 1.0)
        with np.errstate(over="ignore"):
            k32 = None if k is None else float(np.float32(k))
            b32 = None if b is None else float(np.float32(b))
        if k32 is not None and not (math.isfinite(k32) and k32 >= 0):
            problem = f"value {json_f32(k32)} invalid, must be 0.0 or larger"
            raise validation_error(f"{where}.query.text.k", problem)
        if b32 is not None and not (math.isfinite(b32) and 0 <= b32 <= 1):
            problem = f"value {json_f32(b32)} invalid, must be from 0.0 to 1.0"
            raise validation_error(f"{where}.query.text.b", problem)
    return qm.text_query(text, k, b)


def context_query(pairs: tuple[qm.ContextPair, ...]) -> qm.Context:
    if not pairs:
        raise BadRequest("Bad request: context query needs at least one pair")
    return qm.Context(pairs)


def _nearest(inputs: InputParser, body: Any, mmr: Any, where: str) -> qm.Nearest:
    vector = inputs.input(body)
    if mmr is None:
        return qm.Nearest(vector)
    obj = expect_object(mmr, "mmr")
    diversity = obj.get("diversity")
    if diversity is not None:
        if isinstance(diversity, bool) or not isinstance(diversity, int | float):
            raise shape_error("`mmr.diversity` must be a number")
        diversity = float(diversity)
    candidates = obj.get("candidates_limit")
    if candidates is not None:
        candidates = parse_limit(candidates, 0, "candidates_limit")
    return nearest_mmr(vector, diversity, candidates, where)


def nearest_mmr(
    vector: Any, diversity: float | None, candidates: int | None, where: str = ""
) -> qm.Nearest:
    """A nearest query with MMR, after its rules; `where`: the path of the query holding it,
    as Qdrant's validator names it (`internal.query.` over REST)."""
    if diversity is not None and not 0.0 <= diversity <= 1.0:
        raise validation_error(
            f"{where}mmr.diversity", f"value {diversity} invalid, must be from 0.0 to 1.0"
        )
    if candidates is not None and candidates > MMR_CANDIDATES_MAX:
        raise validation_error(
            f"{where}mmr.candidates_limit",
            f"value {candidates} invalid, must be {MMR_CANDIDATES_MAX} or smaller",
        )
    return qm.Nearest(vector, diversity, candidates, mmr=True)


def no_examples(where: str = "internal") -> UnprocessableEntity:
    """A recommend input without any example: Qdrant's validator (`RecommendInput`) refuses
    it before the query runs (422), whatever the strategy."""
    return validation_error(
        f"{where}.query.recommend.positives, negatives",
        "At least one positive or negative vector/id must be provided",
    )


def _recommend(inputs: InputParser, obj: dict[str, Any]) -> qm.Recommend:
    positive = inputs.inputs(obj.get("positive"), "positive")
    negative = inputs.inputs(obj.get("negative"), "negative")
    strategy = check_examples(obj.get("strategy"), len(positive), len(negative), query_api=True)
    return qm.Recommend(positive, negative, strategy)


def _rrf(obj: dict[str, Any], where: str) -> qm.Fusion:
    k = obj.get("k")
    if k is not None:
        k = parse_limit(k, 0, "k")
    weights = obj.get("weights")
    if weights is not None:
        if not isinstance(weights, list) or not all(
            isinstance(w, int | float) and not isinstance(w, bool) for w in weights
        ):
            raise shape_error("`rrf.weights` must be a list of numbers")
        weights = tuple(float(w) for w in weights)
    return rrf_fusion(k, weights, where)


def rrf_fusion(k: int | None, weights: tuple[float, ...] | None, where: str = "rrf.") -> qm.Fusion:
    """`where`: the path of `k`'s parent, as Qdrant's validator names it."""
    if k is not None and k < 1:
        raise validation_error(f"{where}k", f"value {k} invalid, must be 1 or larger")
    return qm.Fusion("rrf", k, weights)


def _formula(body: Any, defaults: Any) -> qm.FormulaQuery:
    formula = parse_formula(body, defaults)
    conditions = []
    for cond in formula.conditions:
        parsed = parse_filter({"must": [cond]}, "formula")
        assert parsed is not None
        conditions.append(parsed)
    return qm.FormulaQuery(formula, tuple(conditions))


def _feedback(inputs: InputParser, obj: dict[str, Any], where: str) -> qm.RelevanceFeedback:
    if "target" not in obj:
        raise shape_error("missing field `target`")
    if "feedback" not in obj:
        raise shape_error("missing field `feedback`")
    if not isinstance(obj["feedback"], list):
        raise shape_error("`feedback` must be a list")
    at = f"{where}.query.relevance_feedback"
    check_feedback(len(obj["feedback"]), at)
    items = []
    for raw in obj["feedback"]:
        item = expect_object(raw, "feedback item")
        score = item.get("score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise shape_error("a feedback item needs a numeric `score`")
        items.append(qm.FeedbackItem(inputs.input(item.get("example")), float(score)))
    strategy = expect_object(obj.get("strategy"), "strategy")
    naive = expect_object(strategy.get("naive"), "strategy.naive")
    coefficients = []
    for name in ("a", "b", "c"):
        value = naive.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise shape_error(f"`naive.{name}` must be a number")
        coefficients.append(float(value))
    target = inputs.input(obj["target"])
    a, b, c = coefficients
    return relevance_feedback(target, tuple(items), a, b, c, f"{at}.strategy.naive.b")


def check_feedback(count: int, at: str = "internal.query.relevance_feedback") -> None:
    """Qdrant's rule on `RelevanceFeedbackInput` (a rule of the whole input, named by its
    code `feedback`); `at`: the input's place in the request."""
    if not count:
        raise validation_error(f"{at}.feedback", "feedback elements must be non-empty")


def relevance_feedback(
    target: Any,
    items: tuple[qm.FeedbackItem, ...],
    a: float,
    b: float,
    c: float,
    b_at: str = "internal.query.relevance_feedback.strategy.naive.b",
) -> qm.RelevanceFeedback:
    """`b_at`: the place of `b` in the request, for its rule (`b` is an f32: -1e-50 is -0.0,
    which the rule takes)."""
    if np.float32(b) < 0:
        raise validation_error(b_at, f"value {json_f32(b)} invalid, must be 0.0 or larger")
    return qm.RelevanceFeedback(target, items, a, b, c)


def json_f32(value: float) -> str:
    """An f32 as serde_json writes it (ryu): its shortest form, `.0` on a whole number, with
    an exponent below 1e-5 and from 1e16 (`-1e-7`, `1e20`)."""
    with np.errstate(over="ignore"):
        single = np.float32(value)
    if not np.isfinite(single):
        return str(float(single))  # (`inf`, `nan`: beyond an f32; not JSON either way)
    magnitude = abs(float(single))
    if magnitude == 0 or 1e-5 <= magnitude < 1e16:
        return np.format_float_positional(single, unique=True, trim="0")
    text = np.format_float_scientific(single, unique=True, trim="-", exp_digits=1)
    return text.replace("e+", "e")


# --------------------------------------------------------------------------- nodes


def parse_node(
    body: dict[str, Any],
    config: CollectionConfig,
    default_limit: int = 10,
    where: str = "internal",
) -> qm.QueryNode:
    using = body.get("using")
    if using is not None and not isinstance(using, str):
        raise shape_error("`using` must be a string")
    using = using or ""
    raw_prefetch = body.get("prefetch")
    if raw_prefetch is None:
        prefetch: tuple[qm.QueryNode, ...] = ()
    else:
        items = raw_prefetch if isinstance(raw_prefetch, list) else [raw_prefetch]
        prefetch = tuple(
            parse_node(expect_object(p, "prefetch"), config, where=f"{where}.prefetch[{i}]")
            for i, p in enumerate(items)
        )
    query = parse_query(body.get("query"), config, using, where)
    threshold = parse_threshold(body.get("score_threshold"))
    exact, ef = parse_params(body.get("params"))
    node = qm.QueryNode(
        query=query,
        prefetch=prefetch,
        using=using,
        filter=parse_filter(body.get("filter")),
        score_threshold=threshold,
        limit=positive_limit(body.get("limit"), default_limit, "limit", f"{where}.limit"),
        lookup_from=parse_lookup_from(body.get("lookup_from")),
        exact=exact,
        hnsw_ef=ef,
        idf_corpus=parse_idf_corpus(body.get("params")),
        quantization=parse_quantization(body.get("params")),
        indexed_only=parse_indexed_only(body.get("params")),
    )
    return node


def parse_query_request(
    body: dict[str, Any], config: CollectionConfig, where: str = "internal"
) -> tuple[qm.Plan, Selection]:
    node = parse_node(body, config, where=where)
    offset = parse_limit(body.get("offset"), 0, "offset")
    select = parse_selection(body)
    check_vector_names(select, config)
    return qm.Plan(node, offset), select


def parse_groups_request(
    body: dict[str, Any], config: CollectionConfig
) -> tuple[qm.Plan, Selection, Lookup | None]:
    groups = group_spec(body, "search_group_request", default_size=3)
    # (Qdrant's QueryGroupsRequest flattens its query part under `search_group_request`)
    node = parse_node(body, config, where="search_group_request")
    select = parse_selection(body)
    check_vector_names(select, config)
    return qm.Plan(node, 0, groups), select, parse_with_lookup(body.get("with_lookup"))


def group_spec(body: dict[str, Any], request: str, default_size: int | None) -> qm.GroupSpec:
    """`group_by`, `group_size` and `limit` of a groups request, refused as Qdrant's serde
    and validator refuse them: their rules name the place under the request's flattened
    parts (`search_group_request.group_request.group_size`); `default_size` None: required."""
    group_by = body.get("group_by")
    if not isinstance(group_by, str):
        raise shape_error("missing field `group_by`")
    if not group_by:
        raise shape_error("Invalid json path: ''")
    if default_size is None and body.get("group_size") is None:
        raise shape_error("missing field `group_size`")
    where = f"{request}.group_request"

    return qm.GroupSpec(
        group_by,
        positive_limit(
            body.get("group_size"), default_size or 1, "group_size", f"{where}.group_size"
        ),
        positive_limit(body.get("limit"), 10, "limit", f"{where}.limit"),
        query_api=default_size is not None,  # only the Query API's groups have a default
    )
