"""More processes serving REST point reads: `service.read_workers` (Tessera's own setting).

One process serves REST on one core: its Python per request, not the search, sets the
capacity (bench/README.md, "Issue 13"). With `read_workers: N` the server (the owner: it
alone writes, runs the optimizer, serves gRPC) starts N worker processes that listen on the
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

Not with TLS (an encrypted connection cannot change hands) nor in cluster mode: there the
setting is ignored with a warning. Each worker reports its REST response statistics to the
owner every second over the same socket, so the owner's `/metrics` and `/telemetry` count
every request.
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
from typing import Any, cast
from urllib.parse import unquote

import httptools

from tessera.api.request_stats import STATS
from tessera.collection.collection import Collection
from tessera.storage.follower_toc import followable_config
from tessera.storage.toc import TableOfContents

log = logging.getLogger(__name__)

# Set in a worker's environment: the owner's hand-off socket.
WORKER_ENV = "TESSERA_READ_WORKER_OF"
# A message on the link between the owner and a worker: its kind, then its length.
_HEADER = struct.Struct("<BQ")
_CONNECTION = 0  # a connection's socket (passed with the message) and its request's bytes
_STATS = 1  # a worker's request statistics since its last such message (JSON)
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


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that other processes of this user may bind too."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


# ---- passing connections between processes ---------------------------------------------


class Link:
    """One end of the Unix socket between the owner and a worker, over which connections
    go either way: a connection's socket (SCM_RIGHTS) and the bytes of its next request read
    so far. Sent from the event loop, received on a thread of its own."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, transport: asyncio.Transport, data: bytes) -> None:
        raw = transport.get_extra_info("socket")
        fd = os.dup(raw.fileno())
        try:
            with self._send_lock:
                socket.send_fds(self.sock, [_HEADER.pack(_CONNECTION, len(data))], [fd])
                self.sock.sendall(data)
        finally:
            os.close(fd)

    def send_stats(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(_HEADER.pack(_STATS, len(data)) + data)

    def receive(
        self,
        loop: asyncio.AbstractEventLoop,
        adopt: Callable[[int, bytes], None],
        stats: Callable[[bytes], None] | None = None,
    ) -> None:
        """Until the link closes: each connection received goes to `adopt(fd, data)` on
        `loop`, each worker's statistics to `stats(data)` (on this thread)."""
        while True:
            try:
                head, fds, _, _ = socket.recv_fds(self.sock, _HEADER.size, 1)
                if not head:
                    return
                if len(head) < _HEADER.size:
                    head += _recv_exactly(self.sock, _HEADER.size - len(head))
                kind, size = _HEADER.unpack(head)
                data = _recv_exactly(self.sock, size)
            except OSError:
                return
            if kind == _STATS and not fds:
                if stats is not None:
                    stats(data)
                continue
            if kind != _CONNECTION or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                log.error("read workers: a message of kind %d with %d sockets; link closed",
                          kind, len(fds))  # fmt: skip
                return
            try:
                loop.call_soon_threadsafe(adopt, fds[0], data)
            except RuntimeError:  # the loop is closed: the process is ending
                os.close(fds[0])
                return


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    parts = []
    while size:
        part = conn.recv(min(size, 1 << 20))
        if not part:
            raise OSError("hand-off socket closed")
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def adopt(
    loop: asyncio.AbstractEventLoop, make: Callable[[], asyncio.Protocol], fd: int, data: bytes
) -> None:
    """Carries on with a connection another process passed over: its socket gets the
    protocol `make` gives, and the bytes read there go in before anything read here."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)

    def protocol() -> asyncio.Protocol:
        made = make()
        connection_made = made.connection_made

        def with_data(transport: asyncio.BaseTransport) -> None:
            # (in connection_made: a body arriving after its head must not overtake it)
            connection_made(transport)
            made.data_received(data)

        made.connection_made = with_data  # type: ignore[method-assign]
        return made

    async def connect() -> None:
        try:
            await loop.connect_accepted_socket(protocol, sock)
        except OSError:  # the client went away meanwhile
            sock.close()

    loop.create_task(connect())


class Gate:
    """What a process keeps of a connection's requests and where the others go: `serves
    (method, url, body, stateful)` says whether this process answers a request (`body`: None
    when it was not waited for, or was too long to hold; `stateful`: its JWT has a
    `value_exists` claim, which the owner checks); `pass_on(transport, data)` hands the
    connection over with the request's bytes (False: it could not, so this process
    answers); `wants_body(method, url)`: the decision waits for the whole body."""

    def __init__(
        self,
        serves: Callable[[bytes, bytes, bytes | None, bool], bool],
        pass_on: Callable[[asyncio.Transport, bytes], bool],
        wants_body: Callable[[bytes, bytes], bool],
        keeps_pipelined: bool = False,
    ) -> None:
        self.serves = serves
        self.pass_on = pass_on
        self.wants_body = wants_body
        # Requests that come pipelined are served here (the owner) or passed on (a worker).
        self.keeps_pipelined = keeps_pipelined


# A read's body is held this long at most before its gate decides (without it).
_BODY_WAIT_BYTES = 1 << 20


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
        if b"value_exists" in claims:
            return True
    return False


def looks_elsewhere(body: bytes | None) -> bool:
    """Whether a read's body may name another collection (`lookup_from`, `with_lookup`),
    or was not read plain and whole (encoded, `Expect: 100-continue`, too long: None): such
    a read is served by the owner, which has them all. (A key written with `\\u` escapes
    counts as a lookup.)"""
    return body is None or b"lookup" in body or b"\\u" in body


class GatedProtocol(asyncio.Protocol):
    """uvicorn's HTTP protocol behind a gate: the bytes of a request are held until its
    head is complete, then passed on to uvicorn's protocol (a request this process serves)
    or, with the connection, to the other process. Clients send the next request on a
    connection after the answer to the last; one that pipelines requests has the rest of
    its connection served where it is (in a worker `ReadOnlyGuard` refuses what is not a
    read). `first_here`: the first request is served here whatever it is (it came from the
    other process, which could not serve it)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: Any = None,
        _loop: Any = None,
        *,
        gate: Gate | None = None,
        first_here: bool = False,
    ) -> None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        self._inner = HttpToolsProtocol(
            config=config, server_state=server_state, app_state=app_state, _loop=_loop
        )
        self._gate = gate
        self._first_here = first_here
        self._parser = httptools.HttpRequestParser(self)
        self._held = bytearray()
        self._url = bytearray()
        self._body = bytearray()  # a request's body, while its gate waits for it
        self._keys: list[bytes] = []  # its api-key and Authorization headers
        self._opaque = False  # its body cannot be read here (encoded, Expect: 100-continue)
        self._pipelined = False  # a second request came in the same bytes as the first
        self._head_done = False
        self._complete = False
        self._deciding = True  # at a request's start: nothing of it passed on yet
        self._passing = False  # every byte to uvicorn from now on
        self._gone = False
        self.transport: asyncio.Transport | None = None

    def gate(self) -> Gate | None:
        return self._gate

    # httptools' callbacks (of the gate's own parser)
    def on_message_begin(self) -> None:
        if self._complete:  # a second request in the same bytes: pipelined
            self._passing = self._pipelined = True
        self._url.clear()
        self._body.clear()
        self._keys.clear()
        self._opaque = False
        self._head_done = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower in (b"authorization", b"api-key"):
            self._keys.append(value)
        elif lower == b"expect" or (lower == b"content-encoding" and value.strip() != b"identity"):
            # The body cannot be looked into here: encoded, or not sent before the answer
            # "100 Continue", which uvicorn gives once the app reads it.
            self._opaque = True

    def on_headers_complete(self) -> None:
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        if self._deciding:
            self._body += body

    def on_message_complete(self) -> None:
        self._complete = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's: no subclass)
        self._inner.connection_made(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        self._inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self._gone:
            return
        if self._passing:
            self._inner.data_received(data)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._passing = True  # uvicorn answers it (400)
        if not self._deciding:
            self._inner.data_received(data)
        else:
            self._held += data
            if not self._head_done and not self._passing:
                return  # the head is not all here yet
            if self._waits_for_body():
                return
            if self._pipelined and self._pass_pipelined():
                return
            if self._passing or not self._pass_on():
                held = bytes(self._held)
                self._held.clear()
                self._deciding = False
                self._inner.data_received(held)
        if self._complete and not self._passing:
            self._complete = False
            self._deciding = True

    def _waits_for_body(self) -> bool:
        gate = self.gate()
        return (
            not self._passing
            and not self._complete
            and not self._first_here
            and not self._opaque
            and gate is not None
            and len(self._held) < _BODY_WAIT_BYTES
            and gate.wants_body(self._parser.get_method(), bytes(self._url))
        )

    def _pass_pipelined(self) -> bool:
        """Requests that came pipelined, none of them passed on yet: to the owner, which
        serves any of them (a worker would refuse what is not a read)."""
        gate = self.gate()
        if gate is None or gate.keeps_pipelined:
            return False
        return self._hand_over(gate)

    def _pass_on(self) -> bool:
        """The connection and the request's bytes to the other process, when the gate
        says so and it takes them; False: this process answers."""
        gate = self.gate()
        if self._first_here or gate is None:
            self._first_here = False
            return False
        body = bytes(self._body) if self._complete and not self._opaque else None
        stateful = bool(self._keys) and stateful_token(self._keys)
        if gate.serves(self._parser.get_method(), bytes(self._url), body, stateful):
            return False
        return self._hand_over(gate)

    def _hand_over(self, gate: Gate) -> bool:
        transport = self.transport
        assert transport is not None
        if transport.get_write_buffer_size() or (
            self._inner.cycle is not None and not self._inner.cycle.response_complete
        ):
            return False  # an answer still on its way out (a pipelining client)
        if not gate.pass_on(transport, bytes(self._held)):
            return False
        self._gone = True
        self._held.clear()
        transport.abort()  # the other process holds the connection now: only this end closes
        return True

    # what uvicorn's server calls on its connections
    def shutdown(self) -> None:
        if not self._gone:
            self._inner.shutdown()


def _send_over(link: Link, transport: asyncio.Transport, data: bytes) -> bool:
    try:
        link.send(transport, data)
    except OSError as exc:
        log.error("read workers: passing a connection over failed: %s", exc)
        return False
    return True


def _protocol_factory(server: Any, config: Any, **extra: Any) -> Callable[[], asyncio.Protocol]:
    def factory() -> asyncio.Protocol:
        return GatedProtocol(
            config=config,
            server_state=server.server_state,
            app_state=server.lifespan.state,
            **extra,
        )

    return factory


# ---- the owner's side -----------------------------------------------------------------


class ReadWorkers:
    """The owner's workers: started once its collections are open (the app's lifespan),
    restarted when one exits, stopped with the server. A connection a worker passes over
    (a request it does not serve) is adopted by the owner's HTTP server; when a point read
    comes next on it, the owner passes it back to a worker."""

    def __init__(self, count: int, argv: list[str]) -> None:
        self.count = count
        self._argv = argv
        self._folder = Path(tempfile.mkdtemp(prefix="tessera-read-workers-"))  # mode 0700
        self.path = self._folder / "handoff.sock"
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

        def serves(method: bytes, url: bytes, body: bytes | None, stateful: bool) -> bool:
            if stateful or (method == b"POST" and looks_elsewhere(body)):
                return True
            return not reads_back(method, url)

        gate = Gate(serves, self._pass_back, read_body, keeps_pipelined=True)
        # The first request came from a worker, which could not serve it: served here.
        make = _protocol_factory(self._server, self._config, gate=gate, first_here=True)
        adopt(self._loop, make, fd, data)
        self.adopted += 1

    def _pass_back(self, transport: asyncio.Transport, data: bytes) -> bool:
        with self._lock:
            if not self._links:
                return False
            self._next = (self._next + 1) % len(self._links)
            link = self._links[self._next]
        return _send_over(link, transport, data)

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

    def local(method: bytes, url: bytes, body: bytes | None, stateful: bool) -> bool:
        if stateful or (method == b"POST" and looks_elsewhere(body)):
            return False
        return serves(method, url)

    GATE = Gate(local, functools.partial(_send_over, link), read_body)
    loop = asyncio.get_running_loop()

    def adopt_back(fd: int, data: bytes) -> None:
        server, config = WORKER_SERVER
        adopt(loop, _protocol_factory(server, config, gate=GATE), fd, data)

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
                body = (
                    b'{"status":{"error":"Service unavailable: this request reached a read '
                    b'worker, which serves point reads only; send it again"},"time":0.0}'
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
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
    sock = reuse_port_socket(conf.host, conf.http_port)

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
