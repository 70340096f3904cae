"""Races the earlier rounds did not try (tenth round): series whose occurrences cross each other's pool members, a
customer erased while a booking for them is made, a config edit committed while another process books with the plan
it cached, a deposit's "paid" told again while the booking is cancelled, one booking moved twice and cancelled at
once, parties in a pool of roomy rooms, a series racing single bookings of its occurrences or cancelled while they
are moved, and a waiting customer's yes while they are erased.

Racers are forked processes released by a barrier (`tests.storage.test_races.race`), or, where one step must fall
exactly between two of another's, threads with their own connections, held at that step. Each race ends with
`nextslot check`'s invariants (`core.operations.INVARIANTS`) no more broken than before it, and the tests' own
invariant query on the business.
"""
from __future__ import annotations

import copy
import multiprocessing
import threading
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from nextslot.core.business.config import apply_config
from nextslot.core.customers.data_rights import Erased, erase_customer
from nextslot.core.operations import check_invariants
from nextslot.core.results import Booked, Changed, Rejected, SeriesBooked, SeriesChanged
from nextslot.core.service import BookingService
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    CustomerIn,
    SeriesCreate,
    SeriesRule,
    SlotQuery,
)
from nextslot.schemas.config import BusinessConfig
from nextslot.storage import queries
from nextslot.storage.engine import build_session_factory, engine_for
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import example, own_numbers
from tests.storage.test_races import MON_9, NOW, assert_invariant, book_job, flat, phone, race

pytestmark = pytest.mark.storage

MON_10 = MON_9 + timedelta(hours=1)  # both clinic doctors work from 10:00 on Mondays
WEEK = timedelta(days=7)


def broken_checks(service: BookingService) -> dict[str, int]:
    """`nextslot check`'s count of broken rows per invariant (the whole test database: compared before and after)."""
    return {str(c["check"]): int(str(c["broken"])) for c in check_invariants(service)}


def book(service: BookingService, clinic: int, start, n: int, resources: list[str] | None = None,
         **customer: Any) -> Booked:
    made = service.book(clinic, BookingCreate(
        service="consultation", starts_at=start, resources=resources or [],
        customer=CustomerIn(name=f"Caller {n}", **(customer or {"phone": phone(n)}))))
    assert isinstance(made, Booked), made
    return made


# --- series whose occurrences take each other's pool members -----------------------------------------------------


def test_two_series_whose_occurrences_cross_pool_members_are_both_booked(engine, database_url, make_business,
                                                                          service):
    # Each occurrence's claim locks its members' rows until the series commits. Series A takes Dr Patel and room 1
    # for its first Monday and then needs Dr Okafor and room 2 for the next; series B the other way round. Their
    # times never overlap, so both fit; taken one statement at a time, the locks made a cycle: PostgreSQL broke it
    # every second by failing one claim, the claimer took that for a lost race and tried again into the same cycle,
    # and after 20 tries answered "taken" for a time no one had.
    before = broken_checks(service)
    for _ in range(2):
        clinic = make_business("clinic")
        book(service, clinic, MON_10 + WEEK, 1, ["dr-patel"])  # A's second Monday: only Dr Okafor and room 2 left
        book(service, clinic, MON_10 + timedelta(hours=1), 2, ["dr-patel"])  # B's first Monday likewise
        jobs = [[dict(op="series", business=clinic, service="consultation", starts_at=start.isoformat(),
                      mode="all_or_none", count=2, phone=phone(10 + i))]
                for i, start in enumerate((MON_10, MON_10 + timedelta(hours=1)))]
        a, b = flat(race(engine, database_url, jobs))
        assert (a["type"], a["complete"], b["type"], b["complete"]) == ("SeriesBooked", True, "SeriesBooked", True), (
            [(o["type"], o.get("outcomes"), o.get("starts")) for o in (a, b)])
        assert_invariant(engine, clinic)
    assert broken_checks(service) == before


# --- a customer erased while a booking for them is being made ----------------------------------------------------


