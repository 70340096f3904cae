"""Staff members' own calendars: read by the scheduler, their busy time blocks availability.

Each calendar is read by its row's provider (`providers.Registry`: CalDAV, Google, Microsoft), which reports what changed
since the stored sync state and the window's busy time recomputed (see `provider.py`); the engine stores the
events (`external_events`) and busy time (`external_busy`) it reports, and the state to start from next time.

The window is whole UTC days, so it moves once a day, and the first sync of each day lists it in full: that
brings in events the window now reaches (a recurring event's next occurrences are re-expanded from stored text),
drops those it left, and bounds the damage of a server that failed to report a change to one day.

One sync per calendar at a time, across any number of scheduler processes: a run leases the calendar row
(`locked_until`, claimed with SKIP LOCKED), talks to the server with no transaction open, and writes in one short
transaction only if the row still carries its lease; a run too slow to finish within its lease is dropped, so it
cannot overwrite a newer result. A failed sync records the error and keeps the last known busy time: a broken
feed never frees time. External busy time is a soft input: it is checked with the claims before a booking is
claimed (`queries.calendar_for`), but the database's exclusion constraint covers claims only.

Google and Microsoft calendars are read with their grant's access token, refreshed first when it is about to
expire; a grant the provider refuses marks the calendar `needs_reconnect` (not due again until reconnected) and
its busy time stays. A push from the provider (`pushed_at`) makes a calendar due at once, and each sync of such a
calendar renews its push channel a day before it runs out.
"""
from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.orm import Session, sessionmaker

