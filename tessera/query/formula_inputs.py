"""What a formula reads besides numbers: payload paths, datetimes and geo points.

Kept small and free of segment code on purpose (the query layer knows nothing of
segments); the grammar and formats are Qdrant's, as qdrant-client's local mode reproduces
them, so the formula agrees with filters on what a path or a datetime is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import numpy.typing as npt

# Qdrant's JsonPath: a key is a run of alphanumerics, `_`, `-` (or any quoted text), then
# any number of `[]` / `[N]`, segments joined by `.`.
_SEGMENT = r'(?:"[^"]*"|[\w-]+)(?:\[\d*\])*'
_PATH = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_MAX_INDEX = 2**64 - 1


def is_valid_path(text: str) -> bool:
    """Whether `text` is a payload path Qdrant accepts."""
    if not _PATH.fullmatch(text):
        return False
    # \w admits Unicode digits and letters like Rust's is_alphanumeric; an index must be
    # ASCII digits within u64.
    for index in re.findall(r"\[([^\]]*)\]", re.sub(r'"[^"]*"', "", text)):
        if index and (not index.isascii() or int(index) > _MAX_INDEX):
            return False
    return True


_LAYOUTS = (
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f %z",
    "%Y-%m-%d %H:%M:%S.%f %z",
    "%Y-%m-%dT%H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


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
            # Qdrant keeps nanoseconds; datetime stops at microseconds, so cut, not reject.
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


@lru_cache(maxsize=65536)
def parse_timestamp(text: str) -> float | None:
    """Seconds since the epoch (with the fraction) of a datetime Qdrant accepts, else None.

    No offset means UTC; an hours-only offset (`+01`) is accepted as Qdrant does.
    """
    norm = _normalise(text)
    dt = _try_layouts(norm)
    if dt is None:
        tail = norm[-3:]
        if len(tail) == 3 and tail[0] in "+-" and tail[1:].isdigit():
            dt = _try_layouts(norm + ":00")
    if dt is None:
        return None
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        return None


# Mean Earth radius in meters (IUGG), as Qdrant's haversine uses.
EARTH_RADIUS_M = 6371008.8


def haversine_m(
    lon1: float, lat1: float, lon2: npt.NDArray[np.float64], lat2: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Great-circle distances in meters from one point to many."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2.0) ** 2
    return np.asarray(
        2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0))), dtype=np.float64
    )
