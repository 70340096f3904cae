"""The staff console in a real browser (Debian's Chromium) against the real server, on a counter tablet:
sign in, see today, book a walk-in, watch an agent's booking (made over MCP) appear by itself, move it by
picking a slot, mark a no-show, and read a booking's message log.

The server's clock is frozen at Monday 23 November 2026, 08:00 UTC (London, the clinic's zone, is on UTC).
"""
from __future__ import annotations

import asyncio
import re
import threading
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from nextslot.core.accounts.staff import create_account
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.settings import Settings
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.reminders.test_dispatcher import ScriptedChannel
from tests.server.test_booking_page import slug_of
from tests.tools.test_mcp_server import call, http_client

PASSWORD = "front desk password"


@pytest.fixture
def tablet(browser):
    context = browser.new_context(viewport={"width": 1024, "height": 768}, has_touch=True, timezone_id="Europe/London",
                                  locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def book_over_mcp(url: str, key: str, starts_at: str) -> dict:
    """An agent books through MCP over HTTP, in its own thread (the browser's sync API owns this one's loop)."""
    answer: dict = {}

    async def agent() -> None:
        async with http_client(url, key) as c:
            answer.update(await call(c, "book_appointment", service="consultation", starts_at=starts_at,
                                     customer_name="Agent Caller", phone="07911 123402", idempotency_key="console-1"))

    thread = threading.Thread(target=lambda: asyncio.run(agent()))
    thread.start()
    thread.join(30)
    return answer


def test_the_front_desk_day_at_the_console(tablet, shot, live_server, service, make_business, api_key,
                                           session_factory, clock):
    clinic = make_business("clinic")
    slug = slug_of(service, clinic)
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "desk@clinic.example", "Robin", "staff", PASSWORD)
    key = api_key(clinic)
    page = tablet
    with live_server(frozen=True, settings=Settings(secret_key="console-browser")) as server:
        page.goto(f"{server.url}/console/{slug}")
        page.wait_for_url(re.compile(r"/login\?next="))
        page.get_by_label("Email").fill("desk@clinic.example")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name=re.compile("Monday 23 November"))).to_contain_text("today")
        expect(page.locator(".colhead")).to_have_count(5)  # doctors, rooms and the scanner side by side
        shot(page, "13-console-today")

        page.get_by_role("link", name="New booking", exact=True).click()
        page.get_by_role("link", name=re.compile("GP consultation")).click()
        page.get_by_role("link", name=re.compile(r"^9 am, Monday 23 November")).click()
        page.get_by_label("Customer name").fill("Walk-in Wendy")
        page.get_by_label("Phone").fill("07911 123401")
        page.get_by_label("What would you like to discuss?").fill("A sore knee")
        page.get_by_role("button", name="Book", exact=True).click()
        expect(page.locator(".done")).to_have_text("Booked.")
        expect(page.locator("main")).to_contain_text("A sore knee")
        walk_in = page.locator(".code").inner_text()
        shot(page, "14-console-walk-in-booked")

        page.get_by_role("link", name=re.compile("Monday 23 November")).click()
        expect(page.locator(f'.blk.booking[data-code="{walk_in}"]').first).to_be_visible()
        booked = book_over_mcp(server.url, key, "2026-11-23T10:00:00+00:00")
        assert booked["outcome"] == "booked", booked
        agent_code = booked["appointment"]["code"]
        agent_block = page.locator(f'.blk.booking[data-code="{agent_code}"]').first
        expect(agent_block).to_be_visible(timeout=6_000)  # no reload: the console polls
        expect(agent_block).to_contain_text("Agent Caller")
        shot(page, "15-console-agent-booking-appeared")
        Dispatcher(session_factory, {"sms": ScriptedChannel("sms")}, clock=clock).dispatch_due()  # confirmations

        agent_block.click()
        page.get_by_role("link", name="Move to another time").click()
        page.get_by_role("button", name=re.compile(r"^11 am, Monday 23 November")).click()
        expect(page.locator(".done")).to_contain_text("Moved")
        expect(page.locator("main")).to_contain_text("11:00")
        shot(page, "16-console-moved")

        page.get_by_role("link", name=re.compile("Monday 23 November")).click()  # drag the walk-in from 9 to 12
        walk_in_block = page.locator(f'.blk.booking[data-code="{walk_in}"]').first
        page.once("dialog", lambda dialog: dialog.accept())
        block, lane = walk_in_block.bounding_box(), page.locator(".lane-bg.c-1").bounding_box()
        rows, first_hour = (int(page.locator(".grid").get_attribute(a)) for a in ("data-rows", "data-first-hour"))
        noon = lane["y"] + (12 - first_hour) * 12 * lane["height"] / rows
        page.mouse.move(block["x"] + 10, block["y"] + 3)
        page.mouse.down()
        page.mouse.move(block["x"] + 12, noon, steps=8)
        page.mouse.move(block["x"] + 10, noon + 3, steps=2)
        page.mouse.up()
        expect(page.locator(".done")).to_contain_text("Moved")
        expect(page.locator("main")).to_contain_text("12:00")
        shot(page, "16b-console-moved-by-drag")
        page.get_by_role("link", name=re.compile("Monday 23 November")).click()
        page.locator(f'.blk.booking[data-code="{agent_code}"]').first.click()

        clock.now += timedelta(hours=3, minutes=30)  # 11:30: the appointment has started, nobody came
        page.get_by_role("button", name=re.compile("no-show")).click()
        expect(page.locator(".done")).to_have_text("Marked as a no-show.")
        expect(page.locator("main")).to_contain_text("Missed")
        messages = page.locator("#messages")
        expect(messages.locator('tr[data-kind="confirmation"]')).to_contain_text(re.compile(r"sms to \S+: queued"))
        expect(messages.locator('tr[data-kind="rescheduled"]')).to_have_count(1)
        expect(page.locator("#history")).to_contain_text("no show")
        expect(page.locator("#history")).to_contain_text("Robin")
        shot(page, "17-console-message-log")

        page.get_by_role("link", name="Settings").click()
        expect(page.get_by_text("only an owner can change settings")).to_be_visible()
        expect(page.get_by_role("button", name="Save configuration")).to_have_count(0)
        shot(page, "17b-console-settings-as-staff")

        page.set_viewport_size({"width": 390, "height": 844})  # the same day on a phone
        page.get_by_role("link", name="Calendar").click()
        expect(page.locator(".grid-scroll")).to_be_visible()
        shot(page, "18-console-today-on-a-phone")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # only the grid scrolls sideways
