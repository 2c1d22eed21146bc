"""Snapshot routes: collection, shard (the local shard, 0) and full storage snapshots.

Qdrant's routes and shapes: a SnapshotDescription `{name, creation_time, size, checksum}`
for create and list, the file itself (`application/octet-stream`) for download, `true` for
delete and recover. `wait=false` answers 202 `{"status": "accepted"}` at once and does the
work in the background (failures are logged), as Qdrant does.

Uploads (`POST .../snapshots/upload`, multipart field `snapshot`) are parsed as they arrive
and written straight to a file under the snapshots directory's `:tmp/`; the body is never
held in memory, and the upload stops with 503 before the volume's free space falls below
the reserve. The work itself is tessera.storage.snapshots'.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from tessera.api.envelope import (
    QUERY_DESERIALIZE,
    endpoint,
    expect_object,
    json_response,
    query_flag,
    read_json,
)
from tessera.errors import BadRequest, ServiceUnavailable
from tessera.storage.snapshots import (
    SnapshotStore,
    check_checksum,
    check_priority,
    check_shard,
    pack_collection,
)
from tessera.storage.toc import TableOfContents, validate_collection_name

log = logging.getLogger(__name__)

UPLOAD_FIELD = "snapshot"
_MAX_PART_HEADERS = 16 << 10
_SPACE_CHECK_EVERY = 64 << 20
_WRITE_BUFFER = 4 << 20


def snapshots_path(storage: Path, settings: Any, explicit: Path | None) -> Path:
    """Where snapshots live: `explicit` (build_app's `snapshots_path`), else the setting
    `storage.snapshots_path` of `settings` (tessera.settings.Settings, or None) once it is
    one, else `<storage>/snapshots`."""
    if explicit is not None:
        return explicit
    values = getattr(settings, "values", None) or {}
    configured = values.get("storage.snapshots_path")
    if configured:
        return Path(str(configured)).expanduser()
    return storage / "snapshots"


def routes(c: str) -> list[Route]:
    """`c`: the collection path prefix, `/collections/{collection_name}`."""
    e = endpoint
    s = c + "/shards/{shard_id:int}"
    return [
        Route(c + "/snapshots", e(list_snapshots), methods=["GET"]),
        Route(c + "/snapshots", e(create_snapshot), methods=["POST"]),
        Route(c + "/snapshots/upload", e(upload_snapshot), methods=["POST"]),
        Route(c + "/snapshots/recover", e(recover_snapshot), methods=["PUT"]),
        Route(c + "/snapshots/{snapshot_name}", e(download_snapshot), methods=["GET"]),
        Route(c + "/snapshots/{snapshot_name}", e(delete_snapshot), methods=["DELETE"]),
        Route(s + "/snapshots", e(list_snapshots), methods=["GET"]),
        Route(s + "/snapshots", e(create_snapshot), methods=["POST"]),
        Route(s + "/snapshots/upload", e(upload_snapshot), methods=["POST"]),
        Route(s + "/snapshots/recover", e(recover_snapshot), methods=["PUT"]),
        Route(s + "/snapshots/{snapshot_name}", e(download_snapshot), methods=["GET"]),
        Route(s + "/snapshots/{snapshot_name}", e(delete_snapshot), methods=["DELETE"]),
        Route(s + "/snapshot", e(stream_shard_snapshot), methods=["GET"]),
        Route("/snapshots", e(list_full_snapshots), methods=["GET"]),
        Route("/snapshots", e(create_full_snapshot), methods=["POST"]),
        Route("/snapshots/{snapshot_name}", e(download_full_snapshot), methods=["GET"]),
        Route("/snapshots/{snapshot_name}", e(delete_full_snapshot), methods=["DELETE"]),
    ]


# ---- helpers ---------------------------------------------------------------------------------


def store_of(request: Request) -> SnapshotStore:
    toc: TableOfContents = request.app.state.toc
    return toc.snapshots


def _target(request: Request) -> tuple[str, int | None]:
    name: str = request.path_params["collection_name"]
    shard: int | None = request.path_params.get("shard_id")
    return name, shard


def _accepted(call: Callable[[], Any], wait: bool) -> Callable[[], Any]:
    """`wait=false`: run `call` in the background and answer 202 at once."""
    if wait:
        return call
    started = time.perf_counter()

    def run() -> None:
        try:
            call()
        except Exception:
            log.exception("background snapshot operation failed")

    def start() -> Response:
        threading.Thread(target=run, name="snapshot", daemon=True).start()
        return json_response(
            {"status": "accepted", "time": time.perf_counter() - started}, status_code=202
        )

    return start


def _file(path: Path, name: str, cleanup: bool = False) -> Response:
    task = BackgroundTask(path.unlink, missing_ok=True) if cleanup else None
    return FileResponse(path, media_type="application/octet-stream", filename=name, background=task)


# ---- collection and shard snapshots ----------------------------------------------------------


async def list_snapshots(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    name, shard = _target(request)
    return lambda: store.list_snapshots(name, shard)


async def create_snapshot(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    name, shard = _target(request)
    wait = query_flag(request, "wait", True)
    store.toc.get(name)  # 404 now, not in the background
    if shard is not None:
        check_shard(shard)
    return _accepted(lambda: store.create(name, shard), wait)


async def download_snapshot(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    name, shard = _target(request)
    snapshot: str = request.path_params["snapshot_name"]

    def run() -> Response:
        return _file(store.path(name, snapshot, shard), snapshot)

    return run


async def delete_snapshot(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    name, shard = _target(request)
    snapshot: str = request.path_params["snapshot_name"]
    wait = query_flag(request, "wait", True)
    store.path(name, snapshot, shard)  # 404 now, not in the background
    return _accepted(lambda: store.delete(name, snapshot, shard), wait)


async def stream_shard_snapshot(request: Request) -> Callable[[], Any]:
    """`GET .../shards/{id}/snapshot`: a fresh snapshot of the shard, streamed and not kept."""
    store = store_of(request)
    name, shard = _target(request)
    assert shard is not None
    store.toc.get(name)
    check_shard(shard)

    def run() -> Response:
        path = store.tmp_dir() / f"{uuid.uuid4().hex}.snapshot"
        try:
            pack_collection(store.toc.get(name), path, "shard")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return _file(path, f"{name}-shard-{shard}.snapshot", cleanup=True)

    return run


async def recover_snapshot(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    name, shard = _target(request)
    wait = query_flag(request, "wait", True)
    body = expect_object(await read_json(request))
    location = body.get("location")
    if not isinstance(location, str):
        raise BadRequest(
            "Format error in JSON body: missing field `location`"
            if location is None
            else "Format error in JSON body: `location` must be a string"
        )
    priority = check_priority(body.get("priority"))
    checksum = check_checksum(body.get("checksum"))
    api_key = body.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise BadRequest("Format error in JSON body: `api_key` must be a string")
    validate_collection_name(name)
    if shard is not None:
        store.toc.get(name)
        check_shard(shard)

    def run() -> bool:
        return store.recover(
            name, location, priority=priority, checksum=checksum, api_key=api_key, shard=shard
        )

    return _accepted(run, wait)


async def upload_snapshot(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    name, shard = _target(request)
    wait = query_flag(request, "wait", True)
    priority = check_priority(request.query_params.get("priority"), QUERY_DESERIALIZE)
    checksum = check_checksum(request.query_params.get("checksum"), "query parameters")
    validate_collection_name(name)
    if shard is not None:
        store.toc.get(name)
        check_shard(shard)
    upload = await receive_upload(request, store.tmp_dir(), store.reserve())

    def run() -> bool:
        return store.recover_uploaded(
            name, upload, priority=priority, checksum=checksum, shard=shard
        )

    return _accepted(run, wait)


# ---- full snapshots --------------------------------------------------------------------------


async def list_full_snapshots(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    return store.list_full


async def create_full_snapshot(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    return _accepted(store.create_full, query_flag(request, "wait", True))


async def download_full_snapshot(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    snapshot: str = request.path_params["snapshot_name"]
    return lambda: _file(store.full_path(snapshot), snapshot)


async def delete_full_snapshot(request: Request) -> Callable[[], Any]:
    store = store_of(request)
    snapshot: str = request.path_params["snapshot_name"]
    wait = query_flag(request, "wait", True)
    store.full_path(snapshot)
    return _accepted(lambda: store.delete_full(snapshot), wait)


# ---- multipart upload, streamed --------------------------------------------------------------


def _multipart_error(message: str) -> BadRequest:
    return BadRequest(f"Bad request: Multipart error: {message}")


def _boundary(content_type: str | None) -> bytes:
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise _multipart_error("the request is not multipart/form-data")
    m = re.search(r'boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))', content_type)
    if m is None:
        raise _multipart_error("no boundary in Content-Type")
    return (m.group(1) or m.group(2)).encode("latin-1")


class _Body:
    """The request body as it arrives, with just enough look-ahead to find delimiters."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self.buf = bytearray()
        self._eof = False

    async def _more(self) -> None:
        if not self._eof:
            try:
                self.buf += await self._chunks.__anext__()
                return
            except StopAsyncIteration:
                self._eof = True
        raise _multipart_error("the body ends before the closing boundary")

    async def until(self, marker: bytes, limit: int) -> bytes:
        """The bytes before `marker` (at most `limit`), consuming the marker."""
        while (i := self.buf.find(marker)) < 0:
            if len(self.buf) > limit + len(marker):
                raise _multipart_error("a part header or preamble is too long")
            await self._more()
        out = bytes(self.buf[:i])
        del self.buf[: i + len(marker)]
        return out

    async def pass_until(self, marker: bytes, sink: Callable[[bytes], None]) -> None:
        """Everything before `marker` goes to `sink` as it arrives; the marker is consumed."""
        keep = len(marker) - 1
        while (i := self.buf.find(marker)) < 0:
            if len(self.buf) > keep:
                sink(bytes(self.buf[:-keep]))
                del self.buf[:-keep]
            await self._more()
        sink(bytes(self.buf[:i]))
        del self.buf[: i + len(marker)]

    async def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _field_name(headers: bytes) -> str | None:
    for line in headers.decode("latin-1").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-disposition":
            m = re.search(r'(?:^|;)\s*name="([^"]*)"', value) or re.search(
                r"(?:^|;)\s*name=([^;\s]+)", value
            )
            return m.group(1) if m else None
    return None


class _Spool:
    """The upload's file: written in large blocks, its volume's free space watched."""

    def __init__(self, path: Path, reserve: int) -> None:
        self.path = path
        self.reserve = reserve
        self._f = open(path, "xb")  # noqa: SIM115 - closed by finish()/abort()
        self._pending = bytearray()
        self._since_check = 0

    def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= _WRITE_BUFFER:
            self._flush()

    def _flush(self) -> None:
        self._f.write(self._pending)
        self._since_check += len(self._pending)
        self._pending.clear()
        if self._since_check >= _SPACE_CHECK_EVERY:
            self._since_check = 0
            free = shutil.disk_usage(self.path.parent).free
            if free < self.reserve:
                raise ServiceUnavailable(
                    f"Service unavailable: No space left on device: {free} bytes free, "
                    f"{self.reserve} kept"
                )

    def finish(self) -> None:
        self._flush()
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()

    def abort(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)


async def receive_upload(request: Request, directory: Path, reserve: int) -> Path:
    """The multipart field `snapshot` of the request, streamed into a new file of
    `directory`; any other field is read past and dropped. The file is the caller's."""
    boundary = _boundary(request.headers.get("content-type"))
    body = _Body(request.stream().__aiter__())
    spool: _Spool | None = None
    done = False
    try:
        await body.until(b"--" + boundary, _MAX_PART_HEADERS)
        while True:
            tail = await body.take(2)
            if tail == b"--":
                break
            if tail != b"\r\n":
                raise _multipart_error("malformed boundary line")
            headers = await body.until(b"\r\n\r\n", _MAX_PART_HEADERS)
            delimiter = b"\r\n--" + boundary
            if _field_name(headers) == UPLOAD_FIELD and spool is None:
                spool = _Spool(directory / f"{uuid.uuid4().hex}.upload", reserve)
                await body.pass_until(delimiter, spool.write)
            else:
                await body.pass_until(delimiter, lambda _: None)
        if spool is None:
            raise _multipart_error(f"field `{UPLOAD_FIELD}` is missing")
        spool.finish()
        done = True
        return spool.path
    finally:
        if spool is not None and not done:
            spool.abort()
