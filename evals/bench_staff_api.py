"""The staff API's rows of `nextslot bench tools`: a booking through `POST /v1/bookings` end to end, interleaved with
the same booking in bare SQL (the reference measured in the same run, as `bench core` does), and many clients
racing over HTTP for one slot, released together.

Both run against the real `nextslot serve` process on businesses of their own: a copy of the clinic (a GP and a
room per booking, a new customer each time, history and outbox) and a desk only one booking can hold.
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import yaml

from evals.bench_bare import OpenSlot, bare_book
from evals.bench_core import open_slots
from evals.bench_data import crowded_config, storm_config
from evals.bench_figures import BenchFailure, Row, Stopwatch, ms, p50, p99
from evals.bench_processes import ServerProcess
from evals.bench_tools import CLINIC, AsyncStopwatch, Seeded, seed
from nextslot.core.service import BookingService
from nextslot.schemas.config import BusinessConfig
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn

BOOK_TARGET_MS = 8  # p50, end to end
RACE_TARGET_MS = 150  # from the release to the last answer
WARM_UP = 5


def clinic_copy(slug: str) -> BusinessConfig:
    """The clinic again under another slug: a calendar the tool channels leave alone."""
    config = yaml.safe_load(CLINIC.read_text())
    config["business"]["slug"] = slug
    config["business"]["details"].pop("conversations", None)  # its numbers belong to the first clinic
    return BusinessConfig.model_validate(config)


def seed_business(url: str, config: BusinessConfig) -> Seeded:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "business.yaml"
        path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
        return seed(url, path)


async def measure_staff_api(server: ServerProcess, url: str, samples: int, racers: int,
                            numbers: Iterator[str]) -> list[Row]:
    from evals.bench_neighbours import measure_neighbours, measure_search_neighbour  # they build on this module

    clinic, twin, neighbour = (seed_business(url, clinic_copy(slug))
                               for slug in ("clinic-staff-api", "clinic-bare-sql", "clinic-neighbour"))
    desk, crowded = seed_business(url, storm_config()), seed_business(url, crowded_config())
    return [*await measure_bookings(server.base, url, clinic, twin, samples, numbers),
            await measure_race(server, desk, racers, numbers),
            *await measure_neighbours(server, url, neighbour, desk, min(40, samples), 2 * racers, numbers),
            *await measure_search_neighbour(server, neighbour, crowded, min(40, samples))]


def independent_consultations(url: str, businesses: tuple[Seeded, ...], count: int) -> list[list[OpenSlot]]:
    """`count` open consultations of each business, none in another's way (`bench_core.open_slots`)."""
    engine = engine_for(url, pool_size=1)
    try:
        svc = BookingService(build_session_factory(engine))
        return [open_slots(svc, business.business_id, "consultation", count) for business in businesses]
    finally:
        engine.dispose()


async def measure_bookings(base: str, url: str, clinic: Seeded, twin: Seeded, samples: int,
                           numbers: Iterator[str]) -> list[Row]:
    """`POST /v1/bookings` on open slots of the clinic, each followed by a bare-SQL booking of an open slot of its
    twin: both feel the same machine at the same moments."""
    mine, theirs = independent_consultations(url, (clinic, twin), samples + WARM_UP)
    api, bare = AsyncStopwatch(), Stopwatch()
    with psycopg.connect(libpq_dsn(url), autocommit=True, options="-c timezone=UTC") as conn:
        service_id, customer_id = conn.execute(
            "select (select id from services where business_id = %(b)s and key = 'consultation'),"
            " (select min(id) from customers where business_id = %(b)s)", {"b": twin.business_id}).fetchone()
        if customer_id is None:
            customer_id = conn.execute(
                "insert into customers (business_id, name, phone, language, channels, no_show_count) values"
                " (%s, 'Bare SQL caller', '+447700900999', 'en', '[\"sms\"]', 0) returning id",
                (twin.business_id,)).fetchone()[0]
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {clinic.api_key}"}, timeout=30) as http:
            for i, (slot, other) in enumerate(zip(mine, theirs)):
                body = {"service": "consultation", "starts_at": slot.start.isoformat(),
                        "customer": {"name": "Bench Caller", "phone": next(numbers)}}
                post = http.post(f"{base}/v1/bookings", json=body)  # a coroutine: nothing is sent before it is awaited
                answer = await (post if i < WARM_UP else api.time(lambda: post))
                if answer.status_code != 201:
                    raise BenchFailure(f"POST /v1/bookings of an open slot answered {answer.status_code}: "
                                       f"{answer.text[:300]}")
                args = (conn, twin.business_id, service_id, customer_id, other, f"B{i}")
                if i < WARM_UP:
                    bare_book(*args)
                else:
                    bare.time(lambda: bare_book(*args))
    ratio = p50(api.samples) / p50(bare.samples)
    return [
        Row("staff API: POST /v1/bookings", len(api.samples), ms(p50(api.samples)), ms(p99(api.samples)),
            f"p50 < {BOOK_TARGET_MS} ms", "ok" if p50(api.samples) < BOOK_TARGET_MS / 1000 else "OVER",
            "a GP + a room, a new customer, history, outbox rows, the booking view; wall clock, call to answer"),
        Row("bare SQL booking (psycopg, no app code)", len(bare.samples), ms(p50(bare.samples)),
            ms(p99(bare.samples)), note="lock 2 resources, overlap check, insert booking + 2 claims; for reference"),
        Row("  staff API end to end / bare SQL", p50=f"{ratio:.1f}x", p99=f"{p99(api.samples) / p99(bare.samples):.1f}x",
            note="HTTP, auth, validation, the core's whole booking and the view, over the least a booking costs"),
    ]


