"""Bookings: found by their speakable code, inserted under a fresh one, and their history appended."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import inspect, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, make_transient_to_detached

from nextslot.storage.tables import Booking, BookingHistory

CODE_TRIES = 5


class BookingRepository:
    def __init__(self, session: Session):
        self.session = session

    def by_code(self, business_id: int, code: str, *, for_update: bool = False) -> Booking | None:
        query = select(Booking).where(Booking.business_id == business_id, Booking.code == code)
        if for_update:
            query = query.with_for_update(of=Booking)
        return self.session.scalars(query).unique().one_or_none()

    def add_with_code(self, booking: Booking, new_code: Callable[[], str]) -> None:
        """Insert the booking under a fresh code from `new_code`, drawing again on the rare collision.

        One statement, no savepoint: a code already taken inserts nothing (ON CONFLICT DO NOTHING) and the
        next draw goes; the row written comes back (RETURNING) and the booking object becomes it.
        """
        columns = inspect(Booking).column_attrs
        for _ in range(CODE_TRIES):
            booking.code = new_code()
            given = {a.key: getattr(booking, a.key) for a in columns if getattr(booking, a.key) is not None}
            written = self.session.execute(
                insert(Booking).values(given)
                .on_conflict_do_nothing(index_elements=["business_id", "code"])
                .returning(*(a.columns[0] for a in columns))
            ).first()
            if written is not None:
                for a, value in zip(columns, written):
                    setattr(booking, a.key, value)
                make_transient_to_detached(booking)  # what it holds is what the row holds
                self.session.add(booking)
                return
        raise RuntimeError(f"could not draw a free booking code in {CODE_TRIES} tries")

    def saved(self, booking: Booking) -> None:
        """Write the booking's changes now (the history and the views read them back)."""
        self.session.flush()

    def add_history(self, entry: BookingHistory) -> None:
        self.session.add(entry)
