"""A formula variable with a payload index is read as the index holds it (Qdrant Edge).

Qdrant reads a variable from the field's payload index when there is one, and an index
holds only the values of its type: a `null`, a string under a float index or an
unparsable date under a datetime index is missing there, so the formula's `defaults`
apply, where read from the payload (no index) the same query fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.conftest import ServerProcess

edge = pytest.importorskip("qdrant_edge")

PAYLOADS = {
    1: {"x": 2, "n": None, "s": "abc", "dt": "2024-01-01T00:00:00Z", "w": 3.0},
    2: {"x": None, "n": [], "s": 3, "dt": "garbage", "w": 3},
}
VECTORS = {1: [1.0, 0.0], 2: [0.5, 0.0]}
INDEXES = {"x": "Integer", "n": "Float", "s": "Float", "dt": "Datetime", "w": "Integer"}
DEFAULTS = {"x": 7, "n": 1.5, "s": 9, "dt": "2025-01-01T00:00:00Z", "w": -999}
FORMULAS: dict[str, tuple[Any, Any]] = {
    "integer": ("x", "x"),
    "integer, a whole float": ("w", "w"),  # an integer index holds 3.0 as 3
    "float, null and empty": ("n", "n"),
    "float, a string": ("s", "s"),
    "sum": (models.SumExpression(sum=["x", "s"]), {"sum": ["x", "s"]}),
    "datetime": (models.DatetimeKeyExpression(datetime_key="dt"), {"datetime_key": "dt"}),
}


@pytest.fixture(params=[False, True], ids=["no index", "indexed"])
def pair(request: Any, server: ServerProcess, tmp_path: Path) -> Any:
    indexed: bool = request.param
    qc = QdrantClient(url=server.url, timeout=30)
    name = f"formula_indexed_{int(indexed)}"
    if qc.collection_exists(name):
        qc.delete_collection(name)
    qc.create_collection(name, models.VectorParams(size=2, distance=models.Distance.DOT))
    qc.upsert(
        name, [models.PointStruct(id=i, vector=VECTORS[i], payload=p) for i, p in PAYLOADS.items()]
    )
    config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=2, distance=edge.Distance.Dot))
    shard = edge.EdgeShard.create(str(tmp_path / "edge"), config)
    points = [edge.Point(i, VECTORS[i], p) for i, p in PAYLOADS.items()]
    shard.update(edge.UpdateOperation.upsert_points(points))
    if indexed:
        for key, kind in INDEXES.items():
            qc.create_payload_index(name, key, models.PayloadSchemaType(kind.lower()), wait=True)
            schema = getattr(edge.PayloadSchemaType, kind)
            shard.update(edge.UpdateOperation.create_field_index(key, schema))
    yield qc, name, shard
    shard.close()
    qc.delete_collection(name)
    qc.close()


def ours(qc: QdrantClient, name: str, formula: Any) -> list[tuple[int, float]] | str:
    try:
        found = qc.query_points(
            name,
            prefetch=[models.Prefetch(query=[1.0, 0.0], limit=10)],
            query=models.FormulaQuery(formula=formula, defaults=DEFAULTS),
            limit=10,
        )
    except UnexpectedResponse as exc:
        assert exc.status_code == 400
        return "error"
    return sorted((int(p.id), round(p.score, 3)) for p in found.points)  # type: ignore[arg-type]


def theirs(shard: Any, formula: Any) -> list[tuple[int, float]] | str:
    expression = edge_expression(formula)
    request = edge.QueryRequest(
        limit=10,
        prefetches=[edge.Prefetch(limit=10, query=edge.Query.Nearest([1.0, 0.0]))],
        query=edge.Formula(expression, defaults=DEFAULTS),
    )
    try:
        return sorted((p.id, round(p.score, 3)) for p in shard.query(request))
    except Exception:
        return "error"


def edge_expression(formula: Any) -> Any:
    made = edge.Expression
    if isinstance(formula, str):
        return made.Variable(formula)
    if "sum" in formula:
        return made.Sum([edge_expression(f) for f in formula["sum"]])
    return made.DatetimeKey(formula["datetime_key"])


@pytest.mark.parametrize("case", list(FORMULAS), ids=list(FORMULAS))
def test_formula_variables_read_as_qdrant_reads_them(pair: Any, case: str) -> None:
    qc, name, shard = pair
    ours_formula, edge_formula = FORMULAS[case]
    assert ours(qc, name, ours_formula) == theirs(shard, edge_formula)
