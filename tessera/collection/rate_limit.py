"""Strict mode's read and write rate limits: one token bucket each, per collection.

Qdrant's limiter: a bucket of `per_minute` tokens, full at the start, refilled continuously
at `per_minute / 60` tokens a second. A request costs tokens (reads: 1 plus the conditions
of its filter, a search its vectors; writes: the points they touch) and passes when the
bucket holds that many. One that cannot pass now answers 429 with the seconds until it
could; one that costs more than the whole bucket never can and says so (no Retry-After).

Tessera has one shard per collection, so Qdrant's per-replica limit is the collection's.
"""

from __future__ import annotations

import math
import threading
import time

from tessera.collection.no_wait import undo_if_retried
from tessera.errors import RateLimited

# Qdrant's reason for a request the limiter can never admit, word for word ("than than"
# included: clients match on it).
OVER_CAPACITY = "request larger than than rate limiter capacity, please try to split your request"


class TokenBucket:
    """`per_minute` tokens, refilled continuously; safe to share between threads."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._per_second = per_minute / 60.0
        self._tokens = float(per_minute)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def try_consume(self, cost: float) -> float | None:
        """Take `cost` tokens: None when taken, else the tokens there were (and nothing
        is taken). Raises OverCapacity for a cost no full bucket covers."""
        if cost > self.per_minute:
            raise OverCapacity()
        with self._lock:
            now = time.monotonic()
            elapsed = now - self._last
            self._last = now
            self._tokens = min(float(self.per_minute), self._tokens + elapsed * self._per_second)
            if self._tokens >= cost:
                self._tokens -= cost
                return None
            return self._tokens

    def give_back(self, cost: float) -> None:
        """Return `cost` taken tokens (a read retried elsewhere is charged there)."""
        with self._lock:
            self._tokens = min(float(self.per_minute), self._tokens + cost)

    def wait_for(self, cost: float, available: float) -> float:
        """Seconds until `cost` tokens are there, from `available` now."""
        return (cost - available) / self._per_second


class OverCapacity(Exception):
    pass


class RateLimiter:
    """The read and write buckets of one collection; a limit of None is no bucket."""

    def __init__(self, read_per_minute: int | None, write_per_minute: int | None) -> None:
        self.read = TokenBucket(read_per_minute) if read_per_minute else None
        self.write = TokenBucket(write_per_minute) if write_per_minute else None

    def check_read(self, cost: int) -> None:
        _consume(self.read, cost, "Read")

    def check_write(self, cost: int) -> None:
        _consume(self.write, cost, "Write")


def _consume(bucket: TokenBucket | None, cost: int, kind: str) -> None:
    """429 in Qdrant's words when `bucket` cannot give `cost` tokens now."""
    if bucket is None:
        return
    try:
        available = bucket.try_consume(cost)
    except OverCapacity:
        raise RateLimited(
            f"Rate limiting exceeded: {kind} rate limit exceeded, {OVER_CAPACITY}"
        ) from None
    if available is None:
        undo_if_retried(lambda: bucket.give_back(cost))
        return
    retry_after = bucket.wait_for(cost, available)
    raise RateLimited(
        f"Rate limiting exceeded: {kind} rate limit exceeded: Operation requires {cost} "
        f"tokens but only {available:.1f} were available. "
        f"Retry after {math.ceil(retry_after)}s",
        retry_after,
    )
