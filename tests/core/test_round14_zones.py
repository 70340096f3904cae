"""Round 14: time zones swept, where a business's branches keep zones of their own.

A plan over branches in several zones (a service offered in New York, Pune and Chatham, asked for without a
branch) lays each branch's starts on that branch's own grid: what the search offers for it (a lost race's nearest
openings, a waitlist's offers) is exactly what a booking of it takes, swept by hypothesis over every zone `zoneinfo`
knows, next to their clock changes. A series asked for without a branch keeps its first start's branch's wall time
when another zone's clocks change; a wish's dates are those of the branch furthest behind, and offers reach a branch
more than a day ahead of the business; the guided chat tells two branches' alike clock times apart; and a zone's
name that is a folder of the zone database is refused, not a 500.

The default run samples zones and dates; NEXTSLOT_LONG_TESTS=1 also sweeps every zone's clock changes of
2024-2030 beside a half-hour and a 45-minute branch (a few minutes).
"""
from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from nextslot.conversations import guided
from nextslot.core.booking.availability import (
    ResourceTimeline,
    ServiceRules,
    Slot,
    WeeklyHours,
    check_slot,
    find_open_slots,
    open_intervals,
)
from nextslot.core.instants import day_instants, wall_exists
from nextslot.core.results import Booked, Rejected, SeriesBooked, SlotTaken
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn, SeriesCreate, WaitlistJoin
from nextslot.storage.tables import WaitlistOffer
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.core.test_branch_zones import PUNE, coasts
from tests.server.staff_api.conftest import api, clinic  # noqa: F401 - clients holding a business's key

LONG = os.environ.get("NEXTSLOT_LONG_TESTS") == "1"
ZONES = sorted(available_timezones() - {"Factory", "localtime"})
AWKWARD = ("America/Havana", "America/Santiago", "Asia/Beirut", "America/Asuncion", "Africa/Cairo", "Asia/Gaza",
           "America/Scoresbysund", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham", "Asia/Tehran",
           "Asia/Kolkata", "America/St_Johns", "Pacific/Apia", "Pacific/Kiritimati", "Europe/London")
YEARS = (2024, 2030)
MINUTE = timedelta(minutes=1)
NOW = datetime(2000, 1, 1, tzinfo=UTC)  # before every day looked at


@cache
def change_days(name: str) -> tuple[date, ...]:
    """The local dates on which the zone's UTC offset changes, YEARS inclusive: read a week at a time, then a day at
    a time in a week that changed (tzdata has no two changes within a week)."""
    zone, found = ZoneInfo(name), []
    offset = lambda t: t.astimezone(zone).utcoffset()  # noqa: E731
    week = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    while week.year <= YEARS[1]:
        if offset(week) != offset(week + timedelta(days=7)):
            day = next(week + timedelta(days=i) for i in range(1, 8) if offset(week + timedelta(days=i)) != offset(week))
            found.append(day.astimezone(zone).date())
        week += timedelta(days=7)
    return tuple(found)


# --- what a plan over several zones offers is what booking it takes ----------------------------------------------


def branch_plan(zones: list[str], business: str, step: int, duration: int, spans: list[tuple[int, int]],
                shared: bool) -> tuple[ServiceRules, list[tuple[int, ZoneInfo | None, tuple[int, int]]]]:
    """Rules as `planning.build_plan` makes them for a pool with one member at a branch in each zone (and a shared
    member with no branch, working the business's hours): a single zone books on its grid, several on the
    business's with the branches' own as `also_on_grid`. Returns the rules and each member's (branch, zone,
    hours)."""
    places = sorted(set(zones))
    members: list[tuple[int, ZoneInfo | None, tuple[int, int]]] = [
        (i + 1, ZoneInfo(z), spans[i % len(spans)]) for i, z in enumerate(zones)]
    if shared:
        members.append((0, None, spans[-1]))
    own = ZoneInfo(places[0]) if len(places) == 1 else ZoneInfo(business)
    rules = ServiceRules(timedelta(minutes=duration), timedelta(0), timedelta(0), step, timedelta(0),
                         timedelta(days=366 * 40), own, tuple(ZoneInfo(z) for z in places) if len(places) > 1 else ())
    return rules, members


