"""The gRPC server's one interceptor: keys and access (as REST's `Auth`), the access log,
and a quiet UNIMPLEMENTED for the methods Tessera does not implement.

Every RPC of Qdrant's API is unary (server reflection, which streams, gets the key check
only). The interceptor wraps the method's handler: the key in
the `api-key` (or `authorization: Bearer`) metadata is checked (UNAUTHENTICATED /
PERMISSION_DENIED with Qdrant's words, as in `api.auth`), then the method's level in
`api.access` against the request's `collection_name`; a method of the generated servicer
that Tessera does not override raises NotImplementedError, answered UNIMPLEMENTED with one
INFO line instead of grpcio's ERROR and traceback. Every answer is counted by method and
status code for `/telemetry` and `/metrics` (`api.request_stats`).

The access log follows Qdrant's gRPC logging layer: a call that succeeds is a DEBUG line
(Qdrant: TRACE), one refused for the caller's reasons (invalid argument, not found, ...)
an INFO line, one the server failed (internal, unavailable, unknown, data loss) an ERROR
line. Unlike REST's, an INFO log has no line per successful call: at ~16% of a call's CPU
under load (the record, and the peer's address from grpcio), it was the largest cost of
Tessera's own in a gRPC call's profile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from tessera import hw_meter
from tessera.api.access import GRPC, GRPC_STREAMING, LISTS_COLLECTIONS_GRPC, Level
from tessera.api.auth import REQUEST_ACCESS, Access, Authenticator, AuthError
from tessera.api.request_stats import STATS

log = logging.getLogger(__name__)
access_log = logging.getLogger("tessera.access")

NOT_LOGGED = {"/qdrant.Qdrant/HealthCheck", "/grpc.health.v1.Health/Check"}
# Status name -> its number (0 OK ... 16 UNAUTHENTICATED), the key of the response counters.
STATUS_NUMBERS = {status.name: status.value[0] for status in grpc.StatusCode}
# The statuses Qdrant's gRPC logging layer reports at ERROR (the server failed the call);
# every other failure is the caller's, at INFO.
SERVER_FAILURES = {"INTERNAL", "UNIMPLEMENTED", "UNAVAILABLE", "DATA_LOSS", "UNKNOWN"}


class Guard(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        authenticator: Authenticator | None,
        log_access: bool,
        collection_exists: Callable[[str], bool] | None = None,
        hardware_reporting: bool = False,
    ) -> None:
        """`collection_exists`: whether a request's collection is counted per collection (a
        made-up name is counted globally only); without it, none is. `hardware_reporting`:
        answers that have a `usage` field carry the call's hardware usage (tessera.hw_meter)."""
        self.hardware_reporting = hardware_reporting
        self.authenticator = authenticator
        self.log_access = log_access
        self.collection_exists = collection_exists
        # The guarded handler of each method, made on its first call: grpcio asks the
        # interceptor for every call, and the services are registered once, at start.
        self._guarded: dict[str, Any] = {}

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        method: str = details.method
        guarded = self._guarded.get(method)
        if guarded is not None:
            return guarded
        handler = continuation(details)
        if handler is None:
            return handler  # unknown method: grpcio answers UNIMPLEMENTED itself
        if handler.stream_stream is not None:
            guarded = self._guarded[method] = self._guard_stream(method, handler)
            return guarded
        if handler.unary_unary is None:
            return handler
        guarded = self._guarded[method] = self._guard(method, handler)
        return guarded

    def _guard_stream(self, method: str, handler: Any) -> Any:
        """A streaming `handler` (server reflection) behind the key check only: Qdrant's
        auth layer asks every method but the health checks for a key."""
        behaviour = handler.stream_stream
        level = GRPC_STREAMING.get(method, Level.MANAGE)  # not in the table: fail closed
        authenticator = self.authenticator

        def guarded(requests: Any, context: Any) -> Any:
            if authenticator is not None:
                check(authenticator, level, method, None, context)
            return behaviour(requests, context)

        return grpc.stream_stream_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _guard(self, method: str, handler: Any) -> Any:
        """`handler` with authentication, the response counters and the access log."""
        behaviour = handler.unary_unary
        level = GRPC.get(method, Level.MANAGE)  # not in the table: fail closed
        open_method = level is Level.OPEN or method in NOT_LOGGED
        authenticator = None if open_method else self.authenticator
        log_access = self.log_access and not open_method
        exists = self.collection_exists
        metered = self.hardware_reporting

        def guarded(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                if authenticator is not None:
                    access = check(authenticator, level, method, request, context)
                else:
                    access = None
                token = REQUEST_ACCESS.set(access)  # what the call names beyond its collection
                meter, meter_token = hw_meter.start() if metered else (None, None)
                try:
                    response = behaviour(request, context)
                except NotImplementedError:
                    log.info("gRPC %s is not implemented by Tessera", method)
                    code = "UNIMPLEMENTED"
                    context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
                finally:
                    REQUEST_ACCESS.reset(token)
                    if meter_token is not None:
                        hw_meter.stop(meter_token)
                if meter is not None:
                    report_usage(response, meter)
                if (
                    access is not None
                    and access.collections is not None
                    and method in LISTS_COLLECTIONS_GRPC
                ):
                    filter_listing(response, access)
                return response
            except BaseException:
                if code == "OK":
                    status = context.code()
                    code = status.name if status is not None else "UNKNOWN"
                raise
            finally:
                elapsed = time.perf_counter() - started
                collection = getattr(request, "collection_name", None)
                if collection and (exists is None or not exists(collection)):
                    collection = None
                STATS.record_grpc(method, STATUS_NUMBERS.get(code, 2), elapsed, collection)
                if log_access:
                    log_call(context, method, code, elapsed)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def log_call(context: Any, method: str, code: str, elapsed: float) -> None:
    """The access log's line for a call, at the level Qdrant logs its outcome."""
    if code == "OK" or code == "CANCELLED":
        level = logging.DEBUG
    else:
        level = logging.ERROR if code in SERVER_FAILURES else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    line = 'gRPC %s "%s" %s %.6f'
    args: tuple[Any, ...] = (caller(context), method, code, elapsed)
    details = context.details() if level > logging.DEBUG else None  # bytes, as grpcio keeps it
    if details:
        line, args = line + " %r", (*args, details.decode("utf-8", "replace"))
    access_log.log(level, line, *args)


# The client's address of a call a read worker passed on (tessera.api.grpc_forward): the
# server sees the worker's Unix socket as the caller, and trusts this key only from there.
FORWARDED_FOR = "tessera-forwarded-for"


def caller(context: Any) -> str:
    """The address a call came from, as the access log shows it."""
    peer = str(context.peer() or "-")
    if peer.startswith("unix:"):
        for key, value in context.invocation_metadata():
            if key == FORWARDED_FOR:
                return str(value)
    return peer


def report_usage(response: Any, meter: hw_meter.Meter) -> None:
    """The call's hardware usage in an answer that has Qdrant's `usage` field."""
    descriptor = getattr(response, "DESCRIPTOR", None)
    if descriptor is None or "usage" not in descriptor.fields_by_name:
        return
    hardware = response.usage.hardware
    for name, value in meter.to_json().items():
        setattr(hardware, name, value)


def check(
    authenticator: Authenticator, level: Level, method: str, request: Any, context: Any
) -> Access:
    metadata = {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}
    collection = getattr(request, "collection_name", None) or None
    try:
        access = authenticator.authenticate(metadata.get)
        access.check(level, collection)
    except AuthError as exc:
        code = (
            grpc.StatusCode.UNAUTHENTICATED
            if exc.status == 401
            else grpc.StatusCode.PERMISSION_DENIED
        )
        context.abort(code, exc.message)
        raise AssertionError("unreachable: abort raises") from None
    return access


def filter_listing(response: Any, access: Access) -> None:
    """Keep the collections (or the aliases of collections) a collection-scoped JWT may read."""
    if hasattr(response, "aliases"):
        kept = [a for a in response.aliases if access.can_read(a.collection_name)]
        del response.aliases[:]
        response.aliases.extend(kept)
        return
    names = [c.name for c in response.collections if access.can_read(c.name)]
    del response.collections[:]
    for name in names:
        response.collections.add(name=name)
