"""OAuth grants for staff calendars (Google, Microsoft 365): kept encrypted, refreshed before they expire, and
turned `needs_reconnect` (with one notice to the business) when the provider refuses them.

A refresh is a network call, so it runs with no transaction open and writes its result compare-and-set: if
another process refreshed the same grant meanwhile (the write-back queue and a sync both need a token), the
newer tokens already stored win and are used. Google keeps refresh tokens on refresh; Microsoft rotates them but
the old one stays valid for its lifetime, so a lost race costs one extra refresh, never the grant.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from nextslot.calendars.tokens import TokenBox, Undecryptable
from nextslot.core.calendar_writes import queue_future_bookings, retry_given_up
from nextslot.core.lent import lent
from nextslot.core.outbox import tell_business
from nextslot.storage.tables import CalendarGrant, ExternalCalendar, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork

log = logging.getLogger(__name__)

EARLY = timedelta(minutes=5)  # an access token this close to expiry is refreshed first
PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft 365", "caldav": "CalDAV"}


@dataclass(frozen=True)
class Tokens:
    """What a provider's token endpoint gave: plain text, never stored as such."""

    access_token: str
    refresh_token: str | None  # None on a refresh: the old one stays
    expires_at: datetime | None
    scopes: str = ""
    account: str | None = None


class GrantRefused(Exception):
    """The provider will not honour the grant any more (revoked, expired, consent withdrawn): reconnect."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code  # the provider's error code, e.g. invalid_grant; never a token


Refresh = Callable[[str], Tokens]  # refresh token -> new tokens; raises GrantRefused, or anything for an outage


def save_grant(session_factory: sessionmaker[Session], box: TokenBox, business_id: int, resource_id: int,
               provider: str, tokens: Tokens, calendar_ref: str, url: str, now: datetime) -> int:
    """Store (or replace, on reconnecting) a staff member's grant and its calendar; return the calendar's id.

    Reconnecting keeps the calendar row, its stored events and busy time, and its write queue: the next sync
    carries on from there."""
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        s = uow.session
        grant = s.scalar(select(CalendarGrant).where(CalendarGrant.resource_id == resource_id,
                                                     CalendarGrant.provider == provider).with_for_update())
        if grant is None:
            grant = CalendarGrant(business_id=business_id, resource_id=resource_id, provider=provider)
            s.add(grant)
        grant.access_token = box.seal(tokens.access_token)
        if tokens.refresh_token:
            grant.refresh_token = box.seal(tokens.refresh_token)
        grant.expires_at, grant.scopes, grant.account = tokens.expires_at, tokens.scopes, tokens.account
        grant.status, grant.problem, grant.problem_at = "active", None, None
        grant.updated_at = now
        s.flush()
        calendar = s.scalar(select(ExternalCalendar).where(ExternalCalendar.grant_id == grant.id))
        if calendar is None:
            calendar = ExternalCalendar(business_id=business_id, resource_id=resource_id, provider=provider,
                                        url=url, grant_id=grant.id, calendar_ref=calendar_ref, write_back=True)
            s.add(calendar)
            s.flush()
            queue_future_bookings(uow, calendar, now)  # the bookings already made go into it too
        else:  # connected again: what could not be written before is tried again
            retry_given_up(uow, calendar.id, now)
        calendar.status, calendar.last_error, calendar.last_error_at = "active", None, None
        calendar.pushed_at = None
        s.flush()
        calendar_id = calendar.id
        uow.commit()
    return calendar_id


def access_token(session_factory: sessionmaker[Session], box: TokenBox, grant_id: int, refresh: Refresh,
                 now: datetime) -> str:
    """A usable access token for the grant, refreshed first if it expires within EARLY.

    Raises GrantRefused (after marking the grant and telling the business) if the provider refuses it, or if
    what is stored no longer decrypts; any other error (the provider is down) leaves the grant as it is."""
    with session_factory() as s:
        grant = s.get(CalendarGrant, grant_id)
        if grant is None:
            raise GrantRefused("disconnected")
        if grant.status != "active":
            raise GrantRefused(grant.problem or "needs_reconnect")
        sealed_access, sealed_refresh, expires_at = grant.access_token, grant.refresh_token, grant.expires_at
    try:
        if expires_at is not None and expires_at - EARLY > now:
            return box.open(sealed_access)
        if sealed_refresh is None:
            raise GrantRefused("no_refresh_token")
        tokens = refresh(box.open(sealed_refresh))
    except Undecryptable:
        needs_reconnect(session_factory, grant_id, "undecryptable", now)
        raise GrantRefused("undecryptable") from None
    except GrantRefused as refused:
        needs_reconnect(session_factory, grant_id, refused.code, now)
        raise
    with session_factory() as s:  # compare-and-set: a refresh stored meanwhile by another process stands
        values = {"access_token": box.seal(tokens.access_token), "expires_at": tokens.expires_at, "updated_at": now}
        if tokens.refresh_token:
            values["refresh_token"] = box.seal(tokens.refresh_token)
        s.execute(update(CalendarGrant).where(CalendarGrant.id == grant_id,
                                              CalendarGrant.access_token == sealed_access).values(**values))
        s.commit()
    log.info("calendar grant %s refreshed", grant_id)
    return tokens.access_token


def needs_reconnect(session_factory: sessionmaker[Session], grant_id: int, reason: str, now: datetime) -> bool:
    """Mark the grant and its calendars as needing a new connection, and tell the business, once: a grant
    already marked (by this process or another, under the row lock) is left as it is. Returns whether this call
    marked it. The calendars keep their busy time: stale never unblocks."""
    with session_factory() as s:
        grant = s.get(CalendarGrant, grant_id, with_for_update=True)
        if grant is None or grant.status == "needs_reconnect":
            return False
        grant.status, grant.problem, grant.problem_at = "needs_reconnect", reason[:200], now
        s.execute(update(ExternalCalendar).where(ExternalCalendar.grant_id == grant_id)
                  .values(status="needs_reconnect", last_error=f"the {PROVIDER_NAMES.get(grant.provider)} "
                          f"connection was refused ({reason[:200]}): connect the calendar again",
                          last_error_at=now))
        staff = s.get(Resource, grant.resource_id)
        tell_business(lent(s), grant.business_id, "calendar_reconnect", now, provider=PROVIDER_NAMES.get(grant.provider),
                      staff=staff.name, account=grant.account or "", reason=reason[:200],
                      reconnect=f"the console's Calendars page, {staff.name}: Connect again")
        s.commit()
    log.warning("calendar grant %s (business %s) needs reconnecting: %s", grant_id, grant.business_id, reason[:200])
    return True

