"""Booking history: every change appends who, when, via which channel, and from what to what."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from nextslot.core.calendar_writes import queue_calendar_writes
from nextslot.storage.tables import Booking, BookingHistory
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def snapshot(booking: Booking) -> dict[str, Any]:
    return {"status": booking.status, "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat()}


def record(uow: SqlAlchemyUnitOfWork, booking: Booking, action: str, cmd: Any, now: datetime,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    uow.session.add(BookingHistory(
        business_id=booking.business_id, booking_id=booking.id, at=now, action=action,
        actor=cmd.actor or cmd.source, channel=cmd.source, before=before, after=after,
        note=getattr(cmd, "reason", "") or "",
    ))
    queue_calendar_writes(uow, booking, now)  # every recorded change reaches the staff calendars too
