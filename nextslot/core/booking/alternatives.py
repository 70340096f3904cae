"""The answer to a lost race or a taken time: the openings nearest the requested start, as committed now."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from nextslot.core.booking.availability import find_open_slots, nearest
from nextslot.core.planning import Plan, timelines
from nextslot.core.results import SlotTaken
from nextslot.core.views import slot_view
from nextslot.schemas.views import SlotView
from nextslot.storage.uow import SqlAlchemyUnitOfWork

ALTERNATIVES = 3


def slot_taken(
    uow: SqlAlchemyUnitOfWork, plan: Plan, start: datetime, now: datetime,
    customer_zone: str | None = None, exclude_booking_id: int | None = None, party: int = 1,
) -> SlotTaken:
    """Roll back, then offer the openings nearest the requested time (for the same party), as committed now."""
    uow.rollback()
    return SlotTaken(start, alternatives(uow.session, plan, start, now, customer_zone, exclude_booking_id, party))


def alternatives(
    s: Session, plan: Plan, target: datetime, now: datetime,
    customer_zone: str | None, exclude_booking_id: int | None, party: int = 1,
) -> list[SlotView]:
    found = []
    for window in ((target - timedelta(days=1), target + timedelta(days=1)),
                   (target - timedelta(days=1), target + timedelta(days=14))):
        groups = timelines(s, plan, window, now, exclude_booking_id, party)
        found = [x for x in find_open_slots(plan.rules, groups, window, now) if x.starts_at != target]
        if len(found) >= ALTERNATIVES:
            break
    return [slot_view(x, plan, customer_zone) for x in nearest(found, target, ALTERNATIVES)]
