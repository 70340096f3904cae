"""A caller on the business's voice line reaches the bookings of the number they call from, of a contact they prove
in the call with a one-time code, or of a booking code they give, and no one else's: a number only said aloud is
anyone's. Through the real Vapi, Retell and ElevenLabs webhooks, signed as the platforms sign them."""
from __future__ import annotations

import itertools
import json
import re
from typing import Any

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage import queries
from nextslot.storage.tables import Booking, Notification
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.server.test_voice_webhooks import (
    RETELL_KEY,
    VAPI_SECRET,
    elevenlabs_body,
    post_elevenlabs,
    post_retell,
    post_vapi,
    retell_body,
    vapi_message,
)

TUESDAY, WEDNESDAY = "2026-11-24", "2026-11-25"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC
ANN = "+447911123001"  # has bookings at the clinic
ANN_LOCAL = "07911 123001"  # the same number, as a British caller says it
BOB = "+447911123002"  # calls the clinic; no bookings
NOBODY = "+447911123003"  # no bookings
ELEVENLABS_SECRET = "elevenlabs-workspace-secret"
PLATFORMS = ("vapi", "retell", "elevenlabs")
CALL_IDS = itertools.count(1)


@pytest.fixture
def clinic(make_business, session_factory) -> tuple[int, str]:
    """A business with all three voice platforms set up: (id, slug)."""
    business_id = make_business("clinic")
    for platform, secret in (("vapi", VAPI_SECRET), ("retell", RETELL_KEY), ("elevenlabs", ELEVENLABS_SECRET)):
        set_secret(SqlAlchemyUnitOfWork(session_factory), business_id, platform, secret)
    with session_factory() as session:
        return business_id, queries.business(session, business_id).slug


@pytest.fixture
def client(service) -> TestClient:
    return TestClient(create_app(Settings(), service=service))


@pytest.fixture
def ann(service, clinic) -> list[str]:
    """Ann's two bookings (made by the business's staff): their codes."""
    staff = ToolContext(service, clinic[0], "test")
    codes = []
    for day in (TUESDAY, WEDNESDAY):
        slots = execute("find_available_slots", {"service": "consultation", "date": day}, staff).data["slots"]
        booked = execute("book_appointment", {"service": "consultation", "starts_at": slots[0]["starts_at"],
                                              "customer_name": "Ann Lee", "phone": ANN}, staff)
        assert booked.ok, booked.data
        codes.append(booked.data["appointment"]["code"])
    return codes


def ask(client: TestClient, slug: str, platform: str, tool: str, args: dict[str, Any],
        caller: str | None) -> dict[str, Any]:
    """One tool call as the platform sends it, from `caller` (None: the caller id withheld); the tool's JSON."""
    call_id = f"call_{next(CALL_IDS)}"
    if platform == "vapi":
        reply = post_vapi(client, slug, vapi_message({"id": call_id, "name": tool, "arguments": args}, number=caller))
        assert reply.status_code == 200, reply.text
        [result] = reply.json()["results"]
        return json.loads(result.get("result") or result["error"])
    if platform == "retell":
        reply = post_retell(client, slug, retell_body(tool, args, call_id=call_id, number=caller))
    else:
        body = elevenlabs_body(args, conversation=call_id, caller=caller)
        reply = post_elevenlabs(client, slug, tool, body, ELEVENLABS_SECRET)
    assert reply.status_code == 200, reply.text
    return reply.json()


def reveals_ann(answer: dict[str, Any], codes: list[str]) -> bool:
    text = json.dumps(answer)
    return "Ann" in text or any(code in text for code in codes) or "appointments" in answer and answer["appointments"]


def statuses(session_factory, business_id: int) -> list[tuple[str, str, str]]:
    with session_factory() as session:
        return [(b.code, b.status, b.starts_at.isoformat()) for b in session.scalars(
            select(Booking).where(Booking.business_id == business_id).order_by(Booking.id))]


def codes_sent(session_factory, business_id: int, to: str) -> list[str]:
    with session_factory() as s:
        rows = s.scalars(select(Notification).where(Notification.business_id == business_id,
                                                    Notification.kind == "conversation_reply")
                         .order_by(Notification.id))
        return [re.search(r"\b(\d{6})\b", n.payload["text"])[1] for n in rows if n.payload["to"] == to]


# --- a stranger's number ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("tool", ["find_appointments", "customer_history"])
def test_a_number_the_caller_only_states_reaches_no_one_and_answers_alike_with_or_without_bookings(
        client, clinic, ann, platform, tool):
    slug = clinic[1]
    for stated in (ANN, ANN_LOCAL, "+44 7911 123001"):
        answer = ask(client, slug, platform, tool, {"phone": stated}, caller=BOB)
        assert not reveals_ann(answer, ann), answer
        assert answer["error"]["code"] == "contact_not_proved" and answer["error"]["say"], answer
    # a number with no bookings gets the very same answer: no telling who is a customer
    assert ask(client, slug, platform, tool, {"phone": ANN}, caller=BOB) == \
        ask(client, slug, platform, tool, {"phone": NOBODY}, caller=BOB)
    assert ask(client, slug, platform, tool, {"email": "ann@example.com"}, caller=BOB)["error"]["code"] == \
        "contact_not_proved"


