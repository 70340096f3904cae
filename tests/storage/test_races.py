"""Races on real PostgreSQL: separate OS processes, each with its own engine and connection.

Racers are forked, connect, then wait at a barrier so they fire at the same moment. Results come
back through a queue as plain dicts. Afterwards the parent checks what the database holds with
one invariant query: no resource over its capacity, no booking or hold with a partial set of claims.
"""
from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text

from nextslot.core.results import Booked, Changed, Held, Rejected, SeriesBooked, SlotTaken
from nextslot.core.service import BookingService
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    CustomerIn,
    HoldCreate,
    SeriesCreate,
    SeriesRule,
    SlotQuery,
)
from nextslot.storage.engine import build_session_factory, engine_for

pytestmark = pytest.mark.storage

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # the `clock` fixture's Monday morning
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # clinic (London = UTC in winter): only Dr Patel before 10
TUE_930 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # the scanner works on Tuesdays from 9:00
GARAGE_MON_10 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York
BARRIER_TIMEOUT = 60
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def phone(n: int) -> str:
    """A valid UK mobile number, different for every n below 10000."""
    return f"+44791112{n:04d}"


# --- racing in separate processes ---------------------------------------------------------------


def book_job(business: int, service: str, start: datetime, n: int, **extra: Any) -> dict[str, Any]:
    return dict(op="book", business=business, service=service, starts_at=start.isoformat(), phone=phone(n), **extra)


