"""`GET /issues` and `DELETE /issues`: Qdrant's issues report (`{"issues": [...]}`, each
issue's `id`, `description`, `solution` and `timestamp`) from the collection layer's board
(tessera.collection.issues), and clearing it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tessera.api.collections import toc_of
from tessera.collection import issues


async def get_issues(request: Request) -> Callable[[], Any]:
    toc = toc_of(request)
    return lambda: {"issues": [i.to_json() for i in issues.report(dict(toc.collections))]}


async def clear_issues(request: Request) -> Callable[[], Any]:
    def run() -> bool:
        issues.clear()
        return True

    return run
