"""The REST app's outer layers, in Qdrant's order (outermost first):

`AccessLog` -> `Cors` -> `Auth` -> `BodyLimits` -> the routes.

- `AccessLog`: one INFO line per request on the `tessera.access` logger, in actix's format
  as Qdrant writes it: `peer "METHOD /path HTTP/1.1" status bytes "referer" "user-agent"
  seconds`; health checks and `/` are not logged (as in Qdrant). It also counts every
  response by route pattern and status for `/telemetry` and `/metrics`
  (`api.request_stats`), with or without the log.
- `Cors`: `service.enable_cors` (default on): any origin, method and header, as Qdrant's
  actix-cors `allow_any_*`; a preflight is answered here, before the key is checked.
- `Auth`: the key of `api.auth` against the route's level in `api.access`; the routes `/`,
  `/healthz`, `/readyz`, `/livez` and the dashboard's files stay open (decided by the route
  a path reaches, as Qdrant does). Unknown paths still need a key (then 404/405 as before).
- `BodyLimits`: a body must be JSON (`Content-Type` `application/json` or `*+json`) and at
  most `service.max_request_size_mb` (snapshot uploads excepted, as in Qdrant); otherwise
  400 with Qdrant's words ("Payload error: Content type error", "Payload error: JSON
  payload (N bytes) is larger than allowed (limit: M bytes).") before a byte of the body is
  read. A chunked body is counted as it arrives and
  refused as soon as it passes the limit, so memory never holds more than the limit. A
  gzip or deflate body (`Content-Encoding`) is decoded here, within the same limit.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match, Route

from tessera.api.access import COLLECTION_PARAM, LISTS_COLLECTIONS_REST, Level, rest_rule
from tessera.api.auth import REQUEST_ACCESS, Access, Authenticator, AuthError
from tessera.api.dashboard import is_static
from tessera.api.request_stats import STATS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("tessera.access")

# The scope key under which `Auth` leaves the request's `Access` (absent without keys: all).
ACCESS_SCOPE = "tessera.access"
NOT_LOGGED = {"/", "/healthz", "/readyz", "/livez", "/metrics", "/telemetry"}
CORS_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE"
CORS_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
BODY_METHODS = {"POST", "PUT", "PATCH"}
SNAPSHOT_UPLOAD = "/snapshots/upload"


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


def envelope(message: str, started: float | None = None) -> bytes:
    elapsed = 0.0 if started is None else time.perf_counter() - started
    # No "result" key: Qdrant leaves an error's result out, not null.
    return orjson.dumps({"status": {"error": message}, "time": elapsed})


# Statuses a request may get from the layers before the router (no endpoint in the scope).
REFUSED_EARLY = frozenset({400, 401, 403, 413})


# Path parameters Qdrant's routes name otherwise than its OpenAPI document (telemetry and
# /metrics key requests by the route's pattern): a point is `{id}`, a shard `{shard}`, and a
# shard's snapshot `{snapshot}`.
_QDRANT_PARAMS = (
    ("{point_id}", "{id}"),
    ("/shards/{shard_id}/snapshots/{snapshot_name}", "/shards/{shard}/snapshots/{snapshot}"),
    ("{shard_id}", "{shard}"),
)


def _pattern(path: str) -> str:
    """A route's path as Qdrant's server names it: `{shard}`, not `{shard_id:int}`."""
    path = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
    for ours, theirs in _QDRANT_PARAMS:
        path = path.replace(ours, theirs)
    return path


def route_patterns(routes: Sequence[BaseRoute]) -> dict[Any, str]:
    """Each route's endpoint -> its path pattern: the router leaves the endpoint it picked
    in the scope."""
    return {route.endpoint: _pattern(route.path) for route in routes if isinstance(route, Route)}


def _exists(scope: Scope, collection: str) -> bool:
    """Whether the app's table of contents has `collection` (or an alias of that name)."""
    toc = getattr(getattr(scope.get("app"), "state", None), "toc", None)
    return toc is not None and bool(toc.exists(collection))


def merge_leading_slashes(scope: Scope) -> None:
    """`//collections/...` is `/collections/...`, as Qdrant serves it (a client whose base
    URL ends in a slash sends such paths). Only the leading run: an empty segment further
    on stays one (`/collections//exists` names the empty collection, a 422)."""
    scope["path"] = "/" + scope["path"].lstrip("/")
    raw = scope.get("raw_path")
    if raw:
        scope["raw_path"] = b"/" + raw.lstrip(b"/")


