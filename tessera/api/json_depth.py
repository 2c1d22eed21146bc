"""serde_json's nesting limit on request bodies, checked before parsing.

Qdrant reads every JSON body with serde_json, which refuses a document nested 128 levels
deep ("recursion limit exceeded at line L column C"): a payload nested a thousand levels
is a 400 there, never a crash. The scan is C passes over the raw bytes, no Python step
per byte: `bytes.translate` first keeps only brackets and quotes (a vector batch is almost
all digits, so this skeleton is small), numpy counts the depth on that; only a body that is
too deep (or has escapes) is scanned again whole, for the position of the error.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest

LIMIT = 128  # serde_json's remaining_depth: the 128th open bracket is refused

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_STEP = np.zeros(256, dtype=np.int8)
for _open in b"[{":
    _STEP[_open] = 1
for _close in b"]}":
    _STEP[_close] = -1
_MATTERS = (_STEP != 0) | (np.arange(256) == _QUOTE)
# Every byte but the brackets and the quote (and the backslash, whose presence sends the
# body to the exact scan): what `translate` deletes.
_NOISE = bytes(b for b in range(256) if not _MATTERS[b] and b != _BACKSLASH)


def check_depth(body: bytes) -> None:
    """Raise serde_json's 400 where `body` opens its 128th nested array or object."""
    skeleton = body.translate(None, _NOISE)
    if skeleton.count(b"[") + skeleton.count(b"{") < LIMIT:
        return
    if b"\\" not in skeleton and _max_depth(skeleton) < LIMIT:
        return
    _raise_where_too_deep(body)


def _max_depth(skeleton: bytes) -> int:
    """The deepest nesting of a body kept to its brackets and quotes (no escapes)."""
    data = np.frombuffer(skeleton, dtype=np.uint8)
    quotes = data == _QUOTE
    in_string = (np.cumsum(quotes, dtype=np.int32) & 1).astype(bool)
    steps = _STEP[data]
    steps[in_string | quotes] = 0
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def _raise_where_too_deep(body: bytes) -> None:
    data = np.frombuffer(body, dtype=np.uint8)
    if body.find(b"\\") >= 0:  # escaped quotes: the whole body, rare
        at = np.arange(data.size)
        quotes = (data == _QUOTE) & ~_escaped(data)
    else:  # only the bytes that matter: quotes and brackets (few next to the numbers)
        at = np.flatnonzero(_MATTERS[data])
        data = data[at]
        quotes = data == _QUOTE
    in_string = (np.cumsum(quotes, dtype=np.int32) & 1).astype(bool)  # opening quote too
    steps = _STEP[data]
    steps[in_string | quotes] = 0
    too_deep = np.flatnonzero(np.cumsum(steps, dtype=np.int32) >= LIMIT)
    if too_deep.size:
        pos = int(at[too_deep[0]])
        line = body.count(b"\n", 0, pos) + 1
        column = pos - (body.rfind(b"\n", 0, pos) + 1) + 1
        raise BadRequest(
            f"Format error in JSON body: recursion limit exceeded at line {line} column {column}"
        )


def _escaped(data: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """The bytes preceded by an odd run of backslashes (escaped inside a JSON string)."""
    slash = data == _BACKSLASH
    n = slash.size
    index = np.arange(n)
    # start of the backslash run each position belongs to (or follows)
    run_start = np.where(slash & ~np.concatenate(([False], slash[:-1])), index, 0)
    run_start = np.maximum.accumulate(run_start)
    run_len = np.where(slash, index - run_start + 1, 0)  # length of the run ending here
    previous = np.concatenate(([0], run_len[:-1]))
    return (previous & 1).astype(bool)