def pool_over(members: list[tuple[int, ZoneInfo | None, tuple[int, int]]], business: ZoneInfo,
              window: tuple[datetime, datetime], busy: list[tuple[int, int, int]]) -> list[list[ResourceTimeline]]:
    """One pool of the members' timelines: each open its hours every day in its own zone, with `busy` claims
    (member index, minutes into the window, length)."""
    at = lambda m: window[0] + m * MINUTE  # noqa: E731
    pool = []
    for index, (branch, zone, (start, end)) in enumerate(members):
        hours = [WeeklyHours(d, start, end) for d in range(7)]
        claims = [(at(a), at(a + n)) for i, a, n in busy if i % len(members) == index]
        pool.append(ResourceTimeline(index + 1, 1, open_intervals(hours, zone or business, window), claims,
                                     branch or None, zone))
    return [pool]


def check_offers_are_bookable(zones: list[str], business: str, day: date, step: int, duration: int,
                              spans: list[tuple[int, int]], shared: bool, busy: list[tuple[int, int, int]]) -> None:
    rules, members = branch_plan(zones, business, step, duration, spans, shared)
    window = day_instants(day - timedelta(days=1), ZoneInfo(zones[0]), 3)
    groups = pool_over(members, ZoneInfo(business), window, busy)
    offered = [(s.starts_at, s.resource_ids) for s in find_open_slots(rules, groups, window, NOW)]
    minutes = (window[0] + MINUTE * i for i in range(int((window[1] - window[0]) / MINUTE)))
    taken = [(t, checked.resource_ids) for t in minutes if isinstance(checked := check_slot(rules, groups, t, NOW), Slot)]
    assert offered == taken, (zones, business, day, [x for x in offered if x not in taken][:3],
                              [x for x in taken if x not in offered][:3])


@st.composite
def branch_zones(draw) -> tuple[list[str], str, date]:
    """One to three branch zones, the business's, and a date next to a clock change of one of them when it has any."""
    pick = st.sampled_from(AWKWARD) | st.sampled_from(ZONES)
    zones = draw(st.lists(pick, min_size=1, max_size=3))
    business = draw(pick)
    days = [d for z in {*zones, business} for d in change_days(z)]
    if days and draw(st.integers(0, 4)):
        return zones, business, draw(st.sampled_from(days)) + timedelta(days=draw(st.integers(-1, 1)))
    return zones, business, date(draw(st.integers(*YEARS)), 1, 1) + timedelta(days=draw(st.integers(0, 364)))


SPANS = st.lists(st.tuples(st.integers(0, 46), st.integers(2, 48)).map(
    lambda t: (30 * t[0], min(1440, 30 * (t[0] + t[1])))), min_size=1, max_size=3)
CLAIMS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4000), st.integers(15, 180)), max_size=8)


@settings(max_examples=1000 if LONG else 40, deadline=None)
@given(case=branch_zones(), step=st.sampled_from((15, 20, 30, 45, 60)), duration=st.sampled_from((15, 30, 60, 90)),
       spans=SPANS, shared=st.booleans(), busy=CLAIMS)
@example(case=(["America/New_York", "Asia/Kolkata"], "America/New_York", date(2026, 11, 24)), step=60,
         duration=60, spans=[(540, 1020)], shared=False, busy=[])  # Pune's 10:00 is between New York's hours
@example(case=(["Pacific/Chatham", "Australia/Lord_Howe"], "UTC", date(2026, 4, 5)), step=30,
         duration=30, spans=[(0, 1440)], shared=True, busy=[])  # both go back that night, by 1 h and by 30 min
def test_every_start_a_plan_over_branches_offers_is_one_booking_it_takes_and_no_other(case, step, duration, spans,
                                                                                      shared, busy):
    """Minute by minute, `check_slot` (what a booking takes) against the search (what alternatives, waitlist offers
    and series' nearest times are drawn from): the search laid every branch's members on the business's grid, so
    Pune was offered 10:30 (which a booking refused as outside its hours) and never 10:00."""
    zones, business, day = case
    check_offers_are_bookable(zones, business, day, step, duration, spans, shared, busy)


