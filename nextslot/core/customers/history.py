"""One customer's whole relationship with a business, in order: bookings and every change to them,
deposits, messages sent (each attempt), replies received, waitlist wishes and offers."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from nextslot.core.customers.contacts import normalize_email, normalize_phone
from nextslot.core.money import money
from nextslot.core.results import Rejected
from nextslot.core.views import booking_zone, customer_view, resources_zone
from nextslot.schemas.statuses import BookingStatus
from nextslot.schemas.times import repeat_note
from nextslot.schemas.views import CustomerHistory, HistoryEvent
from nextslot.storage import queries
from nextslot.storage.tables import (
    Booking,
    BookingHistory,
    Business,
    Customer,
    DeliveryAttempt,
    InboundMessage,
    Notification,
    Payment,
    Service,
    WaitlistEntry,
    WaitlistOffer,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork

ACTIONS = {"created": "Booked", "rescheduled": "Moved", "cancelled": "Cancelled", "confirmed": "Confirmed",
           "no_show": "Did not come to", "deposit_paid": "Paid the deposit for", "expired": "Deposit not paid for",
           "deposit_refund_due": "Paid too late (refund due) for"}


def find_customer(uow: SqlAlchemyUnitOfWork, business: Business, phone: str | None,
                  email: str | None) -> Customer | Rejected:
    if phone:
        normal = normalize_phone(phone, business.country)
        if isinstance(normal, Rejected):
            return Rejected(normal.code, normal.message, "phone")
        found = uow.session.scalars(select(Customer).where(Customer.business_id == business.id,
                                                           Customer.phone == normal))
    elif email:
        normal = normalize_email(email)
        if isinstance(normal, Rejected):
            return Rejected(normal.code, normal.message, "email")
        found = uow.session.scalars(select(Customer).where(
            Customer.business_id == business.id, func.lower(Customer.email) == normal.lower()).order_by(Customer.id))
    else:
        return Rejected("identifier_required", "Give the customer's phone number or email address.")
    return found.first() or Rejected("unknown_customer", "No customer with that phone number or email here.",
                                     "phone" if phone else "email")


def customer_history(uow: SqlAlchemyUnitOfWork, business_id: int, phone: str | None, email: str | None,
                     limit: int | None = None) -> CustomerHistory | Rejected:
    """The customer's events, oldest first (the latest `limit` when given)."""
    business = queries.known_business(uow.session, business_id)
    customer = find_customer(uow, business, phone, email)
    if isinstance(customer, Rejected):
        return customer
    return history_of(uow, business, customer, limit)


def history_for(uow: SqlAlchemyUnitOfWork, business_id: int, customer: Customer) -> CustomerHistory:
    """A known customer's whole history, in the customer's zone, else each booking's branch's (else the
    business's)."""
    return history_of(uow, queries.known_business(uow.session, business_id), customer)


def history_of(uow: SqlAlchemyUnitOfWork, business: Business, customer: Customer,
               limit: int | None = None) -> CustomerHistory:
    zone = ZoneInfo(customer.timezone or business.timezone)
    events = (booking_events(uow, customer, zone) + message_events(uow, customer) + reply_events(uow, customer)
              + waitlist_events(uow, customer, zone) + deposit_events(uow, customer))
    events.sort(key=lambda e: e.at)
    bookings = uow.session.scalar(select(func.count()).select_from(Booking).where(
        Booking.customer_id == customer.id)) or 0
    no_shows = uow.session.scalar(select(func.count()).select_from(Booking).where(
        Booking.customer_id == customer.id, Booking.status == BookingStatus.NO_SHOW)) or 0
    return CustomerHistory(customer=customer_view(customer), bookings=bookings, no_shows=no_shows,
                           events=events[-limit:] if limit else events)


