"""Staff members' own calendars (CalDAV): read by the scheduler, their busy time blocks availability.

A sync replaces one calendar's stored busy intervals in one transaction. A failed sync records the
error on the calendar row and keeps the last known intervals: a broken feed never frees time.
External busy time is a soft input: it is checked with the claims before a booking is claimed
(`queries.busy_for`), but the database's exclusion constraint covers claims only.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.orm import Session, sessionmaker

from nextslot.core.results import Rejected
from nextslot.storage.tables import Business, ExternalBusy, ExternalCalendar, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork

log = logging.getLogger(__name__)

PAST = timedelta(days=1)
AHEAD = timedelta(days=90)  # time further ahead is not blocked until a later sync reads it

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class CalendarSource:
    """Where to read one calendar; plain data, so no transaction stays open during the network call."""

    id: int
    business_id: int
    resource_id: int
    url: str
    username: str | None
    password: str | None
    zone: ZoneInfo  # the resource's: all-day and floating events are its local days and times


@dataclass(frozen=True)
class Synced:
    calendar_id: int
    intervals: int


@dataclass(frozen=True)
class SyncFailed:
    calendar_id: int
    error: str


SyncResult = Synced | SyncFailed
Fetch = Callable[[CalendarSource, datetime, datetime], list[str]]  # iCalendar texts of events in the window


def fetch_caldav(source: CalendarSource, start: datetime, end: datetime) -> list[str]:
    """The iCalendar text of every event object on a CalDAV calendar touching the window."""
    import caldav

    with caldav.DAVClient(url=source.url, username=source.username, password=source.password, timeout=30) as client:
        calendar = client.calendar(url=source.url)
        return [obj.data for obj in calendar.search(start=start, end=end, event=True)]


# --- registering ---------------------------------------------------------------------------------


def add_calendar(uow: SqlAlchemyUnitOfWork, business_id: int, resource_key: str, url: str,
                 username: str | None = None, password: str | None = None) -> int | Rejected:
    """Register a resource's CalDAV calendar; return its id (the scheduler syncs it from then on)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return Rejected("invalid_url", f"'{url}' is not an http(s) URL.", "url")
    with uow:
        resource_id = uow.session.scalar(select(Resource.id).where(Resource.business_id == business_id,
                                                                   Resource.key == resource_key))
        if resource_id is None:
            return Rejected("unknown_resource", f"No resource called {resource_key} here.", "resource")
        calendar = ExternalCalendar(business_id=business_id, resource_id=resource_id, url=url,
                                    username=username, password=password)
        uow.session.add(calendar)
        uow.session.flush()
        uow.commit()
        return calendar.id


# --- syncing ---------------------------------------------------------------------------------------


def sync_all(session_factory: sessionmaker[Session], now: datetime, fetch: Fetch = fetch_caldav) -> list[SyncResult]:
    """Sync every registered calendar, one after another; a failure is recorded and the rest go on."""
    with session_factory() as s:
        ids = list(s.scalars(select(ExternalCalendar.id).order_by(ExternalCalendar.id)))
    return [sync_calendar(session_factory, i, now, fetch) for i in ids]


def sync_calendar(session_factory: sessionmaker[Session], calendar_id: int, now: datetime,
                  fetch: Fetch = fetch_caldav) -> SyncResult:
    """Read one calendar and replace its busy intervals; on any failure keep them and record the error."""
    source = load_source(session_factory, calendar_id)
    start, end = now - PAST, now + AHEAD
    try:
        intervals = busy_intervals(fetch(source, start, end), source.zone, (start, end))
    except Exception as error:  # a remote calendar can fail in any way; none of them may free time
        message = f"{type(error).__name__}: {error}"[:2000]
        log.warning("calendar %s sync failed: %s", calendar_id, message)
        with SqlAlchemyUnitOfWork(session_factory) as uow:
            calendar = uow.session.get(ExternalCalendar, calendar_id, with_for_update=True)
            calendar.last_error, calendar.last_error_at = message, now
            uow.commit()
        return SyncFailed(calendar_id, message)
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        s = uow.session
        calendar = s.get(ExternalCalendar, calendar_id, with_for_update=True)  # concurrent syncs take turns
        s.execute(delete(ExternalBusy).where(ExternalBusy.calendar_id == calendar_id))
        s.add_all(ExternalBusy(business_id=source.business_id, resource_id=source.resource_id,
                               calendar_id=calendar_id, during=Range(a, b)) for a, b in intervals)
        calendar.last_synced_at, calendar.last_error, calendar.last_error_at = now, None, None
        uow.commit()
    return Synced(calendar_id, len(intervals))


def load_source(session_factory: sessionmaker[Session], calendar_id: int) -> CalendarSource:
    with session_factory() as s:
        calendar = s.get(ExternalCalendar, calendar_id)
        resource = s.get(Resource, calendar.resource_id)
        zone = resource.timezone or s.get(Business, calendar.business_id).timezone
        return CalendarSource(calendar.id, calendar.business_id, calendar.resource_id, calendar.url,
                              calendar.username, calendar.password, ZoneInfo(zone))


# --- from events to busy time (pure) ---------------------------------------------------------------


def busy_intervals(texts: Iterable[str], zone: ZoneInfo, window: Interval) -> list[Interval]:
    """Merged busy intervals of the events in the window, recurring ones expanded.

    Transparent ("free") and cancelled events block nothing; all-day events block the whole local day.
    """
    found: list[Interval] = []
    for text in texts:
        calendar = Calendar.from_ical(text)
        for event in recurring_ical_events.of(calendar).between(*window):
            if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
                continue
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            interval = event_interval(event, zone)
            if interval and interval[0] < window[1] and interval[1] > window[0]:
                found.append(interval)
    return merged(found)


def event_interval(event, zone: ZoneInfo) -> Interval | None:
    start = event.get("DTSTART")
    if start is None:
        return None
    start = start.dt
    end = event.get("DTEND")
    if end is not None:
        end = end.dt
    elif event.get("DURATION") is not None:
        end = start + event.get("DURATION").dt
    else:  # RFC 5545: a date lasts one day, a date-time is an instant
        end = start + timedelta(days=1) if not isinstance(start, datetime) else start
    a, b = instant(start, zone), instant(end, zone)
    return (a, b) if a < b else None


def instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A date is the start of that local day; a floating time is local to the resource."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value


def merged(intervals: list[Interval]) -> list[Interval]:
    """Overlapping events are one busy stretch: a calendar occupies a resource at most once at a time."""
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
