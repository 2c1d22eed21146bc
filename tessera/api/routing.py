"""The router's dispatch with a memo of which route takes a request.

Starlette's router tries every route in order for every request; the points and query routes
come late in a table of ~80, so finding one cost ~20-25 us per request (a regex per route).
Which route matches in full depends only on the scope's method, path and root path, so the
first full match is remembered for those (the memo is bounded: it starts over when full).

A request no route matches in full is a 404, as Qdrant answers it: a known path with another
method too (Starlette's 405), and a path with a slash more or less than a route's (Starlette
redirects it; Qdrant has no such redirect).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import BaseRoute, Match, Router

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MEMO_SIZE = 4096


class MemoRouter:
    """Stands in for `router.middleware_stack` (what `Router.__call__` runs)."""

    def __init__(self, router: Router, size: int = MEMO_SIZE) -> None:
        self.router = router
        self.size = size
        self.routes: dict[tuple[str, str, str], BaseRoute] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router.app(scope, receive, send)
            return
        key = (scope["method"], scope["path"], scope.get("root_path", ""))
        known = self.routes.get(key)
        if known is not None:
            match, child_scope = known.matches(scope)
            if match is Match.FULL:
                await self._handle(known, child_scope, scope, receive, send)
                return
        for route in self.router.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                if len(self.routes) >= self.size:
                    self.routes.clear()
                self.routes[key] = route
                await self._handle(route, child_scope, scope, receive, send)
                return
        await self.router.not_found(scope, receive, send)

    async def _handle(
        self, route: BaseRoute, child_scope: Scope, scope: Scope, receive: Receive, send: Send
    ) -> None:
        # What Starlette's `Router.app` does with a full match.
        if "router" not in scope:
            scope["router"] = self.router
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)


def memoize_routes(router: Router) -> None:
    """Route `router`'s requests through a `MemoRouter`; a router with middleware of its
    own keeps Starlette's dispatch."""
    if router.middleware_stack == router.app:
        router.middleware_stack = MemoRouter(router)
