"""Recurring series: "every Tuesday at 10 for 6 weeks" in one request, all or none or occurrence by occurrence
(with the nearest free time for a taken one), cancelled or moved from one occurrence onwards; each occurrence a
normal booking with its reminders; racing series never leave a partial all-or-none one."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from nextslot.core.results import Booked, Rejected, SeriesBooked, SeriesChanged, SlotTaken
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    CustomerIn,
    SeriesCreate,
    SeriesRule,
    SlotQuery,
)
from nextslot.storage.tables import Booking, Notification
from tests.storage.test_races import assert_invariant, book_job, flat, race

TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # London = UTC in winter


def salon() -> dict:
    return {
        "business": {"slug": "salon", "name": "Salon", "timezone": "Europe/London", "country": "GB"},
        "hours": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "resources": [{"key": "ana", "name": "Ana", "kind": "staff"}],
        "services": [{"key": "cut", "name": "Cut", "duration": 30, "step": 30, "min_notice": 0,
                      "horizon_days": 200, "requires": [{"label": "stylist", "one_of": ["ana"]}]}],
    }


def series(service, business, mode="all_or_none", count=6, start=TUESDAY_10, n=1, **kw):
    return service.book_series(business, SeriesCreate(
        service="cut", starts_at=start, mode=mode, repeat=SeriesRule(count=count, **kw),
        customer=CustomerIn(name=f"Regular {n}", phone=f"+44791114{n:04d}"), idempotency_key=None))


def block(service, business, start, n=99):
    made = service.book(business, BookingCreate(service="cut", starts_at=start,
                                                customer=CustomerIn(name="Other", phone=f"+44791115{n:04d}")))
    assert isinstance(made, Booked)
    return made.booking


def test_every_tuesday_for_six_weeks_is_six_bookings_with_their_reminders_and_one_confirmation(
        service, make_business, session_factory):
    business = make_business(salon())
    result = series(service, business)
    assert isinstance(result, SeriesBooked) and result.series.complete and result.series.series_id
    starts = [o.booking.starts_at.utc for o in result.series.occurrences]
    assert starts == [TUESDAY_10 + timedelta(weeks=i) for i in range(6)]
    assert {o.booking.series_id for o in result.series.occurrences} == {result.series.series_id}
    with session_factory() as s:
        ids = [o.booking.id for o in result.series.occurrences]
        kinds = dict(s.execute(select(Notification.kind, func.count()).where(Notification.booking_id.in_(ids))
                               .group_by(Notification.kind)).all())
    assert kinds == {"confirmation": 1, "reminder": 12}  # 24 h and 2 h before each occurrence


def test_all_or_none_books_nothing_when_one_week_is_taken_and_says_which(service, make_business, session_factory):
    business = make_business(salon())
    taken = block(service, business, TUESDAY_10 + timedelta(weeks=2))
    result = series(service, business)
    assert result.series.series_id is None and not result.series.complete
    outcomes = [o.outcome for o in result.series.occurrences]
    assert outcomes == ["not_booked", "not_booked", "taken", "not_booked", "not_booked", "not_booked"]
    assert result.series.occurrences[2].alternatives  # the nearest openings that week
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Booking).where(
            Booking.business_id == business, Booking.id != taken.id)) == 0


def test_skip_taken_books_the_free_weeks_and_nearest_free_moves_the_taken_one_within_the_day(
        service, make_business):
    business = make_business(salon())
    block(service, business, TUESDAY_10 + timedelta(weeks=1), 1)
    skipped = series(service, business, "skip_taken", count=3, n=2)
    assert [o.outcome for o in skipped.series.occurrences] == ["booked", "taken", "booked"]
    assert skipped.series.series_id and not skipped.series.complete
    other = make_business(salon())
    block(service, other, TUESDAY_10 + timedelta(weeks=1), 3)
    nearest = series(service, other, "nearest_free", count=3, n=4)
    moved = nearest.series.occurrences[1]
    assert moved.outcome == "moved" and moved.booking.starts_at.utc == TUESDAY_10 + timedelta(weeks=1, minutes=30)
    assert nearest.series.complete


def test_a_series_keeps_its_wall_time_across_the_clock_change(service, make_business):
    business = make_business(salon())
    march = datetime(2027, 3, 23, 10, 0, tzinfo=UTC)  # Tuesday; the UK goes to summer time on 28 March
    result = series(service, business, count=2, start=march)
    assert [o.booking.starts_at.business_local.hour for o in result.series.occurrences] == [10, 10]
    assert [o.booking.starts_at.utc.hour for o in result.series.occurrences] == [10, 9]


def night_desk(zone: str, step: int) -> dict:
    """Open around the clock, so only the clocks and the slot step decide where a series lands."""
    return {
        "business": {"slug": "night", "name": "Night desk", "timezone": zone, "country": "AU"},
        "hours": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "resources": [{"key": "ana", "name": "Ana", "kind": "staff"}],
        "services": [{"key": "cut", "name": "Cut", "duration": step, "step": step, "min_notice": 0,
                      "horizon_days": 200, "requires": [{"label": "stylist", "one_of": ["ana"]}]}],
    }


# (zone, step, a Sunday a week before the clocks skip the series' wall time, that wall time, where the grid
# resumes after the jump): Lord Howe jumps 02:00 -> 02:30, Santiago skips midnight (00:00 -> 01:00)
SKIPPED_WEEKLY = [
    ("Australia/Lord_Howe", 60, datetime(2026, 9, 27), (2, 0), (3, 0)),
    ("America/Santiago", 45, datetime(2026, 8, 30), (0, 0), (1, 30)),
]


@pytest.mark.parametrize(("zone", "step", "sunday", "wall", "resumes"), SKIPPED_WEEKLY)
def test_a_week_whose_wall_time_the_clocks_skip_takes_the_next_start_on_the_grid(
        service, make_business, clock, zone, step, sunday, wall, resumes):
    here = ZoneInfo(zone)
    clock.now = (sunday - timedelta(days=7)).replace(tzinfo=here)
    business = make_business(night_desk(zone, step))
    first = sunday.replace(hour=wall[0], minute=wall[1], tzinfo=here)
    gap_day = (sunday + timedelta(weeks=1)).replace(tzinfo=here)
    offered = service.find_slots(business, SlotQuery(service="cut", starts_from=gap_day,
                                                     until=gap_day + timedelta(hours=4), limit=20)).slots
    result = series(service, business, count=3, start=first)
    assert result.series.complete, [(o.outcome, o.problem_code) for o in result.series.occurrences]
    assert result.series.occurrences[1].booking.starts_at.utc in [o.starts_at.utc for o in offered]
    local = [o.booking.starts_at.utc.astimezone(here) for o in result.series.occurrences]
    assert [(t.day, t.hour, t.minute) for t in local] == [
        (first.day, *wall), ((sunday + timedelta(weeks=1)).day, *resumes), ((sunday + timedelta(weeks=2)).day, *wall)]
    assert [o.requested.utc for o in result.series.occurrences] == [o.booking.starts_at.utc
                                                                    for o in result.series.occurrences]


@pytest.mark.parametrize(("zone", "step", "sunday", "wall", "resumes"), SKIPPED_WEEKLY)
def test_moving_a_series_onto_a_wall_time_the_clocks_skip_takes_the_next_start_on_the_grid(
        service, make_business, clock, zone, step, sunday, wall, resumes):
    here = ZoneInfo(zone)
    clock.now = (sunday - timedelta(days=7)).replace(tzinfo=here)
    business = make_business(night_desk(zone, step))
    made = series(service, business, count=3, start=sunday.replace(hour=9, tzinfo=here))  # 09:00 is on both grids
    codes = [o.booking.code for o in made.series.occurrences]
    moved = service.move_series(business, BookingReschedule(
        code=codes[0], starts_at=sunday.replace(hour=wall[0], minute=wall[1], tzinfo=here)))
    assert isinstance(moved, SeriesChanged), moved
    local = [v.starts_at.utc.astimezone(here) for v in moved.bookings]
    assert [(t.hour, t.minute) for t in local] == [wall, resumes, wall]


def test_a_week_with_no_start_left_after_the_jump_is_refused_like_any_other(service, make_business, clock):
    sofia = ZoneInfo("Europe/Sofia")  # 1979-03-31 23:00 -> 1 April 00:00: the jump is the next day's midnight
    clock.now = datetime(1979, 3, 20, tzinfo=sofia)
    business = make_business(night_desk("Europe/Sofia", 60))
    result = series(service, business, "skip_taken", count=3, start=datetime(1979, 3, 24, 23, tzinfo=sofia))
    assert [o.outcome for o in result.series.occurrences] == ["booked", "refused", "booked"]
    assert result.series.occurrences[1].problem_code == "nonexistent_local_time"
    other = make_business(night_desk("Europe/Sofia", 60))
    made = series(service, other, count=2, start=datetime(1979, 3, 24, 22, tzinfo=sofia))
    moved = service.move_series(other, BookingReschedule(code=made.series.occurrences[0].booking.code,
                                                         starts_at=datetime(1979, 3, 24, 23, tzinfo=sofia)))
    assert isinstance(moved, Rejected) and moved.code == "nonexistent_local_time"


def test_a_series_is_cancelled_from_one_occurrence_onwards(service, make_business):
    business = make_business(salon())
    made = series(service, business, count=4)
    third = made.series.occurrences[2].booking
    done = service.cancel_series(business, BookingChange(code=third.code, source="staff"))
    assert isinstance(done, SeriesChanged) and [v.status for v in done.bookings] == ["cancelled"] * 2
    statuses = [service.get_booking(business, o.booking.code).status for o in made.series.occurrences]
    assert statuses == ["booked", "booked", "cancelled", "cancelled"]
    single = block(service, business, TUESDAY_10 + timedelta(days=1))
    refused = service.cancel_series(business, BookingChange(code=single.code))
    assert isinstance(refused, Rejected) and refused.code == "not_a_series"


def test_a_series_moves_from_one_occurrence_onwards_all_or_none(service, make_business):
    business = make_business(salon())
    made = series(service, business, count=4)
    codes = [o.booking.code for o in made.series.occurrences]
    blocked = block(service, business, TUESDAY_10 + timedelta(weeks=3, days=1, hours=1))  # week 4's new time
    wednesday_11 = TUESDAY_10 + timedelta(weeks=1, days=1, hours=1)
    taken = service.move_series(business, BookingReschedule(code=codes[1], starts_at=wednesday_11))
    assert isinstance(taken, SlotTaken) and taken.requested == blocked.starts_at.utc
    assert [service.get_booking(business, c).starts_at.utc for c in codes] == [
        TUESDAY_10 + timedelta(weeks=i) for i in range(4)]  # nothing moved
    service.cancel(business, BookingChange(code=blocked.code, source="staff"))
    moved = service.move_series(business, BookingReschedule(code=codes[1], starts_at=wednesday_11))
    assert isinstance(moved, SeriesChanged)
    assert [v.starts_at.utc for v in moved.bookings] == [wednesday_11 + timedelta(weeks=i) for i in range(3)]
    assert service.get_booking(business, codes[0]).starts_at.utc == TUESDAY_10


def test_a_series_with_a_retried_key_is_booked_once(service, make_business):
    business = make_business(salon())
    cmd = SeriesCreate(service="cut", starts_at=TUESDAY_10, repeat=SeriesRule(count=3),
                       customer=CustomerIn(name="Once", phone="+447911140500"), idempotency_key="series-once")
    first, again = service.book_series(business, cmd), service.book_series(business, cmd)
    assert again.replayed and again.series == first.series


@pytest.mark.storage
def test_racing_all_or_none_series_leave_one_whole_series_and_no_partial_one(
        engine, database_url, make_business, service):
    business = make_business(salon())
    jobs = [[book_job(business, "cut", TUESDAY_10 + timedelta(weeks=n % 2), 800 + n)
             | {"op": "series", "mode": "all_or_none", "count": 4}] for n in range(6)]
    outcomes = flat(race(engine, database_url, jobs))
    assert all(o["type"] == "SeriesBooked" for o in outcomes), outcomes
    whole = [o for o in outcomes if o["series_id"] is not None]
    assert len(whole) == 1 and whole[0]["complete"], outcomes  # they all overlap: one wins every week
    assert all(set(o["outcomes"]) <= {"taken", "not_booked"} for o in outcomes if o["series_id"] is None)
    assert_invariant(engine, business)
    with engine.connect() as conn:
        counts = conn.execute(text("select series_id, count(*) from bookings where business_id = :b "
                                   "group by series_id"), {"b": business}).all()
    assert [n for _, n in counts] == [4]


def test_agents_book_a_series_and_cancel_or_move_it_from_one_occurrence_onwards(service, make_business):
    from nextslot.tools.context import ToolContext
    from nextslot.tools.registry import execute
    business = make_business(salon())
    block(service, business, TUESDAY_10 + timedelta(weeks=1), 7)
    ctx = ToolContext(service=service, business_id=business, channel="vapi", caller_phone="+447911140700")
    asked = {"service": "cut", "first_starts_at": TUESDAY_10.isoformat(), "count": 3, "customer_name": "Gil"}
    none = execute("book_series", asked, ctx)
    assert none.ok and none.data["outcome"] == "not_booked" and none.data["series_id"] is None
    assert none.data["say"].startswith("I couldn't book the series: Tuesday 1 December at 10 am is not free, so "
                                       "nothing was booked.")
    made = execute("book_series", asked | {"mode": "nearest_free"}, ctx)
    assert made.ok and made.data["outcome"] == "booked", made.data
    assert "Tuesday 1 December at 10 am was taken, so that one is Tuesday 1 December at 10:30 am" in made.data["say"]
    codes = [o["appointment"]["code"] for o in made.data["occurrences"]]
    moved = execute("reschedule_appointment", {"code": codes[1], "new_starts_at": "2026-12-02T11:00:00+00:00",
                                               "and_later": True}, ctx)
    assert moved.ok and moved.data["outcome"] == "rescheduled" and len(moved.data["later"]) == 1
    assert moved.data["later"][0]["starts_at"] == "2026-12-09T11:00:00+00:00"
    cancelled = execute("cancel_appointment", {"code": codes[1], "and_later": True}, ctx)
    assert cancelled.ok and cancelled.data["say"] == ("Your Cut on Wednesday 2 December at 11 am and the 1 after it "
                                                      "are cancelled.")
    assert service.get_booking(business, codes[0]).status == "booked"
