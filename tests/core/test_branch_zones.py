"""A branch in another zone than its business: its times are said, read and kept in its own zone. New York is the
business's zone; Venice Beach keeps Los Angeles time (three hours behind) and Pune keeps India's (ten and a half
hours ahead, half an hour off New York's hours)."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from nextslot.calendars.connections import add_calendar
from nextslot.calendars.sync import lease_of
from nextslot.calendars.writes import event_of
from nextslot.conversations import guided
from nextslot.core.customers.replies import target_booking
from nextslot.core.results import Rejected
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    CustomerIn,
    SeriesCreate,
    SlotQuery,
    WaitlistJoin,
)
from nextslot.storage.tables import Booking, Business, ExternalCalendar, Resource, WaitlistOffer
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.reminders.conftest import quiet_outbox  # noqa: F401 - the dispatcher here sends only this test's messages
from tests.reminders.test_dispatcher import ScriptedChannel

LA, PUNE = ZoneInfo("America/Los_Angeles"), ZoneInfo("Asia/Kolkata")
LA_NINE = datetime(2026, 11, 24, 17, tzinfo=UTC)  # Tuesday 9 am in Los Angeles, 12 pm in New York


def coasts(step: int = 60, **service: object) -> dict:
    """A New York salon with branches in Los Angeles and Pune; each stylist works 09:00-17:00 their own time.
    `colour` is done only in Los Angeles."""
    return {
        "business": {"slug": "coasts", "name": "Coasts", "timezone": "America/New_York", "country": "US"},
        "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "locations": [
            {"key": "nyc", "name": "Manhattan", "address": "1 Broadway, New York"},
            {"key": "la", "name": "Venice Beach", "address": "2 Main St, Los Angeles",
             "timezone": "America/Los_Angeles"},
            {"key": "pune", "name": "Pune", "address": "3 FC Road, Pune", "timezone": "Asia/Kolkata"},
        ],
        "resources": [
            {"key": "ana", "name": "Ana", "kind": "staff", "location": "nyc"},
            {"key": "lee", "name": "Lee", "kind": "staff", "location": "la", "email": "lee@example.com"},
            {"key": "raj", "name": "Raj", "kind": "staff", "location": "pune"},
        ],
        "services": [
            {"key": "cut", "name": "Cut", "duration": 60, "step": step, "min_notice": 0, "horizon_days": 180,
             "requires": [{"label": "stylist", "one_of": ["ana", "lee", "raj"]}], **service},
            {"key": "colour", "name": "Colour", "duration": 60, "step": step, "min_notice": 0,
             "requires": [{"label": "stylist", "one_of": ["lee"]}]},
        ],
    }


def tools(service, business: int) -> ToolContext:
    return ToolContext(service=service, business_id=business, channel="mcp")


def book_la_nine(service, business: int, phone: str = "+12125550100", **customer: str):
    booked = service.book(business, BookingCreate(service="cut", starts_at=LA_NINE, location="la",
                                                  customer=CustomerIn(name="Eve Park", phone=phone, **customer)))
    assert not isinstance(booked, Rejected), booked
    return booked.booking


def test_an_agent_hears_a_branchs_times_in_its_own_zone_when_the_caller_gives_none(service, make_business):
    ctx = tools(service, make_business(coasts()))
    found = execute("find_available_slots", {"service": "cut", "date": "2026-11-24", "location": "la"}, ctx)
    assert found.data["say"].startswith("I can offer Tuesday 24 November at 9 am at Venice Beach, 10 am")
    first = found.data["slots"][0]
    assert (first["starts_at"], first["timezone"]) == ("2026-11-24T09:00:00-08:00", "America/Los_Angeles")
    held = execute("hold_slot", {"service": "cut", "starts_at": first["starts_at"], "location": "la"}, ctx)
    assert held.data["say"] == "I'm holding Tuesday 24 November at 9 am for you while we finish."
    booked = execute("book_appointment", {"service": "cut", "starts_at": first["starts_at"], "location": "la",
                                          "hold_id": held.data["hold_id"], "customer_name": "Eve Park",
                                          "phone": "+12125550101"}, ctx)
    assert " at Venice Beach on Tuesday 24 November at 9 am." in booked.data["say"]
    [mine] = execute("find_appointments", {"phone": "+12125550101"}, ctx).data["appointments"]
    assert mine["spoken"] == "Tuesday 24 November at 9 am" and mine["timezone"] == "America/Los_Angeles"
    history = execute("customer_history", {"phone": "+12125550101"}, ctx)
    assert history.data["say"].endswith("The latest: Booked Cut on Tue 24 Nov 2026 09:00.")
    early = execute("book_appointment", {"service": "cut", "starts_at": "2026-11-24T07:00:00-08:00", "location": "la",
                                         "customer_name": "Eve Park", "phone": "+12125550101"}, ctx)
    assert early.data["error"]["message"].startswith("2026-11-24 07:00 PST is outside opening hours")
    caller = execute("find_available_slots", {"service": "cut", "date": "2026-11-25", "location": "la",
                                              "caller_timezone": "America/New_York"}, ctx)
    assert caller.data["say"].startswith("I can offer Wednesday 25 November at 12 pm at Venice Beach")  # theirs


def test_the_business_hours_an_agent_hears_read_each_branchs_hours_in_its_zone(service, make_business):
    """In New York time: Manhattan 9-5, Venice Beach's 9-5 is 12-8, Pune's runs from 10:30 pm to 6:30 am."""
    info = execute("get_business_info", {}, tools(service, make_business(coasts())))
    tuesday = next(d for d in info.data["opening_hours"] if d["day"] == "Tuesday")
    assert tuesday["hours"] == ["00:00-06:30", "09:00-20:00", "22:30-24:00"]


def test_a_date_and_times_of_day_are_the_branchs_own(service, make_business):
    """Pune's 24 November, not New York's (which runs from 10:30 am in Pune to 10:30 am the next day)."""
    business = make_business(coasts(step=30))
    ctx = tools(service, business)
    found = execute("find_available_slots", {"service": "cut", "date": "2026-11-24", "location": "pune",
                                             "limit": 20}, ctx)
    starts = [datetime.fromisoformat(s["starts_at"]) for s in found.data["slots"]]
    assert starts[0] == datetime(2026, 11, 24, 9, tzinfo=PUNE) and {s.date() for s in starts} == {date(2026, 11, 24)}
    morning = execute("find_available_slots", {"service": "cut", "date": "2026-11-24", "location": "pune",
                                               "earliest_time": "09:00", "latest_time": "10:00"}, ctx)
    assert [s["starts_at"][11:16] for s in morning.data["slots"]] == ["09:00", "09:30", "10:00"]
    everywhere = service.find_slots(business, SlotQuery(service="cut", starts_from=date(2026, 11, 24),
                                                        until=date(2026, 11, 25), limit=100))
    days = {(s.location.key, s.starts_at.utc.astimezone(ZoneInfo(s.starts_at.place_timezone or "America/New_York"))
             .date()) for s in everywhere.slots}
    assert days == {("nyc", date(2026, 11, 24)), ("la", date(2026, 11, 24)), ("pune", date(2026, 11, 24))}


def test_messages_say_the_branchs_time_to_a_customer_and_a_staff_member_without_a_zone(
        service, make_business, session_factory, clock):
    business = make_business(coasts())
    booking = book_la_nine(service, business)
    service.cancel(business, BookingChange(code=booking.code))
    channels = {name: ScriptedChannel(name) for name in ("whatsapp", "sms", "email")}
    Dispatcher(session_factory, channels, clock=clock).dispatch_due()
    sent = {m.to: m.body for name in channels for m in channels[name].sent}
    assert "Tuesday 24 November at 9 am" in sent["+12125550100"]  # the customer: the cancellation (last)
    assert "on Tuesday 24 November at 9 am" in sent["lee@example.com"]  # Lee, in Los Angeles


def test_a_text_reply_is_answered_in_the_branchs_time(service, make_business, session_factory, clock):
    business = make_business(coasts())
    booking = book_la_nine(service, business)
    target = target_booking(SqlAlchemyUnitOfWork(session_factory), [booking.customer.id], [], False, clock.now)
    assert target.zone == LA


def test_a_weekly_series_keeps_the_branchs_wall_time_when_new_york_changes_its_clocks(service, make_business):
    """New York springs forward on 14 March 2027; Pune keeps its time. 'Every Tuesday at 10' is Pune's 10 am."""
    business = make_business(coasts(step=30))
    made = service.book_series(business, SeriesCreate(
        service="cut", starts_at=datetime(2027, 3, 9, 10, tzinfo=PUNE), location="pune",
        repeat={"every": "week", "count": 3}, customer=CustomerIn(name="Asha Rao", phone="+919812345678")))
    assert [o.outcome for o in made.series.occurrences] == ["booked"] * 3
    walls = [o.booking.starts_at.utc.astimezone(PUNE).strftime("%d %H:%M") for o in made.series.occurrences]
    assert walls == ["09 10:00", "16 10:00", "23 10:00"]
    moved = service.move_series(business, BookingReschedule(code=made.series.occurrences[0].booking.code,
                                                            starts_at=datetime(2027, 3, 9, 11, tzinfo=PUNE)))
    assert [b.starts_at.utc.astimezone(PUNE).strftime("%d %H:%M") for b in moved.bookings] == \
           ["09 11:00", "16 11:00", "23 11:00"]


