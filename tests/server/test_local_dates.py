"""A business in America/Havana, whose clocks jump from midnight to 1 am on 8 March 2026 and go back from 1 am
to midnight on 1 November 2026, through every channel that takes a date: the agent tool, /v1/slots, the
booking page's days, the console's day and week, and a waitlist wish (in-process app, frozen clock).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nextslot.core.accounts.staff import create_account
from nextslot.core.results import Booked
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Business, WaitlistOffer
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.reminders.test_dispatcher import ScriptedChannel

SKIPPED, REPEATED = "2026-03-08", "2026-11-01"  # Sundays: no midnight at all; midnight to 1 am twice
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SALON = {
    "business": {"slug": "salon-habana", "name": "Salon Habana", "timezone": "America/Havana", "country": "US"},
    "hours": {day: ["00:00-24:00"] for day in WEEK},  # a night salon: open round the clock
    "resources": [{"key": "ana", "name": "Ana Diaz", "kind": "staff"}],
    "services": [
        {"key": "cut", "name": "Haircut", "duration": 30, "step": 30, "min_notice": 0, "horizon_days": 400,
         "requires": [{"label": "stylist", "one_of": ["ana"]}]},
        {"key": "colour", "name": "Colour", "duration": 60, "step": 30, "min_notice": 0, "horizon_days": 400,
         "requires": [{"label": "stylist", "one_of": ["ana"]}]},
    ],
}
PASSWORD = "correct horse battery"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def salon(make_business, clock) -> int:
    clock.now = utc(2026, 3, 1, 12)  # a week before the spring-forward Sunday
    return make_business(SALON)


@pytest.fixture
def http(service) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(secret_key="local-dates"), service=service), follow_redirects=False) as c:
        yield c


def slug_of(session_factory, business_id: int) -> str:
    with session_factory() as s:
        return s.get(Business, business_id).slug


def book(service, business_id: int, at: datetime, phone: str, key: str = "cut") -> str:
    result = service.book(business_id, BookingCreate(service=key, starts_at=at, source="mcp",
                                                     customer=CustomerIn(name="Caller", phone=phone)))
    assert isinstance(result, Booked), result
    return result.booking.code


def test_the_agent_tool_reads_a_date_as_the_whole_local_day_and_says_each_time_distinctly(service, salon):
    ctx = ToolContext(service=service, business_id=salon, channel="test")
    skipped = execute("find_available_slots", {"service": "cut", "date": SKIPPED}, ctx)
    assert skipped.ok, skipped.data
    assert [s["starts_at"] for s in skipped.data["slots"][:2]] == ["2026-03-08T01:00:00-04:00",
                                                                  "2026-03-08T01:30:00-04:00"]
    assert skipped.say.startswith("I can offer Sunday 8 March at 1 am, 1:30 am or 2 am")

    before = execute("find_available_slots", {"service": "cut", "date": "2026-10-31", "earliest_time": "23:00"}, ctx)
    assert before.ok, before.data  # the day ends at a midnight that happens twice: at its first showing
    assert [s["starts_at"] for s in before.data["slots"]] == ["2026-10-31T23:00:00-04:00",
                                                              "2026-10-31T23:30:00-04:00"]

    repeated = execute("find_available_slots", {"service": "cut", "date": REPEATED, "limit": 6}, ctx)
    assert repeated.ok, repeated.data
    slots = repeated.data["slots"]
    assert [s["starts_at"] for s in slots] == [
        "2026-11-01T00:00:00-04:00", "2026-11-01T00:30:00-04:00", "2026-11-01T00:00:00-05:00",
        "2026-11-01T00:30:00-05:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00"]
    spoken = [s["spoken"] for s in slots]
    assert len(set(spoken)) == len(spoken)
    assert spoken[0] == "Sunday 1 November at 12 am before the clocks go back"
    assert spoken[2] == "Sunday 1 November at 12 am after the clocks go back" and spoken[4] == "Sunday 1 November at 1 am"
    assert repeated.say == ("I can offer Sunday 1 November at 12 am before the clocks go back, 12:30 am before the "
                            "clocks go back or 12 am after the clocks go back.")


def test_staff_ask_v1_slots_for_a_date_and_get_that_local_day(service, salon, api_key, http):
    headers = {"Authorization": f"Bearer {api_key(salon)}"}
    answer = http.get("/v1/slots", params={"service": "cut", "starts_from": SKIPPED, "until": "2026-03-09",
                                           "limit": 1000}, headers=headers)
    assert answer.status_code == 200, answer.text
    starts = [s["starts_at"]["utc"] for s in answer.json()["slots"]]
    assert (starts[0], starts[-1], len(starts)) == ("2026-03-08T05:00:00Z", "2026-03-09T03:30:00Z", 46)  # 23 h

    answer = http.get("/v1/slots", params={"service": "cut", "starts_from": REPEATED, "until": "2026-11-02",
                                           "limit": 1000}, headers=headers)
    assert answer.status_code == 200, answer.text
    slots = answer.json()["slots"]
    assert len(slots) == 50 and len({s["starts_at"]["spoken"] for s in slots}) == 50  # 25 hours, told apart

    bad = http.get("/v1/slots", params={"service": "cut", "starts_from": "2026-13-08"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"].startswith("starts_from")


def test_the_booking_page_shows_each_day_from_its_real_start_and_tells_repeated_times_apart(
        service, salon, session_factory, http, clock):
    slug = slug_of(session_factory, salon)
    page = http.get(f"/b/{slug}/cut", params={"from": SKIPPED})
    assert page.status_code == 200
    sunday = page.text[page.text.index(">Sunday 8 March</h3>"):]
    assert re.findall(r">([^<>]+)</a>", sunday)[:2] == ["1 am", "1:30 am"]

    clock.now = utc(2026, 10, 25, 12)
    page = http.get(f"/b/{slug}/cut", params={"from": REPEATED})
    sunday = page.text[page.text.index(">Sunday 1 November</h3>"):page.text.index(">Monday 2 November</h3>")]
    clocks = re.findall(r">([^<>]+)</a>", sunday)
    assert clocks[:5] == ["12 am before the clocks go back", "12:30 am before the clocks go back",
                          "12 am after the clocks go back", "12:30 am after the clocks go back", "1 am"]
    assert len(clocks) == len(set(clocks)) == 50


def test_the_console_draws_a_day_without_midnight_from_1_am_in_its_day_and_week(service, salon, session_factory,
                                                                                http):
    slug = slug_of(session_factory, salon)
    code = book(service, salon, utc(2026, 3, 8, 5), "+12125550181")  # 1 am, the day's first minute
    create_account(SqlAlchemyUnitOfWork(session_factory), salon, "owner@salon.example", "Sam", "owner", PASSWORD)
    signed = http.post(f"/console/{slug}/login", data={"email": "owner@salon.example", "password": PASSWORD})
    assert signed.status_code == 303, signed.text

    day = http.get(f"/console/{slug}", params={"date": SKIPPED})
    assert day.status_code == 200 and code in day.text
    assert 'data-first-hour="1"' in day.text  # the clocks never show midnight to 1 am that day
    assert 'class="blk booking c-1 rs-2 re-8' in day.text  # 1:00-1:30, at the top of the grid

    week = http.get(f"/console/{slug}", params={"date": SKIPPED, "view": "week"})
    assert week.status_code == 200 and code in week.text
    assert 'class="blk working c-7 rs-14 ' in week.text  # Sunday works from the 1 am row, Monday from midnight
    assert 'class="blk working c-1 rs-2 ' in week.text


def test_a_waitlist_wish_for_the_repeated_hour_is_offered_the_time_that_really_fits(
        service, salon, session_factory, clock):
    clock.now = utc(2026, 10, 25, 12)
    freed = book(service, salon, utc(2026, 11, 1, 4, 30), "+12125550183", "colour")  # 12:30 am first showing
    ctx = ToolContext(service=service, business_id=salon, channel="test")
    wish = {"service": "colour", "customer_name": "Wanda", "phone": "+12125550184", "earliest_date": REPEATED,
            "latest_date": REPEATED, "earliest_time": "00:30", "latest_time": "01:00"}  # 90 minutes that night
    joined = execute("join_waitlist", wish, ctx)
    assert joined.ok and joined.data["outcome"] == "waitlisted", joined.data
    short = execute("join_waitlist", {**wish, "earliest_date": "2026-11-02", "latest_date": "2026-11-02"}, ctx)
    assert short.data["error"]["code"] == "window_too_short"  # 30 minutes any other night

    service.cancel(salon, BookingChange(code=freed, source="test"))
    assert service.offer_freed_capacity() == 1
    with session_factory() as s:
        [offer] = s.scalars(select(WaitlistOffer).where(WaitlistOffer.business_id == salon)).all()
    # 12:30 am (first showing) to 12:30 am (second) lies between that night's midnight and 1 am
    assert offer.starts_at == utc(2026, 11, 1, 4, 30)

    sms = ScriptedChannel("sms")
    Dispatcher(session_factory, {"sms": sms}, clock=clock).dispatch_due()
    [message] = [m for m in sms.sent if m.to == "+12125550184"]
    assert "Sunday 1 November at 12:30 am before the clocks go back has just opened up" in message.body
