"""Round 11: races over the booking rules, through real separate connections (threads with their own sessions)
and processes: a class's last places taken by parties of different sizes, a move racing a cancel of the same party,
and a deposit's 'paid' webhook racing the expiry job, another booker of its time and a move by staff."""
from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from nextslot.core.operations import check_invariants
from nextslot.core.results import Booked, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingCreate, BookingReschedule, CustomerIn
from nextslot.storage.tables import Payment
from tests.conftest import FrozenClock
from tests.core.test_party import CLASS, NEXT_CLASS, studio
from tests.core.test_round11_rules import spa
from tests.storage.test_races import NOW, assert_invariant, book_job, flat, race

pytestmark = pytest.mark.storage

JOIN = 30  # seconds: a hang guard, never a timing assertion


def seats_taken(engine, business: int, start: datetime) -> int:
    with engine.connect() as conn:
        return conn.execute(text(
            "select coalesce(sum(c.seats), 0) from claims c join resources r on r.id = c.resource_id "
            "where r.business_id = :b and r.key = 'yoga-room' and c.active and lower(c.during) = :t"),
            {"b": business, "t": start}).scalar()


def whole_database_sound(service: BookingService) -> None:
    assert [r["check"] for r in check_invariants(service) if not r["holds"]] == []


@pytest.mark.parametrize("left, parties", [(1, [2, 1]), (2, [2, 1, 1]), (3, [2, 2, 3]), (2, [3, 3])])
def test_the_last_places_of_a_class_go_to_parties_that_fit_and_never_beyond(engine, database_url, make_business,
                                                                           service, left, parties):
    business = make_business(studio())
    for n, size in enumerate((6, 4 - left)):  # a booking takes at most six
        assert isinstance(service.book(business, BookingCreate(
            service="yoga", starts_at=CLASS, party_size=size,
            customer=CustomerIn(name="Filler", phone=f"+44791113050{n}"))), Booked)
    assert seats_taken(engine, business, CLASS) == 10 - left
    jobs = [[book_job(business, "yoga", CLASS, 600 + n, party_size=p)] for n, p in enumerate(parties)]
    outcomes = flat(race(engine, database_url, jobs))
    assert {o["type"] for o in outcomes} <= {"Booked", "SlotTaken"}, outcomes
    won = sum(o["job"]["party_size"] for o in outcomes if o["type"] == "Booked")
    assert won <= left and (won > 0 or min(parties) > left)  # someone who fitted won
    assert all(o["job"]["party_size"] > left - won for o in outcomes if o["type"] == "SlotTaken")
    assert seats_taken(engine, business, CLASS) == 10 - left + won
    assert_invariant(engine, business)


def test_a_move_racing_a_cancel_of_the_same_party_leaves_it_cancelled_with_every_place_free(
        engine, database_url, make_business, service):
    for n in range(3):
        business = make_business(studio())
        party = service.book(business, BookingCreate(service="yoga", starts_at=CLASS, party_size=4,
                                                     customer=CustomerIn(name="Party", phone=f"+44791113070{n}")))
        assert isinstance(party, Booked)
        code = party.booking.code
        move = dict(op="reschedule", business=business, service="yoga", code=code, starts_at=NEXT_CLASS.isoformat())
        cancel = dict(op="cancel", business=business, service="yoga", code=code)
        moved, cancelled = flat(race(engine, database_url, [[move], [cancel]]))
        assert cancelled["type"] == "Changed" and cancelled["status"] == "cancelled", cancelled
        assert moved["type"] == "Booked" or (moved["type"] == "Rejected" and moved["code"] == "booking_not_active"), \
            moved
        view = service.get_booking(business, code)
        assert view.status == "cancelled"
        assert view.starts_at.utc == (NEXT_CLASS if moved["type"] == "Booked" else CLASS)
        assert seats_taken(engine, business, CLASS) == 0 and seats_taken(engine, business, NEXT_CLASS) == 0
        assert_invariant(engine, business)
    whole_database_sound(service)


