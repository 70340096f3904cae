"""Twilio's webhooks with generated forms: signed as Twilio signs them (so hostile From, To, Body, MessageSid and
media fields reach the logic) or with a forged or missing signature (refused, nothing written). Then the
conversation engine and the dispatcher work through what was stored, as a scheduler would: no worker crash, no
message left unanswered, and delivery receipts with hostile fields for the messages really sent."""
from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from evals.fakes import FakeTwilio
from nextslot.conversations.engine import ConversationEngine
from nextslot.reminders.channels import build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Business, Conversation, ConversationMessage, DeliveryAttempt
from tests.conversations.conftest import clinic_config
from tests.fuzz.channels import checked, logged_errors, rows, sendable, text_of, unlimited
from tests.fuzz.hostile import PHONES, arguments, assert_whole, examples, scalars

PUBLIC_URL = "https://book.example.com"
INBOUND = ["From", "To", "Body", "MessageSid", "NumMedia", "MediaUrl0", "MediaContentType0", "MediaUrl1",
           "Latitude", "Longitude", "Address", "Label", "ProfileName", "WaId", "AccountSid"]
STATUS = ["MessageSid", "MessageStatus", "ErrorCode", "To", "From", "AccountSid"]
MESSAGE_SIDS = st.tuples(st.sampled_from(["SM", "MM"]), st.text("0123456789abcdef", min_size=32, max_size=32)).map(
    "".join)  # Twilio's shape; any other is refused before the logic


def sid() -> str:
    return f"SM{uuid.uuid4().hex}"


def signed(url: str, form: dict[str, str]) -> str:
    return RequestValidator(FakeTwilio.auth_token).compute_signature(url, form)


def test_signed_and_forged_twilio_webhooks_then_the_workers(service, make_business, session_factory, clock):
    clinic, other = make_business(clinic_config()), make_business(clinic_config())
    with session_factory() as s:
        numbers = [s.get(Business, b).details["conversations"]["numbers"][0] for b in (clinic, other)]
    senders = st.one_of(st.sampled_from(["+447911300001", "+447911300002"]), PHONES, scalars()).flatmap(
        lambda phone: st.sampled_from([phone, f"whatsapp:{phone}"]) if isinstance(phone, str) else st.just(phone))
    known = {"From": senders, "To": st.one_of(st.sampled_from([*numbers, *(f"whatsapp:{n}" for n in numbers)]),
                                              scalars()),
             "Body": st.one_of(st.sampled_from(["hi", "1", "yes", "cancel", "STOP", "start", "2", "0", "person"]),
                               scalars()),
             "MessageSid": st.one_of(MESSAGE_SIDS, scalars())}
    with FakeTwilio(clock=clock) as twilio:
        settings = Settings(public_url=PUBLIC_URL, secret_key="fuzz-tests", **twilio.settings())
        app = create_app(settings, service=service)
        with TestClient(app, raise_server_exceptions=False) as http:
            unlimited(app)

            @given(data=st.data(), forged=st.sampled_from([None, "", "bad", "valid-but-other-url"]),
                   signature_ok=st.integers(0, 3))
            @examples(120)
            def inbound(data, forged, signature_ok):
                form = {k: text_of(v) for k, v in data.draw(arguments(INBOUND)).items()}
                for name, values in known.items():  # a MessageSid always: without one the form is refused
                    if name == "MessageSid" or data.draw(st.booleans()):
                        form[name] = text_of(data.draw(values))
                if not sendable(form):
                    return
                url = f"{PUBLIC_URL}/webhooks/twilio/inbound"
                headers = {"X-Twilio-Signature": signed(url, form)} if signature_ok else {}
                if not signature_ok and forged is not None:
                    headers["X-Twilio-Signature"] = signed(f"{PUBLIC_URL}/webhooks/twilio/status", form) \
                        if forged == "valid-but-other-url" else forged
                before = rows(session_factory)
                answer = http.post("/webhooks/twilio/inbound", data=form, headers=headers)
                checked(answer, before, rows(session_factory), f"inbound {form} {headers}")
                if not signature_ok:
                    assert answer.status_code == 403, answer.text

            inbound()
            engine = ConversationEngine(service, settings)
            dispatcher = Dispatcher(session_factory, build_channels(settings), clock=clock)
            with logged_errors("nextslot.conversations.engine", "nextslot.reminders.dispatcher") as errors:
                for _ in range(settings.conversation_message_attempts + 2):
                    while engine.process_due():
                        pass
                    clock.now += timedelta(seconds=settings.conversation_retry_seconds + 1)
                while dispatcher.dispatch_due():
                    pass
            assert errors.seen == []
            with session_factory() as s:
                waiting = s.execute(select(ConversationMessage.id, ConversationMessage.body).join(Conversation).where(
                    Conversation.business_id.in_((clinic, other)), ConversationMessage.direction == "in",
                    ConversationMessage.processed_at.is_(None))).all()
                sids = s.scalars(select(DeliveryAttempt.provider_id).where(
                    DeliveryAttempt.provider_id.is_not(None)).order_by(DeliveryAttempt.id.desc()).limit(20)).all()
            assert waiting == [], f"messages left unanswered: {waiting}"

            @given(data=st.data(), signature_ok=st.integers(0, 3))
            @examples(60)
            def status(data, signature_ok):
                form = {k: text_of(v) for k, v in data.draw(arguments(STATUS)).items()}
                if sids and data.draw(st.booleans()):
                    form["MessageSid"] = data.draw(st.sampled_from(sids))
                if data.draw(st.booleans()):
                    form["MessageStatus"] = data.draw(st.one_of(st.sampled_from(
                        ["delivered", "read", "failed", "undelivered", "sent", "queued", "DELIVERED"]), scalars()
                    ).map(text_of))
                if not sendable(form):
                    return
                url = f"{PUBLIC_URL}/webhooks/twilio/status"
                headers = {"X-Twilio-Signature": signed(url, form) if signature_ok else "forged"}
                before = rows(session_factory)
                answer = http.post("/webhooks/twilio/status", data=form, headers=headers)
                checked(answer, before, rows(session_factory), f"status {form}")
                if not signature_ok:
                    assert answer.status_code == 403, answer.text

            status()
    assert_whole(session_factory)


