"""MCP over streamable HTTP at /mcp, authenticated with a business API key or an OAuth access token as the
bearer token.

Stateless (every POST stands alone), so any server process behind a load balancer can answer any request.
The token is checked by the SDK's bearer middleware before a tool runs (a 401 names our protected resource
metadata, so OAuth clients can find the way in); the business and scopes it carries ride in the access
token, which the tool handler reads back.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import FastAPI
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from nextslot.core.api_keys import business_for_key
from nextslot.core.service import BookingService
from nextslot.oauth.provider import NextslotOAuthProvider
from nextslot.oauth.verifier import BearerVerifier, business_of, scope_missing_for
from nextslot.server.outages import OutageMiddleware
from nextslot.settings import Settings
from nextslot.tools.mcp_server import build_server

PATH = "/mcp"


class ApiKeyVerifier:
    """A bearer token is valid when it is a live business API key (only its hash is stored)."""

    def __init__(self, service: BookingService):
        self._service = service

    async def verify_token(self, token: str) -> AccessToken | None:
        business_id = await anyio.to_thread.run_sync(business_for_key, self._service.uow(), token)
        if business_id is None:
            return None
        return AccessToken(token=token, client_id=str(business_id), scopes=["bookings"])


def calling_business() -> int | None:
    return business_of(get_access_token())


def missing_scope(tool: str) -> str | None:
    return scope_missing_for(get_access_token(), tool)


@dataclass(frozen=True)
class McpHttp:
    server: Server[Any]
    app: Starlette


def build(service: BookingService, settings: Settings, oauth: NextslotOAuthProvider) -> McpHttp:
    server = build_server(service, calling_business, missing_scope)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=bool(settings.mcp_allowed_hosts),
        allowed_hosts=settings.mcp_allowed_hosts,
        allowed_origins=settings.mcp_allowed_origins,
    )
    app = server.streamable_http_app(
        streamable_http_path=PATH, stateless_http=True, json_response=True, transport_security=security,
        token_verifier=BearerVerifier(ApiKeyVerifier(service), oauth),
        # the OAuth endpoints themselves are served by nextslot.oauth; tokens for another resource are refused
        auth=AuthSettings(issuer_url=oauth.issuer, resource_server_url=oauth.resource, validate_token_resource=True),
    )
    app.add_middleware(OutageMiddleware)  # the key check reads the database: a blip there is a 503, not a 500
    return McpHttp(server, app)


@asynccontextmanager
async def running(mcp: McpHttp) -> AsyncIterator[None]:
    """The session manager's task group; a mounted app's own lifespan never runs."""
    async with mcp.server.session_manager.run():
        yield


def mount(app: FastAPI, mcp: McpHttp) -> None:
    """Serve /mcp and /mcp/ alike: a redirect between them would cost every tool call a second round trip,
    and clients that do not follow redirects would fail.

    Mounted at the root, after every other route, so it only sees what nothing else answered.
    """

    async def mcp_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH + "/":
            scope = {**scope, "path": PATH, "raw_path": PATH.encode()}
        await mcp.app(scope, receive, send)

    app.mount("/", mcp_app)
