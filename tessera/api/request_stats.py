"""Per-endpoint response statistics of this process, as Qdrant keeps them for `/telemetry`
and `/metrics`: REST by (method, route pattern, HTTP status), gRPC by (method, status code).

Recording is on every request's path, so it is one dict lookup and a few additions under a
lock that is never held for longer than that (uvicorn's event loop and the gRPC threads both
record). Only route patterns are keys (`/collections/{collection_name}/points`), never raw
paths, so the table stays as small as the API.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

# Upper bounds (seconds) of the response-duration histogram buckets.
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


class Stats:
    """One endpoint and status: Qdrant's `OperationDurationStatistics`."""

    __slots__ = ("buckets", "count", "fail_count", "last", "max", "min", "total")

    def __init__(self) -> None:
        self.count = 0
        self.fail_count = 0
        self.total = 0.0
        self.min = float("inf")
        self.max = 0.0
        self.last = 0.0  # Unix time of the last response
        self.buckets = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative; last is +Inf

    def add(self, seconds: float, failed: bool) -> None:
        self.count += 1
        self.fail_count += failed
        self.total += seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)
        self.last = time.time()
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1

    def to_json(self, anonymize: bool = False) -> dict[str, Any]:
        """Qdrant's `OperationDurationStatistics` (durations in microseconds)."""
        count = anonymized(self.count) if anonymize else self.count
        out: dict[str, Any] = {"count": count}
        if self.fail_count:
            out["fail_count"] = anonymized(self.fail_count) if anonymize else self.fail_count
        if self.count:
            out["avg_duration_micros"] = self.total / self.count * 1e6
            out["min_duration_micros"] = self.min * 1e6
            out["max_duration_micros"] = self.max * 1e6
            out["total_duration_micros"] = int(self.total * 1e6)
            out["last_responded"] = iso_time(self.last)
        return out

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, responses at most that long) per finite bucket."""
        running = 0
        out = []
        for bound, n in zip(BUCKETS, self.buckets, strict=False):
            running += n
            out.append((bound, running))
        return out


def iso_time(unix: float) -> str:
    """RFC 3339 in UTC with microseconds, as chrono serializes Qdrant's timestamps."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def anonymized(n: int) -> int:
    """Qdrant's anonymization of a count (`impl Anonymize for usize`): `log10` of the count
    as an f32, rounded half away from zero; past 4, that many digits less 4 are zeroed. So
    99999 becomes 99990 (its log10 rounds to 5) and 31623 becomes 31620, while 31622 stays."""
    if n <= 0:
        return n
    log10 = math.floor(float(np.log10(np.float32(n))) + 0.5)
    if log10 <= 4:
        return n
    coeff: int = 10 ** (log10 - 4)
    return n // coeff * coeff


# At most this many collection names are tracked per collection at once: a bound on the
# tables whatever the callers pass (names of deleted collections free their slot when
# `/telemetry` or `/metrics` prunes them).
MAX_TRACKED_COLLECTIONS = 4096


