"""Idempotency keys: taken in the writer's transaction, so a concurrent retry waits for the first result.

Taking a key also takes a transaction-level advisory lock named after it (storage/key_locks.py). A request that will
write nothing (a booking whose time is seen taken) asks in its check's read whether the key is free without writing
(`queries.calendar_for`): no transaction holds the lock, and then no committed row holds the key.
"""
from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import select
from sqlalchemy.orm import Session

from nextslot.storage import queries
from nextslot.storage.key_locks import key_lock
from nextslot.storage.tables import IdempotencyKey

# both run by psycopg itself (`queries.driver_rows`): every write that carries a key (each voice tool call, each
# page form) takes it, and keeps its first result under it
TAKE = """
with taken as (
  insert into idempotency_keys (business_id, key, operation, fingerprint)
  values (%(business)s, %(key)s, %(operation)s, %(fingerprint)s)
  on conflict do nothing
  returning key
)
select key from taken where pg_advisory_xact_lock(%(locks)s, %(lock)s) is not null
"""

REMEMBER = """
update idempotency_keys set booking_id = %(booking)s, result = %(result)s
 where business_id = %(business)s and key = %(key)s
returning key
"""


class IdempotencyRepository:
    def __init__(self, session: Session):
        self.session = session

    def take(self, business_id: int, key: str, operation: str, fingerprint: str) -> IdempotencyKey | None:
        """Take the key for this transaction: None when it was free, else the first taker's row.

        A concurrent holder of the same key makes this wait until it commits or rolls back.
        """
        taken = queries.driver_rows(self.session, TAKE, {"business": business_id, "key": key, "operation": operation,
                                                          "fingerprint": fingerprint, **key_lock(business_id, key)})
        if taken:
            return None
        return self.session.scalars(
            select(IdempotencyKey).where(IdempotencyKey.business_id == business_id, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        ).one()

    def first_result(self, business_id: int, key: str) -> dict[str, Any] | None:
        """The result kept under a key already used (None: no result, or no such key)."""
        return self.session.scalar(select(IdempotencyKey.result).where(IdempotencyKey.business_id == business_id,
                                                                       IdempotencyKey.key == key))

    def remember(self, business_id: int, key: str, booking_id: int | None, result: dict[str, Any]) -> None:
        """Keep the first result under the key this transaction took, in one statement (no row loaded first)."""
        self.session.flush()  # the booking it names is written before it
        stored = queries.driver_rows(self.session, REMEMBER, {"business": business_id, "key": key,
                                                              "booking": booking_id, "result": Jsonb(result)})
        if len(stored) != 1:
            raise LookupError(f"idempotency key not taken in this transaction (business {business_id})")

