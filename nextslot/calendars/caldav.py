"""CalDAV, the first calendar provider: reading one collection in as few and as cheap requests as the server allows.

A sync asks the server for the collection's sync-token (RFC 6578) and ctag first: if the token (without one,
the ctag) is the stored one, and so is the window, that one request is the whole sync. Otherwise it asks what changed
since the stored sync-token, or, when the server offers no token, rejects it, or the window moved, lists the
ETags of the events touching the window; either way it downloads only objects whose ETag differs from the stored
one, then recomputes the calendar's merged busy time from the stored event texts.

Four questions, one request each (the multiget in batches):
- `state`: the collection's sync-token (RFC 6578) and ctag (CalendarServer's getctag), PROPFIND depth 0;
- `changes`: which objects changed or went since a sync-token, with their ETags (sync-collection REPORT);
- `listing`: which events touch a window, with their ETags (calendar-query REPORT, no bodies);
- `bodies`: the iCalendar text of some objects (calendar-multiget REPORT).
Hrefs are the server's paths, unquoted (as caldav's response parsers give them).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol
from urllib.parse import quote, unquote, urlsplit

import caldav
from caldav.elements import cdav, dav
from caldav.elements.base import BaseElement
from caldav.lib import error
from icalendar import Calendar, Event
from lxml import etree

from nextslot.calendars.bounded_session import MAX_ANSWER_BYTES, TIME_LIMIT, BoundedSession
from nextslot.calendars.busy_time import OURS, busy_intervals
from nextslot.calendars.provider import (
    LONGEST_WAIT,
    BookingEvent,
    CalendarSource,
    Interval,
    Reading,
    StoredEvents,
    SyncState,
    Throttled,
)

TIMEOUT = 30  # seconds per request
PAGES = 20  # sync-collection replies a server may truncate before we read the window instead
BATCH = 100  # hrefs per calendar-multiget


class GetCtag(BaseElement):
    tag: ClassVar[str] = "{http://calendarserver.org/ns/}getctag"


@dataclass(frozen=True)
class CollectionState:
    """What the server says about the whole collection; either may be None (not supported)."""

    sync_token: str | None
    ctag: str | None


@dataclass(frozen=True)
class Changes:
    changed: dict[str, str | None]  # href -> ETag (None: the server sent none)
    deleted: set[str]
    sync_token: str


class CalDavReader:
    """One calendar collection on a CalDAV server; use as a context manager (it holds an HTTP session)."""

    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 allow_private: bool = False, time_limit: float = TIME_LIMIT, max_bytes: int = MAX_ANSWER_BYTES):
        self.url = url
        self.path = unquote(urlsplit(url).path).rstrip("/")
        # the collection's own URL: no RFC 6764 discovery, which would look elsewhere before our session is in
        self.client = caldav.DAVClient(url=url, username=username, password=password, timeout=TIMEOUT,
                                       enable_rfc6764=False)
        # every connection, redirects included, goes through the checking resolver, within one time limit
        self.client.session.close()
        self.client.session = BoundedSession(allow_private, time_limit, max_bytes)

    def __enter__(self) -> CalDavReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def state(self) -> CollectionState:
        body = dav.Propfind() + (dav.Prop() + [dav.SyncToken(), GetCtag()])
        response = self.client.propfind(self.url, xml(body), depth=0)
        if response.status not in (200, 207) or not response.results:
            raise error.PropfindError(f"PROPFIND {self.url}: HTTP {response.status}")
        props = response.results[0].properties
        return CollectionState(text(props.get(dav.SyncToken.tag)), text(props.get(GetCtag.tag)))

    def changes(self, sync_token: str) -> Changes | None:
        """What changed since the token; None if the server will not answer from it (expired, unknown, refused)."""
        changed: dict[str, str | None] = {}
        deleted: set[str] = set()
        token = sync_token
        for _ in range(PAGES):
            body = dav.SyncCollection() + [dav.SyncToken(value=token), dav.SyncLevel(value="1"),
                                           dav.Prop() + dav.GetEtag()]
            try:
                reply = self.client.report(self.url, xml(body), depth=0).parse_sync_collection()
            except error.AuthorizationError as refused:
                if dav.ValidSyncToken.tag in refused.preconditions:  # RFC 6578 3.2: start over
                    return None
                raise  # a real permission problem: reading the window would fail the same way
            except error.RateLimitError:
                raise  # asking for more would not help
            except error.DAVError:  # 409, 412, 501...: servers reject tokens in many ways
                return None
            for item in reply.changed:
                if self.is_member(item.href):
                    changed[item.href] = item.etag
                    deleted.discard(item.href)
            for href in reply.deleted:
                if self.is_member(href):
                    deleted.add(href)
                    changed.pop(href, None)
            if not reply.sync_token:
                return None
            token = reply.sync_token
            if not reply.truncated:
                return Changes(changed, deleted, token)
        return None  # still truncated: the window read is the bounded way

    def listing(self, start: datetime, end: datetime) -> dict[str, str | None]:
        """Href -> ETag of every event touching the window (recurring ones included by the server)."""
        body = cdav.CalendarQuery() + [
            dav.Prop() + dav.GetEtag(),
            cdav.Filter() + (cdav.CompFilter("VCALENDAR") + (cdav.CompFilter("VEVENT") + cdav.TimeRange(start, end))),
        ]
        found = self.client.report(self.url, xml(body), depth=1).parse_calendar_query()
        return {r.href: r.etag for r in found if r.status == 200 and self.is_member(r.href)}

    def bodies(self, hrefs: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        """Href -> (ETag, iCalendar text) for each href; text None: the object is gone (404)."""
        wanted = sorted(set(hrefs))
        out: dict[str, tuple[str | None, str | None]] = {}
        for i in range(0, len(wanted), BATCH):
            batch = wanted[i:i + BATCH]
            body = cdav.CalendarMultiGet() + [dav.Prop() + [dav.GetEtag(), cdav.CalendarData()],
                                              *(dav.Href(value=quote(h, safe="/@:")) for h in batch)]
            for r in self.client.report(self.url, xml(body), depth=None).parse_calendar_query():
                if r.status == 404:
                    out[r.href] = (None, None)
                elif r.status == 200 and r.calendar_data is not None:
                    out[r.href] = (r.etag, r.calendar_data)
            if missing := [h for h in batch if h not in out]:
                # never guess that an object is gone: that could free time the calendar still blocks
                raise error.ResponseError(f"calendar-multiget answered nothing for {missing[:3]}")
        return out

    def is_member(self, href: str) -> bool:
        return href.rstrip("/") != self.path  # some servers list the collection itself

    def put(self, name: str, ics: str) -> str:
        """Store an event object under the collection (replacing it if there); return its href."""
        url = f"{self.url.rstrip('/')}/{quote(name, safe='@')}"
        response = self.client.put(url, ics, {"Content-Type": "text/calendar; charset=utf-8"})
        if response.status not in (200, 201, 204):
            raise error.PutError(f"PUT: HTTP {response.status}")
        return f"{self.path}/{name}"

    def delete(self, name: str) -> None:
        response = self.client.delete(f"{self.url.rstrip('/')}/{quote(name, safe='@')}")
        if response.status not in (200, 204, 404):  # 404: gone already
            raise error.DeleteError(f"DELETE: HTTP {response.status}")


def xml(element: BaseElement) -> str:
    return etree.tostring(element.xmlelement(), encoding="utf-8", xml_declaration=True).decode()


def text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


# --- the provider: deciding what to download (network, no transaction) -----------------------------------


class CalDavConnection(Protocol):
    def __enter__(self) -> CalDavConnection: ...
    def __exit__(self, *exc: object) -> None: ...
    def state(self) -> CollectionState: ...
    def changes(self, sync_token: str) -> Changes | None: ...
    def listing(self, start: datetime, end: datetime) -> dict[str, str | None]: ...
    def bodies(self, hrefs: Iterable[str]) -> dict[str, tuple[str | None, str | None]]: ...


def connect_caldav(source: CalendarSource, allow_private: bool = False) -> CalDavReader:
    return CalDavReader(source.url, source.username, source.password, allow_private)


class CalDav:
    """The CalDAV calendar provider: our bookings are event objects named and UID'd by the booking's key."""

    oauth = None
    pushes = False

    def put(self, connection: CalDavReader, source: CalendarSource, event: BookingEvent,
            remote_id: str | None) -> str:
        with throttled():
            return connection.put(object_name(event.key), booking_ics(event))

    def remove(self, connection: CalDavReader, source: CalendarSource, key: str, remote_id: str | None) -> None:
        with throttled():
            connection.delete(object_name(key))

    def connect(self, source: CalendarSource, allow_private: bool = False) -> CalDavReader:
        return connect_caldav(source, allow_private)

    def read(self, connection: CalDavConnection, source: CalendarSource, since: SyncState,
             since_window: Interval | None, window: Interval, stored: Callable[[], StoredEvents]) -> Reading:
        return read(connection, source, since, since_window, window, stored)


@contextmanager
def throttled() -> Iterator[None]:
    """A server's 429, or 503 with Retry-After (caldav's RateLimitError), asks us to wait before writing again."""
    try:
        yield
    except error.RateLimitError as refused:
        seconds = refused.retry_after_seconds
        wait = timedelta(seconds=min(max(seconds, 0), LONGEST_WAIT.total_seconds())) if seconds is not None else None
        raise Throttled(f"the CalDAV server answered HTTP {refused.status or 429} (slow down)", wait) from None


def object_name(key: str) -> str:
    return f"{key}.ics"


def booking_ics(event: BookingEvent) -> str:
    """Our booking as one VEVENT: its UID is the booking's key, and X-NEXTSLOT-BOOKING marks it as ours."""
    calendar = Calendar()
    calendar.add("prodid", "-//nextslot//bookings//EN")
    calendar.add("version", "2.0")
    vevent = Event()
    vevent.add("uid", event.key)
    vevent.add("dtstamp", datetime.now(UTC))
    vevent.add("dtstart", event.starts_at.astimezone(UTC))
    vevent.add("dtend", event.ends_at.astimezone(UTC))
    vevent.add("summary", event.summary)
    vevent.add("description", event.description)
    vevent.add("transp", "OPAQUE")
    vevent.add(OURS, event.key)
    calendar.add_component(vevent)
    return calendar.to_ical().decode()


