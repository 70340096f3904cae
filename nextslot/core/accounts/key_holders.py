"""Who calls with an API key: its business, as `business_for_key` decides, and the key's name for the history."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from nextslot.core.accounts.api_keys import business_for_key, hash_key
from nextslot.storage.tables import ApiKey
from nextslot.storage.uow import SqlAlchemyUnitOfWork


@dataclass(frozen=True)
class KeyHolder:
    business_id: int
    name: str  # the key's name ("front desk"): the actor in booking history


def key_holder(uow: SqlAlchemyUnitOfWork, key: str) -> KeyHolder | None:
    """The holder of a live key, or None for an unknown or revoked one."""
    business_id = business_for_key(uow, key)
    if business_id is None:
        return None
    with uow:
        name = uow.session.scalar(select(ApiKey.name).where(ApiKey.key_hash == hash_key(key)))
    return KeyHolder(business_id, name or "")
