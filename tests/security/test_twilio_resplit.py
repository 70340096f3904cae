"""Twilio's signature is an HMAC over the URL and every field's name and value run together (sorted by name), so
one captured signed request can be split again into another form with the same signature: MessageSid's value
lengthened by the next field's name and value, that field dropped. The webhooks take only a MessageSid of Twilio's
shape (SM or MM and 32 lowercase hex digits; SmsSid and SmsMessageSid, when sent, the same), so no such second
reading is acted on again under a "new" MessageSid."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, EarlyReceipt, InboundMessage

PUBLIC_URL = "https://book.example.com"
TOKEN = "twilio-auth-token"
INBOUND, STATUS = f"{PUBLIC_URL}/webhooks/twilio/inbound", f"{PUBLIC_URL}/webhooks/twilio/status"


@pytest.fixture
def http(service):
    app = create_app(Settings(public_url=PUBLIC_URL, twilio_auth_token=TOKEN), service=service)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def book(service, business: int, hour: int, phone: str) -> Booking:
    return service.book(business, BookingCreate(
        service="consultation", starts_at=datetime(2026, 11, 24, hour, tzinfo=UTC),
        customer=CustomerIn(name="Ann Lee", phone=phone))).booking


def status_of(session_factory, booking: Booking) -> str:
    with session_factory() as s:
        return s.get(Booking, booking.id).status


def replies_from(session_factory, phone: str) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(InboundMessage).where(InboundMessage.sender == phone))


def refused_as_invalid(answer) -> bool:
    return answer.status_code == 400 and answer.json() == {
        "error": {"code": "invalid_payload", "message": "MessageSid is not a Twilio message SID."}}


def test_a_signed_reply_split_again_into_a_new_message_sid_is_refused_and_cancels_nothing_more(
        http, service, make_business, session_factory):
    clinic, phone = make_business("clinic"), f"+4479111{uuid.uuid4().int % 10**5:05d}"
    first, later = book(service, clinic, 9, phone), book(service, clinic, 11, phone)
    captured = {"From": phone, "Body": "X", "MessageSid": f"SM{uuid.uuid4().hex}", "NumMedia": "0"}
    signature = RequestValidator(TOKEN).compute_signature(INBOUND, captured)
    answer = http.post("/webhooks/twilio/inbound", data=captured, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200 and "<Message>" in answer.text, answer.text
    assert (status_of(session_factory, first), status_of(session_factory, later)) == ("cancelled", "booked")

    # "NumMedia" + "0" moved into MessageSid's value: the same characters signed, another MessageSid
    resplit = {"From": phone, "Body": "X", "MessageSid": captured["MessageSid"] + "NumMedia0"}
    validator = RequestValidator(TOKEN)
    assert validator.compute_signature(INBOUND, resplit) == signature and validator.validate(INBOUND, resplit,
                                                                                              signature)
    again = http.post("/webhooks/twilio/inbound", data=resplit, headers={"X-Twilio-Signature": signature})
    assert refused_as_invalid(again), again.text
    assert status_of(session_factory, later) == "booked"  # the X was not acted on a second time
    assert replies_from(session_factory, phone) == 1  # nor stored or answered again


@pytest.mark.parametrize("form", [
    {"From": "+447911123470", "Body": "X"},  # no MessageSid at all
    {"From": "+447911123470", "Body": "X", "MessageSid": "SM" + "ab" * 16, "SmsSid": "SM" + "cd" * 16},
    {"From": "+447911123470", "Body": "X", "MessageSid": "SM" + "ab" * 16, "SmsMessageSid": "SM" + "ab" * 15},
], ids=["missing", "other-SmsSid", "other-SmsMessageSid"])
def test_a_signed_reply_without_a_message_sid_or_with_another_sms_sid_is_refused(http, session_factory, form):
    signature = RequestValidator(TOKEN).compute_signature(INBOUND, form)
    answer = http.post("/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature})
    assert refused_as_invalid(answer), answer.text
    assert replies_from(session_factory, "+447911123470") == 0


@pytest.mark.parametrize("sid", [
    "SM1", "SM" + "a" * 31, "SM" + "a" * 33, "AC" + "a" * 32, "SM" + "g" * 32,
    "SM" + "a" * 32 + "MessageStatusdelivered", "SM" + "a" * 31 + "\x00", " SM" + "a" * 32,
], ids=["short", "31-hex", "33-hex", "account-sid", "not-hex", "resplit", "nul", "space"])
def test_a_signed_status_callback_with_a_malformed_message_sid_is_refused_and_keeps_nothing(
        http, session_factory, sid):
    form = {"MessageSid": sid, "MessageStatus": "delivered", "ErrorCode": ""}
    signature = RequestValidator(TOKEN).compute_signature(STATUS, form)
    answer = http.post("/webhooks/twilio/status", data=form, headers={"X-Twilio-Signature": signature})
    assert refused_as_invalid(answer), answer.text
    with session_factory() as s:
        # as it would be kept: without the NUL, which PostgreSQL stores in no text
        assert s.scalars(select(EarlyReceipt).where(EarlyReceipt.provider_id == sid.replace("\x00", ""))).all() == []


@pytest.mark.parametrize("hexes", [str.lower, str.upper], ids=["lower", "upper"])  # Twilio's pattern takes both
def test_a_signed_status_callback_with_a_real_shaped_sid_is_still_kept(http, session_factory, hexes):
    sid = f"MM{hexes(uuid.uuid4().hex)}"
    form = {"MessageSid": sid, "MessageStatus": "delivered", "SmsSid": sid}
    signature = RequestValidator(TOKEN).compute_signature(STATUS, form)
    assert http.post("/webhooks/twilio/status", data=form, headers={"X-Twilio-Signature": signature}
                     ).status_code == 204
    with session_factory() as s:
        assert s.scalars(select(EarlyReceipt.status).where(EarlyReceipt.provider_id == sid)).all() == ["delivered"]
