"""Webhook events a receiver can put in order: each endpoint's events are numbered 1, 2, 3 ... (`sequence`) in the
order they commit, none skipped, and each carries its booking's change count (`data.booking_version`). A delivery
retried after a newer event reaches a real receiver on loopback late, and the receiver tells: by the sequence that it
filled a gap, by the booking version that its booking state is stale. Real PostgreSQL and the booking service."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nextslot.calendars.feeds import booking_ics
from nextslot.core import events
from nextslot.core.planning import business_info
from nextslot.core.results import Booked
from nextslot.core.views import booking_view
from nextslot.schemas.commands import BookingChange, BookingReschedule
from nextslot.schemas.events import Event
from nextslot.storage.tables import Booking, Business, WebhookDelivery
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import LiveServer
from tests.webhooks.test_delivery import TUESDAY_9, book, register, sender, verify


class Receiver:
    """A business's endpoint that records every attempt, answered or not; `failures` are the statuses its next
    answers give (then 204)."""

    def __init__(self) -> None:
        self.attempts: list[tuple[dict[str, str], bytes, int]] = []
        self.failures: list[int] = []
        self.lock = threading.Lock()
        self.server = LiveServer(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            status = self.failures.pop(0) if self.failures else 204
            self.attempts.append((dict(request.headers), body, status))
        return Response(status_code=status)

    def answered(self, slug: str) -> list[tuple[dict[str, str], bytes]]:
        """What this business's events brought, answered 2xx, in arrival order (another test's leftovers may reach
        a port used again: they name another business)."""
        return [(h, b) for h, b, status in self.attempts if status < 300 and json.loads(b).get("business") == slug]

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"


@pytest.fixture
def receiver():
    r = Receiver()
    with r.server:
        yield r


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


def slug_of(session_factory, business: int) -> str:
    with session_factory() as s:
        return s.get_one(Business, business).slug


class Integrator:
    """The receiver's side as the README tells it: drop a repeat by event id, note the sequence numbers not yet
    seen, and apply an event's booking only when its booking_version is at least the one already applied."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.highest = 0
        self.missing: set[int] = set()
        self.bookings: dict[int, tuple[int, dict[str, Any]]] = {}  # id: (booking_version, booking)
        self.late: list[int] = []  # sequence numbers that arrived after a higher one
        self.stale: list[str] = []  # events whose booking state was older than the one applied

    def take(self, body: bytes) -> None:
        event = json.loads(body)
        if event["id"] in self.seen:
            return
        self.seen.add(event["id"])
        sequence = event["sequence"]
        if sequence < self.highest:
            self.late.append(sequence)
            self.missing.discard(sequence)
        else:
            self.missing |= set(range(self.highest + 1, sequence))
            self.highest = sequence
        booking, version = event["data"]["booking"], event["data"]["booking_version"]
        held = self.bookings.get(booking["id"])
        if held is not None and version < held[0]:
            self.stale.append(event["type"])
            return
        self.bookings[booking["id"]] = (version, booking)


def test_a_delivery_retried_after_a_newer_event_arrives_late_and_the_receiver_tells_by_sequence_and_version(
        service, clinic, session_factory, clock, receiver):
    endpoint = register(session_factory, clinic, receiver.url)
    code = book(service, clinic).booking.code
    receiver.failures = [500]  # booking.created fails; retried in 30 s
    hooks = sender(session_factory, clock)
    hooks.send_due()
    moved_to = TUESDAY_9 + timedelta(hours=2)
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=moved_to))
    hooks.send_due()  # booking.rescheduled goes at once, the created event waits for its retry
    clock.now += timedelta(seconds=30)
    hooks.send_due()

    slug = slug_of(session_factory, clinic)
    answered = receiver.answered(slug)
    arrived = [Event.model_validate_json(body) for _, body in answered]
    assert [(e.type, e.sequence, e.data.booking_version) for e in arrived] == [
        ("booking.rescheduled", 2, 2), ("booking.created", 1, 1)]
    first_try = next(body for _, body, status in receiver.attempts if status == 500)
    assert answered[1][1] == first_try  # the retry is the same bytes, its number included: still signed
    assert all(verify(endpoint.secret, h, body, clock.now.timestamp()) for h, body in answered)

    receiver_side = Integrator()
    receiver_side.take(answered[0][1])
    assert receiver_side.missing == {1}  # seen 2 first: 1 is still coming (a retry) or was given up on
    receiver_side.take(answered[1][1])
    assert receiver_side.late == [1] and receiver_side.missing == set()
    assert receiver_side.stale == ["booking.created"]  # its older state is not applied over the move
    [(version, booking)] = receiver_side.bookings.values()
    assert version == 2 and datetime.fromisoformat(booking["starts_at"]["utc"]) == moved_to
    with session_factory() as s:  # the version counts the changes the booking's .ics SEQUENCE counts
        row = s.scalars(select(Booking).where(Booking.business_id == clinic, Booking.code == code)).one()
        assert b"SEQUENCE:1" in booking_ics(s, s.get_one(Business, clinic), row, clock())