@pytest.mark.skipif(not LONG, reason="the full sweep runs with NEXTSLOT_LONG_TESTS=1")
def test_every_zone_every_clock_change_from_2024_to_2030_beside_a_half_hour_and_a_45_minute_branch():
    for name in ZONES:
        for day in change_days(name):
            for other in ("Asia/Kolkata", "Pacific/Chatham"):
                check_offers_are_bookable([name, other], "UTC", day, 30, 60, [(0, 1440)], True, [])


# --- through the core, on PostgreSQL -----------------------------------------------------------------------------


def test_every_time_offered_after_a_taken_one_at_a_business_with_branches_in_several_zones_can_be_booked(
        service, make_business):
    """Pune's 10:00 asked without a branch, and taken: the three nearest openings offered were Pune's 11:30, 12:30
    and 13:30 (New York's grid laid over Pune), and booking any of them was refused as outside its hours."""
    business = make_business(coasts(step=60))
    ten = datetime(2026, 11, 24, 10, tzinfo=PUNE)
    customer = lambda n: CustomerIn(name=f"Caller {n}", phone=f"+9198123456{n:02d}")  # noqa: E731
    assert isinstance(service.book(business, BookingCreate(service="cut", starts_at=ten, customer=customer(1))), Booked)
    taken = service.book(business, BookingCreate(service="cut", starts_at=ten, customer=customer(2)))
    assert isinstance(taken, SlotTaken) and len(taken.alternatives) == 3
    offered = [a.starts_at.utc for a in taken.alternatives]
    assert [t.astimezone(PUNE).strftime("%H:%M") for t in offered] == ["09:00", "11:00", "12:00"]
    for n, start in enumerate(offered, start=3):
        booked = service.book(business, BookingCreate(service="cut", starts_at=start, customer=customer(n)))
        assert isinstance(booked, Booked), booked


@cache
def zones_changing_clocks() -> tuple[str, ...]:
    return tuple(z for z in ZONES if change_days(z))