CONSULT = datetime(2026, 11, 24, 10, tzinfo=UTC)
DEADLINE = NOW + timedelta(minutes=30)


def threads(calls: dict[str, object]) -> dict[str, object]:
    """Run each call in its own thread (its own session and connection), released together."""
    barrier, answers = threading.Barrier(len(calls)), {}

    def run(name: str, call) -> None:
        barrier.wait(JOIN)
        try:
            answers[name] = call()
        except BaseException as error:  # noqa: BLE001 - reported below as the thread's answer
            answers[name] = error

    running = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(JOIN)
    assert not any(t.is_alive() for t in running), "a racer hung"
    return answers


@pytest.mark.parametrize("round_", range(4))
def test_a_paid_webhook_racing_the_expiry_job_another_booker_and_a_move_holds_the_time_once(
        make_business, session_factory, engine, round_):
    """Everyone's clock is past the deadline: the payment takes the time back if no one else has it (then staff may
    move it), else it is due back; the booking is never both expired and held, nor the time held twice."""
    business = make_business(spa())
    made = BookingService(session_factory, clock=FrozenClock(NOW)).book(business, BookingCreate(
        service="consult", starts_at=CONSULT, customer=CustomerIn(name="Payer", phone="+447911130800")))
    assert isinstance(made, Booked) and made.booking.status == "pending_payment"
    late = BookingService(session_factory, clock=FrozenClock(DEADLINE + timedelta(seconds=1)))
    with session_factory() as s:
        payment = s.scalars(select(Payment).where(Payment.booking_id == made.booking.id)).one()
    ref = f"r11_{uuid.uuid4().hex[:12]}"
    late.record_checkout(business, payment.id, "local", ref, "https://pay.example/r11")
    answers = threads({
        "pay": lambda: late.settle_deposit("local", ref, payment.amount_minor, payment.currency, {"event": "paid"}),
        "expire": late.expire_unpaid,
        "book": lambda: late.book(business, BookingCreate(
            service="consult", starts_at=CONSULT, customer=CustomerIn(name="Other", phone="+447911130801"))),
        "move": lambda: late.reschedule(business, BookingReschedule(code=made.booking.code, source="staff",
                                                                    starts_at=CONSULT + timedelta(hours=1))),
    })
    assert not [a for a in answers.values() if isinstance(a, BaseException)], answers
    mine = late.get_booking(business, made.booking.code)
    other = answers["book"]
    assert isinstance(other, Booked | SlotTaken), other
    move = answers["move"]
    assert isinstance(move, Booked) or (isinstance(move, Rejected) and move.code == "booking_not_active"), move
    if answers["pay"].outcome == "paid":
        assert mine.status == "booked" and mine.payment.status == "paid"
        assert mine.starts_at.utc == (CONSULT + timedelta(hours=1) if isinstance(move, Booked) else CONSULT)
        assert isinstance(other, SlotTaken) or mine.starts_at.utc != CONSULT
    else:
        assert answers["pay"].outcome == "refund_due" and isinstance(other, Booked)
        assert mine.status == "expired" and mine.payment.status == "refund_due" and not isinstance(move, Booked)
    with engine.connect() as conn:
        holders = conn.execute(text(
            "select count(*) from claims c join bookings b on b.id = c.booking_id "
            "where b.business_id = :b and c.active and lower(c.during) = :t "
            "and (c.expires_at is null or c.expires_at > :now)"),
            {"b": business, "t": CONSULT, "now": DEADLINE + timedelta(seconds=1)}).scalar()
    kept_here = mine.status == "booked" and mine.starts_at.utc == CONSULT
    assert holders == kept_here + isinstance(other, Booked) <= 1, answers  # never both; neither only after a move
    assert_invariant(engine, business)
    whole_database_sound(late)
