"""Settings in the layout of Qdrant's `config/config.yaml`, loaded the way Qdrant loads them.

Sources, in rising priority (later ones override single keys of earlier ones):

1. the built-in defaults (Qdrant's own, for every key Tessera uses);
2. `config/config`, `config/$RUN_MODE` (default `development`) and `config/local`, each as
   `.yaml`, `.yml` or `.json`, relative to the working directory, when present;
3. the file given with `--config` (`--config-path`, as Qdrant calls it) or `TESSERA_CONFIG`;
4. environment variables `QDRANT__SECTION__KEY` (e.g. `QDRANT__SERVICE__API_KEY`), then
   `TESSERA__SECTION__KEY` and the older `TESSERA_HOST`, `TESSERA_PORT`,
   `TESSERA_GRPC_PORT`, `TESSERA_STORAGE`;
5. command-line flags.

Every value Tessera uses is checked (type and range); any problem stops start-up with a
message naming the key and where its value came from (`ConfigError`). Keys Tessera does not
use are collected in `Settings.unused` (a Qdrant key set to something other than its default,
which Tessera ignores: e.g. `cluster.consensus.tick_period_ms: 50`) and `Settings.unknown` (a
key Qdrant does not have either: a typo, most likely) for one start-up warning.

This module imports nothing from Tessera: the layers above turn its plain values into their
own objects (collection defaults, TLS contexts, log handlers).
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tessera.config_defaults import DEFAULT_HNSW, DEFAULT_OPTIMIZERS, DEFAULT_WAL

ENV_PREFIXES = ("QDRANT__", "TESSERA__")
LEGACY_ENV = {
    "TESSERA_HOST": "service.host",
    "TESSERA_PORT": "service.http_port",
    "TESSERA_GRPC_PORT": "service.grpc_port",
    "TESSERA_STORAGE": "storage.storage_path",
}
# Flat keys of the config files Tessera read before it read Qdrant's layout.
LEGACY_FILE_KEYS = {
    "host": "service.host",
    "port": "service.http_port",
    "grpc_port": "service.grpc_port",
    "storage": "storage.storage_path",
}
CONFIG_EXTENSIONS = (".yaml", ".yml", ".json")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "OFF")

Checker = Callable[[Any], Any]  # returns the normalised value, raises ValueError


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem found."""


class OutOfRange(ValueError):
    """A value of the right type outside its range (`value`, `lo`, `hi`)."""

    def __init__(self, value: float, lo: float | None, hi: float | None) -> None:
        super().__init__(f"{_bounds(lo, hi, 'between', 'and')}, got {value}")
        self.value, self.lo, self.hi = value, lo, hi

    def nearest(self) -> float:
        """The bound it is past: the value used in its place."""
        if self.lo is not None and self.value < self.lo:
            return self.lo
        return self.value if self.hi is None else min(self.value, self.hi)

    def qdrant_text(self) -> str:
        """Qdrant's words for it (its validator renders bounds as floats: `1.0`)."""
        lo = None if self.lo is None else float(self.lo)
        hi = None if self.hi is None else float(self.hi)
        return f"value {self.value} invalid, {_bounds(lo, hi, 'from', 'to')}"


def _bounds(lo: float | None, hi: float | None, before: str, between: str) -> str:
    if lo is not None and hi is not None:
        return f"must be {before} {lo} {between} {hi}"
    if lo is not None:
        return f"must be {lo} or larger"
    return f"must be {hi} or smaller"


# --------------------------------------------------------------------------------------------
# Value checks


def _null(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "null", "~"))


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _as_int(raw: Any, lo: int | None, hi: int | None) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected an integer, got {raw!r}")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
    else:
        raise ValueError(f"expected an integer, got {raw!r}")
    if lo is not None and value < lo:
        raise OutOfRange(value, lo, None)
    if hi is not None and value > hi:
        raise OutOfRange(value, None, hi)
    return value


def _as_float(raw: Any, lo: float, hi: float) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"expected a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise OutOfRange(value, lo, hi)
    return value


def _as_str(raw: Any) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError(f"expected a string, got {raw!r}")
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def boolean() -> Checker:
    return _as_bool


def integer(lo: int | None = None, hi: int | None = None) -> Checker:
    return lambda raw: _as_int(raw, lo, hi)


def number(lo: float, hi: float) -> Checker:
    return lambda raw: _as_float(raw, lo, hi)


