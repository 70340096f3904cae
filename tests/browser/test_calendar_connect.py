"""Connecting a staff member's Google and Microsoft 365 calendars in a real browser: the console's Staff calendars
page, the provider's consent page (loopback fakes on another site, so the console's SameSite=Strict session
cookie really stays behind on the way back), Allow, and back to the console with the calendar connected."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from evals.fake_google import FakeGoogle
from evals.fake_microsoft import FakeMicrosoft
from nextslot.core.accounts.staff import create_account
from nextslot.settings import Settings
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import free_port
from tests.server.test_booking_page import slug_of

PASSWORD = "owner password here"


def other_site(url: str) -> str:
    """The fake as a different site than the console (127.0.0.1): `localhost`, same server."""
    return url.replace("127.0.0.1", "localhost")


def test_an_owner_connects_google_and_microsoft_365_for_a_doctor_in_the_browser(
        live_server, make_business, session_factory, service, phone, shot, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake token endpoint is plain http on loopback
    clinic = make_business("clinic")
    slug = slug_of(service, clinic)
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "owner@clinic.example", "Ola Owner", "owner",
                   PASSWORD)
    port = free_port()
    with FakeGoogle() as google, FakeMicrosoft() as microsoft:
        urls = {**google.settings(), **microsoft.settings()}
        urls["google_auth_url"] = other_site(urls["google_auth_url"])
        urls["microsoft_login_url"] = other_site(urls["microsoft_login_url"])
        settings = Settings(**urls, public_url=f"http://127.0.0.1:{port}", secret_key="browser-calendar-secret",
                            allow_private_targets=True, calendar_push=False)
        with live_server(settings=settings, port=port) as server:
            phone.goto(f"{server.url}/console/{slug}/calendars")
            phone.get_by_label("Email").fill("owner@clinic.example")
            phone.get_by_label("Password").fill(PASSWORD)
            phone.get_by_role("button", name="Sign in").click()
            expect(phone.get_by_role("heading", name="Staff calendars")).to_be_visible()
            okafor = phone.locator("tr", has=phone.get_by_role("rowheader", name="Dr Femi Okafor"))
            okafor.get_by_role("button", name="Connect Google").click()

            expect(phone.get_by_role("heading", name=re.compile("wants to access your Google Account"))) \
                .to_be_visible()
            assert phone.url.startswith("http://localhost:")
            shot(phone, "calendar-google-consent")
            phone.get_by_role("button", name="Allow").click()
            expect(phone.get_by_role("heading", name="Calendar connected")).to_be_visible()
            phone.get_by_role("link", name="Back to staff calendars").click()
            okafor = phone.locator("tr", has=phone.get_by_role("rowheader", name="Dr Femi Okafor"))
            expect(okafor).to_contain_text("Google: okafor@example.com")

            okafor.get_by_role("button", name="Connect Microsoft 365").click()
            expect(phone.get_by_role("heading", name="Permissions requested")).to_be_visible()
            phone.get_by_role("button", name="Accept").click()
            expect(phone.get_by_role("heading", name="Calendar connected")).to_be_visible()
            phone.get_by_role("link", name="Back to staff calendars").click()
            okafor = phone.locator("tr", has=phone.get_by_role("rowheader", name="Dr Femi Okafor"))
            expect(okafor).to_contain_text("Microsoft 365: okafor@clinic.example")
            shot(phone, "calendar-connected")

            okafor.get_by_role("button", name="Disconnect Google").click()
            expect(phone.get_by_role("status")).to_contain_text("Disconnected")
            okafor = phone.locator("tr", has=phone.get_by_role("rowheader", name="Dr Femi Okafor"))
            expect(okafor).not_to_contain_text("Google: okafor@example.com")
            expect(okafor).to_contain_text("Microsoft 365: okafor@clinic.example")
