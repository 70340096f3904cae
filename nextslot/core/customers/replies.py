"""Customers' replies by message, as the core sees them: who wrote, which booking or offer they answer, their
opt-outs, and every reply stored with what it was read as and answered (a retried message is stored once).

The flow (what a reply means and what to answer) is the messaging edge's, in `reminders/inbound.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from nextslot.core.views import booking_zone, resources_zone
from nextslot.core.waitlist.offers import answerable_offer
from nextslot.schemas.statuses import ACTIVE
from nextslot.storage.refusals import committed_once
from nextslot.storage.tables import Booking, Business, Customer, InboundMessage, Service, WaitlistEntry
from nextslot.storage.uow import SqlAlchemyUnitOfWork

LATE_TERMS_ANSWER = timedelta(hours=1)


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
        return uow.session.scalars(select(InboundMessage.answer)
                                   .where(InboundMessage.provider_id == provider_id)).one_or_none()


def sender(uow: SqlAlchemyUnitOfWork, phone: str, languages: tuple[str, ...], default: str = "en") -> Sender:
    """Every customer record with this number (one per business it booked at), oldest first."""
    with uow:
        customers = uow.session.execute(select(Customer.id, Customer.business_id, Customer.language)
                                        .where(Customer.phone == phone).order_by(Customer.id)).all()
    return Sender([c.id for c in customers], customers[0].business_id if customers else None,
                  next((c.language for c in customers if c.language in languages), default))


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
        if offer is None:
            return None
        facts = uow.session.execute(
            select(Service.name, Customer.timezone, Business.timezone)
            .join(WaitlistEntry, WaitlistEntry.service_id == Service.id).join(Customer, Customer.id == offer.customer_id)
            .join(Business, Business.id == offer.business_id).where(WaitlistEntry.id == offer.entry_id)).one()
        zone = ZoneInfo(facts[1]) if facts[1] else resources_zone(uow, offer.resource_ids or (), ZoneInfo(facts[2]))
        return OfferTarget(offer.id, offer.business_id, offer.customer_id, facts[0], offer.starts_at, zone)


def target_booking(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], codes: list[str], names_a_code: bool,
                   now: datetime) -> Target | None:
    """The booking a reply is about: the one whose code it names, else (if it surely names none) this
    number's next upcoming one."""
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
        if row is None and not names_a_code:
            row = uow.session.execute(query.where(Booking.status.in_(ACTIVE), Booking.ends_at > now)
                                      .order_by(Booking.starts_at).limit(1)).first()
        if row is None:
            return None
        booking_id, business_id, customer_id, booking_code, service_name, starts_at, customer_zone, business_zone = row
        # a customer with no zone of their own reads the time where the booking is: its branch's zone
        zone = ZoneInfo(customer_zone) if customer_zone else booking_zone(uow, booking_id, ZoneInfo(business_zone))
    return Target(booking_id, business_id, customer_id, booking_code, service_name, starts_at, zone)


def set_opt_out(uow: SqlAlchemyUnitOfWork, customer_ids: list[int], channel: str, stop: bool) -> None:
    """STOP takes these customers off a channel (every business they booked at); START puts them back."""
    with uow:
        for customer in uow.session.scalars(select(Customer).where(Customer.id.in_(customer_ids))
                                            .order_by(Customer.id).with_for_update()):
            others = [c for c in customer.opted_out if c != channel]
            customer.opted_out = [*others, channel] if stop else others
        uow.commit()


def store_reply(uow: SqlAlchemyUnitOfWork, record: dict[str, Any], answer: str, outcome: str, who: Sender,
                now: datetime, target: Target | None = None) -> None:
    """Keep a reply with what it was read as and answered; the same message retried is kept once."""
    with uow:
        uow.session.add(InboundMessage(
            **record, answer=answer, outcome=outcome, created_at=now,
            customer_id=target.customer_id if target else (who.customer_ids[0] if who.customer_ids else None),
            business_id=target.business_id if target else who.business_id,
            booking_id=target.booking_id if target else None,
        ))
        committed_once(uow.session)  # not again: the same message, retried by Twilio while we were answering it
