"""Full-text conditions as a text index reads them, against Qdrant Edge (Qdrant's engine
in-process), the oracle here; each case its own collection over REST and its own Edge shard:
- inside `nested`, a text or phrase condition is read with the index on its full path
  (`arr[].t`): its tokenizer, and no phrase without `phrase_matching` (Tessera checked the
  element with the default tokenizer);
- a phrase on a `prefix` index: only its last word may be the start of a word, the others
  are whole words, and stopwords are dropped from it as from documents.
"""

from __future__ import annotations

import tempfile
from typing import Any

import httpx
import pytest

qe = pytest.importorskip("qdrant_edge")

NESTED_POINTS = [
    {"arr": [{"t": "hello."}]},
    {"arr": [{"t": "hello world"}, {"t": "other"}]},
    {"arr": [{"t": "Hello there"}]},
    {"arr": [{"t": "runs quickly"}]},
    {"arr": [{"t": ["say hello", "bye"]}]},
    {"arr": []},
]
FLAT_POINTS = [
    {"t": "hello world"},
    {"t": "hello wonderful world again"},
    {"t": "say hello world"},
    {"t": "données"},
    {"t": "the hello"},
]
# (REST params, Edge params)
TEXT_INDEXES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "word": ({}, {}),
    "whitespace": ({"tokenizer": "whitespace"}, {"tokenizer": qe.TokenizerType.Whitespace}),
    "prefix": ({"tokenizer": "prefix"}, {"tokenizer": qe.TokenizerType.Prefix}),
    "phrases": ({"phrase_matching": True}, {"phrase_matching": True}),
    "stemmed": (
        {"stemmer": {"type": "snowball", "language": "english"}},
        {"stemmer": qe.SnowballParams(qe.SnowballLanguage.English)},
    ),
    "case kept": ({"lowercase": False}, {"lowercase": False}),
}
PREFIX_PHRASE_INDEXES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "prefix phrases": (
        {"tokenizer": "prefix", "phrase_matching": True},
        {"tokenizer": qe.TokenizerType.Prefix, "phrase_matching": True},
    ),
    "prefix phrases, stopwords": (
        {"tokenizer": "prefix", "phrase_matching": True, "stopwords": "english"},
        {
            "tokenizer": qe.TokenizerType.Prefix,
            "phrase_matching": True,
            "stopwords": qe.Language.English,
        },
    ),
    "prefix phrases, custom stopword": (
        {"tokenizer": "prefix", "phrase_matching": True, "stopwords": {"custom": ["world"]}},
        {
            "tokenizer": qe.TokenizerType.Prefix,
            "phrase_matching": True,
            "stopwords": qe.StopwordsSet(custom={"world"}),
        },
    ),
}
NESTED_TESTS = [("text", "hello"), ("text", "hel"), ("text", "run"), ("text", "HELLO")]
NESTED_TESTS += [("phrase", "hello world"), ("phrase", "say hello"), ("text_any", "bye nope")]
PHRASES = ["hello world", "hello wor", "hel world", "say hello", "hello wonderful", "d", "the hel"]


def _edge_match(kind: str, text: str) -> Any:
    return {"text": qe.MatchText, "phrase": qe.MatchPhrase, "text_any": qe.MatchTextAny}[kind](text)


