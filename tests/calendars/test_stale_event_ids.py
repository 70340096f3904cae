"""A stored event id gone stale (the event made again under another id, moved, or the id naming an event deleted
while the one carrying our booking's key lives on): cancelling or moving the booking still reaches the keyed event,
never leaves it behind in the staff member's calendar and never makes a second one. The loopback fakes of Graph and
Google through the real client code, the real booking service and write-back on PostgreSQL."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from evals.fake_microsoft import FakeMicrosoft
from nextslot.calendars.providers import build_registry
from nextslot.calendars.writes import CalendarWriter, writes_of
from nextslot.schemas.commands import BookingChange, BookingReschedule
from nextslot.storage.tables import CalendarWrite
from tests.calendars import test_microsoft
from tests.calendars.test_google import connect as connect_google
from tests.calendars.test_microsoft import connect as connect_microsoft
from tests.calendars.test_sync import at
from tests.calendars.test_writes import booked, drain, key_of


@pytest.fixture
def microsoft_registry(microsoft):
    return build_registry(test_microsoft.settings_for(microsoft, calendar_push=False), test_microsoft.SECRET)


def store_remote_id(session_factory, booking_id: int, remote_id: str) -> None:
    with session_factory() as s:
        s.execute(update(CalendarWrite).where(CalendarWrite.booking_id == booking_id).values(remote_id=remote_id))
        s.commit()


def keyed(events: list[dict[str, Any]], key: str, microsoft: bool) -> list[dict[str, Any]]:
    """The live events carrying our booking's key."""
    if microsoft:
        return [e for e in events if any(p["value"] == key for p in e.get("singleValueExtendedProperties", []))]
    return [e for e in events if (e.get("extendedProperties") or {}).get("private", {}).get("nextslotBooking") == key]


# --- Microsoft Graph -----------------------------------------------------------------------------------


def recreated(microsoft: FakeMicrosoft, eid: str, keep_transaction: bool = True) -> str:
    """The event made again under a new id (moved to another folder and back, or recreated), the old id gone; it
    carries our key. Graph honours a repeated transactionId only a short while after the first POST: without it a
    POST makes a second event."""
    [event] = [e for e in microsoft.live() if e["id"] == eid]
    fields = {k: v for k, v in event.items() if k not in ("id", "subject", "start", "end", "@odata.etag", "changeKey")}
    if not keep_transaction:
        fields.pop("transactionId", None)
    new_id = microsoft.add(event["subject"], event["start"], event["end"], push=False, **fields)
    microsoft.remove(eid, push=False)
    return new_id


def written_to_microsoft(microsoft, microsoft_registry, service, session_factory, clinic, clock):
    connect_microsoft(microsoft, microsoft_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, microsoft_registry, clock)
    code, booking_id = booked(service, clinic, at(10))
    drain(writer)
    [row] = writes_of(session_factory, booking_id)
    assert row.status == "done" and row.remote_id is not None
    return writer, code, booking_id, row.remote_id


def test_cancelling_after_the_graph_event_was_made_again_removes_the_keyed_one(
        microsoft, microsoft_registry, service, session_factory, clinic, clock):
    writer, code, booking_id, stale = written_to_microsoft(microsoft, microsoft_registry, service, session_factory,
                                                           clinic, clock)
    recreated(microsoft, stale)  # the stored id now answers 404
    service.cancel(clinic, BookingChange(code=code))
    drain(writer)
    assert keyed(microsoft.live(), key_of(session_factory, booking_id), microsoft=True) == []
    assert writes_of(session_factory, booking_id)[0].status == "done"


@pytest.mark.parametrize("keep_transaction", [True, False], ids=["within-dedupe", "after-dedupe"])
def test_moving_after_the_graph_event_was_made_again_moves_the_keyed_one_without_a_second(
        microsoft, microsoft_registry, service, session_factory, clinic, clock, keep_transaction):
    writer, code, booking_id, stale = written_to_microsoft(microsoft, microsoft_registry, service, session_factory,
                                                           clinic, clock)
    new_id = recreated(microsoft, stale, keep_transaction)
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(13), resources=["dr-okafor"]))
    drain(writer)
    [event] = microsoft.live()  # no second event
    assert event["id"] == new_id and event["start"]["dateTime"].startswith("2026-11-23T13:00")
    [row] = writes_of(session_factory, booking_id)
    assert row.status == "done" and row.remote_id == new_id  # the id learnt again


def test_a_graph_write_whose_stored_id_works_makes_one_request(
        microsoft, microsoft_registry, service, session_factory, clinic, clock):
    """Guard: the lookup by key costs nothing while the stored id is good."""
    writer, code, _, stale = written_to_microsoft(microsoft, microsoft_registry, service, session_factory, clinic,
                                                  clock)
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(13), resources=["dr-okafor"]))
    microsoft.requests.clear()
    drain(writer)
    assert microsoft.requests == [("PATCH", f"/v1.0/me/events/{stale}")]
    service.cancel(clinic, BookingChange(code=code))
    microsoft.requests.clear()
    drain(writer)
    assert microsoft.requests == [("DELETE", f"/v1.0/me/events/{stale}")] and microsoft.live() == []


# --- Google Calendar --------------------------------------------------------------------------------------


def written_to_google(google, google_registry, service, session_factory, clinic, clock, stale: str):
    """A booking written to Google, then its row's stored id replaced by `stale`."""
    connect_google(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    code, booking_id = booked(service, clinic, at(10))
    drain(writer)
    assert len(google.live()) == 1
    store_remote_id(session_factory, booking_id, stale)
    return writer, code, booking_id


def deleted_event(google) -> str:
    """The id of an event deleted in the calendar: Google answers 410 for it."""
    old = google.add("Old copy", at(10), at(11), push=False)
    google.cancel(old, push=False)
    return old


@pytest.mark.parametrize("answer", [404, 410])
def test_cancelling_with_a_stale_google_id_removes_the_event_carrying_our_key(
        google, google_registry, service, session_factory, clinic, clock, answer):
    stale = deleted_event(google) if answer == 410 else "nsneverthere0000"
    writer, code, booking_id = written_to_google(google, google_registry, service, session_factory, clinic, clock,
                                                 stale)
    service.cancel(clinic, BookingChange(code=code))
    drain(writer)
    assert keyed(google.live(), key_of(session_factory, booking_id), microsoft=False) == []
    assert writes_of(session_factory, booking_id)[0].status == "done"


def test_moving_with_a_stale_google_id_moves_the_keyed_event_without_a_second(
        google, google_registry, service, session_factory, clinic, clock):
    """Guard: Google's writes address the event by the id fixed by our key, never by the stored one."""
    writer, code, booking_id = written_to_google(google, google_registry, service, session_factory, clinic, clock,
                                                 deleted_event(google))
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=at(15), resources=["dr-okafor"]))
    drain(writer)
    [event] = google.live()
    assert event["start"]["dateTime"].startswith("2026-11-23T15:00")
    assert keyed([event], key_of(session_factory, booking_id), microsoft=False) == [event]


def test_a_google_removal_whose_stored_id_works_makes_one_request(
        google, google_registry, service, session_factory, clinic, clock):
    """Guard: the lookup by key costs nothing while the stored id is good."""
    connect_google(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    code, booking_id = booked(service, clinic, at(10))
    drain(writer)
    [event] = google.live()
    service.cancel(clinic, BookingChange(code=code))
    google.requests.clear()
    drain(writer)
    assert google.requests == [("DELETE", f"/calendar/v3/calendars/primary/events/{event['id']}")]
    assert google.live() == []
