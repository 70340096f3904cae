"""Round 14 races: a capacity edit while claims are let go and taken again, and a hold converted in time after the
scheduler's sweep (its clock a moment later) lapsed it.

Racers are forked processes released together (`processes`: any call on a `BookingService` of their own, with a clock of
their own), or, where one step must fall between two of another's, threads with their own connections held at that step
(`held_then`). Each race ends with `nextslot check`'s invariants no more broken than before it, and the tests' own
invariant query on the business.

Tried in processes and held (not kept here): a party's move into a class racing new parties for its last places; two
moves into each other's times with a stranger booking one of them; one idempotency key sent at once by a booking, its
retry, a hold, a series and a move (one writes, the rest replay or are told the key was reused); a waitlist offer's
yes racing its no, staff booking its time and the job lapsing it.
"""
from __future__ import annotations

import multiprocessing
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from nextslot.core.business import config_edits
from nextslot.core.results import Booked, Changed, Held, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn, HoldCreate
from nextslot.schemas.config import ResourceConfig
from nextslot.storage.engine import build_session_factory, engine_for
from nextslot.storage.tables import Payment
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import FrozenClock
from tests.core.test_round11_rules import spa
from tests.storage.test_races import MON_9, NOW, assert_invariant, assert_offered_slots_are_free_now, phone, plain
from tests.storage.test_races_round10 import broken_checks, held_then, pause_after

pytestmark = pytest.mark.storage

GARAGE_TUE_10 = datetime.fromisoformat("2026-11-24T10:00:00-05:00")  # the bay has three lifts; Sam and Jo work
HOLD_EXPIRES = NOW + timedelta(minutes=5)  # holds last 5 minutes
MON_930 = MON_9 + timedelta(minutes=30)  # only Dr Patel works before 10 on Mondays
CONSULT = MON_9 + timedelta(days=1, hours=1)  # the spa's Tuesday 10:00 with Cal, a deposit due in 30 minutes


# --- racing any calls in separate processes ----------------------------------------------------------------------


def outcome(result: Any) -> dict[str, Any]:
    """A call's answer as plain data for the queue: a booking result as `plain` makes it, anything else by its type."""
    try:
        return plain(result, {"op": "call"})
    except TypeError:
        return {"type": type(result).__name__, "value": result if isinstance(result, int | bool) else None}


def racer(url: str, barrier: Any, results: Any, name: str, call: Callable[[BookingService], Any],
          when: datetime) -> None:
    engine = None
    try:
        engine = engine_for(url, pool_size=1)
        svc = BookingService(build_session_factory(engine), clock=FrozenClock(when))
        with engine.connect() as conn:  # connect first: the race is the call, not the login
            conn.execute(text("select 1"))
        barrier.wait(60)
        results.put((name, outcome(call(svc))))
    except BaseException:
        barrier.abort()
        results.put((name, {"type": "error", "error": traceback.format_exc()}))
    finally:
        if engine is not None:
            engine.dispose()


def processes(engine: Engine, url: str, calls: dict[str, Callable[[BookingService], Any]],
              clocks: dict[str, datetime] | None = None) -> dict[str, dict[str, Any]]:
    """Run each call in a forked process of its own (its clock from `clocks`, else NOW), all released at once."""
    engine.dispose()  # no pooled connection of the parent may leak into a child
    ctx = multiprocessing.get_context("fork")  # forked: the calls need not be picklable, only their answers
    barrier, results = ctx.Barrier(len(calls)), ctx.Queue()
    running = [ctx.Process(target=racer, args=(url, barrier, results, name, call, (clocks or {}).get(name, NOW)),
                           daemon=True) for name, call in calls.items()]
    for p in running:
        p.start()
    answers: dict[str, dict[str, Any]] = {}
    try:
        while len(answers) < len(running):
            name, answer = results.get(timeout=120)
            answers[name] = answer
    finally:
        for p in running:
            p.join(10)
            if p.is_alive():
                p.kill()
    errors = [a["error"] for a in answers.values() if a["type"] == "error"]
    assert not errors, errors[0]
    return answers


# --- a capacity edit while claims are let go and taken again -----------------------------------------------------


@dataclass
class Staged:
    """A write that lets claims go and then takes time again (or writes after letting go), and an edit of the capacity
    of a resource whose claims it lets go."""

    business: int
    write: Callable[[BookingService], Any]
    clock: datetime
    edit: ResourceConfig
    done: Callable[[Any], bool]  # the write's answer when it did its work


