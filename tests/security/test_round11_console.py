"""The staff console as an attacker sees it (eleventh round): forged and cross-site forms, a lower role reaching
for an owner's pages, sessions that should be over, where sign-in sends a person next, and hostile input on every
console route. The in-process app, the real database, a frozen clock."""
from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from limits.storage import MemoryStorage
from sqlalchemy import func, select

from nextslot.core.accounts.staff import create_account, reset_password
from nextslot.server.app import create_app
from nextslot.server.rate_limit import RateLimit
from nextslot.settings import Settings
from nextslot.storage.tables import (
    AuditEntry,
    AvailabilityException,
    BookingHistory,
    ConversationMessage,
    StaffAccount,
    StaffSession,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.security.test_tenant_isolation import Theirs, theirs  # noqa: F401 - a business with one of everything
from tests.server.test_console import (  # noqa: F401 - the signed-in console
    PASSWORD,
    book_by_agent,
    clients,
    console,
    csrf_of,
    slug_of,
)

EVIL = "https://evil.example"


def written(session_factory, business_id: int) -> tuple:
    """What any console write leaves behind at the business: compared before and after a refused one."""
    with session_factory() as s:
        def count(table, *where) -> int:
            return s.scalar(select(func.count()).select_from(table).where(table.business_id == business_id, *where))

        return (count(BookingHistory), count(AuditEntry), count(StaffAccount), count(StaffSession),
                count(AvailabilityException), count(ConversationMessage))


def post_routes(theirs: Theirs) -> dict[str, dict[str, str]]:  # noqa: F811
    """Every console form, with what a real one sends (but its CSRF token)."""
    return {
        f"/bookings/{theirs.code}/confirm": {}, f"/bookings/{theirs.code}/cancel": {"reason": "forged"},
        f"/bookings/{theirs.code}/no-show": {}, f"/bookings/{theirs.code}/move": {"at": "2026-11-24T11:00:00Z"},
        "/book/consultation": {"at": "2026-11-24T12:00:00Z", "customer.name": "Forged", "key": "k" * 22,
                               "customer.phone": "+447900950333"},
        f"/customers/{theirs.customer_id}/erase": {"confirm": "ERASE", "cancel_upcoming": "yes"},
        f"/inbox/{theirs.conversation_id}/reply": {"text": "forged"},
        f"/inbox/{theirs.conversation_id}/hand-back": {},
        "/settings/time-off": {"starts_at": "2026-11-24T00:00", "ends_at": "2026-11-25T00:00", "reason": "x"},
        "/settings/reminders": {"offsets": "60"}, "/settings/branding": {"colour": "#000000"},
        "/settings/staff": {"email": "mallory@evil.example", "name": "Mallory", "role": "owner",
                            "password": "mallory's own password"},
        "/settings/config": {"config": "business: {}"}, "/settings/time-off-delete": {"id": "1", "resource": ""},
        "/settings/hours": {"resource": "dr-patel", "hours.mon": "09:00-10:00"},
        "/settings/service": {"service": "consultation", "duration": "5", "buffer_before": "0", "buffer_after": "0",
                              "step": "5", "min_notice": "0", "horizon_days": "1"},
        "/settings/cancellation": {"cutoff_hours": "1", "late_cancel": "refuse"},
        "/settings/assignment": {"service": "consultation", "strategy": "round_robin"},
        "/settings/templates": {"template.confirmation": "forged"},
        f"/calendars/{theirs.calendar_id}/disconnect": {}, "/calendars/connect/google": {"resource": "dr-okafor"},
        "/settings/apps/1/revoke": {}, "/connect": {"request": "x", "decision": "approve"},
        "/logout": {},
    }


# --- what a change the core cannot take answers ------------------------------------------------------------


def test_a_reason_with_a_control_character_or_a_code_no_booking_has_is_a_page_not_a_500(
        console, theirs, session_factory, service):  # noqa: F811
    client, slug = console(theirs.id)
    csrf = csrf_of(client.get(f"/console/{slug}/bookings/{theirs.code}").text)
    before = written(session_factory, theirs.id)
    for action in ("confirm", "cancel", "no-show"):
        for reason in ("\x00", "bell \x07", "next\x85line"):
            answer = client.post(f"/console/{slug}/bookings/{theirs.code}/{action}",
                                 data={"csrf": csrf, "reason": reason})
            assert answer.status_code == 422, (action, reason, answer.status_code)
            assert 'data-code="invalid_reason"' in answer.text and "pydantic" not in answer.text
    for action, form in (("cancel", {}), ("move", {"at": "2026-11-24T11:00:00Z"})):
        answer = client.post(f"/console/{slug}/bookings/{'A' * 41}/{action}", data={"csrf": csrf, **form})
        assert answer.status_code == 404, (action, answer.status_code)
    assert written(session_factory, theirs.id) == before
    assert service.get_booking(theirs.id, theirs.code).status == "booked"


def test_an_account_name_no_history_could_hold_is_refused_when_the_account_is_made(
        console, make_business, session_factory, service):  # noqa: F811
    """The name is the actor of every change the person makes: one too long, or with a control character, made
    every confirm, cancel and move of theirs a 500 and every walk-in a refusal they could not fix."""
    clinic = make_business("clinic")
    client, slug = console(clinic)
    csrf = csrf_of(client.get(f"/console/{slug}/settings").text)
    for name, email in (("N" * 101, "long@example.com"), ("Bell\x07", "bell@example.com"),
                        ("Two\nlines", "lines@example.com"), ("", f"{'e' * 120}@example.com")):
        answer = client.post(f"/console/{slug}/settings/staff", data={
            "csrf": csrf, "name": name, "email": email, "role": "staff", "password": PASSWORD})
        assert answer.status_code == 422 and 'data-code="invalid_name"' in answer.text, (name[:5], answer.status_code)
    assert create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "cli@example.com", "C" * 101, "staff",
                          PASSWORD).code == "invalid_name"  # the command line's way in too

    code = book_by_agent(service, clinic)
    assert isinstance(create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "longest@example.com", "N" * 100,
                                     "staff", PASSWORD), int)  # the longest name that fits
    desk = TestClient(client.app, follow_redirects=False)
    signed = desk.post(f"/console/{slug}/login", data={"email": "longest@example.com", "password": PASSWORD})
    assert signed.status_code == 303
    token = csrf_of(desk.get(f"/console/{slug}/bookings/{code}").text)
    assert desk.post(f"/console/{slug}/bookings/{code}/confirm", data={"csrf": token}).status_code == 303
    assert service.booking_history(clinic, code).entries[-1].actor == "N" * 100