def test_each_endpoint_numbers_its_own_events_without_gaps_whatever_it_subscribed_to(
        service, clinic, session_factory, clock, receiver):
    register(session_factory, clinic, receiver.url)
    cancellations = Receiver()
    with cancellations.server:
        register(session_factory, clinic, cancellations.url, ["booking.cancelled"])
        first = book(service, clinic).booking.code
        book(service, clinic, TUESDAY_9 + timedelta(hours=1), phone="+447911123491")
        service.confirm(clinic, BookingChange(code=first))
        service.cancel(clinic, BookingChange(code=first))
        sender(session_factory, clock).send_due()
        slug = slug_of(session_factory, clinic)
        everything = sorted((json.loads(b) for _, b in receiver.answered(slug)), key=lambda e: e["sequence"])
        only_cancels = [json.loads(b) for _, b in cancellations.answered(slug)]
    assert [(e["sequence"], e["type"]) for e in everything] == [
        (1, "booking.created"), (2, "booking.created"), (3, "booking.confirmed"), (4, "booking.cancelled")]
    assert [(e["sequence"], e["type"]) for e in only_cancels] == [(1, "booking.cancelled")]
    assert only_cancels[0]["id"] == everything[3]["id"]  # one event, numbered by each endpoint it goes to
    assert [e["data"]["booking_version"] for e in everything] == [1, 1, 2, 3]


def bodies(session_factory, business: int) -> list[dict[str, Any]]:
    with session_factory() as s:
        return [json.loads(d.body) for d in s.scalars(select(WebhookDelivery).where(
            WebhookDelivery.business_id == business).order_by(WebhookDelivery.id))]


def emit_for(uow: SqlAlchemyUnitOfWork, business: int, code: str, clock) -> None:
    """An event about the booking, written in the unit of work's open transaction."""
    booking = uow.session.scalars(select(Booking).where(Booking.business_id == business, Booking.code == code)).one()
    view = booking_view(uow, booking, business_info(uow, business))
    events.emit(uow, business, "booking.confirmed", view, clock())


def test_numbers_follow_the_order_transactions_commit_in_not_the_order_they_wrote_their_events(
        service, clinic, session_factory, clock, receiver):
    """The first to write its event commits last: it gets the higher number. A receiver that has seen n + 1 knows
    n was already committed, so it is on its way (or was given up on), never still to be written."""
    register(session_factory, clinic, receiver.url)
    code = book(service, clinic).booking.code  # 1
    earlier, later = SqlAlchemyUnitOfWork(session_factory), SqlAlchemyUnitOfWork(session_factory)
    with earlier:
        emit_for(earlier, clinic, code, clock)
        earlier.session.flush()  # its delivery row is written before the other transaction's
        with later:
            emit_for(later, clinic, code, clock)
            later.commit()
        earlier.commit()
    numbered = {d["id"]: d["sequence"] for d in bodies(session_factory, clinic)}
    with session_factory() as s:
        written = [d.event_id for d in s.scalars(select(WebhookDelivery).where(
            WebhookDelivery.business_id == clinic).order_by(WebhookDelivery.id))]
    assert [numbered[e] for e in written] == [1, 3, 2]  # the row written second was committed last


def test_an_event_rolled_back_with_its_savepoint_or_its_transaction_takes_no_number(
        service, clinic, session_factory, clock, receiver):
    register(session_factory, clinic, receiver.url)
    code = book(service, clinic).booking.code  # 1
    uow = SqlAlchemyUnitOfWork(session_factory)
    with uow:
        emit_for(uow, clinic, code, clock)  # left without a commit: rolled back
    with uow:
        savepoint = uow.session.begin_nested()
        emit_for(uow, clinic, code, clock)
        uow.session.flush()
        savepoint.rollback()  # as `in_savepoint` does for an event that could not be built
        kept = uow.session.begin_nested()
        emit_for(uow, clinic, code, clock)
        kept.commit()
        uow.commit()
    assert [d["sequence"] for d in bodies(session_factory, clinic)] == [1, 2]
    sender(session_factory, clock).send_due()
    assert sorted(json.loads(b)["sequence"] for _, b in receiver.answered(slug_of(session_factory, clinic))) == [1, 2]


def test_bookings_made_at_once_get_every_number_once(service, clinic, session_factory, clock, receiver):
    register(session_factory, clinic, receiver.url)
    starts = [TUESDAY_9 + timedelta(hours=h) for h in range(4)]
    results: list[Any] = []
    gate = threading.Barrier(len(starts))

    def book_one(i: int) -> None:
        gate.wait()
        results.append(book(service, clinic, starts[i], phone=f"+44791112340{i}"))

    threads = [threading.Thread(target=book_one, args=(i,)) for i in range(len(starts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, Booked) for r in results)
    assert sorted(d["sequence"] for d in bodies(session_factory, clinic)) == [1, 2, 3, 4]