async def measure_race(server: ServerProcess, desk: Seeded, racers: int, numbers: Iterator[str]) -> Row:
    """`racers` clients, each on its own connection (warmed up by booking a spare slot of its own), released
    together at one slot of the desk: one booking, every other client a 409 slot_taken with alternatives. The
    server's CPU time from the release to the last answer shows how much of the wait is its work."""
    base = server.base
    headers = {"Authorization": f"Bearer {desk.api_key}"}
    limits = httpx2.Limits(max_connections=racers, max_keepalive_connections=racers)
    async with httpx2.AsyncClient(headers=headers, timeout=30, limits=limits) as http:
        spare = slots_of(await http.get(f"{base}/v1/slots", params={"service": "warm-up", "limit": racers}))
        target = slots_of(await http.get(f"{base}/v1/slots", params={"service": "storm", "limit": 1}))
        if len(spare) < racers or not target:
            raise BenchFailure(f"only {len(spare)} warm-up slots for {racers} racers")

        def booking(service: str, start: str) -> dict[str, Any]:
            return {"service": service, "starts_at": start, "customer": {"name": "Racer", "phone": next(numbers)}}

        warm = await asyncio.gather(*(http.post(f"{base}/v1/bookings", json=booking("warm-up", s)) for s in spare))
        if any(r.status_code != 201 for r in warm):
            raise BenchFailure(f"warm-up bookings answered {Counter(r.status_code for r in warm)}")
        bodies = [booking("storm", target[0]) for _ in range(racers)]
        release = asyncio.Event()
        answered: list[float] = []

        async def race(body: dict[str, Any]) -> httpx2.Response:
            await release.wait()
            response = await http.post(f"{base}/v1/bookings", json=body)
            answered.append(time.perf_counter())
            return response

        tasks = [asyncio.create_task(race(body)) for body in bodies]
        await asyncio.sleep(0.2)  # every racer waiting at the gate
        cpu_before = server.cpu_seconds
        released = time.perf_counter()
        release.set()
        answers = await asyncio.gather(*tasks)
        cpu_after = server.cpu_seconds
    wall = max(answered) - released
    outcomes = Counter(outcome(a) for a in answers)
    expected = Counter({"booked": 1, "slot_taken with alternatives": racers - 1})
    if outcomes != expected:
        raise BenchFailure(f"{racers} racers for one slot: {dict(outcomes)}; expected {dict(expected)}")
    each = sorted(t - released for t in answered)
    busy = "" if cpu_before is None or cpu_after is None else \
        f" (its CPU meanwhile {ms(cpu_after - cpu_before)}, {ms((cpu_after - cpu_before) / racers)} an answer)"
    return Row(f"{racers} clients racing for one slot over HTTP", racers, ms(p50(each)), ms(p99(each)),
               f"all < {RACE_TARGET_MS} ms", "ok" if wall < RACE_TARGET_MS / 1000 else "OVER",
               f"all answered {ms(wall)} after the release, one server process{busy}; 1 booked, {racers - 1} "
               "slot_taken with alternatives")


def slots_of(response: httpx2.Response) -> list[str]:
    """The open starts a `GET /v1/slots` answered, as the API takes them back."""
    if response.status_code != 200:
        raise BenchFailure(f"GET /v1/slots answered {response.status_code}: {response.text[:300]}")
    starts = [s["starts_at"] for s in response.json()["slots"]]
    return [s if isinstance(s, str) else s["utc"] for s in starts]


def outcome(answer: httpx2.Response) -> str:
    if answer.status_code == 201:
        return "booked"
    body = answer.json()
    if answer.status_code == 409 and body["error"]["code"] == "slot_taken" and body.get("alternatives"):
        return "slot_taken with alternatives"
    return f"{answer.status_code} {body.get('error', {}).get('code')}"
