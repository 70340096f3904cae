"""The booking service: every write of every channel goes through these methods, one transaction each."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.errors import UniqueViolation
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nextslot.core import catalog, customer_history, deposits, events, idempotency, lookups, outbox, waitlist, waitlist_offers
from nextslot.core.availability import SlotProblem, check_slot, find_open_slots, nearest
from nextslot.core.claiming import claim_start
from nextslot.core.codes import new_code, normalize_code
from nextslot.core.customers import find_or_create
from nextslot.core.intake import check_answers
from nextslot.core.instants import load_zone, resolve_instant, unknown_zone
from nextslot.core.planning import Plan, load_business, load_plan, timelines, unknown_business
from nextslot.core.results import (
    Booked,
    BookingResult,
    ChangeResult,
    Changed,
    Held,
    HoldResult,
    Rejected,
    Slots,
    SlotTaken,
)
from nextslot.core.views import booked_resources, booking_view, hold_view, new_booking_view, slot_view
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    BookingSearch,
    CustomerIn,
    HoldCreate,
    SlotQuery,
    WaitlistJoin,
)
from nextslot.schemas.views import BookingView, BusinessProfile, CustomerHistory, HoldView, ServiceView, SlotView, WaitlistView
from nextslot.storage import claims, queries
from nextslot.storage.alone import in_savepoint
from nextslot.storage.tables import Booking, BookingHistory, Claim, Hold, Payment, WaitlistEntry, WaitlistOffer
from nextslot.storage.uow import SqlAlchemyUnitOfWork

Clock = Callable[[], datetime]
ACTIVE = ("booked", "confirmed")
MAX_WINDOW = timedelta(days=31)
ALTERNATIVES = 3

PROBLEMS = {
    SlotProblem.OFF_GRID: "{start} is not on this service's {step}-minute grid; pick one of the offered start times.",
    SlotProblem.IN_PAST: "{start} is in the past.",
    SlotProblem.TOO_SOON: "{start} is too soon: this service needs {notice} minutes' notice.",
    SlotProblem.BEYOND_HORIZON: "{start} is too far ahead: bookings open {horizon} days in advance.",
    SlotProblem.OUTSIDE_HOURS: "{start} is outside opening hours for this service (buffers included).",
}


@dataclass(frozen=True)
class DepositDue:
    booking: BookingView
    payment_id: int
    provider: str
    provider_ref: str | None
    checkout_url: str | None


def utcnow() -> datetime:
    return datetime.now(UTC)


class BookingService:
    def __init__(self, session_factory: sessionmaker[Session], clock: Clock = utcnow, hold_minutes: int = 5,
                 payment_provider: str = "local"):
        self._session_factory = session_factory
        self._clock = clock
        self._hold_minutes = hold_minutes
        self._payment_provider = payment_provider  # recorded on deposits; the edge talks to the provider

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self._session_factory

    def now(self) -> datetime:
        return self._clock()

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._session_factory)

    # --- reads -------------------------------------------------------------------------------

    def find_slots(self, business_id: int, query: SlotQuery) -> Slots | Rejected:
        """Open start times for a service in a window, with the resources each would take."""
        now = self._clock()
        if query.customer_timezone and load_zone(query.customer_timezone) is None:
            return unknown_zone(query.customer_timezone, "customer_timezone")
        with self.uow() as uow:
            plan = load_plan(uow.session, business_id, query.service, query.resources)
            if isinstance(plan, Rejected):
                return plan
            window = slot_window(query, plan, now)
            if isinstance(window, Rejected):
                return window
            start, end = window
            groups = timelines(uow.session, plan, (start, end), now)
            found = find_open_slots(plan.rules, groups, (start, end), now, query.limit)
            return Slots([slot_view(s, plan, query.customer_timezone) for s in found])

    def get_booking(self, business_id: int, code: str) -> BookingView | Rejected:
        with self.uow() as uow:
            booking = queries.booking_by_code(uow.session, business_id, normalize_code(code))
            if booking is None:
                return unknown_booking(code)
            business = load_business(uow.session, business_id)
            return booking_view(uow.session, booking, business)

    def list_services(self, business_id: int) -> list[ServiceView]:
        with self.uow() as uow:
            return catalog.list_services(uow.session, business_id)

    def business_profile(self, business_id: int) -> BusinessProfile | Rejected:
        with self.uow() as uow:
            return catalog.business_profile(uow.session, business_id, self._clock()) or unknown_business(business_id)

    def resource_key(self, business_id: int, text: str) -> str | Rejected:
        """The key of the resource a caller means ('Dr Patel', 'dr-patel'), or a rejection listing them."""
        with self.uow() as uow:
            key = catalog.match_resource(uow.session, business_id, text)
            if key is None:
                names = catalog.resource_names(uow.session, business_id)
                return Rejected("unknown_resource", f"No one or nothing called '{text}' here. Choose from: "
                                                    f"{', '.join(names)}.", "staff")
            return key

    def find_bookings(self, business_id: int, search: BookingSearch) -> tuple[list[BookingView], list[str]] | Rejected:
        """A customer's bookings (soonest first), plus codes close to a code that matched none of theirs."""
        with self.uow() as uow:
            business = load_business(uow.session, business_id)
            if isinstance(business, Rejected):
                return business
            found = lookups.find_bookings(uow.session, business_id, business.country, search, self._clock())
            if isinstance(found, Rejected):
                return found
            bookings, near = found
            return [booking_view(uow.session, b, business) for b in bookings], near

    def customer_history(self, business_id: int, phone: str | None = None, email: str | None = None,
                         limit: int | None = None) -> CustomerHistory | Rejected:
        """Everything that happened between the business and one customer, oldest first."""
        with self.uow() as uow:
            return customer_history.customer_history(uow.session, business_id, phone, email, limit)

    # --- writes ------------------------------------------------------------------------------

    def book(self, business_id: int, cmd: BookingCreate) -> BookingResult:
        """Book a slot (or convert a hold). A lost race answers with the nearest openings."""
        now = self._clock()
        start = resolve_instant(cmd.starts_at, cmd.timezone, "starts_at")
        if isinstance(start, Rejected):
            return start
        with self.uow() as uow:
            s = uow.session
            plan = load_plan(s, business_id, cmd.service, cmd.resources)
            if isinstance(plan, Rejected):
                return plan
            if cmd.idempotency_key and (first := idempotency.reserve(s, business_id, cmd.idempotency_key, "book", cmd)):
                return replay(first)
            answers = check_answers(list(plan.intake_questions), cmd.intake)
            if isinstance(answers, Rejected):
                return answers
            customer = find_or_create(s, business_id, plan.business.country, cmd.customer)
            if isinstance(customer, Rejected):
                return customer
            deposit = deposits.asked(s, plan, customer.id, now)
            pay_by = deposits.deadline(plan, now) if deposit else None
            hold = None
            if cmd.hold_id is not None:
                hold = live_hold(s, business_id, cmd.hold_id, plan, start)
                if isinstance(hold, Rejected):
                    return hold
            booking = Booking(
                business_id=business_id, code="", service_id=plan.service_id, customer_id=customer.id,
                status="pending_payment" if pay_by else "booked", starts_at=start,
                ends_at=start + plan.rules.duration, source=cmd.source, intake=answers, notes=cmd.notes, updated_at=now,
            )
            if hold is not None and hold.expires_at > now:
                insert_with_code(s, booking)
                resource_ids = claims.attach_to_booking(s, hold.id, booking.id)
                hold.status, hold.booking_id = "converted", booking.id
            else:
                if hold is not None:  # expired: its claims go, and the slot is booked afresh
                    claims.release(s, hold_id=hold.id)
                    hold.status = "released"
                checked = check_slot(plan.rules, timelines(s, plan, (start, start), now), start, now)
                if checked is SlotProblem.TAKEN:
                    return self._slot_taken(uow, plan, start, now, cmd.customer.timezone)
                if isinstance(checked, SlotProblem):
                    return slot_problem(checked, plan, start)
                insert_with_code(s, booking)
                resource_ids = claim_start(s, plan, start, now, checked.resource_ids, booking_id=booking.id,
                                           expires_at=pay_by)
                if resource_ids is None:
                    return self._slot_taken(uow, plan, start, now, cmd.customer.timezone)
            record(s, booking, "created", cmd, now, after=snapshot(booking))
            payment = None
            if deposit and pay_by:  # confirmed, and reminded, once the deposit is paid
                payment = deposits.require(s, booking, deposit, self._payment_provider, pay_by)
            else:
                outbox.announce(s, booking, "confirmation", now)
                outbox.schedule_reminders(s, booking, now, plan.reminder_offsets)
            view = new_booking_view(booking, plan, customer, resource_ids, payment)
            events.emit(s, business_id, "booking.created", view, now)
            if cmd.idempotency_key:
                idempotency.remember(s, business_id, cmd.idempotency_key, booking.id,
                                     {"kind": "booking", "view": view.model_dump(mode="json")})
            uow.commit()
        return Booked(view)

    def hold(self, business_id: int, cmd: HoldCreate) -> HoldResult:
        """Keep a slot for a few minutes while the caller gives their details."""
        now = self._clock()
        start = resolve_instant(cmd.starts_at, cmd.timezone, "starts_at")
        if isinstance(start, Rejected):
            return start
        with self.uow() as uow:
            s = uow.session
            plan = load_plan(s, business_id, cmd.service, cmd.resources)
            if isinstance(plan, Rejected):
                return plan
            if cmd.idempotency_key and (first := idempotency.reserve(s, business_id, cmd.idempotency_key, "hold", cmd)):
                return replay(first)
            checked = check_slot(plan.rules, timelines(s, plan, (start, start), now), start, now)
            if checked is SlotProblem.TAKEN:
                return self._slot_taken(uow, plan, start, now)
            if isinstance(checked, SlotProblem):
                return slot_problem(checked, plan, start)
            expires = now + timedelta(minutes=cmd.minutes or self._hold_minutes)
            hold = Hold(business_id=business_id, service_id=plan.service_id, starts_at=start,
                        ends_at=start + plan.rules.duration, expires_at=expires, status="active", source=cmd.source)
            s.add(hold)
            s.flush()
            resource_ids = claim_start(s, plan, start, now, checked.resource_ids, hold_id=hold.id, expires_at=expires)
            if resource_ids is None:
                return self._slot_taken(uow, plan, start, now)
            view = hold_view(hold, plan, resource_ids)
            if cmd.idempotency_key:
                idempotency.remember(s, business_id, cmd.idempotency_key, None,
                                     {"kind": "hold", "view": view.model_dump(mode="json")})
            uow.commit()
        return Held(view)

    def release_hold(self, business_id: int, hold_id: int) -> bool:
        """Let a hold go before it expires; False if there was no live hold with that id."""
        with self.uow() as uow:
            hold = uow.session.scalars(
                select(Hold).where(Hold.id == hold_id, Hold.business_id == business_id, Hold.status == "active")
                .with_for_update()
            ).one_or_none()
            if hold is None:
                return False
            claims.release(uow.session, hold_id=hold.id)
            hold.status = "released"
            uow.commit()
            return True

    def expire_holds(self) -> int:
        """Mark holds past their expiry released and their claims inactive (they already block no one)."""
        now = self._clock()
        with self.uow() as uow:
            holds = list(uow.session.scalars(
                select(Hold).where(Hold.status == "active", Hold.expires_at <= now)
                .with_for_update(skip_locked=True)
            ))
            expired = [h.id for h in holds]
            if expired:
                uow.session.execute(update(Claim).where(Claim.hold_id.in_(expired), Claim.active).values(active=False))
                uow.session.execute(update(Hold).where(Hold.id.in_(expired)).values(status="released"))
            for hold in holds:  # a caller who held a time and hung up: someone waiting may want it
                waitlist_offers.note_freed(uow.session, hold.business_id, (hold.starts_at, hold.ends_at),
                                           "hold_expired", now)
            uow.commit()
            return len(expired)

    def reschedule(self, business_id: int, cmd: BookingReschedule) -> BookingResult:
        """Move a booking: release and re-claim in one transaction; on conflict nothing changes."""
        now = self._clock()
        start = resolve_instant(cmd.starts_at, cmd.timezone, "starts_at")
        if isinstance(start, Rejected):
            return start
        with self.uow() as uow:
            s = uow.session
            booking = queries.booking_by_code(s, business_id, normalize_code(cmd.code), for_update=True)
            if booking is None:
                return unknown_booking(cmd.code)
            if cmd.idempotency_key and (
                first := idempotency.reserve(s, business_id, cmd.idempotency_key, "reschedule", cmd)
            ):
                return replay(first)
            if booking.status not in ACTIVE:
                return not_active(booking)
            plan = load_plan(s, business_id, booking.service.key, cmd.resources)
            if isinstance(plan, Rejected):
                return plan
            groups = timelines(s, plan, (start, start), now, exclude_booking_id=booking.id)
            checked = check_slot(plan.rules, groups, start, now)
            customer_zone = booking.customer.timezone
            if checked is SlotProblem.TAKEN:
                return self._slot_taken(uow, plan, start, now, customer_zone, exclude_booking_id=booking.id)
            if isinstance(checked, SlotProblem):
                return slot_problem(checked, plan, start)
            before = snapshot(booking)
            staff_before = booked_resources(s, booking.id)
            claims.release(s, booking_id=booking.id)
            if claim_start(s, plan, start, now, checked.resource_ids, booking_id=booking.id) is None:
                return self._slot_taken(uow, plan, start, now, customer_zone, exclude_booking_id=booking.id)
            waitlist_offers.note_freed(s, business_id, (booking.starts_at, booking.ends_at), "rescheduled", now)
            booking.starts_at, booking.ends_at, booking.updated_at = start, start + plan.rules.duration, now
            s.flush()
            record(s, booking, "rescheduled", cmd, now, before=before, after=snapshot(booking))
            outbox.void_pending(s, booking.id)
            outbox.announce(s, booking, "rescheduled", now, previous_starts_at=before["starts_at"])
            outbox.announce_to_staff(s, booking, "rescheduled", now, staff_before + booked_resources(s, booking.id),
                                     previous_starts_at=before["starts_at"])
            outbox.schedule_reminders(s, booking, now, plan.reminder_offsets)
            view = booking_view(s, booking, plan.business)
            events.emit(s, business_id, "booking.rescheduled", view, now,
                        previous_starts_at=datetime.fromisoformat(before["starts_at"]))
            if cmd.idempotency_key:
                idempotency.remember(s, business_id, cmd.idempotency_key, booking.id,
                                     {"kind": "booking", "view": view.model_dump(mode="json")})
            uow.commit()
        return Booked(view)

    def join_waitlist(self, business_id: int, cmd: WaitlistJoin) -> WaitlistView | Rejected:
        """Put a customer on the waitlist for a service within a window (the same wish twice is one entry)."""
        with self.uow() as uow:
            plan = load_plan(uow.session, business_id, cmd.service, cmd.resources)
            if isinstance(plan, Rejected):
                return plan
            view = waitlist.join(uow.session, business_id, plan, cmd, self._clock())
            if not isinstance(view, Rejected):
                uow.commit()
            return view

    def cancel(self, business_id: int, cmd: BookingChange) -> ChangeResult:
        """Cancel and free the time at once; cancelling twice is not an error."""
        return self._change(business_id, cmd, "cancelled", self._apply_cancel)

    def confirm(self, business_id: int, cmd: BookingChange) -> ChangeResult:
        """The customer confirmed they will come."""
        return self._change(business_id, cmd, "confirmed", self._apply_confirm)

    def mark_no_show(self, business_id: int, cmd: BookingChange) -> ChangeResult:
        """The customer did not come: counted against them for the no-show policy."""
        return self._change(business_id, cmd, "no_show", self._apply_no_show)

    # --- deposits ----------------------------------------------------------------------------

    def deposit_due(self, business_id: int, code: str) -> DepositDue | Rejected:
        """What a pay link needs: the unpaid deposit of a booking, and any checkout already started."""
        with self.uow() as uow:
            s = uow.session
            booking = queries.booking_by_code(s, business_id, normalize_code(code))
            if booking is None:
                return unknown_booking(code)
            payment = s.scalars(select(Payment).where(Payment.booking_id == booking.id)).one_or_none()
            if payment is None:
                return Rejected("no_deposit", f"Booking {booking.code} needs no deposit.", "code")
            view = booking_view(s, booking, load_business(s, business_id))
            return DepositDue(view, payment.id, payment.provider, payment.provider_ref, payment.checkout_url)

    def record_checkout(self, business_id: int, payment_id: int, provider: str, provider_ref: str,
                        checkout_url: str) -> None:
        """Remember the provider's checkout session, so the pay link reuses it and its webhook finds us."""
        with self.uow() as uow:
            payment = uow.session.scalars(select(Payment).where(
                Payment.id == payment_id, Payment.business_id == business_id).with_for_update()).one()
            payment.provider, payment.provider_ref, payment.checkout_url = provider, provider_ref, checkout_url
            payment.log = [*payment.log, {"at": self._clock().isoformat(), "event": "checkout", "ref": provider_ref}]
            uow.commit()

    def settle_deposit(self, provider: str, provider_ref: str, amount_minor: int, currency: str,
                       event: dict[str, Any]) -> deposits.Settled | Rejected:
        """A provider says a checkout was paid (verified webhook): confirm the booking. Replays are harmless."""
        now = self._clock()
        with self.uow() as uow:
            s = uow.session
            payment = s.scalars(select(Payment).where(
                Payment.provider == provider, Payment.provider_ref == provider_ref).with_for_update()).one_or_none()
            if payment is None:
                return Rejected("unknown_payment", f"No deposit with {provider} reference {provider_ref}.", "ref")
            booking = s.scalars(select(Booking).where(Booking.id == payment.booking_id).with_for_update(of=Booking)).one()
            plan = load_plan(s, booking.business_id, booking.service.key)
            if isinstance(plan, Rejected):
                return plan
            settled = deposits.settle(s, payment, booking, plan, amount_minor, currency, now, event)
            uow.commit()
            return settled

    def expire_unpaid(self) -> int:
        """Bookings whose deposit deadline passed unpaid become expired and free their slot at once."""
        now = self._clock()
        with self.uow() as uow:
            s = uow.session
            done = [in_savepoint(s, lambda: expire_one(s, payment, now), "deposit %s (business %s): not expired",
                                 payment.id, payment.business_id)
                    for payment in deposits.overdue(s, now)]  # a failed one is tried again next run
            uow.commit()
            return sum(d is True for d in done)

    # --- waitlist offers ----------------------------------------------------------------------

    def offer_freed_capacity(self) -> int:
        """Scheduler job: lapse unanswered offers, then offer freed time to the waitlist; returns offers made."""
        now = self._clock()
        with self.uow() as uow:
            waitlist_offers.lapse_offers(uow.session, now)
            uow.commit()
        with self.uow() as uow:
            made = waitlist_offers.offer_each(uow.session, waitlist_offers.claim_markers(uow.session, now), now)
            uow.commit()
            return made

    def accept_offer(self, offer_id: int, source: str) -> BookingResult:
        """A waiting customer said yes: book the offered time through `book` (race-free, idempotent per offer).

        A yes after the offer lapsed, or after someone else took the time, gets the nearest openings.
        """
        now = self._clock()
        with self.uow() as uow:
            s = uow.session
            offer = s.get(WaitlistOffer, offer_id, with_for_update=True)
            if offer is None:
                return Rejected("unknown_offer", f"There is no waitlist offer {offer_id}.", "offer")
            if offer.status == "accepted" and offer.booking_id is not None:
                booking = s.get(Booking, offer.booking_id)
                return Booked(booking_view(s, booking, load_business(s, offer.business_id)), replayed=True)
            facts = waitlist_offers.offer_facts(s, offer)
            if offer.status != "open" or offer.expires_at <= now:
                offer.answered_at, offer.answer = now, source
                plan = load_plan(s, offer.business_id, facts["service"], facts["resources"])
                uow.commit()
                if isinstance(plan, Rejected):
                    return plan
                return SlotTaken(offer.starts_at, self._alternatives(s, plan, offer.starts_at, now,
                                                                     facts["customer"]["timezone"], None))
        result = self.book(facts["business_id"], BookingCreate(
            service=facts["service"], starts_at=facts["starts_at"], resources=facts["resources"],
            customer=CustomerIn(**facts["customer"]), idempotency_key=f"waitlist-offer-{offer_id}",
            source=source, actor="customer"))
        with self.uow() as uow:
            s = uow.session
            offer = s.get(WaitlistOffer, offer_id, with_for_update=True)
            entry = s.get(WaitlistEntry, offer.entry_id)
            offer.answered_at, offer.answer = now, source
            if isinstance(result, Booked):
                offer.status, offer.booking_id, entry.status = "accepted", result.booking.id, "booked"
                events.emit(s, offer.business_id, "waitlist.offer_accepted", result.booking, now)
            else:
                offer.status, entry.status = "lost", "waiting"
            uow.commit()
        return result

    def offer_summary(self, business_id: int, offer_id: int) -> dict[str, Any] | Rejected:
        with self.uow() as uow:
            summary = waitlist_offers.offer_summary(uow.session, business_id, offer_id)
            return summary or Rejected("unknown_offer", "There is no such offer.", "offer")

    def decline_offer(self, offer_id: int, source: str) -> bool:
        """A waiting customer said no to this time: they keep waiting, and the time goes to the next person."""
        now = self._clock()
        with self.uow() as uow:
            s = uow.session
            offer = s.get(WaitlistOffer, offer_id, with_for_update=True)
            if offer is None or offer.status != "open":
                return False
            offer.status, offer.answered_at, offer.answer = "declined", now, source
            entry = s.get(WaitlistEntry, offer.entry_id)
            entry.status = "waiting"
            plan = waitlist_offers.entry_plan(s, entry)
            if not isinstance(plan, Rejected):
                waitlist_offers.note_freed(s, offer.business_id, (offer.starts_at, offer.starts_at + plan.rules.duration),
                                           "offer_declined", now)
            uow.commit()
            return True

    # --- internals ---------------------------------------------------------------------------

    def _change(
        self, business_id: int, cmd: BookingChange, target: str,
        apply: Callable[[Session, Booking, datetime], Rejected | None],
    ) -> ChangeResult:
        now = self._clock()
        with self.uow() as uow:
            s = uow.session
            booking = queries.booking_by_code(s, business_id, normalize_code(cmd.code), for_update=True)
            if booking is None:
                return unknown_booking(cmd.code)
            business = load_business(s, business_id)
            if booking.status == target:  # already done: same answer, no second history entry
                return Changed(booking_view(s, booking, business), replayed=True)
            before = snapshot(booking)
            problem = apply(s, booking, now)
            if problem is not None:
                return problem
            booking.status, booking.updated_at = target, now
            s.flush()
            record(s, booking, target, cmd, now, before=before, after=snapshot(booking))
            view = booking_view(s, booking, business)
            events.emit(s, business_id, f"booking.{target}", view, now)
            uow.commit()
        return Changed(view)

    @staticmethod
    def _apply_cancel(s: Session, booking: Booking, now: datetime) -> Rejected | None:
        if booking.status not in (*ACTIVE, "pending_payment"):
            return not_active(booking)
        if booking.ends_at <= now:
            return Rejected("booking_in_past", "This appointment is already over; it cannot be cancelled.")
        staff = booked_resources(s, booking.id)
        claims.release(s, booking_id=booking.id)
        waitlist_offers.note_freed(s, booking.business_id, (booking.starts_at, booking.ends_at), "cancelled", now)
        outbox.void_pending(s, booking.id)
        outbox.announce(s, booking, "cancelled", now)
        outbox.announce_to_staff(s, booking, "cancelled", now, staff)
        return None

    @staticmethod
    def _apply_confirm(s: Session, booking: Booking, now: datetime) -> Rejected | None:
        if booking.status != "booked":
            return not_active(booking)
        if booking.ends_at <= now:
            return Rejected("booking_in_past", "This appointment is already over.")
        return None

    @staticmethod
    def _apply_no_show(s: Session, booking: Booking, now: datetime) -> Rejected | None:
        if booking.status not in ACTIVE:
            return not_active(booking)
        if booking.starts_at > now:
            return Rejected("not_started", "A no-show can only be recorded once the appointment has started.")
        booking.customer.no_show_count += 1
        outbox.void_pending(s, booking.id)
        return None

    def _slot_taken(
        self, uow: SqlAlchemyUnitOfWork, plan: Plan, start: datetime, now: datetime,
        customer_zone: str | None = None, exclude_booking_id: int | None = None,
    ) -> SlotTaken:
        """Roll back, then offer the openings nearest the requested time, as committed right now."""
        uow.rollback()
        return SlotTaken(start, self._alternatives(uow.session, plan, start, now, customer_zone, exclude_booking_id))

    @staticmethod
    def _alternatives(
        s: Session, plan: Plan, target: datetime, now: datetime,
        customer_zone: str | None, exclude_booking_id: int | None,
    ) -> list[SlotView]:
        found = []
        for window in ((target - timedelta(days=1), target + timedelta(days=1)),
                       (target - timedelta(days=1), target + timedelta(days=14))):
            groups = timelines(s, plan, window, now, exclude_booking_id)
            found = [x for x in find_open_slots(plan.rules, groups, window, now) if x.starts_at != target]
            if len(found) >= ALTERNATIVES:
                break
        return [slot_view(x, plan, customer_zone) for x in nearest(found, target, ALTERNATIVES)]


