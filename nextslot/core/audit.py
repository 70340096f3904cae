"""The audit log: every configuration and account change, who made it, when, through which channel, what changed.

Who is acting is bound once by the edge that knows (the console for a signed-in person, the staff API for an API
key, the CLI for the local user) and read here, so the core functions that change things record it in their own
transaction without every signature carrying it. A change made with nobody bound is recorded as `system`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nextslot.storage.tables import AuditEntry
from nextslot.storage.uow import SqlAlchemyUnitOfWork

ACTOR: ContextVar[tuple[str, str]] = ContextVar("nextslot_actor", default=("system", "system"))
LONGEST_VALUE = 500  # characters of one changed value kept (a template can be long)


def act_as(actor: str, channel: str) -> None:
    """Bind who is acting for the rest of this request or command (a request's context is its own)."""
    ACTOR.set((actor[:200], channel[:32]))


@contextmanager
def acting_as(actor: str, channel: str) -> Iterator[None]:
    token = ACTOR.set((actor[:200], channel[:32]))
    try:
        yield
    finally:
        ACTOR.reset(token)


def record(uow: SqlAlchemyUnitOfWork, business_id: int, action: str, target: str = "",
           changes: dict[str, Any] | None = None, actor: str | None = None, channel: str | None = None) -> None:
    """Append an entry in the caller's transaction (so it exists exactly when the change does); `actor` and
    `channel` when the caller knows better than what is bound."""
    bound_actor, bound_channel = ACTOR.get()
    actor, channel = (actor or bound_actor)[:200], (channel or bound_channel)[:32]
    uow.session.add(AuditEntry(business_id=business_id, actor=actor, channel=channel, action=action,
                               target=target[:200], changes=changes or {}))


def diff(before: Any, after: Any, path: str = "") -> dict[str, list[Any]]:
    """{"services.consultation.duration": [30, 45], ...}: the leaves that differ (lists of keyed items by key)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: dict[str, list[Any]] = {}
        for key in sorted(set(before) | set(after), key=str):
            out |= diff(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(before, list) and isinstance(after, list) and keyed(before) and keyed(after):
        return diff({i["key"]: i for i in before}, {i["key"]: i for i in after}, path)
    if before == after:
        return {}
    return {path or "value": [short(before), short(after)]}


def keyed(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and "key" in i for i in items)


def short(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value[:LONGEST_VALUE] if isinstance(value, str) else value
    text = repr(value)
    return text if len(text) <= LONGEST_VALUE else text[:LONGEST_VALUE] + "…"


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    channel: str
    action: str
    target: str
    changes: dict[str, Any]
    request_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor, "channel": self.channel,
                "action": self.action, "target": self.target, "changes": self.changes,
                "request_id": self.request_id}


def entries(uow: SqlAlchemyUnitOfWork, business_id: int, limit: int = 100,
            before_id: int | None = None) -> list[AuditView]:
    """The business's newest entries first; `before_id` pages back."""
    with uow:
        query = select(AuditEntry).where(AuditEntry.business_id == business_id)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        rows = uow.session.scalars(query.order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 500))))
        return [AuditView(r.id, r.at, r.actor, r.channel, r.action, r.target, r.changes, r.request_id) for r in rows]
