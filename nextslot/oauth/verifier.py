"""The bearer check for /mcp: a business API key (unchanged) or an OAuth access token, told apart by prefix
so each request costs one lookup."""
from __future__ import annotations

from mcp.server.auth.provider import TokenVerifier

from nextslot.oauth.grants import ACCESS_PREFIX
from nextslot.oauth.provider import BusinessAccess, NextslotOAuthProvider
from nextslot.oauth.scopes import missing_scope


class BearerVerifier:
    """Either kind of token, as a `BusinessAccess` bound to /mcp (the SDK refuses any other resource)."""

    def __init__(self, api_keys: TokenVerifier, provider: NextslotOAuthProvider):
        self._api_keys = api_keys
        self._provider = provider

    async def verify_token(self, token: str) -> BusinessAccess | None:
        if token.startswith(ACCESS_PREFIX):
            return await self._provider.load_access_token(token)
        found = await self._api_keys.verify_token(token)
        if found is None:
            return None
        return BusinessAccess(**found.model_dump(exclude={"resource"}), resource=self._provider.resource,
                              business_id=int(found.client_id), api_key=True)


def business_of(access: object) -> int | None:
    return access.business_id if isinstance(access, BusinessAccess) else None


def scope_missing_for(access: object, tool: str) -> str | None:
    """The scope this caller lacks for the tool, or None; API keys may use every tool."""
    if not isinstance(access, BusinessAccess):
        return None
    return missing_scope(tool, None if access.api_key else frozenset(access.scopes))
