"""A storm's losers share answers within a process (`alternatives.BURSTS`): each answer must still be true.

The racers here are threads of one process, so they share its answers, as the requests of one server process do.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from nextslot.core.results import Booked, Rejected, SlotTaken
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn
from tests.storage.test_races import MON_9, assert_invariant, assert_offered_slots_are_free_now, phone

pytestmark = pytest.mark.storage

CONSULTATION = timedelta(minutes=25)  # the clinic's consultation (20 minutes) and its buffer (5), as occupied


def ask(service, clinic: int, start: datetime, n: int) -> Booked | SlotTaken:
    result = service.book(clinic, BookingCreate(service="consultation", starts_at=start,
                                                customer=CustomerIn(name=f"Caller {n}", phone=phone(n))))
    assert isinstance(result, Booked | SlotTaken), result
    return result


def offered(result: SlotTaken) -> set[tuple[datetime, frozenset[str]]]:
    return {(a.starts_at.utc, frozenset(r.key for r in a.resources)) for a in result.alternatives}


def clashes(slot: tuple[datetime, frozenset[str]], booked: tuple[datetime, frozenset[str]]) -> bool:
    (start, keys), (other, taken) = slot, booked
    return bool(keys & taken) and start < other + CONSULTATION and other < start + CONSULTATION


def test_a_loser_is_never_offered_a_slot_booked_since_the_last_answer(engine, make_business, service):
    clinic = make_business("clinic")
    assert isinstance(ask(service, clinic, MON_9, 0), Booked)
    first, again = ask(service, clinic, MON_9, 1), ask(service, clinic, MON_9, 2)
    assert isinstance(first, SlotTaken) and offered(first) == offered(again)  # nothing changed: the same answer

    nearest = min(first.alternatives, key=lambda a: a.starts_at.utc)
    took = ask(service, clinic, nearest.starts_at.utc, 3)
    assert isinstance(took, Booked)
    booked = (took.booking.starts_at.utc, frozenset(r.key for r in took.booking.resources))
    later = ask(service, clinic, MON_9, 4)
    assert isinstance(later, SlotTaken) and later.alternatives
    assert not [slot for slot in offered(later) if clashes(slot, booked)], (offered(later), booked)
    assert_offered_slots_are_free_now(service, engine, clinic, [plain(later)])


def test_during_a_burst_a_loser_reads_the_calendar_once_and_is_answered_alike(engine, make_business, service):
    clinic = make_business("clinic")
    assert isinstance(ask(service, clinic, MON_9, 0), Booked)
    first = ask(service, clinic, MON_9, 1)  # answered moments ago: a burst for 9:00 is on
    sent: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        later = ask(service, clinic, MON_9, 2)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert isinstance(later, SlotTaken) and offered(later) == offered(first)
    assert len([s for s in sent if "from claims" in s]) == 1, sent  # its check's read served its answer too
    assert_offered_slots_are_free_now(service, engine, clinic, [plain(later)])


def test_a_time_freed_during_a_burst_is_booked_by_the_next_caller(engine, make_business, service):
    clinic = make_business("clinic")
    won = ask(service, clinic, MON_9, 0)
    assert isinstance(won, Booked) and isinstance(ask(service, clinic, MON_9, 1), SlotTaken)
    assert not isinstance(service.cancel(clinic, BookingChange(code=won.booking.code)), Rejected)
    again = ask(service, clinic, MON_9, 2)  # checked with the burst's wider read: free, so booked
    assert isinstance(again, Booked) and again.booking.starts_at.utc == MON_9
    after = ask(service, clinic, MON_9, 3)
    assert isinstance(after, SlotTaken) and MON_9 not in {a.starts_at.utc for a in after.alternatives}
    assert_offered_slots_are_free_now(service, engine, clinic, [plain(after)])
    assert_invariant(engine, clinic)


def test_alternatives_in_a_storm_were_all_free_when_each_loser_asked(engine, make_business, service):
    # Twelve callers race for 9:00 while another caller keeps booking the times they are being offered. Whatever
    # a loser is offered must not have been booked before it even asked (a booking done by then is committed).
    clinic = make_business("clinic")
    done: list[tuple[datetime, frozenset[str], float]] = []  # what the taker booked, and when its commit returned
    asked: dict[int, tuple[float, SlotTaken | Booked]] = {}
    go, stop = threading.Barrier(13), threading.Event()

    def racer(n: int) -> None:
        go.wait(30)
        started = time.monotonic()
        asked[n] = (started, ask(service, clinic, MON_9, 10 + n))

    def taker() -> None:
        go.wait(30)
        n = 100
        while not stop.is_set() and n < 130:
            lost = ask(service, clinic, MON_9, n)  # the storm's own answer names the times worth taking
            n += 1
            if isinstance(lost, SlotTaken) and lost.alternatives:
                got = ask(service, clinic, lost.alternatives[0].starts_at.utc, n)
                n += 1
                if isinstance(got, Booked):
                    done.append((got.booking.starts_at.utc, frozenset(r.key for r in got.booking.resources),
                                 time.monotonic()))

    with ThreadPoolExecutor(13) as pool:
        racers = [pool.submit(racer, n) for n in range(12)]
        taking = pool.submit(taker)
        for r in racers:
            r.result(timeout=120)
        stop.set()
        taking.result(timeout=120)

    results = [result for _, result in asked.values()]
    assert sum(isinstance(r, Booked) for r in results) <= 1  # the taker may win 9:00 itself
    assert done, "the taker booked nothing: the test staged no change during the storm"
    for started, result in asked.values():
        if isinstance(result, SlotTaken):
            committed_before = [(s, keys) for s, keys, at in done if at < started]
            assert not [slot for slot in offered(result) for booked in committed_before if clashes(slot, booked)]
    assert_invariant(engine, clinic)


def plain(result: SlotTaken) -> dict:
    return {"service": "consultation", "requested": result.requested.isoformat(), "alternatives": [
        {"starts_at": a.starts_at.utc.isoformat(), "resources": [r.key for r in a.resources]}
        for a in result.alternatives]}
