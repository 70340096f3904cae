"""`nextslot bench core`: latency and throughput of the booking core on real PostgreSQL.

Runs in a throwaway database (nextslot_bench_<random>) on the configured server, or on the
embedded one, created and migrated here and dropped at the end, even on error. Concurrent
measurements use forked processes, each with its own engine and connection, released together
at one instant: real parallelism, as separate server processes would give.
"""
from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from time import perf_counter
from typing import Any

import psycopg
import sqlalchemy

from evals.bench_bare import BareBooking, OpenSlot, bare_book
from evals.bench_children import Workload, free_connections, run_children
from evals.bench_data import (
    BUFFER,
    SEED_DAYS,
    TEAM_SIZE,
    busy_config,
    seed_busy_calendar,
    storm_config,
    team_service,
    writers_config,
)
from evals.bench_db import throwaway_database
from evals.bench_figures import BenchFailure, Row, Stopwatch, latency_row, machine, ms, p50, p99, print_table, verdict
from nextslot.core.business.config import apply_config
from nextslot.core.results import Booked, Rejected, Slots
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.schemas.config import BusinessConfig
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn
from nextslot.storage.uow import SqlAlchemyUnitOfWork

WARM_UP = 3  # untimed calls before each timed series: compiled statements, caches, prepared plans


@dataclass(frozen=True)
class Scale:
    bookings: int  # seeded into the busy business
    find_samples: int
    book_samples: int
    racers: int
    writers: int
    writer_bookings: int  # each


FULL = Scale(bookings=20_000, find_samples=200, book_samples=300, racers=100, writers=8, writer_bookings=150)
QUICK = Scale(bookings=2_000, find_samples=20, book_samples=30, racers=20, writers=8, writer_bookings=10)


def run_bench_core(settings: Settings, quick: bool = False) -> int:
    """Measure the booking core in a throwaway database; 0 when every correctness check held."""
    with throwaway_database(settings, f"nextslot core benchmark{' (quick)' if quick else ''}") as url:
        try:
            return run_suite(url, QUICK if quick else FULL)
        except BenchFailure as failure:
            print(f"FAIL {failure}")
            return 1


def run_suite(url: str, scale: Scale) -> int:
    dsn = libpq_dsn(url)
    for line in machine(dsn):
        print(line)
    phones = map(phone, itertools.count())
    engine = engine_for(url, pool_size=2)
    try:
        svc = BookingService(build_session_factory(engine))
        busy = load(engine, busy_config())
        storm = load(engine, storm_config())
        writers = load(engine, writers_config(scale.writers))
        started = perf_counter()
        seeded = seed_busy_calendar(dsn, busy, scale.bookings, datetime.now(UTC).date(), random.Random(2026))
        print(f"seeded {seeded.bookings:,} bookings ({seeded.claims:,} claims, {seeded.customers:,} customers) "
              f"from {seeded.first_day} to {seeded.last_day} on {seeded.resources} resources "
              f"in {perf_counter() - started:.1f} s")

        rows = [measure_find_slots(svc, busy, scale.find_samples)]
        rows += measure_book_against_bare_sql(svc, engine, dsn, busy, scale.book_samples, phones)
        storm_work = plan_storm(svc, storm, scale.racers, phones)
        writer_work = plan_writers(svc, writers, scale.writers, scale.writer_bookings, phones)
        bare_work = plan_bare_writers(svc, dsn, writers, scale.writers, scale.writer_bookings)
    finally:
        engine.dispose()  # no pooled connection of the parent may leak into a child

    racers = min(scale.racers, free_connections(dsn))
    if racers < 2:
        raise BenchFailure("the server has no free connections for the racers")
    if racers < scale.racers:
        print(f"note: the server has only {racers} free connections; racing {racers} callers, not "
              f"{scale.racers} (raise max_connections for the full storm)")
    storm_row, storm_ok = measure_storm(url, storm, storm_work[:racers])
    rows.append(storm_row)
    app_row, app_rate = measure_writers(url, writers, writer_work, "concurrent writers, own resources")
    bare_row, bare_rate = measure_writers(url, writers, bare_work, "bare SQL writers (psycopg, no app code)")
    rows += [app_row, bare_row, Row("  writers' rate / bare SQL's rate", p50=f"{app_rate / bare_rate:.0%}",
                                    target=">= 30%", verdict="ok" if app_rate >= 0.3 * bare_rate else "UNDER")]
    print()
    print_table(rows)
    if not storm_ok:
        print(f"FAIL {storm_row.note}")
        return 1
    return 0


# --- the measurements ----------------------------------------------------------------------------


