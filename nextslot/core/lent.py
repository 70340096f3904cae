"""A session a caller already holds, lent to helpers that take the unit of work.

For the capability packages that own their tables and hold their own session (the lease loop's callbacks in
`reminders/`, `webhooks/` and `calendars/`: `storage/leases.py` hands them a session) when, inside that
transaction, they ask the core something (an event about a delivery, a notice to the business).
"""
from __future__ import annotations

from typing import cast

from sqlalchemy.orm import Session, sessionmaker

from nextslot.storage.uow import SqlAlchemyUnitOfWork


def lent(open_session: Session) -> SqlAlchemyUnitOfWork:
    """The unit of work over the caller's open session, already entered. Never `with` it: leaving the block
    would roll back and close the caller's transaction."""
    return SqlAlchemyUnitOfWork(cast("sessionmaker[Session]", lambda: open_session)).__enter__()
