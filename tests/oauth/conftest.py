"""A live server that knows its own URL (the OAuth issuer), a business with an owner and a staff account, and
an OAuth client that goes through the consent page over HTTP with the console's session cookie."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl
from sqlalchemy import select

from nextslot.core.accounts.staff import create_account
from nextslot.settings import Settings
from nextslot.storage.tables import Business
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import free_port

PASSWORD = "correct horse battery"
CALLBACK = "http://127.0.0.1:9/callback"  # nothing listens: the test reads the code from the redirect


@dataclass
class Shop:
    id: int
    slug: str
    owner: str
    staff: str


@pytest.fixture
def shop(make_business, session_factory) -> Callable[[], Shop]:
    def make() -> Shop:
        business_id = make_business("clinic")
        uow = SqlAlchemyUnitOfWork(session_factory)
        with uow:
            slug = uow.session.scalar(select(Business.slug).where(Business.id == business_id))
        owner, staff = f"owner@{slug}.example", f"desk@{slug}.example"
        create_account(SqlAlchemyUnitOfWork(session_factory), business_id, owner, "Olu Owner", "owner", PASSWORD)
        create_account(SqlAlchemyUnitOfWork(session_factory), business_id, staff, "Dee Desk", "staff", PASSWORD)
        return Shop(business_id, slug, owner, staff)

    return make


@pytest.fixture
def oauth_server(live_server):
    """`with oauth_server() as server:` the app on loopback with NEXTSLOT_PUBLIC_URL = its own address."""

    def start():
        port = free_port()
        settings = Settings(public_url=f"http://127.0.0.1:{port}", secret_key="test-secret-for-oauth")
        return live_server(settings=settings, port=port)

    return start


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def sign_in(http: httpx2.AsyncClient, base: str, slug: str, email: str) -> None:
    answer = await http.post(f"{base}/console/{slug}/login", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


class Person:
    """Someone at the business who approves (or denies) in the consent page, over HTTP with their cookie."""

    def __init__(self, base: str, shop: Shop, email: str, scopes: list[str] | None = None, decision: str = "approve"):
        self.base, self.shop, self.email, self.scopes, self.decision = base, shop, email, scopes, decision
        self.authorize_url: str | None = None
        self.consent_page: str | None = None

    async def redirect_handler(self, url: str) -> None:
        self.authorize_url = url

    async def callback_handler(self) -> AuthorizationCodeResult:
        query = await self.consent(self.authorize_url)
        return AuthorizationCodeResult(code=query.get("code", [""])[0], state=query.get("state", [None])[0])

    async def consent(self, authorize_url: str, callback: str = CALLBACK) -> dict[str, list[str]]:
        """Follow /authorize to the consent page, decide, and return the query the app's redirect URI got."""
        async with httpx2.AsyncClient() as http:
            step = await http.get(authorize_url)
            assert step.status_code == 302, step.text
            assert step.headers["location"].startswith(f"{self.base}/oauth/connect?"), step.headers["location"]
            choose = step.headers["location"] + f"&business={self.shop.slug}"
            step = await http.get(choose)
            assert step.status_code == 303, step.text
            consent_url = self.base + step.headers["location"]
            step = await http.get(consent_url)
            assert step.status_code == 303 and "/login" in step.headers["location"]  # sign in first
            await sign_in(http, self.base, self.shop.slug, self.email)
            page = await http.get(consent_url)
            assert page.status_code == 200, page.text
            self.consent_page = page.text
            request = re.search(r'name="request" value="([^"]+)"', page.text).group(1)
            ticked = self.scopes if self.scopes is not None else re.findall(r'name="scope:([^"]+)" value="1" checked',
                                                                            page.text)
            form = {"csrf": csrf_of(page.text), "request": request, "decision": self.decision,
                    **{f"scope:{s}": "1" for s in ticked}}
            done = await http.post(f"{self.base}/console/{self.shop.slug}/connect", data=form)
            assert done.status_code == 303, done.text
            target = done.headers["location"]
            assert target.startswith(callback + "?"), target
            return parse_qs(urlsplit(target).query)


def client_for(base: str, person: Person, storage: MemoryStorage | None = None) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(client_name="Test Assistant", redirect_uris=[AnyUrl(CALLBACK)],
                                   grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                                   token_endpoint_auth_method="client_secret_post")
    return OAuthClientProvider(server_url=f"{base}/mcp", client_metadata=metadata, storage=storage or MemoryStorage(),
                               redirect_handler=person.redirect_handler, callback_handler=person.callback_handler)
