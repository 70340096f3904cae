"""The scheduler's side of writing bookings into staff calendars: drain `calendar_writes`.

Each due row is leased (SKIP LOCKED, so any number of schedulers share the queue and never take the same row),
the booking's state at that moment is read in the same short transaction, the provider is called with no
transaction open, and the outcome is written fenced by the lease. The provider finds our event by its key, the
booking's and the staff member's together (`event_key`), so a retry after a lost answer, or after a lease that ran
out mid-write, updates the one event instead of adding another; and staff members who share one calendar (one
Google calendar, one Microsoft 365 mailbox, one CalDAV collection) each have their own event there, so one's removal
(the booking moved to a colleague, or a nurse replaced in a party booking) never takes out another's, whatever order
the writes land in. A booking that is cancelled or expired, or no longer claims the calendar's resource (moved to a
colleague), is removed from the calendar.

Rows written before 0033 (`legacy_key`) hold their event under the booking's key alone, which colleagues sharing the
calendar may hold too: their next write puts the event under its own key, takes the old one out, and makes the
booking's other rows still on the old key due, so each puts its own back.

A failing write is tried again with backoff; after GIVE_UP_AFTER tries it says failed (the console shows it) and is
still tried every RETRY_FAILED until its booking is over, through the same leased queue, so no two schedulers
ever write one booking at once. A provider that asks us to slow down (`Throttled`: HTTP 429, a rate or quota
limit) holds every write into that calendar until its Retry-After has passed, the rest of the batch included.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session, sessionmaker

from nextslot.calendars.bounded_session import calendar_failure
from nextslot.calendars.grants import GrantRefused
from nextslot.calendars.provider import BookingEvent, CalendarSource, Throttled, TokenRejected
from nextslot.calendars.providers import DEFAULT, Registry
from nextslot.calendars.sync import opened, source_of, token_rejected
from nextslot.core.clock import utcnow
from nextslot.core.lent import lent
from nextslot.core.views import booked_resources
from nextslot.schemas.statuses import BookingStatus
from nextslot.storage import leases
from nextslot.storage.alone import alone
from nextslot.storage.outage import on_fresh_connection
from nextslot.storage.tables import Booking, Business, CalendarWrite, ExternalCalendar, Resource

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
GIVE_UP_AFTER = 10  # attempts (about 7 hours with the backoff below); then the row says failed, with its error
RETRY_FAILED = timedelta(hours=3)  # a failed row is tried again this often until its booking is over (and at
#                                    once when its calendar works again after failing: `retry_given_up`)
GONE = (BookingStatus.CANCELLED, BookingStatus.EXPIRED)


@dataclass(frozen=True)
class WriteJob:
    id: int
    lease: datetime
    version: int
    attempts: int
    remote_id: str | None
    source: CalendarSource
    key: str
    event: BookingEvent | None  # None: take it out of the calendar
    ends_at: datetime  # the booking's end: a failed write is not tried again after it
    legacy: str | None  # the booking's own key, which the row's event was written under before 0033: taken out


@dataclass(frozen=True)
class Outcome:
    """What became of one leased write."""

    remote_id: str | None = None
    error: str | None = None
    refused: bool = False  # the grant is gone: due again as soon as the calendar is reconnected
    not_before: datetime | None = None  # the provider asked us to wait (Throttled) until then
    tried: bool = True  # False: not sent, its calendar was throttled earlier in the batch
    converted: bool = False  # the event under the booking's own key (before 0033) was taken out


def booking_key(booking: Booking) -> str:
    """Our booking's handle in every calendar: stable across moves, unique across businesses."""
    return f"nextslot-{booking.business_id}-{booking.id}-{booking.code}".lower()


def event_key(booking: Booking, resource_id: int) -> str:
    """Our event's handle in a calendar: one per booking and staff member (or room), so two of them connected to one
    calendar each keep their own event, and one's removal never takes out the other's."""
    return f"{booking_key(booking)}-r{resource_id}"


