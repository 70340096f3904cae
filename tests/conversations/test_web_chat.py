"""The booking page's chat over HTTP (in-process app, frozen clock): booking through the panel, answered by the
engine as a scheduler runs it; finding and moving a booking refused until the one-time code sent to the booking's
phone is given; a wrong code refused and the tries limited; a stranger's contact gets no code."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nextslot.conversations.bound_tools import Sender, execute_bound
from nextslot.conversations.engine import ConversationEngine
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Business, Conversation, ConversationMessage, Customer, Notification
from nextslot.tools.context import ToolContext
from tests.conversations.test_guided import book_for


@dataclass
class WebChat:
    client: TestClient
    slug: str
    engine: ConversationEngine
    session_factory: object

    def ticket(self) -> str:
        page = self.client.get(f"/b/{self.slug}/chat")
        return re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)

    def post(self, path: str, **form: str):
        return self.client.post(f"/b/{self.slug}/chat{path}", data={"ticket": self.ticket(), **form})

    def say(self, text: str, **first: str) -> str:
        sent = self.post("", text=text, **first)
        assert sent.status_code == 303, sent.text
        while self.engine.process_due():
            pass
        return self.lines()[-1]

    def conversation(self) -> Conversation:
        with self.session_factory() as s:
            return s.scalars(select(Conversation).join(Business).where(Business.slug == self.slug,
                                                                       Conversation.channel == "web")
                             .order_by(Conversation.id.desc())).first()

    def lines(self) -> list[str]:
        with self.session_factory() as s:
            return list(s.scalars(select(ConversationMessage.body).where(
                ConversationMessage.conversation_id == self.conversation().id).order_by(ConversationMessage.id)))


@pytest.fixture
def web_chat(service, make_business, session_factory) -> Iterator[WebChat]:
    business = make_business("clinic")
    with session_factory() as s:
        slug = s.get(Business, business).slug
    settings = Settings(secret_key="web-chat-tests")
    with TestClient(create_app(settings, service=service), follow_redirects=False) as client:
        yield WebChat(client, slug, ConversationEngine(service, settings), session_factory)


def test_a_visitor_books_through_the_chat_panel(web_chat, session_factory):
    assert "Open the chat" in web_chat.client.get(f"/b/{web_chat.slug}").text
    refused = web_chat.post("", text="hello")  # the first message needs a name and a phone
    assert refused.status_code == 422 and 'data-code="name_required"' in refused.text
    menu = web_chat.say("hello", name="Web Wanda", phone="07911 123501")
    assert "1 Book an appointment" in menu and "3 Talk to a person" in menu
    assert "1 GP consultation" in web_chat.say("1")
    assert web_chat.say("1").startswith("Which day for GP consultation?")
    assert "Which time on Tuesday 24 November?" in web_chat.say("2")
    assert "for Web Wanda?" in web_chat.say("1")  # the name it gave: no need to ask again
    booked = web_chat.say("1")
    assert booked.startswith("Booked: GP consultation on Tuesday 24 November at 8:30 am.")
    with session_factory() as s:
        booking = s.scalars(select(Booking).join(Customer).join(Business, Business.id == Booking.business_id)
                            .where(Customer.phone == "+447911123501", Business.slug == web_chat.slug)).one()
        assert (booking.source, booking.customer.name) == ("web_chat", "Web Wanda")
        assert s.scalar(select(Notification.id).where(Notification.kind == "conversation_reply",
                                                      Notification.payload["channel"].astext == "web")) is None
    partial = web_chat.client.get(f"/b/{web_chat.slug}/chat?partial=1")
    assert booked in partial.text
    again = web_chat.client.get(f"/b/{web_chat.slug}/chat?partial=1", headers={"If-None-Match": partial.headers["etag"]})
    assert again.status_code == 304


def sent_code(session_factory, to: str) -> str:
    with session_factory() as s:
        n = s.scalars(select(Notification).where(Notification.payload["to"].astext == to)
                      .order_by(Notification.id.desc())).first()
    assert n.payload["channel"] == "sms"
    return re.search(r"\b(\d{6})\b", n.payload["text"]).group(1)


def test_moving_a_booking_is_refused_until_the_code_sent_to_its_phone_is_given(web_chat, service,
                                                                               session_factory):
    phone = "+447911123502"
    with session_factory() as s:
        business_id = s.scalar(select(Business.id).where(Business.slug == web_chat.slug))
    mine = book_for(service, business_id, phone, 11, name="Mo Reed")
    # saying the booking's phone proves nothing: the lookup is refused
    web_chat.say("hi", name="Mo Reed", phone="07911 123502")
    assert web_chat.say("2").startswith("To see or change a booking, first confirm it is yours")
    ctx = ToolContext(service, business_id, "web_chat", caller_phone=phone)
    refused = execute_bound("reschedule_appointment", {"code": mine.code, "new_starts_at": "2026-11-24T12:00:00Z"},
                            ctx, Sender(stated_phone=phone))
    assert not refused.ok and refused.data["error"]["code"] == "verify_first"

    assert web_chat.post("/code", contact="07911 123502").status_code == 303
    code = sent_code(session_factory, phone)
    wrong = web_chat.post("/verify", code="000000" if code != "000000" else "111111")
    assert wrong.status_code == 422 and 'data-code="wrong_code"' in wrong.text and "4 tries left" in wrong.text
    assert web_chat.post("/verify", code=code).status_code == 303
    assert web_chat.conversation().identity["proved_phone"] == phone

    assert "GP consultation: Tuesday 24 November at 11 am" in web_chat.say("2")
    assert "1 Move it" in web_chat.say("1")
    assert web_chat.say("1").startswith("Which day for GP consultation?")
    web_chat.say("2")
    moved = web_chat.say("1")
    assert moved.startswith("Moved: GP consultation is now on Tuesday 24 November at 8:30 am.")
    with session_factory() as s:
        assert s.get(Booking, mine.id).starts_at.hour == 8


def test_a_code_allows_five_tries_and_a_strangers_contact_gets_none(web_chat, session_factory):
    web_chat.say("hello", name="Nosy Ned", phone="07911 123503")
    assert web_chat.post("/code", contact="nobody@example.com").status_code == 303  # answered alike...
    with session_factory() as s:  # ...but nothing sent: no booking has that address
        assert s.scalar(select(Notification.id).where(Notification.payload["to"].astext == "nobody@example.com")) \
            is None
    for left in (4, 3, 2, 1, 0):
        assert f"{left} tries left" in web_chat.post("/verify", code="123456").text
    expired = web_chat.post("/verify", code="123456")
    assert 'data-code="code_expired"' in expired.text
    assert web_chat.conversation().identity.get("proved_email") is None
    forged = web_chat.client.post(f"/b/{web_chat.slug}/chat", data={"ticket": "x" * 32, "text": "hi"})
    assert forged.status_code == 403