def measure_find_slots(svc: BookingService, business_id: int, samples: int) -> Row:
    """Every open start of one service over a week, in weeks spread across the seeded calendar."""
    now = datetime.now(UTC)
    weeks = [now + timedelta(days=7 * (i % 12)) for i in range(samples)]
    queries = [SlotQuery(service=team_service(0), starts_from=w, until=w + timedelta(days=7), limit=1000)
               for w in weeks]
    for query in queries[:WARM_UP]:
        svc.find_slots(business_id, query)
    watch, found = Stopwatch(), []
    for query in queries:
        result = watch.time(lambda: svc.find_slots(business_id, query))
        if not isinstance(result, Slots):
            raise BenchFailure(f"find_slots answered {result}")
        found.append(len(result.slots))
    return latency_row("find_slots: a week, all openings", watch, target_ms=10,
                       note=f"one of {TEAM_SIZE} practitioners + one of {TEAM_SIZE} rooms, "
                            f"{statistics.mean(found):.0f} openings a week on average")


def measure_book_against_bare_sql(
    svc: BookingService, engine: sqlalchemy.Engine, dsn: str, business_id: int, samples: int, phones: Iterator[str]
) -> list[Row]:
    """`book` on open slots, interleaved with the same booking done in bare SQL, on a twin team."""
    app_slots = open_slots(svc, business_id, team_service(0), samples + WARM_UP)
    bare_slots = open_slots(svc, business_id, team_service(1), samples + WARM_UP)
    app, bare = Stopwatch(), Stopwatch()
    counts: list[int] = []
    with psycopg.connect(dsn, autocommit=True, options="-c timezone=UTC") as conn:
        service_id, customer_id = conn.execute(
            "select (select id from services where business_id = %(b)s and key = %(k)s),"
            " (select min(id) from customers where business_id = %(b)s)",
            {"b": business_id, "k": team_service(1)},
        ).fetchone()
        for i, (mine, theirs) in enumerate(zip(app_slots, bare_slots)):
            cmd = BookingCreate(service=team_service(0), starts_at=mine.start, source="bench",
                                customer=CustomerIn(name=f"Bench caller {i}", phone=next(phones)))
            book = partial(svc.book, business_id, cmd)
            raw = partial(bare_book, conn, business_id, service_id, customer_id, theirs, f"X{i}")
            if i < WARM_UP:
                result = book()
                raw()
            else:
                with counting(engine) as statements:
                    result = app.time(book)
                counts.append(len(statements))
                bare.time(raw)
            if not isinstance(result, Booked):
                raise BenchFailure(f"book of an open slot at {mine.start} answered {result}")
    overhead = p50(app.samples) / p50(bare.samples)
    ratio = Row("  application overhead (book / bare)", p50=f"{overhead:.1f}x",
                p99=f"{p99(app.samples) / p99(bare.samples):.1f}x", target="p50 <= 3x",
                verdict="ok" if overhead <= 3 else "OVER")
    return [
        latency_row("book: uncontended, new customer", app, target_ms=10,
                    note=f"a practitioner + a room, history, 3 outbox rows, the booking view; "
                         f"{statistics.median(counts):.0f} SQL statements (+ begin, commit)"),
        latency_row("bare SQL booking (psycopg, no app code)", bare,
                    note="lock 2 resources, overlap check, insert booking + 2 claims"),
        ratio,
    ]


