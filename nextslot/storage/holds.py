"""Holds: short-lived claims a caller keeps while giving their details."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nextslot.storage.tables import Hold


class HoldRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, hold: Hold) -> None:
        """Insert the hold now, so its claims can name it."""
        self.session.add(hold)
        self.session.flush()

    def locked(self, business_id: int, hold_id: int, *, active_only: bool = False) -> Hold | None:
        query = select(Hold).where(Hold.id == hold_id, Hold.business_id == business_id)
        if active_only:
            query = query.where(Hold.status == "active")
        return self.session.scalars(query.with_for_update()).one_or_none()

    def lapsed(self, now: datetime) -> list[Hold]:
        """Active holds past their expiry, locked; those another process is expiring are skipped."""
        return list(self.session.scalars(
            select(Hold).where(Hold.status == "active", Hold.expires_at <= now).with_for_update(skip_locked=True)
        ))

    def mark_released(self, hold_ids: list[int]) -> None:
        self.session.execute(update(Hold).where(Hold.id.in_(hold_ids)).values(status="released"))
