"""Outgoing webhooks to a real receiver on loopback: signed, retried on 500s and timeouts, one delivery per
event with two sender processes, nothing for a rolled-back change, endpoints disabled after a day of failures."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nextslot.core.results import Rejected
from nextslot.core.webhook_endpoints import add_endpoint
from nextslot.reminders.webhooks import WebhookSender
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn
from nextslot.schemas.events import Event, event_json_schema
from nextslot.storage.tables import WebhookDelivery, WebhookEndpoint
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import LiveServer

TUESDAY_9 = datetime(2026, 11, 24, 9, tzinfo=UTC)


class Receiver:
    """A business's endpoint: records what arrives; can answer 500s or be slow for the next requests."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failures: list[int | float] = []  # an int: answer that status; a float: sleep that long first
        self.lock = threading.Lock()
        self.server = LiveServer(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, float):
            await asyncio.sleep(failure)
        elif failure:
            return Response(status_code=failure)
        with self.lock:
            self.received.append((dict(request.headers), body))
        return Response(status_code=204)


@pytest.fixture
def receiver():
    r = Receiver()
    with r.server:
        yield r


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


def register(session_factory, business: int, url: str, events: list[str] | None = None):
    result = add_endpoint(SqlAlchemyUnitOfWork(session_factory), business, url, events)
    assert not isinstance(result, Rejected), result
    return result


def sender(session_factory, clock, timeout: float = 5.0) -> WebhookSender:
    return WebhookSender(session_factory, httpx2.Client(timeout=timeout), clock=clock)


def book(service, business: int, start: datetime = TUESDAY_9, phone: str = "+447911123490"):
    return service.book(business, BookingCreate(service="consultation", starts_at=start,
                                                customer=CustomerIn(name="Ann Lee", phone=phone)))


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """The receiver's check, as the README documents it."""
    parts = dict(p.split("=", 1) for p in headers["nextslot-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(now - int(parts["t"])) < 300


def test_every_booking_change_is_sent_signed_in_order_with_a_versioned_payload(
        service, clinic, session_factory, clock, receiver):
    endpoint = register(session_factory, clinic, f"{receiver.server.url}/hook")
    code = book(service, clinic).booking.code
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=TUESDAY_9 + timedelta(hours=1)))
    service.confirm(clinic, BookingChange(code=code))
    service.cancel(clinic, BookingChange(code=code))
    assert sender(session_factory, clock).send_due() == 4
    events = [Event.model_validate_json(body) for _, body in receiver.received]
    assert [e.type for e in events] == ["booking.created", "booking.rescheduled", "booking.confirmed",
                                        "booking.cancelled"]
    assert events[1].data.previous_starts_at == TUESDAY_9 and events[1].data.booking.code == code
    assert all(verify(endpoint.secret, h, body, clock.now.timestamp()) for h, body in receiver.received)
    assert not verify("whsec_wrong", *receiver.received[0], clock.now.timestamp())
    assert receiver.received[0][0]["nextslot-event-id"] == events[0].id and events[0].version == 1
    assert "data" in event_json_schema()["properties"]


def test_endpoints_get_only_the_event_types_they_asked_for(service, clinic, session_factory, clock, receiver):
    register(session_factory, clinic, f"{receiver.server.url}/hook", ["booking.cancelled"])
    code = book(service, clinic).booking.code
    service.cancel(clinic, BookingChange(code=code))
    sender(session_factory, clock).send_due()
    assert [json.loads(b)["type"] for _, b in receiver.received] == ["booking.cancelled"]
    assert isinstance(add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, "ftp://x"), Rejected)
    assert add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, "https://x.example/h",
                        ["booking.teleported"]).code == "unknown_event_type"


def test_a_lost_race_emits_nothing(service, clinic, session_factory, clock, receiver):
    register(session_factory, clinic, f"{receiver.server.url}/hook")
    # Dr Okafor is off on Tuesdays: the first caller gets Dr Patel, the other two lose the race
    results = [book(service, clinic, TUESDAY_9 + timedelta(hours=2), phone=f"+44791112349{i}") for i in range(3)]
    assert [type(r).__name__ for r in results] == ["Booked", "SlotTaken", "SlotTaken"]
    sender(session_factory, clock).send_due()
    assert [json.loads(b)["data"]["booking"]["code"] for _, b in receiver.received] == [results[0].booking.code]


