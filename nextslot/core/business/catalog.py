"""What a business offers and when it is open: services, opening hours, closures, contact details."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from nextslot.core.booking.availability import WeeklyHours, open_intervals
from nextslot.core.booking.intervals import merge
from nextslot.core.business.lookup import BusinessRecord, record_of_row
from nextslot.core.config_versions import VersionedCache, read_version
from nextslot.core.instants import day_instants, load_zone
from nextslot.core.money import money
from nextslot.core.planning import series_max
from nextslot.schemas.service_rules import IntakeQuestion
from nextslot.schemas.views import Branch, BusinessProfile, Closure, OpeningHours, ServiceView
from nextslot.storage import queries
from nextslot.storage.tables import (
    AvailabilityException,
    Business,
    Location,
    RequirementMember,
    Resource,
    Service,
    ServiceRequirement,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork


class Choice(NamedTuple):
    """One entry of a console picker: a resource or a branch."""

    key: str
    name: str


DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CLOSURES_AHEAD = timedelta(days=60)


SERVICES: VersionedCache[tuple[ServiceView, ...]] = VersionedCache(256)


def list_services(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[ServiceView]:
    """The active services, by name; kept per process while the business's configuration is unchanged (every
    booking page view and form needs them)."""
    version = read_version(uow, business_id)
    if version is None:
        return []
    return services_at(uow, business_id, version)


def business_offer(uow: SqlAlchemyUnitOfWork, slug: str) -> tuple[BusinessRecord, list[ServiceView]] | None:
    """The business a public URL names and its services, in one statement while they are kept: its row carries
    the version they are kept under. Every booking page view and form needs both."""
    with uow:
        uow.reads_first()  # reads only: no transaction around them
        found = queries.business_row_by_slug(uow.session, slug)
        if found is None:
            return None
        return record_of_row(found), services_at(uow, found.id, found.config_version)


def services_at(uow: SqlAlchemyUnitOfWork, business_id: int, version: int) -> list[ServiceView]:
    """The services as of `version`, read when this process does not keep them for it. Read after the version
    (its own statement or the same one), so what is kept is never older than the version it is kept under."""
    key = (queries.database_of(uow.session), business_id)
    if (kept := SERVICES.get(key, version)) is None:
        kept = tuple(service_views(uow, business_id))
        SERVICES.put(key, version, kept)
    return list(kept)  # the views are frozen: shared copies are safe to hand out


def service_views(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[ServiceView]:
    services = uow.session.scalars(
        select(Service).where(Service.business_id == business_id, Service.active).order_by(Service.name)
        .options(joinedload(Service.requirements).joinedload(ServiceRequirement.members)
                 .joinedload(RequirementMember.resource))
    ).unique()
    views = []
    for s in services:
        staff = [m.resource.name for r in s.requirements for m in r.members
                 if m.resource.kind == "staff" and m.resource.active]
        places = {m.resource.location.key: m.resource.location for r in s.requirements for m in r.members
                  if m.resource.active and m.resource.location is not None and m.resource.location.active}
        views.append(ServiceView(key=s.key, name=s.name, description=s.description,
                                 duration_minutes=s.duration_minutes, needs=[r.label for r in s.requirements],
                                 staff=list(dict.fromkeys(staff)),
                                 intake=[IntakeQuestion.model_validate(q) for q in s.intake_questions],
                                 deposit=money(s.deposit_minor, s.deposit_currency or "") if s.deposit_minor else None,
                                 locations=[branch(p) for p in places.values()],
                                 party_max=int((s.party or {}).get("max", 1)), series_max=series_max(s.series)))
    return views


def branch(p: Location) -> Branch:
    return Branch(key=p.key, name=p.name, address=p.address, timezone=p.timezone)


def opening_hours(uow: SqlAlchemyUnitOfWork, business: Business, now: datetime) -> list[OpeningHours]:
    """Per weekday, when at least one active resource works (their own zones read on real dates), cut at local
    midnights so each day shows its own hours: open across midnight is on both days, all day is 00:00-24:00."""
    zone = ZoneInfo(business.timezone)
    resources = uow.session.scalars(
        select(Resource).where(Resource.business_id == business.id, Resource.active)
        .options(joinedload(Resource.hours))
    ).unique().all()
    today = now.astimezone(zone).date()
    intervals = merge(
        interval
        for r in resources
        for interval in open_intervals(
            [WeeklyHours(h.weekday, h.start_minute, h.end_minute) for h in r.hours],
            load_zone(r.own_timezone) or zone, day_instants(today, zone, 7),  # a branch's hours are its own
        )
    )
    by_day: dict[int, list[str]] = {}
    for day in (today + timedelta(days=i) for i in range(7)):
        first, last = day_instants(day, zone)
        by_day[day.weekday()] = [
            f"{max(start, first).astimezone(zone):%H:%M}-" + ("24:00" if end >= last else f"{end.astimezone(zone):%H:%M}")
            for start, end in intervals if start < last and end > first
        ]
    return [OpeningHours(day=DAYS[d], hours=by_day[d]) for d in range(7)]


def business_profile(uow: SqlAlchemyUnitOfWork, business_id: int, now: datetime) -> BusinessProfile | None:
    business = uow.session.get(Business, business_id)
    if business is None:
        return None
    closures = uow.session.scalars(
        select(AvailabilityException).where(
            AvailabilityException.business_id == business_id, AvailabilityException.resource_id.is_(None),
            AvailabilityException.zone.is_(None),  # copies for branches in other zones repeat the same closure
            AvailabilityException.kind == "closed", AvailabilityException.ends_at > now,
            AvailabilityException.starts_at < now + CLOSURES_AHEAD,
        ).order_by(AvailabilityException.starts_at)
    )
    details = business.details or {}
    return BusinessProfile(
        name=business.name, timezone=business.timezone, country=business.country,
        address=details.get("address"), phone=details.get("phone"), policies=details.get("policies"),
        opening_hours=opening_hours(uow, business, now),
        closures=[Closure(starts_at=c.starts_at, ends_at=c.ends_at, reason=c.reason or "") for c in closures],
        services=list_services(uow, business_id),
        locations=[branch(p) for p in uow.session.scalars(
            select(Location).where(Location.business_id == business_id, Location.active).order_by(Location.id))],
    )


def match_resource(uow: SqlAlchemyUnitOfWork, business_id: int, text: str) -> str | None:
    """A resource key from what a caller said: its key, its name, or a word of its name ('Patel')."""
    wanted = " ".join(text.lower().replace("-", " ").replace(".", " ").split())
    rows = uow.session.execute(
        select(Resource.key, Resource.name).where(Resource.business_id == business_id, Resource.active)
    ).all()
    for key, name in rows:
        if wanted in (key, " ".join(key.split("-")), name.lower()):
            return key
    words = set(wanted.split()) - {"dr", "doctor", "mr", "mrs", "ms", "miss", "the"}
    hits = [key for key, name in rows if words and words <= set(name.lower().replace(".", " ").split())]
    return hits[0] if len(hits) == 1 else None


def resource_names(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[str]:
    return list(uow.session.scalars(
        select(Resource.name).where(Resource.business_id == business_id, Resource.active).order_by(Resource.name)
    ))


def resource_choices(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[Choice]:
    """The active resources in the order they were made: the console's resource picker."""
    return [Choice(key, name) for key, name in uow.session.execute(
        select(Resource.key, Resource.name).where(Resource.business_id == business_id, Resource.active)
        .order_by(Resource.id))]


def location_choices(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[Choice]:
    """The active branches in the order they were made: the console's branch picker (empty: no branches)."""
    return [Choice(key, name) for key, name in uow.session.execute(
        select(Location.key, Location.name).where(Location.business_id == business_id, Location.active)
        .order_by(Location.id))]


def business_details(uow: SqlAlchemyUnitOfWork, business_id: int) -> dict[str, Any]:
    """The business's free-form settings (branding, policies, templates); empty when none or no such business."""
    business = uow.session.get(Business, business_id)
    return dict(business.details or {}) if business is not None else {}
