"""The gRPC decoders build the same typed requests as the REST parsers, without a REST body
in between: each filter, selector and read request below goes both ways (the official
client's own REST -> gRPC conversion makes the protobuf) and must give equal values, or
the same error."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from qdrant_client import grpc as pb
from qdrant_client import models
from qdrant_client.conversions.conversion import RestToGrpc

from tessera.api import (
    facet,
    grpc_filter,
    grpc_legacy,
    grpc_plan,
    grpc_reads,
    grpc_validate,
    grpc_writes,
    points_parse,
    points_read,
    query_legacy,
)
from tessera.api.query_parse import parse_query_request
from tessera.collection import wire
from tessera.collection_config import parse_create_collection
from tessera.errors import BadRequest
from tessera.query import query_model as qm
from tessera.query.filter_parse import parse_filter

POLYGON = models.GeoPolygon(
    exterior=models.GeoLineString(
        points=[
            models.GeoPoint(lat=0, lon=0),
            models.GeoPoint(lat=0, lon=1),
            models.GeoPoint(lat=1, lon=1),
            models.GeoPoint(lat=0, lon=0),
        ]
    )
)

FILTERS = [
    models.Filter(must=[models.FieldCondition(key="a", match=models.MatchValue(value="x"))]),
    models.Filter(should=[models.FieldCondition(key="a", match=models.MatchValue(value=7))]),
    models.Filter(must_not=[models.FieldCondition(key="b", match=models.MatchValue(value=True))]),
    models.Filter(
        must=[models.FieldCondition(key="a", match=models.MatchAny(any=["x", "y", "x"]))]
    ),
    models.Filter(must=[models.FieldCondition(key="a", match=models.MatchAny(any=[1, 2, 2]))]),
    models.Filter(
        must=[models.FieldCondition(key="a", match=models.MatchExcept(**{"except": ["x"]}))]
    ),
    models.Filter(
        must=[models.FieldCondition(key="a", match=models.MatchExcept(**{"except": [3]}))]
    ),
    models.Filter(must=[models.FieldCondition(key="t", match=models.MatchText(text="fly high"))]),
    models.Filter(must=[models.FieldCondition(key="t", match=models.MatchTextAny(text_any="a b"))]),
    models.Filter(must=[models.FieldCondition(key="t", match=models.MatchPhrase(phrase="a b"))]),
    models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gt=1.5, lte=9))]),
    models.Filter(
        must=[
            models.FieldCondition(
                key="d", range=models.DatetimeRange(gte="2024-01-02T03:04:05.123456Z")
            )
        ]
    ),
    models.Filter(
        must=[
            models.FieldCondition(
                key="g",
                geo_bounding_box=models.GeoBoundingBox(
                    top_left=models.GeoPoint(lat=50, lon=10),
                    bottom_right=models.GeoPoint(lat=40, lon=20),
                ),
            )
        ]
    ),
    models.Filter(
        must=[
            models.FieldCondition(
                key="g",
                geo_radius=models.GeoRadius(center=models.GeoPoint(lat=1, lon=2), radius=500.0),
            )
        ]
    ),
    models.Filter(must=[models.FieldCondition(key="g", geo_polygon=POLYGON)]),
    models.Filter(must=[models.FieldCondition(key="l", values_count=models.ValuesCount(gte=2))]),
    models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="e"))]),
    models.Filter(must=[models.IsNullCondition(is_null=models.PayloadField(key="e"))]),
    models.Filter(must=[models.HasIdCondition(has_id=[1, "b2a4a0a4-1c5b-4e0e-9f3e-2a6f4c6f8e11"])]),
    models.Filter(must=[models.HasVectorCondition(has_vector="image")]),
    models.Filter(
        must=[
            models.NestedCondition(
                nested=models.Nested(
                    key="items[]",
                    filter=models.Filter(
                        must=[models.FieldCondition(key="x", match=models.MatchValue(value=1))]
                    ),
                )
            )
        ]
    ),
    models.Filter(
        must=[
            models.Filter(
                should=[models.FieldCondition(key="a.b[].c", match=models.MatchValue(value="z"))]
            )
        ]
    ),
    models.Filter(
        min_should=models.MinShould(
            conditions=[
                models.FieldCondition(key="a", match=models.MatchValue(value=1)),
                models.FieldCondition(key="b", match=models.MatchValue(value=2)),
            ],
            min_count=1,
        )
    ),
]


def _json(filt: models.Filter) -> Any:
    return filt.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.mark.parametrize("filt", FILTERS, ids=range(len(FILTERS)))
def test_filter_decodes_as_rest_parses(filt: models.Filter) -> None:
    assert grpc_filter.decode_filter(RestToGrpc.convert_filter(filt)) == parse_filter(_json(filt))


def _error(run: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        run()
    return str(caught.value.message)


def test_filter_rules_fail_alike() -> None:
    open_ring = models.GeoPolygon(
        exterior=models.GeoLineString(points=[models.GeoPoint(lat=0, lon=i) for i in range(4)])
    )
    bad = [
        models.Filter(must=[models.FieldCondition(key="g", geo_polygon=open_ring)]),
        models.Filter(
            min_should=models.MinShould(
                conditions=[models.FieldCondition(key="a", match=models.MatchValue(value=1))],
                min_count=0,
            )
        ),
    ]
    for filt in bad:
        rest = _error(lambda f=filt: parse_filter(_json(f)))
        grpc = _error(lambda f=filt: grpc_filter.decode_filter(RestToGrpc.convert_filter(f)))
        assert rest == grpc
        assert rest.startswith("Validation error in JSON body: [filter.")
    nothing = pb.Filter(must=[pb.Condition(field=pb.FieldCondition(key="a"))])
    assert _error(lambda: grpc_filter.decode_filter(nothing)) == _error(
        lambda: parse_filter({"must": [{"key": "a"}]})
    )
    far = pb.Filter(
        must=[
            pb.Condition(
                field=pb.FieldCondition(
                    key="g",
                    geo_radius=pb.GeoRadius(center=pb.GeoPoint(lat=91, lon=0), radius=1),
                )
            )
        ]
    )
    assert _error(lambda: grpc_filter.decode_filter(far)) == _error(
        lambda: parse_filter(
            {"must": [{"key": "g", "geo_radius": {"center": {"lat": 91, "lon": 0}, "radius": 1}}]}
        )
    )


def test_reads_decode_as_rest_parses() -> None:
    filt = FILTERS[0]
    scroll = pb.ScrollPoints(
        collection_name="c",
        filter=RestToGrpc.convert_filter(filt),
        limit=5,
        with_payload=pb.WithPayloadSelector(include=pb.PayloadIncludeSelector(fields=["a"])),
        with_vectors=pb.WithVectorsSelector(enable=True),
        order_by=pb.OrderBy(key="n", direction=pb.Direction.Desc, start_from=pb.StartFrom(float=3)),
    )
    assert grpc_reads.scroll(scroll) == points_read.scroll_request(
        {
            "filter": _json(filt),
            "limit": 5,
            "with_payload": {"include": ["a"]},
            "with_vector": True,
            "order_by": {"key": "n", "direction": "desc", "start_from": 3},
        }
    )
    assert grpc_reads.scroll(pb.ScrollPoints(collection_name="c")) == points_read.scroll_request({})
    whole = pb.OrderBy(key="n", start_from=pb.StartFrom(integer=2**53 + 1))
    assert grpc_reads.order_by(whole).start_from == 2**53 + 1  # not rounded to a float
    page = pb.ScrollPoints(collection_name="c", offset=pb.PointId(num=9))
    assert grpc_reads.scroll(page) == points_read.scroll_request({"offset": 9})
    assert grpc_reads.count(pb.CountPoints(collection_name="c")) == points_read.count_request({})
    assert grpc_reads.count(
        pb.CountPoints(collection_name="c", exact=False)
    ) == points_read.count_request({"exact": False})
    assert grpc_reads.facet(
        pb.FacetCounts(collection_name="c", key="k", limit=3, exact=True)
    ) == facet.facet_request({"key": "k", "limit": 3, "exact": True})
    get = pb.GetPoints(collection_name="c", ids=[pb.PointId(num=1)])
    assert grpc_reads.retrieve(get) == points_read.retrieve_request(
        {"ids": [1], "with_payload": False}
    )
    zero = pb.ScrollPoints(collection_name="c", limit=0)
    assert _error(lambda: grpc_reads.scroll(zero)) == _error(
        lambda: points_read.scroll_request({"limit": 0})
    )


# --------------------------------------------------------------------------- the Query API

CONFIG = parse_create_collection(
    {"vectors": {"size": 3, "distance": "Cosine"}, "sparse_vectors": {"text": {}}}
)
MULTI = parse_create_collection(
    {
        "vectors": {
            "multi": {
                "size": 2,
                "distance": "Dot",
                "multivector_config": {"comparator": "max_sim"},
            }
        }
    }
)
DENSE = [0.1, 0.2, 0.3]
SPARSE = models.SparseVector(indices=[7, 2], values=[0.5, 1.5])
FLT = models.Filter(must=[models.FieldCondition(key="a", match=models.MatchValue(value="x"))])

QUERIES = [
    models.QueryRequest(query=DENSE, limit=5, offset=2, with_payload=True, filter=FLT),
    models.QueryRequest(query=models.NearestQuery(nearest=7), with_vector=True),
    models.QueryRequest(query=SPARSE, using="text", score_threshold=0.25),
    models.QueryRequest(
        query=models.NearestQuery(nearest=DENSE, mmr=models.Mmr(diversity=0.5, candidates_limit=20))
    ),
    models.QueryRequest(
        query=models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[1, DENSE], negative=[2], strategy=models.RecommendStrategy.BEST_SCORE
            )
        )
    ),
    models.QueryRequest(
        query=models.DiscoverQuery(
            discover=models.DiscoverInput(
                target=DENSE, context=[models.ContextPair(positive=1, negative=2)]
            )
        )
    ),
    models.QueryRequest(
        query=models.ContextQuery(context=[models.ContextPair(positive=1, negative=DENSE)])
    ),
    models.QueryRequest(query=models.OrderByQuery(order_by="n")),
    models.QueryRequest(
        prefetch=[
            models.Prefetch(query=DENSE, limit=30, filter=FLT),
            models.Prefetch(query=SPARSE, using="text", limit=30),
        ],
        query=models.FusionQuery(fusion=models.Fusion.DBSF),
    ),
    models.QueryRequest(
        prefetch=[models.Prefetch(query=DENSE), models.Prefetch(query=DENSE)],
        query=models.RrfQuery(rrf=models.Rrf(k=10, weights=[1.0, 2.0])),
    ),
    models.QueryRequest(query=models.SampleQuery(sample=models.Sample.RANDOM), limit=3),
    models.QueryRequest(
        prefetch=[models.Prefetch(query=DENSE, limit=50)],
        query=models.FormulaQuery(
            formula=models.SumExpression(
                sum=[
                    "$score",
                    models.MultExpression(
                        mult=[0.5, models.FieldCondition(key="a", match=models.MatchValue(value=1))]
                    ),
                    models.ExpDecayExpression(
                        exp_decay=models.DecayParamsExpression(x="price", scale=10.0)
                    ),
                    models.DivExpression(
                        div=models.DivParams(left="n", right=2.0, by_zero_default=1.0)
                    ),
                    models.GeoDistance(
                        geo_distance=models.GeoDistanceParams(
                            origin=models.GeoPoint(lat=1.0, lon=2.0), to="loc"
                        )
                    ),
                ]
            ),
            defaults={"price": 3.0},
        ),
    ),
    models.QueryRequest(
        query=DENSE,
        params=models.SearchParams(
            hnsw_ef=32,
            exact=True,
            quantization=models.QuantizationSearchParams(rescore=False, oversampling=2.0),
        ),
        lookup_from=models.LookupLocation(collection="other", vector="v"),
    ),
]


def _same(a: Any, b: Any) -> None:
    """Equal plans (numpy arrays inside: compared through the peer codec's bytes). A
    formula keeps its conditions as each transport gave them (JSON, protobuf decoded); the
    parsed filters that run them (`FormulaQuery.conditions`) must be equal."""
    assert wire.encode(_without_raw_conditions(a)) == wire.encode(_without_raw_conditions(b))


def _without_raw_conditions(prepared: Any) -> Any:
    plan, select = prepared
    query = plan.root.query
    if isinstance(query, qm.FormulaQuery):
        query = replace(query, formula=replace(query.formula, conditions=()))
        plan = replace(plan, root=replace(plan.root, query=query))
    return plan, select


CASES = [(q, CONFIG) for q in QUERIES] + [
    (models.QueryRequest(query=[[1.0, 2.0], [3.0, 4.0]], using="multi"), MULTI),
    (models.QueryRequest(query=[1.0, 2.0], using="multi", with_vector=["multi"]), MULTI),
]


@pytest.mark.parametrize(("request_", "config"), CASES, ids=range(len(CASES)))
def test_query_decodes_as_rest_parses(request_: models.QueryRequest, config: Any) -> None:
    message = RestToGrpc.convert_query_points(request_, "c")
    body = request_.model_dump(mode="json", by_alias=True, exclude_none=True)
    _same(grpc_plan.query_points(message, config), parse_query_request(body, config))


def test_query_rules_fail_alike() -> None:
    bad = [
        models.QueryRequest(query=[0.1, 0.2]),  # wrong dimension
        models.QueryRequest(query=DENSE, using="nope"),
        models.QueryRequest(query=DENSE, using="text"),
        models.QueryRequest(query=SPARSE),
        models.QueryRequest(query=models.NearestQuery(nearest=DENSE, mmr=models.Mmr(diversity=2))),
        models.QueryRequest(query=models.RecommendQuery(recommend=models.RecommendInput())),
        models.QueryRequest(query=DENSE, params=models.SearchParams(hnsw_ef=0)),
        models.QueryRequest(query=DENSE, with_vector=["nope"]),
        models.QueryRequest(
            query=models.FormulaQuery(formula=models.MaxExpression(max=[]))  # no operand
        ),
    ]
    for request_ in bad:
        body = request_.model_dump(mode="json", by_alias=True, exclude_none=True)
        rest = _error(lambda b=body: parse_query_request(b, CONFIG))
        message = RestToGrpc.convert_query_points(request_, "c")
        if "mmr.diversity" in rest:
            # the same rule, at the path each API's validator names (REST's body, gRPC's
            # message with its oneof)
            rest = rest.replace("internal.query.", "query.variant.")
        assert _error(lambda m=message: grpc_plan.query_points(m, CONFIG)) == rest


# --------------------------------------------------------------------------- older searches


def _dense(values: list[float]) -> pb.Vector:
    return pb.Vector(dense=pb.DenseVector(data=values))


def _example(raw: Any) -> pb.VectorExample:
    if isinstance(raw, int):
        return pb.VectorExample(id=pb.PointId(num=raw))
    return pb.VectorExample(vector=_dense(raw))


FILTER_PB = RestToGrpc.convert_filter(FLT)
FILTER_JSON = _json(FLT)

SEARCHES = [
    (
        pb.SearchPoints(
            collection_name="c",
            vector=DENSE,
            limit=5,
            offset=1,
            filter=FILTER_PB,
            with_payload=pb.WithPayloadSelector(enable=True),
            params=pb.SearchParams(hnsw_ef=16, exact=False),
            score_threshold=0.5,
        ),
        {
            "vector": DENSE,
            "limit": 5,
            "offset": 1,
            "filter": FILTER_JSON,
            "with_payload": True,
            "params": {"hnsw_ef": 16, "exact": False},
            "score_threshold": 0.5,
        },
    ),
    (
        pb.SearchPoints(
            collection_name="c",
            vector=[0.5, 1.5],
            sparse_indices=pb.SparseIndices(data=[7, 2]),
            vector_name="text",
            limit=3,
        ),
        {
            "vector": {"name": "text", "vector": {"indices": [7, 2], "values": [0.5, 1.5]}},
            "limit": 3,
        },
    ),
]


@pytest.mark.parametrize(("message", "body"), SEARCHES, ids=range(len(SEARCHES)))
def test_search_decodes_as_rest_parses(message: Any, body: dict[str, Any]) -> None:
    rest = points_read.search_request(body, points_read.parse_named_vector(CONFIG, body["vector"]))
    _same_value(grpc_legacy.search(message, CONFIG), rest)
    _same_value(
        grpc_legacy.plan(message, CONFIG, grpc_legacy.search_node),
        query_legacy._prepared(body, CONFIG, query_legacy.search_node),
    )


def _same_value(a: Any, b: Any) -> None:
    assert wire.encode(a) == wire.encode(b)


PLANS = [
    (
        pb.RecommendPoints(
            collection_name="c",
            positive=[pb.PointId(num=1)],
            positive_vectors=[_dense(DENSE)],
            negative=[pb.PointId(num=2)],
            strategy=pb.RecommendStrategy.BestScore,
            limit=4,
            filter=FILTER_PB,
            lookup_from=pb.LookupLocation(collection_name="o", vector_name="v"),
        ),
        {
            "positive": [1, DENSE],
            "negative": [2],
            "strategy": "best_score",
            "limit": 4,
            "filter": FILTER_JSON,
            "lookup_from": {"collection": "o", "vector": "v"},
        },
        "recommend_node",
    ),
    (
        pb.RecommendPoints(
            collection_name="c",
            positive_vectors=[pb.Vector(sparse=pb.SparseVector(indices=[3], values=[1.0]))],
            using="text",
            limit=2,
        ),
        {"positive": [{"indices": [3], "values": [1.0]}], "using": "text", "limit": 2},
        "recommend_node",
    ),
    (
        pb.DiscoverPoints(
            collection_name="c",
            target=pb.TargetVector(single=_example(3)),
            context=[pb.ContextExamplePair(positive=_example(1), negative=_example(DENSE))],
            limit=2,
            offset=1,
        ),
        {"target": 3, "context": [{"positive": 1, "negative": DENSE}], "limit": 2, "offset": 1},
        "discover_node",
    ),
    (
        pb.DiscoverPoints(
            collection_name="c",
            context=[pb.ContextExamplePair(positive=_example(1), negative=_example(2))],
            limit=2,
        ),
        {"context": [{"positive": 1, "negative": 2}], "limit": 2},
        "discover_node",
    ),
]


@pytest.mark.parametrize(("message", "body", "kind"), PLANS, ids=range(len(PLANS)))
def test_older_searches_decode_as_rest_parses(
    message: Any, body: dict[str, Any], kind: str
) -> None:
    _same_value(
        grpc_legacy.plan(message, CONFIG, getattr(grpc_legacy, kind)),
        query_legacy._prepared(body, CONFIG, getattr(query_legacy, kind)),
    )


def test_older_searches_fail_alike() -> None:
    cases = [
        (
            pb.SearchPoints(collection_name="c", vector=[0.1], limit=3),
            {"vector": [0.1], "limit": 3},
        ),
        (
            pb.SearchPoints(collection_name="c", vector=DENSE, limit=0),
            {"vector": DENSE, "limit": 0},
        ),
        (
            pb.SearchPoints(collection_name="c", vector=DENSE, vector_name="nope", limit=1),
            {"vector": {"name": "nope", "vector": DENSE}, "limit": 1},
        ),
    ]
    for message, body in cases:
        rest = _error(lambda b=body: query_legacy._prepared(b, CONFIG, query_legacy.search_node))
        grpc = _error(lambda m=message: grpc_legacy.plan(m, CONFIG, grpc_legacy.search_node))
        # REST's body flattens the request into `search_request`; gRPC's message is the request
        assert grpc == rest.replace("[search_request.", "[")
    nothing = pb.RecommendPoints(collection_name="c", limit=3)
    assert _error(lambda: grpc_legacy.plan(nothing, CONFIG, grpc_legacy.recommend_node)) == _error(
        lambda: query_legacy._prepared({"limit": 3}, CONFIG, query_legacy.recommend_node)
    )


# --------------------------------------------------------------------------- updates


def _spec(write: Any) -> Any:
    """What a write does, as data (its WriteSpec: kind, points, arguments), as parsed JSON:
    payload keys may come in another order (a protobuf map has none)."""
    return orjson.loads(wire.encode(write.spec))


def _point(pid: int, vectors: pb.Vectors | None = None, **payload: Any) -> pb.PointStruct:
    point = pb.PointStruct(id=pb.PointId(num=pid), payload=RestToGrpc.convert_payload(payload))
    if vectors is not None:
        point.vectors.SetInParent()
        point.vectors.CopyFrom(vectors)
    return point


UNNAMED = pb.Vectors(vector=_dense(DENSE))
SPARSE_NAMED = pb.Vectors(
    vectors=pb.NamedVectors(
        vectors={"text": pb.Vector(sparse=pb.SparseVector(indices=[9, 1], values=[0.5, 2.0]))}
    )
)
IDS = pb.PointsSelector(points=pb.PointsIdsList(ids=[pb.PointId(num=1), pb.PointId(num=2)]))
BY_FILTER = pb.PointsSelector(filter=FILTER_PB)

WRITES = [
    (
        lambda: grpc_writes.upsert(
            pb.UpsertPoints(
                collection_name="c",
                points=[
                    _point(1, UNNAMED, a="x", n=2),
                    _point(2, SPARSE_NAMED),
                    _point(3, pb.Vectors(vectors=pb.NamedVectors())),
                ],
                update_filter=FILTER_PB,
                update_mode=pb.UpdateMode.InsertOnly,
            ),
            CONFIG,
        ),
        lambda: points_parse.parse_upsert(
            CONFIG,
            {
                "points": [
                    {"id": 1, "vector": DENSE, "payload": {"a": "x", "n": 2}},
                    {"id": 2, "vector": {"text": {"indices": [9, 1], "values": [0.5, 2.0]}}},
                    {"id": 3, "vector": {}},
                ],
                "update_filter": FILTER_JSON,
                "update_mode": "insert_only",
            },
        ),
    ),
    (
        lambda: grpc_writes.set_payload(
            pb.SetPayloadPoints(
                collection_name="c",
                points_selector=IDS,
                payload=RestToGrpc.convert_payload({"k": [1, "two", None]}),
                key="a.b",
            ),
            overwrite=False,
        ),
        lambda: points_parse.parse_set_payload(
            {"points": [1, 2], "payload": {"k": [1, "two", None]}, "key": "a.b"}, False
        ),
    ),
    (
        lambda: grpc_writes.set_payload(
            pb.SetPayloadPoints(
                collection_name="c",
                points_selector=BY_FILTER,
                payload=RestToGrpc.convert_payload({"k": 1}),
            ),
            overwrite=True,
        ),
        lambda: points_parse.parse_set_payload({"filter": FILTER_JSON, "payload": {"k": 1}}, True),
    ),
    (
        lambda: grpc_writes.delete_payload(
            pb.DeletePayloadPoints(collection_name="c", points_selector=IDS, keys=["a", "b"])
        ),
        lambda: points_parse.parse_delete_payload({"points": [1, 2], "keys": ["a", "b"]}),
    ),
    (
        lambda: grpc_writes.clear_payload(pb.ClearPayloadPoints(collection_name="c", points=IDS)),
        lambda: points_parse.parse_clear_payload({"points": [1, 2]}),
    ),
    (
        lambda: grpc_writes.delete(pb.DeletePoints(collection_name="c", points=BY_FILTER)),
        lambda: points_parse.parse_delete({"filter": FILTER_JSON}),
    ),
    (
        lambda: grpc_writes.update_vectors(
            pb.UpdatePointVectors(
                collection_name="c",
                points=[
                    pb.PointVectors(id=pb.PointId(num=1), vectors=UNNAMED),
                    pb.PointVectors(id=pb.PointId(num=2), vectors=SPARSE_NAMED),
                ],
            ),
            CONFIG,
        ),
        lambda: points_parse.parse_update_vectors(
            CONFIG,
            {
                "points": [
                    {"id": 1, "vector": DENSE},
                    {"id": 2, "vector": {"text": {"indices": [9, 1], "values": [0.5, 2.0]}}},
                ]
            },
        ),
    ),
    (
        lambda: grpc_writes.delete_vectors(
            pb.DeletePointVectors(
                collection_name="c", points_selector=IDS, vectors=pb.VectorsSelector(names=["text"])
            ),
            CONFIG,
        ),
        lambda: points_parse.parse_delete_vectors(CONFIG, {"points": [1, 2], "vector": ["text"]})[
            0
        ],
    ),
]


@pytest.mark.parametrize(("grpc", "rest"), WRITES, ids=range(len(WRITES)))
def test_writes_decode_as_rest_parses(grpc: Any, rest: Any) -> None:
    assert _spec(grpc()) == _spec(rest())


def test_writes_fail_alike() -> None:
    cases = [
        (  # wrong dimension
            lambda: grpc_writes.upsert(
                pb.UpsertPoints(
                    collection_name="c", points=[_point(1, pb.Vectors(vector=_dense([1.0])))]
                ),
                CONFIG,
            ),
            lambda: points_parse.parse_upsert(CONFIG, {"points": [{"id": 1, "vector": [1.0]}]}),
        ),
        (  # a sparse vector without its name
            lambda: grpc_writes.upsert(
                pb.UpsertPoints(
                    collection_name="c",
                    points=[
                        _point(
                            1,
                            pb.Vectors(
                                vector=pb.Vector(sparse=pb.SparseVector(indices=[1], values=[1.0]))
                            ),
                        )
                    ],
                ),
                CONFIG,
            ),
            lambda: points_parse.parse_upsert(
                CONFIG, {"points": [{"id": 1, "vector": {"indices": [1], "values": [1.0]}}]}
            ),
        ),
    ]
    for grpc, rest in cases:
        assert _error(grpc) == _error(rest)
    cases = [
        (  # no vectors to update
            lambda: grpc_writes.update_vectors(
                pb.UpdatePointVectors(
                    collection_name="c",
                    points=[
                        pb.PointVectors(
                            id=pb.PointId(num=1), vectors=pb.Vectors(vectors=pb.NamedVectors())
                        )
                    ],
                ),
                CONFIG,
            ),
            lambda: points_parse.parse_update_vectors(
                CONFIG, {"points": [{"id": 1, "vector": {}}]}
            ),
        ),
        (  # an unknown vector to delete
            lambda: grpc_writes.delete_vectors(
                pb.DeletePointVectors(
                    collection_name="c",
                    points_selector=IDS,
                    vectors=pb.VectorsSelector(names=["x"]),
                ),
                CONFIG,
            ),
            lambda: points_parse.parse_delete_vectors(CONFIG, {"points": [1, 2], "vector": ["x"]}),
        ),
        (  # a payload key that is no path
            lambda: grpc_writes.set_payload(
                pb.SetPayloadPoints(collection_name="c", points_selector=IDS, key="a..b"), False
            ),
            lambda: points_parse.parse_set_payload(
                {"points": [1, 2], "payload": {}, "key": "a..b"}, False
            ),
        ),
    ]
    for grpc, rest in cases:
        assert _error(grpc) == _error(rest)


def test_point_vector_rules_name_the_point_over_both_transports() -> None:
    """REST's 422 names the point in brackets; over gRPC Qdrant's request validation refuses
    it first, "Validation error in body" with the gRPC field path (its basic gRPC test checks
    the words for a repeated sparse index)."""
    repeated = pb.Vector(sparse=pb.SparseVector(indices=[1, 1], values=[1.0, 2.0]))
    named = pb.Vectors(vectors=pb.NamedVectors(vectors={"text": repeated}))
    message = pb.UpsertPoints(collection_name="c", points=[_point(1, named)])
    body = {"points": [{"id": 1, "vector": {"text": {"indices": [1, 1], "values": [1.0, 2.0]}}}]}
    place = "points[0].vector.?.indices: Validation error: must be unique [{}]"
    assert _error(lambda: points_parse.parse_upsert(CONFIG, body)) == (
        f"Validation error in JSON body: [{place}]"
    )
    assert _error(lambda: grpc_writes.upsert(message, CONFIG)) == (
        "Validation error in body: [points[0].vectors.vectors_options.vectors.[].indices: "
        "Validation error: must be unique [{}]]"
    )


def test_deprecated_vector_forms_are_validated_as_qdrant_words_them() -> None:
    """`data` with `vectors_count` (a flat multivector) and `data` with `indices` are checked
    by Qdrant's `Vector::validate` before conversion (its basic multivector gRPC test checks
    the words); Tessera answered its own conversion error ("Unable to convert ...")."""

    def grpc(v: pb.Vector, named: bool = False) -> str:
        vectors = pb.Vectors(vectors=pb.NamedVectors(vectors={"m": v})) if named else None
        vectors = vectors or pb.Vectors(vector=v)
        message = pb.UpsertPoints(collection_name="c", points=[_point(1, vectors)])
        return _error(lambda: grpc_writes.upsert(message, CONFIG))

    where = "Validation error in body: [points[0].vectors.vectors_options."
    assert grpc(pb.Vector(data=[0.5] * 7, vectors_count=2), named=True) == (
        f"{where}vectors.[].data: Validation error: invalid dense vector length for vectors "
        'count [{"vector_len": Number(7), "vectors_count": Number(2)}]]'
    )
    assert grpc(pb.Vector(data=[0.5] * 8, vectors_count=0)) == (
        f"{where}data: vectors count must be greater than 0]"
    )
    both = pb.Vector(data=[0.5], indices=pb.SparseIndices(data=[1]), vectors_count=1)
    assert grpc(both) == f"{where}indices: `indices` and `vectors_count` cannot be both specified]"


def test_point_vectors_rules_as_qdrant_words_them() -> None:
    """Qdrant 1.19's texts for a point's vectors: the field is required, and the validator
    names the point (and `?` for a named vector's name)."""

    def rest(point: dict[str, Any], config: Any = CONFIG) -> str:
        return _error(lambda: points_parse.parse_upsert(config, {"points": [point]}))

    assert rest({"id": 1}) == "Format error in JSON body: missing field `vector`"
    assert rest({"id": 1, "vector": []}) == (
        "Validation error in JSON body: [points[0].vector.vector: dense vector must not be empty]"
    )
    duplicate = {"text": {"indices": [1, 1], "values": [0.5, 0.5]}}
    assert rest({"id": 1, "vector": duplicate}) == (
        "Validation error in JSON body: [points[0].vector.?.indices: Validation error: must be "
        "unique [{}]]"
    )
    uneven = {"text": {"indices": [1, 2], "values": [0.5]}}
    assert rest({"id": 1, "vector": uneven}) == (
        "Validation error in JSON body: [points[0].vector.?.values: Validation error: must be "
        "the same length as indices [{}]]"
    )
    assert rest({"id": 1, "vector": {"multi": [[]]}}, MULTI) == (
        "Validation error in JSON body: [points[0].vector.?.data: all vectors must be non-empty]"
    )

    def grpc(point: pb.PointStruct) -> str:
        return _error(
            lambda: grpc_writes.upsert(pb.UpsertPoints(collection_name="c", points=[point]), CONFIG)
        )

    assert grpc(_point(1)) == "Expected some vectors"
    empty = pb.Vectors(vector=pb.Vector(dense=pb.DenseVector(data=[])))
    assert grpc(_point(1, empty)) == (
        "Wrong input: points[0].vector.vector: dense vector must not be empty"
    )


def test_vector_rules_come_before_names() -> None:
    """Qdrant validates a body before it looks at the collection: an uneven sparse vector
    under an unknown name is a validation error, not an unknown name."""
    uneven = {"indices": [0, 1], "values": [0.0]}
    update = {"points": [{"id": 1, "vector": {"a": uneven, "b": uneven}}]}
    assert _error(lambda: points_parse.parse_update_vectors(CONFIG, update)).startswith(
        "Validation error in JSON body: [points[0].vector.?.values:"
    )
    batch = {"batch": {"ids": [1, 2], "vectors": {"a": [uneven, uneven]}}}
    assert _error(lambda: points_parse.parse_upsert(CONFIG, batch)).startswith(
        "Validation error in JSON body:"
    )
    rows = {"points": [{"id": 1, "vector": {"multi": [[0.1, 0.2], [0.1]]}}]}
    assert _error(lambda: points_parse.parse_upsert(MULTI, rows)) == (
        "Validation error in JSON body: [points[0].vector.?.data: all vectors must have the "
        "same dimension, found vector with dimension 1]"
    )


def test_sparse_search_of_uneven_lengths_in_qdrant_words() -> None:
    """`vector` with `sparse_indices` of another length: Qdrant's conversion refuses it as
    "Sparse indices does not match sparse vector conditions" (its basic sparse gRPC test)."""
    request = pb.SearchPoints(
        collection_name="c",
        vector=[0.2, 0.1],
        sparse_indices=pb.SparseIndices(data=[0, 1, 2, 3]),
        vector_name="text",
        limit=3,
    )
    assert _error(lambda: grpc_legacy.search(request, CONFIG)) == (
        "Sparse indices does not match sparse vector conditions: values: Validation error: must "
        "be the same length as indices [{}]"
    )


@pytest.mark.parametrize(
    ("batch", "field", "inner"),
    [
        (pb.SearchBatchPoints, "search_points", pb.SearchPoints),
        (pb.RecommendBatchPoints, "recommend_points", pb.RecommendPoints),
        (pb.DiscoverBatchPoints, "discover_points", pb.DiscoverPoints),
        (pb.QueryBatchPoints, "query_points", pb.QueryPoints),
    ],
)
def test_a_batch_validates_its_requests(batch: Any, field: str, inner: Any) -> None:
    """Qdrant validates each request of a batch (nested rules): an empty collection name
    inside is refused; Tessera answered as if each named the batch's collection."""
    good, bad = inner(collection_name="c"), inner(collection_name="", timeout=0)
    request = batch(collection_name="c", **{field: [good, bad]})
    assert _error(lambda: grpc_validate.validate(request)) == (
        f'Validation error in body: [{field}[1].collection_name: value "" invalid, must be '
        f"from 1 to 255 characters; {field}[1].timeout: value 0 invalid, must be 1 or larger]"
    )
    grpc_validate.validate(batch(collection_name="c", **{field: [good, good]}))
    slashed = batch(collection_name="c", **{field: [inner(collection_name="a/" + "b" * 300)]})
    assert _error(lambda: grpc_validate.validate(slashed)).endswith(
        f"must be from 1 to 255 characters; {field}[0].collection_name: collection name cannot "
        'contain "/" char]'
    )