def pause_after(engine: Engine, fragment: str, go: threading.Event, read: threading.Event) -> None:
    """Hold the engine's connection after its first statement containing `fragment` until `go` is set."""
    seen = []

    def after(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if fragment in statement and not seen:
            seen.append(statement)
            read.set()
            go.wait(60)

    event.listen(engine, "after_cursor_execute", after)


def blocked_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as watcher:
        return bool(watcher.execute(text("select count(*) from pg_stat_activity where datname = current_database()"
                                          " and wait_event_type = 'Lock'")).scalar_one())


def held_then(first: Callable[[], None], second: Callable[[], None], read: threading.Event, done: threading.Event,
              go: threading.Event, engine: Engine) -> None:
    """Run `first` until it has read (it waits at `go`), then `second` until it is done or waits on a lock `first`
    holds; then let `first` go on, and wait for both."""
    first_thread = threading.Thread(target=first)
    first_thread.start()
    try:
        assert read.wait(30), "the first never reached its pause"
        second_thread = threading.Thread(target=second)
        second_thread.start()
        while not done.is_set() and not blocked_on_a_lock(engine):  # done, or queued behind the first
            done.wait(0.05)
    finally:
        go.set()
    first_thread.join(60)
    second_thread.join(60)


def test_a_customer_erased_while_an_email_only_booking_for_them_is_made_is_never_booked_after_erasure(
        engine, database_url, session_factory, make_business, service):
    # The booking finds the customer by email, then the erasure commits, then the booking commits for the erased
    # customer: their confirmation and reminders wait to be sent (to whom?) and `nextslot check` flags them.
    before = broken_checks(service)
    clinic = make_business("clinic")
    email = "ada@example.org"
    first = book(service, clinic, MON_10 + timedelta(hours=3), 1, email=email)  # a customer with nothing upcoming
    assert isinstance(service.cancel(clinic, BookingChange(code=first.booking.code)), Changed)

    booker_engine = engine_for(database_url, pool_size=1)
    go, read, erased = threading.Event(), threading.Event(), threading.Event()
    pause_after(booker_engine, "FROM customers", go, read)
    booker = BookingService(build_session_factory(booker_engine), clock=lambda: NOW)
    answers: dict[str, Any] = {}

    def booking() -> None:
        answers["booking"] = booker.book(clinic, BookingCreate(service="consultation", starts_at=MON_10,
                                                               customer=CustomerIn(name="Ada", email=email)))

    def erasure() -> None:
        answers["erasure"] = erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, NOW, email=email)
        erased.set()

    try:
        held_then(booking, erasure, read, erased, go, engine)
    finally:
        booker_engine.dispose()

    made, gone = answers["booking"], answers["erasure"]
    assert isinstance(made, Booked), made
    with engine.connect() as conn:
        erased_at = conn.execute(text("select c.erased_at from bookings b join customers c on c.id = b.customer_id "
                                      "where b.id = :i"), {"i": made.booking.id}).scalar_one()
    assert erased_at is None, "a booking was made for an erased customer"
    if isinstance(gone, Rejected):  # the erasure came second: it saw the new booking
        assert gone.code == "upcoming_bookings", gone
    else:
        assert isinstance(gone, Erased)
    assert_invariant(engine, clinic)
    assert broken_checks(service) == before


# --- a config edit committed while another process books with the plan it cached --------------------------------

MON_30_10 = MON_10 + WEEK  # Monday 30 November, 10:00 in London


def mornings_off() -> dict[str, Any]:
    """The clinic with Dr Patel off on the morning of Monday 30 November (and a conversation number of its own, which
    the edit keeps: the example's is another business's in a shared test database)."""
    config = example("clinic")
    config["business"] = own_numbers(config["business"])
    patel = next(r for r in config["resources"] if r["key"] == "dr-patel")
    patel["exceptions"] = [{"kind": "closed", "date": "2026-11-30", "hours": ["08:30-12:30"], "reason": "Training"}]
    return config


