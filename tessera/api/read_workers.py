"""More processes serving point reads: `service.read_workers` (Tessera's own setting).

One process serves REST on one core: its Python per request, not the search, sets the
capacity (bench/README.md, "Issue 13"). With `read_workers: N` the server (the owner: it
alone writes and runs the optimizer) starts N worker processes that listen on the
same REST port (SO_REUSEPORT: the kernel spreads new connections over every process). A
worker holds a read-only copy of each collection, loaded from the owner's files and kept
current from its WAL (tessera.shard.follower, tessera.storage.follower_toc), and serves the
point reads itself: retrieve, scroll, count, facet, search, recommend, discover, query and
their batch, group and matrix forms.

Any other request that reaches a worker (a write, a collection's info, snapshots, the
dashboard...) is handed to the owner with its connection: the worker reads a request's head
before its HTTP server sees any of it, and when the request is not one it serves, it passes
the connection's socket (SCM_RIGHTS over a Unix socket only this user can reach) and the
bytes read so far to the owner, which carries on with that connection as if it had accepted
it, and passes it back to a worker the same way when a point read comes next on it. A read
of a collection a worker does not serve (several shards, a strict-mode read rate limit, not
loaded yet) is handed over too, and served where it lands.

Read-your-writes holds across processes: the owner answers a write once its record is in the
WAL, and a worker applies every record in the WAL before each read.

Over gRPC the workers share the server's port too, and pass each call they do not serve to
the owner (tessera.api.grpc_forward): an HTTP/2 connection cannot change hands per call.

Not with TLS (an encrypted connection cannot change hands) nor in cluster mode: there the
setting is ignored with a warning. Each worker reports its REST and gRPC response statistics
to the owner every second over the same socket, so the owner's `/metrics` and `/telemetry`
count every request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tessera.api.connection_handoff import (
    Gate,
    GatedProtocol,
    Link,
    adopt,
    protocol_factory,
    send_over,
)
from tessera.api.envelope import error
from tessera.api.request_stats import STATS
from tessera.collection.collection import Collection
from tessera.storage.follower_toc import followable_config
from tessera.storage.toc import TableOfContents

log = logging.getLogger(__name__)

# Set in a worker's environment: the owner's hand-off socket.
WORKER_ENV = "TESSERA_READ_WORKER_OF"
_STATS_EVERY_S = 1.0
_RESTART_DELAY_S = 1.0
_READ_ROUTES = re.compile(
    r"^/collections/(?P<name>[^/]+)/(?:points(?:/(?:search(?:/batch|/groups|/matrix/pairs"
    r"|/matrix/offsets)?|recommend(?:/batch|/groups)?|discover(?:/batch)?|query(?:/batch"
    r"|/groups)?|scroll|count))?|facet)$"
)
_GET_POINT = re.compile(r"^/collections/(?P<name>[^/]+)/points/(?P<id>[^/]+)$")


@functools.lru_cache(maxsize=4096)
def read_route(method: bytes, url: bytes) -> str | None:
    """The collection a request reads points of, when it is one a worker serves; None for
    any other request. (Remembered: every request asks, and clients send the same few
    URLs.)"""
    path = url.split(b"?", 1)[0].decode("latin-1")
    if method == b"POST":
        found = _READ_ROUTES.match(path)
    elif method == b"GET":
        found = _GET_POINT.match(path)
    else:
        return None
    return unquote(found["name"]) if found else None


def grpc_socket(handoff: str) -> str:
    """The Unix socket the server takes its workers' gRPC calls on, beside the hand-off
    socket `handoff` (in the same folder only this user can enter)."""
    return str(Path(handoff).parent / "grpc.sock")


# A Unix socket's path fits in 108 bytes with its NUL (sun_path); kept shorter here.
_UNIX_PATH_MAX = 100


def workers_folder() -> Path:
    """A new folder (mode 0700) for the sockets between the server and its workers: in the
    temporary directory, or in /tmp where that one's path would make a socket's too long."""
    folder = Path(tempfile.mkdtemp(prefix="tessera-read-workers-"))
    if len(os.fsencode(folder / "handoff.sock")) > _UNIX_PATH_MAX:
        folder.rmdir()
        folder = Path(tempfile.mkdtemp(prefix="tessera-read-workers-", dir="/tmp"))
    return folder


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """The REST socket bound to host:port ("::": IPv4 connections too); `reuse_port`: other
    processes of this user may bind it too (the server and its read workers)."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6 and bare == "::":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind((bare, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def read_body(method: bytes, url: bytes) -> bool:
    """A point read whose body may name other collections (lookups): waited for."""
    return method == b"POST" and read_route(method, url) is not None


