"""The `multilingual` tokenizer: charabia's segmentation and normalisation, approximated.

What matches Qdrant (checked against Qdrant Edge on its stopword lists of 26 languages):
words are alphanumeric runs that keep the combining marks after their letters (apostrophes,
hyphens, underscores and dots separate, camelCase does not); tokens without a letter (`123`,
`3.14`) are dropped; words are lowercased and left compatibility-decomposed (NFKD: `ﬁ` ->
`fi`, `Ⅻ` -> `xii`, Hangul into jamo); Latin, Greek, Arabic and Hebrew letters lose their
marks (`café` -> `cafe`) and `æ`/`œ` become `ae`/`oe` while `ø` and `ß` stay; a Greek final
sigma becomes a plain one; Arabic alef maksura and teh marbuta are folded and the article
`ال` is cut off a word; Cyrillic, Indic and other scripts keep their marks.

What does not: charabia segments Chinese with jieba's dictionary (and maps some simplified
characters to traditional ones), Japanese with vaporetto's model, Thai with a dictionary.
Here a run of Han, Hiragana, Katakana or Thai characters is split into single characters, so
a query word that is a whole word of the document still matches (as a `text` condition or a
`phrase`), but the tokens, and hence BM25 vectors of such text, differ from Qdrant's.
"""

from __future__ import annotations

import re
import unicodedata

from tessera.query.text_chars import WORD_CHAR

_WORDISH = re.compile(
    r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]"
)
# Latin ligatures, and charabia's Arabic letter folding (alef maksura, teh marbuta)
_LIGATURES = str.maketrans({"æ": "ae", "œ": "oe", "\u0649": "\u064a", "\u0629": "\u0647"})
_STRIP_SCRIPTS = ("LATIN", "GREEK", "ARABIC", "HEBREW")


def _strip_marks(word: str) -> str:
    """Drop the combining marks of Latin, Greek, Arabic and Hebrew letters."""
    decomposed = unicodedata.normalize("NFKD", word)
    if decomposed.isascii():
        return decomposed
    out: list[str] = []
    strip = False
    for ch in decomposed:
        if unicodedata.combining(ch):
            if not strip:
                out.append(ch)
            continue
        name = unicodedata.name(ch, "")
        strip = ch.isascii() or name.startswith(_STRIP_SCRIPTS)
        out.append(ch)
    return "".join(out)


def _normalise(word: str) -> str:
    # charabia writes a final sigma as a plain one
    return _strip_marks(word.lower().translate(_LIGATURES)).replace("\u03c2", "\u03c3")


def _marks() -> str:
    """A regex class of the combining marks (categories Mn, Mc, Me) of the BMP."""
    ranges: list[str] = []
    start = -1
    for cp in range(0x300, 0x10001):
        is_mark = cp < 0x10000 and unicodedata.category(chr(cp)).startswith("M")
        if is_mark and start < 0:
            start = cp
        elif not is_mark and start >= 0:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(cp - 1))}")
            start = -1
    return "".join(ranges)


# A word: a run of alphanumerics (as the `word` tokenizer) that also keeps the marks after
# its letters (Unicode word segmentation does not break before them, while Rust's
# `is_alphanumeric` refuses some, like the virama and the nukta).
_WORD = re.compile(f"(?:{WORD_CHAR})(?:{WORD_CHAR}|[{_marks()}\\u200c\\u200d])*")


def _arabic_article(word: str) -> list[str]:
    # charabia cuts the definite article off an Arabic word: `الكتاب` -> `ال`, `كتاب`
    if len(word) > 2 and word.startswith("ال"):
        return ["ال", word[2:]]
    return [word]


def multilingual_words(text: str) -> list[str]:
    """The raw tokens of a text (before Qdrant's token processor), in order."""
    words: list[str] = []
    for run in _WORD.findall(text):
        # charabia cuts where the script changes, and CJK here into single characters
        pieces = [p for part in _split_scripts(run) for p in _split_keep(part)]
        for piece in pieces:
            token = _normalise(piece)
            if any(ch.isalpha() for ch in token):
                words.extend(_arabic_article(token))
    return words


def _script(ch: str) -> str | None:
    """The script of a letter, by the first word of its Unicode name (None for the rest)."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else None


def _split_scripts(run: str) -> list[str]:
    out: list[str] = []
    start, current = 0, None
    for i, ch in enumerate(run):
        script = _script(ch)
        if script is None:
            continue
        if current is not None and script != current:
            out.append(run[start:i])
            start = i
        current = script
    out.append(run[start:])
    return out


def _split_keep(run: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _WORDISH.finditer(run):
        if m.start() > start:
            out.append(run[start : m.start()])
        out.append(m.group())
        start = m.end()
    if start < len(run):
        out.append(run[start:])
    return out
