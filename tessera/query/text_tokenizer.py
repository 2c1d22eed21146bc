"""Tokenizers for full-text conditions, after Qdrant's text index.

Without a text index Qdrant splits on every non-alphanumeric character and lowercases
(`default_tokens`). A text index applies its own configuration to each word, in Qdrant's
order: ASCII folding, lowercasing, stopword removal, (stemming), token length limits.

- `word` / `multilingual`: runs of alphanumerics. `multilingual` uses charabia in Qdrant,
  which segments CJK and Thai by dictionary; here it is the `word` split (an approximation).
- `whitespace`: runs of non-space characters.
- `prefix`: `word` runs, each indexed as all of its prefixes from `min_token_len` (default 1)
  up to `max_token_len`; a query word is cut to `max_token_len` and must equal one of them.

Stemming (`stemmer: snowball`) is accepted but not applied, and only English has a built-in
stopword list; other languages' lists are accepted as empty (custom stopwords work).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[^\W_]+")

# The few letters that NFKD does not reduce to ASCII but Lucene's folding does.
_FOLD_SPECIAL = {
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH",
    "\u0131": "i", "ħ": "h", "Ħ": "H", "ŋ": "n", "Ŋ": "N", "ĸ": "q", "\u017f": "s",
}  # fmt: skip

# The English list Qdrant ships (NLTK's).
ENGLISH_STOPWORDS = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them
    their theirs themselves what which who whom this that that'll these those am is are was
    were be been being have has had having do does did doing a an the and but if or because
    as until while of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there
    when where why how all any both each few more most other some such no nor not only own
    same so than too very s t can will just don don't should should've now d ll m o re ve y
    ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven
    haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
    shouldn't wasn wasn't weren weren't won won't wouldn wouldn't""".split()  # noqa: SIM905
)


def default_tokens(text: str) -> list[str]:
    """Tokens of an unindexed full-text condition: alphanumeric runs, lowercased."""
    return [t.lower() for t in _WORD.findall(text)]


def fold_to_ascii(text: str) -> str:
    if text.isascii():
        return text
    out: list[str] = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif ch in _FOLD_SPECIAL:
            out.append(_FOLD_SPECIAL[ch])
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
            )
            out.append(base if base and base.isascii() else ch)
    return "".join(out)


def _stopwords(raw: Any) -> frozenset[str]:
    languages: list[str] = []
    custom: list[str] = []
    if isinstance(raw, str):
        languages = [raw]
    elif isinstance(raw, Mapping):
        languages = list(raw.get("languages") or [])
        custom = list(raw.get("custom") or [])
    words = {w.lower() for w in custom}
    if "english" in languages:
        words |= ENGLISH_STOPWORDS
    return frozenset(words)


@dataclass(frozen=True)
class Tokenizer:
    kind: str = "word"
    lowercase: bool = True
    ascii_folding: bool = False
    min_len: int | None = None
    max_len: int | None = None
    stopwords: frozenset[str] = frozenset()

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> Tokenizer:
        p = params or {}
        return cls(
            kind=p.get("tokenizer") or "word",
            lowercase=p.get("lowercase") is not False,
            ascii_folding=bool(p.get("ascii_folding")),
            min_len=p.get("min_token_len"),
            max_len=p.get("max_token_len"),
            stopwords=_stopwords(p.get("stopwords")),
        )

    def _split(self, text: str) -> list[str]:
        return text.split() if self.kind == "whitespace" else _WORD.findall(text)

    def _normalise(self, token: str) -> str:
        if self.ascii_folding:
            token = fold_to_ascii(token)
        return token.lower() if self.lowercase else token

    def doc_words(self, text: str) -> list[str]:
        """The processed words of a document, in order (phrase positions)."""
        words: list[str] = []
        check_max = self.kind != "prefix"
        for raw in self._split(text):
            token = self._normalise(raw)
            if token.lower() in self.stopwords:
                continue
            if self.min_len is not None and len(token) < self.min_len:
                continue
            if check_max and self.max_len is not None and len(token) > self.max_len:
                continue
            words.append(token)
        return words

    def index_terms(self, words: list[str]) -> set[str]:
        """What a document is indexed under: its words, or for `prefix` their prefixes."""
        if self.kind != "prefix":
            return set(words)
        lo = self.min_len or 1
        terms: set[str] = set()
        for word in words:
            top = len(word) if self.max_len is None else min(len(word), self.max_len)
            terms.update(word[:n] for n in range(lo, top + 1))
        return terms

    def query_terms(self, text: str) -> list[str]:
        if self.kind != "prefix":
            return self.doc_words(text)
        # A query word may be the start of a longer one, so stopwords do not apply to it.
        terms: list[str] = []
        for raw in _WORD.findall(text):
            token = self._normalise(raw)
            if self.min_len is not None and len(token) < self.min_len:
                continue
            terms.append(token if self.max_len is None else token[: self.max_len])
        return terms

    def phrase_in(self, words: list[str], phrase: list[str]) -> bool:
        """Whether the phrase terms occur consecutively in the document words."""
        k = len(phrase)
        if k == 0 or k > len(words):
            return False
        if self.kind == "prefix":
            return any(
                all(words[i + j].startswith(phrase[j]) for j in range(k))
                for i in range(len(words) - k + 1)
            )
        return any(words[i : i + k] == phrase for i in range(len(words) - k + 1))
