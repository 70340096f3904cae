"""Requests in progress, shared fairly between tenants, decided on the event loop before any worker thread.

A process has one pool of worker threads (anyio's, 40) for every request's blocking work. Left alone, a burst from
one business (a hundred agents calling at once, a page being scraped) takes every thread, and another business's
request waits behind the whole burst before its work can even start. So each request is admitted here first, as
the party it is for (`party_of`): a business's public pages, console or voice agent by the slug in the path, an
API key or access token (as the rate limits count it), anything else by the client's address. One party has at
most `tenant_concurrency` requests in progress; the whole process at most as many as it has threads. When a
request ends, the next one admitted is the first of the waiting party with the fewest in progress
(`nextslot.fair_share`). A waiting request costs no thread and no connection; one left waiting longer than
`timeout` is answered 503 with Retry-After, in its channel's shape.

A place is held for the request's work only: not while its body trickles in (a page's or a webhook's body is read
first; /v1 and /mcp check the key before they read one) and not while its answer goes out.

The party also rides along to the database gate (`storage.gate.PARTY`), which shares its places the same way.
"""
from __future__ import annotations

import asyncio
import threading
from collections import deque
from functools import partial
from time import perf_counter

from anyio.to_thread import current_default_thread_limiter
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nextslot.fair_share import FairShare, Waiter
from nextslot.server.outages import unavailable_to
from nextslot.server.rate_limit import address_of, caller
from nextslot.storage.gate import PARTY
from nextslot.telemetry import metrics

NEVER_HELD = ("/health", "/ready", "/metrics", "/static/")  # no thread, or a probe that must answer in a flood
# where a business's slug stands in a path, and whose requests those are: its public pages (and a customer's own
# assistant), its staff at the console, its voice agent mid-call. Each is a party of its own, so a scraped page
# never slows the business's own console or its phone line.
SLUG_AFTER = {"b": (1, "page"), "console": (1, "console"), "webhooks": (2, "voice")}
VOICE = ("vapi", "retell", "elevenlabs")
KEYED = ("/v1", "/mcp")


class Admission:
    def __init__(self, app: ASGIApp, per_party: int, timeout: float = 30.0):
        self.app, self.per_party, self.timeout = app, per_party, timeout
        self.share: FairShare | None = None  # sized from the thread pool at the first request, on the loop
        self._lock = threading.Lock()  # the app may be served from more than one loop (tests' clients)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(NEVER_HELD):
            await self.app(scope, receive, send)
            return
        party = party_of(scope)
        if not scope["path"].startswith(KEYED) and may_have_body(scope):
            receive = await read_ahead(receive)  # a trickled body holds a connection, never a tenant's place
        if not await self._admit(party):
            await unavailable_to(Request(scope))(scope, receive, send)
            return
        held = True

        def leave() -> None:
            nonlocal held
            if held:
                held = False
                with self._lock:
                    self._places().give_back(party)

        async def answering(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()  # the work is done: a client reading its answer slowly holds no one's place
            await send(message)

        token = PARTY.set(party)
        try:
            await self.app(scope, receive, answering)
        finally:
            PARTY.reset(token)
            leave()

    def _places(self) -> FairShare:
        if self.share is None:
            threads = int(current_default_thread_limiter().total_tokens)
            self.share = FairShare(threads, min(self.per_party, threads))
        return self.share

    async def _admit(self, party: str) -> bool:
        with self._lock:
            if self._places().take(party):
                return True
            came = asyncio.get_running_loop().create_future()
            waiter = self._places().join(party, partial(wake, came))
        started = perf_counter()
        try:
            await asyncio.wait_for(came, self.timeout)
        except TimeoutError:
            pass
        except BaseException:  # the client went away while it waited
            self._give_up(waiter, holding=True)
            raise
        finally:
            metrics.ADMISSION_WAITS.observe(perf_counter() - started)
        return self._give_up(waiter, holding=False)

    def _give_up(self, waiter: Waiter, holding: bool) -> bool:
        """Leave the line; True if a place was granted after all (kept, or given back when `holding` is over)."""
        with self._lock:
            places = self._places()
            if waiter.granted and holding:
                places.give_back(waiter.party)
            places.leave_line(waiter)
            return waiter.granted


def may_have_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


async def read_ahead(receive: Receive) -> Receive:
    """The whole body read before the request is admitted, then handed on as it came. The body limit outside
    (server/body_limit.py) cuts a body too large short while it is read here."""
    messages: deque[Message] = deque()
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        return messages.popleft() if messages else await receive()

    return replay


def wake(came: asyncio.Future[None]) -> None:
    """Called under the admission's lock, perhaps from another loop's thread: the waiter's own loop resolves it."""
    came.get_loop().call_soon_threadsafe(lambda: came.done() or came.set_result(None))


def party_of(scope: Scope) -> str:
    """Whose request this is, from what the request says before any thread or database is asked: the slug in the
    path, by audience; on /v1 and /mcp the bearer token (hashed); else the client's address."""
    path: str = scope["path"]
    parts = path.split("/", 4)  # "", first, second, third, rest
    first = parts[1] if len(parts) > 1 else ""
    at, audience = SLUG_AFTER.get(first, (0, ""))
    if at and len(parts) > at + 1 and parts[at + 1] and (first != "webhooks" or parts[2] in VOICE):
        return f"{audience}:{parts[at + 1]}"
    return caller(scope) if path.startswith(KEYED) else address_of(scope)  # as the API's rate limit counts


def install(app: FastAPI, per_party: int) -> None:
    app.add_middleware(Admission, per_party=per_party)
