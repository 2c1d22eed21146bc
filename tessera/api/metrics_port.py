"""`service.metrics_port`: `/metrics` on a port of its own, as Qdrant serves it there for
internal monitoring: plain HTTP, no API key asked (that port is not to be exposed to
untrusted networks, as Qdrant's documentation says of it). The same text as the API's
`/metrics`, with its `anonymize` and `per_collection` parameters."""

from __future__ import annotations

import logging
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tessera.api.envelope import flag_value
from tessera.api.metrics import CONTENT_TYPE, render_metrics
from tessera.errors import BadRequest
from tessera.storage.toc import TableOfContents

log = logging.getLogger(__name__)


class MetricsServer:
    def __init__(self, toc: TableOfContents, host: str, port: int, prefix: str) -> None:
        host = host.strip("[]")
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), _handler(toc, prefix))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(toc: TableOfContents, prefix: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/metrics":
                self._send(404, b"Not Found", "text/plain; charset=utf-8")
                return
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            try:  # the parameters as the API's `/metrics` reads them
                anonymize, per_collection = (
                    flag_value(query.get(name, [None])[-1])
                    for name in ("anonymize", "per_collection")
                )
            except BadRequest as exc:
                self._send(400, exc.message.encode(), "text/plain; charset=utf-8")
                return
            try:
                text = render_metrics(toc, anonymize, per_collection, prefix)
            except Exception:  # one failed scrape must not stop the port
                log.exception("metrics on the metrics port failed")
                self._send(500, b"metrics failed", "text/plain; charset=utf-8")
                return
            self._send(200, text.encode(), CONTENT_TYPE)

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # scrapes are not the access log's

    return Handler