def afternoons_only(config: dict[str, Any]) -> dict[str, Any]:
    """The same clinic after one edit: Dr Patel works Monday afternoons only, so the morning off goes with it."""
    edited = copy.deepcopy(config)
    patel = next(r for r in edited["resources"] if r["key"] == "dr-patel")
    patel["hours"] = {**edited["hours"], "mon": ["13:30-18:00"]}
    patel["exceptions"] = []
    return edited


def booker_paused_after_its_version_read(url: str, clinic: int, paused: Any, go: Any, results: Any) -> None:
    """A process that cached Dr Patel's consultation plan, then books 10:00 on the 30th, pausing after it read the
    business's config version (the plan's label) until `go`."""
    engine = None
    try:
        engine = engine_for(url, pool_size=1)
        svc = BookingService(build_session_factory(engine), clock=lambda: NOW)
        warm = svc.find_slots(clinic, SlotQuery(service="consultation", resources=["dr-patel"],
                                                starts_from=MON_30_10, until=MON_30_10 + timedelta(hours=1)))
        assert not isinstance(warm, Rejected) and not warm.slots  # the morning is off
        original = queries.config_version

        def version_then_pause(session, business_id):  # type: ignore[no-untyped-def]
            version = original(session, business_id)
            paused.set()
            go.wait(60)
            return version

        queries.config_version = version_then_pause
        made = svc.book(clinic, BookingCreate(service="consultation", starts_at=MON_30_10, resources=["dr-patel"],
                                              customer=CustomerIn(name="Ada", phone=phone(7))))
        results.put(type(made).__name__ + (f" {made.code}" if isinstance(made, Rejected) else ""))
    except BaseException:
        results.put(traceback.format_exc())
    finally:
        paused.set()
        if engine is not None:
            engine.dispose()


def test_a_booking_checked_across_a_config_edit_uses_one_version_of_the_hours_and_the_time_off(
        engine, database_url, session_factory, make_business, service):
    # Weekly hours come from the plan this process cached; dated time off is read fresh with the claims. An edit
    # committed between the two (mornings off one Monday -> afternoons only) let the booking see the old hours
    # without the time off: 10:00 was booked, a time neither the old config nor the new one opens.
    before = broken_checks(service)
    config = mornings_off()
    clinic = make_business(config)
    with engine.connect() as conn:
        slug = conn.execute(text("select slug from businesses where id = :b"), {"b": clinic}).scalar_one()
    engine.dispose()
    ctx = multiprocessing.get_context("fork")
    paused, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=booker_paused_after_its_version_read,
                        args=(database_url, clinic, paused, go, results), daemon=True)
    child.start()
    try:
        assert paused.wait(60), "the booker never read the config version"
        edited = afternoons_only(config)
        edited["business"] = {**edited["business"], "slug": slug}
        applied = apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(edited))
        assert not isinstance(applied, Rejected), applied
    finally:
        go.set()
    answer = results.get(timeout=60)
    child.join(10)
    assert answer != "Booked", "10:00 was booked: open neither before the edit (time off) nor after (hours)"
    assert answer == "Rejected outside_hours", answer  # started again with the new plan: afternoons only
    assert_invariant(engine, clinic)
    assert broken_checks(service) == before


# --- a deposit's payment told again while the booking is cancelled ----------------------------------------------

GARAGE_TUE_10 = datetime.fromisoformat("2026-11-24T10:00:00-05:00")  # 31 hours ahead: cancelled in time
REPAIR = {"address": "12 Elm St", "problem": "Won't start", "drivable": "no"}


