"""Round 12: recurring series attacked where the earlier rounds did not go.

The occurrences' times, swept by hypothesis over every zone `zoneinfo` knows and every clock change it has from
2026 to 2029: a weekly or daily series whose wall time the clocks skip on one of its days (02:30 on Berlin's March
night, Lord Howe's half hour, the midnights Havana, Santiago and Asunción skip) or repeat. The series' limits over
the staff API and the agent tools (counts and intervals past them, a first start at the end of the years taken,
every occurrence past the service's horizon), and an idempotency key sent again with another series' body.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nextslot.core.booking.grid import grid_starts
from nextslot.core.booking.series import occurrence_starts
from nextslot.core.instants import wall_exists
from nextslot.core.results import Rejected, SeriesBooked
from nextslot.schemas.commands import CustomerIn, SeriesCreate, SeriesRule
from tests.server.staff_api.conftest import api, clinic, phone  # noqa: F401 - clients holding a business's key

STEP = 15  # minutes between grid starts


@cache
def changes() -> list[tuple[str, datetime, timedelta, timedelta]]:
    """Every clock change of every zone 2026-2029: (zone, the instant, the offset before, the offset after). Days are
    read a day apart (tzdata has no two changes in one day), each change then found to the second."""
    found = []
    for name in sorted(available_timezones()):
        zone = ZoneInfo(name)
        instant = datetime(2026, 1, 1, tzinfo=UTC)
        while instant.year < 2030:
            later = instant + timedelta(days=1)
            before, after = instant.astimezone(zone).utcoffset(), later.astimezone(zone).utcoffset()
            if before != after:
                assert before is not None and after is not None
                found.append((name, bisect_change(instant, later, zone), before, after))
            instant = later
    return found


@cache
def gaps() -> list[tuple[str, datetime, datetime]]:
    """Every spring-forward, as (zone, first skipped wall time, first wall time after)."""
    return [(name, walls - (after - before), walls) for name, jump, before, after in changes()
            if after > before and (walls := jump.astimezone(ZoneInfo(name)).replace(tzinfo=None))]


@cache
def folds() -> list[tuple[str, datetime, datetime]]:
    """Every fall-back, as (zone, first repeated wall time, the end of the repeat)."""
    return [(name, walls, walls + (before - after)) for name, jump, before, after in changes()
            if after < before and (walls := jump.astimezone(ZoneInfo(name)).replace(tzinfo=None, fold=0))]


def bisect_change(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (to the second) with the offset `high` has."""
    target = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def plan_in(zone: ZoneInfo) -> Any:
    """What `occurrence_starts` reads of a plan: the place's zone and the grid's step."""
    return SimpleNamespace(rules=SimpleNamespace(zone=zone, step_minutes=STEP))


def check_series(zone: ZoneInfo, first: datetime, every: str, interval: int, count: int) -> None:
    """Every occurrence on its own local day, at the first's wall time when that exists that day, else at the day's
    first grid start after the clocks' jump (refused only with no start left that day); in time order."""
    starts = occurrence_starts(first, SeriesRule(every=every, interval=interval, count=count), plan_in(zone))
    assert len(starts) == count and starts[0] == (first, None)
    local = first.astimezone(zone)
    wall = local.replace(tzinfo=None)
    step = timedelta(days=interval * (7 if every == "week" else 1))
    for i, (start, why) in enumerate(starts):
        day = local.date() + step * i
        wanted = datetime.combine(day, wall.time())
        if why is not None:
            assert why.code == "nonexistent_local_time" and not wall_exists(wanted, zone), (zone, first, i, why)
            assert not [s for s in day_grid(zone, day) if s.astimezone(zone).date() == day
                        and s.astimezone(zone).time() > wall.time()], (zone.key, first, i)
            continue
        shown = start.astimezone(zone)
        assert shown.date() == day, (zone.key, first, i, start)  # never a day early or late
        if wall_exists(wanted, zone):
            assert shown.replace(tzinfo=None) == wanted, (zone.key, first, i, start)
        else:  # the first grid start after the jump
            after = [s for s in day_grid(zone, day) if s.astimezone(zone).replace(tzinfo=None) > wanted
                     and s.astimezone(zone).date() == day]
            assert after and start == after[0], (zone.key, first, i, start, after[:2])
    instants = [s for s, why in starts if why is None]
    assert instants == sorted(instants) and len(set(instants)) == len(instants)


