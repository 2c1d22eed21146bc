"""A read worker's gRPC server (tessera.api.read_workers): point reads served from the
worker's copies, every other call passed on to the server.

The workers listen on the server's gRPC port too (SO_REUSEPORT: the kernel spreads new
connections over every process). An HTTP/2 connection carries many calls at once, so it
cannot change hands per request as a REST one does: a worker forwards each call it does not
serve, its message untouched and with the caller's metadata (keys included), to the server
over a Unix socket only this user can reach, and answers what the server answered, status,
message and trailing metadata included. The server checks the key and counts and logs the
call as any other.

Served here, checked and counted by the same interceptor as in the server (`Guard`): the
`Points` reads (get, scroll, count, facet, search, recommend, discover, query and their
batch, group and matrix forms) of a collection this worker follows, when the call names no
other collection (`lookup_from`, `with_lookup`) and its key is not a JWT whose claim reads
one (`value_exists`): the same rule as the REST gate's. The health checks and server
reflection are answered here too. A read after a write acknowledged to any client sees it:
the worker applies every record in the server's WAL before each read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc

from tessera.api.auth import Authenticator
from tessera.api.grpc_guard import FORWARDED_FOR, Guard
from tessera.api.grpc_server import (
    READ_OPERATIONS,
    STOP_GRACE_S,
    WORKERS,
    add_services,
    address_of,
    check_guarded,
    listen,
    served_methods,
    server_options,
)

log = logging.getLogger(__name__)

SERVED_HERE = frozenset(f"/qdrant.Points/{name}" for name in READ_OPERATIONS)
ANSWERED_HERE = frozenset(
    {
        "/qdrant.Qdrant/HealthCheck",
        "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    }
)
# The fields of a read that name another collection, and those that hold further reads
# (a batch's requests, a query's prefetches) where one may.
_LOOKUPS = frozenset({"lookup_from", "with_lookup"})
_NESTED = frozenset(
    {"prefetch", "query_points", "search_points", "recommend_points", "discover_points"}
)
# Metadata a forwarded call does not carry over: grpc's own (deadline, encodings), the
# HTTP/2 pseudo-headers, and the client's user agent (the channel sends its own).
_NOT_FORWARDED = ("grpc-", ":")


def names_other_collection(message: Any) -> bool:
    """Whether a read (or any read in it) names a collection to look points up in."""
    for field, value in message.ListFields():
        if field.name in _LOOKUPS:
            return True
        if field.name in _NESTED:
            items = value if _repeated(field) else (value,)
            if any(names_other_collection(item) for item in items):
                return True
    return False


def _repeated(field: Any) -> bool:
    # (`is_repeated` in protobuf 6 and later, where `label` is deprecated)
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == field.LABEL_REPEATED)


def forwarded_metadata(context: Any) -> tuple[tuple[str, Any], ...]:
    """The call's metadata as the server gets it: the client's own, and its address for
    the server's access log (one the client sent under that key is dropped)."""
    kept = tuple(
        (key, value)
        for key, value in context.invocation_metadata()
        if not key.startswith(_NOT_FORWARDED) and key not in ("user-agent", FORWARDED_FOR)
    )
    return (*kept, (FORWARDED_FOR, str(context.peer() or "-")))


def keys_of(context: Any) -> list[bytes]:
    """The call's `api-key` and `authorization` values (the REST gate's `keys`)."""
    return [
        value.encode() if isinstance(value, str) else value
        for key, value in context.invocation_metadata()
        if key in ("api-key", "authorization")
    ]


@dataclass(frozen=True)
class _Details:
    """What grpcio's generic handlers look a method up by."""

    method: str
    invocation_metadata: tuple[tuple[str, Any], ...] = ()


class _Collected:
    """Stands in for a grpcio server to collect the services' generic handlers."""

    def __init__(self) -> None:
        self.handlers: list[Any] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.handlers.extend(handlers)

    def find(self, method: str) -> Any:
        for generic in self.handlers:
            found = generic.service(_Details(method))
            if found is not None:
                return found
        return None


