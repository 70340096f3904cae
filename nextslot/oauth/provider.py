"""The mcp package's `OAuthAuthorizationServerProvider` over our tables.

The SDK's handlers parse and check every request (client authentication, redirect URI, PKCE S256, expiry,
scopes) and call these methods for what only we know. /authorize hands the person to our consent page
(`consent.py`) with the request signed, so nothing is stored until they approve.
"""
from __future__ import annotations

import hmac
import re
from hashlib import sha256
from typing import Any
from urllib.parse import urlencode

import anyio
from itsdangerous import BadSignature, URLSafeTimedSerializer
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from nextslot.core.service import BookingService
from nextslot.oauth import grants, scopes
from nextslot.oauth.client_documents import ClientDocuments, is_document_id
from nextslot.oauth.redirects import grant_problem, metadata_problem, redirect_uri_problem, same_but_loopback_port

REQUEST_MAX_AGE = 15 * 60  # seconds a person has to sign in and decide
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest, unpadded


class GrantCode(AuthorizationCode):
    grant_id: int


class GrantRefresh(RefreshToken):
    grant_id: int


class BusinessAccess(AccessToken):
    """Who a bearer token acts for: one business, with these scopes (an API key: every tool)."""

    business_id: int
    api_key: bool = False


def same_resource(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


class NextslotOAuthProvider(OAuthAuthorizationServerProvider[GrantCode, GrantRefresh, BusinessAccess]):
    def __init__(self, service: BookingService, secret_key: str, public_url: str,
                 documents: ClientDocuments | None = None):
        self.service = service
        self.documents = documents or ClientDocuments()
        self.issuer = public_url.rstrip("/")
        self.resource = self.issuer + "/mcp"
        self._secret = secret_key.encode()
        self.requests = URLSafeTimedSerializer(secret_key, salt="nextslot-oauth-request")

    # --- clients (RFC 7591) -----------------------------------------------------------------------

    def client_secret(self, client_id: str) -> str:
        """Derived, never stored: HMAC of the id under the server's secret key."""
        return hmac.new(self._secret, b"oauth-client-secret:" + client_id.encode(), sha256).hexdigest()

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        client = await self.client_as_declared(client_id)
        return None if client is None else NativeClient.model_validate(client.model_dump())

    async def client_as_declared(self, client_id: str) -> OAuthClientInformationFull | None:
        """A registered client, or one described by the metadata document its client_id points at."""
        if is_document_id(client_id):
            fetched = await self.documents.client(client_id)
            if fetched.client is not None and fetched.fresh:  # its grants need a row to belong to
                info = fetched.client.model_dump(mode="json", exclude_none=True)
                name = (fetched.client.client_name or "").strip() or "An unnamed app"
                await anyio.to_thread.run_sync(grants.remember_client, self.service.uow(), client_id, name, info)
            if fetched.client is None or fetched.client.scope is not None:
                return fetched.client
            # a document naming no scope may ask for any (as a registration naming none gets all): the person
            # consenting still picks
            return fetched.client.model_copy(update={"scope": " ".join(scopes.ALL)})
        info = await anyio.to_thread.run_sync(grants.client_info, self.service.uow(), client_id)
        if info is None:
            return None
        if info.get("token_endpoint_auth_method") != "none":
            info["client_secret"] = self.client_secret(client_id)
        return OAuthClientInformationFull.model_validate(info)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        uris = [str(u) for u in client_info.redirect_uris or []]
        if not uris or len(uris) > 10:
            raise RegistrationError("invalid_redirect_uri", "Give between one and ten redirect URIs.")
        for uri in uris:
            if problem := redirect_uri_problem(uri):
                raise RegistrationError("invalid_redirect_uri", problem)
        if problem := grant_problem(list(client_info.grant_types), list(client_info.response_types)):
            raise RegistrationError("invalid_client_metadata", problem)
        if client_info.client_secret is not None:  # the SDK made a random one: hand out ours instead
            client_info.client_secret = self.client_secret(client_info.client_id)
        info = client_info.model_dump(mode="json", exclude_none=True, exclude={"client_secret"})
        if problem := metadata_problem(info):
            raise RegistrationError("invalid_client_metadata", problem)
        name = (client_info.client_name or "").strip() or "An unnamed app"
        await anyio.to_thread.run_sync(grants.save_client, self.service.uow(), client_info.client_id, name, info)

    # --- authorization ------------------------------------------------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Tokens are only ever for our /mcp (RFC 8707); then off to the consent page."""
        if params.resource is not None and not same_resource(params.resource, self.resource):
            raise AuthorizeError("invalid_target", f"This server only issues tokens for {self.resource}.")
        if not S256_CHALLENGE.fullmatch(params.code_challenge):
            raise AuthorizeError("invalid_request", "code_challenge must be an S256 challenge: 43 base64url characters.")
        request = self.requests.dumps({
            "client_id": client.client_id, "redirect_uri": str(params.redirect_uri),
            "explicit": params.redirect_uri_provided_explicitly, "state": params.state,
            "code_challenge": params.code_challenge, "scopes": params.scopes,
        })
        return f"{self.issuer}/oauth/connect?{urlencode({'request': request})}"

    def pending(self, request: str) -> dict[str, Any] | None:
        """The signed authorization request the consent page carries, if genuine and recent."""
        try:
            return self.requests.loads(request, max_age=REQUEST_MAX_AGE)
        except (BadSignature, TypeError, ValueError):
            return None

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str
                                      ) -> GrantCode | None:
        found = await anyio.to_thread.run_sync(grants.find_code, self.service.uow(), authorization_code,
                                               self.service.now())
        if found is None or found.client_id != client.client_id:
            return None
        return GrantCode(code=authorization_code, scopes=found.scopes, expires_at=found.expires_at.timestamp(),
                         client_id=found.client_id, code_challenge=found.code_challenge,
                         redirect_uri=found.redirect_uri, redirect_uri_provided_explicitly=found.redirect_uri_explicit,
                         resource=found.resource, grant_id=found.grant_id)

    async def exchange_authorization_code(self, client: OAuthClientInformationFull, authorization_code: GrantCode
                                          ) -> OAuthToken:
        issued = await anyio.to_thread.run_sync(grants.redeem_code, self.service.uow(), authorization_code.code,
                                                self.service.now())
        if issued is None:
            raise TokenError("invalid_grant", "The authorization code was already used or has expired.")
        return token_response(issued)

    # --- tokens -------------------------------------------------------------------------------------

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> GrantRefresh | None:
        found = await anyio.to_thread.run_sync(grants.find_token, self.service.uow(), refresh_token, "refresh",
                                               self.service.now())
        if found is None or found.client_id != client.client_id:
            return None
        return GrantRefresh(token=refresh_token, client_id=found.client_id, scopes=found.scopes,
                            expires_at=int(found.expires_at.timestamp()), resource=found.resource,
                            grant_id=found.grant_id)

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: GrantRefresh,
                                     scopes: list[str]) -> OAuthToken:
        issued = await anyio.to_thread.run_sync(grants.rotate, self.service.uow(), refresh_token.token, scopes,
                                                self.service.now())
        if issued is None:
            raise TokenError("invalid_grant", "The refresh token was already used, revoked or has expired.")
        return token_response(issued)

    async def load_access_token(self, token: str) -> BusinessAccess | None:
        if not token.startswith(grants.ACCESS_PREFIX):
            return None
        found = await anyio.to_thread.run_sync(grants.find_token, self.service.uow(), token, "access",
                                               self.service.now())
        if found is None:
            return None
        return BusinessAccess(token=token, client_id=found.client_id, scopes=found.scopes,
                              expires_at=int(found.expires_at.timestamp()), resource=found.resource,
                              business_id=found.business_id, claims={"grant_id": found.grant_id})

    async def revoke_token(self, token: BusinessAccess | GrantRefresh) -> None:
        """Either token ends the whole grant (its access and refresh tokens), as the SDK recommends."""
        grant_id = token.grant_id if isinstance(token, GrantRefresh) else (token.claims or {}).get("grant_id")
        if grant_id is not None:
            await anyio.to_thread.run_sync(grants.revoke_grant, self.service.uow(), int(grant_id),
                                           self.service.now())


def token_response(issued: grants.Issued) -> OAuthToken:
    return OAuthToken(access_token=issued.access_token, expires_in=issued.expires_in,
                      scope=" ".join(issued.scopes), refresh_token=issued.refresh_token)


class NativeClient(OAuthClientInformationFull):
    """A client whose loopback redirect URI may name any port at request time (RFC 8252 7.3)."""

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is not None and any(same_but_loopback_port(str(redirect_uri), str(known))
                                            for known in self.redirect_uris or ()):
            return redirect_uri
        return super().validate_redirect_uri(redirect_uri)
