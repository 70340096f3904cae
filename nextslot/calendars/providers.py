"""The calendar providers by the name stored on each external calendar's row (`external_calendars.provider`).

`Registry` is what the sync engine and the write-back queue are given: the providers, the box that opens the
grants' tokens, and where providers should push change notifications. `build_registry(settings)` adds Google and
Microsoft 365 when their client ids are set; `DEFAULT` (CalDAV alone) serves callers with no settings at hand.
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from nextslot.calendars.caldav import CalDav
from nextslot.calendars.provider import CalendarProvider, CalendarSource
from nextslot.calendars.tokens import TokenBox

PUSH_PATHS = {"google": "/webhooks/calendars/google", "microsoft": "/webhooks/calendars/microsoft"}


@dataclass(frozen=True)
class Registry:
    providers: Mapping[str, CalendarProvider]
    box: TokenBox | None = None  # None: no OAuth provider is configured
    public_url: str | None = None  # None: no push channels (the periodic sync alone)
    allow_private: bool = False

    def connect(self, source: CalendarSource) -> AbstractContextManager[Any]:
        """Open the calendar with its own provider."""
        return self.providers[source.provider].connect(source, self.allow_private)

    def push_address(self, provider: str) -> str | None:
        if self.public_url is None or provider not in PUSH_PATHS:
            return None
        return self.public_url.rstrip("/") + PUSH_PATHS[provider]


PROVIDERS: dict[str, CalendarProvider] = {"caldav": CalDav()}
DEFAULT = Registry(PROVIDERS)


def connect(source: CalendarSource, allow_private: bool = False) -> AbstractContextManager[Any]:
    """Open a CalDAV calendar (the default registry's provider)."""
    return PROVIDERS[source.provider].connect(source, allow_private)


def build_registry(settings: Any, secret_key: str) -> Registry:
    """Every provider the settings configure; push channels when the server has a public https address (or the
    settings allow private targets, as the tests' fakes need)."""
    found: dict[str, CalendarProvider] = {"caldav": CalDav()}
    if settings.google_client_id and settings.google_client_secret:
        from nextslot.calendars.google import GoogleCalendar, GoogleOAuth

        oauth = GoogleOAuth(settings.google_client_id, settings.google_client_secret, settings.google_auth_url,
                            settings.google_token_url, settings.google_revoke_url)
        found["google"] = GoogleCalendar(oauth, settings.google_calendar_api_url)
    if settings.microsoft_client_id and settings.microsoft_client_secret:
        from nextslot.calendars.microsoft import MicrosoftCalendar, MicrosoftOAuth

        ms = MicrosoftOAuth(settings.microsoft_client_id, settings.microsoft_client_secret,
                            settings.microsoft_tenant, settings.microsoft_login_url)
        found["microsoft"] = MicrosoftCalendar(ms, settings.microsoft_graph_url)
    public = settings.public_url if settings.calendar_push and (
        settings.public_url.startswith("https://") or settings.allow_private_targets) else None
    return Registry(found, TokenBox(secret_key), public, settings.allow_private_targets)
