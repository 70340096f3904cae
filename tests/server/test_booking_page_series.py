"""Recurring series on the public booking page: "repeat every week, 4 times" booked through the core's
`book_series` (the tools' and /v1's path), all or none or occurrence by occurrence, the taken ones shown with
their nearest free times; a service that does not allow series offers no repeat and the core refuses one."""
from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import httpx2 as httpx
import pytest

from nextslot.core.results import Rejected
from nextslot.schemas.commands import BookingSearch, SeriesCreate
from tests.core.test_series import TUESDAY_10, block, salon, series
from tests.server.test_booking_page import form_key, settings, slug_of

AT = "2026-11-24T10:00:00Z"
ME = {"customer.name": "Ada Lovelace", "customer.phone": "+447911123456"}


def form(http: httpx.Client, slug: str, **language: str) -> str:
    page = http.get(f"/b/{slug}/cut/book", params={"at": AT, **language})
    assert page.status_code == 200
    return form_key(page.text)


def post(http: httpx.Client, slug: str, every: str, count: int, mode: str, **language: str) -> httpx.Response:
    return http.post(f"/b/{slug}/cut/book", data={
        "at": AT, "key": form(http, slug, **language), "tz": "Europe/London", **ME, "repeat": every,
        "repeat_count": str(count), "repeat_mode": mode, **language})


def mine(service, business):
    return sorted(service.find_bookings(business, BookingSearch(phone=ME["customer.phone"]))[0],
                  key=lambda b: b.starts_at.utc)


@pytest.fixture
def shop(make_business):
    return make_business(salon())


def test_a_visitor_books_every_week_four_times_as_one_series_with_a_link_each(live_server, service, shop):
    slug = slug_of(service, shop)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        page = http.get(f"/b/{slug}/cut/book", params={"at": AT})
        # the service allows 52; a public page offers at most `public_series_max` (12)
        assert 'name="repeat"' in page.text and 'max="12"' in page.text
        done = post(http, slug, "1", 4, "all_or_none")
        assert done.status_code == 200, done.text
        assert "booked for all 4 times" in unescape(done.text)
        booked = mine(service, shop)
        assert [b.starts_at.utc for b in booked] == [TUESDAY_10 + timedelta(weeks=i) for i in range(4)]
        assert len({b.series_id for b in booked}) == 1 and booked[0].series_id is not None
        assert all(b.source == "page" for b in booked)
        manage = re.findall(r'href="(/m/[^"]+)"', done.text)
        assert len(manage) == 4 and http.get(manage[2]).status_code == 200
        again = post(http, slug, "2", 3, "all_or_none")  # every 2 weeks from the same Tuesday: taken by my own
        assert again.status_code == 409 and len(mine(service, shop)) == 4


def test_all_or_none_books_nothing_and_per_occurrence_shows_the_nearest_times_for_a_taken_one(
        live_server, service, shop):
    slug = slug_of(service, shop)
    block(service, shop, TUESDAY_10 + timedelta(weeks=2))
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        none = post(http, slug, "1", 4, "all_or_none")
        assert none.status_code == 409 and 'data-code="series_not_booked"' in none.text
        assert none.text.count('data-outcome="taken"') == 1 and none.text.count('data-outcome="not_booked"') == 3
        assert mine(service, shop) == []

        some = post(http, slug, "1", 4, "skip_taken")
        assert some.status_code == 200 and "booked for 3 of 4 times" in unescape(some.text)
        taken = some.text.split('data-outcome="taken"')[1].split("</li>\n")[0]
        nearest = re.findall(r'href="(/b/[^"]+/cut/book\?[^"]+)"', unescape(taken))
        assert nearest, "a taken occurrence lists its nearest free times"
        assert "at=2026-12-08T" in nearest[0]  # the same day as the taken one
        assert http.get(nearest[0]).status_code == 200  # each one a form to book it alone
        assert len(mine(service, shop)) == 3


def test_nearest_free_books_the_taken_week_at_the_nearest_time_in_spanish(live_server, service, shop):
    slug = slug_of(service, shop)
    block(service, shop, TUESDAY_10 + timedelta(weeks=1))
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        done = post(http, slug, "1", 3, "nearest_free", lang="es")
        assert done.status_code == 200 and '<html lang="es"' in done.text
        text = unescape(done.text)
        assert "Tiene reserva para las 3 citas" in text and "martes, 1 de diciembre" in text
        assert 'data-outcome="moved"' in done.text
    moved = mine(service, shop)[1]
    assert moved.starts_at.utc in (TUESDAY_10 + timedelta(weeks=1, minutes=-30),
                                   TUESDAY_10 + timedelta(weeks=1, minutes=30))


def test_a_service_without_series_offers_no_repeat_and_every_channel_is_refused(
        live_server, service, make_business):
    config = salon()
    config["services"][0]["series"] = {"allowed": False}
    config["services"].append({**config["services"][0], "key": "colour", "name": "Colour",
                               "series": {"max_count": 6}})
    business = make_business(config)
    slug = slug_of(service, business)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        assert 'name="repeat"' not in http.get(f"/b/{slug}/cut/book", params={"at": AT}).text
        assert 'max="6"' in http.get(f"/b/{slug}/colour/book", params={"at": AT}).text
    refused = series(service, business, count=3)
    assert isinstance(refused, Rejected) and refused.code == "series_not_allowed"
    too_long = service.book_series(business, SeriesCreate.model_validate({
        "service": "colour", "starts_at": TUESDAY_10, "repeat": {"count": 7},
        "customer": {"name": "A", "phone": "+447911123457"}}))
    assert isinstance(too_long, Rejected) and too_long.code == "series_too_long" and too_long.field == "repeat.count"