class Router(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Every method's handler in a worker: served here (`SERVED_HERE` when `local` says
    so for the call, `ANSWERED_HERE`) or forwarded to the server's socket `owner`."""

    def __init__(
        self,
        services: _Collected,
        guard: Guard,
        local: Callable[[str], bool],
        owner: grpc.Channel,
        stateful_token: Callable[[list[bytes]], bool],
        owner_path: str,
    ) -> None:
        self._services = services
        self._owner_path = owner_path  # the Unix socket `owner` connects to
        self._guard = guard
        self._local = local
        self._owner = owner
        self._stateful_token = stateful_token
        self._handlers: dict[str, Any] = {}  # by method, made on its first call
        self._known = frozenset(served_methods()) | ANSWERED_HERE

    def service(self, handler_call_details: Any) -> Any:
        method: str = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            if method not in self._known:
                # grpcio answers UNIMPLEMENTED, as the server would; nothing is kept for a
                # name a client made up (any number of them, before any key is checked)
                return None
            handler = self._handlers[method] = self._make(method)
        return handler

    def _guarded(self, method: str) -> Any:
        """The services' own handler of `method`, behind the same interceptor as in the
        server."""
        real = self._services.find(method)
        return self._guard.intercept_service(lambda details: real, _Details(method))

    def _make(self, method: str) -> Any:
        if method in ANSWERED_HERE:
            return self._guarded(method)
        forward = self._forwarder(method)
        if method not in SERVED_HERE:
            return grpc.unary_unary_rpc_method_handler(forward)
        guarded = self._guarded(method)
        deserialize, serialize = guarded.request_deserializer, guarded.response_serializer
        behaviour = guarded.unary_unary
        local, stateful = self._local, self._stateful_token

        def route(raw: bytes, context: Any) -> bytes:
            try:
                request = deserialize(raw)
            except Exception:  # the server answers it as it answers a bad message
                return forward(raw, context)
            try:
                here = (
                    local(request.collection_name)
                    and not names_other_collection(request)
                    and not stateful(keys_of(context))
                )
            except Exception:  # a bug in deciding must not fail the call: the server decides
                log.exception("read worker: deciding where gRPC %s goes failed", method)
                here = False
            if here:
                return bytes(serialize(behaviour(request, context)))
            return forward(raw, context)

        return grpc.unary_unary_rpc_method_handler(route)

    def _forwarder(self, method: str) -> Callable[[bytes, Any], bytes]:
        call = self._owner.unary_unary(method)  # bytes in, bytes out

        def forward(raw: bytes, context: Any) -> bytes:
            remaining = context.time_remaining()
            answer = call.future(
                raw,
                metadata=forwarded_metadata(context),
                timeout=remaining if remaining is not None and remaining < 1e6 else None,
            )
            # A client that cancels (or goes) cancels the server's call too: the thread
            # waiting here is one of those that serve this worker's own reads.
            if not context.add_callback(answer.cancel):
                answer.cancel()
            try:
                response = answer.result()
            except grpc.FutureCancelledError:
                context.abort(grpc.StatusCode.CANCELLED, "Cancelled")
                raise AssertionError("unreachable: abort raises") from None
            except grpc.RpcError as exc:
                context.set_trailing_metadata(_custom(exc.trailing_metadata()))
                context.abort(exc.code(), self._client_details(exc))
                raise AssertionError("unreachable: abort raises") from None
            context.set_trailing_metadata(_custom(answer.trailing_metadata()))
            return bytes(response)

        return forward

    def _client_details(self, exc: grpc.RpcError) -> str:
        """The server's details as it gave them; when the worker could not reach the server
        at all, grpc's own text names the server's Unix socket, a path the client has no
        business seeing: a plain one instead."""
        details = str(exc.details() or "")
        # (grpc's text percent-encodes the path: a space, any non-ASCII character)
        named = self._owner_path in details or quote(self._owner_path) in details
        if exc.code() == grpc.StatusCode.UNAVAILABLE and named:
            return "Service unavailable: the server process is not reachable"
        return details


def _custom(metadata: Any) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for k, v in metadata or () if not k.startswith(_NOT_FORWARDED))


class WorkerGrpcServer:
    """A read worker's gRPC server on the shared port (`host`:`port`), over the worker's
    copies (`toc`, a FollowerToc); `owner_socket`: the server's Unix socket for the calls
    passed on."""

    def __init__(
        self,
        toc: Any,
        host: str,
        port: int,
        owner_socket: str,
        stateful_token: Callable[[list[bytes]], bool],
        workers: int = WORKERS,
        *,
        authenticator: Authenticator | None = None,
        access_log: bool = False,
        hardware_reporting: bool = False,
    ) -> None:
        check_guarded()
        services = _Collected()
        add_services(services, toc)
        guard = Guard(authenticator, access_log, toc.exists, hardware_reporting)
        self._owner = grpc.insecure_channel(
            f"unix:{owner_socket}",
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )

        def local(name: str) -> bool:
            return toc.followable(name) is not None

        router = Router(services, guard, local, self._owner, stateful_token, owner_socket)
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            handlers=[router],
            options=server_options(reuse_port=True),
        )
        listen(self._server, address_of(host, port))
        self._server.start()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        self._server.stop(grace).wait()
        self._owner.close()
