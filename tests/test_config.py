"""Configuration the Qdrant way: config.yaml layout, config/ files, QDRANT__ / TESSERA__
environment variables, flags; start-up banner, warnings, logs; `tessera --version`/`--help`.

The loading rules are checked in-process on `tessera.settings.load`; what only a running
server shows (storage path, collection defaults, log lines, exit codes) on real servers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from qdrant_client import QdrantClient, models

from tessera import QDRANT_API_VERSION, __version__
from tessera.cli import banner, config_warnings, parser, settings
from tessera.collection_config import (
    collection_defaults,
    reset_collection_defaults,
    set_collection_defaults,
)
from tessera.settings import ConfigError, Settings, load
from tests.conftest import TARGET, ServerProcess, free_port

# A configuration in Qdrant's layout, as a Qdrant user would have it: keys Tessera uses,
# Qdrant keys it does not (at their defaults, and one that is not), and one typo.
QDRANT_CONFIG = """\
log_level: INFO
storage:
  storage_path: {storage}
  snapshots_path: ./snapshots
  on_disk_payload: false
  wal:
    wal_capacity_mb: 16
    wal_segments_ahead: 0
  performance:
    max_search_threads: 0
    optimizer_cpu_budget: 2
  optimizers:
    deleted_threshold: 0.3
    vacuum_min_vector_number: 1000
    default_segment_number: 2
    indexing_threshold_kb: 2000
    flush_interval_sec: 7
  hnsw_index:
    m: 24
    ef_construct: 128
    full_scan_threshold_kb: 5000
    on_disk: false
  collection:
    replication_factor: 1
    vectors:
      on_disk: null
service:
  host: 127.0.0.1
  http_port: {http_port}
  grpc_port: {grpc_port}
  max_request_size_mb: 32
  enable_cors: true
  enable_tls: false
  verify_https_client_certificate: false
  max_workers: 0
  http_prot: 1
cluster:
  enabled: false
  p2p:
    port: 6335
telemetry_disabled: true
tls:
  cert: ./tls/cert.pem
  key: ./tls/key.pem
  cert_ttl: 3600
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------------------------
# Loading rules (in-process)


def test_defaults_are_qdrants(tmp_path: Path) -> None:
    conf = load(cwd=tmp_path, env={})
    assert (conf.host, conf.http_port, conf.grpc_port) == ("0.0.0.0", 6333, 6334)
    assert conf.storage_path == Path("./storage")
    assert conf["service.max_request_size_mb"] == 32
    assert conf["service.enable_cors"] is True
    assert conf["tls.cert_ttl"] == 3600
    assert not conf.auth_enabled and conf.tls is None
    assert conf.files == [] and conf.unused == [] and conf.unknown == []


def test_qdrant_config_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "qdrant.yaml",
        QDRANT_CONFIG.format(storage="/data/q", http_port=7333, grpc_port=7334),
    )
    conf = load(cwd=tmp_path, env={}, config_file=str(path))
    assert conf.storage_path == Path("/data/q")
    assert (conf.host, conf.http_port, conf.grpc_port) == ("127.0.0.1", 7333, 7334)
    defaults = conf.collection_defaults()
    assert defaults["hnsw_config"]["m"] == 24
    assert defaults["hnsw_config"]["full_scan_threshold"] == 5000
    assert defaults["optimizers_config"]["indexing_threshold"] == 2000
    assert defaults["optimizers_config"]["deleted_threshold"] == 0.3
    assert defaults["wal_config"]["wal_capacity_mb"] == 16
    assert defaults["on_disk_payload"] is False
    # Qdrant keys at their defaults are not reported; ones set otherwise are; typos too.
    assert conf.unused == ["storage.performance.optimizer_cpu_budget", "telemetry_disabled"]
    assert conf.unknown == ["service.http_prot"]
    assert conf.files == [path]
    # Keys Tessera uses (not reported as unused) with Qdrant's defaults.
    assert conf["service.metrics_prefix"] is None and conf["service.slow_query_secs"] is None
    env = {"QDRANT__SERVICE__METRICS_PREFIX": "q_", "QDRANT__SERVICE__SLOW_QUERY_SECS": "0.5"}
    conf = load(cwd=tmp_path, env=env, config_file=str(path))
    assert (conf["service.metrics_prefix"], conf["service.slow_query_secs"]) == ("q_", 0.5)
    assert "service.metrics_prefix" not in conf.unused
    assert "service.slow_query_secs" not in conf.unused


