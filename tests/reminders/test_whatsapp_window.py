"""WhatsApp's 24-hour window: the signed inbound webhook records when a customer last wrote to a business; the
dispatcher sends free text inside the window, the business's approved template (Twilio Content API) outside it,
and without one skips WhatsApp for SMS with the reason stored. The real `twilio` client against the fake Twilio
API, which refuses free text outside the window with 63016 like WhatsApp does."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from nextslot.conversations.engine import ConversationEngine, add_reply
from nextslot.conversations.inbox import exchange
from nextslot.core.business.config import apply_config
from nextslot.reminders.channels import build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingCreate, BookingReschedule, CustomerIn
from nextslot.schemas.config import BusinessConfig
from nextslot.settings import Settings
from nextslot.storage.tables import Conversation, DeliveryAttempt, Notification, WhatsAppWindow
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import example

PUBLIC_URL = "https://book.example.com"
THURSDAY_9 = datetime(2026, 11, 26, 9, tzinfo=UTC)


def clinic(fake_twilio, templates: dict[str, Any] | None = None) -> dict[str, Any]:
    """The clinic example with a WhatsApp number of its own and, if given, approved templates."""
    data = example("clinic")
    number = f"+4420{uuid.uuid4().int % 10**8:08d}"
    details = {**data["business"].get("details", {}), "conversations": {"numbers": [number], "model": False}}
    if templates is not None:
        details["whatsapp_templates"] = templates
    return {**data, "business": {**data["business"], "details": details}}


@pytest.fixture
def wired(fake_twilio, live_server, session_factory, clock):
    """The running server (Twilio's webhook, the test's clock) and a dispatcher sending through the real twilio
    client to the fake."""
    settings = Settings(public_url=PUBLIC_URL, **fake_twilio.settings())
    with live_server(frozen=True, settings=settings) as server:
        yield server, Dispatcher(session_factory, build_channels(settings), clock=clock)


def write(server, fake_twilio, phone: str, to: str, body: str) -> httpx2.Response:
    """The customer sends a WhatsApp message to the business's number: Twilio relays and signs it."""
    fake_twilio.customer_wrote(phone, to)
    form = {"From": f"whatsapp:{phone}", "To": f"whatsapp:{to}", "Body": body,
            "MessageSid": f"SM{uuid.uuid4().hex}"}
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(f"{PUBLIC_URL}/webhooks/twilio/inbound",
                                                                          form)
    return httpx2.post(f"{server.url}/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature})


def book(service, business: int, phone: str, language: str = "en", start: datetime = THURSDAY_9):
    result = service.book(business, BookingCreate(service="consultation", starts_at=start, customer=CustomerIn(
        name="Ana Ruiz", phone=phone, language=language)))
    assert hasattr(result, "booking"), result
    return result.booking


def tries(session_factory, business: int, kind: str) -> list[tuple[str, str, str | None]]:
    with session_factory() as s:
        rows = s.execute(select(DeliveryAttempt.channel, DeliveryAttempt.status, DeliveryAttempt.error_code)
                         .join(Notification, Notification.id == DeliveryAttempt.notification_id)
                         .where(Notification.business_id == business, Notification.kind == kind)
                         .order_by(DeliveryAttempt.id)).all()
    return [tuple(r) for r in rows]


def number_of(session_factory, business: int) -> str:
    from nextslot.storage.tables import Business
    with session_factory() as s:
        return s.get(Business, business).details["conversations"]["numbers"][0]


def test_outside_the_window_the_approved_template_goes_with_the_messages_values(
        fake_twilio, wired, service, make_business, session_factory):
    _, dispatcher = wired
    sid = fake_twilio.approve_template("Hi {{1}}, your {{2}} is booked for {{3}}. Code {{4}}.")
    business = make_business(clinic(fake_twilio, {"en": {"confirmation": {
        "content_sid": sid, "variables": ["name", "service", "when", "code"]}}}))
    booking = book(service, business, "+447911123601")

    dispatcher.dispatch_due()

    [request] = fake_twilio.requests
    assert request["To"] == "whatsapp:+447911123601" and request["ContentSid"] == sid and "Body" not in request
    variables = json.loads(request["ContentVariables"])
    assert variables["1"] == "Ana Ruiz" and variables["4"] == booking.code and "26 November" in variables["3"]
    assert fake_twilio.whatsapp_texts("+447911123601") == [
        f"Hi Ana Ruiz, your {variables['2']} is booked for {variables['3']}. Code {booking.code}."]
    assert tries(session_factory, business, "confirmation") == [("whatsapp", "queued", None)]


def test_outside_the_window_without_a_template_whatsapp_is_skipped_for_sms_and_the_reason_kept(
        fake_twilio, wired, service, make_business, session_factory):
    _, dispatcher = wired
    business = make_business(clinic(fake_twilio))
    booking = book(service, business, "+447911123602")

    dispatcher.dispatch_due()

    [sms] = fake_twilio.requests  # WhatsApp was never asked: it would have refused with 63016
    assert sms["To"] == "+447911123602" and booking.code in sms["Body"]
    assert tries(session_factory, business, "confirmation") == [("whatsapp", "skipped", "outside_window"),
                                                                 ("sms", "queued", None)]
    with session_factory() as s:
        n = s.scalars(select(Notification).where(Notification.business_id == business,
                                                 Notification.kind == "confirmation")).one()
        why = s.scalars(select(DeliveryAttempt.error_message).where(DeliveryAttempt.notification_id == n.id,
                                                                    DeliveryAttempt.status == "skipped")).one()
    assert n.status == "sent" and n.gave_up_on == ["whatsapp"]
    assert "24-hour window" in why and "no approved template for confirmation" in why


def test_a_customer_who_wrote_gets_free_text_for_a_day_then_a_template_in_their_language(
        fake_twilio, wired, service, make_business, session_factory, clock):
    server, dispatcher = wired
    sid = fake_twilio.approve_template("Hola {{1}}: tu cita es ahora el {{2}}.")
    business = make_business(clinic(fake_twilio, {"es": {"rescheduled": {"content_sid": sid,
                                                                           "variables": ["name", "when"]}}}))
    phone, ours = "+34612555103", fake_twilio.whatsapp_from  # the number confirmations and reminders come from
    booking = book(service, business, phone, language="es")
    assert write(server, fake_twilio, phone, ours, "Sí").status_code == 200  # confirms, and opens its window
    with session_factory() as s:
        assert s.execute(select(WhatsAppWindow.number, WhatsAppWindow.last_inbound_at).where(
            WhatsAppWindow.business_id == business, WhatsAppWindow.phone == phone)).one() == (ours, clock())

    dispatcher.dispatch_due()  # the confirmation: free text, the customer wrote a moment ago
    assert fake_twilio.requests[-1]["To"] == f"whatsapp:{phone}" and booking.code in fake_twilio.requests[-1]["Body"]
    clock.now += timedelta(hours=23, minutes=50)  # still inside: a move is announced in free text
    service.reschedule(business, BookingReschedule(code=booking.code, starts_at=THURSDAY_9 + timedelta(hours=1)))
    dispatcher.dispatch_due()
    assert "Body" in fake_twilio.requests[-1] and fake_twilio.requests[-1]["To"] == f"whatsapp:{phone}"

    clock.now += timedelta(hours=1)  # a day and more since the customer wrote: the approved Spanish template
    service.reschedule(business, BookingReschedule(code=booking.code, starts_at=THURSDAY_9 + timedelta(hours=2)))
    dispatcher.dispatch_due()
    last = fake_twilio.requests[-1]
    assert last["ContentSid"] == sid and json.loads(last["ContentVariables"])["1"] == "Ana Ruiz"
    assert fake_twilio.whatsapp_texts(phone)[-1].startswith("Hola Ana Ruiz: tu cita es ahora el jueves 26 de noviembre")
    assert [t[1] for t in tries(session_factory, business, "rescheduled")] == ["queued", "queued"]


def test_writing_to_the_business_own_number_opens_that_numbers_window_not_the_one_reminders_come_from(
        fake_twilio, wired, service, make_business, session_factory):
    server, dispatcher = wired
    business = make_business(clinic(fake_twilio))
    phone = "+447911123606"
    book(service, business, phone)
    assert write(server, fake_twilio, phone, number_of(session_factory, business), "hello").status_code == 200

    dispatcher.dispatch_due()  # the confirmation comes from our WhatsApp number, which the customer never wrote to

    assert tries(session_factory, business, "confirmation") == [("whatsapp", "skipped", "outside_window"),
                                                                 ("sms", "queued", None)]


def test_a_window_is_the_business_the_customer_wrote_to_not_another(
        fake_twilio, wired, service, make_business, session_factory):
    server, dispatcher = wired
    written_to, other = make_business(clinic(fake_twilio)), make_business(clinic(fake_twilio))
    phone = "+447911123604"
    book(service, other, phone)
    assert write(server, fake_twilio, phone, number_of(session_factory, written_to), "hello").status_code == 200

    dispatcher.dispatch_due()

    assert tries(session_factory, other, "confirmation") == [("whatsapp", "skipped", "outside_window"),
                                                              ("sms", "queued", None)]
    with session_factory() as s:
        assert s.scalars(select(WhatsAppWindow.business_id).where(WhatsAppWindow.phone == phone)).all() == [
            written_to]


def test_a_staff_reply_a_day_after_the_customer_wrote_goes_by_sms_not_as_refused_free_text(
        fake_twilio, wired, service, make_business, session_factory, clock):
    server, dispatcher = wired
    business = make_business(clinic(fake_twilio))
    phone, to = "+447911123605", number_of(session_factory, business)
    assert write(server, fake_twilio, phone, to, "agent").status_code == 200
    engine = ConversationEngine(service, Settings())
    while engine.process_due():  # "a person will answer you": inside the window
        pass
    dispatcher.dispatch_due()
    [told] = [r for r in fake_twilio.requests if r["To"] == f"whatsapp:{phone}"]
    assert (told["To"], told["From"]) == (f"whatsapp:{phone}", f"whatsapp:{to}")  # from the number written to
    clock.now += timedelta(hours=25)
    with session_factory() as s:
        conversation = s.scalars(select(Conversation).where(Conversation.business_id == business)).one()
        add_reply(s, conversation, "Sorry for the wait, we can see you Friday.", "staff", clock(), "Sam")
        s.commit()

    dispatcher.dispatch_due()

    assert fake_twilio.requests[-1] == {**fake_twilio.requests[-1], "To": phone, "From": fake_twilio.sms_from,
                                        "Body": "Sorry for the wait, we can see you Friday."}  # SMS: our SMS number
    assert tries(session_factory, business, "conversation_reply") == [
        ("whatsapp", "queued", None),  # the engine's answer, at once
        ("whatsapp", "skipped", "outside_window"), ("sms", "queued", None)]  # the staff reply, a day later
    [line] = [line for line in exchange(service, business, conversation.id).lines if line.by == "staff: Sam"]
    assert line.delivery == "sent by sms"  # the inbox shows the reply went by SMS, not WhatsApp


@pytest.mark.parametrize(("template", "field"), [
    ({"en": {"reminder": {"content_sid": "HX123", "variables": []}}}, "whatsapp_templates.en.reminder.content_sid"),
    ({"en": {"birthday": {"content_sid": "HX" + "a" * 32}}}, "whatsapp_templates.en.birthday"),
    ({"xx": {"reminder": {"content_sid": "HX" + "a" * 32}}}, "whatsapp_templates.xx"),
    ({"en": {"reminder": {"content_sid": "HX" + "a" * 32, "variables": ["name", "pin"]}}},
     "whatsapp_templates.en.reminder.variables.1"),
])
def test_a_template_that_cannot_be_sent_is_refused_with_the_config(session_factory, fake_twilio, template, field):
    data = clinic(fake_twilio, template)
    data["business"]["slug"] = f"clinic-{uuid.uuid4().hex[:8]}"
    result = apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(data))
    assert result.code == "invalid_config"
    assert any(f"business.details.{field}" in problem_field for problem_field, _ in result.problems), result


