"""Someone who knows Maria's phone number or holds one of her codes does not learn where she lives: times about her
bookings come in the zone they name, else the clinic's (London), never her stored zone (Mexico City, six hours
behind). A stranger books and asks with her number through every way in: the voice line (the Vapi, Retell and
ElevenLabs webhooks, signed as the platforms sign them), a customer's own assistant at /b/{slug}/mcp (the SDK's
client over HTTP), the booking page and its chat (over HTTP, the chat answered by the engine as a scheduler runs
it). Maria herself (her own caller id, a one-time code she reads back) and the clinic's own agent (/mcp with its
key) still hear her zone."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nextslot.conversations.engine import ConversationEngine
from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.core.results import Booked, Changed
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Customer
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conversations.test_web_chat import WebChat
from tests.server.test_booking_page import form_key, settings, slug_of
from tests.server.test_public_mcp_proofs import call as public_call
from tests.server.test_public_mcp_proofs import prove, public_client
from tests.server.test_voice_webhooks import RETELL_KEY, VAPI_SECRET
from tests.tools.test_mcp_server import call as agent_call
from tests.tools.test_mcp_server import http_client
from tests.tools.test_voice_contact_lookup import ELEVENLABS_SECRET, PLATFORMS, ask, codes_sent

pytestmark = pytest.mark.anyio
MARIA, HER_ZONE = "+447911124811", "America/Mexico_City"  # she gave her zone: her messages tell her times in it
STRANGER = "+447911124812"
TUE_9, TUE_10 = "2026-11-24T09:00:00Z", "2026-11-24T10:00:00Z"  # the clock: Monday 23 November, 08:00 UTC
THU_9, THU_10, THU_11 = (f"2026-11-26T{h}:00:00Z" for h in ("09", "10", "11"))
HERS = ("Mexico", "-06:00", "3 am", "4 am", "5 am")  # her zone's name, offset, and her clock at 9, 10 and 11 UTC


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clinic(make_business, service, session_factory) -> tuple[int, str]:
    """The London clinic with its voice lines set up: (id, slug)."""
    business = make_business("clinic")
    for platform, secret in (("vapi", VAPI_SECRET), ("retell", RETELL_KEY), ("elevenlabs", ELEVENLABS_SECRET)):
        set_secret(SqlAlchemyUnitOfWork(session_factory), business, platform, secret)
    return business, slug_of(service, business)


@pytest.fixture
def maria(service, clinic) -> str:
    """Maria's own booking, Tuesday at 9 (3 am in Mexico City), made when she gave her zone: its code."""
    made = service.book(clinic[0], BookingCreate(
        service="consultation", starts_at=TUE_9, source="page",
        customer=CustomerIn(name="María Ruiz", phone=MARIA, timezone=HER_ZONE)))
    assert isinstance(made, Booked), made
    assert made.booking.customer.timezone == HER_ZONE
    return made.booking.code


@pytest.fixture
def missed(service, clinic, maria, clock) -> None:
    """Maria missed Tuesday's 9 and 10 o'clock: her next booking asks the policy's £15.00 deposit."""
    other = service.book(clinic[0], BookingCreate(service="consultation", starts_at=TUE_10, source="page",
                                                  customer=CustomerIn(name="María Ruiz", phone=MARIA)))
    assert isinstance(other, Booked), other
    clock.now += timedelta(days=1, hours=4)  # Tuesday noon
    for code in (maria, other.booking.code):
        assert isinstance(service.mark_no_show(clinic[0], BookingChange(code=code)), Changed)


@pytest.fixture
def client(service) -> TestClient:
    return TestClient(create_app(Settings(), service=service))


def tells_her_zone(answer: Any) -> bool:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return any(word in text for word in HERS)


def in_london(appointment: dict[str, Any], spoken: str) -> bool:
    return (appointment["timezone"], appointment["spoken"]) == ("Europe/London", spoken) and \
        appointment["starts_at"].endswith("+00:00")