# --- where sign-in sends a person -------------------------------------------------------------------------


def test_sign_in_sends_a_person_back_only_inside_this_business_console(console, make_business):  # noqa: F811
    client, slug = console(make_business("clinic"), email="next@example.com")
    client.cookies.clear()
    limits = client.app.state.rate_limits  # more sign-ins than one address may make in a minute
    client.app.state.rate_limits = replace(limits, sign_in=RateLimit("1000/minute", MemoryStorage(), "sign_in"))
    home = f"/console/{slug}"
    outside = [f"{home}/../../b/{slug}", f"{home}/%2e%2e/%2E%2e/outbox", f"{home}/./../..//evil.example",
               f"{home}/.%2e/x", f"{home}//evil.example", f"{home}/\\evil.example", f"{EVIL}{home}",
               f"//evil.example{home}", f"{home}-other/settings", "/console/other", ""]
    inside = [f"{home}/bookings/ABC123", f"{home}?date=2026-11-24&view=week", f"{home}/settings#staff"]
    for wanted in outside + inside:
        form = client.get(f"{home}/login", params={"next": wanted})
        assert f'name="next" value="{html.escape(wanted if wanted in inside else home)}"' in form.text, wanted
    for wanted in outside[:4] + inside[:1]:  # the form and the sign-in read `next` alike
        client.cookies.clear()
        signed = client.post(f"{home}/login", data={"email": "next@example.com", "password": PASSWORD,
                                                    "next": wanted})
        assert signed.status_code == 303, wanted
        assert signed.headers["location"] == (wanted if wanted in inside else home), wanted


# --- forged and cross-site forms --------------------------------------------------------------------------


