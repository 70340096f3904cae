"""The public per-business MCP endpoint, /b/{slug}/mcp: a customer's own assistant, with no key, through the
SDK's real client over HTTP against the running app."""
from __future__ import annotations

import json

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select

from nextslot.server.public_mcp import PUBLIC_TOOLS
from nextslot.storage import queries
from nextslot.storage.tables import Booking

pytestmark = pytest.mark.anyio
TUESDAY = "2026-11-24"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC
RPC_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def slug_of(session_factory, business_id: int) -> str:
    with session_factory() as session:
        return queries.business(session, business_id).slug


def public_client(url: str, slug: str) -> Client:
    return Client(streamable_http_client(f"{url}/b/{slug}/mcp", http_client=httpx2.AsyncClient(timeout=30)))


async def call(client: Client, name: str, **args) -> tuple[bool, dict]:
    result = await client.call_tool(name, args)
    return not result.is_error, json.loads(result.content[0].text)


async def test_a_customers_assistant_books_without_a_key_with_the_customer_facing_tools_only(
        live_server, make_business, session_factory):
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as c:
            tools = {t.name for t in (await c.list_tools()).tools}
            assert tools == set(PUBLIC_TOOLS)
            profile = json.loads((await c.read_resource("nextslot://business/profile")).contents[0].text)
            assert profile["name"] == "Riverside Clinic"
            prompt = (await c.get_prompt("receptionist")).messages[0].content.text
            assert "may not use" in prompt and "customer_history" in prompt and "request_code" in prompt
            ok, slots = await call(c, "find_available_slots", service="consultation", date=TUESDAY)
            ok, booked = await call(c, "book_appointment", service="consultation",
                                    starts_at=slots["slots"][0]["starts_at"], customer_name="Ann Lee",
                                    phone="07911 123456", idempotency_key="booking-1")
            assert ok and booked["outcome"] == "booked"
            for name, args in (("find_appointments", {"phone": "07911123456"}),
                               ("cancel_appointment", {"code": booked["appointment"]["code"]})):
                ok, refused = await call(c, name, **args)
                assert not ok and refused["error"]["code"] == "proof_required"  # nobody proved the phone
            for name in ("confirm_appointment", "customer_history", "join_waitlist"):
                ok, refused = await call(c, name, code=booked["appointment"]["code"])
                assert not ok and refused["error"]["code"] == "unknown_tool"
    with session_factory() as s:
        [booking] = s.scalars(select(Booking).where(Booking.business_id == clinic))
        assert booking.source == "public_mcp" and booking.status == "booked"


async def test_two_strangers_sending_the_same_idempotency_key_get_their_own_bookings(
        live_server, make_business, session_factory):
    slug = slug_of(session_factory, make_business("clinic"))
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as c:
            first, second = [(await call(c, "find_available_slots", service="consultation", date=day))[1]["slots"][0]
                             ["starts_at"] for day in (TUESDAY, "2026-11-25")]
            _, ann = await call(c, "book_appointment", service="consultation", starts_at=first, customer_name="Ann",
                                phone="+447911123456", idempotency_key="booking-1")
            _, bob = await call(c, "book_appointment", service="consultation", starts_at=second, customer_name="Bob",
                                phone="+447911123457", idempotency_key="booking-1")
            _, ann_again = await call(c, "book_appointment", service="consultation", starts_at=first,
                                      customer_name="Ann", phone="+447911123456", idempotency_key="booking-1")
    assert bob.get("outcome") == "booked", bob
    assert bob["appointment"]["code"] != ann["appointment"]["code"]
    assert bob["appointment"]["starts_at"] == second and bob.get("replayed") is False
    assert ann_again["replayed"] is True and ann_again["appointment"]["code"] == ann["appointment"]["code"]


async def test_a_deposit_service_booked_by_a_customers_assistant_waits_for_payment_like_the_page(
        live_server, make_business, session_factory):
    slug = slug_of(session_factory, make_business("garage"))
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as c:
            ok, reply = await call(c, "book_appointment", service="mobile-repair",
                                   starts_at="2026-11-24T10:00:00-05:00", customer_name="Ada", phone="+12125550190",
                                   answers=[{"question": "address", "answer": "1 Elm St"},
                                            {"question": "problem", "answer": "Flat battery"}])
    assert ok and reply["appointment"]["status"] == "pending_payment" and "payment link" in reply["say"]


async def test_unknown_businesses_are_404_and_the_pages_budget_per_address_applies(
        live_server, make_business, session_factory):
    slug = slug_of(session_factory, make_business("clinic"))
    write = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "book_appointment",
                                                                            "arguments": {}}}
    with live_server() as server:
        async with httpx2.AsyncClient(base_url=server.url, headers=RPC_HEADERS, timeout=30) as http:
            unknown = await http.post("/b/no-such-business/mcp", json=write)
            assert unknown.status_code == 404 and unknown.json()["error"]["data"]["code"] == "unknown_business"
            def text(answer: httpx2.Response) -> dict:
                return json.loads(answer.json()["result"]["content"][0]["text"])

            # 60 a minute per address, the 404 above counted: a request costs 1, a booking 2 more
            answers = [await http.post(f"/b/{slug}/mcp", json=write) for _ in range(20)]
            assert {text(a)["error"]["code"] for a in answers[:19]} == {"invalid_arguments"}
            assert text(answers[19])["error"]["code"] == "rate_limited"  # its extra 2 did not fit: refused unrun
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            assert (await http.post(f"/b/{slug}/mcp", json=listing)).status_code == 200  # the 60th
            over = await http.post(f"/b/{slug}/mcp", json=listing)
    assert over.status_code == 429 and over.headers["retry-after"] and over.json()["error"]["data"]["code"] == \
        "rate_limited"


async def test_no_holds_here_and_another_channels_hold_cannot_be_booked_with(live_server, make_business,
                                                                            session_factory, service):
    from nextslot.core.results import Booked, Held
    from nextslot.schemas.commands import BookingCreate, CustomerIn, HoldCreate

    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    start = "2026-11-24T09:00:00+00:00"
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=start))  # a voice agent's caller
    assert isinstance(held, Held)
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as c:
            assert "hold_slot" not in {t.name for t in (await c.list_tools()).tools}
            ok, refused = await call(c, "book_appointment", service="consultation", starts_at=start,
                                     customer_name="Mallory", phone="07911 123999", hold_id=held.hold.id)
            assert not ok and refused["error"]["code"] == "hold_not_offered"
    mine = service.book(clinic, BookingCreate(service="consultation", starts_at=start, hold_id=held.hold.id,
                                              customer=CustomerIn(name="Alice", phone="+447911123998")))
    assert isinstance(mine, Booked)  # the hold's own caller still books with it
