"""Round 11: the booking rules under sequences of operations, checked against a model of their own.

A state machine drives one business (a pooled treatment: any of two therapists and any of two rooms; a class of
five places booked by parties; a consultation that asks a deposit; a cancellation policy with a cutoff and a late
fee) through books, holds, moves, cancels, no-shows, payments, expiries, series, waitlist offers and a moving clock,
and after every step compares the database with the model: statuses, claims, places, fees and deposits."""
from __future__ import annotations

import itertools
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, precondition, rule
from sqlalchemy import select, text, update

from nextslot.core.operations import check_invariants
from nextslot.core.results import Booked, Changed, Held, Rejected, SeriesBooked, SlotTaken
from nextslot.core.service import BookingService
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    CustomerIn,
    HoldCreate,
    SeriesCreate,
    SeriesRule,
    WaitlistJoin,
)
from nextslot.storage.tables import FreedCapacity, Notification, Payment, WaitlistEntry, WaitlistOffer
from tests.conftest import FrozenClock
from tests.storage.test_races import invariant_violations

START_CLOCK = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday; London is on UTC in winter
DAYS = (24, 25, 26)
HOURS = (10, 11, 12)
STARTS = [datetime(2026, 11, d, h, tzinfo=UTC) for d in DAYS for h in HOURS]
HOUR = timedelta(hours=1)
CUTOFF = timedelta(hours=24)
DEPOSIT_MINUTES = 30
HOLD_MINUTES = 5
PHASES = (Phase.explicit, Phase.reuse, Phase.generate)  # no shrinking: each step is a database round trip
PHONES = itertools.count(uuid.uuid4().int % 10**4)
STAFF, ROOMS, HALL_PLACES = ("ana", "ben"), ("room-1", "room-2"), 5


