"""The public pages in the visitor's language over real HTTP: chosen by `lang=` (the links in a customer's own
messages carry hers), then the browser's Accept-Language, then the business's default; every page in Spanish, French and German
shows no English sentence of ours, and dates read the local way."""
from __future__ import annotations

import re
from html import unescape

import httpx2 as httpx
import pytest
from babel.messages.pofile import read_po

from nextslot.core.results import Booked
from nextslot.languages.catalogs import catalog_path
from nextslot.schemas.commands import BookingCreate, CustomerIn
from tests.server.test_booking_page import MONDAY_8AM, OIL_ANSWERS, book_directly, form_key, settings, slug_of
from tests.server.test_booking_page_manage import manage_path
from tests.server.test_console import clients, console, csrf_of  # noqa: F401 - the console's fixtures

TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S)
DATES = {"es": "lunes, 23 de noviembre", "fr": "lundi 23 novembre", "de": "Montag, 23. November"}
MONDAY = {"es": "lunes, 23 de noviembre, 8:00", "fr": "lundi 23 novembre à 08:00",
          "de": "Montag, 23. November, 08:00 Uhr"}


def visible(html: str) -> str:
    """What a reader sees or hears: the text, and the labels that are read out (aria-label, alt, title)."""
    said = " ".join(re.findall(r'(?:aria-label|alt)="([^"]*)"', html))
    return unescape(TAGS.sub(" ", html) + " " + said)


def english_fragments(language: str) -> list[str]:
    """Every English sentence piece (around its placeholders) whose translation differs from it."""
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    pieces = set()
    for message in catalog:
        if not message.id or message.string == message.id:
            continue
        for piece in re.split(r"%\(\w+\)s", message.id if isinstance(message.id, str) else message.id[0]):
            piece = piece.strip(" .,:;?()")
            if len(piece) >= 10:
                pieces.add(piece)
    return sorted(pieces)


def assert_no_english(html: str, language: str, page: str) -> None:
    text = visible(html)
    left = [piece for piece in english_fragments(language) if piece in text]
    assert not left, f"{page} in {language} still says: {left}"
    assert f'<html lang="{language}"' in html, page


@pytest.fixture
def garage(make_business):
    return make_business("garage")


@pytest.mark.parametrize("language", ["es", "fr", "de"])
def test_every_public_page_speaks_the_chosen_language(live_server, service, garage, language):
    slug = slug_of(service, garage)
    booking = book_directly(service, garage, MONDAY_8AM, "+12125550971")
    manage = manage_path(garage, booking)
    q = {"lang": language, "tz": "America/New_York"}
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        pages = {
            "business": http.get(f"/b/{slug}", params=q),
            "service": http.get(f"/b/{slug}/oil-change", params=q),
            "later days": http.get(f"/b/{slug}/oil-change", params={**q, "from": "2027-06-01"}),
            "form": http.get(f"/b/{slug}/oil-change/book", params={**q, "at": "2026-11-24T15:00:00Z"}),
            "share": http.get(f"/b/{slug}/share", params=q),
            "waitlist": http.get(f"/b/{slug}/oil-change/waitlist", params=q),
            "chat": http.get(f"/b/{slug}/chat", params=q),
            "manage": http.get(manage, params=q),
            "move": http.get(f"{manage}/move", params=q),
            "move confirm": http.get(f"{manage}/move/confirm", params={**q, "at": "2026-11-24T15:00:00Z"}),
            "cancel": http.get(f"{manage}/cancel", params=q),
            "unknown business": http.get("/b/no-such-business", params=q),
            "bad link": http.get("/m/not-a-token", params=q),
        }
        for name, page in pages.items():
            assert page.status_code in (200, 403, 404), (name, page.status_code)
            assert_no_english(page.text, language, name)
            assert page.headers["content-language"] == language

        assert MONDAY[language] in visible(pages["manage"].text)
        assert DATES[language] in visible(pages["move"].text)
        for name in ("service", "move", "move confirm", "manage", "cancel"):
            said = visible(pages[name].text)
            assert not re.search(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|\d (?:am|pm))\b", said), (name, said)

        # the form refuses in the language, keeps it through the post, and the booking remembers it
        form = pages["form"].text
        assert f'name="lang" value="{language}"' in form
        refused = http.post(f"/b/{slug}/oil-change/book", data={
            "at": "2026-11-24T15:00:00Z", "key": form_key(form), "tz": "America/New_York", "lang": language,
            "customer.name": "Ada", **OIL_ANSWERS})  # no phone nor email
        assert refused.status_code == 422
        assert_no_english(refused.text, language, "refused form")
        booked = http.post(f"/b/{slug}/oil-change/book", data={
            "at": "2026-11-24T15:00:00Z", "key": form_key(refused.text), "tz": "America/New_York",
            "lang": language, "customer.name": "Ada", "customer.phone": "+12125550971", **OIL_ANSWERS})
        assert booked.status_code == 303
        confirmation = http.get(booked.headers["location"])
        assert_no_english(confirmation.text, language, "confirmation")
        code = re.search(r'class="code"[^>]*>(\w+) (\w+)<', confirmation.text)
        made = service.get_booking(garage, code.group(1) + code.group(2))
        # a page proves nothing about the number typed in: the customer (booked before in English, as Racer) keeps
        # her language and name, which her messages use; this booking keeps the name given for it
        assert made.customer.phone == "+12125550971" and made.customer.language == "en"
        assert (made.customer.name, made.contact_name) == ("Racer", "Ada")

        joined = http.post(f"/b/{slug}/oil-change/waitlist", data={
            "lang": language, "tz": "America/New_York", "customer.name": "Ada", "customer.phone": "+12125550973",
            "earliest_date": "2026-11-25", "latest_date": "2026-11-27"})
        assert joined.status_code == 200
        assert_no_english(joined.text, language, "waitlist joined")


