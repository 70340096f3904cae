"""A new booking's writes in one statement (storage/booking_writes.py): the hot path of `book`.

Used when nothing about the booking needs the ORM: no hold to convert, no deposit, every resource of capacity 1 (a
claim in the way is then simply not inserted, so no savepoint is needed). Everything the statement writes is built
here first as plain values: the booking, its view (the idempotency result and the event carry it), its history row
and its messages.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from nextslot.core import outbox
from nextslot.core.booking.claiming import first_free
from nextslot.core.booking.codes import new_code
from nextslot.core.planning import Plan
from nextslot.core.views import new_booking_view
from nextslot.schemas.commands import BookingCreate
from nextslot.schemas.statuses import BookingStatus
from nextslot.schemas.views import BookingView
from nextslot.storage.booking_writes import NewBooking, Written
from nextslot.storage.bookings import CODE_TRIES
from nextslot.storage.customers import StoredCustomer
from nextslot.storage.uow import SqlAlchemyUnitOfWork


class TransactionLost(Exception):
    """The database refused the booking's statement outright (a capacity raised meanwhile, a deadlock): the
    transaction is gone but the request is sound, so `book` starts it again."""


def one_statement_fits(plan: Plan, hold_id: int | None, deposit: object) -> bool:
    """Whether the booking can be written by `OneStatementBooking`."""
    return hold_id is None and not deposit and all(r.capacity == 1 for r in plan.resources.values())


class OneStatementBooking:
    """Claims and writes a new booking in one statement per try; `claim` is what `first_free` tries members with."""

    def __init__(self, uow: SqlAlchemyUnitOfWork, plan: Plan, cmd: BookingCreate, customer: StoredCustomer,
                 start: datetime, answers: dict[str, Any], now: datetime):
        self.uow, self.plan, self.cmd, self.customer = uow, plan, cmd, customer
        self.start, self.answers, self.now = start, answers, now
        self.written: Written | None = None
        self.view: BookingView | None = None

    def booking_id(self) -> int | None:
        """The id of the latest booking row written (its own claims are no obstacle to it)."""
        return self.written.booking_id if self.written else None

    def place(self, first: tuple[int, ...]) -> BookingView | None:
        """The booking's view once written on the first free members, trying `first` first; None: taken."""
        found = first_free(self.uow, self.plan, self.start, self.now, first, self.claim, self.booking_id, "book",
                           self.cmd.party_size)  # a lost try looks again for the whole party
        return self.view if found is not None else None

    def claim(self, members: tuple[int, ...]) -> bool:
        """Write the booking on these members: True when every claim went in (and everything else with them)."""
        if self.written is not None:  # a lost try: its booking row and the claims that went in go first
            self.uow.booking_writes.undo(self.plan.business.id, self.written)
        for _ in range(CODE_TRIES):
            booking = self.booking(new_code())
            view = new_booking_view(booking, self.plan, self.customer, members)
            result = {"kind": "booking", "view": view.model_dump(mode="json")} if self.cmd.idempotency_key else None
            written = self.uow.booking_writes.write(
                booking, members, self.plan.rules.occupied(self.start), actor=self.cmd.actor or self.cmd.source,
                after={"status": booking.status, "starts_at": booking.starts_at.isoformat(),
                       "ends_at": booking.ends_at.isoformat()},
                messages=outbox.confirmed(booking.code, booking.starts_at, self.now, self.plan.reminder_offsets),
                idempotency_key=self.cmd.idempotency_key, result=result)
            if written.aborted:
                raise TransactionLost()
            if written.booking_id is not None:  # else the code was taken: nothing was written, draw another
                self.written = written
                if written.won:
                    view.id = written.booking_id
                    self.view = view
                return written.won
        raise RuntimeError(f"could not draw a free booking code in {CODE_TRIES} tries")

    def booking(self, code: str) -> NewBooking:
        cmd, plan = self.cmd, self.plan
        return NewBooking(
            business_id=plan.business.id, code=code, service_id=plan.service_id, customer_id=self.customer.id,
            status=BookingStatus.BOOKED.value, starts_at=self.start, ends_at=self.start + plan.rules.duration,
            source=cmd.source, intake=self.answers, notes=cmd.notes, party_size=cmd.party_size, updated_at=self.now,
            contact_name=cmd.customer.name)
