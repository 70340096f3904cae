"""A phone books a recurring series on the booking page: it picks a Tuesday, asks for every week four times,
and one of the weeks is taken, so the page books the other three and offers the nearest times for that one."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from nextslot.schemas.commands import BookingSearch
from nextslot.settings import Settings
from tests.browser.test_phone_booking import SETTINGS, UNLABELLED
from tests.core.test_series import TUESDAY_10, block, salon
from tests.server.test_booking_page import slug_of


def test_a_phone_books_every_week_and_picks_another_time_for_the_taken_week(phone, shot, live_server, service,
                                                                             make_business):
    business = make_business(salon())
    block(service, business, TUESDAY_10 + timedelta(weeks=2))
    slug = slug_of(service, business)
    with live_server(frozen=True, settings=Settings(**SETTINGS)) as server:
        phone.goto(f"{server.url}/b/{slug}/cut/book?at=2026-11-24T10:00:00Z&tz=Europe/London")
        assert phone.evaluate(UNLABELLED) == []
        phone.get_by_label("Your name").fill("Ada Lovelace")
        phone.get_by_label("Mobile phone").fill("+447911123456")
        phone.get_by_label("Book this time").select_option(label="every week")
        phone.get_by_label("How many times in all").fill("4")
        phone.get_by_label(re.compile("show me other times")).check()
        shot(phone, "series-01-repeat")
        phone.get_by_role("button", name=re.compile("^Book ")).tap()
        expect(phone.get_by_role("heading", level=1)).to_have_text("You're booked for 3 of 4 times")
        expect(phone.locator('[data-outcome="booked"]')).to_have_count(3)
        taken = phone.locator('[data-outcome="taken"]')
        expect(taken).to_contain_text("Tuesday 8 December at 10 am")
        shot(phone, "series-02-outcome")
        taken.get_by_role("link").first.tap()  # the nearest free time, booked on its own
        phone.get_by_label("Your name").fill("Ada Lovelace")
        phone.get_by_label("Mobile phone").fill("+447911123456")
        phone.get_by_role("button", name=re.compile("^Book ")).tap()
        expect(phone.get_by_role("heading", level=1)).to_have_text("You're booked")
    booked = service.find_bookings(business, BookingSearch(phone="+447911123456"))[0]
    assert len(booked) == 4 and len({b.series_id for b in booked}) == 2  # the series, and the one booked alone
