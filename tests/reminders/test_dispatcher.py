"""The outbox dispatcher on PostgreSQL: channel order and fallback, retries, receipts, leases, voiding.

Channels here are small scripted fakes (the real Twilio and SMTP channels are tested against a fake
Twilio API and a real SMTP server in test_channels.py and test_delivery.py)."""
from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta
from urllib.parse import urlparse

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from nextslot.core.links import Links
from nextslot.reminders.channels.base import OutgoingMessage, SendResult
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.receipts import record_receipt
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn
from nextslot.storage.tables import Business, Customer, DeliveryAttempt, Notification, Payment

TUESDAY_9 = datetime.fromisoformat("2026-11-24T09:00:00+00:00")
ids = itertools.count()


class ScriptedChannel:
    """Answers each send with the next scripted result (accepted 'queued' when the script is empty)."""

    def __init__(self, name: str, *script: SendResult):
        self.name = name
        self.script = list(script)
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        self.sent.append(message)
        if self.script:
            return self.script.pop(0)
        status = "delivered" if self.name == "email" else "queued"
        return SendResult(True, f"{self.name}-{next(ids)}", status)


def refused(code: str = "63016", transient: bool = False) -> SendResult:
    return SendResult(False, None, "failed", code, "refused", transient=transient)


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


@pytest.fixture
def channels() -> dict[str, ScriptedChannel]:
    return {name: ScriptedChannel(name) for name in ("whatsapp", "sms", "email")}


@pytest.fixture
def dispatcher(session_factory, channels, clock) -> Dispatcher:
    return Dispatcher(session_factory, channels, clock=clock, receipt_timeout=timedelta(minutes=10))


def book(service, business: int, start: datetime = TUESDAY_9, **customer) -> str:
    who = {"name": "Ann Lee", "phone": "+447911123456", "email": "ann@example.com", **customer}
    result = service.book(business, BookingCreate(service="consultation", starts_at=start, customer=CustomerIn(**who)))
    return result.booking.code


def notifications(session_factory, business: int) -> list[Notification]:
    with session_factory() as s:
        return list(s.scalars(select(Notification).where(Notification.business_id == business)
                              .order_by(Notification.id)))


def attempts(session_factory, notification_id: int) -> list[DeliveryAttempt]:
    with session_factory() as s:
        return list(s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.notification_id == notification_id)
                              .order_by(DeliveryAttempt.id)))


def only(session_factory, business: int, kind: str) -> Notification:
    [n] = [n for n in notifications(session_factory, business) if n.kind == kind and n.status != "void"]
    return n


def test_the_confirmation_goes_out_at_once_on_the_first_channel_and_reminders_when_due(
        service, clinic, dispatcher, channels, clock, session_factory):
    code = book(service, clinic)
    assert dispatcher.dispatch_due() == 1  # only the confirmation is due; the reminders wait
    [message] = channels["whatsapp"].sent
    assert message.to == "+447911123456" and code in message.body
    assert "Tuesday 24 November at 9 am" in message.body and "Riverside Clinic" in message.body
    assert only(session_factory, clinic, "confirmation").status == "sent"  # accepted, receipt awaited
    clock.now = TUESDAY_9 - timedelta(hours=24)
    assert dispatcher.dispatch_due() == 1 and "Reminder" in channels["whatsapp"].sent[-1].body
    clock.now = TUESDAY_9 - timedelta(hours=2)
    assert dispatcher.dispatch_due() == 1 and dispatcher.dispatch_due() == 0


def test_texts_follow_the_customers_language_and_time_zone(service, clinic, dispatcher, channels):
    book(service, clinic, phone="+447911123457", language="es", timezone="America/New_York")
    dispatcher.dispatch_due()
    assert "martes 24 de noviembre a las 04:00" in channels["whatsapp"].sent[0].body