def test_the_refusal_says_what_the_agent_can_offer(client, clinic, ann):
    answer = ask(client, clinic[1], "vapi", "find_appointments", {"phone": ANN}, caller=BOB)
    say = answer["error"]["say"]
    assert "number you're calling from" in say and "booking code" in say


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_callers_own_number_finds_their_bookings_however_it_is_written(client, clinic, ann, platform):
    slug = clinic[1]
    for args in ({}, {"phone": ""}, {"phone": ANN}, {"phone": ANN_LOCAL}, {"phone": "+44 (0)7911 123001"}):
        found = ask(client, slug, platform, "find_appointments", args, caller=ANN)
        assert sorted(a["code"] for a in found["appointments"]) == sorted(ann), (args, found)
        history = ask(client, slug, platform, "customer_history", args, caller=ANN)
        assert history["bookings"] == 2 and history["customer_name"] == "Ann Lee", (args, history)


def test_a_caller_id_in_local_form_is_the_same_number(client, clinic, ann):
    found = ask(client, clinic[1], "retell", "find_appointments", {"phone": ANN}, caller=ANN_LOCAL)
    assert sorted(a["code"] for a in found["appointments"]) == sorted(ann)


def test_a_database_out_of_reach_while_checking_the_caller_is_a_retryable_answer(client, clinic, ann, service,
                                                                                   monkeypatch):
    def lost(*args, **kwargs):
        raise OperationalError("SELECT country", {}, psycopg.OperationalError("server closed the connection"),
                               connection_invalidated=True)

    monkeypatch.setattr(service, "read", lost)
    answer = ask(client, clinic[1], "vapi", "find_appointments", {"phone": ANN}, caller=ANN)
    assert answer["error"]["code"] == "temporarily_unavailable" and "SELECT" not in json.dumps(answer)


# --- a booking code ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_booking_code_finds_its_booking_whoever_calls(client, clinic, ann, platform):
    slug = clinic[1]
    for caller in (BOB, None):
        [found] = ask(client, slug, platform, "find_appointments", {"code": ann[0]}, caller=caller)["appointments"]
        assert found["code"] == ann[0]
        # a stranger's number beside the code changes nothing: the code alone decides
        [found] = ask(client, slug, platform, "find_appointments", {"code": ann[0], "phone": ANN},
                      caller=caller)["appointments"]
        assert found["code"] == ann[0]


def test_a_wrong_code_beside_a_strangers_number_never_offers_that_numbers_codes(client, clinic, ann):
    """Before: the codes one symbol away among the stated number's bookings came back as `near_codes`."""
    typo = ("B" if ann[0][0] != "B" else "C") + ann[0][1:]
    answer = ask(client, clinic[1], "vapi", "find_appointments", {"code": typo, "phone": ANN}, caller=BOB)
    assert not reveals_ann(answer, ann), answer
    # the caller's own number beside a mistyped code still offers their own
    own = ask(client, clinic[1], "vapi", "find_appointments", {"code": typo, "phone": ANN_LOCAL}, caller=ANN)
    assert ann[0] in own["near_codes"]


# --- a withheld caller id ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("tool", ["find_appointments", "customer_history"])
def test_a_withheld_caller_id_looks_up_only_by_code_or_proof(client, clinic, ann, platform, tool):
    slug = clinic[1]
    for args in ({}, {"phone": ANN}, {"phone": NOBODY}):
        answer = ask(client, slug, platform, tool, args, caller=None)
        assert answer["error"]["code"] == "contact_not_proved" and not reveals_ann(answer, ann), answer
    assert ask(client, slug, platform, tool, {"phone": ANN}, caller=None) == \
        ask(client, slug, platform, tool, {"phone": NOBODY}, caller=None)


def test_an_unusable_caller_id_is_a_withheld_one(client, clinic, ann):
    for caller in ("anonymous", "+1", "Restricted"):
        answer = ask(client, clinic[1], "elevenlabs", "find_appointments", {}, caller=caller)
        assert answer["error"]["code"] == "contact_not_proved", answer