def stateful_token(keys: list[bytes]) -> bool:
    """Whether a request's keys (`api-key`, `Authorization: Bearer`) hold a JWT with a
    `value_exists` claim: its check reads another collection, which only the owner has in
    every form (several shards included). Only routing: the signature is checked by
    whoever serves the request."""
    for value in keys:
        parts = value.split()[-1].split(b".") if value.split() else []
        if len(parts) != 3:
            continue
        try:
            claims = base64.urlsafe_b64decode(parts[1] + b"=" * (-len(parts[1]) % 4))
        except ValueError:
            continue
        # (a claim's name may be escaped, or the JSON be UTF-16 or -32, which JSON readers
        # take too: NUL bytes beside each ASCII character)
        if b"value_exists" in claims or b"\\u" in claims or b"\x00" in claims:
            return True
    return False


def owner_only(method: bytes, body: bytes | None, keys: list[bytes]) -> bool:
    """What only the owner serves, whatever the route: a JWT whose claim reads another
    collection, a read whose body may name one."""
    return stateful_token(keys) or (method == b"POST" and looks_elsewhere(body))


def looks_elsewhere(body: bytes | None) -> bool:
    """Whether a read's body may name another collection (`lookup_from`, `with_lookup`),
    or was not read plain and whole (encoded, `Expect: 100-continue`, too long: None): such
    a read is served by the owner, which has them all. (A key written with `\\u` escapes
    counts as a lookup.)"""
    return body is None or b"lookup" in body or b"\\u" in body


# ---- the owner's side -----------------------------------------------------------------


