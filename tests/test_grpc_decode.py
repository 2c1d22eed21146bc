"""The gRPC decoders build the same typed requests as the REST parsers, without a REST body
in between: each filter, selector and read request below goes both ways (the official
client's own REST -> gRPC conversion makes the protobuf) and must give equal values, or
the same error."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import grpc as pb
from qdrant_client import models
from qdrant_client.conversions.conversion import RestToGrpc

from tessera.api import facet, grpc_filter, grpc_reads, points_read
from tessera.errors import BadRequest
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
