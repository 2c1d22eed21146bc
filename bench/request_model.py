"""Per-request cost of decoding and validating a request body: today's path against typed models.

Issue: one typed request model for REST, gRPC and the engine. The request path is hot, so the
mechanism is chosen on numbers. For three bodies - a query (128 floats, a filter, limit 10), a
100-point upsert (128 floats and a small payload each) and a scroll with a filter - this times,
in one process, one run:

- tessera: `orjson.loads` + Tessera's hand-written parsers (what the REST path does today,
  without the HTTP layer and without executing);
- msgspec: `msgspec.json.decode(body, type=Struct)` into Structs that mirror the request
  (validation in C), then the numpy conversion the engine needs;
- pydantic: `Model.model_validate_json(body)` (pydantic v2, validation in Rust), then the same
  numpy conversion.

The typed models cover the fields the bodies use (a subset of Qdrant's schema: enough to
measure the mechanism, not a complete model). Run: `.venv/bin/python bench/request_model.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import orjson
import pydantic

from tessera.api.points_parse import parse_upsert
from tessera.api.query_parse import parse_query_request
from tessera.collection_config import parse_create_collection
from tessera.query.filter_parse import parse_filter

DIM = 128
RNG = np.random.default_rng(0)

CONFIG = parse_create_collection({"vectors": {"size": DIM, "distance": "Cosine"}})
FILTER = {
    "must": [
        {"key": "city", "match": {"value": "London"}},
        {"key": "price", "range": {"gte": 10, "lt": 100}},
    ],
    "must_not": [{"key": "sold", "match": {"value": True}}],
}
QUERY = orjson.dumps(
    {
        "query": RNG.random(DIM).tolist(),
        "filter": FILTER,
        "limit": 10,
        "with_payload": True,
        "params": {"hnsw_ef": 64},
    }
)
UPSERT = orjson.dumps(
    {
        "points": [
            {
                "id": i,
                "vector": RNG.random(DIM).tolist(),
                "payload": {"city": "London", "price": i, "tags": ["a", "b"]},
            }
            for i in range(100)
        ]
    }
)
SCROLL = orjson.dumps({"filter": FILTER, "limit": 100, "with_payload": True})


# ---- msgspec ------------------------------------------------------------------------------


class MsMatch(msgspec.Struct, forbid_unknown_fields=True):
    value: str | int | bool


class MsRange(msgspec.Struct, forbid_unknown_fields=True):
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


class MsCondition(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    match: MsMatch | None = None
    range: MsRange | None = None


class MsFilter(msgspec.Struct, forbid_unknown_fields=True):
    must: list[MsCondition] | None = None
    should: list[MsCondition] | None = None
    must_not: list[MsCondition] | None = None


class MsParams(msgspec.Struct, forbid_unknown_fields=True):
    hnsw_ef: int | None = None
    exact: bool = False


class MsQuery(msgspec.Struct, forbid_unknown_fields=True):
    query: list[float]
    filter: MsFilter | None = None
    limit: int = 10
    with_payload: bool = False
    params: MsParams | None = None


class MsPoint(msgspec.Struct, forbid_unknown_fields=True):
    id: int | str
    vector: list[float]
    payload: dict[str, Any] | None = None


class MsUpsert(msgspec.Struct, forbid_unknown_fields=True):
    points: list[MsPoint]


class MsScroll(msgspec.Struct, forbid_unknown_fields=True):
    filter: MsFilter | None = None
    limit: int = 10
    with_payload: bool = True


_MS_QUERY = msgspec.json.Decoder(MsQuery)
_MS_UPSERT = msgspec.json.Decoder(MsUpsert)
_MS_SCROLL = msgspec.json.Decoder(MsScroll)


def ms_query(body: bytes) -> Any:
    req = _MS_QUERY.decode(body)
    return np.asarray(req.query, dtype=np.float32), req


def ms_upsert(body: bytes) -> Any:
    req = _MS_UPSERT.decode(body)
    vectors = np.asarray([p.vector for p in req.points], dtype=np.float32)
    return vectors, [p.id for p in req.points], [p.payload for p in req.points]


def ms_scroll(body: bytes) -> Any:
    return _MS_SCROLL.decode(body)


# ---- pydantic -----------------------------------------------------------------------------

_STRICT = pydantic.ConfigDict(extra="forbid")


class PdMatch(pydantic.BaseModel):
    model_config = _STRICT
    value: str | int | bool


class PdRange(pydantic.BaseModel):
    model_config = _STRICT
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


class PdCondition(pydantic.BaseModel):
    model_config = _STRICT
    key: str
    match: PdMatch | None = None
    range: PdRange | None = None


class PdFilter(pydantic.BaseModel):
    model_config = _STRICT
    must: list[PdCondition] | None = None
    should: list[PdCondition] | None = None
    must_not: list[PdCondition] | None = None


class PdParams(pydantic.BaseModel):
    model_config = _STRICT
    hnsw_ef: int | None = None
    exact: bool = False


class PdQuery(pydantic.BaseModel):
    model_config = _STRICT
    query: list[float]
    filter: PdFilter | None = None
    limit: int = 10
    with_payload: bool = False
    params: PdParams | None = None


class PdPoint(pydantic.BaseModel):
    model_config = _STRICT
    id: int | str
    vector: list[float]
    payload: dict[str, Any] | None = None


class PdUpsert(pydantic.BaseModel):
    model_config = _STRICT
    points: list[PdPoint]


class PdScroll(pydantic.BaseModel):
    model_config = _STRICT
    filter: PdFilter | None = None
    limit: int = 10
    with_payload: bool = True


def pd_query(body: bytes) -> Any:
    req = PdQuery.model_validate_json(body)
    return np.asarray(req.query, dtype=np.float32), req


def pd_upsert(body: bytes) -> Any:
    req = PdUpsert.model_validate_json(body)
    vectors = np.asarray([p.vector for p in req.points], dtype=np.float32)
    return vectors, [p.id for p in req.points], [p.payload for p in req.points]


def pd_scroll(body: bytes) -> Any:
    return PdScroll.model_validate_json(body)


# ---- today's path -------------------------------------------------------------------------


def ts_query(body: bytes) -> Any:
    return parse_query_request(orjson.loads(body), CONFIG)


def ts_upsert(body: bytes) -> Any:
    return parse_upsert(CONFIG, orjson.loads(body))


def ts_scroll(body: bytes) -> Any:
    raw = orjson.loads(body)
    return parse_filter(raw.get("filter")), raw.get("limit"), raw.get("with_payload")


def per_call_us(fn: Callable[[bytes], Any], body: bytes, rounds: int = 5) -> float:
    n = max(200, int(20000 / max(1, len(body) // 1000)))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn(body)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def main() -> None:
    cases = [
        ("query (128 floats, filter)", QUERY, ts_query, ms_query, pd_query),
        ("upsert 100 x 128 + payload", UPSERT, ts_upsert, ms_upsert, pd_upsert),
        ("scroll (filter, limit 100)", SCROLL, ts_scroll, ms_scroll, pd_scroll),
    ]
    print(f"{'body':30} {'bytes':>7} {'tessera us':>11} {'msgspec us':>11} {'pydantic us':>12}")
    for name, body, ts, ms, pd in cases:
        t, m, p = (per_call_us(f, body) for f in (ts, ms, pd))
        print(
            f"{name:30} {len(body):7d} {t:11.1f} {m:8.1f} ({t / m:4.1f}x) {p:8.1f} ({t / p:4.1f}x)"
        )
    print("(x: how many times faster than today's path; best of 5, one process, one run)")


if __name__ == "__main__":
    main()