def test_a_paid_deposits_webhook_sent_again_while_the_booking_is_cancelled_answers_both(
        engine, database_url, session_factory, make_business, service):
    # The provider sends "paid" again (webhooks are retried) just as the customer cancels. The payment's webhook
    # locked the payment, then the booking; the cancel the booking, then the paid payment (its deposit is due back):
    # each waited for the other, and PostgreSQL failed one of them with a deadlock error.
    before = broken_checks(service)
    config = example("garage")
    config["business"]["cancellation"] = {"cutoff_hours": 24}
    garage = make_business(config)
    made = service.book(garage, BookingCreate(service="mobile-repair", starts_at=GARAGE_TUE_10, intake=REPAIR,
                                              customer=CustomerIn(name="Ada", phone="+12125550100")))
    assert isinstance(made, Booked) and made.booking.status == "pending_payment", made
    with engine.connect() as conn:
        payment = conn.execute(text("select id from payments where booking_id = :i"), {"i": made.booking.id}).scalar_one()
    ref = f"cs_{uuid.uuid4().hex[:8]}"
    service.record_checkout(garage, payment, "local", ref, "https://pay.example/x")
    assert service.settle_deposit("local", ref, 2500, "USD", {"event": "paid"}).outcome == "paid"

    payer_engine = engine_for(database_url, pool_size=1)
    go, read, cancelled = threading.Event(), threading.Event(), threading.Event()
    pause_after(payer_engine, "FROM payments", go, read)
    payer = BookingService(build_session_factory(payer_engine), clock=lambda: NOW)
    answers: dict[str, Any] = {}

    def webhook_again() -> None:
        try:
            answers["settle"] = payer.settle_deposit("local", ref, 2500, "USD", {"event": "paid"})
        except Exception as error:  # what the provider would be answered: a 503 to retry
            answers["settle"] = error

    def cancelling() -> None:
        try:
            answers["cancel"] = service.cancel(garage, BookingChange(code=made.booking.code, source="staff_api"))
        except Exception as error:
            answers["cancel"] = error
        cancelled.set()

    try:
        held_then(webhook_again, cancelling, read, cancelled, go, engine)
    finally:
        payer_engine.dispose()

    assert isinstance(answers["cancel"], Changed), answers
    assert getattr(answers["settle"], "outcome", None) == "already_paid", answers
    with engine.connect() as conn:
        status = conn.execute(text("select status from payments where id = :p"), {"p": payment}).scalar_one()
    assert status == "refund_due"  # cancelled in time: the deposit is due back
    assert_invariant(engine, garage)
    assert broken_checks(service) == before


def test_a_deposit_kept_by_a_late_cancel_stays_kept_when_the_paid_webhook_comes_again(
        engine, make_business, service):
    # The cancel came in the cutoff and the customer accepted to lose the deposit; the provider's "paid" then came
    # again (a retry, or one racing the cancel and answered second). It was taken for a first payment of a booking
    # since cancelled, and the kept deposit became due back to the customer.
    config = example("garage")
    config["business"]["cancellation"] = {"cutoff_hours": 48, "keep_deposit": True}
    garage = make_business(config)
    made = service.book(garage, BookingCreate(service="mobile-repair", starts_at=GARAGE_TUE_10, intake=REPAIR,
                                              customer=CustomerIn(name="Ada", phone="+12125550100")))
    assert isinstance(made, Booked), made
    with engine.connect() as conn:
        payment = conn.execute(text("select id from payments where booking_id = :i"), {"i": made.booking.id}).scalar_one()
    ref = f"cs_{uuid.uuid4().hex[:8]}"
    service.record_checkout(garage, payment, "local", ref, "https://pay.example/x")
    assert service.settle_deposit("local", ref, 2500, "USD", {"event": "paid"}).outcome == "paid"
    late = service.cancel(garage, BookingChange(code=made.booking.code, source="mcp", late_terms="accept"))
    assert isinstance(late, Changed), late

    again = service.settle_deposit("local", ref, 2500, "USD", {"event": "paid"})
    assert again.outcome == "already_paid", again
    with engine.connect() as conn:
        status = conn.execute(text("select status from payments where id = :p"), {"p": payment}).scalar_one()
    assert status == "kept"


# --- one booking moved twice and cancelled at once ---------------------------------------------------------------