def spa() -> dict:
    return {
        "business": {"slug": "r11-spa", "name": "Spa", "timezone": "Europe/London", "country": "GB",
                     "deposit_hold_minutes": DEPOSIT_MINUTES,
                     "cancellation": {"cutoff_hours": 24, "late_cancel": "allow", "keep_deposit": True,
                                      "late_fee": {"amount": 20, "currency": "GBP"}}},
        "hours": {d: ["08:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "resources": [
            *({"key": k, "name": k.title(), "kind": "staff"} for k in (*STAFF, "cal")),
            *({"key": k, "name": k.title(), "kind": "room"} for k in ROOMS),
            {"key": "hall", "name": "Hall", "kind": "room", "capacity": HALL_PLACES},
        ],
        "services": [
            {"key": "treat", "name": "Treatment", "duration": 60, "step": 60, "min_notice": 0, "horizon_days": 30,
             "requires": [{"label": "therapist", "one_of": list(STAFF)}, {"label": "room", "one_of": list(ROOMS)}]},
            {"key": "class", "name": "Class", "duration": 60, "step": 60, "min_notice": 0, "horizon_days": 30,
             "requires": [{"label": "place", "one_of": ["hall"]}], "party": {"max": 4, "per_person": ["place"]}},
            {"key": "consult", "name": "Consultation", "duration": 60, "step": 60, "min_notice": 0,
             "horizon_days": 30, "requires": [{"label": "doctor", "one_of": ["cal"]}],
             "deposit": {"amount": 10, "currency": "GBP"}},
        ],
    }


@dataclass
class Model:
    """What one booking should be, by the model's own reckoning."""

    code: str
    id: int
    service: str
    start: datetime
    party: int
    phone: str
    status: str
    resources: tuple[str, ...]
    deadline: datetime | None = None  # a deposit's
    payment: str | None = None  # pending, paid, expired, refund_due, kept
    fees: list[tuple[str, str]] = field(default_factory=list)  # (kind, status)


@dataclass
class HoldModel:
    id: int
    service: str
    start: datetime
    party: int
    expires: datetime
    resources: tuple[str, ...]
    status: str = "active"


def places(service: str, party: int) -> int:
    return party if service == "class" else 1


class Rules(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self, session_factory, make_business, engine):
        super().__init__()
        self.clock = FrozenClock(START_CLOCK)
        self.service = BookingService(session_factory, clock=self.clock, hold_minutes=HOLD_MINUTES)
        self.session_factory, self.engine = session_factory, engine
        self.business = make_business(spa())
        self.model: dict[str, Model] = {}
        self.held: dict[int, HoldModel] = {}
        self.customers = 0
        self.broken_before = broken_counts(self.service)

    # --- the model's view of who holds what --------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now

    def taking(self, start: datetime, but: str | None = None, but_hold: int | None = None) -> Counter[str]:
        """Places each resource gives at `start` to bookings and holds still holding time (all take one hour)."""
        used: Counter[str] = Counter()
        for b in self.model.values():
            if b.code == but or b.start != start:
                continue
            if b.status in ("booked", "confirmed", "no_show") or (
                    b.status == "pending_payment" and b.deadline is not None and b.deadline > self.now()):
                for r in b.resources:
                    used[r] += places(b.service, b.party) if r == "hall" else 1
        for h in self.held.values():
            if h.id != but_hold and h.status == "active" and h.start == start and h.expires > self.now():
                for r in h.resources:
                    used[r] += places(h.service, h.party) if r == "hall" else 1
        return used

    def fits(self, service: str, start: datetime, party: int, **but) -> bool:
        used = self.taking(start, **but)
        if service == "treat":
            return any(used[s] == 0 for s in STAFF) and any(used[r] == 0 for r in ROOMS)
        if service == "class":
            return used["hall"] + party <= HALL_PLACES
        return used["cal"] == 0

    def check_resources(self, service: str, start: datetime, party: int, resources: tuple[str, ...], **but) -> None:
        """The members a write took were free, and one of each requirement."""
        used = self.taking(start, **but)
        if service == "treat":
            assert len(resources) == 2 and resources[0] in STAFF and resources[1] in ROOMS, resources
            assert used[resources[0]] == 0 and used[resources[1]] == 0, (resources, used)
        elif service == "class":
            assert resources == ("hall",) and used["hall"] + party <= HALL_PLACES
        else:
            assert resources == ("cal",) and used["cal"] == 0

    def pick(self, data, paying: bool = False) -> str:
        """One of the bookings made so far (in the order made: codes are drawn anew each run)."""
        return data.draw(st.sampled_from([c for c, b in self.model.items() if not paying or b.payment is not None]))

    def new_phone(self) -> str:
        self.customers += 1
        return f"+44791112{next(PHONES) % 10**4:04d}"

    def add(self, view, service: str, party: int, phone: str) -> Model:
        b = Model(view.code, view.id, service, view.starts_at.utc, party, phone, str(view.status),
                  tuple(r.key for r in view.resources))
        if view.payment is not None:
            b.deadline, b.payment = view.payment.expires_at, view.payment.status
        self.model[b.code] = b
        return b

    # --- rules ---------------------------------------------------------------------------------------

    @initialize()
    def a_first_day_of_bookings(self):
        """One of each on the first day, so the changes below have something to act on from the first step."""
        for service, hour, party in (("consult", 10, 1), ("class", 11, 3), ("treat", 12, 1), ("consult", 12, 1)):
            self.book(service, datetime(2026, 11, 24, hour, tzinfo=UTC), party)

    @rule(service=st.sampled_from(["treat", "class", "consult"]),
          start=st.sampled_from(STARTS), party=st.integers(1, 4))
    def book(self, service, start, party):
        party = party if service == "class" else 1
        phone = self.new_phone()
        expected = "in_past" if start < self.now() else "booked" if self.fits(service, start, party) else "taken"
        result = self.service.book(self.business, BookingCreate(
            service=service, starts_at=start, party_size=party, source="page",
            customer=CustomerIn(name="Guest", phone=phone)))
        if expected == "in_past":
            assert isinstance(result, Rejected) and result.code == "in_past", result
            return None
        if expected == "taken":
            assert isinstance(result, SlotTaken), result
            return None
        assert isinstance(result, Booked), (result, self.taking(start))
        view = result.booking
        self.check_resources(service, start, party, tuple(r.key for r in view.resources))
        assert view.party_size == party
        assert str(view.status) == ("pending_payment" if service == "consult" else "booked")
        self.add(view, service, party, phone)

    @rule(target=holds, service=st.sampled_from(["treat", "class"]), start=st.sampled_from(STARTS),
          party=st.integers(1, 4))
    def hold(self, service, start, party):
        party = party if service == "class" else 1
        result = self.service.hold(self.business, HoldCreate(service=service, starts_at=start, party_size=party))
        if start < self.now():
            assert isinstance(result, Rejected) and result.code == "in_past", result
            return None
        if not self.fits(service, start, party):
            assert isinstance(result, SlotTaken), result
            return None
        assert isinstance(result, Held), result
        resources = tuple(r.key for r in result.hold.resources)
        self.check_resources(service, start, party, resources)
        self.held[result.hold.id] = HoldModel(result.hold.id, service, start, party, result.hold.expires_at, resources)
        assert result.hold.expires_at == self.now() + timedelta(minutes=HOLD_MINUTES)
        return result.hold.id

    @rule(hold_id=consumes(holds))
    def book_the_hold(self, hold_id):
        if hold_id is None:
            return None
        h = self.held[hold_id]
        phone = self.new_phone()
        result = self.service.book(self.business, BookingCreate(
            service=h.service, starts_at=h.start, party_size=h.party, hold_id=h.id, source="page",
            customer=CustomerIn(name="Holder", phone=phone)))
        if h.status == "converted":
            assert isinstance(result, Rejected) and result.code == "hold_used", result
            return None
        if h.start < self.now():
            assert isinstance(result, Rejected) and result.code == "in_past", result
            return None
        # lapsed, swept by the scheduler or not: booked afresh if the time is free
        if h.expires <= self.now() and not self.fits(h.service, h.start, h.party, but_hold=h.id):
            assert isinstance(result, SlotTaken), result
            return None
        assert isinstance(result, Booked), result
        h.status = "converted"
        view = result.booking
        if h.expires > self.now():
            assert tuple(r.key for r in view.resources) == h.resources  # the held members, kept
        else:
            self.check_resources(h.service, h.start, h.party, tuple(r.key for r in view.resources), but_hold=h.id)
        self.add(view, h.service, h.party, phone)


    @precondition(lambda self: self.model)
    @rule(data=st.data(), start=st.sampled_from(STARTS), source=st.sampled_from(["page", "staff"]))
    def reschedule(self, data, start, source):
        code = self.pick(data)
        b = self.model[code]
        result = self.service.reschedule(self.business, BookingReschedule(code=code, starts_at=start, source=source))
        if b.status not in ("booked", "confirmed"):
            assert isinstance(result, Rejected) and result.code == "booking_not_active", (b, result)
            return
        if b.start + HOUR <= self.now():
            assert isinstance(result, Rejected) and result.code == "booking_in_past", result
            return
        if source == "page" and b.start - self.now() < CUTOFF:
            assert isinstance(result, Rejected) and result.code == "move_cutoff", result
            return
        if start < self.now():
            assert isinstance(result, Rejected) and result.code == "in_past", result
            return
        if not self.fits(b.service, start, b.party, but=code):
            assert isinstance(result, SlotTaken), result
            assert self.service.get_booking(self.business, code).starts_at.utc == b.start  # untouched
            return
        assert isinstance(result, Booked), (result, b)
        resources = tuple(r.key for r in result.booking.resources)
        self.check_resources(b.service, start, b.party, resources, but=code)
        b.start, b.resources = start, resources

    @precondition(lambda self: self.model)
    @rule(data=st.data(), source=st.sampled_from(["page", "staff"]), accept=st.booleans())
    def cancel(self, data, source, accept):
        code = self.pick(data)
        b = self.model[code]
        result = self.service.cancel(self.business, BookingChange(
            code=code, source=source, late_terms="accept" if accept else None))
        if b.status == "cancelled":
            assert isinstance(result, Changed) and result.replayed, result
            return
        if b.status not in ("booked", "confirmed", "pending_payment"):
            assert isinstance(result, Rejected) and result.code == "booking_not_active", (b, result)
            return
        if b.start + HOUR <= self.now():
            assert isinstance(result, Rejected) and result.code == "booking_in_past", result
            return
        event(f"cancel {b.status} {'inside' if b.start - self.now() < CUTOFF else 'outside'} the cutoff")
        late = b.start - self.now() < CUTOFF and b.status != "pending_payment"  # an unpaid one costs nothing
        cost = None
        if late and (source != "staff" or accept):
            cost = ("late_cancel", "deposit_kept") if b.payment == "paid" else ("late_cancel", "no_payment_method")
        if late and source != "staff" and not accept:
            assert isinstance(result, Rejected) and result.code == "late_terms_not_accepted", (b, result)
            return
        assert isinstance(result, Changed) and str(result.booking.status) == "cancelled", (b, result)
        b.status = "cancelled"
        if cost is not None:
            b.fees.append(cost)
            if cost[1] == "deposit_kept":
                b.payment = "kept"
        if b.payment == "paid":  # not kept: due back
            b.payment = "refund_due"

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def confirm(self, data):
        code = self.pick(data)
        b = self.model[code]
        result = self.service.confirm(self.business, BookingChange(code=code, source="sms"))
        if b.status == "confirmed":
            assert isinstance(result, Changed) and result.replayed
        elif b.status != "booked":
            assert isinstance(result, Rejected) and result.code == "booking_not_active", (b, result)
        elif b.start + HOUR <= self.now():
            assert isinstance(result, Rejected) and result.code == "booking_in_past", result
        else:
            assert isinstance(result, Changed), result
            b.status = "confirmed"

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def no_show(self, data):
        code = self.pick(data)
        b = self.model[code]
        result = self.service.mark_no_show(self.business, BookingChange(code=code, source="staff"))
        if b.status == "no_show":
            assert isinstance(result, Changed) and result.replayed
        elif b.status not in ("booked", "confirmed"):
            assert isinstance(result, Rejected) and result.code == "booking_not_active", (b, result)
        elif b.start > self.now():
            assert isinstance(result, Rejected) and result.code == "not_started", result
        else:
            assert isinstance(result, Changed), result
            b.status = "no_show"
            if b.payment == "paid":
                b.payment = "kept"
                b.fees.append(("no_show", "deposit_kept"))

    @precondition(lambda self: any(b.payment is not None for b in self.model.values()))
    @rule(data=st.data())
    def pay(self, data):
        code = self.pick(data, paying=True)
        b = self.model[code]
        with self.session_factory() as s:
            payment = s.scalars(select(Payment).where(Payment.booking_id == b.id)).one()
        ref = payment.provider_ref or f"r11_{uuid.uuid4().hex[:12]}"
        if payment.provider_ref is None:
            self.service.record_checkout(self.business, payment.id, "local", ref, f"https://pay.example/{ref}")
        settled = self.service.settle_deposit("local", ref, payment.amount_minor, payment.currency, {"event": "paid"})
        if b.payment in ("paid", "kept", "refund_due"):
            assert settled.outcome == "already_paid", (b, settled)
            return
        event(f"pay {b.status} {'in time' if b.deadline > self.now() else 'late'}")
        in_time = b.status == "pending_payment" and b.deadline > self.now()
        again = b.status in ("pending_payment", "expired") and b.start > self.now() and self.fits(
            b.service, b.start, b.party, but=code)
        if in_time or again:
            assert settled.outcome == "paid", (b, settled)
            b.status, b.payment = "booked", "paid"
            view = self.service.get_booking(self.business, code)
            b.resources = tuple(r.key for r in view.resources)
        else:
            assert settled.outcome == "refund_due", (b, settled)
            b.payment = "refund_due"
            if b.status == "pending_payment":
                b.status = "expired"

    @rule()
    def scheduler_runs(self):
        """The scheduler's sweeps: lapsed holds let go, unpaid deposits past their deadline expired."""
        self.service.expire_holds()
        for h in self.held.values():
            if h.status == "active" and h.expires <= self.now():
                h.status = "released"
        self.service.expire_unpaid()
        for b in self.model.values():
            if b.payment == "pending" and b.deadline <= self.now():
                b.payment = "expired"
                if b.status == "pending_payment":
                    b.status = "expired"

    @rule(start=st.sampled_from(STARTS), count=st.integers(2, 3))
    def series(self, start, count):
        phone = self.new_phone()
        result = self.service.book_series(self.business, SeriesCreate(
            service="treat", starts_at=start, customer=CustomerIn(name="Regular", phone=phone), mode="skip_taken",
            repeat=SeriesRule(every="day", count=count), source="page"))
        if start < self.now():
            assert isinstance(result, Rejected) or all(o.outcome != "booked" or o.booking.starts_at.utc >= self.now()
                                                       for o in result.series.occurrences), result
            if isinstance(result, Rejected):
                return None
        assert isinstance(result, SeriesBooked), result
        for n, occurrence in enumerate(result.series.occurrences):
            at = start + n * timedelta(days=1)
            assert occurrence.requested.utc == at
            if at < self.now():
                assert occurrence.outcome == "refused", occurrence
            elif self.fits("treat", at, 1):
                assert occurrence.outcome == "booked", (occurrence, self.taking(at))
                self.check_resources("treat", at, 1, tuple(r.key for r in occurrence.booking.resources))
                self.add(occurrence.booking, "treat", 1, phone)
            else:
                assert occurrence.outcome == "taken", occurrence

    @rule(day=st.sampled_from(DAYS))
    def join_waitlist(self, day):
        result = self.service.join_waitlist(self.business, WaitlistJoin(
            service="treat", customer=CustomerIn(name="Waiter", phone=self.new_phone()),
            earliest_date=datetime(2026, 11, day).date(), latest_date=datetime(2026, 11, day).date()))
        assert not isinstance(result, Rejected) or result.code in ("in_past", "window_in_past"), result

    @rule()
    def offers_answered_yes(self):
        self.service.offer_freed_capacity()
        with self.session_factory() as s:
            open_ids = list(s.scalars(select(WaitlistOffer.id).where(
                WaitlistOffer.business_id == self.business, WaitlistOffer.status == "open")
                .order_by(WaitlistOffer.id)))
        if not open_ids:
            return None
        with self.session_factory() as s:
            offer = s.get_one(WaitlistOffer, open_ids[0])
            starts, expires = offer.starts_at, offer.expires_at
        free = self.fits("treat", starts, 1) and expires > self.now() and starts >= self.now()
        result = self.service.accept_offer(open_ids[0], "sms")
        if not free:
            assert not isinstance(result, Booked), result
            return None
        assert isinstance(result, Booked), result
        self.check_resources("treat", starts, 1, tuple(r.key for r in result.booking.resources))
        self.add(result.booking, "treat", 1, result.booking.customer.phone)

    @rule(hours=st.sampled_from([0.25, 0.5, 1, 6, 12, 23, 24, 25]))
    def clock_moves(self, hours):
        if self.now() < datetime(2026, 11, 27, tzinfo=UTC):
            self.clock.now += timedelta(hours=hours)

    @precondition(lambda self: any(b.start > self.now() + timedelta(hours=1) for b in self.model.values()))
    @rule(data=st.data())
    def clock_to_exactly_the_cutoff(self, data):
        """Land the clock on a booking's cutoff instant: 24 hours before is not yet inside 24 hours."""
        code = data.draw(st.sampled_from([c for c, b in self.model.items() if b.start - CUTOFF > self.now()]
                                         or [None]))  # in the order booked: codes are drawn anew each run
        if code is not None:
            self.clock.now = self.model[code].start - CUTOFF

    # --- after every step -------------------------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self):
        with self.engine.connect() as conn:
            # a no-show keeps its (past) claims (`nextslot check` asks only cancelled and expired ones to let go), and
            # a lapsed hold not yet swept may have lost its claims to a claimer that swept them in its way
            lapsed = {f"({h.id}, 'active', 0," for h in self.held.values() if h.expires <= self.now()}
            assert [v for v in invariant_violations(conn, self.business)
                    if "'no_show'" not in v and not any(h in v for h in lapsed)] == []
            rows = conn.execute(text(
                "select b.code, b.status, b.starts_at, b.party_size, p.status as paid from bookings b "
                "left join payments p on p.booking_id = b.id where b.business_id = :b"), {"b": self.business}).all()
            fees = conn.execute(text(
                "select b.code, f.kind, f.status from booking_fees f join bookings b on b.id = f.booking_id "
                "where f.business_id = :b"), {"b": self.business}).all()
            held_claims = conn.execute(text(
                "select b.code, r.key, c.seats from claims c join bookings b on b.id = c.booking_id "
                "join resources r on r.id = c.resource_id where c.active and b.business_id = :b "
                "and b.status in ('booked', 'confirmed', 'no_show')"), {"b": self.business}).all()
            both = conn.execute(text(
                "select booking_id from booking_history where business_id = :b "
                "and action in ('deposit_kept', 'deposit_refund_due') group by booking_id "
                "having count(distinct action) > 1"), {"b": self.business}).all()
        assert {r.code: (r.status, r.starts_at, r.party_size, r.paid) for r in rows} == {
            b.code: (b.status, b.start, b.party, b.payment) for b in self.model.values()}
        assert sorted(tuple(f) for f in fees) == sorted((b.code, *f) for b in self.model.values() for f in b.fees)
        claimed: dict[str, list[tuple[str, int]]] = {}
        for code, key, seats in held_claims:
            claimed.setdefault(code, []).append((key, seats))
        for code, got in claimed.items():
            b = self.model[code]
            assert sorted(got) == sorted((r, places(b.service, b.party)) for r in b.resources), (b, got)
        assert both == []  # no deposit both kept and due back

    @invariant()
    def the_whole_database_checks_out(self):
        assert broken_counts(self.service) == self.broken_before

    def teardown(self):
        quiet_business(self.session_factory, self.business, self.clock.now)
        by_phone = Counter(b.phone for b in self.model.values())
        for phone, count in by_phone.items():
            seen = self.service.customer_history(self.business, phone=phone)
            assert seen.bookings == count
            created = Counter(e.booking_code for e in seen.events if e.kind == "booking.created")
            assert created == Counter(b.code for b in self.model.values() if b.phone == phone)
            cancelled = {e.booking_code for e in seen.events if e.kind == "booking.cancelled"}
            assert cancelled == {b.code for b in self.model.values() if b.phone == phone and b.status == "cancelled"}


def quiet_business(session_factory, business_id: int, now: datetime) -> None:
    """Leave nothing of the business's for the scheduler's jobs, which read every business's queues a batch at a
    time: hundreds of due messages, open offers (which lapse into new freed time), waiting wishes and unread freed
    time left by a run would be later tests' sends, offers and counts."""
    with session_factory() as s:
        s.execute(update(Notification).where(Notification.business_id == business_id,
                                             Notification.status.in_(("pending", "sending"))).values(status="void"))
        s.execute(update(WaitlistOffer).where(WaitlistOffer.business_id == business_id, WaitlistOffer.status == "open")
                  .values(status="expired"))
        s.execute(update(WaitlistEntry).where(WaitlistEntry.business_id == business_id,
                                              WaitlistEntry.status.in_(("waiting", "offered")))
                  .values(status="withdrawn"))
        s.execute(update(FreedCapacity).where(FreedCapacity.business_id == business_id,
                                              FreedCapacity.processed_at.is_(None)).values(processed_at=now))
        s.commit()


def broken_counts(service: BookingService) -> dict[str, int]:
    return {r["check"]: r["broken"] for r in check_invariants(service)}


@pytest.mark.storage
def test_random_sequences_of_operations_keep_the_rules_and_the_model(session_factory, make_business, engine):
    """12 runs of 30 steps by default (about 15 s); NEXTSLOT_R11_EXAMPLES=150 explores longer."""
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        lambda: Rules(session_factory, make_business, engine),
        settings=settings(max_examples=int(os.environ.get("NEXTSLOT_R11_EXAMPLES", "12")), stateful_step_count=30, deadline=None, phases=PHASES,
                          suppress_health_check=list(HealthCheck)))


