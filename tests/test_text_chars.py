"""`word_runs` (the word tokenizer's split, Rust's `split(!char::is_alphanumeric)`) and the code
tokenizer's identifier runs, against their definition as a regex alternation per character
(the form they were derived and checked against Qdrant Edge in): every code point, next to
others and to underscores, and random mixed texts. Also the tokenizer's memo of processed
words gives what processing each word gives."""

from __future__ import annotations

import random
import re

from tessera.query import code_tokenizer, text_chars
from tessera.query.text_tokenizer import Tokenizer

DEFINED_WORD = re.compile(f"(?:{text_chars.WORD_CHAR})+")
DEFINED_IDENTIFIER = re.compile(f"(?:{text_chars.WORD_CHAR}|_)+")


def texts() -> list[str]:
    every = "".join(map(chr, range(0x110000)))  # lone surrogates included
    rng = random.Random(5)
    alphabet = [chr(rng.randrange(0x20, 0x30000)) for _ in range(300)] + list("ab _-Z09__ ")
    mixed = ["".join(rng.choices(alphabet, k=rng.randrange(40))) for _ in range(3000)]
    return [every, every.replace("\u00e9", "_"), "_".join(every[::7]), *mixed,
            "plain ascii words_and_underscores 42", "", "___"]  # fmt: skip


def test_word_runs_and_identifiers_follow_their_definition() -> None:
    for text in texts():
        assert text_chars.word_runs(text) == DEFINED_WORD.findall(text)
        assert code_tokenizer._IDENTIFIER.findall(text) == DEFINED_IDENTIFIER.findall(text)


def test_the_memo_of_processed_words_changes_nothing() -> None:
    tokenizer = Tokenizer.from_params(
        {
            "tokenizer": "word",
            "stopwords": {"languages": ["english"]},
            "stemmer": {"type": "snowball", "language": "english"},
            "min_token_len": 2,
            "max_token_len": 9,
            "ascii_folding": True,
        }
    )
    rng = random.Random(1)
    words = ["The", "running", "Runners", "ran", "a", "Ünïcödé", "straße", "extraordinarily"]
    for _ in range(200):
        text = " ".join(rng.choices(words, k=rng.randrange(12)))
        expected = [t for raw in text_chars.word_runs(text) if (t := tokenizer.process(raw))]
        assert tokenizer.doc_words(text) == expected
    assert tokenizer._processed  # the memo was used
