"""A business's webhook endpoints: registered, listed with why any was disabled, turned off and on again.

Every event is written once for each active endpoint and sent to each, so a business has at most `most` active
endpoints (`NEXTSLOT_WEBHOOK_ENDPOINTS_MAX`): counted in the transaction that adds or turns one on, with the
business's row locked, so two at once cannot both take the last place. Turning one off makes room."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx2
from sqlalchemy import func, select

from nextslot.core import audit
from nextslot.core.outbound import url_problem
from nextslot.core.results import Rejected
from nextslot.schemas.events import EVENT_TYPES
from nextslot.storage.tables import Business, WebhookDelivery, WebhookEndpoint
from nextslot.storage.uow import SqlAlchemyUnitOfWork

ENDPOINTS_MAX = 20  # Settings.webhook_endpoints_max's default


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Registered:
    id: int
    secret: str  # shown once to the business, for checking signatures


def add_endpoint(uow: SqlAlchemyUnitOfWork, business_id: int, url: str, event_types: list[str] | None = None,
                 allow_private: bool = False, most: int = ENDPOINTS_MAX) -> Registered | Rejected:
    if not usable_host(url):
        return Rejected("invalid_host", "The URL's host is not a valid host name: each dot-separated part 1-63 "
                                        "characters, 253 in all, international names valid IDNA.", "url")
    if problem := url_problem(url, allow_private):
        return Rejected("invalid_url", problem, "url")
    wanted = event_types or ["*"]
    unknown = [t for t in wanted if t != "*" and t not in EVENT_TYPES]
    if unknown:
        return Rejected("unknown_event_type", f"Unknown event type(s) {', '.join(unknown)}; known: "
                                              f"{', '.join(EVENT_TYPES)}.", "event_types", tuple(EVENT_TYPES))
    secret = new_secret()
    with uow:
        if (full := over_cap(uow, business_id, most)) is not None:
            return full
        endpoint = WebhookEndpoint(business_id=business_id, url=url, secret=secret, event_types=wanted, active=True)
        uow.session.add(endpoint)
        uow.session.flush()
        audit.record(uow, business_id, "webhook.created", f"endpoint {endpoint.id}",
                     {"url": [None, url], "event_types": [None, wanted]})
        uow.commit()
        return Registered(endpoint.id, secret)


def over_cap(uow: SqlAlchemyUnitOfWork, business_id: int, most: int) -> Rejected | None:
    """`too_many_endpoints` when the business has `most` active endpoints. Locks the business's row (FOR NO KEY
    UPDATE, as a config edit: a booking's reference to it never waits) until the transaction ends."""
    s = uow.session
    s.execute(select(Business.id).where(Business.id == business_id).with_for_update(key_share=True))
    active = s.scalar(select(func.count()).select_from(WebhookEndpoint).where(
        WebhookEndpoint.business_id == business_id, WebhookEndpoint.active)) or 0
    if active < most:
        return None
    return Rejected("too_many_endpoints", f"This business already has {most} active webhook endpoints, the most it "
                                          "may have; turn one off (PUT /v1/webhooks/{id} with active false) first. "
                                          "Nothing was added.", "url")


def usable_host(url: str) -> bool:
    """Whether the HTTP client can connect to the URL's host; checked when registered, as a name it cannot
    encode fails every delivery to the endpoint."""
    try:
        host = httpx2.URL(url).raw_host.decode("ascii")  # international names as IDNA (the client's conversion)
        host.encode("idna")  # what the socket layer does with it: every label 1-63 characters
    except (httpx2.InvalidURL, UnicodeError):
        return False
    return 0 < len(host.rstrip(".")) <= 253


@dataclass(frozen=True)
class EndpointState:
    id: int
    url: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None  # why deliveries stopped (a day of failures), for the business to see
    failing_deliveries: int  # pending deliveries that have failed at least once


def list_endpoints(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[EndpointState]:
    with uow:
        s = uow.session
        failing = dict(s.execute(
            select(WebhookDelivery.endpoint_id, func.count())
            .where(WebhookDelivery.business_id == business_id, WebhookDelivery.status == "pending",
                   WebhookDelivery.attempts > 0).group_by(WebhookDelivery.endpoint_id)).all())
        return [EndpointState(e.id, e.url, list(e.event_types), e.active, e.disabled_reason, failing.get(e.id, 0))
                for e in s.scalars(select(WebhookEndpoint).where(WebhookEndpoint.business_id == business_id)
                                   .order_by(WebhookEndpoint.id))]


def set_active(uow: SqlAlchemyUnitOfWork, business_id: int, endpoint_id: int, active: bool,
               most: int = ENDPOINTS_MAX) -> EndpointState | Rejected:
    """Turn an endpoint off, or back on after fixing the receiver (its reason is cleared), if there is room."""
    with uow:
        endpoint = uow.session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None or endpoint.business_id != business_id:
            return Rejected("unknown_endpoint", f"No webhook endpoint {endpoint_id} here.", "endpoint_id")
        if active and not endpoint.active and (full := over_cap(uow, business_id, most)) is not None:
            return full
        if endpoint.active != active:
            audit.record(uow, business_id, "webhook.enabled" if active else "webhook.disabled",
                         f"endpoint {endpoint.id}", {"active": [endpoint.active, active]})
        endpoint.active = active
        endpoint.disabled_reason = None if active else (endpoint.disabled_reason or "turned off by staff")
        uow.commit()
    return next(e for e in list_endpoints(uow, business_id) if e.id == endpoint_id)
