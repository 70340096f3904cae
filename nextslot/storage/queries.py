"""Read queries the core needs, always scoped to one business."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import Row, func, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, joinedload

from nextslot.storage.key_locks import key_lock
from nextslot.storage.tables import (
    Booking,
    BookingHistory,
    Business,
    Claim,
    Resource,
    Service,
    ServiceRequirement,
    WorkingHours,
)


def business(session: Session, business_id: int) -> Business | None:
    return session.get(Business, business_id)


CONFIG_VERSION = "select config_version from businesses where id = %(business)s"


def driver_rows(session: Session, statement: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a hot read, run by psycopg on the session's connection (its transaction, or none after
    `reads_first`): SQLAlchemy's result set-up for plain SQL costs more CPU than psycopg's whole execution (a
    calendar read 180 µs against 110 here). Through SQLAlchemy while a tracer listens, so each read keeps its span.
    A failure is raised as SQLAlchemy's would be, a lost connection invalidated: callers answer it as an outage."""
    connection = session.connection()
    driver = connection.connection.driver_connection
    if driver is None or connection.engine.dispatch.before_cursor_execute:
        return [tuple(row) for row in connection.exec_driver_sql(statement, dict(params))]
    try:
        with driver.cursor() as cursor:
            rows: list[tuple[Any, ...]] = cursor.execute(statement, params).fetchall()
            return rows
    except psycopg.Error as error:
        lost = connection.dialect.is_disconnect(error, driver, None)  # type: ignore[arg-type]  # psycopg's own Error
        if lost:
            connection.invalidate(error)
        # hide_parameters as the engine says: a statement's values (a customer's phone, a webhook secret) stay out
        # of the error's text, which reaches tracebacks and incident logs
        raise DBAPIError.instance(statement, params, error, psycopg.Error, connection_invalidated=lost,
                                  hide_parameters=connection.engine.hide_parameters,
                                  dialect=connection.dialect) from error


def config_version(session: Session, business_id: int) -> int | None:
    """The business's configuration version (None: no such business): one primary-key read, on every booking and
    search."""
    found = driver_rows(session, CONFIG_VERSION, {"business": business_id})
    return found[0][0] if found else None


def database_of(session: Session) -> str:
    """Which database the session reads: cached plans from one never answer for another."""
    return str(session.get_bind().engine.url)


def known_business(session: Session, business_id: int) -> Business:
    """A business the caller already holds a row of (a booking's, a signed-in staff's): missing is a bug, not an answer."""
    found = session.get(Business, business_id)
    if found is None:
        raise LookupError(f"business {business_id} does not exist")
    return found


VOICE_SECRET = """
select b.id, v.secret from businesses b
  left join voice_integrations v on v.business_id = b.id and v.platform = %(platform)s
 where b.slug = %(slug)s
"""


def voice_secret(session: Session, slug: str, platform: str) -> tuple[int, str | None] | None:
    """The business behind a voice webhook's path and its secret for the platform (None: not set up), in one
    statement: every webhook call reads it before anything else."""
    found = driver_rows(session, VOICE_SECRET, {"slug": slug, "platform": platform})
    return (found[0][0], found[0][1]) if found else None


def business_by_slug(session: Session, slug: str) -> Business | None:
    return session.scalars(select(Business).where(Business.slug == slug)).one_or_none()


BUSINESS_BY_SLUG = """
select id, slug, name, timezone, details, config_version from businesses where slug = %(slug)s
"""


class BusinessRow(NamedTuple):
    id: int
    slug: str
    name: str
    timezone: str
    details: dict[str, Any] | None
    config_version: int  # what the process's kept services and plans of the business are checked against


def business_row_by_slug(session: Session, slug: str) -> BusinessRow | None:
    """A public page's business, in one plain statement: every page view, chat turn and public MCP call reads it
    first."""
    found = driver_rows(session, BUSINESS_BY_SLUG, {"slug": slug})
    return BusinessRow(*found[0]) if found else None


def service_by_key(session: Session, business_id: int, key: str) -> Service | None:
    return session.scalars(
        select(Service)
        .where(Service.business_id == business_id, Service.key == key, Service.active)
        .options(joinedload(Service.requirements).joinedload(ServiceRequirement.members))  # one round trip
    ).unique().one_or_none()


def service_keys(session: Session, business_id: int) -> list[tuple[str, str]]:
    rows = session.execute(
        select(Service.key, Service.name).where(Service.business_id == business_id, Service.active)
    )
    return [(k, n) for k, n in rows]


def resources_by_keys(session: Session, business_id: int, keys: Sequence[str]) -> dict[str, Resource]:
    rows = session.scalars(select(Resource).where(Resource.business_id == business_id, Resource.key.in_(keys)))
    return {r.key: r for r in rows}



def hours_for(session: Session, resource_ids: Sequence[int]) -> dict[int, list[Row[int, int, int, int]]]:
    """Weekly hours per resource: rows of (resource_id, weekday, start_minute, end_minute)."""
    out: dict[int, list[Row[int, int, int, int]]] = defaultdict(list)
    for h in session.execute(
        select(WorkingHours.resource_id, WorkingHours.weekday, WorkingHours.start_minute, WorkingHours.end_minute)
        .where(WorkingHours.resource_id.in_(resource_ids))
    ):
        out[h.resource_id].append(h)
    return out


def booking_starts(session: Session, resource_ids: Sequence[int],
                   window: tuple[datetime, datetime]) -> dict[int, list[datetime]]:
    """Starts of the live bookings each resource takes part in (active claims of bookings, not holds)."""
    out: dict[int, list[datetime]] = defaultdict(list)
    for rid, start in session.execute(
        select(Claim.resource_id, Booking.starts_at).join(Booking, Booking.id == Claim.booking_id)
        .where(Claim.resource_id.in_(resource_ids), Claim.active, Booking.starts_at >= window[0],
               Booking.starts_at < window[1])
    ):
        out[rid].append(start)
    return out


