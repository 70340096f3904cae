"""A German phone in a real browser: the page follows the browser's language and speaks German all the way to
the booking, with times the German way in the phone's zone (Berlin; the garage is in New York)."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from nextslot.settings import Settings
from tests.browser.test_phone_booking import SETTINGS, UNLABELLED
from tests.server.test_booking_page import slug_of


@pytest.fixture
def german_phone(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  timezone_id="Europe/Berlin", locale="de-DE")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def test_a_german_browser_gets_the_page_in_german_and_books(german_phone, shot, live_server, service,
                                                            make_business):
    phone = german_phone
    garage = make_business("garage")
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=Settings(**SETTINGS)) as server:
        phone.goto(f"{server.url}/b/{slug}")
        phone.wait_for_url(re.compile(r"tz=Europe%2FBerlin"))  # the zone detected, the language kept
        assert phone.evaluate("document.documentElement.lang") == "de"
        expect(phone.get_by_role("heading", level=1)).to_have_text(re.compile("^Termin bei .* buchen$"))
        expect(phone.get_by_role("navigation", name="Sprache")).to_contain_text("Español")
        shot(phone, "de-01-business-page")
        phone.get_by_role("link", name=re.compile("Oil change")).tap()
        expect(phone.get_by_role("heading", name="Montag, 23. November")).to_be_visible()
        phone.get_by_role("link", name="14:00, Montag, 23. November").tap()  # 8 am in New York
        expect(phone.locator(".when")).to_contain_text("Montag, 23. November, 14:00 Uhr")
        assert phone.evaluate(UNLABELLED) == []
        phone.get_by_label("Ihr Name").fill("Anna Schmidt")
        phone.get_by_label("Mobiltelefon").fill("+4915123459782")
        phone.get_by_label("Vehicle make and model").fill("VW Golf")
        phone.get_by_label("Licence plate").fill("B-AS 123")
        shot(phone, "de-02-details")
        phone.get_by_role("button", name=re.compile("buchen$")).tap()
        expect(phone.get_by_role("heading", level=1)).to_have_text("Ihr Termin ist gebucht")
        expect(phone.locator(".booking")).to_contain_text("Montag, 23. November, 14:00 Uhr")
        expect(phone.locator(".booking")).to_contain_text("Gebucht")
        shot(phone, "de-03-booked")
        phone.get_by_role("link", name="Diesen Termin ändern oder absagen").tap()
        expect(phone.get_by_role("heading", level=1)).to_have_text("Ihr Termin")
        assert phone.evaluate("document.documentElement.lang") == "de"
