"""Wire OAuth into the app: the SDK's own routes (RFC 8414 metadata, RFC 7591 registration, /authorize,
/token, RFC 7009 revocation, RFC 9728 protected resource metadata) over our provider, and the consent pages."""
from __future__ import annotations

from fastapi import FastAPI
from mcp.server.auth.routes import create_auth_routes, create_protected_resource_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl, ConfigDict, TypeAdapter
from starlette.routing import Route

from nextslot.core.links import load_secret
from nextslot.core.service import BookingService
from nextslot.oauth import consent, scopes
from nextslot.oauth.provider import NextslotOAuthProvider
from nextslot.settings import Settings

URL = TypeAdapter(AnyHttpUrl, config=ConfigDict(url_preserve_empty_path=True))  # no slash added to the issuer
PRM_ROOT = "/.well-known/oauth-protected-resource"


def build_provider(service: BookingService, settings: Settings) -> NextslotOAuthProvider:
    """Issuer and resource from NEXTSLOT_PUBLIC_URL; client secrets derived from the server's secret key."""
    return NextslotOAuthProvider(service, load_secret(settings.secret_key, settings.data_dir), settings.public_url)


def install(app: FastAPI, provider: NextslotOAuthProvider) -> None:
    """Add the routes; call before /mcp is mounted at the root."""
    app.state.oauth = provider
    issuer = URL.validate_python(provider.issuer)
    routes = create_auth_routes(
        provider, issuer_url=issuer,
        client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=scopes.ALL,
                                                              default_scopes=scopes.ALL),
        revocation_options=RevocationOptions(enabled=True),
    )
    resource = create_protected_resource_routes(
        resource_url=URL.validate_python(provider.resource), authorization_servers=[issuer],
        scopes_supported=scopes.ALL, resource_name="nextslot bookings")
    # RFC 9728 names /.well-known/oauth-protected-resource/mcp; some clients ask at the bare path first
    bare = [Route(PRM_ROOT, endpoint=r.endpoint, methods=["GET", "OPTIONS"]) for r in resource]
    app.router.routes.extend([*routes, *resource, *bare])
    app.include_router(consent.router)
