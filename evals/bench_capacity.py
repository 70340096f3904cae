"""`nextslot bench capacity`: the figures a capacity plan is made of, with the bare-SQL baseline in the same run.

What one booking and one slot search cost in CPU, on the server (this process) and on the database (its backend,
read from /proc: the database must run on this machine), how much WAL and storage a booking adds, and how many
bookings a second the primary takes from many writers at once, through the core and in bare SQL. The README's
capacity section does the arithmetic from these.
"""
from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

import psycopg

from evals.bench_bare import OpenSlot, bare_book
from evals.bench_core import (
    booking,
    load,
    measure_writers,
    only_slots,
    open_slots,
    phone,
    plan_bare_writers,
    plan_writers,
)
from evals.bench_data import busy_config, seed_busy_calendar, team_service, writers_config
from evals.bench_db import throwaway_database
from evals.bench_figures import BenchFailure, columns, machine
from nextslot.core.results import Booked
from nextslot.core.service import BookingService
from nextslot.schemas.commands import SlotQuery
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn

WARM_UP = 5
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scale:
    bookings: int  # seeded
    searches: int
    books: int
    writers: int
    writer_bookings: int  # each


FULL = Scale(bookings=20_000, searches=300, books=300, writers=8, writer_bookings=150)
QUICK = Scale(bookings=2_000, searches=30, books=30, writers=4, writer_bookings=10)


@dataclass
class Cost:
    """Per call, averaged over a series: wall time, this process's CPU, the database backend's CPU, WAL written."""

    calls: int = 0
    wall: float = 0.0
    app_cpu: float = 0.0
    db_cpu: float = 0.0
    wal: int = 0

    def cells(self, name: str) -> list[str]:
        n = self.calls
        return [name, f"{n:,}", f"{self.wall / n * 1000:.1f} ms", f"{self.app_cpu / n * 1000:.1f} ms",
                f"{self.db_cpu / n * 1000:.1f} ms", f"{self.wal / n / 1024:.1f} KiB"]

    def per_second(self, cpu: float) -> str:
        return f"{self.calls / cpu:.0f}" if cpu else "?"


def run_bench_capacity(settings: Settings, quick: bool = False) -> int:
    """Measure what capacity planning needs in a throwaway database; 0 when every booking went through."""
    with throwaway_database(settings, f"nextslot capacity benchmark{' (quick)' if quick else ''}") as url:
        try:
            run_suite(url, QUICK if quick else FULL)
            return 0
        except BenchFailure as failure:
            print(f"FAIL {failure}")
            return 1


def run_suite(url: str, scale: Scale) -> None:
    dsn = libpq_dsn(url)
    for line in machine(dsn):
        print(line)
    phones = map(phone, itertools.count())
    print(f"load average at the start: {os.getloadavg()[0]:.1f} (on a shared machine the CPU figures hold better "
          f"than the rates)")
    engine = engine_for(url, pool_size=1)  # one session at a time: one backend, whose CPU is read from /proc
    try:
        svc = BookingService(build_session_factory(engine))
        busy, writers = load(engine, busy_config()), load(engine, writers_config(scale.writers))
        seed_busy_calendar(dsn, busy, scale.bookings, datetime.now(UTC).date(), random.Random(2026))
        with engine.connect() as conn:
            backend = conn.exec_driver_sql("select pg_backend_pid()").scalar_one()
        searches = measure_searches(svc, dsn, backend, busy, scale.searches)
        books, bare, stored = measure_bookings(svc, dsn, backend, busy, scale.books, phones)
        app_work = plan_writers(svc, writers, scale.writers, scale.writer_bookings, phones)
        bare_work = plan_bare_writers(svc, dsn, writers, scale.writers, scale.writer_bookings)
    finally:
        engine.dispose()
    _, app_rate = measure_writers(url, writers, app_work, "")
    _, bare_rate = measure_writers(url, writers, bare_work, "")

    print()
    print("\n".join(columns([
        ["per call, averaged", "n", "wall", "server CPU", "database CPU", "WAL"],
        searches.cells("find_slots: a week, all openings (2 of 5 + 5)"),
        books.cells("book: new customer, 2 resources, outbox"),
        bare.cells("bare SQL booking (psycopg, no app code)"),
    ], "<>>>>>")))
    print()
    print("\n".join(columns([
        ["capacity", "core", "bare SQL"],
        ["slot searches / s per server core", searches.per_second(searches.app_cpu), ""],
        ["slot searches / s per database core", searches.per_second(searches.db_cpu), ""],
        ["bookings / s per server core", books.per_second(books.app_cpu), bare.per_second(bare.app_cpu)],
        ["bookings / s per database core", books.per_second(books.db_cpu), bare.per_second(bare.db_cpu)],
        [f"bookings / s, {scale.writers} writers on this machine's {os.cpu_count()} cores", f"{app_rate:.0f}",
         f"{bare_rate:.0f}"],
        ["stored per booking (tables + indexes)", f"{stored / 1024:.1f} KiB", ""],
    ], "<>>")))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def measure_searches(svc: BookingService, dsn: str, backend: int, business_id: int, samples: int) -> Cost:
    now = datetime.now(UTC)
    queries = [SlotQuery(service=team_service(0), starts_from=w, until=w + timedelta(days=7), limit=1000)
               for w in (now + timedelta(days=7 * (i % 12)) for i in range(samples + WARM_UP))]
    for query in queries[:WARM_UP]:
        only_slots(svc.find_slots(business_id, query))
    with costing(dsn, backend) as cost:
        for query in queries[WARM_UP:]:
            only_slots(svc.find_slots(business_id, query))
        cost.calls = samples
    return cost


