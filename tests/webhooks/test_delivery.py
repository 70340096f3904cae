"""Outgoing webhooks to a real receiver on loopback: signed, retried on 500s and timeouts, one delivery per
event with two sender processes, nothing for a rolled-back change, endpoints disabled after a day of failures
and the business told once (email, else SMS; a business with no address gets a failed notice, logged)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nextslot.core import outbound
from nextslot.core.results import Rejected
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.scheduler import drain
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn
from nextslot.schemas.events import Event, event_json_schema
from nextslot.storage.tables import Notification, WebhookDelivery, WebhookEndpoint
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.webhooks.delivery import WebhookSender
from nextslot.webhooks.endpoints import add_endpoint
from tests.conftest import LiveServer
from tests.reminders.test_dispatcher import DroppingSessions, ScriptedChannel, refused

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
    result = add_endpoint(SqlAlchemyUnitOfWork(session_factory), business, url, events, allow_private=True)
    assert not isinstance(result, Rejected), result
    return result


def sender(session_factory, clock, timeout: float = 5.0) -> WebhookSender:
    """A sender allowed to call the loopback fakes (a real one only calls public addresses)."""
    return WebhookSender(session_factory, allow_private=True, timeout=timeout, clock=clock)


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


def fake_dns(monkeypatch, answers: dict[str, str]) -> None:
    """Names resolve to these addresses in the sender's checks (other names resolve as usual)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        return real(answers.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)


def test_an_endpoint_whose_name_turns_internal_after_registration_is_not_called(
        service, clinic, session_factory, clock, receiver, monkeypatch):
    """DNS rebinding: a public address when registered, loopback (where something listens) when delivered."""
    url = f"http://hooks.rebind.test:{receiver.server.port}/hook"
    fake_dns(monkeypatch, {"hooks.rebind.test": "93.184.215.14"})
    assert not isinstance(add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, url), Rejected)
    assert add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, receiver.server.url).code == "invalid_url"
    book(service, clinic)
    fake_dns(monkeypatch, {"hooks.rebind.test": "127.0.0.1"})

    WebhookSender(session_factory, clock=clock).send_due()  # the scheduler's sender: private targets not allowed

    with session_factory() as s:
        [delivery] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == clinic)).all()
    assert receiver.received == [] and delivery.status == "pending"
    assert delivery.log[-1]["error"] == "refused: internal address"
    with session_factory() as s:  # out of the way of other tests' senders, which claim every business's
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(status="failed"))
        s.commit()


def test_the_sender_connects_to_the_address_it_checked_and_keeps_the_name_in_host(
        service, clinic, session_factory, clock, receiver, monkeypatch):
    monkeypatch.setattr(outbound, "is_public", lambda address: address == "127.0.0.1")  # stands in for public
    fake_dns(monkeypatch, {"hooks.pinned.test": "127.0.0.1"})
    register(session_factory, clinic, f"http://hooks.pinned.test:{receiver.server.port}/hook", ["booking.created"])
    book(service, clinic)

    assert WebhookSender(session_factory, clock=clock).send_due() == 1
    [(headers, _)] = receiver.received
    assert headers["host"] == f"hooks.pinned.test:{receiver.server.port}"


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
    assert delivery.log[1]["error"] == "timeout"


def fail_for_a_day(service, business: int, session_factory, clock, receiver, bookings: int = 1) -> WebhookSender:
    """Register the receiver, book, and let every delivery fail until the endpoint is turned off."""
    register(session_factory, business, f"{receiver.server.url}/hook")
    for i in range(bookings):
        book(service, business, TUESDAY_9 + timedelta(hours=i), phone=f"+44791112349{i}")
    receiver.failures = [503] * 100
    hooks = sender(session_factory, clock)
    drain(hooks.send_due)
    clock.now += timedelta(days=1)
    drain(hooks.send_due)
    return hooks


def notices(session_factory, business: int) -> list[Notification]:
    with session_factory() as s:
        return list(s.scalars(select(Notification).where(Notification.business_id == business,
                                                         Notification.kind == "business_webhook_disabled")))


def send_notices(session_factory, clock, receiver, **channels: ScriptedChannel) -> list:
    """Run the dispatcher; return what it sent about this receiver (other tests' businesses share the outbox)."""
    drain(Dispatcher(session_factory, channels, clock=clock).dispatch_due)
    return [m for c in channels.values() for m in c.sent if receiver.server.url in m.body]