def test_config_dir_then_file_then_env_then_flags(tmp_path: Path) -> None:
    write(tmp_path / "config/config.yaml", "service:\n  http_port: 1001\n  grpc_port: 2001\n")
    write(tmp_path / "config/development.yml", "service:\n  http_port: 1002\n")
    write(tmp_path / "config/local.yaml", "service:\n  http_port: 1003\nlog_level: DEBUG\n")
    explicit = write(tmp_path / "mine.json", '{"service": {"http_port": 1004, "host": "::1"}}')
    env = {
        "QDRANT__SERVICE__HTTP_PORT": "1005",
        "QDRANT__SERVICE__API_KEY": "from-qdrant-env",
        "QDRANT__STORAGE__HNSW_INDEX__M": "32",
    }
    conf = load(cwd=tmp_path, env=env, config_file=str(explicit))
    assert conf.http_port == 1005 and conf.grpc_port == 2001 and conf.host == "::1"
    assert conf["log_level"] == "DEBUG"
    assert conf.api_keys == ("from-qdrant-env", None, None)
    assert conf.collection_defaults()["hnsw_config"]["m"] == 32
    assert conf.origins["service.http_port"] == "QDRANT__SERVICE__HTTP_PORT"
    assert [p.name for p in conf.files] == [
        "config.yaml",
        "development.yml",
        "local.yaml",
        "mine.json",
    ]
    # TESSERA__ is a synonym that wins over QDRANT__; the older TESSERA_PORT too.
    conf = load(cwd=tmp_path, env={**env, "TESSERA__SERVICE__HTTP_PORT": "1006"})
    assert conf.http_port == 1006
    conf = load(cwd=tmp_path, env={"TESSERA_PORT": "1007", "TESSERA_STORAGE": "/s"})
    assert conf.http_port == 1007 and conf.storage_path == Path("/s")
    # Flags win over everything.
    conf = load(cwd=tmp_path, env=env, flags={"service.http_port": 1008, "service.host": None})
    assert conf.http_port == 1008 and conf.host == "0.0.0.0"
    # RUN_MODE picks the middle file, as in Qdrant.
    write(tmp_path / "config/production.yaml", "service:\n  http_port: 1009\n")
    os.remove(tmp_path / "config/local.yaml")
    assert load(cwd=tmp_path, env={"RUN_MODE": "production"}).http_port == 1009


