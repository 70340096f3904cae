"""Staff calendars over CalDAV: a real Radicale server on loopback, the real booking service on PostgreSQL."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import caldav
import pytest
from sqlalchemy import func, select

from nextslot.core.calendar_sync import Synced, SyncFailed, add_calendar, busy_intervals, sync_all, sync_calendar
from nextslot.core.results import Rejected, Slots, SlotTaken
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.storage.tables import Business, ExternalBusy, ExternalCalendar
from nextslot.storage.uow import SqlAlchemyUnitOfWork

MON = datetime(2026, 11, 23, tzinfo=UTC)  # London is on UTC in winter; Dr Okafor works 10:00-18:00
LONDON = ZoneInfo("Europe/London")


def at(hour: int, minute: int = 0, day: datetime = MON) -> datetime:
    return day + timedelta(hours=hour, minutes=minute)


class Radicale:
    """A Radicale CalDAV server in a child process on a free loopback port, no authentication."""

    def __init__(self, folder: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--server-hosts", f"127.0.0.1:{self.port}",
             "--storage-filesystem-folder", str(folder), "--auth-type", "none", "--logging-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("radicale did not start")
                time.sleep(0.05)

    def calendar(self, user: str, name: str) -> caldav.Calendar:
        client = caldav.DAVClient(url=self.url, username=user, password="any")
        return client.principal().make_calendar(name=name, cal_id=name)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def radicale(tmp_path) -> Iterator[Radicale]:
    server = Radicale(tmp_path / "radicale")
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


@pytest.fixture
def work(radicale) -> caldav.Calendar:
    return radicale.calendar("okafor", "work")


def register(uow, clinic: int, work: caldav.Calendar) -> int:
    calendar_id = add_calendar(uow, clinic, "dr-okafor", str(work.url), "okafor", "secret")
    assert isinstance(calendar_id, int), calendar_id
    return calendar_id


def okafor_starts(service, clinic: int, day: datetime = MON) -> set[datetime]:
    found = service.find_slots(clinic, SlotQuery(service="consultation", resources=["dr-okafor"],
                                                 starts_from=at(10, day=day), until=at(18, day=day), limit=100))
    assert isinstance(found, Slots), found
    return {s.starts_at.utc for s in found.slots}


def book_okafor(service, clinic: int, start: datetime):
    return service.book(clinic, BookingCreate(service="consultation", starts_at=start, resources=["dr-okafor"],
                                              customer=CustomerIn(name="Ada", phone="+447911123456")))


# --- against a real CalDAV server ----------------------------------------------------------------


def test_busy_time_on_the_staff_calendar_is_not_offered_and_cannot_be_booked(
    service, clinic, work, uow, session_factory, clock
):
    work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    assert okafor_starts(service, clinic) >= {at(10, 45), at(11), at(11, 45)}  # before the sync: free
    calendar_id = register(uow, clinic, work)

    assert sync_calendar(session_factory, calendar_id, clock.now) == Synced(calendar_id, 1)

    starts = okafor_starts(service, clinic)
    # a 20-minute consultation plus 5 minutes' buffer may not touch 11:00-12:00
    assert not starts & {at(10, 45), at(11), at(11, 15), at(11, 30), at(11, 45)}
    assert {at(10, 30), at(12)} <= starts
    assert isinstance(book_okafor(service, clinic, at(11)), SlotTaken)
    with session_factory() as s:
        calendar = s.get(ExternalCalendar, calendar_id)
        assert (calendar.last_synced_at, calendar.last_error, calendar.last_error_at) == (clock.now, None, None)


def test_moving_then_deleting_the_event_changes_availability_at_the_next_sync(
    service, clinic, work, uow, session_factory, clock
):
    event = work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    calendar_id = register(uow, clinic, work)
    sync_calendar(session_factory, calendar_id, clock.now)
    assert at(11) not in okafor_starts(service, clinic)

    event.icalendar_component["DTSTART"].dt = at(14)
    event.icalendar_component["DTEND"].dt = at(15)
    event.save()
    sync_calendar(session_factory, calendar_id, clock.now)
    starts = okafor_starts(service, clinic)
    assert at(11) in starts and at(14) not in starts

    event.delete()
    assert sync_calendar(session_factory, calendar_id, clock.now) == Synced(calendar_id, 0)
    assert {at(11), at(14)} <= okafor_starts(service, clinic)


def test_a_failed_sync_records_the_error_and_keeps_the_time_blocked(
    service, clinic, work, radicale, uow, session_factory, clock
):
    work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    calendar_id = register(uow, clinic, work)
    sync_calendar(session_factory, calendar_id, clock.now)
    radicale.stop()
    clock.now += timedelta(minutes=5)

    failed = sync_calendar(session_factory, calendar_id, clock.now)

    assert isinstance(failed, SyncFailed) and failed.error
    with session_factory() as s:
        calendar = s.get(ExternalCalendar, calendar_id)
        assert calendar.last_error == failed.error and calendar.last_error_at == clock.now
        assert calendar.last_synced_at == clock.now - timedelta(minutes=5)
    assert at(11) not in okafor_starts(service, clinic)
    assert isinstance(book_okafor(service, clinic, at(11)), SlotTaken)


def test_recurring_all_day_and_free_events_are_read_as_the_calendar_means_them(
    service, clinic, work, uow, session_factory, clock
):
    work.save_event(dtstart=at(10), dtend=at(11), summary="Ward round", uid="round", rrule={"FREQ": "WEEKLY"})
    work.save_event(dtstart=date(2026, 11, 25), dtend=date(2026, 11, 26), summary="Conference", uid="conf")
    work.save_event(dtstart=at(15), dtend=at(16), summary="Maybe", uid="maybe", transp="TRANSPARENT")
    calendar_id = register(uow, clinic, work)

    sync_calendar(session_factory, calendar_id, clock.now)

    next_monday = MON + timedelta(days=7)
    assert at(10, day=next_monday) not in okafor_starts(service, clinic, next_monday)  # the rule, expanded
    assert at(11, day=next_monday) in okafor_starts(service, clinic, next_monday)
    assert okafor_starts(service, clinic, MON + timedelta(days=2)) == set()  # Wednesday: away all day
    assert at(15) in okafor_starts(service, clinic)  # marked free


def test_sync_all_goes_on_past_a_broken_calendar(service, clinic, work, uow, session_factory, clock):
    broken = add_calendar(uow, clinic, "dr-okafor", "http://127.0.0.1:9/nothing/")
    good = register(uow, clinic, work)
    results = {r.calendar_id: r for r in sync_all(session_factory, clock.now)}
    assert isinstance(results[broken], SyncFailed) and results[good] == Synced(good, 0)


def test_caldav_command_registers_and_syncs_a_calendar(database_url, clinic, work, session_factory):
    from tests.server.test_cli import nextslot

    work.save_event(dtstart=datetime.now(UTC) + timedelta(days=1), dtend=datetime.now(UTC) + timedelta(days=1, hours=1),
                    summary="Dentist", uid="dentist")
    with session_factory() as s:
        slug = s.get(Business, clinic).slug
    made = nextslot(database_url, "caldav", slug, "dr-okafor", str(work.url), "--username", "okafor",
                    "--password", "secret")
    assert made.returncode == 0, made.stderr
    answer = json.loads(made.stdout)
    assert answer["synced"] and answer["busy_intervals"] == 1
    with session_factory() as s:
        assert s.scalar(select(func.count()).where(ExternalBusy.calendar_id == answer["id"])) == 1
    refused = nextslot(database_url, "caldav", slug, "dr-who", str(work.url))
    assert refused.returncode == 2 and json.loads(refused.stderr)["error"] == "unknown_resource"


# --- registering and reading events (no server) --------------------------------------------------


def test_registering_refuses_an_unknown_resource_or_a_url_that_is_not_http(session_factory, clinic):
    uow = SqlAlchemyUnitOfWork(session_factory)
    assert add_calendar(uow, clinic, "dr-who", "https://cal.example/x/").code == "unknown_resource"
    refused = add_calendar(uow, clinic, "dr-okafor", "ftp://cal.example/x/")
    assert isinstance(refused, Rejected) and refused.code == "invalid_url"


def event(body: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", "UID:x", body, "END:VEVENT",
             "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


WINDOW = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))


def test_an_all_day_event_blocks_the_whole_local_day_in_the_resources_zone():
    found = busy_intervals([event("DTSTART;VALUE=DATE:20260615\r\nDTEND;VALUE=DATE:20260616")], LONDON, WINDOW)
    assert found == [(datetime(2026, 6, 14, 23, tzinfo=UTC), datetime(2026, 6, 15, 23, tzinfo=UTC))]  # summer time


def test_floating_times_are_local_and_overlapping_events_merge():
    found = busy_intervals([event("DTSTART:20260615T090000\r\nDTEND:20260615T100000"),
                            event("DTSTART:20260615T083000Z\r\nDURATION:PT2H")], LONDON, WINDOW)
    assert found == [(datetime(2026, 6, 15, 8, tzinfo=UTC), datetime(2026, 6, 15, 10, 30, tzinfo=UTC))]


def test_cancelled_and_transparent_events_block_nothing():
    found = busy_intervals([event("DTSTART:20260615T090000Z\r\nDTEND:20260615T100000Z\r\nSTATUS:CANCELLED"),
                            event("DTSTART:20260615T090000Z\r\nDTEND:20260615T100000Z\r\nTRANSP:TRANSPARENT")],
                           LONDON, WINDOW)
    assert found == []


def test_the_scheduler_syncs_calendars_at_the_configured_interval(service):
    from nextslot.reminders.scheduler import build_scheduler
    from nextslot.settings import Settings

    class Idle:  # the dispatcher's jobs are not under test here
        def give_up_waiting(self) -> None: ...

        def dispatch_due(self) -> int:
            return 0

    scheduler = build_scheduler(Settings(calendar_sync_minutes=7), service, Idle())
    job = scheduler.get_job("calendars")
    assert job.trigger.interval == timedelta(minutes=7)