def day_grid(zone: ZoneInfo, day: date) -> list[datetime]:
    midnight = datetime.combine(day, time()).replace(tzinfo=zone).astimezone(UTC)
    return grid_starts(STEP, zone, midnight - timedelta(hours=3), midnight + timedelta(hours=30))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_occurrence_whose_wall_time_the_clocks_skip_takes_its_days_first_start_after_the_jump(data):
    name, skipped_from, skipped_to = data.draw(st.sampled_from(gaps()), label="gap")
    zone = ZoneInfo(name)
    minutes = int((skipped_to - skipped_from) / timedelta(minutes=1))
    into = data.draw(st.integers(0, minutes - 1), label="minutes into the gap")
    wall = skipped_from + timedelta(minutes=into)
    every = data.draw(st.sampled_from(["week", "day"]), label="every")
    interval = data.draw(st.integers(1, 3), label="interval")
    before = data.draw(st.integers(1, 3), label="occurrences before the gap's day")
    first_day = wall.date() - timedelta(days=interval * (7 if every == "week" else 1) * before)
    first_wall = datetime.combine(first_day, wall.time())
    if not wall_exists(first_wall, zone):
        return  # the first occurrence itself would be refused as a start
    first = first_wall.replace(tzinfo=zone).astimezone(UTC)
    check_series(zone, first, every, interval, before + 1 + data.draw(st.integers(0, 2), label="after"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_occurrence_on_a_night_the_clocks_go_back_keeps_the_wall_time_on_its_own_day(data):
    name, repeated_from, repeated_to = data.draw(st.sampled_from(folds()), label="fold")
    zone = ZoneInfo(name)
    minutes = max(int((repeated_to - repeated_from) / timedelta(minutes=1)), 1)
    wall = repeated_from + timedelta(minutes=data.draw(st.integers(0, minutes - 1), label="minutes into the repeat"))
    first_wall = datetime.combine(wall.date() - timedelta(days=7), wall.time())
    if not wall_exists(first_wall, zone):
        return
    check_series(zone, first_wall.replace(tzinfo=zone).astimezone(UTC), "week", 1, 3)


@pytest.mark.parametrize("name, skipped", [
    ("Europe/Berlin", "2026-03-29T02:30"), ("Australia/Lord_Howe", "2026-10-04T02:15"),
    ("America/Havana", "2026-03-08T00:00"), ("America/Santiago", "2026-09-06T00:30")])
def test_the_known_skipped_times_are_in_the_sweep_and_placed_after_the_jump(name, skipped):
    zone, wall = ZoneInfo(name), datetime.fromisoformat(skipped)
    if wall_exists(wall, zone):
        pytest.skip(f"this tzdata keeps {skipped} in {name}")  # rules change (Asunción's did in 2024)
    assert any(z == name and a <= wall < b for z, a, b in gaps())
    first = datetime.combine(wall.date() - timedelta(days=7), wall.time()).replace(tzinfo=zone).astimezone(UTC)
    check_series(zone, first, "week", 1, 3)


# --- a series' limits, on every channel -----------------------------------------------------------------------


SERIES_BODY = {"service": "consultation", "starts_at": "2026-11-24T10:00:00+00:00", "mode": "all_or_none",
               "customer": {"name": "Sam Series", "phone": phone(121)}, "repeat": {"every": "week", "count": 3}}


@pytest.mark.parametrize("change", [
    {"repeat": {"every": "week", "count": 0}}, {"repeat": {"every": "week", "count": 1}},
    {"repeat": {"every": "week", "count": 53}}, {"repeat": {"every": "week", "count": 10**30}},
    {"repeat": {"every": "week", "count": -5}}, {"repeat": {"every": "week", "count": 2.5}},
    {"repeat": {"every": "week", "count": "many"}}, {"repeat": {"every": "week", "count": float("inf")}},
    {"repeat": {"every": "fortnight", "count": 3}}, {"repeat": {"every": "week", "count": 3, "interval": 0}},
    {"repeat": {"every": "week", "count": 3, "interval": 9}}, {"repeat": {"every": "week", "count": 3,
                                                                           "until": "9999-12-31"}},
    {"repeat": None}, {"repeat": {}}, {"mode": "some"},
    {"starts_at": "9999-12-31T10:00:00+00:00"}, {"starts_at": "0001-01-01T10:00:00+00:00"},
    {"starts_at": "2026-11-24"}, {"starts_at": "2026-11-24T10:00:00", "timezone": "Mars/Olympus"},
], ids=lambda c: str(c)[:60])
def test_a_series_past_its_limits_is_a_field_error_on_the_staff_api(change, api, clinic):  # noqa: F811
    body = {**SERIES_BODY, **change}
    answer = api(clinic).post("/v1/bookings/series", content=pydantic_json(body),
                              headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 422), answer.text
    assert "Traceback" not in answer.text and answer.json()["error"]["code"]


def pydantic_json(body: dict[str, Any]) -> str:
    """JSON as a hostile client may send it (inf and NaN written out)."""
    import json
    return json.dumps(body, allow_nan=True)


def test_a_series_at_the_end_of_the_years_taken_is_refused_for_each_occurrence_not_a_500(
        api, clinic):  # noqa: F811
    # The first start is 2999-12-27, the last date a start may have; 52 occurrences every 8 weeks run into 3007,
    # past every date the core computes with. Each is out of the service's horizon: nothing booked, no 500.
    body = {**SERIES_BODY, "starts_at": "2999-12-27T10:00:00+00:00", "mode": "skip_taken",
            "repeat": {"every": "week", "count": 52, "interval": 8}}
    answer = api(clinic).post("/v1/bookings/series", json=body)
    assert answer.status_code in (200, 409, 422), answer.text
    if answer.status_code == 200:
        outcomes = {o["outcome"] for o in answer.json()["occurrences"]}
        assert outcomes == {"refused"} and answer.json()["series_id"] is None, answer.json()


def test_an_idempotency_key_sent_again_with_another_series_is_refused_and_the_same_one_replays(
        api, clinic, service):  # noqa: F811
    client = api(clinic)
    headers = {"Idempotency-Key": "series-key-r12"}
    first = client.post("/v1/bookings/series", json=SERIES_BODY, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/v1/bookings/series", json=SERIES_BODY, headers=headers)
    assert again.status_code in (200, 201) and again.json() == first.json()  # the first answer, nothing booked twice
    for other in ({**SERIES_BODY, "repeat": {"every": "week", "count": 4}},
                  {**SERIES_BODY, "repeat": {"every": "day", "count": 3}},
                  {**SERIES_BODY, "mode": "skip_taken"},
                  {**SERIES_BODY, "customer": {"name": "Sam Series", "phone": phone(122)}}):
        reused = client.post("/v1/bookings/series", json=other, headers=headers)
        assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused", reused.text
    single = client.post("/v1/bookings", json={k: v for k, v in SERIES_BODY.items() if k not in ("repeat", "mode")},
                         headers=headers)
    assert single.status_code == 422 and single.json()["error"]["code"] == "idempotency_key_reused", single.text
    made = service.book_series(clinic, SeriesCreate(
        service="consultation", starts_at=datetime.fromisoformat("2026-11-25T10:00:00+00:00"),
        repeat=SeriesRule(count=2), customer=CustomerIn(name="Sam Series", phone=phone(121)),
        idempotency_key="series-key-r12"))
    assert isinstance(made, Rejected) and made.code == "idempotency_key_reused", made
    assert not isinstance(made, SeriesBooked)
