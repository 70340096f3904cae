"""Cancellation cutoffs and late costs: customers' own channels stop at the cutoff, staff do not; a late cancel
or a no-show keeps the deposit or charges a fee, recorded on the booking and in its history, charged once."""
from __future__ import annotations

import copy
import threading
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from nextslot.core.results import Booked, Changed, Rejected
from nextslot.payments.base import ChargeOutcome, FeeCharge
from nextslot.payments.fees import charge_due_fees
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn
from nextslot.storage.tables import BookingFee, BookingHistory, Payment
from tests.conftest import example

VAN = "2026-11-24T10:00:00-05:00"  # Tuesday 15:00 UTC: 31 hours after the clock's Monday 08:00 UTC
OIL = "2026-11-24T11:00:00-05:00"
ANSWERS = {"address": "12 Elm St", "problem": "Won't start"}
OIL_ANSWERS = {"vehicle": "Ford Focus", "registration": "ABC123"}
LATE = timedelta(hours=10)  # Monday 18:00 UTC: 21 hours before the van, inside a 24-hour cutoff


def garage_with(policy: dict | None = None, **per_service: dict) -> dict:
    config = copy.deepcopy(example("garage"))
    if policy is not None:
        config["business"]["cancellation"] = policy
    for service in config["services"]:
        if service["key"].replace("-", "_") in per_service:
            service["cancellation"] = per_service[service["key"].replace("-", "_")]
    return config


def book_van(service, business, phone="+12125550180", at=VAN):
    result = service.book(business, BookingCreate(service="mobile-repair", starts_at=datetime.fromisoformat(at),
                                                  customer=CustomerIn(name="Ada", phone=phone), intake=ANSWERS))
    assert isinstance(result, Booked), result
    return result.booking


def book_oil(service, business, phone="+12125550181"):
    result = service.book(business, BookingCreate(service="oil-change", starts_at=datetime.fromisoformat(OIL),
                                                  customer=CustomerIn(name="Bo", phone=phone), intake=OIL_ANSWERS))
    assert isinstance(result, Booked), result
    return result.booking


def pay(service, session_factory, booking, saved=True):
    with session_factory() as s:
        payment = s.scalars(select(Payment).where(Payment.booking_id == booking.id)).one()
    ref = f"lc_{uuid.uuid4().hex[:12]}"
    service.record_checkout(payment.business_id, payment.id, "local", ref, f"https://pay.example/{ref}")
    settled = service.settle_deposit("local", ref, payment.amount_minor, payment.currency, {"event": "paid"},
                                     f"lcus_{ref}" if saved else None, f"lpi_{ref}" if saved else None)
    assert settled.outcome == "paid"


def cancel(service, business, code, source="page", **kw):
    return service.cancel(business, BookingChange(code=code, source=source, **kw))


def history(session_factory, booking_id):
    with session_factory() as s:
        return [(h.action, h.channel) for h in s.scalars(select(BookingHistory).where(
            BookingHistory.booking_id == booking_id).order_by(BookingHistory.id))]


def test_cancelling_in_time_frees_the_slot_and_makes_a_paid_deposit_due_back(
        service, make_business, session_factory):
    garage = make_business(garage_with({"cutoff_hours": 24}))
    booking = book_van(service, garage)
    pay(service, session_factory, booking)
    result = cancel(service, garage, booking.code)
    assert isinstance(result, Changed) and result.booking.status == "cancelled"
    assert result.booking.payment.status == "refund_due" and result.booking.fees == []


def test_a_late_self_service_cancel_says_what_it_costs_and_goes_through_only_once_accepted(
        service, make_business, session_factory, clock):
    garage = make_business(garage_with({"cutoff_hours": 24}))
    booking = book_van(service, garage)
    pay(service, session_factory, booking)
    clock.now += LATE
    asked = cancel(service, garage, booking.code, source="mcp")
    assert isinstance(asked, Rejected) and asked.code == "late_terms_not_accepted" and asked.field == "late_terms"
    assert asked.message == ("It's within 24 hours of the appointment, so the $25.00 deposit is kept. "
                             "Shall I still cancel?")
    assert service.get_booking(garage, booking.code).status == "booked"  # nothing changed

    done = cancel(service, garage, booking.code, source="mcp", late_terms="accept")
    assert isinstance(done, Changed) and done.booking.status == "cancelled"
    assert done.booking.payment.status == "kept"
    assert [(f.kind, f.status, f.amount.display) for f in done.booking.fees] == [("late_cancel", "deposit_kept",
                                                                                  "$25.00")]
    assert ("deposit_kept", "mcp") in history(session_factory, booking.id)
    again = cancel(service, garage, booking.code, source="mcp", late_terms="accept")
    assert isinstance(again, Changed) and again.replayed and len(again.booking.fees) == 1


