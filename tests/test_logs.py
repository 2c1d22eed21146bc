"""The text log format: the time stamp formatted once a second reads as logging's own, and
`configure` leaves out the per-record lookups no format shows."""

from __future__ import annotations

import io
import logging
import re

from tessera import logs


def _record(created: float, msecs: float) -> logging.LogRecord:
    record = logging.LogRecord("tessera.access", logging.INFO, "", 0, "m %d", (7,), None)
    record.created, record.msecs = created, msecs
    return record


def test_text_time_stamp_is_loggings_own_across_seconds() -> None:
    ours, stock = logs.TextFormatter(), logging.Formatter(logs.TEXT_FORMAT)
    base = 1_764_700_000.0
    # Records of one second, the next, and back (another thread's older record).
    for offset, msecs in [(0.0004, 0.4), (0.999, 999.7), (1.5, 500.0), (0.25, 250.9), (61, 0)]:
        record = _record(base + offset, msecs)
        assert ours.format(record) == stock.format(record)
        assert ours.formatTime(record) == stock.formatTime(record)


def test_configure_writes_lines_without_caller_lookups() -> None:
    switches = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    saved = {name: getattr(logging, name) for name in switches}
    handlers, level = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        logs.configure("INFO")
        stream = io.StringIO()
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        logging.getLogger("tessera.access").info('%s "%s"', "127.0.0.1", "GET /")
        line = stream.getvalue().strip()
        assert re.fullmatch(
            r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO tessera.access: 127.0.0.1 "GET /"', line
        ), line
        record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
        assert record.thread is None and record.process is None
    finally:
        for name, value in saved.items():
            setattr(logging, name, value)
        root = logging.getLogger()
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
