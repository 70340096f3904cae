"""A party joins the waitlist from the booking page and the staff API with its size; the offer's link page and
the console's waitlist say the size when it is more than one."""

from __future__ import annotations

from datetime import timedelta

import httpx2 as httpx
from sqlalchemy import select

from nextslot.core.links import Links
from nextslot.schemas.commands import BookingChange
from nextslot.settings import Settings
from nextslot.storage.tables import Customer, WaitlistEntry, WaitlistOffer
from tests.core.test_party import studio
from tests.core.test_waitlist_party import full_class, offers, wait
from tests.server.test_booking_page import settings, slug_of
from tests.server.test_console import clients, console  # noqa: F401 - fixtures

FORM = {
    "tz": "Europe/London",
    "customer.email": "",
    "earliest_date": "2026-11-24",
    "latest_date": "2026-11-24",
    "day_start": "",
    "day_end": "",
}


def entry_of(session_factory, business: int, phone: str) -> WaitlistEntry:
    with session_factory() as s:
        return s.scalars(
            select(WaitlistEntry)
            .join(Customer, Customer.id == WaitlistEntry.customer_id)
            .where(Customer.phone == phone, WaitlistEntry.business_id == business)
        ).one()


def test_the_page_asks_how_many_people_wait_and_refuses_a_party_too_big(
    live_server, service, make_business, session_factory
):
    business = make_business(studio())
    slug = slug_of(service, business)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        page = http.get(f"/b/{slug}/yoga/waitlist", params={"tz": "Europe/London"})
        assert '<select id="w-party" name="party_size">' in page.text and '<option value="6"' in page.text
        assert "w-party" not in http.get(f"/b/{slug}/trim/waitlist", params={"tz": "Europe/London"}).text

        joined = http.post(
            f"/b/{slug}/yoga/waitlist",
            data={**FORM, "customer.name": "Una", "customer.phone": "+447911160001", "party_size": "3"},
        )
        assert joined.status_code == 200 and "places for all 3 of you" in joined.text
        too_many = http.post(
            f"/b/{slug}/yoga/waitlist",
            data={**FORM, "customer.name": "Vic", "customer.phone": "+447911160002", "party_size": "7"},
        )
        assert too_many.status_code == 422 and 'data-code="party_too_large"' in too_many.text
        nonsense = http.post(
            f"/b/{slug}/yoga/waitlist",
            data={**FORM, "customer.name": "Wyn", "customer.phone": "+447911160003", "party_size": "0"},
        )
        assert nonsense.status_code == 422 and "Traceback" not in nonsense.text
        one = http.post(
            f"/b/{slug}/trim/waitlist", data={**FORM, "customer.name": "Xan", "customer.phone": "+447911160004"}
        )
        assert one.status_code == 200 and "of you" not in one.text
    assert entry_of(session_factory, business, "+447911160001").party_size == 3
    assert entry_of(session_factory, business, "+447911160004").party_size == 1


def test_the_staff_api_puts_a_party_on_the_waitlist_and_refuses_one_too_big_as_a_structured_error(
    live_server, service, make_business, api_key
):
    business = make_business(studio())
    body = {"service": "yoga", "earliest_date": "2026-11-24", "latest_date": "2026-11-24"}
    with (
        live_server(frozen=True) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api_key(business)}"}) as http,
    ):
        made = http.post(
            "/v1/waitlist", json={**body, "party_size": 4, "customer": {"name": "Yan", "phone": "+447911160010"}}
        )
        assert made.status_code == 201, made.text
        assert made.json()["party_size"] == 4
        plain = http.post("/v1/waitlist", json={**body, "customer": {"name": "Zia", "phone": "+447911160011"}})
        assert plain.status_code == 201 and plain.json()["party_size"] == 1
        too_big = http.post(
            "/v1/waitlist", json={**body, "party_size": 7, "customer": {"name": "Abe", "phone": "+447911160012"}}
        )
        assert too_big.status_code == 422 and too_big.json()["error"]["code"] == "party_too_large"
        assert too_big.json()["error"]["field"] == "party_size"
        invalid = http.post(
            "/v1/waitlist", json={**body, "party_size": 0, "customer": {"name": "Bo", "phone": "+447911160013"}}
        )
        assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "invalid_request"


def test_the_offer_link_and_the_console_say_the_party_size(
    live_server,
    service,
    make_business,
    session_factory,
    console,  # noqa: F811 - the fixture
):
    business = make_business(studio())
    _, trio, _ = full_class(service, business, [1, 3, 6])
    wait(service, business, 70, party=3)
    service.cancel(business, BookingChange(code=trio.code))
    service.offer_freed_capacity()
    [offer] = offers(session_factory, business)
    links = Links("offer-link-secret", "http://unused")
    link = links.offer_url(business, offer.id, offer.expires_at + timedelta(days=1)).removeprefix("http://unused")
    with (
        live_server(frozen=True, settings=Settings(secret_key="offer-link-secret")) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        shown = http.get(link)
        assert shown.status_code == 200 and "For all 3 of you." in shown.text
        taken = http.post(link)
        assert taken.status_code == 303
    with session_factory() as s:
        assert s.get(WaitlistOffer, offer.id).status == "accepted"

    wait(service, business, 71, party=2)
    client, slug = console(business)
    listed = client.get(f"/console/{slug}/waitlist")
    assert listed.status_code == 200 and "party of 2" in listed.text