def test_the_language_follows_the_browser_then_the_business_default(live_server, service, make_business):
    garage = make_business("garage")
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        def lang_of(**headers: str) -> str:
            return re.search(r'<html lang="([^"]+)"', http.get(f"/b/{slug}", headers=headers).text).group(1)

        assert lang_of() == "en"
        assert lang_of(**{"accept-language": "de-CH,de;q=0.9,en;q=0.8"}) == "de"
        assert lang_of(**{"accept-language": "ja,fr;q=0.4,es;q=0.6"}) == "es"
        assert lang_of(**{"accept-language": "ja,zh;q=0.9"}) == "en"
        page = http.get(f"/b/{slug}", headers={"accept-language": "de"}, params={"lang": "fr"})
        assert '<html lang="fr"' in page.text  # the switcher's choice beats the browser
        assert "Réserver chez" in page.text
        # the switcher: this page in every language, the current one marked
        assert re.search(r'<a href="/b/%s\?lang=es" hreflang="es" lang="es">Español</a>' % slug, page.text)
        assert '<span aria-current="true" lang="fr">Français</span>' in page.text
        # and the business's own default when the browser names none of ours
    spanish = make_business("garage", details={"language": "es"})
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        page = http.get(f"/b/{slug_of(service, spanish)}", headers={"accept-language": "ja"})
        assert '<html lang="es"' in page.text
        assert '<html lang="en"' in http.get(f"/b/{slug_of(service, spanish)}",
                                             headers={"accept-language": "en"}).text


@pytest.mark.parametrize("hostile", ["x" * 5000, "es\x00", "<script>alert(1)</script>", "es' OR '1'='1",
                                     "\"><img src=x onerror=alert(1)>", "../../../etc/passwd"])
def test_hostile_lang_values_fall_back_and_are_never_echoed(live_server, service, garage, hostile):
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        header = hostile[:900] if hostile.isprintable() else "es\\x00"  # a client sends no raw NUL in a header
        page = http.get(f"/b/{slug}", params={"lang": hostile}, headers={"accept-language": header})
        assert page.status_code in (200, 400)
        if page.status_code == 200:
            assert '<html lang="en"' in page.text and hostile not in page.text
            assert "onerror=alert" not in page.text and "<script>alert" not in page.text


