"""Two requests whose clocks sit either side of an expiry: a hold's, or an unpaid deposit's deadline.

Each request reads its clock before it reaches the database, and may then wait there (the gate, a row lock). So the
one that read its clock first may be answered last: one judges the claims still live, the other has already let
them go and taken the time. Whatever the order, the time is held once, by whole sets of claims.
"""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from nextslot.core.results import Booked, Held, SlotTaken
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingCreate, CustomerIn, HoldCreate
from nextslot.storage.tables import Payment
from tests.conftest import FrozenClock
from tests.storage.test_races import MON_9, NOW, assert_invariant, phone

pytestmark = pytest.mark.storage

HOLD_EXPIRES = NOW + timedelta(minutes=5)  # the clinic's holds last 5 minutes
MON_930 = MON_9 + timedelta(minutes=30)  # an hour's notice still met at the hold's expiry
GARAGE_TUE_10 = datetime.fromisoformat("2026-11-24T10:00:00-05:00")  # before 10:30 only Sam works
REPAIR = {"address": "12 Elm St", "problem": "Won't start", "drivable": "no"}


def at(session_factory, when: datetime) -> BookingService:
    return BookingService(session_factory, clock=FrozenClock(when))


def consultation(n: int, hold_id: int | None = None) -> BookingCreate:
    return BookingCreate(service="consultation", starts_at=MON_930, hold_id=hold_id,
                         customer=CustomerIn(name=f"Caller {n}", phone=phone(n)))


def settled_holds(session_factory, engine: Engine, business: int) -> None:
    at(session_factory, HOLD_EXPIRES + timedelta(minutes=1)).expire_holds()  # the scheduler's sweep, as it runs
    assert_invariant(engine, business)


def test_a_hold_let_go_by_a_later_clock_is_not_converted_into_a_booking_without_claims(
        make_business, session_factory, engine):
    clinic = make_business("clinic")
    held = at(session_factory, NOW).hold(clinic, HoldCreate(service="consultation", starts_at=MON_930))
    assert isinstance(held, Held)
    racer = at(session_factory, HOLD_EXPIRES + timedelta(seconds=1)).book(clinic, consultation(1))
    late = at(session_factory, HOLD_EXPIRES - timedelta(seconds=1)).book(clinic, consultation(2, held.hold.id))
    assert isinstance(racer, Booked)
    assert isinstance(late, SlotTaken) and late.alternatives  # the time went to the racer: it is told so
    settled_holds(session_factory, engine, clinic)


def test_a_hold_converted_at_its_expiry_while_another_caller_books_holds_the_time_once(
        make_business, session_factory, engine):
    for n in range(4):
        clinic = make_business("clinic")
        held = at(session_factory, NOW).hold(clinic, HoldCreate(service="consultation", starts_at=MON_930))
        assert isinstance(held, Held)
        calls = {"racer": lambda: at(session_factory, HOLD_EXPIRES + timedelta(milliseconds=200)).book(
                     clinic, consultation(10 * n)),
                 "holder": lambda: at(session_factory, HOLD_EXPIRES - timedelta(milliseconds=200)).book(
                     clinic, consultation(10 * n + 1, held.hold.id))}
        answers = race(calls)
        assert sorted(type(a).__name__ for a in answers.values()) == ["Booked", "SlotTaken"], answers
        settled_holds(session_factory, engine, clinic)


def test_a_deposit_paid_at_its_deadline_after_one_of_its_claims_went_to_another_booking_is_refunded(
        make_business, session_factory, engine):
    garage = make_business("garage")
    made = at(session_factory, NOW).book(garage, BookingCreate(
        service="mobile-repair", starts_at=GARAGE_TUE_10, intake=REPAIR,
        customer=CustomerIn(name="Ada", phone="+12125550100")))
    assert isinstance(made, Booked) and made.booking.status == "pending_payment"
    deadline = NOW + timedelta(minutes=30)
    oil = at(session_factory, deadline + timedelta(seconds=1)).book(garage, BookingCreate(  # Sam, not the van
        service="oil-change", starts_at=GARAGE_TUE_10, intake={"vehicle": "Ford", "registration": "X1"},
        customer=CustomerIn(name="Oil", phone="+12125550101")))
    assert isinstance(oil, Booked)

    payer = at(session_factory, deadline - timedelta(seconds=1))  # the webhook's request read its clock in time
    with session_factory() as s:
        payment = s.scalars(select(Payment).where(Payment.booking_id == made.booking.id)).one()
    ref = f"cs_{uuid.uuid4().hex[:8]}"
    payer.record_checkout(garage, payment.id, "local", ref, "https://pay.example/x")
    settled = payer.settle_deposit("local", ref, 2500, "USD", {"event": "paid"})
    assert settled.outcome == "refund_due"  # no other mechanic then: it cannot be kept with the van alone
    after = payer.get_booking(garage, made.booking.code)
    assert after.status == "expired" and after.payment.status == "refund_due"
    assert_invariant(engine, garage)


def race(calls: dict[str, object]) -> dict[str, object]:
    """Run each call in its own thread, released together."""
    barrier, answers = threading.Barrier(len(calls)), {}

    def run(name: str, call) -> None:
        barrier.wait()
        answers[name] = call()

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers
