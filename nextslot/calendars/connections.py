"""A business's staff calendars as people manage them: who has which calendar connected, in what state, who may
connect or disconnect one, and disconnecting (stop the push channel, revoke the grant where the provider can,
forget the tokens, the stored events and their busy time); and registering a CalDAV calendar by its URL."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from nextslot.calendars.grants import PROVIDER_NAMES
from nextslot.calendars.providers import Registry
from nextslot.calendars.sync import opened, source_of
from nextslot.calendars.tokens import TokenBox, seal_secret
from nextslot.core.calendar_writes import queue_future_bookings
from nextslot.core.clock import utcnow
from nextslot.core.outbound import url_problem
from nextslot.core.results import Rejected
from nextslot.storage.tables import CalendarGrant, CalendarWrite, ExternalCalendar, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectedCalendar:
    id: int
    provider: str  # google, microsoft, caldav
    provider_name: str
    account: str | None
    status: str  # active, needs_reconnect
    last_synced_at: datetime | None
    last_error: str | None
    writes_waiting: int
    writes_failed: int
    pushed: bool  # a push channel is live


@dataclass(frozen=True)
class StaffCalendars:
    resource_id: int
    key: str
    name: str
    email: str | None
    calendars: list[ConnectedCalendar]
    may_manage: bool  # the one asking may connect and disconnect this person's calendars
    connects: bool = True  # an active staff member, who can connect Google or Microsoft 365 (a room only CalDAV)


def may_manage(resource: Resource, is_owner: bool, email: str) -> bool:
    """An owner manages everyone's calendars; a staff member their own (their resource has their email)."""
    return is_owner or bool(resource.email and resource.email.strip().lower() == email.strip().lower())


def staff_calendars(session_factory: sessionmaker[Session], business_id: int, is_owner: bool,
                    email: str) -> list[StaffCalendars]:
    with session_factory() as s:
        calendars = s.scalars(select(ExternalCalendar).where(ExternalCalendar.business_id == business_id)
                              .order_by(ExternalCalendar.id)).all()
        # every calendar is listed: a room's (CalDAV, from the API), an inactive staff member's (still read)
        people = s.scalars(select(Resource).where(Resource.business_id == business_id, or_(
            and_(Resource.kind == "staff", Resource.active), Resource.id.in_({c.resource_id for c in calendars})))
            .order_by(Resource.name)).all()
        accounts = dict(s.execute(select(CalendarGrant.id, CalendarGrant.account).where(
            CalendarGrant.business_id == business_id)).all())
        counts = {(c, st): n for c, st, n in s.execute(
            select(CalendarWrite.calendar_id, CalendarWrite.status, func.count())
            .where(CalendarWrite.business_id == business_id).group_by(CalendarWrite.calendar_id,
                                                                      CalendarWrite.status))}
        out = []
        for person in people:
            mine = [ConnectedCalendar(
                c.id, c.provider, PROVIDER_NAMES.get(c.provider, c.provider),
                accounts.get(c.grant_id) if c.grant_id else c.username, c.status, c.last_synced_at, c.last_error,
                counts.get((c.id, "pending"), 0) + counts.get((c.id, "sending"), 0), counts.get((c.id, "failed"), 0),
                c.channel_id is not None) for c in calendars if c.resource_id == person.id]
            out.append(StaffCalendars(person.id, person.key, person.name, person.email, mine,
                                      may_manage(person, is_owner, email), person.kind == "staff" and person.active))
        return out


def resource_to_connect(session_factory: sessionmaker[Session], business_id: int, key: str, is_owner: bool,
                        email: str) -> int | Rejected:
    """The staff member (by key) whose calendar the asker may connect."""
    with session_factory() as s:
        person = s.scalar(select(Resource).where(Resource.business_id == business_id, Resource.key == key,
                                                 Resource.kind == "staff"))
        if person is None:
            return Rejected("unknown_resource", "There is no such staff member here.", "resource")
        if not may_manage(person, is_owner, email):
            return Rejected("not_allowed", "Only an owner, or the staff member themselves, can connect this "
                                           "calendar.", "resource")
        return person.id


def disconnect(session_factory: sessionmaker[Session], registry: Registry, business_id: int, calendar_id: int,
               is_owner: bool, email: str, now: datetime) -> str | Rejected:
    """Disconnect one of the business's calendars; return its staff member's name.

    The provider is told first, best effort (its push channel stopped, Google's grant revoked); whatever it
    answers, our copy of the tokens, events and busy time goes. Events already written into the calendar stay
    there: they are the staff member's now."""
    with session_factory() as s:
        calendar = s.get(ExternalCalendar, calendar_id)
        if calendar is None or calendar.business_id != business_id:
            return Rejected("unknown_calendar", "There is no such calendar here.", "calendar_id")
        person = s.get(Resource, calendar.resource_id)
        if not may_manage(person, is_owner, email):
            return Rejected("not_allowed", "Only an owner, or the staff member themselves, can disconnect this "
                                           "calendar.", "calendar")
        source = source_of(s, calendar, ZoneInfo("UTC"))  # the zone matters for reading; this reads nothing
        channel = (calendar.channel_id, calendar.channel_resource)
        grant_id, name = calendar.grant_id, person.name
    provider = registry.providers.get(source.provider)
    if provider is not None and source.grant_id is not None and calendar.status == "active":
        try:
            fresh = opened(session_factory, registry, source, now)
            with registry.connect(fresh) as connection:
                if channel[0] and getattr(provider, "pushes", False):
                    provider.unwatch(connection, fresh, channel[0], channel[1])
            if provider.oauth is not None and fresh.access_token:
                provider.oauth.revoke(fresh.access_token)
        except Exception as error:  # noqa: BLE001 - disconnecting goes ahead: the tokens are forgotten below
            log.info("calendar %s: the provider was not told of the disconnect (%s)", calendar_id,
                     type(error).__name__)
    with session_factory() as s:
        if grant_id is not None:  # the calendar, its events, busy time and write queue go with the grant
            grant = s.get(CalendarGrant, grant_id)
            if grant is not None:
                s.delete(grant)
        else:
            row = s.get(ExternalCalendar, calendar_id)
            if row is not None:
                s.delete(row)
        s.commit()
    log.info("calendar %s (business %s) disconnected", calendar_id, business_id)
    return name


def add_calendar(uow: SqlAlchemyUnitOfWork, business_id: int, resource_key: str, url: str,
                 username: str | None = None, password: str | None = None,
                 allow_private: bool = False, write_back: bool = True, now: datetime | None = None,
                 box: TokenBox | None = None) -> int | Rejected:
    """Register a resource's CalDAV calendar; return its id (the scheduler syncs it from then on, and writes the
    resource's bookings into it unless `write_back` is off: a read-only feed or account). With a `box`, the
    password is stored encrypted."""
    if problem := url_problem(url, allow_private):
        return Rejected("invalid_url", problem, "url")
    with uow:
        resource_id = uow.session.scalar(select(Resource.id).where(Resource.business_id == business_id,
                                                                   Resource.key == resource_key))
        if resource_id is None:
            return Rejected("unknown_resource", f"No resource called {resource_key} here.", "resource")
        calendar = ExternalCalendar(business_id=business_id, resource_id=resource_id, provider="caldav", url=url,
                                    username=username, write_back=write_back,
                                    password=seal_secret(box, password) if box and password else password)
        uow.session.add(calendar)
        uow.session.flush()
        queue_future_bookings(uow, calendar, now or utcnow())  # bookings already made go into it too
        uow.commit()
        return calendar.id
