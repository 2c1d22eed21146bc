"""The one exception tree of Tessera; the API maps it to HTTP in one table.

TesseraError
├── BadRequest          400  the body does not parse, or has the wrong shape ("Format error")
│   └── UnprocessableEntity  422  it parses but a value is invalid ("Validation error")
├── Forbidden           403  a path outside what the API may touch (snapshot files)
├── NotFound            404  a collection, point or field that does not exist
├── Conflict            409  a collection that already exists
├── RequestTimeout      408  a read past the `timeout` it asked for (tessera.deadline)
├── RateLimited         429  strict mode's read or write rate limit (Retry-After when known)
├── ServiceUnavailable  503  storage refuses writes (disk full, shutting down)
└── InternalError       500  a bug, or damaged storage; never raised for user input
    └── StorageCorruption  data on disk no longer reads back as written
"""

from __future__ import annotations


class TesseraError(Exception):
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(TesseraError):
    status_code = 400


class UnprocessableEntity(BadRequest):
    status_code = 422


class Forbidden(TesseraError):
    status_code = 403


class NotFound(TesseraError):
    status_code = 404


class Conflict(TesseraError):
    status_code = 409


class RequestTimeout(TesseraError):
    status_code = 408


class NotAllowed(TesseraError):
    """405: the route exists, but not in this node's mode (a cluster route on a standalone
    node)."""

    status_code = 405


class RateLimited(TesseraError):
    """`retry_after`: seconds until the request would pass; None when it never will."""

    status_code = 429

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(TesseraError):
    status_code = 503


class LeaderMoved(ServiceUnavailable):
    """A write reached a replica that no longer leads its shard (a transfer or a dropped
    replica moved the lead meanwhile): nothing was acknowledged, and the peer that routed it
    sends it again to the shard's new leader instead of failing it."""


class InternalError(TesseraError):
    status_code = 500


def bad_input(message: str) -> BadRequest:
    """Qdrant prefixes validation failures with 'Wrong input: '."""
    return BadRequest(f"Wrong input: {message}")


def inference_unavailable() -> InternalError:
    """A Document, Image or InferenceObject for a model other than BM25 (computed here):
    Qdrant sends those to its inference service, and without one configured it answers a
    service error in these words (500 / gRPC INTERNAL); applications test for them to fall
    back to sending vectors."""
    return InternalError(
        "Service internal error: InferenceService is not initialized. Please check if it was "
        "properly configured and initialized during startup."
    )


def shard_key_not_found(key: object) -> BadRequest:
    """A request's shard key the collection lacks (Qdrant's `get_shard_ids_by_key`)."""
    return BadRequest(f"Bad request: Shard key {key} not found")


def no_shard_key_nor_fallback(target: object, fallback: object) -> NotFound:
    """Neither key of a selector with a fallback exists; Qdrant's `CollectionError::NotFound`
    appends its own " not found" to the description, hence the doubled words."""
    return NotFound(
        f"Not found: Neither target shard key {target} nor fallback shard key {fallback} "
        "exist not found"
    )


def collection_not_found(name: str) -> NotFound:
    return NotFound(f"Not found: Collection `{name}` doesn't exist!")


def collection_exists(name: str) -> Conflict:
    return Conflict(f"Wrong input: Collection `{name}` already exists!")


def alias_name_taken(name: str) -> BadRequest:
    """A collection named like an existing alias: Qdrant answers bad input (400), not 409."""
    return BadRequest(
        f"Wrong input: Can't create collection with name {name}. Alias with the same name "
        "already exists"
    )


def point_not_found(point_id: object) -> NotFound:
    return NotFound(f"Not found: No point with id {point_id} found")


def point_does_not_exist(point_id: object) -> NotFound:
    """The wording (and typo) of Qdrant's GET /points/{id}."""
    return NotFound(f"Not found: Point with id {point_id} does not exists!")


class StorageCorruption(InternalError):
    """Bytes that were verified once no longer check out (media damage while running)."""


def os_error_text(exc: BaseException) -> str:
    """An error's text as Qdrant words an OS error: its reason and number, never the file's
    path (which would leak the storage layout); any other error's own text."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} (os error {exc.errno})"
    return str(exc)


def failure_text(exc: BaseException) -> str:
    """What went wrong, for a report: `os_error_text`, else the error's kind."""
    return os_error_text(exc) or type(exc).__name__