# --- the findings and the boundaries, one by one ---------------------------------------------------------------------

CLASS_START = datetime(2026, 11, 24, 10, tzinfo=UTC)


def customer(n: int) -> CustomerIn:
    return CustomerIn(name=f"Guest {n}", phone=f"+44791113{n:04d}")


def book_one(service, business, key, start, n, party=1):
    result = service.book(business, BookingCreate(service=key, starts_at=start, party_size=party, source="page",
                                                  customer=customer(n)))
    assert isinstance(result, Booked), result
    return result.booking


def pay_for(service, session_factory, booking):
    with session_factory() as s:
        payment = s.scalars(select(Payment).where(Payment.booking_id == booking.id)).one()
    ref = f"r11_{uuid.uuid4().hex[:12]}"
    service.record_checkout(payment.business_id, payment.id, "local", ref, f"https://pay.example/{ref}")
    return service.settle_deposit("local", ref, payment.amount_minor, payment.currency, {"event": "paid"})


def test_cancelling_a_booking_still_waiting_for_its_deposit_costs_nothing_even_inside_the_cutoff(
        service, make_business, clock):
    """Left unpaid it lapses at its deadline for nothing; cancelling it must not cost a late fee (it did: the
    customer was asked to accept a $20 fee, and it was recorded as owed)."""
    spa_id = make_business(spa())
    unpaid = book_one(service, spa_id, "consult", CLASS_START, 1)
    assert unpaid.status == "pending_payment"
    clock.now = CLASS_START - timedelta(hours=2)
    for source, terms in (("page", None), ("staff", "accept")):
        again = unpaid if source == "page" else book_one(service, spa_id, "consult", CLASS_START + HOUR, 2)
        clock.now = again.starts_at.utc - timedelta(hours=2) if source == "staff" else clock.now
        done = service.cancel(spa_id, BookingChange(code=again.code, source=source, late_terms=terms))
        assert isinstance(done, Changed) and done.booking.status == "cancelled", done
        assert done.booking.fees == [] and done.booking.payment.status == "pending"
    paid_later = pay_for(service, service.session_factory, unpaid)
    assert paid_later.outcome == "refund_due"  # a payment after the cancel is due back, as before