def string() -> Checker:
    return _as_str


def nonempty() -> Checker:
    def check(raw: Any) -> str:
        value = _as_str(raw)
        if not value:
            raise ValueError("must not be empty")
        return value

    return check


def choice(*options: str) -> Checker:
    def check(raw: Any) -> str:
        value = _as_str(raw).lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {raw!r}")
        return value

    return check


def _yaml_text(text: str) -> Any:
    """An environment variable's text read as YAML (a mapping, a list, a number), as the
    config files are read; the text itself where it is not YAML."""
    try:
        return yaml.load(text, Loader=QdrantYamlLoader)  # a SafeLoader: no objects built
    except yaml.YAMLError:
        return text


def obj() -> Checker:
    def check(raw: Any) -> Any:
        if isinstance(raw, str):  # from the environment: a YAML/JSON mapping
            raw = _yaml_text(raw)
        if not isinstance(raw, dict):
            raise ValueError(f"expected a mapping, got {raw!r}")
        return raw

    return check


def optional(inner: Checker) -> Checker:
    return lambda raw: None if _null(raw) else inner(raw)


def url_list() -> Checker:
    """A list of http(s) URLs: a YAML list in a file; from the environment also a YAML list
    or comma-separated URLs (`QDRANT__CLUSTER__ETCD__ENDPOINTS=http://a:2379,http://b:2379`)."""

    def check(raw: Any) -> list[str]:
        if isinstance(raw, str):
            loaded = _yaml_text(raw)
            raw = loaded if isinstance(loaded, list) else raw
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list):
            raise ValueError(f"expected a list of URLs, got {raw!r}")
        urls = [_as_str(item).strip() for item in raw]
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected http:// or https:// URLs, got {url!r}")
        return urls

    return check


def log_level() -> Checker:
    """Qdrant's `log_level`: a level, optionally followed by `,target=level` directives."""

    def check(raw: Any) -> str:
        text = _as_str(raw).strip()
        for part in text.split(","):
            level = part.split("=", 1)[-1].strip().upper()
            if level not in LOG_LEVELS:
                raise ValueError(
                    f"unknown log level {level!r} (use one of {', '.join(LOG_LEVELS)})"
                )
        return text

    return check


# --------------------------------------------------------------------------------------------
# The keys Tessera uses: path -> (default, check). Defaults are Qdrant's; a new collection's
# are written once, in tessera.config_defaults.

_HNSW, _OPT, _WAL = DEFAULT_HNSW, DEFAULT_OPTIMIZERS, DEFAULT_WAL

