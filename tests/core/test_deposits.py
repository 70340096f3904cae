"""Deposits: a booking waits as pending payment, holds its slot until the deadline, and is confirmed when paid."""
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from nextslot.core.results import Booked, Changed, Rejected, Slots, SlotTaken
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn, SlotQuery
from nextslot.storage.tables import BookingHistory, Notification, Payment

START = "2026-11-24T10:00:00-05:00"  # Tuesday, New York: the garage's van service
ANSWERS = {"address": "12 Elm St", "problem": "Won't start", "drivable": "no"}


@pytest.fixture
def garage(make_business):
    return make_business("garage")


def book(service, garage, phone="+12125550100", starts_at=START, **kw):
    return service.book(garage, BookingCreate(
        service="mobile-repair", starts_at=datetime.fromisoformat(starts_at),
        customer=CustomerIn(name="Ada", phone=phone), intake=ANSWERS, **kw))


def provider_ref(session_factory, code_id):
    with session_factory() as s:
        return s.scalars(select(Payment).where(Payment.booking_id == code_id)).one()


def pay(service, session_factory, booking_id, ref="cs", amount=2500, currency="USD"):
    """Start a checkout (unique reference: tests share the database) and report it paid."""
    payment = provider_ref(session_factory, booking_id)
    ref = payment.provider_ref or f"{ref}_{uuid.uuid4().hex[:8]}"
    service.record_checkout(payment.business_id, payment.id, "local", ref, f"https://pay.example/{ref}")
    return service.settle_deposit("local", ref, amount, currency, {"event": "paid"})


def slot_offered(service, garage, starts_at=START):
    found = service.find_slots(garage, SlotQuery(service="mobile-repair",
                                                 starts_from=datetime.fromisoformat("2026-11-24T08:00:00-05:00"),
                                                 until=datetime.fromisoformat("2026-11-24T17:00:00-05:00")))
    assert isinstance(found, Slots)
    wanted = datetime.fromisoformat(starts_at)
    return [s for s in found.slots if s.starts_at.utc == wanted and "van" in {r.key for r in s.resources}]


def kinds(session_factory, booking_id):
    with session_factory() as s:
        return sorted(n.kind for n in s.scalars(select(Notification).where(
            Notification.booking_id == booking_id, Notification.status != "void")))


def test_a_deposit_service_books_pending_payment_holding_the_slot_without_confirming(
        service, garage, session_factory):
    result = book(service, garage)
    assert isinstance(result, Booked)
    view = result.booking
    assert view.status == "pending_payment"
    assert view.payment.status == "pending" and view.payment.amount.amount_minor == 2500
    assert view.payment.amount.display == "$25.00"
    assert view.payment.expires_at == service.now() + timedelta(minutes=30)
    assert kinds(session_factory, view.id) == ["deposit_requested"]  # a pay link; no confirmation or reminders yet
    assert slot_offered(service, garage) == []  # the van is held while the customer pays
    other = book(service, garage, phone="+12125550101")
    assert isinstance(other, SlotTaken) or other.booking.resources != view.resources


def test_paying_confirms_the_booking_queues_its_messages_and_replays_harmlessly(service, garage, session_factory):
    view = book(service, garage).booking
    settled = pay(service, session_factory, view.id)
    assert settled.outcome == "paid"
    booking = service.get_booking(garage, view.code)
    assert booking.status == "booked" and booking.payment.status == "paid"
    assert booking.payment.paid_at == service.now()
    assert kinds(session_factory, view.id) == ["confirmation", "reminder", "reminder"]  # the pay request voided
    assert pay(service, session_factory, view.id).outcome == "already_paid"
    assert kinds(session_factory, view.id) == ["confirmation", "reminder", "reminder"]
    with session_factory() as s:
        actions = [h.action for h in s.scalars(select(BookingHistory).where(BookingHistory.booking_id == view.id)
                                               .order_by(BookingHistory.id))]
    assert actions == ["created", "deposit_paid"]


def test_a_wrong_amount_or_unknown_reference_confirms_nothing(service, garage, session_factory):
    view = book(service, garage).booking
    assert pay(service, session_factory, view.id, amount=100).outcome == "mismatch"
    mismatched = service.get_booking(garage, view.code)  # the money is due back; its checkout cannot be paid again
    assert (mismatched.status, mismatched.payment.status) == ("expired", "refund_due")
    unknown = service.settle_deposit("local", "cs_nobody", 2500, "USD", {})
    assert isinstance(unknown, Rejected) and unknown.code == "unknown_payment"


