"""Who calls with an API key: its business, as `business_for_key` decides, and the key's name for the history."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from nextslot.core.accounts.api_keys import hash_key
from nextslot.storage.tables import ApiKey
from nextslot.storage.uow import SqlAlchemyUnitOfWork


@dataclass(frozen=True)
class KeyHolder:
    business_id: int
    name: str  # the key's name ("front desk"): the actor in booking history


@dataclass(frozen=True)
class LiveKey:
    """A key the database said was live, with the moment it stops being so when one is set ahead."""

    holder: KeyHolder
    revoked_at: datetime | None

    def revoked_by(self, now: datetime) -> bool:
        return self.revoked_at is not None and self.revoked_at <= now


def live_key(uow: SqlAlchemyUnitOfWork, key: str) -> LiveKey | None:
    """The key's holder and revocation time in one query, or None for an unknown or revoked key."""
    with uow:
        row = uow.session.execute(select(ApiKey.business_id, ApiKey.name, ApiKey.revoked_at)
                                  .where(ApiKey.key_hash == hash_key(key))).one_or_none()
    if row is None:
        return None
    live = LiveKey(KeyHolder(row.business_id, row.name or ""), row.revoked_at)
    return None if live.revoked_by(datetime.now(UTC)) else live