def test_two_moves_and_a_cancel_of_one_booking_at_once_leave_it_as_the_last_answer_says(
        engine, database_url, make_business, service):
    before = broken_checks(service)
    afternoon = MON_10 + timedelta(hours=4)
    for round_ in range(2):
        clinic = make_business("clinic")
        code = book(service, clinic, afternoon, 1).booking.code
        move = [dict(op="reschedule", business=clinic, service="consultation", code=code,
                     starts_at=(afternoon + timedelta(hours=h)).isoformat()) for h in (1, 2)]
        jobs = [[move[0]], [move[1]], [dict(op="cancel", business=clinic, service="consultation", code=code)]]
        first, second, cancel = flat(race(engine, database_url, jobs))
        assert cancel["type"] == "Changed", cancel
        for moved in (first, second):  # moved before the cancel, or refused after it
            assert moved["type"] == "Booked" or (moved["type"], moved.get("code")) == (
                "Rejected", "booking_not_active"), moved
        with engine.connect() as conn:
            booking_id, status, starts_at = conn.execute(text(
                "select id, status, starts_at from bookings where business_id = :b and code = :c"),
                {"b": clinic, "c": code}).one()
            actions = conn.execute(text("select action, after ->> 'starts_at' from booking_history "
                                        "where booking_id = :i order by id"), {"i": booking_id}).all()
            claims = conn.execute(text("select count(*) from claims where booking_id = :i and active"),
                                  {"i": booking_id}).scalar_one()
            reminders = conn.execute(text("select count(*) from notifications where booking_id = :i and "
                                          "kind = 'reminder' and status = 'pending'"), {"i": booking_id}).scalar_one()
        moves = [o for o in (first, second) if o["type"] == "Booked"]
        assert [a for a, _ in actions] == ["created"] + ["rescheduled"] * len(moves) + ["cancelled"], actions
        assert sorted(after for a, after in actions if a == "rescheduled") == sorted(
            datetime.fromisoformat(o["starts_at"]).isoformat() for o in moves)
        assert (status, claims, reminders) == ("cancelled", 0, 0), (round_, status, claims, reminders)
        if moves:  # the last move is where it was when cancelled
            assert starts_at == datetime.fromisoformat(actions[-2][1])
        assert_invariant(engine, clinic)
    assert broken_checks(service) == before


# --- parties in a pool of roomy members, racing bookings of one of those members --------------------------------

