"""Qdrant's search documentation (search, explore, hybrid queries, search relevance), run
against the server through qdrant-client over REST and gRPC and through plain HTTP.

Expected values come from the behaviour of Qdrant's server (lib/segment, lib/collection),
which is what the documentation describes; where qdrant-client's local mode computes
something else, the server wins and the test says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import ServerProcess, make_grpc_client, module_server

pytestmark = pytest.mark.server_only(reason="REST, gRPC and plain HTTP against one server")

DIM = 4
N_POINTS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-docs-search", grpc=True)


@pytest.fixture(scope="module")
def rest(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = QdrantClient(url=server.url, prefer_grpc=False, timeout=30)
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def grpc_client(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = make_grpc_client(server)
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as hc:
        yield hc


@pytest.fixture(scope="module")
def clients(rest: QdrantClient, grpc_client: QdrantClient) -> dict[str, QdrantClient]:
    return {"rest": rest, "grpc": grpc_client}


@pytest.fixture
def names(rest: QdrantClient) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(f"docs_{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for name in made:
        rest.delete_collection(name)


def dense_collection(
    rest: QdrantClient, name: str, seed: int, distance: models.Distance = models.Distance.DOT
) -> npt.NDArray[np.float32]:
    """N_POINTS points with ids 1..N_POINTS; the stored vectors (row i-1 is point i)."""
    vectors = np.random.default_rng(seed).normal(size=(N_POINTS, DIM)).astype(np.float32)
    rest.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=distance))
    rest.upsert(
        name,
        [models.PointStruct(id=i + 1, vector=v.tolist()) for i, v in enumerate(vectors)],
        wait=True,
    )
    return vectors


# --------------------------------------------------------------------------- RRF weights


def test_rrf_weights_must_pair_with_prefetches(
    clients: dict[str, QdrantClient], http: httpx.Client, names: Callable[[], str]
) -> None:
    """Weighted RRF (hybrid queries): "The number of weights must match the number of
    prefetches". Qdrant's query planner refuses a mismatch with a validation error, answered
    as bad input: 400 "Wrong input: Validation failed: RRF weights length (2) does not match
    number of prefetches (1)", INVALID_ARGUMENT over gRPC; nested prefetches alike."""
    name = names()
    dense_collection(clients["rest"], name, seed=13)
    text = (
        "Wrong input: Validation failed: RRF weights length (2) does not match number of "
        "prefetches (1)"
    )
    one = {"query": [0.1, 0.2, 0.3, 0.4], "limit": 5}
    for body in (
        {"prefetch": [one], "query": {"rrf": {"weights": [3.0, 1.0]}}},
        {
            "prefetch": {"prefetch": one, "query": {"rrf": {"weights": [3.0, 1.0]}}},
            "query": one["query"],
        },
    ):
        answer = http.post(f"/collections/{name}/points/query", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["status"]["error"] == text

    prefetch = models.Prefetch(query=[0.1, 0.2, 0.3, 0.4], limit=5)
    query = models.RrfQuery(rrf=models.Rrf(weights=[3.0, 1.0]))
    with pytest.raises(Exception) as caught:
        clients["grpc"].query_points(name, prefetch=[prefetch], query=query)
    assert "INVALID_ARGUMENT" in str(caught.value) and text in str(caught.value)

    weighted = (
        clients["rest"]
        .query_points(name, prefetch=[prefetch, prefetch], query=query, limit=3)
        .points
    )
    assert len(weighted) == 3  # as many weights as prefetches: fine


# --------------------------------------------------------------------------- formula errors


@pytest.mark.parametrize(
    "formula, shown",
    [
        ({"div": {"left": 1, "right": 0}}, "1/0 = inf"),
        ({"ln": -1}, "ln(-1) = NaN"),
        ({"log10": 0}, "log10(0) = -inf"),
        ({"sqrt": -4}, "√-4 = NaN"),
        ({"exp": 1000}, "exp(1000) = inf"),
        ({"pow": {"base": 0, "exponent": -1}}, "0^-1 = inf"),
        ({"pow": {"base": -8, "exponent": 0.5}}, "-8^0.5 = NaN"),
        (
            {"mult": [1e39, 1]},
            "1000000000000000000000000000000000000000 as f32 = inf",
        ),
    ],
)
def test_formula_non_finite_errors_as_qdrant_prints_them(
    clients: dict[str, QdrantClient],
    http: httpx.Client,
    names: Callable[[], str],
    formula: dict[str, object],
    shown: str,
) -> None:
    """Search relevance: a formula whose value is not a finite number fails the request.
    Qdrant's server (formula_scorer.rs) names the expression with its result, numbers as
    Rust prints an f64 (no ".0", no exponent, inf / -inf / NaN): 400 "Wrong input: The
    expression 1/0 = inf produced a non-finite number", INVALID_ARGUMENT over gRPC."""
    name = names()
    dense_collection(clients["rest"], name, seed=14)
    text = f"Wrong input: The expression {shown} produced a non-finite number"
    body = {"prefetch": {"query": [0.1, 0.2, 0.3, 0.4], "limit": 3}, "query": {"formula": formula}}
    answer = http.post(f"/collections/{name}/points/query", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"]["error"] == text
    with pytest.raises(Exception) as caught:
        clients["grpc"].query_points(
            name,
            prefetch=models.Prefetch(query=[0.1, 0.2, 0.3, 0.4], limit=3),
            query=models.FormulaQuery(formula=formula),
        )
    if "as f32" in shown:  # gRPC carries constants as f32: 1e39 arrives as inf already
        text = "Wrong input: The expression inf as f32 = inf produced a non-finite number"
    assert "INVALID_ARGUMENT" in str(caught.value) and text in str(caught.value)


@pytest.mark.parametrize(
    "query, what",
    [
        ({"fusion": "rrf"}, "Fusion"),
        ({"rrf": {"k": 5}}, "Fusion"),
        ({"formula": "$score"}, "Formula"),
    ],
)
def test_fusion_and_formula_need_prefetches(
    clients: dict[str, QdrantClient],
    http: httpx.Client,
    names: Callable[[], str],
    query: dict[str, object],
    what: str,
) -> None:
    """Hybrid queries and formulas combine or rescore prefetched points; without a prefetch
    Qdrant's query planner (lib/shard/src/query/planned_query.rs) answers with a validation
    error: 400 "Wrong input: Validation failed: cannot apply Fusion without prefetches",
    at the root and in a nested prefetch alike; INVALID_ARGUMENT over gRPC."""
    name = names()
    dense_collection(clients["rest"], name, seed=15)
    text = f"Wrong input: Validation failed: cannot apply {what} without prefetches"
    for body in ({"query": query}, {"prefetch": {"query": query}, "query": [0.1, 0.2, 0.3, 0.4]}):
        answer = http.post(f"/collections/{name}/points/query", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["status"]["error"] == text
    typed = (
        models.FormulaQuery(formula="$score")
        if what == "Formula"
        else models.FusionQuery(fusion=models.Fusion.RRF)
    )
    with pytest.raises(Exception) as caught:
        clients["grpc"].query_points(name, query=typed)
    assert "INVALID_ARGUMENT" in str(caught.value) and text in str(caught.value)


def nested(levels: int) -> dict[str, object]:
    """A query whose prefetches nest `levels` deep (0: no prefetch)."""
    node: dict[str, object] = {"query": [0.1, 0.2, 0.3, 0.4], "limit": 5}
    for _ in range(levels):
        node = {"prefetch": node, "query": [0.1, 0.2, 0.3, 0.4], "limit": 5}
    return node


def test_prefetches_nest_at_most_64_deep(
    clients: dict[str, QdrantClient], http: httpx.Client, names: Callable[[], str]
) -> None:
    """Multi-stage queries: "prefetches can have prefetches themselves", down to Qdrant's
    planner limit of 64 levels; one more is a validation error (400 "Wrong input:
    Validation failed: prefetches depth 65 exceeds max depth 64"). The collection's own
    rules on every node come first: a nested prefetch without a query is reported before
    RRF weights that do not match at the root."""
    name = names()
    dense_collection(clients["rest"], name, seed=16)
    url = f"/collections/{name}/points/query"
    assert http.post(url, json=nested(64)).status_code == 200
    answer = http.post(url, json=nested(65))
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"]["error"] == (
        "Wrong input: Validation failed: prefetches depth 65 exceeds max depth 64"
    )
    both = {
        "prefetch": [{"prefetch": {"query": [0.1, 0.2, 0.3, 0.4]}}],
        "query": {"rrf": {"weights": [1.0, 2.0]}},
    }
    answer = http.post(url, json=both)
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"]["error"] == (
        "Bad request: A query is needed to merge the prefetches. "
        "Can't have prefetches without defining a query."
    )


@pytest.mark.parametrize(
    "decay, shown",
    [
        (
            {"lin_decay": {"x": 1, "midpoint": 1.5}},
            "Decay midpoint should be between 0.0 and 1.0 (exclusive), got 1.5.",
        ),
        (
            {"lin_decay": {"x": 1, "midpoint": 0}},
            "Decay midpoint should be between 0.0 and 1.0 (exclusive), got 0.",
        ),
        (
            {"lin_decay": {"x": 1, "midpoint": 1}},
            "Decay midpoint should be between 0.0 and 1.0 (exclusive), got 1.",
        ),
        (
            {"exp_decay": {"x": 1, "midpoint": 0.7, "scale": 0}},
            "Decay scale should be non-zero positive, got 0.",
        ),
        (
            {"gauss_decay": {"x": 1, "midpoint": -0.7}},
            "Decay midpoint should be between 0.0 and 1.0 (exclusive), got -0.699999988079071.",
        ),
        (
            {"gauss_decay": {"x": 1, "scale": -2.5}},
            "Decay scale should be non-zero positive, got -2.5.",
        ),
    ],
)
def test_decay_parameters_refused_as_qdrant(
    clients: dict[str, QdrantClient],
    http: httpx.Client,
    names: Callable[[], str],
    decay: dict[str, object],
    shown: str,
) -> None:
    """Search relevance, decay functions: `midpoint` "must be in the range (0.0, 1.0),
    exclusive" (linear decay too) and `scale` "must be a non-zero positive number". Qdrant
    (parsed_formula.rs) refuses others with a validation error answered as bad input, the
    f32 parameter shown widened to f64: 400 "Wrong input: Validation failed: Decay midpoint
    should be between 0.0 and 1.0 (exclusive), got 1.5."; INVALID_ARGUMENT over gRPC."""
    name = names()
    dense_collection(clients["rest"], name, seed=17)
    text = f"Wrong input: Validation failed: {shown}"
    body = {"prefetch": {"query": [0.1, 0.2, 0.3, 0.4], "limit": 3}, "query": {"formula": decay}}
    answer = http.post(f"/collections/{name}/points/query", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"]["error"] == text
    with pytest.raises(Exception) as caught:
        clients["grpc"].query_points(
            name,
            prefetch=models.Prefetch(query=[0.1, 0.2, 0.3, 0.4], limit=3),
            query=models.FormulaQuery(formula=decay),
        )
    assert "INVALID_ARGUMENT" in str(caught.value) and text in str(caught.value)


@pytest.mark.parametrize(
    "formula, defaults, shown",
    [
        ("$scores", {}, "$scores: Invalid reserved word: $scores"),
        ("$score[x]", {}, "$score[x]: Invalid reserved variable: $score[x]"),
        ({"sum": ["$score", "a..b"]}, {}, "a..b: Invalid payload variable: a..b"),
        ("$score", {"$bad": 1.0}, "$bad: Invalid reserved word: $bad"),
    ],
)
def test_formula_variables_refused_as_qdrant(
    clients: dict[str, QdrantClient],
    http: httpx.Client,
    names: Callable[[], str],
    formula: object,
    defaults: dict[str, float],
    shown: str,
) -> None:
    """Search relevance: "$score", "$score[i]" and payload keys are the formula's variables
    (in expressions and in `defaults`). Anything else Qdrant refuses while converting the
    formula: 400 "Wrong input: Validation failed: failed to parse variable ID $scores:
    Invalid reserved word: $scores"; INVALID_ARGUMENT over gRPC."""
    name = names()
    dense_collection(clients["rest"], name, seed=18)
    text = f"Wrong input: Validation failed: failed to parse variable ID {shown}"
    body = {
        "prefetch": {"query": [0.1, 0.2, 0.3, 0.4], "limit": 3},
        "query": {"formula": formula, "defaults": defaults},
    }
    answer = http.post(f"/collections/{name}/points/query", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"]["error"] == text
    with pytest.raises(Exception) as caught:
        clients["grpc"].query_points(
            name,
            prefetch=models.Prefetch(query=[0.1, 0.2, 0.3, 0.4], limit=3),
            query=models.FormulaQuery(formula=formula, defaults=defaults),
        )
    assert "INVALID_ARGUMENT" in str(caught.value) and text in str(caught.value)


def test_average_vector_needs_a_positive_example(
    clients: dict[str, QdrantClient], http: httpx.Client, names: Callable[[], str]
) -> None:
    """Explore: only best_score and sum_scores work with negative examples alone. The
    average_vector strategy (the default) refuses them: the legacy recommend route with its
    own check (400 "Bad request: At least one positive vector ID required with this
    strategy"), the Query API while it averages the examples (400 "Wrong input: Validation
    failed: Positive vectors should not be empty with `average` strategy"; gRPC
    INVALID_ARGUMENT)."""
    name = names()
    dense_collection(clients["rest"], name, seed=19)
    legacy = http.post(f"/collections/{name}/points/recommend", json={"negative": [1], "limit": 3})
    assert legacy.status_code == 400, legacy.text
    assert legacy.json()["status"]["error"] == (
        "Bad request: At least one positive vector ID required with this strategy"
    )
    text = (
        "Wrong input: Validation failed: Positive vectors should not be empty with `average` "
        "strategy"
    )
    answer = http.post(
        f"/collections/{name}/points/query", json={"query": {"recommend": {"negative": [1]}}}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"]["error"] == text
    query = models.RecommendQuery(recommend=models.RecommendInput(negative=[1]))
    with pytest.raises(Exception) as caught:
        clients["grpc"].query_points(name, query=query)
    assert "INVALID_ARGUMENT" in str(caught.value) and text in str(caught.value)
    for strategy in (models.RecommendStrategy.BEST_SCORE, models.RecommendStrategy.SUM_SCORES):
        only_negative = models.RecommendQuery(
            recommend=models.RecommendInput(negative=[1], strategy=strategy)
        )
        for qc in clients.values():
            assert len(qc.query_points(name, query=only_negative, limit=3).points) == 3
