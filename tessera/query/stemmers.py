"""Snowball stemmers, as Qdrant's `rust-stemmers` applies them.

`snowballstemmer` 2.2 generates the same algorithms as the Snowball release `rust-stemmers`
was built from (checked against Qdrant Edge on ~60k words per language). One difference is
bridged here: the older Russian algorithm does not fold yo (U+0451) into ie (U+0435) before
stemming, and it treats yo as a consonant, so the letter is hidden from the newer stemmer
behind a private-use character that it also treats as a consonant, and put back afterwards.

The older Arabic algorithm also deletes punctuation (`!"%*,./:;?\\` and the Arabic comma,
semicolon, question mark, percent, decimal and thousands separators) from the word first.

Known difference left: Finnish words holding letters outside the Finnish alphabet (dotless i,
e acute, ...) before a case ending are sometimes cut one letter differently.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache

# The `stemmer.language` values Qdrant accepts (`SnowballLanguage`).
SNOWBALL_LANGUAGES = (
    "arabic", "armenian", "danish", "dutch", "english", "finnish", "french", "german",
    "greek", "hungarian", "italian", "norwegian", "portuguese", "romanian", "russian",
    "spanish", "swedish", "tamil", "turkish",
)  # fmt: skip
# The short names Qdrant's `SnowballLanguage` also accepts (serde aliases).
SNOWBALL_ALIASES = {
    "ar": "arabic", "hy": "armenian", "da": "danish", "nl": "dutch", "en": "english",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hu": "hungarian",
    "it": "italian", "no": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish",
}  # fmt: skip


def canonical_stemmer(raw: object) -> object:
    """A `stemmer` parameter with its language's short name (`en`) made long, as Qdrant
    reads and keeps it; anything else unchanged."""
    if isinstance(raw, dict) and isinstance(raw.get("language"), str):
        return {**raw, "language": SNOWBALL_ALIASES.get(raw["language"], raw["language"])}
    return raw


_YO, _YO_UPPER, _HIDDEN, _HIDDEN_UPPER = "ё", "Ё", "\ue000", "\ue001"
_ARABIC_PUNCTUATION = str.maketrans(
    dict.fromkeys('!"%*,./:;?\\\u060c\u061b\u061f\u066a\u066b\u066c')
)


@cache
def stemmer_for(language: str) -> Callable[[str], str]:
    """The stem function of a Snowball language (one of `SNOWBALL_LANGUAGES`)."""
    if language not in SNOWBALL_LANGUAGES:
        raise ValueError(f"unknown snowball language {language!r}")
    import snowballstemmer  # ~60 ms to import: loaded when a text index first stems

    stem: Callable[[str], str] = snowballstemmer.stemmer(language).stemWord
    if language == "arabic":
        return _cached(lambda word: stem(word.translate(_ARABIC_PUNCTUATION)))
    if language != "russian":
        return _cached(stem)

    def russian(word: str) -> str:
        if _YO not in word and _YO_UPPER not in word:
            return stem(word)
        hidden = word.replace(_YO, _HIDDEN).replace(_YO_UPPER, _HIDDEN_UPPER)
        return stem(hidden).replace(_HIDDEN, _YO).replace(_HIDDEN_UPPER, _YO_UPPER)

    return _cached(russian)


def _cached(stem: Callable[[str], str]) -> Callable[[str], str]:
    # Documents repeat words a lot; the generated stemmers are pure Python and slow.
    return lru_cache(maxsize=65536)(stem)
