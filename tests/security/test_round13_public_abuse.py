"""Thirteenth round: the key-less public ways in, attacked by one party through the running app: the booking page
and its waitlist form over real HTTP, a customer's own assistant at /b/{slug}/mcp through the SDK's client, and the
Vapi, Retell and ElevenLabs webhooks signed as the platforms sign them. One address, one calling number or one
stranger's number filled a calendar, a waitlist and the holds, and had a confirmation (and two reminders) sent to
every number it made up or chose. Now one sender makes a day's bookings and holds, one contact has a handful of
bookings from these channels, a series from them is a few weeks long, and the business's staff book as before."""
from __future__ import annotations

import itertools
import re
from datetime import timedelta
from html import unescape

import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import func, select
from starlette.testclient import TestClient

from evals.loopback import LiveServer
from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.core.service import BookingService
from nextslot.runtime import public_caps
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Customer, Hold, Notification, WaitlistEntry
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.server.test_booking_page import SECRET, slug_of
from tests.server.test_public_mcp_proofs import call as public_call
from tests.server.test_voice_webhooks import RETELL_KEY, VAPI_SECRET, post_retell, retell_body
from tests.tools.test_voice_contact_lookup import ELEVENLABS_SECRET, ask

pytestmark = pytest.mark.anyio
# the frozen clock: Monday 23 November 2026, 08:00 UTC. On Tuesdays only Dr Patel works: each hour is one booking
TUESDAY = [f"2026-11-24T{hour:02d}:00:00Z" for hour in (9, 10, 11, 12, 14, 15, 16, 17)]
THURSDAY = [f"2026-11-26T{hour:02d}:00:00Z" for hour in (9, 10, 11, 12, 14, 15, 16, 17)]
NUMBERS = itertools.count(200)
CALLER, OTHER_CALLER = "+447911155001", "+447911155002"
VICTIM = "+447911155099"  # a stranger's number, given by others


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def made_up() -> str:
    return f"+4479111{next(NUMBERS):05d}"


def public_settings(**caps: int) -> Settings:
    return Settings(secret_key=SECRET, public_url="https://book.example.com", **caps)


def capped_app(session_factory, clock, settings: Settings):
    """The app as `nextslot serve` builds it from these settings (the core's caps from the same settings)."""
    service = BookingService(session_factory, clock=clock, public_caps=public_caps(settings))
    return create_app(settings, service=service)


@pytest.fixture
def clinic(make_business, service, session_factory) -> tuple[int, str]:
    """The example clinic, its three voice lines set up: (id, slug)."""
    business = make_business("clinic")
    for platform, secret in (("vapi", VAPI_SECRET), ("retell", RETELL_KEY), ("elevenlabs", ELEVENLABS_SECRET)):
        set_secret(SqlAlchemyUnitOfWork(session_factory), business, platform, secret)
    return business, slug_of(service, business)


def page_booking(http: httpx.Client, slug: str, at: str, phone: str, key: str | None = None,
                 **extra: str) -> httpx.Response:
    return http.post(f"/b/{slug}/consultation/book", data={
        "at": at, "key": key or f"form-{next(NUMBERS):012d}", "customer.name": "Made Up", "customer.phone": phone,
        **extra})


def page_waitlist(http: httpx.Client, slug: str, phone: str) -> httpx.Response:
    return http.post(f"/b/{slug}/consultation/waitlist", data={
        "customer.name": "Made Up", "customer.phone": phone, "earliest_date": "2026-11-30",
        "latest_date": "2026-12-04"})


def voice_booking(client: TestClient, slug: str, platform: str, at: str, phone: str | None, caller: str | None,
                  **extra: str) -> dict:
    args = {"service": "consultation", "starts_at": at, "customer_name": "Made Up", **extra}
    return ask(client, slug, platform, "book_appointment", {**args, **({"phone": phone} if phone else {})}, caller)


def assistant(url: str, slug: str, address: str = "127.0.0.1") -> Client:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return Client(streamable_http_client(f"{url}/b/{slug}/mcp",
                                         http_client=httpx.AsyncClient(timeout=60, transport=transport)))


def rows(session_factory, table, business_id: int, *where) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(table).where(table.business_id == business_id, *where))


def messages_to(session_factory, business_id: int, phone: str) -> list[str]:
    """The kinds of the messages queued for this number's bookings (confirmation, reminder, ...)."""
    with session_factory() as s:
        return list(s.scalars(select(Notification.kind).join(Customer, Customer.id == Notification.customer_id)
                              .where(Notification.business_id == business_id, Customer.phone == phone)))


