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
    if not channel_id or len(channel_id) > 200 or CONTROL.search(channel_id):  # no channel of ours is named so
        return "unknown"
    with session_factory() as s:
        row = s.execute(select(ExternalCalendar.id, ExternalCalendar.channel_secret_hash, ExternalCalendar.business_id)
                        .where(ExternalCalendar.channel_id == channel_id,
                               ExternalCalendar.provider == provider)).first()
        if row is None:
            log.info("%s push for an unknown channel", provider)
            return "unknown"
        calendar_id, hashed, business_id = row
        if not hashed or not isinstance(secret, str) or CONTROL.search(secret) or not hmac.compare_digest(
                hashed, secret_hash(secret)):  # a lone surrogate cannot even be hashed: no secret of ours holds one
            log.warning("%s push for calendar %s (business %s) with a wrong secret: ignored", provider, calendar_id,
                        business_id)
            return "forged"
        if not changed:
            return "accepted"
        s.execute(update(ExternalCalendar).where(ExternalCalendar.id == calendar_id, ExternalCalendar.status ==
                                                 "active", ExternalCalendar.pushed_at.is_(None)).values(pushed_at=now))
        s.commit()
    return "accepted"