SCHEMA: dict[str, tuple[Any, Checker]] = {
    "log_level": ("INFO", log_level()),
    "logger.format": ("text", choice("text", "json")),
    "logger.on_disk.enabled": (False, boolean()),
    "logger.on_disk.log_file": (None, optional(nonempty())),
    "logger.on_disk.log_level": (None, optional(log_level())),
    "logger.on_disk.format": ("text", choice("text", "json")),
    "storage.storage_path": ("./storage", nonempty()),
    # None: `<storage_path>/snapshots` (Qdrant's default is `./snapshots`).
    "storage.snapshots_path": (None, optional(nonempty())),
    "storage.on_disk_payload": (True, boolean()),
    # Collections this node holds at most (None: no limit), as Qdrant's.
    "storage.max_collections": (None, optional(integer(0))),
    # Qdrant's recovery mode (the message): collections are loaded as metadata only.
    "storage.recovery_mode": (None, optional(nonempty())),
    "storage.wal.wal_capacity_mb": (_WAL["wal_capacity_mb"], integer(1)),
    "storage.wal.wal_segments_ahead": (_WAL["wal_segments_ahead"], integer(0)),
    "storage.wal.wal_retain_closed": (_WAL["wal_retain_closed"], integer(0)),
    "storage.optimizers.deleted_threshold": (_OPT["deleted_threshold"], number(0.0, 1.0)),
    "storage.optimizers.vacuum_min_vector_number": (
        _OPT["vacuum_min_vector_number"],
        integer(100),
    ),
    "storage.optimizers.default_segment_number": (_OPT["default_segment_number"], integer(0)),
    "storage.optimizers.max_segment_size_kb": (_OPT["max_segment_size"], optional(integer(1))),
    "storage.optimizers.memmap_threshold_kb": (_OPT["memmap_threshold"], optional(integer(0))),
    "storage.optimizers.indexing_threshold_kb": (
        _OPT["indexing_threshold"],
        optional(integer(0)),
    ),
    "storage.optimizers.flush_interval_sec": (_OPT["flush_interval_sec"], integer(0)),
    "storage.optimizers.max_optimization_threads": (
        _OPT["max_optimization_threads"],
        optional(integer(0)),
    ),
    "storage.hnsw_index.m": (_HNSW["m"], integer(0)),
    "storage.hnsw_index.ef_construct": (_HNSW["ef_construct"], integer(4)),
    "storage.hnsw_index.full_scan_threshold_kb": (_HNSW["full_scan_threshold"], integer(0)),
    "storage.hnsw_index.max_indexing_threads": (_HNSW["max_indexing_threads"], integer(0)),
    "storage.hnsw_index.on_disk": (_HNSW["on_disk"], boolean()),
    "storage.hnsw_index.payload_m": (None, optional(integer(0))),
    "storage.hnsw_index.inline_storage": (None, optional(boolean())),
    "storage.optimizers.prevent_unoptimized": (None, optional(boolean())),
    "storage.collection.replication_factor": (1, integer(1)),
    "storage.collection.write_consistency_factor": (1, integer(1)),
    "storage.collection.vectors.on_disk": (None, optional(boolean())),
    "storage.collection.quantization": (None, optional(obj())),
    "storage.collection.strict_mode": (None, optional(obj())),
    "storage.collection.shard_number_per_node": (1, integer(1)),
    # Optimizer settings over every collection's own (Qdrant's OptimizersConfigDiff).
    "storage.optimizers_overwrite": (None, optional(obj())),
    # Shards of an auto-sharded collection created without `shard_number` (None: the
    # number of peers times `shard_number_per_node`); wins over `shard_number_per_node`.
    "storage.collection.shard_number": (None, optional(integer(1))),
    "service.host": ("0.0.0.0", nonempty()),
    "service.http_port": (6333, integer(1, 65535)),
    "service.grpc_port": (6334, optional(integer(0, 65535))),
    "service.max_request_size_mb": (32, integer(1)),
    "service.max_workers": (0, optional(integer(0))),
    "service.enable_cors": (True, boolean()),
    "service.enable_tls": (False, boolean()),
    "service.verify_https_client_certificate": (False, boolean()),
    "service.api_key": (None, optional(string())),
    "service.alt_api_key": (None, optional(string())),
    "service.read_only_api_key": (None, optional(string())),
    "service.jwt_rbac": (None, optional(boolean())),
    # Shown in `/telemetry` (Qdrant's web UI reads it); Tessera's dashboard has no JWT page.
    "service.hide_jwt_dashboard": (None, optional(boolean())),
    # `usage.hardware` in the answers of point reads and writes (tessera.hw_meter).
    "service.hardware_reporting": (False, boolean()),
    # `/metrics` also served on this port, without API keys (Qdrant: none).
    "service.metrics_port": (None, optional(integer(1, 65535))),
    # Prepended to every `/metrics` name (Qdrant: none).
    "service.metrics_prefix": (None, optional(string())),
    # A filtered read slower than this reports its unindexed fields in `/issues` (Qdrant:
    # unset, meaning 1.2 s).
    "service.slow_query_secs": (None, optional(number(0.0, float("inf")))),
    # false: no dashboard (`/dashboard` answers 404, as Qdrant's web UI when it is off).
    "service.enable_static_content": (None, optional(boolean())),
    # Tessera's own: the access log (Qdrant always logs requests at INFO).
    "service.access_log": (True, boolean()),
    # Tessera's own: processes serving point reads (REST and gRPC) beside the server's own
    # (tessera.api.read_workers); 0: none.
    "service.read_workers": (0, integer(0)),
    "tls.cert": (None, optional(nonempty())),
    "tls.key": (None, optional(nonempty())),
    "tls.ca_cert": (None, optional(nonempty())),
    "tls.cert_ttl": (3600, optional(integer(1))),
    # Cluster mode (tessera/cluster): Qdrant's keys, plus the etcd that holds the metadata
    # and the URI peers reach this node at (Qdrant's `--uri` flag).
    "cluster.enabled": (False, boolean()),
    "cluster.p2p.port": (6335, integer(1, 65535)),
    "cluster.p2p.uri": (None, optional(nonempty())),
    # Peers talk over mutual TLS with `tls.cert` / `tls.key`, checked against `tls.ca_cert`.
    "cluster.p2p.enable_tls": (False, boolean()),
    "cluster.etcd.endpoints": ([], url_list()),
    "cluster.etcd.prefix": ("/tessera/", nonempty()),
    # How long a peer that stops answering stays registered (its etcd lease, seconds).
    "cluster.etcd.lease_ttl_sec": (10, integer(2, 3600)),
}

