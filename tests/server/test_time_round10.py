"""Dates and times attacked again (tenth round), through the running server: a chat answered by the engine as a
scheduler runs it, and the booking page's waitlist form, for a branch whose date and clock are not the business's."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from evals.scripted_model import scripted_model, words
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Business, WaitlistEntry
from tests.conversations.conftest import chat_for  # noqa: F401 - a WhatsApp line end to end
from tests.reminders.conftest import quiet_outbox  # noqa: F401 - only this test's messages are sent

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def london_with_venice_beach(**details: object) -> dict:
    """A London business whose only stylist works at its Los Angeles branch, 09:00-19:00 there, every day."""
    return {
        "business": {"slug": "west", "name": "West", "timezone": "Europe/London", "country": "GB",
                     "details": details},
        "locations": [{"key": "la", "name": "Venice Beach", "timezone": "America/Los_Angeles"}],
        "hours": {d: ["09:00-19:00"] for d in WEEK},
        "resources": [{"key": "lee", "name": "Lee", "kind": "staff", "location": "la"}],
        "services": [{"key": "cut", "name": "Cut", "duration": 30, "step": 30, "min_notice": 0,
                      "requires": [{"label": "stylist", "one_of": ["lee"]}]}],
    }


def test_a_guided_chat_in_the_branchs_afternoon_offers_its_evening_after_londons_midnight(
        chat_for, clock):  # noqa: F811
    """At 17:00 on Monday in Los Angeles it is already Tuesday in London: the chat counted its days from the
    business's date, so the branch's two free hours that evening were never offered."""
    clock.now = datetime(2026, 11, 24, 1, tzinfo=UTC)  # Monday 23 November, 17:00 in Los Angeles
    number = f"+4420{uuid.uuid4().int % 10**8:08d}"
    with chat_for(london_with_venice_beach(conversations={"numbers": [number]})) as chat:
        phone = "+13105550123"
        chat.say(phone, "hi")
        days = chat.say(phone, "1")
        assert days.startswith("Which day for Cut?") and "\n1 Monday 23 November\n" in days, days
        times = chat.say(phone, "1")
        assert "Which time on Monday 23 November?" in times and "\n1 17:00\n" in times, times


def test_the_chat_model_is_told_the_branchs_date_when_it_is_not_the_businesss(chat_for, clock):  # noqa: F811
    """The model heard only London's date and time, so a Los Angeles customer's "today" at 17:00 on Monday became
    London's Tuesday."""
    clock.now = datetime(2026, 11, 24, 1, tzinfo=UTC)
    number = f"+4420{uuid.uuid4().int % 10**8:08d}"
    with scripted_model(words("Sure, when would suit you?")) as model:
        config = london_with_venice_beach(conversations={"numbers": [number]})
        with chat_for(config, conversation_model="scripted", conversation_base_url=model.base_url) as chat:
            assert chat.say("+13105550125", "can I come in today?") == "Sure, when would suit you?"
    prompt = model.requests[0]["messages"][0]["content"]
    assert "it is now Tuesday 24 November 2026, 01:00 there" in prompt
    assert "At Venice Beach (America/Los_Angeles) it is now Monday 23 November 2026, 17:00" in prompt


def test_the_waitlist_form_of_a_branch_service_names_the_zone_its_times_are_read_in(make_business, service,
                                                                                      session_factory):
    """The wish's times of day are read on the branch's clock (as its offers are matched), but the form said they
    were London's: "not before 09:00" typed for London's morning waited for the branch's 9 am, eight hours later."""
    business = make_business(london_with_venice_beach())
    with session_factory() as s:
        slug = s.get_one(Business, business).slug
    with TestClient(create_app(Settings(secret_key="round10"), service=service), follow_redirects=False) as http:
        form = http.get(f"/b/{slug}/cut/waitlist")
        assert form.status_code == 200
        assert "in America/Los Angeles" in form.text and "Europe/London" not in form.text
        joined = http.post(f"/b/{slug}/cut/waitlist", data={
            "customer.name": "Wes", "customer.phone": "+13105550124", "earliest_date": "2026-11-25",
            "latest_date": "2026-11-27", "day_start": "09:00", "day_end": "12:00"})
        assert joined.status_code == 200, joined.text
    with session_factory() as s:
        entry = s.scalars(select(WaitlistEntry).where(WaitlistEntry.business_id == business)).one()
    assert (entry.day_start_minute, entry.day_end_minute) == (9 * 60, 12 * 60)


def test_staff_api_refuses_a_bare_date_as_a_bookings_start(make_business, service, api_key, clock):
    """A date alone posted as `starts_at` with the zone was booked at that midnight (a night salon)."""
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    business = make_business({
        "business": {"slug": "night", "name": "Night", "timezone": "America/Havana", "country": "US"},
        "hours": {d: ["00:00-24:00"] for d in WEEK}, "resources": [{"key": "ana", "name": "Ana", "kind": "staff"}],
        "services": [{"key": "cut", "name": "Cut", "duration": 60, "step": 60, "min_notice": 0,
                      "requires": [{"label": "stylist", "one_of": ["ana"]}]}]})
    headers = {"Authorization": f"Bearer {api_key(business)}"}
    with TestClient(create_app(Settings(secret_key="round10"), service=service)) as http:
        answer = http.post("/v1/bookings", headers=headers, json={
            "service": "cut", "starts_at": "2026-11-24", "timezone": "America/Havana",
            "customer": {"name": "Ana", "phone": "+12125550151"}})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == "starts_at" and "time of day" in answer.text
        assert http.get("/v1/bookings", headers=headers).json()["total"] == 0
