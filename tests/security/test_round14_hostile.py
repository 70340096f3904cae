"""Fourteenth round: hostile input on the newest ways in, through the real app and the real database.

The voice lines read a call's arguments with Python's JSON reader, which takes a lone surrogate (a `\\ud800`
escape) that no text column, no hash and no answer can hold. Vapi's arguments as an object and Retell's `args` are
checked with the body (422 invalid_payload), but Vapi's arguments sent as a JSON string and an ElevenLabs body are
read after it. A voice call's `proof` and `idempotency_key` are used before the tool's own input model sees them
(the proof to find the caller's contact, the key to let a retry of what was made past the caller's day budget): a
lone surrogate in either was a 500. Now a voice call's arguments obey what every input obeys before anything is
looked up with them."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from nextslot.calendars.caldav import CalDav
from nextslot.calendars.connections import add_calendar
from nextslot.calendars.providers import Registry
from nextslot.calendars.writes import CalendarWriter
from nextslot.core.results import Booked
from nextslot.storage.tables import Booking, ContactProof, IdempotencyKey, SenderBudget, WebhookDelivery
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from nextslot.webhooks.delivery import WebhookSender
from tests.calendars.test_sync import at, book_okafor
from tests.security.test_round13_public_abuse import (
    CALLER,
    OTHER_CALLER,
    TUESDAY,
    capped_app,
    public_settings,
    voice_booking,
)
from tests.security.test_round13_public_abuse import clinic as clinic  # noqa: F401 - a fixture, used here
from tests.server.test_voice_webhooks import VAPI_SECRET
from tests.tools.test_voice_contact_lookup import ELEVENLABS_SECRET, ask
from tests.webhooks.test_delivery import Receiver, book, register, sender

LONE = "\\ud800"  # as a JSON escape: json.dumps of the character itself escapes it the same way


def raw_call(client: TestClient, slug: str, platform: str, tool: str, arguments: str) -> dict:
    """One tool call whose arguments are the JSON text given (a lone surrogate's escape cannot go through an HTTP
    client's own encoder): Vapi's as the JSON string it may send, ElevenLabs' as the body."""
    if platform == "vapi":
        call = {"id": "call_r14", "function": {"name": tool, "arguments": arguments}}
        body = json.dumps({"message": {"type": "tool-calls", "toolCallList": [call],
                                       "call": {"customer": {"number": CALLER}}}})
        reply = client.post(f"/webhooks/vapi/{slug}", content=body.encode(), headers={"x-vapi-secret": VAPI_SECRET})
        assert reply.status_code == 200, (tool, reply.status_code, reply.text[:300])
        [result] = reply.json()["results"]
        return json.loads(result.get("result") or result["error"])
    body = arguments[:-1] + ',"conversation_id":"conv_r14","caller_id":"%s"}' % CALLER
    reply = client.post(f"/webhooks/elevenlabs/{slug}/{tool}", content=body.encode(),
                        headers={"authorization": f"Bearer {ELEVENLABS_SECRET}"})
    assert reply.status_code == 200, (tool, reply.status_code, reply.text[:300])
    return reply.json()


def written(session_factory, business_id: int) -> tuple[int, ...]:
    with session_factory() as s:
        return tuple(s.scalar(select(func.count()).select_from(table).where(table.business_id == business_id))
                     for table in (Booking, IdempotencyKey, ContactProof, SenderBudget))


PLATFORMS = ("vapi", "elevenlabs")


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(("tool", "arguments"), [
    ("find_appointments", {"code": "K7M4PX"}), ("customer_history", {}), ("cancel_appointment", {"code": "K7M4PX"}),
    ("reschedule_appointment", {"code": "K7M4PX", "new_starts_at": TUESDAY[1]}),
    ("confirm_appointment", {"code": "K7M4PX"})])
def test_a_lone_surrogate_in_a_voice_calls_proof_is_a_field_error_not_a_500(
        session_factory, clock, clinic, platform, tool, arguments):  # noqa: F811
    business, slug = clinic
    client = TestClient(capped_app(session_factory, clock, public_settings()), raise_server_exceptions=False)
    before = written(session_factory, business)
    given = json.dumps({**arguments, "proof": "proof-of-"}).replace('"proof-of-"', '"proof-of-%s"' % LONE)
    answer = raw_call(client, slug, platform, tool, given)
    assert answer["error"]["code"] == "invalid_arguments" and answer["error"]["field"] == "proof", answer
    assert "control character" in answer["error"]["message"], answer
    assert written(session_factory, business) == before


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_lone_surrogate_in_the_idempotency_key_of_a_call_past_its_days_budget_is_a_field_error_not_a_500(
        session_factory, clock, clinic, platform):  # noqa: F811
    """Past the caller's day, the key is looked up to let a retry of what was made through: a key no column can
    hold is refused before that, and nothing is booked."""
    business, slug = clinic
    client = TestClient(capped_app(session_factory, clock, public_settings(public_bookings_per_day=1)),
                        raise_server_exceptions=False)
    assert voice_booking(client, slug, "vapi", TUESDAY[0], None, CALLER)["outcome"] == "booked"
    before = written(session_factory, business)
    answer = raw_call(client, slug, platform, "book_appointment", json.dumps(
        {"service": "consultation", "starts_at": TUESDAY[1], "customer_name": "Made Up",
         "idempotency_key": "retry-"}).replace('"retry-"', '"retry-%s"' % LONE))
    assert answer["error"]["code"] == "invalid_arguments", answer
    assert answer["error"]["field"] == "idempotency_key", answer
    assert written(session_factory, business) == before


# --- one business's queue is not another's wait ------------------------------------------------------------------


def test_a_business_flooding_its_webhook_queue_does_not_hold_up_another_businesss_event(
        service, make_business, session_factory, clock, monkeypatch):
    """The scheduler sent every business's webhook deliveries from one queue in the order they fell due, one at a
    time, each allowed the whole timeout: a business whose endpoints hang (or that registered many of them, each
    event going to each) put hours of deliveries ahead of every other business's events. A claim now takes each
    business's oldest due row in turn: another business's event goes out in the first claim, after at most one of
    the flooding business's."""
    noisy, other = make_business("clinic"), make_business("clinic")
    for _ in range(20):  # the most active endpoints a business may have; refused at once here, where a receiver that
        # hangs would hold each for the whole timeout
        register(session_factory, noisy, "http://127.0.0.1:9/hook")
    with Receiver().server as server:
        register(session_factory, other, f"{server.url}/hook")
        book(service, noisy, phone="+447911123481")
        book(service, other, phone="+447911123482")
        with session_factory() as s:
            assert s.scalar(select(func.count()).select_from(WebhookDelivery)
                            .where(WebhookDelivery.business_id == noisy, WebhookDelivery.status == "pending")) == 20
        sent: list[str] = []
        deliver = WebhookSender.deliver
        monkeypatch.setattr(WebhookSender, "deliver", lambda self, job: (sent.append(job.url), deliver(self, job)))
        assert sender(session_factory, clock).send_due() == 20
    assert sent[:2] == ["http://127.0.0.1:9/hook", f"{server.url}/hook"], sent[:3]
    with session_factory() as s:
        [delivered] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == other)).all()
    assert delivered.status == "delivered"


