"""The load test's clients, one kind per channel: AI agents over MCP streamable HTTP (the SDK's own client, in
load_mcp.py), booking-page visitors posting the page's real form, and staff tools on the /v1 API.

Each reaches the server processes through a client-side load balancer (round robin, skipping a server that
just failed) and answers a booking attempt with a result, or raises `Retry` (a clear retryable error: the
connection failed, the server said 429/502/503/504 or a retryable tool error) or `Unclear` (anything else,
such as a bare 500): `book_with_retries` then tries again, with the same idempotency key, on the next server.
"""
from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol
from urllib.parse import unquote

import httpx2

from evals.load_plan import Offer, Wish

ATTEMPT_TIMEOUT = 20.0  # seconds an attempt may take before the client gives up on it (and retries)
DEADLINE = 45.0  # seconds a client keeps retrying one request before it reports the retryable error
RETRYABLE_STATUS = {429, 502, 503, 504}
SLOT_LINK = re.compile(r'/book\?at=([0-9A-Za-z%:.+-]+)')
ERROR_CODE = re.compile(r'data-code="([a-z_]+)"')


class Retry(Exception):
    """A clear retryable error: the same request, same key, may go to the next server after `after` seconds."""

    def __init__(self, reason: str, after: float = 0.0):
        super().__init__(reason)
        self.reason, self.after = reason, after


class Unclear(Exception):
    """An answer that is neither a result nor a clear retryable error: a client cannot know what happened."""


@dataclass(frozen=True)
class Outcome:
    """One booking request as its client saw it, retries included."""

    channel: str
    kind: str  # booked, slot_taken, rejected, gave_up (only retryable errors until the deadline)
    seconds: float  # first attempt to final answer
    detail: str  # the rejection's code, or the last retryable error
    retries: tuple[str, ...]  # why each failed attempt failed
    unclear: int  # of those, answers that were not a clear retryable error
    burst: bool
    key: str


class Balancer:
    """Client-side load balancing: round robin over the servers, skipping for a second one that just failed."""

    def __init__(self, bases: list[str]):
        self.bases = bases
        self._turn = itertools.count()
        self._down_until: dict[str, float] = {}

    def pick(self) -> str:
        now = time.monotonic()
        for _ in self.bases:
            base = self.bases[next(self._turn) % len(self.bases)]
            if self._down_until.get(base, 0) <= now:
                return base
        return self.bases[next(self._turn) % len(self.bases)]  # all down: try anyway

    def failed(self, base: str) -> None:
        self._down_until[base] = time.monotonic() + 1.0


class Conversation(Protocol):
    """One client's visit: look for openings, then book one."""

    async def find(self, offer: Offer, day: date) -> list[str]: ...

    async def book(self, wish: Wish) -> tuple[str, str]: ...


async def book_with_retries(channel: str, conversation: Conversation, wish: Wish) -> Outcome:
    """Book until there is a result; on a failed attempt wait a little and try again with the same key."""
    started = time.perf_counter()
    retries: list[str] = []
    unclear = 0
    while True:
        attempt = len(retries)
        try:
            kind, detail = await conversation.book(wish)
            return Outcome(channel, kind, time.perf_counter() - started, detail, tuple(retries), unclear, wish.burst,
                           wish.key)
        except Retry as failed:
            retries.append(failed.reason)
            wait = max(failed.after, min(0.1 * 2 ** attempt, 2.0))
        except Unclear as failed:
            retries.append(str(failed))
            unclear += 1
            wait = min(0.1 * 2 ** attempt, 2.0)
        if time.perf_counter() - started + wait > DEADLINE:
            return Outcome(channel, "gave_up", time.perf_counter() - started, retries[-1], tuple(retries), unclear,
                           wish.burst, wish.key)
        await asyncio.sleep(wait)


async def find_with_retries(conversation: Conversation, offer: Offer, day: date, unclear: list[str]) -> list[str]:
    """Openings on a day; a read that keeps failing just finds nothing (the client looks at another day).
    Answers that were not a clear retryable error go to `unclear`."""
    for attempt in range(4):
        try:
            return await conversation.find(offer, day)
        except Retry:
            pass
        except Unclear as failed:
            unclear.append(str(failed))
        await asyncio.sleep(0.1 * 2 ** attempt)
    return []


