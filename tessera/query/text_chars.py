"""Character classes and tables shared by the text tokenizers, after Rust's and Qdrant's.

`word_runs` splits as Rust's `str::split(|c| !c.is_alphanumeric())` does: Rust's Alphabetic
property also holds combining vowel signs and circled letters, which Python's `isalnum`
lacks (`word_chars.tsv` lists them). `whitespace_runs` splits at Rust's `White_Space`.
`fold_to_ascii` is Qdrant's `ascii_folding` (Lucene's table, `ascii_folding.tsv`); both
tables were derived from Qdrant Edge over the whole Basic Multilingual Plane.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

_RUST_WHITESPACE = re.compile(
    "[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
)


def data_lines(name: str) -> list[str]:
    """The non-comment lines of a data file shipped in this package."""
    text = resources.files("tessera.query").joinpath(name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _extra_word_chars() -> str:
    """The ranges of `word_chars.tsv`, as the inside of a regex character class."""
    extra = []
    for line in data_lines("word_chars.tsv"):
        first, last = (int(x, 16) for x in line.split("\t"))
        extra.append(re.escape(chr(first)) + ("-" + re.escape(chr(last)) if last > first else ""))
    return "".join(extra)


EXTRA_WORD_CHARS = _extra_word_chars()
# A regex alternation matching one character Rust's `char::is_alphanumeric` accepts.
WORD_CHAR = f"[^\\W_]|[{EXTRA_WORD_CHARS}]"
# Runs of those characters and underscores, one character class (an alternation per
# character is twice as slow); `word_runs` splits them at the underscores.
_WORD_OR_UNDERSCORE = re.compile(f"[\\w{EXTRA_WORD_CHARS}]+")
# An ASCII text's word characters (Rust's and Python's agree there): the common case.
_ASCII_WORD = re.compile("[A-Za-z0-9]+")


@lru_cache(maxsize=1)
def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for line in data_lines("ascii_folding.tsv"):
        code, replacement = line.split("\t", 1)
        table[int(code, 16)] = replacement
    return table


def word_runs(text: str) -> list[str]:
    """Runs of alphanumeric characters, as Rust's `split(!char::is_alphanumeric)`."""
    if text.isascii():
        return _ASCII_WORD.findall(text)
    runs: list[str] = _WORD_OR_UNDERSCORE.findall(text)
    if "_" in text:
        return [word for run in runs for word in run.split("_") if word]
    return runs


def whitespace_runs(text: str) -> list[str]:
    """Runs of non-whitespace characters, as Rust's `split_whitespace`."""
    return [t for t in _RUST_WHITESPACE.split(text) if t]


def fold_to_ascii(text: str) -> str:
    """Qdrant's ASCII folding (`ascii_folding: true`)."""
    if text.isascii():
        return text
    return text.translate(_fold_table())