def test_every_console_form_without_its_token_with_another_sessions_or_from_another_site_changes_nothing(
        console, theirs, session_factory, service):  # noqa: F811
    owner, slug = console(theirs.id)
    colleague, _ = console(theirs.id, "owner", email="colleague@example.com")
    mine = csrf_of(owner.get(f"/console/{slug}/calendars").text)
    theirs_token = csrf_of(colleague.get(f"/console/{slug}/calendars").text)
    before = written(session_factory, theirs.id)
    for path, form in post_routes(theirs).items():
        for token, headers in ((None, {}), ("", {}), (theirs_token, {}), (mine + "x", {}), (mine[:-1], {}),
                               (mine, {"origin": EVIL}), (mine, {"origin": "null"}),
                               (mine, {"origin": "http://testserver.evil.example"})):
            data = {**form, **({"csrf": token} if token is not None else {})}
            answer = owner.post(f"/console/{slug}{path}", data=data, headers=headers)
            assert answer.status_code == 403, (path, token == theirs_token, headers, answer.status_code)
            assert "Form expired" in answer.text
    assert written(session_factory, theirs.id) == before
    assert service.get_booking(theirs.id, theirs.code).status == "booked"
    assert owner.get(f"/console/{slug}").status_code == 200  # a forged sign-out signed no one out


def test_a_sign_in_posted_from_another_site_signs_no_one_in(console, make_business):  # noqa: F811
    """Login CSRF: a page elsewhere must not sign a visitor's browser in to an account the attacker holds."""
    client, slug = console(make_business("clinic"), email="mallory@example.com")
    client.cookies.clear()
    for origin in (EVIL, "null"):
        answer = client.post(f"/console/{slug}/login", data={"email": "mallory@example.com", "password": PASSWORD},
                             headers={"origin": origin})
        assert answer.status_code == 403 and "set-cookie" not in answer.headers, origin
    assert client.get(f"/console/{slug}").status_code == 303


# --- roles ------------------------------------------------------------------------------------------------


def test_a_staff_account_can_do_nothing_only_an_owner_may(console, theirs, session_factory):  # noqa: F811
    desk, slug = console(theirs.id, "staff")
    owner, _ = console(theirs.id, "owner")
    csrf = csrf_of(desk.get(f"/console/{slug}/calendars").text)
    before = written(session_factory, theirs.id)
    owner_writes = {path: form for path, form in post_routes(theirs).items()
                    if path.startswith(("/settings", f"/customers/{theirs.customer_id}/erase"))}
    for path, form in owner_writes.items():
        answer = desk.post(f"/console/{slug}{path}", data={"csrf": csrf, **form})
        assert answer.status_code == 403 and "Owners only" in answer.text, (path, answer.status_code)
    for path in (f"/customers/{theirs.customer_id}/export", "/audit"):
        answer = desk.get(f"/console/{slug}{path}")
        assert answer.status_code == 403 and "Owners only" in answer.text, path
    assert written(session_factory, theirs.id) == before
    settings = desk.get(f"/console/{slug}/settings").text
    assert "owner-" not in settings  # who may sign in (the accounts) is an owner's to see
    assert "owner-" in owner.get(f"/console/{slug}/settings").text


# --- sessions ---------------------------------------------------------------------------------------------


def test_signing_out_ends_the_session_on_the_server_and_a_password_reset_ends_every_other(
        console, make_business, session_factory):  # noqa: F811
    clinic = make_business("clinic")
    client, slug = console(clinic)
    stolen = client.cookies.get("nextslot_console")
    csrf = csrf_of(client.get(f"/console/{slug}/calendars").text)
    assert client.post(f"/console/{slug}/logout", data={"csrf": csrf}).status_code == 303
    client.cookies.set("nextslot_console", stolen, path=f"/console/{slug}")  # the old cookie, replayed
    assert client.get(f"/console/{slug}").status_code == 303
    assert client.post(f"/console/{slug}/bookings/X/cancel", data={"csrf": csrf}).status_code == 401

    laptop, _ = console(clinic, "staff", email="desk@example.com")
    tablet = TestClient(laptop.app, follow_redirects=False)
    tablet.cookies.set("nextslot_console", laptop.cookies.get("nextslot_console"), path=f"/console/{slug}")
    assert tablet.get(f"/console/{slug}").status_code == 200
    assert reset_password(SqlAlchemyUnitOfWork(session_factory), clinic, "desk@example.com", "a brand new one!")
    assert laptop.get(f"/console/{slug}").status_code == 303 and tablet.get(f"/console/{slug}").status_code == 303


