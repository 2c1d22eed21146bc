"""Tokenizers of the full-text index and of BM25 inference, after Qdrant's.

A text is split into raw tokens by the tokenizer kind, and each raw token goes through
Qdrant's token processor, in Qdrant's order: lowercasing, ASCII folding, stopword removal
(case-sensitive unless `lowercase`), Snowball stemming, then the length limits, counted in
characters after stemming.

- `word`: runs of characters Rust's `char::is_alphanumeric` accepts (Unicode Alphabetic or
  Numeric: letters, digits, and also combining vowel signs, which Python's `isalnum` lacks).
- `whitespace`: runs of non-whitespace (Rust's `White_Space`, not Python's `isspace`).
- `prefix`: `word` runs; a document word is indexed under all of its prefixes from
  `min_token_len` (default 1) up to `max_token_len`; a query word, not stopword-filtered (it
  may be the start of a longer word), is cut to `max_token_len` and must equal one of them.
- `multilingual`: charabia's segmentation, see `multilingual_tokenizer`.
- `code`: identifiers split into their words (camelCase, snake_case), see `code_tokenizer`.

Stopword lists are Qdrant's own (package data in `stopwords/`); ASCII folding uses Qdrant's
table (`ascii_folding.tsv`, derived from Qdrant Edge).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from tessera.query.code_tokenizer import code_tokens
from tessera.query.multilingual_tokenizer import multilingual_words
from tessera.query.stemmers import stemmer_for
from tessera.query.text_chars import data_lines, fold_to_ascii, whitespace_runs, word_runs

# What a persisted text index records of the rules its tokens were made by (its state's
# `tokenizer_version`). Bump it with any change that can make a text give other tokens for
# the same parameters (stopword lists, the folding table, character classes, stemmers,
# multilingual segmentation): an index saved under another version is rebuilt from the
# payloads when loaded (segment.persist). 1: before Qdrant's lists and stemmers (recorded
# as nothing); 2: Qdrant's stopwords, Snowball stemmers, folding table and word classes;
# 3: Chinese, Japanese and Thai segmented as Qdrant segments them (segmentation/); 4: Arabic
# script read as Arabic, Persian or Urdu (Persian folding, no article cut in Urdu), pieces of
# numbers and punctuation next to Han or Thai kept whole.
TOKENIZER_VERSION = 4

# Qdrant's tokenizers (`TokenizerType`), for text indexes and BM25 inference alike.
TOKENIZERS = ("prefix", "whitespace", "word", "multilingual", "code")

# Qdrant's stopword languages (`Language`), each a file in `stopwords/`.
STOPWORD_LANGUAGES = (
    "arabic", "azerbaijani", "basque", "bengali", "catalan", "chinese", "danish", "dutch",
    "english", "finnish", "french", "german", "greek", "hebrew", "hinglish", "hungarian",
    "indonesian", "italian", "japanese", "kazakh", "nepali", "norwegian", "portuguese",
    "romanian", "russian", "slovene", "spanish", "swedish", "tajik", "turkish",
)  # fmt: skip
# The short names Qdrant's `Language` also accepts (serde aliases); it keeps the long one.
STOPWORD_ALIASES = {
    "ar": "arabic", "az": "azerbaijani", "eu": "basque", "bn": "bengali", "ca": "catalan",
    "zh": "chinese", "da": "danish", "nl": "dutch", "en": "english", "fi": "finnish",
    "fr": "french", "de": "german", "el": "greek", "he": "hebrew", "hi-en": "hinglish",
    "hu": "hungarian", "id": "indonesian", "it": "italian", "jp": "japanese", "kk": "kazakh",
    "ne": "nepali", "no": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "sl": "slovene", "es": "spanish", "sv": "swedish", "tg": "tajik", "tr": "turkish",
}  # fmt: skip


def canonical_stopwords(raw: Any) -> Any:
    """A `stopwords` parameter with its languages' short names (`en`) made long
    (`english`), as Qdrant reads and keeps them; anything else unchanged."""
    if isinstance(raw, str):
        return STOPWORD_ALIASES.get(raw, raw)
    if isinstance(raw, Mapping) and isinstance(raw.get("languages"), list):
        languages = [STOPWORD_ALIASES.get(x, x) if isinstance(x, str) else x
                     for x in raw["languages"]]  # fmt: skip
        return {**raw, "languages": languages}
    return raw


@cache
def language_stopwords(language: str) -> frozenset[str]:
    """Qdrant's stopword list of a language, as written (not lowercased)."""
    if language not in STOPWORD_LANGUAGES:
        raise ValueError(f"unknown stopwords language {language!r}")
    return frozenset(data_lines(f"stopwords/{language}.txt"))


