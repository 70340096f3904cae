"""The tools' `say` in the caller's language: Spanish, French and German as well as English, with dates and times
said the local way; a customer's language, once known, is used without being asked again."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from nextslot.languages import local_when
from nextslot.schemas.spoken import language_of
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.core.test_cutoffs import garage_with

TUESDAY_1730 = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize("language, said", [
    ("en", "Tuesday 24 November at 5:30 pm"),
    ("es", "martes, 24 de noviembre, 17:30"),
    ("fr", "mardi 24 novembre à 17:30"),
    ("de", "Dienstag, 24. November, 17:30 Uhr"),
])
def test_times_are_said_the_local_way_by_the_pages_own_function(language, said, ctx):
    assert local_when(TUESDAY_1730, LONDON, language) == said
    found = execute("find_available_slots", {"service": "consultation", "date": "2026-11-24", "limit": 1,
                                             "language": language, "caller_timezone": "Europe/London"}, ctx)
    first = datetime.fromisoformat(found.data["slots"][0]["starts_at"])
    assert found.data["slots"][0]["spoken"] == local_when(first, LONDON, language)  # one source for both


def test_a_repeated_wall_time_says_which_of_the_two_and_unknown_languages_are_english():
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 1:30 am in London, the first time round
    assert local_when(first, LONDON, "es") == "domingo, 25 de octubre, 1:30 (antes del cambio de hora)"
    assert language_of("es-MX") == "es" and language_of("pt") == "en" and language_of(None) == "en"


@pytest.fixture
def ctx(service, make_business):
    return ToolContext(service=service, business_id=make_business("clinic"), channel="vapi")


def test_slots_and_bookings_are_offered_and_confirmed_in_the_callers_language(ctx):
    found = execute("find_available_slots", {"service": "consultation", "date": "2026-11-24", "limit": 2,
                                             "language": "es"}, ctx)
    assert found.data["say"] == "Puedo ofrecerle martes, 24 de noviembre, 8:30 o 8:45."
    assert found.data["slots"][0]["spoken"] == "martes, 24 de noviembre, 8:30"
    booked = execute("book_appointment", {"service": "consultation", "starts_at": found.data["slots"][0]["starts_at"],
                                          "customer_name": "Lea Roux", "phone": "+447911170001", "language": "fr"},
                     ctx)
    assert booked.data["say"].startswith("C'est réservé : GP consultation avec Dr Asha Patel le mardi 24 novembre "
                                         "à 08:30. Votre code de réservation est ")
    code = booked.data["appointment"]["code"]
    her = ctx.proving("+447911170001")  # her own number calling: the voice webhooks prove the caller id so
    confirmed = execute("confirm_appointment", {"code": code}, her)  # no language given: the customer's own, to her
    assert confirmed.data["say"] == ("Merci. Votre rendez-vous GP consultation le mardi 24 novembre à 08:30 est "
                                     "confirmé. À bientôt.")
    cancelled = execute("cancel_appointment", {"code": code, "language": "de"}, ctx)
    assert cancelled.data["say"] == "Ihr Termin GP consultation am Dienstag, 24. November, 08:30 Uhr ist abgesagt."


def test_the_late_cancel_question_is_asked_in_the_customers_language(service, make_business, clock):
    from datetime import timedelta

    from tests.core.test_cutoffs import book_van, pay
    garage = make_business(garage_with({"cutoff_hours": 24}))
    booking = book_van(service, garage, "+12125550701")
    pay(service, service.session_factory, booking)
    clock.now += timedelta(hours=10)
    ctx = ToolContext(service=service, business_id=garage, channel="vapi")
    asked = execute("cancel_appointment", {"code": booking.code, "language": "de"}, ctx)
    assert asked.data["outcome"] == "needs_agreement"
    assert asked.data["say"] == ("Der Termin ist in weniger als 24 Stunden: Die Anzahlung von $25.00 wird "
                                 "einbehalten. Soll ich trotzdem absagen?")
    done = execute("cancel_appointment", {"code": booking.code, "language": "es", "accept_late_terms": True}, ctx)
    assert done.data["say"].endswith("Como fue con poca antelación, se retiene el depósito de $25.00.")
