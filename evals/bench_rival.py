"""`nextslot bench rival --floyd URL`: nextslot beside Floyd Engine (github.com/floyd-run/engine), the open-source
TypeScript booking engine for AI agents that issue 18 measured us against, through each one's own HTTP API.

Start Floyd Engine yourself, as its own README says, on the same PostgreSQL server as this benchmark's throwaway
database (so both feel the same disk and the same cores), and pass its address. The benchmark builds the same
calendar on both: one desk open round the clock with 30-minute bookings (Floyd: a resource, a policy and a
service; nextslot: a business), and a spare desk for warming up connections. Then, one client taking turns:

- a booking of an open slot, with an idempotency key, on each; nextslot's clinic booking (a GP and a room, a new
  customer, history, outbox) takes its turn too, to show what writing more costs;
- the open slots of a day, and of a week, on each, checked to be the same on both;
- 50 clients racing for one slot, released together, five rounds each: one booked, every other refused (nextslot's
  refusals carry the nearest open times, Floyd's do not).

Each server's CPU per request is read from /proc around every request (Linux; the server must run on this
machine). Nothing of Floyd's is part of this project: only its public HTTP API is used.
"""
from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2

from evals.bench_data import round_the_clock
from evals.bench_db import throwaway_database
from evals.bench_figures import BenchFailure, Row, machine, ms, p50, p99, print_table
from evals.bench_processes import ServerProcess, server_process
from evals.bench_staff_api import clinic_copy, independent_consultations, outcome, seed_business, slots_of
from evals.bench_tools import Seeded, phones
from evals.load_cpu import cpu_seconds
from nextslot.schemas.config import BusinessConfig
from nextslot.settings import Settings
from nextslot.storage.engine import libpq_dsn

SLOT = timedelta(minutes=30)
OPEN, CLOSE = 8, 20  # both calendars: every day, 08:00-20:00 UTC
PER_DAY = (CLOSE - OPEN) * 2
RACERS = 50
RACE_ROUNDS = 5
WARM_UP = 5
UNLIMITED = {"NEXTSLOT_RATE_LIMIT_PER_KEY": "100000/minute",
             "NEXTSLOT_RATE_LIMIT_SLOT_SEARCHES_PER_BUSINESS": "100000/minute"}


@dataclass
class Timed:
    """Wall-clock samples of one kind of request, and the server CPU they cost (summed per request from /proc:
    the clock tick is coarse, but the sum over hundreds of requests is not)."""

    samples: list[float] = field(default_factory=list)
    cpu: float = 0.0

    async def time(self, pid: int | None, call: Callable[[], Awaitable[httpx2.Response]]) -> httpx2.Response:
        before = cpu_seconds(pid) if pid else None
        started = time.perf_counter()
        answer = await call()
        self.samples.append(time.perf_counter() - started)
        after = cpu_seconds(pid) if pid else None
        if before is not None and after is not None:
            self.cpu += after - before
        return answer

    def cpu_note(self, pid: int | None) -> str:
        return f"server CPU {ms(self.cpu / len(self.samples))} a request" if pid else "server CPU not readable"


Call = tuple[Timed, int | None, Callable[[], Awaitable[httpx2.Response]]]  # where it is timed, whose CPU, the call


