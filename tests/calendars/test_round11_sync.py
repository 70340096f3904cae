"""Round 11: hostile or odd provider data read through the loopback fakes of Google and Microsoft Graph (the real
client libraries) and through Radicale (CalDAV), with the real booking service on PostgreSQL."""
from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from evals import fake_google
from evals.fake_google import FakeGoogle
from evals.fake_microsoft import FakeMicrosoft
from nextslot.calendars.busy_time import busy_intervals
from nextslot.calendars.connections import add_calendar
from nextslot.calendars.providers import build_registry
from nextslot.calendars.sync import Synced, SyncFailed, sync_calendar, window_for
from nextslot.calendars.writes import CalendarWriter
from nextslot.core.results import Slots, SlotTaken
from nextslot.schemas.commands import SlotQuery
from nextslot.storage.tables import Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.calendars import test_google, test_microsoft
from tests.calendars.test_sync import at, book_okafor, busy, okafor_starts, trusted


class HostileGoogle(FakeGoogle):
    """The fake Google, which can be told to page forever: `looping` answers of events.list carry one event and
    the same nextPageToken, then a normal last page."""

    looping = 0

    async def _list(self, request: Request) -> Response:
        if self.looping and request.query_params.get("pageToken") in (None, "again"):
            if (refused := self._authorized(request)) is not None:
                return refused
            self.looping -= 1
            item = {"id": f"loop{self.looping}", "status": "confirmed", "etag": '"1"',
                    "start": {"dateTime": at(11).isoformat()}, "end": {"dateTime": at(12).isoformat()}}
            return JSONResponse({"items": [item], "nextPageToken": "again"})
        if request.query_params.get("pageToken") == "again":  # the loop has ended: the last page
            return JSONResponse({"items": [], "nextSyncToken": f"sync-{next(self.seq)}"})
        return await super()._list(request)


class HostileMicrosoft(FakeMicrosoft):
    """The fake Graph, which can be told to page in circles: `looping` delta pages carry one event and the
    same nextLink, then a last page with a delta link."""

    looping = 0

    async def _delta(self, request: Request) -> Response:
        skip = request.query_params.get("$skiptoken")
        if self.looping and (skip == "again" or request.query_params.get("startDateTime")):
            if (refused := self._authorized(request)) is not None:
                return refused
            self.looping -= 1
            item = {"id": f"AAMkloop{self.looping}", "start": {"dateTime": "2026-11-23T11:00:00.0000000"},
                    "end": {"dateTime": "2026-11-23T12:00:00.0000000"}, "showAs": "busy"}
            return JSONResponse({"value": [item], "@odata.nextLink": f"{self.url}/v1.0/me/calendarView/delta"
                                                                     "?$skiptoken=again"})
        if skip == "again":
            state = [next(self.seq), "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"]
            token = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            return JSONResponse({"value": [], "@odata.deltaLink": f"{self.url}/v1.0/me/calendarView/delta"
                                                                  f"?$deltatoken={token}"})
        return await super()._delta(request)


@pytest.fixture(scope="module")
def microsoft_server() -> Iterator[HostileMicrosoft]:  # the conftest's `microsoft` empties it before each test
    with HostileMicrosoft() as fake:
        yield fake


@pytest.fixture
def hostile_microsoft(microsoft) -> Iterator[HostileMicrosoft]:
    yield microsoft
    microsoft.looping = 0


@pytest.fixture(scope="module")
def google_server() -> Iterator[HostileGoogle]:  # the conftest's `google` empties it before each test
    with HostileGoogle() as fake:
        yield fake


@pytest.fixture
def hostile_google(google) -> Iterator[HostileGoogle]:
    yield google
    google.looping = 0


@pytest.fixture
def microsoft_registry(microsoft):
    return build_registry(test_microsoft.settings_for(microsoft, calendar_push=False), test_microsoft.SECRET)


def staff_zone(session_factory, clinic: int, zone: str) -> None:
    """Dr Okafor works from another zone than the clinic's (London)."""
    with session_factory() as s:
        resource = s.get(Resource, test_google.okafor(session_factory, clinic))
        resource.timezone = zone
        s.commit()


# --- Google ----------------------------------------------------------------------------------------


