"""The public booking page over real HTTP: real uvicorn, real PostgreSQL, the frozen test clock.

The clock reads Monday 23 November 2026, 08:00 UTC (03:00 in New York). At Northside Garage only Sam
works on Mondays, so one oil change at 8 am New York (13:00 UTC) fills that time.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import quote

import httpx2 as httpx
import pytest

from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, BookingSearch, CustomerIn, SlotQuery
from nextslot.settings import Settings
from tests.conftest import example

SECRET = "booking-page-test-secret"
MONDAY_8AM = "2026-11-23T13:00:00Z"  # 8 am in New York, 1 pm in London
OIL_ANSWERS = {"intake.vehicle": "Ford Focus", "intake.registration": "KXT 4410", "intake.oil": "Full synthetic"}


def settings(**extra) -> Settings:
    return Settings(secret_key=SECRET, public_url="https://book.example.com", **extra)


def slug_of(service, business_id: int) -> str:
    from nextslot.storage import queries

    with service.uow() as uow:
        return queries.business(uow.session, business_id).slug


def form_key(html: str) -> str:
    return re.search(r'name="key" value="([^"]+)"', html).group(1)


def visitor(phone: str, **extra: str) -> dict[str, str]:
    return {"customer.name": "Ada Lovelace", "customer.phone": phone, "customer.email": "ada@example.com",
            **OIL_ANSWERS, **extra}


def book_directly(service, business_id: int, at: str, phone: str, key: str = "oil-change"):
    result = service.book(business_id, BookingCreate(
        service=key, starts_at=datetime.fromisoformat(at), customer=CustomerIn(name="Racer", phone=phone),
        intake={"vehicle": "Van", "registration": "R1"} if key == "oil-change" else {}))
    assert isinstance(result, Booked), result
    return result.booking


def bookings_of(service, business_id: int, phone: str):
    return service.find_bookings(business_id, BookingSearch(phone=phone))[0]


@pytest.fixture
def garage(make_business):
    return make_business("garage")


def test_the_page_lists_the_services_and_only_genuinely_free_times(live_server, service, garage):
    slug = slug_of(service, garage)
    book_directly(service, garage, "2026-11-23T14:00:00Z", "+12125550100")  # Sam is busy 9-10 am (cleanup included)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        home = http.get(f"/b/{slug}")
        assert home.status_code == 200 and '<html lang="en"' in home.text
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in home.text
        for name in ("Oil change", "Seasonal tyre swap", "Mobile repair at your address"):
            assert name in home.text
        assert f'href="/b/{slug}/oil-change"' in home.text and "$25.00 deposit" in home.text
        assert f"<code>{settings().public_url.rstrip('/')}/b/{slug}/mcp</code>" in home.text  # its MCP twin

        page = http.get(f"/b/{slug}/oil-change")
        assert page.status_code == 200
        core = service.find_slots(garage, SlotQuery(service="oil-change", starts_from=service.now(),
                                                    until=service.now() + timedelta(hours=12)))
        shown = set(re.findall(r"[?;]at=([^\"&]+)", page.text))
        expected = {quote(s.starts_at.utc.strftime("%Y-%m-%dT%H:%M:%SZ"), safe="") for s in core.slots}
        assert expected and expected <= shown  # every free Monday time is offered ...
        assert quote(MONDAY_8AM, safe="") in shown and quote("2026-11-23T15:00:00Z", safe="") in shown
        for taken in ("2026-11-23T13:15:00Z", "2026-11-23T14:00:00Z", "2026-11-23T14:45:00Z"):
            assert quote(taken, safe="") not in shown  # ... and none that overlaps the booked oil change
        assert ">Monday 23 November</h3>" in page.text and ">8 am</a>" in page.text
        assert "Later days" in page.text and "from=2026-11-27" in page.text


def test_switching_the_time_zone_changes_the_times_shown(live_server, service, garage):
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        default = http.get(f"/b/{slug}/oil-change")
        assert 'data-tz="America/New_York"' in default.text and 'data-detect-tz="1"' in default.text
        assert 'aria-label="8 am, Monday 23 November">8 am</a>' in default.text

        london = http.get(f"/b/{slug}/oil-change", params={"tz": "Europe/London"})
        assert 'data-tz="Europe/London"' in london.text and "data-detect-tz" not in london.text
        assert 'aria-label="1 pm, Monday 23 November">1 pm</a>' in london.text
        assert ">8 am</a>" not in london.text.split("Tuesday 24 November")[0]
        assert "tz=Europe%2FLondon" in london.text  # every link keeps the visitor's zone
        assert '<option value="Europe/London" selected>' in london.text
        assert "nextslot_tz" in london.headers.get("set-cookie", "")

        remembered = http.get(f"/b/{slug}/oil-change")  # the cookie set above: no tz parameter needed
        assert 'data-tz="Europe/London"' in remembered.text
        http.cookies.clear()
        nonsense = http.get(f"/b/{slug}/oil-change", params={"tz": "Mars/Olympus_Mons"})
        assert nonsense.status_code == 200 and 'data-tz="America/New_York"' in nonsense.text


def test_a_visitor_books_through_the_form_and_a_double_submit_books_once(live_server, service, garage):
    slug = slug_of(service, garage)
    phone = "+12125550111"
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/oil-change/book", params={"at": MONDAY_8AM, "tz": "Europe/London"})
        assert form.status_code == 200 and "Monday 23 November at 1 pm" in form.text
        data = {"at": MONDAY_8AM, "key": form_key(form.text), "tz": "Europe/London", **visitor(phone)}
        first = http.post(f"/b/{slug}/oil-change/book", data=data)
        second = http.post(f"/b/{slug}/oil-change/book", data=data)  # the impatient second tap
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]
        assert first.headers["location"].startswith(f"/b/{slug}/booked/")

        confirmation = http.get(first.headers["location"])
        [booking] = bookings_of(service, garage, phone)
        assert confirmation.status_code == 200 and "You're booked" in confirmation.text
        assert f'<p class="code" aria-describedby="code-label">{booking.code[:3]} {booking.code[3:]}</p>' \
               in confirmation.text
        assert "Monday 23 November at 1 pm" in confirmation.text and "Europe/London time" in confirmation.text
        manage = re.search(r'id="manage-link" href="(/m/[^"]+)"', confirmation.text).group(1)
        assert http.get(manage).status_code == 200
    assert booking.source == "page" and booking.customer.timezone == "Europe/London"
    assert booking.intake == {"vehicle": "Ford Focus", "registration": "KXT 4410", "oil": "Full synthetic"}


def test_the_intake_questions_are_rendered_by_type_and_required_ones_are_marked(live_server, service, make_business):
    config = example("garage")
    config["services"].append({
        "key": "inspection", "name": "Pre-purchase inspection", "duration": 60, "min_notice": 60,
        "requires": [{"label": "mechanic", "one_of": ["sam", "jo"]}],
        "intake": [
            {"key": "model", "label": "Car model", "required": True},
            {"key": "history", "label": "Anything we should know?", "type": "textarea", "help": "Accidents, repairs"},
            {"key": "mileage", "label": "Mileage", "type": "number", "required": True},
            {"key": "fuel", "label": "Fuel", "type": "choice", "options": ["Petrol", "Diesel"]},
            {"key": "colour", "label": "Colour", "type": "choice",
             "options": ["Black", "White", "Grey", "Red", "Blue", "Other"]},
            {"key": "keys", "label": "Do you have both keys?", "type": "yes_no", "required": True},
        ]})
    business = make_business(config)
    slug = slug_of(service, business)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        html = http.get(f"/b/{slug}/inspection/book", params={"at": MONDAY_8AM}).text
    assert re.search(r'<input id="f-intake-model" name="intake.model" type="text"[^>]* required', html)
    assert re.search(r'<textarea id="f-intake-history" name="intake.history"[^>]*aria-describedby='
                     r'"f-intake-history-help"', html) and "Accidents, repairs" in html
    assert re.search(r'<input id="f-intake-mileage" name="intake.mileage" type="text"[^>]*inputmode="decimal"', html)
    assert html.count('name="intake.fuel" value=') == 2 and 'type="radio"' in html  # few options: radio buttons
    assert re.search(r'<select id="f-intake-colour" name="intake.colour">', html) and "<option>Other</option>" in html
    assert re.search(r'<legend>Do you have both keys\? <span class="req">\(required\)</span></legend>', html)
    assert re.search(r'name="intake.keys" value="yes" required>', html)
    assert html.count('<span class="req">(required)</span>') == 4  # name, model, mileage, keys
    for control in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', html):
        assert f'for="{control}"' in html, f"{control} has no label"


def test_the_cores_refusal_is_shown_next_to_its_field_and_nothing_is_written(live_server, service, garage):
    slug = slug_of(service, garage)
    phone = "+12125550122"
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        key = form_key(http.get(f"/b/{slug}/oil-change/book", params={"at": MONDAY_8AM}).text)

        def post(**fields: str) -> httpx.Response:
            return http.post(f"/b/{slug}/oil-change/book", data={"at": MONDAY_8AM, "key": key, **visitor(phone),
                                                                  **fields})

        missing = post(**{"intake.registration": "  "})
        assert missing.status_code == 422
        assert re.search(r'<p class="field-error" id="f-intake-registration-error" data-code="intake_required" '
                         r'data-field="intake.registration">', missing.text)
        assert re.search(r'id="f-intake-registration"[^>]*aria-describedby="f-intake-registration-error" '
                         r'aria-invalid="true"', missing.text)
        assert 'value="Ford Focus"' in missing.text  # what was typed stays
        assert form_key(missing.text) != key  # the next send is a new request

        bad_phone = post(**{"customer.phone": "12"})
        assert bad_phone.status_code == 422 and 'data-code="invalid_phone"' in bad_phone.text
        assert 'id="f-phone-error"' in bad_phone.text and 'href="#f-phone"' in bad_phone.text

        no_contact = post(**{"customer.phone": "", "customer.email": ""})
        assert no_contact.status_code == 422 and 'id="contact-error" data-code="contact_required"' in no_contact.text

        bad_choice = post(**{"intake.oil": "Olive"})
        assert bad_choice.status_code == 422 and 'data-code="intake_invalid" data-field="intake.oil"' in bad_choice.text

        nameless = post(**{"customer.name": ""})
        assert nameless.status_code == 422 and 'id="f-name-error" data-code="invalid_input"' in nameless.text

        keyless = post(key="")  # a form without its key (a hand-made post): refused, with a fresh key to resend
        assert keyless.status_code == 422 and 'data-code="form_expired"' in keyless.text and form_key(keyless.text)
    assert bookings_of(service, garage, phone) == []


def test_a_lost_race_offers_the_nearest_times_and_one_tap_books_one_with_the_details_kept(
        live_server, service, garage):
    slug = slug_of(service, garage)
    phone = "+12125550133"
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        key = form_key(http.get(f"/b/{slug}/oil-change/book", params={"at": MONDAY_8AM}).text)
        book_directly(service, garage, MONDAY_8AM, "+12125550134")  # someone else is quicker
        lost = http.post(f"/b/{slug}/oil-change/book", data={"at": MONDAY_8AM, "key": key, **visitor(phone)})
        assert lost.status_code == 409 and "that time was just taken" in lost.text
        offered = re.findall(r'<button type="submit" name="alt" value="([^"]+)" class="slot wide">Book ([^<]+)</button>',
                             lost.text)
        assert len(offered) == 3 and MONDAY_8AM not in [at for at, _ in offered]
        assert 'value="Ford Focus"' in lost.text and 'value="KXT 4410"' in lost.text
        assert re.search(r'value="Full synthetic"\s+checked', lost.text)

        at, label = offered[0]  # the browser sends every field of the form, plus the tapped button
        retry = {"at": MONDAY_8AM, "key": form_key(lost.text), "alt": at, **visitor(phone)}
        booked = http.post(f"/b/{slug}/oil-change/book", data=retry)
        assert booked.status_code == 303 and "/booked/" in booked.headers["location"]
        assert unescape(label) in http.get(booked.headers["location"]).text
    [booking] = bookings_of(service, garage, phone)
    assert booking.starts_at.utc == datetime.fromisoformat(at)
    assert booking.intake["vehicle"] == "Ford Focus" and booking.customer.name == "Ada Lovelace"


def test_a_service_with_a_deposit_sends_the_visitor_to_pay(live_server, service, garage):
    slug = slug_of(service, garage)
    phone = "+12125550144"
    at = "2026-11-24T15:00:00Z"  # Tuesday 10 am in New York
    answers = {"intake.address": "12 Elm St", "intake.problem": "Won't start", "intake.drivable": "no"}
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/mobile-repair/book", params={"at": at})
        assert "A deposit of $25.00 is paid when booking" in form.text and "Book and pay deposit" in form.text
        data = {"at": at, "key": form_key(form.text), "customer.name": "Ada", "customer.phone": phone, **answers}
        sent = http.post(f"/b/{slug}/mobile-repair/book", data=data)
        assert sent.status_code == 303 and sent.headers["location"].startswith("/pay/")
    [booking] = bookings_of(service, garage, phone)
    assert booking.status == "pending_payment" and booking.intake == {
        "address": "12 Elm St", "problem": "Won't start", "drivable": False}


def test_unknown_businesses_and_services_get_a_404_page(live_server, service, garage):
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        for path in ("/b/no-such-business", "/b/NOT_A_SLUG", f"/b/{slug}/no-such-service",
                     f"/b/{slug}/no-such-service/book?at={MONDAY_8AM}", "/b/no-such-business/qr.svg"):
            page = http.get(path)
            assert page.status_code == 404 and "text/html" in page.headers["content-type"], path
            assert "<h1>Not found</h1>" in page.text


def test_booking_pages_can_be_framed_by_any_site(live_server, service, garage):
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        page = http.get(f"/b/{slug}", params={"embed": "1"})
    assert "x-frame-options" not in page.headers
    assert "frame-ancestors *" in page.headers["content-security-policy"]
    assert 'data-embed="1"' in page.text and f'href="/b/{slug}/oil-change?embed=1"' in page.text


def test_customer_details_are_not_logged_at_info_level(live_server, service, garage, caplog):
    slug = slug_of(service, garage)
    phone = "+12125550155"
    caplog.set_level(logging.INFO)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        key = form_key(http.get(f"/b/{slug}/oil-change/book", params={"at": MONDAY_8AM}).text)
        sent = http.post(f"/b/{slug}/oil-change/book", data={"at": MONDAY_8AM, "key": key, **visitor(phone)})
        assert sent.status_code == 303
    assert "page booking" in caplog.text
    for private in (phone, "ada@example.com", "Ada Lovelace", "KXT 4410"):
        assert private not in caplog.text


def test_a_business_brands_its_page_with_a_colour_and_a_logo_and_nothing_else_gets_in(
        live_server, service, make_business):
    config = example("garage")
    page = {"colour": "#ffd700", "logo_url": "https://cdn.example.com/logo.png"}
    branded = make_business({**config, "business": {**config["business"],
                                                    "details": {**config["business"]["details"], "page": page}}})
    sneaky = make_business({**config, "business": {**config["business"], "details": {
        "page": {"colour": "red;}body{display:none", "logo_url": "javascript:alert(1)"}}}})
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        shown = http.get(f"/b/{slug_of(service, branded)}")
        plain = http.get(f"/b/{slug_of(service, sneaky)}")
    nonce = re.search(r"'nonce-([^']+)'", shown.headers["content-security-policy"]).group(1)
    assert (f'<style nonce="{nonce}">:root{{--brand:#ffd700;--on-brand:#111111;--brand-line:#1a1a1a}}</style>'
            in shown.text)  # dark text on gold, and slot borders dark enough to see
    assert '<img src="https://cdn.example.com/logo.png" alt=""' in shown.text
    assert "<style nonce" not in plain.text and "javascript:" not in plain.text and "display:none" not in plain.text