# Keys whose range Qdrant checks only to warn (its settings validation logs "Settings
# configuration file has validation errors" and the server starts with the value as
# given). Tessera starts too, with the same warning lines, but uses the bound the value is
# past: a collection's config is checked again whenever it is read back, so an
# out-of-range default would make a collection created with it unreadable after a restart.
# Every other range or type problem stops the start, as a value Qdrant cannot deserialize
# stops Qdrant's.
WARN_ONLY_RANGES = {
    "storage.optimizers.deleted_threshold",
    "storage.optimizers.vacuum_min_vector_number",
    "storage.optimizers.max_segment_size_kb",
    "storage.wal.wal_capacity_mb",
    "storage.hnsw_index.ef_construct",
    "tls.cert_ttl",
}

# Qdrant spells some sizes with `_kb` in the file and without in the collection API; both
# are accepted, as in Qdrant (serde aliases).
ALIASES = {
    "storage.optimizers.max_segment_size": "storage.optimizers.max_segment_size_kb",
    "storage.optimizers.memmap_threshold": "storage.optimizers.memmap_threshold_kb",
    "storage.optimizers.indexing_threshold": "storage.optimizers.indexing_threshold_kb",
    "storage.hnsw_index.full_scan_threshold": "storage.hnsw_index.full_scan_threshold_kb",
}

# Qdrant keys Tessera has no use for, with Qdrant's defaults: set to these, ignoring them
# changes nothing, so they are not reported.
QDRANT_UNUSED_DEFAULTS: dict[str, Any] = {
    "storage.snapshots_config.snapshots_storage": "local",
    "storage.temp_path": None,
    "storage.update_concurrency": None,
    "storage.node_type": "normal",
    "storage.performance.max_search_threads": 0,
    "storage.performance.optimizer_cpu_budget": 0,
    "storage.performance.update_rate_limit": None,
    "storage.performance.incoming_shard_transfers_limit": 1,
    "storage.performance.outgoing_shard_transfers_limit": 1,
    "storage.performance.async_scorer": False,
    "storage.performance.max_concurrent_collection_loads": 1,
    "storage.performance.max_concurrent_shard_loads": 1,
    "storage.performance.max_concurrent_segment_loads": 8,
    "storage.handle_collection_load_errors": False,
    "storage.mmap_advice": "random",
    "storage.shard_transfer_method": None,
    "service.static_content_dir": None,
    "cluster.consensus.tick_period_ms": 100,
    "cluster.consensus.compact_wal_entries": 128,
    "telemetry_disabled": False,
    "per_collection_metrics_enabled": True,
    "logger.on_disk.buffer_size_bytes": 1024,
    "audit.enabled": False,
    # Qdrant service keys without a default in its config file: reported whenever set.
    "service.http_keep_alive_timeout_sec": None,
    "service.http_client_request_timeout_sec": None,
    "service.http_client_disconnect_timeout_sec": None,
    "service.max_snapshot_upload_size_mb": None,
}
# The types of those keys (from their defaults, and these where the default says too
# little): Qdrant reads every key into typed settings and stops on a wrong type, so a value
# Tessera ignores still stops start-up when Qdrant's would.
QDRANT_UNUSED_TYPES: dict[str, Checker] = {
    "storage.node_type": choice("normal", "listener"),
    "storage.update_concurrency": optional(integer(1)),
    "storage.temp_path": optional(nonempty()),
    "storage.shard_transfer_method": optional(
        choice("stream_records", "snapshot", "wal_delta", "resharding_stream_records")
    ),
    "storage.performance.update_rate_limit": optional(integer(1)),
    "storage.mmap_advice": choice("normal", "random", "sequential"),
    "service.http_keep_alive_timeout_sec": optional(integer(0)),
    "service.http_client_request_timeout_sec": optional(integer(1)),
    "service.http_client_disconnect_timeout_sec": optional(integer(1)),
    "service.max_snapshot_upload_size_mb": optional(integer(0)),
    "service.static_content_dir": optional(string()),
}