def test_500s_and_timeouts_are_retried_with_backoff_and_every_attempt_logged(
        service, clinic, session_factory, clock, receiver):
    register(session_factory, clinic, f"{receiver.server.url}/hook")
    book(service, clinic)
    receiver.failures = [500, 2.0]  # a server error, then a reply slower than the sender waits
    hooks = sender(session_factory, clock, timeout=0.5)
    hooks.send_due()
    clock.now += timedelta(seconds=30)
    hooks.send_due()
    clock.now += timedelta(minutes=1)
    assert hooks.send_due() == 1 and len(receiver.received) == 1
    with session_factory() as s:
        [delivery] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == clinic)).all()
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert [entry["status_code"] for entry in delivery.log] == [500, None, 204]
    assert "Timeout" in delivery.log[1]["error"]


def test_an_endpoint_failing_for_a_day_is_disabled_and_gets_nothing_more(
        service, clinic, session_factory, clock, receiver):
    endpoint = register(session_factory, clinic, f"{receiver.server.url}/hook")
    book(service, clinic)
    receiver.failures = [503] * 100
    hooks = sender(session_factory, clock)
    hooks.send_due()
    clock.now += timedelta(days=1)
    hooks.send_due()
    with session_factory() as s:
        stored = s.get(WebhookEndpoint, endpoint.id)
        assert stored.active is False and "failed for a day" in stored.disabled_reason
    book(service, clinic, TUESDAY_9 + timedelta(hours=3), phone="+447911123493")
    assert hooks.send_due() == 0  # a disabled endpoint gets no new deliveries


SENDING_PROCESS = """
import sys
from datetime import datetime
from nextslot.reminders.webhooks import WebhookSender
from nextslot.storage.engine import build_session_factory, engine_for
sender = WebhookSender(build_session_factory(engine_for(sys.argv[1])), clock=lambda: datetime.fromisoformat(sys.argv[2]))
print(sum(sender.send_due() for _ in range(4)))
"""


def test_two_sender_processes_deliver_each_event_once(service, clinic, session_factory, clock, receiver,
                                                      database_url):
    register(session_factory, clinic, f"{receiver.server.url}/hook")
    for i in range(12):
        book(service, clinic, TUESDAY_9 + timedelta(minutes=30 * i), phone=f"+4479111235{i:02d}")
    senders = [subprocess.Popen([sys.executable, "-c", SENDING_PROCESS, database_url, clock.now.isoformat()],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in senders]
    assert all(p.returncode == 0 for p in senders), outputs
    ids = [json.loads(body)["id"] for _, body in receiver.received]
    assert len(ids) == len(set(ids)) > 0
    with session_factory() as s:
        statuses = s.scalars(select(WebhookDelivery.status).where(WebhookDelivery.business_id == clinic)).all()
    assert set(statuses) == {"delivered"} and len(statuses) == len(ids)


def test_message_outcomes_are_events_too(service, clinic, session_factory, clock, receiver):
    from nextslot.reminders.dispatcher import Dispatcher
    from tests.reminders.test_dispatcher import ScriptedChannel, refused

    register(session_factory, clinic, f"{receiver.server.url}/hook", ["notification.delivered",
                                                                        "notification.failed"])
    booked = book(service, clinic).booking
    failing = {"sms": ScriptedChannel("sms", refused("21211"))}
    Dispatcher(session_factory, failing, clock=clock).dispatch_due()  # SMS only, refused: failed
    service.book(clinic, BookingCreate(service="consultation", starts_at=TUESDAY_9 + timedelta(hours=3),
                                       customer=CustomerIn(name="Bo", email="bo@example.com")))
    Dispatcher(session_factory, {"email": ScriptedChannel("email")}, clock=clock).dispatch_due()
    sender(session_factory, clock).send_due()
    events = [Event.model_validate_json(body) for _, body in receiver.received]
    assert [(e.type, e.data.notification.status, e.data.notification.channel) for e in events] == [
        ("notification.failed", "failed", "sms"), ("notification.delivered", "delivered", "email")]
    assert events[0].data.booking.code == booked.code and events[0].data.notification.kind == "confirmation"
