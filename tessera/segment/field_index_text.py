"""Full-text index: an inverted index from terms to documents.

A *document* is one string value of a point (a point with `["a b", "c"]` has two). A *unit*
is what a `text` condition and BM25 take as one text: all of a point's strings together (as
Qdrant's index does: `text: "a c"` matches that point), or with `nested` the strings of one
element of the array; a phrase must lie within one document. Terms and document words share
one interned vocabulary; the postings map term id -> document id, `_doc_offset` maps
documents back to points and `_doc_unit` to units. Each document's word sequence is kept, as
vocabulary ids in one flat array, for phrase checks, which verify word order only on the
documents that already contain every phrase term. Documents are only ever appended (a
rewritten point gets new ones); a removed one leaves its words behind until the next export.

A word that is no index term (one cut by a prefix tokenizer's `max_token_len`) is in the
vocabulary too; that is harmless, as a query term is never longer than `max_token_len`, and
a vocabulary id without postings selects nothing, like an unknown term.

State (field_index_state): the vocabulary strings in use (`vocab`), the live documents
renumbered in order (`doc_at`: each one's offset; `word_ids` / `word_start`: its words), the
(term, document) postings renumbered alike, the tokenizer configuration (meta `tokenizer`),
which must equal the schema's on import, and `tokenizer_version` (meta, an int), the
version of the tokenizing rules the tokens were made by (`text_tokenizer.TOKENIZER_VERSION`).
A state of another version, or with none (saved before it was recorded), is consistent but
holds tokens this build would not make: import raises `StaleIndexState` before reading
anything else, and the segment loader rebuilds the index from the payloads. A `nested`
index also saves `doc_unit` (each document's unit, renumbered in order; meta `units`).

Phrase checks need `phrase_matching: true`; without it a `phrase` condition selects
nothing, as in Qdrant, whose index then keeps no word positions.

An index with `scoring` (BM25, `shard/text_rank`) also answers how often a term occurs in a
unit and how many tokens the unit holds (`term_counts`, `unit_lengths`). It keeps every
string value, repeats included (an index without scoring or `nested` keeps each distinct
string of a point once), and records it in the state's meta (`every_value`); a scoring or
nested index's state without it is rebuilt from the payloads. Unit lengths are not stored:
import adds them up from the saved term counts.
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tessera.query.text_tokenizer import TOKENIZER_VERSION, Tokenizer
from tessera.segment.field_index import BoolMask, FieldIndex, owners_mask
from tessera.segment.field_index_state import StaleIndexState
from tessera.segment.field_schema import FieldSchema
from tessera.segment.postings import F64, I64, Postings

if TYPE_CHECKING:
    from tessera.segment.field_index_state import StateReader, StateWriter


class TextIndex(FieldIndex):
    data_type = "text"
    _bulk_clear = False  # `_store` of no strings still sets a unit's counts (`_set_unit_counts`)
    _bulk_store = True
    _store_inline = True

    def __init__(self, key: str, schema: FieldSchema) -> None:
        super().__init__(key, schema)
        self.tokenizer = Tokenizer.from_params(schema.params)
        # Qdrant keeps word positions only with `phrase_matching: true`; without them a
        # `phrase` condition on the index selects nothing (no error), as Qdrant Edge answers.
        self.phrase_matching = schema.param("phrase_matching") is True
        self._postings = Postings(np.int64)
        self._terms: dict[str, int] = {}
        self._vocab: list[str] = []
        self._docs = 0
        self._doc_offset: npt.NDArray[np.int64] = np.zeros(64, dtype=np.int64)
        # Document d's words: _words[_word_at[d] : _word_at[d + 1]]; len(_word_at) is
        # len(_doc_offset) + 1. _words is only written past _word_at[_docs].
        self._word_at: npt.NDArray[np.int64] = np.zeros(65, dtype=np.int64)
        self._words: npt.NDArray[np.int64] = np.zeros(256, dtype=np.int64)
        self._docs_of: dict[int, list[int]] = {}
        self.scoring = schema.param("scoring") not in (None, False)
        # A *unit* is what full-text conditions and BM25 take as one text: a point (all its
        # strings), or with `nested` one element of the array (its strings). Without
        # `nested` a unit's number is the point's offset; with it units are numbered as
        # they are made (`_unit_offset`: each one's point, `_units_of`: a point's units).
        self.per_element = self._nested is not None
        self._doc_unit: npt.NDArray[np.int64] = np.zeros(64, dtype=np.int64)
        self._unit_len: npt.NDArray[np.int64] = np.zeros(64, dtype=np.int64)  # its tokens
        self._unit_offset: npt.NDArray[np.int64] = np.zeros(64, dtype=np.int64)
        self._units = 0
        self._units_of: dict[int, list[int]] = {}
        # BM25: (term, unit) entries with the term's count in the unit as extra value, so a
        # query term's units and counts are one binary search (rebuilt on import from the
        # documents' entries, which carry their own counts).
        self._unit_postings = Postings(np.int64)

    def _convert(self, value: Any) -> Any | None:
        return value if isinstance(value, str) else None

    def _term_id(self, term: str) -> int:
        found = self._terms.get(term)
        if found is None:
            found = self._terms[term] = len(self._vocab)
            self._vocab.append(term)
        return found

    def _store(self, offset: int, values: list[Any]) -> None:
        self._drop(offset)
        docs: list[int] = []
        counts: dict[int, int] = {}
        for text in values if self.scoring else dict.fromkeys(values):
            docs.append(self._index_doc(offset, text, offset, counts))
        if docs:
            self._docs_of[offset] = docs
        if self.scoring:
            self._set_unit_counts(offset, counts)

    def _store_groups(self, offset: int, values: list[Any], groups: list[list[Any]]) -> None:
        self._drop(offset)
        docs: list[int] = []
        units: list[int] = []
        for group in groups:
            if not group:
                continue
            unit = self._units
            self._units += 1
            self._unit_offset = _set_at(self._unit_offset, unit, offset)
            counts: dict[int, int] = {}
            for text in group:  # every string, repeats kept
                docs.append(self._index_doc(offset, text, unit, counts))
            if self.scoring:
                self._set_unit_counts(unit, counts)
            units.append(unit)
        if docs:
            self._docs_of[offset] = docs
            self._units_of[offset] = units

    def _index_doc(self, offset: int, text: str, unit: int, unit_counts: dict[int, int]) -> int:
        """One string as a document of the unit; its term counts are added to the unit's."""
        words = self.tokenizer.doc_words(text)
        word_ids = [self._term_id(w) for w in words]
        doc = self._add_doc(offset, word_ids)
        self._doc_unit = _set_at(self._doc_unit, doc, unit)
        if not self.scoring:
            if self.tokenizer.kind == "prefix":
                terms = [self._term_id(t) for t in self.tokenizer.index_terms(words)]
            else:  # the index terms are the words
                terms = list(set(word_ids))
            self._postings.replace(doc, sorted(terms))
            return doc
        # BM25: each term's count in the document rides along as the entry's extra value
        counts = sorted((self._term_id(t), n) for t, n in self.tokenizer.term_counts(words).items())
        self._postings.replace(doc, [t for t, _ in counts], [n for _, n in counts])
        for term, n in counts:
            unit_counts[term] = unit_counts.get(term, 0) + n
        return doc

    def _set_unit_counts(self, unit: int, counts: dict[int, int]) -> None:
        """A unit's term counts and length (its tokens: the counts' sum)."""
        terms = sorted(counts)
        self._unit_postings.replace(unit, terms, [counts[t] for t in terms])
        self._unit_len = _set_at(self._unit_len, unit, sum(counts.values()))

    def _add_doc(self, offset: int, word_ids: list[int]) -> int:
        doc = self._docs
        if doc >= len(self._doc_offset):
            size = 2 * len(self._doc_offset)
            self._doc_offset = np.concatenate(
                [self._doc_offset, np.zeros(size - len(self._doc_offset), dtype=np.int64)]
            )
            self._word_at = np.concatenate(
                [self._word_at, np.zeros(size + 1 - len(self._word_at), dtype=np.int64)]
            )
        start = int(self._word_at[doc])
        end = start + len(word_ids)
        words = self._words
        # An imported array is exactly full (and may be read-only): the first append grows it.
        if end > len(words) or not words.flags.writeable:
            grown = np.zeros(max(end, 2 * len(words), 256), dtype=np.int64)
            grown[:start] = words[:start]
            self._words = words = grown
        if word_ids:
            words[start:end] = word_ids
        self._word_at[doc + 1] = end
        self._doc_offset[doc] = offset
        self._docs = doc + 1
        return doc

    def _drop(self, offset: int) -> None:
        for doc in self._docs_of.pop(offset, ()):
            self._postings.remove(doc)
        units = self._units_of.pop(offset, []) if self.per_element else [offset]
        for unit in units:
            if unit < len(self._unit_len):
                self._unit_len[unit] = 0
            self._unit_postings.remove(unit)

    def _doc_words(self, doc: int) -> list[str]:
        vocab = self._vocab
        ids = self._words[int(self._word_at[doc]) : int(self._word_at[doc + 1])]
        return [vocab[i] for i in ids.tolist()]

    def _docs_with_all(self, terms: list[str], unit: I64 | None = None) -> I64:
        """The documents holding every term; with `unit` (`_doc_unit`), the units whose
        documents, together, hold every term."""
        ids = [self._terms.get(t) for t in dict.fromkeys(terms)]
        if not ids or any(i is None for i in ids):
            return np.empty(0, dtype=np.int64)
        held: I64 | None = None
        for i in ids:
            assert i is not None
            docs = self._postings.owners_of_keys([i])
            found = np.unique(docs if unit is None else unit[docs])
            held = found if held is None else np.intersect1d(held, found, assume_unique=True)
            if len(held) == 0:
                break
        assert held is not None
        return held

    def _offsets_mask(self, docs: I64, n: int) -> BoolMask:
        return owners_mask(self._doc_offset[docs], n)

    def match_text(self, text: str, any_token: bool, n: int) -> BoolMask | None:
        terms = self.tokenizer.query_terms(text)
        if not any_token:
            units = self._docs_with_all(terms, self._doc_unit)
            return owners_mask(self.unit_offsets(units), n)
        ids: list[float] = [
            i for t in dict.fromkeys(terms) if (i := self._terms.get(t)) is not None
        ]
        return self._offsets_mask(self._postings.owners_of_keys(ids), n)

    def match_phrase(self, phrase: str, n: int) -> BoolMask | None:
        if not self.phrase_matching:
            return np.zeros(n, dtype=np.bool_)
        terms = self.tokenizer.phrase_terms(phrase)
        docs = self._docs_with_all(self.tokenizer.lookup_terms(terms))  # live documents only
        keep = [d for d in docs.tolist() if self.tokenizer.phrase_in(self._doc_words(d), terms)]
        return self._offsets_mask(np.asarray(keep, dtype=np.int64), n)

    # --- BM25 (scoring) -----------------------------------------------------------------

    def unit_lengths(self, n: int) -> I64:
        """Each unit's token count (0: none, or gone): without `nested` the first n
        offsets' (all of a point's strings together), with it every element's made."""
        if self.per_element:
            return self._unit_len[: self._units]
        lengths = self._unit_len[:n]
        if len(lengths) < n:
            lengths = np.concatenate([lengths, np.zeros(n - len(lengths), dtype=np.int64)])
        return lengths

    def unit_offsets(self, units: I64) -> I64:
        """The point offset of each unit."""
        return self._unit_offset[units] if self.per_element else units

    def term_counts(self, term: str, n: int) -> tuple[I64, F64]:
        """The units whose strings hold `term` (a query term), and how often each does:
        its occurrences (a `prefix` tokenizer: the words it starts) over all the strings.
        `n`: the segment's size (units past it, and their offsets, are not asked for)."""
        tid = self._terms.get(term)
        if tid is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        units, counts = self._unit_postings.entries_of_key(tid)
        if not self.per_element:
            inside = units < n
            units, counts = units[inside], counts[inside]
        return units, counts

    # --- state (field_index_state) ------------------------------------------------------

    def _tokenizer_state(self) -> dict[str, Any]:
        t = self.tokenizer
        return {
            "tokenizer": t.kind,
            "lowercase": t.lowercase,
            "ascii_folding": t.ascii_folding,
            "min_token_len": t.min_len,
            "max_token_len": t.max_len,
            "stopwords": sorted(t.stopwords),
            # only when set, so the state of an index without a stemmer keeps its old form
            **({"stemmer": t.stemmer} if t.stemmer else {}),
        }

    def _export_typed(self, w: StateWriter, size: int) -> None:
        keys, owners, extra = self._postings.export_state()
        docs = np.sort(np.fromiter(chain.from_iterable(self._docs_of.values()), np.int64))
        starts, ends = self._word_at[docs], self._word_at[docs + 1]
        lens = ends - starts
        word_start = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(lens, out=word_start[1:])
        # every live document's words, gathered into one run without a Python loop
        gather = np.arange(int(word_start[-1])) + np.repeat(starts - word_start[:-1], lens)
        words = self._words[gather]
        # the vocabulary in use and the live documents, renumbered in order: the postings
        # stay sorted by (term, document)
        present = np.zeros(len(self._vocab), dtype=np.bool_)
        present[keys] = True
        present[words] = True
        used = np.flatnonzero(present)
        vocab_id = np.zeros(len(self._vocab), dtype=np.int64)
        vocab_id[used] = np.arange(len(used))
        doc_id = np.zeros(self._docs, dtype=np.int64)
        doc_id[docs] = np.arange(len(docs))
        vocab = self._vocab
        w.meta["tokenizer"] = self._tokenizer_state()
        w.meta["tokenizer_version"] = TOKENIZER_VERSION
        if self.scoring or self.per_element:
            w.meta["every_value"] = True
        if self.scoring:
            w.meta["term_counts"] = True
            w.put("term_counts", extra)  # each entry's term count in its document
        if self.per_element:
            # the live documents' units, renumbered in order
            units_used, unit_id = np.unique(self._doc_unit[docs], return_inverse=True)
            w.meta["units"] = len(units_used)
            w.put("doc_unit", unit_id.astype(np.int64))
        w.meta.update(
            entries=len(keys), vocab=len(used), docs=len(docs), words=len(words)
        )  # fmt: skip
        w.put("keys", vocab_id[keys])
        w.put("owners", doc_id[owners])
        w.put_strings("vocab", [vocab[i] for i in used.tolist()])
        w.put("doc_at", self._doc_offset[docs])
        w.put("word_ids", vocab_id[words])
        w.put("word_start", word_start)

    def _import_typed(self, r: StateReader, size: int) -> BoolMask:
        version = r.meta.get("tokenizer_version")
        if version != TOKENIZER_VERSION or type(version) is not int:
            raise StaleIndexState(
                f"text field index state: tokens made by tokenizer version {version!r} "
                f"(None: before versions were recorded), this build makes {TOKENIZER_VERSION}"
            )
        if (self.scoring or self.per_element) and r.meta.get("every_value") is not True:
            raise StaleIndexState(
                "text field index state: saved without every string value, which BM25 and "
                "nested indexes need"
            )
        if self.scoring and r.meta.get("term_counts") is not True:
            raise StaleIndexState("text field index state: saved without term counts")
        if self.per_element and "units" not in r.meta:
            raise StaleIndexState("text field index state: saved without nested elements")
        if r.meta.get("tokenizer") != self._tokenizer_state():
            raise r.fail(
                f"built with tokenizer {r.meta.get('tokenizer')!r}, "
                f"the schema asks for {self._tokenizer_state()!r}"
            )
        n_vocab, n_docs = r.count("vocab"), r.count("docs")
        vocab = r.strings("vocab", n_vocab)
        terms = {t: i for i, t in enumerate(vocab)}
        if len(terms) != n_vocab:
            raise r.fail("vocabulary strings repeat")
        doc_at = r.array("doc_at", np.int64, n_docs)
        r.in_range("document offset", doc_at, 0, size)
        words = r.array("word_ids", np.int64, r.count("words"))
        r.in_range("word id", words, 0, n_vocab)
        word_start = r.offsets("word_start", n_docs + 1, len(words))
        entries = r.count("entries")
        keys = r.array("keys", np.int64, entries)
        owners = r.array("owners", np.int64, entries)
        r.in_range("term id", keys[:1], 0, n_vocab)  # keys are checked sorted
        r.in_range("term id", keys[-1:], 0, n_vocab)
        term_counts = r.array("term_counts", np.float64, entries) if self.scoring else None
        if term_counts is not None and not bool((term_counts >= 1).all()):
            raise r.fail("term counts must be at least 1")
        try:
            self._postings.load_state(keys, owners, term_counts, n_docs)
        except ValueError as exc:
            raise r.fail(str(exc)) from exc
        self._terms, self._vocab, self._docs = terms, vocab, n_docs
        capacity = max(n_docs, 64)
        self._doc_offset = np.zeros(capacity, dtype=np.int64)
        self._doc_offset[:n_docs] = doc_at
        self._word_at = np.zeros(capacity + 1, dtype=np.int64)
        self._word_at[: n_docs + 1] = word_start
        self._words = words  # kept as given: only written past its end, after growing
        docs_of: dict[int, list[int]] = {}
        for doc, offset in enumerate(doc_at.tolist()):
            docs_of.setdefault(offset, []).append(doc)
        self._docs_of = docs_of
        if self.per_element:
            units = r.count("units")
            doc_unit = r.array("doc_unit", np.int64, n_docs)
            r.in_range("unit", doc_unit, 0, units)
            self._units = units
            self._unit_offset = np.zeros(max(units, 64), dtype=np.int64)
            self._unit_offset[doc_unit] = doc_at
            units_of: dict[int, list[int]] = {}
            for unit, offset in enumerate(self._unit_offset[:units].tolist()):
                units_of.setdefault(offset, []).append(unit)
            self._units_of = units_of
        else:
            doc_unit = doc_at
        units_made = self._units
        self._doc_unit = np.zeros(max(n_docs, 64), dtype=np.int64)
        self._doc_unit[:n_docs] = doc_unit
        if self.scoring:
            assert term_counts is not None
            self._load_unit_postings(keys, doc_unit[owners], term_counts, max(size, units_made))
        has: BoolMask = np.bincount(doc_at, minlength=size)[:size] > 0
        return has

    def _load_unit_postings(self, keys: I64, units: I64, counts: F64, limit: int) -> None:
        """The (term, unit) entries from the documents' (term, document) ones: a unit's
        documents' counts of a term summed, sorted by (term, unit); and the units' lengths."""
        order = np.lexsort((units, keys))
        keys, units, counts = keys[order], units[order], counts[order]
        first = np.ones(len(keys), dtype=np.bool_)
        first[1:] = (keys[1:] != keys[:-1]) | (units[1:] != units[:-1])
        starts = np.flatnonzero(first)
        summed = np.add.reduceat(counts, starts) if len(starts) else counts
        self._unit_postings.load_state(keys[starts], units[starts], summed, max(limit, 1))
        # a unit's length is its tokens: the sum of its terms' counts (as `_set_unit_counts`)
        lengths = np.bincount(units[starts], weights=summed, minlength=max(limit, 64))
        self._unit_len = lengths.astype(np.int64)


def _set_at(arr: I64, i: int, value: int) -> I64:
    """`arr` with arr[i] = value, grown (doubled) when i is past its end."""
    if i >= len(arr):
        grown = np.zeros(max(i + 1, 2 * len(arr)), dtype=np.int64)
        grown[: len(arr)] = arr
        arr = grown
    arr[i] = value
    return arr