def test_a_google_page_token_that_repeats_fails_the_sync_instead_of_paging_forever(
        hostile_google, google_registry, session_factory, clinic, clock):
    calendar_id = test_google.connect(hostile_google, google_registry, session_factory, clinic, clock())
    hostile_google.requests.clear()
    hostile_google.looping = 300  # before the fix: 300 requests (and 300 copies of one event) for one sync
    result = sync_calendar(session_factory, calendar_id, clock(), registry=google_registry)
    assert isinstance(result, SyncFailed) and "page" in result.error, result
    assert len(hostile_google.requests) <= 3
    assert busy(session_factory, calendar_id) == []  # nothing half-read was stored


def starts(service, clinic: int, a: datetime, b: datetime) -> set[datetime]:
    found = service.find_slots(clinic, SlotQuery(service="consultation", resources=["dr-okafor"], starts_from=a,
                                                 until=b, limit=100))
    assert isinstance(found, Slots), found
    return {s.starts_at.utc for s in found.slots}


def test_a_google_all_day_event_since_year_one_does_not_break_the_sync_east_of_utc(
        google, google_registry, service, session_factory, clinic, clock):
    """An invitation anyone can send: an all-day event "since year 1". Before the fix its first day overflowed
    in a zone east of UTC, so every sync of the calendar failed: no later busy time was ever read."""
    staff_zone(session_factory, clinic, "Asia/Tokyo")  # Dr Okafor works 10:00-18:00 Tokyo time
    google.add("Forever", "0001-01-01", "2026-11-26")  # until Thursday, Tokyo's day
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    result = sync_calendar(session_factory, calendar_id, clock(), registry=google_registry)
    assert isinstance(result, Synced), result
    tokyo_thursday = datetime(2026, 11, 25, 15, tzinfo=UTC)
    assert busy(session_factory, calendar_id) == [(window_for(clock())[0], tokyo_thursday)]  # within the window
    wed, fri = datetime(2026, 11, 25, 1, tzinfo=UTC), datetime(2026, 11, 27, 1, tzinfo=UTC)  # 10:00 in Tokyo
    assert starts(service, clinic, wed, wed + timedelta(hours=8)) == set()
    open_on_friday = starts(service, clinic, fri, fri + timedelta(hours=8))  # the clinic's hours, London's, cut
    assert open_on_friday  # Tokyo's day short
    assert isinstance(book_okafor(service, clinic, min(open_on_friday) - timedelta(days=2)), SlotTaken)


def test_a_google_time_before_utcs_year_one_does_not_break_the_clinics_slot_search(
        google, google_registry, service, session_factory, clinic, clock):
    """Year 1 at +14:00 is 1 BC in UTC: before the fix it was stored so, which PostgreSQL keeps but Python cannot
    load, and every slot search of the clinic failed."""
    google.add("Ancient", {"dateTime": "0001-01-01T00:00:00+14:00"}, {"dateTime": at(12).isoformat()})
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    assert busy(session_factory, calendar_id) == [(window_for(clock())[0], at(12))]
    found = okafor_starts(service, clinic)
    assert at(11) not in found and at(13) in found
    assert isinstance(book_okafor(service, clinic, at(11)), SlotTaken)


def test_a_google_time_without_an_offset_is_read_in_the_events_own_zone(
        google, google_registry, session_factory, clinic, clock, monkeypatch):
    """Google's dateTime needs an offset "unless a time zone is explicitly specified in timeZone"; such a time
    is the event's zone's wall time, not the staff member's."""
    monkeypatch.setattr(fake_google, "_parse", lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))
                        .replace(tzinfo=ZoneInfo("America/New_York")))  # the fake's own window filter
    google.add("Call with NY", {"dateTime": "2026-11-23T06:00:00", "timeZone": "America/New_York"},
               {"dateTime": "2026-11-23T07:00:00", "timeZone": "America/New_York"})
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]


def test_a_google_all_day_event_is_the_staff_members_own_day_not_the_clinics(
        google, google_registry, service, session_factory, clinic, clock):
    staff_zone(session_factory, clinic, "America/New_York")
    google.add("Day off", "2026-11-24", "2026-11-25")
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    assert busy(session_factory, calendar_id) == [(datetime(2026, 11, 24, 5, tzinfo=UTC),
                                                   datetime(2026, 11, 25, 5, tzinfo=UTC))]


def test_a_google_event_just_made_busy_is_taken_and_our_own_written_event_does_not_block_itself(
        google, google_registry, service, session_factory, clinic, clock):
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    booked = book_okafor(service, clinic, at(14))
    assert not isinstance(booked, SlotTaken)
    CalendarWriter(session_factory, google_registry, clock).write_due()
    assert [e["summary"] for e in google.live()]  # the booking is in the calendar now
    google.add("Dentist", at(11), at(12))
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]  # the written booking is no busy time
    assert isinstance(book_okafor(service, clinic, at(11)), SlotTaken)


