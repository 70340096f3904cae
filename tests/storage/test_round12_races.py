"""Round 12 races: a recurring series changed from its middle while other clients change its occurrences one by one,
and a customer erased while a tool call books for her number. Threads with their own connections on the real
database, released together (`at_once`) or one held at a step while the other runs (`held_then`); each race ends with
`nextslot check`'s invariants no more broken than before and the tests' own invariant query on the business.

These held: nothing here needed a fix (what they found is in the README's twelfth round).
"""
from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from nextslot.core.customers.data_rights import Erased, erase_customer
from nextslot.core.results import Booked, Changed, Rejected, SeriesBooked, SeriesChanged, SlotTaken
from nextslot.core.service import BookingService
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    CustomerIn,
    SeriesCreate,
    SeriesRule,
)
from nextslot.storage.engine import build_session_factory, engine_for
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.storage.test_races import MON_9, NOW, assert_invariant, phone
from tests.storage.test_races_round10 import at_once, broken_checks, held_then, pause_after

pytestmark = pytest.mark.storage

WEEK = timedelta(days=7)
NOON = MON_9 + timedelta(hours=5)  # Monday 14:00 in London: both doctors work, until 18:00


def statuses(engine, clinic: int) -> dict[str, tuple[str, Any]]:
    with engine.connect() as conn:
        return {code: (status, start) for code, status, start in conn.execute(text(
            "select code, status, starts_at from bookings where business_id = :b"), {"b": clinic})}


def weekly_series(service: BookingService, clinic: int, n: int) -> list[str]:
    made = service.book_series(clinic, SeriesCreate(
        service="consultation", starts_at=NOON, mode="all_or_none", resources=["dr-patel"],
        repeat=SeriesRule(count=4), customer=CustomerIn(name="Series Sue", phone=phone(n))))
    assert isinstance(made, SeriesBooked) and made.series.complete, made
    return [o.booking.code for o in made.series.occurrences if o.booking]


@pytest.mark.parametrize("round_", range(3))
def test_a_series_moved_and_cancelled_from_its_middle_while_its_occurrences_change_one_by_one(
        round_, engine, make_business, service):
    # Five clients at once on one series of four Mondays with Dr Patel: move it from the second Monday an hour
    # later, move the third alone to two hours later, cancel the fourth alone, cancel the series from the third,
    # and a stranger books Dr Patel at the second Monday's 13:00 (the series move's target).
    before = broken_checks(service)
    clinic = make_business("clinic")
    w1, w2, w3, w4 = weekly_series(service, clinic, 70 + round_)
    hour = timedelta(hours=1)
    answers = at_once({
        "move_from_w2": lambda: service.move_series(clinic, BookingReschedule(
            code=w2, starts_at=NOON + WEEK + hour, resources=["dr-patel"])),
        "move_w3": lambda: service.reschedule(clinic, BookingReschedule(
            code=w3, starts_at=NOON + 2 * WEEK + 2 * hour, resources=["dr-patel"])),
        "cancel_w4": lambda: service.cancel(clinic, BookingChange(code=w4)),
        "cancel_from_w3": lambda: service.cancel_series(clinic, BookingChange(code=w3)),
        "stranger": lambda: service.book(clinic, BookingCreate(
            service="consultation", starts_at=NOON + WEEK + hour, resources=["dr-patel"],
            customer=CustomerIn(name="Stranger", phone=phone(80 + round_)))),
    })
    assert not [a for a in answers.values() if isinstance(a, Exception)], answers
    expected = {"move_from_w2": (SeriesChanged, SlotTaken, Rejected), "move_w3": (Booked, Rejected),
                "cancel_w4": (Changed, Rejected), "cancel_from_w3": (SeriesChanged, Rejected),
                "stranger": (Booked, SlotTaken)}
    for name, kinds in expected.items():
        assert isinstance(answers[name], kinds), (name, answers[name])
    assert isinstance(answers["move_from_w2"], SeriesChanged) != isinstance(answers["stranger"], Booked), answers
    final = statuses(engine, clinic)
    assert final[w1] == ("booked", NOON)  # before every change's first occurrence: untouched
    if isinstance(answers["move_from_w2"], SeriesChanged):  # what its answer says of the second Monday stands
        assert final[w2] == ("booked", NOON + WEEK + hour)
    else:
        assert final[w2] == ("booked", NOON + WEEK)
    if isinstance(answers["cancel_from_w3"], SeriesChanged):
        assert final[w3][0] == final[w4][0] == "cancelled"
    for name in ("move_w3", "cancel_w4", "cancel_from_w3"):  # a refusal is only "not active" (already cancelled)
        if isinstance(answers[name], Rejected):
            assert answers[name].code == "booking_not_active", (name, answers[name])
    assert_invariant(engine, clinic)
    assert broken_checks(service) == before


def test_a_customer_erased_while_an_agents_tool_call_books_for_her_number_is_never_booked_after(
        engine, database_url, session_factory, make_business, service):
    # The tool call has found her row by phone (the upsert holds it) when the erasure starts: the erasure waits for
    # the booking's commit and is refused for the booking it then sees (an erasure committed first would have left
    # the upsert no row with her number: a new customer).
    before = broken_checks(service)
    clinic = make_business("clinic")
    number = phone(90)
    first = service.book(clinic, BookingCreate(service="consultation", starts_at=NOON + 2 * timedelta(hours=1),
                                               customer=CustomerIn(name="Nell Number", phone=number)))
    assert isinstance(first, Booked)
    assert isinstance(service.cancel(clinic, BookingChange(code=first.booking.code)), Changed)

    booker_engine = engine_for(database_url, pool_size=1)
    go, read, erased = threading.Event(), threading.Event(), threading.Event()
    event.listen(booker_engine, "before_cursor_execute", lambda *a: None)  # hot reads go through the engine too
    pause_after(booker_engine, "insert into customers", go, read)  # her row found and held by the upsert
    booker = BookingService(build_session_factory(booker_engine), clock=lambda: NOW)
    answers: dict[str, Any] = {}

    def tool_call() -> None:
        answers["tool"] = execute("book_appointment", {
            "service": "consultation", "starts_at": (NOON + timedelta(hours=3)).isoformat(),
            "customer_name": "Nell Number", "phone": number}, ToolContext(service=booker, business_id=clinic,
                                                                          channel="mcp"))

    def erasure() -> None:
        answers["erasure"] = erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, NOW, phone=number)
        erased.set()

    try:
        held_then(tool_call, erasure, read, erased, go, engine)
    finally:
        booker_engine.dispose()
    booked, gone = answers["tool"], answers["erasure"]
    assert booked.ok and booked.data["outcome"] == "booked", booked.data
    with engine.connect() as conn:
        rows = conn.execute(text("select c.erased_at, c.phone from bookings b join customers c on c.id = b.customer_id "
                                 "where b.business_id = :b and b.status = 'booked'"), {"b": clinic}).all()
    assert [tuple(r) for r in rows] == [(None, number)], rows  # booked for a live customer with her number
    assert isinstance(gone, Rejected) and gone.code == "upcoming_bookings", gone  # it waited, then saw the booking
    again = erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, NOW, cancel_upcoming=True, phone=number)
    assert isinstance(again, Erased) and again.cancelled == 1, again
    assert_invariant(engine, clinic)
    assert broken_checks(service) == before
