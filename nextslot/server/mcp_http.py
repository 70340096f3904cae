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
from urllib.parse import urlsplit

import anyio
from fastapi import FastAPI
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nextslot.core.accounts.key_cache import ApiKeyCache
from nextslot.core.service import BookingService
from nextslot.oauth.provider import NextslotOAuthProvider
from nextslot.oauth.verifier import BearerVerifier, business_of, scope_missing_for
from nextslot.server.outages import OutageMiddleware
from nextslot.server.rpc_errors import TransportRefusals, rpc_error
from nextslot.server.unmatched import OutsidePages
from nextslot.settings import Settings
from nextslot.tools.mcp_server import build_server

PATH = "/mcp"


class ApiKeyVerifier:
    """A bearer token is valid when it is a live business API key (only its hash is stored); a key checked a
    moment ago is answered from this process's memory, on the event loop."""

    def __init__(self, service: BookingService, keys: ApiKeyCache):
        self._service, self._keys = service, keys

    async def verify_token(self, token: str) -> AccessToken | None:
        holder = self._keys.remembered(token) or await anyio.to_thread.run_sync(
            self._keys.look_up, self._service.uow(), token)
        if holder is None:
            return None
        return AccessToken(token=token, client_id=str(holder.business_id), scopes=["bookings"])


def calling_business() -> int | None:
    return business_of(get_access_token())


def missing_scope(tool: str) -> str | None:
    return scope_missing_for(get_access_token(), tool)


@dataclass(frozen=True)
class McpHttp:
    server: Server[Any]
    app: Starlette


class OriginCheck:
    """DNS-rebinding protection, always on (the MCP spec's MUST): the Host a request names and the Origin a
    browser sends must be this server: NEXTSLOT_PUBLIC_URL's, loopback at the port it listens on, or one added
    with NEXTSLOT_MCP_ALLOWED_HOSTS / _ORIGINS. No Origin (a server-side client) passes the Origin check.

    The SDK's TransportSecuritySettings decide; this answers a refusal in JSON-RPC (the SDK's own is plain text,
    which MCP clients cannot show).
    """

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        host, origin = host_and_origin(settings.public_url)
        self._hosts = [host, *settings.mcp_allowed_hosts]
        self._origins = [origin, *settings.mcp_allowed_origins]
        self._checks: dict[int | None, TransportSecurityMiddleware] = {}

    def check_for(self, port: int | None) -> TransportSecurityMiddleware:
        if port not in self._checks:
            local = [f"{name}:{port}" for name in LOOPBACK_NAMES]
            self._checks[port] = TransportSecurityMiddleware(TransportSecuritySettings(
                enable_dns_rebinding_protection=True, allowed_hosts=[*self._hosts, *local],
                allowed_origins=[*self._origins, *(f"http://{h}" for h in local)]))
        return self._checks[port]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            port = (scope.get("server") or (None, None))[1]
            refused = await self.check_for(port).validate_request(Request(scope))
            if refused is not None:
                which = "Origin" if refused.status_code == 403 else "Host"
                answer = rpc_error(refused.status_code, f"{which.lower()}_not_allowed", f"This server does not "
                                   f"answer requests with this {which} header (DNS-rebinding protection); its "
                                   f"operator can allow it with NEXTSLOT_MCP_ALLOWED_{which.upper()}S.")
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443}


def host_and_origin(url: str) -> tuple[str, str]:
    """("book.example.com", "https://book.example.com") for https://book.example.com/ (or :443): what a client
    sends as Host and a browser as Origin."""
    parts = urlsplit(url)
    name = parts.hostname or ""
    name = f"[{name}]" if ":" in name else name
    host = name if parts.port in (None, DEFAULT_PORTS.get(parts.scheme)) else f"{name}:{parts.port}"
    return host, f"{parts.scheme}://{host}"


def build(service: BookingService, settings: Settings, oauth: NextslotOAuthProvider, keys: ApiKeyCache) -> McpHttp:
    server = build_server(service, calling_business, missing_scope)
    app = server.streamable_http_app(
        streamable_http_path=PATH, stateless_http=True, json_response=True,
        # OriginCheck (below) checks Host and Origin first and answers in JSON-RPC
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        token_verifier=BearerVerifier(ApiKeyVerifier(service, keys), oauth),
        # the OAuth endpoints themselves are served by nextslot.oauth; tokens for another resource are refused
        auth=AuthSettings(issuer_url=oauth.issuer, resource_server_url=oauth.resource, validate_token_resource=True),
    )
    guard(app, settings, PATH)
    return McpHttp(server, app)


class NoStream:
    """Anything but a POST (or a CORS preflight) at an MCP endpoint is answered 405 at once: a GET as the spec allows
    a server that offers no stream of its own. Stateless, there is nothing to send on one, yet the SDK held each GET
    open for ever with a task behind it: at the keyless /b/{slug}/mcp anyone could pile up open connections until
    the process ran out."""

    def __init__(self, app: ASGIApp, path: str):
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("POST", "OPTIONS") and scope["path"] == self.path:
            await Response(status_code=405, headers={"Allow": "POST"})(scope, receive, send)  # worded outside
            return
        await self.app(scope, receive, send)


def guard(app: Starlette, settings: Settings, path: str) -> None:
    """Our layers around an MCP app, /mcp and every public /b/{slug}/mcp alike (innermost first)."""
    app.add_middleware(NoStream, path=path)  # no stream to offer: a GET would be held open for ever
    app.add_middleware(TransportRefusals, path=path)  # the SDK's refusals of a request as sent: JSON-RPC, our words
    app.add_middleware(OutageMiddleware)  # the key check reads the database: a blip there is a 503, not a 500
    app.add_middleware(OriginCheck, settings=settings)  # outermost: a foreign page gets nothing further


@asynccontextmanager
async def running(mcp: McpHttp) -> AsyncIterator[None]:
    """The session manager's task group; a mounted app's own lifespan never runs."""
    async with mcp.server.session_manager.run():
        yield


class McpEndpoint:
    """/mcp and /mcp/ alike: a redirect between them would cost every tool call a second round trip, and clients
    that do not follow redirects would fail."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH + "/":
            scope = {**scope, "path": PATH, "raw_path": PATH.encode()}
        await self.app(scope, receive, send)


def mount(app: FastAPI, mcp: McpHttp) -> None:
    """Serve the MCP app: /mcp itself as the first route (a tool call is then not matched against every page and
    API route first, about 0.5 ms), the rest of it (/mcp/, its metadata) mounted at the root after every other
    route, so it only sees what nothing else answered."""
    endpoint = McpEndpoint(mcp.app)
    app.router.routes.insert(0, Route(PATH, endpoint, include_in_schema=False))
    app.router.routes.append(OutsidePages("/", endpoint))  # not the console's or the pages' paths: unmatched.py
