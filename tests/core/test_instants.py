"""Local dates and wall times as instants in every zone: days whose midnight is skipped or repeated, 30- and
45-minute offsets, and times a fall-back night shows twice. Pure functions, no database.

The default run samples zones and years; NEXTSLOT_LONG_TESTS=1 also sweeps every zone's clock changes of
2020-2030 (a few minutes).
"""
from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nextslot.core.booking.availability import (
    ResourceTimeline,
    ServiceRules,
    WeeklyHours,
    find_open_slots,
    open_intervals,
)
from nextslot.core.booking.grid import grid_starts, on_grid
from nextslot.core.instants import day_instants, first_instant, resolve_instant, wall_to_utc
from nextslot.reminders.templates import spoken_when
from nextslot.schemas.times import TimeView, spoken_time

LONG = os.environ.get("NEXTSLOT_LONG_TESTS") == "1"
ZONES = sorted(available_timezones())
# zones whose clocks change at midnight, or whose offsets are not whole hours
AWKWARD = ("America/Havana", "America/Santiago", "Asia/Beirut", "America/Asuncion", "Africa/Cairo", "Asia/Gaza",
           "America/Scoresbysund", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham", "Asia/Tehran")
YEARS = (2020, 2030)
SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
NOW = datetime(2000, 1, 1, tzinfo=UTC)  # before every day looked at
ALL_DAY = [WeeklyHours(d, 0, 1440) for d in range(7)]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@cache
def days_around_changes(name: str, year: int) -> tuple[date, ...]:
    """The local dates next to each change of the zone's UTC offset in a year (found by scanning a day at a time)."""
    zone = ZoneInfo(name)
    t = utc(year, 1, 1)
    before = t.astimezone(zone)
    found: set[date] = set()
    while t.year == year:
        t += timedelta(days=1)
        now = t.astimezone(zone)
        if now.utcoffset() != before.utcoffset():
            found.update(before.date() + timedelta(days=i) for i in range((now.date() - before.date()).days + 2))
        before = now
    return tuple(sorted(found))


@st.composite
def zone_days(draw) -> tuple[str, date]:
    """A zone and a local date, mostly next to one of the zone's clock changes when it has any."""
    name = draw(st.sampled_from(AWKWARD) | st.sampled_from(ZONES))
    year = draw(st.integers(*YEARS))
    near_change = days_around_changes(name, year)
    if near_change and draw(st.integers(0, 4)):
        return name, draw(st.sampled_from(near_change))
    return name, date(year, 1, 1) + timedelta(days=draw(st.integers(0, 364)))


def check_day(name: str, day: date, step: int, duration: int, customer: str) -> None:
    """Everything that turns this local date into instants agrees with a brute-force reading of the clock."""
    zone = ZoneInfo(name)
    start, end = day_instants(day, zone)
    assert start < end
    # the first instant of the date, and the first of the next one: the second before each is the day before
    assert start.astimezone(zone).date() == day and (start - SECOND).astimezone(zone).date() < day
    assert (end - SECOND).astimezone(zone).date() == day and end.astimezone(zone).date() > day
    # consecutive days tile time: each starts where the one before ends
    assert day_instants(day - timedelta(days=1), zone)[1] == start and day_instants(day, zone, 2)[1] == \
        day_instants(day + timedelta(days=1), zone)[1]
    assert resolve_instant(day, name, "date") == start == wall_to_utc(day, 0, zone)
    assert wall_to_utc(day, 1440, zone) == end
    # the grid: exactly the instants of this day whose wall time is on the step, minute by minute
    grid = grid_starts(step, zone, start, end)
    minutes = (start + MINUTE * i for i in range(int((end - start) / MINUTE)))
    assert grid == [t for t in minutes if on_grid(t, step, zone)]
    # open all day every day: every grid start that fits is a slot, and no two are spoken alike
    rules = ServiceRules(timedelta(minutes=duration), timedelta(0), timedelta(0), step, timedelta(0),
                         timedelta(days=366 * 40), zone)
    opened = open_intervals(ALL_DAY, zone, (start, end))
    assert any(s <= start and end <= e for s, e in opened)
    slots = find_open_slots(rules, [[ResourceTimeline(1, 1, opened)]], (start, end), NOW)
    assert [s.starts_at for s in slots] == grid
    for spoken_in in (zone, ZoneInfo(customer)):
        phrases = [spoken_time(s.starts_at, spoken_in) for s in slots]
        assert len(set(phrases)) == len(phrases), [p for p in phrases if phrases.count(p) > 1]


@settings(max_examples=1500 if LONG else 60, deadline=None)
@given(case=zone_days(), step=st.sampled_from((5, 15, 20, 30, 45, 60)), duration=st.sampled_from((15, 30, 60, 90)),
       customer=st.sampled_from(AWKWARD + ("UTC", "America/New_York", "Europe/London")))
@example(case=("America/Havana", date(2026, 3, 8)), step=15, duration=30, customer="UTC")  # midnight skipped
@example(case=("America/Havana", date(2026, 11, 1)), step=30, duration=60, customer="America/Havana")  # twice
@example(case=("America/Havana", date(2026, 10, 31)), step=30, duration=60, customer="UTC")  # ends at it
@example(case=("America/Santiago", date(2026, 9, 6)), step=15, duration=30, customer="UTC")
@example(case=("America/Santiago", date(2026, 4, 4)), step=30, duration=30, customer="America/Santiago")
@example(case=("America/Sao_Paulo", date(2018, 11, 4)), step=15, duration=30, customer="UTC")  # as it was
@example(case=("America/Sao_Paulo", date(2019, 2, 16)), step=15, duration=30, customer="America/Sao_Paulo")
@example(case=("Australia/Lord_Howe", date(2026, 4, 5)), step=15, duration=30, customer="Australia/Lord_Howe")
@example(case=("Pacific/Chatham", date(2026, 4, 5)), step=45, duration=30, customer="Asia/Kathmandu")
def test_every_local_date_is_a_whole_day_of_grid_slots_spoken_distinctly(case, step, duration, customer):
    check_day(*case, step, duration, customer)


@pytest.mark.skipif(not LONG, reason="the full sweep runs with NEXTSLOT_LONG_TESTS=1")
def test_every_zone_every_clock_change_from_2020_to_2030():
    for name in ZONES:
        for year in range(YEARS[0], YEARS[1] + 1):
            for day in days_around_changes(name, year):
                check_day(name, day, 15, 60, "UTC")


def test_a_date_starts_when_its_first_instant_happens_however_midnight_goes():
    havana, santiago = ZoneInfo("America/Havana"), ZoneInfo("America/Santiago")
    # 2026-03-08: Havana's clocks jump from midnight to 1 am; 2026-11-01: 1 am goes back to midnight
    assert day_instants(date(2026, 3, 8), havana) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    assert day_instants(date(2026, 11, 1), havana) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))  # 25 hours
    assert day_instants(date(2026, 9, 6), santiago)[0].astimezone(santiago).isoformat() == "2026-09-06T01:00:00-03:00"
    assert resolve_instant(date(2026, 3, 8), "America/Havana", "date") == utc(2026, 3, 8, 5)
    assert resolve_instant(date(2026, 3, 8), "Mars/Base", "date").code == "unknown_timezone"
    assert resolve_instant(date(2026, 3, 8), None, "date").code == "missing_timezone"


