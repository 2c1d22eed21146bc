"""`tessera serve [--host H] [--port P] [--grpc-port G] [--storage DIR] [--config FILE]`;
`tessera check --storage DIR` verifies a storage directory offline (see storage/check.py).

Settings come from, in rising priority: defaults, the config file (JSON or a flat
`key: value` YAML subset), environment variables (TESSERA_HOST, TESSERA_PORT,
TESSERA_GRPC_PORT, TESSERA_STORAGE), command-line flags. REST listens on `port` (6333),
gRPC on `grpc_port` (6334) of the same host; a gRPC port of 0 turns gRPC off.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import orjson

DEFAULTS: dict[str, Any] = {
    "host": "0.0.0.0",
    "port": 6333,
    "grpc_port": 6334,
    "storage": "./storage",
}


def _read_config(path: str) -> dict[str, Any]:
    text = Path(path).read_text()
    try:
        loaded = orjson.loads(text)
        return loaded if isinstance(loaded, dict) else {}
    except orjson.JSONDecodeError:
        out: dict[str, Any] = {}
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if ":" in line:
                key, value = (s.strip() for s in line.split(":", 1))
                out[key] = value.strip("'\"")
        return out


def settings(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="tessera")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the REST and gRPC server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default 6334, 0: no gRPC)")
    serve.add_argument("--storage")
    serve.add_argument("--config")
    check = sub.add_parser(
        "check", help="verify every checksum of a storage directory offline (exit 0/1)"
    )
    check.add_argument("--storage", default=DEFAULTS["storage"])
    args = parser.parse_args(argv)
    if args.command == "check":
        return {"command": "check", "storage": args.storage}
    merged = dict(DEFAULTS)
    config_file = args.config or os.environ.get("TESSERA_CONFIG")
    if config_file:
        merged.update(_read_config(config_file))
    for key in DEFAULTS:
        env = os.environ.get(f"TESSERA_{key.upper()}")
        if env:
            merged[key] = env
        value = getattr(args, key)
        if value is not None:
            merged[key] = value
    merged["port"] = int(merged["port"])
    merged["grpc_port"] = int(merged["grpc_port"])
    return merged


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from tessera.api.app import build_app

    conf = settings(argv)
    if conf.get("command") == "check":
        from tessera.storage.check import check_storage

        report: list[str] = []
        intact = check_storage(Path(conf["storage"]), report)
        print("\n".join(report))
        raise SystemExit(0 if intact else 1)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    storage = Path(conf["storage"])
    storage.mkdir(parents=True, exist_ok=True)
    app = build_app(storage, grpc_port=conf["grpc_port"], grpc_host=conf["host"])
    uvicorn.run(
        app,
        host=conf["host"],
        port=conf["port"],
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
