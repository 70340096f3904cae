"""Connecting an assistant, in a real browser: /authorize, which business, the console's sign-in, the consent
page (untick a permission), Allow, and back to the app's registered redirect URI with a code that buys a
token with exactly the ticked scopes."""
from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from playwright.sync_api import expect
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from nextslot.core.accounts.staff import create_account
from nextslot.settings import Settings
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import LiveServer, free_port
from tests.server.test_booking_page import slug_of

PASSWORD = "owner password here"


def callback_app() -> Starlette:
    """The assistant's side of the redirect: it only has to be there."""
    return Starlette(routes=[Route("/callback", lambda request: PlainTextResponse("Connected. You can close this."))])


def test_an_owner_connects_an_assistant_in_the_browser(live_server, make_business, session_factory, service, phone,
                                                      shot):
    business_id = make_business("clinic")
    make_business("garage")  # more than one business here: the person says which
    slug = slug_of(service, business_id)
    create_account(SqlAlchemyUnitOfWork(session_factory), business_id, "owner@clinic.example", "Ola Owner", "owner",
                   PASSWORD)
    port = free_port()
    settings = Settings(public_url=f"http://127.0.0.1:{port}", secret_key="browser-oauth-secret")
    with live_server(settings=settings, port=port) as server, LiveServer(callback_app()) as app:
        callback = f"{app.url}/callback"
        client = httpx2.post(f"{server.url}/register", json={"client_name": "Claude", "redirect_uris": [callback],
                                                            "token_endpoint_auth_method": "none"}).json()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        phone.goto(f"{server.url}/authorize?" + urlencode({
            "response_type": "code", "client_id": client["client_id"], "redirect_uri": callback, "state": "xyz",
            "code_challenge": challenge, "code_challenge_method": "S256", "resource": f"{server.url}/mcp",
            "scope": "availability:read bookings:write bookings:manage"}))
        expect(phone.get_by_role("heading", name="Connect Claude")).to_be_visible()
        phone.get_by_label("Business").fill(slug)
        phone.get_by_role("button", name="Continue").click()
        phone.get_by_label("Email").fill("owner@clinic.example")
        phone.get_by_label("Password").fill(PASSWORD)
        phone.get_by_role("button", name="Sign in").click()
        expect(phone.get_by_role("heading", name="Connect Claude to")).to_be_visible()
        expect(phone.get_by_text(urlsplit(callback).netloc)).to_be_visible()
        expect(phone.get_by_role("checkbox", name="staff")).to_have_count(0)  # not asked for, not offered
        shot(phone, "oauth-consent")
        phone.get_by_role("checkbox", name="bookings:manage").uncheck()
        phone.get_by_role("button", name="Allow").click()
        expect(phone.get_by_text("Connected.")).to_be_visible()
        query = parse_qs(urlsplit(phone.url).query)
        assert phone.url.startswith(callback) and query["state"] == ["xyz"]
        token = httpx2.post(f"{server.url}/token", data={
            "grant_type": "authorization_code", "code": query["code"][0], "code_verifier": verifier,
            "redirect_uri": callback, "client_id": client["client_id"], "resource": f"{server.url}/mcp"}).json()
        assert token["scope"] == "availability:read bookings:write" and token["token_type"] == "Bearer"
