"""Dates and times attacked again (tenth round): windows of local days across a night the clocks go back, and what an
agent is told of the business's own date. Through the tools' `execute` on PostgreSQL, as every channel calls them."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def shop(zone: str, hours: dict[str, list[str]] | None = None) -> dict:
    """One stylist, hourly cuts bookable three years ahead."""
    return {
        "business": {"slug": "r10", "name": "Round Ten", "timezone": zone, "country": "US"},
        "hours": hours or {d: ["09:00-17:00"] for d in WEEK[:5]},
        "resources": [{"key": "ana", "name": "Ana", "kind": "staff"}],
        "services": [{"key": "cut", "name": "Cut", "duration": 60, "step": 60, "min_notice": 0,
                      "horizon_days": 3 * 365, "requires": [{"label": "stylist", "one_of": ["ana"]}]}],
    }


def tools(service, business: int) -> ToolContext:
    return ToolContext(service=service, business_id=business, channel="mcp")


def noon_offset(day: date, zone: ZoneInfo) -> timedelta:
    offset = datetime.combine(day, time(12), zone).utcoffset()
    assert offset is not None
    return offset


FIRST, LAST = date(2026, 2, 1), date(2028, 12, 1)


@cache
def zones_with_summer_time() -> list[str]:
    """Zones whose offset differs between January and July in a year from FIRST to LAST (a sieve: the nights
    themselves are found for the zone drawn)."""
    found = []
    for name in sorted(available_timezones()):
        zone = ZoneInfo(name)
        if any(noon_offset(date(y, 1, 1), zone) != noon_offset(date(y, 7, 1), zone)
               for y in range(FIRST.year, LAST.year + 1)):
            found.append(name)
    return found


SUMMER_TIME_ZONES = st.deferred(lambda: st.sampled_from(zones_with_summer_time()))  # looked up when first drawn


def days_the_clocks_go_back(zone: ZoneInfo) -> list[date]:
    """Each date in [FIRST, LAST] whose noon has a smaller offset than the noon before: the night between is long."""
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days)]
    return [d for d in days if noon_offset(d, zone) < noon_offset(d - timedelta(days=1), zone)]


# --- a month of local days across a night the clocks go back -------------------------------------------------


@pytest.fixture
def open_all_day(make_business, clock) -> int:
    clock.now = datetime(2026, 1, 1, tzinfo=UTC)
    return make_business(shop("UTC", {d: ["00:00-24:00"] for d in WEEK}))


def test_an_agent_asking_for_a_closed_saturday_in_october_hears_the_openings_after_it(service, make_business, clock):
    """New York goes back an hour on 1 November 2026: the month after Saturday 17 October is 31 days and an hour,
    and the search for "the first openings after it" was refused as too long, so the agent heard nothing was free
    for a month in a salon open every weekday."""
    clock.now = datetime(2026, 10, 1, 12, tzinfo=UTC)
    ctx = tools(service, make_business(shop("America/New_York")))
    saturday = execute("find_available_slots", {"service": "cut", "date": "2026-10-17"}, ctx)
    assert saturday.ok, saturday.data
    assert saturday.data["slots"] == []
    assert saturday.data["next_openings"][0]["starts_at"] == "2026-10-19T09:00:00-04:00"
    assert saturday.data["say"].startswith("Nothing is free then. The next openings are Monday 19 October at 9 am")

    month = execute("find_available_slots", {"service": "cut", "date": "2026-10-15", "days": 31}, ctx)
    assert month.ok, month.data  # the tool's own largest `days`
    assert month.data["slots"][0]["starts_at"] == "2026-10-15T09:00:00-04:00"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=SUMMER_TIME_ZONES, before=st.integers(0, 30), data=st.data())
def test_thirty_one_local_days_can_be_searched_in_every_zone_whose_clocks_go_back(
        service, open_all_day, name, before, data):
    """31 dates read in the caller's zone (`timezone`) up to and across any night its clocks go back, 2026-2028: one
    search (it was `window_too_large`), whose first opening is the first date's first hour."""
    zone = ZoneInfo(name)
    nights = days_the_clocks_go_back(zone)
    if not nights:  # a zone leaving summer time for good, at a night its clocks went forward
        return
    night = data.draw(st.sampled_from(nights), label="night")
    first = night - timedelta(days=before)
    found = execute("find_available_slots", {"service": "cut", "date": first.isoformat(), "days": 31,
                                             "timezone": name, "limit": 1}, tools(service, open_all_day))
    assert found.ok, (name, first, found.data)
    assert datetime.fromisoformat(found.data["slots"][0]["starts_at"]).astimezone(zone).date() == first


# --- "today" and "tomorrow" are the business's dates ---------------------------------------------------------


def test_an_agent_is_told_the_businesss_own_date_two_days_apart_in_the_plus_14_and_minus_12_zones(
        service, make_business, clock):
    """At 11:30 UTC on Monday 23 November 2026 it is 01:30 on Tuesday the 24th at Kiritimati and 23:30 on Sunday the
    22nd at Etc/GMT+12. An agent whose own clock reads UTC had no tool that said which date the business is on,
    so the caller's "tomorrow" was a day (or two) off."""
    clock.now = datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    told = {}
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        info = execute("get_business_info", {}, tools(service, make_business(shop(zone))))
        assert info.ok, info.data
        told[zone] = (info.data["today"], info.data["now"])
    assert told == {"Pacific/Kiritimati": ("Tuesday 24 November 2026", "2026-11-24T01:30:00+14:00"),
                    "Etc/GMT+12": ("Sunday 22 November 2026", "2026-11-22T23:30:00-12:00")}


# --- a bare date is no start time --------------------------------------------------------------------------------


def test_a_bare_date_given_as_a_start_is_refused_not_booked_at_midnight(service, make_business, clock):
    """"Book me on the 24th": an agent passing the date alone (with the zone) booked 00:00 in a salon open round the
    clock, since a date read as a date-time is its midnight; every write that takes a start now asks for the time."""
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    ctx = tools(service, make_business(shop("America/Havana", {d: ["00:00-24:00"] for d in WEEK})))
    asked = {"service": "cut", "timezone": "America/Havana", "customer_name": "Ana", "phone": "+12125550150"}
    writes = {"book_appointment": {**asked, "starts_at": "2026-11-24"},
              "hold_slot": {"service": "cut", "starts_at": "2026-11-24", "timezone": "America/Havana"},
              "book_series": {**asked, "first_starts_at": "2026-11-24", "every": "week", "count": 2}}
    for tool, args in writes.items():
        reply = execute(tool, args, ctx)
        assert not reply.ok and reply.data["error"]["code"] == "invalid_arguments", (tool, reply.data)
        assert reply.data["error"]["field"] == ("first_starts_at" if tool == "book_series" else "starts_at")
        assert "time of day" in reply.data["error"]["message"]
    booked = execute("book_appointment", {**asked, "starts_at": "2026-11-24T09:00"}, ctx)
    assert booked.ok and booked.data["appointment"]["starts_at"] == "2026-11-24T09:00:00-05:00", booked.data
    moved = execute("reschedule_appointment", {"code": booked.data["appointment"]["code"],
                                               "new_starts_at": "2026-11-25", "timezone": "America/Havana"}, ctx)
    assert not moved.ok and moved.data["error"]["field"] == "new_starts_at", moved.data
