"""The console's inbox in a real browser: a WhatsApp conversation handed to a person appears by itself (the
inbox polls), staff open it, read the exchange, reply (queued in the outbox on WhatsApp) and hand it back."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from nextslot.conversations.engine import ConversationEngine
from nextslot.conversations.intake import Incoming, receive
from nextslot.core.accounts.staff import create_account
from nextslot.settings import Settings
from nextslot.storage.tables import Notification
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.browser.test_console import PASSWORD, tablet  # noqa: F401 - the counter tablet fixture
from tests.conversations.conftest import clinic_config
from tests.server.test_booking_page import slug_of

PHONE = "+447911400001"


def test_a_handoff_appears_in_the_inbox_live_and_staff_reply_and_hand_back(tablet, shot, live_server,  # noqa: F811
                                                                          service, make_business, session_factory):
    config = clinic_config()
    clinic, line = make_business(config), config["business"]["details"]["conversations"]["numbers"][0]
    slug = slug_of(service, clinic)
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "desk@clinic.example", "Robin", "staff", PASSWORD)
    settings = Settings(secret_key="inbox-browser")
    engine = ConversationEngine(service, settings)

    def customer_says(text: str, n: int) -> None:
        assert receive(service, Incoming("whatsapp", PHONE, text, f"SMinbox{n}", line), timedelta(minutes=30))
        while engine.process_due():
            pass

    page = tablet
    with live_server(frozen=True, settings=settings) as server:
        page.goto(f"{server.url}/console/{slug}/inbox")
        page.get_by_label("Email").fill("desk@clinic.example")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Inbox", exact=True)).to_be_visible()
        expect(page.locator(".count")).to_have_text("0")

        customer_says("hello", 1)
        customer_says("I'd like to talk to a person about my bill", 2)
        row = page.locator("tr.needs-person")
        expect(row).to_contain_text(PHONE, timeout=6_000)  # no reload: the inbox polls
        expect(page.locator(".count")).to_have_text("1")
        shot(page, "30-console-inbox-handoff")

        row.get_by_role("link").click()
        expect(page.locator(".exchange")).to_contain_text("talk to a person about my bill")
        expect(page.locator(".state")).to_contain_text("the customer asked")
        customer_says("it was charged twice", 3)  # stored, not answered by the agent: it shows up live
        expect(page.locator(".exchange .line.in").last).to_contain_text("charged twice", timeout=6_000)
        page.get_by_label(re.compile("Your reply")).fill("Hi, Robin here: I'll refund the second charge today.")
        page.get_by_role("button", name="Send").click()
        expect(page.locator(".done")).to_have_text("Sent.")
        expect(page.locator(".exchange .line.out").last).to_contain_text("staff: Robin")
        shot(page, "31-console-conversation-reply")
        with session_factory() as s:
            sent = s.scalars(select(Notification).where(Notification.business_id == clinic,
                                                        Notification.kind == "conversation_reply")
                             .order_by(Notification.id.desc())).first()
        assert sent.payload == {"text": "Hi, Robin here: I'll refund the second charge today.",
                                "channel": "whatsapp", "to": PHONE, "from": line}  # from the number written to

        page.get_by_role("button", name="Hand back to the agent").click()
        expect(page.locator(".done")).to_contain_text("Handed back")
        expect(page.locator(".state")).to_have_text("The agent is answering.")
        page.get_by_role("link", name="Inbox", exact=True).first.click()
        expect(page.locator(".count")).to_have_text("0")
