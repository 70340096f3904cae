"""A customer's data rights: export everything stored about them, erase them, and the retention purge.

Export is one JSON document: the customer, their bookings with each one's history, messages and every delivery
attempt, replies, waitlist entries and offers, deposits, and conversations with their messages and tool calls.

Erasure removes or anonymises the personal data (name, phone, email, the names given for bookings, intake answers,
notes, message texts and recipients, replies, conversation texts and tool arguments) and keeps what the books need:
the bookings (their times, service, status and code), their claims, payments' amounts and the append-only booking
history, to which the erasure itself is appended (`customer_erased`), and an audit entry says who erased whom. A
customer with upcoming bookings is refused unless they are cancelled in the same step. Erasing twice changes nothing
more.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, func, or_, select, update

from nextslot.core import audit
from nextslot.core.booking.changes import cancel
from nextslot.core.calendar_writes import write_again
from nextslot.core.customers.contacts import normalize_email, normalize_phone
from nextslot.core.customers.erasure_reach import forget_contact, scrub_waiting_events
from nextslot.core.results import Rejected
from nextslot.core.waitlist.offers import offer_key
from nextslot.schemas.commands import BookingChange
from nextslot.schemas.statuses import BookingStatus
from nextslot.storage.tables import (
    Booking,
    BookingHistory,
    Business,
    Conversation,
    ConversationMessage,
    ConversationToolCall,
    Customer,
    DeliveryAttempt,
    InboundMessage,
    ModelCall,
    Notification,
    Payment,
    Service,
    WaitlistEntry,
    WaitlistOffer,
    WebhookDelivery,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork

ERASED_NAME = "Erased customer"
SEVERAL = 10  # customers named in the refusal when an email address is more than one's
ERASED = "[erased]"
LIVE = (BookingStatus.BOOKED, BookingStatus.CONFIRMED, BookingStatus.PENDING_PAYMENT)


@dataclass(frozen=True)
class Erased:
    customer_id: int
    bookings: int
    cancelled: int
    messages: int
    conversations: int
    already: bool = False


def find(uow: SqlAlchemyUnitOfWork, business_id: int, customer_id: int | None = None, phone: str | None = None,
         email: str | None = None) -> Customer | Rejected:
    """The business's customer by id, phone (any format the business's country reads) or email."""
    query = select(Customer).where(Customer.business_id == business_id)
    if customer_id is not None:
        query = query.where(Customer.id == customer_id)
    elif phone:
        country = uow.session.scalar(select(Business.country).where(Business.id == business_id)) or "GB"
        normal = normalize_phone(phone, country)
        if isinstance(normal, Rejected):
            return Rejected(normal.code, normal.message, "phone")
        query = query.where(Customer.phone == normal)
    elif email:
        normal = normalize_email(email)
        if isinstance(normal, Rejected):
            return Rejected(normal.code, normal.message, "email")
        query = query.where(func.lower(Customer.email) == normal.lower())
    else:
        return Rejected("identifier_required", "Give the customer's id, phone number or email address.")
    found = list(uow.session.scalars(query.order_by(Customer.id).limit(SEVERAL)))
    if len(found) > 1:  # an email is no one's key (a family shares one): exporting or erasing one of them is a guess
        return Rejected("several_customers", f"{'More than ' if len(found) == SEVERAL else ''}{len(found)} customers "
                        f"here have that email address (ids {', '.join(str(c.id) for c in found)}): name the one "
                        "meant by its id or phone number.", "email")
    return found[0] if found else Rejected("unknown_customer", "No customer with that id, phone number or email here.")


def export_customer(uow: SqlAlchemyUnitOfWork, business_id: int, now: datetime, **who: Any) -> dict[str, Any] | Rejected:
    """Everything stored about one customer, as JSON-ready data (the export is audited)."""
    with uow:
        s = uow.session
        customer = find(uow, business_id, **who)
        if isinstance(customer, Rejected):
            return customer
        bookings = list(s.scalars(select(Booking).where(Booking.business_id == business_id,
                                                        Booking.customer_id == customer.id).order_by(Booking.id)))
        conversations = list(s.scalars(select(Conversation).where(
            Conversation.business_id == business_id, conversation_of(customer)).order_by(Conversation.id)))
        document = {
            "exported_at": now.isoformat(),
            "customer": row(customer, ("id", "name", "phone", "email", "timezone", "language", "channels",
                                       "opted_out", "no_show_count", "created_at", "erased_at")),
            "bookings": [booking_document(uow, b) for b in bookings],
            "messages": [message_document(uow, n) for n in s.scalars(select(Notification).where(
                Notification.business_id == business_id, Notification.customer_id == customer.id,
                Notification.booking_id.is_(None)).order_by(Notification.id))],  # waitlist offers, chat replies
            "replies": [row(m, ("id", "channel", "sender", "body", "intent", "outcome", "answer", "created_at"))
                        for m in s.scalars(select(InboundMessage).where(
                            InboundMessage.business_id == business_id, InboundMessage.customer_id == customer.id)
                            .order_by(InboundMessage.id))],
            "waitlist": [waitlist_document(uow, e) for e in s.scalars(select(WaitlistEntry).where(
                WaitlistEntry.business_id == business_id, WaitlistEntry.customer_id == customer.id)
                .order_by(WaitlistEntry.id))],
            "conversations": [conversation_document(uow, c) for c in conversations],
        }
        audit.record(uow, business_id, "customer.exported", f"customer {customer.id}")
        uow.commit()
        return document


def erase_customer(uow: SqlAlchemyUnitOfWork, business_id: int, now: datetime, cancel_upcoming: bool = False,
                   **who: Any) -> Erased | Rejected:
    """Remove the customer's personal data, keeping bookings, claims and history consistent (see the module).

    Upcoming bookings, with `cancel_upcoming`, are first cancelled through the core's own cancel (claims freed,
    the waitlist offered the time, the cancellation event sent), then the data is erased in one transaction."""
    cancelled = 0
    if cancel_upcoming:
        with uow:
            customer = find(uow, business_id, **who)
            codes: list[str] = []
            if not isinstance(customer, Rejected):
                codes = list(uow.session.scalars(select(Booking.code).where(
                    Booking.business_id == business_id, Booking.customer_id == customer.id, Booking.status.in_(LIVE),
                    Booking.ends_at > now)))
                if codes:  # first off the waitlist: the time their cancellations free must not be offered to them
                    withdraw_from_waitlist(uow, business_id, customer.id)
                    uow.commit()
        actor, channel = audit.ACTOR.get()
        for code in codes:
            result = cancel(uow, business_id, BookingChange(code=code, reason="the customer's data was erased",
                                                            source=channel[:32], actor=actor[:100]), now)
            cancelled += not isinstance(result, Rejected)
    erased = erase_now(uow, business_id, now, **who)
    if isinstance(erased, Erased) and cancelled:
        return Erased(erased.customer_id, erased.bookings, cancelled, erased.messages, erased.conversations)
    return erased


def erase_now(uow: SqlAlchemyUnitOfWork, business_id: int, now: datetime, **who: Any) -> Erased | Rejected:
    with uow:
        s = uow.session
        customer = find(uow, business_id, **who)
        if isinstance(customer, Rejected):
            return customer
        hold_offer_keys(uow, business_id, customer.id)
        s.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
        bookings = list(s.scalars(select(Booking).where(Booking.business_id == business_id,
                                                        Booking.customer_id == customer.id)
                                  .with_for_update(of=Booking)))
        upcoming = [b for b in bookings if b.status in LIVE and b.ends_at > now]
        if upcoming:
            return Rejected("upcoming_bookings", f"The customer has {len(upcoming)} upcoming booking(s) "
                            f"({', '.join(b.code for b in upcoming)}): cancel them first, or erase with "
                            "cancel_upcoming.", "cancel_upcoming")
        if customer.erased_at is not None:
            return Erased(customer.id, len(bookings), 0, 0, 0, already=True)
        withdraw_from_waitlist(uow, business_id, customer.id)
        booking_ids = [b.id for b in bookings]
        for b in bookings:
            b.intake, b.notes, b.contact_name = {}, "", None
            s.add(BookingHistory(business_id=business_id, booking_id=b.id, at=now, action="customer_erased",
                                 actor=audit.ACTOR.get()[0][:100], channel=audit.ACTOR.get()[1], note=""))
        notifications = select(Notification.id).where(Notification.business_id == business_id, or_(
            Notification.customer_id == customer.id, Notification.booking_id.in_(booking_ids)))
        changed(uow, update(Notification).where(Notification.id.in_(notifications), Notification.status.in_(
            ("pending", "sending", "sent"))).values(status="void", locked_until=None,
                                                   last_error="the customer's data was erased"))
        messages = changed(uow, update(Notification).where(Notification.id.in_(notifications)).values(
            payload={}, last_error=None))
        changed(uow, update(DeliveryAttempt).where(DeliveryAttempt.notification_id.in_(notifications)).values(
            recipient=ERASED, error_message=None))
        changed(uow, update(InboundMessage).where(InboundMessage.business_id == business_id, or_(
            InboundMessage.customer_id == customer.id, InboundMessage.booking_id.in_(booking_ids),
            *([InboundMessage.sender == customer.phone] if customer.phone else []))).values(
            sender=ERASED, body="", answer=""))
        conversation_ids = list(s.scalars(select(Conversation.id).where(
            Conversation.business_id == business_id, conversation_of(customer))))
        changed(uow, update(ConversationMessage).where(ConversationMessage.conversation_id.in_(conversation_ids))
                .values(body="", media={}, staff_name=None))
        changed(uow, update(ConversationToolCall).where(ConversationToolCall.conversation_id.in_(conversation_ids))
                .values(arguments={}, result={}))
        changed(uow, update(Conversation).where(Conversation.id.in_(conversation_ids)).values(
            phone="", identity={}, state={}, visitor_key=None, status="closed",
            closed_at=func.coalesce(Conversation.closed_at, now), handoff_at=None, customer_id=customer.id))
        for code in (b.code for b in bookings):  # the events already sent or given up on carried their contact
            changed(uow, update(WebhookDelivery).where(
                WebhookDelivery.business_id == business_id, WebhookDelivery.status.in_(("delivered", "failed")),
                WebhookDelivery.body.contains(f'"code":"{code}"') | WebhookDelivery.body.contains(f'"code": "{code}"'))
                .values(body='{"erased": true}'))
        scrub_waiting_events(uow, business_id, customer.id, ERASED_NAME)
        forget_contact(uow, business_id, customer)
        customer.name, customer.phone, customer.email = ERASED_NAME, None, None
        customer.timezone, customer.channels, customer.opted_out, customer.erased_at = None, [], [], now
        write_again(uow, business_id, booking_ids, now)  # her name leaves the staff calendars her bookings are in
        audit.record(uow, business_id, "customer.erased", f"customer {customer.id}",
                     {"bookings": [None, len(bookings)]})
        uow.commit()
        return Erased(customer.id, len(bookings), 0, messages, len(conversation_ids))


def changed(uow: SqlAlchemyUnitOfWork, statement: Any) -> int:
    """Run an UPDATE or DELETE; how many rows it touched."""
    result: CursorResult[Any] = uow.session.execute(statement)  # type: ignore[assignment]
    return result.rowcount


def hold_offer_keys(uow: SqlAlchemyUnitOfWork, business_id: int, customer_id: int) -> None:
    """Take the key a yes to each of the customer's unbooked offers books under, before the customer's row (the
    order a booking takes them in). A yes booking meanwhile holds its key until it commits: the erasure waits, then
    sees its booking and is refused; a yes after the erasure finds the key taken and books nothing."""
    for offer_id in uow.session.scalars(select(WaitlistOffer.id).where(
            WaitlistOffer.business_id == business_id, WaitlistOffer.customer_id == customer_id,
            WaitlistOffer.booking_id.is_(None)).order_by(WaitlistOffer.id)):
        uow.idempotency.take(business_id, offer_key(offer_id), "offer_withdrawn", "erased")


def withdraw_from_waitlist(uow: SqlAlchemyUnitOfWork, business_id: int, customer_id: int) -> None:
    """No more offers for an erased customer: their wishes withdrawn, their open offers ended."""
    changed(uow, update(WaitlistEntry).where(WaitlistEntry.business_id == business_id, WaitlistEntry.customer_id ==
                                          customer_id, WaitlistEntry.status.in_(("waiting", "offered")))
              .values(status="withdrawn"))
    changed(uow, update(WaitlistOffer).where(WaitlistOffer.business_id == business_id, WaitlistOffer.customer_id ==
                                          customer_id, WaitlistOffer.status == "open").values(status="expired"))


def purge_expired(uow: SqlAlchemyUnitOfWork, now: datetime, message_days: int | None,
                  conversation_days: int | None) -> dict[str, int]:
    """Retention: message texts older than `message_days` emptied (the rows, statuses and times stay), and
    conversations closed more than `conversation_days` ago deleted with their messages, tool and model calls."""
    purged = {"messages": 0, "replies": 0, "conversation_messages": 0, "conversations": 0}
    with uow:
        if message_days is not None:
            before = now - timedelta(days=message_days)
            purged["messages"] = changed(uow, update(Notification).where(
                Notification.created_at < before, Notification.status.not_in(("pending", "sending")),
                Notification.payload != {}).values(payload={}))
            purged["replies"] = changed(uow, update(InboundMessage).where(
                InboundMessage.created_at < before, or_(InboundMessage.body != "", InboundMessage.answer != ""))
                .values(body="", answer=""))
            purged["conversation_messages"] = changed(uow, update(ConversationMessage).where(
                ConversationMessage.created_at < before, ConversationMessage.processed_at.is_not(None),
                ConversationMessage.body != "").values(body="", media={}))
        if conversation_days is not None:
            old = select(Conversation.id).where(Conversation.status == "closed",
                                                Conversation.closed_at < now - timedelta(days=conversation_days))
            changed(uow, delete(ConversationToolCall).where(ConversationToolCall.conversation_id.in_(old)))
            changed(uow, delete(ModelCall).where(ModelCall.conversation_id.in_(old)))
            changed(uow, delete(ConversationMessage).where(ConversationMessage.conversation_id.in_(old)))
            purged["conversations"] = changed(uow, delete(Conversation).where(Conversation.id.in_(old)))
        uow.commit()
    return purged


# --- the export's parts ------------------------------------------------------------------------------------


def conversation_of(customer: Customer) -> Any:
    """Her conversations: linked to her, from her number, or a booking-page chat that gave or proved her number or
    email (a web chat's own phone is empty: the visitor's contact is in its identity)."""
    identity = Conversation.identity
    ours = [Conversation.customer_id == customer.id]
    if customer.phone:
        ours += [Conversation.phone == customer.phone, identity["phone"].astext == customer.phone,
                 identity["proved_phone"].astext == customer.phone]
    if customer.email:
        ours.append(identity["proved_email"].astext == customer.email.lower())
    return or_(*ours)


def row(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: plain(getattr(obj, f)) for f in fields}


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def booking_document(uow: SqlAlchemyUnitOfWork, b: Booking) -> dict[str, Any]:
    document = row(b, ("id", "code", "status", "starts_at", "ends_at", "source", "contact_name", "intake", "notes",
                       "created_at", "updated_at"))
    document["service"] = uow.session.scalar(select(Service.key).where(Service.id == b.service_id))
    document["history"] = [row(h, ("at", "action", "actor", "channel", "before", "after", "note"))
                           for h in uow.session.scalars(select(BookingHistory).where(BookingHistory.booking_id == b.id)
                                                        .order_by(BookingHistory.id))]
    document["messages"] = [message_document(uow, n) for n in uow.session.scalars(
        select(Notification).where(Notification.booking_id == b.id, Notification.resource_id.is_(None),
                                   ~Notification.kind.startswith("staff_")).order_by(Notification.id))]
    payment = uow.session.scalars(select(Payment).where(Payment.booking_id == b.id)).one_or_none()
    document["deposit"] = row(payment, ("amount_minor", "currency", "status", "reason", "provider", "expires_at",
                                        "paid_at", "created_at")) if payment else None
    return document


def message_document(uow: SqlAlchemyUnitOfWork, n: Notification) -> dict[str, Any]:
    document = row(n, ("id", "kind", "status", "due_at", "sent_at", "created_at", "payload"))
    document["attempts"] = [row(a, ("channel", "recipient", "provider_id", "status", "error_code", "history",
                                    "created_at")) for a in uow.session.scalars(select(DeliveryAttempt).where(
                                        DeliveryAttempt.notification_id == n.id).order_by(DeliveryAttempt.id))]
    return document


def waitlist_document(uow: SqlAlchemyUnitOfWork, e: WaitlistEntry) -> dict[str, Any]:
    document = row(e, ("id", "earliest_date", "latest_date", "status", "source", "created_at"))
    document["earliest_date"], document["latest_date"] = e.earliest_date.isoformat(), e.latest_date.isoformat()
    document["service"] = uow.session.scalar(select(Service.key).where(Service.id == e.service_id))
    document["offers"] = [row(o, ("starts_at", "status", "expires_at", "answered_at", "answer", "created_at"))
                          for o in uow.session.scalars(select(WaitlistOffer).where(WaitlistOffer.entry_id == e.id)
                                                       .order_by(WaitlistOffer.id))]
    return document


def conversation_document(uow: SqlAlchemyUnitOfWork, c: Conversation) -> dict[str, Any]:
    document = row(c, ("id", "channel", "status", "language", "created_at", "closed_at"))
    document["messages"] = [row(m, ("direction", "body", "answered_by", "created_at")) for m in uow.session.scalars(
        select(ConversationMessage).where(ConversationMessage.conversation_id == c.id)
        .order_by(ConversationMessage.id))]
    document["tool_calls"] = [row(t, ("tool", "arguments", "result", "ok", "by", "created_at"))
                              for t in uow.session.scalars(select(ConversationToolCall).where(
                                  ConversationToolCall.conversation_id == c.id).order_by(ConversationToolCall.id))]
    return document
