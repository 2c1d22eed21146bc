"""Passing an HTTP connection between processes (tessera.api.read_workers): its socket over a
Unix socket (SCM_RIGHTS) with the bytes of the request read so far, carried on by the
receiving process's uvicorn as if it had accepted it; and the gate in front of uvicorn's
protocol that decides, per request, whether this process answers it or passes the
connection on."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, cast

import httptools

log = logging.getLogger(__name__)

# A message on the link between the owner and a worker: its kind, then its length.
_HEADER = struct.Struct("<BQ")
_CONNECTION = 0  # a connection's socket (passed with the message) and its request's bytes
_STATS = 1  # a worker's request statistics since its last such message (JSON)

# A read's body is held this long at most before its gate decides (without it).
_BODY_WAIT_BYTES = 1 << 20


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
    (method, url, body, keys)` says whether this process answers a request (`body`: None
    when it was not waited for, or could not be read here; `keys`: its api-key and
    Authorization header values); `pass_on(transport, data)` hands the
    connection over with the request's bytes (False: it could not, so this process
    answers); `wants_body(method, url)`: the decision waits for the whole body."""

    def __init__(
        self,
        serves: Callable[[bytes, bytes, bytes | None, list[bytes]], bool],
        pass_on: Callable[[asyncio.Transport, bytes], bool],
        wants_body: Callable[[bytes, bytes], bool],
        keeps_pipelined: bool = False,
    ) -> None:
        self.serves = serves
        self.pass_on = pass_on
        self.wants_body = wants_body
        # Requests that come pipelined are served here (the owner) or passed on (a worker).
        self.keeps_pipelined = keeps_pipelined


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
        self._method, self._target = b"", b""  # of the request, once its head is read
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
        self._method, self._target = self._parser.get_method(), bytes(self._url)

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
        upgrade = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # `Upgrade` or CONNECT: this parser reads no further. Where the request goes is
            # decided on its head alone (its body unread: opaque), then every byte goes to
            # the HTTP server that got it, which answers as it answers any such request.
            upgrade = self._opaque = True
            self._head_done = True
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
                self._passing = self._passing or upgrade
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
            and gate.wants_body(self._method, self._target)
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
        try:
            here = gate.serves(self._method, self._target, body, self._keys)
        except Exception:  # a bug in deciding must not cost the connection: the owner decides
            log.exception("read workers: deciding where %r goes failed", bytes(self._target))
            here = gate.keeps_pipelined  # (true of the owner's gate only)
        if here:
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


def send_over(link: Link, transport: asyncio.Transport, data: bytes) -> bool:
    try:
        link.send(transport, data)
    except OSError as exc:
        log.error("read workers: passing a connection over failed: %s", exc)
        return False
    return True


def protocol_factory(server: Any, config: Any, **extra: Any) -> Callable[[], asyncio.Protocol]:
    def factory() -> asyncio.Protocol:
        return GatedProtocol(
            config=config,
            server_state=server.server_state,
            app_state=server.lifespan.state,
            **extra,
        )

    return factory
