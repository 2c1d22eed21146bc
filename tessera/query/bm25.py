"""Server-side BM25 inference: a `Document` with model `qdrant/bm25` becomes a sparse vector.

As Qdrant's built-in model does: the text is tokenized with the full-text tokenizer the
options describe (`Bm25Config`: `tokenizer`, `language`, `lowercase`, `ascii_folding`,
`stopwords`, `stemmer`, `min_token_len`, `max_token_len`), each token is hashed to an index
(the absolute value of its signed 32-bit murmur3 hash, seed 0), and

- a document (upsert) gets its BM25 term-frequency weights,
  `tf * (k + 1) / (tf + k * (1 - b + b * len / avg_len))` with `len` its token count;
- a query gets weight 1 per distinct token.

The IDF half of BM25 is the collection's: the sparse vector is configured with
`modifier: idf`. `language` (default english) picks the default stopword list and Snowball
stemmer; a language Qdrant has neither for (the deprecated `"none"`) disables both.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mmh3

from tessera.errors import BadRequest, inference_unavailable
from tessera.query.stemmers import SNOWBALL_LANGUAGES, canonical_stemmer
from tessera.query.text_tokenizer import (
    STOPWORD_LANGUAGES,
    TOKENIZERS,
    Tokenizer,
    canonical_stopwords,
    stemmer_language,
    stopword_set,
)

BM25_MODEL = "qdrant/bm25"
_OPTIONS = (
    "k", "b", "avg_len", "tokenizer", "language", "lowercase", "ascii_folding", "stopwords",
    "stemmer", "min_token_len", "max_token_len",
)  # fmt: skip

SparsePair = tuple[list[int], list[float]]


def is_document(raw: Any) -> bool:
    """Whether a vector input is a `Document` (`{"text": ..., "model": ...}`)."""
    return isinstance(raw, dict) and "text" in raw and "model" in raw


def names_a_model(raw: dict[str, Any]) -> bool:
    """Whether a JSON object is a Document, Image or InferenceObject (its input and the
    `model` that would embed it), for a model other than BM25 a request for inference."""
    return bool(raw.keys() & {"text", "image", "object"}) and "model" in raw


def token_id(token: str) -> int:
    return abs(mmh3.hash(token, 0, signed=True))


def _fail(message: str) -> BadRequest:
    return BadRequest(f"Bad request: BM25 options: {message}")


def _number(options: Mapping[str, Any], name: str, default: float) -> float:
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"`{name}` must be a number, got {value!r}")
    return float(value)


def _length(options: Mapping[str, Any], name: str) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(f"`{name}` must be a non-negative integer, got {value!r}")
    return value


def _flag(options: Mapping[str, Any], name: str, default: bool) -> bool:
    value = options.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(f"`{name}` must be a boolean, got {value!r}")
    return value


def _check_stopwords(raw: Any) -> None:
    languages: list[Any] = []
    if isinstance(raw, str):
        languages = [raw]
    elif isinstance(raw, Mapping) and set(raw) <= {"languages", "custom"}:
        languages = list(raw.get("languages") or [])
        custom = raw.get("custom") or []
        if not isinstance(custom, list) or not all(isinstance(w, str) for w in custom):
            raise _fail("`stopwords.custom` must be an array of strings")
    else:
        raise _fail("`stopwords` must be a language or an object with `languages` and `custom`")
    for language in languages:
        if language not in STOPWORD_LANGUAGES:
            raise _fail(f"unknown stopwords language {language!r}")


def _stemmer(raw: Any, language: str) -> str | None:
    if raw is None:
        return language if language in SNOWBALL_LANGUAGES else None
    if isinstance(raw, Mapping) and raw.get("type") == "none" and set(raw) == {"type"}:
        return None
    found = stemmer_language(raw)
    if found not in SNOWBALL_LANGUAGES or set(raw) != {"type", "language"}:
        raise _fail(
            "`stemmer` must be {'type': 'snowball', 'language': <snowball language>} "
            "or {'type': 'none'}"
        )
    return found


@dataclass(frozen=True)
class Bm25:
    tokenizer: Tokenizer
    k: float = 1.2
    b: float = 0.75
    avg_len: float = 256.0

    @classmethod
    def from_options(cls, options: Any) -> Bm25:
        """The model a `Document`'s `options` (a `Bm25Config`) describe; 400 when invalid."""
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise _fail("`options` must be an object")
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise _fail(f"unknown field `{unknown[0]}`, expected one of {list(_OPTIONS)}")
        k, b = _number(options, "k", 1.2), _number(options, "b", 0.75)
        avg_len = _number(options, "avg_len", 256.0)
        if k < 0:
            raise _fail(f"`k` must be non-negative, got {k}")
        if not 0.0 <= b <= 1.0:
            raise _fail(f"`b` must be within [0, 1], got {b}")
        if avg_len <= 0:
            raise _fail(f"`avg_len` must be positive, got {avg_len}")
        kind = options.get("tokenizer") or "word"
        if kind not in TOKENIZERS:
            raise _fail(f"`tokenizer` must be one of {list(TOKENIZERS)}, got {kind!r}")
        language = options.get("language")
        if language is None:
            language = "english"
        if not isinstance(language, str):
            raise _fail(f"`language` must be a string, got {language!r}")
        lowercase = _flag(options, "lowercase", True)
        stopwords = canonical_stopwords(options.get("stopwords"))
        if stopwords is None:
            stopwords = language if language in STOPWORD_LANGUAGES else None
        else:
            _check_stopwords(stopwords)
        tokenizer = Tokenizer(
            kind=kind,
            lowercase=lowercase,
            ascii_folding=_flag(options, "ascii_folding", False),
            min_len=_length(options, "min_token_len"),
            max_len=_length(options, "max_token_len"),
            stopwords=stopword_set(stopwords, lowercase),
            stemmer=_stemmer(canonical_stemmer(options.get("stemmer")), language),
        )
        return cls(tokenizer, k, b, avg_len)

    def embed_document(self, text: str) -> SparsePair:
        tokens = self.tokenizer.doc_tokens(text)
        counts = Counter(tokens)
        norm = self.k * (1.0 - self.b + self.b * len(tokens) / self.avg_len)
        weights = {token_id(t): n * (self.k + 1.0) / (n + norm) for t, n in counts.items()}
        indices = sorted(weights)
        return indices, [weights[i] for i in indices]

    def embed_query(self, text: str) -> SparsePair:
        indices = sorted({token_id(t) for t in self.tokenizer.query_terms(text)})
        return indices, [1.0] * len(indices)


def infer(raw: Mapping[str, Any], query: bool) -> dict[str, Any]:
    """A `Document` vector input as the sparse vector Qdrant's BM25 gives it."""
    model, text = raw.get("model"), raw.get("text")
    if not isinstance(model, str) or not isinstance(text, str):
        raise BadRequest("Format error in JSON body: a document needs string `text` and `model`")
    indices, values = embed(text, model, raw.get("options"), query)
    return {"indices": indices, "values": values}


def embed(text: str, model: str, options: Any, query: bool) -> SparsePair:
    """A document's text as the sparse vector `model` (BM25 only) gives it."""
    if model.lower() != BM25_MODEL:
        raise inference_unavailable()
    bm25 = Bm25.from_options(options)
    return bm25.embed_query(text) if query else bm25.embed_document(text)