def _unused_check(path: str) -> Checker | None:
    """How Qdrant would type an ignored key of QDRANT_UNUSED_DEFAULTS (None: not known)."""
    if path in QDRANT_UNUSED_TYPES:
        return QDRANT_UNUSED_TYPES[path]
    default = QDRANT_UNUSED_DEFAULTS.get(path)
    if isinstance(default, bool):
        return boolean()
    if isinstance(default, int):
        return integer(0)
    return None


# Sections of Qdrant's configuration Tessera ignores as a whole (any key under them is a
# Qdrant key, reported as unused when set).
QDRANT_UNUSED_PREFIXES = (
    "cluster.",
    "audit.",
    "gpu.",
    "inference.",
    "debugger.",
    "feature_flags.",
    "storage.performance.",
    "storage.snapshots_config.",
    "storage.collection.",
)
# Values that are whole objects (their inner keys are not settings of their own).
OBJECT_KEYS = {
    "storage.collection.quantization",
    "storage.collection.strict_mode",
    "storage.optimizers_overwrite",
}


# --------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True)
class TlsSettings:
    cert: Path
    key: Path
    ca_cert: Path | None
    cert_ttl: int | None
    verify_client: bool


@dataclass(frozen=True)
class Settings:
    values: dict[str, Any]  # every SCHEMA path -> its checked value
    origins: dict[str, str]  # path -> where its value came from (absent: the default)
    files: list[Path] = field(default_factory=list)  # config files read, in order
    unused: list[str] = field(default_factory=list)  # Qdrant keys Tessera ignores
    unknown: list[str] = field(default_factory=list)  # keys neither knows
    deprecated: list[str] = field(default_factory=list)  # older Tessera spellings used
    # `--config-path` naming no file: Qdrant logs an error and starts without it.
    missing_config: str | None = None
    # WARN_ONLY_RANGES values past their range, in Qdrant's words ("path: value ...").
    out_of_range: list[str] = field(default_factory=list)

    @classmethod
    def default(cls) -> Settings:
        """Every key at its default (no file, no environment): for embedding and tests."""
        return cls(values={path: check(d) for path, (d, check) in SCHEMA.items()}, origins={})

    def __getitem__(self, path: str) -> Any:
        return self.values[path]

    @property
    def storage_path(self) -> Path:
        return Path(self.values["storage.storage_path"]).expanduser()

    @property
    def host(self) -> str:
        host: str = self.values["service.host"]
        return host

    @property
    def http_port(self) -> int:
        port: int = self.values["service.http_port"]
        return port

    @property
    def grpc_port(self) -> int:
        """0 when gRPC is off (`grpc_port: null` in Qdrant's terms)."""
        port: int | None = self.values["service.grpc_port"]
        return port or 0

    @property
    def api_keys(self) -> tuple[str | None, str | None, str | None]:
        """(api_key, alt_api_key, read_only_api_key), each None when unset or empty."""
        return (
            self.values["service.api_key"] or None,
            self.values["service.alt_api_key"] or None,
            self.values["service.read_only_api_key"] or None,
        )

    @property
    def auth_enabled(self) -> bool:
        return any(self.api_keys)

    @property
    def jwt_rbac(self) -> bool:
        """JWT RBAC is on when asked for and there is a (read-write) key to sign with."""
        rw, alt, _ = self.api_keys
        return bool(self.values["service.jwt_rbac"]) and bool(rw or alt)

    @property
    def tls(self) -> TlsSettings | None:
        if not self.values["service.enable_tls"]:
            return None
        ca = self.values["tls.ca_cert"]
        verify = bool(self.values["service.verify_https_client_certificate"])
        return TlsSettings(
            cert=Path(self.values["tls.cert"]),
            key=Path(self.values["tls.key"]),
            # Read only to verify clients, as Qdrant reads it (its stock config names a
            # ca_cert that a server without client certificates need not have).
            ca_cert=Path(ca) if ca and verify else None,
            cert_ttl=self.values["tls.cert_ttl"],
            verify_client=verify,
        )

    @property
    def p2p_tls(self) -> TlsSettings | None:
        """Mutual TLS between peers (`cluster.p2p.enable_tls`), as Qdrant's internal gRPC:
        this node's certificate serves and calls, and the other's must be signed by
        `tls.ca_cert` (read once: Qdrant's internal port does not reload it either)."""
        if not (self.values["cluster.enabled"] and self.values["cluster.p2p.enable_tls"]):
            return None
        return TlsSettings(
            cert=Path(self.values["tls.cert"]),
            key=Path(self.values["tls.key"]),
            ca_cert=Path(self.values["tls.ca_cert"]),
            cert_ttl=None,
            verify_client=True,
        )

    def collection_defaults(self) -> dict[str, Any]:
        """The defaults of a new collection, as the body of a create request would give them
        (`hnsw_config`, `optimizers_config`, `wal_config`, `on_disk_payload`, ...)."""
        v = self.values
        hnsw = {
            "m": v["storage.hnsw_index.m"],
            "ef_construct": v["storage.hnsw_index.ef_construct"],
            "full_scan_threshold": v["storage.hnsw_index.full_scan_threshold_kb"],
            "max_indexing_threads": v["storage.hnsw_index.max_indexing_threads"],
            "on_disk": v["storage.hnsw_index.on_disk"],
        }
        if v["storage.hnsw_index.payload_m"] is not None:
            hnsw["payload_m"] = v["storage.hnsw_index.payload_m"]
        if v["storage.hnsw_index.inline_storage"] is not None:
            hnsw["inline_storage"] = v["storage.hnsw_index.inline_storage"]
        optimizers = {
            "deleted_threshold": v["storage.optimizers.deleted_threshold"],
            "vacuum_min_vector_number": v["storage.optimizers.vacuum_min_vector_number"],
            "default_segment_number": v["storage.optimizers.default_segment_number"],
            "max_segment_size": v["storage.optimizers.max_segment_size_kb"],
            "memmap_threshold": v["storage.optimizers.memmap_threshold_kb"],
            "indexing_threshold": v["storage.optimizers.indexing_threshold_kb"],
            "flush_interval_sec": v["storage.optimizers.flush_interval_sec"],
            "max_optimization_threads": v["storage.optimizers.max_optimization_threads"],
        }
        if v["storage.optimizers.prevent_unoptimized"] is not None:
            optimizers["prevent_unoptimized"] = v["storage.optimizers.prevent_unoptimized"]
        return {
            "hnsw_config": hnsw,
            "optimizers_config": optimizers,
            "wal_config": {
                "wal_capacity_mb": v["storage.wal.wal_capacity_mb"],
                "wal_segments_ahead": v["storage.wal.wal_segments_ahead"],
                "wal_retain_closed": v["storage.wal.wal_retain_closed"],
            },
            "on_disk_payload": v["storage.on_disk_payload"],
            "replication_factor": v["storage.collection.replication_factor"],
            "write_consistency_factor": v["storage.collection.write_consistency_factor"],
            "vectors_on_disk": v["storage.collection.vectors.on_disk"],
            "quantization_config": v["storage.collection.quantization"],
            "strict_mode_config": v["storage.collection.strict_mode"],
            "shard_number_per_node": v["storage.collection.shard_number_per_node"],
            "shard_number": v["storage.collection.shard_number"],
        }