def test_a_manage_page_speaks_the_language_its_link_carries_never_the_customers_record(live_server, service,
                                                                                       garage):
    result = service.book(garage, BookingCreate(
        service="tyre-swap", starts_at="2026-11-24T15:00:00Z",
        customer=CustomerIn(name="Hans", phone="+4915123459781", language="de")))
    assert isinstance(result, Booked), result
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        # the link in his own messages carries his language (tests/security/test_stranger_leaks.py sends one)
        page = http.get(manage_path(garage, result.booking), params={"lang": "de"},
                        headers={"accept-language": "en-US"})
        assert '<html lang="de"' in page.text and "Ihr Termin" in page.text
        # the same link without it, as whoever booked with his number holds it, tells nothing of his record
        assert '<html lang="en"' in http.get(manage_path(garage, result.booking),
                                             headers={"accept-language": "en-US"}).text
        assert '<html lang="fr"' in http.get(manage_path(garage, result.booking), params={"lang": "fr"}).text


def test_the_owner_sets_the_pages_default_language_at_the_console_and_a_bad_one_is_refused(
        console, make_business, session_factory):  # noqa: F811 - the fixture imported above
    from sqlalchemy import select

    from nextslot.storage.tables import Business

    clinic = make_business("clinic")
    client, slug = console(clinic)
    settings_page = client.get(f"/console/{slug}/settings").text
    assert '<select id="page-language" name="language">' in settings_page
    csrf = csrf_of(settings_page)
    bad = client.post(f"/console/{slug}/settings/branding", data={"csrf": csrf, "language": "xx"})
    assert bad.status_code == 422 and 'data-code="invalid_language"' in bad.text
    assert client.post(f"/console/{slug}/settings/branding", data={"csrf": csrf, "language": "fr"}).status_code == 303
    with session_factory() as s:
        assert s.scalar(select(Business.details).where(Business.id == clinic))["language"] == "fr"
    page = client.get(f"/b/{slug}", headers={"accept-language": "ja"})
    assert '<html lang="fr"' in page.text and "Choisissez un service" in page.text
    assert client.post(f"/console/{slug}/settings/branding", data={"csrf": csrf, "language": ""}).status_code == 303
    assert '<html lang="en"' in client.get(f"/b/{slug}", headers={"accept-language": "ja"}).text


def test_a_config_naming_a_language_we_do_not_have_is_refused(make_business):
    from nextslot.schemas.config import BusinessDetails

    assert BusinessDetails.model_validate({"language": "de"}).language == "de"
    with pytest.raises(ValueError, match="language"):
        BusinessDetails.model_validate({"language": "xx"})


def test_a_waitlist_offer_page_speaks_the_customers_language_or_the_asked_one(service, make_business,
                                                                             session_factory, live_server, clock):
    from datetime import timedelta

    from nextslot.core.links import Links
    from nextslot.schemas.commands import BookingChange
    from nextslot.settings import Settings
    from tests.reminders.test_waitlist_offers import book_nine, clinic_with, offers, wait_for_nine

    clinic = clinic_with(make_business, offers_at_once=2)
    holder = book_nine(service, clinic, phone="+447911124170")
    wait_for_nine(service, clinic, "+447911124171", "Gus")
    wait_for_nine(service, clinic, "+447911124172", "Hal")
    service.cancel(clinic, BookingChange(code=holder.code))
    service.offer_freed_capacity()
    links = Links("offer-link-secret", "http://unused")
    first, second = [links.offer_url(clinic, o.id, o.expires_at + timedelta(days=1)).removeprefix("http://unused")
                     for o in offers(session_factory, clinic)]
    with live_server(frozen=True, settings=Settings(secret_key="offer-link-secret")) as server, \
            httpx.Client(base_url=server.url) as http:
        spanish = http.get(first, params={"lang": "es"})
        assert spanish.status_code == 200 and "Reservar esta hora" in spanish.text
        assert "martes, 24 de noviembre, 9:00" in unescape(spanish.text)
        assert_no_english(spanish.text, "es", "offer")
        french = http.get(first, headers={"accept-language": "fr-FR,fr;q=0.9"})
        assert_no_english(french.text, "fr", "offer")
        assert "mardi 24 novembre à 09:00" in unescape(french.text)
        assert http.post(first).status_code == 303
        gone = http.post(second + "?lang=de")
        assert gone.status_code == 409 and "Dieser Termin ist vergeben" in gone.text
        assert_no_english(gone.text, "de", "offer gone")
        refused = http.get(first[:-4] + "AAAA", headers={"accept-language": "de"})
        assert refused.status_code == 403 and "Dieser Link kann nicht verwendet werden" in refused.text
