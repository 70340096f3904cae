"""Booking events for the business's webhook endpoints, written in the same transaction as the change:
a rolled-back change emits nothing, a committed one is never lost.

Each event is numbered per endpoint when its transaction commits (`sequence`: 1, 2, 3 ... in commit order, none
skipped) and carries the booking's change count (`booking_version`), so a receiver can put events in order and
drop a stale one that a retry brought after a newer one."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from nextslot.core.config_versions import VersionedCache, known_version
from nextslot.core.planning import business_info
from nextslot.core.views import booking_view
from nextslot.schemas.events import BookingEventData, Event, NotificationSummary
from nextslot.schemas.views import BookingView
from nextslot.storage import queries, webhook_sequences
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
         previous_starts_at: datetime | None = None, notification: NotificationSummary | None = None,
         booking_version: int | None = None) -> None:
    """Write the event's deliveries, one per subscribed endpoint; each numbered by its endpoint, and so given its
    bytes, when the transaction commits (`storage/webhook_sequences.py`).

    `booking_version`: the view's change count when the caller knows it (a view made in an earlier transaction);
    else counted now, which is the view's own when the caller holds the booking's row (every change does), or
    wrote it."""
    endpoints = [e for e, types in active_endpoints(uow, business_id) if event_type in types or "*" in types]
    if not endpoints:
        return
    if booking_version is None:
        booking_version = queries.booking_changes(uow.session, business_id, booking.id)
    data = BookingEventData(booking=booking, booking_version=booking_version, previous_starts_at=previous_starts_at,
                            notification=notification)
    event_id = f"evt_{uuid.uuid4().hex}"
    deliveries = [WebhookDelivery(business_id=business_id, endpoint_id=e, event_id=event_id, event_type=event_type,
                                  body="", status="pending", attempts=0, due_at=now, created_at=now, log=[])
                  for e in endpoints]  # the body is written at the commit, with the endpoint's number
    uow.session.add_all(deliveries)
    slug = queries.known_business(uow.session, business_id).slug

    def body(sequence: int) -> str:
        return Event(id=event_id, type=event_type, sequence=sequence, created_at=now, business=slug,
                     data=data).model_dump_json()

    webhook_sequences.number_at_commit(uow.session, deliveries, body)


CREATED = 1  # a new booking's history holds its "created" entry alone


def emit_notification_outcome(uow: SqlAlchemyUnitOfWork, notification: Notification, channel: str | None,
                              now: datetime) -> None:
    """notification.delivered / notification.failed for endpoints that asked (no query when none did)."""
    event_type = "notification.delivered" if notification.status == "delivered" else "notification.failed"
    if not subscribed(uow, notification.business_id, event_type) or notification.booking_id is None:
        return
    business = business_info(uow, notification.business_id)
    # counted before the booking is read, which this transaction does not lock: a change committed in between
    # shows in the view with the count before it, never the other way round (a newer count on an older state)
    version = queries.booking_changes(uow.session, notification.business_id, notification.booking_id)
    booking = booking_view(uow, uow.session.get_one(Booking, notification.booking_id, populate_existing=True),
                           business)
    summary = NotificationSummary(id=notification.id, kind=notification.kind, status=notification.status,
                                  channel=channel, attempts=notification.attempts)
    emit(uow, notification.business_id, event_type, booking, now, notification=summary, booking_version=version)


def subscribed(uow: SqlAlchemyUnitOfWork, business_id: int, event_type: str) -> bool:
    return any(event_type in e.event_types or "*" in e.event_types for e in uow.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.business_id == business_id, WebhookEndpoint.active)))