# --------------------------------------------------------------------------------------------
# Loading


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _assemble_objects(
    given: dict[str, Any], origins: dict[str, str], order: dict[str, int]
) -> None:
    """The values that are whole objects (`OBJECT_KEYS`) from their inner keys, merged key by
    key across sources as Qdrant's config library merges maps: `strict_mode.enabled` in one
    file and `strict_mode.max_query_limit` in a later one (or from
    `QDRANT__STORAGE__COLLECTION__STRICT_MODE__ENABLED`) give both; the object given whole by
    a later source replaces what earlier ones said of its keys."""
    for key in OBJECT_KEYS:
        prefix = key + "."
        parts = sorted((p for p in given if p.startswith(prefix)), key=lambda p: order[p])
        if not parts:
            continue
        whole_at = order.get(key, -1)
        base = given.get(key)
        if isinstance(base, str):  # from the environment: a YAML/JSON mapping
            base = _yaml_text(base)
        tree: dict[str, Any] = copy.deepcopy(base) if isinstance(base, dict) else {}
        latest = origins.get(key, "")
        for path in parts:
            value = given.pop(path)
            origin = origins.pop(path)
            if order[path] < whole_at:
                continue  # an earlier source, replaced by the whole object given later
            if isinstance(value, str) and origin.upper().startswith(ENV_PREFIXES):
                value = _yaml_text(value)
            node = tree
            steps = path[len(prefix) :].split(".")
            for step in steps[:-1]:
                child = node.get(step)
                if not isinstance(child, dict):
                    child = node[step] = {}
                node = child
            node[steps[-1]] = value
            latest = origin
        given[key] = tree
        origins[key] = latest
        order[key] = max(order[p] for p in parts)


