"""Staff calendars over CalDAV: a real Radicale server on loopback, the real booking service on PostgreSQL.

Radicale offers both a sync-token (RFC 6578) and a ctag; what a sync sends is counted on the wire (the reader's
HTTP session), so "incremental" is measured in requests, not inferred.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import caldav
import pytest
from sqlalchemy import func, select, update

from nextslot.calendars.busy_time import busy_intervals
from nextslot.calendars.caldav import CollectionState, connect_caldav
from nextslot.calendars.connections import add_calendar
from nextslot.calendars.sync import (
    LEASE,
    AlreadySyncing,
    Superseded,
    Synced,
    SyncFailed,
    sync_all,
    sync_calendar,
    window_for,
)
from nextslot.core.results import Rejected, Slots, SlotTaken
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.storage.tables import Business, ExternalBusy, ExternalCalendar, ExternalEvent
from nextslot.storage.uow import SqlAlchemyUnitOfWork

MON = datetime(2026, 11, 23, tzinfo=UTC)  # London is on UTC in winter; Dr Okafor works 10:00-18:00
LONDON = ZoneInfo("Europe/London")
trusted = partial(connect_caldav, allow_private=True)  # Radicale runs on loopback, which a real sync refuses


def at(hour: int, minute: int = 0, day: datetime = MON) -> datetime:
    return day + timedelta(hours=hour, minutes=minute)


class Radicale:
    """A Radicale CalDAV server in a child process on a free loopback port, no authentication."""

    def __init__(self, folder: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.folder = folder
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--server-hosts", f"127.0.0.1:{self.port}",
             "--storage-filesystem-folder", str(self.folder), "--auth-type", "none", "--logging-level", "error"],
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
        client.mkcol(f"{self.url}{user}/", "")  # the user's home (405 once it is there)
        url = f"{self.url}{user}/{name}/"  # MKCALENDAR at once: caldav's principal discovery takes a second
        assert client.mkcalendar(url).status == 201
        return client.calendar(url=url)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def own_radicale(tmp_path) -> Iterator[Radicale]:
    """A server this test may stop."""
    server = Radicale(tmp_path / "radicale")
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


@pytest.fixture
def work(radicale) -> caldav.Calendar:
    return radicale.calendar("okafor", f"work-{uuid.uuid4().hex[:8]}")


class Wire:
    """Connects like the scheduler does and notes each HTTP request sent for one calendar: PROPFIND, or the
    REPORT's kind (sync_all also reads other tests' calendars that are due)."""

    def __init__(self, calendar_id: int) -> None:
        self.calendar_id = calendar_id
        self.sent: list[str] = []

    def __call__(self, source):
        reader = trusted(source)
        if source.id != self.calendar_id:
            return reader
        send = reader.client.session.request

        def noted(method, url, data=b"", **kwargs):
            body = data.decode() if isinstance(data, bytes) else str(data or "")
            kinds = [k for k in ("sync-collection", "calendar-query", "calendar-multiget") if k in body]
            self.sent.append(kinds[0] if method == "REPORT" and kinds else method)
            return send(method, url, data=data, **kwargs)

        reader.client.session.request = noted
        return reader


class Wrapped:
    """A real reader with some of its answers changed by a subclass."""

    def __init__(self, reader):
        self.reader = reader

    def __enter__(self):
        self.reader.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.__exit__(*exc)

    def __getattr__(self, name: str):
        return getattr(self.reader, name)


class Paused(Wrapped):
    """Having downloaded the events, waits to be told to go on (a slow run)."""

    def __init__(self, reader, downloaded: threading.Event, go_on: threading.Event):
        super().__init__(reader)
        self.downloaded, self.go_on = downloaded, go_on

    def bodies(self, hrefs):
        found = self.reader.bodies(hrefs)
        self.downloaded.set()
        assert self.go_on.wait(20)
        return found


class Hiding(Wrapped):
    """As if the server offered no sync-token, and a ctag only if `ctag`."""

    def __init__(self, reader, ctag: bool):
        super().__init__(reader)
        self.ctag = ctag

    def state(self) -> CollectionState:
        asked = self.reader.state()  # the request goes out; the answer lacks what the server does not offer
        return CollectionState(None, asked.ctag if self.ctag else None)


def register(uow, clinic: int, work: caldav.Calendar) -> int:
    calendar_id = add_calendar(uow, clinic, "dr-okafor", str(work.url), "okafor", "secret", allow_private=True)
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


def busy(session_factory, calendar_id: int) -> list[tuple[datetime, datetime]]:
    with session_factory() as s:
        rows = s.scalars(select(ExternalBusy.during).where(ExternalBusy.calendar_id == calendar_id))
        return sorted((r.lower, r.upper) for r in rows)


def stored(session_factory, calendar_id: int) -> ExternalCalendar:
    with session_factory() as s:
        return s.get(ExternalCalendar, calendar_id)


def move(event, start: datetime, end: datetime) -> None:
    event.icalendar_component["DTSTART"].dt = start
    event.icalendar_component["DTEND"].dt = end
    event.save()


# --- against a real CalDAV server ----------------------------------------------------------------


def test_busy_time_on_the_staff_calendar_is_not_offered_and_cannot_be_booked(
    service, clinic, work, uow, session_factory, clock
):
    work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    assert okafor_starts(service, clinic) >= {at(10, 45), at(11), at(11, 45)}  # before the sync: free
    calendar_id = register(uow, clinic, work)

    assert sync_calendar(session_factory, calendar_id, clock.now, trusted) == Synced(calendar_id, 1, "window", 1)

    starts = okafor_starts(service, clinic)
    # a 20-minute consultation plus 5 minutes' buffer may not touch 11:00-12:00
    assert not starts & {at(10, 45), at(11), at(11, 15), at(11, 30), at(11, 45)}
    assert {at(10, 30), at(12)} <= starts
    assert isinstance(book_okafor(service, clinic, at(11)), SlotTaken)
    calendar = stored(session_factory, calendar_id)
    assert (calendar.last_synced_at, calendar.last_error, calendar.last_error_at) == (clock.now, None, None)
    assert calendar.sync_token and calendar.ctag and calendar.locked_until is None
    assert (calendar.window_start, calendar.window_end) == window_for(clock.now)


def test_an_unchanged_calendar_costs_one_request_and_is_due_again_only_after_the_interval(
    clinic, work, uow, session_factory, clock
):
    work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    calendar_id = register(uow, clinic, work)
    sync_calendar(session_factory, calendar_id, clock.now, trusted)
    wire = Wire(calendar_id)

    soon = [r for r in sync_all(session_factory, clock.now + timedelta(minutes=4), connect=wire)
            if r.calendar_id == calendar_id]
    later = [r for r in sync_all(session_factory, clock.now + timedelta(minutes=5), connect=wire)
             if r.calendar_id == calendar_id]

    assert soon == [] and later == [Synced(calendar_id, 1, "unchanged", 0)]
    assert wire.sent == ["PROPFIND"]  # sync-token and ctag, nothing else
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]
    assert stored(session_factory, calendar_id).last_synced_at == clock.now + timedelta(minutes=5)


def test_a_changed_an_added_and_a_deleted_event_are_picked_up_from_the_changes_alone(
    service, clinic, work, uow, session_factory, clock
):
    dentist = work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    lunch = work.save_event(dtstart=at(13), dtend=at(14), summary="Lunch", uid="lunch")
    work.save_event(dtstart=at(16), dtend=at(17), summary="Gym", uid="gym")
    calendar_id = register(uow, clinic, work)
    sync_calendar(session_factory, calendar_id, clock.now, trusted)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(13), at(14)), (at(16), at(17))]

    move(dentist, at(15), at(16))  # now touches the gym: one busy stretch
    lunch.delete()
    work.save_event(dtstart=at(10), dtend=at(10, 30), summary="Call", uid="call")
    wire = Wire(calendar_id)
    result = sync_calendar(session_factory, calendar_id, clock.now, connect=wire)

    assert result == Synced(calendar_id, 2, "changes", 2)  # the moved and the new event, not the gym
    assert wire.sent == ["PROPFIND", "sync-collection", "calendar-multiget"]
    assert busy(session_factory, calendar_id) == [(at(10), at(10, 30)), (at(15), at(17))]
    starts = okafor_starts(service, clinic)
    assert at(13) in starts and at(11) in starts and at(15) not in starts
    with session_factory() as s:
        hrefs = s.scalars(select(ExternalEvent.href).where(ExternalEvent.calendar_id == calendar_id))
        assert sorted(h.rsplit("/", 1)[1] for h in hrefs) == ["call.ics", "dentist.ics", "gym.ics"]


def test_moving_then_deleting_the_event_changes_availability_at_the_next_sync(
    service, clinic, work, uow, session_factory, clock
):
    event = work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    calendar_id = register(uow, clinic, work)
    sync_calendar(session_factory, calendar_id, clock.now, trusted)
    assert at(11) not in okafor_starts(service, clinic)

    move(event, at(14), at(15))
    assert sync_calendar(session_factory, calendar_id, clock.now, trusted) == Synced(calendar_id, 1, "changes", 1)
    starts = okafor_starts(service, clinic)
    assert at(11) in starts and at(14) not in starts

    event.delete()
    assert sync_calendar(session_factory, calendar_id, clock.now, trusted) == Synced(calendar_id, 0, "changes", 0)
    assert {at(11), at(14)} <= okafor_starts(service, clinic)


def test_a_rejected_sync_token_falls_back_to_reading_the_window(clinic, work, uow, session_factory, clock):
    event = work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    work.save_event(dtstart=at(16), dtend=at(17), summary="Gym", uid="gym")
    calendar_id = register(uow, clinic, work)
    sync_calendar(session_factory, calendar_id, clock.now, trusted)
    with session_factory.begin() as s:  # a token the server no longer knows (Radicale forgets old ones)
        s.execute(update(ExternalCalendar).where(ExternalCalendar.id == calendar_id)
                  .values(sync_token="http://radicale.org/ns/sync/" + "0" * 64))
    move(event, at(14), at(15))
    wire = Wire(calendar_id)

    result = sync_calendar(session_factory, calendar_id, clock.now, connect=wire)

    assert result == Synced(calendar_id, 2, "window", 1)  # the window's ETags show the gym is unchanged
    assert wire.sent == ["PROPFIND", "sync-collection", "calendar-query", "calendar-multiget"]
    assert busy(session_factory, calendar_id) == [(at(14), at(15)), (at(16), at(17))]
    assert sync_calendar(session_factory, calendar_id, clock.now, trusted) == Synced(calendar_id, 2, "unchanged", 0)


def test_a_ctag_only_server_is_listed_when_the_ctag_moves_and_one_without_either_at_every_sync(
    clinic, work, uow, session_factory, clock
):
    event = work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    work.save_event(dtstart=at(16), dtend=at(17), summary="Gym", uid="gym")
    calendar_id = register(uow, clinic, work)
    wire = Wire(calendar_id)
    ctag_only = lambda source: Hiding(wire(source), ctag=True)  # noqa: E731
    neither = lambda source: Hiding(wire(source), ctag=False)  # noqa: E731

    assert sync_calendar(session_factory, calendar_id, clock.now, connect=ctag_only) == Synced(calendar_id, 2,
                                                                                              "window", 2)
    assert stored(session_factory, calendar_id).sync_token is None
    wire.sent.clear()
    assert sync_calendar(session_factory, calendar_id, clock.now, connect=ctag_only).read == "unchanged"
    assert wire.sent == ["PROPFIND"]
    move(event, at(14), at(15))
    wire.sent.clear()
    assert sync_calendar(session_factory, calendar_id, clock.now, connect=ctag_only) == Synced(calendar_id, 2,
                                                                                              "window", 1)
    assert wire.sent == ["PROPFIND", "calendar-query", "calendar-multiget"]

    wire.sent.clear()
    assert sync_calendar(session_factory, calendar_id, clock.now, connect=neither) == Synced(calendar_id, 2,
                                                                                            "window", 0)
    assert wire.sent == ["PROPFIND", "calendar-query"]  # the ETags match: no event downloaded
    assert busy(session_factory, calendar_id) == [(at(14), at(15)), (at(16), at(17))]


def test_the_window_is_read_in_full_once_a_day_and_brings_in_what_it_reaches(
    clinic, work, uow, session_factory, clock
):
    first_end = window_for(clock.now)[1]
    far = work.save_event(dtstart=first_end + timedelta(hours=10), dtend=first_end + timedelta(hours=11),
                          summary="Far off", uid="far")
    calendar_id = register(uow, clinic, work)
    assert sync_calendar(session_factory, calendar_id, clock.now, trusted) == Synced(calendar_id, 0, "window", 0)
    move(far, first_end + timedelta(hours=9), first_end + timedelta(hours=11))  # changed, still beyond
    assert sync_calendar(session_factory, calendar_id, clock.now, trusted) == Synced(calendar_id, 0, "changes", 1)
    evening = clock.now.replace(hour=23, minute=50)
    assert sync_calendar(session_factory, calendar_id, evening, trusted).read == "unchanged"

    wire = Wire(calendar_id)
    next_day = sync_calendar(session_factory, calendar_id, evening + timedelta(minutes=20), connect=wire)

    assert next_day == Synced(calendar_id, 1, "window", 0)  # its ETag was stored with the change
    assert wire.sent == ["PROPFIND", "calendar-query"]
    assert busy(session_factory, calendar_id) == [(first_end + timedelta(hours=9), first_end + timedelta(hours=11))]
    assert stored(session_factory, calendar_id).window_end == first_end + timedelta(days=1)


def test_runs_racing_for_one_calendar_read_it_once(clinic, work, uow, session_factory, clock):
    work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    calendar_id = register(uow, clinic, work)
    wire, start = Wire(calendar_id), threading.Barrier(4)

    def slow(source):  # holds the lease a while, as a real server would
        time.sleep(0.3)
        return wire(source)

    def scheduler_tick():
        start.wait()
        return [r for r in sync_all(session_factory, clock.now, connect=slow) if r.calendar_id == calendar_id]

    with ThreadPoolExecutor(4) as pool:
        ticks = [pool.submit(scheduler_tick) for _ in range(4)]
        deadline = time.monotonic() + 10
        while stored(session_factory, calendar_id).locked_until is None and time.monotonic() < deadline:
            time.sleep(0.005)
        # one run holds it: a direct sync (the CLI's) stands back too
        assert sync_calendar(session_factory, calendar_id, clock.now, connect=slow) == AlreadySyncing(calendar_id)
        results = [r for t in ticks for r in t.result()]

    assert results == [Synced(calendar_id, 1, "window", 1)]
    assert wire.sent.count("PROPFIND") == 1
    assert stored(session_factory, calendar_id).locked_until is None


def test_a_run_that_outlived_its_lease_cannot_overwrite_the_newer_result(
    clinic, work, uow, session_factory, clock
):
    event = work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    calendar_id = register(uow, clinic, work)
    downloaded, go_on = threading.Event(), threading.Event()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(sync_calendar, session_factory, calendar_id, clock.now,
                           lambda source: Paused(trusted(source), downloaded, go_on))
        assert downloaded.wait(20)  # the slow run has read 11:00-12:00 and stalls
        move(event, at(14), at(15))
        later = clock.now + LEASE + timedelta(minutes=1)
        assert sync_calendar(session_factory, calendar_id, later, trusted) == Synced(calendar_id, 1, "window", 1)
        go_on.set()
        assert slow.result() == Superseded(calendar_id)

    assert busy(session_factory, calendar_id) == [(at(14), at(15))]
    assert stored(session_factory, calendar_id).last_synced_at == later


def test_a_failed_sync_records_the_error_and_keeps_the_time_blocked(
    service, clinic, own_radicale, uow, session_factory, clock
):
    work = own_radicale.calendar("okafor", "work")
    work.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    calendar_id = register(uow, clinic, work)
    sync_calendar(session_factory, calendar_id, clock.now, trusted)
    own_radicale.stop()
    clock.now += timedelta(minutes=5)

    failed = sync_calendar(session_factory, calendar_id, clock.now, trusted)

    assert isinstance(failed, SyncFailed) and failed.error
    calendar = stored(session_factory, calendar_id)
    assert calendar.last_error == failed.error and calendar.last_error_at == clock.now
    assert calendar.last_synced_at == clock.now - timedelta(minutes=5) and calendar.locked_until is None
    assert at(11) not in okafor_starts(service, clinic)
    assert isinstance(book_okafor(service, clinic, at(11)), SlotTaken)
    # a failing calendar waits its turn like the rest: not retried at every tick
    assert [r for r in sync_all(session_factory, clock.now + timedelta(minutes=1), connect=trusted)
            if r.calendar_id == calendar_id] == []

    own_radicale.start()  # back, unchanged: the stored state still holds, one request clears the error
    clock.now += timedelta(minutes=5)
    assert sync_calendar(session_factory, calendar_id, clock.now, trusted) == Synced(calendar_id, 1, "unchanged", 0)
    assert stored(session_factory, calendar_id).last_error is None


def test_recurring_all_day_and_free_events_are_read_as_the_calendar_means_them(
    service, clinic, work, uow, session_factory, clock
):
    work.save_event(dtstart=at(10), dtend=at(11), summary="Ward round", uid="round", rrule={"FREQ": "WEEKLY"})
    work.save_event(dtstart=date(2026, 11, 25), dtend=date(2026, 11, 26), summary="Conference", uid="conf")
    work.save_event(dtstart=at(15), dtend=at(16), summary="Maybe", uid="maybe", transp="TRANSPARENT")
    calendar_id = register(uow, clinic, work)

    sync_calendar(session_factory, calendar_id, clock.now, trusted)

    next_monday = MON + timedelta(days=7)
    assert at(10, day=next_monday) not in okafor_starts(service, clinic, next_monday)  # the rule, expanded
    assert at(11, day=next_monday) in okafor_starts(service, clinic, next_monday)
    assert okafor_starts(service, clinic, MON + timedelta(days=2)) == set()  # Wednesday: away all day
    assert at(15) in okafor_starts(service, clinic)  # marked free


def test_sync_all_goes_on_past_a_broken_calendar(service, clinic, work, uow, session_factory, clock):
    broken = add_calendar(uow, clinic, "dr-okafor", "http://127.0.0.1:9/nothing/", allow_private=True)
    good = register(uow, clinic, work)
    results = {r.calendar_id: r for r in sync_all(session_factory, clock.now, connect=trusted)}
    assert isinstance(results[broken], SyncFailed) and results[good] == Synced(good, 0, "window", 0)


def test_caldav_command_registers_and_syncs_a_calendar(database_url, clinic, work, session_factory, monkeypatch):
    monkeypatch.setenv("NEXTSLOT_ALLOW_PRIVATE_TARGETS", "true")  # Radicale is on loopback
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


NEW_YORK = ZoneInfo("America/New_York")
SPRING_FORWARD = (datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))  # Sunday 8 March, 2 am
FALL_BACK = (datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))  # Sunday 1 November, 2 am


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_hours_in_a_duration_are_real_hours_across_spring_forward_each_occurrence_and_at_the_window_edge():
    """RFC 5545: PT2H is two elapsed hours; added to the wall clock (01:30 + 2h = 03:30 EDT) it is one."""
    text = event("DTSTART;TZID=America/New_York:20260308T013000\r\nDURATION:PT2H\r\nRRULE:FREQ=DAILY;COUNT=2")
    assert busy_intervals([text], NEW_YORK, SPRING_FORWARD) == [(utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 8, 30)),
                                                                (utc(2026, 3, 9, 5, 30), utc(2026, 3, 9, 7, 30))]
    # still busy after the wall-clock end: the window starts where the expansion alone would have dropped it
    late = (utc(2026, 3, 8, 8), utc(2026, 3, 8, 12))
    assert busy_intervals([text], NEW_YORK, late) == [(utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 8, 30))]


def test_hours_in_a_duration_are_real_hours_across_fall_back():
    text = event("DTSTART;TZID=America/New_York:20261101T003000\r\nDURATION:PT2H")  # 00:30 EDT
    assert busy_intervals([text], NEW_YORK, FALL_BACK) == [(utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 6, 30))]


def test_days_in_a_duration_end_at_the_same_wall_time_across_a_clock_change():
    noon = event("DTSTART;TZID=America/New_York:20260307T120000\r\nDURATION:P1D")  # to noon EDT: 23 real hours
    assert busy_intervals([noon], NEW_YORK, SPRING_FORWARD) == [(utc(2026, 3, 7, 17), utc(2026, 3, 8, 16))]
    # the day first (01:00 EST on the 8th), then two real hours: 04:00 EDT
    night = event("DTSTART;TZID=America/New_York:20260307T010000\r\nDURATION:P1DT2H")
    assert busy_intervals([night], NEW_YORK, SPRING_FORWARD) == [(utc(2026, 3, 7, 6), utc(2026, 3, 8, 8))]
    day = event("DTSTART;VALUE=DATE:20261101\r\nDURATION:P1D")  # a 25-hour local day
    assert busy_intervals([day], NEW_YORK, FALL_BACK) == [(utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))]


def test_an_explicit_end_across_a_clock_change_is_kept_as_written():
    text = event("DTSTART;TZID=America/New_York:20260308T013000\r\nDTEND;TZID=America/New_York:20260308T033000")
    assert busy_intervals([text], NEW_YORK, SPRING_FORWARD) == [(utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30))]


def test_the_scheduler_syncs_calendars_at_the_configured_interval(service):
    from nextslot.reminders.scheduler import build_scheduler
    from nextslot.settings import Settings

    class Idle:  # the dispatcher's jobs are not under test here
        def give_up_waiting(self) -> None: ...

        def dispatch_due(self) -> int:
            return 0

    scheduler = build_scheduler(Settings(calendar_sync_minutes=7), service, Idle())
    job = scheduler.get_job("calendars")
    # it looks each minute; a calendar is due 7 minutes after its last sync, by whichever process
    assert job.trigger.interval == timedelta(minutes=1) and job.args[1] == timedelta(minutes=7)


class NulEtags(Wrapped):
    """A server whose ETags carry a NUL byte, which no text column can store."""

    def bodies(self, hrefs):
        return {h: (f"{etag}\x00", data) for h, (etag, data) in self.reader.bodies(hrefs).items()}


def test_a_calendar_whose_result_cannot_be_stored_fails_alone_and_waits_its_turn(
    radicale, clinic, uow, session_factory, clock, caplog
):
    broken_cal, good_cal = (radicale.calendar("okafor", f"{name}-{uuid.uuid4().hex[:8]}") for name in ("nul", "ok"))
    for calendar in (broken_cal, good_cal):
        calendar.save_event(dtstart=at(11), dtend=at(12), summary="Dentist", uid="dentist")
    broken, good = register(uow, clinic, broken_cal), register(uow, clinic, good_cal)

    def connect(source):
        return NulEtags(trusted(source)) if source.id == broken else trusted(source)

    results = {r.calendar_id: r for r in sync_all(session_factory, clock.now, connect=connect)}

    assert results[broken] == SyncFailed(broken, "DataError: the result could not be stored")
    assert results[good] == Synced(good, 1, "window", 1)
    calendar = stored(session_factory, broken)
    assert (calendar.last_error_at, calendar.locked_until, calendar.last_synced_at) == (clock.now, None, None)
    assert f"calendar {broken} (business {clinic}): the result could not be stored (DataError)" in caplog.text
    assert "secret" not in caplog.text and "Dentist" not in caplog.text
    later = sync_all(session_factory, clock.now + timedelta(minutes=1), connect=connect)
    assert broken not in {r.calendar_id for r in later}  # not first again at the next tick: due like the rest


def test_a_calendar_whose_settings_cannot_be_read_fails_alone_and_waits_its_turn(
    clinic, work, uow, session_factory, clock, caplog
):
    from nextslot.storage.tables import Resource

    broken = add_calendar(uow, clinic, "dr-patel", "https://caldav.example/patel/", "patel", "secret")
    good = register(uow, clinic, work)
    with session_factory() as s:  # stored past every check, as an old or hand-edited row would hold it
        s.execute(update(Resource).where(Resource.business_id == clinic, Resource.key == "dr-patel")
                  .values(timezone="Mars/Olympus_Mons"))
        s.commit()

    results = {r.calendar_id: r for r in sync_all(session_factory, clock.now, connect=trusted)}

    assert isinstance(results[broken], SyncFailed) and results[good] == Synced(good, 0, "window", 0)
    calendar = stored(session_factory, broken)
    assert (calendar.last_error, calendar.last_error_at, calendar.locked_until) == (
        results[broken].error, clock.now, None)
    assert f"calendar {broken} (business {clinic}): cannot be read (ZoneInfoNotFoundError)" in caplog.text
    assert "secret" not in caplog.text
    assert broken not in {r.calendar_id for r in sync_all(session_factory, clock.now + timedelta(minutes=1),
                                                          connect=trusted)}