# --- HTTP answers -----------------------------------------------------------------------------------


async def send(balancer: Balancer, request: Callable[[str], Awaitable[httpx2.Response]]) -> httpx2.Response:
    """One attempt on the next server; a failed connection or a retryable status raises Retry."""
    base = balancer.pick()
    try:
        response = await request(base)
    except httpx2.TransportError as error:
        balancer.failed(base)
        raise Retry(type(error).__name__) from None
    if response.status_code in RETRYABLE_STATUS:
        raise Retry(str(response.status_code), after=retry_after(response))
    if response.status_code >= 500:
        raise Unclear(f"HTTP {response.status_code}")
    return response


def retry_after(response: httpx2.Response) -> float:
    try:
        return float(response.headers.get("retry-after", 0))
    except ValueError:
        return 0.0


class StaffConversation:
    """A staff tool on the /v1 API with the business's key: `GET /v1/slots`, `POST /v1/bookings`."""

    def __init__(self, http: httpx2.AsyncClient, balancer: Balancer):
        self._http, self._balancer = http, balancer

    async def __aenter__(self) -> StaffConversation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def find(self, offer: Offer, day: date) -> list[str]:
        params = {"service": offer.service, "starts_from": f"{day}T00:00:00Z", "until": f"{day + timedelta(days=1)}"
                  "T00:00:00Z", "limit": "50"}
        response = await send(self._balancer, lambda base: self._http.get(
            f"{base}/v1/slots", params=params, headers=auth(offer)))
        return [s["starts_at"]["utc"] for s in response.json()["slots"]] if response.status_code == 200 else []

    async def book(self, wish: Wish) -> tuple[str, str]:
        body = {"service": wish.offer.service, "starts_at": wish.starts_at, "intake": dict(wish.offer.answers),
                "customer": {"name": wish.name, "phone": wish.phone, "email": wish.email}}
        response = await send(self._balancer, lambda base: self._http.post(
            f"{base}/v1/bookings", json=body, headers={**auth(wish.offer), "Idempotency-Key": wish.key}))
        if response.status_code == 201:
            return "booked", response.json()["code"]
        code = response.json().get("error", {}).get("code", str(response.status_code))
        return ("slot_taken" if code == "slot_taken" else "rejected"), code


def auth(offer: Offer) -> dict[str, str]:
    return {"Authorization": f"Bearer {offer.api_key}"}


class PageConversation:
    """A visitor on the public booking page, from its own loopback address (all of 127/8 is loopback on Linux),
    so the page's per-address rate limit applies to each visitor as it would in production."""

    def __init__(self, balancer: Balancer, address: str):
        self._balancer = balancer
        # verify=False: plain HTTP on loopback, and loading the CA bundle would cost every visit ~100 ms of CPU
        transport = httpx2.AsyncHTTPTransport(local_address=address, verify=False)
        self._http = httpx2.AsyncClient(transport=transport, timeout=ATTEMPT_TIMEOUT, follow_redirects=False)

    async def __aenter__(self) -> PageConversation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def find(self, offer: Offer, day: date) -> list[str]:
        response = await send(self._balancer, lambda base: self._http.get(
            f"{base}/b/{offer.slug}/{offer.service}", params={"from": day.isoformat()}))
        return list(dict.fromkeys(unquote(at) for at in SLOT_LINK.findall(response.text)))

    async def book(self, wish: Wish) -> tuple[str, str]:
        offer = wish.offer
        form = {"at": wish.starts_at, "key": wish.key, "customer.name": wish.name,
                "customer.phone": wish.phone or "", "customer.email": wish.email or "",
                **{f"intake.{question}": answer for question, answer in offer.answers}}
        response = await send(self._balancer, lambda base: self._http.post(
            f"{base}/b/{offer.slug}/{offer.service}/book", data=form))
        if response.status_code == 303:  # on to the confirmation (or the pay link)
            return "booked", response.headers.get("location", "")
        if response.status_code == 409:
            return "slot_taken", "slot_taken"
        found = ERROR_CODE.search(response.text)
        return "rejected", found.group(1) if found else str(response.status_code)