STUDIO_TUE_18 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
STUDIO = {
    "business": {"slug": "studio", "name": "Studio", "timezone": "Europe/London", "country": "GB"},
    "hours": {d: ["09:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    "resources": [
        {"key": "big-room", "name": "Big room", "kind": "room", "capacity": 3},
        {"key": "small-room", "name": "Small room", "kind": "room", "capacity": 2},
        {"key": "cat", "name": "Cat", "kind": "staff"},
    ],
    "services": [
        {"key": "workshop", "name": "Workshop", "duration": 60, "step": 60, "min_notice": 0,
         "requires": [{"label": "room", "one_of": ["big-room", "small-room"]}],
         "party": {"max": 3, "per_person": ["room"]}},
        {"key": "private", "name": "Private lesson", "duration": 60, "step": 60, "min_notice": 0,
         "requires": [{"label": "room", "one_of": ["big-room"]}, {"label": "teacher", "one_of": ["cat"]}]},
    ],
}


def test_parties_racing_for_places_in_a_pool_of_roomy_rooms_never_oversell_and_losers_did_not_fit(
        engine, database_url, make_business, service):
    before = broken_checks(service)
    studio = make_business(STUDIO)
    parties = [3, 2, 1, 2, 3, 1, 2, 1]
    jobs = [[book_job(studio, "workshop", STUDIO_TUE_18, n, party_size=p)] for n, p in enumerate(parties)]
    jobs += [[book_job(studio, "private", STUDIO_TUE_18, 20 + n)] for n in range(2)]
    outcomes = flat(race(engine, database_url, jobs))

    assert {o["type"] for o in outcomes} <= {"Booked", "SlotTaken"}, outcomes
    won = [o for o in outcomes if o["type"] == "Booked"]
    assert sum(o["job"].get("party_size", 1) for o in won) <= 5 and len([o for o in won if o["service"] == "private"]) <= 1
    for lost in (o for o in outcomes if o["type"] == "SlotTaken"):  # places only ever went: still no room for it
        party = lost["job"].get("party_size", 1)
        found = service.find_slots(studio, SlotQuery(service=lost["service"], starts_from=STUDIO_TUE_18,
                                                     until=STUDIO_TUE_18 + timedelta(minutes=1), party_size=party))
        assert not found.slots, (lost, found.slots)
    assert_invariant(engine, studio)
    assert broken_checks(service) == before


# --- a series racing single bookings of its occurrences ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["all_or_none", "skip_taken"])
def test_a_series_racing_single_bookings_of_its_occurrences_reports_each_truly(
        engine, database_url, make_business, service, mode):
    before = broken_checks(service)
    clinic = make_business("clinic")  # before 10 on Mondays only Dr Patel works: one booking a start
    starts = [MON_9 + WEEK * i for i in range(4)]
    jobs = [[dict(op="series", business=clinic, service="consultation", starts_at=MON_9.isoformat(), mode=mode,
                  count=4, phone=phone(50))]]
    jobs += [[book_job(clinic, "consultation", starts[i], n)] for n, i in enumerate((1, 2, 2, 3))]
    series, *singles = flat(race(engine, database_url, jobs))

    assert series["type"] == "SeriesBooked", series
    won = {datetime.fromisoformat(o["starts_at"]) for o in singles if o["type"] == "Booked"}
    assert all(o["type"] in ("Booked", "SlotTaken") for o in singles), singles
    outcomes = dict(zip(starts, series["outcomes"], strict=True))
    for start, outcome in outcomes.items():  # "taken" only where a single booking won, "booked" where none did
        assert outcome in ("booked", "taken", "not_booked"), outcomes
        if outcome != "not_booked":  # a time the series let go when it undid itself may have gone to a single after
            assert (outcome == "taken") == (start in won), (outcomes, won)
    with engine.connect() as conn:
        kept = conn.execute(text("select count(*) from bookings where business_id = :b and series_id is not null"),
                            {"b": clinic}).scalar_one()
        series_rows = conn.execute(text("select count(*) from booking_series where business_id = :b"),
                                   {"b": clinic}).scalar_one()
    booked = [o for o in series["outcomes"] if o == "booked"]
    if mode == "all_or_none" and won:
        assert (series["complete"], kept, series_rows) == (False, 0, 0)  # nothing of it stays
        assert set(series["outcomes"]) <= {"taken", "not_booked"}
    else:
        assert (kept, series_rows) == (len(booked), 1 if booked else 0)
        assert series["complete"] == (len(booked) == 4)
    assert_invariant(engine, clinic)
    assert broken_checks(service) == before


# --- a series cancelled while its occurrences are moved ----------------------------------------------------------


def at_once(calls: dict[str, Any]) -> dict[str, Any]:
    """Run each call in its own thread (each its own connection), released together; errors are answers too."""
    barrier, answers = threading.Barrier(len(calls)), {}

    def run(name: str, call: Any) -> None:
        barrier.wait()
        try:
            answers[name] = call()
        except Exception as error:
            answers[name] = error

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def test_a_series_cancelled_while_its_occurrences_are_moved_leaves_each_whole(engine, make_business, service):
    before = broken_checks(service)
    for _ in range(2):
        clinic = make_business("clinic")
        made = service.book_series(clinic, SeriesCreate(
            service="consultation", starts_at=MON_10 + timedelta(hours=2), mode="all_or_none",
            repeat=SeriesRule(count=4), customer=CustomerIn(name="Series", phone=phone(60))))
        assert isinstance(made, SeriesBooked) and made.series.complete, made
        codes = [o.booking.code for o in made.series.occurrences if o.booking]
        answers = at_once({
            "cancel_from_second": lambda: service.cancel_series(clinic, BookingChange(code=codes[1])),
            "move_from_first": lambda: service.move_series(clinic, BookingReschedule(
                code=codes[0], starts_at=MON_10 + timedelta(hours=3))),
            "move_third": lambda: service.reschedule(clinic, BookingReschedule(
                code=codes[2], starts_at=MON_10 + WEEK * 2 + timedelta(hours=5))),
            "cancel_fourth": lambda: service.cancel(clinic, BookingChange(code=codes[3])),
        })
        assert not [a for a in answers.values() if isinstance(a, Exception)], answers
        assert isinstance(answers["cancel_from_second"], SeriesChanged), answers
        assert_invariant(engine, clinic)
        with engine.connect() as conn:
            statuses = dict(conn.execute(text("select code, status from bookings where business_id = :b"),
                                         {"b": clinic}).all())
        assert [statuses[c] for c in codes[1:]] == ["cancelled"] * 3, (statuses, answers)
    assert broken_checks(service) == before


# --- a waiting customer's yes while they are erased --------------------------------------------------------------


def test_a_yes_to_an_offer_whose_customer_is_erased_meanwhile_books_nothing(
        engine, session_factory, make_business, service, monkeypatch):
    # The yes reads its offer (open) and lets it go; the erasure withdraws the wish, ends the offer and empties the
    # customer; the yes then booked with the name and number it read: a new customer made of the erased one's data,
    # a live booking, and the offer the erasure ended marked accepted. The erasure now takes the offer's booking key
    # first, so the yes books nothing (and a yes already booking would make the erasure wait, then refuse).
    from nextslot.core.waitlist import answers
    from tests.reminders.test_waitlist_offers import NINE, offered_nine

    before = broken_checks(service)
    clinic, entry, offer = offered_nine(service, make_business, session_factory, "+44791112450", "Wanda")
    go, reached = threading.Event(), threading.Event()
    real_book = answers.book

    def book_after_erasure(*args: Any, **kwargs: Any) -> Any:
        reached.set()
        go.wait(60)
        return real_book(*args, **kwargs)

    monkeypatch.setattr(answers, "book", book_after_erasure)
    said: dict[str, Any] = {}
    yes = threading.Thread(target=lambda: said.update(yes=service.accept_offer(offer.id, "sms")))
    yes.start()
    try:
        assert reached.wait(30)
        gone = erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, NOW, phone="+447911124501")
        assert isinstance(gone, Erased), gone
    finally:
        go.set()
        yes.join(60)
    with engine.connect() as conn:
        live = conn.execute(text("select count(*) from bookings where business_id = :b and starts_at = :t and "
                                 "status = 'booked'"), {"b": clinic, "t": NINE}).scalar_one()
        again = conn.execute(text("select count(*) from customers where business_id = :b and phone = :p"),
                             {"b": clinic, "p": "+447911124501"}).scalar_one()
    assert (type(said["yes"]).__name__, live, again) == ("SlotTaken", 0, 0), said
    assert broken_checks(service) == before


