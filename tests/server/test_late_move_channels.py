"""Late moves on every channel: past the move cutoff an agent tool (in the caller's language), the manage page
and a chat are refused with `move_cutoff` and a sentence to say; the staff API and the console still move.
(Text replies to reminders offer confirm and cancel only, never a move; the chat's own test is in
tests/conversations/test_guided.py.)"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx2 as httpx
from fastapi.testclient import TestClient

from nextslot.core.links import Links
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.core.test_cutoffs import book_oil, garage_with
from tests.server.test_console import clients, console, csrf_of  # noqa: F401, F811 - fixtures

SECRET = "late-move-secret"
LATER = "2026-11-25T11:00:00-05:00"  # the next day, same time: free
LATE = timedelta(hours=10)  # Monday 18:00 UTC: 22 hours before the oil change, inside a 24-hour move cutoff


def late_garage(make_business, service, clock, phone):
    garage = make_business(garage_with({"cutoff_hours": 2, "move_cutoff_hours": 24}))  # phone +1 718 555 0142
    booking = book_oil(service, garage, phone)
    clock.now += LATE
    return garage, booking


def test_an_agent_is_refused_a_late_move_with_a_sentence_in_the_callers_language(
        service, make_business, clock, api_key):
    garage, booking = late_garage(make_business, service, clock, "+12125550701")
    ctx = ToolContext(service=service, business_id=garage, channel="vapi")
    said = {}
    for language in ("en", "es", "de"):
        reply = execute("reschedule_appointment", {"code": booking.code, "new_starts_at": LATER,
                                                   "language": language}, ctx)
        assert not reply.ok and reply.data["error"]["code"] == "move_cutoff"
        said[language] = reply.data["error"]["message"]
    assert said["en"].startswith("It's within 24 hours of the appointment, so it can no longer be moved here")
    assert "+1 718 555 0142" in said["en"]
    assert said["es"] == ("Faltan menos de 24 horas para la cita, así que ya no se puede cambiar por aquí; "
                          "llámenos al +1 718 555 0142 para cambiarla.")
    assert said["de"].startswith("Der Termin ist in weniger als 24 Stunden")
    assert service.get_booking(garage, booking.code).starts_at.utc == booking.starts_at.utc
    app = create_app(Settings(secret_key=SECRET), service=service)
    with TestClient(app, headers={"Authorization": f"Bearer {api_key(garage)}"}) as http:  # staff can
        moved = http.post(f"/v1/bookings/{booking.code}/reschedule", json={"starts_at": LATER})
        assert moved.status_code == 200, moved.text
    assert service.get_booking(garage, booking.code).starts_at.utc == datetime.fromisoformat(LATER)


def test_the_manage_page_refuses_a_late_move_in_the_visitors_language_and_the_console_moves(
        live_server, service, make_business, clock, console):  # noqa: F811
    garage, booking = late_garage(make_business, service, clock, "+12125550702")
    links = Links(SECRET, "https://book.example.com")
    path = "/" + links.manage_url(garage, booking.code, booking.starts_at.utc).split("/", 3)[3]
    settings = Settings(secret_key=SECRET, public_url="https://book.example.com")
    with live_server(frozen=True, settings=settings) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"{path}/move/confirm", params={"at": LATER, "lang": "fr"})
        key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
        refused = http.post(f"{path}/move", data={"at": LATER, "key": key, "lang": "fr"})
        assert refused.status_code == 422 and 'data-code="move_cutoff"' in refused.text
        assert '<html lang="fr"' in refused.text
    assert service.get_booking(garage, booking.code).starts_at.utc == booking.starts_at.utc
    client, slug = console(garage, "staff")
    page = client.get(f"/console/{slug}/bookings/{booking.code}/move")
    moved = client.post(f"/console/{slug}/bookings/{booking.code}/move", data={
        "csrf": csrf_of(page.text), "key": "k" * 20, "at": "2026-11-25T16:00:00Z"})
    assert moved.status_code == 303, moved.text
    assert service.get_booking(garage, booking.code).starts_at.utc == datetime.fromisoformat("2026-11-25T16:00:00Z")
