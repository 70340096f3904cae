"""Fourteenth round: confirmations, reminders and the replies to them, attacked as a demanding customer and a business
would: through the running server as Twilio calls it (signed forms), on PostgreSQL, with the dispatcher sending
through the real `twilio` library to the fake Twilio API and through smtplib to a real SMTP server."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from evals.fakes import FakeSmtpServer, FakeTwilio
from nextslot.reminders.channels import OutgoingMessage, SmtpEmailChannel, build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.receipts import record_receipt
from nextslot.reminders.replies import Intent, parse_reply
from nextslot.schemas.commands import BookingChange
from nextslot.settings import Settings
from nextslot.storage.tables import DeliveryAttempt, InboundMessage, Notification
from tests.reminders.test_round10 import book, drain, new_phone, status

PUBLIC_URL = "https://book.example.com"
TOKEN = FakeTwilio.auth_token


@pytest.fixture
def twilio(clock):
    with FakeTwilio(clock=clock) as fake:
        yield fake


@pytest.fixture
def server(live_server, twilio):
    with live_server(frozen=True, settings=Settings(public_url=PUBLIC_URL, **twilio.settings())) as running:
        yield running


@pytest.fixture
def dispatcher(session_factory, twilio, clock) -> Dispatcher:
    return Dispatcher(session_factory, build_channels(Settings(public_url=PUBLIC_URL, **twilio.settings())),
                      clock=clock)


def post(server, sender: str, body: str, **more: str) -> httpx2.Response:
    """A customer's message as Twilio posts it to the inbound webhook, signed (`more`: other fields Twilio sends)."""
    to = FakeTwilio.whatsapp_from if sender.startswith("whatsapp:") else FakeTwilio.sms_from
    prefix = "whatsapp:" if sender.startswith("whatsapp:") else ""
    form = {"From": sender, "To": f"{prefix}{to}", "Body": body, "MessageSid": f"SM{uuid.uuid4().hex}", **more}
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC_URL}/webhooks/twilio/inbound", form)
    return httpx2.post(f"{server.url}/webhooks/twilio/inbound", data=form,
                       headers={"X-Twilio-Signature": signature}, timeout=30)


def sent_to(twilio: FakeTwilio, phone: str, kind_words: str) -> list[str]:
    """The SIDs of the messages Twilio took for this number whose text has these words, in order."""
    return [sid for sid, form in twilio.accepted.items()
            if form.get("To", "").removeprefix("whatsapp:") == phone and kind_words in form.get("Body", "")]


# --- what a reply says ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("said", [
    "don't cancel", "Please don't cancel!", "do not cancel", "I don't want to cancel", "no need to cancel",
    "don't cancel, I'll be there", "never cancel", "no quiero cancelar", "ne pas annuler", "nicht absagen",
    "bitte nicht stornieren", "can't confirm", "I cannot confirm yet", "je ne peux pas confirmer",
    "kann nicht bestätigen", "not confirmed",
])
def test_a_yes_or_no_word_under_a_negation_is_asked_about_not_acted_on(said):
    """"Don't cancel, I'll be there" was read as a cancel (the word "cancel" alone decided), and "can't confirm" as
    a yes: a reply that negates is asked about."""
    assert parse_reply(said).intent is Intent.UNCLEAR


@pytest.mark.parametrize("said", ["please stop", "Stop texting me", "STOP STOP STOP", "Stop sending me messages please",
                                  "unsubscribe me please", "stop it now", "please STOP 🛑"])
def test_stop_said_in_a_few_plain_words_opts_out(said):
    """"Please stop" or "stop texting me" went to the chat as unclear, and the reminders went on coming."""
    assert parse_reply(said).intent is Intent.STOP


@pytest.mark.parametrize("said,intent", [
    ("ＹＥＳ", Intent.CONFIRM), ("ｘ", Intent.CANCEL), ("yes please", Intent.CONFIRM), ("YES 🙏", Intent.CONFIRM),
    ("no, cancel", Intent.CANCEL), ("cancel it", Intent.CANCEL), ("Stop.", Intent.STOP), ("ＳＴＯＰ", Intent.STOP),
    ("I'll stop by at 9", Intent.UNCLEAR), ("don't stop", Intent.UNCLEAR), ("no problem", Intent.UNCLEAR),
])
def test_plain_answers_in_any_width_or_with_courtesies_still_mean_what_they_say(said, intent):
    assert parse_reply(said).intent is intent


# --- which booking a bare answer is about ----------------------------------------------------------------------

TUESDAY_9, WEDNESDAY_9, THURSDAY_9 = (datetime(2026, 11, day, 9, tzinfo=UTC) for day in (24, 25, 26))


