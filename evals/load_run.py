"""The load itself: steady clients on every channel, each a closed loop (look for openings, book one, next
customer), and bursts of clients from all channels released at one instant at the same popular slot."""
from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx2

from evals.load_channels import (
    ATTEMPT_TIMEOUT,
    Balancer,
    Outcome,
    PageConversation,
    StaffConversation,
    book_with_retries,
    find_with_retries,
)
from evals.load_mcp import McpConversation
from evals.load_plan import Offer, People, Wish, any_day, popular_days

AGENTS, VISITORS, STAFF = "MCP agents", "page visitors", "staff API"
CHANNELS = (AGENTS, VISITORS, STAFF)


@dataclass(frozen=True)
class Scale:
    seconds: float  # of load
    clients: dict[str, int]  # steady clients per channel
    bursts: int
    burst_size: int  # clients per burst, spread over the channels


def visitor_addresses() -> Iterator[str]:
    """127.1.0.1, 127.1.0.2, ...: a loopback address of its own for every page visit."""
    for n in itertools.count(1):
        yield f"127.{1 + n // 62_500}.{n // 250 % 250}.{n % 250 + 1}"


class LoadRun:
    """Drives every client against the servers through one client-side balancer; collects each request's outcome."""

    def __init__(self, offers: list[Offer], bases: list[str], scale: Scale, bursts: list[tuple[Offer, str]],
                 rng: random.Random):
        self.offers, self.scale, self.burst_targets, self.rng = offers, scale, bursts, rng
        self.balancer = Balancer(bases)
        self.people = People()
        self.hot = {o.service: popular_days(rng, 2) for o in offers}
        self.addresses = visitor_addresses()
        self.outcomes: list[Outcome] = []
        self.burst_log: list[tuple[Offer, str, int]] = []  # each burst's slot and how many of its clients booked it
        self.reads = dict.fromkeys(CHANNELS, 0)
        self.unclear_reads: list[str] = []
        self._mcp: dict[str, httpx2.AsyncClient] = {}
        self._staff: httpx2.AsyncClient | None = None

    async def run(self, started: float, until: float) -> None:
        limits = httpx2.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx2.AsyncClient(timeout=ATTEMPT_TIMEOUT, limits=limits) as staff:
            self._staff = staff
            self._mcp = {o.slug: httpx2.AsyncClient(headers={"Authorization": f"Bearer {o.api_key}"},
                                                    timeout=ATTEMPT_TIMEOUT, limits=limits) for o in self.offers}
            try:
                steady = [self.steady(channel, until) for channel in CHANNELS
                          for _ in range(self.scale.clients[channel])]
                gap = (until - started) / max(1, self.scale.bursts)
                bursts = [self.burst(started + (k + 0.5) * gap, k) for k in range(self.scale.bursts)]
                await asyncio.gather(*steady, *bursts)
            finally:
                for http in self._mcp.values():
                    await http.aclose()

    def conversation(self, channel: str, offer: Offer) -> AbstractAsyncContextManager[Any]:
        if channel == AGENTS:
            return McpConversation(self._mcp[offer.slug], self.balancer)
        if channel == VISITORS:
            return PageConversation(self.balancer, next(self.addresses))
        return StaffConversation(self._staff, self.balancer)

    def wish(self, channel: str, offer: Offer, starts_at: str, burst: bool = False) -> Wish:
        """Agents' callers give a phone; half the page's visitors only an email; staff enter both."""
        if channel == AGENTS:
            return self.people.wish(offer, starts_at, burst=burst)
        if channel == VISITORS:
            by_email = self.rng.random() < 0.5
            return self.people.wish(offer, starts_at, phone=not by_email, email=by_email, burst=burst)
        return self.people.wish(offer, starts_at, email=True, burst=burst)

    async def steady(self, channel: str, until: float) -> None:
        """One client after another on this channel until the end: find openings on a day, book one of them."""
        while time.monotonic() < until:
            offer = self.rng.choice(self.offers)
            day: date = any_day(self.rng, self.hot[offer.service])
            async with self.conversation(channel, offer) as conversation:
                self.reads[channel] += 1
                starts = await find_with_retries(conversation, offer, day, self.unclear_reads)
                if starts:
                    wish = self.wish(channel, offer, self.rng.choice(starts))
                    self.outcomes.append(await book_with_retries(channel, conversation, wish))

    async def burst(self, at: float, k: int) -> None:
        """burst_size clients from every channel, released together at one popular slot."""
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        offer, starts_at = self.burst_targets[k]
        channels = [CHANNELS[i % len(CHANNELS)] for i in range(self.scale.burst_size)]

        async def one(channel: str) -> Outcome:
            async with self.conversation(channel, offer) as conversation:
                wish = self.wish(channel, offer, starts_at, burst=True)
                outcome = await book_with_retries(channel, conversation, wish)
                self.outcomes.append(outcome)
                return outcome

        answers = await asyncio.gather(*(one(c) for c in channels))
        self.burst_log.append((offer, starts_at, sum(o.kind == "booked" for o in answers)))