# --- helpers -------------------------------------------------------------------------------------


def expire_one(s: Session, payment: Payment, now: datetime) -> bool:
    """Expire one unpaid booking; its event is built in a savepoint of its own, as the view reads the business's
    settings: a business whose settings cannot be read loses the event, not the expiry."""
    booking = s.scalars(select(Booking).where(Booking.id == payment.booking_id).with_for_update(of=Booking)).one()
    if not deposits.expire(s, payment, booking, now):
        return False
    in_savepoint(s, lambda: events.emit(s, booking.business_id, "booking.expired",
                                        booking_view(s, booking, load_business(s, booking.business_id)), now),
                 "booking %s (business %s): no booking.expired event", booking.id, booking.business_id)
    return True


def slot_window(query: SlotQuery, plan: Plan, now: datetime) -> tuple[datetime, datetime] | Rejected:
    """The search window in UTC; window times without an offset or zone are read in the business's zone."""
    zone = query.timezone or plan.business.zone.key
    start = resolve_instant(query.starts_from, zone, "starts_from") if query.starts_from else now
    if isinstance(start, Rejected):
        return start
    end = resolve_instant(query.until, zone, "until") if query.until else start + timedelta(days=7)
    if isinstance(end, Rejected):
        return end
    if end <= start:
        return Rejected("window_reversed", "The window ends before it starts.", "until")
    if end - start > MAX_WINDOW:
        return Rejected("window_too_large", f"Ask for at most {MAX_WINDOW.days} days at a time.", "until")
    return start, end


