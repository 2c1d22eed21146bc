"""Where Qdrant's validator says a field is, for the routes whose body is a request struct
flattened into a wrapper (`#[serde(flatten)] #[validate(nested)]`): the wrapper's field
still counts as one step of the path, so `limit: 0` on `POST .../points/search` is
`search_request.limit`, on `/points/scroll` `scroll_request.limit`, and in the third
search of a batch `searches[2].search_request.limit`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tessera.errors import UnprocessableEntity

VALIDATION = "Validation error in JSON body: ["


@contextmanager
def under(path: str) -> Iterator[None]:
    """Validation errors raised inside name their field from `path` on."""
    try:
        yield
    except UnprocessableEntity as exc:
        if exc.message.startswith(VALIDATION):
            exc.message = f"{VALIDATION}{path}.{exc.message[len(VALIDATION) :]}"
        raise
