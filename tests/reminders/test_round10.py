"""Tenth round: replies, opt-outs and receipts attacked through the running server as Twilio calls it (signed
forms), on PostgreSQL, with the dispatcher sending through the real `twilio` library to the fake Twilio API."""
from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta

import httpx2
import phonenumbers
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from evals.fakes import FakeTwilio
from nextslot.reminders.channels import build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn, WaitlistJoin
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Business, WaitlistOffer
from tests.conversations.conftest import clinic_config

PUBLIC_URL = "https://book.example.com"
TOKEN = FakeTwilio.auth_token


def new_phone() -> str:
    """A UK mobile number no other test has: drawn until it is a valid one (about 1 in 200 of +4479... is not, and
    was refused as invalid_phone)."""
    while not phonenumbers.is_valid_number(phonenumbers.parse(drawn := f"+4479{uuid.uuid4().int % 10**8:08d}")):
        pass
    return drawn


@pytest.fixture
def twilio(clock):
    with FakeTwilio(clock=clock) as fake:
        yield fake


@pytest.fixture
def server(live_server, twilio):
    settings = Settings(public_url=PUBLIC_URL, **twilio.settings())
    with live_server(frozen=True, settings=settings) as running:
        yield running


@pytest.fixture
def dispatcher(session_factory, twilio, clock) -> Dispatcher:
    settings = Settings(public_url=PUBLIC_URL, **twilio.settings())
    return Dispatcher(session_factory, build_channels(settings), clock=clock)


def post(server, sender: str, body: str, to: str = FakeTwilio.sms_from, sid: str | None = None) -> httpx2.Response:
    """A customer's message as Twilio posts it to the inbound webhook, signed."""
    prefix = "whatsapp:" if sender.startswith("whatsapp:") else ""
    form = {"From": sender, "To": f"{prefix}{to}", "Body": body, "MessageSid": sid or f"SM{uuid.uuid4().hex}"}
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC_URL}/webhooks/twilio/inbound", form)
    return httpx2.post(f"{server.url}/webhooks/twilio/inbound", data=form,
                       headers={"X-Twilio-Signature": signature}, timeout=30)


def book(service, business: int, starts_at: datetime, phone: str, **more) -> Booking:
    return service.book(business, BookingCreate(service="consultation", starts_at=starts_at, resources=["dr-patel"],
                                                customer=CustomerIn(name="Ann Lee", phone=phone, **more))).booking


def status(session_factory, booking: Booking) -> str:
    with session_factory() as s:
        return s.get(Booking, booking.id).status


def number_of(session_factory, business_id: int) -> str:
    with session_factory() as s:
        return s.get(Business, business_id).details["conversations"]["numbers"][0]


def offers_of(session_factory, business_id: int) -> list[WaitlistOffer]:
    with session_factory() as s:
        return list(s.scalars(select(WaitlistOffer).where(WaitlistOffer.business_id == business_id)))


def drain(dispatcher: Dispatcher) -> None:
    while dispatcher.dispatch_due() > 0:
        pass


def test_a_cancel_written_to_one_business_number_cancels_that_business_booking_not_another(
        server, service, make_business, session_factory):
    """A customer of a salon and a clinic texts X to the clinic's own number: the clinic's booking is cancelled,
    not the salon's earlier one (the fast path took the number's next booking at any business)."""
    phone = new_phone()
    salon, clinic = make_business(clinic_config()), make_business(clinic_config())
    at_salon = book(service, salon, datetime(2026, 11, 24, 9, tzinfo=UTC), phone)
    at_clinic = book(service, clinic, datetime(2026, 11, 26, 9, tzinfo=UTC), phone)

    answer = post(server, phone, "X", to=number_of(session_factory, clinic)).text
    assert "Thursday 26 November" in answer and "cancelled" in answer, answer
    assert status(session_factory, at_salon) == "booked"
    assert status(session_factory, at_clinic) == "cancelled"


def test_a_bare_answer_to_a_reminder_sent_after_a_lapsed_offer_is_about_the_booking(
        server, service, make_business, session_factory, clock, dispatcher, twilio):
    """A waiting customer's offer lapsed yesterday; today's reminder of their booking asks C or X, and they answer
    X: their booking is cancelled (the X was read as declining the lapsed offer, and the booking stayed)."""
    clinic = make_business("clinic")
    phone, holder = new_phone(), new_phone()
    clock.now = datetime(2026, 11, 23, 10, tzinfo=UTC)
    mine = book(service, clinic, datetime(2026, 11, 25, 9, tzinfo=UTC), phone)
    taken = book(service, clinic, datetime(2026, 11, 24, 15, tzinfo=UTC), holder)
    service.join_waitlist(clinic, WaitlistJoin(
        service="consultation", customer=CustomerIn(name="Ann Lee", phone=phone), earliest_date=date(2026, 11, 24),
        latest_date=date(2026, 11, 24), day_start=time(15, 0), day_end=time(15, 20), resources=["dr-patel"]))
    service.cancel(clinic, BookingChange(code=taken.code))
    service.offer_freed_capacity()  # the scheduler offers the freed time (the shared database may hold others')
    [offer] = offers_of(session_factory, clinic)
    drain(dispatcher)

    clock.now = datetime(2026, 11, 24, 9, tzinfo=UTC)  # a day before the booking: its reminder
    service.offer_freed_capacity()  # the offer lapsed unanswered
    assert [o.status for o in offers_of(session_factory, clinic)] == ["expired"]
    drain(dispatcher)
    last = [r.get("Body", "") for r in twilio.requests if r["To"].endswith(phone)][-1]
    assert last.startswith("Reminder: GP consultation") and "Reply C to confirm or X to cancel" in last, last
    clock.now += timedelta(minutes=5)
    answer = post(server, phone, "X").text
    assert "cancelled" in answer and "Wednesday 25 November" in answer, answer
    assert status(session_factory, mine) == "cancelled"
    [offer] = offers_of(session_factory, clinic)
    assert offer.answered_at is None  # the lapsed offer was not what the X answered


