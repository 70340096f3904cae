"""Connecting a staff member's Google or Microsoft 365 calendar: the OAuth authorization code flow with PKCE.

`start` returns the provider's consent URL and a sealed flow (encrypted with a key derived from the secret key,
valid for 15 minutes) that the console keeps in a cookie: the PKCE verifier, the state, who is being connected
and the console session it was started from. `finish` checks the state and the session, exchanges the code
(the verifier proves the flow is ours), reads the account's name, and stores the grant and its calendar.
"""
from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from nextslot.calendars.grants import GrantRefused, save_grant
from nextslot.calendars.provider import CalendarSource
from nextslot.calendars.providers import Registry
from nextslot.calendars.tokens import CONNECT, TokenBox, Undecryptable
from nextslot.core.results import Rejected

log = logging.getLogger(__name__)

FLOW_SECONDS = 15 * 60
URLS = {"google": "https://www.googleapis.com/calendar/v3/calendars/primary", "microsoft": "graph:/me/calendar"}
REFS = {"google": "primary", "microsoft": "calendar"}


@dataclass(frozen=True)
class Started:
    url: str  # where to send the browser
    sealed: str  # what to keep (a cookie) until it comes back


def connectable(registry: Registry) -> list[str]:
    """The OAuth providers this server is configured for."""
    return [name for name in ("google", "microsoft") if name in registry.providers]


def start(registry: Registry, secret_key: str, provider: str, business_id: int, resource_id: int,
          redirect_uri: str, binding: str) -> Started | Rejected:
    if provider not in connectable(registry):
        return Rejected("provider_not_configured", f"{provider} calendars are not configured on this server.",
                        "provider")
    state = secrets.token_urlsafe(24)
    url, kept = registry.providers[provider].oauth.start(redirect_uri, state)
    flow = {"provider": provider, "business_id": business_id, "resource_id": resource_id, "state": state,
            "binding": binding, "kept": kept}
    return Started(url, TokenBox(secret_key, CONNECT).seal(json.dumps(flow)))


def finish(registry: Registry, secret_key: str, session_factory: sessionmaker[Session], sealed: str | None,
           query: dict[str, str], binding: str, now: datetime) -> tuple[int, int] | Rejected:
    """Store the grant the browser came back with; return (the calendar's id, the resource's id)."""
    try:
        flow: dict[str, Any] = json.loads(TokenBox(secret_key, CONNECT).open(sealed or "", FLOW_SECONDS))
    except (Undecryptable, ValueError):
        return Rejected("connect_expired", "This connection attempt has expired. Start again.", "state")
    if not hmac.compare_digest(flow["binding"].encode(), binding.encode()) or not hmac.compare_digest(
            flow["state"].encode(), query.get("state", "").encode()):
        return Rejected("connect_mismatch", "This answer is not for the connection started here. Start again.",
                        "state")
    if query.get("error"):  # the person said no on the consent page
        return Rejected("consent_refused", "The calendar was not connected: access was not allowed.", "consent")
    if not query.get("code"):
        return Rejected("connect_failed", "The provider sent no authorization code. Start again.", "code")
    provider_name = flow["provider"]
    provider = registry.providers.get(provider_name)
    if provider is None or registry.box is None:
        return Rejected("provider_not_configured", f"{provider_name} calendars are not configured.", "provider")
    try:
        tokens = provider.oauth.finish(flow["kept"], query)
        source = CalendarSource(0, flow["business_id"], flow["resource_id"], provider_name, URLS[provider_name],
                                None, None, UTC, None, REFS[provider_name], tokens.access_token)
        with provider.connect(source, registry.allow_private) as connection:
            account = tokens.account or provider.account(connection, REFS[provider_name])
    except GrantRefused as refused:
        return Rejected("connect_failed", f"The provider did not grant calendar access ({refused.code}).", "consent")
    except Exception as error:  # noqa: BLE001 - the provider's answer is not shown: it may quote tokens
        log.warning("connecting a %s calendar failed (%s)", provider_name, type(error).__name__)
        return Rejected("connect_failed", "The provider did not complete the connection. Try again.", "code")
    tokens = dataclasses.replace(tokens, account=account[:320] if account else None)
    calendar_id = save_grant(session_factory, registry.box, flow["business_id"], flow["resource_id"],
                             provider_name, tokens, REFS[provider_name], URLS[provider_name], now)
    log.info("a %s calendar was connected (calendar %s, business %s)", provider_name, calendar_id,
             flow["business_id"])
    return calendar_id, flow["resource_id"]