def garage_booking(service: BookingService, make_business: Callable[..., int]) -> tuple[int, str]:
    garage = make_business("garage")
    made = service.book(garage, BookingCreate(service="tyre-swap", starts_at=GARAGE_TUE_10,
                                              customer=CustomerIn(name="Ada", phone="+12125550100")))
    assert isinstance(made, Booked), made
    return garage, made.booking.code


def booked(answer: Any) -> bool:
    return isinstance(answer, Booked)


def bay(capacity: int) -> ResourceConfig:
    return ResourceConfig(key="service-bay", name="Service bay (3 lifts)", kind="room", capacity=capacity)


def moved(service: BookingService, make_business: Callable[..., int]) -> Staged:
    garage, code = garage_booking(service, make_business)
    return Staged(garage, lambda svc: svc.reschedule(garage, BookingReschedule(
        code=code, starts_at=GARAGE_TUE_10 + timedelta(hours=2))), NOW, bay(2), booked)


def cancelled(service: BookingService, make_business: Callable[..., int]) -> Staged:
    garage, code = garage_booking(service, make_business)
    return Staged(garage, lambda svc: svc.cancel(garage, BookingChange(code=code)), NOW, bay(4),
                  lambda answer: isinstance(answer, Changed))


def expired_hold_booked(service: BookingService, make_business: Callable[..., int]) -> Staged:
    garage = make_business("garage")
    held = service.hold(garage, HoldCreate(service="tyre-swap", starts_at=GARAGE_TUE_10))
    assert isinstance(held, Held), held
    return Staged(garage, lambda svc: svc.book(garage, BookingCreate(
        service="tyre-swap", starts_at=GARAGE_TUE_10, hold_id=held.hold.id,
        customer=CustomerIn(name="Late", phone="+12125550101"))), HOLD_EXPIRES + timedelta(minutes=1), bay(4), booked)


def expired_hold_in_the_way(service: BookingService, make_business: Callable[..., int]) -> Staged:
    # a new hold of the same doctor and room meets the lapsed one's claims, lets them go, and claims again
    clinic = make_business("clinic")
    pinned = ["dr-patel", "room-1"]
    assert isinstance(service.hold(clinic, HoldCreate(service="consultation", starts_at=MON_930, resources=pinned)),
                      Held)
    return Staged(clinic, lambda svc: svc.hold(clinic, HoldCreate(service="consultation", starts_at=MON_930,
                                                                  resources=pinned)),
                  HOLD_EXPIRES + timedelta(minutes=1), ResourceConfig(key="room-1", name="Room 1", kind="room",
                                                                      capacity=2),
                  lambda answer: isinstance(answer, Held))


def paid_late(service: BookingService, make_business: Callable[..., int]) -> Staged:
    # the deposit is paid after its deadline: the lapsed claims go and the time is claimed again
    business = make_business(spa())
    made = service.book(business, BookingCreate(service="consult", starts_at=CONSULT,
                                                customer=CustomerIn(name="Payer", phone=phone(3))))
    assert isinstance(made, Booked) and made.booking.status == "pending_payment", made
    with service.session_factory() as s:
        payment = s.scalars(select(Payment).where(Payment.booking_id == made.booking.id)).one()
    ref = f"r14_{uuid.uuid4().hex[:12]}"
    service.record_checkout(business, payment.id, "local", ref, "https://pay.example/r14")
    amount, currency = payment.amount_minor, payment.currency
    return Staged(business, lambda svc: svc.settle_deposit("local", ref, amount, currency, {"event": "paid"}),
                  NOW + timedelta(minutes=31), ResourceConfig(key="cal", name="Cal", kind="staff", capacity=2),
                  lambda answer: answer.outcome == "paid")  # the time kept


