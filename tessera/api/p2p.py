"""The peer-to-peer port (`cluster.p2p.port`): other peers' shard calls on this peer's
replicas (tessera.collection.distributed), in the wire form of tessera.collection.wire.

`POST /p2p/v1/shard` with `{"collection", "uuid", "shard", "method", "args", "kwargs"}`
runs one call on this peer's replica of that shard of that incarnation of the collection and
answers its value; an error answers its status with `{"status", "message"}`
(tessera.cluster.p2p raises it again on the calling peer). A plain threaded HTTP server: the
calls run the collection's own (blocking) code, each on its own thread.

With `cluster.p2p.enable_tls` the port speaks TLS and takes only peers whose certificate
`tls.ca_cert` signed (mutual TLS, as Qdrant's internal gRPC port); the handshake runs on
the connection's own thread, so a slow or failing one holds up no other peer.
"""

from __future__ import annotations

import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from tessera.api.cluster_info import peer_details
from tessera.api.tls import server_context
from tessera.collection import wire
from tessera.collection.distributed import VIEW_WAIT_S, ClusterCollection
from tessera.errors import BadRequest, LeaderMoved, NotFound, ServiceUnavailable, TesseraError
from tessera.settings import TlsSettings
from tessera.storage.toc import TableOfContents

log = logging.getLogger(__name__)

ROUTE = "/p2p/v1/shard"
PEER_ROUTE = "/p2p/v1/peer"  # this peer's consensus details, for `GET /cluster/telemetry`


class P2PServer:
    def __init__(
        self, toc: TableOfContents, host: str, port: int, tls: TlsSettings | None = None
    ) -> None:
        self.toc = toc
        handler = _handler(toc)
        self._server = _Server((host, port), handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = server_context(tls).wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(target=self._server.serve_forever, name="p2p", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection that fails its TLS handshake or drops mid-call: one line, no
        # traceback on stderr (socketserver's default); the calling peer sees the error.
        log.warning("p2p connection from %s failed", client_address[0], exc_info=True)


def _handler(toc: TableOfContents) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle's algorithm the body would
        # wait for the peer's delayed ACK (40 ms) on every keep-alive call.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            if isinstance(self.request, ssl.SSLSocket):
                self.request.do_handshake()  # here, on this connection's thread

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                if self.path == PEER_ROUTE:
                    answer = orjson.dumps(peer_details(toc))
                elif self.path == ROUTE:
                    answer = wire.encode(serve(toc, wire.decode(body)))
                else:
                    raise NotFound(f"Not found: {self.path}")
                self._send(200, answer)
            except TesseraError as exc:
                error: dict[str, Any] = {"status": exc.status_code, "message": exc.message}
                if isinstance(exc, LeaderMoved):
                    error["leader_moved"] = True
                self._send(exc.status_code, orjson.dumps(error))
            except Exception as exc:  # one bad call must not stop the port
                log.exception("p2p call failed")
                error = {"status": 500, "message": f"Service internal error: {exc!r}"}
                self._send(500, orjson.dumps(error))

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("p2p: " + format, *args)

    return Handler


def serve(toc: TableOfContents, message: Any) -> Any:
    if not isinstance(message, dict):
        raise BadRequest("Bad request: a peer message is an object")
    _catch_up_with_caller(toc, message.get("view"))
    name = str(message.get("collection"))
    collection = toc.collections.get(name)
    if not isinstance(collection, ClusterCollection) or collection.cluster.incarnation(
        name
    ) != message.get("uuid"):
        raise NotFound(f"Not found: Collection `{name}` doesn't exist!")
    args, kwargs = message.get("args"), message.get("kwargs")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise BadRequest("Bad request: a peer call has `args` and `kwargs`")
    return collection.serve_shard(int(message["shard"]), str(message["method"]), args, kwargs)


def _catch_up_with_caller(toc: TableOfContents, view: Any) -> None:
    """Wait until this peer has applied the cluster revision the caller's view includes
    (`view`): the caller may know a collection, placement or shard key this peer's watch
    has not applied yet, and answering from the older state would be wrong (a write to a
    collection just published or a shard just placed answered 404 here)."""
    # From the start of joining: a peer registered but not yet synced waits for its sync.
    cluster = toc.following
    if cluster is None or not isinstance(view, int) or isinstance(view, bool):
        return
    if not cluster.wait_view(view, VIEW_WAIT_S):
        raise ServiceUnavailable(
            f"Service unavailable: peer {cluster.peer_id} has not caught up with the "
            f"cluster's revision {view} yet"
        )
