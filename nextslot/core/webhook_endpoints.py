"""Registering a business's webhook endpoints (the staff API will call the same function)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from nextslot.core.results import Rejected
from nextslot.schemas.events import EVENT_TYPES
from nextslot.storage.tables import WebhookEndpoint
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Registered:
    id: int
    secret: str  # shown once to the business, for checking signatures


def add_endpoint(uow: SqlAlchemyUnitOfWork, business_id: int, url: str,
                 event_types: list[str] | None = None) -> Registered | Rejected:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return Rejected("invalid_url", f"'{url}' is not an http(s) URL.", "url")
    wanted = event_types or ["*"]
    unknown = [t for t in wanted if t != "*" and t not in EVENT_TYPES]
    if unknown:
        return Rejected("unknown_event_type", f"Unknown event type(s) {', '.join(unknown)}; known: "
                                              f"{', '.join(EVENT_TYPES)}.", "event_types", tuple(EVENT_TYPES))
    secret = new_secret()
    with uow:
        endpoint = WebhookEndpoint(business_id=business_id, url=url, secret=secret, event_types=wanted, active=True)
        uow.session.add(endpoint)
        uow.session.flush()
        uow.commit()
        return Registered(endpoint.id, secret)
