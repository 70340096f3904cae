"""Cutoffs and late costs: how close to the start a customer may still cancel or move a booking by themselves,
and what a late cancel or a no-show costs (the paid deposit kept, or a fee charged later through the provider).

Staff channels always may; every other channel is the customer's own (agent tools, pages, replies, chats), so
a channel nobody listed here is held to the cutoff rather than let through.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from nextslot.core.money import money
from nextslot.core.planning import BusinessInfo
from nextslot.core.results import Rejected
from nextslot.schemas.service_rules import CancellationPolicy
from nextslot.schemas.statuses import BookingStatus
from nextslot.storage.tables import Booking, BookingFee, BookingHistory, Payment
from nextslot.storage.uow import SqlAlchemyUnitOfWork

STAFF_CHANNELS = frozenset({"staff", "console", "cli", "demo"})
LATE_TERMS = "late_terms"  # the field a caller sets to "accept" once the customer agreed to the cost


def self_service(source: str) -> bool:
    return source not in STAFF_CHANNELS


def policy_of(booking: Booking, business: BusinessInfo) -> CancellationPolicy | None:
    """The service's own cancellation policy, else the business's (None: cancel and move freely)."""
    own = booking.service.cancellation
    return CancellationPolicy.model_validate(own) if own else business.cancellation


def within(booking: Booking, hours: int, now: datetime) -> bool:
    return booking.starts_at - now < timedelta(hours=hours)


@dataclass(frozen=True)
class LateCost:
    """What a late cancel or a no-show costs: the paid deposit kept, or a fee."""

    kind: str  # late_cancel, no_show
    deposit: Payment | None
    fee: tuple[int, str] | None  # (amount in minor units, currency)
    card_on_file: bool  # the fee can be charged to the card the deposit was paid with

    @property
    def amount(self) -> tuple[int, str]:
        if self.deposit is not None:
            return self.deposit.amount_minor, self.deposit.currency
        assert self.fee is not None
        return self.fee

    @property
    def what(self) -> str:
        """deposit_kept, fee_charged (to the deposit's card) or fee_due."""
        return "deposit_kept" if self.deposit is not None else "fee_charged" if self.card_on_file else "fee_due"

    def phrase(self) -> str:
        """'the $20.00 deposit is kept' / 'a $20.00 late-cancellation fee is charged to the card on file'."""
        shown = money(*self.amount).display
        if self.deposit is not None:
            return f"the {shown} deposit is kept"
        what = "late-cancellation" if self.kind == "late_cancel" else "missed-appointment"
        return f"a {shown} {what} fee " + ("is charged to the card used for the deposit" if self.card_on_file
                                           else "applies")


def cost(uow: SqlAlchemyUnitOfWork, booking: Booking, policy: CancellationPolicy, kind: str) -> LateCost | None:
    payment = paid_deposit(uow, booking)
    if payment is not None and policy.keep_deposit:
        return LateCost(kind, payment, None, True)
    fee = policy.late_fee if kind == "late_cancel" else policy.no_show_fee
    if fee is None:
        return None
    return LateCost(kind, None, (fee.amount_minor, fee.currency), bool(payment and payment.payment_ref))


def paid_deposit(uow: SqlAlchemyUnitOfWork, booking: Booking) -> Payment | None:
    return uow.session.scalars(select(Payment).where(Payment.booking_id == booking.id, Payment.status == "paid")
                               .with_for_update()).one_or_none()


def hours_phrase(hours: int) -> str:
    return f"{hours} hour{'s' if hours != 1 else ''}"


def unpaid(booking: Booking) -> bool:
    """Still waiting for its deposit: never confirmed, and left alone it lapses at its deadline for nothing, so a
    cancel costs nothing either (else letting it lapse would be the free way to cancel late)."""
    return booking.status == BookingStatus.PENDING_PAYMENT


def cancel_terms(uow: SqlAlchemyUnitOfWork, booking: Booking, business: BusinessInfo, source: str,
                 late_terms: str | None, now: datetime) -> LateCost | Rejected | None:
    """What cancelling now means: None (free), a LateCost to apply, or a refusal (past the cutoff for this
    channel, or the customer has not accepted the cost yet: `late_terms_not_accepted` with the sentence)."""
    policy = policy_of(booking, business)
    if policy is None or unpaid(booking) or not within(booking, policy.cutoff_hours, now):
        return None
    hours = hours_phrase(policy.cutoff_hours)
    if not self_service(source):  # staff cancel late: the cost applies only when they say the customer pays
        return cost(uow, booking, policy, "late_cancel") if late_terms == "accept" else None
    if policy.late_cancel == "refuse":
        call = f" on {business.phone}" if business.phone else ""
        return Rejected("cancel_cutoff", f"It's within {hours} of the appointment, so it can no longer be "
                                         f"cancelled here; please call us{call} to cancel.", "code",
                        details=cutoff_facts(policy.cutoff_hours, business))
    late = cost(uow, booking, policy, "late_cancel")
    if late is None or late_terms == "accept":
        return late
    return Rejected("late_terms_not_accepted", f"It's within {hours} of the appointment, so {late.phrase()}. "
                                               "Shall I still cancel?", LATE_TERMS,
                    details=(("hours", str(policy.cutoff_hours)), ("cost", late.what), ("kind", late.kind),
                             ("amount", money(*late.amount).display)))


def move_refusal(booking: Booking, business: BusinessInfo, source: str, now: datetime) -> Rejected | None:
    """Self-service moves stop `move_cutoff_hours` before the start; staff can always move."""
    policy = policy_of(booking, business)
    if policy is None or not self_service(source) or not within(booking, policy.move_cutoff, now):
        return None
    call = f" on {business.phone}" if business.phone else ""
    return Rejected("move_cutoff", f"It's within {hours_phrase(policy.move_cutoff)} of the appointment, so it can "
                                   f"no longer be moved here; please call us{call} to change it.", "code",
                    details=cutoff_facts(policy.move_cutoff, business))


def cutoff_facts(hours: int, business: BusinessInfo) -> tuple[tuple[str, str], ...]:
    """What an edge needs to say a cutoff refusal in the customer's language."""
    return (("hours", str(hours)), ("phone", business.phone or ""))


def no_show_cost(uow: SqlAlchemyUnitOfWork, booking: Booking, business: BusinessInfo,
                 late_terms: str | None) -> LateCost | None:
    """A no-show's cost under the policy, unless staff waive it."""
    policy = policy_of(booking, business)
    if policy is None or late_terms == "waive":
        return None
    return cost(uow, booking, policy, "no_show")


def settle_cost(uow: SqlAlchemyUnitOfWork, booking: Booking, late: LateCost, now: datetime, channel: str,
                actor: str) -> BookingFee:
    """Record the cost on the booking and in its history: the deposit kept at once, a fee due for the charger
    (or owed in person when no card is on file). One per booking and kind: a replay finds the first."""
    existing = uow.session.scalars(select(BookingFee).where(BookingFee.booking_id == booking.id,
                                                            BookingFee.kind == late.kind)).one_or_none()
    if existing is not None:
        return existing
    amount, currency = late.amount
    if late.deposit is not None:
        late.deposit.status = "kept"
        late.deposit.log = [*late.deposit.log, {"at": now.isoformat(), "event": "kept", "for": late.kind}]
        status, action = "deposit_kept", "deposit_kept"
    else:
        status, action = ("due", "fee_due") if late.card_on_file else ("no_payment_method", "fee_owed")
    fee = BookingFee(business_id=booking.business_id, booking_id=booking.id, kind=late.kind, amount_minor=amount,
                     currency=currency, status=status, log=[{"at": now.isoformat(), "event": status}],
                     updated_at=now)
    uow.session.add(fee)
    uow.session.add(BookingHistory(
        business_id=booking.business_id, booking_id=booking.id, at=now, action=action, actor=actor or channel,
        channel=channel, before=None, after={"kind": late.kind, "amount_minor": amount, "currency": currency,
                                             "status": status},
        note=late.phrase()))
    uow.session.flush()
    return fee


def refund_deposit(uow: SqlAlchemyUnitOfWork, booking: Booking, business: BusinessInfo, now: datetime, channel: str,
                   actor: str, why: str = "cancelled") -> None:
    """Cancelled (or a no-show) under a policy without keeping the deposit: a paid deposit is due back."""
    if policy_of(booking, business) is None or (payment := paid_deposit(uow, booking)) is None:
        return
    payment.status = "refund_due"
    payment.log = [*payment.log, {"at": now.isoformat(), "event": "refund_due", "for": why}]
    uow.session.add(BookingHistory(
        business_id=booking.business_id, booking_id=booking.id, at=now, action="deposit_refund_due",
        actor=actor or channel, channel=channel, before={"status": "paid"}, after={"status": "refund_due"},
        note=f"{why.replace('_', '-')}; the deposit is not kept"))
