"""One tenant cannot stop another: a burst of one business's bookings, every one of them stuck at the database, does
not keep another business's booking from being answered at once, on a real server with real connections and the
real database gate; and once the stuck burst can go on, every one of its requests is answered as it should be."""
from __future__ import annotations

import asyncio
import time

import httpx2
from sqlalchemy import text

from nextslot.core.service import BookingService
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.gate import DatabaseGate
from tests.conftest import LiveServer

BURST = 60  # more than the server's 40 worker threads


def booking(name: str) -> dict:
    return {"service": "consultation", "starts_at": "2026-11-24T09:00:00Z", "resources": ["dr-patel"],
            "customer": {"name": name, "phone": "+442079460958"}}


def test_a_burst_stuck_at_the_database_does_not_stop_another_tenant_s_booking(session_factory, clock, make_business,
                                                                              api_key):
    busy, other = make_business("clinic"), make_business("clinic")
    busy_key, other_key = api_key(busy), api_key(other)
    gate = DatabaseGate(Settings().database_places())
    app = create_app(Settings(), service=BookingService(session_factory, clock=clock, gate=gate))
    locker = session_factory()
    try:
        # the busy business's resources, locked as a long transaction would: each booking of its burst waits here
        locker.execute(text("select id from resources where business_id = :b for update"), {"b": busy})
        with LiveServer(app) as server:
            answers, other_answer = asyncio.run(burst_then_other(server.url, busy_key, other_key, gate, locker))
    finally:
        locker.rollback()
        locker.close()
    assert other_answer.status_code == 201, other_answer.text
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * (BURST - 1), statuses  # one booked, every other one told the time is taken
    assert all(answer.json()["alternatives"] for answer in answers if answer.status_code == 409)


async def burst_then_other(url: str, busy_key: str, other_key: str, gate: DatabaseGate,
                           locker) -> tuple[list[httpx2.Response], httpx2.Response]:
    limits = httpx2.Limits(max_connections=BURST + 5)
    async with httpx2.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        stuck = [asyncio.create_task(client.post("/v1/bookings", json=booking(f"Caller {n}"),
                                                 headers={"Authorization": f"Bearer {busy_key}"}))
                 for n in range(BURST)]
        deadline = time.monotonic() + 20
        while gate.busy < gate.size - 1:  # the busy tenant holds every place it may, all of them stuck
            assert time.monotonic() < deadline, "the burst never reached the database"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # and the rest of the burst has arrived and is waiting
        other = await client.post("/v1/bookings", json=booking("Someone else"), timeout=15,
                                  headers={"Authorization": f"Bearer {other_key}"})
        locker.rollback()  # the burst goes on
        return await asyncio.gather(*stuck), other
