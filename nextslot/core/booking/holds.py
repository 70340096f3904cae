"""Holds: a slot kept for a few minutes while a caller gives their details; expired holds block no one."""
from __future__ import annotations

from datetime import datetime, timedelta

from nextslot.core.booking import idempotency
from nextslot.core.booking.alternatives import slot_taken
from nextslot.core.booking.availability import SlotProblem, check_slot
from nextslot.core.booking.claiming import claim_start
from nextslot.core.booking.refusals import slot_problem
from nextslot.core.instants import resolve_instant
from nextslot.core.planning import Plan, timelines
from nextslot.core.results import Held, HoldResult, Rejected
from nextslot.core.views import hold_view
from nextslot.core.waitlist import offers as waitlist_offers
from nextslot.schemas.commands import HoldCreate
from nextslot.storage.tables import Hold
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def hold(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: HoldCreate, now: datetime, minutes: int) -> HoldResult:
    """Keep a slot for a few minutes (`cmd.minutes`, else `minutes`) while the caller gives their details."""
    start = resolve_instant(cmd.starts_at, cmd.timezone, "starts_at")
    if isinstance(start, Rejected):
        return start
    with uow:
        plan = idempotency.hold_plan(uow, business_id, cmd)
        if not isinstance(plan, Plan):
            return plan
        if problem := plan.party_problem(cmd.party_size):
            return problem
        party = cmd.party_size
        checked = check_slot(plan.rules, timelines(uow, plan, (start, start), now, party=party, decides=True),
                             start, now)
        if checked is SlotProblem.TAKEN:
            return slot_taken(uow, plan, start, now, party=party)
        if isinstance(checked, SlotProblem):
            return slot_problem(checked, plan, start)
        expires = now + timedelta(minutes=cmd.minutes or minutes)
        held = Hold(business_id=business_id, service_id=plan.service_id, starts_at=start,
                    ends_at=start + plan.rules.duration, expires_at=expires, status="active", source=cmd.source,
                    party_size=party, holder=cmd.holder)
        uow.holds.add(held)
        resource_ids = claim_start(uow, plan, start, now, checked.resource_ids, hold_id=held.id, expires_at=expires,
                                   party=party)
        if resource_ids is None:
            return slot_taken(uow, plan, start, now, party=party)
        view = hold_view(held, plan, resource_ids)
        if cmd.idempotency_key:
            uow.idempotency.remember(business_id, cmd.idempotency_key, None,
                                     {"kind": "hold", "view": view.model_dump(mode="json")})
        uow.commit()
    return Held(view)


def release_hold(uow: SqlAlchemyUnitOfWork, business_id: int, hold_id: int) -> bool:
    """Let a hold go before it expires; False if there was no live hold with that id."""
    with uow:
        held = uow.holds.locked(business_id, hold_id, active_only=True)
        if held is None:
            return False
        uow.claims.release(hold_id=held.id)
        held.status = "released"
        uow.commit()
        return True


def expire_holds(uow: SqlAlchemyUnitOfWork, now: datetime) -> int:
    """Mark holds past their expiry released and their claims inactive (they already block no one)."""
    with uow:
        holds = uow.holds.lapsed(now)
        expired = [h.id for h in holds]
        if expired:
            uow.claims.release_holds(expired)
            uow.holds.mark_released(expired)
        for held in holds:  # a caller who held a time and hung up: someone waiting may want it
            waitlist_offers.note_freed(uow, held.business_id, (held.starts_at, held.ends_at),
                                       "hold_expired", now)
        uow.commit()
        return len(expired)
