"""Late-cancel and no-show fees over time: due ones are leased to a charger, charged off-session by the provider
outside any transaction, then recorded. A charger that dies leaves a lease that runs out; the next one retries
with the same idempotency key, so the provider never charges twice."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from nextslot.core import events
from nextslot.core.planning import load_business
from nextslot.core.results import Rejected
from nextslot.core.views import booking_view
from nextslot.storage import queries
from nextslot.storage.tables import Booking, BookingFee, BookingHistory, Payment
from nextslot.storage.uow import SqlAlchemyUnitOfWork

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 3  # a declined card is not retried forever: the fee is marked failed for staff to follow up


@dataclass(frozen=True)
class FeeToCharge:
    fee_id: int
    business_id: int
    code: str
    kind: str
    amount_minor: int
    currency: str
    provider: str  # the provider the deposit was paid through: the card is saved there
    payer_ref: str
    payment_ref: str
    description: str

    @property
    def idempotency_key(self) -> str:
        return f"nextslot-fee-{self.fee_id}"  # the same key on every retry: the provider charges once


def lease_due_fees(uow: SqlAlchemyUnitOfWork, now: datetime, limit: int = 20) -> list[FeeToCharge]:
    """Due fees (and charges whose charger's lease ran out), leased to this caller for a few minutes."""
    with uow:
        s = uow.session
        rows = list(s.scalars(
            select(BookingFee).where(or_(BookingFee.status == "due",
                                         (BookingFee.status == "charging") & (BookingFee.locked_until <= now)))
            .order_by(BookingFee.id).limit(limit).with_for_update(skip_locked=True)))
        leased = []
        for fee in rows:
            booking = s.get(Booking, fee.booking_id)
            payment = s.scalars(select(Payment).where(Payment.booking_id == fee.booking_id)).one_or_none()
            if booking is None or payment is None or not (payment.payer_ref and payment.payment_ref):
                fee.status = "no_payment_method"
                continue
            fee.status, fee.locked_until, fee.attempts = "charging", now + LEASE, fee.attempts + 1
            fee.provider = payment.provider
            what = "Late cancellation" if fee.kind == "late_cancel" else "Missed appointment"
            leased.append(FeeToCharge(fee.id, fee.business_id, booking.code, fee.kind, fee.amount_minor, fee.currency,
                                      payment.provider, payment.payer_ref, payment.payment_ref,
                                      f"{what} fee, {booking.service.name} (booking {booking.code})"))
        uow.commit()
        return leased


def record_fee_charge(uow: SqlAlchemyUnitOfWork, fee_id: int, charged: bool, provider_ref: str | None,
                      problem: str | None, now: datetime, retry: bool = False) -> None:
    """The provider's answer for a leased fee: charged, declined (failed), or a retry later (`retry`: the provider
    could not be reached; the same idempotency key is used next time)."""
    with uow:
        s = uow.session
        fee = s.scalars(select(BookingFee).where(BookingFee.id == fee_id).with_for_update()).one()
        if fee.status != "charging":
            return  # someone else recorded it already
        fee.log = [*fee.log, {"at": now.isoformat(), "event": "charged" if charged else "retry" if retry else "failed",
                              **({"ref": provider_ref} if provider_ref else {}), **({"problem": problem} if problem else {})}]
        fee.provider_ref, fee.updated_at, fee.locked_until = provider_ref or fee.provider_ref, now, None
        if charged:
            fee.status = "charged"
        elif retry and fee.attempts < MAX_ATTEMPTS:
            fee.status = "due"
        else:
            fee.status = "failed"
        booking = s.get(Booking, fee.booking_id)
        assert booking is not None
        if fee.status != "due":
            s.add(BookingHistory(business_id=fee.business_id, booking_id=fee.booking_id, at=now,
                                 action=f"fee_{fee.status}", actor="payments", channel="payments", before=None,
                                 after={"kind": fee.kind, "amount_minor": fee.amount_minor, "currency": fee.currency,
                                        "status": fee.status}, note=problem or ""))
            business = load_business(uow, booking.business_id)
            if not isinstance(business, Rejected):
                # this entry included; counted before the booking (not locked here) is read again, so a change
                # committed meanwhile shows in the view, never a count newer than the state it shows
                version = queries.booking_changes(s, booking.business_id, booking.id)
                s.refresh(booking)
                events.emit(uow, booking.business_id, f"fee.{fee.status}", booking_view(uow, booking, business), now,
                            booking_version=version)
        uow.commit()
