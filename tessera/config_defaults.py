"""Qdrant's defaults for a new collection's HNSW, optimizer and WAL settings: the one place
they are written. The server's configuration file (`tessera.settings`, whose
`storage.hnsw_index` / `storage.optimizers` / `storage.wal` keys default to these) and the
collection config (`tessera.collection_config`, which fills a create request's gaps with
them unless the configuration file set others) both read them here.

Imports: nothing of Tessera's.
"""

from __future__ import annotations

from typing import Any

DEFAULT_HNSW: dict[str, Any] = {
    "m": 16,
    "ef_construct": 100,
    "full_scan_threshold": 10000,
    "max_indexing_threads": 0,
    "on_disk": False,
}
DEFAULT_OPTIMIZERS: dict[str, Any] = {
    "deleted_threshold": 0.2,
    "vacuum_min_vector_number": 1000,
    "default_segment_number": 0,
    "max_segment_size": None,
    "memmap_threshold": None,
    "indexing_threshold": 10000,
    "flush_interval_sec": 5,
    "max_optimization_threads": None,
}
DEFAULT_WAL: dict[str, Any] = {
    "wal_capacity_mb": 32,
    "wal_segments_ahead": 0,
    "wal_retain_closed": 1,
}
