"""Routes of the Query API and the search endpoints older clients call (issue 4)."""

from __future__ import annotations

from starlette.routing import Route


def routes(prefix: str) -> list[Route]:
    return []
