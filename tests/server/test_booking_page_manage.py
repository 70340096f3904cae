"""The manage link over real HTTP: reschedule (and lose a race), cancel, and links that must not work."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest

from nextslot.core.links import Links
from tests.server.test_booking_page import MONDAY_8AM, SECRET, book_directly, form_key, settings, slug_of

TUESDAY_10AM = "2026-11-24T15:00:00Z"  # New York
LINKS = Links(SECRET, "https://book.example.com")


def manage_path(business_id: int, booking) -> str:
    return "/" + LINKS.manage_url(business_id, booking.code, booking.starts_at.utc).split("/", 3)[3]


@pytest.fixture
def garage(make_business):
    return make_business("garage")


def test_the_manage_link_moves_the_booking_to_a_free_time(live_server, service, garage):
    booking = book_directly(service, garage, MONDAY_8AM, "+12125550301")
    path = manage_path(garage, booking)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        page = http.get(path, params={"tz": "America/New_York"})
        assert page.status_code == 200 and booking.code[:3] in page.text and "Monday 23 November at 8 am" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        calendar = re.search(r'href="(/ics/booking/[^"]+)" download>Add to your calendar', page.text).group(1)
        assert http.get(calendar).headers["content-type"].startswith("text/calendar")
        times = http.get(f"{path}/move", params={"tz": "America/New_York", "from": "2026-11-24"})
        assert times.status_code == 200 and ">Tuesday 24 November</h3>" in times.text
        assert f"{path}/move/confirm?tz=America%2FNew_York&amp;at=2026-11-24T15%3A00%3A00Z" in times.text

        confirm = http.get(f"{path}/move/confirm", params={"tz": "America/New_York", "at": TUESDAY_10AM})
        assert "from <strong>Monday 23 November at 8 am</strong> to <strong>Tuesday 24 November at 10 am" \
               in confirm.text
        moved = http.post(f"{path}/move", data={"at": TUESDAY_10AM, "key": form_key(confirm.text),
                                                "tz": "America/New_York"})
        assert moved.status_code == 303 and "done=moved" in moved.headers["location"]
        assert moved.headers["location"].split("?")[0] != path  # a new link, valid until the new time
        after = http.get(moved.headers["location"])
        assert "has been moved to Tuesday 24 November at 10 am" in after.text
    assert service.get_booking(garage, booking.code).starts_at.utc == datetime.fromisoformat(TUESDAY_10AM)


def test_a_move_that_loses_the_race_changes_nothing_and_offers_the_nearest_times(live_server, service, garage):
    booking = book_directly(service, garage, MONDAY_8AM, "+12125550302")
    path = manage_path(garage, booking)
    wanted = "2026-11-23T16:00:00Z"  # Monday 11 am
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        key = form_key(http.get(f"{path}/move/confirm", params={"at": wanted}).text)
        book_directly(service, garage, wanted, "+12125550303")
        lost = http.post(f"{path}/move", data={"at": wanted, "key": key})
        assert lost.status_code == 409 and "that time was just taken" in lost.text
        assert service.get_booking(garage, booking.code).starts_at.utc == datetime.fromisoformat(MONDAY_8AM)
        offered = re.findall(r'name="at" value="([^"]+)" class="slot wide">Move to', lost.text)
        assert len(offered) == 3 and wanted not in offered
        moved = http.post(f"{path}/move", data={"at": offered[0], "key": form_key(lost.text)})
        assert moved.status_code == 303
    assert service.get_booking(garage, booking.code).starts_at.utc == datetime.fromisoformat(offered[0])


def test_cancelling_asks_first_then_frees_the_time(live_server, service, garage):
    booking = book_directly(service, garage, MONDAY_8AM, "+12125550304")
    path = manage_path(garage, booking)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        ask = http.get(f"{path}/cancel")
        assert ask.status_code == 200 and "Yes, cancel it" in ask.text
        assert service.get_booking(garage, booking.code).status == "booked"  # asking changes nothing
        done = http.post(f"{path}/cancel", data={})
        assert done.status_code == 303 and done.headers["location"].endswith("done=cancelled")
        page = http.get(done.headers["location"])
        assert "has been cancelled" in page.text and "Cancel the booking" not in page.text
        again = http.post(f"{path}/cancel", data={})  # a second tap is harmless
        assert again.status_code == 303
    assert service.get_booking(garage, booking.code).status == "cancelled"


def test_forged_altered_or_misdirected_links_are_refused(live_server, service, garage, make_business):
    booking = book_directly(service, garage, MONDAY_8AM, "+12125550305")
    other = make_business("garage")
    path = manage_path(garage, booking)
    token = path.removeprefix("/m/")
    forged = Links("someone-elses-secret", "https://x").token("manage", garage, booking.code,
                                                              booking.starts_at.utc)
    pay_token = LINKS.token("pay", garage, booking.code, booking.starts_at.utc)  # signed, but for paying
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    other_business = LINKS.token("manage", other, booking.code, booking.starts_at.utc)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        for bad in (forged, pay_token, altered, "not-a-token", "x" * 400):
            refused = http.get(f"/m/{bad}")
            assert refused.status_code == 403 and "This link is not valid" in refused.text
            assert http.post(f"/m/{bad}/cancel", data={}).status_code == 403
        # the same code under another business: that business has no such booking
        assert http.get(f"/m/{other_business}").status_code == 404
        # a confirmation page asked for under another business's slug
        assert http.get(f"/b/{slug_of(service, other)}/booked/{token}").status_code == 404
        assert http.get(f"/b/{slug_of(service, garage)}/booked/{token}").status_code == 200
    assert service.get_booking(garage, booking.code).status == "booked"


def test_a_link_stops_working_when_the_appointment_starts(live_server, service, garage, clock):
    booking = book_directly(service, garage, MONDAY_8AM, "+12125550306")
    path = manage_path(garage, booking)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        assert http.get(path).status_code == 200
        clock.now = booking.starts_at.utc + timedelta(minutes=1)
        expired = http.get(path)
        assert expired.status_code == 410 and "This link has expired" in expired.text
        assert http.post(f"{path}/cancel", data={}).status_code == 410
    assert service.get_booking(garage, booking.code).status == "booked"


def test_a_booking_awaiting_its_deposit_shows_it_and_links_to_pay(live_server, service, garage):
    from nextslot.core.results import Booked
    from nextslot.schemas.commands import BookingCreate, CustomerIn

    result = service.book(garage, BookingCreate(
        service="mobile-repair", starts_at=datetime.fromisoformat(TUESDAY_10AM),
        customer=CustomerIn(name="Ada", phone="+12125550307"), intake={"address": "1 Elm St", "problem": "Flat"}))
    assert isinstance(result, Booked)
    booking = result.booking
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        page = http.get(manage_path(garage, booking))
        assert "Awaiting deposit" in page.text and "$25.00: Awaiting deposit" in page.text
        assert re.search(r'href="/pay/[^"]+">Pay the \$25.00 deposit', page.text)
        assert "Change the time" not in page.text and "Cancel the booking" in page.text
        token = manage_path(garage, booking).removeprefix("/m/")
        confirmation = http.get(f"/b/{slug_of(service, garage)}/booked/{token}")
        assert "your deposit is awaited" in confirmation.text
