"""Qdrant's response envelope and the one mapping from Tessera errors to HTTP."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tessera import deadline, hw_meter
from tessera.api import quick_requests
from tessera.api.json_depth import check_depth
from tessera.collection.strict_mode import REQUEST_TIMEOUT
from tessera.errors import (
    BadRequest,
    RateLimited,
    TesseraError,
    UnprocessableEntity,
    os_error_text,
)

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")

# The worker threads that run the engine calls of REST routes: `service.max_workers`, else
# anyio's default limit (40). `loop.run_in_executor` on this pool costs ~65 us of CPU per
# request where Starlette's `run_in_threadpool` (anyio's `to_thread`: capacity limiter,
# cancel scope, its own worker queue) cost ~230 us (bench/README.md, request path).
DEFAULT_WORKERS = 40
_workers: ThreadPoolExecutor | None = None
# Point writes run on their own threads: queued behind tens of searches in the one pool, a
# 10-point upsert waited for them all (bench/README.md, "Search under a steady writer").
WRITE_WORKERS = 8
_write_workers: ThreadPoolExecutor | None = None


def set_workers(count: int) -> None:
    """Size the REST worker pool (the app's lifespan, from `service.max_workers`)."""
    global _workers
    old, _workers = _workers, ThreadPoolExecutor(count, thread_name_prefix="tessera-rest")
    if old is not None:
        old.shutdown(wait=False)


async def in_worker(call: Callable[[], T], writes: bool = False) -> T:
    """`call()` in a worker thread, with this request's context variables (as
    `run_in_threadpool` runs it); `writes`: on the point writes' own threads."""
    global _write_workers
    if writes:
        if _write_workers is None:
            _write_workers = ThreadPoolExecutor(WRITE_WORKERS, thread_name_prefix="tessera-write")
        pool = _write_workers
    else:
        if _workers is None:
            set_workers(DEFAULT_WORKERS)
        assert _workers is not None
        pool = _workers
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, context.run, call)


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status_code,
        media_type="application/json",
    )


def ok(result: Any, started: float, meter: hw_meter.Meter | None = None) -> Response:
    """Qdrant's envelope; with a `meter` (`service.hardware_reporting`) its `usage`."""
    body = {"result": result, "status": "ok", "time": time.perf_counter() - started}
    if meter is not None:
        body["usage"] = {"hardware": meter.to_json(), "inference": None}
    return json_response(body)


def error(status_code: int, message: str, started: float) -> Response:
    return json_response(
        {"status": {"error": message}, "time": time.perf_counter() - started}, status_code
    )


# The scope key under which `read_json` leaves the parsed body (for a quick request's kind).
BODY_SCOPE = "tessera.json"
# The app state's flag: point reads and writes may run on the loop (`quick_requests`; off in
# cluster mode).
QUICK_REQUESTS = "quick_requests"


async def read_json(request: Request, required: bool = True) -> Any:
    body = await request.body()
    if not body.strip():
        if required:
            raise BadRequest(
                "Format error in JSON body: EOF while parsing a value at line 1 column 0"
            )
        return None
    check_depth(body)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Format error in JSON body: {exc}") from exc
    request.scope[BODY_SCOPE] = parsed
    return parsed


