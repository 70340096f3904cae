"""Unit of work: one transaction per `with uow:`; commit explicitly, anything else rolls back.

Inside the block the repositories (bookings and a new booking's one-statement write, claims, holds, customers,
idempotency keys) share its session.
"""
from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from nextslot.storage.booking_writes import BookingWriteRepository
from nextslot.storage.bookings import BookingRepository
from nextslot.storage.claims import ClaimRepository
from nextslot.storage.customers import CustomerRepository
from nextslot.storage.holds import HoldRepository
from nextslot.storage.idempotency import IdempotencyRepository


class SqlAlchemyUnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session]):
        self._session_factory = session_factory
        self.session: Session
        self.bookings: BookingRepository
        self.booking_writes: BookingWriteRepository
        self.customers: CustomerRepository
        self.claims: ClaimRepository
        self.holds: HoldRepository
        self.idempotency: IdempotencyRepository

    def __enter__(self) -> SqlAlchemyUnitOfWork:
        self.session = self._session_factory()
        self.bookings = BookingRepository(self.session)
        self.booking_writes = BookingWriteRepository(self.session)
        self.customers = CustomerRepository(self.session)
        self.claims = ClaimRepository(self.session)
        self.holds = HoldRepository(self.session)
        self.idempotency = IdempotencyRepository(self.session)
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        """Abandon the transaction; the session stays usable and starts a fresh one."""
        self.session.rollback()
