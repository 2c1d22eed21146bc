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
from starlette.requests import Request
from starlette.responses import Response

from tessera.api.json_depth import check_depth
from tessera.collection.strict_mode import REQUEST_TIMEOUT
from tessera.errors import BadRequest, RateLimited, TesseraError

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


def ok(result: Any, started: float) -> Response:
    return json_response({"result": result, "status": "ok", "time": time.perf_counter() - started})


def error(status_code: int, message: str, started: float) -> Response:
    return json_response(
        {"status": {"error": message}, "time": time.perf_counter() - started}, status_code
    )


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
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Format error in JSON body: {exc}") from exc


def expect_object(raw: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest(f"Format error in JSON body: {what} must be a JSON object")
    return raw


def query_flag(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"Query deserialize error: invalid value `{raw}` for `{name}`")


def check_timeout(request: Request) -> None:
    """`?timeout=` of the collection and points routes: Qdrant's `NonZeroU64` (its OpenAPI
    document: minimum 1), refused by its query extractor otherwise."""
    raw = request.query_params.get("timeout")
    if raw is None or not request.url.path.startswith("/collections"):
        return
    if not raw.isdigit():
        raise BadRequest(f"Query deserialize error: invalid digit found in string: `{raw}`")
    if int(raw) == 0:
        raise BadRequest(
            "Query deserialize error: invalid value: integer `0`, expected a nonzero u64"
        )


def internal_error_text(exc: Exception) -> str:
    """Qdrant's wording for an unexpected failure; an OS error is told by its reason and
    number as Qdrant tells it, never with the file's path (which would leak the storage
    layout)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"Service internal error: {exc.strerror} (os error {exc.errno})"
    return f"Service internal error: {exc}"


def endpoint(
    work: Callable[[Request], Awaitable[Callable[[], Any]]],
    writes: bool = False,
) -> Handler:
    """Wrap a handler: `work` parses the request and returns the engine call, which runs in a
    worker thread (`writes`: a point write's own); its result is rendered in the envelope,
    errors in Qdrant's error shape."""

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        try:
            check_timeout(request)
            raw_timeout = request.query_params.get("timeout", "")
            REQUEST_TIMEOUT.set(int(raw_timeout) if raw_timeout.isdigit() else None)
            call = await work(request)
            result = await in_worker(call, writes)
        except TesseraError as exc:
            response = error(exc.status_code, exc.message, started)
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
            return response
        except Exception as exc:  # a bug: answer 500 in Qdrant's shape, keep serving
            log.exception("internal error on %s %s", request.method, request.url.path)
            return error(500, internal_error_text(exc), started)
        if isinstance(result, Response):
            return result
        return ok(result, started)

    return handle
