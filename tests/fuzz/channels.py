"""What the channel fuzz runs share: an app with budgets no fuzz run reaches (the rate limits would otherwise
answer 429 to most generated requests, which tests nothing), the check every answer passes, and the rows a
refused request must leave as they were (the booking tables and the conversation and delivery ones)."""
from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from limits.storage import MemoryStorage
from sqlalchemy import func, select

from nextslot.server.rate_limit import RateLimit, RateLimits
from nextslot.storage.tables import (
    Conversation,
    ConversationMessage,
    DeliveryAttempt,
    ExternalCalendar,
    InboundMessage,
    WhatsAppWindow,
)
from tests.fuzz.hostile import assert_clean, counts, json_text

MORE = (Conversation, ConversationMessage, InboundMessage, WhatsAppWindow, DeliveryAttempt)
SURROGATE = re.compile(r"[\ud800-\udfff]")


def unlimited(app: Any) -> None:
    """Budgets far beyond a fuzz run, for an app whose lifespan has started (it sets the real ones)."""
    storage = MemoryStorage()
    app.state.rate_limits = RateLimits(*(RateLimit("1000000/minute", storage, budget.name)
                                         for budget in dataclasses.fields(RateLimits)))


def rows(session_factory) -> dict[str, int]:
    """The booking tables' rows (`counts`) and the conversations', replies', windows' and deliveries'."""
    with session_factory() as s:
        more = {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in MORE}
        more["calendar_pushes"] = s.scalar(select(func.count()).select_from(ExternalCalendar)
                                           .where(ExternalCalendar.pushed_at.is_not(None)))
    return {**counts(session_factory), **more}


def checked(answer: Any, before: dict[str, int], after: dict[str, int], what: str) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.text[:600]}"
    assert_clean(answer.text.replace('"isError"', ""))  # MCP's own field
    if answer.status_code >= 400 and answer.status_code != 409:
        assert after == before, f"{what} was refused ({answer.status_code}) but wrote: {answer.text[:300]}"


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else json_text(value)


def sendable(fields: dict[str, str]) -> bool:
    """Whether a form can be sent at all: a lone surrogate has no UTF-8."""
    return not any(SURROGATE.search(f"{k}{v}") for k, v in fields.items())


class Errors(logging.Handler):
    """ERROR records logged while it is installed: a worker that caught a crash still logs it."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.name}: {record.getMessage()}")


@contextmanager
def logged_errors(*names: str) -> Iterator[Errors]:
    handler = Errors()
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