def listening_pid(url: str) -> int | None:
    """The process listening on the URL's loopback port, from /proc (None off Linux, or if it is not here)."""
    port = httpx2.URL(url).port or 80
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cells = line.split()
            if cells[3] == "0A" and int(cells[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{cells[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(str(fd.readlink()) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def resident_mb(pid: int | None) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    except OSError:
        return "?"
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return "?" if kb is None else f"{kb / 1024:.0f} MB"


class Floyd:
    """Floyd Engine through its HTTP API: a ledger with a desk and a spare desk, each the one resource of a
    service whose policy opens 08:00-20:00 every day for 30-minute bookings on a 30-minute grid."""

    def __init__(self, base: str, api_key: str | None):
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.pid = listening_pid(self.base)
        self.ledger = self.desk = self.spare = self.service = self.warm_up = ""

    async def post(self, http: httpx2.AsyncClient, path: str, body: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> httpx2.Response:
        return await http.post(f"{self.base}/v1{path}", json=body, headers={**self.headers, **(headers or {})})

    async def made(self, http: httpx2.AsyncClient, path: str, body: dict[str, Any] | None = None) -> str:
        answer = await self.post(http, path, body)
        if answer.status_code != 201:
            raise BenchFailure(f"Floyd: POST {path} answered {answer.status_code}: {answer.text[:300]}")
        return str(answer.json()["data"]["id"])

    async def set_up(self, http: httpx2.AsyncClient) -> None:
        self.ledger = await self.made(http, "/ledgers")
        at = f"/ledgers/{self.ledger}"
        self.desk = await self.made(http, f"{at}/resources", {"name": "desk", "timezone": "UTC"})
        self.spare = await self.made(http, f"{at}/resources", {"name": "spare", "timezone": "UTC"})
        policy = await self.made(http, f"{at}/policies", {"name": "round the clock", "config": {
            "schema_version": 1, "default_availability": "closed",
            "constraints": {"duration": {"allowed_minutes": [30]}, "grid": {"interval_minutes": 30},
                            "lead_time": {"max_days": 60}},
            "rules": [{"match": {"type": "weekly", "days": ["everyday"]},
                       "windows": [{"start": f"{OPEN:02d}:00", "end": f"{CLOSE:02d}:00"}]}]}})
        self.service = await self.made(http, f"{at}/services",
                                       {"name": "desk", "policyId": policy, "resourceIds": [self.desk]})
        self.warm_up = await self.made(http, f"{at}/services",
                                       {"name": "warm-up", "policyId": policy, "resourceIds": [self.spare]})

    def book(self, http: httpx2.AsyncClient, start: datetime, phone: str, spare: bool = False,
             ) -> Awaitable[httpx2.Response]:
        body = {"serviceId": self.warm_up if spare else self.service, "resourceId": self.spare if spare else self.desk,
                "startTime": start.isoformat(), "endTime": (start + SLOT).isoformat(), "status": "confirmed",
                "metadata": {"customerName": "Bench Caller", "customerPhone": phone}}
        return self.post(http, f"/ledgers/{self.ledger}/bookings", body, {"Idempotency-Key": uuid.uuid4().hex})

    def slots(self, http: httpx2.AsyncClient, day: datetime, days: int) -> Awaitable[httpx2.Response]:
        return self.post(http, f"/ledgers/{self.ledger}/services/{self.service}/availability/slots",
                         {"startTime": day.isoformat(), "endTime": (day + timedelta(days=days)).isoformat(),
                          "durationMs": int(SLOT.total_seconds() * 1000)})

    @staticmethod
    def open_starts(answer: httpx2.Response) -> list[str]:
        if answer.status_code != 200:
            raise BenchFailure(f"Floyd's slots answered {answer.status_code}: {answer.text[:300]}")
        return [instant(s["startTime"]) for r in answer.json()["data"] for s in r["slots"]]


class Nextslot:
    """nextslot's staff API on the same calendar (a business with the desk and the spare desk), and the clinic."""

    def __init__(self, server: ServerProcess, desk: Seeded, clinic: Seeded):
        self.base, self.pid = server.base, server.proc.pid if server.proc else None
        self.desk, self.clinic = desk, clinic

    def book(self, http: httpx2.AsyncClient, start: datetime, phone: str, service: str = "desk",
             business: Seeded | None = None) -> Awaitable[httpx2.Response]:
        body = {"service": service, "starts_at": start.isoformat(), "customer": {"name": "Bench Caller", "phone": phone}}
        return http.post(f"{self.base}/v1/bookings", json=body, headers={
            "Authorization": f"Bearer {(business or self.desk).api_key}", "Idempotency-Key": uuid.uuid4().hex})

    def slots(self, http: httpx2.AsyncClient, day: datetime, days: int) -> Awaitable[httpx2.Response]:
        return http.get(f"{self.base}/v1/slots", headers={"Authorization": f"Bearer {self.desk.api_key}"}, params={
            "service": "desk", "starts_from": day.isoformat(), "until": (day + timedelta(days=days)).isoformat(),
            "limit": 1000})


def desks() -> BusinessConfig:
    """The desk and the spare desk as a nextslot business, open as Floyd's policy is."""
    config = round_the_clock("rival-desk", ["desk", "spare"], {"desk": "desk", "warm-up": "spare"})
    hours = {day: [f"{OPEN:02d}:00-{CLOSE:02d}:00"] for day in config.model_dump()["hours"]}
    return BusinessConfig.model_validate({**config.model_dump(mode="json", exclude_none=True), "hours": hours})


def slot(first: datetime, n: int) -> datetime:
    """The n-th open half hour from `first` (a day's opening time), day after day."""
    return first + timedelta(days=n // PER_DAY) + (n % PER_DAY) * SLOT


def instant(text: str) -> str:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).isoformat()


def run_bench_rival(settings: Settings, floyd_url: str, floyd_key: str | None, quick: bool = False) -> int:
    samples = 40 if quick else 300
    with throwaway_database(settings, f"nextslot beside Floyd Engine{' (quick)' if quick else ''}") as url:
        for line in machine(libpq_dsn(url)):
            print(line)
        desk = seed_business(url, desks())
        clinic = seed_business(url, clinic_copy("rival-clinic"))
        with server_process(url, UNLIMITED) as server:
            try:
                rows = asyncio.run(measure(Nextslot(server, desk, clinic), Floyd(floyd_url, floyd_key), url, samples))
            except BenchFailure as failure:
                print(f"FAIL {failure}")
                return 1
    print_table(rows)
    return 0


async def measure(ours: Nextslot, floyd: Floyd, url: str, samples: int) -> list[Row]:
    print(f"Floyd Engine at {floyd.base} (process {floyd.pid or 'not found on this machine'}); nextslot at "
          f"{ours.base} (process {ours.pid}); one `nextslot serve` process and one Floyd process")
    numbers = phones()
    async with httpx2.AsyncClient(timeout=30) as http:
        await floyd.set_up(http)
        first = datetime.now(UTC).replace(hour=OPEN, minute=0, second=0, microsecond=0) + timedelta(days=1)
        rows = await measure_bookings(http, ours, floyd, url, first, samples, numbers)
        rows += await measure_slots(http, ours, floyd, first, min(samples, 100))
    rows += await measure_races(ours, floyd, first + timedelta(days=30), numbers)
    print(f"server memory after the run (resident): nextslot {resident_mb(ours.pid)}, Floyd {resident_mb(floyd.pid)}")
    return rows


async def measure_bookings(http: httpx2.AsyncClient, ours: Nextslot, floyd: Floyd, url: str, first: datetime,
                           samples: int, numbers: Iterator[str]) -> list[Row]:
    """The three bookings take turns, in a rotating order so none always goes first."""
    [consultations] = independent_consultations(url, (ours.clinic,), samples + WARM_UP)
    theirs, mine, clinic = Timed(), Timed(), Timed()
    for i in range(samples + WARM_UP):
        start = slot(first, i)
        calls: list[Call] = [
            (theirs, floyd.pid, lambda: floyd.book(http, start, next(numbers))),
            (mine, ours.pid, lambda: ours.book(http, start, next(numbers))),
            (clinic, ours.pid, lambda: ours.book(http, consultations[i].start, next(numbers), "consultation",
                                                 ours.clinic)),
        ]
        for answer in await in_turn(i, calls):
            if answer.status_code != 201:
                raise BenchFailure(f"a booking of an open slot answered {answer.status_code}: {answer.text[:300]}")
    ratio = p50(mine.samples) / p50(theirs.samples)
    return [
        Row("Floyd: POST /bookings (confirmed)", samples, ms(p50(theirs.samples)), ms(p99(theirs.samples)),
            note=f"lock the resource, policy, overlap check, booking + allocation + outbox, idempotency; "
                 f"{theirs.cpu_note(floyd.pid)}"),
        Row("nextslot: POST /v1/bookings, the desk", samples, ms(p50(mine.samples)), ms(p99(mine.samples)),
            "faster than Floyd", "ok" if ratio < 1 else "SLOWER",
            f"p50 {ratio:.2f}x Floyd's; a customer, history, outbox, idempotency, the view; {mine.cpu_note(ours.pid)}"),
        Row("nextslot: POST /v1/bookings, the clinic", samples, ms(p50(clinic.samples)), ms(p99(clinic.samples)),
            note=f"a GP and a room at once; p50 {p50(clinic.samples) / p50(theirs.samples):.2f}x Floyd's; "
                 f"{clinic.cpu_note(ours.pid)}"),
    ]


async def in_turn(i: int, calls: list[Call]) -> list[httpx2.Response]:
    """The calls one after another, the i-th time starting from a different one (none always goes first), timed once
    past the warm-up; their answers in the calls' order."""
    order = [*range(i % len(calls), len(calls)), *range(i % len(calls))]
    answers = {}
    for n in order:
        watch, pid, call = calls[n]
        answers[n] = await (call() if i < WARM_UP else watch.time(pid, call))
    return [answers[n] for n in range(len(calls))]


async def measure_slots(http: httpx2.AsyncClient, ours: Nextslot, floyd: Floyd, first: datetime,
                        samples: int) -> list[Row]:
    """A day and a week of open slots on the desk both have booked alike; both must answer the same starts."""
    rows = []
    for days in (1, 7):
        theirs, mine = Timed(), Timed()
        for i in range(samples + WARM_UP):
            day = (first + timedelta(days=i % 7)).replace(hour=0)
            a, b = await in_turn(i, [(theirs, floyd.pid, lambda: floyd.slots(http, day, days)),
                                     (mine, ours.pid, lambda: ours.slots(http, day, days))])
            their_starts, my_starts = Floyd.open_starts(a), [instant(s) for s in slots_of(b)]
            if sorted(their_starts) != sorted(my_starts):
                only = sorted(set(their_starts) ^ set(my_starts))[:4]
                raise BenchFailure(f"{days} day(s) from {day:%Y-%m-%d}: Floyd found {len(their_starts)} open slots, "
                                   f"nextslot {len(my_starts)} (not on both: {', '.join(only)}): the calendars "
                                   "differ, the figures would not compare")
        span = "a day" if days == 1 else "a week"
        ratio = p50(mine.samples) / p50(theirs.samples)
        rows += [
            Row(f"Floyd: open slots, {span}", samples, ms(p50(theirs.samples)), ms(p99(theirs.samples)),
                note=theirs.cpu_note(floyd.pid)),
            Row(f"nextslot: GET /v1/slots, {span}", samples, ms(p50(mine.samples)), ms(p99(mine.samples)),
                "faster than Floyd", "ok" if ratio < 1 else "SLOWER",
                f"p50 {ratio:.2f}x Floyd's; the same open starts; {mine.cpu_note(ours.pid)}"),
        ]
    return rows


async def measure_races(ours: Nextslot, floyd: Floyd, first: datetime, numbers: Iterator[str]) -> list[Row]:
    """Rounds take turns: Floyd's race, then nextslot's, each on 50 connections warmed up by a booking each."""
    theirs: list[float] = []
    mine: list[float] = []
    limits = httpx2.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as http:
        for n in range(RACE_ROUNDS):
            target = first + timedelta(days=3 * n)  # the spare desk's 50 warm-ups fill 3 days
            spare = [slot(target, k) for k in range(RACERS)]
            theirs.append(await race(
                [floyd.book(http, s, next(numbers), spare=True) for s in spare],
                lambda: floyd.book(http, target, next(numbers)), floyd_outcome, "refused (409)"))
            mine.append(await race(
                [ours.book(http, s, next(numbers), "warm-up") for s in spare],
                lambda: ours.book(http, target, next(numbers)), outcome, "slot_taken with alternatives"))
    ratio = statistics.median(mine) / statistics.median(theirs)
    rounds = RACE_ROUNDS

    def spread(walls: list[float]) -> str:
        return ", ".join(ms(w) for w in walls)

    return [
        Row(f"Floyd: {RACERS} clients racing for one slot", rounds, ms(statistics.median(theirs)), ms(max(theirs)),
            note=f"release to the last answer, median and worst of {rounds} rounds ({spread(theirs)}); "
                 f"1 booked, {RACERS - 1} refused with 409"),
        Row(f"nextslot: {RACERS} clients racing for one slot", rounds, ms(statistics.median(mine)), ms(max(mine)),
            "faster than Floyd", "ok" if ratio < 1 else "SLOWER",
            f"median {ratio:.2f}x Floyd's ({spread(mine)}); 1 booked, {RACERS - 1} slot_taken, each with the "
            "nearest open times"),
    ]


async def race(warm_ups: list[Awaitable[httpx2.Response]], booking: Callable[[], Awaitable[httpx2.Response]],
               judge: Callable[[httpx2.Response], str], refusal: str) -> float:
    """Warm every connection with a booking of its own, release all racers at once, and return the time from the
    release to the last answer; exactly one must win."""
    warm = await asyncio.gather(*warm_ups)
    if any(w.status_code != 201 for w in warm):
        raise BenchFailure(f"warm-up bookings answered {Counter(w.status_code for w in warm)}: {warm[0].text[:200]}")
    release = asyncio.Event()
    answered: list[float] = []

    async def racer() -> httpx2.Response:
        await release.wait()
        answer = await booking()
        answered.append(time.perf_counter())
        return answer

    tasks = [asyncio.create_task(racer()) for _ in range(RACERS)]
    await asyncio.sleep(0.2)  # every racer waiting at the gate
    released = time.perf_counter()
    release.set()
    outcomes = Counter(judge(a) for a in await asyncio.gather(*tasks))
    if outcomes != Counter({"booked": 1, refusal: RACERS - 1}):
        raise BenchFailure(f"{RACERS} racers for one slot: {dict(outcomes)}")
    return max(answered) - released


def floyd_outcome(answer: httpx2.Response) -> str:
    """Booked, or refused because the slot overlaps the winner's (a 409 for any other reason is not a lost race)."""
    if answer.status_code == 201:
        return "booked"
    if answer.status_code == 409 and answer.json().get("error", {}).get("code") == "allocation.overlap":
        return "refused (409)"
    return f"{answer.status_code} {answer.text[:80]}"
