"""Booking events for the business's webhook endpoints, written in the same transaction as the change:
a rolled-back change emits nothing, a committed one is never lost."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from nextslot.core.config_versions import VersionedCache, known_version
from nextslot.core.planning import business_info
from nextslot.core.views import booking_view
from nextslot.schemas.events import BookingEventData, Event, NotificationSummary
from nextslot.schemas.views import BookingView
from nextslot.storage import queries
from nextslot.storage.tables import Booking, Notification, WebhookDelivery, WebhookEndpoint
from nextslot.storage.uow import SqlAlchemyUnitOfWork

# each business's active endpoints as (id, event types), checked against the config version the session read
ENDPOINTS: VersionedCache[tuple[tuple[int, tuple[str, ...]], ...]] = VersionedCache()


def active_endpoints(uow: SqlAlchemyUnitOfWork, business_id: int) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """The business's active endpoints: no query when this session read its config version (a booking's plan
    did) and this process has them for that version."""
    version = known_version(uow, business_id)
    key = (queries.database_of(uow.session), business_id)
    if version is not None and (cached := ENDPOINTS.get(key, version)) is not None:
        return cached
    found = tuple((e.id, tuple(e.event_types)) for e in uow.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.business_id == business_id, WebhookEndpoint.active)))
    if version is not None:
        ENDPOINTS.put(key, version, found)
    return found


def emit(uow: SqlAlchemyUnitOfWork, business_id: int, event_type: str, booking: BookingView, now: datetime,
         previous_starts_at: datetime | None = None, notification: NotificationSummary | None = None) -> None:
    endpoints = [e for e, types in active_endpoints(uow, business_id) if event_type in types or "*" in types]
    if not endpoints:
        return
    event = Event(id=f"evt_{uuid.uuid4().hex}", type=event_type, created_at=now,
                  business=queries.known_business(uow.session, business_id).slug,
                  data=BookingEventData(booking=booking, previous_starts_at=previous_starts_at,
                                        notification=notification))
    body = event.model_dump_json()
    uow.session.add_all(WebhookDelivery(business_id=business_id, endpoint_id=e, event_id=event.id,
                                    event_type=event_type, body=body, status="pending", attempts=0, due_at=now,
                                    created_at=now, log=[]) for e in endpoints)


def emit_notification_outcome(uow: SqlAlchemyUnitOfWork, notification: Notification, channel: str | None,
                              now: datetime) -> None:
    """notification.delivered / notification.failed for endpoints that asked (no query when none did)."""
    event_type = "notification.delivered" if notification.status == "delivered" else "notification.failed"
    if not subscribed(uow, notification.business_id, event_type) or notification.booking_id is None:
        return
    business = business_info(uow, notification.business_id)
    booking = booking_view(uow, uow.session.get_one(Booking, notification.booking_id), business)
    summary = NotificationSummary(id=notification.id, kind=notification.kind, status=notification.status,
                                  channel=channel, attempts=notification.attempts)
    emit(uow, notification.business_id, event_type, booking, now, notification=summary)


def subscribed(uow: SqlAlchemyUnitOfWork, business_id: int, event_type: str) -> bool:
    return any(event_type in e.event_types or "*" in e.event_types for e in uow.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.business_id == business_id, WebhookEndpoint.active)))
