"""A new booking written in one statement: a claim lost to a racer leaves nothing behind, a taken code is drawn
again, and an uncommitted book sends the few statements it was cut down to."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from nextslot.core.booking import writing
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from tests.storage.test_pooled_races import MON_10, racing
from tests.storage.test_races import invariant_violations, phone

pytestmark = pytest.mark.storage


def written_for(engine: Engine, business_id: int) -> dict[str, Any]:
    """Every row of the business the booking's statement writes, counted."""
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "select (select count(*) from bookings where business_id = :b) as bookings,"
            " (select count(*) from claims where business_id = :b and booking_id is not null) as claims,"
            " (select count(*) from booking_history where business_id = :b) as history,"
            " (select count(*) from notifications where business_id = :b) as messages"), {"b": business_id}).one()
            ._mapping)


def test_a_claim_half_lost_to_a_racer_is_taken_back_and_the_colleague_booked_with_one_of_everything(
    engine, session_factory, make_business, service
):
    # the racer holds only Dr Patel: our first pick (Dr Patel, room 1) gets room 1's claim in but not Dr Patel's;
    # that booking row and room 1's claim are taken back, and the next try takes Dr Okafor with room 1
    clinic = make_business("clinic")
    result = racing(session_factory, engine, clinic, ["dr-patel"], lambda: service.book(clinic, BookingCreate(
        service="consultation", starts_at=MON_10, customer=CustomerIn(name="Caller", phone=phone(1)))))
    assert isinstance(result, Booked), result
    assert sorted(r.key for r in result.booking.resources) == ["dr-okafor", "room-1"]
    assert written_for(engine, clinic) == {"bookings": 1, "claims": 2, "history": 1, "messages": 1}
    with engine.connect() as conn:
        row = conn.execute(text("select id, code from bookings where business_id = :b"), {"b": clinic}).one()
    assert tuple(row) == (result.booking.id, result.booking.code)
    with engine.connect() as conn:  # the racer's hold of one doctor, no room, is this test's own doing
        assert [v for v in invariant_violations(conn, clinic) if not v.startswith("hold with partial")] == []


def test_a_taken_code_is_drawn_again_within_the_one_statement(make_business, service, engine, monkeypatch):
    clinic = make_business("clinic")
    tomorrow = MON_10 + timedelta(days=1)  # a confirmation and two reminders each
    first = service.book(clinic, BookingCreate(service="consultation", starts_at=tomorrow,
                                               customer=CustomerIn(name="Ann Lee", phone=phone(2))))
    assert isinstance(first, Booked)
    draws = iter([first.booking.code, first.booking.code, "XYZ347"])
    monkeypatch.setattr(writing, "new_code", lambda: next(draws))
    again = service.book(clinic, BookingCreate(service="consultation", starts_at=tomorrow + timedelta(hours=1),
                                               customer=CustomerIn(name="Ben Ode", phone=phone(3))))
    assert isinstance(again, Booked) and again.booking.code == "XYZ347"
    assert written_for(engine, clinic) == {"bookings": 2, "claims": 4, "history": 2, "messages": 6}
    assert service.get_booking(clinic, "XYZ347") == again.booking  # the view made before the write is the row's


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    sent: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split())[:60])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_an_uncontended_book_sends_four_statements_and_one_more_for_an_idempotency_key(make_business, service, engine):
    # a regression guard on round trips (BEGIN and COMMIT aside): the config version (the plan is cached), the
    # calendar read, the customer, and one statement for the booking with everything it writes
    clinic = make_business("clinic")  # its no-show policy counts no customer's no-shows: none has any yet

    def book(n: int, key: str | None = None) -> Booked:
        made = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_10 + timedelta(hours=n),
                                                  customer=CustomerIn(name=f"Caller {n}", phone=phone(10 + n)),
                                                  idempotency_key=key))
        assert isinstance(made, Booked), made
        return made

    book(0)  # builds and caches the plan
    with statements(engine) as sent:
        book(1)
    assert len(sent) == 4, sent
    with statements(engine) as sent:
        made = book(2, key="retry-me")
    assert len(sent) == 5, sent
    replayed = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_10 + timedelta(hours=2),
                                                  customer=CustomerIn(name="Caller 2", phone=phone(12)),
                                                  idempotency_key="retry-me"))
    assert isinstance(replayed, Booked) and replayed.replayed and replayed.booking == made.booking