def test_past_a_refusing_cutoff_only_staff_can_cancel_and_the_cost_applies_only_when_they_say(
        service, make_business, session_factory, clock):
    garage = make_business(garage_with({"cutoff_hours": 24, "late_cancel": "refuse"}),
                           details={"phone": "+1 718 555 0142"})
    first, second = book_van(service, garage), book_oil(service, garage)
    pay(service, session_factory, first)
    clock.now += LATE
    for source in ("page", "sms", "whatsapp_chat", "vapi", "api"):
        refused = cancel(service, garage, first.code, source=source, late_terms="accept")
        assert isinstance(refused, Rejected) and refused.code == "cancel_cutoff", source
        assert "call us on +1 718 555 0142" in refused.message
    by_staff = cancel(service, garage, first.code, source="staff")
    assert isinstance(by_staff, Changed) and by_staff.booking.payment.status == "refund_due"
    assert by_staff.booking.fees == []
    charged = cancel(service, garage, second.code, source="console", late_terms="accept")
    assert isinstance(charged, Changed) and charged.booking.fees == []  # oil change: no deposit, no fee set


def test_moves_stop_at_their_own_cutoff_for_customers_but_not_for_staff(service, make_business, clock):
    garage = make_business(garage_with({"cutoff_hours": 2, "move_cutoff_hours": 24}))
    booking = book_oil(service, garage)
    clock.now += LATE
    later = datetime.fromisoformat("2026-11-25T11:00:00-05:00")
    refused = service.reschedule(garage, BookingReschedule(code=booking.code, starts_at=later, source="page"))
    assert isinstance(refused, Rejected) and refused.code == "move_cutoff"
    assert refused.message.startswith("It's within 24 hours of the appointment, so it can no longer be moved here")
    moved = service.reschedule(garage, BookingReschedule(code=booking.code, starts_at=later, source="staff"))
    assert isinstance(moved, Booked) and moved.booking.starts_at.utc == later
    assert isinstance(cancel(service, garage, booking.code), Changed)  # 2-hour cancel cutoff: still free


def test_a_service_policy_wins_over_the_business_and_a_fee_without_a_card_is_owed(
        service, make_business, session_factory, clock):
    garage = make_business(garage_with({"cutoff_hours": 1},
                                       oil_change={"cutoff_hours": 48, "late_fee": {"amount": 15, "currency": "USD"}}))
    booking = book_oil(service, garage)
    asked = cancel(service, garage, booking.code, source="sms")  # 32 hours ahead: late for this service
    assert asked.code == "late_terms_not_accepted"
    assert "a $15.00 late-cancellation fee applies" in asked.message
    done = cancel(service, garage, booking.code, source="sms", late_terms="accept")
    assert [(f.status, f.amount.display) for f in done.booking.fees] == [("no_payment_method", "$15.00")]
    assert ("fee_owed", "sms") in history(session_factory, booking.id)


class CountingProvider:
    """A provider that charges every saved card and counts the charges it was asked for, per idempotency key."""

    name = "local"

    def __init__(self, decline: bool = False):
        self.calls: list[str] = []
        self.decline = decline
        self.lock = threading.Lock()

    def charge_saved(self, charge: FeeCharge) -> ChargeOutcome:
        with self.lock:
            self.calls.append(charge.idempotency_key)
        if self.decline:
            return ChargeOutcome(False, problem="card_declined")
        return ChargeOutcome(True, ref=f"ch_{charge.idempotency_key}")


