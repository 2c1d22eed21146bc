"""Full-text index: an inverted index from terms to documents.

A *document* is one string value of a point (a point with `["a b", "c"]` has two), because a
full-text condition must be satisfied within a single string, as on the payload. Terms are
interned to ids; the postings map term id -> document id, and `_doc_offset` maps documents
back to points. Each document's word sequence is kept for phrase checks, which verify word
order only on the documents that already contain every phrase term.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.segment.field_index import BoolMask, FieldIndex, owners_mask
from tessera.segment.field_schema import FieldSchema
from tessera.segment.postings import I64, Postings
from tessera.segment.text_tokenizer import Tokenizer


class TextIndex(FieldIndex):
    data_type = "text"

    def __init__(self, key: str, schema: FieldSchema) -> None:
        super().__init__(key, schema)
        self.tokenizer = Tokenizer.from_params(schema.params)
        self._postings = Postings(np.int64)
        self._terms: dict[str, int] = {}
        self._doc_offset: npt.NDArray[np.int64] = np.zeros(64, dtype=np.int64)
        self._doc_words: list[list[str] | None] = []
        self._docs_of: dict[int, list[int]] = {}

    def _convert(self, value: Any) -> Any | None:
        return value if isinstance(value, str) else None

    def _term_id(self, term: str) -> int:
        found = self._terms.get(term)
        if found is None:
            found = self._terms[term] = len(self._terms)
        return found

    def _store(self, offset: int, values: list[Any]) -> None:
        self._drop(offset)
        docs: list[int] = []
        for text in dict.fromkeys(values):
            doc = len(self._doc_words)
            if doc >= len(self._doc_offset):
                grown = np.zeros(2 * len(self._doc_offset), dtype=np.int64)
                grown[:doc] = self._doc_offset
                self._doc_offset = grown
            self._doc_offset[doc] = offset
            words = self.tokenizer.doc_words(text)
            self._doc_words.append(words)
            terms = [self._term_id(t) for t in self.tokenizer.index_terms(words)]
            self._postings.replace(doc, sorted(terms))
            docs.append(doc)
        if docs:
            self._docs_of[offset] = docs

    def _drop(self, offset: int) -> None:
        for doc in self._docs_of.pop(offset, ()):
            self._postings.remove(doc)
            self._doc_words[doc] = None

    def _docs_with_all(self, terms: list[str]) -> I64:
        ids = [self._terms.get(t) for t in dict.fromkeys(terms)]
        if not ids or any(i is None for i in ids):
            return np.empty(0, dtype=np.int64)
        docs: I64 | None = None
        for i in ids:
            assert i is not None
            found = np.unique(self._postings.owners_of_keys([i]))
            docs = found if docs is None else np.intersect1d(docs, found, assume_unique=True)
            if len(docs) == 0:
                break
        assert docs is not None
        return docs

    def _offsets_mask(self, docs: I64, n: int) -> BoolMask:
        return owners_mask(self._doc_offset[docs], n)

    def match_text(self, text: str, any_token: bool, n: int) -> BoolMask | None:
        terms = self.tokenizer.query_terms(text)
        if not any_token:
            return self._offsets_mask(self._docs_with_all(terms), n)
        ids: list[float] = [
            i for t in dict.fromkeys(terms) if (i := self._terms.get(t)) is not None
        ]
        return self._offsets_mask(self._postings.owners_of_keys(ids), n)

    def match_phrase(self, phrase: str, n: int) -> BoolMask | None:
        terms = self.tokenizer.query_terms(phrase)
        docs = self._docs_with_all(terms)
        keep = [
            int(d)
            for d in docs
            if (words := self._doc_words[int(d)]) is not None
            and self.tokenizer.phrase_in(words, terms)
        ]
        return self._offsets_mask(np.asarray(keep, dtype=np.int64), n)
