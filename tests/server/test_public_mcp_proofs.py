"""Finding, moving and cancelling one's own bookings through the public endpoint, /b/{slug}/mcp: the customer
proves their phone or email with a one-time code first, and the proof reaches that contact's bookings only.
Driven with the SDK's real client over HTTP against the running app; the code is read from the outbox."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select

from nextslot.storage import queries
from nextslot.storage.tables import Booking, ContactProof, Notification

pytestmark = pytest.mark.anyio
TUESDAY, WEDNESDAY = "2026-11-24", "2026-11-25"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC
ANN, BOB = "+447911123456", "+447911123457"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def slug_of(session_factory, business_id: int) -> str:
    with session_factory() as session:
        return queries.business(session, business_id).slug


def public_client(url: str, slug: str) -> Client:
    return Client(streamable_http_client(f"{url}/b/{slug}/mcp", http_client=httpx2.AsyncClient(timeout=60)))


async def call(client: Client, name: str, **args) -> tuple[bool, dict]:
    result = await client.call_tool(name, args)
    return not result.is_error, json.loads(result.content[0].text)


async def book(c: Client, day: str, name: str, **contact) -> dict:
    _, slots = await call(c, "find_available_slots", service="consultation", date=day)
    ok, booked = await call(c, "book_appointment", service="consultation", starts_at=slots["slots"][0]["starts_at"],
                            customer_name=name, **contact)
    assert ok and booked["outcome"] == "booked", booked
    return booked["appointment"]


def codes_sent(session_factory, business_id: int, to: str) -> list[str]:
    with session_factory() as s:
        rows = s.scalars(select(Notification).where(Notification.business_id == business_id,
                                                    Notification.kind == "conversation_reply")
                         .order_by(Notification.id))
        return [re.search(r"\b(\d{6})\b", n.payload["text"])[1] for n in rows if n.payload["to"] == to]


async def prove(c: Client, session_factory, business_id: int, contact: str, to: str) -> str:
    ok, sent = await call(c, "request_code", contact=contact)
    assert ok and sent["outcome"] == "code_sent", sent
    code = codes_sent(session_factory, business_id, to)[-1]
    ok, proved = await call(c, "verify_code", challenge=sent["challenge"], code=code)
    assert ok and proved["outcome"] == "proved", proved
    return proved["proof"]


async def test_a_proved_customer_finds_moves_and_cancels_their_own_bookings_and_no_one_elses(
        live_server, make_business, session_factory):
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as c:
            ann = await book(c, TUESDAY, "Ann Lee", phone=ANN)
            bob = await book(c, WEDNESDAY, "Bob Ray", phone=BOB, email="bob@example.com")

            ok, sent = await call(c, "request_code", contact="07911 123456")  # local format, read as the business's
            assert ok and sent["sent_by"] == "sms" and sent["challenge"].startswith("nsv_")
            [code] = codes_sent(session_factory, clinic, ANN)
            ok, wrong = await call(c, "verify_code", challenge=sent["challenge"], code=f"{(int(code) + 1) % 10**6:06d}")
            assert not ok and wrong["error"]["code"] == "wrong_code" and "4 tries left" in wrong["error"]["message"]
            ok, proved = await call(c, "verify_code", challenge=sent["challenge"], code=f" {code} ")
            assert ok and proved["proof"].startswith("nsp_")
            proof = proved["proof"]
            ok, again = await call(c, "verify_code", challenge=sent["challenge"], code=code)
            assert not ok and again["error"]["code"] == "code_used"

            # whatever phone or email the assistant gives, it finds Ann's bookings only
            ok, found = await call(c, "find_appointments", proof=proof, phone=BOB, email="bob@example.com")
            assert ok and [a["code"] for a in found["appointments"]] == [ann["code"]]
            ok, found = await call(c, "find_appointments", proof=proof, code=bob["code"])  # Bob's code: only Ann's
            assert ok and [a["code"] for a in found["appointments"]] == [ann["code"]] and bob["code"] not in found["near_codes"]
            for name, args in (("cancel_appointment", {"code": bob["code"]}),
                               ("reschedule_appointment", {"code": bob["code"],
                                                           "new_starts_at": "2026-11-26T09:00:00+00:00"})):
                ok, refused = await call(c, name, proof=proof, **args)
                assert not ok and refused["error"]["code"] == "unknown_booking", refused

            _, later = await call(c, "find_available_slots", service="consultation", date="2026-11-26")
            ok, moved = await call(c, "reschedule_appointment", proof=proof, code=ann["code"],
                                   new_starts_at=later["slots"][0]["starts_at"], idempotency_key="move-1")
            assert ok and moved["outcome"] == "rescheduled", moved
            ok, cancelled = await call(c, "cancel_appointment", proof=proof, code=ann["code"])
            assert ok and cancelled["outcome"] == "cancelled"

            # a proof of Bob's email reaches Bob's booking
            bob_proof = await prove(c, session_factory, clinic, "Bob@Example.com", "bob@example.com")
            ok, found = await call(c, "find_appointments", proof=bob_proof)
            assert ok and [a["code"] for a in found["appointments"]] == [bob["code"]]
    with session_factory() as s:
        statuses = dict(s.execute(select(Booking.code, Booking.status).where(Booking.business_id == clinic)).all())
        stored = s.scalars(select(ContactProof).where(ContactProof.business_id == clinic)).all()
    assert statuses == {ann["code"]: "cancelled", bob["code"]: "booked"}
    texts = {json.dumps([p.challenge_hash, p.code_hash, p.proof_hash]) for p in stored}
    assert not any(secret in t for t in texts for secret in (proof, bob_proof, code, sent["challenge"]))


async def test_the_proved_tools_refuse_without_a_live_proof_of_this_business(
        live_server, make_business, session_factory, clock):
    clinic, garage = make_business("clinic"), make_business("clinic")
    slugs = slug_of(session_factory, clinic), slug_of(session_factory, garage)
    with live_server(frozen=True) as server:
        async with public_client(server.url, slugs[0]) as c, public_client(server.url, slugs[1]) as other:
            ann = await book(c, TUESDAY, "Ann Lee", phone=ANN)
            await book(other, TUESDAY, "Ann Lee", phone=ANN)  # the same person books at the other business too
            proof = await prove(c, session_factory, clinic, ANN, ANN)
            ok, refused = await call(c, "find_appointments")
            assert not ok and refused["error"]["code"] == "proof_required"
            for bad in ("nsp_" + "x" * 40, "  "):
                ok, refused = await call(c, "cancel_appointment", proof=bad, code=ann["code"])
                assert not ok and refused["error"]["code"] in {"proof_required", "invalid_arguments"}
            ok, elsewhere = await call(other, "find_appointments", proof=proof)  # proved at the clinic only
            assert not ok and elsewhere["error"]["code"] == "proof_required"
            clock.now += timedelta(minutes=31)
            ok, expired = await call(c, "find_appointments", proof=proof)
            assert not ok and expired["error"]["code"] == "proof_expired"
            clock.now -= timedelta(minutes=31)


async def test_a_stranger_learns_nothing_and_a_code_allows_five_tries(live_server, make_business, session_factory):
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as c:
            await book(c, TUESDAY, "Ann Lee", phone=ANN)
            ok, known = await call(c, "request_code", contact=ANN)
            ok2, unknown = await call(c, "request_code", contact="+447911123499")
            assert ok and ok2, unknown
            assert known["say"] == unknown["say"] and known["sent_by"] == unknown["sent_by"]
            assert codes_sent(session_factory, clinic, "+447911123499") == []  # nothing goes to a stranger
            for guess in ("000000", "123456"):
                ok, wrong = await call(c, "verify_code", challenge=unknown["challenge"], code=guess)
                assert not ok and wrong["error"]["code"] == "wrong_code"

            [code] = codes_sent(session_factory, clinic, ANN)
            for _ in range(5):
                ok, wrong = await call(c, "verify_code", challenge=known["challenge"], code="not-it")
                assert wrong["error"]["code"] == "wrong_code"
            ok, spent = await call(c, "verify_code", challenge=known["challenge"], code=code)
            assert not ok and spent["error"]["code"] == "code_expired"
            ok, bad = await call(c, "request_code", contact="not a phone")
            assert not ok and bad["error"]["code"] == "invalid_phone" and bad["error"]["field"] == "contact"


async def test_a_contact_gets_three_codes_an_hour_whoever_asks_and_a_code_lasts_ten_minutes(
        live_server, make_business, session_factory, clock):
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as c:
            await book(c, TUESDAY, "Ann Lee", phone=ANN)
            for _ in range(3):
                assert (await call(c, "request_code", contact=ANN))[0]
            ok, refused = await call(c, "request_code", contact="07911 123456")
            assert not ok and refused["error"]["code"] == "too_many_codes"
            assert len(codes_sent(session_factory, clinic, ANN)) == 3
            clock.now += timedelta(minutes=61)
            ok, sent = await call(c, "request_code", contact=ANN)
            assert ok
            clock.now += timedelta(minutes=11)
            ok, late = await call(c, "verify_code", challenge=sent["challenge"],
                                  code=codes_sent(session_factory, clinic, ANN)[-1])
            assert not ok and late["error"]["code"] == "code_expired"


async def test_an_address_asks_for_ten_codes_an_hour_whichever_contacts(live_server, make_business, session_factory):
    slug = slug_of(session_factory, make_business("clinic"))
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as c:
            answers = [await call(c, "request_code", contact=f"+4479111234{n:02d}") for n in range(10, 21)]
    assert [ok for ok, _ in answers] == [True] * 10 + [False]
    assert answers[-1][1]["error"]["code"] == "rate_limited"
