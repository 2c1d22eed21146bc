"""Geo index: valid geo points as (lat, lon) columns sorted by latitude.

Every shape is first narrowed to a latitude band by binary search (a circle cannot reach
further in latitude than its radius; a box or polygon no further than its own extent), and
only the points inside the band are tested exactly, with the same expressions the payload
check uses (`geo_math`).

State (field_index_state): the live entries as `lat` (sorted), `owners` and `lon` columns.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tessera.query.geo_math import (
    EARTH_RADIUS_M,
    F64,
    Ring,
    haversine_m_array,
    in_bbox_array,
    in_polygon_array,
    valid_geo_point_of,
)
from tessera.segment.field_index import BoolMask, FieldIndex, owners_mask
from tessera.segment.field_index_state import StaleIndexState
from tessera.segment.field_schema import FieldSchema
from tessera.segment.postings import KeyArray, Postings

if TYPE_CHECKING:
    from tessera.segment.field_index_state import StateReader, StateWriter

# Slack on the latitude band, in degrees, far above float rounding and far below a metre.
_BAND_SLACK = 1e-6


class GeoIndex(FieldIndex):
    data_type = "geo"

    def __init__(self, key: str, schema: FieldSchema) -> None:
        super().__init__(key, schema)
        self._postings = Postings(np.float64)

    def _convert(self, value: Any) -> Any | None:
        return valid_geo_point_of(value)

    def _store(self, offset: int, values: list[Any]) -> None:
        points = list(dict.fromkeys((float(lat), float(lon)) for lat, lon in values))
        self._postings.replace(offset, [p[0] for p in points], [p[1] for p in points])

    def _drop(self, offset: int) -> None:
        self._postings.remove(offset)

    def _export_typed(self, w: StateWriter, size: int) -> None:
        lats, owners, lons = self._postings.export_state()
        w.meta["entries"] = len(lats)
        w.put("lat", lats)
        w.put("owners", owners)
        w.put("lon", lons)

    def _import_typed(self, r: StateReader, size: int) -> BoolMask:
        entries = r.count("entries")
        lats = r.array("lat", np.float64, entries)
        owners = r.array("owners", np.int64, entries)
        lons = r.array("lon", np.float64, entries)
        if not bool(np.isfinite(lats).all() and np.isfinite(lons).all()):
            raise r.fail("a geo point is not finite")
        if bool((np.abs(lats) > 90).any() or (np.abs(lons) > 180).any()):
            # saved by a build that indexed out-of-range points (Qdrant's index leaves them
            # to the payload): consistent, only built the old way
            raise StaleIndexState("geo field index state: holds points outside the valid range")
        try:
            live = self._postings.load_state(lats, owners, lons, size)
        except ValueError as exc:
            raise r.fail(str(exc)) from exc
        has: BoolMask = live[:size] > 0
        return has

    def geo_radius(self, lat: float, lon: float, radius: float, n: int) -> BoolMask | None:
        if not radius > 0:
            return np.zeros(n, dtype=np.bool_)
        reach = math.degrees(radius / EARTH_RADIUS_M) + _BAND_SLACK

        def test(lats: KeyArray, lons: F64) -> BoolMask:
            return haversine_m_array(lats.astype(np.float64), lons, lat, lon) < radius

        owners = self._postings.owners_where_in_range(lat - reach, lat + reach, test)
        return owners_mask(owners, n)

    def geo_bbox(
        self, top_left: tuple[float, float], bottom_right: tuple[float, float], n: int
    ) -> BoolMask | None:
        def test(lats: KeyArray, lons: F64) -> BoolMask:
            return in_bbox_array(lats.astype(np.float64), lons, top_left, bottom_right)

        owners = self._postings.owners_where_in_range(bottom_right[0], top_left[0], test)
        return owners_mask(owners, n)

    def geo_polygon(self, exterior: Ring, interiors: tuple[Ring, ...], n: int) -> BoolMask | None:
        lats = [p[0] for p in exterior]

        def test(keys: KeyArray, lons: F64) -> BoolMask:
            return in_polygon_array(keys.astype(np.float64), lons, exterior, interiors)

        owners = self._postings.owners_where_in_range(min(lats), max(lats), test)
        return owners_mask(owners, n)
