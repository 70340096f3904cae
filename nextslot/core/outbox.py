"""Notification rows written in the same transaction as the change they announce."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from nextslot.storage.booking_writes import Message
from nextslot.storage.tables import Booking, Notification, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork

DEFAULT_REMINDER_OFFSETS = (24 * 60, 120)  # minutes before the start: the day before, a nudge


def announce(uow: SqlAlchemyUnitOfWork, booking: Booking, kind: str, now: datetime, **details: Any) -> None:
    """Queue a message about this booking, due at once."""
    uow.session.add(Notification(
        business_id=booking.business_id, booking_id=booking.id, customer_id=booking.customer_id,
        kind=kind, due_at=now, status="pending", attempts=0,
        payload={"code": booking.code, "starts_at": booking.starts_at.isoformat(), **details},
    ))


def announce_to_staff(uow: SqlAlchemyUnitOfWork, booking: Booking, kind: str, now: datetime, staff: list[Resource],
                      **details: Any) -> None:
    """Tell each staff member involved (who has a contact) that their booking moved or was cancelled."""
    for person in {r.id: r for r in staff if r.kind == "staff" and (r.email or r.phone)}.values():
        uow.session.add(Notification(
            business_id=booking.business_id, booking_id=booking.id, resource_id=person.id,
            kind=f"staff_{kind}", due_at=now, status="pending", attempts=0,
            payload={"code": booking.code, "starts_at": booking.starts_at.isoformat(), **details},
        ))


def tell_business(uow: SqlAlchemyUnitOfWork, business_id: int, kind: str, now: datetime, **details: Any) -> None:
    """Queue a notice to the business itself (no customer, booking or staff member) about its own set-up."""
    uow.session.add(Notification(
        business_id=business_id, kind=f"business_{kind}", due_at=now, status="pending", attempts=0,
        payload={"at": now.isoformat(), **details},
    ))


def schedule_reminders(uow: SqlAlchemyUnitOfWork, booking: Booking, now: datetime, offsets: tuple[int, ...] | None) -> None:
    """Queue the reminders still in the future for this booking's start."""
    for message in reminders(booking.code, booking.starts_at, now, offsets):
        uow.session.add(Notification(
            business_id=booking.business_id, booking_id=booking.id, customer_id=booking.customer_id,
            kind=message.kind, due_at=message.due_at, status="pending", attempts=0, payload=message.payload,
        ))


def reminders(code: str, starts_at: datetime, now: datetime, offsets: tuple[int, ...] | None) -> list[Message]:
    """The reminders still in the future for a booking's start, earliest offset first as listed."""
    found = []
    # one reminder per offset: a config listing one twice would remind twice at the same moment
    for minutes in dict.fromkeys(DEFAULT_REMINDER_OFFSETS if offsets is None else offsets):
        due = starts_at - timedelta(minutes=minutes)
        if due > now:
            found.append(Message("reminder", due, {"code": code, "starts_at": starts_at.isoformat(),
                                                    "minutes_before": minutes}))
    return found


def confirmed(code: str, starts_at: datetime, now: datetime, offsets: tuple[int, ...] | None) -> list[Message]:
    """What a new confirmed booking queues: its confirmation now, then its reminders (as `announce` and
    `schedule_reminders` would)."""
    return [Message("confirmation", now, {"code": code, "starts_at": starts_at.isoformat()}),
            *reminders(code, starts_at, now, offsets)]


def void_pending(uow: SqlAlchemyUnitOfWork, booking_id: int) -> None:
    """Messages about a booking's old state must never go out (one being sent right now is stopped too:
    its dispatcher finds it voided when it records the attempt)."""
    uow.session.execute(
        update(Notification)
        .where(Notification.booking_id == booking_id, Notification.status.in_(("pending", "sending")))
        .values(status="void")
    )
