"""Stored markup in a real browser (eleventh round): a business, its service, resource, intake question and closure
named with markup, a customer whose name, intake answer and waitlist entry carry it, and a chat message with it.
Every console page and public page that shows them must show the text, never an element made of it (the pages'
CSP would stop an inline handler anyway; what is checked here is that no markup escapes at all).

The server's clock is frozen at Monday 23 November 2026, 08:00 UTC.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from nextslot.core.accounts.staff import create_account, sign_in
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn, WaitlistJoin
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Conversation, ConversationMessage
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import example
from tests.server.test_booking_page import slug_of

MARK = '"><b data-pwned=1>pwned</b><img src=x data-pwned=2 onerror=alert(1)>'
SCRIPT_BREAK = "</script><script>window.pwned=1</script>"
PASSWORD = "front desk password"


def hostile_clinic() -> dict:
    config = example("clinic")
    config["business"] = {**config["business"], "name": f"Clinic {MARK}",
                          "details": {**config["business"]["details"], "address": f"Walk {SCRIPT_BREAK}",
                                      "policies": f"Policy {MARK}"}}
    config["resources"][0] = {**config["resources"][0], "name": f"Dr {MARK}"}
    consultation = config["services"][0]
    consultation["name"] = f"Consult {MARK}"
    consultation["description"] = f"About {SCRIPT_BREAK}"
    consultation["intake"][0] = {**consultation["intake"][0], "label": f"Why {MARK}"}
    config["closures"][0] = {**config["closures"][0], "reason": f"Closed {MARK}"}
    return config


def test_markup_in_every_stored_text_stays_text_on_console_and_public_pages(
        browser, live_server, service, make_business, session_factory, clock):
    clinic = make_business(hostile_clinic())
    slug = slug_of(service, clinic)
    booked = service.book(clinic, BookingCreate(
        service="consultation", starts_at="2026-11-23T10:00:00Z", source="mcp", notes=f"Notes {MARK}",
        customer=CustomerIn(name=f"Eve {MARK}", phone="+447900950444"), intake={"reason": f"Pain {SCRIPT_BREAK}"}))
    assert isinstance(booked, Booked), booked
    waiting = service.join_waitlist(clinic, WaitlistJoin(
        service="consultation", earliest_date=date(2026, 11, 24), latest_date=date(2026, 11, 30),
        customer=CustomerIn(name=f"Wait {MARK}", phone="+447900950555")))
    assert not hasattr(waiting, "code"), waiting
    with session_factory() as s:
        customer_id = s.scalar(select(Booking.customer_id).where(Booking.code == booked.booking.code))
        talk = Conversation(business_id=clinic, channel="sms", phone="+447900950444", status="open",
                            last_message_at=datetime.now(UTC), handoff_at=datetime.now(UTC))
        s.add(talk)
        s.flush()
        s.add(ConversationMessage(business_id=clinic, conversation_id=talk.id, direction="in",
                                  body=f"Hello {MARK} {SCRIPT_BREAK}", created_at=datetime.now(UTC),
                                  processed_at=datetime.now(UTC)))
        s.commit()
        conversation_id = talk.id
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "desk@clinic.example", "Robin", "owner", PASSWORD)
    token, *_ = sign_in(SqlAlchemyUnitOfWork(session_factory), clinic, "desk@clinic.example", PASSWORD, clock.now,
                       timedelta(hours=12))
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    code = booked.booking.code
    with live_server(frozen=True, settings=Settings(secret_key="xss-browser")) as server:
        links = server.server.config.app.state.links
        manage = links.manage_url(clinic, code, booked.booking.starts_at.utc).replace(links.public_url, server.url)
        context.add_cookies([{"name": "nextslot_console", "value": token, "domain": "127.0.0.1",
                              "path": f"/console/{slug}"}])
        console = f"{server.url}/console/{slug}"
        shown_as_text = {  # each page: the stored texts it shows, which must read exactly as they were typed
            f"{console}?date=2026-11-23": [f"Eve {MARK}", f"Consult {MARK}"],
            f"{console}/bookings/{code}": [f"Eve {MARK}", f"Pain {SCRIPT_BREAK}"],
            f"{console}/customers": [f"Eve {MARK}"], f"{console}/customers/{customer_id}": [f"Eve {MARK}"],
            f"{console}/waitlist": [f"Wait {MARK}"], f"{console}/inbox": [f"Hello {MARK}"],
            f"{console}/inbox/{conversation_id}": [f"Hello {MARK} {SCRIPT_BREAK}"],
            f"{console}/settings": [f"Closed {MARK}"],
            f"{console}/book/consultation/details?at=2026-11-24T10:00:00Z": [f"Why {MARK}"],
            f"{server.url}/b/{slug}": [f"Clinic {MARK}", f"Walk {SCRIPT_BREAK}", f"Policy {MARK}"],
            f"{server.url}/b/{slug}/consultation": [f"Consult {MARK}", f"About {SCRIPT_BREAK}"],
            f"{server.url}/b/{slug}/consultation/book?at=2026-11-24T10:00:00Z": [f"Why {MARK}"],
            manage: [f"Consult {MARK}"],
        }
        for url, texts in shown_as_text.items():
            answer = page.goto(url)
            assert answer is not None and answer.status == 200, (url, answer and answer.status)
            assert page.locator("[data-pwned]").count() == 0, url
            assert page.evaluate("window.pwned") is None, url
            body = page.locator("body").inner_text()
            assert [t for t in texts if t not in body] == [], url
        page.goto(f"{console}?date=2026-11-23")  # the calendar polls and puts what changed in with innerHTML
        again = service.book(clinic, BookingCreate(
            service="consultation", starts_at="2026-11-23T11:00:00Z", source="mcp",
            customer=CustomerIn(name=f"Mallory {MARK}", phone="+447900950666")))
        assert isinstance(again, Booked), again
        expect(page.locator(f'.blk.booking[data-code="{again.booking.code}"]').first).to_be_visible(timeout=8_000)
        assert page.locator("[data-pwned]").count() == 0
        assert f"Mallory {MARK}" in page.locator("body").inner_text()
    assert dialogs == []
    context.close()
