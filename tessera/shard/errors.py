"""Exceptions of the shard layer that its parts below the shard raise or catch too."""

from __future__ import annotations

from tessera.errors import NotFound


class ShardClosed(NotFound):
    """A write reached a shard after it was closed (its collection deleted meanwhile): the
    collection answers it as a missing collection."""
