"""Claims: the one place bookings and holds take time on the calendar.

The database decides races: capacity-1 resources by the exclusion constraint, capacity > 1
by the claim guard trigger (row lock + peak overlap). Never check-then-insert without them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.errors import DeadlockDetected, ExclusionViolation
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Executable,
    SelectBase,
    SmallInteger,
    func,
    insert,
    literal,
    select,
    true,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSTZRANGE, Range
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
        sweep: bool = True,
    ) -> bool:
        """Claim every resource for the interval (`seats` places of those named, else one), all or none.
        False: another claim won the race.

        One statement when nothing is in the way. Expired holds are let go only when a claim meets one
        (an expired hold never blocks anyone), which is rare, so the common path skips that sweep. With
        `sweep=False` a claim in the way answers False at once: the caller, who reads what is committed
        anyway after a lost claim, sweeps only when that read shows nothing in the way but an expired hold.
        """
        ids = sorted(set(resource_ids))  # always in id order, so racers never deadlock
        places = [(seats or {}).get(rid, 1) for rid in ids]
        statement = self.claim_statement(business_id, ids, places, Range(*occupied), booking_id, hold_id, expires_at)
        if self.try_claim(statement):
            return True
        if not sweep or not self.release_expired_holds(ids, occupied, now):
            return False
        return self.try_claim(statement)

    @staticmethod
    def claim_statement(
        business_id: int, ids: list[int], places: list[int], during: Range[datetime], booking_id: int | None,
        hold_id: int | None, expires_at: datetime | None,
    ) -> Executable:
        # rows go in in list order, so their own locks are taken in id order too
        members = (func.unnest(literal(ids, ARRAY(BigInteger)), literal(places, ARRAY(SmallInteger)))
                   .table_valued("rid", "seats", with_ordinality="n").render_derived(name="members"))
        rows = (
            select(literal(business_id, BigInteger), members.c.rid, literal(booking_id, BigInteger),
                   literal(hold_id, BigInteger), literal(during, TSTZRANGE), literal(expires_at, DateTime(timezone=True)),
                   true(), members.c.seats)
            .where(resource_locks(ids))
            .order_by(members.c.n)
        )
        return insert(Claim).from_select(
            ["business_id", "resource_id", "booking_id", "hold_id", "during", "expires_at", "active", "seats"], rows)

    def try_claim(self, statement: Executable) -> bool:
        session = self.session
        try:
            with session.begin_nested():
                inserted = session.execute(statement)
            return bool(inserted.rowcount)  # type: ignore[attr-defined]
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

    def lock_resources(self, resource_ids: Iterable[int]) -> None:
        """Take the row locks of every resource the transaction may claim, in id order, before its first claim.

        A transaction that claims in several statements (a series) keeps each one's locks to its end: taking them a
        few at a time, two such transactions could each hold what the other waits for, and PostgreSQL would fail
        one's claim as a deadlock, every second, which the claimer takes for a lost race."""
        self.session.execute(select(Resource.id).where(Resource.id.in_(sorted(set(resource_ids))))
                             .order_by(Resource.id).with_for_update(key_share=True))

    def release_expired_holds(self, resource_ids: Iterable[int], occupied: tuple[datetime, datetime],
                              now: datetime) -> int:
        """Deactivate expired hold claims in the way: an expired hold never blocks anyone. How many went.

        The resources' row locks come first and stay to the transaction's end, as `release` takes them before a move's
        claims: the claim tried again next must not queue for them holding these claims' rows."""
        ids = sorted(set(resource_ids))
        during = Range(*occupied)
        expired = (
            select(Claim.id)
            .where(Claim.resource_id.in_(ids), Claim.active, Claim.expires_at <= now, Claim.during.overlaps(during))
            .order_by(Claim.id)
            .with_for_update()
        )
        released = self.session.execute(
            update(Claim).where(resource_locks(ids), Claim.id.in_(expired.scalar_subquery())).values(active=False))
        return int(released.rowcount)  # type: ignore[attr-defined]

    def release_lapsed(self, resource_id: int, now: datetime) -> None:
        """Deactivate a resource's claims whose expiry passed (a hold's, an unpaid deposit's): they block no one, so
        they must not stand in the way of a cut of its capacity either. The resource's row is locked first, as every
        claimer locks it before changing a claim (a hold converted by a clock that still finds it live)."""
        self.session.execute(update(Claim).where(resource_locks([resource_id]), Claim.resource_id == resource_id,
                                                 Claim.active, Claim.expires_at <= now).values(active=False))

    def release(self, *, booking_id: int | None = None, hold_id: int | None = None,
                then_claiming: Iterable[int] = ()) -> None:
        """Free a booking's or a hold's claims at once.

        A transaction that claims next (a move) names the resources it may claim: their row locks and those of the
        claims it frees are taken first, together and in id order, as every claimer takes them. Holding the freed
        claims' rows while queuing for a resource row, it could wait on a capacity edit that holds that row and waits
        for those claims (the capacity guard marks each claim of the resource): a deadlock, which fails the edit."""
        owner = Claim.booking_id == booking_id if booking_id is not None else Claim.hold_id == hold_id
        chosen = (owner, Claim.active)
        locks = []
        if ids := sorted(set(then_claiming)):
            locks.append(resource_locks(union(select(Claim.resource_id).where(*chosen),
                                              select(Resource.id).where(Resource.id.in_(ids)))))
        self.session.execute(update(Claim).where(*chosen, *locks).values(active=False))

    def release_holds(self, hold_ids: list[int]) -> None:
        """Free the claims of several holds at once."""
        self.session.execute(update(Claim).where(Claim.hold_id.in_(hold_ids), Claim.active).values(active=False))

    def attach_to_booking(self, hold_id: int, booking_id: int) -> tuple[int, ...] | None:
        """Turn a live hold's claims into the booking's, all or none; returns the claimed resource ids.

        None: a racer whose clock had passed the hold's expiry let one of them go (an expired hold blocks no one)."""
        return self.change_whole(Claim.hold_id == hold_id, booking_id=booking_id, expires_at=None)

    def set_expiry(self, booking_id: int, until: datetime) -> None:
        """Let a booking's live claims lapse at `until` (a deposit's deadline) unless kept before."""
        self.change_live(Claim.booking_id == booking_id, expires_at=until)

    def keep_unexpired(self, booking_id: int, now: datetime) -> bool:
        """Keep a booking's claims for good if none has lapsed yet, all or none; False: one had (or there were none)."""
        return bool(self.change_whole(Claim.booking_id == booking_id, Claim.expires_at > now, expires_at=None))

    def change_whole(self, owner: ColumnElement[bool], *live: ColumnElement[bool],
                     **values: Any) -> tuple[int, ...] | None:
        """`change_live` for every claim of the owner's latest set, or for none (None).

        Each request judges an expiry by its own clock, so a racer a moment later may already have let one of these
        claims go and taken its time. Changing the rest would leave a booking without all it needs."""
        step = self.session.begin_nested()
        changed = self.change_live(owner, *live, **values)
        if changed and len(changed) == self.latest_count(owner):
            step.commit()
            return changed
        step.rollback()
        return None

    def latest_count(self, owner: ColumnElement[bool]) -> int:
        """How many claims the owner's latest claiming made (one transaction's claims share `created_at`)."""
        latest = select(func.max(Claim.id)).where(owner).scalar_subquery()
        made = select(Claim.created_at).where(Claim.id == latest).scalar_subquery()
        return int(self.session.scalar(select(func.count()).where(owner, Claim.created_at == made)) or 0)

    def change_live(self, *owner: ColumnElement[bool], **values: Any) -> tuple[int, ...]:
        """Change live claims in place, after taking the resource row locks every claimer takes (id order).

        PostgreSQL re-checks the exclusion constraint for an updated row's new version, so without those locks
        the update and a racer's insert of a clashing claim could each wait for the other: a deadlock."""
        chosen = (Claim.active, *owner)
        changed = self.session.scalars(
            update(Claim)
            .where(*chosen, resource_locks(select(Claim.resource_id).where(*chosen)))
            .values(**values)
            .returning(Claim.resource_id)
        )
        return tuple(sorted(changed))


def resource_locks(ids: Sequence[int] | SelectBase) -> ColumnElement[bool]:
    """A condition whose first step locks these resources' rows in id order, before the statement writes a row.

    Every claimer takes them so: a loser queues behind the winner and then meets its committed claim, instead of
    a deadlock over two uncommitted ones (the exclusion constraint is checked after a row goes in)."""
    locked = (select(Resource.id).where(Resource.id.in_(ids)).order_by(Resource.id)
              .with_for_update(key_share=True).cte("locked"))
    return select(func.count()).select_from(locked).scalar_subquery() >= 0