def test_one_message_sent_again_while_its_first_copy_is_still_being_answered_cancels_one_booking(
        server, service, make_business, session_factory, monkeypatch):
    """Twilio sends an X again (same MessageSid) while the first copy has cancelled the next booking but not yet
    stored its answer: the copy cancels nothing more and answers the same (it read the number's next booking anew,
    now the later one, and cancelled that too)."""
    from nextslot.core.customers import replies

    clinic, phone, sid = make_business("clinic"), new_phone(), f"SM{uuid.uuid4().hex}"
    first = book(service, clinic, datetime(2026, 11, 24, 9, tzinfo=UTC), phone)
    later = book(service, clinic, datetime(2026, 11, 26, 9, tzinfo=UTC), phone)
    acted, go_on = threading.Event(), threading.Event()
    store_reply = replies.store_reply

    def slow_first(*args, **kwargs):  # the first copy is slow to store its answer, after acting
        if not acted.is_set():
            acted.set()
            go_on.wait(30)
        return store_reply(*args, **kwargs)

    monkeypatch.setattr(replies, "store_reply", slow_first)
    answers: dict[str, str] = {}
    copies = {n: threading.Thread(target=lambda n=n: answers.__setitem__(n, post(server, phone, "X", sid=sid).text))
              for n in ("first", "again")}
    copies["first"].start()
    assert acted.wait(30) and status(session_factory, first) == "cancelled"
    copies["again"].start()
    copies["again"].join(3)  # done by now if it did not wait for the first copy's answer
    go_on.set()
    for copy in copies.values():
        copy.join(30)
    assert status(session_factory, later) == "booked"
    assert answers["first"] == answers["again"] and "Tuesday 24 November" in answers["again"], answers


def post_status(server, sid: str, status: str, error_code: str | None = None) -> httpx2.Response:
    form = {"MessageSid": sid, "MessageStatus": status, **({"ErrorCode": error_code} if error_code else {})}
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC_URL}/webhooks/twilio/status", form)
    return httpx2.post(f"{server.url}/webhooks/twilio/status", data=form, headers={"X-Twilio-Signature": signature},
                       timeout=30)


class QuickReceipts:
    """Twilio's channel, with Twilio reporting on each message it takes before the dispatcher has recorded it."""

    def __init__(self, channel, server, *statuses: str):
        self.name, self.channel, self.server, self.statuses = channel.name, channel, server, statuses

    def send(self, message):
        result = self.channel.send(message)
        for status in self.statuses:
            assert post_status(self.server, result.provider_id, status).status_code == 204
        return result


@pytest.mark.parametrize("reported", [("sent", "delivered"), ("failed",)])
def test_a_receipt_that_comes_before_the_send_is_recorded_settles_it_when_it_is(
        server, service, make_business, session_factory, clock, twilio, reported):
    """Twilio reports "delivered" (or "failed") before the dispatcher has stored the SMS it took: the report
    counts. It was dropped as a message we never sent, so after the receipt timeout a delivered SMS went out
    again by email, and a failed one waited the whole timeout for its email."""
    from nextslot.storage.tables import DeliveryAttempt, Notification
    from tests.reminders.test_dispatcher import ScriptedChannel

    clinic, phone = make_business("clinic"), new_phone()
    booking = book(service, clinic, datetime(2026, 11, 26, 9, tzinfo=UTC), phone, email="ann@example.com",
                   channels=["sms", "email"])
    sms = build_channels(Settings(public_url=PUBLIC_URL, **twilio.settings()))["sms"]
    email = ScriptedChannel("email")
    dispatcher = Dispatcher(session_factory, {"sms": QuickReceipts(sms, server, *reported), "email": email},
                            clock=clock, receipt_timeout=timedelta(minutes=15))
    drain(dispatcher)
    failed = reported == ("failed",)
    assert len(email.sent) == (1 if failed else 0)  # a failed SMS goes on to email at once
    clock.now += timedelta(minutes=16)  # past the receipt timeout: a delivered SMS is not sent again
    dispatcher.give_up_waiting()
    drain(dispatcher)
    assert len(email.sent) == (1 if failed else 0)
    with session_factory() as s:
        confirmation = s.scalars(select(Notification).where(Notification.booking_id == booking.id,
                                                            Notification.kind == "confirmation")).one()
        attempt = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.notification_id == confirmation.id,
                                                          DeliveryAttempt.channel == "sms")).one()
    assert confirmation.status == "delivered"  # by SMS, or by the email after the failed SMS
    assert [h["status"] for h in attempt.history] == ["queued", *reported]


