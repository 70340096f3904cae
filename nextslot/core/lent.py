"""A session a caller already holds, lent to helpers that take the unit of work.

The bridge for the modules the hot-path rewrite is converting (`booking/history.py`, `events.py`), which are
still handed a session and call helpers that now take the unit of work, and for the lease loop's callbacks
(`storage/leases.py` hands them a session; `calendars/writes.py`). It goes when they take the unit of work too.
"""
from __future__ import annotations

from typing import cast

from sqlalchemy.orm import Session, sessionmaker

from nextslot.storage.uow import SqlAlchemyUnitOfWork


def lent(open_session: Session) -> SqlAlchemyUnitOfWork:
    """The unit of work over the caller's open session, already entered. Never `with` it: leaving the block
    would roll back and close the caller's transaction."""
    return SqlAlchemyUnitOfWork(cast("sessionmaker[Session]", lambda: open_session)).__enter__()