def test_a_waitlist_wish_is_for_the_branchs_dates_and_times_of_day(service, make_business, session_factory, clock):
    """Colour is done only in Los Angeles: a wish for 9-10 am there is offered Los Angeles' 9 am, in its time."""
    business = make_business(coasts())
    holder = service.book(business, BookingCreate(service="colour", starts_at=LA_NINE, customer=CustomerIn(
        name="Holder", phone="+12125550200"))).booking
    service.join_waitlist(business, WaitlistJoin(
        service="colour", customer=CustomerIn(name="Wendy", phone="+12125550201"), earliest_date=date(2026, 11, 24),
        latest_date=date(2026, 11, 24), day_start=time(9), day_end=time(10)))
    service.cancel(business, BookingChange(code=holder.code))
    assert service.offer_freed_capacity() == 1
    with session_factory() as s:
        [offer] = s.scalars(select(WaitlistOffer).where(WaitlistOffer.business_id == business)).all()
    assert offer.starts_at == LA_NINE
    sms = ScriptedChannel("sms")
    Dispatcher(session_factory, {"sms": sms}, clock=clock).dispatch_due()
    [text] = [m.body for m in sms.sent if m.to == "+12125550201"]
    assert "Colour at Coasts on Tuesday 24 November at 9 am has just opened up" in text