def default_tokens(text: str) -> list[str]:
    """Lowercased alphanumeric runs (a plain `word` tokenizer)."""
    return [t.lower() for t in word_runs(text)]


def stopword_set(raw: Any, lowercase: bool) -> frozenset[str]:
    """The stopwords of a `stopwords` parameter: a language, or `{languages, custom}`.

    With `lowercase` the lists are lowercased and so is each token checked against them;
    without it both are compared as written (Qdrant's `StopwordsFilter`)."""
    languages: list[str] = []
    custom: list[str] = []
    if isinstance(raw, str):
        languages = [raw]
    elif isinstance(raw, Mapping):
        languages = list(raw.get("languages") or [])
        custom = list(raw.get("custom") or [])
    words: set[str] = set(custom)
    for language in languages:
        words |= language_stopwords(language)
    return frozenset(w.lower() for w in words) if lowercase else frozenset(words)


def stemmer_language(raw: Any) -> str | None:
    """The Snowball language of a `stemmer` parameter, None for none."""
    if isinstance(raw, Mapping) and raw.get("type") == "snowball":
        language = raw.get("language")
        return language if isinstance(language, str) else None
    return None


# Raw tokens a tokenizer keeps processed (`Tokenizer._processed`): ~5 MiB at most, for
# each distinct tokenizer configuration (`Tokenizer.from_params` shares them).
_PROCESSED_MAX = 32_768
_UNSEEN: Any = object()
_SHARED: dict[Tokenizer, Tokenizer] = {}