# --- Microsoft Graph --------------------------------------------------------------------------------


def test_a_graph_time_in_a_windows_zone_is_read_in_that_zone(
        microsoft, microsoft_registry, session_factory, clinic, clock):
    """We ask Graph for UTC, but an answer in another zone (a Windows zone name, or an IANA one) must not be
    read as UTC."""
    microsoft.add("West coast call", {"dateTime": "2026-11-23T03:00:00.0000000", "timeZone": "Pacific Standard Time"},
                  {"dateTime": "2026-11-23T04:00:00.0000000", "timeZone": "Pacific Standard Time"})
    microsoft.add("Berlin call", {"dateTime": "2026-11-23T15:00:00.0000000", "timeZone": "Europe/Berlin"},
                  {"dateTime": "2026-11-23T16:00:00.0000000", "timeZone": "Europe/Berlin"})
    calendar_id = test_microsoft.connect(microsoft, microsoft_registry, session_factory, clinic, clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=microsoft_registry), Synced)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(14), at(15))]


def test_a_graph_all_day_event_from_year_one_does_not_break_the_sync(
        microsoft, microsoft_registry, service, session_factory, clinic, clock):
    staff_zone(session_factory, clinic, "Europe/Berlin")
    microsoft.add("Forever", {"dateTime": "0001-01-01T00:00:00.0000000", "timeZone": "UTC"},
                  {"dateTime": "2026-11-24T00:00:00.0000000", "timeZone": "UTC"}, isAllDay=True)
    calendar_id = test_microsoft.connect(microsoft, microsoft_registry, session_factory, clinic, clock())
    result = sync_calendar(session_factory, calendar_id, clock(), registry=microsoft_registry)
    assert isinstance(result, Synced), result
    berlin_tuesday = datetime(2026, 11, 23, 23, tzinfo=UTC)
    assert busy(session_factory, calendar_id) == [(window_for(clock())[0], berlin_tuesday)]
    assert okafor_starts(service, clinic) == set()


def test_a_graph_next_link_that_repeats_fails_the_sync_at_once(
        hostile_microsoft, microsoft_registry, session_factory, clinic, clock):
    calendar_id = test_microsoft.connect(hostile_microsoft, microsoft_registry, session_factory, clinic, clock())
    hostile_microsoft.requests.clear()
    hostile_microsoft.looping = 300  # before the fix: 300 requests for one sync (up to 1000)
    result = sync_calendar(session_factory, calendar_id, clock(), registry=microsoft_registry)
    assert isinstance(result, SyncFailed) and "page" in result.error, result
    assert len(hostile_microsoft.requests) <= 3
    assert busy(session_factory, calendar_id) == []


# --- CalDAV -----------------------------------------------------------------------------------------