def test_an_x_right_after_the_confirmation_of_a_later_booking_cancels_that_one_not_the_nearer_one(
        server, service, make_business, session_factory, clock, dispatcher):
    """A customer with Tuesday's appointment books Thursday's too; its confirmation says "Reply C to confirm or X to
    cancel", and they answer X: Thursday's is cancelled (the number's next booking, Tuesday's, was)."""
    clinic, phone = make_business("clinic"), new_phone()
    tuesday = book(service, clinic, TUESDAY_9, phone)
    drain(dispatcher)
    clock.now += timedelta(hours=1)
    thursday = book(service, clinic, THURSDAY_9, phone)
    drain(dispatcher)
    answer = post(server, phone, "X").text
    assert "Thursday 26 November" in answer and "cancelled" in answer, answer
    assert (status(session_factory, tuesday), status(session_factory, thursday)) == ("booked", "cancelled")


def test_an_x_to_tomorrows_reminder_during_todays_appointment_cancels_tomorrows(
        server, service, make_business, session_factory, clock, dispatcher, twilio):
    """Tuesday's appointment has begun when Wednesday's day-before reminder comes, and the customer answers X: it is
    Wednesday's that is cancelled, never the one they are sitting in (it ends later than now, so it was "next")."""
    clinic, phone = make_business("clinic"), new_phone()
    tuesday, wednesday = book(service, clinic, TUESDAY_9, phone), book(service, clinic, WEDNESDAY_9, phone)
    drain(dispatcher)
    clock.now = TUESDAY_9 + timedelta(minutes=5)
    drain(dispatcher)
    [reminder] = [twilio.accepted[sid]["Body"] for sid in sent_to(twilio, phone, "Reminder: GP consultation")]
    assert "Wednesday 25 November" in reminder, reminder
    answer = post(server, phone, "X").text
    assert "Wednesday 25 November" in answer and "cancelled" in answer, answer
    assert (status(session_factory, tuesday), status(session_factory, wednesday)) == ("booked", "cancelled")


def test_an_x_to_the_reminder_of_a_booking_cancelled_since_cancels_no_other(
        server, service, make_business, session_factory, clock, dispatcher):
    """Tuesday's reminder went out, then the clinic cancelled Tuesday; the customer answers the reminder with X: they
    hear Tuesday's is cancelled, and Thursday's stays (it was cancelled as the number's next booking)."""
    clinic, phone = make_business("clinic"), new_phone()
    tuesday, thursday = book(service, clinic, TUESDAY_9, phone), book(service, clinic, THURSDAY_9, phone)
    drain(dispatcher)
    clock.now = datetime(2026, 11, 23, 9, 1, tzinfo=UTC)
    drain(dispatcher)
    service.cancel(clinic, BookingChange(code=tuesday.code, source="staff", actor="staff"))
    drain(dispatcher)
    clock.now += timedelta(minutes=10)
    answer = post(server, phone, "X").text
    assert "Tuesday 24 November" in answer and "cancelled" in answer, answer
    assert status(session_factory, thursday) == "booked"


def test_a_whatsapp_reply_quoting_a_message_answers_that_messages_booking(
        server, service, make_business, session_factory, clock, dispatcher, twilio):
    """On WhatsApp a customer can answer one message by quoting it (Twilio sends its SID as
    OriginalRepliedMessageSid): an X quoting Thursday's confirmation cancels Thursday's, though Tuesday's came later
    and is nearer."""
    from tests.reminders.conftest import whatsapp_window

    clinic, phone = make_business("clinic"), new_phone()
    twilio.customer_wrote(phone)
    whatsapp_window(session_factory, clinic, phone, clock.now)
    thursday = book(service, clinic, THURSDAY_9, phone, channels=["whatsapp"])
    drain(dispatcher)
    clock.now += timedelta(minutes=5)
    tuesday = book(service, clinic, TUESDAY_9, phone, channels=["whatsapp"])
    drain(dispatcher)
    [quoted] = sent_to(twilio, phone, "Thursday 26 November")
    answer = post(server, f"whatsapp:{phone}", "X", OriginalRepliedMessageSid=quoted,
                  OriginalRepliedMessageSender=f"whatsapp:{FakeTwilio.whatsapp_from}").text
    assert "Thursday 26 November" in answer and "cancelled" in answer, answer
    assert (status(session_factory, tuesday), status(session_factory, thursday)) == ("booked", "cancelled")
    with session_factory() as s:
        stored = s.scalars(select(InboundMessage).where(InboundMessage.sender == phone)).one()
    assert (stored.booking_id, stored.outcome) == (thursday.id, "cancelled")



# --- email -------------------------------------------------------------------------------------------------------

def test_an_address_at_an_international_domain_reaches_a_relay_without_smtputf8_and_one_it_cannot_take_is_refused():
    """'ann@müller.de' went nowhere through a relay that takes ASCII addresses only (most): each try was a "network
    error", retried for a quarter of an hour and then failed. Its domain goes in ASCII (IDNA), as every relay takes it;
    a mailbox name beyond ASCII is a permanent refusal at once, not a network error to retry."""
    with FakeSmtpServer(smtputf8=False) as relay:
        channel = SmtpEmailChannel("127.0.0.1", relay.port, "bookings@nextslot.test")
        sent = channel.send(OutgoingMessage("ann@müller.de", "Hi Ann", "Booking confirmed - Café Zoë", "notification-1"))
        refused = channel.send(OutgoingMessage("jöhn@example.com", "Hi", "Booking confirmed", "notification-2"))
    assert sent.accepted and relay.envelopes == [("bookings@nextslot.test", ["ann@xn--mller-kva.de"])]
    assert relay.messages[0]["To"] == "ann@xn--mller-kva.de"
    assert (refused.accepted, refused.error_code, refused.transient) == (False, "smtputf8", False)