def test_the_guided_chat_shows_a_branchs_times_in_its_zone(service, make_business):
    """Without a model, the numbered choices: the days and times Venice Beach has, as its customers read them."""
    config = coasts()
    config["services"] = config["services"][1:]  # colour only: in Los Angeles
    ctx = ToolContext(service=service, business_id=make_business(config), channel="sms_chat", caller_phone="+12125550300")
    turn = guided.Turn("Coasts", ZoneInfo("America/New_York"), "en", "Eve Park",
                       lambda name, args: execute(name, args, ctx), "guided:branch-zones", date(2026, 11, 24))
    state: dict = {}
    for said in ("hi", "1"):
        reply, state = guided.answer(turn, state, said)
    assert reply.startswith("Which day for Colour?") and "1 Tuesday 24 November" in reply
    reply, state = guided.answer(turn, state, "1")
    assert "Which time on Tuesday 24 November?" in reply and "1 09:00" in reply
    reply, state = guided.answer(turn, state, "1")
    assert "Book Colour on Tuesday 24 November at 9 am for Eve Park?" in reply
    reply, state = guided.answer(turn, state, "1")
    assert reply.startswith("Booked: Colour on Tuesday 24 November at 9 am.")


def test_staff_calendars_are_read_and_written_in_the_branchs_zone(service, make_business, session_factory, clock):
    """An all-day event in Raj's calendar is Pune's whole day; his bookings go into it in Pune's time."""
    business = make_business(coasts(step=30))
    calendar_id = add_calendar(SqlAlchemyUnitOfWork(session_factory), business, "raj", "https://cal.example/raj/")
    booked = service.book(business, BookingCreate(service="cut", starts_at=datetime(2026, 11, 24, 10, tzinfo=PUNE),
                                                  location="pune", customer=CustomerIn(name="Asha", phone="+919800000001")))
    with session_factory() as s:
        lease = lease_of(s, s.get_one(ExternalCalendar, calendar_id), clock.now + timedelta(minutes=1))
        assert lease.source.zone == PUNE
        raj = s.scalars(select(Resource).where(Resource.business_id == business, Resource.key == "raj")).one()
        row = s.get_one(Booking, booked.booking.id)
        assert event_of(s, row, raj, s.get_one(Business, business)).zone == "Asia/Kolkata"


# --- a plan's grid and fair days are its branch's -----------------------------------------------------------


def test_a_branchs_hourly_starts_are_on_its_own_hours_named_or_not(service, make_business):
    ctx = tools(service, make_business(coasts()))
    found = execute("find_available_slots", {"service": "cut", "date": "2026-11-24", "location": "pune"}, ctx)
    assert found.data["slots"][0]["starts_at"] == "2026-11-24T09:00:00+05:30"  # not 09:30
    every = execute("find_available_slots", {"service": "cut", "date": "2026-11-24"}, ctx)
    assert "2026-11-24T09:00:00+05:30" in [s["starts_at"] for s in every.data["slots"]]
    booked = execute("book_appointment", {"service": "cut", "starts_at": "2026-11-24T09:00:00+05:30",
                                          "customer_name": "Asha", "phone": "+919800000199"}, ctx)
    assert booked.ok and "with Raj at Pune on Tuesday 24 November at 9 am" in booked.data["say"]  # no branch named
    off = execute("book_appointment", {"service": "cut", "starts_at": "2026-11-24T09:15:00+05:30",
                                       "customer_name": "Asha", "phone": "+919800000198"}, ctx)
    assert not off.ok and off.data["error"]["code"] == "off_slot_step"  # on no branch's grid


def test_least_booked_day_counts_the_branchs_own_days(service, make_business):
    config = coasts(step=30, assignment={"strategy": "least_booked_day"})
    config["resources"].append({"key": "dev", "name": "Dev", "kind": "staff", "location": "pune"})
    config["services"][0]["requires"][0]["one_of"].append("dev")
    business = make_business(config)

    def book(hour: int, **more: object):
        return service.book(business, BookingCreate(
            service="cut", starts_at=datetime(2026, 11, 24, hour, tzinfo=PUNE), location="pune",
            customer=CustomerIn(name="Asha", phone=f"+9198000001{hour:02d}"), **more)).booking

    book(11, resources=["raj"])  # Pune's Tuesday; New York's Tuesday too (00:30)
    assert [r.key for r in book(10).resources] == ["dev"]  # Raj has one that Tuesday (New York: Monday 23:30)
