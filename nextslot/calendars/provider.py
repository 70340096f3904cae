"""What the sync engine and the write-back queue ask of a calendar provider (CalDAV, Google, Microsoft).

A provider connects to one external calendar and reads it incrementally: from where the last sync left off
(`SyncState`) it reports the events that changed or went, and the busy time of the whole window recomputed
from them (free, tentative and cancelled events handled as the provider's data says). The engine stores what
comes back, fenced by its lease; the provider never touches the database.

Writing back: `put` makes our booking's event stand in the calendar as given, found by its key (the booking's and
the staff member's: two sharing a calendar have one each) as a Google event id and private extended property, a
Graph single-value extended property, a CalDAV UID and href, so a retry updates instead of adding; `remove` takes
it out. Events carrying our key are never read as busy.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]
StoredEvents = dict[str, tuple[str | None, str]]  # event id (CalDAV: href) -> (version tag, provider's text)


@dataclass(frozen=True)
class CalendarSource:
    """Where to read one calendar; plain data, so no transaction stays open during the network calls."""

    id: int
    business_id: int
    resource_id: int
    provider: str  # the key of its provider in `providers.PROVIDERS`
    url: str
    username: str | None
    password: str | None
    zone: ZoneInfo  # the resource's: all-day and floating events are its local days and times
    grant_id: int | None = None  # Google, Microsoft: the OAuth grant it is read with
    calendar_ref: str | None = None  # the provider's id of the calendar (Google: "primary")
    access_token: str | None = None  # filled in just before connecting, fresh
    own: frozenset[str] = frozenset()  # ids of the events nextslot wrote there: never busy time


class TokenRejected(Exception):
    """The provider refused the access token (HTTP 401): refresh it before the next try."""


class Throttled(Exception):
    """The provider refused a call to slow us down (HTTP 429, Google's rate and quota limits, a 503 with
    Retry-After) while the calendar itself is fine: nothing more is asked of it before `retry_after` has passed
    (None: it did not say; our own backoff decides)."""

    def __init__(self, message: str, retry_after: timedelta | None = None):
        super().__init__(message)
        self.retry_after = retry_after


LONGEST_WAIT = timedelta(days=1)  # a Retry-After further off than this is taken as this


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date: RFC 9110 10.2.3) as a wait of at most LONGEST_WAIT; None if
    absent or unreadable."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        return timedelta(seconds=min(int(value), int(LONGEST_WAIT.total_seconds())))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110: HTTP dates are GMT
        return None
    return min(max(when - now, timedelta(0)), LONGEST_WAIT)


@dataclass(frozen=True)
class BookingEvent:
    """One booking as it should appear in a staff member's calendar."""

    key: str  # stable, one per booking and staff member (`writes.event_key`): the provider finds the event by it
    summary: str
    description: str
    starts_at: datetime
    ends_at: datetime
    zone: str  # IANA name: the calendar shows it in the resource's zone


@dataclass(frozen=True)
class Channel:
    """A push channel (Google watch channel, Graph subscription) as the provider confirmed it."""

    id: str
    resource: str | None  # Google's resourceId
    expires_at: datetime


@dataclass(frozen=True)
class SyncState:
    """Where a calendar's events stand: a change token (CalDAV sync-token), and a cheaper marker that moves
    with any change (CalDAV ctag); either may be None (not offered)."""

    sync_token: str | None
    ctag: str | None


@dataclass(frozen=True)
class Reading:
    """What one run learnt from the provider, not yet written."""

    how: Literal["unchanged", "changes", "window"]  # state only, changes since the token, or the whole window
    state: SyncState  # what the events below are as of
    put: StoredEvents  # new or changed events
    gone: set[str]  # stored events to drop: deleted, or (window read) no longer touching the window
    intervals: list[Interval] | None  # the window's merged busy time; None: nothing changed, the stored one stands


class CalendarProvider(Protocol):
    """One kind of external calendar."""

    oauth: Any  # Google, Microsoft: the OAuth client its grants are refreshed with; CalDAV: None
    pushes: bool  # it can tell us about changes (watch channels, subscriptions)

    def connect(self, source: CalendarSource, allow_private: bool = False) -> AbstractContextManager[Any]:
        """An open connection to the calendar (closed on exit); public addresses only unless allowed."""
        ...

    def read(self, connection: Any, source: CalendarSource, since: SyncState, since_window: Interval | None,
             window: Interval, stored: Callable[[], StoredEvents]) -> Reading:
        """Read what changed since the state stored with `since_window`, for `window`; `stored` loads the
        stored events (only called when needed). Raises on any failure: the engine keeps the last busy time."""
        ...

    def put(self, connection: Any, source: CalendarSource, event: BookingEvent, remote_id: str | None) -> str:
        """Create or update our booking's event (found by `event.key`, or `remote_id`); return its id there."""
        ...

    def remove(self, connection: Any, source: CalendarSource, key: str, remote_id: str | None) -> None:
        """Take our booking's event out of the calendar; one already gone is fine."""
        ...
