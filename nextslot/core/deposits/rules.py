"""Deposits: a booking that needs one waits as pending_payment until the provider reports it paid.

Its claims carry the payment deadline as their expiry, so an unpaid booking stops blocking the
slot at the deadline exactly like an expired hold (availability ignores it, the next claimer sweeps
it) even before the scheduler marks it expired. A payment that arrives late takes the slot again if
it is still free; otherwise the money is marked for refund and staff see it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from nextslot.core import events, outbox
from nextslot.core.booking.claiming import claim_start
from nextslot.core.calendar_writes import queue_calendar_writes
from nextslot.core.planning import Plan
from nextslot.core.views import booked_resources, booking_view
from nextslot.core.waitlist import offers as waitlist_offers
from nextslot.schemas.statuses import BookingStatus
from nextslot.storage.claims import ClaimRepository
from nextslot.storage.customers import StoredCustomer
from nextslot.storage.tables import Booking, BookingHistory, Payment
from nextslot.storage.uow import SqlAlchemyUnitOfWork

SETTLED = ("paid", "refund_due", "refunded", "kept")  # the provider's "paid" was heard: it is only noted again


@dataclass(frozen=True)
class Settled:
    """What a provider's 'paid' meant for the booking."""

    outcome: str  # paid, already_paid, refund_due, mismatch
    business_id: int
    code: str


@dataclass(frozen=True)
class DepositAsk:
    amount_minor: int
    currency: str
    reason: str  # service: the service's own deposit; no_shows: the business's no-show policy


def asked(uow: SqlAlchemyUnitOfWork, plan: Plan, customer: StoredCustomer, now: datetime) -> DepositAsk | None:
    """The deposit this booking needs: the service's, else the no-show policy's if the customer crossed it."""
    if plan.deposit is not None:
        return DepositAsk(*plan.deposit, "service")
    policy = plan.business.no_show_policy
    # recent no-shows are never more than all of them, which the customer's row counts (every no-show adds one):
    # only a customer with enough of those is counted again, for the policy's window
    if policy is not None and customer.no_show_count >= policy.after and \
            recent_no_shows(uow, customer.id, now - timedelta(days=policy.within_days)) >= policy.after:
        return DepositAsk(policy.deposit.amount_minor, policy.deposit.currency, "no_shows")
    return None


def recent_no_shows(uow: SqlAlchemyUnitOfWork, customer_id: int, since: datetime) -> int:
    return uow.session.scalar(select(func.count()).select_from(Booking).where(
        Booking.customer_id == customer_id, Booking.status == BookingStatus.NO_SHOW, Booking.starts_at >= since)) or 0


def deadline(plan: Plan, now: datetime) -> datetime:
    return now + timedelta(minutes=plan.business.deposit_hold_minutes)


def require(uow: SqlAlchemyUnitOfWork, booking: Booking, ask: DepositAsk, provider: str, until: datetime) -> Payment:
    """The booking's deposit, due by `until` (its claims were made with that expiry)."""
    uow.claims.set_expiry(booking.id, until)
    payment = Payment(business_id=booking.business_id, booking_id=booking.id, amount_minor=ask.amount_minor,
                      currency=ask.currency, reason=ask.reason, status="pending", provider=provider, expires_at=until,
                      log=[{"at": booking.updated_at.isoformat(), "event": "requested"}])
    uow.session.add(payment)
    uow.session.flush()
    # the pay link, for callers and agents
    outbox.announce(uow, booking, "deposit_requested", booking.updated_at)
    return payment


def settle(uow: SqlAlchemyUnitOfWork, payment: Payment, booking: Booking, plan: Plan, amount_minor: int,
           currency: str, now: datetime, event: dict[str, Any]) -> Settled:
    """Mark the deposit paid and confirm the booking (taking the slot again if it lapsed meanwhile)."""
    s = uow.session
    payment.log = [*payment.log, {"at": now.isoformat(), **event}]
    done = Settled("", booking.business_id, booking.code)
    if payment.status in SETTLED:  # a deposit a late cancel kept is not due back because the webhook came again
        return Settled("already_paid", done.business_id, done.code)
    if amount_minor != payment.amount_minor or currency.upper() != payment.currency:
        give_back(uow, payment, booking, plan, now)
        return Settled("mismatch", done.business_id, done.code)
    payment.paid_at = now
    if booking.status in (BookingStatus.PENDING_PAYMENT, BookingStatus.EXPIRED) and hold_slot_again(uow, booking, plan, now):
        payment.status = "paid"
        before = booking.status
        booking.status, booking.updated_at = BookingStatus.BOOKED, now
        history(uow, booking, "deposit_paid", now, before)
        outbox.void_pending(uow, booking.id)  # an unsent pay request is moot now
        outbox.announce(uow, booking, "confirmation", now)
        outbox.schedule_reminders(uow, booking, now, plan.reminder_offsets)
        outcome = "paid"
    else:  # cancelled, or the slot went to someone else after the deadline
        payment.status = "refund_due"
        before = booking.status
        if before == BookingStatus.PENDING_PAYMENT:  # lapsed and taken before the sweep expired it: it ends here
            outbox.void_pending(uow, booking.id)
            booking.status, booking.updated_at = BookingStatus.EXPIRED, now
        history(uow, booking, "deposit_refund_due", now, before)
        outcome = "refund_due"
    s.flush()
    events.emit(uow, booking.business_id, "deposit.paid", booking_view(uow, booking, plan.business), now)
    return Settled(outcome, done.business_id, done.code)