# --- the voice line -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_stranger_with_her_number_or_code_on_the_voice_line_hears_the_clinics_zone_or_their_own_and_she_hers(
        client, clinic, maria, platform):
    slug = clinic[1]
    booked = ask(client, slug, platform, "book_appointment", {
        "service": "consultation", "starts_at": THU_9, "customer_name": "Someone", "phone": MARIA}, STRANGER)
    assert booked["outcome"] == "booked", booked
    assert in_london(booked["appointment"], "Thursday 26 November at 9 am"), booked
    assert "on Thursday 26 November at 9 am" in booked["say"] and not tells_her_zone(booked), booked
    code = booked["appointment"]["code"]
    for tool, args in (("find_appointments", {"code": code}), ("confirm_appointment", {"code": code})):
        answer = ask(client, slug, platform, tool, args, STRANGER)  # its code proves nothing
        shown = answer["appointments"][0] if tool == "find_appointments" else answer["appointment"]
        assert in_london(shown, "Thursday 26 November at 9 am") and not tells_her_zone(answer), answer
    found = ask(client, slug, platform, "find_appointments", {"code": maria}, STRANGER)
    assert in_london(found["appointments"][0], "Tuesday 24 November at 9 am"), found
    moved = ask(client, slug, platform, "reschedule_appointment", {"code": code, "new_starts_at": THU_10}, STRANGER)
    assert moved["outcome"] == "rescheduled" and in_london(moved["appointment"], "Thursday 26 November at 10 am")
    assert not tells_her_zone(moved), moved
    # a time said in the caller's own zone is answered in it
    theirs = ask(client, slug, platform, "reschedule_appointment", {
        "code": code, "new_starts_at": "2026-11-26T06:00:00", "timezone": "America/New_York"}, STRANGER)
    assert theirs["outcome"] == "rescheduled", theirs
    assert (theirs["appointment"]["timezone"], theirs["appointment"]["spoken"]) == (
        "America/New_York", "Thursday 26 November at 6 am"), theirs
    cancelled = ask(client, slug, platform, "cancel_appointment", {"code": code}, STRANGER)
    assert cancelled["outcome"] == "cancelled" and in_london(cancelled["appointment"], "Thursday 26 November at 11 am")
    assert not tells_her_zone(cancelled), cancelled
    # a booking made naming the caller's zone comes in it
    named = ask(client, slug, platform, "book_appointment", {
        "service": "consultation", "starts_at": THU_9, "customer_name": "Someone", "phone": MARIA,
        "caller_timezone": "America/New_York"}, STRANGER)
    assert (named["appointment"]["timezone"], named["appointment"]["spoken"]) == (
        "America/New_York", "Thursday 26 November at 4 am"), named
    assert "Mexico" not in json.dumps(named), named
    # Maria calling from her own number hears her own zone, about her booking and about the stranger's
    hers = ask(client, slug, platform, "find_appointments", {"code": maria}, MARIA)
    assert (hers["appointments"][0]["timezone"], hers["appointments"][0]["spoken"]) == (
        HER_ZONE, "Tuesday 24 November at 3 am"), hers
    again = ask(client, slug, platform, "confirm_appointment", {"code": named["appointment"]["code"]}, MARIA)
    assert again["appointment"]["timezone"] == HER_ZONE and "3 am" in again["say"], again


def test_a_withheld_caller_hears_her_zone_only_once_a_code_proves_her_number(client, clinic, maria, session_factory):
    business, slug = clinic
    before = ask(client, slug, "vapi", "find_appointments", {"code": maria}, None)  # her code alone proves nothing
    assert in_london(before["appointments"][0], "Tuesday 24 November at 9 am") and not tells_her_zone(before), before
    sent = ask(client, slug, "vapi", "request_code", {"contact": MARIA}, None)
    code = codes_sent(session_factory, business, MARIA)[-1]
    proved = ask(client, slug, "vapi", "verify_code", {"challenge": sent["challenge"], "code": code}, None)
    assert proved["outcome"] == "proved", proved
    found = ask(client, slug, "vapi", "find_appointments", {"proof": proved["proof"]}, None)
    assert found["appointments"][0]["timezone"] == HER_ZONE, found
    hers = ask(client, slug, "vapi", "confirm_appointment", {"code": maria, "proof": proved["proof"]}, None)
    assert hers["appointment"]["spoken"] == "Tuesday 24 November at 3 am", hers


def test_a_strangers_series_on_the_voice_line_comes_in_the_clinics_zone(client, clinic, maria):
    series = ask(client, clinic[1], "retell", "book_series", {
        "service": "consultation", "first_starts_at": THU_9, "count": 2, "customer_name": "Someone",
        "phone": MARIA}, STRANGER)
    assert series["outcome"] == "booked", series
    made = [line["appointment"] for line in series["occurrences"]]
    assert [a["spoken"] for a in made] == ["Thursday 26 November at 9 am", "Thursday 3 December at 9 am"], series
    assert {a["timezone"] for a in made} == {"Europe/London"} and not tells_her_zone(series), series


def test_a_strangers_deposit_on_the_voice_line_is_due_by_the_clinics_clock(client, clinic, missed):
    booked = ask(client, clinic[1], "vapi", "book_appointment", {
        "service": "consultation", "starts_at": THU_11, "customer_name": "Someone", "phone": MARIA}, STRANGER)
    shown = booked["appointment"]
    assert shown["deposit_due"] == "£15.00" and in_london(shown, "Thursday 26 November at 11 am"), booked
    assert shown["pay_by"] == "Tuesday 24 November at 12:30 pm" and not tells_her_zone(booked), booked  # 6:30 am hers


# --- a customer's own assistant, and the clinic's own agent -------------------------------------------------------