def read(reader: CalDavConnection, source: CalendarSource, since: SyncState, since_window: Interval | None,
         window: Interval, load: Callable[[], StoredEvents]) -> Reading:
    asked = reader.state()
    state = SyncState(asked.sync_token, asked.ctag)
    same_window = since_window == window
    if same_window and unchanged(since, state):
        return Reading("unchanged", state, {}, set(), None)
    stored = load()

    def stale(href: str, etag: str | None) -> bool:
        return etag is None or href not in stored or stored[href][0] != etag

    changes = None
    if same_window and state.sync_token and since.sync_token:
        changes = reader.changes(since.sync_token)  # None: the server refused the token
    if changes is not None:
        how, state = "changes", SyncState(changes.sync_token, state.ctag)
        wanted = {h for h, etag in changes.changed.items() if stale(h, etag)}
        gone = changes.deleted & stored.keys()
    else:  # the token and ctag were read before the listing: a change in between is seen again next time
        how, listed = "window", reader.listing(*window)
        wanted = {h for h, etag in listed.items() if stale(h, etag)}
        gone = stored.keys() - listed.keys()
    fetched = reader.bodies(wanted) if wanted else {}
    put = {h: (etag, data) for h, (etag, data) in fetched.items() if data is not None}
    gone |= {h for h, (_, data) in fetched.items() if data is None} & stored.keys()
    if same_window and not put and not gone:  # what was reported is already stored
        return Reading(how, state, put, gone, None)
    texts = [data for h, (_, data) in stored.items() if h not in gone and h not in put and h not in source.own]
    intervals = busy_intervals(texts + [data for h, (_, data) in put.items() if h not in source.own], source.zone,
                               window)
    return Reading(how, state, put, gone, intervals)


def unchanged(since: SyncState, state: SyncState) -> bool:
    if state.sync_token is not None:
        return state.sync_token == since.sync_token
    return state.ctag is not None and state.ctag == since.ctag
