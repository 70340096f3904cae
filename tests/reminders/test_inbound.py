"""Replies posted to the running server as Twilio posts them (signed form), acting through the core."""
from __future__ import annotations

from datetime import UTC, datetime

import httpx2
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Conversation, ConversationMessage, Customer, InboundMessage, Notification

PUBLIC_URL = "https://book.example.com"
TOKEN = "twilio-auth-token"
PHONE = "+447911123460"


@pytest.fixture
def server(live_server):
    with live_server(frozen=True, settings=Settings(public_url=PUBLIC_URL, twilio_auth_token=TOKEN)) as running:
        yield running


def post(server, sender: str, body: str, sid: str | None = None, token: str = TOKEN) -> httpx2.Response:
    form = {"From": sender, "Body": body, "MessageSid": sid or f"SM{abs(hash((sender, body))):032x}"[:34]}
    signature = RequestValidator(token).compute_signature(f"{PUBLIC_URL}/webhooks/twilio/inbound", form)
    return httpx2.post(f"{server.url}/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature})


def book(service, business: int, hour: int, phone: str = PHONE, **more) -> Booking:
    return service.book(business, BookingCreate(
        service="consultation", starts_at=datetime(2026, 11, 24, hour, tzinfo=UTC),
        customer=CustomerIn(name="Ann Lee", phone=phone, **more))).booking


def status(session_factory, booking: Booking) -> str:
    with session_factory() as s:
        return s.get(Booking, booking.id).status


def test_yes_confirms_the_next_appointment_and_the_answer_is_twiml(server, service, make_business, session_factory):
    clinic = make_business("clinic")
    first, later = book(service, clinic, 9), book(service, clinic, 11)
    response = post(server, f"whatsapp:{PHONE}", "Yes 👍")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    assert "<Message>Thanks, your GP consultation on Tuesday 24 November at 9 am is confirmed.</Message>" in \
        response.text
    assert status(session_factory, first) == "confirmed" and status(session_factory, later) == "booked"
    with session_factory() as s:
        logged = s.scalars(select(InboundMessage).where(InboundMessage.booking_id == first.id)).one()
    assert (logged.channel, logged.intent, logged.outcome) == ("whatsapp", "confirm", "confirmed")


def test_a_code_in_the_reply_picks_the_booking_and_cancel_frees_it_and_is_announced(
        server, service, make_business, session_factory):
    clinic = make_business("clinic")
    first, later = book(service, clinic, 9, phone="+447911123461"), book(service, clinic, 11, phone="+447911123461")
    spaced = f"{later.code[:3]} {later.code[3:]}".lower()
    answer = post(server, "+447911123461", f"cancel {spaced}").text
    assert "is cancelled" in answer and "11 am" in answer
    assert status(session_factory, later) == "cancelled" and status(session_factory, first) == "booked"
    with session_factory() as s:
        kinds = s.scalars(select(Notification.kind).where(Notification.booking_id == later.id,
                                                          Notification.status == "pending")).all()
    assert kinds == ["cancelled"]


def test_an_unclear_reply_goes_to_the_conversation_and_changes_nothing(server, service, make_business,
                                                                       session_factory):
    clinic = make_business("clinic")
    booking = book(service, clinic, 9, phone="+447911123462", language="es")
    answer = post(server, "+447911123462", "yes but can I cancel?").text
    assert answer.endswith("<Response />")  # acknowledged at once; the conversation answers through the outbox
    assert status(session_factory, booking) == "booked"
    with session_factory() as s:
        conversation = s.scalars(select(Conversation).where(Conversation.phone == "+447911123462")).one()
        [waiting] = s.scalars(select(ConversationMessage).where(ConversationMessage.conversation_id == conversation.id))
    assert (conversation.business_id, conversation.language, waiting.body) == (clinic, "es", "yes but can I cancel?")


def test_without_conversations_an_unclear_reply_gets_a_question(service, make_business):
    from nextslot.reminders.inbound import handle_reply

    clinic = make_business("clinic")
    book(service, clinic, 9, phone="+447911123467", language="es")
    answer = handle_reply(service, "sms", "+447911123467", "yes but can I cancel?", "SMunclear1")
    assert "responde C para confirmar o X para cancelar" in answer and "martes 24 de noviembre" in answer


def test_a_retried_message_is_answered_again_but_acted_on_once(server, service, make_business, session_factory):
    clinic = make_business("clinic")
    booking = book(service, clinic, 9, phone="+447911123463")
    first = post(server, "+447911123463", "C", sid="SM" + "a" * 32)
    again = post(server, "+447911123463", "C", sid="SM" + "a" * 32)
    assert first.text == again.text and status(session_factory, booking) == "confirmed"
    with session_factory() as s:
        assert len(s.scalars(select(InboundMessage).where(InboundMessage.provider_id == "SM" + "a" * 32)).all()) == 1


def test_stop_opts_the_number_out_of_that_channel_and_start_back_in(
        server, service, make_business, session_factory, clock):
    clinic = make_business("clinic")
    book(service, clinic, 9, phone="+447911123464")
    assert "won't get more messages" in post(server, "whatsapp:+447911123464", "STOP").text
    with session_factory() as s:
        customer = s.scalars(select(Customer).where(Customer.phone == "+447911123464")).one()
        assert customer.opted_out == ["whatsapp"]
    assert "again" in post(server, "whatsapp:+447911123464", "START").text
    with session_factory() as s:
        assert s.get(Customer, customer.id).opted_out == []


def test_unknown_numbers_and_bad_signatures(server):
    assert "couldn't find an upcoming appointment" in post(server, "+447911123469", "yes").text
    assert post(server, "+447911123469", "yes", token="wrong").status_code == 403
    unsigned = httpx2.post(f"{server.url}/webhooks/twilio/inbound", data={"From": "+447911123469", "Body": "yes"})
    assert unsigned.status_code == 403


def test_an_opted_out_channel_is_skipped_by_the_dispatcher(server, service, make_business, session_factory, clock):
    from tests.reminders.test_dispatcher import ScriptedChannel

    clinic = make_business("clinic")
    book(service, clinic, 9, phone="+447911123465")
    post(server, "whatsapp:+447911123465", "stop")
    channels = {n: ScriptedChannel(n) for n in ("whatsapp", "sms")}
    Dispatcher(session_factory, channels, clock=clock).dispatch_due()
    assert not channels["whatsapp"].sent and channels["sms"].sent[0].to == "+447911123465"


def test_a_code_that_matches_none_of_the_callers_bookings_never_cancels_another(
        server, service, make_business, session_factory):
    clinic = make_business("clinic")
    booking = book(service, clinic, 9, phone="+447911123466")
    assert "couldn't find" in post(server, "+447911123466", "cancel 999999").text
    assert status(session_factory, booking) == "booked"