def test_a_deposit_paid_after_its_appointment_began_is_refunded_not_booked_into_the_past(
        service, make_business, clock, session_factory):
    """A bank payment may be reported days late: the lapsed booking's time is over, so the money is due back (it
    was taken as 'paid' and the booking confirmed for a time already past)."""
    spa_id = make_business(spa())
    booking = book_one(service, spa_id, "consult", CLASS_START, 3)
    clock.now = CLASS_START + timedelta(minutes=10)  # the deadline long gone, the appointment under way
    settled = pay_for(service, session_factory, booking)
    assert settled.outcome == "refund_due"
    view = service.get_booking(spa_id, booking.code)
    assert view.status == "expired" and view.payment.status == "refund_due"
    with session_factory() as s:
        assert s.scalar(text("select count(*) from claims where booking_id = :b and active"), {"b": booking.id}) == 0
    assert broken(service) == []


def test_a_late_payment_before_the_start_still_takes_the_free_time_back(service, make_business, clock,
                                                                        session_factory):
    spa_id = make_business(spa())
    booking = book_one(service, spa_id, "consult", CLASS_START, 4)
    clock.now = CLASS_START - timedelta(minutes=1)
    assert service.expire_unpaid() >= 1
    assert pay_for(service, session_factory, booking).outcome == "paid"
    assert service.get_booking(spa_id, booking.code).status == "booked"


