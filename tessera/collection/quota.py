"""Qdrant's global quota (`GET`/`PUT /quotas`): limits on this node's resident memory and on
the use of the filesystem holding the storage, enforced on updates that add data.

As in Qdrant, the config is kept in `quota.json` at the root of the storage directory,
here as tessera.fileformat's checked JSON (kind `quota`, version 1: a header line with the
format, version, length and crc32, then `{"quota": <QuotaConfig>}`), written atomically and
durably before it takes effect and read back on start-up; a damaged file is moved aside
(`quota.json.damaged-<time>`) and the quota starts disabled, never stopping the server. It is
enforced only while
`enabled`; a collection's strict mode `max_resident_memory_percent` (deprecated in Qdrant
for this quota) can only tighten it, never lift it: both are checked. An update is
refused with Qdrant's 400 "Resident memory usage is at N% ..." / "Disk usage is at N%
..." naming the global quota config. `release_margin_percent` is stored and reported but
not applied: a resource is refused while at or over its limit.

The managers are process-wide, keyed by the collections directory (a collection finds its
own through its parent directory), since a collection does not hold its table of contents.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from tessera.collection import strict_filters as sf
from tessera.errors import BadRequest, TesseraError, UnprocessableEntity
from tessera.fileformat import FormatError, read_checked_json, write_checked_json
from tessera.fsutil import rename_durable
from tessera.shard import operations as ops

log = logging.getLogger(__name__)

QUOTA_FILE = "quota.json"
KIND = "quota"
VERSION = 1
LIMITS = ("max_resident_memory_percent", "max_disk_usage_percent")
# The updates that take memory or disk, which a reached limit refuses.
GROWS = (ops.UpsertPoints, ops.UpdateVectors, ops.SetPayload, ops.OverwritePayload)


class QuotaManager:
    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.path = storage / QUOTA_FILE
        self._lock = threading.Lock()
        self.config: dict[str, Any] = {"enabled": False}
        if self.path.exists():
            try:
                body = read_checked_json(self.path, KIND, (VERSION,))
                if not isinstance(body, dict):
                    raise FormatError(f"{self.path}: not an object")
                self.config = parse(body.get("quota"))
            except (FormatError, TesseraError) as exc:
                aside = self.path.with_name(
                    f"{QUOTA_FILE}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
                )
                rename_durable(self.path, aside)
                log.error("quota config unreadable (%s); moved to %s, quota disabled", exc, aside)

    def set_config(self, config: dict[str, Any]) -> None:
        """Persists `config` (already parsed), then enforces it."""
        with self._lock:
            write_checked_json(self.path, KIND, VERSION, {"quota": config})
            self.config = config

    def disk_percent(self) -> int | None:
        try:
            disk = shutil.disk_usage(self.storage)
        except OSError:
            return None
        return min(100, disk.used * 100 // disk.total) if disk.total else None

    def check_update(self) -> None:
        """Refuses an update that adds data while a limit in force is reached."""
        config = self.config
        if not config.get("enabled"):
            return
        memory = config.get("max_resident_memory_percent")
        if memory is not None:
            used = sf.resident_memory_percent()
            if used is not None and used >= memory:
                raise _rejected(
                    f"Resident memory usage is at {used}% of total memory, exceeding the "
                    f"configured limit of {memory}%",
                    "Reduce memory usage (e.g. delete points or drop collections)",
                    "max_resident_memory_percent",
                )
        disk = config.get("max_disk_usage_percent")
        if disk is not None:
            used = self.disk_percent()
            if used is not None and used >= disk:
                raise _rejected(
                    f"Disk usage is at {used}% of total capacity, exceeding the configured "
                    f"limit of {disk}%",
                    "Reduce disk usage (e.g. delete points or drop collections)",
                    "max_disk_usage_percent",
                )


def _rejected(condition: str, remedy: str, parameter: str) -> BadRequest:
    return BadRequest(
        f"Bad request: {condition}. Help: {remedy}, or raise `{parameter}` in the global "
        "quota config."
    )


def parse(raw: Any) -> dict[str, Any]:
    """Qdrant's `QuotaConfig`: `enabled` (default false), the two limits (1..100) and
    `release_margin_percent` (0..100), unset ones left out."""
    if not isinstance(raw, dict):
        raise BadRequest(
            f"Format error in JSON body: invalid type: {type(raw).__name__}, expected struct "
            "QuotaConfig"
        )
    enabled = raw.get("enabled", False)
    if not isinstance(enabled, bool):
        raise BadRequest(
            f"Format error in JSON body: enabled: invalid type: {orjson.dumps(enabled).decode()}"
            ", expected a boolean"
        )
    config: dict[str, Any] = {"enabled": enabled}
    for key, low in (*((k, 1) for k in LIMITS), ("release_margin_percent", 0)):
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise BadRequest(
                f"Format error in JSON body: {key}: invalid value: "
                f"{orjson.dumps(value).decode()}, expected u8"
            )
        if not low <= value <= 100:
            raise UnprocessableEntity(
                f"Validation error in JSON body: [{key}: value {value} invalid, must be from "
                f"{low} to 100]"
            )
        config[key] = value
    return config


_managers: dict[Path, QuotaManager] = {}
_managers_lock = threading.Lock()


def manager(collections_root: Path) -> QuotaManager:
    """The quota of the storage whose collections live in `collections_root` (loaded once)."""
    key = collections_root.resolve()
    with _managers_lock:
        found = _managers.get(key)
        if found is None:
            found = _managers[key] = QuotaManager(key.parent)
        return found
