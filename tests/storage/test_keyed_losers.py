"""A booking with an idempotency key that finds its time taken writes nothing (no key, no transaction), and a retry
still gets its first try's answer: when that try booked, when it is in flight, and when it is in flight on a time that
looks full and then wins it because a booking there was cancelled meanwhile.

The key's taker holds an advisory lock named after the key for as long as its transaction runs; a loser's check of
its time asks for it in the same read (`queries.calendar_for`) before answering without the key, and a held one
sends it the old way: take the key, which waits for the first try's end.
"""
from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from nextslot.core.results import Booked, Changed, SlotTaken
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn
from nextslot.storage.idempotency import IdempotencyRepository
from tests.storage.test_races import MON_9, assert_invariant, book_job, phone, race
from tests.storage.test_races_round10 import blocked_on_a_lock
from tests.storage.test_reads_first import in_transaction

pytestmark = pytest.mark.storage

MON_10 = MON_9 + timedelta(hours=1)  # both clinic doctors work from 10:00 on Mondays


def booking(n: int, key: str | None = None, resources: list[str] | None = None) -> BookingCreate:
    return BookingCreate(service="consultation", starts_at=MON_10, idempotency_key=key, resources=resources or [],
                         customer=CustomerIn(name=f"Caller {n}", phone=phone(700 + n)))


def keys_kept(engine: Engine, business: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(text("select key from idempotency_keys where business_id = :b order by key"),
                                 {"b": business}))


def test_a_keyed_booking_that_finds_its_time_taken_writes_nothing_and_its_retry_books_once_freed(
        make_business, service, engine):
    clinic = make_business("clinic")
    made = [service.book(clinic, booking(n)) for n in (1, 2)]  # both doctors: the time is full
    assert all(isinstance(m, Booked) for m in made)
    assert isinstance(service.book(clinic, booking(4)), SlotTaken)  # losers for it are being answered now
    with in_transaction(engine) as unkeyed:
        assert isinstance(service.book(clinic, booking(5)), SlotTaken)
    with in_transaction(engine) as sent:
        lost = service.book(clinic, booking(3, key="late-3"))
    assert isinstance(lost, SlotTaken) and lost.alternatives
    assert sent and not any(transaction for _, transaction in sent), sent  # no BEGIN, so no ROLLBACK either
    # the key costs no statement: its check rides on the read that found the time taken
    assert len(sent) == len(unkeyed), (sent, unkeyed)
    assert keys_kept(engine, clinic) == []
    assert isinstance(service.cancel(clinic, BookingChange(code=made[0].booking.code)), Changed)  # type: ignore[union-attr]
    again = service.book(clinic, booking(3, key="late-3"))
    assert isinstance(again, Booked) and not again.replayed
    assert keys_kept(engine, clinic) == ["late-3"]
    assert_invariant(engine, clinic)


def test_a_retry_of_a_booking_that_took_the_time_gets_the_first_answer(make_business, service):
    clinic = make_business("clinic")
    first = service.book(clinic, booking(1, key="first-1"))
    assert isinstance(service.book(clinic, booking(2)), Booked)  # now full, the first's own booking included
    retry = service.book(clinic, booking(1, key="first-1"))
    assert isinstance(first, Booked) and isinstance(retry, Booked) and retry.replayed
    assert retry.booking.id == first.booking.id
    reused = service.book(clinic, booking(9, key="first-1"))  # the key for another request: refused as reused
    assert not isinstance(reused, Booked | SlotTaken) and reused.code == "idempotency_key_reused"  # type: ignore[union-attr]


def test_a_retry_while_its_first_try_is_in_flight_on_a_time_that_then_looks_full_waits_for_its_answer(
        make_business, service, engine, monkeypatch):
    """The first try checked a free doctor and took its key; the other doctor's booking then made the time look full
    (to the retry), and a cancellation freed a doctor before the first try wrote: it books. The retry, which saw the
    time full and the key nowhere in the table, must still answer that booking, not 'taken'."""
    clinic = make_business("clinic")
    early = service.book(clinic, booking(1, resources=["dr-patel"]))
    assert isinstance(early, Booked)
    paused, go, said = threading.Event(), threading.Event(), {}
    real_take = IdempotencyRepository.take

    def take_then_pause(self: IdempotencyRepository, *args: Any) -> Any:
        taken = real_take(self, *args)
        if threading.current_thread().name == "first":
            paused.set()
            go.wait(60)
        return taken

    monkeypatch.setattr(IdempotencyRepository, "take", take_then_pause)

    def ask(name: str) -> None:
        threading.current_thread().name = name
        said[name] = service.book(clinic, booking(5, key="in-flight-5"))

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    retry = None
    try:
        assert paused.wait(30), "the first try never took its key"
        other = service.book(clinic, booking(2))  # the other doctor: the time is full, as committed
        assert isinstance(other, Booked) and {r.key for r in other.booking.resources} != {"dr-patel"}
        retry = threading.Thread(target=ask, args=("retry",))
        retry.start()
        while retry.is_alive() and not blocked_on_a_lock(engine):  # answered, or waiting for the first try
            retry.join(0.05)
        assert isinstance(service.cancel(clinic, BookingChange(code=early.booking.code)), Changed)
    finally:
        go.set()
        first.join(60)
        if retry is not None:
            retry.join(60)
    assert isinstance(said["first"], Booked), said
    assert isinstance(said["retry"], Booked) and said["retry"].replayed, said
    assert said["retry"].booking.id == said["first"].booking.id
    assert_invariant(engine, clinic)


def test_pairs_of_racers_sending_the_same_key_at_once_get_one_booking_and_one_answer_per_key(
        engine, database_url, make_business):
    """Twelve processes, six keys each sent by two at once, for the one doctor at 9:00: one key wins, and both its
    requests answer that booking; every other request is told 'taken', and the time was indeed taken then."""
    clinic = make_business("clinic")
    jobs = [[book_job(clinic, "consultation", MON_9, 800 + k, key=f"pair-{k}")] for k in range(6) for _ in range(2)]
    outcomes = [o for workload in race(engine, database_url, jobs) for o in workload]
    assert not [o for o in outcomes if o["type"] == "error"], outcomes
    by_key: dict[str, list[dict[str, Any]]] = {}
    for o in outcomes:
        by_key.setdefault(o["job"]["key"], []).append(o)
    won = [k for k, pair in by_key.items() if {o["type"] for o in pair} == {"Booked"}]
    assert len(won) == 1, by_key
    winners = by_key[won[0]]
    assert len({o["id"] for o in winners}) == 1 and sorted(o["replayed"] for o in winners) == [False, True], winners
    losers = [o for k, pair in by_key.items() if k != won[0] for o in pair]
    assert Counter(o["type"] for o in losers) == Counter({"SlotTaken": 10}), losers
    assert not any(o["open_after"] for o in losers), losers
    assert keys_kept(engine, clinic) == [won[0]]
    assert_invariant(engine, clinic)
