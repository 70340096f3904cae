"""Someone who knows Maria's phone number learns nothing of her record from the answers: not the language she reads,
nor that she missed appointments. Maria reads Spanish; her clinic's own language is French. A stranger books or
asks with her number, naming no language, through every way in: the voice line (the Vapi, Retell and ElevenLabs
webhooks, signed as the platforms sign them), a customer's own assistant at /b/{slug}/mcp (the SDK's client over
HTTP) and the booking page. Each is answered in the clinic's French and told only that a deposit is needed. Maria
herself (her own caller id, a one-time code she reads back, the links in her own messages) and the clinic's own
agent (/mcp with its key) still hear Spanish, and why."""
from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.core.links import Links
from nextslot.core.results import Booked, Changed
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.reminders.test_dispatcher import ScriptedChannel
from tests.server.test_booking_page import SECRET, form_key, settings, slug_of
from tests.server.test_public_mcp_proofs import call as public_call
from tests.server.test_public_mcp_proofs import prove, public_client
from tests.server.test_voice_webhooks import RETELL_KEY, VAPI_SECRET
from tests.tools.test_mcp_server import call as agent_call
from tests.tools.test_mcp_server import http_client
from tests.tools.test_voice_contact_lookup import ELEVENLABS_SECRET, PLATFORMS, ask, codes_sent

pytestmark = pytest.mark.anyio
MARIA = "+447911124801"  # reads Spanish
STRANGER = "+447911124802"
TUE_9, TUE_10 = "2026-11-24T09:00:00Z", "2026-11-24T10:00:00Z"  # the clock: Monday 23 November, 08:00 UTC
THU_9, THU_10, THU_11 = (f"2026-11-26T{h}:00:00Z" for h in ("09", "10", "11"))
SPANISH = ("Reservado", "Gracias", "Su cita", "martes", "jueves", "noviembre")  # words of hers, not of French
WHY = "missed appointments"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clinic(make_business, service, session_factory) -> tuple[int, str]:
    """A clinic speaking French (its page's language), its voice lines set up, and Maria's own booking on Tuesday
    at 9 (she gave Spanish): (id, slug). Two missed appointments ask a deposit (the example's no-show policy)."""
    business = make_business("clinic", details={"language": "fr", "phone": "+44 20 7946 0958"})
    for platform, secret in (("vapi", VAPI_SECRET), ("retell", RETELL_KEY), ("elevenlabs", ELEVENLABS_SECRET)):
        set_secret(SqlAlchemyUnitOfWork(session_factory), business, platform, secret)
    return business, slug_of(service, business)


@pytest.fixture
def maria(service, clinic) -> str:
    """Maria's own booking, Tuesday at 9, made on the page in Spanish: its code."""
    made = service.book(clinic[0], BookingCreate(service="consultation", starts_at=TUE_9, source="page",
                                                 customer=CustomerIn(name="María Ruiz", phone=MARIA, language="es")))
    assert isinstance(made, Booked), made
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


def speaks_spanish(text: str) -> bool:
    return any(word in text for word in SPANISH)


# --- the voice line -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_stranger_booking_with_her_number_on_the_voice_line_hears_the_clinics_language_and_she_hers(
        client, clinic, maria, platform):
    slug = clinic[1]
    booked = ask(client, slug, platform, "book_appointment", {
        "service": "consultation", "starts_at": THU_9, "customer_name": "Someone", "phone": MARIA}, STRANGER)
    assert booked["outcome"] == "booked", booked
    assert booked["say"].startswith("C'est réservé : GP consultation") and not speaks_spanish(str(booked)), booked
    code = booked["appointment"]["code"]
    found = ask(client, slug, platform, "find_appointments", {"code": code}, STRANGER)  # its code proves nothing
    assert found["appointments"][0]["spoken"].startswith("jeudi 26 novembre"), found
    confirmed = ask(client, slug, platform, "confirm_appointment", {"code": code}, STRANGER)
    assert confirmed["say"].startswith("Merci. Votre rendez-vous") and not speaks_spanish(str(confirmed)), confirmed
    # Maria calling from her own number hears her own language, about her booking and about the stranger's
    hers = ask(client, slug, platform, "confirm_appointment", {"code": maria}, MARIA)
    assert hers["say"].startswith("Gracias. Su cita de GP consultation el martes"), hers
    found = ask(client, slug, platform, "find_appointments", {"code": code}, MARIA)
    assert found["appointments"][0]["spoken"].startswith("jueves, 26 de noviembre"), found


