"""A visitor on a phone, in a real browser against the real server: book, lose a race, cancel, embed.

The server's clock is frozen at Monday 23 November 2026, 08:00 UTC; the phone is in London, the garage in
New York, so the page must show London times (8 am in New York is 1 pm on the phone).
"""
from __future__ import annotations

import re
from datetime import datetime

from playwright.sync_api import expect

from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, BookingSearch, CustomerIn
from nextslot.settings import Settings
from tests.conftest import free_port
from tests.server.test_booking_page import MONDAY_8AM, slug_of

SETTINGS = dict(secret_key="browser-test-secret", public_url="https://book.example.com")
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
    .map(el => el.outerHTML)"""


def fill_details(page, phone: str) -> None:
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Mobile phone").fill(phone)
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Vehicle make and model").fill("Ford Focus")
    page.get_by_label("Licence plate").fill("KXT 4410")
    page.get_by_label("Full synthetic").check()


def test_a_phone_visitor_picks_a_service_answers_its_questions_and_books(phone, shot, live_server, service,
                                                                          make_business):
    garage = make_business("garage")
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=Settings(**SETTINGS)) as server:
        phone.goto(f"{server.url}/b/{slug}")
        phone.wait_for_url(re.compile(r"tz=Europe%2FLondon"))  # the browser's own zone, detected
        shot(phone, "01-business-page")
        phone.get_by_role("link", name=re.compile("Oil change")).tap()
        expect(phone.get_by_role("heading", name="Monday 23 November")).to_be_visible()
        shot(phone, "02-free-times-in-london")
        phone.get_by_role("link", name="1 pm, Monday 23 November").tap()
        expect(phone.locator(".when")).to_contain_text("Monday 23 November at 1 pm")

        assert phone.evaluate(UNLABELLED) == []  # every control has an accessible name
        fill_details(phone, "+12125550201")
        shot(phone, "03-details-and-intake-answers")
        phone.get_by_label("Your name").focus()
        for _ in range(30):  # the keyboard alone reaches the book button ...
            phone.keyboard.press("Tab")
            if phone.evaluate("document.activeElement.id") == "book-button":
                break
        assert phone.evaluate("document.activeElement.id") == "book-button"
        outline = phone.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"  # ... and can see where it is
        phone.keyboard.press("Enter")

        phone.wait_for_url(re.compile(r"/booked/"))
        [booking] = service.find_bookings(garage, BookingSearch(phone="+12125550201"))[0]
        expect(phone.locator(".code")).to_have_text(f"{booking.code[:3]} {booking.code[3:]}")
        expect(phone.locator(".booking")).to_contain_text("Monday 23 November at 1 pm")
        shot(phone, "04-booked-with-code")
    assert booking.intake == {"vehicle": "Ford Focus", "registration": "KXT 4410", "oil": "Full synthetic"}


def test_a_lost_race_is_won_back_with_one_tap_and_the_booking_cancelled_from_its_link(
        phone, shot, live_server, service, make_business):
    garage = make_business("garage")
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=Settings(**SETTINGS)) as server:
        phone.goto(f"{server.url}/b/{slug}/oil-change/book?at={MONDAY_8AM}&tz=Europe/London")
        fill_details(phone, "+12125550202")
        quicker = service.book(garage, BookingCreate(  # someone else books the same time first
            service="oil-change", starts_at=datetime.fromisoformat(MONDAY_8AM),
            customer=CustomerIn(name="Quick", phone="+12125550203"), intake={"vehicle": "Van", "registration": "Q1"}))
        assert isinstance(quicker, Booked)
        phone.locator("#book-button").tap()

        alert = phone.get_by_role("alert")
        expect(alert).to_contain_text("that time was just taken")
        expect(phone.get_by_label("Vehicle make and model")).to_have_value("Ford Focus")  # nothing to retype
        shot(phone, "05-slot-taken-alternatives")
        alternative = alert.get_by_role("button").first
        label = alternative.inner_text().removeprefix("Book ")
        alternative.tap()

        phone.wait_for_url(re.compile(r"/booked/"))
        expect(phone.locator(".booking")).to_contain_text(label)
        shot(phone, "06-booked-the-alternative")
        phone.get_by_role("link", name="Change or cancel this booking").tap()
        phone.wait_for_url(re.compile(r"/m/"))
        shot(phone, "07-manage-page")
        phone.get_by_role("link", name="Cancel the booking").tap()
        expect(phone.get_by_role("heading", name="Cancel your booking?")).to_be_visible()
        shot(phone, "08-cancel-asks-first")
        phone.get_by_role("button", name="Yes, cancel it").tap()
        expect(phone.get_by_role("status")).to_contain_text("cancelled")
        shot(phone, "09-cancelled")
    [mine] = service.find_bookings(garage, BookingSearch(phone="+12125550202", include_past=True))[0]
    assert mine.status == "cancelled" and mine.intake["registration"] == "KXT 4410"
    assert mine.starts_at.utc != quicker.booking.starts_at.utc


def test_the_embed_script_puts_the_page_in_an_iframe_that_fits_its_content(phone, shot, live_server, service,
                                                                           make_business):
    garage = make_business("garage")
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=Settings(**SETTINGS)) as server:
        phone.goto(f"{server.url}/health")  # any page of another origin would do; this one is plain
        phone.set_content(f'<h1>Northside Garage</h1><script src="{server.url}/embed.js" '
                          f'data-business="{slug}" data-service="oil-change"></script><p>footer</p>')
        frame = phone.frame_locator("iframe")
        expect(frame.get_by_role("heading", name="Oil change")).to_be_visible()
        phone.wait_for_function("parseInt(document.querySelector('iframe').style.height) > 1000")
        shot(phone, "10-embedded-on-another-site")
        assert "embed=1" in phone.locator("iframe").get_attribute("src")


def test_a_service_with_a_deposit_is_paid_through_the_local_checkout_and_then_confirmed(
        phone, shot, live_server, service, make_business):
    garage = make_business("garage")
    slug = slug_of(service, garage)
    port = free_port()  # the pay and manage links are absolute: the server must know its own URL
    settings = Settings(secret_key="browser-test-secret", public_url=f"http://127.0.0.1:{port}")
    with live_server(frozen=True, settings=settings, port=port) as server:
        phone.goto(f"{server.url}/b/{slug}/mobile-repair/book?at=2026-11-23T13:30:00Z&tz=Europe/London")
        phone.get_by_label("Your name").fill("Ada Lovelace")
        phone.get_by_label("Mobile phone").fill("+12125550204")
        phone.get_by_label("Where is the car?").fill("12 Elm St, Brooklyn")
        phone.get_by_label("What is wrong with it?").fill("It will not start")
        phone.locator("#book-button").tap()

        phone.wait_for_url(re.compile(r"/pay/local/"))  # held as pending payment, sent to the checkout
        expect(phone.get_by_role("heading", name="Pay your deposit")).to_be_visible()
        expect(phone.locator(".amount")).to_have_text("$25.00")
        [waiting] = service.find_bookings(garage, BookingSearch(phone="+12125550204"))[0]
        assert waiting.status == "pending_payment" and waiting.payment.status == "pending"
        shot(phone, "11-deposit-checkout")
        phone.get_by_role("button", name="Pay $25.00").tap()

        phone.wait_for_url(re.compile(r"/m/"))  # the provider's signed webhook confirmed it
        expect(phone.locator(".payment")).to_contain_text("$25.00")
        expect(phone.locator("body")).not_to_contain_text("Pay the $25.00 deposit")
        shot(phone, "12-deposit-paid-booking-confirmed")
    [paid] = service.find_bookings(garage, BookingSearch(phone="+12125550204"))[0]
    assert paid.status == "booked" and paid.payment.status == "paid"
    assert paid.intake["address"] == "12 Elm St, Brooklyn"