def test_an_erasure_while_a_yes_to_the_customers_offer_is_booking_waits_and_is_refused(
        engine, session_factory, make_business, service, monkeypatch):
    """The other order: the yes has taken its offer's key and is booking; the erasure waits for that key, then sees
    the booking and says the customer has an upcoming booking (nothing erased, nothing booked for a ghost)."""
    from nextslot.storage.idempotency import IdempotencyRepository
    from tests.reminders.test_waitlist_offers import offered_nine

    before = broken_checks(service)
    clinic, entry, offer = offered_nine(service, make_business, session_factory, "+44791112450", "Wanda")
    go, read, erased = threading.Event(), threading.Event(), threading.Event()
    real_take = IdempotencyRepository.take

    def take_then_pause(self: IdempotencyRepository, *args: Any) -> Any:  # only the yes pauses, with its key taken
        taken = real_take(self, *args)
        if threading.current_thread().name == "yes":
            read.set()
            go.wait(60)
        return taken

    monkeypatch.setattr(IdempotencyRepository, "take", take_then_pause)
    said: dict[str, Any] = {}

    def yes() -> None:
        threading.current_thread().name = "yes"
        said["yes"] = service.accept_offer(offer.id, "sms")

    def erasure() -> None:
        said["erasure"] = erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, NOW, phone="+447911124501")
        erased.set()

    held_then(yes, erasure, read, erased, go, engine)
    assert isinstance(said["yes"], Booked), said
    assert isinstance(said["erasure"], Rejected) and said["erasure"].code == "upcoming_bookings", said
    assert broken_checks(service) == before