def test_an_unpaid_booking_stops_blocking_at_the_deadline_and_expires(service, garage, clock, session_factory):
    view = book(service, garage).booking
    clock.now += timedelta(minutes=31)
    assert slot_offered(service, garage)  # free again before any sweep ran
    assert service.expire_unpaid() >= 1
    expired = service.get_booking(garage, view.code)
    assert expired.status == "expired" and expired.payment.status == "expired"
    assert service.expire_unpaid() == 0


def test_a_late_payment_takes_the_slot_back_if_still_free_else_is_marked_for_refund(
        service, garage, clock, session_factory):
    first = book(service, garage).booking
    second = book(service, garage, phone="+12125550102", starts_at="2026-11-24T13:00:00-05:00").booking
    clock.now += timedelta(minutes=31)
    service.expire_unpaid()
    assert pay(service, session_factory, first.id, ref="cs_late").outcome == "paid"
    assert service.get_booking(garage, first.code).status == "booked"
    assert slot_offered(service, garage) == []

    taken = [book(service, garage, phone=f"+1212555011{n}", starts_at="2026-11-24T13:00:00-05:00")
             for n in range(2)]  # both van slots at 13:00 (one van: the second loses)
    assert isinstance(taken[0], Booked)
    if taken[0].booking.status == "pending_payment":
        pay(service, session_factory, taken[0].booking.id, ref="cs_other")
    settled = pay(service, session_factory, second.id, ref="cs_too_late")
    assert settled.outcome == "refund_due"
    late = service.get_booking(garage, second.code)
    assert late.status == "expired" and late.payment.status == "refund_due"


def test_a_pending_payment_booking_can_be_cancelled_and_a_later_payment_is_refund_due(
        service, garage, session_factory):
    view = book(service, garage).booking
    cancelled = service.cancel(garage, BookingChange(code=view.code))
    assert isinstance(cancelled, Changed) and cancelled.booking.status == "cancelled"
    assert slot_offered(service, garage)
    assert pay(service, session_factory, view.id, ref="cs_cancelled").outcome == "refund_due"


def test_required_intake_answers_are_enforced_and_cleaned_on_every_booking(service, make_business):
    garage = make_business("garage")
    base = dict(service="oil-change", starts_at=datetime.fromisoformat("2026-11-24T10:00:00-05:00"),
                customer=CustomerIn(name="Ada", phone="+12125550120"))
    missing = service.book(garage, BookingCreate(**base, intake={"vehicle": "Honda Civic"}))
    assert isinstance(missing, Rejected) and (missing.code, missing.field) == ("intake_required", "intake.registration")
    unknown = service.book(garage, BookingCreate(**base, intake={"vehicle": "Civic", "registration": "AB1",
                                                                   "colour": "red"}))
    assert isinstance(unknown, Rejected) and unknown.field == "intake.colour" and "vehicle" in unknown.suggestions
    bad_choice = service.book(garage, BookingCreate(**base, intake={"vehicle": "Civic", "registration": "AB1",
                                                                      "oil": "olive"}))
    assert isinstance(bad_choice, Rejected) and bad_choice.code == "intake_invalid"
    assert "Full synthetic" in bad_choice.suggestions
    booked = service.book(garage, BookingCreate(**base, intake={"vehicle": " Civic ", "registration": "AB1",
                                                                  "oil": "full SYNTHETIC"}))
    assert isinstance(booked, Booked)
    assert booked.booking.intake == {"vehicle": "Civic", "registration": "AB1", "oil": "Full synthetic"}


def test_the_no_show_policy_asks_a_deposit_of_a_customer_who_missed_enough_appointments(
        service, make_business, clock, session_factory):
    clinic = make_business("clinic", no_show_policy={"after": 2, "within_days": 180,
                                                     "deposit": {"amount": "15.00", "currency": "GBP"}})
    phone = "+447911123777"

    def consult(day: int):
        return service.book(clinic, BookingCreate(
            service="consultation", starts_at=datetime.fromisoformat(f"2026-11-{day}T09:00:00+00:00"),
            customer=CustomerIn(name="Ned", phone=phone)))

    missed = [consult(24).booking, consult(25).booking]
    first_ok = consult(26)
    assert first_ok.booking.status == "booked" and first_ok.booking.payment is None
    clock.now = datetime.fromisoformat("2026-11-25T10:00:00+00:00")
    for booking in missed:
        assert isinstance(service.mark_no_show(clinic, BookingChange(code=booking.code)), Changed)
    flagged = consult(27)
    assert flagged.booking.status == "pending_payment"
    assert (flagged.booking.payment.reason, flagged.booking.payment.amount.display) == ("no_shows", "£15.00")
    other = service.book(clinic, BookingCreate(service="consultation",
                                               starts_at=datetime.fromisoformat("2026-11-27T10:00:00+00:00"),
                                               customer=CustomerIn(name="Kay", phone="+447911123778")))
    assert other.booking.payment is None  # only the customer who missed appointments