def open_slots(svc: BookingService, business_id: int, service: str, count: int) -> list[OpenSlot]:
    """`count` open slots sharing no resource at overlapping times, so each stays open after the others."""
    chosen: list[OpenSlot] = []
    taken: dict[int, list[tuple[datetime, datetime]]] = {}
    now = datetime.now(UTC)
    for week in (now + timedelta(days=7 * i) for i in range(SEED_DAYS // 7 + 1)):
        query = SlotQuery(service=service, starts_from=week, until=week + timedelta(days=7), limit=1000)
        for s in only_slots(svc.find_slots(business_id, query)):
            start = s.starts_at.utc
            slot = OpenSlot(start, s.ends_at, (start, s.ends_at + timedelta(minutes=BUFFER)),
                            tuple(r.id for r in s.resources))
            lo, hi = slot.occupied
            if all(end <= lo or begin >= hi for rid in slot.resource_ids for begin, end in taken.get(rid, ())):
                chosen.append(slot)
                for rid in slot.resource_ids:
                    taken.setdefault(rid, []).append(slot.occupied)
                if len(chosen) == count:
                    return chosen
    raise BenchFailure(f"only {len(chosen)} independent open slots for {service}; wanted {count}")


def plan_storm(svc: BookingService, business_id: int, racers: int, phones: Iterator[str]) -> list[Workload]:
    """Every racer warms up on its own slot of the spare desk, then all want the same slot of the desk."""
    soon = datetime.now(UTC) + timedelta(hours=1)
    target = only_slots(svc.find_slots(business_id, SlotQuery(service="storm", starts_from=soon, limit=1)))[0]
    spare = only_slots(svc.find_slots(business_id, SlotQuery(service="warm-up", starts_from=soon,
                                                             until=soon + timedelta(days=7), limit=racers)))
    if len(spare) < racers:
        raise BenchFailure(f"only {len(spare)} warm-up slots for {racers} racers")
    return [([booking("warm-up", spare[i].starts_at.utc, next(phones))],
             [booking("storm", target.starts_at.utc, next(phones))]) for i in range(racers)]


def plan_writers(
    svc: BookingService, business_id: int, writers: int, each: int, phones: Iterator[str]
) -> list[Workload]:
    """Each writer books `each` consecutive open slots on its own desk (plus one to warm up)."""
    soon = datetime.now(UTC) + timedelta(hours=1)
    work = []
    for w in range(writers):
        slots = only_slots(svc.find_slots(business_id, SlotQuery(service=f"lane-{w}", starts_from=soon,
                                                                 until=soon + timedelta(days=14), limit=each + 1)))
        if len(slots) < each + 1:
            raise BenchFailure(f"only {len(slots)} open slots for writer {w}")
        cmds = [booking(f"lane-{w}", s.starts_at.utc, next(phones)) for s in slots]
        work.append((cmds[:1], cmds[1:]))
    return work


def measure_storm(url: str, business_id: int, work: list[Workload]) -> tuple[Row, bool]:
    """All racers released at once for one slot with one possible resource: one wins, the rest hear so."""
    release = run_children(url, business_id, work)
    outcomes = Counter(kind for c in release.children for kind, _ in c.outcomes)
    answers = [took for c in release.children for _, took in c.outcomes]
    n = len(work)
    ok = outcomes == Counter({"Booked": 1, "SlotTaken": n - 1})
    tally = ", ".join(f"{count} {kind}" for kind, count in sorted(outcomes.items()))
    cpu = p50([c.cpu for c in release.children])
    note = (f"all answered {ms(release.wall)} after the release (last racer started at +{ms(release.late)}, "
            f"{ms(cpu)} of Python CPU per racer); {tally}" + ("" if ok else f"; expected 1 Booked, {n - 1} SlotTaken"))
    return Row(f"{n} racers for one slot: each answer", n, ms(p50(answers)), ms(p99(answers)),
               "all < 1 s", verdict(release.wall, 1.0), note), ok


def plan_bare_writers(svc: BookingService, dsn: str, business_id: int, writers: int, each: int) -> list[Workload]:
    """The writers' work in bare SQL: each client on its own desk, in weeks the core's writers leave alone."""
    later = datetime.now(UTC) + timedelta(days=20)
    with psycopg.connect(dsn, autocommit=True) as conn:
        customer_id = conn.execute(
            "insert into customers (business_id, name, phone, language, channels, no_show_count)"
            " values (%s, 'Bare SQL caller', '+447700900999', 'en', '[\"sms\"]', 0) returning id", (business_id,)
        ).fetchone()[0]
        services = dict(conn.execute("select key, id from services where business_id = %s", (business_id,)).fetchall())
    work = []
    for w in range(writers):
        query = SlotQuery(service=f"lane-{w}", starts_from=later, until=later + timedelta(days=14), limit=each + 1)
        slots = only_slots(svc.find_slots(business_id, query))
        if len(slots) < each + 1:
            raise BenchFailure(f"only {len(slots)} open slots for bare SQL writer {w}")
        tasks = [BareBooking(business_id, services[f"lane-{w}"], customer_id,
                             OpenSlot(s.starts_at.utc, s.ends_at, (s.starts_at.utc, s.ends_at),
                                      tuple(r.id for r in s.resources)), f"W{w}-{i}")
                 for i, s in enumerate(slots)]
        work.append((tasks[:1], tasks[1:]))
    return work


def measure_writers(url: str, business_id: int, work: list[Workload], title: str) -> tuple[Row, float]:
    """Writers on separate resources never contend: throughput is what the machine can do."""
    release = run_children(url, business_id, work)
    outcomes = Counter(kind for c in release.children for kind, _ in c.outcomes)
    if set(outcomes) != {"Booked"}:
        raise BenchFailure(f"concurrent writers on their own desks got {dict(outcomes)}")
    timings = [took for c in release.children for _, took in c.outcomes]
    rate = len(timings) / release.wall
    return Row(f"{len(work)} {title}", len(timings), ms(p50(timings)), ms(p99(timings)),
               note=f"{rate:.0f} bookings/s in total ({len(timings)} in {release.wall:.2f} s)"), rate


# --- helpers -------------------------------------------------------------------------------------


@contextmanager
def counting(engine: sqlalchemy.Engine) -> Iterator[list[str]]:
    """The SQL statements the engine sends inside the block (savepoints included)."""
    sent: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    sqlalchemy.event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", note)


def load(engine: sqlalchemy.Engine, config: BusinessConfig) -> int:
    applied = apply_config(SqlAlchemyUnitOfWork(build_session_factory(engine)), config)
    if isinstance(applied, Rejected):
        raise BenchFailure(f"could not load {config.business.slug}: {applied.message}")
    return applied.business_id


def only_slots(result: Slots | Rejected) -> list[Any]:
    if not isinstance(result, Slots):
        raise BenchFailure(f"find_slots answered {result}")
    return result.slots


def booking(service: str, start: datetime, number: str) -> BookingCreate:
    return BookingCreate(service=service, starts_at=start, source="bench",
                         customer=CustomerIn(name=f"Caller {number[-5:]}", phone=number))


def phone(n: int) -> str:
    """A valid UK mobile number, different for every n below 100,000."""
    return f"+4479112{n:05d}"


