"""Logging as Qdrant's `log_level` and `logger` settings describe it.

`log_level` is a level (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `OFF`), optionally followed
by `,logger=level` directives for single loggers (`INFO,tessera.access=warn` silences the
access log). `logger.format` is `text` (one line: time, level, logger, message) or `json`
(one object a line with `timestamp`, `level`, `fields.message`, `target`, as Qdrant's JSON
logs). `logger.on_disk` also writes to a file, with its own level and format.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

TRACE = 5
LEVELS = {
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "OFF": logging.CRITICAL + 10,
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries whose INFO lines only repeat what the start-up banner says.
QUIET = {"uvicorn.error": logging.WARNING, "uvicorn": logging.WARNING}


def parse_level(spec: str) -> tuple[int, dict[str, int]]:
    """`INFO,a.b=debug` -> (INFO, {"a.b": DEBUG}). The values were checked by settings."""
    root = logging.INFO
    targets: dict[str, int] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" in part:
            name, level = part.split("=", 1)
            targets[name.strip().replace("::", ".")] = LEVELS[level.strip().upper()]
        else:
            root = LEVELS[part.upper()]
    return root, targets


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"message": record.getMessage()}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        level = "WARN" if record.levelno == logging.WARNING else record.levelname
        return json.dumps(
            {
                "timestamp": f"{stamp}.{int(record.msecs * 1000):06d}Z",
                "level": level,
                "fields": fields,
                "target": record.name,
            },
            ensure_ascii=False,
        )


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`, its time formatted once a second: the access log makes a record per
    request, and `time.strftime` was a third of formatting one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._stamp = (-1, "")  # (second, its text): one tuple, replaced whole by any thread

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = (second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second)))
            self._stamp = stamp
        return f"{stamp[1]},{int(record.msecs):03d}"  # logging's default: msecs truncated


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(
    level: str,
    fmt: str = "text",
    file: Path | None = None,
    file_level: str | None = None,
    file_format: str = "text",
) -> None:
    """Replace the root logger's handlers: stderr, and `file` when given."""
    logging.addLevelName(TRACE, "TRACE")
    # The access log makes a record per request. No format here shows the caller's file and
    # line, its thread or its process, which the logging module would otherwise look up for
    # every record (the frames walked for the caller were a fifth of a record's cost).
    setattr(logging, "_srcfile", None)  # noqa: B010 - the documented switch, private name
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root_level, targets = parse_level(level)
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter(fmt))
    console.setLevel(root_level)
    handlers.append(console)
    lowest = root_level
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        on_disk = logging.FileHandler(file, encoding="utf-8")
        on_disk.setFormatter(formatter(file_format))
        disk_level = parse_level(file_level)[0] if file_level else root_level
        on_disk.setLevel(disk_level)
        handlers.append(on_disk)
        lowest = min(lowest, disk_level)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(lowest)
    for name, quiet in QUIET.items():
        if name not in targets:
            logging.getLogger(name).setLevel(max(quiet, root_level))
    for name, target_level in targets.items():
        logging.getLogger(name).setLevel(target_level)
        for handler in handlers:  # a directive may be more verbose than the handlers' level
            handler.setLevel(min(handler.level, target_level))
