"""Every way in, driven as a stranger drives it: someone who knows Ann's phone number books as "Mrs Idiot" through
the business's agent (MCP, the SDK's real client over HTTP), a customer's own assistant (/b/{slug}/mcp), a voice
platform's webhook and the booking page. Each is answered with the name it gave, never Ann's, and Ann stays Ann,
in German; her business's staff see both names and can still rename her."""
from __future__ import annotations

import json
import re
from html import unescape

import httpx2 as httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Customer
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.server.staff_api.conftest import api  # noqa: F401 - a client holding a business's key
from tests.server.test_booking_page import form_key, settings, slug_of
from tests.server.test_console import clients, console  # noqa: F401 - the console's fixtures
from tests.server.test_public_mcp_proofs import call as public_call
from tests.server.test_public_mcp_proofs import public_client
from tests.server.test_voice_webhooks import VAPI_SECRET, post_vapi, vapi_book, vapi_message
from tests.tools.test_mcp_server import call, http_client

pytestmark = pytest.mark.anyio
ANN = "+447911123456"
TUE_9, TUE_10, TUE_11 = (f"2026-11-24T{h}:00:00Z" for h in ("09", "10", "11"))  # the clock: Monday 08:00 UTC


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clinic(make_business, service, session_factory) -> int:
    """The clinic, its Vapi assistant set up, and Ann's own booking (in German)."""
    business = make_business("clinic")
    set_secret(SqlAlchemyUnitOfWork(session_factory), business, "vapi", VAPI_SECRET)
    ann = service.book(business, BookingCreate(service="consultation", starts_at=TUE_9, source="page",
                                               customer=CustomerIn(name="Ann Lee", phone=ANN, language="de")))
    assert isinstance(ann, Booked), ann
    return business


def ann_is_as_she_was(session_factory, business: int) -> bool:
    with session_factory() as s:
        ann = s.scalars(select(Customer).where(Customer.business_id == business, Customer.phone == ANN)).one()
        return (ann.name, ann.language) == ("Ann Lee", "de")


def names_only_the_stranger(reply: dict) -> bool:
    shown = reply.get("appointment") or reply["appointments"][0]
    return shown["customer_name"] == "Mrs Idiot" and "Ann" not in json.dumps(reply)


async def test_a_strangers_agent_over_mcp_is_answered_with_the_name_it_gave(
        live_server, clinic, api_key, session_factory):
    key = api_key(clinic)
    with live_server(frozen=True) as server:
        async with http_client(server.url, key) as agent:
            booked = await call(agent, "book_appointment", service="consultation", starts_at=TUE_10,
                                customer_name="Mrs Idiot", phone=ANN, language="es")
            code = booked["appointment"]["code"]
            found = await call(agent, "find_appointments", code=code)
            moved = await call(agent, "reschedule_appointment", code=code, new_starts_at=TUE_11)
    assert all(names_only_the_stranger(reply) for reply in (booked, found, moved)), (booked, found, moved)
    assert ann_is_as_she_was(session_factory, clinic)


async def test_a_strangers_own_assistant_is_answered_with_the_name_it_gave(
        live_server, service, clinic, session_factory):
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug_of(service, clinic)) as assistant:
            ok, booked = await public_call(assistant, "book_appointment", service="consultation", starts_at=TUE_10,
                                           customer_name="Mrs Idiot", phone=ANN, language="es")
    assert ok and names_only_the_stranger(booked), booked
    assert ann_is_as_she_was(session_factory, clinic)


def test_a_voice_caller_with_her_number_is_answered_with_the_name_they_gave(service, clinic, session_factory):
    client = TestClient(create_app(Settings(), service=service))
    reply = post_vapi(client, slug_of(service, clinic),
                      vapi_message(vapi_book("call_stranger", TUE_10, name="Mrs Idiot"), number=ANN))
    assert reply.status_code == 200, reply.text
    assert names_only_the_stranger(json.loads(reply.json()["results"][0]["result"])), reply.text
    assert ann_is_as_she_was(session_factory, clinic)


def test_the_page_confirms_a_strangers_booking_and_its_manage_link_and_calendar_under_the_name_given(
        live_server, service, clinic, session_factory):
    slug = slug_of(service, clinic)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/consultation/book", params={"at": TUE_10})
        posted = http.post(f"/b/{slug}/consultation/book", data={
            "at": TUE_10, "key": form_key(form.text), "customer.name": "Mrs Idiot", "customer.phone": ANN})
        assert posted.status_code == 303, posted.text
        confirmation = http.get(posted.headers["location"])
        manage = unescape(re.search(r'id="manage-link" href="([^"]+)"', confirmation.text).group(1))
        managed = http.get(manage)
        calendar = http.get(unescape(re.search(r'href="(/ics/booking/[^"]+)" download', confirmation.text).group(1)))
    for shown in (confirmation, managed, calendar):
        assert shown.status_code == 200 and "Mrs Idiot" in shown.text and "Ann Lee" not in shown.text, shown.text
    assert ann_is_as_she_was(session_factory, clinic)


def test_the_staff_see_her_name_and_the_name_given_and_still_rename_her(
        api, console, service, clinic, session_factory):  # noqa: F811 - the fixtures imported above
    stranger = service.book(clinic, BookingCreate(service="consultation", starts_at=TUE_10, source="mcp",
                                                  customer=CustomerIn(name="Mrs Idiot", phone=ANN, language="es")))
    code = stranger.booking.code
    seen = api(clinic).get(f"/v1/bookings/{code}").json()
    assert (seen["customer"]["name"], seen["customer"]["language"], seen["contact_name"]) == (
        "Ann Lee", "de", "Mrs Idiot")
    client, slug = console(clinic)
    page = client.get(f"/console/{slug}/bookings/{code}").text
    assert "Ann Lee" in page and re.search(r"data-booked-as>booked as Mrs Idiot\b", page), page
    renamed = api(clinic).post("/v1/bookings", json={"service": "consultation", "starts_at": TUE_11, "customer": {
        "name": "Ann Lee-Smith", "phone": ANN, "language": "fr"}})
    assert renamed.status_code == 201, renamed.text
    assert renamed.json()["customer"]["name"] == renamed.json()["contact_name"] == "Ann Lee-Smith"
    with session_factory() as s:
        ann = s.scalars(select(Customer).where(Customer.business_id == clinic, Customer.phone == ANN)).one()
        assert (ann.name, ann.language) == ("Ann Lee-Smith", "fr")
