"""Moving a booking: release and re-claim in one transaction; on conflict nothing changes."""
from __future__ import annotations

from datetime import datetime

from nextslot.core import events, outbox
from nextslot.core.booking import idempotency
from nextslot.core.booking.alternatives import slot_taken
from nextslot.core.booking.availability import SlotProblem, check_slot
from nextslot.core.booking.claiming import claim_start
from nextslot.core.booking.codes import normalize_code
from nextslot.core.booking.cutoffs import move_refusal
from nextslot.core.booking.history import record, snapshot
from nextslot.core.booking.refusals import not_active, slot_problem, unknown_booking
from nextslot.core.instants import resolve_instant
from nextslot.core.planning import load_plan, timelines
from nextslot.core.results import Booked, BookingResult, Rejected
from nextslot.core.views import booked_resources, booking_view, branch_of
from nextslot.core.waitlist import offers as waitlist_offers
from nextslot.schemas.commands import BookingReschedule
from nextslot.schemas.statuses import ACTIVE
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def reschedule(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingReschedule, now: datetime) -> BookingResult:
    """Move a booking: release and re-claim in one transaction; on conflict nothing changes."""
    start = resolve_instant(cmd.starts_at, cmd.timezone, "starts_at")
    if isinstance(start, Rejected):
        return start
    with uow:
        booking = uow.bookings.by_code(business_id, normalize_code(cmd.code), for_update=True)
        if booking is None:
            return unknown_booking(cmd.code)
        if cmd.idempotency_key and (
            first := idempotency.reserve(uow, business_id, cmd.idempotency_key, "reschedule", cmd)
        ):
            return idempotency.replayed_booking(first)
        if booking.status not in ACTIVE:
            return not_active(booking)
        if booking.ends_at <= now:  # as for a cancel: a missed appointment is not quietly moved out of the record
            return Rejected("booking_in_past", "This appointment is already over; it cannot be moved.")
        plan = load_plan(uow, business_id, booking.service.key, cmd.resources,
                         cmd.location or branch_of(uow, booking.id))  # a move stays at its branch unless told
        if isinstance(plan, Rejected):
            return plan
        if refused := move_refusal(booking, plan.business, cmd.source, now):
            return refused
        party = booking.party_size
        groups = timelines(uow, plan, (start, start), now, exclude_booking_id=booking.id, party=party, decides=True)
        checked = check_slot(plan.rules, groups, start, now)
        customer_zone = booking.customer.timezone
        if checked is SlotProblem.TAKEN:
            return slot_taken(uow, plan, start, now, customer_zone, exclude_booking_id=booking.id, party=party)
        if isinstance(checked, SlotProblem):
            return slot_problem(checked, plan, start)
        before = snapshot(booking)
        staff_before = booked_resources(uow, booking.id)
        uow.claims.release(booking_id=booking.id, then_claiming=plan.resources)
        if claim_start(uow, plan, start, now, checked.resource_ids, booking_id=booking.id, party=party) is None:
            return slot_taken(uow, plan, start, now, customer_zone, exclude_booking_id=booking.id, party=party)
        waitlist_offers.note_freed(uow, business_id, (booking.starts_at, booking.ends_at), "rescheduled", now)
        booking.starts_at, booking.ends_at, booking.updated_at = start, start + plan.rules.duration, now
        uow.bookings.saved(booking)
        record(uow, booking, "rescheduled", cmd, now, before=before, after=snapshot(booking))
        outbox.void_pending(uow, booking.id)
        outbox.announce(uow, booking, "rescheduled", now, previous_starts_at=before["starts_at"])
        outbox.announce_to_staff(uow, booking, "rescheduled", now, staff_before + booked_resources(uow, booking.id),
                                 previous_starts_at=before["starts_at"])
        outbox.schedule_reminders(uow, booking, now, plan.reminder_offsets)
        view = booking_view(uow, booking, plan.business)
        events.emit(uow, business_id, "booking.rescheduled", view, now,
                    previous_starts_at=datetime.fromisoformat(before["starts_at"]))
        if cmd.idempotency_key:
            uow.idempotency.remember(business_id, cmd.idempotency_key, booking.id,
                                     {"kind": "booking", "view": view.model_dump(mode="json")})
        uow.commit()
    return Booked(view)
