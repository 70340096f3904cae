"""A branch in another zone than its business, over HTTP: the customer's pages show a booking at Venice Beach (Los
Angeles) in Los Angeles time when the customer gave no zone of their own, and a move offers only that branch's
times; the console says the branch's time beside the business's."""
from __future__ import annotations

import html
import re

import httpx2 as httpx

from nextslot.core.links import Links
from tests.core.test_branch_zones import book_la_nine, coasts
from tests.server.test_booking_page import SECRET, settings
from tests.server.test_console import clients, console  # noqa: F401 - fixtures

LINKS = Links(SECRET, "https://book.example.com")
NY_NINE, LA_NINE = "2026-11-25T14%3A00%3A00Z", "2026-11-25T17%3A00%3A00Z"  # Wednesday 9 am in each


def test_the_manage_and_confirmation_pages_show_the_branchs_time_and_a_move_offers_only_its_times(
        live_server, service, make_business):
    business = make_business(coasts())
    booking = book_la_nine(service, business)  # by an agent, say: the customer gave no zone
    token = LINKS.token("manage", business, booking.code, booking.starts_at.utc)
    slug = service.business_by_id(business).slug
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        for path in (f"/m/{token}", f"/b/{slug}/booked/{token}"):
            page = http.get(path)
            assert page.status_code == 200, page.text
            assert "Tuesday 24 November at 9 am" in page.text and "(America/Los Angeles time)" in page.text
        calendar = http.get(f"/ics/booking/{token}.ics").text
        assert "LOCATION:2 Main St\\, Los Angeles" in calendar  # the branch's address, not the business's
        times = http.get(f"/m/{token}/move", params={"from": "2026-11-25"})
        assert times.status_code == 200 and f"at={LA_NINE}" in times.text
        assert f"at={NY_NINE}" not in times.text  # Manhattan's 9 am: a move stays at Venice Beach


def test_the_console_says_the_branchs_time_and_moves_within_the_branch(console, service, make_business):  # noqa: F811
    business = make_business(coasts())
    booking = book_la_nine(service, business)
    client, slug = console(business)
    page = html.unescape(client.get(f"/console/{slug}/bookings/{booking.code}").text)
    assert re.search(r"Tue 24 Nov 12:00–Tue 24 Nov 13:00\s*<small[^>]*>\(Tue 24 Nov 09:00 at Venice Beach, "
                     r"America/Los Angeles time\)</small>", page)
    picker = client.get(f"/console/{slug}/bookings/{booking.code}/move", params={"from": "2026-11-25"}).text
    assert 'value="2026-11-25T17:00:00Z"' in picker and 'value="2026-11-25T14:00:00Z"' not in picker


def test_a_page_booking_without_a_zone_stores_none_so_messages_say_the_branchs_time(live_server, service,
                                                                                    make_business):
    """A page without its script posts no `tz`: the business's zone it fell back to is not the customer's."""
    from nextslot.schemas.commands import BookingSearch
    business = make_business(coasts())
    slug = service.business_by_id(business).slug
    with live_server(frozen=True) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/colour/book", params={"at": "2026-11-25T17:00:00Z"})
        assert form.status_code == 200, form.text
        key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
        done = http.post(f"/b/{slug}/colour/book", data={"at": "2026-11-25T17:00:00Z", "key": key,
                                                         "customer.name": "Zoe", "customer.phone": "+12135550101"})
        assert done.status_code == 303, done.text
    [booked] = service.find_bookings(business, BookingSearch(phone="+12135550101"))[0]
    assert booked.customer.timezone is None
    assert booked.starts_at.spoken == "Wednesday 25 November at 9 am"  # Los Angeles, where the colour is done