def broken(service) -> list[str]:
    return [r["check"] for r in check_invariants(service) if not r["holds"]]


@pytest.mark.parametrize("before, late", [
    (CUTOFF, False),  # exactly at the cutoff instant: not yet within 24 hours
    (CUTOFF - timedelta(microseconds=1), True),
    (CUTOFF + timedelta(microseconds=1), False),
])
def test_a_cancel_at_the_cutoff_instant_is_free_and_a_moment_later_is_late(service, make_business, clock,
                                                                          before, late):
    spa_id = make_business(spa())
    booking = book_one(service, spa_id, "treat", CLASS_START, 5)
    clock.now = CLASS_START - before
    moved = service.reschedule(spa_id, BookingReschedule(code=booking.code, starts_at=CLASS_START + HOUR,
                                                         source="page"))
    assert (isinstance(moved, Rejected) and moved.code == "move_cutoff") is late
    result = service.cancel(spa_id, BookingChange(code=booking.code, source="page"))
    if late:
        assert isinstance(result, Rejected) and result.code == "late_terms_not_accepted"
    else:
        assert isinstance(result, Changed) and result.booking.fees == []


def test_a_24_hour_cutoff_counts_real_hours_across_the_night_the_clocks_go_back(service, make_business, clock):
    """London's clocks go back at 02:00 BST on Sunday 25 October 2026: 24 hours before Sunday 10:00 GMT is
    Saturday 11:00 BST, not 10:00."""
    spa_id = make_business(spa())
    clock.now = datetime(2026, 10, 20, 8, tzinfo=UTC)
    start = datetime(2026, 10, 25, 10, tzinfo=UTC)  # 10:00 GMT
    first, second = (book_one(service, spa_id, "treat", start, n) for n in (6, 7))
    clock.now = datetime(2026, 10, 24, 9, 30, tzinfo=UTC)  # 10:30 BST: 24.5 real hours before, 23.5 by the wall
    assert isinstance(service.cancel(spa_id, BookingChange(code=first.code, source="page")), Changed)
    clock.now = datetime(2026, 10, 24, 10, 30, tzinfo=UTC)  # 11:30 BST: 23.5 real hours before
    late = service.cancel(spa_id, BookingChange(code=second.code, source="page"))
    assert isinstance(late, Rejected) and late.code == "late_terms_not_accepted"