def give_back(uow: SqlAlchemyUnitOfWork, payment: Payment, booking: Booking, plan: Plan, now: datetime) -> None:
    """Money of another amount or currency came in: it confirms nothing, and it is due back (the log keeps what came).
    The checkout it came through cannot be paid again, so a booking still waiting for it ends now, its time free."""
    payment.status, payment.paid_at = "refund_due", now
    before = booking.status
    if before == BookingStatus.PENDING_PAYMENT:
        ClaimRepository(uow.session).release(booking_id=booking.id)
        waitlist_offers.note_freed(uow, booking.business_id, (booking.starts_at, booking.ends_at), "expired", now)
        outbox.void_pending(uow, booking.id)
        booking.status, booking.updated_at = BookingStatus.EXPIRED, now
    history(uow, booking, "deposit_refund_due", now, before)
    if before == BookingStatus.PENDING_PAYMENT:
        uow.session.flush()
        events.emit(uow, booking.business_id, "booking.expired", booking_view(uow, booking, plan.business), now)


def hold_slot_again(uow: SqlAlchemyUnitOfWork, booking: Booking, plan: Plan, now: datetime) -> bool:
    """Keep the booking's claims for good: still live ones lose their expiry, lapsed ones are re-claimed.

    Re-claiming tries the same resources first; if one went to someone else meanwhile, a colleague
    free at that time takes its place (the customer paid for the time) before the deposit is refunded.
    A time already begun is not taken back: its money is refunded.
    """
    if uow.claims.keep_unexpired(booking.id, now):
        return True
    resource_ids = [r.id for r in booked_resources(uow, booking.id)]
    uow.claims.release(booking_id=booking.id, then_claiming=plan.resources)
    if booking.starts_at <= now:  # paid once the time had begun (a bank debit is reported days late)
        return False
    return claim_start(uow, plan, booking.starts_at, now, tuple(resource_ids), booking_id=booking.id,
                       party=booking.party_size) is not None


def overdue(uow: SqlAlchemyUnitOfWork, now: datetime, limit: int = 100) -> list[Payment]:
    """Unpaid deposits past their deadline, locked for this transaction (other schedulers skip them)."""
    return list(uow.session.scalars(
        select(Payment).where(Payment.status == "pending", Payment.expires_at <= now)
        .order_by(Payment.expires_at).limit(limit).with_for_update(skip_locked=True)
    ))


def expire(uow: SqlAlchemyUnitOfWork, payment: Payment, booking: Booking, now: datetime) -> bool:
    """The deposit never came: the booking expires and its slot is free. False if it was no longer waiting."""
    payment.status = "expired"
    payment.log = [*payment.log, {"at": now.isoformat(), "event": "expired"}]
    if booking.status != BookingStatus.PENDING_PAYMENT:
        return False
    ClaimRepository(uow.session).release(booking_id=booking.id)
    waitlist_offers.note_freed(uow, booking.business_id, (booking.starts_at, booking.ends_at), "expired", now)
    outbox.void_pending(uow, booking.id)
    booking.status, booking.updated_at = BookingStatus.EXPIRED, now
    history(uow, booking, "expired", now, BookingStatus.PENDING_PAYMENT)
    return True


def history(uow: SqlAlchemyUnitOfWork, booking: Booking, action: str, now: datetime, before_status: str) -> None:
    uow.session.add(BookingHistory(
        business_id=booking.business_id, booking_id=booking.id, at=now, action=action, actor="payments",
        channel="payments", before={"status": before_status}, after={"status": booking.status},
    ))
    queue_calendar_writes(uow, booking, now)