def test_a_business_template_replaces_ours(service, make_business, dispatcher, channels):
    from tests.conftest import example

    config = example("clinic")
    config["business"]["details"]["templates"] = {"en": {"confirmation": "{{ name }}: see you {{ when }}!"}}
    business = make_business(config)
    book(service, business)
    dispatcher.dispatch_due()
    assert channels["whatsapp"].sent[0].body == "Ann Lee: see you Tuesday 24 November at 9 am!"


def smuggle_templates(session_factory, business: int, templates: dict) -> None:
    """Store templates past every check, as a row written before templates were checked would hold them."""
    with session_factory() as s:
        row = s.get(Business, business)
        row.details = {**row.details, "templates": templates}
        s.commit()


@pytest.mark.parametrize("template", [
    "{{ 1/0 }}", "{{ name + 1 }}", "{{ no_such_field }}", "{{ 'x' * 10**9 }}",
    "{% for i in range(10**9) %}{% for j in range(10**9) %}{% endfor %}{% endfor %}",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}"
    "{% endfor %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
])
def test_a_stored_template_that_fails_falls_back_to_ours_and_holds_up_no_other_business(
        service, make_business, dispatcher, channels, session_factory, template, caplog):
    broken, other = make_business("clinic"), make_business("clinic")
    smuggle_templates(session_factory, broken, {"en": {"confirmation": template}})
    book(service, broken, phone="+447911123401")
    book(service, other, phone="+447911123402")
    started = time.perf_counter()
    assert dispatcher.dispatch_due() == 2
    assert time.perf_counter() - started < 5
    bodies = {m.to: m.body for m in channels["whatsapp"].sent}
    assert bodies["+447911123401"].startswith("Hi Ann Lee, you're booked for")  # ours
    assert bodies["+447911123402"].startswith("Hi Ann Lee, you're booked for")
    assert only(session_factory, broken, "confirmation").status == "sent"
    assert only(session_factory, other, "confirmation").status == "sent"
    assert f"business {broken}: its confirmation template (en) failed" in caplog.text
    assert "Ann Lee" not in caplog.text and "+447911123401" not in caplog.text


def test_templates_stored_in_a_shape_we_never_wrote_fall_back_to_ours(
        service, make_business, dispatcher, channels, session_factory):
    business = make_business("clinic")
    smuggle_templates(session_factory, business, ["not", "a", "mapping"])
    book(service, business)
    dispatcher.dispatch_due()
    assert channels["whatsapp"].sent[0].body.startswith("Hi Ann Lee, you're booked for")


def test_a_row_that_cannot_be_prepared_is_retried_then_failed_and_holds_up_no_other_row(
        service, make_business, dispatcher, channels, session_factory, clock):
    broken, other = make_business("clinic"), make_business("clinic")
    book(service, broken, phone="+447911123401")
    with session_factory() as s:  # bad data in one row: a time no one can read
        n = s.scalars(select(Notification).where(Notification.business_id == broken,
                                                 Notification.kind == "confirmation")).one()
        n.kind, n.payload = "rescheduled", {"previous_starts_at": "not a time"}
        s.commit()
    book(service, other, phone="+447911123402")
    assert dispatcher.dispatch_due() == 1  # the other row's job
    assert [m.to for m in channels["whatsapp"].sent] == ["+447911123402"]
    assert only(session_factory, other, "confirmation").status == "sent"
    n = only(session_factory, broken, "rescheduled")
    assert n.status == "pending" and n.due_at > clock.now and "ValueError" in n.last_error
    for _ in range(10):  # retried like a transient failure, then given up
        clock.now += timedelta(hours=1)
        dispatcher.dispatch_due()
    n = only(session_factory, broken, "rescheduled")
    assert n.status == "failed" and n.locked_until is None and "could not prepare" in n.last_error
    assert not any("moved" in m.body for m in channels["whatsapp"].sent)


