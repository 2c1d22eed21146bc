"""The peer-to-peer form of typed values (tessera.collection.wire): every value the cluster
sends between peers comes back equal, and a message naming anything but a registered class
is refused, never built."""

from __future__ import annotations

import uuid

import numpy as np
import orjson
import pytest

from tessera.collection import wire
from tessera.collection.values import NOTHING, Points, ScrollPage, Selection
from tessera.collection.writes import DenseColumn, Matching, ObjectColumn, WriteSpec
from tessera.errors import BadRequest
from tessera.query import query_model as qm
from tessera.query.filter_parse import parse_filter
from tessera.query.formula import parse_formula


def test_filters_plans_and_answers_round_trip() -> None:
    filt = parse_filter(
        {
            "must": [
                {"key": "city", "match": {"any": ["a", "b"]}},
                {"has_id": [1, "5f6c1a1e-5b1c-4a3e-9d3b-2c1e0f9a8b7c"]},
                {"key": "n", "range": {"gte": 1.5}},
                {
                    "nested": {
                        "key": "xs",
                        "filter": {"must": [{"key": "y", "match": {"value": 2}}]},
                    }
                },
            ],
            "min_should": {"conditions": [{"key": "t", "match": {"text": "hi"}}], "min_count": 1},
        }
    )
    assert filt is not None
    assert wire.decode(wire.encode(filt)) == filt
    plan = qm.Plan(
        qm.QueryNode(
            query=qm.Fusion("rrf", k=3),
            prefetch=(
                qm.QueryNode(query=qm.Nearest(qm.PointInput(uuid.uuid4())), filter=filt),
                qm.QueryNode(query=qm.OrderBy("n", descending=True, start_from=2.0)),
            ),
            limit=7,
        ),
        offset=2,
    )
    assert wire.decode(wire.encode(plan)) == plan
    vector = np.arange(8, dtype=np.float32)
    back = wire.decode(wire.encode(qm.Nearest(vector)))
    assert back.vector.dtype == np.float32 and np.array_equal(back.vector, vector)
    formula = parse_formula({"sum": ["$score", {"mult": [2, "price"]}]})
    assert wire.decode(wire.encode(formula)) == formula
    page = ScrollPage(Points([1, uuid.uuid4()], [{"$t": "not a tag"}, {}], None), 7)
    assert wire.decode(wire.encode(page)) == page
    assert wire.decode(wire.encode(NOTHING)) == NOTHING
    assert isinstance(wire.decode(wire.encode(NOTHING)), Selection)
    spec = WriteSpec(
        "upsert",
        [1, 2],
        (
            {
                "": DenseColumn(np.array([True, False]), np.ones((2, 3), np.float32)),
                "s": ObjectColumn([(np.array([1], np.int32), np.array([0.5], np.float32)), None]),
            },
            [{"a": 1}, None],
            None,
            "upsert",
        ),
    )
    again = wire.decode(wire.encode(spec))
    assert again.kind == "upsert" and again.points == [1, 2]
    assert np.array_equal(again.args[0][""].values, spec.args[0][""].values)
    assert wire.decode(wire.encode(WriteSpec("delete", Matching(filt)))) == WriteSpec(
        "delete", Matching(filt)
    )
    # JSON has no inf / nan: a bound or a score that is one comes back as one.
    bounds = wire.decode(wire.encode([float("inf"), np.float32("-inf"), 1.5]))
    assert bounds[:2] == [float("inf"), float("-inf")] and bounds[2] == 1.5
    assert np.isnan(wire.decode(wire.encode(float("nan"))))


@pytest.mark.parametrize(
    "message",
    [
        {"$t": "os.system", "v": ["echo"]},
        {"$t": "Popen", "v": []},
        {"$t": "nd", "dtype": "|O", "shape": [1], "b": ""},
    ],
)
def test_unknown_or_unsafe_tags_are_refused(message: object) -> None:
    with pytest.raises(BadRequest):
        wire.decode(orjson.dumps(message))
