"""Claiming due outbox rows (notifications, webhook deliveries) for one worker at a time.

One short statement: rows due now, or whose lease ran out (their worker died), are leased to the
caller; SKIP LOCKED lets several workers claim side by side without waiting on or taking each other's.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nextslot.storage.outage import database_unreachable, on_fresh_connection

log = logging.getLogger(__name__)
LEASED_TABLES = ("notifications", "webhook_deliveries")
Table = Literal["notifications", "webhook_deliveries"]
T = TypeVar("T")


def claim_due(session: Session, table: Table, now: datetime, lease: datetime, batch: int) -> list[int]:
    """Lease up to `batch` due rows until `lease`; return their ids, oldest due first."""
    if table not in LEASED_TABLES:  # the name is spliced into the SQL: only our own tables
        raise ValueError(table)
    ids = session.scalars(text(f"""
        update {table} set status = 'sending', locked_until = :lease, attempts = attempts + 1
        where id in (
            select id from {table}
            where (status = 'pending' and due_at <= :now) or (status = 'sending' and locked_until < :now)
            order by due_at, id limit :batch
            for update skip locked)
        returning id
    """), {"now": now, "lease": lease, "batch": batch})
    return sorted(ids)  # RETURNING keeps no order; ids follow creation order


def claimed_or_handed_back(session_factory: sessionmaker[Session], table: Table, lease: datetime,
                           claim: Callable[[], list[T]]) -> list[T]:
    """Run a claim; if the database connection dropped under it, its commit may have gone through with the
    answer lost: hand back what this lease took (nothing was sent yet), or those rows would wait for the
    lease to run out."""
    try:
        return claim()
    except Exception as exc:
        if not database_unreachable(exc):
            raise
        log.warning("claiming due %s: the database connection dropped; handing the claim back", table)
        on_fresh_connection(lambda: hand_back(session_factory, table, lease))
        return []


def hand_back(session_factory: sessionmaker[Session], table: Table, lease: datetime) -> None:
    if table not in LEASED_TABLES:
        raise ValueError(table)
    with session_factory() as s:
        s.execute(text(f"""
            update {table} set status = 'pending', locked_until = null, attempts = greatest(attempts - 1, 0)
            where status = 'sending' and locked_until = :lease
        """), {"lease": lease})
        s.commit()
