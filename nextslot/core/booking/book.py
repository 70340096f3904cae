"""Booking a slot, or converting a hold: claims, history, messages and the event in one transaction."""
from __future__ import annotations

from datetime import datetime

from nextslot.core import events, outbox
from nextslot.core.booking import idempotency
from nextslot.core.booking.alternatives import check_read, remember_read, slot_taken
from nextslot.core.booking.availability import SlotProblem, check_slot
from nextslot.core.booking.claiming import claim_start
from nextslot.core.booking.codes import new_code
from nextslot.core.booking.history import record, snapshot
from nextslot.core.booking.intake import check_answers
from nextslot.core.booking.public_caps import PublicCaps, contact_refusal
from nextslot.core.booking.refusals import slot_problem
from nextslot.core.booking.writing import OneStatementBooking, TransactionLost, one_statement_fits
from nextslot.core.config_versions import ConfigChanged
from nextslot.core.customers.contacts import find_or_create
from nextslot.core.deposits import rules as deposits
from nextslot.core.instants import resolve_instant
from nextslot.core.planning import Plan, build_timelines, deciding, timelines
from nextslot.core.results import Booked, BookingResult, Rejected
from nextslot.core.views import new_booking_view
from nextslot.schemas.commands import BookingCreate
from nextslot.schemas.statuses import BookingStatus
from nextslot.storage.tables import Booking, Hold
from nextslot.storage.uow import SqlAlchemyUnitOfWork

RESTARTS = 3  # a transaction lost to a rare refusal (see TransactionLost) is started again, at most this often


def book(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingCreate, now: datetime,
         payment_provider: str, caps: PublicCaps | None = None) -> BookingResult:
    """Book a slot (or convert a hold). A lost race answers with the nearest openings; a contact past what the
    public channels may book for it (`caps`) is refused."""
    start = resolve_instant(cmd.starts_at, cmd.timezone, "starts_at")
    if isinstance(start, Rejected):
        return start
    for _ in range(RESTARTS):
        try:
            return book_at(uow, business_id, cmd, start, now, payment_provider, caps)
        except (TransactionLost, ConfigChanged):
            continue  # rolled back as the block was left: nothing of it stays
    return book_at(uow, business_id, cmd, start, now, payment_provider, caps)


