"""Changes of a booking's status: cancel (frees the time at once), confirm, no-show. Doing one twice is no error."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from nextslot.core import events, outbox
from nextslot.core.booking.codes import normalize_code
from nextslot.core.booking.cutoffs import cancel_terms, no_show_cost, refund_deposit, settle_cost
from nextslot.core.booking.history import record, snapshot
from nextslot.core.booking.refusals import not_active, unknown_booking
from nextslot.core.planning import BusinessInfo, business_info
from nextslot.core.results import Changed, ChangeResult, Rejected
from nextslot.core.views import booked_resources, booking_view
from nextslot.core.waitlist import offers as waitlist_offers
from nextslot.schemas.commands import BookingChange
from nextslot.schemas.statuses import ACTIVE, LIVE, BookingStatus
from nextslot.storage.claims import ClaimRepository
from nextslot.storage.tables import Booking
from nextslot.storage.uow import SqlAlchemyUnitOfWork

Apply = Callable[[SqlAlchemyUnitOfWork, Booking, datetime, BookingChange, BusinessInfo], Rejected | None]


def cancel(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingChange, now: datetime) -> ChangeResult:
    """Cancel and free the time at once; cancelling twice is not an error."""
    return change(uow, business_id, cmd, now, BookingStatus.CANCELLED, apply_cancel)


def confirm(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingChange, now: datetime) -> ChangeResult:
    """The customer confirmed they will come."""
    return change(uow, business_id, cmd, now, BookingStatus.CONFIRMED, apply_confirm)


def mark_no_show(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingChange, now: datetime) -> ChangeResult:
    """The customer did not come: counted against them for the no-show policy."""
    return change(uow, business_id, cmd, now, BookingStatus.NO_SHOW, apply_no_show)


def change(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingChange, now: datetime, target: BookingStatus,
           apply: Apply) -> ChangeResult:
    with uow:
        booking = uow.bookings.by_code(business_id, normalize_code(cmd.code), for_update=True)
        if booking is None:
            return unknown_booking(cmd.code)
        business = business_info(uow, business_id)
        if booking.status == target:  # already done: same answer, no second history entry
            return Changed(booking_view(uow, booking, business), replayed=True)
        before = snapshot(booking)
        problem = apply(uow, booking, now, cmd, business)
        if problem is not None:
            return problem
        booking.status, booking.updated_at = target, now
        uow.bookings.saved(booking)
        record(uow, booking, target, cmd, now, before=before, after=snapshot(booking))
        view = booking_view(uow, booking, business)
        events.emit(uow, business_id, f"booking.{target}", view, now)
        uow.commit()
    return Changed(view)


def apply_cancel(uow: SqlAlchemyUnitOfWork, booking: Booking, now: datetime, cmd: BookingChange,
                 business: BusinessInfo) -> Rejected | None:
    if booking.status not in LIVE:
        return not_active(booking)
    if booking.ends_at <= now:
        return Rejected("booking_in_past", "This appointment is already over; it cannot be cancelled.")
    late = cancel_terms(uow, booking, business, cmd.source, cmd.late_terms, now)
    if isinstance(late, Rejected):
        return late
    if late is not None:
        settle_cost(uow, booking, late, now, cmd.source, cmd.actor)
    if late is None or late.deposit is None:  # a deposit not kept is due back (a fee, if any, is charged apart)
        refund_deposit(uow, booking, business, now, cmd.source, cmd.actor)
    staff = booked_resources(uow, booking.id)
    ClaimRepository(uow.session).release(booking_id=booking.id)
    waitlist_offers.note_freed(uow, booking.business_id, (booking.starts_at, booking.ends_at), "cancelled", now)
    outbox.void_pending(uow, booking.id)
    outbox.announce(uow, booking, "cancelled", now)
    outbox.announce_to_staff(uow, booking, "cancelled", now, staff)
    return None


def apply_confirm(uow: SqlAlchemyUnitOfWork, booking: Booking, now: datetime, cmd: BookingChange,
                  business: BusinessInfo) -> Rejected | None:
    if booking.status != BookingStatus.BOOKED:
        return not_active(booking)
    if booking.ends_at <= now:
        return Rejected("booking_in_past", "This appointment is already over.")
    return None


def apply_no_show(uow: SqlAlchemyUnitOfWork, booking: Booking, now: datetime, cmd: BookingChange,
                  business: BusinessInfo) -> Rejected | None:
    if booking.status not in ACTIVE:
        return not_active(booking)
    if booking.starts_at > now:
        return Rejected("not_started", "A no-show can only be recorded once the appointment has started.")
    if (cost := no_show_cost(uow, booking, business, cmd.late_terms)) is not None:
        settle_cost(uow, booking, cost, now, cmd.source, cmd.actor)
    # as for a cancel: a deposit the policy does not keep is due back (a fee, if any, is charged apart)
    if cmd.late_terms != "waive" and (cost is None or cost.deposit is None):
        refund_deposit(uow, booking, business, now, cmd.source, cmd.actor, "no_show")
    booking.customer.no_show_count += 1
    outbox.void_pending(uow, booking.id)
    return None