def test_an_endpoint_failing_for_a_day_is_disabled_gets_nothing_more_and_the_business_is_told_once_by_email(
        service, clinic, session_factory, clock, receiver):
    hooks = fail_for_a_day(service, clinic, session_factory, clock, receiver, bookings=2)  # both fail together
    with session_factory() as s:
        [stored] = s.scalars(select(WebhookEndpoint).where(WebhookEndpoint.business_id == clinic)).all()
        assert stored.active is False and "failed for a day" in stored.disabled_reason
    book(service, clinic, TUESDAY_9 + timedelta(hours=3), phone="+447911123493")
    assert hooks.send_due() == 0  # a disabled endpoint gets no new deliveries

    [notice] = notices(session_factory, clinic)
    assert notice.customer_id is None and notice.booking_id is None and notice.resource_id is None
    assert notice.payload["endpoint_id"] == stored.id and notice.payload["reason"] == stored.disabled_reason
    sent = send_notices(session_factory, clock, receiver, email=ScriptedChannel("email"), sms=ScriptedChannel("sms"))
    [message] = sent
    assert message.to == "frontdesk@riverside-clinic.example"
    assert message.subject == "Webhook endpoint turned off - Riverside Clinic"
    assert f"{receiver.server.url}/hook" in message.body and "failed for a day; last: HTTP 503" in message.body
    assert f'PUT /v1/webhooks/{stored.id} with {{"active": true}}' in message.body
    assert "Tuesday 24 November at 8 am" in message.body  # when it was turned off, in the business's zone
    assert [n.status for n in notices(session_factory, clinic)] == ["delivered"]
    assert send_notices(session_factory, clock, receiver, email=ScriptedChannel("email")) == []


def test_when_its_email_is_refused_the_business_is_told_by_sms_on_its_phone(
        service, make_business, session_factory, clock, receiver):
    business = make_business("clinic")
    fail_for_a_day(service, business, session_factory, clock, receiver)
    email, sms = ScriptedChannel("email", refused("550")), ScriptedChannel("sms")
    sent = send_notices(session_factory, clock, receiver, email=email, sms=sms)
    assert [(m.to, m.subject) for m in sent] == [
        ("frontdesk@riverside-clinic.example", "Webhook endpoint turned off - Riverside Clinic"),
        ("+442079460958", "Webhook endpoint turned off - Riverside Clinic")]  # the details' phone, as E.164
    [notice] = notices(session_factory, business)
    assert notice.status == "sent" and notice.gave_up_on == ["email"]


def test_a_business_with_no_address_gets_a_failed_notice_logged_and_never_retried(
        service, make_business, session_factory, clock, receiver, caplog):
    business = make_business("clinic", email=None, details={})
    fail_for_a_day(service, business, session_factory, clock, receiver)
    channels = {name: ScriptedChannel(name) for name in ("whatsapp", "sms", "email")}
    assert send_notices(session_factory, clock, receiver, **channels) == []
    [notice] = notices(session_factory, business)
    assert notice.status == "failed" and notice.last_error.startswith("no channel can reach the business")
    assert f"notification {notice.id} failed: no channel can reach the business" in caplog.text
    clock.now += timedelta(hours=1)
    send_notices(session_factory, clock, receiver, **channels)
    assert notices(session_factory, business)[0].status == "failed"  # terminal: not claimed again


SENDING_PROCESS = """
import sys
from datetime import datetime
from nextslot.webhooks.delivery import WebhookSender
from nextslot.storage.engine import build_session_factory, engine_for
sender = WebhookSender(build_session_factory(engine_for(sys.argv[1])), allow_private=True,
                       clock=lambda: datetime.fromisoformat(sys.argv[2]), batch=int(sys.argv[3]))
print(sum(sender.send_due() for _ in range(4)))
"""


