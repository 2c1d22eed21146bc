"""Word segmenters of Qdrant's `multilingual` tokenizer for Chinese, Japanese and Thai.

- Chinese: jieba's dictionary and cut without its HMM (the `rjieba` package binds jieba-rs
  0.11, charabia has 0.10.3: same dictionary, no difference found); charabia then re-cuts a
  word of three or more characters that is not plain ASCII greedily into dictionary
  bigrams, else trigrams, else single characters.
  Chinese words lose their compatibility forms (NFKD) and charabia folds character variants
  (`segmentation/kvariants.tsv`, e.g. 学 -> 學, 应 -> 應).
- Japanese: vaporetto (the `vaporetto` package, the same 0.6 library) with the model Qdrant
  embeds, `segmentation/bccwj-suw_c1.0.model.xz` (vaporetto-models v0.5.0, MIT or
  Apache-2.0; sha512 226c9c82...02bcb as Qdrant checks it); its words are left as written.
- Thai: charabia's dictionary (`segmentation/thai_words.txt.xz`, PyThaiNLP's words): the
  longest dictionary word at each point, else one character; words are decomposed (NFKD)
  and lose their nonspacing marks (Thai's vowel and tone marks, and those of no script).

Each dictionary or model loads on first use only (when such text is met), from package data
read as bytes: nothing is written anywhere.
"""

from __future__ import annotations

import lzma
import re
import unicodedata
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from tessera.query.text_chars import WORD_CHAR, data_lines

_ALNUM = re.compile(WORD_CHAR)


def _nonspacing_marks() -> re.Pattern[str]:
    """A regex class of the nonspacing marks charabia takes off Latin, Greek, Hebrew, Arabic
    and Thai words (its `marks.bin`, as far as such words can hold them)."""
    ranges: list[str] = []
    for line in data_lines("segmentation/nonspacing_marks.tsv"):
        first, last = (chr(int(x, 16)) for x in line.split("\t"))
        ranges.append(re.escape(first) + ("-" + re.escape(last) if last > first else ""))
    return re.compile(f"[{''.join(ranges)}]")


NONSPACING_MARKS = _nonspacing_marks()


def is_alphabetic(ch: str) -> bool:
    """Rust's `char::is_alphabetic`: alphanumeric and not a digit (letter numbers count)."""
    return _ALNUM.match(ch) is not None and unicodedata.category(ch) not in ("Nd", "No")


def has_letter(token: str) -> bool:
    """Whether a token has an alphabetic character (Python's letters all are)."""
    return any(ch.isalpha() for ch in token) or any(is_alphabetic(ch) for ch in token)


def _data_bytes(name: str) -> bytes:
    data = resources.files("tessera.query").joinpath(f"segmentation/{name}").read_bytes()
    return lzma.decompress(data) if name.endswith(".xz") else data


# ------------------------------------------------------------------------------- Chinese


@cache
def _jieba() -> Any:
    import rjieba  # its import loads jieba's dictionary (about 0.1 s, 33 MB)

    return rjieba


@cache
def _kvariants() -> dict[int, str]:
    table: dict[int, str] = {}
    for line in data_lines("segmentation/kvariants.tsv"):
        source, target = line.split("\t")
        table[int(source, 16)] = chr(int(target, 16))
    return table


def _regroup(word: str, has_word: Callable[[str], bool]) -> list[str]:
    """charabia's second cut of a jieba word: dictionary bigrams, else trigrams, else one
    character, greedily from the left."""
    if len(word) <= 2 or (word.isascii() and word.isalnum()):
        return [word]
    out: list[str] = []
    i = 0
    while i < len(word):
        for size in (2, 3, 1):
            piece = word[i : i + size]
            if len(piece) == size and (size == 1 or has_word(piece)):
                out.append(piece)
                i += size
                break
    return out


def chinese_words(piece: str) -> list[str]:
    """The raw words of a piece of Chinese text (no separators in it)."""
    jieba = _jieba()
    return [w for word in jieba.cut(piece, False) for w in _regroup(word, jieba.has_word)]


def normalise_chinese(word: str, fold_variants: bool) -> str:
    """charabia's normalisation of a Han/kana word: NFKD, and for Chinese the character
    variants folded (charabia lowercases only scripts with case: Qdrant's `lowercase` does)."""
    word = unicodedata.normalize("NFKD", word)
    return word.translate(_kvariants()) if fold_variants else word


# ---------------------------------------------------------------------------------- Thai


@cache
def _thai_dictionary() -> tuple[frozenset[str], dict[str, tuple[int, ...]]]:
    """The Thai words, and for each first character the lengths of its words, longest first."""
    text = _data_bytes("thai_words.txt.xz").decode("utf-8")
    words = frozenset(w for w in text.splitlines() if w and not w.startswith("#"))
    lengths: dict[str, set[int]] = {}
    for w in words:
        lengths.setdefault(w[0], set()).add(len(w))
    return words, {ch: tuple(sorted(n, reverse=True)) for ch, n in lengths.items()}


def thai_words(piece: str) -> list[str]:
    """charabia's Thai segmentation of a piece: the longest dictionary word at each point,
    else a single character."""
    words, lengths = _thai_dictionary()
    out: list[str] = []
    i, n = 0, len(piece)
    while i < n:
        size = 1
        for length in lengths.get(piece[i], ()):
            if i + length <= n and piece[i : i + length] in words:
                size = length
                break
        out.append(piece[i : i + size])
        i += size
    return out


def normalise_thai(word: str) -> str:
    """NFKD, and the nonspacing marks removed (Thai's and those of no script)."""
    return NONSPACING_MARKS.sub("", unicodedata.normalize("NFKD", word))


# ------------------------------------------------------------------------------ Japanese


@cache
def _vaporetto() -> Any:
    import vaporetto

    model = _data_bytes("bccwj-suw_c1.0.model.xz")
    # Qdrant predicts on the raw text: no normalisation, no tags
    return vaporetto.Vaporetto(model, predict_tags=False, norm=False)


def japanese_words(text: str) -> list[str]:
    """vaporetto's words of a whole text, as written, those with a letter only."""
    if not text:
        return []
    return [s for token in _vaporetto().tokenize(text) if has_letter(s := token.surface())]