class RequestStats:
    """Global tables, and the same per collection (`per_collection=true` of `/metrics` and
    `/telemetry`). Callers pass a collection only when it exists when the request ends (a
    made-up name answered 200 or 400, as `DELETE /collections/nope` or a create with a bad
    body are, is counted globally only); `prune` drops the collections deleted since, and at
    most `MAX_TRACKED_COLLECTIONS` names are held, so the per-collection tables stay bounded
    by the collections there are."""

    def __init__(self, max_collections: int = MAX_TRACKED_COLLECTIONS) -> None:
        self._lock = threading.Lock()
        self.max_collections = max_collections
        self.rest: dict[tuple[str, str, int], Stats] = {}
        self.grpc: dict[tuple[str, int], Stats] = {}
        self.rest_by_collection: dict[tuple[str, str, str, int], Stats] = {}
        self.grpc_by_collection: dict[tuple[str, str, int], Stats] = {}
        self.collections: set[str] = set()  # the names in the per-collection tables

    def _tracked(self, collection: str) -> bool:
        """Under the lock: whether `collection` has (or now gets) per-collection rows."""
        if collection in self.collections:
            return True
        if len(self.collections) >= self.max_collections:
            return False
        self.collections.add(collection)
        return True

    def record_rest(
        self, method: str, endpoint: str, status: int, seconds: float, collection: str | None
    ) -> None:
        failed = status >= 400
        with self._lock:
            _add(self.rest, (method, endpoint, status), seconds, failed)
            if collection and status != 404 and self._tracked(collection):
                key = (collection, method, endpoint, status)
                _add(self.rest_by_collection, key, seconds, failed)

    def record_grpc(self, method: str, code: int, seconds: float, collection: str | None) -> None:
        with self._lock:
            _add(self.grpc, (method, code), seconds, code != 0)
            if collection and code != NOT_FOUND and self._tracked(collection):
                _add(self.grpc_by_collection, (collection, method, code), seconds, code != 0)

    def prune(self, exists: Callable[[str], bool]) -> None:
        """Drop the per-collection rows of the collections `exists` no longer knows."""
        with self._lock:
            gone = {name for name in self.collections if not exists(name)}
            if not gone:
                return
            self.collections -= gone
            _drop(self.rest_by_collection, gone)
            _drop(self.grpc_by_collection, gone)

    def take_json(self) -> bytes | None:
        """The REST and gRPC tables as JSON, emptied (a read worker's report to its owner,
        which `merge_json` adds into its own); None when nothing was recorded since."""
        with self._lock:
            if not self.rest and not self.grpc:
                return None
            taken: dict[str, dict[Any, Stats]] = {}
            for name, _, _ in _REPORTED:
                taken[name] = getattr(self, name)
                setattr(self, name, {})
            self.collections = set()
        body = {
            name: [[*key, _stats_json(st)] for key, st in table.items()]
            for name, table in taken.items()
        }
        return orjson.dumps(body)

    def merge_json(self, data: bytes) -> None:
        """Adds a read worker's report (`take_json`) into these tables."""
        try:
            body = orjson.loads(data)
            rows = {name: [_row(row, size) for row in body[name]] for name, size, _ in _REPORTED}
        except (ValueError, KeyError, TypeError):
            return  # (from this server's own worker: never, unless versions differ)
        with self._lock:
            for name, _, per_collection in _REPORTED:
                table = getattr(self, name)
                for key, stats in rows[name]:
                    if not per_collection or self._tracked(key[0]):
                        _merge(table, key, stats)

    def rest_snapshot(self) -> list[tuple[str, str, int, Stats]]:
        with self._lock:
            return [(m, e, s, copy(st)) for (m, e, s), st in sorted(self.rest.items())]

    def grpc_snapshot(self) -> list[tuple[str, int, Stats]]:
        with self._lock:
            return [(m, c, copy(st)) for (m, c), st in sorted(self.grpc.items())]

    def rest_by_collection_snapshot(self) -> list[tuple[str, str, str, int, Stats]]:
        with self._lock:
            items = sorted(self.rest_by_collection.items())
            return [(c, m, e, s, copy(st)) for (c, m, e, s), st in items]

    def grpc_by_collection_snapshot(self) -> list[tuple[str, str, int, Stats]]:
        with self._lock:
            items = sorted(self.grpc_by_collection.items())
            return [(c, m, code, copy(st)) for (c, m, code), st in items]


NOT_FOUND = 5  # gRPC's status code


def _add(table: dict[Any, Stats], key: Any, seconds: float, failed: bool) -> None:
    stats = table.get(key)
    if stats is None:
        stats = table[key] = Stats()
    stats.add(seconds, failed)


def _stats_json(stats: Stats) -> list[Any]:
    return [stats.count, stats.fail_count, stats.total, stats.min, stats.max, stats.last,
            stats.buckets]  # fmt: skip


# The tables a read worker reports: each one's name, the parts of its key (the status code
# last), and whether its rows are per collection (the collection first).
_REPORTED = (
    ("rest", 3, False),
    ("rest_by_collection", 4, True),
    ("grpc", 2, False),
    ("grpc_by_collection", 3, True),
)


def _row(row: list[Any], size: int) -> tuple[tuple[Any, ...], Stats]:
    """A reported row (`take_json`): its key of `size` parts, and its statistics."""
    if len(row) != size + 1:
        raise ValueError("row")
    return (*row[: size - 1], int(row[size - 1])), _stats_of(row[size])


def _stats_of(fields: list[Any]) -> Stats:
    stats = Stats()
    count, fail, total, low, high, last, buckets = fields
    stats.count, stats.fail_count, stats.total = int(count), int(fail), float(total)
    stats.min, stats.max, stats.last = float(low), float(high), float(last)
    if len(buckets) != len(stats.buckets):
        raise ValueError("buckets")
    stats.buckets = [int(b) for b in buckets]
    return stats


def _merge(table: dict[Any, Stats], key: Any, other: Stats) -> None:
    stats = table.get(key)
    if stats is None:
        table[key] = other
        return
    stats.count += other.count
    stats.fail_count += other.fail_count
    stats.total += other.total
    stats.min = min(stats.min, other.min)
    stats.max = max(stats.max, other.max)
    stats.last = max(stats.last, other.last)
    stats.buckets = [a + b for a, b in zip(stats.buckets, other.buckets, strict=True)]


def _drop(table: dict[Any, Stats], collections: set[str]) -> None:
    """Remove the rows (keyed by collection first) of `collections`."""
    for key in [k for k in table if k[0] in collections]:
        del table[key]


def copy(stats: Stats) -> Stats:
    out = Stats()
    for name in Stats.__slots__:
        value = getattr(stats, name)
        setattr(out, name, list(value) if isinstance(value, list) else value)
    return out


# The one table of this process: the REST middleware and the gRPC interceptor record into
# it, `/telemetry` and `/metrics` read it.
STATS = RequestStats()