def last_given(session: Session, resource_ids: Sequence[int], service_id: int) -> dict[int, datetime]:
    """When each resource last took a booking of the service (its latest claim for one, live or not)."""
    return dict(session.execute(
        select(Claim.resource_id, func.max(Claim.created_at)).join(Booking, Booking.id == Claim.booking_id)
        .where(Claim.resource_id.in_(resource_ids), Booking.service_id == service_id)
        .group_by(Claim.resource_id)
    ).all())


class DatedException(NamedTuple):
    """Dated time off ('closed') or extra hours ('open'); resource_id None: the whole business."""

    resource_id: int | None
    kind: str
    starts_at: datetime
    ends_at: datetime
    local: bool = False  # given as wall times: a business-wide one is stored once per zone (`zone`)
    zone: str | None = None  # the branch zone of a business-wide local copy; None: the business's own
    reason: str = ""

    def applies_to(self, resource_id: int, zone: str | None) -> bool:
        """Whether it shapes that resource's hours; `zone` is the resource's own when not the business's."""
        if self.resource_id is not None:
            return self.resource_id == resource_id
        return self.zone == zone if self.local else True


# The hot path of every booking and slot search, plain SQL for psycopg (`driver_rows`); the bounds come back as two
# timestamps (psycopg parses range text in Python, timestamps in C). An exception given as wall times says so in its
# kind ('closed@' and the zone of its copy): two more columns would be parsed on every one of thousands of claims.
# The business's config version comes in the same snapshot: the hours a plan carries are the ones beside these
# exceptions only if it is the plan's. Given a booking's idempotency key, a last row says the key is free and unused
# (`idempotency_key_unused`, migration 0034: no transaction holds its lock, then no committed row keeps it, both seen
# after this read's snapshot was taken), so a booking that finds its time taken is answered with nothing written.
CALENDAR = """
select resource_id, 'busy', lower(during), upper(during), seats from claims
 where resource_id = any(cast(%(ids)s as bigint[])) and active and during && tstzrange(%(lo)s, %(hi)s)
   and (expires_at is null or expires_at > %(now)s)
   and (cast(%(exclude)s as bigint) is null or booking_id is null or booking_id <> cast(%(exclude)s as bigint))
union all
select resource_id, 'busy', lower(during), upper(during), 1 from external_busy
 where resource_id = any(cast(%(ids)s as bigint[])) and during && tstzrange(%(lo)s, %(hi)s)
union all
select resource_id, case when local then kind || '@' || coalesce(zone, '') else kind end, starts_at, ends_at, 1
  from availability_exceptions
 where business_id = %(business)s and (resource_id = any(cast(%(ids)s as bigint[])) or resource_id is null)
   and starts_at < %(hi)s and ends_at > %(lo)s
union all
select null, 'version', null, null, config_version from businesses where id = %(business)s
union all
select null, 'key unused', null, null, 1
 where case when cast(%(key)s as text) is null then false
            else idempotency_key_unused(%(business)s, cast(%(key)s as text), %(locks)s, %(lock)s) end
"""


NO_KEY = {"locks": None, "lock": None}


def calendar_for(
    session: Session,
    business_id: int,
    resource_ids: Sequence[int],
    window: tuple[datetime, datetime],
    now: datetime,
    exclude_booking_id: int | None = None,
    key: str | None = None,
) -> tuple[list[DatedException], dict[int, list[tuple[datetime, datetime]]], int | None, bool]:
    """In one round trip: the dated exceptions touching the window, each resource's busy time in it (active
    claims, expired holds' ignored, and time its own calendar says is taken, which occupies it like a claim), the
    business's config version as of that read, and whether the idempotency `key` (if any) is free and unused."""
    found: list[DatedException] = []
    busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    version, key_unused = None, False
    rows = driver_rows(session, CALENDAR, {"ids": list(resource_ids), "lo": window[0], "hi": window[1], "now": now,
                                           "exclude": exclude_booking_id, "business": business_id, "key": key,
                                           **(key_lock(business_id, key) if key else NO_KEY)})
    for rid, kind, lower, upper, seats in rows:
        if kind == "version":
            version = seats
        elif kind == "key unused":
            key_unused = True
        elif kind == "busy":
            if seats == 1:
                busy[rid].append((lower, upper))
            else:
                busy[rid].extend([(lower, upper)] * seats)  # a party's claim takes its places: counted once each
        else:
            kind, local, zone = kind.partition("@")
            found.append(DatedException(rid, kind, lower, upper, bool(local), zone or None))
    return found, busy, version, key_unused


def deposits_asked(session: Session) -> bool:
    """Whether any business asks a deposit anywhere: an active service's price, or a no-show policy.
    Installation-wide, for the start-up check of the payment provider."""
    by_service = select(Service.id).where(Service.active, Service.deposit_minor.is_not(None)).exists()
    by_policy = select(Business.id).where(Business.details["no_show_policy"].astext.is_not(None)).exists()
    return bool(session.scalar(select(or_(by_service, by_policy))))


def booking_changes(session: Session, business_id: int, booking_id: int) -> int:
    """How many changes the booking's history holds, this transaction's own included (its .ics SEQUENCE is one
    less)."""
    count: int = session.scalar(select(func.count()).select_from(BookingHistory).where(
        BookingHistory.business_id == business_id, BookingHistory.booking_id == booking_id)) or 0
    return count
