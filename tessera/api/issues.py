"""`GET /issues` and `DELETE /issues`: Qdrant's issues report (`{"issues": [...]}`, each
issue's `id`, `description`, `solution` and `timestamp`) from the collection layer's board
(tessera.collection.issues), and clearing it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tessera.api.auth import Access
from tessera.api.collections import toc_of
from tessera.api.middleware import ACCESS_SCOPE
from tessera.collection import issues


async def get_issues(request: Request) -> Callable[[], Any]:
    """All issues for global access; with access to some collections, theirs only."""
    toc = toc_of(request)
    access: Access | None = request.scope.get(ACCESS_SCOPE)

    def run() -> dict[str, Any]:
        found = issues.report(dict(toc.collections))
        if access is not None and access.collections is not None:
            found = [i for i in found if i.collection and access.can_read(i.collection)]
        return {"issues": [i.to_json() for i in found]}

    return run


async def clear_issues(request: Request) -> Callable[[], Any]:
    def run() -> bool:
        issues.clear()
        return True

    return run
