"""Booking history: every change appends who, when, via which channel, and from what to what."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nextslot.core.calendar_writes import queue_calendar_writes
from nextslot.core.lent import lent
from nextslot.storage.tables import Booking, BookingHistory


def snapshot(booking: Booking) -> dict[str, Any]:
    return {"status": booking.status, "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat()}


def record(s: Session, booking: Booking, action: str, cmd: Any, now: datetime,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    s.add(BookingHistory(
        business_id=booking.business_id, booking_id=booking.id, at=now, action=action,
        actor=cmd.actor or cmd.source, channel=cmd.source, before=before, after=after,
        note=getattr(cmd, "reason", "") or "",
    ))
    queue_calendar_writes(lent(s), booking, now)  # every recorded change reaches the staff calendars too
