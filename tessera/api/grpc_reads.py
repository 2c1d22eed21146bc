"""Qdrant's gRPC point reads -> the typed requests of `collection.requests`, straight from
the protobuf (no REST body in between): Get, Scroll, Count, Facet and the distance matrix,
plus the selectors and `OrderBy` that the query decoders share.

Defaults and rules are REST's (the same functions check them): an unset `limit` is 10, an
unset `with_payload` of a scroll is all of it, and a limit of 0 is refused with the text
`grpc_errors` words for gRPC. Get differs on purpose: Qdrant's retrieve over gRPC treats an
unset `with_payload` as false (REST documents true).
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as pb

from tessera.api import facet as facets
from tessera.api.grpc_convert import opt
from tessera.api.grpc_filter import opt_filter, point_id, timestamp_micros
from tessera.api.points_parse import body_point_id
from tessera.api.points_read import parse_limit, positive_limit
from tessera.api.query_parse import positive_int
from tessera.api.query_routes import matrix_sample
from tessera.collection import requests
from tessera.collection.values import Lookup, PayloadSelector, Selection, VectorSelector
from tessera.errors import BadRequest
from tessera.query import query_model as qm
from tessera.query.filter_parse import parse_datetime_value
from tessera.query.payload_path import check_paths, parse_path


def payload_selector(message: Any, default: bool, name: str = "with_payload") -> PayloadSelector:
    if not message.HasField(name):
        return PayloadSelector(default)
    selector: pb.WithPayloadSelector = getattr(message, name)
    kind = selector.WhichOneof("selector_options")
    if kind == "enable":
        return PayloadSelector(bool(selector.enable))
    if kind == "include":
        return PayloadSelector(True, include=check_paths(list(selector.include.fields)))
    if kind == "exclude":
        return PayloadSelector(True, exclude=check_paths(list(selector.exclude.fields)))
    raise BadRequest("No PayloadSelector")  # set, but none of its options: Qdrant's words


def vector_selector(message: Any, name: str = "with_vectors") -> VectorSelector:
    if not message.HasField(name):
        return VectorSelector(False)
    selector: pb.WithVectorsSelector = getattr(message, name)
    kind = selector.WhichOneof("selector_options")
    if kind == "enable":
        return VectorSelector(bool(selector.enable))
    if kind == "include":
        return VectorSelector(True, list(selector.include.names))
    return VectorSelector(False)


def selection(message: Any, payload_default: bool) -> Selection:
    return Selection(payload_selector(message, payload_default), vector_selector(message))


def with_lookup(req: Any) -> Lookup | None:
    """`with_lookup` of a groups request: payload by default, no vectors."""
    if not req.HasField("with_lookup"):
        return None
    wl = req.with_lookup
    return Lookup(wl.collection, Selection(payload_selector(wl, True), vector_selector(wl)))


def order_by(o: pb.OrderBy) -> qm.OrderBy:
    start: float | None = None
    if o.HasField("start_from"):
        kind = o.start_from.WhichOneof("value")
        if kind == "float":
            start = float(o.start_from.float)
        elif kind == "integer":
            start = o.start_from.integer  # (whole, as over REST)
        elif kind == "timestamp":
            start = timestamp_micros(o.start_from.timestamp)
        elif kind == "datetime":
            start = parse_datetime_value(o.start_from.datetime)
    descending = o.HasField("direction") and o.direction == pb.Direction.Desc
    return qm.OrderBy(parse_path(o.key).text, descending, start)


def retrieve(req: pb.GetPoints) -> requests.Retrieve:
    ids = tuple(body_point_id(point_id(p)) for p in req.ids)
    return requests.Retrieve(ids, selection(req, payload_default=False))


def scroll(req: pb.ScrollPoints) -> requests.Scroll:
    return requests.Scroll(
        filter=opt_filter(req),
        offset=body_point_id(point_id(req.offset)) if req.HasField("offset") else None,
        limit=positive_limit(opt(req, "limit"), 10),
        select=selection(req, payload_default=True),
        order_by=order_by(req.order_by) if req.HasField("order_by") else None,
    )


def count(req: pb.CountPoints) -> requests.Count:
    exact = opt(req, "exact")
    return requests.Count(opt_filter(req), True if exact is None else bool(exact))


def facet(req: pb.FacetCounts) -> requests.Facet:
    given = opt(req, "limit")
    limit = facets.facet_limit(given)
    filt = opt_filter(req)
    return requests.Facet(
        parse_path(req.key).text,
        filt,
        limit,
        bool(opt(req, "exact")),
        limit if given is not None else None,
    )


def distance_matrix(req: pb.SearchMatrixPoints) -> requests.DistanceMatrix:
    filt = opt_filter(req)
    sample = matrix_sample(parse_limit(opt(req, "sample"), 10, "sample"))
    limit = positive_int(opt(req, "limit"), 3, "limit")
    return requests.DistanceMatrix(opt(req, "using") or "", filt, sample, limit)