@pytest.mark.parametrize("stage", [moved, cancelled, expired_hold_booked, expired_hold_in_the_way, paid_late])
def test_a_capacity_edit_while_a_write_lets_claims_go_waits_for_it_and_both_are_done(
        engine, database_url, session_factory, make_business, service, stage):
    # The write has let its claims go (their rows are its until it ends). The edit locks the business and the
    # resource's row, and its capacity guard marks each of the resource's claims, so it waits for the write. The write
    # then took the resource's row for its new claims (a move), or the business's for its history (a cancel): each
    # waited for the other, and PostgreSQL failed the edit with a deadlock (a 503 to staff for a customer's move).
    before = broken_checks(service)
    staged = stage(service, make_business)
    writer_engine = engine_for(database_url, pool_size=1)
    go, let_go, edited = threading.Event(), threading.Event(), threading.Event()
    pause_after(writer_engine, "UPDATE claims SET active", go, let_go)
    writer = BookingService(build_session_factory(writer_engine), clock=FrozenClock(staged.clock))
    said: dict[str, Any] = {}

    def write() -> None:
        try:
            said["write"] = staged.write(writer)
        except Exception as error:  # noqa: BLE001 - the answer checked below
            said["write"] = error

    def edit() -> None:
        try:
            said["edit"] = config_edits.put_resource(SqlAlchemyUnitOfWork(session_factory), staged.business,
                                                     staged.edit)
        except Exception as error:  # noqa: BLE001 - the answer checked below
            said["edit"] = error
        edited.set()

    try:
        held_then(write, edit, let_go, edited, go, engine)
    finally:
        writer_engine.dispose()
    assert not [a for a in said.values() if isinstance(a, Exception)], said
    assert said["edit"] is False, said  # replaced, not created
    assert staged.done(said["write"]), said
    with engine.connect() as conn:
        capacity = conn.execute(text("select capacity from resources where business_id = :b and key = :k"),
                                {"b": staged.business, "k": staged.edit.key}).scalar_one()
    assert capacity == staged.edit.capacity
    BookingService(session_factory, clock=FrozenClock(HOLD_EXPIRES + timedelta(minutes=1))).expire_holds()
    assert_invariant(engine, staged.business)  # a lapsed hold whose claims a claimer let go is active till swept
    assert broken_checks(service) == before


def test_a_capacity_cut_letting_a_lapsed_hold_go_while_the_hold_is_converted_in_time_waits_for_neither(
        engine, database_url, session_factory, make_business, service):
    # The cut first lets the resource's lapsed claims go (by the server's clock, past the hold's expiry), then writes
    # the capacity. The conversion (its clock a minute before the expiry) locks the resource's row, then waits for the
    # hold's claims the cut let go; the cut then waited for the resource's row: a deadlock, and the conversion failed.
    before = broken_checks(service)
    garage = make_business("garage")
    held = service.hold(garage, HoldCreate(service="tyre-swap", starts_at=GARAGE_TUE_10))
    assert isinstance(held, Held), held
    editor_engine = engine_for(database_url, pool_size=1)
    go, let_go, converted = threading.Event(), threading.Event(), threading.Event()
    pause_after(editor_engine, "UPDATE claims SET active", go, let_go)
    said: dict[str, Any] = {}

    def edit() -> None:
        try:
            said["edit"] = config_edits.put_resource(SqlAlchemyUnitOfWork(build_session_factory(editor_engine)),
                                                     garage, bay(2))
        except Exception as error:  # noqa: BLE001 - the answer checked below
            said["edit"] = error

    def convert() -> None:
        try:
            in_time = BookingService(session_factory, clock=FrozenClock(HOLD_EXPIRES - timedelta(minutes=1)))
            said["convert"] = in_time.book(garage, BookingCreate(
                service="tyre-swap", starts_at=GARAGE_TUE_10, hold_id=held.hold.id,
                customer=CustomerIn(name="Holder", phone="+12125550103")))
        except Exception as error:  # noqa: BLE001 - the answer checked below
            said["convert"] = error
        converted.set()

    try:
        held_then(edit, convert, let_go, converted, go, engine)
    finally:
        editor_engine.dispose()
    assert said["edit"] is False and isinstance(said["convert"], Booked), said
    assert_invariant(engine, garage)
    assert broken_checks(service) == before


@pytest.mark.parametrize("capacity", [1, 2, 4])
def test_a_bays_capacity_edited_while_its_bookings_are_moved_cancelled_and_made_in_processes(
        engine, database_url, make_business, service, capacity):
    before = broken_checks(service)
    garage, code = garage_booking(service, make_business)
    later = service.book(garage, BookingCreate(service="tyre-swap", starts_at=GARAGE_TUE_10 + timedelta(hours=1),
                                               customer=CustomerIn(name="Bo", phone="+12125550102")))
    assert isinstance(later, Booked), later
    calls: dict[str, Callable[[BookingService], Any]] = {
        "edit": lambda svc: config_edits.put_resource(SqlAlchemyUnitOfWork(svc.session_factory), garage, bay(capacity)),
        "move": lambda svc: svc.reschedule(garage, BookingReschedule(code=later.booking.code, starts_at=GARAGE_TUE_10)),
        "cancel": lambda svc: svc.cancel(garage, BookingChange(code=code)),
    }
    for n in range(3):
        calls[f"book{n}"] = lambda svc, n=n: svc.book(garage, BookingCreate(
            service="tyre-swap", starts_at=GARAGE_TUE_10, customer=CustomerIn(name="New", phone=f"+1212555011{n}")))
    answers = processes(engine, database_url, calls)

    edit = answers.pop("edit")
    assert edit["type"] == "bool" or edit.get("code") == "capacity_below_bookings", edit
    assert answers["cancel"]["type"] == "Changed", answers
    assert {a["type"] for a in answers.values()} <= {"Booked", "SlotTaken", "Changed"}, answers
    with engine.connect() as conn:
        stored = conn.execute(text("select capacity from resources where business_id = :b and key = 'service-bay'"),
                              {"b": garage}).scalar_one()
    assert stored == (capacity if edit["type"] == "bool" else 3)
    assert_invariant(engine, garage)
    assert broken_checks(service) == before