def test_a_row_whose_recording_fails_holds_up_no_other_row(
        service, make_business, dispatcher, channels, session_factory, monkeypatch):
    first, second = make_business("clinic"), make_business("clinic")
    book(service, first, phone="+447911123401")
    book(service, second, phone="+447911123402")
    record = Dispatcher._record_once

    def breaks_on_first(self, job, *args):
        if job.recipients["whatsapp"] == "+447911123401":
            raise TypeError("a bug")
        return record(self, job, *args)

    monkeypatch.setattr(Dispatcher, "_record_once", breaks_on_first)
    assert dispatcher.dispatch_due() == 2
    assert only(session_factory, second, "confirmation").status == "sent"
    failed = only(session_factory, first, "confirmation")
    assert failed.status == "pending" and failed.locked_until is None and "TypeError" in failed.last_error


def test_a_refused_channel_falls_back_to_the_next_and_every_attempt_is_logged(
        service, clinic, dispatcher, channels, session_factory):
    channels["whatsapp"].script = [refused("63016")]  # outside WhatsApp's 24-hour window: permanent
    book(service, clinic)
    dispatcher.dispatch_due()
    n = only(session_factory, clinic, "confirmation")
    tried = attempts(session_factory, n.id)
    assert [(a.channel, a.status, a.error_code) for a in tried] == [("whatsapp", "failed", "63016"),
                                                                    ("sms", "queued", None)]
    assert n.status == "sent" and n.gave_up_on == ["whatsapp"] and len(channels["sms"].sent) == 1


def test_all_channels_refusing_marks_the_notification_failed(service, clinic, dispatcher, channels, session_factory):
    for name in channels:
        channels[name].script = [refused("21211")]
    book(service, clinic)
    dispatcher.dispatch_due()
    n = only(session_factory, clinic, "confirmation")
    assert n.status == "failed" and len(attempts(session_factory, n.id)) == 3 and "email" in n.last_error


def test_a_transient_error_is_retried_on_the_same_channel_with_backoff(
        service, clinic, dispatcher, channels, clock, session_factory):
    channels["whatsapp"].script = [refused("network", transient=True), refused("20429", transient=True)]
    book(service, clinic)
    dispatcher.dispatch_due()
    n = only(session_factory, clinic, "confirmation")
    assert n.status == "pending" and n.due_at == clock.now + timedelta(seconds=30)
    assert dispatcher.dispatch_due() == 0  # not yet
    clock.now += timedelta(seconds=30)
    dispatcher.dispatch_due()
    assert only(session_factory, clinic, "confirmation").due_at == clock.now + timedelta(minutes=1)
    clock.now += timedelta(minutes=1)
    dispatcher.dispatch_due()
    assert only(session_factory, clinic, "confirmation").status == "sent"
    assert [a.channel for a in attempts(session_factory, n.id)] == ["whatsapp"] * 3


def test_receipts_settle_or_move_on_and_repeated_receipts_change_nothing(
        service, clinic, dispatcher, channels, session_factory, clock):
    book(service, clinic)
    dispatcher.dispatch_due()
    n = only(session_factory, clinic, "confirmation")
    [first] = attempts(session_factory, n.id)
    for _ in range(2):  # Twilio may post the same status twice
        assert record_receipt(session_factory, clock(), first.provider_id, "undelivered", "30003")
    assert only(session_factory, clinic, "confirmation").status == "pending"
    dispatcher.dispatch_due()
    second = attempts(session_factory, n.id)[-1]
    assert second.channel == "sms" and len(attempts(session_factory, n.id)) == 2
    for status in ("sent", "delivered", "delivered"):
        record_receipt(session_factory, clock(), second.provider_id, status)
    assert only(session_factory, clinic, "confirmation").status == "delivered"
    assert [h["status"] for h in attempts(session_factory, n.id)[-1].history] == ["queued", "sent", "delivered"]
    assert attempts(session_factory, n.id)[0].history[-1] == {
        "status": "undelivered", "at": attempts(session_factory, n.id)[0].history[-1]["at"], "error_code": "30003"}
    assert record_receipt(session_factory, clock(), "SM-never-sent", "delivered") is False