def test_moving_a_booking_into_the_cutoff_window_makes_its_cancel_late_and_out_of_it_free(
        service, make_business, clock):
    spa_id = make_business(spa())
    booking = book_one(service, spa_id, "treat", CLASS_START + timedelta(days=2), 8)
    clock.now = CLASS_START - timedelta(hours=20)  # the booking is two days off: a customer may still move it
    inside = service.reschedule(spa_id, BookingReschedule(code=booking.code, starts_at=CLASS_START, source="page"))
    assert isinstance(inside, Booked)
    late = service.cancel(spa_id, BookingChange(code=booking.code, source="page"))
    assert isinstance(late, Rejected) and late.code == "late_terms_not_accepted"
    stuck = service.reschedule(spa_id, BookingReschedule(code=booking.code, starts_at=CLASS_START + timedelta(days=2),
                                                         source="page"))
    assert isinstance(stuck, Rejected) and stuck.code == "move_cutoff"  # a customer cannot move out of it again
    out = service.reschedule(spa_id, BookingReschedule(code=booking.code, starts_at=CLASS_START + timedelta(days=2),
                                                       source="staff"))
    assert isinstance(out, Booked)
    free = service.cancel(spa_id, BookingChange(code=booking.code, source="page"))
    assert isinstance(free, Changed) and free.booking.fees == []