@pytest.mark.parametrize("public_url", ["http://127.0.0.1:8000", "https://book.example"])
def test_the_session_cookie_is_httponly_strict_scoped_to_the_business_and_secure_behind_https(
        make_business, session_factory, service, public_url):
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "o@example.com", "O", "owner", PASSWORD)
    with TestClient(create_app(Settings(secret_key="r11", public_url=public_url), service=service),
                    follow_redirects=False) as client:
        answer = client.post(f"/console/{slug}/login", data={"email": "o@example.com", "password": PASSWORD})
    cookies = {c.split("=", 1)[0]: c for c in answer.headers.get_list("set-cookie")}
    for cookie in cookies.values():  # the session's, and the mark of a browser that signed in here
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
        assert flags["path"] == f"Path=/console/{slug}" and "httponly" in flags
        assert flags["samesite"] == "SameSite=strict" and ("secure" in flags) == public_url.startswith("https://")
    token = cookies["nextslot_console"].split(";")[0].split("=", 1)[1]
    with session_factory() as s:  # kept only as a hash
        assert not s.scalar(select(func.count()).select_from(StaffSession).where(StaffSession.token_hash == token))


def test_sign_in_answers_an_unknown_email_a_wrong_password_and_a_switched_off_account_alike(
        console, make_business, session_factory):  # noqa: F811
    clinic = make_business("clinic")
    client, slug = console(clinic, email="known@example.com")
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "gone@example.com", "Gone", "staff", PASSWORD)
    with session_factory() as s:
        s.execute(StaffAccount.__table__.update().where(StaffAccount.email == "gone@example.com").values(active=False))
        s.commit()
    client.cookies.clear()
    answers = [client.post(f"/console/{slug}/login", data={"email": email, "password": password})
               for email, password in (("known@example.com", "wrong password!"), ("nobody@example.com", PASSWORD),
                                       ("gone@example.com", PASSWORD))]

    assert {a.status_code for a in answers} == {401}
    bodies = {re.sub(r'value="[^"]*@example\.com"|nonce="[^"]+"', "", a.text) for a in answers}
    assert len(bodies) == 1
    varying = ("content-security-policy", "content-length", "x-request-id")  # the nonce, the email's length
    heads = [{k: v for k, v in a.headers.items() if k not in varying} for a in answers]
    assert heads[0] == heads[1] == heads[2]


# --- framing ----------------------------------------------------------------------------------------------


def test_console_and_consent_pages_are_never_framed_while_the_booking_page_and_widget_may_be(
        console, make_business):  # noqa: F811
    client, slug = console(make_business("clinic"))
    for path in ("", "/login", "/settings", "/customers", "/inbox", "/calendars", "/settings/apps",
                 "/connect?request=x"):
        answer = client.get(f"/console/{slug}{path}")
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
        assert answer.headers["x-frame-options"] == "DENY", path
    for path in (f"/b/{slug}", f"/b/{slug}/consultation", f"/b/{slug}?embed=1"):
        answer = client.get(path)
        assert "frame-ancestors *" in answer.headers["content-security-policy"], path
        assert "x-frame-options" not in answer.headers, path
    assert client.get("/oauth/connect?request=x").headers["x-frame-options"] == "DENY"


# --- hostile query strings and forms ----------------------------------------------------------------------

HOSTILE_QUERIES = ["%00", "9" * 2000, "%ff%fe", "-1", "99999999999999999999999", "0001-01-01", "9999-12-31",
                   "9999-12-31T23:59:59%2B14:00", "1e999", "a%0d%0aSet-Cookie:%20x=1", "%C0%AF"]
QUERY_KEYS = ["date", "view", "resource", "location", "from", "at", "q", "before", "partial", "request", "next",
              "done", "saved", "revoked"]


def test_hostile_query_strings_and_forms_on_console_routes_answer_a_page_never_a_500(
        console, theirs, session_factory):  # noqa: F811
    client, slug = console(theirs.id)
    quiet = TestClient(client.app, follow_redirects=False, raise_server_exceptions=False)
    quiet.cookies.set("nextslot_console", client.cookies.get("nextslot_console"), path=f"/console/{slug}")
    csrf = csrf_of(quiet.get(f"/console/{slug}/calendars").text)
    pages = ["", "/book/consultation", "/book/consultation/details", f"/bookings/{theirs.code}/move", "/customers",
             "/audit", "/inbox", "/connect", "/login"]
    queries = [(path, "&".join(f"{key}={value}&{key}=2026-11-24" for key in QUERY_KEYS))
               for path in pages for value in HOSTILE_QUERIES]  # each key repeated, the hostile value first
    calendar_keys = ("date", "view", "resource", "location", "partial")  # what the calendar reads, one at a time too
    queries += [("", f"{key}={value}") for key in calendar_keys for value in HOSTILE_QUERIES]
    for path, query in queries:
        answer = quiet.get(f"/console/{slug}{path}?{query}")
        assert answer.status_code < 500, (path, query[:60], answer.status_code)
        assert "set-cookie" not in answer.headers
    for path, form in post_routes(theirs).items():
        if path == "/logout":
            continue
        for value in ("\x00", "\x85", "a" * 60_000, "-1", "99999999999999999999999"):
            answer = quiet.post(f"/console/{slug}{path}", data={"csrf": csrf, **{k: value for k in form},
                                                                "reason": value, "key": value, "local": value,
                                                                "zone": value})
            assert answer.status_code < 500, (path, value[:10], answer.status_code)
        sent_as_file = quiet.post(f"/console/{slug}{path}", data={"csrf": csrf}, files={k: ("f", b"x") for k in form})
        assert sent_as_file.status_code < 500, path


