"""The public ways in's day budgets per sender (server/public_writes.py) with two server processes on one database.
They were counted in each process's memory: an address or a calling number past its day at one process booked,
waitlisted and held on at the next, so N processes allowed N times each budget. Now they are counted in PostgreSQL
(core/booking/sender_budgets.py), shared by every process: only what was made counts, a retry of what was made
still passes, another sender is unaffected, and a day that is over counts for nothing."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx2 as httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from evals.loopback import LiveServer
from nextslot.core.booking.sender_budgets import SenderFull, SenderPlace
from nextslot.core.service import BookingService
from nextslot.reminders.scheduler import build_scheduler
from nextslot.runtime import public_caps
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for
from nextslot.storage.tables import Booking, Hold, SenderBudget, WaitlistEntry
from tests.reminders.test_scheduler_outages import Idle
from tests.security.test_round13_public_abuse import (
    CALLER,
    OTHER_CALLER,
    THURSDAY,
    TUESDAY,
    made_up,
    page_booking,
    page_waitlist,
    problem_shown,
    public_settings,
    rows,
    voice_booking,
)
from tests.security.test_round13_public_abuse import clinic as clinic  # noqa: F401 - a fixture, used here
from tests.server.test_voice_webhooks import post_retell, retell_body
from tests.storage.test_reads_first import in_transaction
from tests.tools.test_voice_contact_lookup import ask


@pytest.fixture
def other_process(database_url: str) -> Iterator[object]:
    """Another server process's engine and sessions on the same database (its own pool, its own connections)."""
    engine = engine_for(database_url)
    yield build_session_factory(engine)
    engine.dispose()


def two_processes(session_factory, other_process, clock, settings: Settings) -> tuple[object, object]:
    """Two apps as two `nextslot serve` processes build them from the same settings: each its own service, engine,
    and in-memory rate limits."""
    return tuple(create_app(settings, service=BookingService(factory, clock=clock, public_caps=public_caps(settings)))
                 for factory in (session_factory, other_process))


def counted(session_factory, business_id: int) -> list[tuple[str, object, int]]:
    """The business's counts: (kind, day, made) each."""
    with session_factory() as s:
        return [tuple(r) for r in s.execute(select(SenderBudget.kind, SenderBudget.day, SenderBudget.made).where(
            SenderBudget.business_id == business_id).order_by(SenderBudget.kind, SenderBudget.day))]


def test_an_address_past_its_day_at_one_process_is_refused_at_the_other_and_its_retry_still_passes(
        session_factory, other_process, clock, clinic):
    """The page from one address: two bookings at one process (one of them to be submitted again), then at the
    other process the address is past its day for bookings and waitlist places alike; the double submit of the
    booking it made still gets its confirmation there; another address still books there."""
    business, slug = clinic
    one, other = two_processes(session_factory, other_process, clock, public_settings(public_bookings_per_day=2))
    first = TestClient(one, follow_redirects=False)
    second = TestClient(other, follow_redirects=False)
    assert page_booking(first, slug, TUESDAY[0], made_up()).status_code == 303
    assert page_booking(first, slug, TUESDAY[0], made_up()).status_code == 409  # taken: costs nothing
    again = made_up()
    assert page_booking(first, slug, TUESDAY[1], again, key="form-sent-twice-001").status_code == 303

    refused = page_booking(second, slug, TUESDAY[2], made_up())
    assert refused.status_code == 429, refused.text
    assert ("2 bookings and waitlist places have been made from this connection here today"
            in problem_shown(refused.text)), refused.text
    assert page_waitlist(second, slug, made_up()).status_code == 429
    retried = page_booking(second, slug, TUESDAY[1], again, key="form-sent-twice-001")
    assert retried.status_code == 303, retried.text
    elsewhere = TestClient(other, follow_redirects=False, client=("127.0.0.2", 50000))
    assert page_booking(elsewhere, slug, TUESDAY[2], made_up()).status_code == 303
    assert rows(session_factory, Booking, business) == 3
    assert rows(session_factory, WaitlistEntry, business) == 0


