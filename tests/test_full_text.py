"""Full-text matching against Qdrant Edge, Qdrant's engine in-process.

For every language Qdrant has stopwords or a Snowball stemmer for, random documents built
from that language's words (inflected, with mixed case and punctuation) are matched with
`text`, `text_any` and `phrase` by a Qdrant Edge shard and by Tessera's text index (and by
the payload check when the field has no index): both must select the same points, for
several tokenizer configurations. The shipped stopword lists and ASCII folding table are
checked entry by entry against Edge's BM25 model, which runs the same token processor.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tessera.query.bm25 import Bm25, token_id
from tessera.query.filter_check import compile_filter_predicate
from tessera.query.filter_parse import parse_filter
from tessera.query.stemmers import SNOWBALL_LANGUAGES
from tessera.query.text_chars import fold_to_ascii
from tessera.query.text_tokenizer import STOPWORD_LANGUAGES, Tokenizer, language_stopwords
from tessera.segment.field_index import make_field_index, parse_field_schema
from tests.conftest import LOCAL

edge = pytest.importorskip("qdrant_edge")

SUFFIXES_TEXT = (
    "s es ing ed ly ness ation er ung en lich ar ado ción mente ità ов ами ость ый ая ler "
    "lar ssa lla ksi ement euse zione ções ului ων ους ها ات ية ում ներ க்கு கள்"  # noqa: RUF001
)
SUFFIXES = SUFFIXES_TEXT.split()
LANGUAGES = sorted(set(STOPWORD_LANGUAGES) | set(SNOWBALL_LANGUAGES))
# The multilingual tokenizer is compared where it matches charabia (see multilingual_tokenizer):
# everywhere (Chinese and Japanese included) but polytonic Greek (charabia splits it by
# detected language).
NOT_MULTILINGUAL = ("greek",)
_shard_ids = count()


def script(word: str) -> str:
    return next((unicodedata.name(c).split()[0] for c in word if c.isalpha()), "")


def language_words(language: str, rng: random.Random) -> list[str]:
    """Words of a language: its stopwords (or a few Latin ones) and inflected forms."""
    base = sorted(language_stopwords(language)) if language in STOPWORD_LANGUAGES else []
    if not base:  # armenian, tamil: words made of their own letters
        letters = (
            "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆ" if language == "armenian" else "கசடதபறயரலவழள"
        )
        base = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 6))) for _ in range(60)]
    words = rng.sample(base, min(40, len(base)))
    for w in rng.sample(base, min(40, len(base))):
        # a suffix in the word's own script: words of one script, as real text has
        same = [x for x in SUFFIXES if script(x) == script(w)]
        if same:
            words.append(w + rng.choice(same))
    return [*words, "Qdrant", "vector", "fly", "butterfly", "café", "Über"]


def random_docs(words: list[str], rng: random.Random, n: int = 30) -> list[str]:
    def word() -> str:
        w = rng.choice(words)
        return w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w

    seps = [" ", " ", " ", ", ", "-", ". ", "; "]
    return ["".join(word() + rng.choice(seps) for _ in range(rng.randint(1, 10))) for _ in range(n)]


def random_queries(words: list[str], docs: list[str], rng: random.Random, n: int = 16) -> list[str]:
    queries = []
    for _ in range(n):
        if rng.random() < 0.5:  # a run of a document's words: phrases that occur
            parts = rng.choice(docs).split()
            i = rng.randrange(len(parts))
            queries.append(" ".join(parts[i : i + rng.randint(1, 3)]))
        else:
            queries.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))))
    return queries


def edge_text_params(params: dict[str, Any]) -> Any:
    kw: dict[str, Any] = {"phrase_matching": True}
    for name in ("lowercase", "ascii_folding", "min_token_len", "max_token_len"):
        if name in params:
            kw[name] = params[name]
    if "tokenizer" in params:
        kw["tokenizer"] = getattr(edge.TokenizerType, params["tokenizer"].capitalize())
    stop = params.get("stopwords")
    if isinstance(stop, str):
        kw["stopwords"] = getattr(edge.Language, stop.capitalize())
    elif isinstance(stop, dict):
        kw["stopwords"] = edge.StopwordsSet(
            languages={getattr(edge.Language, x.capitalize()) for x in stop.get("languages", [])},
            custom=set(stop.get("custom", [])),
        )
    if "stemmer" in params:
        language = params["stemmer"]["language"].capitalize()
        kw["stemmer"] = edge.SnowballParams(getattr(edge.SnowballLanguage, language))
    return edge.TextIndexParams(**kw)


def edge_matchers(
    tmp_path: Path, docs: list[str], all_params: list[dict[str, Any] | None]
) -> tuple[Any, list[Callable[[str, str], list[int]]]]:
    """One Edge shard holding the documents under one field per configuration."""
    config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=1, distance=edge.Distance.Dot))
    shard = edge.EdgeShard.create(str(tmp_path / f"edge{next(_shard_ids)}"), config)
    for i, params in enumerate(all_params):
        if params is not None:
            index = edge_text_params(params)
            shard.update(edge.UpdateOperation.create_field_index(f"f{i}", index))
    payloads = [{f"f{i}": d for i in range(len(all_params))} for d in docs]
    shard.update(
        edge.UpdateOperation.upsert_points(
            [edge.Point(i, [1.0], p) for i, p in enumerate(payloads)]
        )
    )
    conditions = {"text": edge.MatchText, "text_any": edge.MatchTextAny, "phrase": edge.MatchPhrase}

    def matcher(field: str) -> Callable[[str, str], list[int]]:
        def match(kind: str, text: str) -> list[int]:
            filt = edge.Filter(must=[edge.FieldCondition(field, match=conditions[kind](text))])
            found, _ = shard.scroll(edge.ScrollRequest(limit=len(docs) + 1, filter=filt))
            return sorted(p.id for p in found)

        return match

    return shard, [matcher(f"f{i}") for i in range(len(all_params))]


def tessera_matcher(docs: list[str], params: dict[str, Any] | None) -> Callable[..., list[int]]:
    if params is None:

        def by_payload(kind: str, text: str) -> list[int]:
            test = compile_filter_predicate(
                parse_filter({"must": [{"key": "f", "match": {kind: text}}]})
            )
            return [i for i, d in enumerate(docs) if test({"f": d})]

        return by_payload
    schema = {"type": "text", "phrase_matching": True, **params}  # as edge_text_params
    index = make_field_index("f", parse_field_schema(schema))
    for i, d in enumerate(docs):
        index.add(i, {"f": d})

    def by_index(kind: str, text: str) -> list[int]:
        n = len(docs)
        if kind == "phrase":
            mask = index.match_phrase(text, n)
        else:
            mask = index.match_text(text, kind == "text_any", n)
        assert mask is not None
        return np.flatnonzero(mask).tolist()

    return by_index


def configs(language: str) -> Iterator[dict[str, Any] | None]:
    stop = language in STOPWORD_LANGUAGES
    stem = (
        {"stemmer": {"type": "snowball", "language": language}}
        if language in SNOWBALL_LANGUAGES
        else {}
    )
    yield None  # no index: the payload check
    yield {**({"stopwords": language} if stop else {}), **stem}
    yield {}
    if stop:
        custom = sorted(language_stopwords(language))[:3]
        yield {
            "lowercase": False,
            "stopwords": {"languages": [language], "custom": [w.capitalize() for w in custom]},
        }
        yield {"tokenizer": "prefix", "stopwords": language, "min_token_len": 2, "max_token_len": 6}
    yield {"tokenizer": "whitespace", "ascii_folding": True, **stem}
    if language not in NOT_MULTILINGUAL:
        yield {"tokenizer": "multilingual", **stem}


@pytest.mark.parametrize("language", LANGUAGES)
def test_matches_equal_qdrant_edge(tmp_path: Path, language: str) -> None:
    rng = random.Random(language)
    words = language_words(language, rng)
    docs = random_docs(words, rng)
    queries = random_queries(words, docs, rng)
    all_params = list(configs(language))
    shard, matchers = edge_matchers(tmp_path, docs, all_params)
    try:
        for params, theirs in zip(all_params, matchers, strict=True):
            ours = tessera_matcher(docs, params)
            prefix = params is not None and params.get("tokenizer") == "prefix"
            for query in queries:
                for kind in ("text", "text_any") if prefix else ("text", "text_any", "phrase"):
                    assert ours(kind, query) == theirs(kind, query), (params, kind, query)
    finally:
        shard.close()


def test_user_reports() -> None:
    """The cases a user met: case-sensitive custom stopwords, unindexed matching."""
    docs = ["The Cat sat", "the cat ran", "a butterfly", "fly away", "Hello World"]

    def run(params: dict[str, Any] | None, kind: str, text: str) -> list[int]:
        return tessera_matcher(docs, params)(kind, text)

    strict = {"lowercase": False, "stopwords": {"custom": ["The"]}}
    assert run(strict, "text", "The") == []  # "The" is a stopword as written
    assert run(strict, "text", "the") == [1]  # "the" is not: lowercase is off
    assert run({"stopwords": {"custom": ["The"]}}, "text", "the") == []
    # Without an index Qdrant tokenizes as a lowercasing `word` tokenizer does (Qdrant Edge
    # 0.9 says so, whatever older documentation says about substrings).
    assert run(None, "text", "fly") == [3]
    assert run(None, "text", "hello") == [4]
    assert run(None, "phrase", "world hello") == []
    assert run(None, "text_any", "butterfly cat") == [0, 1, 2]


def test_stemming_and_stopwords_per_language() -> None:
    stemmed = Tokenizer.from_params(
        {"stopwords": "german", "stemmer": {"type": "snowball", "language": "german"}}
    )
    assert stemmed.doc_words("Die Häuser und die Hunde") == ["haus", "hund"]
    russian = Tokenizer.from_params({"stemmer": {"type": "snowball", "language": "russian"}})
    assert russian.doc_words("Ёлками ёжиками") == ["ёлкам", "ёжик"]
    assert "的" in language_stopwords("chinese") and "og" in language_stopwords("norwegian")
    assert len(language_stopwords("english")) == 179


@pytest.mark.parametrize("language", STOPWORD_LANGUAGES)
def test_stopword_lists_equal_qdrant(language: str) -> None:
    """Every listed word is a stopword to Qdrant, and a word of another list usually is not."""
    model = edge.Bm25(
        edge.Bm25Config(
            tokenizer=edge.TokenizerType.Whitespace,
            lowercase=False,
            stopwords=getattr(edge.Language, language.capitalize()),
            stemmer=edge.DisabledStemmer(),
        )
    )
    ours = language_stopwords(language)
    for word in ours:
        assert model.embed_query(word).indices == [], word
    others = {w for lang in STOPWORD_LANGUAGES for w in language_stopwords(lang)} - ours
    for word in sorted(others)[::7]:
        assert model.embed_query(word).indices == [token_id(word)], word


def test_ascii_folding_equals_qdrant() -> None:
    model = edge.Bm25(
        edge.Bm25Config(
            tokenizer=edge.TokenizerType.Whitespace,
            lowercase=False,
            ascii_folding=True,
            stopwords=edge.StopwordsSet(custom=set()),
            stemmer=edge.DisabledStemmer(),
        )
    )
    for cp in range(0xA0, 0x3000, 3):
        token = "x" + chr(cp)
        if token.split() != [token]:
            continue
        assert model.embed_query(token).indices == [token_id(fold_to_ascii(token))], hex(cp)
    ours = Bm25.from_options({"ascii_folding": True, "stemmer": {"type": "none"}})
    assert ours.tokenizer.doc_words("Ação Straße Œuvre ⑴") == ["acao", "strasse", "oeuvre", "(1)"]


PHRASE_DOCS = ["the lazy dog", "dog lazy the", "a lazy dog sleeps", "cat", ""]


def edge_phrase_answers(tmp_path: Path) -> dict[str, list[int]]:
    """What Edge selects with `phrase` (alone, ANDed with a keyword match, negated, in a
    should) on a text index without phrase_matching (`np`), one with it (`wp`), and a field
    with no index (`none`)."""
    shard = edge.EdgeShard.create(
        str(tmp_path / "phrase"),
        edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=1, distance=edge.Distance.Dot)),
    )
    shard.update(edge.UpdateOperation.create_field_index("np", edge.TextIndexParams()))
    wp = edge.TextIndexParams(phrase_matching=True)
    shard.update(edge.UpdateOperation.create_field_index("wp", wp))
    shard.update(edge.UpdateOperation.create_field_index("k", edge.KeywordIndexParams()))
    payloads = [{"np": t, "wp": t, "none": t, "k": "ab"[i % 2]} for i, t in enumerate(PHRASE_DOCS)]
    shard.update(
        edge.UpdateOperation.upsert_points(
            [edge.Point(i, [1.0], p) for i, p in enumerate(payloads)]
        )
    )
    answers: dict[str, list[int]] = {}
    try:
        for name, raw in phrase_filters().items():
            must, must_not, should = (
                [edge_condition(c) for c in raw.get(part, [])] or None
                for part in ("must", "must_not", "should")
            )
            filt = edge.Filter(must=must, must_not=must_not, should=should)
            found, _ = shard.scroll(edge.ScrollRequest(limit=10, filter=filt))
            answers[name] = sorted(p.id for p in found)
    finally:
        shard.close()
    return answers


def edge_condition(raw: dict[str, Any]) -> Any:
    ((kind, value),) = raw["match"].items()
    match = {"phrase": edge.MatchPhrase, "text": edge.MatchText, "value": edge.MatchValue}[kind]
    return edge.FieldCondition(raw["key"], match=match(value))


def phrase_filters() -> dict[str, dict[str, list[dict[str, Any]]]]:
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for field in ("np", "wp", "none"):
        phrase = {"key": field, "match": {"phrase": "lazy dog"}}
        out[f"{field} phrase"] = {"must": [phrase]}
        out[f"{field} unknown"] = {"must": [{"key": field, "match": {"phrase": "lazy zebra"}}]}
        out[f"{field} and keyword"] = {"must": [{"key": "k", "match": {"value": "a"}}, phrase]}
        out[f"{field} must_not"] = {"must_not": [phrase]}
        out[f"{field} should"] = {"should": [phrase, {"key": "k", "match": {"value": "zz"}}]}
        out[f"{field} text"] = {"must": [{"key": field, "match": {"text": "dog lazy"}}]}
    return out


def test_phrase_needs_phrase_matching(tmp_path: Path, client: QdrantClient) -> None:
    """`phrase` on a text index without `phrase_matching` selects nothing and is no error, in
    every position of a filter; with it, or with no index at all, word order decides."""
    if LOCAL:
        pytest.skip("local mode matches phrases on payloads, whatever the index")
    want = edge_phrase_answers(tmp_path)
    assert want["np phrase"] == [] and want["np must_not"] == [0, 1, 2, 3, 4]
    assert want["wp phrase"] == want["none phrase"] == [0, 2]
    name = "phrase_matching_off"
    client.create_collection(name, vectors_config={})
    try:
        client.create_payload_index(name, "np", models.TextIndexParams(type="text"))
        wp = models.TextIndexParams(type="text", phrase_matching=True)
        client.create_payload_index(name, "wp", wp)
        client.create_payload_index(name, "k", models.PayloadSchemaType.KEYWORD)
        client.upsert(
            name,
            [
                models.PointStruct(
                    id=i, vector={}, payload={"np": t, "wp": t, "none": t, "k": "ab"[i % 2]}
                )
                for i, t in enumerate(PHRASE_DOCS)
            ],
        )
        for label, raw in phrase_filters().items():
            filt = models.Filter.model_validate(raw)
            found, _ = client.scroll(name, scroll_filter=filt, limit=10)
            assert sorted(int(p.id) for p in found) == want[label], label
            assert client.count(name, count_filter=filt).count == len(want[label]), label
    finally:
        client.delete_collection(name)