class AccessLog:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = (), log: bool = True) -> None:
        self.app = app
        self.routes = routes
        self.endpoints = route_patterns(routes)
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0
        if scope["path"].startswith("//"):
            merge_leading_slashes(scope)

        async def logged_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            elapsed = time.perf_counter() - started
            endpoint = self.endpoints.get(scope.get("endpoint"))
            if endpoint is None and status in REFUSED_EARLY:
                # Refused before routing (keys, body limits): counted under its route too.
                found = resolve(self.routes, scope)
                endpoint = _pattern(found[2][1]) if found is not None else None
            if endpoint is None:
                endpoint = _path_pattern(self.routes, scope)
            if endpoint is not None:
                collection = scope.get("path_params", {}).get(COLLECTION_PARAM)
                if collection is not None and not _exists(scope, collection):
                    collection = None  # a made-up name: counted globally only
                STATS.record_rest(scope["method"], endpoint, status, elapsed, collection)
            if self.log and scope["path"] not in NOT_LOGGED:
                self._log(scope, status, size, elapsed)

    @staticmethod
    def _log(scope: Scope, status: int, size: int, elapsed: float) -> None:
        client = scope.get("client")
        query = scope.get("query_string", b"")
        target = scope.get("raw_path", scope["path"].encode())
        if isinstance(target, bytes):
            target = target.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        access_log.info(
            '%s "%s %s HTTP/%s" %d %d "%s" "%s" %.6f',
            client[0] if client else "-",
            scope["method"],
            target,
            scope.get("http_version", "1.1"),
            status,
            size,
            header(scope, b"referer") or "-",
            header(scope, b"user-agent") or "-",
            elapsed,
        )


class Cors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None:
            await self.app(scope, receive, send)
            return
        allow = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", CORS_VARY.encode()),
        ]
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
            extra = [*allow, (b"access-control-allow-methods", CORS_METHODS.encode())]
            requested = header(scope, b"access-control-request-headers")
            if requested:
                extra.append((b"access-control-allow-headers", requested.encode("latin-1")))
            await send_response(send, 200, b"", b"text/plain; charset=utf-8", extra)
            return

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in allow if h[0] not in names),
                ]
            await send(message)

        await self.app(scope, receive, cors_send)


_ENCODED_SLASH = re.compile(r"%2[fF]")


def routing_path(scope: Scope) -> str:
    """The request's path as actix routes it for Qdrant: percent-decoded, except an
    encoded `/` (`%2F`), which stays one character of a segment rather than a separator
    (the ASGI server's `path` has it decoded already)."""
    raw = scope.get("raw_path")
    if not raw:
        return str(scope["path"])
    return "%2F".join(unquote(part) for part in _ENCODED_SLASH.split(raw.decode("latin-1")))