@pytest.mark.parametrize("party", [0, -1, 101, 10**6])
def test_a_party_of_no_one_a_negative_one_or_a_huge_one_is_refused_as_input(party):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        BookingCreate(service="class", starts_at=CLASS_START, party_size=party, customer=customer(9))
    with pytest.raises(ValidationError):
        HoldCreate(service="class", starts_at=CLASS_START, party_size=party)


def test_a_party_above_the_service_maximum_or_the_rooms_places_is_refused_or_taken(service, make_business):
    spa_id = make_business(spa())
    too_big = service.book(spa_id, BookingCreate(service="class", starts_at=CLASS_START, party_size=5,
                                                 customer=customer(10)))
    assert isinstance(too_big, Rejected) and too_big.code == "party_too_large"
    book_one(service, spa_id, "class", CLASS_START, 11, party=4)
    over = service.book(spa_id, BookingCreate(service="class", starts_at=CLASS_START, party_size=2,
                                              customer=customer(12)))
    assert isinstance(over, SlotTaken) and all(a.starts_at.utc != CLASS_START for a in over.alternatives)
    assert isinstance(service.book(spa_id, BookingCreate(service="class", starts_at=CLASS_START, party_size=1,
                                                         customer=customer(13))), Booked)


def test_shrinking_a_class_below_the_places_booked_is_refused_and_down_to_them_is_allowed(
        service, make_business, engine):
    from nextslot.core.business.config import apply_config
    from nextslot.schemas.config import BusinessConfig
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    config = spa()
    spa_id = make_business(config)
    slug = service.business_by_id(spa_id).slug
    book_one(service, spa_id, "class", CLASS_START, 14, party=3)
    book_one(service, spa_id, "class", CLASS_START + HOUR, 15, party=1)

    def with_hall(places: int):
        edited = {**config, "business": {**config["business"], "slug": slug},
                  "resources": [{**r, "capacity": places} if r["key"] == "hall" else r for r in config["resources"]]}
        return apply_config(SqlAlchemyUnitOfWork(service.session_factory), BusinessConfig.model_validate(edited))

    refused = with_hall(2)
    assert isinstance(refused, Rejected) and refused.code == "capacity_below_bookings", refused
    assert not isinstance(with_hall(3), Rejected)
    full = service.book(spa_id, BookingCreate(service="class", starts_at=CLASS_START, party_size=1,
                                              customer=customer(16)))
    assert isinstance(full, SlotTaken)
    with engine.connect() as conn:
        assert [v for v in invariant_violations(conn, spa_id)] == []


