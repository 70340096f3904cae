"""Bookings written into staff calendars: CalDAV against the real Radicale server, Google and Microsoft against
their loopback fakes; created, moved and cancelled; retried without duplicates; two schedulers side by side."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from nextslot.calendars.caldav import CalDav
from nextslot.calendars.connections import add_calendar
from nextslot.calendars.providers import Registry, build_registry
from nextslot.calendars.sync import Synced, sync_calendar
from nextslot.calendars.writes import CalendarWriter, event_key, writes_of
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingChange, BookingReschedule
from nextslot.storage.tables import Booking, CalendarWrite
from tests.calendars.test_google import SECRET, okafor
from tests.calendars.test_google import connect as connect_google
from tests.calendars.test_google import settings_for as google_settings
from tests.calendars.test_microsoft import connect as connect_microsoft
from tests.calendars.test_microsoft import settings_for as microsoft_settings
from tests.calendars.test_sync import at, book_okafor, busy, okafor_starts, register


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


def booked(service, clinic, start) -> tuple[str, int]:
    result = book_okafor(service, clinic, start)
    assert isinstance(result, Booked), result
    with service.session_factory() as s:
        booking_id = s.scalar(select(Booking.id).where(Booking.business_id == clinic,
                                                       Booking.code == result.booking.code))
    return result.booking.code, booking_id


def key_of(session_factory, booking_id: int) -> str:
    """Our key of the booking's event in Dr Okafor's calendar."""
    with session_factory() as s:
        booking = s.get(Booking, booking_id)
        return event_key(booking, okafor(session_factory, booking.business_id))


def drain(writer: CalendarWriter) -> int:
    total = 0
    while (n := writer.write_due()) > 0:
        total += n
    return total


# --- CalDAV, on Radicale -------------------------------------------------------------------------


def test_a_booking_is_written_moved_and_removed_in_the_caldav_calendar_and_never_read_back_as_busy(
        radicale, service, clinic, uow, session_factory, clock):
    work = radicale.calendar("okafor", f"work-{uuid.uuid4().hex[:8]}")
    calendar_id = register(uow, clinic, work)
    registry = Registry({"caldav": CalDav()}, allow_private=True)
    writer = CalendarWriter(session_factory, registry, clock)
    code, booking_id = booked(service, clinic, at(10))
    assert drain(writer) == 1
    [event] = work.events()
    component = event.icalendar_component
    assert str(component["UID"]) == key_of(session_factory, booking_id)
    assert component["DTSTART"].dt == at(10) and str(component["SUMMARY"]) == "GP consultation: Ada"
    [row] = writes_of(session_factory, booking_id)
    assert row.status == "done" and row.written_version == 1 and row.remote_id.endswith(".ics")

    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), registry=registry), Synced)
    assert busy(session_factory, calendar_id) == []  # our own event is not outside busy time
    moved = service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(14), resources=["dr-okafor"]))
    assert isinstance(moved, Booked), moved
    assert at(10) in okafor_starts(service, clinic)  # its own old copy blocks nothing once synced
    drain(writer)
    [event] = work.events()  # the same event, moved
    assert event.icalendar_component["DTSTART"].dt == at(14)
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert busy(session_factory, calendar_id) == [] and at(10) in okafor_starts(service, clinic)

    service.cancel(clinic, BookingChange(code=code))
    drain(writer)
    assert work.events() == []
    assert writes_of(session_factory, booking_id)[0].written_version == 3


# --- Google --------------------------------------------------------------------------------------


@pytest.fixture
def google_registry(google):
    return build_registry(google_settings(google, calendar_push=False), SECRET)


def test_a_booking_reaches_google_with_our_id_and_property_and_follows_its_changes(
        google, google_registry, service, session_factory, clinic, clock, monkeypatch):
    calendar_id = connect_google(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    code, booking_id = booked(service, clinic, at(10))
    drain(writer)
    [event] = google.live()
    assert event["extendedProperties"]["private"]["nextslotBooking"] == key_of(session_factory, booking_id)
    assert event["start"]["dateTime"].startswith("2026-11-23T10:00")
    sync_calendar(session_factory, calendar_id, clock(), registry=google_registry)
    assert busy(session_factory, calendar_id) == []  # our own event is never outside busy time

    service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(15), resources=["dr-okafor"]))
    drain(writer)
    [event] = google.live()
    assert event["start"]["dateTime"].startswith("2026-11-23T15:00")
    service.cancel(clinic, BookingChange(code=code))
    drain(writer)
    assert google.live() == []


def test_a_booking_moved_to_a_colleague_leaves_the_first_staff_members_calendar(
        google, google_registry, service, session_factory, clinic, clock):
    connect_google(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    code, _ = booked(service, clinic, at(10))
    drain(writer)
    assert len(google.live()) == 1
    moved = service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(11), resources=["dr-patel"]))
    assert isinstance(moved, Booked), moved
    drain(writer)
    assert google.live() == []  # Dr Patel has no calendar connected: nothing else to write


def test_a_write_whose_answer_was_lost_is_retried_without_a_duplicate(
        google, google_registry, service, session_factory, clinic, clock):
    connect_google(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    _, booking_id = booked(service, clinic, at(10))
    drain(writer)
    with session_factory() as s:  # as if the process died after Google's answer and before our record
        s.execute(update(CalendarWrite).where(CalendarWrite.booking_id == booking_id)
                  .values(status="sending", locked_until=clock() - timedelta(seconds=1), remote_id=None,
                          written_version=0))
        s.commit()
    assert drain(writer) == 1
    assert len(google.live()) == 1
    assert writes_of(session_factory, booking_id)[0].status == "done"


def test_a_change_during_a_write_is_written_after_it_never_under_it(
        google, google_registry, service, session_factory, clinic, clock):
    connect_google(google, google_registry, session_factory, clinic, clock())
    code, booking_id = booked(service, clinic, at(10))
    provider = google_registry.providers["google"]
    real_put = provider.put
    moved = threading.Event()

    def put_then_move(connection, source, event, remote_id):
        answer = real_put(connection, source, event, remote_id)  # wrote 10:00
        if not moved.is_set():
            moved.set()
            again = service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(16), resources=["dr-okafor"]))
            assert isinstance(again, Booked), again
        return answer

    provider.put = put_then_move
    try:
        writer = CalendarWriter(session_factory, google_registry, clock)
        assert writer.write_due() == 1
        row = writes_of(session_factory, booking_id)[0]
        assert row.status == "pending" and row.version == 2 and row.written_version == 0
        writer.write_due()
    finally:
        del provider.put
    [event] = google.live()
    assert event["start"]["dateTime"].startswith("2026-11-23T16:00")
    assert writes_of(session_factory, booking_id)[0].written_version == 2


def test_two_schedulers_write_each_booking_once(google, google_registry, service, session_factory, make_business,
                                                clock):
    clinic = make_business("clinic")
    connect_google(google, google_registry, session_factory, clinic, clock())
    for hour in range(10, 17):
        booked(service, clinic, at(hour))
    google.requests.clear()
    writers = [CalendarWriter(session_factory, google_registry, clock, batch=2) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(drain, writers))
    assert sum(counts) == 7
    inserts = [r for r in google.requests if r[0] == "POST" and r[1].endswith("/events")]
    assert len(inserts) == 7 and len(google.live()) == 7  # one insert per booking, none twice
    keys = [e["extendedProperties"]["private"]["nextslotBooking"] for e in google.live()]
    assert len(set(keys)) == 7


def test_writes_wait_while_the_calendar_needs_reconnecting_and_resume_after(
        google, google_registry, service, session_factory, clinic, clock):
    connect_google(google, google_registry, session_factory, clinic, clock())
    google.revoke_all()
    with session_factory() as s:
        s.execute(update(CalendarWrite).values(status="done"))
        s.commit()
    _, booking_id = booked(service, clinic, at(10))
    writer = CalendarWriter(session_factory, google_registry, clock)
    drain(writer)  # the access token is refused; then the refresh: the grant is gone
    drain(writer)
    clock.now += timedelta(hours=4)
    drain(writer)
    assert google.live() == [] and writes_of(session_factory, booking_id)[0].status == "pending"
    connect_google(google, google_registry, session_factory, clinic, clock())
    assert drain(writer) == 1
    assert len(google.live()) == 1


# --- Microsoft -----------------------------------------------------------------------------------


def test_a_booking_reaches_microsoft_365_and_a_lost_answer_finds_the_event_by_our_property(
        microsoft, service, session_factory, clinic, clock):
    registry = build_registry(microsoft_settings(microsoft, calendar_push=False), "test-secret-key-for-microsoft-"
                                                                                  "grants")
    calendar_id = connect_microsoft(microsoft, registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, registry, clock)
    code, booking_id = booked(service, clinic, at(10))
    drain(writer)
    [event] = microsoft.live()
    assert event["singleValueExtendedProperties"][0]["value"] == key_of(session_factory, booking_id)
    sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert busy(session_factory, calendar_id) == []
    with session_factory() as s:  # the answer was lost: no event id recorded
        s.execute(update(CalendarWrite).values(status="pending", remote_id=None, due_at=clock())
                  .where(CalendarWrite.booking_id == booking_id))
        s.commit()
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(13), resources=["dr-okafor"]))
    drain(writer)
    [event] = microsoft.live()  # found by the property and moved, not a second one
    assert event["start"]["dateTime"].startswith("2026-11-23T13:00")
    service.cancel(clinic, BookingChange(code=code))
    drain(writer)
    assert microsoft.live() == []


def test_a_newly_connected_calendar_gets_the_bookings_already_made(
        google, google_registry, radicale, service, session_factory, clinic, uow, clock):
    past = clock.now
    code, _ = booked(service, clinic, at(10))
    booked(service, clinic, at(14))
    service.cancel(clinic, BookingChange(code=code))  # a cancelled one is not written
    connect_google(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    assert drain(writer) == 1
    [event] = google.live()
    assert event["start"]["dateTime"].startswith("2026-11-23T14:00")

    work = radicale.calendar("okafor", f"work-{uuid.uuid4().hex[:8]}")
    assert isinstance(add_calendar(uow, clinic, "dr-okafor", str(work.url), allow_private=True, now=past), int)
    caldav = CalendarWriter(session_factory, Registry({"caldav": CalDav()}, allow_private=True), clock)
    assert drain(caldav) == 1 and len(work.events()) == 1


def test_the_cli_connects_a_caldav_calendar_with_its_password_encrypted_and_syncs_it(
        radicale, database_url, session_factory, clinic, tmp_path):
    import json
    import os
    import subprocess
    import sys

    from nextslot.storage.tables import Business, ExternalCalendar

    work = radicale.calendar("okafor", f"work-{uuid.uuid4().hex[:8]}")
    soon = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)  # the CLI's clock is real
    work.save_event(dtstart=soon, dtend=soon + timedelta(hours=1), summary="Dentist", uid="dentist")
    with session_factory() as s:
        slug = s.get(Business, clinic).slug
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url, "NEXTSLOT_SECRET_KEY": "cli-calendar-secret",
           "NEXTSLOT_ALLOW_PRIVATE_TARGETS": "true", "NEXTSLOT_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "nextslot.cli", "caldav", slug, "dr-okafor", str(work.url),
                           "--username", "okafor", "--password", "cli-password-7", "--read-only"], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["synced"] is True and answer["busy_intervals"] == 1
    with session_factory() as s:
        row = s.get(ExternalCalendar, answer["id"])
        assert row.password.startswith("enc:v1:") and "cli-password-7" not in row.password
        assert row.write_back is False