def run_job(svc: BookingService, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one operation in a racer; return its outcomes as plain data.

    A lost race also says whether the requested start was open right after the answer: in a race
    where committed claims only grow, open then means it was open when "taken" was said.
    """
    outcomes = run_operation(svc, job)
    for outcome in outcomes:
        if outcome["type"] == "SlotTaken":
            start = datetime.fromisoformat(outcome["requested"])
            found = svc.find_slots(job["business"], SlotQuery(
                service=job["service"], starts_from=start, until=start + timedelta(minutes=1)))
            outcome["open_after"] = any(s.starts_at.utc == start for s in found.slots)
    return outcomes


def run_operation(svc: BookingService, job: dict[str, Any]) -> list[dict[str, Any]]:
    op, business = job["op"], job["business"]
    if op == "book":
        return [plain(svc.book(business, BookingCreate(
            service=job["service"], starts_at=job["starts_at"], resources=job.get("resources", []),
            customer=CustomerIn(name=f"Racer {job['phone'][-4:]}", phone=job["phone"]),
            party_size=job.get("party_size", 1), idempotency_key=job.get("key"),
        )), job)]
    if op in ("hold", "hold_then_book"):
        held = plain(svc.hold(business, HoldCreate(service=job["service"], starts_at=job["starts_at"])), job)
        if op == "hold" or held["type"] != "Held":
            return [held]
        booked = svc.book(business, BookingCreate(
            service=job["service"], starts_at=job["starts_at"], hold_id=held["hold_id"],
            customer=CustomerIn(name="Holder", phone=job["phone"]),
        ))
        return [held, plain(booked, job | {"op": "convert"})]
    if op == "series":
        return [plain(svc.book_series(business, SeriesCreate(
            service=job["service"], starts_at=job["starts_at"], mode=job["mode"], repeat=SeriesRule(count=job["count"]),
            customer=CustomerIn(name=f"Racer {job['phone'][-4:]}", phone=job["phone"]),
        )), job)]
    if op == "reschedule":
        return [plain(svc.reschedule(business, BookingReschedule(code=job["code"], starts_at=job["starts_at"])), job)]
    if op == "cancel":
        return [plain(svc.cancel(business, BookingChange(code=job["code"], reason="race")), job)]
    raise ValueError(op)


def plain(result: object, job: dict[str, Any]) -> dict[str, Any]:
    """A result as a dict of plain values, safe to send through a multiprocessing queue."""
    base = {"op": job["op"], "service": job.get("service"), "job": job}
    match result:
        case Booked(booking=b):
            return base | {"type": "Booked", "id": b.id, "code": b.code, "starts_at": b.starts_at.utc.isoformat(),
                           "resources": [r.key for r in b.resources], "replayed": result.replayed}
        case Held(hold=h):
            return base | {"type": "Held", "hold_id": h.id, "starts_at": h.starts_at.utc.isoformat(),
                           "resources": [r.key for r in h.resources]}
        case SlotTaken(requested=requested, alternatives=alternatives):
            return base | {"type": "SlotTaken", "requested": requested.isoformat(), "alternatives": [
                {"starts_at": a.starts_at.utc.isoformat(), "resources": [r.key for r in a.resources]}
                for a in alternatives]}
        case Changed(booking=b, replayed=replayed):
            return base | {"type": "Changed", "code": b.code, "status": b.status, "replayed": replayed}
        case SeriesBooked(series=series):
            return base | {"type": "SeriesBooked", "series_id": series.series_id, "complete": series.complete,
                           "outcomes": [o.outcome for o in series.occurrences],
                           "starts": [o.booking.starts_at.utc.isoformat() if o.booking else None
                                      for o in series.occurrences]}
        case Rejected(code=code, message=message):
            return base | {"type": "Rejected", "code": code, "message": message}
    raise TypeError(f"unexpected result {result!r}")


def racer(url: str, barrier: Any, results: Any, index: int, jobs: list[dict[str, Any]]) -> None:
    """A child process: its own engine and connection, then wait for the others and go."""
    engine = None
    try:
        engine = engine_for(url, pool_size=1)
        svc = BookingService(build_session_factory(engine), clock=lambda: NOW)
        with engine.connect() as conn:  # connect first: the race is the booking, not the login
            conn.execute(text("select 1"))
        barrier.wait(BARRIER_TIMEOUT)
        results.put((index, [outcome for job in jobs for outcome in run_job(svc, job)]))
    except BaseException:
        barrier.abort()  # let the others fail fast instead of waiting for a racer that never comes
        results.put((index, [{"type": "error", "error": traceback.format_exc()}]))
    finally:
        if engine is not None:
            engine.dispose()


def race(engine: Engine, database_url: str, workloads: Sequence[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Run each workload in its own forked process, all released at once; outcomes per workload."""
    engine.dispose()  # no pooled connection of the parent may leak into a child
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(len(workloads)), ctx.Queue()
    processes = [ctx.Process(target=racer, args=(database_url, barrier, results, i, jobs), daemon=True)
                 for i, jobs in enumerate(workloads)]
    for p in processes:
        p.start()
    collected: dict[int, list[dict[str, Any]]] = {}
    try:
        while len(collected) < len(processes):
            index, outcomes = results.get(timeout=BARRIER_TIMEOUT + 60)
            collected[index] = outcomes
    finally:
        for p in processes:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    errors = [o["error"] for outcomes in collected.values() for o in outcomes if o["type"] == "error"]
    assert not errors, errors[0]
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    return [collected[i] for i in range(len(processes))]


def flat(outcomes: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [o for per_racer in outcomes for o in per_racer]


def of_type(outcomes: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in outcomes if o["type"] == kind]


# --- the invariant -------------------------------------------------------------------------------

OVER_CAPACITY = text("""
    select c.id, r.key, r.capacity, load.n, c.during::text
      from claims c
      join resources r on r.id = c.resource_id
     cross join lateral (select sum(c2.seats) as n from claims c2  -- places taken, a party's claim counting each
                          where c2.resource_id = c.resource_id and c2.active
                            and c2.during @> lower(c.during)) as load
     where c.active and c.business_id = :b and load.n > r.capacity
""")

BAD_BOOKING_CLAIMS = text("""
    with held as (
        select b.id, b.code, b.status, b.service_id, b.party_size, s.party,
               tstzrange(b.starts_at - make_interval(mins => s.buffer_before_minutes),
                         b.ends_at + make_interval(mins => s.buffer_after_minutes)) as occupied
          from bookings b join services s on s.id = b.service_id
         where b.business_id = :b
    ), needed as (  -- places: one of each requirement, or one per person of the party where the service says so
        select h.id, sum(case when h.party_size > 1 and coalesce(h.party -> 'per_person', '[]')
                                    @> jsonb_build_array(q.label) then h.party_size else 1 end) as n
          from held h join service_requirements q on q.service_id = h.service_id
         group by h.id
    )
    select h.code, h.status, count(c.id) as claims, count(distinct c.resource_id) as resources, nd.n as needed
      from held h
      join needed nd on nd.id = h.id
      left join claims c on c.booking_id = h.id and c.active
     group by h.id, h.code, h.status, h.service_id, h.occupied, nd.n
    having case when h.status in ('booked', 'confirmed')
                  or (h.status = 'pending_payment' and count(c.id) > 0) then  -- until its deposit's deadline
                    coalesce(sum(c.seats), 0) <> nd.n
                 or count(distinct c.resource_id) <> count(c.id)
                 or bool_or(c.during <> h.occupied)
                 or exists (  -- every requirement met by one of the claimed resources
                        select 1 from service_requirements q
                         where q.service_id = h.service_id
                           and not exists (select 1 from requirement_members m
                                             join claims c3 on c3.resource_id = m.resource_id
                                            where m.requirement_id = q.id and c3.booking_id = h.id and c3.active))
                else count(c.id) > 0 end
""")

BAD_HOLD_CLAIMS = text("""
    select h.id, h.status, count(c.id) as claims,
           (select count(*) from service_requirements q where q.service_id = h.service_id) as needed
      from holds h
      left join claims c on c.hold_id = h.id and c.active and c.booking_id is null
     where h.business_id = :b
     group by h.id, h.business_id
    having count(c.id) <> case when h.status = 'active'
                               then (select count(*) from service_requirements q where q.service_id = h.service_id)
                               else 0 end
""")


def invariant_violations(conn: Connection, business_id: int) -> list[str]:
    """Everything wrong with the business's claims; empty when the guarantee holds."""
    found = []
    for name, query in (("over capacity", OVER_CAPACITY), ("booking with partial claims", BAD_BOOKING_CLAIMS),
                        ("hold with partial claims", BAD_HOLD_CLAIMS)):
        found += [f"{name}: {tuple(row)}" for row in conn.execute(query, {"b": business_id})]
    return found


def assert_invariant(engine: Engine, business_id: int) -> None:
    with engine.connect() as conn:
        assert invariant_violations(conn, business_id) == []


def test_the_invariant_query_spots_an_overfull_resource_and_a_partial_booking(engine, make_business, service):
    garage = make_business("garage")
    made = service.book(garage, BookingCreate(service="oil-change", starts_at=GARAGE_MON_10,
                                              customer=CustomerIn(name="Racer", phone="+12125550123"),
                                              intake={"vehicle": "Ford Focus", "registration": "ABC 123"}))
    assert isinstance(made, Booked)
    with engine.connect() as conn:
        assert invariant_violations(conn, garage) == []
        try:  # break the data behind the guard's back, see it reported, then roll it all back
            conn.execute(text("set local lock_timeout = '5s'"))
            conn.execute(text("alter table claims disable trigger claims_guard"))
            for _ in range(3):  # three more claims on the bay, at the same time as the booking's own
                conn.execute(text(
                    "insert into claims (business_id, resource_id, booking_id, during, active, exclusive) "
                    "select business_id, resource_id, booking_id, during, true, false from claims "
                    "where booking_id = :i and not exclusive limit 1"), {"i": made.booking.id})
            conn.execute(text("update claims set active = false where booking_id = :i and exclusive"),
                         {"i": made.booking.id})  # the mechanic's claim goes: a partial booking
            found = invariant_violations(conn, garage)
        finally:
            conn.rollback()
        assert invariant_violations(conn, garage) == []
    assert sum(f.startswith("over capacity") for f in found) == 4  # four cars in a three-car bay
    assert [f for f in found if f.startswith("booking with partial claims")] == [
        f"booking with partial claims: ('{made.booking.code}', 'booked', 4, 1, 2)"]


# --- checking what losers were offered ------------------------------------------------------------


def resource_ids(engine: Engine, business_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("select key, id from resources where business_id = :b"),
                                 {"b": business_id}).all())


def occupied(engine: Engine, business_id: int, service: str, start: datetime) -> tuple[datetime, datetime]:
    with engine.connect() as conn:
        duration, before, after = conn.execute(
            text("select duration_minutes, buffer_before_minutes, buffer_after_minutes from services "
                 "where business_id = :b and key = :k"), {"b": business_id, "k": service}).one()
    return start - timedelta(minutes=before), start + timedelta(minutes=duration + after)


def peak(intervals: Sequence[tuple[datetime, datetime]], window: tuple[datetime, datetime]) -> int:
    """Most of the [start, end) intervals that overlap one instant of the window."""
    inside = [(s, e) for s, e in intervals if s < window[1] and e > window[0]]
    points = [window[0]] + [s for s, _ in inside if s > window[0]]
    return max((sum(1 for s, e in inside if s <= p < e) for p in points), default=0)


def assert_offered_slots_are_free_now(svc: BookingService, engine: Engine, business_id: int,
                                      taken: list[dict[str, Any]]) -> None:
    """Each alternative is listed by find_slots and every one of its resources has room for it."""
    ids = resource_ids(engine, business_id)
    offered = {}
    for outcome in taken:
        assert 1 <= len(outcome["alternatives"]) <= 3, outcome
        for alt in outcome["alternatives"]:
            start = datetime.fromisoformat(alt["starts_at"])
            assert start != datetime.fromisoformat(outcome["requested"])
            offered[outcome["service"], start, tuple(alt["resources"])] = alt
    for service_key, start, resources in offered:  # racers are mostly offered the same slots: check each once
        listed = svc.find_slots(business_id, SlotQuery(
            service=service_key, starts_from=start - timedelta(minutes=30), until=start + timedelta(minutes=30)))
        assert (start, list(resources)) in [(s.starts_at.utc, [r.key for r in s.resources])
                                            for s in listed.slots], (start, resources, listed)
        window = occupied(engine, business_id, service_key, start)
        with engine.connect() as conn:
            for key in resources:
                capacity = conn.execute(text("select capacity from resources where id = :r"),
                                        {"r": ids[key]}).scalar_one()
                busy = [(d.lower, d.upper) for d in conn.execute(
                    text("select during from claims where resource_id = :r and active"), {"r": ids[key]}).scalars()]
                assert peak(busy, window) < capacity, (start, key, busy)


# --- the races -----------------------------------------------------------------------------------


def test_sixty_racers_for_one_slot_one_wins_rest_get_free_alternatives(engine, database_url, make_business, service):
    clinic = make_business("clinic")
    outcomes = flat(race(engine, database_url,
                         [[book_job(clinic, "consultation", MON_9, n)] for n in range(60)]))

    winners, losers = of_type(outcomes, "Booked"), of_type(outcomes, "SlotTaken")
    assert len(winners) == 1 and len(losers) == 59, [o["type"] for o in outcomes]
    winner = winners[0]
    assert datetime.fromisoformat(winner["starts_at"]) == MON_9
    assert sorted(winner["resources"]) == ["dr-patel", "room-1"]
    won = occupied(engine, clinic, "consultation", MON_9)
    for loser in losers:
        for alt in loser["alternatives"]:
            start = datetime.fromisoformat(alt["starts_at"])
            mine = (start, start + (won[1] - won[0]))
            if set(alt["resources"]) & set(winner["resources"]):
                assert mine[1] <= won[0] or mine[0] >= won[1], (alt, won)
    assert_offered_slots_are_free_now(service, engine, clinic, losers)
    assert {tuple(a["starts_at"] for a in o["alternatives"]) for o in losers} == {
        tuple((MON_9 + timedelta(minutes=m)).isoformat() for m in (30, 45, 60))}  # 9:15 would overlap the winner

    assert_invariant(engine, clinic)
    with engine.connect() as conn:  # the losers left nothing behind: no booking, customer or claim
        counts = conn.execute(text(
            "select (select count(*) from bookings where business_id = :b),"
            "       (select count(*) from customers where business_id = :b),"
            "       (select count(*) from claims where business_id = :b),"
            "       (select count(*) from booking_history where business_id = :b)"), {"b": clinic}).one()
    assert tuple(counts) == (1, 1, 2, 1)


def clinic_with_two_doctors_on_tuesday() -> dict[str, Any]:
    """The example clinic, with Dr Okafor also working Tuesdays: two doctors, two rooms, one scanner."""
    config = yaml.safe_load((EXAMPLES / "clinic.yaml").read_text())
    okafor = next(r for r in config["resources"] if r["key"] == "dr-okafor")
    okafor["hours"]["tue"] = ["08:30-18:00"]
    return config


def test_multi_resource_services_racing_never_overfill_a_resource_or_leave_partial_claims(
    engine, database_url, make_business, service
):
    clinic = make_business(clinic_with_two_doctors_on_tuesday())
    twin = make_business(clinic_with_two_doctors_on_tuesday())  # the same rules, never booked
    scans = [TUE_930 + timedelta(minutes=30 * i) for i in range(4)]  # 9:30 .. 11:00, each holds 10 min each side
    consultations = [TUE_930 + timedelta(minutes=15 * i) for i in range(8)]  # 9:30 .. 11:15
    pick = {"ultrasound": scans, "consultation": consultations}
    workloads = []
    for i in range(28):
        first, second = ("ultrasound", "consultation") if i % 2 else ("consultation", "ultrasound")
        workloads.append([
            book_job(clinic, first, pick[first][(i // 2) % len(pick[first])], 2 * i),
            book_job(clinic, second, pick[second][(i * 3) % len(pick[second])], 2 * i + 1),
        ])
    outcomes = flat(race(engine, database_url, workloads))

    booked, taken = of_type(outcomes, "Booked"), of_type(outcomes, "SlotTaken")
    assert len(booked) + len(taken) == len(outcomes) == 56, [o for o in outcomes if o["type"] == "Rejected"]
    # which service wins which minutes depends on scheduling; that some win and some lose does not
    assert booked and taken
    assert_invariant(engine, clinic)
    with engine.connect() as conn:  # every answer tells the truth about the claims behind it
        for o in booked:
            keys = conn.execute(text(
                "select r.key from claims c join resources r on r.id = c.resource_id "
                "where c.booking_id = :i and c.active order by r.key"), {"i": o["id"]}).scalars().all()
            assert keys == sorted(o["resources"]), o
        scanner_bookings = conn.execute(text(
            "select count(*) from bookings b join services s on s.id = b.service_id "
            "where b.business_id = :b and s.key = 'ultrasound'"), {"b": clinic}).scalar_one()
    assert scanner_bookings == len([o for o in booked if o["service"] == "ultrasound"]) <= 2  # 50 min a scan
    valid = {  # every start the rules allow (grid, notice, everyone's hours), on an empty calendar
        key: {s.starts_at.utc for s in service.find_slots(twin, SlotQuery(
            service=key, starts_from=NOW, until=NOW + timedelta(days=16), limit=1000)).slots}
        for key in pick}
    for outcome in taken:
        assert 1 <= len(outcome["alternatives"]) <= 3
        starts = [datetime.fromisoformat(a["starts_at"]) for a in outcome["alternatives"]]
        assert datetime.fromisoformat(outcome["requested"]) not in starts
        assert set(starts) <= valid[outcome["service"]], outcome


def test_twenty_racers_for_a_capacity_three_bay_exactly_three_win(engine, database_url, make_business, service):
    garage = make_business("garage")
    outcomes = flat(race(engine, database_url,
                         [[book_job(garage, "tyre-swap", GARAGE_MON_10, n)] for n in range(20)]))

    booked, taken = of_type(outcomes, "Booked"), of_type(outcomes, "SlotTaken")
    assert len(booked) == 3 and len(taken) == 17, [o["type"] for o in outcomes]
    assert all(o["resources"] == ["service-bay"] for o in booked)
    assert_offered_slots_are_free_now(service, engine, garage, taken)
    assert_invariant(engine, garage)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from claims where business_id = :b and active"),
                            {"b": garage}).scalar_one() == 3


def booking_state(engine: Engine, business_id: int, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        booking_id, starts_at = conn.execute(
            text("select id, starts_at from bookings where business_id = :b and code = :c"),
            {"b": business_id, "c": code}).one()
        claims = conn.execute(text("select id, during from claims where booking_id = :i and active order by id"),
                              {"i": booking_id}).all()
        history = conn.execute(text("select action from booking_history where booking_id = :i order by id"),
                               {"i": booking_id}).scalars().all()
    return {"starts_at": starts_at, "claims": [(i, d.lower, d.upper) for i, d in claims], "history": history}


def test_a_reschedule_racing_a_new_booking_for_the_same_slot_leaves_one_winner_and_the_loser_untouched(
    engine, database_url, make_business, service
):
    old_start, target = MON_9 + timedelta(minutes=30), MON_9  # only Dr Patel works before 10:00
    for _ in range(5):
        clinic = make_business("clinic")
        first = service.book(clinic, BookingCreate(service="consultation", starts_at=old_start,
                                                   customer=CustomerIn(name="Mover", phone=phone(9000))))
        assert isinstance(first, Booked)
        code = first.booking.code
        before = booking_state(engine, clinic, code)

        mover, newcomer = flat(race(engine, database_url, [
            [dict(op="reschedule", business=clinic, service="consultation", code=code,
                  starts_at=target.isoformat())],
            [book_job(clinic, "consultation", target, 1)],
        ]))

        after = booking_state(engine, clinic, code)
        assert sorted([mover["type"], newcomer["type"]]) == ["Booked", "SlotTaken"], (mover, newcomer)
        winner = mover if mover["type"] == "Booked" else newcomer
        assert datetime.fromisoformat(winner["starts_at"]) == target
        if mover["type"] == "Booked":
            assert after["starts_at"] == target and after["history"] == ["created", "rescheduled"]
            assert [c[1:] for c in after["claims"]] == [(target, target + timedelta(minutes=25))] * 2
        else:  # the reschedule lost: the booking is exactly as it was, its old claims still active
            assert after == before
            assert after["starts_at"] == old_start and after["history"] == ["created"]
        loser = newcomer if winner is mover else mover
        assert loser["alternatives"] and all(
            datetime.fromisoformat(a["starts_at"]) != target for a in loser["alternatives"])
        assert_invariant(engine, clinic)


def test_a_claimer_caught_in_a_deadlock_over_the_exclusion_check_gets_slot_taken_not_an_error(
    engine, make_business, service
):
    # PostgreSQL checks an exclusion constraint after inserting the row, so two claimers can each
    # find the other's uncommitted claim and wait for it. Stage that: a raw transaction takes room-1,
    # the booking takes dr-patel and waits on room-1, then the raw transaction reaches for dr-patel.
    clinic = make_business("clinic")
    ids = resource_ids(engine, clinic)
    claim = text("insert into claims (business_id, resource_id, hold_id, during, active, exclusive) "
                 "values (:b, :r, :h, tstzrange(:s, :e), true, true)")
    with engine.connect() as other, ThreadPoolExecutor(1) as pool:
        other.execute(text("set local deadlock_timeout = '10s'"))  # the booking's backend detects the deadlock
        hold = other.execute(text(
            "insert into holds (business_id, service_id, starts_at, ends_at, expires_at, status, source) "
            "select :b, id, :s, :e, :e, 'active', 'test' from services where business_id = :b "
            "and key = 'consultation' returning id"),
            {"b": clinic, "s": MON_9, "e": MON_9 + timedelta(minutes=25)}).scalar_one()
        during = {"b": clinic, "h": hold, "s": MON_9, "e": MON_9 + timedelta(minutes=25)}
        other.execute(claim, during | {"r": ids["room-1"]})
        booking = pool.submit(service.book, clinic, BookingCreate(
            service="consultation", starts_at=MON_9, customer=CustomerIn(name="Racer", phone=phone(1))))
        with engine.connect() as watcher:
            for _ in range(200):  # until the booking waits on the raw transaction's room-1 claim
                if watcher.execute(text("select count(*) from pg_stat_activity where datname = current_database()"
                                        " and wait_event = 'transactionid'")).scalar_one():
                    break
                watcher.rollback()
                time.sleep(0.05)
            else:
                pytest.fail("the booking never waited on the raw claim")
        other.execute(claim, during | {"r": ids["dr-patel"]})  # closes the cycle; returns once broken
        other.commit()  # the booking looks again, behind the raw claims: the only doctor at 9 is taken
        result = booking.result(timeout=30)
    assert isinstance(result, SlotTaken) and result.alternatives, result
    assert_invariant(engine, clinic)


# --- random concurrent operations ----------------------------------------------------------------

LAB = {
    "business": {"slug": "race-lab", "name": "Race Lab", "timezone": "UTC", "country": "GB"},
    "hours": {day: ["09:00-13:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "resources": [
        {"key": "ann", "name": "Ann", "kind": "staff"},
        {"key": "bob", "name": "Bob", "kind": "staff"},
        {"key": "chairs", "name": "Two chairs", "kind": "room", "capacity": 2},
        {"key": "sink", "name": "Sink", "kind": "device"},
    ],
    "services": [
        {"key": "cut", "name": "Cut", "duration": 30, "buffer_after": 10, "step": 15, "min_notice": 0,
         "horizon_days": 30, "requires": [{"label": "stylist", "one_of": ["ann", "bob"]},
                                          {"label": "chair", "one_of": ["chairs"]}]},
        {"key": "wash", "name": "Wash", "duration": 15, "buffer_before": 5, "step": 15, "min_notice": 0,
         "horizon_days": 30, "requires": [{"label": "chair", "one_of": ["chairs"]},
                                          {"label": "sink", "one_of": ["sink"]}]},
    ],
}
LAB_DAY = datetime(2026, 11, 24, tzinfo=UTC)
LAB_OPEN, LAB_CLOSE = 9 * 60, 13 * 60
LAB_SLOTS = [LAB_DAY + timedelta(hours=9, minutes=15 * i) for i in range(1, 7)]  # 9:15 .. 10:30
LAB_TARGETS = [("cut", LAB_SLOTS[1], []), ("wash", LAB_SLOTS[3], [])]  # bookings the operations move and cancel
LAB_BLOCKER = ("cut", LAB_DAY + timedelta(hours=10, minutes=45), ["bob"])  # never touched: always in the way

slot_index = st.integers(0, len(LAB_SLOTS) - 1)
service_key = st.sampled_from(["cut", "wash"])
operation = st.one_of(
    st.tuples(st.just("book"), service_key, slot_index, st.integers(0, 3)),
    st.tuples(st.just("hold"), service_key, slot_index, st.just(0)),
    st.tuples(st.just("hold_then_book"), service_key, slot_index, st.integers(0, 3)),
    st.tuples(st.just("reschedule"), st.integers(0, len(LAB_TARGETS) - 1), slot_index, st.just(0)),
    st.tuples(st.just("cancel"), st.integers(0, len(LAB_TARGETS) - 1), st.just(0), st.just(0)),
)


def lab_job(business: int, codes: list[str], op: tuple) -> dict[str, Any]:
    name, what, slot, who = op
    start = LAB_SLOTS[slot].isoformat()
    if name in ("reschedule", "cancel"):
        return dict(op=name, business=business, service=LAB_TARGETS[what][0], code=codes[what], starts_at=start)
    return dict(op=name, business=business, service=what, starts_at=start, phone=phone(100 + who))


def active_claims(engine: Engine, business_id: int) -> dict[int, tuple[str, datetime, datetime, str | None]]:
    """Active claims by id: resource key, interval, and the code of the booking owning it."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "select c.id, r.key, c.during, b.code from claims c join resources r on r.id = c.resource_id "
            "left join bookings b on b.id = c.booking_id where c.business_id = :b and c.active"),
            {"b": business_id}).all()
    return {i: (key, d.lower, d.upper, code) for i, key, d, code in rows}


def assert_offered_slots_were_free(
    taken: list[dict[str, Any]], stable: list[tuple[str, datetime, datetime, str | None]]
) -> None:
    """Alternatives are valid starts that clash with no claim that stood through the whole race.

    A booking being moved does not stand in its own way, so its own claims do not count against
    the alternatives offered to its reschedule.
    """
    spec = {s["key"]: s for s in LAB["services"]}
    capacity = {r["key"]: r.get("capacity", 1) for r in LAB["resources"]}
    for outcome in taken:
        service = spec[outcome["service"]]
        pools = [r["one_of"] for r in service["requires"]]
        assert 1 <= len(outcome["alternatives"]) <= 3, outcome
        for alt in outcome["alternatives"]:
            start = datetime.fromisoformat(alt["starts_at"])
            window = (start - timedelta(minutes=service.get("buffer_before", 0)),
                      start + timedelta(minutes=service["duration"] + service.get("buffer_after", 0)))
            day = start.replace(hour=0, minute=0, second=0, microsecond=0)
            assert start != datetime.fromisoformat(outcome["requested"]) and start >= NOW
            assert (start - day) % timedelta(minutes=service["step"]) == timedelta(0)
            assert day.weekday() < 5 and window[0] >= day + timedelta(minutes=LAB_OPEN)
            assert window[1] <= day + timedelta(minutes=LAB_CLOSE), alt
            assert len(alt["resources"]) == len(pools) and all(k in p for k, p in zip(alt["resources"], pools))
            own = outcome["job"].get("code") if outcome["op"] == "reschedule" else None
            for key in alt["resources"]:
                busy = [(s, e) for k, s, e, code in stable if k == key and (own is None or code != own)]
                assert peak(busy, window) < capacity[key], (outcome, alt, key, busy)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(workloads=st.lists(st.lists(operation, min_size=1, max_size=4), min_size=2, max_size=3))
def test_random_concurrent_operations_keep_every_resource_within_capacity(
    engine, database_url, make_business, service, workloads
):
    lab = make_business(LAB)
    codes = []
    for n, (key, start, resources) in enumerate([*LAB_TARGETS, LAB_BLOCKER]):
        made = service.book(lab, BookingCreate(service=key, starts_at=start, resources=resources,
                                               customer=CustomerIn(name=f"Racer {n}", phone=phone(n))))
        assert isinstance(made, Booked), made
        codes.append(made.booking.code)
    before = active_claims(engine, lab)

    outcomes = flat(race(engine, database_url, [[lab_job(lab, codes, op) for op in ops] for ops in workloads]))
    for o in outcomes:
        event(f"{o['op']} -> {o['type']}")  # shown by --hypothesis-show-statistics

    assert_invariant(engine, lab)
    after = active_claims(engine, lab)
    stable = [claim for i, claim in before.items() if i in after]  # active from before the race to after it
    assert sum(1 for key, *_ in stable if key == "bob") >= 1  # the blocker never moves
    assert_offered_slots_were_free(of_type(outcomes, "SlotTaken"), stable)
    for o in of_type(outcomes, "Rejected"):  # only moving a booking someone else cancelled is refused
        assert o["op"] == "reschedule" and o["code"] == "booking_not_active", o
    converted = [o for o in outcomes if o["op"] == "convert"]  # a hold taken is always convertible
    assert all(o["type"] == "Booked" for o in converted), converted
    assert len(converted) == len([o for o in outcomes if o["op"] == "hold_then_book" and o["type"] == "Held"])
    assert all(o["type"] == "Changed" for o in outcomes if o["op"] == "cancel")