# --- receipts ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reports", [("delivered", "failed"), ("failed", "delivered"), ("read", "undelivered", "sent"),
                                     ("delivered", "undelivered", "delivered")])
def test_a_message_reported_delivered_stays_delivered_whatever_reports_come_after_or_before(
        server, service, make_business, session_factory, clock, dispatcher, reports):
    """Twilio's reports can come out of order or contradict each other: once a message is reported delivered (or read)
    its attempt says so, and a failure reported later, or earlier, neither marks it failed nor sends it again (the
    attempt read "failed" after "delivered", while the message counted as delivered)."""
    from tests.reminders.test_round10 import post_status

    clinic, phone = make_business("clinic"), new_phone()
    booking = book(service, clinic, THURSDAY_9, phone, channels=["sms"])
    drain(dispatcher)
    with session_factory() as s:
        confirmation = s.scalars(select(Notification).where(Notification.booking_id == booking.id,
                                                            Notification.kind == "confirmation")).one()
        [sid] = s.scalars(select(DeliveryAttempt.provider_id).where(
            DeliveryAttempt.notification_id == confirmation.id)).all()
    for report in reports:
        assert post_status(server, sid, report, "30003" if report in ("failed", "undelivered") else None
                           ).status_code == 204
    drain(dispatcher)
    with session_factory() as s:
        attempts = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.notification_id == confirmation.id)).all()
        assert s.get(Notification, confirmation.id).status == "delivered"
    assert [(a.channel, a.status) for a in attempts] == [("sms", "read" if "read" in reports else "delivered")]


# --- exactly once --------------------------------------------------------------------------------------------------

DIES_AFTER_SENDING = """
import os, sys
from datetime import datetime
from nextslot.reminders.channels import build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for

class DiesAfterSending:
    def __init__(self, channel):
        self.name, self.channel = channel.name, channel

    def send(self, message):
        self.channel.send(message)
        os._exit(9)  # Twilio took the message; the process dies before recording it

settings = Settings()
channels = {name: DiesAfterSending(channel) for name, channel in build_channels(settings).items()}
now = datetime.fromisoformat(sys.argv[1])
Dispatcher(build_session_factory(engine_for(settings.database_url)), channels, clock=lambda: now).dispatch_due()
"""


def test_a_message_twilio_took_from_a_dispatcher_that_died_before_recording_it_is_not_sent_again(
        server, service, make_business, session_factory, clock, dispatcher, twilio, database_url):
    """A scheduler process hands Twilio the confirmation and dies before storing that it did: its lease runs out and
    another process takes the message over. Twilio's receipt for it has come (its status callback names the message):
    the send is recorded from it, not made again (the customer got the same confirmation twice)."""
    import os
    import subprocess
    import sys

    clinic, phone = make_business("clinic"), new_phone()
    booking = book(service, clinic, THURSDAY_9, phone, channels=["sms"])
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url, "NEXTSLOT_PUBLIC_URL": PUBLIC_URL,
           **{f"NEXTSLOT_{k.upper()}": v for k, v in twilio.settings().items()}}
    died = subprocess.run([sys.executable, "-c", DIES_AFTER_SENDING, clock.now.isoformat()], env=env, timeout=120,
                          capture_output=True, text=True)
    assert died.returncode == 9, died.stderr
    [taken] = sent_to(twilio, phone, "you're booked")
    callback = twilio.accepted[taken]["StatusCallback"]
    assert callback.startswith(f"{PUBLIC_URL}/webhooks/twilio/status?")
    for report in ("queued", "sent"):  # Twilio reports on it within seconds
        form = {"MessageSid": taken, "MessageStatus": report, "To": phone, "From": FakeTwilio.sms_from}
        signature = RequestValidator(TOKEN).compute_signature(callback, form)
        assert httpx2.post(server.url + callback.removeprefix(PUBLIC_URL), data=form, timeout=30,
                           headers={"X-Twilio-Signature": signature}).status_code == 204

    clock.now += timedelta(minutes=3)  # the dead process's lease has run out
    drain(dispatcher)
    assert sent_to(twilio, phone, "you're booked") == [taken]
    with session_factory() as s:
        confirmation = s.scalars(select(Notification).where(Notification.booking_id == booking.id,
                                                            Notification.kind == "confirmation")).one()
        attempts = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.notification_id == confirmation.id)).all()
    assert confirmation.status == "sent" and [(a.provider_id, a.status) for a in attempts] == [(taken, "sent")]
    assert record_receipt(session_factory, clock.now, taken, "delivered")
    with session_factory() as s:
        assert s.get(Notification, confirmation.id).status == "delivered"
