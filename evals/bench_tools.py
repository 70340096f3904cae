"""`nextslot bench tools`: what a caller waits for while an agent's tool runs.

Latency of `find_available_slots` and `book_appointment` end to end (client -> HTTP -> server -> core ->
PostgreSQL -> answer) through MCP streamable HTTP and through the Vapi tool webhook, on the clinic
example, against a real `nextslot serve` process (its own interpreter, as in production) and a
throwaway database. A voice caller hears silence while a tool runs: the aim is p99 < 50 ms, and for
MCP's book p99 < 15 ms, at most 2 ms over the plain webhook. Then the staff API (evals/bench_staff_api.py):
a booking end to end against bare SQL in the same run, and 50 clients racing for one slot.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from evals.bench_db import throwaway_database
from evals.bench_figures import BenchFailure, Row, latency_row, machine, print_table
from evals.bench_processes import ServerProcess, server_process
from nextslot.core.accounts.api_keys import create_api_key
from nextslot.core.accounts.voice_secrets import new_secret, set_secret
from nextslot.core.business.config import apply_config
from nextslot.core.results import Rejected
from nextslot.schemas.config import BusinessConfig
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn
from nextslot.storage.uow import SqlAlchemyUnitOfWork

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLINIC = EXAMPLES / "clinic.yaml"
TARGET_MS = 50
MCP_BOOK_TARGET_MS = 15
MCP_OVER_WEBHOOK_MS = 2  # what MCP may cost over the plain webhook for the same booking (p50)
RACERS = 50
WARM_UP = 5


class AsyncStopwatch:
    """Times awaited calls (wall clock: the caller's wait, server and network included)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.full_collections: list[float] = []

    async def time(self, call: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        try:
            return await call()
        finally:
            self.samples.append(time.perf_counter() - started)

    def gc_note(self) -> str:
        return "wall clock, call to answer"


def run_bench_tools(settings: Settings, quick: bool = False) -> int:
    samples = 30 if quick else 300
    with throwaway_database(settings, f"nextslot tools benchmark{' (quick)' if quick else ''}") as url:
        for line in machine(libpq_dsn(url)):
            print(line)
        clinic = seed(url)
        # one key makes every call here, faster than the default per-key budget allows: latency is measured
        unlimited = {"NEXTSLOT_RATE_LIMIT_PER_KEY": "100000/minute",
                     "NEXTSLOT_RATE_LIMIT_SLOT_SEARCHES_PER_BUSINESS": "100000/minute"}
        with server_process(url, unlimited) as server:
            rows = asyncio.run(measure(server, url, clinic, samples))
    if isinstance(rows, BenchFailure):
        print(f"FAIL {rows}")
        return 1
    print("the server ran as its own `nextslot serve` process; client and server shared this machine's cores")
    print()
    print_table(rows)
    return 0


@dataclass(frozen=True)
class Seeded:
    slug: str
    api_key: str
    vapi_secret: str
    business_id: int


def seed(url: str, example: Path = CLINIC) -> Seeded:
    """An example business (the clinic by default), an API key for MCP and the staff API, and a Vapi secret for
    its webhook."""
    engine = engine_for(url, pool_size=1)
    try:
        factory = build_session_factory(engine)
        config = BusinessConfig.model_validate(yaml.safe_load(example.read_text()))
        applied = apply_config(SqlAlchemyUnitOfWork(factory), config)
        if isinstance(applied, Rejected):
            raise BenchFailure(applied.message)
        secret = new_secret()
        set_secret(SqlAlchemyUnitOfWork(factory), applied.business_id, "vapi", secret)
        key = create_api_key(SqlAlchemyUnitOfWork(factory), applied.business_id, "bench")
        return Seeded(config.business.slug, key, secret, applied.business_id)
    finally:
        engine.dispose()


def phones() -> Iterator[str]:
    return (f"+4479112{n:05d}" for n in itertools.count())


def days_ahead(n: int, first: int) -> list[str]:
    """n dates cycling through four weeks from `first` days ahead (the clinic books 60 days out)."""
    today = datetime.now(UTC).date()
    return [(today + timedelta(days=first + i % 28)).isoformat() for i in range(n)]


async def measure(server: ServerProcess, url: str, clinic: Seeded, samples: int) -> list[Row] | BenchFailure:
    """Both channels, one after the other, then the staff API; a wrong answer comes back as the failure (not
    raised: the MCP client's task group would wrap it in exception groups)."""
    from evals.bench_staff_api import measure_staff_api  # it builds on this module's seeding and stopwatch

    try:
        numbers = phones()
        rows = await measure_channels(server.base, clinic, samples, numbers)
        return rows + await measure_staff_api(server, url, samples, RACERS, numbers)
    except* BenchFailure as group:
        failure = group
    while isinstance(failure, BaseExceptionGroup):
        failure = failure.exceptions[0]
    return failure


async def measure_channels(base: str, clinic: Seeded, samples: int, numbers: Iterator[str]) -> list[Row]:
    headers = {"Authorization": f"Bearer {clinic.api_key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
            Client(streamable_http_client(f"{base}/mcp", http_client=http)) as mcp:

        async def via_mcp(name: str, args: dict[str, Any]) -> dict[str, Any]:
            result = await mcp.call_tool(name, args)
            if result.is_error:
                raise BenchFailure(f"{name} over MCP failed: {result.content[0].text}")
            return result.structured_content

        rows = await measure_channel("MCP streamable HTTP", via_mcp, samples, numbers, first_day=2)

    async with httpx2.AsyncClient(headers={"x-vapi-secret": clinic.vapi_secret}, timeout=30) as http:

        async def via_vapi(name: str, args: dict[str, Any]) -> dict[str, Any]:
            # each booking a caller of its own, booking for the number they call from: one number's calls make only
            # a day's bookings (NEXTSLOT_PUBLIC_BOOKINGS_PER_DAY), as one caller's would
            call = {"id": "bench-call", **({"customer": {"number": args["phone"]}} if "phone" in args else {})}
            message = {"type": "tool-calls", "call": call,
                       "toolCallList": [{"id": uuid.uuid4().hex, "name": name, "arguments": args}]}
            response = await http.post(f"{base}/webhooks/vapi/{clinic.slug}", json={"message": message})
            result = response.json()["results"][0] if response.status_code == 200 else {"error": response.text}
            if "result" not in result:
                raise BenchFailure(f"{name} over the Vapi webhook failed: {result['error']}")
            return json.loads(result["result"])

        rows += await measure_channel("Vapi webhook", via_vapi, samples, numbers, first_day=30)
    mcp_book, webhook_book = rows[1], rows[3]
    over = float(mcp_book.p50.removesuffix(" ms")) - float(webhook_book.p50.removesuffix(" ms"))
    rows.insert(4, Row("  MCP's cost over the webhook (book p50)", p50=f"{over:+.1f} ms",
                       target=f"<= {MCP_OVER_WEBHOOK_MS} ms", verdict="ok" if over <= MCP_OVER_WEBHOOK_MS else "OVER",
                       note="the same booking through the official MCP client (its output-schema check included) "
                            "and through the webhook"))
    return rows


async def measure_channel(label: str, call: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
                          samples: int, numbers: Iterator[str], first_day: int) -> list[Row]:
    """Find a day's openings `samples` times, then book that many of them, one caller after another."""
    dates = days_ahead(samples + WARM_UP, first_day)
    finds = AsyncStopwatch()
    for i, day in enumerate(dates):
        args = {"service": "consultation", "date": day, "limit": 20}
        await (call("find_available_slots", args) if i < WARM_UP else finds.time(
            lambda: call("find_available_slots", args)))
    openings: dict[str, None] = {}  # untimed: enough distinct openings to book, mornings and afternoons
    for day in dict.fromkeys(dates):
        for after in (None, "13:30"):
            found = await call("find_available_slots", {"service": "consultation", "date": day, "limit": 20,
                                                        "earliest_time": after})
            # openings on the half hour only: a booking (20 min + 5 min buffer) then never blocks the next
            openings |= dict.fromkeys(s["starts_at"] for s in found["slots"] if s["starts_at"][14:16] in ("00", "30"))
    if len(openings) < samples + WARM_UP:
        raise BenchFailure(f"only {len(openings)} openings to book")
    books, outcomes = AsyncStopwatch(), []
    for i, start in enumerate(list(openings)[: samples + WARM_UP]):
        args = {"service": "consultation", "starts_at": start, "customer_name": "Bench Caller",
                "phone": next(numbers)}
        answer = await (call("book_appointment", args) if i < WARM_UP else books.time(
            lambda: call("book_appointment", args)))
        if i >= WARM_UP:
            outcomes.append(answer["outcome"])
    booked = outcomes.count("booked")
    return [
        latency_row(f"{label}: find_available_slots", finds, TARGET_MS, "one day of GP consultations"),
        latency_row(f"{label}: book_appointment", books, MCP_BOOK_TARGET_MS if label.startswith("MCP") else TARGET_MS,
                    f"{booked} booked, {len(outcomes) - booked} slot_taken"),
    ]


if __name__ == "__main__":
    sys.exit(run_bench_tools(Settings(), quick="--quick" in sys.argv))