def test_a_lapsed_hold_or_unpaid_deposit_does_not_stop_a_class_being_made_smaller(service, make_business, clock,
                                                                                  session_factory):
    """Expired claims block no one (availability ignores them, the next claimer sweeps them), but a capacity cut was
    refused over them: 'hall already has overlapping bookings beyond capacity 3'."""
    from nextslot.core.business.config import apply_config
    from nextslot.schemas.config import BusinessConfig
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    config = spa()
    config["services"] = [{**s, "deposit": {"amount": 10, "currency": "GBP"}} if s["key"] == "class" else s
                          for s in config["services"]]
    spa_id = make_business(config)
    slug = service.business_by_id(spa_id).slug
    assert isinstance(service.hold(spa_id, HoldCreate(service="class", starts_at=CLASS_START, party_size=4)), Held)
    unpaid = book_one(service, spa_id, "class", CLASS_START + HOUR, 17, party=4)
    assert unpaid.status == "pending_payment"
    clock.now += timedelta(minutes=DEPOSIT_MINUTES + 1)  # both lapsed; no sweep has run
    edited = {**config, "business": {**config["business"], "slug": slug},
              "resources": [{**r, "capacity": 3} if r["key"] == "hall" else r for r in config["resources"]]}
    done = apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(edited))
    assert not isinstance(done, Rejected), done
    assert isinstance(service.book(spa_id, BookingCreate(service="class", starts_at=CLASS_START, party_size=3,
                                                         customer=customer(18))), Booked)
    assert pay_for(service, session_factory, unpaid).outcome == "refund_due"  # four no longer fit a class of three
    assert broken(service) == []


def test_a_series_day_in_a_closure_is_refused_alone_or_stops_an_all_or_none_series(service, make_business):
    config = spa()
    config["closures"] = [{"kind": "closed", "date": "2026-11-25", "reason": "Staff day"}]
    spa_id = make_business(config)
    outcomes = {}
    for n, mode in enumerate(("all_or_none", "skip_taken", "nearest_free")):
        result = service.book_series(spa_id, SeriesCreate(
            service="treat", starts_at=CLASS_START + n * HOUR, customer=customer(20 + n), mode=mode,
            repeat=SeriesRule(every="day", count=3)))
        assert isinstance(result, SeriesBooked), result
        outcomes[mode] = [(o.outcome, o.problem_code) for o in result.series.occurrences]
    assert outcomes == {
        "all_or_none": [("not_booked", None), ("refused", "outside_hours"), ("not_booked", None)],
        "skip_taken": [("booked", None), ("refused", "outside_hours"), ("booked", None)],
        "nearest_free": [("booked", None), ("refused", "outside_hours"), ("booked", None)],
    }
    assert broken(service) == []


@pytest.mark.parametrize("fee", [True, False])
def test_a_no_show_under_a_policy_that_keeps_no_deposit_makes_the_paid_deposit_due_back(
        service, make_business, clock, session_factory, fee):
    """`keep_deposit: false`: a paid deposit is due back after a no-show as after a cancel (README: 'kept on a late
    cancel or a no-show (due back otherwise)'); it stayed 'paid', so with a no-show fee the customer paid twice."""
    config = spa()
    config["business"]["cancellation"] = {"cutoff_hours": 24, "keep_deposit": False,
                                          **({"no_show_fee": {"amount": 30, "currency": "GBP"}} if fee else {})}
    spa_id = make_business(config)
    booking = book_one(service, spa_id, "consult", CLASS_START, 19)
    assert pay_for(service, session_factory, booking).outcome == "paid"
    clock.now = CLASS_START + timedelta(minutes=20)
    done = service.mark_no_show(spa_id, BookingChange(code=booking.code, source="staff"))
    assert isinstance(done, Changed) and done.booking.status == "no_show"
    assert done.booking.payment.status == "refund_due"
    assert [(f.kind, f.status) for f in done.booking.fees] == ([("no_show", "no_payment_method")] if fee else [])
