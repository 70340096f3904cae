"""Unit of work: one transaction per `with uow:`; commit explicitly, anything else rolls back.

Inside the block the repositories (bookings and a new booking's one-statement write, claims, holds, customers,
idempotency keys, the public senders' budgets) share its session.

A block that reads before it knows whether it will write (a booking that may find its time taken) calls
`reads_first`: its statements then run each on its own until `writes_next`, and a block that wrote nothing costs
no BEGIN and no ROLLBACK. The connection runs at READ COMMITTED, where each statement reads what is committed
when it starts, in a transaction or not: only row locks and writes need the transaction, and they come after
`writes_next`. A reader's unit of work (`statements_alone`) runs every statement so, as does one whose every write
is one statement deciding alone (a sender's budget).

With a gate (`storage/gate.py`), a block first waits its turn among the process's units of work at the database.
"""
from __future__ import annotations

from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy.orm import Session, sessionmaker

from nextslot.storage.booking_writes import BookingWriteRepository
from nextslot.storage.bookings import BookingRepository
from nextslot.storage.claims import ClaimRepository
from nextslot.storage.customers import CustomerRepository
from nextslot.storage.gate import DatabaseGate
from nextslot.storage.holds import HoldRepository
from nextslot.storage.idempotency import IdempotencyRepository
from nextslot.storage.sender_budgets import SenderBudgetRepository


class SqlAlchemyUnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session], statements_alone: bool = False,
                 gate: DatabaseGate | None = None):
        self._session_factory = session_factory
        self._gate = gate
        self._statements_alone = statements_alone
        self._alone: Any = None  # the driver connection while its statements run on their own
        self.session: Session
        self.bookings: BookingRepository
        self.booking_writes: BookingWriteRepository
        self.customers: CustomerRepository
        self.claims: ClaimRepository
        self.holds: HoldRepository
        self.idempotency: IdempotencyRepository
        self.sender_budgets: SenderBudgetRepository

    def __enter__(self) -> SqlAlchemyUnitOfWork:
        if self._gate is not None:
            self._gate.enter()
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        return self

    def _open(self) -> None:
        self.session = self._session_factory()
        self.bookings = BookingRepository(self.session)
        self.booking_writes = BookingWriteRepository(self.session)
        self.customers = CustomerRepository(self.session)
        self.claims = ClaimRepository(self.session)
        self.holds = HoldRepository(self.session)
        self.idempotency = IdempotencyRepository(self.session)
        self.sender_budgets = SenderBudgetRepository(self.session)
        if self._statements_alone:
            self.reads_first()

    def __exit__(self, *exc: object) -> None:
        try:
            self.writes_next()
        finally:
            self._close()

    def _close(self) -> None:
        try:
            if hasattr(self, "session"):
                self.session.rollback()
                self.session.close()
        finally:
            if self._gate is not None:
                self._gate.leave()

    def reads_first(self) -> None:
        """Run the next statements each on its own, until `writes_next`; only before this transaction wrote or
        locked anything (a no-op otherwise: the transaction goes on)."""
        connection = self.session.connection().connection.dbapi_connection
        if self._alone is None and connection is not None and not connection.autocommit and idle(connection):
            connection.autocommit = True
            self._alone = connection

    def writes_next(self) -> None:
        """From the next statement on, one transaction again: what follows commits or rolls back together."""
        connection, self._alone = self._alone, None
        if connection is not None and idle(connection):  # a lost connection is left as it is: the pool drops it
            connection.autocommit = False

    def commit(self) -> None:
        self.writes_next()  # the connection goes back to the pool as it came: in transaction mode
        self.session.commit()

    def rollback(self) -> None:
        """Abandon the transaction; the session stays usable and starts a fresh one."""
        self.writes_next()
        self.session.rollback()


def idle(connection: Any) -> bool:
    """No transaction open on this driver connection: nothing written or locked yet."""
    return bool(connection.info.transaction_status == TransactionStatus.IDLE)
