"""Twilio's own SMS opt-out words: a customer who texts one of them alone (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END,
QUIT, OPTOUT, REVOKE), or whose message Twilio's Advanced Opt-Out marks `OptOutType=STOP`, gets no SMS from our number
again until START: Twilio refuses each one with 21610. Our record follows Twilio's, through the running server as
Twilio calls it (signed forms) and the dispatcher sending through the real `twilio` library to the fake Twilio API
(told, as the real one would know, that the number opted out) and through smtplib to a real SMTP server."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from evals.fakes import FakeSmtpServer, FakeTwilio
from nextslot.conversations.words import WORDS
from nextslot.reminders.channels import build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.reply_words import ANSWERS
from nextslot.reminders.templates import DEFAULTS
from nextslot.schemas.commands import BookingChange
from nextslot.settings import Settings
from nextslot.tools.phrases import PHRASES
from tests.reminders.test_round10 import book, drain, new_phone, status
from tests.reminders.test_round14_messages import PUBLIC_URL, post

# Twilio's default opt-out words on long codes and messaging services (its Advanced Opt-Out guide)
TWILIO_OPT_OUT = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
TUESDAY_9, THURSDAY_9 = datetime(2026, 11, 24, 9, tzinfo=UTC), datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.fixture
def twilio(clock):
    with FakeTwilio(clock=clock) as fake:
        yield fake


@pytest.fixture
def relay():
    with FakeSmtpServer() as smtp:
        yield smtp


@pytest.fixture
def server(live_server, twilio):
    with live_server(frozen=True, settings=Settings(public_url=PUBLIC_URL, **twilio.settings())) as running:
        yield running


@pytest.fixture
def dispatcher(session_factory, twilio, relay, clock) -> Dispatcher:
    settings = Settings(public_url=PUBLIC_URL, **twilio.settings(), **relay.settings())
    return Dispatcher(session_factory, build_channels(settings), clock=clock)


def twilio_opts_out(twilio: FakeTwilio, phone: str) -> None:
    """What Twilio does on its own when the number texts an opt-out word: every later SMS to it is refused."""
    twilio.fail_next(to=phone, code=21610, message="Attempt to send to unsubscribed recipient", times=None)


def sms_tried(twilio: FakeTwilio, phone: str) -> int:
    """How many SMS sends to this number reached Twilio, taken or refused."""
    return sum(form.get("To") == phone for form in twilio.requests)


def emails_to(relay: FakeSmtpServer, address: str) -> list[str]:
    return [m["Subject"] for m in relay.messages if m["To"] == address]


@pytest.mark.parametrize("said", ["CANCEL", "cancel", " Cancel "])
def test_a_bare_cancel_by_sms_cancels_the_booking_and_no_sms_is_tried_after_it(
        server, service, make_business, session_factory, clock, dispatcher, twilio, relay, said):
    """"CANCEL" alone to a reminder cancelled the booking, and the acknowledgement and every later message were
    still tried by SMS: Twilio had opted the number out on that word and refused each (21610) before the email went.
    It still cancels (what the customer asked), answers nothing by SMS (Twilio would drop it), and the cancellation
    and every later message go by the next channel, SMS not tried."""
    clinic, phone, address = make_business("clinic"), new_phone(), f"ann{new_phone()[4:]}@example.com"
    tuesday = book(service, clinic, TUESDAY_9, phone, email=address)
    drain(dispatcher)
    answer = post(server, phone, said)
    twilio_opts_out(twilio, phone)
    tried = sms_tried(twilio, phone)
    drain(dispatcher)
    assert status(session_factory, tuesday) == "cancelled"
    assert "<Message>" not in answer.text, answer.text
    assert [s for s in emails_to(relay, address) if "cancelled" in s] != [], emails_to(relay, address)
    clock.now += timedelta(hours=1)
    book(service, clinic, THURSDAY_9, phone, email=address)  # a later booking: confirmed by email alone
    drain(dispatcher)
    assert sms_tried(twilio, phone) == tried
    assert [s for s in emails_to(relay, address) if "Booking confirmed" in s] != [], emails_to(relay, address)


@pytest.mark.parametrize("said,more", [("OPTOUT", {}), ("revoke", {}), ("Revoke", {}),
                                       ("Basta", {"OptOutType": "STOP"})])
def test_twilios_other_opt_out_words_and_its_opt_out_type_opt_the_number_out_of_sms(
        server, service, make_business, session_factory, dispatcher, twilio, relay, said, more):
    """OPTOUT and REVOKE (Twilio's since 2025), and any word Twilio's Advanced Opt-Out marks OptOutType=STOP (a
    keyword of the business's own), were read as unclear: the number stayed opted in with us and each message was
    tried by SMS, refused, then sent by email. They opt the number out of SMS, as STOP does."""
    clinic, phone, address = make_business("clinic"), new_phone(), f"ann{new_phone()[4:]}@example.com"
    post(server, phone, said, **more)
    twilio_opts_out(twilio, phone)
    booking = book(service, clinic, TUESDAY_9, phone, email=address)
    drain(dispatcher)
    assert sms_tried(twilio, phone) == 0
    assert emails_to(relay, address)
    assert status(session_factory, booking) == "booked"


def test_start_by_twilios_opt_out_type_or_its_word_lets_sms_go_again(
        server, service, make_business, session_factory, dispatcher, twilio):
    """After a bare CANCEL, a word Twilio's Advanced Opt-Out marks OptOutType=START (or START itself) opts the number
    back in at Twilio: SMS go again with us too."""
    clinic = make_business("clinic")
    for said, more in (("Allez", {"OptOutType": "START"}), ("START", {})):
        phone = new_phone()
        book(service, clinic, TUESDAY_9, phone)
        post(server, phone, "CANCEL")
        post(server, phone, said, **more)
        later = book(service, clinic, THURSDAY_9, phone)
        drain(dispatcher)
        assert any(f.get("To") == phone and later.code in f.get("Body", "") for f in twilio.accepted.values()), said
        service.cancel(clinic, BookingChange(code=later.code))


def test_a_bare_yes_after_a_bare_cancel_confirms_and_lets_sms_go_again(
        server, service, make_business, session_factory, dispatcher, twilio):
    """YES alone is one of Twilio's words that opt a number back in: it confirms the next booking and SMS go again."""
    clinic, phone = make_business("clinic"), new_phone()
    tuesday, thursday = book(service, clinic, TUESDAY_9, phone), book(service, clinic, THURSDAY_9, phone)
    post(server, phone, "CANCEL")
    assert "is confirmed" in post(server, phone, "YES").text
    assert (status(session_factory, tuesday), status(session_factory, thursday)) == ("cancelled", "confirmed")
    drain(dispatcher)
    assert any(f.get("To") == phone and thursday.code in f.get("Body", "") for f in twilio.accepted.values())


def test_a_cancel_on_whatsapp_cancels_and_leaves_sms_as_it_was(
        server, service, make_business, session_factory, dispatcher, twilio):
    """Twilio's words apply to SMS: a CANCEL on WhatsApp cancels the booking, answers there, and opts nothing out."""
    clinic, phone = make_business("clinic"), new_phone()
    booking = book(service, clinic, TUESDAY_9, phone)
    assert "is cancelled" in post(server, f"whatsapp:{phone}", "CANCEL").text
    assert status(session_factory, booking) == "cancelled"
    later = book(service, clinic, THURSDAY_9, phone)
    drain(dispatcher)
    assert any(f.get("To") == phone and later.code in f.get("Body", "") for f in twilio.accepted.values())


def outgoing_texts() -> list[str]:
    """Every text of ours a customer can read: messages, reply answers, the chat's words, the tools' phrases."""
    texts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    for source in (DEFAULTS, ANSWERS, WORDS, PHRASES):
        walk(source)
    return texts


def test_no_text_of_ours_asks_for_a_reply_with_one_of_twilios_opt_out_words_but_stop():
    """"Reply CANCEL to cancel" would take the customer off every SMS at Twilio: our texts ask for C and X, and name
    STOP only where they mean it (a word to send is written in capitals, or comes right after "reply")."""
    others = "|".join(sorted(w.upper() for w in TWILIO_OPT_OUT - {"stop"}))
    capitals = re.compile(rf"\b({others})\b")
    after_reply = re.compile(rf"\b(reply|text|send|respond\w*|r[ée]pond\w*|antwort\w*)\s+[\"'“«„]?({others})\b",
                             re.IGNORECASE)
    texts = outgoing_texts()
    assert len(texts) > 100 and any("Reply C to confirm" in t for t in texts)
    assert [t for t in texts if capitals.search(t) or after_reply.search(t)] == []