# --- moving and cancelling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_stranger_cannot_move_or_cancel_bookings_by_stating_a_number(
        client, clinic, ann, platform, session_factory):
    """The whole attack: look the number up, then move or cancel whatever codes the answer read out."""
    business_id, slug = clinic
    before = statuses(session_factory, business_id)
    found = ask(client, slug, platform, "find_appointments", {"phone": ANN_LOCAL}, caller=BOB)
    heard = [a["code"] for a in found.get("appointments", [])]
    history = ask(client, slug, platform, "customer_history", {"phone": ANN}, caller=BOB)
    heard += [e["code"] for e in history.get("events", []) if e.get("code")]
    for code in heard or ["NOCODE"]:
        ask(client, slug, platform, "cancel_appointment", {"code": code}, caller=BOB)
        ask(client, slug, platform, "reschedule_appointment",
            {"code": code, "new_starts_at": "2026-11-26T15:00:00+00:00"}, caller=BOB)
    for tool, args in (("cancel_appointment", {"phone": ANN}),
                       ("reschedule_appointment", {"phone": ANN, "new_starts_at": "2026-11-26T15:00:00+00:00"})):
        refused = ask(client, slug, platform, tool, args, caller=BOB)
        assert "error" in refused and not reveals_ann(refused, ann), refused
    assert heard == [] and statuses(session_factory, business_id) == before


def test_the_caller_still_moves_and_cancels_their_own_by_code(client, clinic, ann, session_factory):
    slug = clinic[1]
    moved = ask(client, slug, "vapi", "reschedule_appointment",
                {"code": ann[0], "new_starts_at": "2026-11-26T15:00:00+00:00"}, caller=ANN)
    assert moved["outcome"] == "rescheduled", moved
    cancelled = ask(client, slug, "retell", "cancel_appointment", {"code": ann[1]}, caller=ANN)
    assert cancelled["outcome"] == "cancelled", cancelled


# --- a contact proved in the call ------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_contact_proved_in_the_call_with_a_one_time_code_unlocks_its_bookings(
        client, clinic, ann, platform, session_factory):
    """Ann calls from a friend's phone: a code goes by text to her own number, she reads it back."""
    business_id, slug = clinic
    sent = ask(client, slug, platform, "request_code", {"contact": ANN_LOCAL}, caller=BOB)
    assert sent["outcome"] == "code_sent" and sent["sent_by"] == "sms" and sent["say"], sent
    code = codes_sent(session_factory, business_id, ANN)[-1]
    wrong = ask(client, slug, platform, "verify_code", {"challenge": sent["challenge"],
                                                        "code": f"{(int(code) + 1) % 10**6:06d}"}, caller=BOB)
    assert wrong["error"]["code"] == "wrong_code"
    proved = ask(client, slug, platform, "verify_code", {"challenge": sent["challenge"], "code": code}, caller=BOB)
    assert proved["outcome"] == "proved", proved
    proof = proved["proof"]

    found = ask(client, slug, platform, "find_appointments", {"proof": proof}, caller=BOB)
    assert sorted(a["code"] for a in found["appointments"]) == sorted(ann)
    # the proof is for Ann's number only, whatever number is stated beside it
    other = ask(client, slug, platform, "find_appointments", {"proof": proof, "phone": NOBODY}, caller=BOB)
    assert sorted(a["code"] for a in other["appointments"]) == sorted(ann)
    history = ask(client, slug, platform, "customer_history", {"proof": proof}, caller=None)
    assert history["bookings"] == 2

    forged = ask(client, slug, platform, "find_appointments", {"proof": "nsp_" + "x" * 40, "phone": ANN}, caller=BOB)
    assert forged["error"]["code"] == "proof_required" and not reveals_ann(forged, ann), forged


def test_asking_for_a_code_answers_alike_whether_or_not_the_number_books_here(client, clinic, ann, session_factory):
    slug = clinic[1]
    known = ask(client, slug, "vapi", "request_code", {"contact": ANN}, caller=BOB)
    unknown = ask(client, slug, "vapi", "request_code", {"contact": NOBODY}, caller=BOB)
    assert known["outcome"] == unknown["outcome"] == "code_sent" and known["say"] == unknown["say"]
    assert codes_sent(session_factory, clinic[0], NOBODY) == []  # nothing goes to a number that is no customer


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_caller_asking_for_code_after_code_is_stopped_and_others_are_not(
        client, clinic, ann, session_factory, platform):
    # each code asked for is a text message sent to someone, and the platform calls from the same addresses for
    # every caller: without a budget of its own, one call could make the clinic text codes to number after number
    slug = clinic[1]
    for n in range(10):
        asked = ask(client, slug, platform, "request_code", {"contact": f"+4479111230{n + 10:02d}"}, caller=BOB)
        assert asked["outcome"] == "code_sent", asked
    refused = ask(client, slug, platform, "request_code", {"contact": ANN}, caller=BOB)
    assert refused["error"]["code"] == "too_many_codes" and refused["error"]["say"], refused
    assert codes_sent(session_factory, clinic[0], ANN) == []
    other = ask(client, slug, platform, "request_code", {"contact": ANN}, caller=NOBODY)
    assert other["outcome"] == "code_sent" and len(codes_sent(session_factory, clinic[0], ANN)) == 1