def test_no_receipt_in_time_moves_on_and_the_last_channel_ends_unconfirmed(
        service, clinic, dispatcher, channels, clock, session_factory):
    book(service, clinic, email=None)
    dispatcher.dispatch_due()
    clock.now += timedelta(minutes=10)
    assert dispatcher.give_up_waiting() == 1
    dispatcher.dispatch_due()
    assert len(channels["sms"].sent) == 1
    clock.now += timedelta(minutes=10)
    dispatcher.give_up_waiting()
    dispatcher.dispatch_due()  # no email address: nothing left to try
    n = only(session_factory, clinic, "confirmation")
    assert n.status == "unconfirmed" and n.gave_up_on == ["whatsapp", "sms"]


def test_a_dispatcher_that_dies_after_claiming_loses_nothing(service, clinic, session_factory, clock, channels):
    book(service, clinic)
    crashed = Dispatcher(session_factory, channels, clock=clock, lease=timedelta(minutes=2))
    assert len(crashed.claim()) == 1  # ... and never sends
    other = Dispatcher(session_factory, channels, clock=clock, lease=timedelta(minutes=2))
    assert other.dispatch_due() == 0  # still leased to the first
    clock.now += timedelta(minutes=2, seconds=1)
    assert other.dispatch_due() == 1
    assert len(channels["whatsapp"].sent) == 1 and only(session_factory, clinic, "confirmation").attempts == 2


def test_a_slow_dispatcher_whose_lease_ran_out_does_not_overwrite_the_new_owner(
        service, clinic, session_factory, clock, channels):
    book(service, clinic)
    slow = Dispatcher(session_factory, channels, clock=clock, lease=timedelta(minutes=2))
    [job] = slow.claim()
    clock.now += timedelta(minutes=3)
    fast = Dispatcher(session_factory, channels, clock=clock)
    fast.dispatch_due()
    n = only(session_factory, clinic, "confirmation")
    slow.deliver(job)  # its attempt is logged, but the notification stays as the new owner left it
    after = only(session_factory, clinic, "confirmation")
    assert (after.status, after.sent_at) == (n.status, n.sent_at) and len(attempts(session_factory, n.id)) == 2


class DroppingSessions:
    """A session factory whose next `drops` commits lose their connection: before the commit reached the
    database, or after it went through (only its answer lost)."""

    def __init__(self, factory, went_through: bool):
        self.factory, self.went_through, self.drops = factory, went_through, 0

    def __call__(self):
        session = self.factory()
        if self.drops:
            self.drops -= 1
            commit = session.commit

            def lost_commit() -> None:
                commit() if self.went_through else session.rollback()
                raise OperationalError("COMMIT", {}, psycopg.OperationalError("server closed the connection"),
                                       connection_invalidated=True)  # as SQLAlchemy raises a dropped connection

            session.commit = lost_commit
        return session


def test_a_claim_whose_commit_went_unanswered_is_handed_back_not_left_leased(
        service, clinic, session_factory, clock, channels):
    book(service, clinic)
    sessions = DroppingSessions(session_factory, went_through=True)
    dispatcher = Dispatcher(sessions, channels, clock=clock)
    sessions.drops = 1
    assert dispatcher.dispatch_due() == 0 and channels["whatsapp"].sent == []
    assert only(session_factory, clinic, "confirmation").status == "pending"  # not waiting two minutes for a lease
    assert dispatcher.dispatch_due() == 1 and len(channels["whatsapp"].sent) == 1


@pytest.mark.parametrize("went_through", [False, True])
def test_a_send_is_recorded_on_a_fresh_connection_when_the_first_drops_and_never_goes_out_twice(
        service, clinic, session_factory, clock, channels, went_through):
    book(service, clinic)
    sessions = DroppingSessions(session_factory, went_through)
    dispatcher = Dispatcher(sessions, channels, clock=clock)
    [job] = dispatcher.claim()
    sessions.drops = 1  # the record's commit
    dispatcher.deliver(job)
    n = only(session_factory, clinic, "confirmation")
    assert n.status == "sent" and len(attempts(session_factory, n.id)) == 1
    clock.now += timedelta(minutes=3)  # past the lease: had the record been lost, the message would go again
    assert dispatcher.dispatch_due() == 0 and len(channels["whatsapp"].sent) == 1