def test_a_caller_past_its_day_on_one_process_is_refused_on_the_other_for_bookings_and_holds(
        session_factory, other_process, clock, clinic):
    """The voice lines: a calling number books and waitlists through one process, then is refused through the
    other, where Retell's resend of a call that booked still gets its booking; its holds likewise; another calling
    number books and holds on."""
    business, slug = clinic
    one, other = (TestClient(app) for app in two_processes(session_factory, other_process, clock,
                                                           public_settings(public_bookings_per_day=2)))
    retried = {"service": "consultation", "starts_at": TUESDAY[0], "customer_name": "Made Up", "phone": made_up()}
    first = post_retell(one, slug, retell_body("book_appointment", retried, call_id="call_shared_1", number=CALLER))
    assert first.json()["outcome"] == "booked", first.text
    waiting = ask(one, slug, "vapi", "join_waitlist", {
        "service": "consultation", "customer_name": "Made Up", "phone": made_up(), "earliest_date": "2026-11-30",
        "latest_date": "2026-12-04"}, CALLER)
    assert waiting["outcome"] == "waitlisted", waiting

    refused = voice_booking(other, slug, "elevenlabs", TUESDAY[1], made_up(), CALLER)
    assert refused["error"]["code"] == "too_many_bookings", refused
    again = post_retell(other, slug, retell_body("book_appointment", retried, call_id="call_shared_1", number=CALLER))
    assert again.json()["outcome"] == "booked" and again.json()["replayed"], again.text
    assert voice_booking(other, slug, "vapi", TUESDAY[1], made_up(), OTHER_CALLER)["outcome"] == "booked"

    held = [ask(app, slug, "vapi", "hold_slot", {"service": "consultation", "starts_at": at}, CALLER)
            for app, at in ((one, TUESDAY[2]), (one, TUESDAY[3]), (other, TUESDAY[4]))]
    assert [h.get("outcome") or h["error"]["code"] for h in held] == ["held", "held", "too_many_holds"]
    assert ask(other, slug, "retell", "hold_slot", {"service": "consultation", "starts_at": TUESDAY[4]},
               OTHER_CALLER)["outcome"] == "held"
    assert rows(session_factory, Booking, business) == 2
    assert rows(session_factory, Hold, business, Hold.status == "active") == 3


def test_a_day_that_is_over_counts_for_nothing_and_the_scheduler_deletes_it(
        session_factory, other_process, clock, clinic, make_business):
    """Past its day at one process and refused at the other; the next UTC day it books again (once). The
    scheduler's hourly job deletes the days before today and keeps today's, so the counts do not grow with every
    sender ever seen."""
    business, slug = clinic
    one, other = (TestClient(app, follow_redirects=False) for app in two_processes(
        session_factory, other_process, clock, public_settings(public_bookings_per_day=1)))
    assert page_booking(one, slug, TUESDAY[0], made_up()).status_code == 303
    assert page_booking(other, slug, TUESDAY[1], made_up()).status_code == 429
    assert page_booking(one, slug, TUESDAY[1], made_up()).status_code == 429

    clock.now += timedelta(days=1)  # Tuesday 08:00 UTC: a new day
    assert page_booking(other, slug, THURSDAY[0], made_up()).status_code == 303
    assert page_booking(one, slug, THURSDAY[1], made_up()).status_code == 429
    monday, tuesday = clock.now.date() - timedelta(days=1), clock.now.date()
    assert counted(session_factory, business) == [("bookings", monday, 1), ("bookings", tuesday, 1)]

    sweep = build_scheduler(Settings(), BookingService(session_factory, clock=clock), Idle()).get_job(
        "sender_budgets")
    assert sweep.func(*sweep.args) >= 1
    assert counted(session_factory, business) == [("bookings", tuesday, 1)]


def test_two_writes_of_one_sender_at_once_at_two_processes_take_the_last_place_once(
        session_factory, other_process, clock, clinic):
    """Six page bookings for six free times from one address, three at each process, sent at once with one place
    left: one books, five are told the address's day is made (checked before and counted after, each process let
    at least one through)."""
    business, slug = clinic
    first, second = two_processes(session_factory, other_process, clock, public_settings(public_bookings_per_day=1))
    start = threading.Barrier(6)
    with LiveServer(first) as one, LiveServer(second) as other:

        def book(n: int) -> int:
            with httpx.Client(base_url=(one, other)[n % 2].url) as http:
                start.wait()
                return page_booking(http, slug, TUESDAY[n], made_up()).status_code

        with ThreadPoolExecutor(6) as pool:
            answers = sorted(pool.map(book, range(6)))
    assert answers == [303] + [429] * 5, answers
    assert rows(session_factory, Booking, business) == 1


def test_a_write_in_flight_holds_the_last_place_and_gives_it_back_if_it_made_nothing(
        session_factory, other_process, engine, clock, clinic):
    """One statement takes a place and one gives it back, neither in a transaction; a place taken at one process
    is seen at the other at once; a sender's full day does not stop another sender."""
    business, _ = clinic
    caps = public_caps(public_settings(public_bookings_per_day=1))
    here, there = (BookingService(factory, clock=clock, public_caps=caps)
                   for factory in (session_factory, other_process))
    with in_transaction(engine) as sent:
        place = here.take_sender_place(business, "bookings", "address:203.0.113.9")
    assert isinstance(place, SenderPlace) and len(sent) == 1 and not sent[0][1], sent
    assert there.take_sender_place(business, "bookings", "address:203.0.113.9") == SenderFull(1)
    assert isinstance(there.take_sender_place(business, "bookings", "address:203.0.113.10"), SenderPlace)
    assert isinstance(there.take_sender_place(business, "holds", "address:203.0.113.9"), SenderPlace)
    with in_transaction(engine) as sent:
        here.give_back_sender_place(place)
    assert len(sent) == 1 and not sent[0][1], sent
    assert isinstance(there.take_sender_place(business, "bookings", "address:203.0.113.9"), SenderPlace)
    with session_factory() as s:
        kept = s.scalar(select(func.count()).select_from(SenderBudget).where(
            SenderBudget.business_id == business, SenderBudget.sender.contains("203.0.113")))
    assert kept == 0  # a digest: no address kept
