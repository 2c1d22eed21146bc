"""Qdrant's gRPC API (port 6334): the `Qdrant`, `Collections` and `Points` services.

grpcio's thread-pool server runs beside uvicorn, started and stopped by the app's lifespan
over the same `TableOfContents`. Every RPC runs in a pool thread, so the engine never runs
on the event loop (REST crosses into a worker thread per request the same way).

An RPC is the REST route of the same operation behind another wire format. In the `Points`
service the request message is decoded straight into the typed request the route decodes
its JSON into (`grpc_filter`, `grpc_reads`, `grpc_plan`, `grpc_legacy`, `grpc_writes`),
checked by the same rule functions, and run by the route's own run function; the
`Collections` service still turns its (cold) messages into the route's JSON body through
qdrant-client's converters (`grpc_collections`). The result is rendered into the response
message (`grpc_render`) with `time` filled in.

Errors map in one place, `api.grpc_errors`, as Qdrant maps its own: each class of Tessera's
error tree to the status code Qdrant gives that kind of failure, with the message REST
sends in `status.error` unless Qdrant words the failure differently over gRPC.

Before any of that, one interceptor (`api.grpc_guard`) checks the key and the access the
method needs (`api.access.GRPC`, which must name every method of the services served, or
the server refuses to start), writes the access log, and answers methods Tessera does not
implement with UNIMPLEMENTED and one INFO line. TLS (and mutual TLS) come from `api.tls`.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from qdrant_client import grpc as pb

from tessera import QDRANT_API_VERSION, deadline
from tessera.api.access import missing_grpc
from tessera.api.auth import Authenticator
from tessera.api.envelope import internal_error_text
from tessera.api.grpc_errors import grpc_status
from tessera.api.grpc_guard import Guard
from tessera.api.grpc_validate import validate
from tessera.api.tls import GrpcCertificates
from tessera.collection.strict_mode import REQUEST_TIMEOUT
from tessera.errors import RateLimited, TesseraError
from tessera.settings import TlsSettings
from tessera.storage.toc import TableOfContents

log = logging.getLogger(__name__)

WORKERS = 32
STOP_GRACE_S = 5.0

S = TypeVar("S")
R = TypeVar("R")
T = TypeVar("T")


def request_timeout(request: Any) -> int | None:
    """The request's `timeout` field (seconds) when it has one and sets it (strict mode's
    `max_timeout`)."""
    try:
        return int(request.timeout) if request.HasField("timeout") else None
    except (AttributeError, ValueError):  # no such field, or not an optional one
        return None


# The point reads a request's `timeout` bounds, by method, with their names in Qdrant's
# timeout error (as the REST routes name them).
READ_OPERATIONS = {
    **dict.fromkeys(
        [
            "Query",
            "QueryBatch",
            "QueryGroups",
            "Search",
            "SearchBatch",
            "SearchGroups",
            "Recommend",
            "RecommendBatch",
            "RecommendGroups",
            "Discover",
            "DiscoverBatch",
            "SearchMatrixPairs",
            "SearchMatrixOffsets",
        ],
        "Search",
    ),
    "Scroll": "Scroll",
    "Count": "Count",
    "Facet": "facet",
    "Get": "Retrieve",
}


def rpc(method: Callable[[S, R], T]) -> Callable[[S, R, Any], T]:
    """Wrap a servicer method `(self, request) -> response`: fill the response's `time`,
    answer a failure with its status code and message."""

    @functools.wraps(method)
    def handle(self: S, request: R, context: Any) -> T:
        started = time.perf_counter()
        timeout = request_timeout(request)
        REQUEST_TIMEOUT.set(timeout)
        # A point read is bounded by its `timeout`, checked as it goes (tessera.deadline);
        # set for every call, as the pool's threads serve one call after another.
        read = READ_OPERATIONS.get(method.__name__)
        deadline.start(timeout if read is not None else None, read or "")
        try:
            validate(request)
            response = method(self, request)
        except TesseraError as exc:
            code, message = grpc_status(exc, method.__name__)
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                context.set_trailing_metadata((("retry-after", str(math.ceil(exc.retry_after))),))
        except Exception as exc:  # a bug: answer INTERNAL in Qdrant's wording, keep serving
            log.exception("internal error in gRPC %s", method.__qualname__)
            code, message = grpc.StatusCode.INTERNAL, internal_error_text(exc)
        else:
            if "time" in response.DESCRIPTOR.fields_by_name:  # type: ignore[attr-defined]
                setattr(response, "time", time.perf_counter() - started)  # noqa: B010
            return response
        context.abort(code, message)
        raise AssertionError("unreachable: abort raises")

    return handle


class QdrantService(pb.QdrantServicer):
    @rpc
    def HealthCheck(self, request: pb.HealthCheckRequest) -> pb.HealthCheckReply:
        return pb.HealthCheckReply(
            title="tessera - vector search engine", version=QDRANT_API_VERSION
        )


# grpc.health.v1's HealthCheckResponse {status: SERVING}, encoded: field 1, varint 1.
SERVING = b"\x08\x01"


def health_check(request: bytes, context: Any) -> bytes:
    """`grpc.health.v1.Health/Check`, the standard health service load balancers and
    orchestrators ask: serving, whatever the service named, as Qdrant answers."""
    return SERVING


HEALTH = grpc.method_handlers_generic_handler(
    "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(health_check)}
)


# The services served, by the generated servicer each implements.
SERVICES = {
    "qdrant.Qdrant": pb.QdrantServicer,
    "qdrant.Collections": pb.CollectionsServicer,
    "qdrant.Points": pb.PointsServicer,
    "qdrant.Snapshots": pb.SnapshotsServicer,
}


def served_methods() -> list[str]:
    """`/package.Service/Method` of every method of the services served, implemented or
    not (the access table must name each)."""
    return [
        f"/{service}/{name}"
        for service, servicer in SERVICES.items()
        for name in vars(servicer)
        if not name.startswith("_") and callable(getattr(servicer, name))
    ]


def server_options(reuse_port: bool) -> list[tuple[str, int]]:
    """grpcio's options for a server of Tessera's; `reuse_port`: the port is shared with
    the read workers (tessera.api.read_workers), else one in use is an error."""
    return [
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1),
        # Clients keep idle connections alive with pings (the Go client every 10 s,
        # without calls): accept them, as Qdrant's tonic server does, instead of grpc
        # core's default policy (one ping per 5 minutes, GOAWAY too_many_pings).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 1000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def add_services(server: Any, toc: Any) -> None:
    """Registers every service served (over `toc`, a table of contents or a read worker's
    copies of it) on `server` (grpcio's, or any object with `add_generic_rpc_handlers`)."""
    from tessera.api.grpc_collections import CollectionsService
    from tessera.api.grpc_points import PointsService
    from tessera.api.grpc_reflection import REFLECTION
    from tessera.api.grpc_snapshots import SnapshotsService

    add: Any = pb  # the generated registration functions are untyped
    add.add_QdrantServicer_to_server(QdrantService(), server)
    add.add_CollectionsServicer_to_server(CollectionsService(toc), server)
    add.add_PointsServicer_to_server(PointsService(toc), server)
    add.add_SnapshotsServicer_to_server(SnapshotsService(toc), server)
    server.add_generic_rpc_handlers((HEALTH, REFLECTION))


def check_guarded() -> None:
    unguarded = missing_grpc(served_methods())
    if unguarded:
        raise RuntimeError(
            "gRPC methods missing from the access table (tessera/api/access.py): "
            + ", ".join(unguarded)
        )


def listen(server: Any, address: str, credentials: Any = None) -> None:
    """`server` listening at `address` (TLS with `credentials`), or RuntimeError."""
    try:
        if credentials is not None:
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen for gRPC on {address}: {exc}") from exc
    if not bound:
        raise RuntimeError(f"cannot listen for gRPC on {address}")


def address_of(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """The gRPC server of one Tessera process, listening from construction until `stop()`.

    `authenticator`: keys and access checked on every call (None: open, as without keys);
    `tls`: serve TLS (mutual TLS when it says so), certificates reloaded every `cert_ttl`;
    `access_log`: one INFO line per call on `tessera.access`. A request message of any size
    is read: Qdrant's public gRPC server sets no decoding limit (`max_decoding_message_size
    (usize::MAX)`, qdrant/qdrant#1659); `service.max_request_size_mb` bounds REST bodies only.
    `workers_socket`: the read workers share the port, and pass the calls they do not serve
    to this server through this Unix socket (tessera.api.grpc_forward)."""

    def __init__(
        self,
        toc: TableOfContents,
        host: str,
        port: int,
        workers: int = WORKERS,
        *,
        authenticator: Authenticator | None = None,
        tls: TlsSettings | None = None,
        access_log: bool = False,
        hardware_reporting: bool = False,
        workers_socket: str | None = None,
    ) -> None:
        check_guarded()
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=[Guard(authenticator, access_log, toc.exists, hardware_reporting)],
            options=server_options(reuse_port=workers_socket is not None),
        )
        add_services(self._server, toc)
        address = address_of(host, port)
        self.certificates = GrpcCertificates(tls) if tls is not None else None
        credentials = self.certificates.credentials if self.certificates is not None else None
        listen(self._server, address, credentials)
        if workers_socket is not None:
            listen(self._server, f"unix:{workers_socket}")
        self._server.start()
        log.debug("gRPC listening on %s", address)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Refuse new RPCs, let running ones finish (at most `grace` seconds)."""
        self._server.stop(grace).wait()
