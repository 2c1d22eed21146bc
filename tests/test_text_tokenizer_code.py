"""The `code` tokenizer (identifiers split into words) against Qdrant Edge.

Edge's BM25 model tokenizes with the same tokenizer as a text index; its sparse vectors name
each token by hash with its weight, so equal vectors mean equal tokens with equal counts.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tessera.query.bm25 import Bm25
from tessera.query.code_tokenizer import code_tokens
from tests.test_bm25 import edge_config

edge = pytest.importorskip("qdrant_edge")

CASES = [
    "getUserName", "get_user_name", "HTTPServerError", "parseJSON2XML", "foo.bar(baz)",
    "my-var x123y", "snake_case_IDValue", "ABCDef", "a1b2", "__init__", "Über_große Straße",
    "value2String", "IOError", "getHTTP2Response", "中文abc", "fooBARBaz", "foo123Bar",
    "123abc", "ABC123def", "a_b", "_private", "x__y", "HTMLParser", "getX", "Xget", "a.b.c",
    "foo::bar", "$var", "@decorator", "#include <stdio.h>", "don't", "3.14", "v1.2.3",
    "kebab-case-name", "get_HTTPResponse2", "iPhone", "ÄpfelBaum", "one two", "aB", "AB",
    "A", "AbC", "the_value", "fooBar_baz", "getUserName getUserName user", "",
]  # fmt: skip

OPTIONS: list[dict[str, Any]] = [
    {"tokenizer": "code"},
    {"tokenizer": "code", "stemmer": {"type": "none"}, "stopwords": {"custom": []}},
    {"tokenizer": "code", "lowercase": False, "stemmer": {"type": "none"}},
    {"tokenizer": "code", "min_token_len": 3, "max_token_len": 6},
    {"tokenizer": "code", "ascii_folding": True, "stopwords": {"custom": ["get"]}},
]


def random_code(rng: random.Random) -> str:
    parts = ["get", "Set", "HTTP", "url", "Id", "x", "2", "json", "XML", "Äpfel", "über"]
    parts += ["i", "_", "__"]
    seps = ["", "", "", "_", ".", " ", "-", "::", "(", ")", "2", "9"]
    return "".join(rng.choice(parts) + rng.choice(seps) for _ in range(rng.randint(1, 6)))


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
def test_code_tokens_are_qdrant_edges(options: dict[str, Any]) -> None:
    ours = Bm25.from_options(options)
    theirs = edge.Bm25(edge_config(options))
    rng = random.Random(str(options))
    for text in [*CASES, *(random_code(rng) for _ in range(400))]:
        want = theirs.embed_document(text)
        indices, values = ours.embed_document(text)
        assert sorted(want.indices) == indices, text
        by_index = dict(zip(want.indices, want.values, strict=True))
        assert values == pytest.approx([by_index[i] for i in indices], rel=1e-6), text
        assert ours.embed_query(text)[0] == sorted(theirs.embed_query(text).indices), text


def test_code_words() -> None:
    assert code_tokens("getHTTP2Response_id", lowercase=True) == [
        "get", "HTTP2", "Response", "id", "getHTTP2Response", "getHTTP2Responseid",
    ]  # fmt: skip
    assert code_tokens("getUserName", lowercase=False) == ["get", "User", "Name"]
    assert code_tokens("a1b2 ABC123def", lowercase=True) == ["a1b2", "ABC123def"]
