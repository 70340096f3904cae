"""The calendar providers by the name stored on each external calendar's row (`external_calendars.provider`)."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from nextslot.calendars.caldav import CalDav
from nextslot.calendars.provider import CalendarProvider, CalendarSource

PROVIDERS: dict[str, CalendarProvider] = {"caldav": CalDav()}


def connect(source: CalendarSource, allow_private: bool = False) -> AbstractContextManager[Any]:
    """Open the calendar with its own provider."""
    return PROVIDERS[source.provider].connect(source, allow_private)