class ReadWorkers:
    """The owner's workers: started once its collections are open (the app's lifespan),
    restarted when one exits, stopped with the server. A connection a worker passes over
    (a request it does not serve) is adopted by the owner's HTTP server; when a point read
    comes next on it, the owner passes it back to a worker."""

    def __init__(self, count: int, argv: list[str]) -> None:
        self.count = count
        self._argv = argv
        self._folder = workers_folder()
        self.path = self._folder / "handoff.sock"
        # The server's gRPC calls passed on by the workers (tessera.api.grpc_forward).
        self.grpc_path = grpc_socket(str(self.path))
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._config: Any = None
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self._links: list[Link] = []  # guarded by _lock
        self._next = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._reads_back: Callable[[bytes, bytes], bool] = lambda method, url: False
        self.adopted = 0

    def bind(self, server: Any, config: Any) -> None:
        """uvicorn's server and config: a connection passed over gets their protocol."""
        self._server, self._config = server, config

    def start(self, reads_back: Callable[[bytes, bytes], bool]) -> None:
        """`reads_back(method, url)`: whether a request on a connection a worker passed over
        goes back to a worker (a point read of a collection workers serve)."""
        self._loop = asyncio.get_running_loop()
        self._reads_back = reads_back
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(self.count * 2)
        self._listener = listener
        threading.Thread(target=self._accept, name="handoff-accept", daemon=True).start()
        for index in range(self.count):
            self._spawn(index)
        threading.Thread(target=self._watch, name="read-workers", daemon=True).start()
        log.info("%d read worker(s) started: point reads are served by %d processes",
                 self.count, self.count + 1)  # fmt: skip

    def _spawn(self, index: int) -> None:
        env = dict(os.environ)
        env[WORKER_ENV] = str(self.path)
        cmd = [sys.executable, "-m", "tessera", *self._argv]
        self._procs[index] = subprocess.Popen(cmd, env=env)

    def _watch(self) -> None:
        """Starts again a worker that exited while the server runs."""
        while not self._stopping.wait(0.5):
            for index, proc in enumerate(self._procs):
                if proc is None or proc.poll() is None:
                    continue
                with self._lock:
                    if self._stopping.is_set():
                        return
                    # Stopped by a signal to the server's process group (the server stops
                    # too, and says so), or crashed.
                    level = (
                        logging.INFO if proc.returncode in (0, -signal.SIGTERM) else logging.ERROR
                    )
                    log.log(level, "read worker %d exited (%s); starting it again", proc.pid,
                            proc.returncode)  # fmt: skip
                if self._stopping.wait(_RESTART_DELAY_S):
                    return
                with self._lock:
                    if not self._stopping.is_set():
                        self._spawn(index)

    def _accept(self) -> None:
        assert self._listener is not None and self._loop is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid != os.getuid():  # only this user's processes pass connections
                conn.close()
                continue
            link = Link(conn)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._serve_link, args=(link,), daemon=True).start()

    def _serve_link(self, link: Link) -> None:
        assert self._loop is not None
        try:
            link.receive(self._loop, self._adopt, STATS.merge_json)
        finally:
            with self._lock:
                if link in self._links:
                    self._links.remove(link)
            link.sock.close()

    def _adopt(self, fd: int, data: bytes) -> None:
        assert self._loop is not None
        reads_back = self._reads_back

        def serves(method: bytes, url: bytes, body: bytes | None, keys: list[bytes]) -> bool:
            return owner_only(method, body, keys) or not reads_back(method, url)

        gate = Gate(serves, self._pass_back, read_body, keeps_pipelined=True)
        # The first request came from a worker, which could not serve it: served here.
        make = protocol_factory(self._server, self._config, gate=gate, first_here=True)
        adopt(self._loop, make, fd, data)
        self.adopted += 1

    def _pass_back(self, transport: asyncio.Transport, data: bytes) -> bool:
        with self._lock:
            if not self._links:
                return False
            self._next = (self._next + 1) % len(self._links)
            link = self._links[self._next]
        return send_over(link, transport, data)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            procs = [p for p in self._procs if p is not None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._listener is not None:
            self._listener.close()
        shutil.rmtree(self._folder, ignore_errors=True)


# ---- a worker's side ------------------------------------------------------------------

# The worker's gate, set once its collections are open (`start_worker`); uvicorn makes
# `WorkerProtocol`s itself, which read it.
GATE: Gate | None = None


class WorkerProtocol(GatedProtocol):
    """The protocol of the connections a worker accepts: behind the worker's gate."""

    def gate(self) -> Gate | None:
        return GATE


def watch_parent(parent: int) -> None:
    """A worker ends with its owner (killed included): SIGTERM to itself once the owner
    is gone."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def start_worker(serves: Callable[[bytes, bytes], bool], path: str) -> None:
    """A worker's gate: it serves what `serves` says, passes the rest to the owner over the
    hand-off socket at `path`, and takes back the connections the owner passes (a point
    read came next on them)."""
    global GATE
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    link = Link(sock)

    def local(method: bytes, url: bytes, body: bytes | None, keys: list[bytes]) -> bool:
        return not owner_only(method, body, keys) and serves(method, url)

    GATE = Gate(local, functools.partial(send_over, link), read_body)
    loop = asyncio.get_running_loop()

    def adopt_back(fd: int, data: bytes) -> None:
        server, config = WORKER_SERVER
        adopt(loop, protocol_factory(server, config, gate=GATE), fd, data)

    threading.Thread(target=link.receive, args=(loop, adopt_back), daemon=True).start()

    def report() -> None:
        # What this worker answered goes into the owner's /metrics and /telemetry.
        while True:
            time.sleep(_STATS_EVERY_S)
            data = STATS.take_json()
            if data is None:
                continue
            try:
                link.send_stats(data)
            except OSError:
                return

    threading.Thread(target=report, name="stats-report", daemon=True).start()


# (uvicorn's server and config of this worker, for the connections the owner passes back)
WORKER_SERVER: tuple[Any, Any] = (None, None)


def reads_back(toc: TableOfContents) -> Callable[[bytes, bytes], bool]:
    """The owner's test, on a connection a worker passed over: a point read of a collection
    the workers serve goes back to one."""

    def back(method: bytes, url: bytes) -> bool:
        name = read_route(method, url)
        if name is None or toc.cluster is not None:
            return False
        collection = toc.collections.get(toc.aliases.resolve(name) or name)
        return (
            collection is not None
            and type(collection) is Collection  # (one local shard)
            and collection.failure is None
            and followable_config(collection.config)
        )

    return back


def local_read(toc: Any) -> Callable[[bytes, bytes], bool]:
    """The gate's test: a point read of a collection this worker follows, current."""

    def local(method: bytes, url: bytes) -> bool:
        name = read_route(method, url)
        return name is not None and toc.followable(name) is not None

    return local


class ReadOnlyGuard:
    """The outermost layer of a worker's app: what is not a point read (only ever here from
    a pipelining client, or when the owner could not take the connection) is answered 503,
    never run against the worker's read-only copies."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            url = scope.get("raw_path") or scope["path"].encode()
            if read_route(scope["method"].encode(), url) is None:
                text = (
                    "Service unavailable: this request reached a read worker, which serves "
                    "point reads only; send it again"
                )
                await error(503, text, time.perf_counter())(scope, receive, send)
                return
        await self.app(scope, receive, send)


def worker_poller(toc: Any, stop: threading.Event) -> threading.Thread:
    """Keeps a worker's copies current between reads (each read catches up anyway): applies
    what the owner wrote every 0.1 s, and loads the owner's newer checkpoint (its indexed
    segments) once a copy has replayed many records or a while has passed."""

    def poll() -> None:
        while not stop.wait(0.1):
            try:
                toc.catch_up()
            except Exception:  # (each collection's failures are caught there)
                log.exception("read worker: catching up")

    thread = threading.Thread(target=poll, name="follow-poller", daemon=True)
    thread.start()
    return thread


def run_worker_server(conf: Any, app: Any, uvicorn: Any, log_level: str) -> None:
    """A worker's HTTP server on the shared port."""
    config = uvicorn.Config(
        ReadOnlyGuard(app),
        log_config=None,
        log_level=log_level,
        access_log=False,
        loop="uvloop",
        http=WorkerProtocol,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    config.load()
    sock = listening_socket(conf.host, conf.http_port, reuse_port=True)

    class WorkerServer(uvicorn.Server):  # type: ignore[misc,name-defined]
        def handle_exit(self, sig: int, frame: Any) -> None:
            # Ctrl-C reaches the whole process group: the server stops its workers itself
            # (SIGTERM), after its own connections are done.
            if sig != signal.SIGINT:
                super().handle_exit(sig, frame)

    global WORKER_SERVER
    server = WorkerServer(config)
    WORKER_SERVER = (server, config)
    server.run(sockets=[sock])
