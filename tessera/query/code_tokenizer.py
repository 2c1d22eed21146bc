"""Qdrant's `code` tokenizer: source-code identifiers split into their words.

An identifier is a run of alphanumeric characters (Rust's `char::is_alphanumeric`, as the
`word` tokenizer) and underscores; everything else separates. One that starts with a digit is
a number (`1_000_000`, `0xFF`, `2HTTP_Server`): one token, its underscores dropped. Any other
gives:

- its words: the parts between underscores, each split at case changes: before an upper
  case letter that follows a lower case letter or a digit (`fooBar`, `value2String`), and
  before the last letter of an upper case run that a lower case letter follows
  (`HTTPServer` -> `HTTP`, `Server`); letters and digits otherwise stay together
  (`utf8`, `ABC123def`);
- with lowercasing on (the default), the joined words too: of each underscore part that has
  several words (`fooBar_baz` -> `foobar`), and of the whole identifier when it has several
  (`foobarbaz`, `getusername` for both `getUserName` and `get_user_name`). Without
  lowercasing Qdrant gives the words only.

Every token then goes through the token processor like any other (lowercase, folding,
stopwords, stemming, length limits). What Qdrant Edge answers is the reference
(tests/test_text_tokenizer_code.py).
"""

from __future__ import annotations

import re

from tessera.query.text_chars import EXTRA_WORD_CHARS

_IDENTIFIER = re.compile(f"[\\w{EXTRA_WORD_CHARS}]+")  # word characters and underscores


def _case_words(part: str) -> list[str]:
    """One underscore-free part split at its case changes."""
    words: list[str] = []
    start = 0
    for i in range(1, len(part)):
        ch, before = part[i], part[i - 1]
        if not ch.isupper():
            continue
        after_lower = before.islower() or before.isdigit()
        # the last capital of a run that a lower case letter follows starts a word
        run_end = before.isupper() and i + 1 < len(part) and part[i + 1].islower()
        if after_lower or run_end:
            words.append(part[start:i])
            start = i
    words.append(part[start:])
    return words


def code_tokens(text: str, lowercase: bool) -> list[str]:
    """The raw tokens of a text for the `code` tokenizer (see the module docstring)."""
    tokens: list[str] = []
    for identifier in _IDENTIFIER.findall(text):
        if identifier[0].isdigit():  # a number (`1_000_000`, `0xFF`): one token
            tokens.append(identifier.replace("_", ""))
            continue
        parts = [_case_words(p) for p in identifier.split("_") if p]
        words = [w for part in parts for w in part]
        tokens.extend(words)
        if not lowercase:
            continue
        if len(parts) > 1:
            tokens.extend("".join(part) for part in parts if len(part) > 1)
        if len(words) > 1:
            tokens.append("".join(words))
    return tokens
