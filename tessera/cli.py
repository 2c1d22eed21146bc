"""The `tessera` command.

`tessera serve [flags]` (or `tessera [flags]`, as Qdrant starts) runs the REST API (default
port 6333) and the gRPC API (6334) over one storage directory; `tessera check --storage DIR`
verifies a storage directory offline (see storage/check.py); `tessera --version`.

Settings follow Qdrant's `config/config.yaml` layout and sources (tessera/settings.py):
built-in defaults < `config/config`, `config/$RUN_MODE`, `config/local` < `--config FILE` <
`QDRANT__SECTION__KEY` and `TESSERA__SECTION__KEY` environment variables (and the older
TESSERA_HOST, TESSERA_PORT, TESSERA_GRPC_PORT, TESSERA_STORAGE) < the flags below.
An invalid value stops start-up with a message naming it, exit code 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from tessera import QDRANT_API_VERSION, __version__
from tessera.settings import ConfigError, Settings, load

log = logging.getLogger("tessera")

EXIT_CONFIG = 2
SUBCOMMANDS = ("serve", "check")


def version_line() -> str:
    return f"tessera {__version__} (Qdrant API {QDRANT_API_VERSION})"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="tessera",
        description="A vector database that speaks Qdrant's REST and gRPC APIs.",
        epilog="Without a command, `tessera [flags]` is `tessera serve [flags]`.",
    )
    top.add_argument("-V", "--version", action="version", version=version_line())
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the REST and gRPC server",
        description="Run the REST and gRPC server. Flags override the config file and the "
        "QDRANT__SECTION__KEY / TESSERA__SECTION__KEY environment variables.",
    )
    serve.add_argument(
        "--config",
        "--config-path",
        dest="config",
        metavar="FILE",
        help="a config file in Qdrant's config.yaml layout, read after config/config.yaml "
        "and config/local.yaml (env: TESSERA_CONFIG)",
    )
    serve.add_argument(
        "--host", help="address to listen on (service.host, default 0.0.0.0: all interfaces)"
    )
    serve.add_argument(
        "--port",
        "--http-port",
        dest="port",
        type=int,
        metavar="PORT",
        help="REST port (service.http_port, default 6333)",
    )
    serve.add_argument(
        "--grpc-port",
        type=int,
        metavar="PORT",
        help="gRPC port (service.grpc_port, default 6334; 0: no gRPC)",
    )
    serve.add_argument(
        "--uri",
        metavar="URI",
        help="cluster mode: the URI other peers reach this node at, as Qdrant's --uri "
        "(cluster.p2p.uri, default http://<host>:<cluster.p2p.port>/)",
    )
    serve.add_argument(
        "--bootstrap",
        metavar="URI",
        help="accepted for Qdrant's command lines; not needed: every node finds the cluster "
        "in etcd (cluster.etcd.endpoints)",
    )
    serve.add_argument(
        "--reinit",
        action="store_true",
        help="accepted for Qdrant's command lines (re-initialise its consensus state); "
        "nothing to do: the cluster's state lives in etcd",
    )
    serve.add_argument(
        "--storage",
        "--storage-path",
        dest="storage",
        metavar="DIR",
        help="data directory (storage.storage_path, default ./storage)",
    )
    serve.add_argument(
        "--log-level",
        metavar="LEVEL",
        help="TRACE, DEBUG, INFO, WARN, ERROR or OFF, optionally followed by "
        "`,logger=level` directives (log_level, default INFO)",
    )
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log line format (logger.format, default text)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log every request: method, path, status, size, duration (service.access_log, "
        "default on)",
    )
    serve.add_argument(
        "--snapshot",
        "--collection-snapshot",
        dest="snapshot",
        action="append",
        default=[],
        metavar="PATH:COLLECTION",
        help="restore a collection snapshot file before serving (repeatable); an existing "
        "collection stops start-up unless --force-snapshot",
    )
    serve.add_argument(
        "--storage-snapshot",
        metavar="PATH",
        help="restore a full storage snapshot (every collection and alias) before serving",
    )
    serve.add_argument(
        "-f",
        "--force-snapshot",
        dest="force_snapshot",
        action="store_true",
        help="let --snapshot and --storage-snapshot replace existing collections and aliases",
    )
    # Qdrant's own flags, so that its start commands (`./qdrant --disable-telemetry`, in
    # Dockerfiles) start Tessera too: Tessera reports nothing anywhere, and its errors carry
    # no Rust backtrace to turn on.
    serve.add_argument(
        "--disable-telemetry",
        action="store_true",
        help="accepted for Qdrant's command lines; Tessera sends no telemetry anywhere",
    )
    serve.add_argument(
        "--stacktrace",
        action="store_true",
        help="accepted for Qdrant's command lines (Qdrant's panic backtraces); no effect",
    )
    check = sub.add_parser(
        "check",
        help="verify every checksum of a storage directory offline (exit 0/1)",
        description="Verify every checksum of a storage directory offline; exit 0 when "
        "intact, 1 when damaged.",
    )
    check.add_argument(
        "--storage", default="./storage", metavar="DIR", help="data directory (default ./storage)"
    )
    return top


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help", "-V", "--version")):
        args = ["serve", *args]
    return parser().parse_args(args)


def settings(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """The settings `tessera serve` would run with (ConfigError when invalid)."""
    args = parse_args(argv)
    return settings_of(args, env)


def settings_of(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    flags: dict[str, Any] = {
        "service.host": args.host,
        "service.http_port": args.port,
        "service.grpc_port": args.grpc_port,
        "storage.storage_path": args.storage,
        "log_level": args.log_level,
        "logger.format": args.log_format,
        "service.access_log": args.access_log,
        "cluster.p2p.uri": args.uri,
    }
    return load(env=os.environ if env is None else env, config_file=args.config, flags=flags)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def banner(conf: Settings) -> list[str]:
    host = conf.host
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if conf.tls else "http"
    rw, alt, ro = conf.api_keys
    if conf.auth_enabled:
        parts = [p for p, on in (("API key", rw or alt), ("read-only key", ro)) if on]
        if conf.jwt_rbac:
            parts.append("JWT RBAC")
        auth = "on (" + ", ".join(parts) + ")"
    else:
        auth = "off"
    tls = conf.tls
    if tls is None:
        tls_line = "off"
    else:
        tls_line = "on" + (
            " (mutual on REST: client certificates required)" if tls.verify_client else ""
        )
        tls_line += f", certificate reload every {tls.cert_ttl} s" if tls.cert_ttl else ""
    lines = [
        version_line(),
        f"REST API: {scheme}://{shown}:{conf.http_port}",
        f"gRPC API: {shown}:{conf.grpc_port}" if conf.grpc_port else "gRPC API: off",
        f"storage: {conf.storage_path.resolve()}",
        f"TLS: {tls_line}",
        f"auth: {auth}",
    ]
    if conf.files:
        lines.append("config: " + ", ".join(str(f) for f in conf.files))
    if conf["cluster.enabled"]:
        lines.append("cluster: on, etcd at " + ", ".join(conf["cluster.etcd.endpoints"]))
    return lines


def config_warnings(conf: Settings) -> list[str]:
    out: list[str] = []
    if conf.unused or conf.unknown:
        parts = []
        if conf.unused:
            parts.append("Qdrant settings Tessera does not use: " + ", ".join(conf.unused))
        if conf.unknown:
            parts.append("unknown keys (typos?): " + ", ".join(conf.unknown))
        out.append("config keys without effect: " + "; ".join(parts))
    for item in conf.deprecated:
        out.append(f"deprecated config key {item}")
    if conf.out_of_range:  # Qdrant's lines for them: the server starts all the same
        out.append("Settings configuration file has validation errors:")
        out.extend(f"- {item}" for item in conf.out_of_range)
    rw, alt, _ = conf.api_keys
    if conf["service.jwt_rbac"]:
        if not (rw or alt):
            out.append("JWT RBAC configured but no API key set, JWT RBAC is not enabled")
        elif min(len(k) for k in (rw, alt) if k) < 32:
            out.append(
                "It is highly recommended to use an API key of 32 bytes when JWT RBAC is enabled"
            )
    if not conf.auth_enabled and not is_loopback(conf.host):
        out.append(
            f"listening on {conf.host} without an API key: anyone who can reach ports "
            f"{conf.http_port}"
            + (f" and {conf.grpc_port}" if conf.grpc_port else "")
            + " can read, change and delete every collection (set service.api_key, or "
            "--host 127.0.0.1)"
        )
    if conf.auth_enabled and conf.tls is None and not is_loopback(conf.host):
        out.append("API keys are sent in clear text without TLS (set service.enable_tls)")
    return out


def snapshot_mapping(items: list[str]) -> list[tuple[Path, str]]:
    """`--snapshot PATH:COLLECTION` values; the collection is after the last colon, as a
    collection name cannot hold one."""
    out: list[tuple[Path, str]] = []
    for item in items:
        path, sep, name = item.rpartition(":")
        if not sep or not path or not name:
            raise ConfigError(f"--snapshot {item!r}: expected PATH:COLLECTION")
        out.append((Path(path), name))
    return out


def recover_snapshots(
    conf: Settings, mapping: list[tuple[Path, str]], full: Path | None, force: bool
) -> None:
    """Qdrant's start-up recovery: restore before anything is served. Every failure stops
    start-up with its reason; nothing that existed is replaced without `force`."""
    if not mapping and full is None:
        return
    from tessera.api.snapshots import snapshots_path
    from tessera.errors import TesseraError
    from tessera.storage.toc import TableOfContents

    conf.storage_path.mkdir(parents=True, exist_ok=True)
    toc = TableOfContents(conf.storage_path, snapshots_path(conf.storage_path, conf, None))
    try:
        if full is not None:
            if not full.is_file():
                raise ConfigError(f"--storage-snapshot {full}: no such file")
            restored = toc.snapshots.recover_full(full, force=force)
            log.info("restored collections %s from %s", ", ".join(restored), full)
        for path, name in mapping:
            if not path.is_file():
                raise ConfigError(f"--snapshot {path}:{name}: no such file")
            if toc.exists(name) and not force:
                raise ConfigError(
                    f"Collection {name} already exists. Use --force-snapshot to overwrite it."
                )
            toc.snapshots.restore_file(name, path)
            log.info("restored collection %s from %s", name, path)
    except TesseraError as exc:
        raise ConfigError(f"snapshot recovery failed: {exc.message}") from None
    finally:
        toc.close()


def uvicorn_log_level() -> str:
    return "debug" if logging.getLogger().level <= logging.DEBUG else "warning"


def serve(
    conf: Settings, recovery: argparse.Namespace | None = None, argv: list[str] | None = None
) -> None:
    """Runs the server (`argv`: the command line it was started with, which read workers
    are started with too)."""
    if conf["cluster.enabled"]:
        # A peer answers its part of other peers' queries while running its own: several
        # BLAS calls run at once, and OpenBLAS's one-thread-per-core pools in every such
        # call (and in every peer sharing the machine) oversubscribe the cores. Measured
        # with 3 peers on 2 cores: 26 ms -> 8 ms per fanned-out query. Set before numpy
        # loads; an explicit setting wins.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import uvicorn

    from tessera.api import read_workers
    from tessera.api.app import build_app
    from tessera.api.tls import RestCertificates
    from tessera.collection_config import set_collection_defaults, set_optimizers_overwrite
    from tessera.errors import TesseraError
    from tessera.logs import configure

    log_file = conf["logger.on_disk.log_file"] if conf["logger.on_disk.enabled"] else None
    configure(
        conf["log_level"],
        conf["logger.format"],
        Path(log_file) if log_file else None,
        conf["logger.on_disk.log_level"],
        conf["logger.on_disk.format"],
    )
    try:
        set_collection_defaults(conf.collection_defaults())
        set_optimizers_overwrite(conf["storage.optimizers_overwrite"])
    except TesseraError as exc:
        raise ConfigError(f"invalid collection defaults (storage.*): {exc.message}") from None
    handoff = os.environ.get(read_workers.WORKER_ENV)
    if handoff:  # a read worker of a server started with service.read_workers
        read_workers.watch_parent(os.getppid())
        log.info("read worker %d of server %d serving point reads", os.getpid(), os.getppid())
        app = build_app(
            conf.storage_path,
            grpc_port=conf.grpc_port,
            grpc_host=conf.host,
            settings=conf,
            handoff=handoff,
        )
        read_workers.run_worker_server(conf, app, uvicorn, uvicorn_log_level())
        return
    certificates = None
    if conf.tls is not None:
        try:
            certificates = RestCertificates(conf.tls)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"TLS certificate or key unusable: {exc}") from None
    storage = conf.storage_path
    try:
        storage.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"storage.storage_path {storage}: {exc.strerror or exc}") from None
    if conf.grpc_port:
        check_bindable(conf.host, conf.grpc_port, "service.grpc_port")
    if recovery is not None:
        full = recovery.storage_snapshot
        recover_snapshots(
            conf,
            snapshot_mapping(recovery.snapshot),
            Path(full) if full else None,
            recovery.force_snapshot,
        )
    for line in banner(conf):
        log.info("%s", line)
    if conf.missing_config:
        log.error("Config file via --config-path is not found: %s", conf.missing_config)
    for warning in config_warnings(conf):
        log.warning("%s", warning)
    if recovery is not None and getattr(recovery, "bootstrap", None):
        log.info("--bootstrap %s ignored: peers find each other in etcd", recovery.bootstrap)
    if recovery is not None and getattr(recovery, "reinit", False):
        log.info("--reinit ignored: the cluster's state lives in etcd")
    workers = None
    count = conf["service.read_workers"] or 0
    barred = (
        "recovery mode"
        if conf["storage.recovery_mode"]
        else "TLS"
        if certificates is not None
        else "cluster mode"
        if conf["cluster.enabled"]
        else None
    )
    if count and barred:
        log.warning("service.read_workers ignored: read workers do not run with %s", barred)
    elif count:
        workers = read_workers.ReadWorkers(count, argv if argv is not None else sys.argv[1:])
    app = build_app(
        storage,
        grpc_port=conf.grpc_port,
        grpc_host=conf.host,
        settings=conf,
        certificates=certificates,
        read_workers=workers,
    )
    config = uvicorn.Config(
        app,
        host=conf.host,
        port=conf.http_port,
        log_config=None,
        log_level=uvicorn_log_level(),
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
    config.load()
    if certificates is not None:
        config.ssl = certificates.context
    # Made here rather than by uvicorn: "::" is every address, IPv4 included, as Qdrant's
    # listener takes it (asyncio's own socket for it would be IPv6 only), and a port shared
    # with the read workers.
    sockets = None
    shared = workers is not None
    if shared or conf.host.strip("[]") == "::":
        try:
            sockets = [read_workers.listening_socket(conf.host, conf.http_port, shared)]
        except OSError as exc:
            where = conf.host.strip("[]")
            raise ConfigError(
                f"service.http_port {conf.http_port} on {where}: {exc.strerror or exc}"
            ) from None
    server = uvicorn.Server(config)
    if workers is not None:
        workers.bind(server, config)
    server.run(sockets=sockets)


def check_bindable(host: str, port: int, key: str) -> None:
    """ConfigError, before anything starts, when `port` cannot be listened on at `host` (in
    use, or a host that is no address of this machine): the gRPC server would otherwise fail
    inside the app's start-up, with a traceback."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise ConfigError(f"service.host {host!r}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"{key} {port} on {host}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "check":
        from tessera.storage.check import check_storage

        report: list[str] = []
        intact = check_storage(Path(args.storage), report)
        print("\n".join(report))
        raise SystemExit(0 if intact else 1)
    try:
        conf = settings_of(args)
        serve(conf, args, list(sys.argv[1:] if argv is None else argv))
    except ConfigError as exc:
        print(f"tessera: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


if __name__ == "__main__":
    main()
