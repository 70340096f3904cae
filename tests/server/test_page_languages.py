"""The booking and manage pages in the visitor's language: from ?lang= (kept from page to page) or the browser's
Accept-Language; dates and times said the local way; English for everything else."""
from __future__ import annotations

import re

import httpx2 as httpx

from nextslot.server.page_words import WORDS, page_language
from tests.server.test_booking_page import MONDAY_8AM, book_directly, settings, slug_of
from tests.server.test_booking_page_manage import manage_path


def test_the_language_comes_from_the_link_else_the_browser_else_english():
    assert page_language("fr", "de-DE,de;q=0.9") == ("fr", True)
    assert page_language(None, "pt-BR, es;q=0.8, de;q=0.9") == ("de", False)
    assert page_language("xx", "en-GB") == ("en", False)
    assert page_language(None, None) == ("en", False)
    assert all(len(v) == 3 and all(v) for v in WORDS.values())


def test_a_spanish_browser_books_in_spanish_and_a_french_link_stays_french(live_server, service, make_business,
                                                                           session_factory):
    garage = make_business("garage")
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        home = http.get(f"/b/{slug}", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
        assert '<html lang="es"' in home.text and "Elija un servicio" in home.text
        page = http.get(f"/b/{slug}/oil-change", params={"lang": "fr", "tz": "America/New_York",
                                                          "from": "2026-11-24"})
        assert "Choisissez un horaire" in page.text and "mardi 24 novembre" in page.text and ">9h00<" in page.text
        links = re.findall(r'href="(/b/[^"]+/book\?[^"]+)"', page.text)
        assert links and all("lang=fr" in link for link in links)
        form = http.get(links[0].replace("&amp;", "&"))
        assert "Vos coordonnées" in form.text and 'name="lang" value="fr"' in form.text
    booking = book_directly(service, garage, MONDAY_8AM, "+12125550391")
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        manage = http.get(manage_path(garage, booking), headers={"Accept-Language": "de"})
        assert "Ihre Buchung" in manage.text and "Montag, 23. November um 8:00" in manage.text
        assert "Buchung absagen" in manage.text
        english = http.get(manage_path(garage, booking))
        assert "Your booking" in english.text and "Monday 23 November at 8 am" in english.text


def test_a_translated_text_escapes_what_a_business_wrote(live_server, service, make_business):
    garage = make_business("garage", name="Tom & <b>Jerry</b>")
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        home = http.get(f"/b/{slug_of(service, garage)}", params={"lang": "de"})
    assert "Termin bei Tom &amp; &lt;b&gt;Jerry&lt;/b&gt; buchen" in home.text and "<b>Jerry" not in home.text
