"""What a formula reads besides numbers: payload paths, datetimes and geo points.

Datetimes and distances come from the same code the filters use, so that a formula and a
filter agree on what a datetime is and how far apart two points are.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from tessera.query.datetime_parse import parse_datetime_micros
from tessera.query.geo_math import haversine_m_array

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


def parse_timestamp(text: str) -> float | None:
    """Seconds since the epoch of a datetime Qdrant accepts (the filters' parser), else None."""
    micros = parse_datetime_micros(text)
    return None if micros is None else micros / 1_000_000


def haversine_m(
    lon1: float, lat1: float, lon2: npt.NDArray[np.float64], lat2: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Great-circle distances in meters from one point to many (the filters' formula)."""
    return haversine_m_array(lat2, lon2, lat1, lon1)
