"""Datetime strings as Qdrant reads them, as microseconds since the Unix epoch (UTC).

Qdrant accepts RFC 3339 and a few relaxations of it, in payloads (datetime index, datetime
range on unindexed fields) and in filter bounds alike: a space instead of `T`, no seconds,
no time at all, no offset (read as UTC), an offset of hours only (`+01`), a space before the
offset, ` UTC`, a lowercase `z`, and fractions finer than a microsecond (cut to microseconds).
qdrant-client's local mode reads them with this exact set of `strptime` layouts; using the
same layouts keeps both sides agreeing on every edge (one-digit months, say).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

_LAYOUTS = (
    *(
        f"%Y-%m-%d{sep}{clock}{zone}"
        for zone, clocks in (
            ("%z", ("%H:%M:%S.%f", "%H:%M:%S")),
            (" %z", ("%H:%M:%S.%f", "%H:%M:%S")),
            ("", ("%H:%M:%S.%f", "%H:%M:%S", "%H:%M")),
        )
        for clock in clocks
        for sep in ("T", " ")
    ),
    "%Y-%m-%d",
)

# A leap second ("23:59:60", any minute in fact): chrono, which Qdrant parses with, reads
# second 60 as the last second's repetition, one second past :59 in a timestamp; Python's
# datetime refuses it.
_LEAP_SECOND = re.compile(r"^(\S+[T ]\d{1,2}:\d{1,2}:)60(?!\d)")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_DAY = 86_400_000_000


def _normalise(text: str) -> str:
    text = text.lstrip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    elif text.endswith("z"):
        text = text[:-1] + "Z"
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - dot > 7:
            # datetime stops at microseconds; finer digits are dropped, not rejected
            text = text[: dot + 7] + text[end:]
    return text


def _try_layouts(text: str) -> datetime | None:
    for layout in _LAYOUTS:
        try:
            dt = datetime.strptime(text, layout)
        except ValueError:
            continue
        return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    return None


def to_micros(dt: datetime) -> int:
    if dt.utcoffset() is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return delta.days * _US_PER_DAY + delta.seconds * 1_000_000 + delta.microseconds


@lru_cache(maxsize=65536)
def parse_datetime_micros(text: str) -> int | None:
    """Microseconds since the epoch, or None when Qdrant would not read it as a datetime."""
    text = _normalise(text)
    leap = _LEAP_SECOND.match(text)
    if leap is not None:
        at_59 = parse_datetime_micros(f"{leap[1]}59{text[leap.end() :]}")
        return None if at_59 is None else at_59 + 1_000_000
    dt = _try_layouts(text)
    if dt is None:
        tail = text[-3:]
        # strptime wants minutes in an offset; an hours-only one gets them added
        if len(tail) == 3 and tail[0] in "+-" and tail[1:].isdigit():
            dt = _try_layouts(text + ":00")
    if dt is None:
        return None
    try:
        return to_micros(dt)
    except OverflowError:
        return None
