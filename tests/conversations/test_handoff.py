"""Handing a conversation to a person: by the customer's words (any of four languages), the menu's choice, the
model's tool, or the agent failing again and again; the engine silent while a person has it; a staff reply sent
through the outbox to the fake Twilio API; handing it back; the console's inbox polled with an ETag."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from evals.scripted_model import call, scripted_model, words
from nextslot.conversations.handoff import wants_person
from nextslot.conversations.inbox import Replied, hand_back, staff_reply
from nextslot.storage.tables import ConversationMessage, Notification
from tests.server.test_console import clients, console, csrf_of  # noqa: F401 - the signed-in console fixture


@pytest.fixture
def desk(console):  # noqa: F811 - the imported fixture, by name
    """`client, slug = desk(business_id, role)`: a signed-in console client (the console tests' fixture)."""
    return console


HANDED = "Thanks, a person from Riverside Clinic will answer you here as soon as they can."


def test_asking_for_a_person_in_any_language_is_read_as_such_and_a_time_is_not():
    for text in ("can I talk to a person?", "AGENT", "I want to speak to someone", "human please",
                 "quiero hablar con una persona", "je voudrais parler à quelqu'un", "bitte einen Mitarbeiter"):
        assert wants_person(text), text
    for text in ("can I book Tuesday at 4?", "1", "in person or online?", "my personal details"):
        assert not wants_person(text), text


def test_asking_for_a_person_hands_off_and_the_engine_goes_silent_until_handed_back(chat_for, service):
    phone = "+447911300001"
    with chat_for() as chat:
        chat.say(phone, "hello")
        assert chat.say(phone, "can I speak to someone please?") == HANDED
        c = chat.conversation(phone)
        assert c.handoff_at is not None and c.handoff_reason == "asked"
        chat.send(phone, "are you there?")
        chat.send(phone, "1")
        chat.run()
        assert chat.answers(phone)[-1] == HANDED  # stored, not answered
        stored = [m for m in chat.messages(phone) if m.direction == "in"]
        assert [m.body for m in stored[-2:]] == ["are you there?", "1"] and all(m.processed_at for m in stored)

        assert isinstance(staff_reply(service, chat.business_id, c.id, "Hi, Sam here. How can I help?", "Sam"),
                          Replied)
        chat.run()
        assert chat.replies(phone)[-1] == "Hi, Sam here. How can I help?"  # through the outbox, to Twilio
        staff_line = chat.messages(phone)[-1]
        assert (staff_line.answered_by, staff_line.staff_name) == ("staff", "Sam")
        with chat.session_factory() as s:
            assert s.get(Notification, staff_line.notification_id).status == "sent"

        hand_back(service, chat.business_id, c.id)
        assert chat.conversation(phone).handoff_at is None
        assert "1 Book an appointment" in chat.say(phone, "thanks, bye")  # the agent answers again


def test_a_spanish_request_is_answered_in_spanish_and_the_menu_offers_a_person(chat_for):
    with chat_for() as chat:
        answer = chat.say("+447911300002", "hola, quiero hablar con una persona")
        assert answer == "Gracias, una persona de Riverside Clinic te responderá aquí en cuanto pueda."
        menu = chat.say("+447911300003", "hi")
        assert "3 Talk to a person" in menu
        assert chat.say("+447911300003", "3") == HANDED
        assert chat.conversation("+447911300003").handoff_reason == "menu"


def test_an_agent_that_cannot_help_three_times_in_a_row_hands_off(chat_for):
    phone = "+447911300004"
    with chat_for() as chat:
        chat.say(phone, "hi")
        assert "Which service?" in chat.say(phone, "1")
        assert chat.say(phone, "the blue one").startswith("Please reply with one of the numbers.")
        assert chat.say(phone, "no, blue").startswith("Please reply with one of the numbers.")
        assert chat.say(phone, "BLUE!!") == HANDED
        assert chat.conversation(phone).handoff_reason == "failures"


def test_the_model_can_hand_off_with_its_tool(chat_for):
    with scripted_model(call("talk_to_a_person", {"reason": "a complaint"}), words("Someone will help.")) as model:
        with chat_for(conversation_model="scripted", conversation_base_url=model.base_url) as chat:
            assert chat.say("+447911300005", "I was overcharged last week") == HANDED
            assert chat.conversation("+447911300005").handoff_reason == "model"
    assert "talk_to_a_person" in [t["function"]["name"] for t in model.requests[0]["tools"]]


def test_the_inbox_lists_handoffs_first_polls_with_an_etag_and_staff_reply_from_it(chat_for, desk,
                                                                                   session_factory):
    with chat_for() as chat:
        chat.say("+447911300006", "hello")
        client, slug = desk(chat.business_id, "staff")
        first = client.get(f"/console/{slug}/inbox?partial=1")
        tag = first.headers["etag"]
        assert client.get(f"/console/{slug}/inbox?partial=1", headers={"If-None-Match": tag}).status_code == 304
        chat.say("+447911300007", "human please")
        fresh = client.get(f"/console/{slug}/inbox?partial=1", headers={"If-None-Match": tag})
        assert fresh.status_code == 200 and fresh.headers["etag"] != tag
        assert fresh.text.index("+447911300007") < fresh.text.index("+447911300006")  # needs a person: first
        assert "needs a person" in fresh.text

        c = chat.conversation("+447911300007")
        page = client.get(f"/console/{slug}/inbox/{c.id}")
        assert "human please" in page.text and HANDED in page.text
        refused = client.post(f"/console/{slug}/inbox/{c.id}/reply", data={"text": "no token"})
        assert refused.status_code == 403
        sent = client.post(f"/console/{slug}/inbox/{c.id}/reply",
                           data={"csrf": csrf_of(page.text), "text": "Hello, this is the front desk."})
        assert sent.status_code == 303
        chat.run()
        assert chat.replies("+447911300007")[-1] == "Hello, this is the front desk."
        with session_factory() as s:
            line = s.scalars(select(ConversationMessage).where(ConversationMessage.conversation_id == c.id)
                             .order_by(ConversationMessage.id.desc())).first()
        assert line.staff_name == "Sam staff"
        back = client.post(f"/console/{slug}/inbox/{c.id}/hand-back", data={"csrf": csrf_of(page.text)})
        assert back.status_code == 303 and chat.conversation("+447911300007").handoff_at is None
        other, _ = desk(chat.business_id, "owner", email="other-owner@example.com")
        assert other.get(f"/console/{slug}/inbox/{c.id}").status_code == 200  # owners answer too
