"""Deposit payments over time: what a pay link shows, the provider's checkout, its 'paid', and the unpaid deadline."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nextslot.core import events
from nextslot.core.booking.codes import normalize_code
from nextslot.core.booking.cutoffs import policy_of
from nextslot.core.booking.refusals import unknown_booking
from nextslot.core.deposits import rules
from nextslot.core.planning import business_info, load_plan
from nextslot.core.results import Rejected
from nextslot.core.views import booking_view
from nextslot.schemas.views import BookingView
from nextslot.storage.alone import in_savepoint
from nextslot.storage.tables import Booking, Payment
from nextslot.storage.uow import SqlAlchemyUnitOfWork


@dataclass(frozen=True)
class DepositDue:
    booking: BookingView
    payment_id: int
    provider: str
    provider_ref: str | None
    checkout_url: str | None
    save_card: bool = False  # a late cancel or a no-show may cost a fee: keep the card for an off-session charge


def deposit_due(uow: SqlAlchemyUnitOfWork, business_id: int, code: str) -> DepositDue | Rejected:
    """What a pay link needs: the unpaid deposit of a booking, and any checkout already started."""
    with uow:
        s = uow.session
        booking = uow.bookings.by_code(business_id, normalize_code(code))
        if booking is None:
            return unknown_booking(code)
        payment = s.scalars(select(Payment).where(Payment.booking_id == booking.id)).one_or_none()
        if payment is None:
            return Rejected("no_deposit", f"Booking {booking.code} needs no deposit.", "code")
        business = business_info(uow, business_id)
        view = booking_view(uow, booking, business)
        policy = policy_of(booking, business)
        save_card = policy is not None and bool(policy.late_fee or policy.no_show_fee)
        return DepositDue(view, payment.id, payment.provider, payment.provider_ref, payment.checkout_url, save_card)


def record_checkout(uow: SqlAlchemyUnitOfWork, business_id: int, payment_id: int, provider: str, provider_ref: str,
                    checkout_url: str, now: datetime) -> tuple[str, str]:
    """Remember the provider's checkout session, so the pay link reuses it and its webhook finds us; return the
    checkout (reference, URL) to send the customer to.

    The first one recorded stays: a pay link opened twice at once (two tabs, a mail scanner's visit) starts two
    checkouts, and a payment is found by its checkout's reference, so both visitors go to the one kept. The other
    is noted in the log and left to expire at the provider unvisited."""
    with uow:
        payment = uow.session.scalars(select(Payment).where(
            Payment.id == payment_id, Payment.business_id == business_id).with_for_update()).one()
        if payment.provider == provider and payment.provider_ref and payment.checkout_url:
            kept = payment.provider_ref, payment.checkout_url
            payment.log = [*payment.log, {"at": now.isoformat(), "event": "checkout_unused", "ref": provider_ref}]
        else:
            kept = provider_ref, checkout_url
            payment.provider, payment.provider_ref, payment.checkout_url = provider, provider_ref, checkout_url
            payment.log = [*payment.log, {"at": now.isoformat(), "event": "checkout", "ref": provider_ref}]
        uow.commit()
    return kept


def settle_deposit(uow: SqlAlchemyUnitOfWork, provider: str, provider_ref: str, amount_minor: int, currency: str,
                   event: dict[str, Any], now: datetime, payer_ref: str | None = None,
                   payment_ref: str | None = None) -> rules.Settled | Rejected:
    """A provider says a checkout was paid (verified webhook): confirm the booking. Replays are harmless.

    `payer_ref` and `payment_ref` are the provider's customer and payment, kept so that a late cancel's or a
    no-show's fee can be charged to the same card later (off-session)."""
    with uow:
        s = uow.session
        payment = s.scalars(select(Payment).where(
            Payment.provider == provider, Payment.provider_ref == provider_ref).with_for_update()).one_or_none()
        if payment is None:
            return Rejected("unknown_payment", f"No deposit with {provider} reference {provider_ref}.", "ref")
        booking_row = select(Booking).where(Booking.id == payment.booking_id)
        if payment.status not in rules.SETTLED:  # a replay only notes itself, and must not wait for the booking: a
            booking_row = booking_row.with_for_update(of=Booking)  # cancel holding it waits for this paid payment
        booking = s.scalars(booking_row).one()
        plan = load_plan(uow, booking.business_id, booking.service.key)
        if isinstance(plan, Rejected):
            return plan
        payment.payer_ref = payer_ref or payment.payer_ref
        payment.payment_ref = payment_ref or payment.payment_ref
        settled = rules.settle(uow, payment, booking, plan, amount_minor, currency, now, event)
        uow.commit()
        return settled


def expire_unpaid(uow: SqlAlchemyUnitOfWork, now: datetime) -> int:
    """Bookings whose deposit deadline passed unpaid become expired and free their slot at once."""
    with uow:
        s = uow.session
        done = [in_savepoint(s, lambda: expire_one(uow, payment, now), "deposit %s (business %s): not expired",
                             payment.id, payment.business_id)
                for payment in rules.overdue(uow, now)]  # a failed one is tried again next run
        uow.commit()
        return sum(d is True for d in done)


def expire_one(uow: SqlAlchemyUnitOfWork, payment: Payment, now: datetime) -> bool:
    """Expire one unpaid booking; its event is built in a savepoint of its own, as the view reads the business's
    settings: a business whose settings cannot be read loses the event, not the expiry."""
    booking = uow.session.scalars(select(Booking).where(Booking.id == payment.booking_id)
                                  .with_for_update(of=Booking)).one()
    if not rules.expire(uow, payment, booking, now):
        return False
    in_savepoint(uow.session, lambda: events.emit(uow, booking.business_id, "booking.expired",
                                                  booking_view(uow, booking, business_info(uow, booking.business_id)),
                                                  now),
                 "booking %s (business %s): no booking.expired event", booking.id, booking.business_id)
    return True
