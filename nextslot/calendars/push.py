"""Change notifications from Google (watch channels) and Microsoft Graph (subscriptions).

A notification carries no event data we trust: it only says "this calendar changed". It is checked (the channel
or subscription must be one of ours, and carry the secret we gave it; only its hash is stored) and marks the
calendar `pushed_at`, which makes it due for the scheduler's next pushed-calendars pass, seconds away. The
periodic sync still reads every calendar, so a lost or refused notification delays a change, never loses it.
"""
from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from nextslot.calendars.tokens import secret_hash
from nextslot.schemas.inputs import CONTROL
from nextslot.storage.tables import ExternalCalendar

log = logging.getLogger(__name__)

Outcome = Literal["accepted", "unknown", "forged"]


def notified(session_factory: sessionmaker[Session], provider: str, channel_id: str, secret: str,
             now: datetime, changed: bool = True) -> Outcome:
    """Mark the calendar behind this channel as changed, if the channel is ours and the secret is its own
    (`changed` False: only check, e.g. Google's "sync" message confirming a new channel)."""
    return notified_all(session_factory, provider, [(channel_id, secret)], now, changed)[0]


def notified_all(session_factory: sessionmaker[Session], provider: str, notifications: list[tuple[str, str]],
                 now: datetime, changed: bool = True) -> list[Outcome]:
    """Check (channel id, secret) pairs, as a Graph POST batches them, and mark each calendar a good one names;
    one outcome per distinct pair. Anyone can send these: however many a request carries, they cost one lookup
    for all their channels and at most one update, and each secret is hashed at most once."""
    pairs = list(dict.fromkeys(notifications))  # Graph sends one subscription's changes side by side
    plausible = {c for c, _ in pairs if isinstance(c, str) and c and len(c) <= 200 and not CONTROL.search(c)}
    if not plausible:  # no channel of ours is named so: nothing to look up
        return ["unknown" for _ in pairs]
    with session_factory() as s:
        rows = {channel: (calendar_id, hashed, business_id) for channel, calendar_id, hashed, business_id in s.execute(
            select(ExternalCalendar.channel_id, ExternalCalendar.id, ExternalCalendar.channel_secret_hash,
                   ExternalCalendar.business_id)
            .where(ExternalCalendar.channel_id.in_(plausible), ExternalCalendar.provider == provider))}
        outcomes: list[Outcome] = []
        accepted: set[int] = set()
        forged: set[int] = set()
        for channel_id, secret in pairs:
            row = rows.get(channel_id)
            if row is None:
                outcomes.append("unknown")
            elif not holds(row[1], secret):
                outcomes.append("forged")
                if row[0] not in forged:  # logged once a calendar, however many the request repeats
                    forged.add(row[0])
                    log.warning("%s push for calendar %s (business %s) with a wrong secret: ignored", provider,
                                row[0], row[2])
            else:
                outcomes.append("accepted")
                accepted.add(row[0])
        if "unknown" in outcomes:
            log.info("%s push for an unknown channel", provider)
        if changed and accepted:
            s.execute(update(ExternalCalendar).where(ExternalCalendar.id.in_(accepted), ExternalCalendar.status ==
                                                     "active", ExternalCalendar.pushed_at.is_(None))
                      .values(pushed_at=now))
            s.commit()
    return outcomes


def holds(hashed: str | None, secret: object) -> bool:
    """Whether `secret` is the one whose hash the channel keeps: ours are 43 characters, so a longer one is not
    even hashed, and a lone surrogate could not be."""
    if not hashed or not isinstance(secret, str) or len(secret) > 200 or CONTROL.search(secret):
        return False
    return hmac.compare_digest(hashed, secret_hash(secret))