def event_of(s: Session, booking: Booking, resource: Resource, business: Business) -> BookingEvent:
    customer = booking.customer.name or "a customer"
    waiting = " (deposit not paid yet)" if booking.status == BookingStatus.PENDING_PAYMENT else ""
    return BookingEvent(
        key=event_key(booking, resource.id), summary=f"{booking.service.name}: {customer}{waiting}",
        description=f"Booked with {business.name} through nextslot, for {resource.name}. "
                    f"Booking code {booking.code}.",
        starts_at=booking.starts_at, ends_at=booking.ends_at, zone=resource.own_timezone or business.timezone)


class CalendarWriter:
    """Writes due bookings into staff calendars; `write_due` is the scheduler's job."""

    def __init__(self, session_factory: sessionmaker[Session], registry: Registry = DEFAULT,
                 clock: Callable[[], datetime] = utcnow, batch: int = 20):
        self._session_factory, self._registry, self._clock, self._batch = session_factory, registry, clock, batch

    def write_due(self) -> int:
        """Write one batch of due rows; return how many were claimed."""
        now = self._clock()
        lease = now + LEASE
        jobs = leases.claimed(self._session_factory, leases.CALENDAR_WRITES, now, lease, self._batch,
                              lambda s, ids: [self._job(s, i, lease) for i in ids])
        held: dict[int, datetime] = {}  # calendars that asked us to slow down, until when
        for job in jobs or []:
            if job.source.id in held:  # asking again now would only prolong the provider's throttling
                self._record(job, Outcome(not_before=held[job.source.id], tried=False), self._clock())
            elif (until := self._write(job)) is not None:
                held[job.source.id] = until
        return len(jobs or [])

    def _job(self, s: Session, write_id: int, lease: datetime) -> WriteJob:
        row = s.get(CalendarWrite, write_id)
        calendar = s.get(ExternalCalendar, row.calendar_id)
        booking = s.get(Booking, row.booking_id)
        business = s.get(Business, booking.business_id)
        resource = s.get(Resource, calendar.resource_id)
        source = source_of(s, calendar, ZoneInfo(resource.own_timezone or business.timezone))
        present = booking.status not in GONE and resource.id in {r.id for r in booked_resources(lent(s), booking.id)}
        return WriteJob(row.id, lease, row.version, row.attempts, row.remote_id, source,
                        event_key(booking, resource.id), event_of(s, booking, resource, business) if present else None,
                        booking.ends_at, booking_key(booking) if row.legacy_key else None)

    def _write(self, job: WriteJob) -> datetime | None:
        """Write one job; return until when its calendar asked us to wait, if it did."""
        now = self._clock()
        try:
            source = opened(self._session_factory, self._registry, job.source, now)
            provider = self._registry.providers[source.provider]
            mine = job.remote_id if job.legacy is None else None  # before 0033 it named the event on the old key
            with self._registry.connect(source) as connection:
                if job.event is not None:
                    remote_id: str | None = provider.put(connection, source, job.event, mine)
                else:
                    provider.remove(connection, source, job.key, mine)
                    remote_id = mine
                if job.legacy is not None:  # its own event stands (or is gone): the old shared one goes
                    provider.remove(connection, source, job.legacy, job.remote_id)
        except Exception as error:  # a calendar can fail in any way: the row is retried, then given up on
            if isinstance(error, TokenRejected):
                token_rejected(self._session_factory, job.source, now)
            if not isinstance(error, GrantRefused):  # a refused grant waits for reconnecting, not for backoff
                log.warning("calendar write %s (calendar %s) failed (%s)", job.id, job.source.id,
                            type(error).__name__)
            message = calendar_failure(error)[:1000].replace("\x00", "")
            until = None
            if isinstance(error, Throttled):  # its own wait, or our backoff's, for every write into the calendar
                until = now + (error.retry_after if error.retry_after is not None else backoff(job.attempts))
                self._hold_calendar(job.source.id, until)
            self._record(job, Outcome(error=message, refused=isinstance(error, GrantRefused), not_before=until),
                         now)
            return until
        self._record(job, Outcome(remote_id=remote_id, converted=job.legacy is not None), now)
        return None

    def _hold_calendar(self, calendar_id: int, until: datetime) -> None:
        """No write into the calendar before `until`: those due sooner wait (rows being written are left to
        their writers, which meet the same answer)."""
        def hold() -> None:
            with self._session_factory() as s:
                s.execute(update(CalendarWrite).where(CalendarWrite.calendar_id == calendar_id,
                                                      CalendarWrite.status == "pending", CalendarWrite.due_at < until)
                          .values(due_at=until))
                s.execute(update(CalendarWrite).where(CalendarWrite.calendar_id == calendar_id,
                                                      CalendarWrite.status == "failed",
                                                      CalendarWrite.locked_until < until)
                          .values(locked_until=until))
                s.commit()

        alone(lambda: on_fresh_connection(hold), "calendar %s: its writes could not be held back", calendar_id)

    def _record(self, job: WriteJob, outcome: Outcome, now: datetime) -> None:
        # if even this fails, the lease runs out and the row is written again: the same event, found by its key
        alone(lambda: on_fresh_connection(lambda: self._record_once(job, outcome, now)),
              "calendar write %s: the outcome could not be stored", job.id)

    def _record_once(self, job: WriteJob, outcome: Outcome, now: datetime) -> None:
        with self._session_factory() as s:
            row = s.get(CalendarWrite, job.id, with_for_update=True)
            if row is None:
                return  # the calendar was disconnected meanwhile
            if outcome.remote_id and row.remote_id != outcome.remote_id:
                row.remote_id = outcome.remote_id  # learnt whoever holds the row now: it is never busy time
            if outcome.converted and row.legacy_key:  # whoever holds the row: the old shared event is gone
                row.legacy_key, row.remote_id = False, outcome.remote_id
                self._rewrite_legacy_siblings(s, row, now)
            if row.status != "sending" or row.locked_until != job.lease:
                s.commit()  # a slower twin: the row's new owner writes the newest state
                return
            row.locked_until, row.updated_at = None, now
            changed = row.version != job.version
            waited = max(now, outcome.not_before or now)  # never before the provider said
            if not outcome.tried:  # held back unsent: not a try
                row.status, row.attempts, row.due_at = "pending", max(row.attempts - 1, 0), waited
            elif outcome.error is None and not changed:
                row.status, row.written_version, row.last_error = "done", job.version, None
            elif outcome.error is None:  # the booking changed while we wrote: write it again now
                row.status, row.due_at = "pending", now
            elif outcome.refused:  # due again as soon as the calendar is reconnected (not claimed before)
                row.status, row.last_error, row.due_at = "pending", outcome.error, now
            elif changed:  # the booking changed meanwhile: its new state is due (once the provider lets us)
                row.status, row.last_error, row.due_at = "pending", outcome.error, waited
            elif job.attempts >= GIVE_UP_AFTER:  # the console says failed; tried again while the booking is to come
                retry = max(now + RETRY_FAILED, waited)
                row.status, row.last_error = "failed", outcome.error
                row.locked_until = retry if retry < job.ends_at else None
            else:
                row.status, row.last_error = "pending", outcome.error
                row.due_at = max(now + backoff(job.attempts), waited)
            s.commit()

    @staticmethod
    def _rewrite_legacy_siblings(s: Session, row: CalendarWrite, now: datetime) -> None:
        """The booking's other rows still on its own key may have shown their staff member through the event just
        taken out (two of its staff sharing the calendar): each writes its own now, as after a change."""
        s.execute(update(CalendarWrite).where(
            CalendarWrite.business_id == row.business_id, CalendarWrite.booking_id == row.booking_id,
            CalendarWrite.id != row.id, CalendarWrite.legacy_key)
            .values(version=CalendarWrite.version + 1, due_at=now, updated_at=now, attempts=0, last_error=None,
                    status=case((CalendarWrite.status == "sending", "sending"), else_="pending")))


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=30) * 2 ** max(attempts - 1, 0), timedelta(hours=3))


def writes_of(session_factory: sessionmaker[Session], booking_id: int) -> list[CalendarWrite]:
    """The booking's rows, for the console and tests."""
    with session_factory() as s:
        return list(s.scalars(select(CalendarWrite).where(CalendarWrite.booking_id == booking_id)
                              .order_by(CalendarWrite.calendar_id)))