def test_a_business_whose_caldav_servers_hang_does_not_hold_up_another_businesss_calendar_writes(
        service, make_business, session_factory, clock, monkeypatch):
    """The same for bookings written into staff calendars: a CalDAV server is the business's to name, and each
    write into one may take two minutes. Another business's write goes out in the first claim, second."""
    noisy, other = make_business("clinic"), make_business("clinic")
    assert isinstance(book_okafor(service, noisy, at(10)), Booked)
    for _ in range(25):  # each calendar gets the booking already made: 25 writes, refused at once here
        assert isinstance(add_calendar(SqlAlchemyUnitOfWork(session_factory), noisy, "dr-okafor",
                                       "http://127.0.0.1:9/cal/", allow_private=True, now=clock()), int)
    assert isinstance(book_okafor(service, other, at(10)), Booked)
    theirs = add_calendar(SqlAlchemyUnitOfWork(session_factory), other, "dr-okafor", "http://127.0.0.1:9/cal/",
                          allow_private=True, now=clock())
    tried: list[int] = []
    write = CalendarWriter._write
    monkeypatch.setattr(CalendarWriter, "_write", lambda self, job: (tried.append(job.source.id), write(self, job))[1])
    writer = CalendarWriter(session_factory, Registry({"caldav": CalDav()}, allow_private=True), clock)
    assert writer.write_due() == 20
    assert tried[1] == theirs and theirs not in tried[:1], tried[:3]


# --- a hold is its caller's --------------------------------------------------------------------------------------


def test_a_caller_cannot_book_the_time_another_caller_is_holding_by_naming_their_hold(
        session_factory, clock, clinic):  # noqa: F811
    """Hold ids count up, and a held time drops out of the openings: another caller (any platform) named the next
    id with that time and booked it as theirs while the first caller was still giving their details, and the first
    caller's booking then failed. A voice caller now converts only a hold made from its own number (an unknown one
    is answered as no hold at all, whatever its time); the holder still books, and the business's own agents, who
    reach every hold, too."""
    business, slug = clinic
    client = TestClient(capped_app(session_factory, clock, public_settings()))
    held = ask(client, slug, "vapi", "hold_slot", {"service": "consultation", "starts_at": TUESDAY[0]}, CALLER)
    assert held["outcome"] == "held", held
    for platform in ("vapi", "retell", "elevenlabs"):
        for start in TUESDAY[:2]:  # its own time, or another: the same answer either way
            taken = voice_booking(client, slug, platform, start, None, OTHER_CALLER, hold_id=held["hold_id"])
            assert taken["error"]["code"] == "unknown_hold", (platform, taken)
    withheld = voice_booking(client, slug, "retell", TUESDAY[0], "+447911155123", None, hold_id=held["hold_id"])
    assert withheld["error"]["code"] == "unknown_hold", withheld
    mine = voice_booking(client, slug, "elevenlabs", TUESDAY[0], None, CALLER, hold_id=held["hold_id"])
    assert mine["outcome"] == "booked", mine
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Booking).where(Booking.business_id == business)) == 1

    again = ask(client, slug, "retell", "hold_slot", {"service": "consultation", "starts_at": TUESDAY[1]}, CALLER)
    agent = execute("book_appointment", {"service": "consultation", "starts_at": TUESDAY[1], "customer_name": "Ann",
                                         "phone": CALLER, "hold_id": again["hold_id"]},
                    ToolContext(client.app.state.service, business, "mcp"))
    assert agent.ok and agent.data["outcome"] == "booked", agent.data