def test_hostile_query_strings_and_forms_on_the_public_pages_answer_a_page_never_a_500(
        console, theirs, service):  # noqa: F811
    client, slug = console(theirs.id)
    app = client.app
    app.state.rate_limits = replace(app.state.rate_limits, pages=RateLimit("100000/minute", MemoryStorage(), "pages"))
    quiet = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    links = app.state.links
    booking = service.get_booking(theirs.id, theirs.code)
    manage = links.manage_url(theirs.id, theirs.code, booking.starts_at.utc).removeprefix(links.public_url)
    offer = links.offer_url(theirs.id, 1, booking.starts_at.utc).removeprefix(links.public_url)
    pages = [f"/b/{slug}", f"/b/{slug}/consultation", f"/b/{slug}/consultation/book",
             f"/b/{slug}/consultation/waitlist", f"/b/{slug}/chat", f"/b/{slug}/share", f"/b/{slug}/qr.svg", manage,
             f"{manage}/move", f"{manage}/cancel",
             f"{manage}/move/confirm", offer, "/oauth/connect"]
    keys = ["at", "from", "location", "lang", "tz", "zone", "embed", "partial", "done", "request", "business", "v"]
    for path in pages:
        for value in HOSTILE_QUERIES:
            query = "&".join(f"{key}={value}&{key}=2026-11-24" for key in keys)
            answer = quiet.get(f"{path}?{query}")
            assert answer.status_code < 500, (path, value[:20], answer.status_code)
    fields = ["at", "key", "name", "phone", "email", "customer.name", "customer.phone", "intake:reason", "party_size",
              "earliest_date", "latest_date", "day_start", "day_end", "late_terms", "text", "ticket", "code", "contact"]
    for path in pages[2:5] + [f"/b/{slug}/chat/code", f"/b/{slug}/chat/verify", f"{manage}/move", f"{manage}/cancel",
                              offer]:
        for value in ("\x00", "\x85x", "a" * 60_000, "-1", "99999999999999999999999", "9999-12-31T23:59:59+14:00"):
            answer = quiet.post(path, data={field: value for field in fields})
            assert answer.status_code < 500, (path, repr(value[:10]), answer.status_code)
        sent_as_files = quiet.post(path, files={field: ("f", b"x") for field in fields[:6]})
        assert sent_as_files.status_code < 500, path


def test_a_brand_colour_or_logo_the_booking_page_would_ignore_is_refused_not_saved(console, make_business):  # noqa: F811
    """The page draws only #rrggbb and an https logo of at most 2,000 characters; the console said "saved" to
    `#zzzzzz` or `#"><b>` and the page quietly kept its own blue."""
    client, slug = console(make_business("clinic"))
    csrf = csrf_of(client.get(f"/console/{slug}/settings").text)
    for colour, logo, code in (("#zzzzzz", "", "invalid_colour"), ('#"><b>', "", "invalid_colour"),
                               ("", "https://x.example/" + "l" * 2000, "invalid_logo")):
        answer = client.post(f"/console/{slug}/settings/branding", data={"csrf": csrf, "colour": colour,
                                                                         "logo_url": logo})
        assert answer.status_code == 422 and f'data-code="{code}"' in answer.text, (colour, answer.status_code)
    saved = client.post(f"/console/{slug}/settings/branding", data={"csrf": csrf, "colour": "#AA3300"})
    assert saved.status_code == 303
    assert "--brand:#AA3300" in client.get(f"/b/{slug}").text


