"""Idempotency keys: agents retry on timeouts; the same key returns the first result, never a second write."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from nextslot.core.results import Booked, Held, Rejected
from nextslot.schemas.views import BookingView, HoldView
from nextslot.storage.tables import IdempotencyKey


def fingerprint(command: BaseModel) -> str:
    body = command.model_dump(mode="json", exclude={"idempotency_key"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def reserve(
    session: Session, business_id: int, key: str, operation: str, command: BaseModel
) -> dict[str, Any] | Rejected | None:
    """Take the key for this transaction. None: go ahead. A dict: the stored first result.

    A concurrent holder of the same key makes this wait until it commits or rolls back,
    so two retries in flight still produce one write.
    """
    digest = fingerprint(command)
    taken = session.execute(
        insert(IdempotencyKey)
        .values(business_id=business_id, key=key, operation=operation, fingerprint=digest)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if taken is not None:
        return None
    first = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.business_id == business_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    ).one()
    if first.operation != operation or first.fingerprint != digest:
        return Rejected(
            "idempotency_key_reused",
            "This idempotency key was already used for a different request; use a new key for a new request.",
            "idempotency_key",
        )
    return first.result or {}


def remember(session: Session, business_id: int, key: str, booking_id: int | None, result: dict[str, Any]) -> None:
    row = session.get(IdempotencyKey, (business_id, key))
    row.booking_id = booking_id
    row.result = result


def replay(first: dict[str, Any] | Rejected) -> Booked | Held | Rejected:
    """The first result stored under a key, as the answer to its retry."""
    if isinstance(first, Rejected):
        return first
    if first.get("kind") == "hold":
        return Held(HoldView.model_validate(first["view"]), replayed=True)
    return Booked(BookingView.model_validate(first["view"]), replayed=True)