class QdrantYamlLoader(yaml.SafeLoader):
    """YAML read as Qdrant reads it (YAML 1.2's core schema; PyYAML follows 1.1): only
    `true` / `false` are booleans (`log_level: off` is the text "off"), and integers are
    decimal even with leading zeros (`api_key: 0123` is 123, not octal 83), `0o` octal and
    `0x` hexadecimal. Everything else as PyYAML's safe loader (no object construction)."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
QdrantYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _INT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
QdrantYamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
QdrantYamlLoader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)


def _yaml12_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _yaml12_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"  # type: ignore[arg-type]


QdrantYamlLoader.add_constructor(_INT_TAG, _yaml12_int)
QdrantYamlLoader.add_constructor(_BOOL_TAG, _yaml12_bool)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        loaded = yaml.load(text, Loader=QdrantYamlLoader)  # a SafeLoader: no objects built
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    return loaded


def _find(base: Path) -> Path | None:
    """`config/config` as Qdrant's config crate finds it: with any supported extension."""
    for ext in CONFIG_EXTENSIONS:
        candidate = base.with_name(base.name + ext)
        if candidate.is_file():
            return candidate
    return base if base.is_file() else None


def config_files(cwd: Path, env: Mapping[str, str]) -> list[Path]:
    """The config files found under `cwd`, in the order they are read (the one
    `--config-path` names is read after them: `_explicit_file`)."""
    run_mode = env.get("RUN_MODE") or "development"
    found = [_find(cwd / "config" / name) for name in ("config", run_mode, "local")]
    return [p for p in found if p is not None]


def _explicit_file(cwd: Path, explicit: str) -> Path | None:
    """The file `--config-path` names (relative to `cwd`, any supported extension)."""
    path = Path(explicit).expanduser()
    if not path.is_absolute():
        path = cwd / path
    return path if path.is_file() else _find(path)


def _env_layer(env: Mapping[str, str]) -> list[tuple[str, Any, str]]:
    """(path, value, origin) from QDRANT__/TESSERA__ variables, then the legacy ones."""
    out: list[tuple[str, Any, str]] = []
    for prefix in ENV_PREFIXES:
        for name in sorted(env):
            # Any case, as Qdrant's config library matches them (`qdrant__service__api_key`).
            if name.upper().startswith(prefix) and len(name) > len(prefix):
                path = ".".join(part.lower() for part in name[len(prefix) :].split("__"))
                out.append((path, env[name], name))
    for name, path in LEGACY_ENV.items():
        if env.get(name):
            out.append((path, env[name], name))
    return out


