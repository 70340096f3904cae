"""Idempotency keys: agents retry on timeouts; the same key returns the first result, never a second write."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from nextslot.core.planning import Committed, Plan, load_plan
from nextslot.core.results import Booked, Held, Rejected
from nextslot.schemas.commands import BookingCreate, HoldCreate
from nextslot.schemas.views import BookingView, HoldView
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def fingerprint(command: BaseModel) -> str:
    """What was asked (not who asks: a hold's holder), so the fingerprints of requests kept before it stay the same."""
    body = command.model_dump(mode="json", exclude={"idempotency_key", "holder"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def reserve(
    uow: SqlAlchemyUnitOfWork, business_id: int, key: str, operation: str, command: BaseModel
) -> dict[str, Any] | Rejected | None:
    """Take the key for this transaction. None: go ahead. A dict: the stored first result.

    A concurrent holder of the same key makes this wait until it commits or rolls back,
    so two retries in flight still produce one write.
    """
    digest = fingerprint(command)
    first = uow.idempotency.take(business_id, key, operation, digest)
    if first is None:
        return None
    if first.operation != operation or first.fingerprint != digest:
        return Rejected(
            "idempotency_key_reused",
            "This idempotency key was already used for a different request; use a new key for a new request.",
            "idempotency_key",
        )
    return first.result or {}


def answered(uow: SqlAlchemyUnitOfWork, business_id: int, key: str) -> bool:
    """Whether a write under this key was already made: a retry of it gets its first answer, so a budget of what
    was made (server/public_writes.py) lets it through."""
    with uow:
        return uow.idempotency.first_result(business_id, key) is not None


def replayed_booking(first: dict[str, Any] | Rejected) -> Booked | Rejected:
    """The first result stored under a booking's key, as the answer to its retry."""
    if isinstance(first, Rejected):
        return first
    return Booked(BookingView.model_validate(first["view"]), replayed=True)


def replayed_hold(first: dict[str, Any] | Rejected) -> Held | Rejected:
    if isinstance(first, Rejected):
        return first
    return Held(HoldView.model_validate(first["view"]), replayed=True)


def booking_plan(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingCreate) -> Plan | Booked | Rejected:
    """How a new booking starts: the service's plan, or the answer already due (an unknown service; for a hold's
    conversion, the first result for a retried idempotency key, or a key reused for another request). A new slot's
    key is taken once its time is checked (`first_booking`): a loser seen taken writes nothing."""
    if cmd.hold_id is None:
        return load_plan(uow, business_id, cmd.service, cmd.resources, cmd.location)
    first = plan_or_first(uow, business_id, cmd, "book")
    return first if isinstance(first, Plan) else replayed_booking(first)


def first_booking(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingCreate) -> Booked | Rejected | None:
    """Take a new slot's key in the transaction about to write: None to go on, else the answer already due."""
    uow.writes_next()
    if cmd.idempotency_key and (first := reserve(uow, business_id, cmd.idempotency_key, "book", cmd)):
        return replayed_booking(first)
    return None


def may_refuse_unwritten(cmd: BookingCreate, committed: Committed) -> bool:
    """A time seen taken may be refused without taking the key: there is none, or the read that saw the time taken
    saw the key free and unused (`check_read`). Else the key is taken as a write would (waiting for a try in
    flight), so a retry gets its first result."""
    return not cmd.idempotency_key or committed.key_unused


def hold_plan(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: HoldCreate) -> Plan | Held | Rejected:
    first = plan_or_first(uow, business_id, cmd, "hold")
    return first if isinstance(first, Plan) else replayed_hold(first)


def plan_or_first(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingCreate | HoldCreate,
                  operation: str) -> Plan | dict[str, Any] | Rejected:
    plan = load_plan(uow, business_id, cmd.service, cmd.resources, cmd.location)
    if isinstance(plan, Rejected):
        return plan
    if cmd.idempotency_key:
        uow.writes_next()  # the key is taken in the transaction that writes the result
        if first := reserve(uow, business_id, cmd.idempotency_key, operation, cmd):
            return first
    return plan