def test_a_number_that_said_stop_gets_nothing_on_that_channel_from_a_business_it_books_with_later(
        server, service, make_business, session_factory, clock, twilio, dispatcher):
    """STOP opts the number out of the channel: a customer of a salon who said STOP on WhatsApp, and a number that
    said STOP before it ever booked, get no WhatsApp message from a clinic they book with afterwards (the opt-out
    was kept on the customer records there were, and a new record started opted in)."""
    from tests.reminders.conftest import whatsapp_window

    salon, clinic = make_business("clinic"), make_business("clinic")
    known, stranger = new_phone(), new_phone()
    book(service, salon, datetime(2026, 11, 24, 9, tzinfo=UTC), known)
    for phone in (known, stranger):
        assert "You won't get more messages here" in post(server, f"whatsapp:{phone}", "STOP",
                                                          to=FakeTwilio.whatsapp_from).text
        twilio.customer_wrote(phone)  # and WhatsApp would take free text from us now
        whatsapp_window(session_factory, clinic, phone, clock.now)
    for hour, phone in ((10, known), (11, stranger)):
        book(service, clinic, datetime(2026, 11, 26, hour, tzinfo=UTC), phone)
    drain(dispatcher)
    for phone in (known, stranger):
        assert twilio.whatsapp_texts(phone) == [], phone
        assert any(f.get("To") == phone and "you're booked" in f.get("Body", "") for f in twilio.accepted.values())


def test_no_problem_or_a_question_in_answer_to_a_reminder_keeps_the_booking_and_a_plain_no_cancels(
        server, service, make_business, session_factory):
    """"No problem, see you then!" answers a reminder: the booking stays (it was read as "no", a cancel); so does a
    question ("Do I need to cancel?" was a cancel). A plain "no" or "no thanks" still cancels."""
    clinic = make_business("clinic")
    for said in ("No problem, see you then!", "no worries", "Non, pas de souci", "nein, kein Problem",
                 "Do I need to cancel?"):
        phone = new_phone()
        booking = book(service, clinic, datetime(2026, 11, 26, 9, tzinfo=UTC), phone)
        answer = post(server, phone, said).text
        assert status(session_factory, booking) == "booked", (said, answer)
        service.cancel(clinic, BookingChange(code=booking.code))  # the time for the next one
    for said in ("no", "No thanks"):
        phone = new_phone()
        booking = book(service, clinic, datetime(2026, 11, 26, 9, tzinfo=UTC), phone)
        assert "is cancelled" in post(server, phone, said).text


def test_a_reply_from_the_customers_number_in_another_form_is_the_customers(server, service, make_business,
                                                                             session_factory):
    """The webhook's From as "whatsapp:+44 7911 ...", "0044 7911 ..." or "+44 (7911) ...": the same customer as
    "+447911..." (it was a stranger with no booking)."""
    clinic = make_business("clinic")
    for form in ("whatsapp:+44 {a} {b}", "0044 {a} {b}", "+44 ({a}) {b}"):
        phone = new_phone()
        booking = book(service, clinic, datetime(2026, 11, 26, 9, tzinfo=UTC), phone)
        written = form.format(a=phone[3:7], b=phone[7:])
        answer = post(server, written, "C").text
        assert "is confirmed" in answer, (written, answer)
        assert status(session_factory, booking) == "confirmed"
        service.cancel(clinic, BookingChange(code=booking.code))


def test_a_receipt_kept_for_a_send_never_recorded_is_let_go_after_a_day(service, session_factory, clock):
    """A receipt whose send is never recorded (another deployment's message, a send lost with its process) does not
    stay for ever; one still waiting within the day does."""
    from nextslot.reminders.receipts import record_receipt
    from nextslot.storage.tables import EarlyReceipt

    sid = f"SM{uuid.uuid4().hex}"
    assert record_receipt(session_factory, clock.now, sid, "delivered", None) is False
    dispatcher = Dispatcher(session_factory, {}, clock=clock)
    clock.now += timedelta(hours=23)
    dispatcher.give_up_waiting()
    with session_factory() as s:
        assert s.scalar(select(EarlyReceipt.status).where(EarlyReceipt.provider_id == sid)) == "delivered"
    clock.now += timedelta(hours=2)
    dispatcher.give_up_waiting()
    with session_factory() as s:
        assert s.scalar(select(EarlyReceipt.status).where(EarlyReceipt.provider_id == sid)) is None