def test_a_signed_form_with_nul_or_numbers_longer_than_twilio_sends_is_refused_or_read_without_them(
        service, make_business, session_factory):
    """Found by the fuzz run: a NUL in From (signed) reached PostgreSQL, and a From, SID or status longer than its
    column failed the insert: both a 500."""
    make_business(clinic_config())
    app = create_app(Settings(public_url=PUBLIC_URL, twilio_auth_token=FakeTwilio.auth_token), service=service)
    with TestClient(app, raise_server_exceptions=False) as http:
        def post(path: str, form: dict[str, str]):
            signature = signed(f"{PUBLIC_URL}/webhooks/twilio/{path}", form)
            return http.post(f"/webhooks/twilio/{path}", data=form, headers={"X-Twilio-Signature": signature})

        assert post("inbound", {"From": "ann@example.com\x00", "Body": "null", "MessageSid": sid()}).status_code == 200
        assert post("inbound", {"From": "+447911300009", "Body": "hi\x00 there", "MessageSid": sid()}
                    ).status_code == 200
        before = rows(session_factory)
        for form in ({"From": "+4479111234567890123456789", "Body": "hi", "MessageSid": sid()},
                     {"From": "+447911300009", "Body": "hi", "MessageSid": "S" * 5000},
                     {"From": "+447911300009", "Body": "hi", "MessageSid": sid() + "\x00"}):
            answer = post("inbound", form)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_payload"
        assert post("status", {"MessageSid": sid(), "MessageStatus": "x" * 5000}).status_code == 400
        assert post("status", {"MessageSid": "SM1\x00", "MessageStatus": "delivered"}).status_code == 400
        assert post("status", {"MessageSid": sid(), "MessageStatus": "delivered", "ErrorCode": "\x00"}
                    ).status_code == 204
        assert rows(session_factory) == before
