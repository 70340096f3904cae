"""Wire OAuth into the app: the SDK's own routes (RFC 8414 metadata, RFC 7591 registration, /authorize,
/token, RFC 7009 revocation, RFC 9728 protected resource metadata) over our provider, and the consent pages."""
from __future__ import annotations

from fastapi import FastAPI
from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.routes import build_metadata, cors_middleware, create_auth_routes, create_protected_resource_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl, ConfigDict, TypeAdapter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nextslot.core.links import load_secret
from nextslot.core.service import BookingService
from nextslot.oauth import consent, scopes
from nextslot.oauth.client_documents import ClientDocuments
from nextslot.oauth.provider import NextslotOAuthProvider, same_resource
from nextslot.settings import Settings

URL = TypeAdapter(AnyHttpUrl, config=ConfigDict(url_preserve_empty_path=True))  # no slash added to the issuer
PRM_ROOT = "/.well-known/oauth-protected-resource"
AS_METADATA = "/.well-known/oauth-authorization-server"
REGISTER = "/register"
TOKEN = "/token"


class RegistrationLimit:
    """Registrations per client address (`RateLimits.registrations`): each one is a row that stays, so an
    address that keeps registering is refused with RFC 7591's error shape and Retry-After."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            address = scope["client"][0] if scope.get("client") else "unknown"
            if (wait := scope["app"].state.rate_limits.registrations.take(address)) > 0:
                refusal = JSONResponse({"error": "too_many_requests", "error_description": "Too many registrations "
                                        f"from this address; try again in {wait // 60 + 1} minutes."},
                                       status_code=429, headers={"Retry-After": str(wait)})
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class TokenResource:
    """RFC 8707 2.2 at /token: a `resource` named there must be our /mcp, as at /authorize. The SDK passes it to
    no one, so a client misled into asking for another server's audience was handed a token our /mcp accepts (and
    the other server could replay it here). Each value is checked (the parameter may repeat); the body is read
    once and handed on unchanged."""

    def __init__(self, app: ASGIApp, resource: str):
        self.app, self.resource = app, resource

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(scope, replay).form()
        except HTTPException:  # a form that cannot be read: the SDK's handler answers it as it does
            named = []
        else:
            named = [str(v) for v in form.getlist("resource")]
            await form.close()
        if any(not same_resource(value, self.resource) for value in named):
            refusal = JSONResponse({"error": "invalid_target", "error_description": "This server only issues "
                                    f"tokens for {self.resource}."}, status_code=400,
                                   headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
            await refusal(scope, receive, send)
            return
        sent = False
        await self.app(scope, replay, send)


def build_provider(service: BookingService, settings: Settings) -> NextslotOAuthProvider:
    """Issuer and resource from NEXTSLOT_PUBLIC_URL; client secrets derived from the server's secret key."""
    return NextslotOAuthProvider(service, load_secret(settings.secret_key, settings.data_dir), settings.public_url,
                                 ClientDocuments(trusted_hosts=settings.oauth_trusted_client_hosts))


def install(app: FastAPI, provider: NextslotOAuthProvider) -> None:
    """Add the routes; call before /mcp is mounted at the root."""
    app.state.oauth = provider
    issuer = URL.validate_python(provider.issuer)
    registration = ClientRegistrationOptions(enabled=True, valid_scopes=scopes.ALL, default_scopes=scopes.ALL)
    revocation = RevocationOptions(enabled=True)
    routes = create_auth_routes(provider, issuer_url=issuer, client_registration_options=registration,
                                revocation_options=revocation)
    # RFC 8414 metadata as the SDK builds it, plus what it cannot know: clients may also be identified by a
    # metadata document's URL (public clients, no secret: token endpoint auth "none")
    metadata = build_metadata(issuer, None, registration, revocation)
    metadata.client_id_metadata_document_supported = True
    metadata.token_endpoint_auth_methods_supported = [*(metadata.token_endpoint_auth_methods_supported or []), "none"]
    routes = [Route(r.path, endpoint=cors_middleware(MetadataHandler(metadata).handle, ["GET", "OPTIONS"]),
                    methods=["GET", "OPTIONS"]) if r.path == AS_METADATA
              else Route(r.path, endpoint=RegistrationLimit(r.endpoint), methods=["POST", "OPTIONS"])
              if r.path == REGISTER
              else Route(r.path, endpoint=TokenResource(r.endpoint, provider.resource), methods=["POST", "OPTIONS"])
              if r.path == TOKEN else r for r in routes]
    resource = create_protected_resource_routes(
        resource_url=URL.validate_python(provider.resource), authorization_servers=[issuer],
        scopes_supported=scopes.ALL, resource_name="nextslot bookings")
    # RFC 9728 names /.well-known/oauth-protected-resource/mcp; some clients ask at the bare path first
    bare = [Route(PRM_ROOT, endpoint=r.endpoint, methods=["GET", "OPTIONS"]) for r in resource]
    app.router.routes.extend([*routes, *resource, *bare])
    app.include_router(consent.router)
