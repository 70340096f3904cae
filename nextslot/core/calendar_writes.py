"""Bookings into staff calendars: every change of a booking queues a write for each connected calendar of the
resources it claims (or claimed: a move to another staff member takes the event out of the first calendar).

Written in the booking's own transaction, like the outbox: a rolled-back change queues nothing, a committed one is
never lost. One row per (calendar, booking) carries a version: a change bumps it and makes the row due; the
scheduler (`nextslot.calendars.writes`) writes the booking as it stands then. A row being written when the booking
changes again stays leased to its writer, which sees the newer version when it records and leaves the row due,
so an older write can never land after a newer one.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from nextslot.schemas.statuses import LIVE
from nextslot.storage.tables import Booking, CalendarWrite, Claim, ExternalCalendar
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def queue_calendar_writes(uow: SqlAlchemyUnitOfWork, booking: Booking, now: datetime) -> None:
    """Queue the booking's state for every calendar that should show it, or did."""
    uow.session.flush()  # the claims this change made or released are what the select sees
    calendars = (select(literal(booking.business_id), ExternalCalendar.id, literal(booking.id), literal(now),
                        literal(now))
                 .where(ExternalCalendar.business_id == booking.business_id, ExternalCalendar.write_back,
                        ExternalCalendar.resource_id.in_(select(Claim.resource_id).where(
                            Claim.booking_id == booking.id)))
                 .distinct())
    statement = insert(CalendarWrite).from_select(
        ["business_id", "calendar_id", "booking_id", "due_at", "updated_at"], calendars)
    uow.session.execute(statement.on_conflict_do_update(
        constraint="calendar_writes_one_per_booking",
        set_={"version": CalendarWrite.version + 1, "due_at": now, "updated_at": now, "attempts": 0,
              "last_error": None,
              # a row being written stays its writer's: it finds the new version when it records
              "status": case((CalendarWrite.status == "sending", "sending"), else_="pending")}))


def queue_future_bookings(uow: SqlAlchemyUnitOfWork, calendar: ExternalCalendar, now: datetime) -> None:
    """A newly connected calendar gets the resource's bookings still to come, not only later changes."""
    if not calendar.write_back:
        return
    uow.session.flush()
    bookings = (select(literal(calendar.business_id), literal(calendar.id), Booking.id, literal(now), literal(now))
                .where(Booking.business_id == calendar.business_id, Booking.status.in_([str(s) for s in LIVE]),
                       Booking.ends_at > now,
                       Booking.id.in_(select(Claim.booking_id).where(Claim.resource_id == calendar.resource_id,
                                                                     Claim.active, Claim.booking_id.is_not(None))))
                .distinct())
    uow.session.execute(insert(CalendarWrite).from_select(
        ["business_id", "calendar_id", "booking_id", "due_at", "updated_at"], bookings)
        .on_conflict_do_nothing(constraint="calendar_writes_one_per_booking"))


def retry_given_up(uow: SqlAlchemyUnitOfWork, calendar_id: int, now: datetime) -> None:
    """The calendar works again (a sync after failing ones, or a reconnect): its writes given up meanwhile, or
    waiting out a long backoff, are due now, for bookings not over yet. Each writes the booking as it stands then,
    found by the booking's key, so a write that had landed with its answer lost is not made twice."""
    uow.session.execute(
        update(CalendarWrite)
        .where(CalendarWrite.calendar_id == calendar_id,
               or_(CalendarWrite.status == "failed", and_(CalendarWrite.status == "pending",
                                                         CalendarWrite.due_at > now)),
               CalendarWrite.booking_id.in_(select(Booking.id).where(Booking.business_id == CalendarWrite.business_id,
                                                                     Booking.ends_at > now)))
        .values(status="pending", due_at=now, attempts=0, locked_until=None, updated_at=now))


def write_again(uow: SqlAlchemyUnitOfWork, business_id: int, booking_ids: list[int], now: datetime) -> None:
    """Make the bookings' existing rows due again, for a change that is not the booking's own (its customer erased):
    each calendar that shows a booking gets it as it stands now. No row is added for a calendar that never had it."""
    if not booking_ids:
        return
    uow.session.execute(
        update(CalendarWrite).where(CalendarWrite.business_id == business_id, CalendarWrite.booking_id.in_(booking_ids))
        .values(version=CalendarWrite.version + 1, due_at=now, updated_at=now, attempts=0, last_error=None,
                status=case((CalendarWrite.status == "sending", "sending"), else_="pending")))