async def test_a_strangers_assistant_hears_the_clinics_zone_or_its_own_and_hers_and_the_clinics_agent_hers(
        live_server, service, clinic, maria, api_key, session_factory):
    business, slug = clinic
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as assistant:
            ok, booked = await public_call(assistant, "book_appointment", service="consultation", starts_at=THU_9,
                                           customer_name="Someone", phone=MARIA)
            assert ok and in_london(booked["appointment"], "Thursday 26 November at 9 am"), booked
            assert not tells_her_zone(booked), booked
            ok, named = await public_call(assistant, "book_appointment", service="consultation", starts_at=THU_10,
                                          customer_name="Someone", phone=MARIA, caller_timezone="Asia/Tokyo")
            assert ok and (named["appointment"]["timezone"], named["appointment"]["spoken"]) == (
                "Asia/Tokyo", "Thursday 26 November at 7 pm"), named
            assert "Mexico" not in json.dumps(named), named
            # Maria's own assistant, once she reads back the code sent to her phone, hears hers
            proof = await prove(assistant, session_factory, business, MARIA, MARIA)
            ok, found = await public_call(assistant, "find_appointments", proof=proof)
            assert ok and len(found["appointments"]) == 3, found
            assert {a["timezone"] for a in found["appointments"]} == {HER_ZONE}, found
        async with http_client(server.url, api_key(business)) as agent:  # the clinic's own: its staff's reach
            staff = await agent_call(agent, "book_appointment", service="consultation", starts_at=THU_11,
                                     customer_name="María Ruiz", phone=MARIA)
    assert (staff["appointment"]["timezone"], staff["appointment"]["spoken"]) == (
        HER_ZONE, "Thursday 26 November at 5 am"), staff


# --- the booking page and its chat --------------------------------------------------------------------------------


def zone_shown(html: str) -> str:
    return re.search(r'<html lang="\w+" data-tz="([^"]+)"', html)[1]


def test_a_stranger_booking_on_the_page_with_her_number_reads_the_clinics_zone_or_the_one_picked(
        live_server, service, clinic, maria):
    business, slug = clinic
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/consultation/book", params={"at": THU_9})  # no script: no `tz`
        posted = http.post(f"/b/{slug}/consultation/book", data={
            "at": THU_9, "key": form_key(form.text), "customer.name": "Someone", "customer.phone": MARIA})
        assert posted.status_code == 303, posted.text
        confirmation = http.get(posted.headers["location"])
        manage = unescape(re.search(r'id="manage-link" href="([^"]+)"', confirmation.text)[1])
        managed = http.get(manage)
        for page in (confirmation, managed):
            assert page.status_code == 200, page.text
            assert "Thursday 26 November at 9 am" in page.text and "(Europe/London time)" in page.text, page.text
            assert zone_shown(page.text) == "Europe/London" and not tells_her_zone(page.text)
        # her own booking's manage page, opened by whoever holds its link: the clinic's zone too
        picked = http.get(manage.split("?")[0], params={"tz": "America/New_York"})
        assert "Thursday 26 November at 4 am" in picked.text and "(America/New York time)" in picked.text
    with service.uow() as uow:  # and her stored zone is untouched: her messages still tell her times in it
        assert uow.session.scalar(select(Customer.timezone).where(Customer.phone == MARIA,
                                                                  Customer.business_id == business)) == HER_ZONE


def test_a_strangers_deposit_on_the_page_is_described_in_the_clinics_zone(live_server, service, clinic, missed):
    business, slug = clinic
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/consultation/book", params={"at": THU_9})
        posted = http.post(f"/b/{slug}/consultation/book", data={
            "at": THU_9, "key": form_key(form.text), "customer.name": "Someone", "customer.phone": MARIA})
        assert posted.status_code == 303 and "/pay/" in posted.headers["location"], posted.text
        started = http.get(posted.headers["location"])  # the local provider's checkout, on the public URL
        assert started.status_code == 303, started.text
        checkout = http.get(httpx.URL(started.headers["location"]).path)
    assert checkout.status_code == 200, checkout.text
    assert "Thursday 26 November at 9 am" in checkout.text and not tells_her_zone(checkout.text), checkout.text


@pytest.fixture
def web_chat(service, clinic, session_factory) -> Iterator[WebChat]:
    settings = Settings(secret_key="stranger-zone-tests")
    with TestClient(create_app(settings, service=service), follow_redirects=False) as http:
        yield WebChat(http, clinic[1], ConversationEngine(service, settings), session_factory)


def test_a_stranger_booking_through_the_pages_chat_with_her_number_is_told_the_clinics_time(
        web_chat, service, clinic, session_factory):
    made = service.book(clinic[0], BookingCreate(  # Maria's own, on Thursday: the stranger's Tuesday is free
        service="consultation", starts_at=THU_9, source="page",
        customer=CustomerIn(name="María Ruiz", phone=MARIA, timezone=HER_ZONE)))
    assert isinstance(made, Booked), made
    web_chat.say("hello", name="Someone", phone=MARIA)
    web_chat.say("1")
    web_chat.say("1")
    assert "Which time on Tuesday 24 November?" in web_chat.say("2")
    web_chat.say("1")
    booked = web_chat.say("1")
    assert booked.startswith("Booked: GP consultation on Tuesday 24 November at 8:30 am."), booked
    with session_factory() as s:
        booking = s.scalars(select(Booking).join(Customer).where(
            Customer.phone == MARIA, Booking.business_id == clinic[0], Booking.source == "web_chat")).one()
        assert booking.customer.timezone == HER_ZONE  # hers still, for her own messages
