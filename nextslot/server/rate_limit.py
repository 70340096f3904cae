"""Per-client token buckets for the public pages: a person booking never notices, a scraper slows down.

In-process: each server process counts on its own, which is enough to blunt floods; a shared limit
belongs in the proxy in front. The buckets live on the app (`app.state.page_rate_limit`), so tests and
several apps in one process never share them.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from nextslot.server.page_render import too_many_requests


class TokenBucket:
    """`capacity` requests at once per key, refilled at `per_second`; full buckets are forgotten."""

    def __init__(self, capacity: float = 60, per_second: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000):
        self.capacity, self.per_second, self._clock, self._max_keys = capacity, per_second, clock, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """0 if the request may go ahead (and pay), else the seconds until it could."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.per_second)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                return (cost - tokens) / self.per_second
            self._buckets[key] = (tokens - cost, now)
            if len(self._buckets) > self._max_keys:
                self._forget_full(now)
            return 0.0

    def _forget_full(self, now: float) -> None:
        full = [k for k, (tokens, then) in self._buckets.items()
                if tokens + (now - then) * self.per_second >= self.capacity]
        for key in full:
            del self._buckets[key]


def bucket_for(request: Request) -> TokenBucket:
    state = request.app.state
    bucket = getattr(state, "page_rate_limit", None)
    if bucket is None:
        bucket = state.page_rate_limit = TokenBucket()
    return bucket


def client_key(request: Request) -> str:
    # uvicorn already puts the real address here when the proxy in front is trusted (--forwarded-allow-ips)
    return request.client.host if request.client else "unknown"


class RateLimitedRoute(APIRoute):
    """A public route: over its client's budget it answers 429 with Retry-After and a friendly page.

    A write (POST) costs more than a read: it is what a flood would be after.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            cost = 3.0 if request.method == "POST" else 1.0
            wait = bucket_for(request).take(client_key(request), cost)
            if wait > 0:
                return too_many_requests(request, math.ceil(wait))
            return await handler(request)

        return limited