@dataclass(frozen=True)
class Tokenizer:
    kind: str = "word"
    lowercase: bool = True
    ascii_folding: bool = False
    min_len: int | None = None
    max_len: int | None = None
    stopwords: frozenset[str] = frozenset()
    stemmer: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> Tokenizer:
        """The tokenizer of a text index's params: one object per distinct configuration,
        shared by every index and segment using it (with its memo of processed words)."""
        p = params or {}
        lowercase = p.get("lowercase") is not False
        made = cls(
            kind=p.get("tokenizer") or "word",
            lowercase=lowercase,
            ascii_folding=bool(p.get("ascii_folding")),
            min_len=p.get("min_token_len"),
            max_len=p.get("max_token_len"),
            stopwords=stopword_set(p.get("stopwords"), lowercase),
            stemmer=stemmer_language(p.get("stemmer")),
        )
        return _SHARED.setdefault(made, made)

    @property
    def _stem(self) -> Callable[[str], str] | None:
        return stemmer_for(self.stemmer) if self.stemmer else None

    def process(self, token: str, check_max_len: bool = True) -> str | None:
        """One raw token through Qdrant's token processor; None when it is dropped."""
        if not token:
            return None
        if self.lowercase:
            token = token.lower()
        if self.ascii_folding:
            token = fold_to_ascii(token)
        if token in self.stopwords:
            return None
        stem = self._stem
        if stem is not None:
            token = stem(token)
        n = len(token)
        if self.min_len is not None and n < self.min_len:
            return None
        if check_max_len and self.max_len is not None and n > self.max_len:
            return None
        return token

    def _raw(self, text: str) -> Iterable[str]:
        if self.kind == "whitespace":
            return whitespace_runs(text)
        if self.kind == "multilingual":
            return multilingual_words(text)
        if self.kind == "code":
            return code_tokens(text, self.lowercase)
        return word_runs(text)

    @cached_property
    def _processed(self) -> dict[str, str | None]:
        """`process(raw, check_max_len=kind != "prefix")` of raw tokens already seen: a
        text's words repeat across documents, and processing one (lowercasing, folding,
        stopwords, stemming) costs more than a lookup. Bounded (`_PROCESSED_MAX`)."""
        return {}

    def doc_words(self, text: str) -> list[str]:
        """The processed words of a document, in order (phrase positions); a `prefix`
        tokenizer keeps whole words here, its prefixes come from `index_terms`."""
        check_max = self.kind != "prefix"
        seen = self._processed
        if len(seen) > _PROCESSED_MAX:
            seen.clear()
        words: list[str] = []
        for raw in self._raw(text):
            token = seen.get(raw, _UNSEEN)
            if token is _UNSEEN:
                token = seen[raw] = self.process(raw, check_max)
            if token is not None:
                words.append(token)  # type: ignore[arg-type]
        return words

    def word_tokens(self, words: list[str]) -> list[str]:
        """The tokens a document's words yield, repeats kept: the words, or for `prefix`
        each word's prefixes from `min_token_len` (default 1) up to `max_token_len`."""
        if self.kind != "prefix":
            return words
        lo = self.min_len or 1
        tokens: list[str] = []
        for word in words:
            top = len(word) if self.max_len is None else min(len(word), self.max_len)
            tokens.extend(word[:n] for n in range(lo, top + 1))
        return tokens

    def index_terms(self, words: list[str]) -> set[str]:
        """What a document is indexed under: its words, or for `prefix` their prefixes."""
        return set(self.word_tokens(words))

    def doc_terms(self, text: str) -> set[str]:
        """The terms one string is indexed under (what `query_terms` are looked up in)."""
        return self.index_terms(self.doc_words(text))

    def doc_tokens(self, text: str) -> list[str]:
        """Every token a document yields, repeats kept (BM25 term frequencies)."""
        return self.word_tokens(self.doc_words(text))

    def term_counts(self, words: list[str]) -> dict[str, int]:
        """How often each index term occurs among a document's tokens (`doc_tokens`)."""
        return dict(Counter(self.word_tokens(words)))

    def query_terms(self, text: str) -> list[str]:
        if self.kind != "prefix":
            return self.doc_words(text)
        # A query word may be the start of a longer one, so stopwords do not apply to it.
        query = Tokenizer(
            "word", self.lowercase, self.ascii_folding, self.min_len, None, frozenset(),
            self.stemmer,
        )  # fmt: skip
        terms = query.doc_words(text)
        return terms if self.max_len is None else [t[: self.max_len] for t in terms]

    def phrase_terms(self, text: str) -> list[str]:
        """A phrase query's terms: its words as a document's are made (stopwords dropped,
        with a `prefix` tokenizer too, as Qdrant Edge shows)."""
        return self.doc_words(text)

    def lookup_terms(self, terms: list[str]) -> list[str]:
        """The index terms a phrase's documents must all hold (a `prefix` index holds its
        words' prefixes up to `max_token_len` only)."""
        if self.kind != "prefix" or self.max_len is None:
            return terms
        return [t[: self.max_len] for t in terms]

    def phrase_in(self, words: list[str], phrase: list[str]) -> bool:
        """Whether the phrase terms occur consecutively in the document words; with a
        `prefix` tokenizer the last one may be the start of a word, the others are whole
        words (Qdrant Edge: "hello wor" matches "hello world", "hel world" does not)."""
        k = len(phrase)
        if k == 0 or k > len(words):
            return False
        if self.kind == "prefix":
            head, last = phrase[:-1], phrase[-1]
            return any(
                words[i : i + k - 1] == head and words[i + k - 1].startswith(last)
                for i in range(len(words) - k + 1)
            )
        return any(words[i : i + k] == phrase for i in range(len(words) - k + 1))
