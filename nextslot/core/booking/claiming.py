"""Claiming a start for a pooled service: the first free combination, looked for again after a lost claim."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from nextslot.core.booking.alternatives import remember_read, windows
from nextslot.core.booking.availability import assign, ordered
from nextslot.core.planning import Plan, build_timelines, deciding, read_committed
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.telemetry import metrics

MAX_CLAIM_TRIES = 20  # re-plans after lost claims; each one means a racer committed a claim in the way


def claim_start(
    uow: SqlAlchemyUnitOfWork, plan: Plan, start: datetime, now: datetime, first: tuple[int, ...], *,
    booking_id: int | None = None, hold_id: int | None = None, expires_at: datetime | None = None, party: int = 1,
) -> tuple[int, ...] | None:
    """Claim one pool member per requirement for `start`, trying `first` first; the ids claimed, or None.

    None only when no combination of members is free any more. The first pick comes from what was
    committed when the caller looked. When its claim meets a racer's claim, the racer has committed
    by then (claimers queue on the resource rows), so look again at what is committed now and try
    the members still free: a colleague free at that time is taken instead of answering "taken".
    Each lost claim means another booking took time in the way, so a few tries settle it. The look
    covers the day either side, so a loser's alternatives are built from it without reading again.
    """
    def claim(picked: tuple[int, ...]) -> bool:
        return uow.claims.claim_all(plan.business.id, picked, plan.rules.occupied(start), now, booking_id=booking_id,
                                    hold_id=hold_id, expires_at=expires_at, seats=plan.seats(picked, party),
                                    sweep=False)

    return first_free(uow, plan, start, now, first, claim, lambda: booking_id,
                      "hold" if hold_id is not None else "book", party)


def first_free(
    uow: SqlAlchemyUnitOfWork, plan: Plan, start: datetime, now: datetime, first: tuple[int, ...],
    claim: Callable[[tuple[int, ...]], bool], booking_id: Callable[[], int | None], kind: str, party: int = 1,
) -> tuple[int, ...] | None:
    """`claim_start`'s loop for any way of claiming: `claim(members)` True when every claim went in; `booking_id()`
    the booking whose own claims the look again leaves out (its latest row, when each try writes one)."""
    occupied = plan.rules.occupied(start)
    picked: tuple[int, ...] | None = first
    for _ in range(MAX_CLAIM_TRIES):
        if picked is None:
            metrics.LOST_RACES.labels(kind).inc()
            return None  # what is committed now leaves no combination free at this start
        if claim(picked):
            return picked
        metrics.LOST_CLAIMS.inc()
        committed = deciding(uow, plan, read_committed(uow, plan, windows(start)[0], now,
                                                        exclude_booking_id=booking_id()))
        remember_read(uow, plan, start, now, booking_id(), committed)
        again = assign(ordered(build_timelines(uow, plan, committed, party), start), occupied)
        if again == picked:  # free as committed: what was in the way is an expired hold (never counted) or gone
            uow.claims.release_expired_holds(picked, occupied, now)
        picked = again  # the fairest members still free, as committed now
    metrics.LOST_RACES.labels(kind).inc()
    return None
