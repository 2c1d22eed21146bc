"""Peer-to-peer calls: one peer asks another to run a shard read or write on its replica.

Every peer serves `POST /p2p/v1/<call>` on its p2p port (`cluster.p2p.port`, the URI it
advertises; tessera.api.p2p). The body and the answer are the collection's typed values in
the wire form of tessera.collection.wire; this module only carries bytes. An answer other
than 200 carries `{"status": <code>, "message": <text>}`, raised here as the error of that
status with the peer's message, so a 404 or 400 found on another peer reaches the user as
if it were found here. A peer that cannot be reached (refused, reset, timed out) raises
`PeerUnreachable`: the caller decides whether that replica is dead.

With `cluster.p2p.enable_tls` the calls go over mutual TLS, as Qdrant's internal gRPC: this
node presents its own certificate (`tls.cert` / `tls.key`) and checks the peer's, host name
included, against `tls.ca_cert` (`client_context`; the server's side is tessera.api.p2p).
"""

from __future__ import annotations

import ssl
import threading
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    import httpx

from tessera.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InternalError,
    LeaderMoved,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    TesseraError,
    UnprocessableEntity,
)
from tessera.settings import TlsSettings

VERSION = "v1"
# A peer that does not answer within this is taken as unreachable (a shard transfer can take
# longer: it passes its own timeout).
CALL_TIMEOUT_S = 30.0

_BY_STATUS: dict[int, type[TesseraError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: UnprocessableEntity,
    429: RateLimited,
    503: ServiceUnavailable,
}


class PeerUnreachable(ServiceUnavailable):
    """The peer could not be reached or dropped the connection: it may be down."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"Service unavailable: peer {uri} is unreachable: {reason}")
        self.uri = uri


class PeerTimeout(ServiceUnavailable):
    """The peer took the call and did not answer in time: busy, not gone (a caller must not
    take it for dead on this alone)."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"Service unavailable: peer {uri} did not answer in time: {reason}")
        self.uri = uri


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    """This node's side of a call to a peer over mutual TLS (`Settings.p2p_tls`)."""
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


class PeerClient:
    """One pooled HTTP client for every peer (keep-alive connections per peer); `tls`:
    mutual TLS (`cluster.p2p.enable_tls`)."""

    def __init__(self, tls: TlsSettings | None = None) -> None:
        self._local = threading.local()
        self._verify: ssl.SSLContext | bool = client_context(tls) if tls is not None else True

    def _client(self) -> httpx.Client:
        import httpx  # only in cluster mode: a standalone server never loads it

        # One client per thread: httpx's pool is thread-safe, but a transfer holding one
        # connection for minutes must not starve the reads of other threads.
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(
                verify=self._verify,
                timeout=httpx.Timeout(CALL_TIMEOUT_S, connect=3.0),
                limits=httpx.Limits(max_keepalive_connections=16),
            )
            self._local.client = client
        return client

    def call(self, uri: str, call: str, body: bytes, timeout: float | None = None) -> bytes:
        import httpx

        url = f"{uri.rstrip('/')}/p2p/{VERSION}/{call}"
        for attempt in range(2):
            try:
                response = self._client().post(
                    url,
                    content=body,
                    headers={"content-type": "application/octet-stream"},
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
                break
            except httpx.RemoteProtocolError as exc:
                # A kept-alive connection the peer had closed (it restarted, or let an idle
                # one go) before reading the call: once more, on a new connection.
                if attempt:
                    raise PeerUnreachable(uri, f"{type(exc).__name__}: {exc}") from None
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
                raise PeerTimeout(uri, f"{type(exc).__name__}: {exc}") from None
            except httpx.HTTPError as exc:
                raise PeerUnreachable(uri, f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 200:
            return response.content
        try:
            error = orjson.loads(response.content)
            status, message = int(error["status"]), str(error["message"])
            moved = error.get("leader_moved") is True
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            status, message, moved = response.status_code, response.text[:500], False
        raise LeaderMoved(message) if moved else _BY_STATUS.get(status, InternalError)(message)

    def close(self) -> None:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is not None:
            client.close()
