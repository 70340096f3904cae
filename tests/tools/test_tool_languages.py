"""The tools' `say` sentences in the caller's stated language, else the customer's record, through a real MCP
client over streamable HTTP: Spanish, French and German, with the times said the local way."""
from __future__ import annotations

import re

import pytest

from tests.server.test_page_languages import english_fragments
from tests.tools.test_mcp_server import call, fails, http_client

pytestmark = pytest.mark.anyio
TUESDAY = "2026-11-24"
DAY = {"es": "martes, 24 de noviembre", "fr": "mardi 24 novembre", "de": "Dienstag, 24. November"}
WORDS = {"es": ("Ofrecemos", "Puedo ofrecerte", "Tienes cita", "Te reservo", "está confirmada", "está cancelada",
                "He encontrado 1 cita", "lista de espera", "Ahora tienes cita", "Lo siento"),
         "fr": ("Nous proposons", "Je peux vous proposer", "est réservé", "Je vous réserve", "est confirmé",
                "est annulé", "J'ai trouvé 1 rendez-vous", "liste d'attente", "est maintenant", "Désolé"),
         "de": ("Wir bieten", "Ich kann Ihnen", "ist am", "Ich halte", "ist bestätigt", "ist abgesagt",
                "Ich habe 1 Termin gefunden", "Warteliste", "ist jetzt am", "Leider")}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def assert_spoken_in(say: str, language: str) -> None:
    left = [piece for piece in english_fragments(language) if piece in say]
    assert not left, f"{language}: {say!r} still says {left}"
    assert not re.search(r"Monday|Tuesday|Wednesday|November at|\d (?:am|pm)\b", say), say


@pytest.mark.parametrize("language", ["es", "fr", "de"])
async def test_every_tool_says_its_sentence_in_the_callers_language(live_server, make_business, api_key,
                                                                   language):
    key = api_key(make_business("clinic"))
    words = iter(WORDS[language])
    with live_server(frozen=True) as server:
        async with http_client(server.url, key) as c:
            said = []
            services = await call(c, "list_services", language=language)
            assert services["say"].startswith(next(words))
            info = await call(c, "get_business_info", language=language)
            said.append(info["say"])
            found = await call(c, "find_available_slots", service="consultation", date=TUESDAY, language=language)
            assert next(words) in found["say"] and DAY[language] in found["say"]
            assert found["slots"][0]["spoken"].startswith(DAY[language])
            slots = found["slots"]
            booked = await call(c, "book_appointment", service="consultation", starts_at=slots[0]["starts_at"],
                                customer_name="Ana Ruiz", phone="07911 129460", language=language)
            assert next(words) in booked["say"] and booked["appointment"]["code_spoken"] in booked["say"]
            assert DAY[language] in booked["say"]
            code = booked["appointment"]["code"]
            held = await call(c, "hold_slot", service="consultation", starts_at=slots[3]["starts_at"],
                              language=language)
            assert next(words) in held["say"]
            # no language given from here on: the customer's record (set by the booking) decides
            confirmed = await call(c, "confirm_appointment", code=code)
            assert next(words) in confirmed["say"]
            cancelled = await call(c, "cancel_appointment", code=code)
            assert next(words) in cancelled["say"]
            again = await call(c, "book_appointment", service="consultation", starts_at=slots[1]["starts_at"],
                               customer_name="Ana Ruiz", phone="07911 129460")
            mine = await call(c, "find_appointments", phone="+447911129460")
            assert next(words) in mine["say"] and mine["appointments"][0]["spoken"].startswith(DAY[language])
            waiting = await call(c, "join_waitlist", service="ultrasound", customer_name="Ana Ruiz",
                                 phone="07911129460", earliest_date="2027-01-12", latest_date="2027-01-14",
                                 language=language)
            assert next(words) in waiting["say"]
            wednesday = (await call(c, "find_available_slots", service="consultation", date="2026-11-25"))["slots"]
            moved = await call(c, "reschedule_appointment", code=again["appointment"]["code"],
                               new_starts_at=wednesday[0]["starts_at"])
            assert next(words) in moved["say"]
            # a lost race: the nearest openings, in the language
            taken = await call(c, "book_appointment", service="consultation", starts_at=wednesday[0]["starts_at"],
                               customer_name="Bo Li", phone="07911 129461", staff=moved["appointment"]["with"][0],
                               language=language)
            assert taken["outcome"] == "slot_taken" and next(words) in taken["say"]
            said += [services["say"], found["say"], booked["say"], held["say"], confirmed["say"], cancelled["say"],
                     mine["say"], waiting["say"], moved["say"], taken["say"]]
            for sentence in said:
                assert_spoken_in(sentence, language)


async def test_english_stays_the_default_and_odd_language_values_are_refused(live_server, make_business, api_key):
    key = api_key(make_business("clinic"))
    with live_server(frozen=True) as server:
        async with http_client(server.url, key) as c:
            assert (await call(c, "list_services"))["say"].startswith("We offer")
            assert (await call(c, "list_services", language="ja"))["say"].startswith("We offer")  # not ours
            assert (await call(c, "list_services", language="es-MX"))["say"].startswith("Ofrecemos")
            for hostile in ("x" * 100, "es\x00", "<script>", "es'; DROP TABLE customers; --", "../etc"):
                refused = await fails(c, "list_services", language=hostile)
                assert refused["code"] == "invalid_arguments" and hostile not in str(refused)
