"""Rate limits, one mechanism (the `limits` library, moving windows): per client address on the public pages
and the console sign-in, per API key on /v1 and /mcp.

Counted in memory per process: N server processes allow N times a rate; a shared limit belongs in the proxy in
front (the day's budgets of what a public sender makes are counted in the database: server/public_writes.py). The
counters live on the app (`app.state.rate_limits`), so tests and several apps in one process never share them.
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from nextslot.schemas.api import ErrorDetail
from nextslot.server.page_render import too_many_requests
from nextslot.server.rpc_errors import rpc_error
from nextslot.server.staff_api.errors import error_response
from nextslot.settings import Settings

API_PATHS = ("/v1", "/mcp")
SWEEP_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    """`limits`' in-memory storage, its expired entries swept by one thread once a second. Left to itself it starts
    a 10 ms timer thread on any hit after the last one ended: a thread per API request at our rates, about 0.3 ms of
    CPU each on a 2-core machine. Counting ignores expired entries either way; the sweep only frees their memory."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = Sweeper(self)  # alive for good, so the storage never starts a timer of its own again
        self.timer.start()


class Sweeper(threading.Thread):
    """Sweeps a storage until it is gone (the thread holds it weakly, so an app thrown away takes it along)."""

    def __init__(self, storage: SweptMemoryStorage):
        super().__init__(name="rate limit sweeper", daemon=True)
        self._storage = weakref.ref(storage)

    def run(self) -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            storage = self._storage()
            if storage is None:
                return
            storage._MemoryStorage__expire_events()  # type: ignore[attr-defined]  # what its own timer runs
            del storage


class RateLimit:
    """One rate, e.g. "600/minute", counted per identity."""

    def __init__(self, rate: str, storage: Storage, name: str):
        self.item: RateLimitItem = parse(rate)
        self._name, self._window = name, MovingWindowRateLimiter(storage)

    def take(self, identity: str, cost: int = 1) -> int:
        """0 if the request may go ahead (and is counted), else the whole seconds until it could."""
        if self._window.hit(self.item, self._name, identity, cost=cost):
            return 0
        reset = self._window.get_window_stats(self.item, self._name, identity).reset_time
        return max(1, math.ceil(reset - time.time()))


@dataclass(frozen=True)
class RateLimits:
    pages: RateLimit  # a person booking never notices, a scraper slows down
    sign_in: RateLimit  # slow enough to stop password guessing
    api: RateLimit  # per key: one tenant's flood never slows another's
    codes: RateLimit  # one-time codes asked for by one address: each is a message sent to someone
    code_checks: RateLimit  # codes tried by one address, whichever contact they are for
    registrations: RateLimit  # OAuth clients registered from one address: each is a row that stays
    replies: RateLimit  # keyword replies (YES, C, STOP) answered per sending number: each answer is a text we pay for
    reply_notices: RateLimit  # the one "please wait" a number past its replies gets

    @classmethod
    def of(cls, settings: Settings) -> RateLimits:
        storage = SweptMemoryStorage()
        return cls(RateLimit("60/minute", storage, "pages"), RateLimit("10/minute", storage, "sign_in"),
                   RateLimit(settings.rate_limit_per_key, storage, "api"), RateLimit("10/hour", storage, "codes"),
                   RateLimit("30/hour", storage, "code_checks"),
                   RateLimit("20/hour", storage, "registrations"),
                   RateLimit(f"{max(1, settings.conversation_messages_per_number)}/hour", storage, "replies"),
                   RateLimit("1/hour", storage, "reply_notices"))


def rate_limits(request: Request) -> RateLimits:
    return request.app.state.rate_limits


def client_key(request: Request) -> str:
    # uvicorn already puts the real address here when the proxy in front is trusted (--forwarded-allow-ips)
    return network_of(request.client.host if request.client else "unknown")


def network_of(host: str) -> str:
    """Whom a budget counts by: an IPv4 address, or an IPv6 address's /64, which one household or one server
    is given whole (counted by address, a /64 would be 2^64 clients)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimitedRoute(APIRoute):
    """A public route: over its client's budget it answers 429 with Retry-After and a friendly page.

    A write (POST) costs more than a read: it is what a flood would be after.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            wait = rate_limits(request).pages.take(client_key(request), 3 if request.method == "POST" else 1)
            if wait > 0:
                return too_many_requests(request, wait)
            return await handler(request)

        return limited


class ApiRateLimit:
    """/v1 and /mcp, per API key (the bearer token, hashed: counted before the database is asked about it);
    requests without one count per client address. Over the limit: 429, Retry-After, and the error in the
    channel's own shape (JSON-RPC on /mcp)."""

    def __init__(self, app: ASGIApp, limit: RateLimit):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and any(path == p or path.startswith(p + "/") for p in API_PATHS):
            wait = self.limit.take(caller(scope))
            if wait > 0:
                await too_many(path, wait, self.limit.item)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def caller(scope: Scope) -> str:
    """The bearer token (hashed: never kept in clear), else the client's address."""
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "key:" + hashlib.sha256(token.strip().encode()).hexdigest()
    return address_of(scope)


def address_of(scope: Scope) -> str:
    client = scope.get("client")
    return "address:" + network_of(client[0] if client else "unknown")


def too_many(path: str, wait: int, rate: RateLimitItem) -> Response:
    message = f"Too many requests with this API key (at most {rate}); try again in {wait} seconds."
    headers = {"Retry-After": str(wait)}
    if path.startswith("/mcp"):
        return rpc_error(429, "rate_limited", message, headers=headers, retry_after=wait)
    return error_response(429, ErrorDetail(code="rate_limited", message=message), headers=headers)


def install(app: FastAPI, settings: Settings) -> None:
    app.state.rate_limits = RateLimits.of(settings)
    app.add_middleware(ApiRateLimit, limit=app.state.rate_limits.api)
