"""Connecting and disconnecting staff calendars at the console (in-process app, the fakes of Google and Microsoft
on loopback): who may, the OAuth round trip through the callback, tenancy."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from nextslot.core.accounts.staff import create_account
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Business, CalendarGrant, ExternalCalendar, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork

PASSWORD = "correct horse battery"
PUBLIC = "http://localhost:8000"  # where the provider sends the browser back


@pytest.fixture
def app_settings(google, microsoft) -> Settings:
    return Settings(**google.settings(), **microsoft.settings(), secret_key="console-calendar-tests",
                    allow_private_targets=True, calendar_push=False, public_url=PUBLIC)


@pytest.fixture
def sign_in(service, session_factory, app_settings):
    made: list[TestClient] = []

    def signed(business_id: int, role: str = "owner", email: str | None = None) -> tuple[TestClient, str]:
        with session_factory() as s:
            slug = s.get(Business, business_id).slug
        email = email or f"{role}-{business_id}@example.com"
        create_account(SqlAlchemyUnitOfWork(session_factory), business_id, email, f"Sam {role}", role, PASSWORD)
        client = TestClient(create_app(app_settings, service=service), follow_redirects=False).__enter__()
        made.append(client)
        assert client.post(f"/console/{slug}/login", data={"email": email, "password": PASSWORD}).status_code == 303
        return client, slug

    yield signed
    for client in made:
        client.__exit__(None, None, None)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def connect_through_console(client: TestClient, slug: str, fake, provider: str, resource: str = "dr-okafor"):
    page = client.get(f"/console/{slug}/calendars")
    assert page.status_code == 200
    started = client.post(f"/console/{slug}/calendars/connect/{provider}",
                          data={"csrf": csrf_of(page.text), "resource": resource})
    if started.status_code != 303:
        return started
    assert started.headers["location"].startswith(fake.url)
    back = urlsplit(fake.approve_url(started.headers["location"]))  # the person presses Allow / Accept
    assert f"{back.scheme}://{back.netloc}" == PUBLIC and back.path == f"/console/{slug}/calendars/callback"
    # coming back from the provider's site, the browser sends the Lax flow cookie, not the Strict session cookie
    flow = client.cookies.get("nextslot_calendar_connect")
    browser = TestClient(client.app, follow_redirects=False)  # not entered: the app's lifespan already runs
    browser.cookies.set("nextslot_calendar_connect", flow)
    return browser.get(f"{back.path}?{back.query}")


def test_an_owner_connects_google_and_microsoft_for_a_staff_member_and_disconnects(
        sign_in, make_business, session_factory, google, microsoft):
    clinic = make_business("clinic")
    client, slug = sign_in(clinic)
    page = client.get(f"/console/{slug}/calendars").text
    assert "Connect Google" in page and "Connect Microsoft 365" in page and "Dr Femi Okafor" in page
    done = connect_through_console(client, slug, google, "google")
    assert done.status_code == 200 and "Calendar connected" in done.text
    done = connect_through_console(client, slug, microsoft, "microsoft")
    assert done.status_code == 200, done.text
    client2, _ = sign_in(clinic, email="second-owner@example.com")
    page = client2.get(f"/console/{slug}/calendars").text
    assert "Google: okafor@example.com" in page and "Microsoft 365: okafor@clinic.example" in page
    with session_factory() as s:
        calendars = s.scalars(select(ExternalCalendar).where(ExternalCalendar.business_id == clinic)).all()
        assert sorted(c.provider for c in calendars) == ["google", "microsoft"]
        google_id = next(c.id for c in calendars if c.provider == "google")
    gone = client2.post(f"/console/{slug}/calendars/{google_id}/disconnect", data={"csrf": csrf_of(page)})
    assert gone.status_code == 303 and gone.headers["location"].endswith("?done=disconnected")
    with session_factory() as s:
        assert s.get(ExternalCalendar, google_id) is None
        assert [g.provider for g in s.scalars(select(CalendarGrant).where(CalendarGrant.business_id == clinic))] \
            == ["microsoft"]


def test_a_staff_member_connects_only_their_own_calendar(sign_in, make_business, session_factory, google):
    clinic = make_business("clinic")
    with session_factory() as s:
        s.execute(update(Resource).where(Resource.business_id == clinic, Resource.key == "dr-okafor")
                  .values(email="Femi.Okafor@clinic.example"))
        s.commit()
    client, slug = sign_in(clinic, "staff", "femi.okafor@clinic.example")
    page = client.get(f"/console/{slug}/calendars").text
    assert page.count("Connect Google") == 1  # their own row only
    refused = connect_through_console(client, slug, google, "google", "dr-patel")
    assert refused.status_code == 403 and 'data-code="not_allowed"' in refused.text
    assert connect_through_console(client, slug, google, "google").status_code == 200


def test_a_callback_without_the_flow_cookie_or_for_another_flow_connects_nothing(
        sign_in, make_business, session_factory, google):
    clinic = make_business("clinic")
    client, slug = sign_in(clinic)
    page = client.get(f"/console/{slug}/calendars")
    started = client.post(f"/console/{slug}/calendars/connect/google",
                          data={"csrf": csrf_of(page.text), "resource": "dr-okafor"})
    back = urlsplit(google.approve_url(started.headers["location"]))
    stranger = TestClient(client.app, follow_redirects=False)  # another browser: no flow cookie
    refused = stranger.get(f"{back.path}?{back.query}")
    assert refused.status_code == 400 and "Calendar not connected" in refused.text
    forged = client.get(f"{back.path}?{back.query.replace('state=', 'state=x')}")
    assert forged.status_code == 400
    with session_factory() as s:
        assert s.scalars(select(CalendarGrant).where(CalendarGrant.business_id == clinic)).all() == []


def test_a_connect_post_without_csrf_or_for_an_unknown_provider_is_refused(sign_in, make_business):
    clinic = make_business("clinic")
    client, slug = sign_in(clinic)
    assert client.post(f"/console/{slug}/calendars/connect/google", data={"resource": "dr-okafor"}).status_code \
        == 403
    page = client.get(f"/console/{slug}/calendars").text
    unknown = client.post(f"/console/{slug}/calendars/connect/yahoo", data={"csrf": csrf_of(page),
                                                                          "resource": "dr-okafor"})
    assert unknown.status_code == 400 and 'data-code="provider_not_configured"' in unknown.text


def test_another_business_cannot_disconnect_our_calendar(sign_in, make_business, session_factory, google):
    clinic, other = make_business("clinic"), make_business("clinic")
    client, slug = sign_in(clinic)
    assert connect_through_console(client, slug, google, "google").status_code == 200
    with session_factory() as s:
        calendar_id = s.scalar(select(ExternalCalendar.id).where(ExternalCalendar.business_id == clinic))
    intruder, other_slug = sign_in(other)
    page = intruder.get(f"/console/{other_slug}/calendars").text
    answer = intruder.post(f"/console/{other_slug}/calendars/{calendar_id}/disconnect", data={"csrf": csrf_of(page)})
    assert answer.status_code == 404
    with session_factory() as s:
        assert s.get(ExternalCalendar, calendar_id) is not None