def load(
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge every source; `flags` maps SCHEMA paths to values given on the command line
    (None: not given). Raises ConfigError listing every problem."""
    cwd = cwd or Path.cwd()
    env = os.environ if env is None else env
    explicit = config_file or env.get("TESSERA_CONFIG") or None
    files = config_files(cwd, env)
    chosen = _explicit_file(cwd, explicit) if explicit else None
    if chosen is not None:
        files.append(chosen)
    # An explicit file that is not there: Qdrant logs an error and starts without it.
    missing = explicit if explicit and chosen is None else None

    given: dict[str, Any] = {}  # flattened, normalised path -> raw value
    origins: dict[str, str] = {}
    deprecated: list[str] = []

    order: dict[str, int] = {}  # path -> when it was last given (for OBJECT_KEYS)
    ticks = itertools.count()

    def put(path: str, value: Any, origin: str) -> None:
        path = ALIASES.get(path, path)
        given[path] = value
        origins[path] = origin
        order[path] = next(ticks)

    for file in files:
        tree = _read_file(file)
        for key in list(tree):
            if key in LEGACY_FILE_KEYS and not isinstance(tree[key], dict):
                deprecated.append(f"{key} (in {file}; use {LEGACY_FILE_KEYS[key]})")
                put(LEGACY_FILE_KEYS[key], tree.pop(key), str(file))
        for key, value in _flatten(tree).items():
            put(key, value, str(file))
    for key, value, origin in _env_layer(env):
        put(key, value, origin)
    for key, value in (flags or {}).items():
        if value is not None:
            put(key, value, "the command line")
    _assemble_objects(given, origins, order)

    values: dict[str, Any] = {}
    problems: list[str] = []

    def where(path: str) -> str:
        return origins.get(path, "the defaults")

    out_of_range: list[str] = []
    for path, (default, check) in SCHEMA.items():
        raw = given.get(path, default)
        try:
            values[path] = check(raw)
        except ValueError as exc:
            if isinstance(exc, OutOfRange) and path in WARN_ONLY_RANGES:
                values[path] = exc.nearest()
                out_of_range.append(
                    f"{path}: {exc.qdrant_text()} (Tessera uses {values[path]}; from {where(path)})"
                )
            else:
                problems.append(f"{path}: {exc} (from {where(path)})")

    unused: list[str] = []
    unknown: list[str] = []
    for path, raw in given.items():
        if path in SCHEMA:
            continue
        if path in QDRANT_UNUSED_DEFAULTS:
            unused_check = _unused_check(path)
            if unused_check is not None:
                try:
                    raw = unused_check(raw)
                except ValueError as exc:
                    problems.append(f"{path}: {exc} (from {origins.get(path, 'the defaults')})")
                    continue
            if raw != QDRANT_UNUSED_DEFAULTS[path] and not (
                _null(raw) and QDRANT_UNUSED_DEFAULTS[path] is None
            ):
                unused.append(path)
        elif path.startswith(QDRANT_UNUSED_PREFIXES) or path in (
            "telemetry_disabled",
            "per_collection_metrics_enabled",
        ):
            unused.append(path)
        else:
            unknown.append(path)

    if not problems:
        problems.extend(_cross_checks(values, lambda key: origins.get(key, "the defaults")))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return Settings(
        values=values,
        origins=origins,
        files=files,
        unused=sorted(unused),
        unknown=sorted(unknown),
        deprecated=deprecated,
        missing_config=missing,
        out_of_range=out_of_range,
    )


def _cross_checks(values: Mapping[str, Any], origin: Callable[[str], str]) -> list[str]:
    problems: list[str] = []
    grpc_port = values["service.grpc_port"]
    if grpc_port and grpc_port == values["service.http_port"]:
        problems.append(
            f"service.grpc_port: {grpc_port} is also service.http_port "
            f"(from {origin('service.grpc_port')})"
        )
    metrics_port = values["service.metrics_port"]
    if metrics_port and metrics_port in (values["service.http_port"], grpc_port):
        problems.append(
            f"service.metrics_port: {metrics_port} is also the REST or gRPC port "
            f"(from {origin('service.metrics_port')})"
        )
    if values["service.enable_tls"]:
        problems.extend(_tls_files(values, origin, ["tls.cert", "tls.key"], "service.enable_tls"))
        if values["service.verify_https_client_certificate"]:
            switch = "service.verify_https_client_certificate"
            problems.extend(_tls_files(values, origin, ["tls.ca_cert"], switch))
    if values["cluster.enabled"] and values["cluster.p2p.enable_tls"]:
        keys = ["tls.cert", "tls.key", "tls.ca_cert"]
        problems.extend(_tls_files(values, origin, keys, "cluster.p2p.enable_tls"))
    if values["cluster.enabled"] and not values["cluster.etcd.endpoints"]:
        problems.append(
            "cluster.etcd.endpoints: required when cluster.enabled is true (the etcd that "
            f"holds the cluster's metadata; cluster.enabled from {origin('cluster.enabled')})"
        )
    if values["logger.on_disk.enabled"] and not values["logger.on_disk.log_file"]:
        problems.append(
            "logger.on_disk.log_file: required when logger.on_disk.enabled is true "
            f"(from {origin('logger.on_disk.enabled')})"
        )
    return problems


def _tls_files(
    values: Mapping[str, Any], origin: Callable[[str], str], keys: list[str], switch: str
) -> list[str]:
    """What is wrong with the files `keys` name, which `switch` (true) asks for."""
    problems = []
    for key in keys:
        if not values[key]:
            problems.append(f"{key}: required when {switch} is true (from {origin(switch)})")
        elif not Path(values[key]).is_file():
            problems.append(f"{key}: no such file: {values[key]} (from {origin(key)})")
    return problems