def test_one_wrong_try_every_fifteen_minutes_from_elsewhere_does_not_keep_the_owner_out_for_good(
        console, make_business, clock):  # noqa: F811
    """The account's lock stops guesses from anywhere; it stopped the owner too, and a wrong try each time it ended
    renewed it for fifteen minutes, for ever. A browser that signed in to the account before gets past it."""
    client, slug = console(make_business("clinic"), email="owner@example.com")
    csrf = csrf_of(client.get(f"/console/{slug}/calendars").text)
    assert client.post(f"/console/{slug}/logout", data={"csrf": csrf}).status_code == 303  # the shift ended
    limits = client.app.state.rate_limits
    client.app.state.rate_limits = replace(limits, sign_in=RateLimit("1000/minute", MemoryStorage(), "sign_in"))
    attacker, stranger = (TestClient(client.app, follow_redirects=False) for _ in range(2))

    def sign_in_with(browser: TestClient, password: str):
        return browser.post(f"/console/{slug}/login", data={"email": "owner@example.com", "password": password})

    for guess in range(5):
        assert sign_in_with(attacker, f"guess number {guess}").status_code == 401
    for _ in range(4):  # an hour of one wrong try each time the lock ends
        clock.now += timedelta(minutes=16)
        assert sign_in_with(attacker, "another guess!").status_code == 401
        assert sign_in_with(stranger, PASSWORD).status_code == 429  # the right password, from a browser never used
    clock.now += timedelta(minutes=1)
    assert sign_in_with(client, PASSWORD).status_code == 303  # the owner's own browser
    assert client.get(f"/console/{slug}").status_code == 200
    assert sign_in_with(attacker, "yet another guess").status_code == 429  # the lock stays on the guesser
    forged = TestClient(client.app, follow_redirects=False)
    forged.cookies.set("nextslot_console_device", "0" * 64, path=f"/console/{slug}")
    assert sign_in_with(forged, PASSWORD).status_code == 429  # a made-up mark is no mark


def test_a_new_password_ends_every_browsers_mark_so_a_leaver_cannot_guess_past_the_lock(
        console, make_business, clock, session_factory):  # noqa: F811
    """A mark lets its browser past the account's lock: one kept by someone who knew the old password (a leaver, a
    shared laptop) must not let them guess the new one past it."""
    clinic = make_business("clinic")
    client, slug = console(clinic, email="owner@example.com")  # the browser that knew the old password
    csrf = csrf_of(client.get(f"/console/{slug}/calendars").text)
    assert client.post(f"/console/{slug}/logout", data={"csrf": csrf}).status_code == 303
    assert reset_password(SqlAlchemyUnitOfWork(session_factory), clinic, "owner@example.com", "a brand new one!")
    limits = client.app.state.rate_limits
    client.app.state.rate_limits = replace(limits, sign_in=RateLimit("1000/minute", MemoryStorage(), "sign_in"))
    for guess in range(5):
        answer = client.post(f"/console/{slug}/login", data={"email": "owner@example.com",
                                                              "password": f"guess number {guess}"})
        assert answer.status_code == 401
    answer = client.post(f"/console/{slug}/login", data={"email": "owner@example.com", "password": "a brand new one!"})
    assert answer.status_code == 429  # its mark was for the old password: the lock holds it like any browser


def test_signing_in_over_someone_elses_session_in_the_same_browser_ends_that_session(
        console, make_business, session_factory):  # noqa: F811
    """A shared front-desk tablet: the next person's sign-in replaced the cookie but left the first person's session
    alive on the server, so a copy of the old cookie still acted as them until the shift ended."""
    clinic = make_business("clinic")
    tablet, slug = console(clinic, "staff", email="morning@example.com")
    morning = tablet.cookies.get("nextslot_console")
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "evening@example.com", "Eve", "staff", PASSWORD)
    assert tablet.post(f"/console/{slug}/login", data={"email": "evening@example.com",
                                                       "password": PASSWORD}).status_code == 303
    replay = TestClient(tablet.app, follow_redirects=False)
    replay.cookies.set("nextslot_console", morning, path=f"/console/{slug}")
    assert replay.get(f"/console/{slug}").status_code == 303  # sent to sign in: the morning's session is over
    assert tablet.get(f"/console/{slug}").status_code == 200  # the evening's works


def test_a_customer_export_is_never_sniffed_into_a_page(console, theirs):  # noqa: F811
    client, slug = console(theirs.id, email="exporter@example.com")
    answer = client.get(f"/console/{slug}/customers/{theirs.customer_id}/export")
    assert answer.status_code == 200 and answer.headers["x-content-type-options"] == "nosniff"