def test_a_wall_time_the_clocks_skip_starts_at_the_jump_and_one_they_repeat_at_its_first_showing():
    new_york = ZoneInfo("America/New_York")
    assert first_instant(datetime(2027, 3, 14, 2, 30), new_york) == utc(2027, 3, 14, 7)  # 3:00 am EDT, the jump
    assert first_instant(datetime(2026, 11, 1, 1, 30), new_york) == utc(2026, 11, 1, 5, 30)  # 1:30 am EDT
    # so hours "02:30-05:00" on the spring-forward day open when the clocks reach 3 am, not half an hour later
    opened = open_intervals([WeeklyHours(6, 150, 300)], new_york, (utc(2027, 3, 14), utc(2027, 3, 15)))
    assert [s for s, _ in opened if s.date() == date(2027, 3, 14)] == [utc(2027, 3, 14, 7)]


def test_the_two_showings_of_a_repeated_wall_time_are_said_differently_in_every_language():
    new_york = ZoneInfo("America/New_York")
    first, second = utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)  # 1:30 am EDT, then 1:30 am EST
    assert TimeView.of(first, new_york).spoken == "Sunday 1 November at 1:30 am before the clocks go back"
    assert TimeView.of(second, new_york).spoken == "Sunday 1 November at 1:30 am after the clocks go back"
    assert TimeView.of(utc(2026, 11, 1, 7, 30), new_york).spoken == "Sunday 1 November at 2:30 am"
    for language in ("en", "es", "fr", "de"):
        assert spoken_when(first, new_york, language) != spoken_when(second, new_york, language)
    assert spoken_when(second, new_york, "de") == "Sonntag, 1. November um 01:30 (nach der Zeitumstellung)"