def when(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return f"{local:%a %d %b %Y %H:%M}{repeat_note(local)}"


def booking_events(uow: SqlAlchemyUnitOfWork, customer: Customer, zone: ZoneInfo) -> list[HistoryEvent]:
    rows = uow.session.execute(
        select(BookingHistory, Booking.code, Service.name)
        .join(Booking, Booking.id == BookingHistory.booking_id).join(Service, Service.id == Booking.service_id)
        .where(Booking.customer_id == customer.id))
    events = []
    zones: dict[int, ZoneInfo] = {}  # a customer with no zone of their own hears each booking's branch's time
    for h, code, service in rows:
        if (here := zone if customer.timezone else zones.get(h.booking_id)) is None:
            here = zones[h.booking_id] = booking_zone(uow, h.booking_id, zone)
        starts = (h.after or h.before or {}).get("starts_at")
        moment = f" on {when(datetime.fromisoformat(starts), here)}" if starts else ""
        moved_from = (h.before or {}).get("starts_at") if h.action == "rescheduled" else None
        origin = f" (from {when(datetime.fromisoformat(moved_from), here)})" if moved_from else ""
        events.append(HistoryEvent(at=h.at, kind=f"booking.{h.action}", booking_code=code, channel=h.channel,
                                   summary=f"{ACTIONS.get(h.action, h.action)} {service}{moment}{origin}"
                                           + (f": {h.note}" if h.note else "")))
    return events


def message_events(uow: SqlAlchemyUnitOfWork, customer: Customer) -> list[HistoryEvent]:
    rows = uow.session.execute(
        select(DeliveryAttempt, Notification.kind, Booking.code)
        .join(Notification, Notification.id == DeliveryAttempt.notification_id)
        .outerjoin(Booking, Booking.id == Notification.booking_id)
        .where(Notification.customer_id == customer.id))
    return [HistoryEvent(at=a.created_at, kind="message", booking_code=code, channel=a.channel,
                         summary=f"{kind.replace('_', ' ')} by {a.channel}: {a.status}"
                                 + (f" ({a.error_code})" if a.error_code else ""))
            for a, kind, code in rows]


def reply_events(uow: SqlAlchemyUnitOfWork, customer: Customer) -> list[HistoryEvent]:
    rows = uow.session.execute(select(InboundMessage, Booking.code)
                               .outerjoin(Booking, Booking.id == InboundMessage.booking_id)
                               .where(InboundMessage.customer_id == customer.id))
    return [HistoryEvent(at=m.created_at, kind="reply", booking_code=code, channel=m.channel,
                         summary=f'Replied "{m.body[:160]}": {m.outcome.replace("_", " ")}') for m, code in rows]


def waitlist_events(uow: SqlAlchemyUnitOfWork, customer: Customer, zone: ZoneInfo) -> list[HistoryEvent]:
    events = [HistoryEvent(at=e.created_at, kind="waitlist.joined", booking_code=None, channel=e.source,
                           summary=f"Joined the waitlist for {service}"
                                   f"{f' (party of {e.party_size})' if e.party_size > 1 else ''}"
                                   f" between {e.earliest_date} and {e.latest_date}")
              for e, service in uow.session.execute(select(WaitlistEntry, Service.name)
                                                    .join(Service, Service.id == WaitlistEntry.service_id)
                                                    .where(WaitlistEntry.customer_id == customer.id))]
    for offer, service in uow.session.execute(select(WaitlistOffer, Service.name)
                                              .join(WaitlistEntry, WaitlistEntry.id == WaitlistOffer.entry_id)
                                              .join(Service, Service.id == WaitlistEntry.service_id)
                                              .where(WaitlistOffer.customer_id == customer.id)):
        here = zone if customer.timezone else resources_zone(uow, offer.resource_ids or (), zone)
        events.append(HistoryEvent(at=offer.created_at, kind="waitlist.offered", booking_code=None, channel=None,
                                   summary=f"Offered {service} on {when(offer.starts_at, here)}"))
        if offer.answered_at is not None:
            events.append(HistoryEvent(at=offer.answered_at, kind=f"waitlist.{offer.status}", booking_code=None,
                                       channel=offer.answer, summary=f"Offer of {when(offer.starts_at, here)}: "
                                                                     f"{offer.status}"))
    return events


def deposit_events(uow: SqlAlchemyUnitOfWork, customer: Customer) -> list[HistoryEvent]:
    rows = uow.session.execute(select(Payment, Booking.code).join(Booking, Booking.id == Payment.booking_id)
                               .where(Booking.customer_id == customer.id))
    return [HistoryEvent(at=p.created_at, kind="deposit.requested", booking_code=code, channel=None,
                         summary=f"Deposit of {money(p.amount_minor, p.currency).display} asked "
                                 f"({'no-show policy' if p.reason == 'no_shows' else 'service'}); now {p.status}")
            for p, code in rows]
