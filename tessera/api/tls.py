"""TLS for REST and gRPC (`service.enable_tls`, `tls.cert`, `tls.key`, `tls.ca_cert`,
`service.verify_https_client_certificate`), with certificate reload (`tls.cert_ttl`).

As Qdrant does, the certificate and key files are read again every `cert_ttl` seconds while
the server runs, so a certificate renewed on disk is served to new connections without a
restart. Qdrant does this for REST only; Tessera does it for gRPC too (grpcio asks for the
current certificate before each new connection's handshake). A file that cannot be read or
does not match its key at reload time is logged and the previous certificate kept.

With `verify_https_client_certificate`, REST clients must present a certificate signed by
`tls.ca_cert` (mutual TLS). The gRPC API never asks for one: Qdrant's external gRPC server
is configured with its own identity only (`load_tls_external_server_config`), whatever that
setting says, and clients that connect to it with a CA alone must go on working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from typing import Any

import grpc

from tessera.settings import TlsSettings

log = logging.getLogger(__name__)


def _stamp(tls: TlsSettings) -> tuple[tuple[int, int], ...]:
    out = []
    for path in (tls.cert, tls.key):
        try:
            st = path.stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((0, 0))
    return tuple(out)


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """The REST server's context; raises OSError / ssl.SSLError for unusable files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    if tls.ca_cert is not None:
        ctx.load_verify_locations(cafile=str(tls.ca_cert))
    if tls.verify_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class RestCertificates:
    """The REST context and its reload: `run()` is a task on the server's event loop (where
    the context makes its connections, so a reload never races one)."""

    def __init__(self, tls: TlsSettings) -> None:
        self.tls = tls
        self.context = server_context(tls)
        self._stamp = _stamp(tls)

    def reload(self) -> bool:
        """Load the files again if they changed; True when a new certificate is in use."""
        stamp = _stamp(self.tls)
        if stamp == self._stamp:
            return False
        try:
            self.context.load_cert_chain(str(self.tls.cert), str(self.tls.key))
        except (OSError, ssl.SSLError) as exc:
            log.warning("TLS certificate reload failed, keeping the previous one: %s", exc)
            return False
        self._stamp = stamp
        log.info("TLS certificate reloaded from %s", self.tls.cert)
        return True

    async def run(self) -> None:
        if not self.tls.cert_ttl:
            return
        while True:
            await asyncio.sleep(self.tls.cert_ttl)
            self.reload()


def _grpc_config(tls: TlsSettings) -> Any:
    key = tls.key.read_bytes()
    cert = tls.cert.read_bytes()
    return grpc.ssl_server_certificate_configuration([(key, cert)])


class GrpcCertificates:
    """Server credentials whose certificate is re-read every `cert_ttl` seconds (checked
    when a connection starts its handshake)."""

    def __init__(self, tls: TlsSettings) -> None:
        self.tls = tls
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._stamp = _stamp(tls)
        initial = _grpc_config(tls)
        self.credentials = grpc.dynamic_ssl_server_credentials(
            initial,
            self._fetch,
            require_client_authentication=False,
        )

    def _fetch(self) -> Any:
        ttl = self.tls.cert_ttl
        if not ttl:
            return None
        with self._lock:
            now = time.monotonic()
            if now - self._checked < ttl:
                return None
            self._checked = now
            stamp = _stamp(self.tls)
            if stamp == self._stamp:
                return None
            try:
                # grpcio would only find a broken pair at the next handshake: check it here.
                probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                probe.load_cert_chain(str(self.tls.cert), str(self.tls.key))
                config = _grpc_config(self.tls)
            except (OSError, ssl.SSLError) as exc:
                log.warning("gRPC TLS certificate reload failed, keeping the previous: %s", exc)
                return None
            self._stamp = stamp
            log.info("gRPC TLS certificate reloaded from %s", self.tls.cert)
            return config


async def cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
