"""The booking page's chat sends one-time codes like the public MCP endpoint does, so it must be held to the same
limits: at most three codes an hour to one contact whoever asks (through either door), and per client address a
budget of codes asked for and of codes tried. Before, each new chat (a new cookie) could send three more texts to
any customer's phone and try fifteen more guesses, and one address could ask for about a thousand codes an hour.
Over HTTP against the real app (in-process, frozen clock) and the real database; texts are read from the outbox."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nextslot.conversations.web_chat import form_ticket, visitor_key
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Business, Conversation, Notification
from tests.conversations.test_guided import book_for
from tests.conversations.test_web_chat import sent_code

ANN = "+447911123561"


@pytest.fixture
def page(service, make_business, session_factory) -> Iterator[tuple[TestClient, str, int]]:
    business = make_business("clinic")
    with session_factory() as s:
        slug = s.get(Business, business).slug
    with TestClient(create_app(Settings(secret_key="chat-code-tests"), service=service),
                    follow_redirects=False) as client:
        yield client, slug, business


def new_chat(client: TestClient, slug: str) -> str:
    """A fresh visitor (a new cookie) with a chat started; its form ticket."""
    client.cookies.clear()
    client.get(f"/b/{slug}/chat")
    ticket = form_ticket(client.cookies["nextslot_chat"])
    started = client.post(f"/b/{slug}/chat", data={"ticket": ticket, "text": "hi", "name": "Eve", "phone": "07911 123599"})
    assert started.status_code == 303, started.text
    return ticket


def texts_to(session_factory, business_id: int, to: str) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(Notification).where(
            Notification.business_id == business_id, Notification.kind == "conversation_reply",
            Notification.payload["to"].astext == to)) or 0


def test_new_chats_send_a_customers_phone_at_most_three_codes_an_hour(page, service, session_factory):
    client, slug, business = page
    book_for(service, business, ANN, 11, name="Ann Lee")
    before = texts_to(session_factory, business, ANN)
    for _ in range(3):  # three visitors, or one clearing its cookie: three codes each if the chat alone counted
        ticket = new_chat(client, slug)
        for _ in range(3):
            client.post(f"/b/{slug}/chat/code", data={"ticket": ticket, "contact": ANN})
    assert texts_to(session_factory, business, ANN) - before == 3


def test_one_address_asks_for_at_most_ten_codes_an_hour(page, service, session_factory):
    client, slug, business = page
    phones = [f"+4479111236{n:02d}" for n in range(4)]
    for n, phone in enumerate(phones):
        book_for(service, business, phone, 9 + n, name=f"Customer {n}")
    answers = []
    for phone in phones:  # three codes for each of four customers: the eleventh and twelfth asked from here
        ticket = new_chat(client, slug)
        answers += [client.post(f"/b/{slug}/chat/code", data={"ticket": ticket, "contact": phone}).status_code
                    for _ in range(3)]
    assert answers[:10] == [303] * 10 and answers[10:] == [429, 429], answers
    assert sum(texts_to(session_factory, business, phone) for phone in phones) == 10


def test_one_address_tries_at_most_thirty_codes_an_hour(page, service, session_factory):
    """Thirty tries an hour from one address, whichever chats and contacts they are for (29 already spent here:
    the page's own budget would slow a real flood down first, over more minutes)."""
    client, slug, business = page
    book_for(service, business, ANN, 11, name="Ann Lee")
    ticket = new_chat(client, slug)
    assert client.post(f"/b/{slug}/chat/code", data={"ticket": ticket, "contact": ANN}).status_code == 303
    wrong = f"{(int(sent_code(session_factory, ANN)) + 1) % 10**6:06d}"
    client.app.state.rate_limits.code_checks.take("testclient", 29)  # TestClient's address
    assert client.post(f"/b/{slug}/chat/verify", data={"ticket": ticket, "code": wrong}).status_code == 422
    assert client.post(f"/b/{slug}/chat/verify", data={"ticket": ticket, "code": wrong}).status_code == 429


def test_the_chat_and_the_public_endpoint_share_a_contacts_codes(page, service, session_factory):
    """Three codes through the chat leave none for the public endpoint within the hour, and the other way round."""
    from nextslot.core.customers.proofs import request_code

    client, slug, business = page
    book_for(service, business, ANN, 11, name="Ann Lee")
    ticket = new_chat(client, slug)
    for _ in range(3):
        assert client.post(f"/b/{slug}/chat/code", data={"ticket": ticket, "contact": ANN}).status_code == 303
    refused = request_code(service.uow(), business, ANN, service.now())
    assert getattr(refused, "code", None) == "too_many_codes", refused


def test_proving_a_contact_gives_the_chat_a_new_cookie_so_an_earlier_holder_of_it_gets_nothing(
        page, service, session_factory):
    """Session fixation: someone who had the chat's cookie before (the last person at a shared or library computer,
    or one who planted it) must not inherit the proof the next person gives. The chat's cookie changes on proof."""
    client, slug, business = page
    book_for(service, business, ANN, 11, name="Ann Lee")
    client.cookies.clear()
    client.get(f"/b/{slug}/chat")
    planted = client.cookies["nextslot_chat"]  # what the earlier holder kept
    ticket = form_ticket(planted)
    client.post(f"/b/{slug}/chat", data={"ticket": ticket, "text": "hi", "name": "Ann Lee", "phone": ANN})
    assert client.post(f"/b/{slug}/chat/code", data={"ticket": ticket, "contact": ANN}).status_code == 303
    proved = client.post(f"/b/{slug}/chat/verify", data={"ticket": ticket, "code": sent_code(session_factory, ANN)})
    assert proved.status_code == 303, proved.text
    assert client.cookies["nextslot_chat"] != planted
    page = client.get(f"/b/{slug}/chat").text
    assert f"my booking: {ANN}" in page, page[page.find("my booking") - 40:page.find("my booking") + 80]

    with session_factory() as s:  # the old cookie names no chat any more: nothing to read, write or act through
        assert s.scalar(select(Conversation.id).where(Conversation.visitor_key == visitor_key(planted))) is None
    client.cookies.clear()
    client.cookies.set("nextslot_chat", planted, path=f"/b/{slug}")
    theirs = client.post(f"/b/{slug}/chat", data={"ticket": ticket, "text": "find my bookings"})
    assert theirs.status_code == 422 and 'data-code="name_required"' in theirs.text
