"""An OAuth access token is one business's: issued through the real consent flow for business A, it reads and
changes nothing of business B through /mcp (B's booking codes and customers look like nothing), gains nothing
at B's public endpoint /b/{slug}/mcp beyond what a stranger has there, and A's owner cannot revoke B's grants."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select

from nextslot.core.results import Booked
from nextslot.oauth import grants
from nextslot.oauth.tables import OAuthGrant
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.tables import Booking, StaffAccount
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.oauth.conftest import MemoryStorage, Person, client_for, oauth_server, shop  # noqa: F401 - fixtures
from tests.oauth.conftest import sign_in as console_sign_in

pytestmark = pytest.mark.anyio
B_PHONE, B_NAME = "+447900988321", "Bartholomew Underhill"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def token_for(base: str, place) -> str:
    storage = MemoryStorage()
    auth = client_for(base, Person(base, place, place.owner), storage)
    async with httpx2.AsyncClient(auth=auth, timeout=20) as http:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            assert not (await client.call_tool("list_services", {})).is_error
    return storage.tokens.access_token


async def calls(url: str, token: str, *named: tuple[str, dict]) -> list:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=20)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        return [await client.call_tool(name, args) for name, args in named]


def booking_state(session_factory, code: str) -> tuple:
    with session_factory() as s:
        b = s.scalar(select(Booking).where(Booking.code == code))
        return b.business_id, b.status, b.starts_at


async def test_an_oauth_token_of_a_reaches_nothing_of_b(oauth_server, shop, service, session_factory):  # noqa: F811
    a, b = shop(), shop()
    booked = service.book(b.id, BookingCreate(service="consultation", starts_at="2026-11-24T09:00:00Z",
                                              customer=CustomerIn(name=B_NAME, phone=B_PHONE)))
    assert isinstance(booked, Booked)
    code = booked.booking.code
    before = booking_state(session_factory, code)
    with oauth_server() as server:
        token = await token_for(server.url, a)
        results = await calls(f"{server.url}/mcp", token,
                              ("find_appointments", {"code": code}), ("find_appointments", {"phone": B_PHONE}),
                              ("customer_history", {"phone": B_PHONE}), ("confirm_appointment", {"code": code}),
                              ("cancel_appointment", {"code": code}),
                              ("reschedule_appointment", {"code": code, "new_starts_at": "2026-11-24T10:00:00Z"}))
        for result in results:
            text = result.content[0].text
            assert B_NAME not in text and code not in json.dumps(result.structured_content or {}), text
        outcomes = [json.loads(r.content[0].text).get("error", {}).get("code") or
                    len(r.structured_content.get("appointments", [])) for r in results]
        assert outcomes == ["unknown_booking", 0, "unknown_customer", "unknown_booking", "unknown_booking", "unknown_booking"], outcomes
        # the same phone at A's own business: the token books there, and finds that booking only
        [open_times] = await calls(f"{server.url}/mcp", token, ("find_available_slots", {"service": "consultation"}))
        first = open_times.structured_content["slots"][0]["starts_at"]
        [made, found] = await calls(f"{server.url}/mcp", token, ("book_appointment", {
            "service": "consultation", "starts_at": first, "customer_name": "Ann", "phone": B_PHONE}),
            ("find_appointments", {"phone": B_PHONE}))
        assert not made.is_error and [x["code"] for x in found.structured_content["appointments"]] == [
            made.structured_content["appointment"]["code"]]

        # at B's public endpoint A's token is no key at all: the public tools only, a change needs B's customer
        public = await calls(f"{server.url}/b/{b.slug}/mcp", token, ("cancel_appointment", {"code": code}),
                             ("find_appointments", {"code": code}), ("customer_history", {"phone": B_PHONE}))
        assert [json.loads(r.content[0].text)["error"]["code"] for r in public] == [
            "proof_required", "proof_required", "unknown_tool"]
    assert booking_state(session_factory, code) == before


async def test_the_owner_of_a_cannot_revoke_an_app_connected_to_b(oauth_server, shop, session_factory):  # noqa: F811
    a, b = shop(), shop()
    grants.save_client(SqlAlchemyUnitOfWork(session_factory), "client-of-b", "B's app", {})
    with session_factory() as s:
        account = s.scalar(select(StaffAccount.id).where(StaffAccount.email == b.owner))
    grants.approve(SqlAlchemyUnitOfWork(session_factory), client_id="client-of-b", business_id=b.id,
                   account_id=account, scopes=["availability:read"], resource="http://x/mcp", code_challenge="c",
                   redirect_uri="http://127.0.0.1:9/cb", redirect_uri_explicit=True,
                   now=datetime.now(UTC))
    with session_factory() as s:
        grant_id = s.scalar(select(OAuthGrant.id).where(OAuthGrant.business_id == b.id))
    with oauth_server() as server:
        async with httpx2.AsyncClient(base_url=server.url) as http:
            await console_sign_in(http, server.url, a.slug, a.owner)
            page = await http.get(f"/console/{a.slug}/settings/apps")
            csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            answer = await http.post(f"/console/{a.slug}/settings/apps/{grant_id}/revoke", data={"csrf": csrf})
    assert answer.status_code == 404
    with session_factory() as s:
        assert s.get(OAuthGrant, grant_id).revoked_at is None
