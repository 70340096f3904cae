"""The neighbours' rows of `nextslot bench tools`: one business's bookings through the staff API, one at a time,
first alone and then while another business's clients storm its slots again and again (each storm `racers`
clients at one slot, released together), against the real `nextslot serve` process.

What it shows is fairness between tenants (server/admission.py, storage/gate.py): a storm should cost its
neighbour no more than a share of the machine, never a place in the storm's line.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2

from evals.bench_figures import BenchFailure, Row, ms, p50, p99
from evals.bench_processes import ServerProcess
from evals.bench_staff_api import independent_consultations, outcome, slots_of
from evals.bench_tools import AsyncStopwatch, Seeded

PAUSE = 0.02  # between a neighbour's bookings: a person's pace is far slower, a storm's line far longer


async def measure_neighbours(server: ServerProcess, url: str, neighbour: Seeded, stormy: Seeded, samples: int,
                             racers: int, numbers: Iterator[str]) -> list[Row]:
    base = server.base
    [slots] = independent_consultations(url, (neighbour,), 2 * samples)
    starts = [slot.start.isoformat() for slot in slots]
    limits = httpx2.Limits(max_connections=racers + 4, max_keepalive_connections=racers + 4)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as http:
        mine = {"Authorization": f"Bearer {neighbour.api_key}"}
        theirs = {"Authorization": f"Bearer {stormy.api_key}"}
        targets = slots_of(await http.get(f"{base}/v1/slots", headers=theirs,
                                          params={"service": "storm", "limit": 100}))

        def booking(service: str, start: str) -> dict[str, Any]:
            return {"service": service, "starts_at": start, "customer": {"name": "Neighbour", "phone": next(numbers)}}

        async def book_mine(watch: AsyncStopwatch, start: str) -> None:
            answer = await watch.time(lambda: http.post(f"{base}/v1/bookings", json=booking("consultation", start),
                                                        headers=mine))
            if answer.status_code != 201:
                raise BenchFailure(f"the neighbour's booking answered {answer.status_code}: {answer.text[:300]}")

        alone, during = AsyncStopwatch(), AsyncStopwatch()
        for start in starts[:samples]:
            await book_mine(alone, start)
        calm = asyncio.Event()
        storms: list[Counter[str]] = []

        async def storm() -> None:
            for target in targets:
                if calm.is_set():
                    return
                answers = await asyncio.gather(*(http.post(f"{base}/v1/bookings", json=booking("storm", target),
                                                           headers=theirs) for _ in range(racers)))
                storms.append(Counter(outcome(answer) for answer in answers))

        storming = asyncio.create_task(storm())
        try:
            await asyncio.sleep(0.2)  # the first storm is under way
            for start in starts[samples:]:
                await book_mine(during, start)
                await asyncio.sleep(PAUSE)
        finally:
            calm.set()
            await storming
    expected = Counter({"booked": 1, "slot_taken with alternatives": racers - 1})
    if not storms or any(answers != expected for answers in storms):
        raise BenchFailure(f"storms of {racers} answered {[dict(answers) for answers in storms][:3]}")
    return [
        Row("a neighbour's booking, alone", len(alone.samples), ms(p50(alone.samples)), ms(p99(alone.samples)),
            note="staff API, a GP + a room, one at a time: the reference for the row below"),
        Row(f"  while another business storms ({racers})", len(during.samples), ms(p50(during.samples)),
            ms(p99(during.samples)),
            note=f"the same bookings during {len(storms)} storms of {racers} clients at one slot each, one after "
                 "another; each storm 1 booked, the rest slot_taken with alternatives"),
    ]