def problem_shown(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --- one address -----------------------------------------------------------------------------------------------


def test_one_address_booking_with_made_up_numbers_on_the_page_makes_the_days_bookings_and_no_more(
        session_factory, clock, clinic, make_business, service):
    """The page took a booking from one address every three seconds, each for a new made-up number and each
    queueing a confirmation and two reminders to it: a calendar filled in minutes and a text bill run up. One
    address now makes `public_bookings_per_day` bookings and waitlist places a day at a business; a taken time
    costs nothing; another address, and the same address at another business, still book."""
    business, slug = clinic
    other_business = make_business("clinic")
    settings = public_settings(public_bookings_per_day=3)
    with LiveServer(capped_app(session_factory, clock, settings)) as server, \
            httpx.Client(base_url=server.url) as http:
        assert page_booking(http, slug, TUESDAY[0], made_up()).status_code == 303
        assert page_booking(http, slug, TUESDAY[0], made_up()).status_code == 409  # taken: made nothing
        assert page_waitlist(http, slug, made_up()).status_code == 200
        second = made_up()
        assert page_booking(http, slug, TUESDAY[1], second, key="form-sent-twice-000").status_code == 303
        refused = page_booking(http, slug, TUESDAY[2], made_up())
        assert refused.status_code == 429, refused.text
        assert ("3 bookings and waitlist places have been made from this connection here today"
                in problem_shown(refused.text)), refused.text
        waiting = page_waitlist(http, slug, made_up())
        assert waiting.status_code == 429 and "from this connection" in problem_shown(waiting.text)
        # a double submit of a booking that was made gets its confirmation, past the budget too
        assert page_booking(http, slug, TUESDAY[1], second, key="form-sent-twice-000").status_code == 303
        assert page_booking(http, slug_of(service, other_business), TUESDAY[2], made_up()).status_code == 303
        with httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
            assert page_booking(other, slug, TUESDAY[2], made_up()).status_code == 303
    assert rows(session_factory, Booking, business) == 3
    assert rows(session_factory, WaitlistEntry, business) == 1
    assert rows(session_factory, Notification, business) == 3 * 3  # a confirmation and two reminders each


async def test_the_page_and_a_customers_assistant_share_one_addresss_day_and_the_refusal_can_be_said(
        session_factory, clock, clinic):
    """/b/{slug}/mcp booked as fast as the page, for any number it was given. The page and the assistant count
    together per address; past it the tool answers `too_many_bookings` with a sentence to say, having booked
    nothing. Another address's assistant still books."""
    business, slug = clinic
    settings = public_settings(public_bookings_per_day=3)
    with LiveServer(capped_app(session_factory, clock, settings)) as server:
        with httpx.Client(base_url=server.url) as http:
            assert page_booking(http, slug, TUESDAY[0], made_up()).status_code == 303
        async with assistant(server.url, slug) as mine:
            answers = [await public_call(mine, "book_appointment", service="consultation", starts_at=at,
                                         customer_name="Made Up", phone=made_up()) for at in TUESDAY[1:4]]
        async with assistant(server.url, slug, "127.0.0.2") as theirs:
            ok, other = await public_call(theirs, "book_appointment", service="consultation", starts_at=TUESDAY[4],
                                          customer_name="Someone Else", phone=made_up())
    assert [ok for ok, _ in answers] == [True, True, False]
    refusal = answers[2][1]["error"]
    assert refusal["code"] == "too_many_bookings", refusal
    assert refusal["say"] == ("I'm sorry, no more bookings can be made from here today. Someone from the team can "
                              "book more for you."), refusal
    assert ok and other["outcome"] == "booked", other
    assert rows(session_factory, Booking, business) == 4


# --- one calling number ------------------------------------------------------------------------------------------


def test_one_caller_booking_for_made_up_numbers_on_the_voice_lines_is_stopped_and_told_why(
        session_factory, clock, clinic):
    """A voice platform calls from the same few addresses for every caller, so only the caller id tells callers
    apart: one caller saying number after number booked as much as it liked. A calling number makes the day's
    bookings and waitlist places across the three platforms; then `too_many_bookings` with a spoken sentence, in
    the caller's language; another number still books; every withheld caller shares one budget."""
    business, slug = clinic
    client = TestClient(capped_app(session_factory, clock, public_settings(public_bookings_per_day=3)))
    assert voice_booking(client, slug, "vapi", TUESDAY[0], made_up(), CALLER)["outcome"] == "booked"
    retried = {"service": "consultation", "starts_at": TUESDAY[1], "customer_name": "Made Up", "phone": made_up()}
    first = post_retell(client, slug, retell_body("book_appointment", retried, call_id="call_retried", number=CALLER))
    assert first.json()["outcome"] == "booked", first.text
    waiting = ask(client, slug, "elevenlabs", "join_waitlist", {
        "service": "consultation", "customer_name": "Made Up", "phone": made_up(), "earliest_date": "2026-11-30",
        "latest_date": "2026-12-04"}, CALLER)
    assert waiting["outcome"] == "waitlisted", waiting
    # Retell resends a call that timed out: the booking it made is its answer, past the budget too
    again = post_retell(client, slug, retell_body("book_appointment", retried, call_id="call_retried", number=CALLER))
    assert again.json()["outcome"] == "booked" and again.json()["replayed"], again.text
    refused = voice_booking(client, slug, "elevenlabs", TUESDAY[2], made_up(), CALLER, language="es")
    assert refused["error"]["code"] == "too_many_bookings", refused
    assert refused["error"]["say"] == ("Lo siento, hoy no puedo hacer más reservas en llamadas desde este número. "
                                       "Alguien del equipo puede reservarle más."), refused
    assert voice_booking(client, slug, "vapi", TUESDAY[2], None, OTHER_CALLER)["outcome"] == "booked"

    withheld = [voice_booking(client, slug, platform, at, made_up(), None)
                for platform, at in zip(("vapi", "retell", "elevenlabs", "vapi"), TUESDAY[3:7], strict=True)]
    assert [w.get("outcome") or w["error"]["code"] for w in withheld] == ["booked"] * 3 + ["too_many_bookings"]
    assert rows(session_factory, Booking, business) == 2 + 1 + 3
    assert rows(session_factory, WaitlistEntry, business) == 1


def test_one_caller_holds_a_few_times_a_day_and_a_refused_hold_keeps_nothing_from_anyone(
        session_factory, clock, clinic):
    """Every hold keeps a time from everyone for five minutes, and a caller could hold every time of the day over
    and over. A calling number makes the day's holds; the next answers `too_many_holds` (to be said: it can still
    book the time straight away), holds nothing, and the time stays bookable by anyone."""
    business, slug = clinic
    client = TestClient(capped_app(session_factory, clock, public_settings(public_bookings_per_day=2)))
    held = [ask(client, slug, "vapi", "hold_slot", {"service": "consultation", "starts_at": at}, CALLER)
            for at in TUESDAY[:3]]
    assert [h.get("outcome") or h["error"]["code"] for h in held] == ["held", "held", "too_many_holds"]
    assert held[2]["error"]["say"] == ("I can't hold any more times on calls from this number today, but I can "
                                       "book the time for you straight away."), held[2]
    assert rows(session_factory, Hold, business, Hold.status == "active") == 2
    assert voice_booking(client, slug, "retell", TUESDAY[2], None, OTHER_CALLER)["outcome"] == "booked"
    assert voice_booking(client, slug, "vapi", TUESDAY[3], None, CALLER)["outcome"] == "booked"


# --- one stranger's number ---------------------------------------------------------------------------------------


async def test_a_strangers_number_gets_a_few_bookings_however_many_senders_give_it(
        session_factory, clock, clinic, api_key):
    """Per-sender budgets do not protect a number's owner: many addresses and callers could each give her number,
    and every booking texted her a confirmation and reminders at the business's cost. A contact now has at most
    `public_bookings_per_contact` bookings (a series once) and waitlist places from the public channels that are
    ahead or were made in the last 24 hours, whoever asks: then `too_many_bookings` next to the phone on the page,
    and a sentence to say on the voice line. A cancelled one does not make room the same day. The staff still
    book for her."""
    business, slug = clinic
    settings = public_settings(public_bookings_per_contact=3)
    app = capped_app(session_factory, clock, settings)
    voice = TestClient(app)
    with LiveServer(app) as server:
        with httpx.Client(base_url=server.url) as http:
            first = page_booking(http, slug, TUESDAY[0], VICTIM)
            assert first.status_code == 303, first.text
        assert voice_booking(voice, slug, "vapi", TUESDAY[1], VICTIM, CALLER)["outcome"] == "booked"
        async with assistant(server.url, slug, "127.0.0.3") as theirs:
            ok, third = await public_call(theirs, "book_appointment", service="consultation", starts_at=TUESDAY[2],
                                          customer_name="Made Up", phone="07911 155099")  # her number, written locally
        assert ok and third["outcome"] == "booked", third
        with httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
            refused = page_booking(other, slug, TUESDAY[3], VICTIM)
            assert refused.status_code == 422, refused.text
            assert ("No more bookings or waitlist places can be made for this phone number or email this way"
                    in problem_shown(refused.text)), refused.text
            assert 'href="#f-phone"' in refused.text  # the refusal points at the phone field
            assert page_waitlist(other, slug, VICTIM).status_code == 422
        said = voice_booking(voice, slug, "retell", TUESDAY[3], VICTIM, OTHER_CALLER)
        assert said["error"]["code"] == "too_many_bookings", said
        assert said["error"]["say"].startswith("I'm sorry, I can't book any more for that number or email"), said

        # she cancels one (X to the confirmation, her manage link, the staff: the same): no room today
        code = third["appointment"]["code"]
        staff = {"Authorization": f"Bearer {api_key(business)}"}
        assert voice.post(f"/v1/bookings/{code}/cancel", json={}, headers=staff).status_code == 200
        again = voice_booking(voice, slug, "vapi", TUESDAY[3], VICTIM, OTHER_CALLER)
        assert again["error"]["code"] == "too_many_bookings", again
        clock.now += timedelta(days=1, minutes=30)  # Tuesday 08:30: the cancelled one is a day old, two are ahead
        assert voice_booking(voice, slug, "vapi", THURSDAY[0], VICTIM, OTHER_CALLER)["outcome"] == "booked"
        assert voice_booking(voice, slug, "vapi", THURSDAY[1], VICTIM, OTHER_CALLER)["error"]["code"] == \
            "too_many_bookings"
        # the business's own people are not counted, nor stopped
        made = voice.post("/v1/bookings", headers=staff, json={
            "service": "consultation", "starts_at": THURSDAY[2], "customer": {"name": "Her", "phone": VICTIM}})
        assert made.status_code == 201, made.text
    assert messages_to(session_factory, business, VICTIM).count("confirmation") == 3 + 1 + 1
    assert rows(session_factory, WaitlistEntry, business) == 0


# --- a series --------------------------------------------------------------------------------------------------


def test_a_series_from_a_public_channel_is_a_few_weeks_long_and_the_staffs_is_not(
        session_factory, clock, clinic, api_key):
    """`book_series` from a voice call booked 52 occurrences in one request (every day: the calendar's next two
    months of one stranger's bookings), and the page's form offered 52 weeks. From the public channels a series
    now has at most `public_series_max` occurrences: `series_too_long` (said on the voice line), nothing booked;
    the page's form offers no more. The staff's API books a longer one."""
    business, slug = clinic
    client = TestClient(capped_app(session_factory, clock, public_settings(public_series_max=4)))
    series = {"service": "consultation", "first_starts_at": TUESDAY[0], "every": "day", "count": 52,
              "mode": "skip_taken", "customer_name": "Made Up", "phone": made_up()}
    refused = ask(client, slug, "vapi", "book_series", series, CALLER)
    assert refused["error"]["code"] == "series_too_long", refused
    assert refused["error"]["say"] == "I can book at most 4 appointments of a series at once. Shall I book the " \
                                      "first 4?", refused
    assert ask(client, slug, "vapi", "book_series", {**series, "count": 4}, CALLER)["outcome"] == "booked"

    form = client.get(f"/b/{slug}/consultation/book", params={"at": THURSDAY[0]})
    assert 'name="repeat_count" type="number" min="2" max="4"' in form.text
    weekly = page_booking(client, slug, THURSDAY[0], made_up(), repeat="1", repeat_count="6")
    assert weekly.status_code == 422 and "at most 4 appointments booked this way; 6 asked" in \
        problem_shown(weekly.text), weekly.text
    assert rows(session_factory, Booking, business) == 4

    staff = client.post("/v1/bookings/series", headers={"Authorization": f"Bearer {api_key(business)}"}, json={
        "service": "consultation", "starts_at": THURSDAY[1], "repeat": {"every": "week", "count": 6},
        "customer": {"name": "A Regular", "phone": made_up()}})
    assert staff.status_code == 201 and len(staff.json()["occurrences"]) == 6, staff.text