def expect_object(raw: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest(f"Format error in JSON body: {what} must be a JSON object")
    return raw


# Qdrant's words for a query string it cannot read (`?timeout=x`) and for one that breaks a
# rule of its validator (`?timeout=0` on a collection operation).
QUERY_DESERIALIZE = "Deserialize error in query parameters"
QUERY_VALIDATION = "Validation error in query parameters"


def query_flag(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter as serde reads it: `true` or `false`, nothing else."""
    return flag_value(request.query_params.get(name), default)


def flag_value(raw: str | None, default: bool = False) -> bool:
    """`query_flag` of a parameter's text (None: not given)."""
    if raw is None:
        return default
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise BadRequest(f"{QUERY_DESERIALIZE}: provided string was not `true` or `false`")


WRITE_ORDERINGS = ("weak", "medium", "strong")
READ_CONSISTENCIES = ("majority", "quorum", "all")


def write_wait(request: Request) -> bool:
    """A write's `wait`, its `ordering` checked (one node orders every write the same way,
    so any of Qdrant's orderings is kept; an unknown one is refused as Qdrant refuses it)."""
    ordering = request.query_params.get("ordering")
    if ordering is not None and ordering not in WRITE_ORDERINGS:
        raise BadRequest(
            f"{QUERY_DESERIALIZE}: unknown variant `{ordering}`, expected one of "
            + ", ".join(f"`{o}`" for o in WRITE_ORDERINGS)
        )
    return query_flag(request, "wait")


def check_consistency(request: Request) -> None:
    """A read's `consistency`: a number of replicas (at least 1) or `majority`, `quorum`,
    `all` (a replica set answers reads by its own rule; an unreadable value is refused)."""
    if not request.scope.get("query_string"):  # the usual case: no QueryParams to build
        return
    raw = request.query_params.get("consistency")
    # Qdrant's factor is a usize that may not be zero ("read consistency factor can't be zero",
    # which its untagged decoder reports as no variant matching).
    factor = raw is not None and raw.isdigit() and int(raw) > 0
    if raw is not None and not factor and raw not in READ_CONSISTENCIES:
        raise BadRequest(
            f"{QUERY_DESERIALIZE}: data did not match any variant of untagged enum ReadConsistency"
        )


def check_timeout(request: Request, writes: bool) -> int | None:
    """`?timeout=` (seconds) of the collection and points routes, as Qdrant takes it: a
    collection operation's must be at least 1 (its validator), a read's is a `NonZeroU64`, a
    point write's may be 0. None when absent or 0."""
    if not request.scope.get("query_string"):  # the usual case: no QueryParams to build
        return None
    raw = request.query_params.get("timeout")
    if raw is None or not request.url.path.startswith("/collections"):
        return None
    if not raw.isdigit():
        raise BadRequest(f"{QUERY_DESERIALIZE}: invalid digit found in string")
    value = int(raw)
    if value or writes:
        return value or None
    if _collection_operation(request):
        raise UnprocessableEntity(
            f"{QUERY_VALIDATION}: [timeout: value 0 invalid, must be 1 or larger]"
        )
    raise BadRequest(f"{QUERY_DESERIALIZE}: invalid value: integer `0`, expected a nonzero u64")


def _collection_operation(request: Request) -> bool:
    """Create, update or delete a collection, or change aliases."""
    parts = request.url.path.strip("/").split("/")
    if request.method == "POST":
        return parts == ["collections", "aliases"]
    return len(parts) == 2 and request.method in ("PUT", "PATCH", "DELETE")


def internal_error_text(exc: Exception) -> str:
    """Qdrant's wording for an unexpected failure; an OS error is told by its reason and
    number as Qdrant tells it, never with the file's path (which would leak the storage
    layout)."""
    return f"Service internal error: {os_error_text(exc)}"


def _kind(request: Request) -> tuple[Any, ...]:
    """What tells a point request's cost: route, collection, the shape of its body."""
    scope = request.scope
    return (
        scope["endpoint"],
        scope["path_params"].get("collection_name"),
        quick_requests.shape(scope.get(BODY_SCOPE)),
    )


async def _read(request: Request, call: Callable[[], T]) -> T:
    """A point read: on the loop when its kind is quick, else timed on a worker."""
    return await quick_requests.read(call, _kind(request), in_worker)


async def _write(request: Request, call: Callable[[], T]) -> T:
    """A point write: on the loop when its kind is quick, else timed on a write thread."""
    return await quick_requests.write(call, _kind(request), _write_worker)


async def _write_worker(call: Callable[[], T]) -> T:
    return await in_worker(call, writes=True)


async def _bounded(run: Awaitable[T], limit: deadline.Deadline) -> T:
    """`run`'s result, or the timeout error at the deadline (a worker thread still in a
    long call stops at its next `deadline.check()`)."""
    scope = asyncio.timeout(limit.remaining())
    try:
        async with scope:
            return await run
    except TimeoutError:
        if scope.expired():  # the deadline, not a timeout raised by the work itself
            raise limit.error() from None
        raise


def _operation(request: Request) -> str:
    """The read's name in Qdrant's timeout error."""
    path = request.url.path
    for suffix, name in _OPERATIONS:
        if path.endswith(suffix):
            return name
    return "Search"


_OPERATIONS = (
    ("/points/scroll", "Scroll"),
    ("/points/count", "Count"),
    ("/facet", "facet"),
    ("/points", "Retrieve"),
)


def endpoint(
    work: Callable[[Request], Awaitable[Callable[[], Any]]],
    writes: bool = False,
    quick: bool = False,
) -> Handler:
    """Wrap a handler: `work` parses the request and returns the engine call, which runs in a
    worker thread (`writes`: a point write's own; `quick`: a point read or write, on the
    loop when its kind is quick, see `quick_requests`); its result is rendered in the envelope,
    errors in Qdrant's error shape."""

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        meter, meter_token = (
            hw_meter.start()
            if quick and getattr(request.app.state, "hardware_reporting", False)
            else (None, None)
        )
        try:
            timeout = check_timeout(request, writes)
            REQUEST_TIMEOUT.set(timeout)
            # A point read's `timeout` bounds it (tessera.deadline); a write's only strict
            # mode's `max_timeout` (writes are logged and applied whole once started).
            reads = quick and not writes
            if reads:
                check_consistency(request)
            deadline.start(None, "")  # none while the body is read and parsed
            call = await work(request)
            # From here, as Qdrant's timeout starts once its extractor has read the body.
            limit = deadline.start(
                timeout if reads else None, _operation(request) if timeout else ""
            )
            if quick and getattr(request.app.state, QUICK_REQUESTS, False):
                run = _write(request, call) if writes else _read(request, call)
            else:
                run = in_worker(call, writes)
            result = await (run if limit is None else _bounded(run, limit))
        except TesseraError as exc:
            response = error(exc.status_code, exc.message, started)
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
            return response
        except ClientDisconnect:  # the client went away before its body was all read
            log.debug("client disconnected during %s %s", request.method, request.url.path)
            return error(400, "Bad request: the client disconnected", started)
        except Exception as exc:  # a bug: answer 500 in Qdrant's shape, keep serving
            log.exception("internal error on %s %s", request.method, request.url.path)
            return error(500, internal_error_text(exc), started)
        finally:
            if meter_token is not None:
                hw_meter.stop(meter_token)
        if isinstance(result, Response):
            return result
        return ok(result, started, meter)

    return handle