from nextslot.calendars import grants
from nextslot.calendars.bounded_session import calendar_failure
from nextslot.calendars.provider import (
    CalendarSource,
    Channel,
    Interval,
    Reading,
    StoredEvents,
    SyncState,
    TokenRejected,
)
from nextslot.calendars.providers import DEFAULT, Registry
from nextslot.calendars.tokens import open_secret, secret_hash
from nextslot.core.calendar_writes import retry_given_up
from nextslot.storage import leases
from nextslot.storage.alone import Failed, alone, in_savepoint
from nextslot.storage.tables import (
    Business,
    CalendarGrant,
    CalendarWrite,
    ExternalBusy,
    ExternalCalendar,
    ExternalEvent,
    Resource,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork

log = logging.getLogger(__name__)

PAST = timedelta(days=1)
AHEAD = timedelta(days=90)  # time further ahead is not blocked until a later sync reads it
SLACK = timedelta(days=1)  # the server reads floating and all-day times in its own zone, we in the resource's
EVERY = timedelta(minutes=5)  # sync_all's default: a calendar read this recently is not due
LEASE = timedelta(minutes=10)  # a run still going after this is taken for dead; its result will be dropped
RENEW = timedelta(days=1)  # a push channel running out within this is replaced by the sync


@dataclass(frozen=True)
class Lease:
    """One run's hold on a calendar, with the sync state stored when it was claimed."""

    source: CalendarSource
    until: datetime  # the fence: the result is written only while the row still says this
    state: SyncState
    window: Interval | None
    claimed_at: datetime | None = None  # a push after this makes the calendar due again
    channel: Channel | None = None  # its push channel, if it has one


@dataclass(frozen=True)
class Synced:
    calendar_id: int
    intervals: int
    read: Literal["unchanged", "changes", "window"]  # how: state only, changes since the token, or the whole window
    fetched: int  # event objects downloaded


@dataclass(frozen=True)
class SyncFailed:
    calendar_id: int
    error: str


@dataclass(frozen=True)
class AlreadySyncing:
    """Another run holds the calendar's lease; this one did nothing."""

    calendar_id: int


@dataclass(frozen=True)
class Superseded:
    """This run's lease ran out and another run took the calendar over: this run's result was dropped."""

    calendar_id: int


SyncResult = Synced | SyncFailed | AlreadySyncing | Superseded


@dataclass(frozen=True)
class NewChannel:
    channel: Channel
    secret_hash: str  # what the row keeps of the secret the provider sends back with each notification

Connect = Callable[[CalendarSource], AbstractContextManager[Any]]


# --- syncing ---------------------------------------------------------------------------------------


def sync_all(session_factory: sessionmaker[Session], now: datetime, every: timedelta = EVERY,
             connect: Connect | None = None, registry: Registry = DEFAULT,
             pushed_only: bool = False) -> list[SyncResult]:
    """Sync, one after another, every calendar not read for `every` (or pushed) that no other run holds;
    `pushed_only`: just those a provider said changed."""
    results: list[SyncResult] = []
    done: list[int] = []
    due_before = None if pushed_only else now - every
    while (lease := claim(session_factory, now, due_before=due_before, skip=done, pushed=pushed_only)) is not None:
        result = lease if isinstance(lease, SyncFailed) else run(session_factory, lease, now, connect, registry)
        done.append(result.calendar_id)
        results.append(result)
    return results


def sync_calendar(session_factory: sessionmaker[Session], calendar_id: int, now: datetime,
                  connect: Connect | None = None, registry: Registry = DEFAULT) -> SyncResult:
    """Sync one calendar now, due or not, unless another run holds it."""
    lease = claim(session_factory, now, calendar_id=calendar_id)
    if lease is None:
        return AlreadySyncing(calendar_id)
    return lease if isinstance(lease, SyncFailed) else run(session_factory, lease, now, connect, registry)


def claim(session_factory: sessionmaker[Session], now: datetime, calendar_id: int | None = None,
          due_before: datetime | None = None, skip: Collection[int] = (),
          pushed: bool = False) -> Lease | SyncFailed | None:
    """Lease one calendar (that one, or the pushed and then the longest unread of those due) that no live lease
    holds; SyncFailed, recorded on the row, if its own rows cannot say where to read it (e.g. a zone that is not
    one). A calendar needing reconnection is never due."""
    until = now + LEASE
    return leases.claimed(session_factory, leases.CALENDARS, now, until, 1,
                          lambda s, ids: lease_or_failure(s, ids[0], now, until) if ids else None,
                          calendar_id=calendar_id, due_before=due_before, skip=list(skip), pushed=pushed)


def lease_or_failure(s: Session, calendar_id: int, now: datetime, until: datetime) -> Lease | SyncFailed:
    calendar = s.get(ExternalCalendar, calendar_id)
    lease = in_savepoint(s, lambda: lease_of(s, calendar, until), "calendar %s (business %s): cannot be read",
                         calendar.id, calendar.business_id)
    if isinstance(lease, Failed):  # recorded like a failed sync: it waits its turn behind the others
        failed = SyncFailed(calendar.id, f"{lease.error}: the calendar's settings cannot be read")
        calendar.last_error, calendar.last_error_at, calendar.locked_until = failed.error, now, None
        return failed
    return lease


def lease_of(s: Session, calendar: ExternalCalendar, until: datetime) -> Lease:
    # all-day and floating times are the resource's own days: its branch's zone when it has no zone of its own
    zone = s.get_one(Resource, calendar.resource_id).own_timezone or s.get_one(Business, calendar.business_id).timezone
    source = source_of(s, calendar, ZoneInfo(zone))
    window = (calendar.window_start, calendar.window_end) if calendar.window_start else None
    channel = Channel(calendar.channel_id, calendar.channel_resource, calendar.channel_expires_at) \
        if calendar.channel_id and calendar.channel_expires_at else None
    return Lease(source, until, SyncState(calendar.sync_token, calendar.ctag), window, until - LEASE, channel)


def source_of(s: Session, calendar: ExternalCalendar, zone: ZoneInfo) -> CalendarSource:
    """Where to read the calendar, with the ids of the events nextslot wrote into it (never busy time)."""
    own = frozenset(s.scalars(select(CalendarWrite.remote_id).where(CalendarWrite.calendar_id == calendar.id,
                                                                    CalendarWrite.remote_id.is_not(None))))
    return CalendarSource(calendar.id, calendar.business_id, calendar.resource_id, calendar.provider,
                          calendar.url, calendar.username, calendar.password, zone, calendar.grant_id,
                          calendar.calendar_ref, None, own)


def opened(session_factory: sessionmaker[Session], registry: Registry, source: CalendarSource,
           now: datetime) -> CalendarSource:
    """The source with a fresh access token, for a provider that needs one (raises GrantRefused, LookupError)."""
    provider = registry.providers.get(source.provider)
    if provider is None:
        raise LookupError(f"no calendar provider called {source.provider!r} is configured")
    if source.password:  # a CalDAV password, stored encrypted (or, from before, in the clear)
        source = dataclasses.replace(source, password=open_secret(registry.box, source.password))
    if source.grant_id is None:
        return source
    if registry.box is None or provider.oauth is None:
        raise LookupError(f"{source.provider} calendars are not configured on this server")
    token = grants.access_token(session_factory, registry.box, source.grant_id, provider.oauth.refresh, now)
    return dataclasses.replace(source, access_token=token)


def token_rejected(session_factory: sessionmaker[Session], source: CalendarSource, now: datetime) -> None:
    """The provider refused an access token we took for valid: the next use refreshes it (and learns whether
    the grant itself is gone)."""
    if source.grant_id is not None:
        with session_factory() as s:
            s.execute(update(CalendarGrant).where(CalendarGrant.id == source.grant_id)
                      .values(expires_at=now))
            s.commit()


def run(session_factory: sessionmaker[Session], lease: Lease, now: datetime, connect: Connect | None = None,
        registry: Registry = DEFAULT) -> SyncResult:
    """Read the calendar under the lease and write what was learnt; on any failure keep the busy time."""
    window = window_for(now)
    channel: NewChannel | None = None
    try:
        source = opened(session_factory, registry, lease.source, now)
        provider = registry.providers[source.provider]
        with (connect or registry.connect)(source) as connection:
            reading = provider.read(connection, source, lease.state, lease.window, window,
                                    lambda: stored_events(session_factory, lease.source.id))
            channel = renewed_channel(provider, connection, source, lease, registry, now)
    except Exception as error:  # a remote calendar can fail in any way; none of them may free time
        if isinstance(error, TokenRejected):
            token_rejected(session_factory, lease.source, now)
        message = calendar_failure(error)[:2000].replace("\x00", "")  # kept for the business's staff
        log.warning("calendar %s sync failed (%s)", lease.source.id, type(error).__name__)  # the text may quote
        return record_failure(session_factory, lease, now, message)  # the server's URL or its events
    recorded = alone(lambda: record(session_factory, lease, now, window, reading, channel),
                     "calendar %s (business %s): the result could not be stored", lease.source.id,
                     lease.source.business_id)
    if isinstance(recorded, Failed):  # what the server sent cannot be stored: the last busy time stands
        return record_failure(session_factory, lease, now, f"{recorded.error}: the result could not be stored")
    return recorded


def renewed_channel(provider: Any, connection: Any, source: CalendarSource, lease: Lease, registry: Registry,
                    now: datetime) -> NewChannel | None:
    """A new push channel (with its secret's hash) if the calendar's runs out within RENEW (or it has none); None: keep the one it has.
    A failure here costs the push only: the periodic sync still reads the calendar."""
    address = registry.push_address(source.provider)
    if not getattr(provider, "pushes", False) or address is None:
        return None
    if lease.channel is not None and lease.channel.expires_at - RENEW > now:
        return None
    secret = secrets.token_urlsafe(32)
    try:
        made = provider.watch(connection, source, address, f"nextslot-{source.id}-{secrets.token_hex(8)}", secret,
                              now)
    except Exception as error:  # noqa: BLE001 - the sync itself went well
        log.warning("calendar %s: push channel not made (%s)", source.id, type(error).__name__)
        return None
    if lease.channel is not None:
        try:  # the old channel would keep calling until it runs out: stop it
            provider.unwatch(connection, source, lease.channel.id, lease.channel.resource)
        except Exception as error:  # noqa: BLE001 - its calls are refused by id from now on anyway
            log.info("calendar %s: old push channel not stopped (%s)", source.id, type(error).__name__)
    return NewChannel(made, secret_hash(secret))


def window_for(now: datetime) -> Interval:
    """The window a sync at `now` reads: whole UTC days, covering PAST before to AHEAD after with SLACK to spare."""
    day = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    return day - PAST - SLACK, day + timedelta(days=1) + AHEAD + SLACK


def stored_events(session_factory: sessionmaker[Session], calendar_id: int) -> StoredEvents:
    with session_factory() as s:
        rows = s.execute(select(ExternalEvent.href, ExternalEvent.etag, ExternalEvent.data)
                         .where(ExternalEvent.calendar_id == calendar_id))
        return {href: (etag, data) for href, etag, data in rows}


# --- writing (one short transaction, fenced by the lease) ------------------------------------------


def record(session_factory: sessionmaker[Session], lease: Lease, now: datetime, window: Interval,
           reading: Reading, channel: NewChannel | None = None) -> Synced | Superseded:
    source = lease.source
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        s = uow.session
        calendar = s.get(ExternalCalendar, source.id, with_for_update=True)
        if calendar is None or calendar.locked_until != lease.until:
            log.warning("calendar %s: lease lost during sync, result dropped", source.id)
            return Superseded(source.id)
        if reading.intervals is None:
            intervals = s.scalar(select(func.count()).where(ExternalBusy.calendar_id == source.id))
        else:
            if replaced := reading.gone | reading.put.keys():
                s.execute(delete(ExternalEvent).where(ExternalEvent.calendar_id == source.id,
                                                      ExternalEvent.href.in_(replaced)))
            s.add_all(ExternalEvent(business_id=source.business_id, calendar_id=source.id, href=href, etag=etag,
                                    data=data) for href, (etag, data) in reading.put.items())
            s.execute(delete(ExternalBusy).where(ExternalBusy.calendar_id == source.id))
            spans = within(reading.intervals, window)
            s.add_all(ExternalBusy(business_id=source.business_id, resource_id=source.resource_id,
                                   calendar_id=source.id, during=Range(a, b)) for a, b in spans)
            intervals = len(spans)
        if calendar.last_error is not None:  # back from failing: the writes given up meanwhile are tried again
            retry_given_up(uow, source.id, now)
        calendar.sync_token, calendar.ctag = reading.state.sync_token, reading.state.ctag
        calendar.window_start, calendar.window_end = window
        calendar.last_synced_at, calendar.last_error, calendar.last_error_at = now, None, None
        calendar.locked_until = None
        if calendar.pushed_at is not None and lease.claimed_at is not None and calendar.pushed_at <= lease.claimed_at:
            calendar.pushed_at = None  # read after the push: done (a later push leaves it due again)
        if channel is not None:
            made = channel.channel
            calendar.channel_id, calendar.channel_resource = made.id, made.resource
            calendar.channel_secret_hash, calendar.channel_expires_at = channel.secret_hash, made.expires_at
        uow.commit()
    log.info("calendar %s synced (%s, %d fetched, %d busy intervals)", source.id, reading.how, len(reading.put),
             intervals)
    return Synced(source.id, intervals, reading.how, len(reading.put))


def within(intervals: list[Interval], window: Interval) -> list[Interval]:
    """The busy time the window holds: an event from year 1 at +14:00 starts in 1 BC, which PostgreSQL stores
    but Python cannot load back, and nothing outside the window is ever asked of it."""
    clipped = ((max(a, window[0]), min(b, window[1])) for a, b in intervals)
    return [(a, b) for a, b in clipped if a < b]


def record_failure(session_factory: sessionmaker[Session], lease: Lease, now: datetime,
                   message: str) -> SyncFailed | Superseded:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        calendar = uow.session.get(ExternalCalendar, lease.source.id, with_for_update=True)
        if calendar is None or calendar.locked_until != lease.until:
            return Superseded(lease.source.id)
        calendar.last_error, calendar.last_error_at, calendar.locked_until = message, now, None
        if calendar.pushed_at is not None and lease.claimed_at is not None and calendar.pushed_at <= lease.claimed_at:
            calendar.pushed_at = None  # the periodic sync tries again; a push must not retry in a tight loop
        uow.commit()
    return SyncFailed(lease.source.id, message)