def measure_bookings(svc: BookingService, dsn: str, backend: int, business_id: int, samples: int,
                     phones: Iterator[str]) -> tuple[Cost, Cost, float]:
    """`book` on open slots of one team, then the same bookings in bare SQL on the twin team."""
    app_slots = open_slots(svc, business_id, team_service(0), samples + WARM_UP)
    bare_slots = open_slots(svc, business_id, team_service(1), samples + WARM_UP)

    def book(slot: OpenSlot) -> Any:
        return svc.book(business_id, booking(team_service(0), slot.start, next(phones)))

    for slot in app_slots[:WARM_UP]:
        book(slot)
    size_before = stored_bytes(dsn)
    with costing(dsn, backend) as app:
        for slot in app_slots[WARM_UP:]:
            if not isinstance(result := book(slot), Booked):
                raise BenchFailure(f"book of an open slot at {slot.start} answered {result}")
        app.calls = samples
    stored = (stored_bytes(dsn) - size_before) / samples
    with psycopg.connect(dsn, autocommit=True, options="-c timezone=UTC") as conn:
        service_id, customer_id = conn.execute(
            "select (select id from services where business_id = %(b)s and key = %(k)s),"
            " (select min(id) from customers where business_id = %(b)s)", {"b": business_id, "k": team_service(1)},
        ).fetchone()
        raw = partial(bare_book, conn, business_id, service_id, customer_id)
        for i, slot in enumerate(bare_slots[:WARM_UP]):
            raw(slot, f"W{i}")
        with costing(dsn, conn.info.backend_pid) as bare:
            for i, slot in enumerate(bare_slots[WARM_UP:]):
                raw(slot, f"X{i}")
            bare.calls = samples
    return app, bare, stored


@contextmanager
def costing(dsn: str, backend: int) -> Iterator[Cost]:
    """Time the block: wall clock, this process's CPU, the backend's CPU and the WAL written meanwhile."""
    cost = Cost()
    wal, db, app, wall = wal_position(dsn), backend_cpu(backend), process_time(), perf_counter()
    yield cost
    cost.wall, cost.app_cpu = perf_counter() - wall, process_time() - app
    cost.db_cpu, cost.wal = backend_cpu(backend) - db, wal_position(dsn) - wal


def backend_cpu(pid: int) -> float:
    """Seconds of CPU a database backend has used (user + system), from /proc: the server must be local."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError as missing:
        raise BenchFailure("the database's processes are not visible here: run it on this machine") from missing
    return (int(fields[11]) + int(fields[12])) / TICK


def wal_position(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("select pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]


def stored_bytes(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("select sum(pg_total_relation_size(c.oid))::bigint from pg_class c"
                            " where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace").fetchone()[0]
