"""Locations: branches with their own address, zone and hours; availability across them or at one; a booking
never spans two branches, and a move stays at its branch unless told otherwise."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from nextslot.core.booking.agenda import agenda
from nextslot.core.business import config_edits
from nextslot.core.business.config_export import export_config
from nextslot.core.results import Booked, Rejected, SlotTaken
from nextslot.schemas.commands import BookingCreate, BookingReschedule, BookingSearch, CustomerIn, SlotQuery
from nextslot.schemas.config import ExceptionConfig
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute

TUESDAY = datetime(2026, 11, 24, tzinfo=UTC)


def two_branches() -> dict:
    return {
        "business": {"slug": "cuts", "name": "Cuts", "timezone": "Europe/London", "country": "GB"},
        "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "locations": [
            {"key": "london", "name": "London Bridge", "address": "1 Bridge St, London"},
            {"key": "paris", "name": "Paris Marais", "address": "2 rue des Archives, Paris",
             "timezone": "Europe/Paris", "hours": {"tue": ["10:00-12:00"]}},
        ],
        "resources": [
            {"key": "ana", "name": "Ana", "kind": "staff", "location": "london"},
            {"key": "ben", "name": "Ben", "kind": "staff", "location": "paris"},
            {"key": "chair-london", "name": "London chair", "kind": "room", "location": "london"},
            {"key": "chair-paris", "name": "Paris chair", "kind": "room", "location": "paris"},
        ],
        "services": [{"key": "cut", "name": "Cut", "duration": 60, "step": 60, "min_notice": 0,
                      "requires": [{"label": "stylist", "one_of": ["ana", "ben"]},
                                   {"label": "chair", "one_of": ["chair-paris", "chair-london"]}]}],
    }


def slots(service, business, location=None):
    found = service.find_slots(business, SlotQuery(service="cut", starts_from=TUESDAY, until=TUESDAY + timedelta(days=1),
                                                   location=location))
    return found if isinstance(found, Rejected) else [
        (s.starts_at.utc.hour, s.location.key, [r.key for r in s.resources]) for s in found.slots]


def book(service, business, hour, n, location=None):
    return service.book(business, BookingCreate(service="cut", starts_at=TUESDAY + timedelta(hours=hour),
                                                location=location,
                                                customer=CustomerIn(name=f"Guest {n}", phone=f"+44791116{n:04d}")))


def test_availability_searches_every_branch_in_its_own_zone_and_hours_or_one_branch(service, make_business):
    business = make_business(two_branches())
    everywhere = slots(service, business)
    assert (9, "paris", ["ben", "chair-paris"]) in everywhere  # 10:00 in Paris is 09:00 UTC
    assert (9, "london", ["ana", "chair-london"]) in everywhere
    assert {h for h, place, _ in everywhere if place == "paris"} == {9, 10}
    assert all(place == "paris" for _, place, _ in slots(service, business, "Paris Marais"))
    refused = slots(service, business, "berlin")
    assert isinstance(refused, Rejected) and refused.code == "not_at_location"
    assert "London Bridge, Paris Marais" in refused.message


def test_a_booking_never_spans_two_branches_and_a_move_stays_at_its_branch(service, make_business):
    business = make_business(two_branches())
    first = book(service, business, 9, 1)
    assert isinstance(first, Booked) and [r.key for r in first.booking.resources] == ["ana", "chair-london"]
    second = book(service, business, 9, 2)  # the Paris chair is listed first, but ana's chair is in London
    assert [r.key for r in second.booking.resources] == ["ben", "chair-paris"]  # never ben with a London chair
    assert second.booking.location.key == "paris"
    assert isinstance(book(service, business, 9, 3), SlotTaken)
    at_noon = TUESDAY + timedelta(hours=12)  # Paris is closed then: the move stays in Paris, so it is refused
    moved = service.reschedule(business, BookingReschedule(code=second.booking.code, starts_at=at_noon))
    assert isinstance(moved, Rejected) and moved.code == "outside_hours"
    elsewhere = service.reschedule(business, BookingReschedule(code=second.booking.code, starts_at=at_noon,
                                                               location="london"))
    assert isinstance(elsewhere, Booked) and elsewhere.booking.location.name == "London Bridge"


def test_agents_hear_where_each_time_is_and_the_config_round_trips(service, make_business, session_factory):
    business = make_business(two_branches())
    ctx = ToolContext(service=service, business_id=business, channel="mcp")
    info = execute("get_business_info", {}, ctx)
    assert info.data["locations"] == ["London Bridge", "Paris Marais"] and "Branches: London Bridge" in info.data["say"]
    found = execute("find_available_slots", {"service": "cut", "date": "2026-11-24", "location": "Paris Marais"}, ctx)
    assert found.data["slots"][0]["location"] == "Paris Marais"
    assert found.data["say"].startswith("I can offer Tuesday 24 November at 10 am at Paris Marais")  # Paris time
    booked = execute("book_appointment", {"service": "cut", "starts_at": found.data["slots"][0]["starts_at"],
                                          "customer_name": "Eve", "phone": "+447911169999",
                                          "location": "paris"}, ctx)
    assert booked.ok and " at Paris Marais on " in booked.data["say"]
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        config = export_config(uow, business)
    assert [p.key for p in config.locations] == ["london", "paris"]
    assert {r.key: r.location for r in config.resources}["ben"] == "paris"


def bicoastal() -> dict:
    return {
        "business": {"slug": "bicoastal", "name": "Bicoastal", "timezone": "America/New_York", "country": "US"},
        "hours": {d: ["06:00-23:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "closures": [{"kind": "closed", "date": "2026-12-25", "reason": "Christmas Day"}],
        "locations": [{"key": "la", "name": "Los Angeles", "timezone": "America/Los_Angeles"}],
        "resources": [{"key": "lee", "name": "Lee", "kind": "staff", "location": "la"}],
        "services": [{"key": "cut", "name": "Cut", "duration": 60, "step": 60, "min_notice": 0, "horizon_days": 90,
                      "requires": [{"label": "stylist", "one_of": ["lee"]}]}],
    }


def la_hours(service, business) -> list[tuple[int, int]]:
    found = service.find_slots(business, SlotQuery(service="cut", starts_from=datetime(2026, 12, 24, 8, tzinfo=UTC),
                                                   until=datetime(2026, 12, 26, 8, tzinfo=UTC), limit=100))
    return [(t.day, t.hour) for t in (s.starts_at.utc.astimezone(LA) for s in found.slots)]


LA = ZoneInfo("America/Los_Angeles")
THE_24TH_WHOLE_IN_LA = [(24, h) for h in range(6, 23)]  # and nothing on LA's 25th


def test_a_business_wide_closure_is_each_branchs_own_calendar_date(service, make_business, session_factory):
    """The README reads hours and exceptions in the resource's own zone: Christmas closes LA on LA's 25th, through
    an edit that exports the config and applies it again, and in the staff calendar."""
    business = make_business(bicoastal())
    assert la_hours(service, business) == THE_24TH_WHOLE_IN_LA
    extra = ExceptionConfig(kind="closed", starts_at=datetime(2027, 1, 4, 12, tzinfo=UTC),
                            ends_at=datetime(2027, 1, 4, 13, tzinfo=UTC), reason="Staff meeting")
    assert not isinstance(config_edits.add_closure(SqlAlchemyUnitOfWork(session_factory), business, extra), Rejected)
    assert la_hours(service, business) == THE_24TH_WHOLE_IN_LA
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        christmas, meeting = export_config(uow, business).closures
        day = agenda(uow, business, date(2026, 12, 25), 1, datetime(2026, 12, 1, tzinfo=UTC))
        meeting_day = agenda(uow, business, date(2027, 1, 4), 1, datetime(2026, 12, 1, tzinfo=UTC))
    assert (christmas.starts_at, christmas.ends_at) == (datetime(2026, 12, 25), datetime(2026, 12, 26))  # a date
    assert meeting.starts_at == datetime(2027, 1, 4, 7, tzinfo=ZoneInfo("America/New_York"))  # an instant stays one
    [lee] = day.resources  # New York's 25th in New York time: LA's evening of the 24th, then LA's 25th closed
    assert [(w.starts_at.hour, w.ends_at.hour) for w in lee.working] == [(0, 2)]
    assert [(t.starts_at.hour, t.ends_at.day, t.ends_at.hour) for t in lee.time_off] == [(3, 26, 3)]
    [lee] = meeting_day.resources  # the meeting closes every branch at the same instant: 07:00-08:00 in New York
    assert [(t.starts_at.hour, t.ends_at.hour) for t in lee.time_off] == [(7, 8)]


def test_the_page_asks_for_a_branch_then_shows_and_books_its_times(service, make_business, live_server):
    import re

    import httpx2 as httpx
    business = make_business(two_branches())
    slug = service.business_by_id(business).slug
    with live_server(frozen=True) as server, httpx.Client(base_url=server.url) as http:
        pick = http.get(f"/b/{slug}/cut", params={"tz": "Europe/London"})
        assert pick.status_code == 200 and "Pick a branch" in pick.text and "Paris Marais" in pick.text
        assert "location=paris" in pick.text
        page = http.get(f"/b/{slug}/cut", params={"tz": "Europe/London", "location": "paris", "from": "2026-11-24"})
        assert "At Paris Marais, 2 rue des Archives" in page.text
        shown = re.findall(r'href="(/b/[^"]+/book\\?[^"]+)"', page.text)
        assert shown and all("location=paris" in link for link in shown)
        form = http.get(shown[0].replace("&amp;", "&"))
        assert 'name="location" value="paris"' in form.text
        key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
        at = re.search(r'name="at" value="([^"]+)"', form.text).group(1)
        done = http.post(f"/b/{slug}/cut/book", data={"at": at, "key": key, "tz": "Europe/London",
                                                      "location": "paris", "customer.name": "Zoe",
                                                      "customer.phone": "+447911160001"})
        assert done.status_code == 303, done.text
    [mine] = service.find_bookings(business, BookingSearch(phone="+447911160001"))[0]
    assert mine.location.key == "paris"