def whitelisted(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    """Qdrant's auth whitelist (`/`, `/healthz`, `/readyz`, `/livez`, the dashboard's static
    files, not its API): decided, as Qdrant decides it, by the route the request's path
    reaches (whatever the method), not by the path's prefix, so `/readyz/x` or
    `/dashboard%2F..%2Fcollections` need the key like any other path no route takes."""
    path = routing_path(scope)
    if not is_static(path) and path not in ("/", "/healthz", "/readyz", "/livez"):
        return False
    probe = {**scope, "path": path, "method": "GET"}
    for route in routes:
        if isinstance(route, Route) and route.matches(probe)[0] is Match.FULL:
            return rest_rule("GET", route.path) is Level.OPEN
    return False


def _path_pattern(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """A request no endpoint took (another method, a CORS preflight, no such path), keyed as
    Qdrant keys it: by the first route whose path matches whatever the method, else
    `unknown`."""
    for route in routes:
        if isinstance(route, Route) and route.matches(scope)[0] is not Match.NONE:
            return _pattern(route.path)
    return "unknown"


def resolve(
    routes: Sequence[BaseRoute], scope: Scope
) -> tuple[Level, str | None, tuple[str, str]] | None:
    """(level, collection, (method, route path)) of the route this request reaches; None
    when no route takes it (the router will answer 404 or 405)."""
    for route in routes:
        if not isinstance(route, Route):
            continue
        match, child = route.matches(scope)
        if match is Match.FULL:
            level = rest_rule(scope["method"], route.path)
            key = (str(scope["method"]), route.path)
            if level is None:  # build_app refuses such routes; fail closed all the same
                return Level.MANAGE, None, key
            params = child.get("path_params", {})
            return level, params.get(COLLECTION_PARAM), key
    return None


class Auth:
    def __init__(
        self, app: ASGIApp, routes: Sequence[BaseRoute], authenticator: Authenticator
    ) -> None:
        self.app = app
        self.routes = routes
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or whitelisted(self.routes, scope):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            access, pending = self.authenticator.identify(headers.get)
            if pending is not None:  # a JWT's value_exists: reads a collection
                await run_in_threadpool(pending)
            target = resolve(self.routes, scope)
            if target is not None:
                access.check(target[0], target[1])
        except AuthError as exc:
            if exc.plain:
                await send_response(
                    send, exc.status, exc.message.encode(), b"text/plain; charset=utf-8"
                )
            else:
                body = envelope(exc.message, started)
                await send_response(send, exc.status, body, b"application/json")
            return
        scope[ACCESS_SCOPE] = access  # routes that filter what they report read it
        token = REQUEST_ACCESS.set(access)  # what a request names beyond its collection
        try:
            if (
                target is not None
                and access.collections is not None
                and target[2] in LISTS_COLLECTIONS_REST
            ):
                await self.app(scope, receive, filtered_listing(send, access))
                return
            await self.app(scope, receive, send)
        finally:
            REQUEST_ACCESS.reset(token)


def filtered_listing(send: Send, access: Access) -> Send:
    """`send` for `GET /collections` (and `GET /aliases`) that drops the collections (the
    aliases of collections) `access` may not read."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def filtering_send(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        if start["status"] == 200:
            doc = orjson.loads(body)
            result = doc.get("result") or {}
            if "aliases" in result:
                result["aliases"] = [
                    a for a in result["aliases"] if access.can_read(a["collection_name"])
                ]
            else:
                listed = result.get("collections", [])
                result["collections"] = [c for c in listed if access.can_read(c["name"])]
            body = orjson.dumps(doc)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return filtering_send


def is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    subtype = mime.partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


# Request bodies decoded by their `Content-Encoding` (zlib's window bits for each format:
# gzip's header, deflate as HTTP means it, the zlib format).
DECODED_ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, bool]:
    """(`data` inflated, at most `limit` bytes of it; whether it is not whole, valid data)."""
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(data, limit)
    except zlib.error:
        return b"", True
    return body, not inflater.eof and len(body) < limit


# Routes whose body is not JSON (a multipart snapshot upload, with a limit of its own).
RAW_BODY_SUFFIXES = ("/snapshots/upload",)


class BodyLimits:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or scope["path"].rstrip("/").endswith(RAW_BODY_SUFFIXES)
        ):
            await self.app(scope, receive, send)
            return
        length_text = header(scope, b"content-length")
        chunked = "chunked" in (header(scope, b"transfer-encoding") or "").lower()
        try:
            length = int(length_text) if length_text is not None else None
        except ValueError:
            length = None
        if not chunked and not length:
            await self.app(scope, receive, send)  # no body: nothing to check
            return
        if scope["path"].endswith(SNAPSHOT_UPLOAD) and scope["method"] == "POST":
            # A snapshot upload (multipart, any size): streamed to disk by its route
            # (tessera.api.snapshots), which bounds it by the free space.
            await self.app(scope, receive, send)
            return
        if not is_json(header(scope, b"content-type")):
            await self._refuse(send, "Payload error: Content type error")
            return
        if length is not None and length > self.max_bytes:
            await self._refuse(
                send,
                f"Payload error: JSON payload ({length} bytes) is larger than allowed "
                f"(limit: {self.max_bytes} bytes).",
            )
            return
        encoding = (header(scope, b"content-encoding") or "").strip().lower()
        if encoding in DECODED_ENCODINGS:
            await self._decoded(scope, receive, send, DECODED_ENCODINGS[encoding])
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        # Chunked: read up to the limit before the route does, refuse past it.
        messages: list[Message] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                messages.clear()
                await self._refuse(
                    send,
                    f"Payload error: JSON payload has exceeded limit ({self.max_bytes} bytes).",
                )
                return
            messages.append(message)
            if not message.get("more_body"):
                break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _decoded(self, scope: Scope, receive: Receive, send: Send, wbits: int) -> None:
        """A gzip or deflate body (`Content-Encoding`), decoded as actix decodes it for
        Qdrant: the route sees the JSON; the limit holds for what was sent and for what it
        decodes to (a small body that inflates past it is refused as it inflates)."""
        sent = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            sent += message.get("body", b"")
            if len(sent) > self.max_bytes:
                await self._refuse(send, self._exceeded())
                return
            if not message.get("more_body"):
                break
        # On a thread: inflating up to the limit (32 MiB by default) takes tens of
        # milliseconds, which the loop's other requests must not wait for.
        body, corrupt = await asyncio.to_thread(_inflate, bytes(sent), wbits, self.max_bytes + 1)
        if len(body) > self.max_bytes:
            await self._refuse(send, self._exceeded())
            return
        if corrupt:
            await self._refuse(
                send,
                "Payload error: Error that occur during reading payload: Can not decode "
                "content-encoding.",
            )
            return
        headers = [
            (key, value)
            for key, value in scope["headers"]
            if key not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        replayed = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return replayed.pop() if replayed else await receive()

        await self.app({**scope, "headers": headers}, replay, send)

    def _exceeded(self) -> str:
        return f"Payload error: JSON payload has exceeded limit ({self.max_bytes} bytes)."

    @staticmethod
    async def _refuse(send: Send, message: str) -> None:
        await send_response(send, 400, envelope(message), b"application/json")