POISON = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//attacker//EN\r
BEGIN:VEVENT\r
UID:{uid}\r
DTSTAMP:20260101T000000Z\r
{body}END:VEVENT\r
END:VCALENDAR\r
"""


def test_caldav_events_at_the_ends_of_time_neither_break_the_sync_nor_free_the_time_they_block(
        radicale, service, session_factory, clinic, clock):
    """Before the fix, any one of these made every sync of the calendar fail (OverflowError in the expansion),
    so no later change was ever read."""
    staff_zone(session_factory, clinic, "Europe/Berlin")
    work = radicale.calendar("okafor", f"work-{uuid.uuid4().hex[:8]}")
    work.save_event(POISON.format(uid="forever", body="DTSTART;VALUE=DATE:00010101\r\nDTEND;VALUE=DATE:20261124\r\n"))
    work.save_event(POISON.format(uid="late", body="DTSTART;VALUE=DATE:20261201\r\nDTEND;VALUE=DATE:99991231\r\n"))
    calendar_id = add_calendar(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-okafor", str(work.url),
                               allow_private=True, now=clock())
    result = sync_calendar(session_factory, calendar_id, clock(), connect=trusted)
    assert isinstance(result, Synced), result
    window = window_for(clock())
    assert busy(session_factory, calendar_id) == [
        (window[0], datetime(2026, 11, 23, 23, tzinfo=UTC)),  # Berlin's Tuesday
        (datetime(2026, 11, 30, 23, tzinfo=UTC), window[1]),  # and every day from Berlin's 1 December on
    ]
    assert okafor_starts(service, clinic) == set()


def test_a_google_busy_time_blocks_holds_and_moves_and_the_alternatives_offered_are_free(
        google, google_registry, service, session_factory, clinic, clock):
    from nextslot.core.results import Booked
    from nextslot.schemas.commands import BookingReschedule, HoldCreate

    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    booked = book_okafor(service, clinic, at(15))
    assert isinstance(booked, Booked), booked
    google.add("Dentist", at(11), at(12))
    google.add("School run", at(12, 30), at(14))
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=google_registry), Synced)
    busy_spans = [(at(11), at(12)), (at(12, 30), at(14))]
    taken = book_okafor(service, clinic, at(11, 15))
    assert isinstance(taken, SlotTaken)
    assert taken.alternatives
    for alternative in taken.alternatives:
        start, end = alternative.starts_at.utc, alternative.ends_at
        assert not any(start < b and end > a for a, b in busy_spans), alternative
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=at(13), resources=["dr-okafor"]))
    assert isinstance(held, SlotTaken), held
    moved = service.reschedule(clinic, BookingReschedule(code=booked.booking.code, starts_at=at(11, 45),
                                                         resources=["dr-okafor"]))
    assert isinstance(moved, SlotTaken), moved
    # the booking is written, so no later test's writer (with no Google configured) finds it waiting
    assert CalendarWriter(session_factory, google_registry, clock).write_due() == 1


def test_a_caldav_series_every_few_minutes_blocks_from_its_first_time_without_thousands_of_rows(
        radicale, service, session_factory, clinic, clock):
    """An invitation repeating every 5 minutes, forever, one second long: before the fix its ~27,000 occurrences
    in the window were each expanded (seconds of the scheduler's time; every SECONDLY one takes it for many
    minutes) and stored as as many busy rows. Now a series that dense blocks from its first time on."""
    work = radicale.calendar("okafor", f"work-{uuid.uuid4().hex[:8]}")
    work.save_event(POISON.format(uid="dense", body="DTSTART:20261123T130000Z\r\nDTEND:20261123T130001Z\r\n"
                                                    "RRULE:FREQ=MINUTELY;INTERVAL=5\r\n"))
    work.save_event(POISON.format(uid="hourly", body="DTSTART:20261123T100000Z\r\nDTEND:20261123T101000Z\r\n"
                                                     "RRULE:FREQ=HOURLY;COUNT=3\r\n"))
    calendar_id = add_calendar(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-okafor", str(work.url),
                               allow_private=True, now=clock())
    result = sync_calendar(session_factory, calendar_id, clock(), connect=trusted)
    assert isinstance(result, Synced), result
    assert busy(session_factory, calendar_id) == [
        (at(10), at(10, 10)), (at(11), at(11, 10)), (at(12), at(12, 10)),  # an ordinary series, expanded
        (at(13), window_for(clock())[1]),
    ]
    found = okafor_starts(service, clinic)
    assert at(10, 15) in found and not [s for s in found if s >= at(12, 45)]


def test_one_broken_calendar_object_does_not_stop_the_rest_of_the_calendar_from_blocking():
    """Radicale (and the caldav client) refuse these, but a CalDAV server that keeps what it is sent may hand them
    back: before the fix any one of them failed every sync of the whole calendar, so no new busy time was read."""
    window = window_for(datetime(2026, 11, 23, 8, tzinfo=UTC))
    broken = [
        "NOT ICAL AT ALL",
        POISON.format(uid="no-start", body="SUMMARY:a scheduling message\r\n"),
        POISON.format(uid="bad-date", body="DTSTART:20261345T110000Z\r\nDTEND:20261123T120000Z\r\n"),
        POISON.format(uid="bad-length", body="DTSTART:20261123T110000Z\r\nDURATION:PXYZ\r\n"),
        POISON.format(uid="bad-rule", body="DTSTART:20261123T130000Z\r\nDTEND:20261123T140000Z\r\n"
                                           "RRULE:FREQ=SOMETIMES\r\n"),
    ]
    good = POISON.format(uid="dentist", body="DTSTART:20261123T150000Z\r\nDTEND:20261123T160000Z\r\n")
    assert busy_intervals([*broken, good], ZoneInfo("Europe/London"), window) == [
        (at(13), at(14)),  # the series with a broken rule: its first time, as it stands
        (at(15), at(16)),
    ]
