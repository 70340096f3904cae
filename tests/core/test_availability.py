"""Pure availability logic: buffers, DST, zones, capacity, exceptions, pools. No database."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from nextslot.core.booking.availability import (
    ResourceTimeline,
    ServiceRules,
    Slot,
    SlotProblem,
    WeeklyHours,
    assign,
    check_slot,
    find_open_slots,
    first_free_by_start,
    nearest,
    open_intervals,
)
from nextslot.core.booking.codes import ALPHABET, LENGTH, new_code, normalize_code, spoken_code
from nextslot.core.booking.grid import grid_starts
from nextslot.core.booking.intervals import crowded
from nextslot.core.instants import resolve_instant
from nextslot.core.results import Rejected
from nextslot.schemas.times import TimeView

LONDON, NEW_YORK, TOKYO = ZoneInfo("Europe/London"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")
EVERY_DAY = lambda start, end: [WeeklyHours(d, start, end) for d in range(7)]  # noqa: E731


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def rules(duration=30, before=0, after=0, step=15, notice=0, horizon=400, zone=LONDON) -> ServiceRules:
    return ServiceRules(timedelta(minutes=duration), timedelta(minutes=before), timedelta(minutes=after), step,
                        timedelta(minutes=notice), timedelta(days=horizon), zone)


def timeline(rid=1, hours=None, zone=LONDON, busy=(), capacity=1, window=None, closed=(), extra=()) -> ResourceTimeline:
    window = window or (utc(2026, 1, 1), utc(2028, 1, 1))
    opened = open_intervals(hours if hours is not None else EVERY_DAY(9 * 60, 17 * 60), zone, window,
                            extra_open=extra, closed=closed)
    return ResourceTimeline(rid, capacity, opened, list(busy))


def starts(slots: list[Slot], zone=LONDON) -> list[str]:
    return [s.starts_at.astimezone(zone).strftime("%H:%M") for s in slots]


NOW = utc(2026, 6, 1)


def day_slots(r: ServiceRules, groups, day: date, zone=LONDON) -> list[Slot]:
    """The slots of one local day, from its midnight to the next (23 or 25 hours on DST days)."""
    start = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    return find_open_slots(r, groups, (start, end), NOW)


# --- buffers ---------------------------------------------------------------------------------------


def test_buffers_are_work_time_so_the_day_starts_and_ends_inside_opening_hours():
    r = rules(duration=60, before=30, after=15, step=15)
    slots = day_slots(r, [[timeline()]], date(2026, 6, 3))
    assert starts(slots)[0] == "09:30"  # 30 min travel before, from 09:00
    assert starts(slots)[-1] == "15:45"  # 15:45 + 60 + 15 cleanup = 17:00


def test_a_buffer_overlapping_another_claim_blocks_the_slot():
    busy = [(utc(2026, 6, 3, 11, 0), utc(2026, 6, 3, 12, 0))]  # London is UTC+1 in June: 12:00-13:00 local
    r = rules(duration=30, after=15, step=15)
    offered = starts(day_slots(r, [[timeline(busy=busy)]], date(2026, 6, 3)))
    assert "11:15" in offered and "11:30" not in offered  # 11:30 + 30 + 15 runs into 12:00
    assert "13:00" in offered and "12:45" not in offered


# --- daylight saving -------------------------------------------------------------------------------


def test_spring_forward_wall_times_that_do_not_exist_are_not_offered():
    r = rules(duration=30, step=30, zone=NEW_YORK)
    t = timeline(hours=EVERY_DAY(0, 6 * 60), zone=NEW_YORK)
    slots = day_slots(r, [[t]], date(2027, 3, 14), NEW_YORK)  # 02:00 jumps to 03:00
    assert starts(slots, NEW_YORK) == ["00:00", "00:30", "01:00", "01:30", "03:00", "03:30", "04:00", "04:30",
                                       "05:00", "05:30"]
    assert len(slots) == 10  # 00:00-06:00 local is 5 real hours
    assert slots[4].starts_at == utc(2027, 3, 14, 7, 0)  # 03:00 EDT


def test_opening_hours_across_spring_forward_are_one_hour_shorter():
    opened = open_intervals(EVERY_DAY(0, 6 * 60), LONDON, (utc(2027, 3, 28), utc(2027, 3, 28, 12)))
    day = [(s, e) for s, e in opened if s.astimezone(LONDON).date() == date(2027, 3, 28)]
    assert sum((e - s for s, e in day), timedelta()) == timedelta(hours=5)


def test_fall_back_repeated_wall_times_are_offered_as_two_instants():
    r = rules(duration=30, step=30, zone=LONDON)
    t = timeline(hours=EVERY_DAY(0, 4 * 60))
    slots = day_slots(r, [[t]], date(2026, 10, 25))  # 02:00 BST falls back to 01:00 GMT
    assert starts(slots) == ["00:00", "00:30", "01:00", "01:30", "01:00", "01:30", "02:00", "02:30", "03:00",
                             "03:30"]
    assert len({s.starts_at for s in slots}) == 10  # 00:00-04:00 local is 5 real hours
    assert slots[2].starts_at == utc(2026, 10, 25, 0, 0) and slots[4].starts_at == utc(2026, 10, 25, 1, 0)


def test_a_service_across_fall_back_ends_one_real_hour_later():
    r = rules(duration=60, step=30, zone=NEW_YORK)
    t = timeline(hours=EVERY_DAY(0, 24 * 60), zone=NEW_YORK)
    start = utc(2026, 11, 1, 5, 30)  # 01:30 EDT, the first of the two 01:30s
    slot = check_slot(r, [[t]], start, NOW)
    assert slot.ends_at == utc(2026, 11, 1, 6, 30)
    assert slot.ends_at.astimezone(NEW_YORK).strftime("%H:%M %Z") == "01:30 EST"


def test_grid_starts_every_step_from_local_midnight_even_when_step_does_not_divide_the_hour():
    day = utc(2026, 6, 3) - timedelta(hours=1)  # local midnight in London summer time
    grid = grid_starts(45, LONDON, day, day + timedelta(hours=4))
    assert [g.astimezone(LONDON).strftime("%H:%M") for g in grid] == ["00:00", "00:45", "01:30", "02:15", "03:00",
                                                                      "03:45"]


# --- zones -------------------------------------------------------------------------------------------


def test_business_grid_and_resource_hours_in_different_zones_offer_only_the_overlap():
    r = rules(duration=60, step=60, zone=LONDON)
    tutor = timeline(hours=EVERY_DAY(9 * 60, 12 * 60), zone=NEW_YORK)  # 14:00-17:00 in London in winter
    offered = starts(day_slots(r, [[tutor]], date(2026, 12, 2)))
    assert offered == ["14:00", "15:00", "16:00"]


def test_times_are_rendered_for_business_and_customer_zones_and_spoken():
    view = TimeView.of(utc(2026, 11, 25, 8, 30), LONDON, TOKYO)
    assert view.business_local.isoformat() == "2026-11-25T08:30:00+00:00"
    assert view.customer_local.isoformat() == "2026-11-25T17:30:00+09:00"
    assert view.spoken == "Wednesday 25 November at 5:30 pm"
    assert TimeView.of(utc(2026, 11, 25, 12), LONDON).spoken == "Wednesday 25 November at 12 pm"
    assert TimeView.of(utc(2026, 11, 25, 0, 5), LONDON).spoken == "Wednesday 25 November at 12:05 am"


# --- capacity ----------------------------------------------------------------------------------------


def test_capacity_three_is_full_with_three_overlapping_claims_and_not_with_a_staggered_peak_of_two():
    nine = utc(2026, 6, 3, 8, 0)  # 09:00 London
    claim = lambda a, b: (nine + timedelta(minutes=a), nine + timedelta(minutes=b))  # noqa: E731
    full = timeline(capacity=3, busy=[claim(0, 60)] * 3)
    assert not full.fits(*claim(30, 90))
    staggered = timeline(capacity=3, busy=[claim(0, 30), claim(0, 30), claim(30, 60), claim(30, 60)])
    assert staggered.load(*claim(0, 60)) == 2 and staggered.fits(*claim(0, 60))
    assert timeline(capacity=1, busy=[claim(0, 30)]).fits(*claim(30, 60))  # back to back


intervals = st.lists(st.tuples(st.integers(0, 100), st.integers(1, 40)).map(lambda t: (t[0], t[0] + t[1])),
                     max_size=12)


@given(busy=intervals, probe=st.tuples(st.integers(0, 120), st.integers(1, 40)))
def test_peak_load_matches_a_minute_by_minute_count(busy, probe):
    base = utc(2026, 6, 3)
    at = lambda m: base + timedelta(minutes=m)  # noqa: E731
    t = ResourceTimeline(1, 5, [(at(0), at(1000))], [(at(a), at(b)) for a, b in busy])
    start, end = probe[0], probe[0] + probe[1]
    expected = max(sum(1 for a, b in busy if a <= m < b) for m in range(start, end))
    assert t.load(at(start), at(end)) == expected
    assert t.fits(at(start), at(end)) == (expected < 5)


# --- exceptions ----------------------------------------------------------------------------------------


def test_time_off_removes_a_day_and_splits_another_and_extra_hours_add_a_closed_day():
    r = rules(duration=60, step=60)
    off_day = (utc(2026, 6, 3, 0) - timedelta(hours=1), utc(2026, 6, 4) - timedelta(hours=1))
    dentist = (utc(2026, 6, 4, 11, 0), utc(2026, 6, 4, 13, 0))  # 12:00-14:00 local
    sunday_extra = (utc(2026, 6, 7, 9, 0), utc(2026, 6, 7, 11, 0))  # 10:00-12:00 local
    weekdays = [WeeklyHours(d, 9 * 60, 17 * 60) for d in range(5)]
    t = timeline(hours=weekdays, closed=[off_day, dentist], extra=[sunday_extra])
    assert day_slots(r, [[t]], date(2026, 6, 3)) == []
    assert starts(day_slots(r, [[t]], date(2026, 6, 4))) == ["09:00", "10:00", "11:00", "14:00", "15:00", "16:00"]
    assert starts(day_slots(r, [[t]], date(2026, 6, 7))) == ["10:00", "11:00"]


# --- pools ---------------------------------------------------------------------------------------------


def test_pools_take_the_first_free_member_and_never_use_one_resource_twice():
    nine = utc(2026, 6, 3, 8, 0)
    a, b = timeline(rid=1, busy=[(nine, nine + timedelta(minutes=30))]), timeline(rid=2)
    r = rules(duration=30, step=30)
    slot = check_slot(r, [[a, b], [a, b]], nine + timedelta(minutes=30), NOW)
    assert slot.resource_ids == (1, 2)  # listed order: a first, then b for the second requirement
    assert check_slot(r, [[a, b], [a, b]], nine, NOW) is SlotProblem.TAKEN  # only b free: can't fill both
    assert check_slot(r, [[a, b]], nine, NOW).resource_ids == (2,)


def test_an_earlier_pool_gives_way_so_a_later_pool_can_be_filled():
    a, b = timeline(rid=1), timeline(rid=2)
    slot = check_slot(rules(duration=30, step=30), [[a, b], [a]], utc(2026, 6, 3, 8, 0), NOW)
    assert slot.resource_ids == (2, 1)  # greedy "a first" would leave the second pool empty


def test_a_multi_resource_slot_needs_every_requirement_free():
    nine = utc(2026, 6, 3, 8, 0)
    doctor, room = timeline(rid=1), timeline(rid=2, busy=[(nine, nine + timedelta(hours=1))])
    r = rules(duration=30, step=30)
    offered = starts(day_slots(r, [[doctor], [room]], date(2026, 6, 3)))
    assert "09:00" not in offered and "09:30" not in offered and "10:00" in offered


busy_minutes = st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 120)).map(lambda t: (t[0], t[0] + t[1])),
                       max_size=10)


@given(pools=st.lists(st.lists(st.tuples(busy_minutes, st.sampled_from([1, 1, 2, 3])), min_size=1, max_size=3),
                      min_size=1, max_size=3),
       duration=st.integers(5, 90), before=st.integers(0, 20), after=st.integers(0, 20),
       step=st.sampled_from([5, 15, 30, 45]), zone=st.sampled_from([LONDON, NEW_YORK, TOKYO]))
def test_the_whole_grid_at_once_picks_what_assign_picks_start_by_start(pools, duration, before, after, step, zone):
    """Members with one place or several (a bay for three cars: free while fewer claims than places overlap)."""
    base = utc(2026, 3, 27)  # across London's and New York's DST weeks
    at = lambda m: base + timedelta(minutes=m)  # noqa: E731
    window = (base, base + timedelta(days=3))
    ids = iter(range(1, 100))
    groups = [[timeline(rid=next(ids), zone=zone, busy=[(at(a), at(b)) for a, b in claims], capacity=places,
                        window=window) for claims, places in pool] for pool in pools]
    r = rules(duration=duration, before=before, after=after, step=step, zone=zone)
    grid = grid_starts(step, zone, *window)
    assert first_free_by_start(r, groups, grid) == [assign(groups, r.occupied(s)) for s in grid]


@given(claims=st.lists(st.tuples(st.integers(0, 300), st.integers(1, 90)), max_size=12), depth=st.integers(1, 4))
def test_crowded_times_are_where_that_many_claims_overlap(claims, depth):
    at = lambda m: utc(2026, 6, 3) + timedelta(minutes=m)  # noqa: E731
    busy = [(at(a), at(a + n)) for a, n in claims]
    found = crowded(busy, depth)
    assert all(s < e for s, e in found) and all(a[1] < b[0] for a, b in zip(found, found[1:]))  # merged, in order
    for minute in range(0, 400):  # claims start and end on whole minutes: a minute's start says for all of it
        t = at(minute)
        inside = any(s <= t < e for s, e in found)
        assert inside == (sum(s <= t < e for s, e in busy) >= depth), minute


def test_check_slot_names_each_problem():
    r = rules(duration=30, after=15, step=15, notice=60, horizon=30)
    t = [[timeline(busy=[(utc(2026, 6, 3, 13), utc(2026, 6, 3, 14))])]]
    now = utc(2026, 6, 3, 8, 0)  # 09:00 London
    assert check_slot(r, t, utc(2026, 6, 3, 9, 5), now) is SlotProblem.OFF_GRID
    assert check_slot(r, t, utc(2026, 6, 3, 7, 0), now) is SlotProblem.IN_PAST
    assert check_slot(r, t, utc(2026, 6, 3, 8, 30), now) is SlotProblem.TOO_SOON
    assert check_slot(r, t, utc(2026, 7, 10, 9, 0), now) is SlotProblem.BEYOND_HORIZON
    assert check_slot(r, t, utc(2026, 6, 3, 15, 30), now) is SlotProblem.OUTSIDE_HOURS  # 16:30+45 > 17:00
    assert check_slot(r, t, utc(2026, 6, 3, 13, 0), now) is SlotProblem.TAKEN
    assert isinstance(check_slot(r, t, utc(2026, 6, 3, 15, 15), now), Slot)  # 16:15+45 = 17:00 exactly


def test_nearest_picks_the_closest_with_ties_to_the_later_in_time_order():
    target = utc(2026, 6, 3, 12)
    slots = [Slot(target + timedelta(minutes=m), target + timedelta(minutes=m + 30), (1,))
             for m in (-120, -30, 30, 45, 200)]
    picked = nearest(slots, target, 3)
    assert [int((s.starts_at - target).total_seconds() // 60) for s in picked] == [-30, 30, 45]


# --- instants and codes ------------------------------------------------------------------------------


def test_resolve_instant_reads_offsets_wall_times_and_refuses_what_is_unclear():
    assert resolve_instant(datetime(2026, 6, 3, 17, 0, tzinfo=ZoneInfo("Europe/Paris")), None, "t") == utc(2026, 6, 3, 15)
    assert resolve_instant(datetime(2026, 6, 3, 17, 0), "Europe/London", "t") == utc(2026, 6, 3, 16)
    codes = {
        (datetime(2026, 6, 3, 17), None): "missing_timezone",
        (datetime(2026, 6, 3, 17), "Europe/Nowhere"): "unknown_timezone",
        (datetime(2026, 6, 3, 17), "Europe"): "unknown_timezone",  # a tzdata folder, not a zone
        (datetime(2026, 6, 3, 17), "../etc/passwd"): "unknown_timezone",
        (datetime(2027, 3, 28, 1, 30), "Europe/London"): "nonexistent_local_time",
        (datetime(2026, 10, 25, 1, 30), "Europe/London"): "ambiguous_local_time",
    }
    for (value, zone), code in codes.items():
        result = resolve_instant(value, zone, "starts_at")
        assert isinstance(result, Rejected) and result.code == code and result.field in ("starts_at", "timezone")


def test_booking_codes_are_speakable_and_forgiving_to_type():
    code = new_code()
    assert len(code) == LENGTH and set(code) <= set(ALPHABET)
    assert normalize_code("k7m-4px") == normalize_code(" K7M 4PX ") == "K7M4PX"
    assert spoken_code("K7M4PX") == "K 7 M, 4 P X"