def run_two_senders(database_url: str, now: datetime, batch: int = 20) -> None:
    senders = [subprocess.Popen([sys.executable, "-c", SENDING_PROCESS, database_url, now.isoformat(), str(batch)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in senders]
    assert all(p.returncode == 0 for p in senders), outputs


def test_two_sender_processes_deliver_each_event_once(service, clinic, session_factory, clock, receiver,
                                                      database_url):
    register(session_factory, clinic, f"{receiver.server.url}/hook")
    for i in range(12):
        book(service, clinic, TUESDAY_9 + timedelta(minutes=30 * i), phone=f"+4479111235{i:02d}")
    run_two_senders(database_url, clock.now)
    ids = [json.loads(body)["id"] for _, body in receiver.received]
    assert len(ids) == len(set(ids)) > 0
    with session_factory() as s:
        statuses = s.scalars(select(WebhookDelivery.status).where(WebhookDelivery.business_id == clinic)).all()
    assert set(statuses) == {"delivered"} and len(statuses) == len(ids)


def test_two_sender_processes_failing_one_endpoint_at_once_tell_the_business_once(
        service, clinic, session_factory, clock, receiver, database_url):
    register(session_factory, clinic, f"{receiver.server.url}/hook")
    for i in range(8):
        book(service, clinic, TUESDAY_9 + timedelta(minutes=30 * i), phone=f"+4479111236{i:02d}")
    receiver.failures = [503] * 100
    run_two_senders(database_url, clock.now + timedelta(days=1), batch=2)  # small batches: both fail some at once
    with session_factory() as s:
        assert not s.scalars(select(WebhookEndpoint.active).where(WebhookEndpoint.business_id == clinic)).one()
    assert len(notices(session_factory, clinic)) == 1


def test_message_outcomes_are_events_too(service, clinic, session_factory, clock, receiver):
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


def test_a_claim_whose_commit_went_unanswered_is_handed_back(service, clinic, session_factory, clock, receiver):
    register(session_factory, clinic, f"{receiver.server.url}/hook", ["booking.created"])
    book(service, clinic)
    sessions = DroppingSessions(session_factory, went_through=True)
    dropping = WebhookSender(sessions, allow_private=True, timeout=5, clock=clock)
    sessions.drops = 1
    assert dropping.send_due() == 0 and receiver.received == []
    assert dropping.send_due() == 1 and len(receiver.received) == 1  # no waiting for a lease to run out


@pytest.mark.parametrize("went_through", [False, True])
def test_a_delivery_is_recorded_on_a_fresh_connection_when_the_first_drops_and_never_goes_twice(
        service, clinic, session_factory, clock, receiver, went_through):
    register(session_factory, clinic, f"{receiver.server.url}/hook", ["booking.created"])
    book(service, clinic)
    sessions = DroppingSessions(session_factory, went_through)
    dropping = WebhookSender(sessions, allow_private=True, timeout=5, clock=clock)
    [job] = dropping.claim()
    sessions.drops = 1  # the record's commit
    dropping.deliver(job)
    with session_factory() as s:
        delivery = s.get(WebhookDelivery, job.id)
        assert delivery.status == "delivered" and len(delivery.log) == 1
    clock.now += timedelta(minutes=3)  # past the lease: had the record been lost, the event would go again
    assert dropping.send_due() == 0 and len(receiver.received) == 1


def test_an_endpoint_no_client_can_reach_fails_alone_and_other_businesses_events_go_out(
        service, make_business, session_factory, clock, receiver):
    broken, other = make_business("clinic"), make_business("clinic")
    bad = register(session_factory, broken, "https://hooks.example/in")
    with session_factory() as s:  # stored before host names were checked
        s.get(WebhookEndpoint, bad.id).url = "http://" + "a" * 300 + ".example/hook"
        s.commit()
    register(session_factory, other, f"{receiver.server.url}/hook")
    book(service, broken, phone="+447911123491")
    book(service, other, phone="+447911123492")
    assert sender(session_factory, clock).send_due() == 2
    assert [json.loads(b)["type"] for _, b in receiver.received] == ["booking.created"]
    with session_factory() as s:
        [failed] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == broken)).all()
        [sent] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == other)).all()
    assert sent.status == "delivered"
    assert failed.status == "pending" and failed.log[0]["error"] == "invalid url"


def test_a_delivery_whose_endpoint_is_gone_fails_alone_and_other_businesses_events_go_out(
        service, make_business, session_factory, clock, receiver, caplog):
    from sqlalchemy import delete, text

    broken, other = make_business("clinic"), make_business("clinic")
    gone = register(session_factory, broken, f"{receiver.server.url}/hook")
    register(session_factory, other, f"{receiver.server.url}/hook")
    book(service, broken, phone="+447911123493")
    book(service, other, phone="+447911123494")
    fk = "webhook_deliveries_endpoint_id_fkey"
    with session_factory() as s:  # as a database restored without its foreign keys, or a hand edit, would leave it
        definition = s.scalar(text("select pg_get_constraintdef(oid) from pg_constraint where conname = :fk"),
                               {"fk": fk})
        s.execute(text(f"alter table webhook_deliveries drop constraint {fk}"))
        s.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == gone.id))
        s.commit()
    try:
        assert sender(session_factory, clock).send_due() >= 1
        with session_factory() as s:
            [failed] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == broken)).all()
            [sent] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == other)).all()
    finally:
        with session_factory() as s:
            s.execute(delete(WebhookDelivery).where(WebhookDelivery.business_id == broken))
            s.execute(text(f"alter table webhook_deliveries add constraint {fk} {definition}"))
            s.commit()
    assert len(receiver.received) == 1
    assert sent.status == "delivered"
    assert (failed.status, failed.locked_until, failed.log[-1]["error"]) == ("failed", None, "the endpoint is gone")
    assert f"webhook delivery {failed.id} (business {broken}): its endpoint is gone" in caplog.text


@pytest.mark.parametrize("url", ["http://" + "a" * 300 + ".example/hook", "https://hooks..example/in",
                                 "https://" + "abc." * 70 + "example/", "https://a\u00a0b.example/"])
def test_a_host_name_no_client_can_use_is_refused_when_registered(session_factory, clinic, url):
    refused = add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, url)
    assert isinstance(refused, Rejected) and (refused.code, refused.field) == ("invalid_host", "url")
    with session_factory() as s:
        assert s.scalars(select(WebhookEndpoint).where(WebhookEndpoint.business_id == clinic)).all() == []


def test_international_and_numeric_hosts_are_registered(session_factory, clinic):
    for url in ("https://bücher.example/hook", "http://127.0.0.1:8080/hook", "http://[::1]/hook"):
        added = add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, url, allow_private=True)
        assert not isinstance(added, Rejected), url
