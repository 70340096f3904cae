"""The booking rules at the console: a walk-in for a party takes its places, a business with branches is asked
which one first, and an owner sets a service's party size and series from its settings form (edit_config)."""
from __future__ import annotations

from datetime import timedelta

from nextslot.core.business.config_export import export_config
from nextslot.core.results import Rejected
from nextslot.schemas.commands import BookingSearch
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.core.test_locations import TUESDAY, two_branches
from tests.core.test_party import CLASS, places_left, studio
from tests.core.test_series import series
from tests.server.test_console import clients, console, csrf_of, key_of  # noqa: F401, F811 - fixtures

TEN_LONDON = (TUESDAY + timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_walk_in_for_a_party_of_three_takes_three_places_of_the_class(console, make_business, service):  # noqa: F811
    business = make_business(studio())
    client, slug = console(business, "staff")
    at = CLASS.strftime("%Y-%m-%dT%H:%M:%SZ")
    times = client.get(f"/console/{slug}/book/yoga").text
    assert "10 left" in times
    form = client.get(f"/console/{slug}/book/yoga/details?at={at}")
    assert 'name="party_size"' in form.text
    booked = client.post(f"/console/{slug}/book/yoga", data={
        "csrf": csrf_of(form.text), "key": key_of(form.text), "at": at, "customer.name": "Walk In",
        "customer.phone": "+447900950333", "party_size": "3"})
    assert booked.status_code == 303, booked.text
    assert places_left(service, business, CLASS) == 7
    too_many = client.get(f"/console/{slug}/book/yoga/details?at={at}")
    refused = client.post(f"/console/{slug}/book/yoga", data={
        "csrf": csrf_of(too_many.text), "key": key_of(too_many.text), "at": at, "customer.name": "Big group",
        "customer.phone": "+447900950334", "party_size": "99"})
    assert refused.status_code == 422 and 'data-code="party_too_large"' in refused.text


def test_a_walk_in_at_a_business_with_branches_picks_one_and_books_there(console, make_business, service):  # noqa: F811
    business = make_business(two_branches())
    client, slug = console(business, "staff")
    ask = client.get(f"/console/{slug}/book/cut")
    assert "pick a branch" in ask.text and "?location=paris" in ask.text and 'class="slots"' not in ask.text
    london = client.get(f"/console/{slug}/book/cut?location=london")
    assert "At London Bridge" in london.text and "location=london&amp;at=" in london.text
    assert "from=" in london.text and "?location=london&amp;from=" in london.text  # paging keeps the branch
    form = client.get(f"/console/{slug}/book/cut/details?location=london&at={TEN_LONDON}")
    assert 'name="location" value="london"' in form.text
    booked = client.post(f"/console/{slug}/book/cut", data={
        "csrf": csrf_of(form.text), "key": key_of(form.text), "at": TEN_LONDON, "location": "london",
        "customer.name": "Walk In", "customer.phone": "+447900950335"})
    assert booked.status_code == 303, booked.text
    made = service.find_bookings(business, BookingSearch(phone="+447900950335"))[0][0]
    assert made.location.key == "london" and made.source == "console"


def test_an_owner_sets_party_size_and_series_per_service_and_every_channel_follows(
        console, make_business, service, session_factory):  # noqa: F811
    from tests.core.test_series import salon

    business = make_business(salon())
    client, slug = console(business)
    page = client.get(f"/console/{slug}/settings").text
    assert 'name="party_max" type="number" min="1" max="100" value="1"' in page
    assert 'name="series_max" type="number" min="0" max="52" value="52"' in page
    numbers = {"duration": "30", "buffer_before": "0", "buffer_after": "0", "step": "30", "min_notice": "0",
               "horizon_days": "200"}
    saved = client.post(f"/console/{slug}/settings/service", data={
        "csrf": csrf_of(page), "service": "cut", **numbers, "party_max": "1", "series_max": "0"})
    assert saved.status_code == 303, saved.text
    refused = series(service, business, count=3)
    assert isinstance(refused, Rejected) and refused.code == "series_not_allowed"
    assert 'value="0"' in client.get(f"/console/{slug}/settings").text
    bad = client.post(f"/console/{slug}/settings/service", data={
        "csrf": csrf_of(page), "service": "cut", **numbers, "series_max": "1"})
    assert bad.status_code == 422
    assert client.post(f"/console/{slug}/settings/service", data={
        "csrf": csrf_of(page), "service": "cut", **numbers, "series_max": "4", "party_max": "2"}).status_code == 303
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        cut = export_config(uow, business).services[0]
    assert cut.series is not None and cut.series.max_count == 4 and cut.series.allowed
    assert cut.party is not None and cut.party.max == 2 and cut.party.per_person == ["stylist"]
    assert series(service, business, count=4).series.complete
    too_long = series(service, business, count=5, n=3)
    assert isinstance(too_long, Rejected) and too_long.code == "series_too_long"
