"""What happened to one booking: its history, and every message about it (sent, tried, and received)."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from nextslot.core.booking.codes import normalize_code
from nextslot.schemas.api import (
    BookingHistory,
    DeliveryAttemptView,
    HistoryEntry,
    InboundMessageView,
    NotificationLog,
    NotificationView,
)
from nextslot.storage.tables import BookingHistory as HistoryRow
from nextslot.storage.tables import DeliveryAttempt, InboundMessage, Notification, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def booking_history(uow: SqlAlchemyUnitOfWork, business_id: int, code: str) -> BookingHistory | None:
    """Every change to the booking, oldest first; None when the business has no such booking."""
    booking = uow.bookings.by_code(business_id, normalize_code(code))
    if booking is None:
        return None
    rows = uow.session.scalars(select(HistoryRow).where(HistoryRow.booking_id == booking.id)
                           .order_by(HistoryRow.at, HistoryRow.id))
    return BookingHistory(code=booking.code, entries=[
        HistoryEntry(at=h.at, action=h.action, actor=h.actor, channel=h.channel, before=h.before, after=h.after,
                     note=h.note) for h in rows])


def notification_log(uow: SqlAlchemyUnitOfWork, business_id: int, code: str) -> NotificationLog | None:
    """Each notification with every delivery attempt, and the customer's replies; contacts masked."""
    booking = uow.bookings.by_code(business_id, normalize_code(code))
    if booking is None:
        return None
    notifications = list(uow.session.scalars(select(Notification).where(Notification.booking_id == booking.id)
                                         .order_by(Notification.created_at, Notification.id)))
    attempts = defaultdict(list)
    for a in uow.session.scalars(select(DeliveryAttempt).where(
            DeliveryAttempt.notification_id.in_([n.id for n in notifications]))
            .order_by(DeliveryAttempt.created_at, DeliveryAttempt.id)):
        attempts[a.notification_id].append(DeliveryAttemptView(
            channel=a.channel, recipient=mask(a.recipient), provider_id=a.provider_id, status=a.status,
            history=a.history, error_code=a.error_code, error_message=a.error_message,
            created_at=a.created_at, updated_at=a.updated_at))
    staff = dict(uow.session.execute(select(Resource.id, Resource.key).where(
        Resource.id.in_({n.resource_id for n in notifications if n.resource_id is not None}))).all())
    inbound = uow.session.scalars(select(InboundMessage).where(
        InboundMessage.booking_id == booking.id, InboundMessage.business_id == business_id)
        .order_by(InboundMessage.created_at, InboundMessage.id))
    return NotificationLog(
        code=booking.code,
        notifications=[NotificationView(
            id=n.id, kind=n.kind, audience="staff" if n.resource_id else "customer", staff=staff.get(n.resource_id) if n.resource_id else None,
            status=n.status, due_at=n.due_at, sent_at=n.sent_at, last_error=n.last_error, gave_up_on=n.gave_up_on,
            attempts=attempts[n.id]) for n in notifications],
        inbound=[InboundMessageView(channel=m.channel, sender=mask(m.sender), body=m.body, intent=m.intent,
                                    outcome=m.outcome, answer=m.answer, received_at=m.created_at) for m in inbound],
    )


def mask(contact: str) -> str:
    """'+447911123456' -> '+44*******456', 'ann.lee@example.com' -> 'a***@example.com': enough to tell two
    contacts apart, not enough to read a customer's number or address off a screen."""
    if "@" in contact:
        local, _, domain = contact.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if len(contact) <= 6:
        return "*" * len(contact)
    return contact[:3] + "*" * (len(contact) - 6) + contact[-3:]
