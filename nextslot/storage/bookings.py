"""Bookings: found by their speakable code, inserted under a fresh one, and their history appended."""
from __future__ import annotations

from collections.abc import Callable

from psycopg.errors import UniqueViolation
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
        """Insert the booking under a fresh code from `new_code`, drawing again on the rare collision."""
        for _ in range(CODE_TRIES):
            booking.code = new_code()
            try:
                with self.session.begin_nested():
                    self.session.add(booking)
                    self.session.flush()
                return
            except IntegrityError as error:
                if not isinstance(error.orig, UniqueViolation):
                    raise
        raise RuntimeError(f"could not draw a free booking code in {CODE_TRIES} tries")

    def saved(self, booking: Booking) -> None:
        """Write the booking's changes now (the history and the views read them back)."""
        self.session.flush()

    def add_history(self, entry: BookingHistory) -> None:
        self.session.add(entry)
