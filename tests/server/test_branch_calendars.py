"""A branch in another zone on the staff's own screens: the console's day and week, its list, a walk-in's and a
move's times, a dragged booking's drop, `/v1/calendar` and `/v1/bookings` read a branch's days in its zone, as its
staff live them; a public page shows a branch's times in its zone before the visitor's browser says theirs."""
from __future__ import annotations

import html
import re

import httpx2 as httpx
import pytest

from tests.core.test_branch_zones import book_la_nine, coasts
from tests.server.staff_api.conftest import api, staff_app  # noqa: F401 - fixtures
from tests.server.test_console import clients, console, csrf_of  # noqa: F401 - fixtures


def with_honolulu() -> dict:
    """Coasts with a branch where the frozen Monday 08:00 UTC is still Sunday evening."""
    config = coasts()
    config["locations"].append({"key": "hnl", "name": "Waikiki", "timezone": "Pacific/Honolulu"})
    config["resources"].append({"key": "kai", "name": "Kai", "kind": "staff", "location": "hnl"})
    config["services"][0]["requires"][0]["one_of"].append("kai")
    return config


def test_the_staff_api_reads_a_branchs_calendar_and_bookings_in_its_zone(api, service, make_business):  # noqa: F811
    business = make_business(coasts())
    booking = book_la_nine(service, business)
    http = api(business)
    la = http.get("/v1/calendar", params={"date": "2026-11-24", "location": "la"}).json()
    assert (la["timezone"], la["location"]) == ("America/Los_Angeles", "la")
    [lee] = la["resources"]
    assert lee["key"] == "lee" and lee["working"] == [
        {"starts_at": "2026-11-24T09:00:00-08:00", "ends_at": "2026-11-24T17:00:00-08:00"}]
    assert [(b["code"], b["starts_at"]) for b in lee["bookings"]] == [(booking.code, "2026-11-24T09:00:00-08:00")]
    alone = http.get("/v1/calendar", params={"date": "2026-11-24", "resource": "lee"}).json()
    assert alone["timezone"] == "America/Los_Angeles" and alone["resources"][0]["working"] == lee["working"]
    everyone = http.get("/v1/calendar", params={"date": "2026-11-24"}).json()
    assert everyone["timezone"] == "America/New_York" and len(everyone["resources"]) == 3
    unknown = http.get("/v1/calendar", params={"date": "2026-11-24", "location": "paris"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_location"
    elsewhere = http.get("/v1/calendar", params={"date": "2026-11-24", "location": "pune", "resource": "lee"})
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "unknown_resource"
    listed = http.get("/v1/bookings", params={"location": "la", "date_from": "2026-11-24", "date_to": "2026-11-24"})
    assert [b["code"] for b in listed.json()["bookings"]] == [booking.code]
    assert http.get("/v1/bookings", params={"location": "pune"}).json()["bookings"] == []


def test_the_console_draws_a_branchs_day_in_its_zone_and_a_drop_there_means_its_wall_time(
        console, service, make_business):  # noqa: F811
    business = make_business(coasts())
    booking = book_la_nine(service, business)
    client, slug = console(business)
    page = client.get(f"/console/{slug}", params={"date": "2026-11-24", "location": "la"})
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert 'data-zone="America/Los_Angeles"' in text and "times in America/Los_Angeles" in text
    assert re.search(rf'<tr data-code="{booking.code}">\s*<td>Tue 24 Nov 09:00</td>', text)
    assert "<strong>Ana</strong>" not in text and "<strong>Lee</strong>" in text  # Manhattan's stylist is not on Venice Beach's day
    moved = client.post(f"/console/{slug}/bookings/{booking.code}/move", data={
        "csrf": csrf_of(page.text), "key": "drop0000000000000000000000", "local": "2026-11-24T11:00",
        "zone": "America/Los_Angeles"})
    assert moved.status_code == 303, moved.text
    [after] = service.find_bookings(business, _by_code(booking.code))[0]
    assert after.starts_at.utc.isoformat() == "2026-11-24T19:00:00+00:00"  # 11 am in Los Angeles


def test_the_consoles_today_at_a_branch_is_the_branchs_date(console, make_business):  # noqa: F811
    client, slug = console(make_business(with_honolulu()))
    own = html.unescape(client.get(f"/console/{slug}", params={"location": "hnl"}).text)
    assert "<h1>Sunday 22 November <small>(today)</small>" in own  # Monday 08:00 UTC is Sunday 22:00 in Honolulu
    business_wide = html.unescape(client.get(f"/console/{slug}").text)
    assert "<h1>Monday 23 November <small>(today)</small></h1>" in business_wide


@pytest.mark.parametrize("path", ["/console/{slug}?location=nowhere", "/console/{slug}?location=la&resource=raj"])
def test_an_unknown_branch_or_a_resource_not_at_it_is_not_found(console, make_business, path):  # noqa: F811
    client, slug = console(make_business(coasts()))
    assert client.get(path.format(slug=slug)).status_code == 404


def test_a_walk_in_and_a_move_at_a_branch_list_its_times_in_its_zone(console, service, make_business):  # noqa: F811
    business = make_business(coasts())
    booking = book_la_nine(service, business)
    client, slug = console(business)
    times = html.unescape(client.get(f"/console/{slug}/book/cut", params={"location": "la", "from": "2026-11-25"}).text)
    assert "times in America/Los_Angeles" in times
    assert re.search(r'at=2026-11-25T17:00:00Z"[^>]*>9 am<', times)
    picker = html.unescape(client.get(f"/console/{slug}/bookings/{booking.code}/move",
                                      params={"from": "2026-11-25"}).text)
    assert "Now: Tue 24 Nov 09:00" in picker
    assert re.search(r'value="2026-11-25T17:00:00Z"[^>]*>9 am<', picker)


def test_a_page_without_its_script_shows_a_branchs_times_in_its_zone(live_server, service, make_business):
    business = make_business(coasts())
    slug = service.business_by_id(business).slug
    with live_server(frozen=True) as server, httpx.Client(base_url=server.url) as http:
        for path, params in ((f"/b/{slug}/cut", {"location": "la", "from": "2026-11-25"}),
                             (f"/b/{slug}/colour", {"from": "2026-11-25"})):  # colour: only at Venice Beach
            page = html.unescape(http.get(path, params=params).text)
            nine = re.search(r'href="[^"]*at=2026-11-25T17%3A00%3A00Z[^"]*"[^>]*>([^<]+)<', page)
            assert nine is not None and nine.group(1).strip().startswith("9"), page


def _by_code(code: str):
    from nextslot.schemas.commands import BookingSearch
    return BookingSearch(code=code)
