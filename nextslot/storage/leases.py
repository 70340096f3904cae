"""Claiming due outbox rows (notifications, webhook deliveries) for one worker at a time.

One short statement: rows due now, or whose lease ran out (their worker died), are leased to the
caller; SKIP LOCKED lets several workers claim side by side without waiting on or taking each other's.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

LEASED_TABLES = ("notifications", "webhook_deliveries")


def claim_due(session: Session, table: Literal["notifications", "webhook_deliveries"], now: datetime,
              lease: datetime, batch: int) -> list[int]:
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
