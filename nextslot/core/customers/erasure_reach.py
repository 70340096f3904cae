"""What an erasure reaches beyond the customer's own rows: webhook events still waiting to go out (their bodies carry
her contact) and what is kept under her number or email address alone (the WhatsApp window, the one-time codes sent
there). The events her bookings put in staff calendars are written again by `calendar_writes.write_again`."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, or_, select

from nextslot.storage.tables import ContactProof, Customer, WebhookDelivery, WhatsAppWindow
from nextslot.storage.uow import SqlAlchemyUnitOfWork

WAITING = ("pending", "sending")  # a delivery in flight is sent again from its row if this try fails


def scrub_waiting_events(uow: SqlAlchemyUnitOfWork, business_id: int, customer_id: int, erased_name: str) -> int:
    """Rewrite the events not yet delivered that carry the customer as she stands after erasure: the business still
    hears of each change (a cancellation the erasure made itself included), without her name, number, email or
    answers. A retry signs and sends the row's bytes, so the next try sends the rewritten event."""
    marker = f'"customer":{{"id":{customer_id},'  # the event's own serializer: compact, the id first
    rows = uow.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.business_id == business_id, WebhookDelivery.status.in_(WAITING),
        WebhookDelivery.body.contains(marker, autoescape=True)).with_for_update())
    scrubbed = 0
    for delivery in rows:
        event = json.loads(delivery.body)
        booking = (event.get("data") or {}).get("booking") or {}
        if (booking.get("customer") or {}).get("id") != customer_id:
            continue
        booking["customer"] |= {"name": erased_name, "phone": None, "email": None, "timezone": None}
        booking["intake"] = {}
        if "contact_name" in booking:
            booking["contact_name"] = None
        delivery.body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        scrubbed += 1
    return scrubbed


def forget_contact(uow: SqlAlchemyUnitOfWork, business_id: int, customer: Customer) -> None:
    """Rows keyed by her number or email alone: when she last wrote on WhatsApp, and the one-time codes sent to her
    (each names the contact in clear)."""
    contacts: list[Any] = [c for c in (customer.phone, (customer.email or "").lower()) if c]
    if not contacts:
        return
    if customer.phone:
        uow.session.execute(delete(WhatsAppWindow).where(WhatsAppWindow.business_id == business_id,
                                                         WhatsAppWindow.phone == customer.phone))
    uow.session.execute(delete(ContactProof).where(ContactProof.business_id == business_id,
                                                   or_(*(ContactProof.contact == c for c in contacts))))