def test_a_late_fee_is_charged_once_to_the_deposits_card_even_with_chargers_racing(
        service, make_business, session_factory, clock):
    policy = {"cutoff_hours": 48, "keep_deposit": False, "late_fee": {"amount": 10, "currency": "USD"}}
    garage = make_business(garage_with(mobile_repair=policy))
    booking = book_van(service, garage)
    pay(service, session_factory, booking)
    asked = cancel(service, garage, booking.code, source="retell")
    assert "a $10.00 late-cancellation fee is charged to the card used for the deposit" in asked.message
    done = cancel(service, garage, booking.code, source="retell", late_terms="accept")
    assert done.booking.payment.status == "refund_due"  # not kept: due back, and the fee is charged apart
    assert [f.status for f in done.booking.fees] == ["due"]

    provider = CountingProvider()
    threads = [threading.Thread(target=charge_due_fees, args=(service, provider)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    mine = [k for k in provider.calls if k.endswith(str(fee_id(session_factory, booking.id)))]
    assert len(mine) == 1  # six chargers at once: the lease gives the fee to one
    view = service.get_booking(garage, booking.code)
    assert [f.status for f in view.fees] == ["charged"]
    assert ("fee_charged", "payments") in history(session_factory, booking.id)
    charge_due_fees(service, provider)
    assert len([k for k in provider.calls if k in mine]) == 1  # nothing due any more


def fee_id(session_factory, booking_id):
    with session_factory() as s:
        return s.scalars(select(BookingFee.id).where(BookingFee.booking_id == booking_id)).one()


def test_a_no_show_keeps_the_deposit_or_charges_its_fee_unless_staff_waive_it(
        service, make_business, session_factory, clock):
    garage = make_business(garage_with({"cutoff_hours": 24, "no_show_fee": {"amount": 30, "currency": "USD"}}))
    kept, charged, waived = (book_van(service, garage, "+12125550190"), book_oil(service, garage, "+12125550191"),
                             book_van(service, garage, "+12125550192", "2026-11-24T12:30:00-05:00"))
    pay(service, session_factory, kept)
    pay(service, session_factory, waived)
    clock.now = datetime.fromisoformat("2026-11-24T13:00:00-05:00")
    first = service.mark_no_show(garage, BookingChange(code=kept.code, source="staff"))
    assert first.booking.payment.status == "kept"
    assert [(f.kind, f.status) for f in first.booking.fees] == [("no_show", "deposit_kept")]
    second = service.mark_no_show(garage, BookingChange(code=charged.code, source="staff"))
    assert [(f.kind, f.status, f.amount.display) for f in second.booking.fees] == [
        ("no_show", "no_payment_method", "$30.00")]
    third = service.mark_no_show(garage, BookingChange(code=waived.code, source="console", late_terms="waive"))
    assert third.booking.payment.status == "paid" and third.booking.fees == []


def test_a_declined_card_marks_the_fee_failed_for_staff_to_follow_up(service, make_business, session_factory,
                                                                       clock):
    garage = make_business(garage_with({"cutoff_hours": 48, "keep_deposit": False,
                                        "late_fee": {"amount": 10, "currency": "USD"}}))
    booking = book_van(service, garage)
    pay(service, session_factory, booking)
    cancel(service, garage, booking.code, late_terms="accept")
    charge_due_fees(service, CountingProvider(decline=True))
    assert [f.status for f in service.get_booking(garage, booking.code).fees] == ["failed"]
    assert ("fee_failed", "payments") in history(session_factory, booking.id)


@pytest.mark.parametrize("policy, problem", [
    ({"cutoff_hours": -1}, "greater than or equal to 0"),
    ({"late_cancel": "maybe"}, "'allow' or 'refuse'"),
    ({"late_fee": {"amount": 0, "currency": "USD"}}, "greater than 0"),
    ({"cutoff": 24}, "Extra inputs are not permitted"),
])
def test_a_bad_policy_is_refused_with_the_field_named(policy, problem):
    from pydantic import ValidationError

    from nextslot.schemas.config import BusinessConfig
    with pytest.raises(ValidationError) as error:
        BusinessConfig.model_validate(garage_with(policy))
    assert problem in str(error.value)