def test_a_reschedule_voids_old_messages_and_announces_the_move_a_cancel_announces_itself(
        service, clinic, dispatcher, channels, session_factory):
    code = book(service, clinic)
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=TUESDAY_9 + timedelta(hours=1)))
    dispatcher.dispatch_due()
    kinds = [m.body for m in channels["whatsapp"].sent]
    assert len(kinds) == 1 and "moved from Tuesday 24 November at 9 am to Tuesday 24 November at 10 am" in kinds[0]
    service.cancel(clinic, BookingChange(code=code))
    dispatcher.dispatch_due()
    assert "is cancelled" in channels["whatsapp"].sent[-1].body
    assert all(n.status in ("void", "sent") for n in notifications(session_factory, clinic))


def test_opted_out_and_unreachable_channels_are_skipped(service, clinic, dispatcher, channels, session_factory):
    book(service, clinic, phone="+447911123458", email="bo@example.com")
    with session_factory() as s:
        customer = s.scalars(select(Customer).where(Customer.phone == "+447911123458",
                                                    Customer.business_id == clinic)).one()
        customer.opted_out = ["whatsapp", "sms"]
        s.commit()
    dispatcher.dispatch_due()
    assert not channels["whatsapp"].sent and not channels["sms"].sent
    assert channels["email"].sent[0].to == "bo@example.com" and channels["email"].sent[0].subject.startswith(
        "Booking confirmed")
    assert only(session_factory, clinic, "confirmation").status == "delivered"  # SMTP accepted it


def test_reminder_offsets_come_from_the_service_else_the_business_else_the_defaults(
        service, make_business, session_factory):
    from tests.conftest import example

    config = example("clinic")
    config["business"]["reminder_offsets_minutes"] = [1380]
    config["services"][1]["reminder_offsets_minutes"] = [60, 15]  # the ultrasound has its own
    business = make_business(config)
    book(service, business)
    service.book(business, BookingCreate(service="ultrasound", starts_at=datetime.fromisoformat(
        "2026-11-26T10:00:00+00:00"), customer=CustomerIn(name="Bo", phone="+447911123470")))
    plain = book(service, make_business("clinic"))
    reminders = {}
    with session_factory() as s:
        for n in s.scalars(select(Notification).where(Notification.kind == "reminder",
                                                      Notification.business_id == business)):
            reminders.setdefault(n.payload["code"], []).append(n.payload["minutes_before"])
        defaults = s.scalars(select(Notification.payload).where(Notification.kind == "reminder",
                                                                Notification.payload["code"].astext == plain)).all()
    assert sorted(map(sorted, reminders.values())) == [[15, 60], [1380]]
    assert sorted(p["minutes_before"] for p in defaults) == [120, 1440]


def test_the_staff_member_involved_hears_of_a_move_and_a_cancellation(
        service, make_business, dispatcher, channels, session_factory):
    from tests.conftest import example

    config = example("clinic")
    for resource in config["resources"]:
        if resource["key"] == "dr-patel":
            resource.update(email="patel@riverside.example", phone="+447911123480")
    business = make_business(config)
    code = book(service, business)  # Dr Patel, listed first, takes it
    service.reschedule(business, BookingReschedule(code=code, starts_at=TUESDAY_9 + timedelta(hours=1)))
    dispatcher.dispatch_due()
    service.cancel(business, BookingChange(code=code))
    dispatcher.dispatch_due()
    to_staff = [m for m in channels["email"].sent if m.to == "patel@riverside.example"]
    assert [m.subject.split(" - ")[0] for m in to_staff] == ["Booking moved", "Booking cancelled"]
    assert "GP consultation with Ann Lee" in to_staff[0].body
    assert "from Tuesday 24 November at 9 am to Tuesday 24 November at 10 am" in to_staff[0].body
    assert not any(m.to == "+447911123480" for m in channels["sms"].sent)  # email took it: no SMS as well
    with session_factory() as s:
        staff_rows = s.scalars(select(Notification).where(Notification.business_id == business,
                                                          Notification.resource_id.is_not(None))).all()
    assert {n.status for n in staff_rows} == {"delivered"} and len(staff_rows) == 2