def book_at(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingCreate, start: datetime, now: datetime,
            payment_provider: str, caps: PublicCaps | None = None) -> BookingResult:
    with uow:
        uow.reads_first()  # a time seen taken is answered having written nothing: no BEGIN, no ROLLBACK
        plan = idempotency.booking_plan(uow, business_id, cmd)
        if not isinstance(plan, Plan):
            return plan
        if problem := plan.party_problem(cmd.party_size):
            return problem
        party = cmd.party_size
        answers = check_answers(list(plan.intake_questions), cmd.intake)
        if isinstance(answers, Rejected):
            return answers
        checked = None
        if cmd.hold_id is None:  # a taken or wrong time is answered before anything is written
            committed = deciding(uow, plan, check_read(uow, plan, start, now, party, cmd.idempotency_key))
            checked = check_slot(plan.rules, build_timelines(uow, plan, committed, party), start, now)
            if isinstance(checked, SlotProblem):
                wrote = checked is not SlotProblem.TAKEN or not idempotency.may_refuse_unwritten(cmd, committed)
                if wrote and (first := idempotency.first_booking(uow, business_id, cmd)):
                    return first  # a retry: the first try's answer
                if checked is SlotProblem.TAKEN:
                    remember_read(uow, plan, start, now, None, committed)  # fresh: the answer may use it
                    return slot_taken(uow, plan, start, now, cmd.customer.timezone, party=party, wrote=wrote)
                return slot_problem(checked, plan, start)
            if first := idempotency.first_booking(uow, business_id, cmd):
                return first
        uow.writes_next()
        customer = find_or_create(uow, business_id, plan.business.country, cmd.customer, cmd.source)
        if isinstance(customer, Rejected):
            return customer
        if refused := contact_refusal(uow, caps, business_id, customer.id, cmd.source, now):
            return refused  # its row is locked: a request at the same time waits, then counts this one's booking
        deposit = deposits.asked(uow, plan, customer, now)
        pay_by = deposits.deadline(plan, now) if deposit else None
        if checked is not None and one_statement_fits(plan, cmd.hold_id, deposit):
            if isinstance(checked, SlotProblem):
                return slot_problem(checked, plan, start)
            writer = OneStatementBooking(uow, plan, cmd, customer, start, answers, now)
            if (view := writer.place(checked.resource_ids)) is None:
                return slot_taken(uow, plan, start, now, cmd.customer.timezone, writer.booking_id(), party)
            events.emit(uow, business_id, "booking.created", view, now)
            uow.commit()
            return Booked(view)
        hold: Hold | None = None
        if cmd.hold_id is not None:
            found = live_hold(uow, business_id, cmd.hold_id, plan, start, party, cmd.holder)
            if isinstance(found, Rejected):
                return found
            hold = found
        booking = Booking(
            business_id=business_id, code="", service_id=plan.service_id, customer_id=customer.id,
            status=BookingStatus.PENDING_PAYMENT if pay_by else BookingStatus.BOOKED, starts_at=start,
            ends_at=start + plan.rules.duration, source=cmd.source, intake=answers, notes=cmd.notes, updated_at=now,
            party_size=party, contact_name=cmd.customer.name,
        )
        uow.bookings.add_with_code(booking, new_code)
        # a hold let go (its lapse swept by the scheduler, or its caller's release) holds nothing: booked afresh
        live = hold if hold is not None and hold.status == "active" else None
        attached = uow.claims.attach_to_booking(live.id, booking.id) if live and live.expires_at > now else None
        if attached is not None:
            resource_ids = attached
        else:
            if live is not None:  # expired: its claims go, and the slot is booked afresh
                uow.claims.release(hold_id=live.id, then_claiming=plan.resources)
            if checked is None:
                checked = check_slot(plan.rules, timelines(uow, plan, (start, start), now, party=party, decides=True),
                                     start, now)
            if checked is SlotProblem.TAKEN:
                return slot_taken(uow, plan, start, now, cmd.customer.timezone, party=party)
            if isinstance(checked, SlotProblem):
                return slot_problem(checked, plan, start)
            claimed = claim_start(uow, plan, start, now, checked.resource_ids, booking_id=booking.id,
                                  expires_at=pay_by, party=party)
            if claimed is None:  # its booking is rolled back: excluding it changes nothing but reuses claim_start's read
                return slot_taken(uow, plan, start, now, cmd.customer.timezone, booking.id, party)
            resource_ids = claimed
        if hold is not None:
            hold.status, hold.booking_id = "converted", booking.id
        record(uow, booking, "created", cmd, now, after=snapshot(booking))
        payment = None
        if deposit and pay_by:  # confirmed, and reminded, once the deposit is paid
            payment = deposits.require(uow, booking, deposit, payment_provider, pay_by)
        else:
            outbox.announce(uow, booking, "confirmation", now)
            outbox.schedule_reminders(uow, booking, now, plan.reminder_offsets)
        view = new_booking_view(booking, plan, customer, resource_ids, payment)
        events.emit(uow, business_id, "booking.created", view, now)
        if cmd.idempotency_key:
            uow.idempotency.remember(business_id, cmd.idempotency_key, booking.id,
                                     {"kind": "booking", "view": view.model_dump(mode="json")})
        uow.commit()
    return Booked(view)


def live_hold(uow: SqlAlchemyUnitOfWork, business_id: int, hold_id: int, plan: Plan,
              start: datetime, party: int = 1, holder: str | None = None) -> Hold | Rejected:
    """The hold to convert; a public caller's (`holder`) only if it made it, else as if there were none."""
    hold = uow.holds.locked(business_id, hold_id)
    if hold is None or holder is not None and hold.holder != holder:
        return Rejected("unknown_hold", f"There is no hold {hold_id}.", "hold_id")
    if hold.status == "converted":  # one booking a hold; a hold let go (or lapsed) is booked afresh, as an expired one
        return Rejected("hold_used", f"Hold {hold_id} was already converted.", "hold_id")
    if hold.service_id != plan.service_id or hold.starts_at != start:
        return Rejected("hold_mismatch", "The hold is for a different service or time.", "hold_id")
    if hold.party_size != party:
        return Rejected("hold_mismatch", f"The hold is for a party of {hold.party_size}, not {party}.", "party_size")
    return hold
