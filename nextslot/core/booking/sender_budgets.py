"""What one sender of the public ways in (an address, a calling number) makes at a business a day, counted in the
database: every server process shares one budget (counted in each process's memory, N processes allowed N times it).

A write takes its place before it runs (`take_place`: one statement, an increment that refuses past the cap, so two
writes of one sender at once cannot both take the last place) and gives it back when it made nothing (`give_back`:
a taken time, a refusal, a replayed retry, an error), so only what was made counts. The day is the UTC day: each
sender starts again at midnight UTC, and the scheduler deletes the days before (`sweep_spent`). A sender is kept as
a digest: the table holds no caller's number or client's address.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

from nextslot.core.booking.public_caps import PublicCaps
from nextslot.storage.uow import SqlAlchemyUnitOfWork


@dataclass(frozen=True)
class SenderPlace:
    """One write's place in a sender's day at a business, kept if the write made something."""

    business_id: int
    kind: str  # "bookings" (and waitlist places), "holds"
    sender: str  # its digest
    day: date | None  # None: not counted (a service without public caps: tests, benchmarks)


@dataclass(frozen=True)
class SenderFull:
    """The sender has made its day's `cap`."""

    cap: int


def take_place(uow: SqlAlchemyUnitOfWork, caps: PublicCaps | None, business_id: int, kind: str, sender: str,
               now: datetime) -> SenderPlace | SenderFull:
    """Take a place in the sender's day for a write about to run, or say that the day's are made."""
    digest = hashlib.blake2b(sender.encode(), digest_size=16).hexdigest()
    if caps is None:
        return SenderPlace(business_id, kind, digest, None)
    day = now.astimezone(UTC).date()
    with uow:
        taken = uow.sender_budgets.take(business_id, kind, digest, day, caps.per_sender)
        uow.commit()  # nothing to send when the statement ran on its own
    return SenderPlace(business_id, kind, digest, day) if taken else SenderFull(caps.per_sender)


def give_back(uow: SqlAlchemyUnitOfWork, place: SenderPlace) -> None:
    """Give back the place of a write that made nothing, on the day it was taken."""
    if place.day is None:
        return
    with uow:
        uow.sender_budgets.give_back(place.business_id, place.kind, place.sender, place.day)
        uow.commit()


def sweep_spent(uow: SqlAlchemyUnitOfWork, now: datetime) -> int:
    """Delete the counts of the days before today (UTC), no longer counted; how many rows."""
    with uow:
        swept = uow.sender_budgets.sweep_before(now.astimezone(UTC).date())
        uow.commit()
    return swept