def test_a_withheld_caller_hears_her_language_only_once_a_code_proves_her_number(
        client, clinic, maria, session_factory):
    business, slug = clinic
    before = ask(client, slug, "vapi", "find_appointments", {"code": maria}, None)  # her code alone proves nothing
    assert before["appointments"][0]["spoken"].startswith("mardi 24 novembre"), before
    sent = ask(client, slug, "vapi", "request_code", {"contact": MARIA}, None)
    code = codes_sent(session_factory, business, MARIA)[-1]
    proved = ask(client, slug, "vapi", "verify_code", {"challenge": sent["challenge"], "code": code}, None)
    assert proved["outcome"] == "proved", proved
    found = ask(client, slug, "vapi", "find_appointments", {"proof": proved["proof"]}, None)
    assert found["appointments"][0]["spoken"].startswith("martes, 24 de noviembre"), found
    hers = ask(client, slug, "vapi", "confirm_appointment", {"code": maria, "proof": proved["proof"]}, None)
    assert hers["say"].startswith("Gracias. Su cita"), hers


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_stranger_booking_with_her_number_on_the_voice_line_is_not_told_she_missed_appointments(
        client, clinic, missed, platform):
    slug = clinic[1]
    booked = ask(client, slug, platform, "book_appointment", {
        "service": "consultation", "starts_at": THU_9, "customer_name": "Someone", "phone": MARIA}, STRANGER)
    assert booked["outcome"] == "booked" and booked["appointment"]["status"] == "pending_payment", booked
    shown = booked["appointment"]
    assert (shown["deposit_due"], shown["deposit_reason"]) == ("£15.00", None), shown
    assert "It needs a £15.00 deposit to be confirmed" in booked["say"] and WHY not in str(booked), booked
    again = ask(client, slug, platform, "find_appointments", {"code": shown["code"]}, STRANGER)
    assert again["appointments"][0]["deposit_reason"] is None, again
    # Maria on her own number is told why, as before
    hers = ask(client, slug, platform, "book_appointment", {
        "service": "consultation", "starts_at": THU_10, "customer_name": "María Ruiz"}, MARIA)
    assert hers["appointment"]["deposit_reason"] == "no_shows", hers
    assert "Because of missed appointments before, it needs a £15.00 deposit" in hers["say"], hers


# --- a customer's own assistant, and the clinic's own agent -------------------------------------------------------


async def test_a_strangers_assistant_hears_neither_her_language_nor_why_and_her_own_and_the_clinics_agent_do(
        live_server, service, clinic, missed, api_key, session_factory):
    business, slug = clinic
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as assistant:
            ok, booked = await public_call(assistant, "book_appointment", service="consultation", starts_at=THU_9,
                                           customer_name="Someone", phone=MARIA)
            assert ok and booked["appointment"]["status"] == "pending_payment", booked
            assert booked["appointment"]["spoken"].startswith("jeudi 26 novembre"), booked
            assert booked["appointment"]["deposit_reason"] is None and WHY not in str(booked), booked
            assert not speaks_spanish(str(booked)), booked
            # Maria's own assistant, once she reads back the code sent to her phone, hears hers and why
            proof = await prove(assistant, session_factory, business, MARIA, MARIA)
            ok, found = await public_call(assistant, "find_appointments", proof=proof)
            assert ok and found["appointments"], found
            assert all(a["spoken"].startswith(("martes", "jueves")) for a in found["appointments"]), found
            assert {a["deposit_reason"] for a in found["appointments"]} >= {"no_shows"}, found
        async with http_client(server.url, api_key(business)) as agent:  # the clinic's own: its staff's reach
            staff = await agent_call(agent, "book_appointment", service="consultation", starts_at=THU_11,
                                     customer_name="María Ruiz", phone=MARIA)
    assert staff["appointment"]["spoken"].startswith("jueves, 26 de noviembre"), staff
    assert staff["appointment"]["deposit_reason"] == "no_shows" and WHY in staff["say"], staff


# --- the booking page ---------------------------------------------------------------------------------------------


def lang_of(html: str) -> str:
    return re.search(r'<html lang="(\w+)"', html)[1]


def test_a_stranger_booking_on_the_page_with_her_number_reads_the_clinics_language_and_her_messages_hers(
        live_server, service, clinic, maria, session_factory, clock):
    business, slug = clinic
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/consultation/book", params={"at": THU_9})
        posted = http.post(f"/b/{slug}/consultation/book", data={
            "at": THU_9, "key": form_key(form.text), "customer.name": "Someone", "customer.phone": MARIA})
        assert posted.status_code == 303, posted.text
        confirmation = http.get(posted.headers["location"])
        manage = unescape(re.search(r'id="manage-link" href="([^"]+)"', confirmation.text)[1])
        managed = http.get(manage)
        for page in (confirmation, managed):
            assert page.status_code == 200 and lang_of(page.text) == "fr", page.text
            assert page.headers["content-language"] == "fr" and not speaks_spanish(page.text)
        # her own messages carry her language: the link in them opens her pages in Spanish
        channels = {name: ScriptedChannel(name) for name in ("whatsapp", "sms", "email")}
        Dispatcher(session_factory, channels, clock=clock,
                   links=Links(SECRET, "https://book.example.com")).dispatch_due()
        [own] = [m for m in channels["whatsapp"].sent if maria in m.body]
        link = re.search(r"https://book\.example\.com(/m/[^\s?]+\?lang=es)\b", own.body)
        assert link, own.body
        assert lang_of(http.get(link[1]).text) == "es"


def test_a_strangers_deposit_on_the_page_is_asked_in_the_clinics_language(
        live_server, service, clinic, missed):
    business, slug = clinic
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/consultation/book", params={"at": THU_9})
        posted = http.post(f"/b/{slug}/consultation/book", data={
            "at": THU_9, "key": form_key(form.text), "customer.name": "Someone", "customer.phone": MARIA})
        assert posted.status_code == 303 and "/pay/" in posted.headers["location"], posted.text
        started = http.get(posted.headers["location"])  # the local provider's checkout, on the public URL
        assert started.status_code == 303, started.text
        checkout = http.get(httpx.URL(started.headers["location"]).path)
    assert checkout.status_code == 200 and lang_of(checkout.text) == "fr", checkout.text
    assert not speaks_spanish(checkout.text) and WHY not in checkout.text