def insert_with_code(s: Session, booking: Booking) -> None:
    """Insert the booking with a fresh speakable code, drawing again on the rare collision."""
    for _ in range(5):
        booking.code = new_code()
        try:
            with s.begin_nested():
                s.add(booking)
                s.flush()
            return
        except IntegrityError as error:
            if not isinstance(error.orig, UniqueViolation):
                raise
    raise RuntimeError("could not draw a free booking code in 5 tries")


def live_hold(s: Session, business_id: int, hold_id: int, plan: Plan, start: datetime) -> Hold | Rejected:
    hold = s.scalars(
        select(Hold).where(Hold.id == hold_id, Hold.business_id == business_id).with_for_update()
    ).one_or_none()
    if hold is None:
        return Rejected("unknown_hold", f"There is no hold {hold_id}.", "hold_id")
    if hold.status != "active":
        return Rejected("hold_used", f"Hold {hold_id} was already {hold.status}.", "hold_id")
    if hold.service_id != plan.service_id or hold.starts_at != start:
        return Rejected("hold_mismatch", "The hold is for a different service or time.", "hold_id")
    return hold


def replay(first: dict[str, Any] | Rejected) -> Booked | Held | Rejected:
    if isinstance(first, Rejected):
        return first
    if first.get("kind") == "hold":
        return Held(HoldView.model_validate(first["view"]), replayed=True)
    return Booked(BookingView.model_validate(first["view"]), replayed=True)


def snapshot(booking: Booking) -> dict[str, Any]:
    return {"status": booking.status, "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat()}


def record(s: Session, booking: Booking, action: str, cmd: Any, now: datetime,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    s.add(BookingHistory(
        business_id=booking.business_id, booking_id=booking.id, at=now, action=action,
        actor=cmd.actor or cmd.source, channel=cmd.source, before=before, after=after,
        note=getattr(cmd, "reason", "") or "",
    ))


def slot_problem(problem: SlotProblem, plan: Plan, start: datetime) -> Rejected:
    rules = plan.rules
    message = PROBLEMS[problem].format(
        start=start.astimezone(plan.business.zone).strftime("%Y-%m-%d %H:%M %Z"),
        step=rules.step_minutes, notice=int(rules.min_notice.total_seconds() // 60), horizon=rules.horizon.days,
    )
    return Rejected(problem.value, message, "starts_at")


def unknown_booking(code: str) -> Rejected:
    return Rejected("unknown_booking", f"No booking with code '{code}'. Check the code and try again.", "code")


def not_active(booking: Booking) -> Rejected:
    return Rejected("booking_not_active", f"Booking {booking.code} is {booking.status.replace('_', ' ')}.", "code")

