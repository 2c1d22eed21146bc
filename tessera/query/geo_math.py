"""Geo predicates, one point at a time (payload checks) and over numpy arrays (the geo index).

Both forms evaluate the same float expressions in the same order, so a point on an edge or
at exactly the radius is decided the same way with and without an index (up to the last bit
of numpy's sin/cos, which may differ from libm's by an ulp). The rules are Qdrant's, as its
local mode states them:

- radius: haversine distance on a sphere of the IUGG mean radius, strictly less than radius;
- bounding box: strictly inside; a box whose left edge is east of its right edge wraps
  around the antimeridian;
- polygon: ray casting on (lat, lon) pairs, a closing point that repeats the first ignored;
  a point on the exterior ring is outside, a point on an interior ring is in the hole.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6371008.8

LatLon = tuple[float, float]
Ring = tuple[LatLon, ...]
F64 = npt.NDArray[np.float64]
BoolMask = npt.NDArray[np.bool_]


def geo_point_of(value: Any) -> tuple[float, float] | None:
    """(lat, lon) of a payload geo point: an object whose `lat` and `lon` are finite JSON
    numbers (booleans excluded). Out-of-range coordinates still count, as in local mode."""
    if not isinstance(value, dict):
        return None
    lat: Any = value.get("lat")
    lon: Any = value.get("lon")
    if type(lat) not in (int, float) or type(lon) not in (int, float):
        return None
    try:
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
    except OverflowError:
        return None
    return (lat, lon)


def valid_geo_point_of(value: Any) -> tuple[float, float] | None:
    """(lat, lon) of a geo point a payload index holds: Qdrant's index deserializes
    `GeoPoint`, which refuses `lat` outside [-90; 90] or `lon` outside [-180; 180] (a
    payload check reads them unchecked: `geo_point_of`)."""
    point = geo_point_of(value)
    if point is None or not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
        return None
    return point


def haversine_m(lat: float, lon: float, c_lat: float, c_lon: float) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (lon, lat, c_lon, c_lat))
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return EARTH_RADIUS_M * (2 * math.asin(math.sqrt(a)))


def haversine_m_array(lat: F64, lon: F64, c_lat: float, c_lon: float) -> F64:
    lat1 = np.radians(lat)
    lon1 = np.radians(lon)
    lat2 = math.radians(c_lat)
    lon2 = math.radians(c_lon)
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * math.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return np.asarray(EARTH_RADIUS_M * (2 * np.arcsin(np.sqrt(a))), dtype=np.float64)


def in_bbox(lat: float, lon: float, top_left: LatLon, bottom_right: LatLon) -> bool:
    (t_lat, l_lon), (b_lat, r_lon) = top_left, bottom_right
    if l_lon > r_lon:
        lon_ok = lon > l_lon or lon < r_lon
    else:
        lon_ok = l_lon < lon < r_lon
    return lon_ok and t_lat > lat > b_lat


def in_bbox_array(lat: F64, lon: F64, top_left: LatLon, bottom_right: LatLon) -> BoolMask:
    (t_lat, l_lon), (b_lat, r_lon) = top_left, bottom_right
    if l_lon > r_lon:
        lon_ok = (lon > l_lon) | (lon < r_lon)
    else:
        lon_ok = (lon > l_lon) & (lon < r_lon)
    return np.asarray(lon_ok & (lat < t_lat) & (lat > b_lat), dtype=np.bool_)


def _open_ring(ring: Ring) -> Ring:
    if len(ring) > 1 and ring[0] == ring[-1]:
        return ring[:-1]
    return ring


def _in_ring(lat: float, lon: float, ring: Ring, boundary_inside: bool) -> bool:
    ring = _open_ring(ring)
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (
            (lon * (xi - xj) + yi * (xj - lat) + yj * (lat - xi) == 0)
            and ((xi - lat) * (xj - lat) <= 0)
            and ((yi - lon) * (yj - lon) <= 0)
        ):
            return boundary_inside
        if ((yi > lon) != (yj > lon)) and (lat < (xj - xi) * (lon - yi) / (yj - yi) + xi):
            inside = not inside
        j = i
    return inside


def in_polygon(lat: float, lon: float, exterior: Ring, interiors: tuple[Ring, ...]) -> bool:
    if not _in_ring(lat, lon, exterior, False):
        return False
    return not any(_in_ring(lat, lon, hole, True) for hole in interiors)


def _in_ring_array(lat: F64, lon: F64, ring: Ring, boundary_inside: bool) -> BoolMask:
    ring = _open_ring(ring)
    inside = np.zeros(lat.shape, dtype=np.bool_)
    on_edge = np.zeros(lat.shape, dtype=np.bool_)
    j = len(ring) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(ring)):
            xi, yi = ring[i]
            xj, yj = ring[j]
            on_edge |= (
                (lon * (xi - xj) + yi * (xj - lat) + yj * (lat - xi) == 0)
                & ((xi - lat) * (xj - lat) <= 0)
                & ((yi - lon) * (yj - lon) <= 0)
            )
            if yj != yi:
                crosses = (yi > lon) != (yj > lon)
                inside ^= crosses & (lat < (xj - xi) * (lon - yi) / (yj - yi) + xi)
            j = i
    # The scalar form stops at the first edge the point lies on; any edge decides the same.
    return np.where(on_edge, boundary_inside, inside)


def in_polygon_array(lat: F64, lon: F64, exterior: Ring, interiors: tuple[Ring, ...]) -> BoolMask:
    result = _in_ring_array(lat, lon, exterior, False)
    for hole in interiors:
        result &= ~_in_ring_array(lat, lon, hole, True)
    return result