def test_template_values_with_line_breaks_tabs_or_long_spaces_go_out_on_one_line(
        fake_twilio, wired, service, make_business, session_factory):
    """WhatsApp fails a template whose parameter holds a line break, a tab or more than four spaces in a row: a
    customer's name typed with them (a pasted signature, a form's textarea) lost every reminder outside the window."""
    _, dispatcher = wired
    sid = fake_twilio.approve_template("Hi {{1}}, your {{2}} is booked for {{3}}.")
    business = make_business(clinic(fake_twilio, {"en": {"confirmation": {
        "content_sid": sid, "variables": ["name", "service", "when"]}}}))
    result = service.book(business, BookingCreate(service="consultation", starts_at=THURSDAY_9, customer=CustomerIn(
        name="Ana\n\tRuiz      Gómez\r\n", phone="+447911123604")))
    assert hasattr(result, "booking"), result

    dispatcher.dispatch_due()

    [request] = fake_twilio.requests
    assert request["ContentSid"] == sid and json.loads(request["ContentVariables"])["1"] == "Ana Ruiz Gómez"
    assert fake_twilio.whatsapp_texts("+447911123604")[0].startswith("Hi Ana Ruiz Gómez, your ")
    assert tries(session_factory, business, "confirmation") == [("whatsapp", "queued", None)]