def test_a_reminder_found_after_the_start_is_dropped_not_sent(service, clinic, dispatcher, channels, clock,
                                                              session_factory):
    book(service, clinic)
    dispatcher.dispatch_due()  # the confirmation
    clock.now = TUESDAY_9 + timedelta(minutes=5)  # the scheduler was down through both reminders
    dispatcher.dispatch_due()
    assert len(channels["whatsapp"].sent) == 1
    with session_factory() as s:
        late = s.scalars(select(Notification).where(Notification.business_id == clinic,
                                                    Notification.kind == "reminder")).all()
    assert {(n.status, n.last_error) for n in late} == {("void", "too late: the appointment had started")}


def test_messages_carry_signed_links_a_deposit_request_its_pay_link_and_the_confirmation_a_manage_link(
        session_factory, channels, clock, service, make_business):
    links = Links("dispatch-test-secret", "https://book.example")
    linked = Dispatcher(session_factory, channels, clock=clock, links=links)
    garage = make_business("garage")
    booking = service.book(garage, BookingCreate(
        service="mobile-repair", starts_at=datetime.fromisoformat("2026-11-24T10:00:00-05:00"),
        customer=CustomerIn(name="Ada", phone="+12125550177"), intake={"address": "1 Elm St", "problem": "Flat"},
    )).booking
    while linked.dispatch_due():
        pass
    [request] = [m for m in channels["whatsapp"].sent if booking.code in m.body]
    assert "$25.00" in request.body and "Tuesday 24 November at 10 am" in request.body
    pay_url = next(word for word in request.body.split() if word.startswith("https://book.example/pay/"))
    target = links.read("pay", urlparse(pay_url).path.removeprefix("/pay/"), clock.now)
    assert (target.business_id, target.code) == (garage, booking.code)

    payment_ref = "cs_dispatch_" + booking.code
    with session_factory() as s:
        payment = s.scalars(select(Payment).where(Payment.booking_id == booking.id)).one()
    service.record_checkout(garage, payment.id, "local", payment_ref, "https://pay.example")
    service.settle_deposit("local", payment_ref, 2500, "USD", {"event": "paid"})
    while linked.dispatch_due():
        pass
    confirmation = [m for m in channels["whatsapp"].sent if booking.code in m.body][-1]
    assert "you're booked" in confirmation.body
    manage_url = next(word for word in confirmation.body.split() if word.startswith("https://book.example/m/"))
    assert links.read("manage", urlparse(manage_url).path.removeprefix("/m/"), clock.now).code == booking.code
    calendar_url = next(word for word in confirmation.body.split() if word.startswith("https://book.example/ics/"))
    token = urlparse(calendar_url).path.removeprefix("/ics/booking/").removesuffix(".ics")
    assert links.read("manage", token, clock.now).code == booking.code


def test_a_chat_code_sent_by_email_carries_a_subject_and_never_falls_back_to_texting_the_address(
        clinic, dispatcher, channels, session_factory, clock):
    channels["email"].script = [refused("550")]
    with session_factory() as s:
        s.add(Notification(business_id=clinic, kind="conversation_reply", due_at=clock.now, status="pending",
                           attempts=0, payload={"text": "Your code is 123456", "channel": "email",
                                                "to": "ann@example.com", "subject": "Riverside Clinic"}))
        s.commit()
    dispatcher.dispatch_due()
    [message] = channels["email"].sent
    assert message.subject == "Riverside Clinic" and message.to == "ann@example.com"
    assert channels["sms"].sent == [] and channels["whatsapp"].sent == []
    assert only(session_factory, clinic, "conversation_reply").status == "failed"