@settings(max_examples=60 if LONG else 6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@example(data=None)
def test_a_series_asked_without_a_branch_keeps_its_branchs_wall_time_when_another_zone_changes_its_clocks(
        service, make_business, clock, data):
    """A business with a branch in its own zone and one in another; 'every week at 10' at the far branch, asked
    without naming it, through a clock change of either zone: each occurrence is 10:00 at the far branch (its
    grid's first start after a jump on a day its clocks skip 10:00). The series was laid out in the business's
    zone, so Pune's 10:00 became 9:00 once New York's clocks went forward."""
    if data is None:  # New York springs forward on 14 March 2027; Pune keeps its time
        home, far, change = "America/New_York", "Asia/Kolkata", date(2027, 3, 14)
    else:
        home = data.draw(st.sampled_from(zones_changing_clocks()), label="business zone")
        far = data.draw(st.sampled_from(ZONES), label="far branch zone")
        change = data.draw(st.sampled_from(change_days(home) + change_days(far) or change_days(home)), label="change")
    if home == far or change < date(2026, 1, 8):
        return
    first = datetime.combine(change - timedelta(days=7), time(10))
    if not wall_exists(first, ZoneInfo(far)):
        return
    clock.now = datetime.combine(change - timedelta(days=8), time(), UTC)
    business = make_business(two_branches(home, far))
    made = service.book_series(business, SeriesCreate(
        service="visit", starts_at=first.replace(tzinfo=ZoneInfo(far)), repeat={"every": "week", "count": 3},
        customer=CustomerIn(name="Regular Caller", phone="+442071234567"), mode="skip_taken"))
    assert isinstance(made, SeriesBooked), made
    walls = [o.requested.utc.astimezone(ZoneInfo(far)) for o in made.series.occurrences]
    assert [w.date() for w in walls] == [first.date() + timedelta(weeks=i) for i in range(3)], (home, far, walls)
    for wall, occurrence in zip(walls, made.series.occurrences, strict=True):
        wanted = datetime.combine(wall.date(), time(10))
        if wall_exists(wanted, ZoneInfo(far)):
            assert wall.replace(tzinfo=None) == wanted, (home, far, walls)
            assert occurrence.outcome == "booked" and occurrence.booking.location.key == "far", occurrence


def two_branches(home: str, far: str) -> dict:
    """A business at `home` with a branch there and one at `far`, each open all day every day; the far one's
    member listed first, so a start both could take is the far branch's."""
    every_day = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return {
        "business": {"slug": f"two-{uuid.uuid4().hex[:6]}", "name": "Two Branches", "timezone": home,
                     "country": "GB"},
        "hours": every_day,
        "locations": [{"key": "home", "name": "Home"}, {"key": "far", "name": "Far", "timezone": far}],
        "resources": [{"key": "far-one", "name": "Far One", "kind": "staff", "location": "far"},
                      {"key": "home-one", "name": "Home One", "kind": "staff", "location": "home"}],
        "services": [{"key": "visit", "name": "Visit", "duration": 30, "step": 30, "min_notice": 0,
                      "horizon_days": 365, "requires": [{"label": "who", "one_of": ["far-one", "home-one"]}]}],
    }


def test_a_waitlist_wish_for_a_branch_in_a_half_hour_zone_is_offered_its_own_start(service, make_business,
                                                                                   session_factory):
    """Pune's 10:00 freed, and a wish for 10-11 at any branch: the offers were drawn on New York's grid (Pune's 9:30
    and 10:30, neither inside the wish), so no one was offered the time."""
    business = make_business(coasts(step=60))
    ten = datetime(2026, 11, 24, 10, tzinfo=PUNE)
    holder = service.book(business, BookingCreate(service="cut", starts_at=ten, customer=CustomerIn(
        name="Holder", phone="+919812345600")))
    assert isinstance(holder, Booked)
    wish = service.join_waitlist(business, WaitlistJoin(
        service="cut", customer=CustomerIn(name="Wendy", phone="+919812345601"), earliest_date=date(2026, 11, 24),
        latest_date=date(2026, 11, 24), day_start=time(10), day_end=time(11)))
    assert not isinstance(wish, Rejected), wish
    service.cancel(business, BookingChange(code=holder.booking.code))
    assert service.offer_freed_capacity() == 1
    with session_factory() as s:
        [offer] = s.scalars(select(WaitlistOffer).where(WaitlistOffer.business_id == business)).all()
    assert offer.starts_at == ten


def test_a_wish_for_the_evening_a_branch_behind_the_business_is_still_in_is_taken_and_offered(
        service, make_business, session_factory, clock):
    """05:00 on Tuesday in London is 21:00 on Monday in Los Angeles: a wish for Monday 21:30-23:00 at any branch was
    refused as a window already over, by London's date."""
    clock.now = datetime(2026, 11, 24, 5, tzinfo=UTC)
    late = {d: ["09:00-23:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    business = make_business({
        "business": {"slug": "late", "name": "Late", "timezone": "Europe/London", "country": "GB"}, "hours": late,
        "locations": [{"key": "ldn", "name": "Soho"}, {"key": "la", "name": "Venice", "timezone": "America/Los_Angeles"}],
        "resources": [{"key": "ann", "name": "Ann", "kind": "staff", "location": "ldn"},
                      {"key": "lee", "name": "Lee", "kind": "staff", "location": "la"}],
        "services": [{"key": "cut", "name": "Cut", "duration": 60, "step": 30, "min_notice": 0,
                      "requires": [{"label": "who", "one_of": ["ann", "lee"]}]}]})
    ten_pm = datetime(2026, 11, 23, 22, tzinfo=ZoneInfo("America/Los_Angeles"))
    holder = service.book(business, BookingCreate(service="cut", starts_at=ten_pm, customer=CustomerIn(
        name="Holder", phone="+13105550100")))
    assert isinstance(holder, Booked)
    wish = service.join_waitlist(business, WaitlistJoin(
        service="cut", customer=CustomerIn(name="Wendy", phone="+13105550101"), earliest_date=date(2026, 11, 23),
        latest_date=date(2026, 11, 23), day_start=time(21, 30), day_end=time(23)))
    assert not isinstance(wish, Rejected), wish
    assert wish.earliest_date == "2026-11-23"
    service.cancel(business, BookingChange(code=holder.booking.code))
    assert service.offer_freed_capacity() == 1
    with session_factory() as s:
        [offer] = s.scalars(select(WaitlistOffer).where(WaitlistOffer.business_id == business)).all()
    assert offer.starts_at == ten_pm - timedelta(minutes=30)  # the first start by the freed hour inside the wish


# --- a zone's name that is a folder of the time zone database ---------------------------------------------------

FOLDERS = sorted({name.rsplit("/", 1)[0] for name in ZONES if "/" in name})  # Europe, America/Argentina, US...


def test_every_folder_of_the_zone_database_is_refused_as_a_zone_with_the_field_not_a_500(api, clinic):  # noqa: F811
    """'Europe' opens a folder of tzdata, not a zone: the check let the OSError through, so PUT /v1/config and PUT
    /v1/resources/{key} answered 500."""
    assert "Europe" in FOLDERS and "America/Argentina" in FOLDERS
    client = api(clinic)
    config = client.get("/v1/config").json()
    for folder in FOLDERS:
        answer = client.put("/v1/config", json={**config, "business": {**config["business"], "timezone": folder}})
        assert answer.status_code == 422, (folder, answer.text)
        assert answer.json()["error"]["field"] == "business.timezone" and "not an IANA time zone" in answer.text
    answer = client.put("/v1/resources/far", json={"key": "far", "name": "Far", "kind": "staff",
                                                   "timezone": "America/Argentina"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "timezone", answer.text
    assert client.get("/v1/config").json() == config  # nothing changed


def test_a_wish_at_a_branch_more_than_a_day_ahead_of_the_business_is_offered_its_freed_time(
        service, make_business, session_factory, clock):
    """Kiritimati (+14) is 25 hours ahead of Pago Pago (-11): its first half hour of Wednesday is the last of Monday
    at the business, and the wishes looked at were those within a day of the business's date, so Wednesday's was
    not."""
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    business = make_business(two_branches("Pacific/Pago_Pago", "Pacific/Kiritimati"))
    kiritimati = ZoneInfo("Pacific/Kiritimati")
    midnight = datetime(2026, 11, 25, tzinfo=kiritimati)
    assert (midnight + timedelta(minutes=30)).astimezone(ZoneInfo("Pacific/Pago_Pago")).date() == date(2026, 11, 23)
    holder = service.book(business, BookingCreate(service="visit", starts_at=midnight, location="far",
                                                  customer=CustomerIn(name="Holder", phone="+447900914100")))
    assert isinstance(holder, Booked), holder
    wish = service.join_waitlist(business, WaitlistJoin(
        service="visit", customer=CustomerIn(name="Wendy", phone="+447900914101"), resources=["far-one"],
        earliest_date=date(2026, 11, 25), latest_date=date(2026, 11, 25), day_start=time(0), day_end=time(0, 30)))
    assert not isinstance(wish, Rejected), wish
    service.cancel(business, BookingChange(code=holder.booking.code))
    assert service.offer_freed_capacity() == 1
    with session_factory() as s:
        [offer] = s.scalars(select(WaitlistOffer).where(WaitlistOffer.business_id == business)).all()
    assert offer.starts_at == midnight


def test_the_guided_chat_tells_two_branches_alike_clock_times_apart_and_says_where_it_books(service, make_business):
    """Cut at Manhattan, Venice Beach and Pune: Tuesday's times were '09:00, 10:00, ... 16:00, 09:00', the first
    Pune's 09:00 (11:30 pm on Monday in New York) and the last Manhattan's, and the confirmation named no branch."""
    ctx = ToolContext(service=service, business_id=make_business(coasts()), channel="sms_chat",
                      caller_phone="+12125550300")
    turn = guided.Turn("Coasts", ZoneInfo("America/New_York"), "en", "Eve Park",
                       lambda name, args: execute(name, args, ctx), "guided:round14", date(2026, 11, 24))
    state: dict = {}
    for said in ("hi", "1", "2", "1"):
        reply, state = guided.answer(turn, state, said)
    times = [line.split(" ", 1)[1] for line in reply.splitlines()[1:] if not line.startswith("0 ")]
    assert len(times) == len(set(times)) == 9, reply
    assert times[0] == "09:00 at Pune" and times[-1] == "09:00 at Manhattan", reply
    reply, state = guided.answer(turn, state, "9")
    assert reply.startswith("Book Cut on Tuesday 24 November at 9 am at Manhattan for Eve Park?"), reply
    reply, state = guided.answer(turn, state, "1")
    assert reply.startswith("Booked: Cut on Tuesday 24 November at 9 am at Manhattan."), reply
