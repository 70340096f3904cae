"""Customers' replies by message, as the core sees them: who wrote, which booking or offer they answer, their
opt-outs, and every reply stored with what it was read as and answered (a retried message is stored once).

The flow (what a reply means and what to answer) is the messaging edge's, in `reminders/inbound.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from nextslot.core.views import booking_zone, resources_zone
from nextslot.core.waitlist.offers import answerable_offer
from nextslot.schemas.statuses import ACTIVE
from nextslot.storage.refusals import committed_once
from nextslot.storage.tables import (
    Booking,
    Business,
    Customer,
    DeliveryAttempt,
    InboundMessage,
    Notification,
    Service,
    WaitlistEntry,
    WaitlistOffer,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork

LATE_TERMS_ANSWER = timedelta(hours=1)
# messages to a customer about their booking's time, which a bare yes or no answers ("Reply C to confirm or X ...")
ASKING = ("confirmation", "reminder", "rescheduled", "deposit_requested")
RECEIVED = "received"  # the outcome of a message claimed for acting on and not answered yet
CLAIM_TIMEOUT = timedelta(minutes=2)  # longer than any answer takes: a claim this old lost its process


@dataclass(frozen=True)
class Sender:
    customer_ids: list[int]
    business_id: int | None  # of the first matching customer, for replies about no booking
    language: str  # the first of their stated languages we speak, else the default


@dataclass(frozen=True)
class Target:
    """The booking a reply is about, as plain data (read in a transaction that is over)."""

    booking_id: int | None  # None: a waitlist offer, not a booking yet
    business_id: int
    customer_id: int
    code: str
    service_name: str
    starts_at: datetime
    zone: ZoneInfo


@dataclass(frozen=True)
class OfferTarget:
    offer_id: int
    business_id: int
    customer_id: int
    service_name: str
    starts_at: datetime
    zone: ZoneInfo


def answer_already_given(uow: SqlAlchemyUnitOfWork, provider_id: str | None) -> str | None:
    """What we answered a message the provider sends again (the same id), if we did."""
    if not provider_id:
        return None
    with uow:
        return uow.session.scalars(select(InboundMessage.answer).where(
            InboundMessage.provider_id == provider_id, InboundMessage.outcome != RECEIVED)).one_or_none()


def claim_reply(uow: SqlAlchemyUnitOfWork, record: dict[str, Any], now: datetime) -> bool:
    """Take a message for acting on, before acting: a copy the provider sends while the first is still being
    answered finds it taken and must not act (the number's next booking would by then be another one). False: it
    is taken. A claim still unanswered after CLAIM_TIMEOUT (its process died) is taken over."""
    if not record.get("provider_id"):
        return True
    with uow:
        s = uow.session
        taken = s.execute(insert(InboundMessage).values(**record, answer="", outcome=RECEIVED, created_at=now)
                          .on_conflict_do_nothing(index_elements=["provider_id"]).returning(InboundMessage.id)).scalar()
        if taken is None:
            taken = s.execute(update(InboundMessage).where(
                InboundMessage.provider_id == record["provider_id"], InboundMessage.outcome == RECEIVED,
                InboundMessage.created_at < now - CLAIM_TIMEOUT).values(created_at=now)
                .returning(InboundMessage.id)).scalar()
        uow.commit()
    return taken is not None


def sender(uow: SqlAlchemyUnitOfWork, phone: str, languages: tuple[str, ...], default: str = "en",
           business_id: int | None = None) -> Sender:
    """Every customer record with this number (one per business it booked at, or only `business_id`'s),
    oldest first."""
    query = select(Customer.id, Customer.business_id, Customer.language).where(Customer.phone == phone)
    if business_id is not None:
        query = query.where(Customer.business_id == business_id)
    with uow:
        customers = uow.session.execute(query.order_by(Customer.id)).all()
    return Sender([c.id for c in customers], customers[0].business_id if customers else None,
                  next((language_part(c.language) for c in customers if language_part(c.language) in languages),
                       default))


def language_part(tag: str | None) -> str:
    """'es-MX' -> 'es': a regional tag the customer gave is still a language we speak."""
    return (tag or "").strip().lower()[:2]


def number_owner(uow: SqlAlchemyUnitOfWork, number: str | None) -> int | None:
    """The business that gave out this number of ours (`details.conversations.numbers`), if one did."""
    if not number:
        return None
    with uow:
        return uow.session.scalars(select(Business.id).where(
            Business.details.contains({"conversations": {"numbers": [number]}})).order_by(Business.id)).first()


def asked_late_terms(uow: SqlAlchemyUnitOfWork, target: Target, now: datetime) -> bool:
    """Whether this customer was told, within the hour, what cancelling this booking late costs."""
    with uow:
        return uow.session.scalar(select(InboundMessage.id).where(
            InboundMessage.booking_id == target.booking_id, InboundMessage.customer_id == target.customer_id,
            InboundMessage.outcome == "late_terms_asked",
            InboundMessage.created_at > now - LATE_TERMS_ANSWER).limit(1)) is not None


def offer_answered(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], now: datetime) -> OfferTarget | None:
    """The waitlist offer a bare yes or no from these customers answers, if one is open."""
    with uow:
        offer = answerable_offer(uow, customer_ids, now)
        if offer is None or booking_message_since(uow, customer_ids, offer.created_at):
            return None
        facts = uow.session.execute(
            select(Service.name, Customer.timezone, Business.timezone)
            .join(WaitlistEntry, WaitlistEntry.service_id == Service.id).join(Customer, Customer.id == offer.customer_id)
            .join(Business, Business.id == offer.business_id).where(WaitlistEntry.id == offer.entry_id)).one()
        zone = ZoneInfo(facts[1]) if facts[1] else resources_zone(uow, offer.resource_ids or (), ZoneInfo(facts[2]))
        return OfferTarget(offer.id, offer.business_id, offer.customer_id, facts[0], offer.starts_at, zone)


def asked_since(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], since: datetime) -> bool:
    """Whether we asked these customers for a yes or no after `since`: a message about a booking (C or X) went
    out, or a waitlist offer (YES or NO) was made. A bare answer then answers that, not a chat before it."""
    if not customer_ids:
        return False
    with uow:
        offered = uow.session.scalar(select(WaitlistOffer.id).where(
            WaitlistOffer.customer_id.in_(customer_ids), WaitlistOffer.created_at > since).limit(1)) is not None
        return offered or booking_message_since(uow, customer_ids, since)


def booking_message_since(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], since: datetime) -> bool:
    """Whether a message about one of these customers' bookings (a reminder asking C or X, ...) went out after
    `since`: a bare yes or no then answers that message, not an older offer."""
    return bool(customer_ids) and uow.session.scalar(
        select(Notification.id).join(Booking, Booking.id == Notification.booking_id).where(
            Booking.customer_id.in_(customer_ids), Notification.customer_id.in_(customer_ids),
            Notification.sent_at > since).limit(1)) is not None


def quoted_booking(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], provider_id: str | None) -> int | None:
    """The booking of our message that a reply quotes (WhatsApp's OriginalRepliedMessageSid), if it is one of these
    customers'."""
    if not provider_id or not customer_ids:
        return None
    with uow:
        return uow.session.scalar(
            select(Notification.booking_id).join(DeliveryAttempt, DeliveryAttempt.notification_id == Notification.id)
            .join(Booking, Booking.id == Notification.booking_id)
            .where(DeliveryAttempt.provider_id == provider_id, Booking.customer_id.in_(customer_ids)).limit(1))


def target_booking(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], codes: list[str], names_a_code: bool,
                   now: datetime, quoted: int | None = None) -> Target | None:
    """The booking a reply is about: the one whose code it names; else (if it surely names none) the one of the
    message it quotes, else of the last message that asked about a booking not over yet (the reply answers that,
    even if the booking has been cancelled since: never another), else this number's next upcoming one."""
    if not customer_ids:
        return None
    with uow:
        query = (select(Booking.id, Booking.business_id, Booking.customer_id, Booking.code, Service.name,
                        Booking.starts_at, Customer.timezone, Business.timezone)
                 .join(Business, Business.id == Booking.business_id).join(Service, Service.id == Booking.service_id)
                 .join(Customer, Customer.id == Booking.customer_id).where(Booking.customer_id.in_(customer_ids)))
        row = None
        if codes:
            row = uow.session.execute(query.where(Booking.code.in_(codes)).limit(1)).first()
        if row is None and not names_a_code and quoted is not None:
            row = uow.session.execute(query.where(Booking.id == quoted)).first()
        if row is None and not names_a_code:  # sent_at: set when a provider took the message
            row = uow.session.execute(
                query.join(Notification, Notification.booking_id == Booking.id)
                .where(Notification.customer_id == Booking.customer_id, Notification.kind.in_(ASKING),
                       Notification.sent_at.is_not(None), Booking.ends_at > now)
                .order_by(Notification.sent_at.desc(), Notification.id.desc()).limit(1)).first()
        if row is None and not names_a_code:
            row = uow.session.execute(query.where(Booking.status.in_(ACTIVE), Booking.ends_at > now)
                                      .order_by(Booking.starts_at).limit(1)).first()
        if row is None:
            return None
        booking_id, business_id, customer_id, booking_code, service_name, starts_at, customer_zone, business_zone = row
        # a customer with no zone of their own reads the time where the booking is: its branch's zone
        zone = ZoneInfo(customer_zone) if customer_zone else booking_zone(uow, booking_id, ZoneInfo(business_zone))
    return Target(booking_id, business_id, customer_id, booking_code, service_name, starts_at, zone)


def opted_out_by_number(uow: SqlAlchemyUnitOfWork, phone: str | None) -> list[str]:
    """The channels this number last said STOP on (and not START since), whichever business's customer it is or
    becomes: our messages come from the same numbers for every business."""
    if not phone:
        return []
    last: dict[str, str] = {}
    for channel, outcome in uow.session.execute(
            select(InboundMessage.channel, InboundMessage.outcome)
            .where(InboundMessage.sender == phone, InboundMessage.outcome.in_(("opted_out", "opted_in")))
            .order_by(InboundMessage.id.desc())):
        last.setdefault(channel, outcome)
    return [channel for channel, outcome in last.items() if outcome == "opted_out"]


def set_opt_out(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], channel: str, stop: bool) -> None:
    """STOP takes these customers off a channel (every business they booked at); START puts them back."""
    with uow:
        for customer in uow.session.scalars(select(Customer).where(Customer.id.in_(customer_ids))
                                            .order_by(Customer.id).with_for_update()):
            others = [c for c in customer.opted_out if c != channel]
            customer.opted_out = [*others, channel] if stop else others
        uow.commit()


def follow_opt_change(uow: SqlAlchemyUnitOfWork, record: dict[str, Any], who: Sender, stop: bool,
                      now: datetime) -> None:
    """Keep an opt-out (or back in) the provider made on its own of a message that also answers a booking (Twilio
    stops every SMS on a bare CANCEL and resumes them on a YES) as a STOP or START is kept: on the customers, and
    by the number in a row of its own (the message's row keeps what it did). Nothing if the number stands so."""
    with uow:
        if (record["channel"] in opted_out_by_number(uow, record["sender"])) == stop:
            return
    set_opt_out(uow, who.customer_ids, record["channel"], stop)
    store_reply(uow, {**record, "provider_id": None, "intent": "stop" if stop else "start"}, "",
                "opted_out" if stop else "opted_in", who, now)


def store_reply(uow: SqlAlchemyUnitOfWork, record: dict[str, Any], answer: str, outcome: str, who: Sender,
                now: datetime, target: Target | None = None) -> None:
    """Keep a reply with what it was read as and answered (in its claim); the same message retried is kept once."""
    values = dict(**record, answer=answer, outcome=outcome, created_at=now,
                  customer_id=target.customer_id if target else (who.customer_ids[0] if who.customer_ids else None),
                  business_id=target.business_id if target else who.business_id,
                  booking_id=target.booking_id if target else None)
    with uow:
        if record.get("provider_id"):
            uow.session.execute(update(InboundMessage).where(InboundMessage.provider_id == record["provider_id"])
                                .values(**values))
            uow.commit()
            return
        uow.session.add(InboundMessage(**values))
        committed_once(uow.session)