def _counts(
    http: httpx.Client,
    name: str,
    points: list[dict[str, Any]],
    key: str,
    params: tuple[dict[str, Any], dict[str, Any]],
    conditions: list[tuple[dict[str, Any], Any]],
) -> list[tuple[Any, int, int]]:
    """(condition, Tessera's count, Edge's count) for each condition."""
    http.delete(f"/collections/{name}")
    assert http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
    body = {"field_name": key, "field_schema": {"type": "text", **params[0]}}
    assert http.put(f"/collections/{name}/index?wait=true", json=body).is_success
    rows = [{"id": i, "vector": [1.0, 0.0], "payload": p} for i, p in enumerate(points)]
    assert http.put(f"/collections/{name}/points?wait=true", json={"points": rows}).is_success
    out = []
    with tempfile.TemporaryDirectory() as root:
        params_edge = qe.EdgeVectorParams(size=2, distance=qe.Distance.Dot)
        shard = qe.EdgeShard.create(f"{root}/s", qe.EdgeConfig(vectors=params_edge))
        shard.update(qe.UpdateOperation.create_field_index(key, qe.TextIndexParams(**params[1])))
        edge_points = [qe.Point(i, [1.0, 0.0], p) for i, p in enumerate(points)]
        shard.update(qe.UpdateOperation.upsert_points(edge_points))
        for rest, edge in conditions:
            answer = http.post(
                f"/collections/{name}/points/count",
                json={"filter": {"must": [rest]}, "exact": True},
            )
            assert answer.status_code == 200, answer.text
            expected = shard.count(qe.CountRequest(filter=qe.Filter(must=[edge])))
            out.append((rest, answer.json()["result"]["count"], expected))
        shard.close()
    http.delete(f"/collections/{name}")
    return out


@pytest.mark.parametrize("case", list(TEXT_INDEXES))
def test_nested_text_conditions_read_by_the_full_path_index(http: httpx.Client, case: str) -> None:
    conditions = []
    for kind, text in NESTED_TESTS:
        inner = {"key": "t", "match": {kind: text}}
        edge_inner = qe.FieldCondition(key="t", match=_edge_match(kind, text))
        conditions.append(
            (
                {"nested": {"key": "arr", "filter": {"must": [inner]}}},
                qe.NestedCondition("arr", qe.Filter(must=[edge_inner])),
            )
        )
    name = "nested_text_" + case.replace(" ", "_")
    found = _counts(http, name, NESTED_POINTS, "arr[].t", TEXT_INDEXES[case], conditions)
    assert [f for f in found if f[1] != f[2]] == []


@pytest.mark.parametrize("case", list(PREFIX_PHRASE_INDEXES))
def test_phrases_on_a_prefix_index(http: httpx.Client, case: str) -> None:
    conditions = [
        (
            {"key": "t", "match": {"phrase": phrase}},
            qe.FieldCondition(key="t", match=qe.MatchPhrase(phrase)),
        )
        for phrase in PHRASES
    ]
    name = "prefix_phrase_" + case.replace(" ", "_").replace(",", "")
    found = _counts(http, name, FLAT_POINTS, "t", PREFIX_PHRASE_INDEXES[case], conditions)
    assert [f for f in found if f[1] != f[2]] == []


def test_index_params_ignore_fields_they_do_not_have(http: httpx.Client) -> None:
    """Qdrant's index params structs ignore fields they lack (no `deny_unknown_fields`): a
    keyword index given a `tokenizer`, a text index given `foo`, a stemmer with an extra
    field; what is kept and shown is only what the type has."""
    name = "index_params_extra_fields"
    http.delete(f"/collections/{name}")
    assert http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
    for field, schema in (
        ("k", {"type": "keyword", "tokenizer": "word"}),
        (
            "t",
            {
                "type": "text",
                "foo": 1,
                "stemmer": {"type": "snowball", "language": "english", "x": 1},
            },
        ),
        ("u", {"type": "text", "stemmer": {"type": "none", "language": "english"}}),
    ):
        body = {"field_name": field, "field_schema": schema}
        answer = http.put(f"/collections/{name}/index?wait=true", json=body)
        assert answer.status_code == 200, answer.text
    shown = http.get(f"/collections/{name}").json()["result"]["payload_schema"]
    assert shown["k"] == {"data_type": "keyword", "params": {"type": "keyword"}, "points": 0}
    assert shown["t"]["params"]["stemmer"] == {"type": "snowball", "language": "english"}
    assert "foo" not in shown["t"]["params"]
    assert shown["u"]["params"]["stemmer"] == {"type": "none"}
    http.delete(f"/collections/{name}")
