"""Business API keys: shown once, stored only as a SHA-256 hash (they are long random tokens)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select

from nextslot.core import audit
from nextslot.storage.tables import ApiKey
from nextslot.storage.uow import SqlAlchemyUnitOfWork

PREFIX = "nsk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(uow: SqlAlchemyUnitOfWork, business_id: int, name: str) -> str:
    """Return a new key for the business; only its hash is kept."""
    key = PREFIX + secrets.token_urlsafe(32)
    with uow:
        uow.session.add(ApiKey(business_id=business_id, name=name, prefix=key[:12], key_hash=hash_key(key)))
        audit.record(uow, business_id, "api_key.created", f"{name} ({key[:8]}…)")
        uow.commit()
    return key


def business_for_key(uow: SqlAlchemyUnitOfWork, key: str) -> int | None:
    """The business a key belongs to, or None for an unknown or revoked key."""
    with uow:
        row = uow.session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one_or_none()
        if row is None or (row.revoked_at is not None and row.revoked_at <= datetime.now(UTC)):
            return None
        return row.business_id