# --- a hold converted in time after the scheduler's sweep lapsed it ----------------------------------------------


def clinic_hold(service: BookingService, make_business: Callable[..., int]) -> tuple[int, int]:
    clinic = make_business("clinic")
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=MON_930))
    assert isinstance(held, Held), held
    return clinic, held.hold.id


def converting(clinic: int, hold_id: int, n: int = 1) -> BookingCreate:
    return BookingCreate(service="consultation", starts_at=MON_930, hold_id=hold_id,
                         customer=CustomerIn(name="Holder", phone=phone(n)))


@pytest.mark.parametrize("taken_meanwhile", [False, True])
def test_a_hold_converted_in_time_after_the_schedulers_sweep_lapsed_it_books_the_time_or_offers_openings(
        engine, session_factory, make_business, service, taken_meanwhile):
    # The conversion read its clock a second before the hold's expiry; the scheduler's sweep, a second after it, let
    # the hold go first. The conversion was refused as `hold_used` ("Hold 7 was already released"), where a conversion
    # of a lapsed hold not yet swept books the time afresh if it is free, and else answers with openings.
    before = broken_checks(service)
    clinic, hold_id = clinic_hold(service, make_business)
    later = BookingService(session_factory, clock=FrozenClock(HOLD_EXPIRES + timedelta(seconds=1)))
    assert later.expire_holds() >= 1
    if taken_meanwhile:
        other = later.book(clinic, BookingCreate(service="consultation", starts_at=MON_930,
                                                 customer=CustomerIn(name="Other", phone=phone(2))))
        assert isinstance(other, Booked), other
    in_time = BookingService(session_factory, clock=FrozenClock(HOLD_EXPIRES - timedelta(seconds=1)))
    result = in_time.book(clinic, converting(clinic, hold_id))
    if taken_meanwhile:
        assert isinstance(result, SlotTaken) and result.alternatives, result
        assert_offered_slots_are_free_now(service, engine, clinic, [plain(result, {"op": "book"}) | {
            "service": "consultation"}])  # 1 to 3 of them, none at 9:30
    else:
        assert isinstance(result, Booked) and result.booking.starts_at.utc == MON_930, result
        again = in_time.book(clinic, converting(clinic, hold_id, 2))  # one booking a hold
        assert isinstance(again, Rejected) and again.code == "hold_used", again
    assert_invariant(engine, clinic)
    assert broken_checks(service) == before


def test_a_hold_converted_in_time_racing_the_sweep_a_booker_and_the_waitlist_job_is_answered_booked_or_taken(
        engine, database_url, session_factory, make_business, service):
    before = broken_checks(service)
    for _ in range(4):  # whichever finishes first
        clinic, hold_id = clinic_hold(service, make_business)
        late = HOLD_EXPIRES + timedelta(seconds=1)
        answers = processes(engine, database_url, {
            "convert": lambda svc: svc.book(clinic, converting(clinic, hold_id)),
            "sweep": lambda svc: svc.expire_holds(),
            "book": lambda svc: svc.book(clinic, BookingCreate(service="consultation", starts_at=MON_930,
                                                               customer=CustomerIn(name="Other", phone=phone(2)))),
            "offer": lambda svc: svc.offer_freed_capacity(),
        }, {"convert": HOLD_EXPIRES - timedelta(seconds=1), "sweep": late, "book": late, "offer": late})
        assert sorted([answers["convert"]["type"], answers["book"]["type"]]) == ["Booked", "SlotTaken"], answers
        lost = next(a for a in (answers["convert"], answers["book"]) if a["type"] == "SlotTaken")
        assert_offered_slots_are_free_now(service, engine, clinic, [lost | {"service": "consultation"}])
        with engine.connect() as conn:
            holders = conn.execute(text("select count(*) from bookings where business_id = :b and starts_at = :t "
                                        "and status = 'booked'"), {"b": clinic, "t": MON_930}).scalar_one()
        assert holders == 1
        BookingService(session_factory, clock=FrozenClock(late)).expire_holds()  # the booker's sweep may
        assert_invariant(engine, clinic)  # have let the hold's claims go while the job skipped the converting hold
    assert broken_checks(service) == before