def test_no_shows_older_than_the_policys_window_ask_no_deposit(service, make_business, clock):
    clinic = make_business("clinic", no_show_policy={"after": 2, "within_days": 30,
                                                     "deposit": {"amount": "15.00", "currency": "GBP"}})

    def consult(when: str):
        return service.book(clinic, BookingCreate(service="consultation", starts_at=datetime.fromisoformat(when),
                                                  customer=CustomerIn(name="Ned", phone="+447911123779")))

    missed = [consult("2026-11-24T09:00:00+00:00").booking, consult("2026-11-25T09:00:00+00:00").booking]
    clock.now = datetime.fromisoformat("2026-11-25T10:00:00+00:00")
    for booking in missed:
        assert isinstance(service.mark_no_show(clinic, BookingChange(code=booking.code)), Changed)
    assert consult("2026-11-27T09:00:00+00:00").booking.status == "pending_payment"  # two within 30 days
    clock.now = datetime.fromisoformat("2027-01-10T10:00:00+00:00")  # both now older than 30 days
    later = consult("2027-01-12T09:00:00+00:00")
    assert later.booking.status == "booked" and later.booking.payment is None


def test_a_late_payment_whose_mechanic_was_taken_gets_a_colleague_free_at_that_time(
        service, garage, clock, session_factory):
    eleven = "2026-11-24T11:00:00-05:00"  # Jo (listed first) works from 10:00, travel included
    first = book(service, garage, starts_at=eleven).booking
    assert [r.key for r in first.resources] == ["jo", "van"]
    clock.now += timedelta(minutes=31)
    service.expire_unpaid()
    other = service.book(garage, BookingCreate(  # Jo goes to an oil change across the van's time
        service="oil-change", starts_at=datetime.fromisoformat(eleven), resources=["jo"],
        customer=CustomerIn(name="Bo", phone="+12125550177"),
        intake={"vehicle": "Ford Focus", "registration": "ABC 123"}))
    assert isinstance(other, Booked) and "jo" in [r.key for r in other.booking.resources]

    assert pay(service, session_factory, first.id, ref="cs_colleague").outcome == "paid"
    paid = service.get_booking(garage, first.code)
    assert paid.status == "booked" and sorted(r.key for r in paid.resources) == ["sam", "van"]


def corrupt_details(session_factory, business_id, **details):
    """Store settings past every check, as an old or hand-edited row would hold them."""
    from nextslot.storage.tables import Business

    with session_factory() as s:
        row = s.get(Business, business_id)
        row.details = {**row.details, **details}
        s.commit()


def test_one_business_whose_bookings_cannot_be_shown_holds_up_no_other_business_expiring_deposits(
        service, make_business, clock, session_factory, caplog):
    from nextslot.storage.tables import WebhookDelivery
    from nextslot.storage.uow import SqlAlchemyUnitOfWork
    from nextslot.webhooks.endpoints import add_endpoint

    broken, fine = make_business("garage"), make_business("garage")
    for garage in (broken, fine):
        add_endpoint(SqlAlchemyUnitOfWork(session_factory), garage, "https://hooks.example/in", ["booking.expired"])
    unpaid = {garage: book(service, garage, phone=phone).booking
              for garage, phone in ((broken, "+12125550181"), (fine, "+12125550182"))}
    corrupt_details(session_factory, broken, deposit_hold_minutes="half an hour")  # its booking view raises
    clock.now += timedelta(minutes=31)

    assert service.expire_unpaid() >= 2
    with session_factory() as s:
        for garage, view in unpaid.items():
            assert provider_ref(session_factory, view.id).status == "expired"
            assert s.scalars(select(BookingHistory.action).where(BookingHistory.booking_id == view.id)
                             .order_by(BookingHistory.id)).all()[-1] == "expired"  # the latest entry
        sent = {d.business_id for d in s.scalars(select(WebhookDelivery).where(
            WebhookDelivery.event_type == "booking.expired", WebhookDelivery.business_id.in_([broken, fine])))}
    assert sent == {fine}  # the broken business loses the event, not the expiry
    assert f"booking {unpaid[broken].id} (business {broken}): no booking.expired event (ValueError)" in caplog.text
    assert "+12125550181" not in caplog.text and "Ada" not in caplog.text
    assert service.expire_unpaid() == 0
