"""The neighbours' rows of `nextslot bench tools`, against the real `nextslot serve` process: one business's
bookings through the staff API, one at a time, first alone and then while another business's clients storm its
slots again and again (each storm `racers` clients at one slot, released together); and its slot searches alone
and while a business at the config's limits has `FLOODERS` clients searching its costly calendar without a pause.

What it shows is fairness between tenants (server/admission.py, storage/gate.py, core/booking/search_budget.py,
the thread switch of runtime.py): another tenant's storm or flood should cost a neighbour no more than a share of
the machine, never a place in its line.
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
FLOODERS = 12  # the crowded business's clients searching at once, each again as soon as it is answered


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


async def measure_search_neighbour(server: ServerProcess, neighbour: Seeded, crowded: Seeded,
                                   samples: int) -> list[Row]:
    base = server.base
    mine = {"Authorization": f"Bearer {neighbour.api_key}"}
    theirs = {"Authorization": f"Bearer {crowded.api_key}"}
    limits = httpx2.Limits(max_connections=FLOODERS + 4, max_keepalive_connections=FLOODERS + 4)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as http:
        async def search_mine(watch: AsyncStopwatch) -> None:
            answer = await watch.time(lambda: http.get(f"{base}/v1/slots", headers=mine,
                                                       params={"service": "consultation", "limit": 20}))
            if answer.status_code != 200:
                raise BenchFailure(f"the neighbour's search answered {answer.status_code}: {answer.text[:300]}")
            await asyncio.sleep(PAUSE)

        alone, during = AsyncStopwatch(), AsyncStopwatch()
        for _ in range(samples):
            await search_mine(alone)
        calm, answered = asyncio.Event(), Counter[int]()

        async def flood() -> None:
            while not calm.is_set():
                answer = await http.get(f"{base}/v1/slots", headers=theirs, params={"service": "team", "limit": 50})
                answered[answer.status_code] += 1

        flooding = [asyncio.create_task(flood()) for _ in range(FLOODERS)]
        try:
            await asyncio.sleep(0.5)  # the flood is under way
            for _ in range(samples):
                await search_mine(during)
        finally:
            calm.set()
            await asyncio.gather(*flooding)
    if not answered[200]:
        raise BenchFailure(f"the crowded business's searches answered {dict(answered)}")
    told = ", ".join(f"{n} {status}" for status, n in sorted(answered.items()))
    return [
        Row("a neighbour's slot search, alone", len(alone.samples), ms(p50(alone.samples)), ms(p99(alone.samples)),
            note="staff API GET /v1/slots, the clinic's consultations, 20 openings: the reference for the row below"),
        Row(f"  while {FLOODERS} clients search a crowded business", len(during.samples), ms(p50(during.samples)),
            ms(p99(during.samples)),
            note=f"500 resources, one of each hundred needed; its answers meanwhile: {told}"
                 + (" (429: its search budget spent)" if answered[429] else "")),
    ]
