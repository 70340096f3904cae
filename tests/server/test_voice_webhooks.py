"""Vapi and Retell tool webhooks over HTTP against the real app: payloads shaped as the platforms send them."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage import queries
from nextslot.storage.tables import Booking
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute

TUESDAY = "2026-11-24"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC
CALLER = "+447911123456"
VAPI_SECRET = "vapi-shared-secret"
RETELL_KEY = "key_0123456789abcdef"


@pytest.fixture
def clinic(make_business, session_factory) -> tuple[int, str]:
    """A business with both platforms set up: (id, slug)."""
    business_id = make_business("clinic")
    for platform, secret in (("vapi", VAPI_SECRET), ("retell", RETELL_KEY)):
        set_secret(SqlAlchemyUnitOfWork(session_factory), business_id, platform, secret)
    with session_factory() as session:
        return business_id, queries.business(session, business_id).slug


@pytest.fixture
def client(service) -> TestClient:
    return TestClient(create_app(Settings(), service=service))


@pytest.fixture
def first_slot(service, clinic) -> str:
    reply = execute("find_available_slots", {"service": "consultation", "date": TUESDAY},
                    ToolContext(service, clinic[0], "test"))
    return reply.data["slots"][0]["starts_at"]


def vapi_message(*tool_calls: dict[str, Any], number: str = CALLER) -> dict[str, Any]:
    """A tool-calls server message as Vapi sends it (trimmed: it also carries the assistant, artifact, ...)."""
    return {"message": {
        "timestamp": 1795420800000,
        "type": "tool-calls",
        "toolCallList": list(tool_calls),
        "toolWithToolCallList": [{"type": "function", "function": {"name": c.get("name")}} for c in tool_calls],
        "call": {"id": "c1a2b3", "orgId": "org-1", "type": "inboundPhoneCall", "status": "in-progress",
                 "customer": {"number": number}},
        "phoneNumber": {"number": "+442071234567"},
    }}


def vapi_book(call_id: str, starts_at: str, name: str = "Ann Lee") -> dict[str, Any]:
    """A booking call in the nested form (`function` with JSON-string arguments), without a phone number."""
    arguments = json.dumps({"service": "consultation", "starts_at": starts_at, "customer_name": name})
    return {"id": call_id, "type": "function", "function": {"name": "book_appointment", "arguments": arguments}}


def post_vapi(client: TestClient, slug: str, payload: Any, **headers: str):
    headers = headers or {"x-vapi-secret": VAPI_SECRET}
    return client.post(f"/webhooks/vapi/{slug}", json=payload, headers=headers)


def retell_body(name: str, args: dict[str, Any], call_id: str = "call_8f2e", number: str = CALLER) -> bytes:
    payload = {"name": name, "args": args, "call": {
        "call_type": "phone_call", "call_id": call_id, "agent_id": "agent_1", "call_status": "ongoing",
        "direction": "inbound", "from_number": number, "to_number": "+442071234567",
        "transcript": "Agent: Hello, Riverside Clinic.\nUser: Could I book a consultation?"}}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def retell_signature(body: bytes, key: str = RETELL_KEY, at_ms: int | None = None) -> str:
    """What Retell sends: v=<unix ms>,d=<hex HMAC-SHA256(key, raw body + timestamp)>."""
    stamp = str(at_ms if at_ms is not None else int(time.time() * 1000))
    return f"v={stamp},d={hmac.new(key.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()}"


def post_retell(client: TestClient, slug: str, body: bytes, signature: str | None = None):
    headers = {"content-type": "application/json", "x-retell-signature": signature or retell_signature(body)}
    return client.post(f"/webhooks/retell/{slug}", content=body, headers=headers)


def bookings(session_factory, business_id: int) -> list[Booking]:
    with session_factory() as session:
        return list(session.scalars(select(Booking).where(Booking.business_id == business_id)))


# --- Vapi --------------------------------------------------------------------------------------------------


def test_vapi_tool_calls_find_and_book_with_the_callers_number(client, clinic, session_factory):
    business_id, slug = clinic
    find = {"id": "call_find", "name": "find_available_slots", "arguments": {"service": "consultation",
                                                                             "date": TUESDAY}}
    found = post_vapi(client, slug, vapi_message(find))
    assert found.status_code == 200
    [result] = found.json()["results"]
    assert result["toolCallId"] == "call_find" and isinstance(result["result"], str)
    starts_at = json.loads(result["result"])["slots"][0]["starts_at"]

    booked = post_vapi(client, slug, vapi_message(vapi_book("call_book", starts_at))).json()["results"][0]
    assert booked["toolCallId"] == "call_book" and json.loads(booked["result"])["outcome"] == "booked"
    [booking] = bookings(session_factory, business_id)
    assert booking.source == "vapi" and booking.customer.phone == CALLER


def test_a_vapi_retry_with_the_same_tool_call_id_books_once(client, clinic, first_slot, session_factory):
    business_id, slug = clinic
    first, retry = (json.loads(post_vapi(client, slug, vapi_message(vapi_book("call_retry", first_slot)))
                               .json()["results"][0]["result"]) for _ in range(2))
    assert first["appointment"]["code"] == retry["appointment"]["code"] and retry["replayed"] is True
    assert len(bookings(session_factory, business_id)) == 1


def test_a_lost_race_answers_slot_taken_with_alternatives(client, clinic, first_slot, session_factory):
    business_id, slug = clinic
    assert post_retell(client, slug, retell_body("book_appointment", {
        "service": "consultation", "starts_at": first_slot, "customer_name": "Bob Ray"})).json()["outcome"] == "booked"
    lost = post_vapi(client, slug, vapi_message(vapi_book("call_late", first_slot), number="+447911123457"))
    answer = json.loads(lost.json()["results"][0]["result"])
    assert answer["outcome"] == "slot_taken" and len(answer["alternatives"]) == 3
    assert first_slot not in {a["starts_at"] for a in answer["alternatives"]}
    assert len(bookings(session_factory, business_id)) == 1


def test_vapi_bad_arguments_come_back_in_error_for_that_call_only(client, clinic):
    _, slug = clinic
    calls = [{"id": "a", "name": "book_appointment", "arguments": "{not json"},
             {"id": "b", "function": {"name": "find_available_slots", "arguments": {"service": "massage"}}},
             {"id": "c", "name": "list_services", "arguments": {}}]
    a, b, c = post_vapi(client, slug, vapi_message(*calls)).json()["results"]
    assert json.loads(a["error"])["error"]["code"] == "invalid_json" and "result" not in a
    assert json.loads(b["error"])["error"]["code"] == "unknown_service"
    assert "consultation" in c["result"]


def test_more_than_ten_vapi_tool_calls_in_one_request_are_refused_and_none_runs(client, clinic, first_slot,
                                                                                session_factory):
    _, slug = clinic
    ten = [{"id": f"l{i}", "name": "list_services"} for i in range(10)]
    assert len(post_vapi(client, slug, vapi_message(*ten)).json()["results"]) == 10
    reply = post_vapi(client, slug, vapi_message(vapi_book("b1", first_slot), *ten))
    assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_payload"
    assert "message.toolCallList" in reply.json()["error"]["message"] and "at most 10" in reply.json()["error"]["message"]
    assert bookings(session_factory, clinic[0]) == []


def test_other_vapi_messages_are_acknowledged_with_an_empty_200(client, clinic):
    reply = post_vapi(client, clinic[1], {"message": {"type": "status-update", "status": "in-progress"}})
    assert reply.status_code == 200 and reply.content == b""


def test_the_vapi_secret_is_also_accepted_as_a_bearer_token(client, clinic):
    reply = post_vapi(client, clinic[1], vapi_message({"id": "x", "name": "list_services"}),
                      authorization=f"Bearer {VAPI_SECRET}")
    assert reply.status_code == 200 and "consultation" in reply.json()["results"][0]["result"]


@pytest.mark.parametrize("headers", [{"x-vapi-secret": "guess"}, {"authorization": "Bearer guess"},
                                     {"authorization": f"Basic {VAPI_SECRET}"}, {"x-other": "1"}])
def test_a_missing_or_wrong_vapi_secret_is_refused_and_logged_without_customer_data(
        client, clinic, session_factory, first_slot, headers, caplog):
    with caplog.at_level(logging.WARNING, logger="nextslot.server.voice_webhooks"):
        reply = post_vapi(client, clinic[1], vapi_message(vapi_book("call_x", first_slot)), **headers)
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "unauthorized"
    assert clinic[1] in caplog.text and CALLER not in caplog.text and "Ann Lee" not in caplog.text
    assert bookings(session_factory, clinic[0]) == []


def test_a_business_without_a_vapi_secret_refuses_vapi_calls(client, make_business, session_factory):
    with session_factory() as session:
        slug = queries.business(session, make_business("clinic")).slug
    assert post_vapi(client, slug, vapi_message({"id": "x", "name": "list_services"})).status_code == 401


@pytest.mark.parametrize("payload, status, says", [
    (b"{not json", 400, "not valid JSON"),
    ({"type": "tool-calls"}, 422, "message: Field required"),
    ({"message": {"type": "tool-calls"}}, 422, "toolCallList"),
    ({"message": {"type": "tool-calls", "toolCallList": "book"}}, 422, "message.toolCallList"),
    ({"message": {"type": "tool-calls", "toolCallList": [{"id": "x"}]}}, 422, "needs a name"),
    ({"message": {"type": "tool-calls", "toolCallList": [{"id": 7, "name": "list_services"}]}}, 422,
     "message.toolCallList.0.id"),
    ([1, 2], 422, "body"),
])
def test_malformed_vapi_bodies_get_a_clear_4xx(client, clinic, payload, status, says):
    headers = {"x-vapi-secret": VAPI_SECRET, "content-type": "application/json"}
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    reply = client.post(f"/webhooks/vapi/{clinic[1]}", content=body, headers=headers)
    assert reply.status_code == status and says in reply.json()["error"]["message"], reply.json()


def test_an_unknown_business_is_404_on_both_platforms(client):
    assert post_vapi(client, "no-such-clinic", vapi_message()).status_code == 404
    reply = post_retell(client, "no-such-clinic", retell_body("list_services", {}))
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "unknown_business"


# --- Retell ------------------------------------------------------------------------------------------------


def test_a_signed_retell_call_books_with_the_callers_number(client, clinic, first_slot, session_factory):
    business_id, slug = clinic
    reply = post_retell(client, slug, retell_body("book_appointment", {
        "service": "consultation", "starts_at": first_slot, "customer_name": "Ann Lee"}))
    assert reply.status_code == 200 and reply.json()["outcome"] == "booked"
    assert len(reply.text) <= 15_000
    [booking] = bookings(session_factory, business_id)
    assert booking.source == "retell" and booking.customer.phone == CALLER


def test_a_retell_retry_replays_the_first_answer(client, clinic, first_slot, session_factory):
    business_id, slug = clinic
    body = retell_body("book_appointment", {"service": "consultation", "starts_at": first_slot,
                                            "customer_name": "Ann Lee"})
    first, retry = post_retell(client, slug, body).json(), post_retell(client, slug, body).json()
    assert first["outcome"] == "booked" and retry["replayed"] is True
    assert first["appointment"]["code"] == retry["appointment"]["code"]
    assert len(bookings(session_factory, business_id)) == 1


def test_retell_tool_errors_are_a_200_the_agent_can_read(client, clinic):
    reply = post_retell(client, clinic[1], retell_body("find_available_slots", {"service": "massage"}))
    assert reply.status_code == 200 and reply.json()["error"]["code"] == "unknown_service"


@pytest.mark.parametrize("forge", [
    lambda body: "",
    lambda body: "sha256=deadbeef",
    lambda body: retell_signature(body, key="key_someone_else"),
    lambda body: retell_signature(body, at_ms=int(time.time() * 1000) - 10 * 60 * 1000),  # a replay
    lambda body: retell_signature(body.replace(b"Ann Lee", b"Eve Bad")),  # the signature of another body
    lambda body: "v=" + "9" * 4301 + ",d=00",  # a time past int()'s digit limit: once a 500
])
def test_a_missing_wrong_stale_or_tampered_retell_signature_is_refused(client, clinic, first_slot, forge,
                                                                       session_factory):
    body = retell_body("book_appointment", {"service": "consultation", "starts_at": first_slot,
                                            "customer_name": "Ann Lee"})
    headers = {"content-type": "application/json"}
    if signature := forge(body):
        headers["x-retell-signature"] = signature
    reply = client.post(f"/webhooks/retell/{clinic[1]}", content=body, headers=headers)
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "unauthorized"
    assert bookings(session_factory, clinic[0]) == []


@pytest.mark.parametrize("body, status", [(b"{not json", 400), (b'{"args": {}}', 422),
                                          (b'{"name": "list_services", "args": [1]}', 422)])
def test_malformed_retell_bodies_get_a_clear_4xx(client, clinic, body, status):
    reply = post_retell(client, clinic[1], body)
    assert reply.status_code == status and reply.json()["error"]["code"] in {"invalid_json", "invalid_payload"}


# --- ElevenLabs --------------------------------------------------------------------------------------------


def elevenlabs_body(args: dict[str, Any], conversation: str = "conv_01jx9b2k7f", caller: str = CALLER) -> dict:
    """A webhook tool's body as ElevenLabs sends it: the properties the model filled in, beside two whose value
    type is "Dynamic variable" (system__conversation_id, system__caller_id)."""
    return {**args, "conversation_id": conversation, "caller_id": caller}


def post_elevenlabs(client: TestClient, slug: str, tool: str, body: Any, key: str | None):
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/webhooks/elevenlabs/{slug}/{tool}", content=content, headers=headers)


def test_elevenlabs_tools_find_and_book_with_the_callers_number_and_a_retry_books_once(
        client, clinic, api_key, session_factory):
    business_id, slug = clinic
    key = api_key(business_id)
    found = post_elevenlabs(client, slug, "find_available_slots",
                            elevenlabs_body({"service": "consultation", "date": TUESDAY}), key)
    assert found.status_code == 200
    starts_at = found.json()["slots"][0]["starts_at"]
    book = elevenlabs_body({"service": "consultation", "starts_at": starts_at, "customer_name": "Ann Lee"})
    first, retry = (post_elevenlabs(client, slug, "book_appointment", book, key).json() for _ in range(2))
    assert first["outcome"] == "booked" and retry["replayed"] is True
    assert first["appointment"]["code"] == retry["appointment"]["code"]
    [booking] = bookings(session_factory, business_id)
    assert booking.source == "elevenlabs" and booking.customer.phone == CALLER
    # the same words in another conversation are another booking (here: the time is gone)
    other = post_elevenlabs(client, slug, "book_appointment", {**book, "conversation_id": "conv_other"}, key).json()
    assert other["outcome"] == "slot_taken"


def test_elevenlabs_system_variable_names_and_a_body_without_them_work(client, clinic, api_key):
    business_id, slug = clinic
    key = api_key(business_id)
    listed = post_elevenlabs(client, slug, "list_services", {"system__conversation_id": "conv_2",
                                                              "system__caller_id": CALLER}, key)
    assert listed.status_code == 200 and "consultation" in listed.text
    assert post_elevenlabs(client, slug, "get_business_info", {}, key).json()["timezone"] == "Europe/London"


def test_elevenlabs_tool_errors_are_a_200_the_agent_can_read(client, clinic, api_key):
    business_id, slug = clinic
    key = api_key(business_id)
    wrong = post_elevenlabs(client, slug, "find_available_slots", elevenlabs_body({"service": "massage"}), key)
    assert wrong.status_code == 200 and wrong.json()["error"]["code"] == "unknown_service"
    typo = post_elevenlabs(client, slug, "find_available_slot", elevenlabs_body({"service": "consultation"}), key)
    assert typo.json()["error"]["code"] == "unknown_tool" and "find_available_slots" in typo.json()["error"]["suggestions"]
    extra = post_elevenlabs(client, slug, "list_services", elevenlabs_body({"colour": "blue"}), key)
    assert extra.json()["error"]["code"] == "invalid_arguments" and "colour" in extra.json()["error"]["message"]


def test_elevenlabs_calls_without_this_businesss_live_key_are_refused(client, clinic, api_key, make_business,
                                                                       first_slot, session_factory, caplog):
    business_id, slug = clinic
    book = elevenlabs_body({"service": "consultation", "starts_at": first_slot, "customer_name": "Ann Lee"})
    other_key = api_key(make_business("garage"))
    with caplog.at_level(logging.WARNING, logger="nextslot.server.voice_webhooks"):
        for key in (None, "nsk_not-a-key", other_key, VAPI_SECRET):
            reply = post_elevenlabs(client, slug, "book_appointment", book, key)
            assert reply.status_code == 401 and reply.json()["error"]["code"] == "unauthorized", key
    assert CALLER not in caplog.text and "Ann Lee" not in caplog.text
    assert post_elevenlabs(client, "no-such-clinic", "list_services", {}, other_key).status_code == 404
    assert bookings(session_factory, business_id) == []


def test_elevenlabs_tools_open_with_the_businesss_own_elevenlabs_secret_and_no_other(
        client, clinic, make_business, session_factory, first_slot):
    business_id, slug = clinic
    uow = lambda: SqlAlchemyUnitOfWork(session_factory)  # noqa: E731
    set_secret(uow(), business_id, "elevenlabs", "el-secret-of-the-clinic")
    garage = make_business("garage")
    set_secret(uow(), garage, "elevenlabs", "el-secret-of-the-garage")
    book = elevenlabs_body({"service": "consultation", "starts_at": first_slot, "customer_name": "Ann Lee"})
    for wrong in ("el-secret-of-the-garage", VAPI_SECRET, RETELL_KEY, "el-secret-of-the-clinic "[:-2]):
        assert post_elevenlabs(client, slug, "book_appointment", book, wrong).status_code == 401, wrong
    booked = post_elevenlabs(client, slug, "book_appointment", book, "el-secret-of-the-clinic")
    assert booked.status_code == 200 and booked.json()["outcome"] == "booked"
    [booking] = bookings(session_factory, business_id)
    assert booking.source == "elevenlabs"


@pytest.mark.parametrize("body, status", [(b"{not json", 400), (b"[1, 2]", 422),
                                          (b'{"caller_id": "' + b"1" * 41 + b'"}', 422)])
def test_malformed_elevenlabs_bodies_get_a_clear_4xx(client, clinic, api_key, body, status):
    reply = post_elevenlabs(client, clinic[1], "list_services", body, api_key(clinic[0]))
    assert reply.status_code == status and reply.json()["error"]["code"] in {"invalid_json", "invalid_payload"}