def test_cli_flags_and_legacy_flat_file(tmp_path: Path) -> None:
    flat = write(tmp_path / "old.yaml", "host: 127.0.0.2\nport: 7000\nstorage: ./d\n")
    conf = settings(["serve", "--config", str(flat), "--grpc-port", "0"], env={})
    assert (conf.host, conf.http_port, conf.grpc_port) == ("127.0.0.2", 7000, 0)
    assert conf.storage_path == Path("d")
    assert conf.deprecated and "port" in conf.deprecated[1]
    # Without a command, flags are serve's (as `qdrant --config-path FILE` starts Qdrant).
    conf = settings(["--config-path", str(flat), "--port", "7001", "--no-access-log"], env={})
    assert conf.http_port == 7001 and conf["service.access_log"] is False


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"QDRANT__SERVICE__HTTP_PORT": "abc"}, "service.http_port: expected an integer"),
        ({"QDRANT__SERVICE__HTTP_PORT": "70000"}, "must be 65535 or smaller"),
        ({"QDRANT__SERVICE__ENABLE_CORS": "maybe"}, "service.enable_cors: expected true"),
        ({"QDRANT__LOG_LEVEL": "LOUD"}, "unknown log level 'LOUD'"),
        ({"QDRANT__STORAGE__WAL__WAL_SEGMENTS_AHEAD": "-1"}, "must be 0 or larger"),
        ({"QDRANT__SERVICE__ENABLE_TLS": "true"}, "tls.cert: required"),
        ({"QDRANT__SERVICE__GRPC_PORT": "6333"}, "is also service.http_port"),
    ],
)
def test_invalid_values_are_named_with_their_source(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(cwd=tmp_path, env=env)
    assert words in str(raised.value)
    assert next(iter(env)) in str(raised.value) or "defaults" in str(raised.value)


def test_values_qdrant_only_warns_about_start_with_its_warning(tmp_path: Path) -> None:
    # Qdrant's settings validation (a range broken by a value of the right type) only logs
    # "Settings configuration file has validation errors:"; the server starts.
    env = {
        "QDRANT__STORAGE__HNSW_INDEX__EF_CONSTRUCT": "2",
        "QDRANT__STORAGE__OPTIMIZERS__DELETED_THRESHOLD": "1.5",
        "QDRANT__STORAGE__OPTIMIZERS__VACUUM_MIN_VECTOR_NUMBER": "50",
    }
    conf = load(cwd=tmp_path, env=env)
    assert conf["storage.hnsw_index.ef_construct"] == 4
    assert conf["storage.optimizers.deleted_threshold"] == 1.0
    assert conf["storage.optimizers.vacuum_min_vector_number"] == 100
    lines = config_warnings(conf)
    header = lines.index("Settings configuration file has validation errors:")
    assert lines[header + 1 : header + 4] == [
        "- storage.optimizers.deleted_threshold: value 1.5 invalid, must be from 0.0 to 1.0 "
        "(Tessera uses 1.0; from QDRANT__STORAGE__OPTIMIZERS__DELETED_THRESHOLD)",
        "- storage.optimizers.vacuum_min_vector_number: value 50 invalid, must be 100.0 or "
        "larger (Tessera uses 100; from QDRANT__STORAGE__OPTIMIZERS__VACUUM_MIN_VECTOR_NUMBER)",
        "- storage.hnsw_index.ef_construct: value 2 invalid, must be 4.0 or larger "
        "(Tessera uses 4; from QDRANT__STORAGE__HNSW_INDEX__EF_CONSTRUCT)",
    ]
    # New collections take the values used (in range: a stored config is checked on reading).
    set_collection_defaults(conf.collection_defaults())
    try:
        assert collection_defaults().hnsw["ef_construct"] == 4
    finally:
        reset_collection_defaults()


def test_bad_files_are_refused(tmp_path: Path) -> None:
    # A --config-path naming no file: Qdrant logs an error and starts without it.
    missing = load(cwd=tmp_path, env={}, config_file="nope.yaml")
    assert missing.missing_config == "nope.yaml" and missing.files == []
    assert load(cwd=tmp_path, env={}).missing_config is None
    bad = write(tmp_path / "bad.yaml", "service: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(cwd=tmp_path, env={}, config_file=str(bad))
    listy = write(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load(cwd=tmp_path, env={}, config_file=str(listy))


def test_banner_and_warnings() -> None:
    conf = load(cwd=Path("/nonexistent"), env={"QDRANT__SERVICE__JWT_RBAC": "true"})
    lines = banner(conf)
    assert lines[0] == f"tessera {__version__} (Qdrant API {QDRANT_API_VERSION})"
    assert "REST API: http://0.0.0.0:6333" in lines
    assert "gRPC API: 0.0.0.0:6334" in lines
    assert "TLS: off" in lines and "auth: off" in lines
    assert any(line.startswith("storage: ") for line in lines)
    warnings = config_warnings(conf)
    assert any("without an API key" in w for w in warnings)
    assert any("JWT RBAC configured but no API key set" in w for w in warnings)
    keyed = load(
        cwd=Path("/nonexistent"),
        env={"QDRANT__SERVICE__API_KEY": "k" * 40, "QDRANT__SERVICE__READ_ONLY_API_KEY": "r"},
        flags={"service.host": "127.0.0.1"},
    )
    assert "auth: on (API key, read-only key)" in banner(keyed)
    assert config_warnings(keyed) == []


def test_every_flag_is_described() -> None:
    top = parser()
    subparsers = next(a for a in top._actions if a.choices and "serve" in a.choices)
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help, f"tessera {name} {action.option_strings}: no help text"
    out = subprocess.run(
        [sys.executable, "-m", "tessera", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"tessera {__version__} (Qdrant API {QDRANT_API_VERSION})"


def test_invalid_config_stops_start_up(tmp_path: Path) -> None:
    env = {**os.environ, "QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "-1"}
    out = subprocess.run(
        [sys.executable, "-m", "tessera", "serve", "--storage", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    assert out.returncode == 2
    assert "service.max_request_size_mb: must be 1 or larger" in out.stderr
    assert "QDRANT__SERVICE__MAX_REQUEST_SIZE_MB" in out.stderr
    assert not (tmp_path / "s").exists()


def _serve_once(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tessera", "serve", "--host", "127.0.0.1", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )


def test_a_busy_grpc_port_or_a_bad_storage_path_stops_start_up_cleanly(tmp_path: Path) -> None:
    """One line and exit code 2, as for any invalid setting, not a traceback from inside
    the app's start-up."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        out = _serve_once(
            tmp_path, "--port", str(free_port()), "--grpc-port", str(busy),
            "--storage", str(tmp_path / "s"),
        )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert f"service.grpc_port {busy} on 127.0.0.1: Address already in use" in out.stderr
    assert "Traceback" not in out.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = _serve_once(tmp_path, "--port", str(free_port()), "--storage", str(blocker / "s"))
    assert out.returncode == 2 and "storage.storage_path" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_host_any_ipv6_address_takes_ipv4_too(tmp_path: Path) -> None:
    """`service.host: "::"` listens on every address, IPv4 included, as Qdrant's does."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera", "serve", "--host", "::", "--port", str(port),
         "--grpc-port", "0", "--storage", str(tmp_path / "s")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                v4 = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert v4.status_code == 200
        assert httpx.get(f"http://[::1]:{port}/", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --------------------------------------------------------------------------------------------
# On a running server

pytestmark_server = pytest.mark.server_only(reason="starts servers")


class ConfiguredServer(ServerProcess):
    """A server started from a config file alone: no --port/--storage flags."""

    def command(self) -> list[str]:
        assert self.config is not None
        return [sys.executable, "-m", "tessera", "--config", str(self.config), *self.extra_args]


@pytestmark_server
@pytest.mark.skipif(TARGET != "server", reason="starts its own server")
def test_server_runs_from_a_qdrant_config(tmp_path: Path) -> None:
    port, grpc_port = free_port(), free_port()
    storage = tmp_path / "data-from-config"
    config = write(
        tmp_path / "qdrant.yaml",
        QDRANT_CONFIG.format(storage=storage, http_port=port, grpc_port=grpc_port),
    )
    server = ConfiguredServer(storage, tmp_path / "server.log", port=port, config=config)
    server.grpc_port = grpc_port
    server.start()
    try:
        client = QdrantClient(url=server.url, timeout=10)
        client.create_collection(
            "c", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
        )
        assert (storage / "collections" / "c").is_dir()  # storage.storage_path honoured
        info = client.get_collection("c")
        assert info.config.hnsw_config.m == 24
        assert info.config.hnsw_config.ef_construct == 128
        assert info.config.hnsw_config.full_scan_threshold == 5000
        assert info.config.optimizer_config.indexing_threshold == 2000
        assert info.config.optimizer_config.default_segment_number == 2
        assert info.config.optimizer_config.flush_interval_sec == 7
        assert info.config.wal_config.wal_capacity_mb == 16
        assert info.config.params.on_disk_payload is False
        # A create request's own values still win over the defaults.
        client.create_collection(
            "d",
            vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
            hnsw_config=models.HnswConfigDiff(m=8),
            on_disk_payload=True,
        )
        info = client.get_collection("d")
        assert info.config.hnsw_config.m == 8 and info.config.params.on_disk_payload is True
        client.close()
        # gRPC: a method the server does not know answers UNIMPLEMENTED (every method of
        # Qdrant's services is implemented; a newer client's would be answered so).
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            with pytest.raises(grpc.RpcError) as raised:
                channel.unary_unary("/qdrant.Collections/NoSuchMethod")(b"", timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "INFO tessera: storage: " + str(storage) in log
    assert "REST API: http://127.0.0.1:" + str(port) in log
    assert f"gRPC API: 127.0.0.1:{grpc_port}" in log
    unused = [line for line in log.splitlines() if "config keys without effect" in line]
    assert len(unused) == 1 and "WARNING" in unused[0]
    assert "storage.performance.optimizer_cpu_budget" in unused[0]
    assert "unknown keys (typos?): service.http_prot" in unused[0]
    assert "without an API key" not in log  # loopback only
    assert "Traceback" not in log and " ERROR " not in log
    # The access log: method, path, status, size, duration; health checks left out.
    access = [line for line in log.splitlines() if "tessera.access" in line]
    assert any('"PUT /collections/c HTTP/1.1" 200' in line for line in access)
    assert not any("/readyz" in line for line in access)


@pytestmark_server
def test_json_logs_and_no_access_log(server_factory: Any) -> None:
    server = server_factory(extra_args=["--log-format", "json", "--no-access-log"])
    httpx.get(f"{server.url}/collections", timeout=10).raise_for_status()
    time.sleep(0.2)
    server.stop()
    records = [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert records, "no JSON log lines"
    first = records[0]
    assert set(first) == {"timestamp", "level", "fields", "target"}
    assert first["fields"]["message"].startswith("tessera ") and first["level"] == "INFO"
    assert not any(r["target"] == "tessera.access" for r in records)


def test_settings_default_matches_an_empty_load(tmp_path: Path) -> None:
    assert Settings.default().values == load(cwd=tmp_path, env={}).values


def test_qdrants_command_line_flags_are_taken() -> None:
    """Qdrant's start commands (`./qdrant --disable-telemetry`, `-f`, `--collection-snapshot`)
    start Tessera too."""
    from tessera.cli import parse_args

    args = parse_args(
        ["--disable-telemetry", "--stacktrace", "-f", "--collection-snapshot", "a.snapshot:c"]
    )
    assert args.command == "serve" and args.force_snapshot
    assert args.snapshot == ["a.snapshot:c"]
    assert args.disable_telemetry and args.stacktrace


def test_environment_variables_in_any_case(tmp_path: Path) -> None:
    """As Qdrant's config library: `qdrant__service__api_key` is QDRANT__SERVICE__API_KEY."""
    conf = load(
        cwd=tmp_path, env={"qdrant__service__api_key": "k", "Qdrant__Service__Http_Port": "7"}
    )
    assert conf.api_keys[0] == "k" and conf.http_port == 7


def test_object_settings_merge_key_by_key_across_sources(tmp_path: Path) -> None:
    """`storage.collection.strict_mode` / `quantization` are merged as Qdrant's config
    library merges maps: inner keys from several files and from QDRANT__ variables; a later
    source giving the whole object replaces what earlier ones said of it."""
    write(
        tmp_path / "config" / "config.yaml",
        "storage:\n  collection:\n    strict_mode:\n      enabled: true\n",
    )
    write(
        tmp_path / "config" / "local.yaml",
        "storage:\n  collection:\n    strict_mode:\n      max_query_limit: 10\n",
    )
    env = {
        "QDRANT__STORAGE__COLLECTION__STRICT_MODE__SEARCH_ALLOW_EXACT": "false",
        "QDRANT__STORAGE__COLLECTION__QUANTIZATION__SCALAR__TYPE": "int8",
        "QDRANT__STORAGE__COLLECTION__QUANTIZATION__SCALAR__QUANTILE": "0.99",
    }
    conf = load(cwd=tmp_path, env=env)
    assert conf["storage.collection.strict_mode"] == {
        "enabled": True,
        "max_query_limit": 10,
        "search_allow_exact": False,
    }
    assert conf["storage.collection.quantization"] == {"scalar": {"type": "int8", "quantile": 0.99}}
    assert not conf.unused and not conf.unknown
    replaced = load(
        cwd=tmp_path, env={"QDRANT__STORAGE__COLLECTION__STRICT_MODE": '{"enabled": false}'}
    )
    assert replaced["storage.collection.strict_mode"] == {"enabled": False}


def test_yaml_is_read_as_qdrant_reads_it(tmp_path: Path) -> None:
    """YAML 1.2's core schema, as Qdrant's reader: `off` is text, not a boolean, and digits
    with a leading zero are a decimal number, not octal."""
    conf = write(
        tmp_path / "c.yaml", "log_level: off\nservice:\n  api_key: 0123\n  enable_cors: false\n"
    )
    loaded = load(cwd=tmp_path, env={}, config_file=str(conf))
    assert loaded["log_level"] == "off"
    assert loaded["service.api_key"] == "123"
    assert loaded["service.enable_cors"] is False


def test_collection_defaults_qdrant_keys(tmp_path: Path) -> None:
    """`storage.collection.shard_number`, `storage.optimizers.prevent_unoptimized` and
    `storage.hnsw_index.inline_storage` are defaults of new collections; Qdrant's own keys
    Tessera does not use are not reported as typos."""
    conf = write(
        tmp_path / "c.yaml",
        "storage:\n  handle_collection_load_errors: true\n  mmap_advice: normal\n"
        "  collection:\n    shard_number: 4\n"
        "  optimizers:\n    prevent_unoptimized: true\n"
        "  hnsw_index:\n    inline_storage: true\n",
    )
    loaded = load(cwd=tmp_path, env={}, config_file=str(conf))
    defaults = loaded.collection_defaults()
    assert defaults["shard_number"] == 4
    assert defaults["optimizers_config"]["prevent_unoptimized"] is True
    assert defaults["hnsw_config"]["inline_storage"] is True
    assert loaded.unknown == []


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"QDRANT__TELEMETRY_DISABLED": "maybe"}, "telemetry_disabled: expected true or false"),
        ({"QDRANT__STORAGE__NODE_TYPE": "Foo"}, "storage.node_type: expected one of"),
        ({"QDRANT__STORAGE__UPDATE_CONCURRENCY": "0"}, "storage.update_concurrency: must be 1"),
        ({"QDRANT__CLUSTER__CONSENSUS__TICK_PERIOD_MS": "abc"}, "expected an integer"),
        (
            {"QDRANT__STORAGE__SHARD_TRANSFER_METHOD": "carrier_pigeon"},
            "storage.shard_transfer_method: expected one of",
        ),
    ],
)
def test_keys_tessera_ignores_are_still_typed_as_qdrant_types_them(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    """Qdrant stops on a wrong type in any key; Tessera ignores these keys but refuses the
    values Qdrant would refuse (a config that starts here starts there)."""
    with pytest.raises(ConfigError) as raised:
        load(cwd=tmp_path, env=env)
    assert words in str(raised.value)


def test_ignored_keys_at_their_defaults_are_not_reported(tmp_path: Path) -> None:
    env = {"QDRANT__STORAGE__NODE_TYPE": "Normal", "QDRANT__TELEMETRY_DISABLED": "false"}
    assert load(cwd=tmp_path, env=env).unused == []


def test_optimizers_overwrite_is_read_and_checked(tmp_path: Path) -> None:
    from tessera.collection_config import (
        CollectionConfig,
        optimizer_settings,
        set_optimizers_overwrite,
    )
    from tessera.errors import BadRequest

    conf = write(
        tmp_path / "c.yaml",
        "storage:\n  optimizers_overwrite:\n    indexing_threshold_kb: 1\n"
        "    deleted_threshold: 0.5\n",
    )
    given = load(cwd=tmp_path, env={}, config_file=str(conf))["storage.optimizers_overwrite"]
    assert given == {"indexing_threshold_kb": 1, "deleted_threshold": 0.5}
    try:
        set_optimizers_overwrite(given)
        own = CollectionConfig(
            {}, {}, False, optimizer_config={"indexing_threshold": 10000, "flush_interval_sec": 5}
        )
        assert optimizer_settings(own) == {
            "indexing_threshold": 1,
            "flush_interval_sec": 5,
            "deleted_threshold": 0.5,
        }
        assert own.optimizer_config["indexing_threshold"] == 10000
        for bad in ({"bogus": 1}, {"deleted_threshold": 2}, {"indexing_threshold": -1}):
            with pytest.raises(BadRequest):
                set_optimizers_overwrite(bad)
    finally:
        set_optimizers_overwrite(None)


@pytestmark_server
@pytest.mark.parametrize("level", ["INFO", "INFO,tessera.access=debug"])
def test_grpc_calls_are_logged_as_qdrant_logs_them(server_factory: Any, level: str) -> None:
    """Qdrant's gRPC logging layer: a call that succeeds is not an INFO line (TRACE there,
    DEBUG here); one refused for the caller's reasons is, with its status and message."""
    grpc_port = free_port()
    server = server_factory(grpc_port=grpc_port, extra_args=["--log-level", level])
    client = QdrantClient(host="127.0.0.1", grpc_port=grpc_port, prefer_grpc=True)
    try:
        assert client.collection_exists("nowhere") is False
        with pytest.raises(grpc.RpcError):
            client.get_collection("nowhere")
    finally:
        client.close()
        time.sleep(0.2)
        server.stop()
    access = [line for line in server.log_path.read_text().splitlines() if "tessera.access" in line]
    failed = [line for line in access if "/qdrant.Collections/Get" in line]
    assert len(failed) == 1 and " INFO " in failed[0]
    assert "NOT_FOUND" in failed[0] and "Collection `nowhere` doesn't exist!" in failed[0]
    succeeded = [line for line in access if "/qdrant.Collections/CollectionExists" in line]
    if level == "INFO":
        assert succeeded == []
    else:
        assert len(succeeded) == 1 and " DEBUG " in succeeded[0] and '" OK ' in succeeded[0]
