"""The public ways in's cap on one phone or email (core/booking/public_caps.py), as a stranger hears it. The refusal
told whoever gave a number "This phone number or email already has 5 bookings and waitlist places here": how many
bookings someone else's number has. And the web chat's guided flow answered it with the chat's own cap's words
("as many bookings as a chat can make in a day"), which is not why it was refused. Now every answer says only that no
more can be booked for that contact this way and that the business's staff can book more, and the chat says so in
its own words."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nextslot.conversations.engine import ConversationEngine
from nextslot.conversations.words import say
from nextslot.core.booking.public_caps import PublicCaps
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Business
from tests.conversations.test_web_chat import WebChat
from tests.security.test_round13_public_abuse import (
    CALLER,
    OTHER_CALLER,
    TUESDAY,
    capped_app,
    public_settings,
    voice_booking,
)
from tests.security.test_round13_public_abuse import clinic as voice_clinic  # noqa: F401 - a fixture


def booked_from_the_page(service: BookingService, business_id: int, phone: str, hour: int) -> None:
    made = service.book(business_id, BookingCreate(
        service="consultation", starts_at=datetime(2026, 11, 24, hour, tzinfo=UTC), source="page",
        customer=CustomerIn(name="Someone Else", phone=phone)))
    assert made.booking is not None, made


def test_the_web_chat_answers_a_contact_at_its_cap_with_the_contacts_own_words(
        session_factory, clock, make_business):
    """A number that already has its public bookings (one, here: from the page) is refused in the web chat with
    words about that number, not the chat's day (this chat has made nothing); nothing is booked."""
    phone = "+447911123601"
    caps = PublicCaps(per_contact=1, series_max=12, per_sender=10)
    service = BookingService(session_factory, clock=clock, public_caps=caps)
    business = make_business("clinic")
    booked_from_the_page(service, business, phone, 11)
    with session_factory() as s:
        slug = s.get(Business, business).slug
    settings = Settings(secret_key="contact-cap-words")
    with TestClient(create_app(settings, service=service), follow_redirects=False) as client:
        chat = WebChat(client, slug, ConversationEngine(service, settings), session_factory)
        assert "1 Book an appointment" in chat.say("hello", name="Web Wanda", phone="07911 123601")
        for said in ("1", "1", "2", "1"):  # book, GP consultation, Tuesday, 8:30
            chat.say(said)
        refused = chat.say("1")  # yes, for Web Wanda
    assert refused.startswith(
        "No more can be booked for that phone number or email this way. Reply 0 for the menu and choose \"Talk to "
        "a person\" to book more."), refused
    assert "a chat" not in refused and not re.search(r"\d+ booking", refused)
    with session_factory() as s:
        assert len(s.scalars(select(Booking).where(Booking.business_id == business)).all()) == 1


@pytest.mark.parametrize("language", ["es", "fr", "de"])
def test_the_contacts_words_differ_from_the_chats_in_every_language(language):
    mine, chats = say(language, "too_many_contact"), say(language, "too_many_bookings")
    assert mine != chats and mine != say("en", "too_many_contact") and "0" in mine


def test_a_voice_answer_at_a_contacts_cap_says_no_count(session_factory, clock, voice_clinic):  # noqa: F811
    """Three bookings for one number from the voice lines, then another caller gives it: the refusal's message (for
    the model) and its `say` (for the caller, in the call's language) name no number of bookings."""
    _, slug = voice_clinic
    victim = "+447911155077"
    voice = TestClient(capped_app(session_factory, clock, public_settings(public_bookings_per_contact=3)))
    for at in TUESDAY[:3]:
        assert voice_booking(voice, slug, "vapi", at, victim, CALLER)["outcome"] == "booked"
    for language, said in (("en", "I'm sorry, I can't book any more for that number or email this way. Someone "
                                  "from the team can book more for you."),
                           ("es", "Lo siento, por aquí no puedo reservar nada más para ese número o correo. "
                                  "Alguien del equipo puede reservarle más.")):
        refused = voice_booking(voice, slug, "retell", TUESDAY[3], victim, OTHER_CALLER, language=language)["error"]
        assert refused["code"] == "too_many_bookings", refused
        assert refused["message"] == ("No more bookings or waitlist places can be made for this phone number or "
                                      "email this way. Nothing was booked: the business's staff can book more.")
        assert refused["say"] == said, refused
        assert not re.search(r"\d", refused["message"] + refused["say"]), refused
