"""The pay pages speak the customer's language like the booking page: the one her own messages' pay link carries
(`lang=`), else the browser's, never her record's; the checkout's description says the time the local way, and
Stripe is told the locale. Times are in the visitor's zone, else the business's (never her record's either)."""
from __future__ import annotations

from datetime import datetime
from html import unescape

import httpx2 as httpx

from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn
from tests.server.test_payments import ANSWERS, garage, pay_link, settings_for  # noqa: F401 - the fixture


def book_in(service, garage, language: str, phone: str):  # noqa: F811
    result = service.book(garage, BookingCreate(
        service="mobile-repair", starts_at=datetime.fromisoformat("2026-11-24T10:00:00-05:00"),
        customer=CustomerIn(name="Ana", phone=phone, language=language, timezone="Europe/Madrid"), intake=ANSWERS))
    assert isinstance(result, Booked) and result.booking.status == "pending_payment"
    return result.booking


def test_a_spanish_customer_pays_on_a_spanish_checkout_with_the_time_said_the_spanish_way(
        live_server, service, garage):  # noqa: F811
    booking = book_in(service, garage, "es", "+34612345678")
    with live_server(frozen=True, settings=settings_for()) as server, httpx.Client(base_url=server.url) as http:
        # as her deposit message links it (reminders/jobs.py): her record's language is never read by the page
        checkout = httpx.URL(http.get(pay_link(booking, garage) + "?lang=es").headers["location"]).path
        page = http.get(checkout)
        text = unescape(page.text)
        assert page.status_code == 200 and '<html lang="es"' in page.text
        assert "Pague su depósito" in text and "Pagar $25.00" in text
        # in the garage's zone, not her stored one (Madrid's 16:00): whoever booked with her number opens it too
        assert f"Depósito para Mobile repair at your address, martes, 24 de noviembre, 10:00 (reserva {booking.code})" in text
        assert page.headers["X-Frame-Options"] == "DENY"


def test_a_bad_pay_link_answers_in_the_browsers_language(
        live_server, service, garage):  # noqa: F811
    booking = book_in(service, garage, "de", "+4915123459783")
    with live_server(frozen=True, settings=settings_for()) as server, httpx.Client(base_url=server.url) as http:
        forged = http.get(pay_link(booking, garage)[:-3] + "xyz", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
        assert forged.status_code == 403 and '<html lang="fr"' in forged.text
        assert "Ce lien de paiement n'est pas valide" in unescape(forged.text)
        checkout = httpx.URL(http.get(pay_link(booking, garage)).headers["location"]).path
        assert http.post(checkout).status_code == 303  # paid
        service.cancel(garage, BookingChange(code=booking.code, source="staff"))
        gone = http.get(pay_link(booking, garage))
        assert gone.status_code == 303  # paid: straight to the booking, whatever became of it
