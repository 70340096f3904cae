"""Claims: the one place bookings and holds take time on the calendar.

The database decides races: capacity-1 resources by the exclusion constraint, capacity > 1
by the claim guard trigger (row lock + peak overlap). Never check-then-insert without them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from psycopg.errors import DeadlockDetected, ExclusionViolation
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from nextslot.storage.tables import Claim, Resource


class ClaimRepository:
    def __init__(self, session: Session):
        self.session = session

    def claim_all(
        self,
        business_id: int,
        resource_ids: Iterable[int],
        occupied: tuple[datetime, datetime],
        now: datetime,
        *,
        booking_id: int | None = None,
        hold_id: int | None = None,
        expires_at: datetime | None = None,
        seats: Mapping[int, int] | None = None,
    ) -> bool:
        """Claim every resource for the interval (`seats` places of those named, else one), all or none.
        False: another claim won the race."""
        session = self.session
        ids = sorted(set(resource_ids))  # always in id order, so racers never deadlock
        during = Range(*occupied)
        try:
            with session.begin_nested():
                # queue behind other claimers of these resources, in id order: the loser then meets the
                # winner's committed claim instead of a deadlock over two uncommitted ones
                session.execute(
                    select(Resource.id).where(Resource.id.in_(ids)).order_by(Resource.id)
                    .with_for_update(key_share=True)
                )
                self.release_expired_holds(ids, during, now)
                # one multi-row INSERT: rows go in in list order, so locks are taken in id order
                session.execute(insert(Claim).values([
                    dict(business_id=business_id, resource_id=rid, booking_id=booking_id, hold_id=hold_id,
                         during=during, expires_at=expires_at, active=True, seats=(seats or {}).get(rid, 1))
                    for rid in ids
                ]))
            return True
        except IntegrityError as error:
            if isinstance(error.orig, ExclusionViolation):
                return False
            raise
        except OperationalError as error:
            # backstop: PostgreSQL checks an exclusion constraint after inserting the row, so two writers
            # inserting clashing claims without the row locks above each wait for the other
            if isinstance(error.orig, DeadlockDetected):
                return False
            raise

    def release_expired_holds(self, resource_ids: list[int], during: Range[datetime], now: datetime) -> None:
        """Deactivate expired hold claims in the way: an expired hold never blocks anyone."""
        expired = (
            select(Claim.id)
            .where(Claim.resource_id.in_(resource_ids), Claim.active, Claim.expires_at <= now,
                   Claim.during.overlaps(during))
            .order_by(Claim.id)
            .with_for_update()
        )
        self.session.execute(update(Claim).where(Claim.id.in_(expired.scalar_subquery())).values(active=False))

    def release(self, *, booking_id: int | None = None, hold_id: int | None = None) -> None:
        """Free a booking's or a hold's claims at once."""
        owner = Claim.booking_id == booking_id if booking_id is not None else Claim.hold_id == hold_id
        self.session.execute(update(Claim).where(owner, Claim.active).values(active=False))

    def release_holds(self, hold_ids: list[int]) -> None:
        """Free the claims of several holds at once."""
        self.session.execute(update(Claim).where(Claim.hold_id.in_(hold_ids), Claim.active).values(active=False))

    def attach_to_booking(self, hold_id: int, booking_id: int) -> tuple[int, ...]:
        """Turn a live hold's claims into the booking's; returns the claimed resource ids."""
        moved = self.session.scalars(
            update(Claim)
            .where(Claim.hold_id == hold_id, Claim.active)
            .values(booking_id=booking_id, expires_at=None)
            .returning(Claim.resource_id)
        )
        return tuple(sorted(moved))
