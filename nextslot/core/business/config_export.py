"""The stored business read back as its configuration, so an edit can go through `apply_config` like a file.

Two things the file had are not stored and cannot come back: the business-wide default hours (each
resource keeps its own copy, so every resource lists its hours and `hours` stays empty), and the form
an exception was written in (it comes back as exact ranges in the resource's zone, adjacent days of
one exception as one range). Applying the export again changes nothing anyone can book.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select

from nextslot.schemas.api import ExceptionView, ResourceEntry, ServiceEntry
from nextslot.schemas.config import (
    OWN_DETAILS,
    BusinessConfig,
    BusinessSection,
    ExceptionConfig,
    LocationConfig,
    RequirementConfig,
    ResourceConfig,
    ServiceConfig,
)
from nextslot.schemas.config_fields import WEEKDAYS, Weekday, WeeklySpans
from nextslot.schemas.service_rules import (
    AssignmentConfig,
    CancellationPolicy,
    DepositConfig,
    IntakeQuestion,
    PartyConfig,
    SeriesConfig,
)
from nextslot.storage import queries
from nextslot.storage.tables import (
    AvailabilityException,
    Business,
    Location,
    RequirementMember,
    Resource,
    Service,
    ServiceRequirement,
    WorkingHours,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def export_config(uow: SqlAlchemyUnitOfWork, business_id: int) -> BusinessConfig | None:
    """The business with its active resources and services, as a config `apply_config` accepts."""
    business = uow.session.get(Business, business_id)
    if business is None:
        return None
    zone = ZoneInfo(business.timezone)
    closures, per_resource = stored_exceptions(uow, business_id)
    resources = stored_resources(uow, business_id)
    hours = stored_hours(uow, business_id)
    requirements = stored_requirements(uow, business_id, {r.id: r.key for r in resources})
    # not validated as a whole here: an edit validates the changed config, and a stored business that no
    # longer passes (no active service, say) must still read back
    return BusinessConfig.model_construct(
        business=business_section(business),
        hours={},
        closures=exception_configs(closures, zone),
        locations=[location_config(p) for p in stored_locations(uow, business_id)],
        resources=[resource_config(r, hours[r.id], per_resource[r.id], zone) for r in resources if r.active],
        services=[service_config(s, requirements[s.id]) for s in stored_services(uow, business_id) if s.active],
    )


def resource_entries(uow: SqlAlchemyUnitOfWork, business_id: int, key: str | None = None) -> list[ResourceEntry]:
    """Every resource (or the one with `key`), active or not."""
    business = queries.known_business(uow.session, business_id)
    zone = ZoneInfo(business.timezone)
    resources = stored_resources(uow, business_id, key)
    ids = None if key is None else [r.id for r in resources]
    _, per_resource = stored_exceptions(uow, business_id, ids)
    hours = stored_hours(uow, business_id, ids)
    return [ResourceEntry(**dict(resource_config(r, hours[r.id], per_resource[r.id], zone)), active=r.active)
            for r in resources]


def service_entries(uow: SqlAlchemyUnitOfWork, business_id: int, key: str | None = None) -> list[ServiceEntry]:
    """Every service (or the one with `key`), active or not."""
    services = stored_services(uow, business_id, key)
    keys = dict(uow.session.execute(select(Resource.id, Resource.key).where(Resource.business_id == business_id)).all())
    requirements = stored_requirements(uow, business_id, keys, None if key is None else [s.id for s in services])
    return [ServiceEntry(**dict(service_config(s, requirements[s.id])), active=s.active) for s in services]


def exception_views(items: list[ExceptionConfig]) -> list[ExceptionView]:
    """Exported exceptions (exact ranges) with ids that stay the same while the exception does."""
    return [ExceptionView(id=exception_id(e), kind=e.kind, starts_at=e.starts_at, ends_at=e.ends_at, reason=e.reason)
            for e in items if e.starts_at is not None and e.ends_at is not None]


def exception_id(e: ExceptionConfig) -> str:
    """Derived from the content: database ids change each time `apply_config` rewrites the exceptions."""
    assert e.starts_at is not None and e.ends_at is not None
    text = f"{e.kind}|{stamp(e.starts_at)}|{stamp(e.ends_at)}|{e.reason}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def stamp(at: datetime) -> str:
    """An instant as its timestamp; wall times (a date's) as written, read in no machine's zone."""
    return str(at.timestamp()) if at.tzinfo else at.isoformat()


# --- rows -> config ----------------------------------------------------------------------------------


def business_section(b: Business) -> BusinessSection:
    details = b.details or {}
    own = {k: v for k, v in details.items() if k in OWN_DETAILS and v is not None}
    return BusinessSection(slug=b.slug, name=b.name, timezone=b.timezone, country=b.country,
                           details={k: v for k, v in details.items() if k not in OWN_DETAILS}, **own)


def resource_config(r: Resource, hours: WeeklySpans, exceptions: list[AvailabilityException],
                    business_zone: ZoneInfo) -> ResourceConfig:
    zone = ZoneInfo(r.own_timezone) if r.own_timezone else business_zone
    return ResourceConfig(key=r.key, name=r.name, kind=r.kind, capacity=r.capacity, timezone=r.timezone,
                          hours=hours, exceptions=exception_configs(exceptions, zone),
                          email=r.email, phone=r.phone, location=r.location.key if r.location else None)


def location_config(p: Location) -> LocationConfig:
    """A branch as given; its default hours are each resource's own copy by now (see the module's note)."""
    return LocationConfig(key=p.key, name=p.name, address=p.address, timezone=p.timezone, phone=p.phone)


def stored_locations(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[Location]:
    return list(uow.session.scalars(select(Location).where(Location.business_id == business_id, Location.active)
                                    .order_by(Location.id)))


def service_config(s: Service, requires: list[RequirementConfig]) -> ServiceConfig:
    return ServiceConfig(
        key=s.key, name=s.name, description=s.description, duration=s.duration_minutes,
        buffer_before=s.buffer_before_minutes, buffer_after=s.buffer_after_minutes, step=s.slot_step_minutes,
        min_notice=s.min_notice_minutes, horizon_days=s.horizon_days,
        requires=requires,
        reminder_offsets_minutes=s.reminder_offsets_minutes,
        intake=[IntakeQuestion.model_validate(q) for q in s.intake_questions or []],
        deposit=DepositConfig(amount=Decimal(s.deposit_minor).scaleb(-2), currency=s.deposit_currency or "")
        if s.deposit_minor else None,
        cancellation=CancellationPolicy.model_validate(s.cancellation) if s.cancellation else None,
        assignment=AssignmentConfig.model_validate(s.assignment) if s.assignment else None,
        party=PartyConfig.model_validate(s.party) if s.party else None,
        series=SeriesConfig.model_validate(s.series) if s.series else None,
    )


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def exception_configs(rows: list[AvailabilityException], zone: ZoneInfo) -> list[ExceptionConfig]:
    """Exact ranges, by start; touching ranges of the same kind and reason (one per day of a multi-day exception)
    become one. One given as wall times (a date) stays wall times in `zone`, without an offset, so a branch in
    another zone still reads it on its own calendar."""
    merged: list[tuple[str, str, bool, datetime, datetime]] = []  # kind, reason, local, start, end
    for row in sorted(rows, key=lambda e: (e.kind, e.reason or "", e.local, e.starts_at)):
        kind, reason = row.kind, row.reason or ""
        if merged and merged[-1][:3] == (kind, reason, row.local) and row.starts_at <= merged[-1][4]:
            merged[-1] = (kind, reason, row.local, merged[-1][3], max(merged[-1][4], row.ends_at))
        else:
            merged.append((kind, reason, row.local, row.starts_at, row.ends_at))
    return [ExceptionConfig(kind=kind, starts_at=wall(start, zone, local), ends_at=wall(end, zone, local),
                            reason=reason)
            for kind, reason, local, start, end in sorted(merged, key=lambda m: (m[3], m[4]))]


def wall(at: datetime, zone: ZoneInfo, local: bool) -> datetime:
    shown = at.astimezone(zone)
    return shown.replace(tzinfo=None) if local else shown


# --- queries -----------------------------------------------------------------------------------------


def stored_resources(uow: SqlAlchemyUnitOfWork, business_id: int, key: str | None = None) -> list[Resource]:
    query = select(Resource).where(Resource.business_id == business_id)
    if key is not None:
        query = query.where(Resource.key == key)
    return list(uow.session.scalars(query.order_by(Resource.id)))


def stored_services(uow: SqlAlchemyUnitOfWork, business_id: int, key: str | None = None) -> list[Service]:
    query = select(Service).where(Service.business_id == business_id)
    if key is not None:
        query = query.where(Service.key == key)
    return list(uow.session.scalars(query.order_by(Service.id)))


# Hours and requirements are read as plain rows, one query each: a business at the limits has thousands of them,
# and an ORM object made of each took about half the export's time.


def stored_hours(uow: SqlAlchemyUnitOfWork, business_id: int,
                 resource_ids: list[int] | None = None) -> defaultdict[int, WeeklySpans]:
    """Each resource's weekly hours (only those resources' with `resource_ids`)."""
    query = select(WorkingHours.resource_id, WorkingHours.weekday, WorkingHours.start_minute, WorkingHours.end_minute
                   ).where(WorkingHours.business_id == business_id)
    if resource_ids is not None:
        query = query.where(WorkingHours.resource_id.in_(resource_ids))
    hours: defaultdict[int, WeeklySpans] = defaultdict(dict)
    for rid, day, start, end in uow.session.execute(query.order_by(WorkingHours.weekday, WorkingHours.start_minute)):
        hours[rid].setdefault(cast(Weekday, WEEKDAYS[day]), []).append(f"{clock(start)}-{clock(end)}")
    return hours


def stored_requirements(uow: SqlAlchemyUnitOfWork, business_id: int, keys: Mapping[int, str],
                        service_ids: list[int] | None = None) -> defaultdict[int, list[RequirementConfig]]:
    """Each service's requirements, their members named by `keys` (the business's resource keys by id, inactive
    ones too) in the order they are picked; only those services' with `service_ids`."""
    query = (select(ServiceRequirement.service_id, ServiceRequirement.id, ServiceRequirement.label,
                    RequirementMember.resource_id)
             .outerjoin(RequirementMember, and_(RequirementMember.requirement_id == ServiceRequirement.id,
                                                RequirementMember.business_id == ServiceRequirement.business_id))
             .where(ServiceRequirement.business_id == business_id))
    if service_ids is not None:
        query = query.where(ServiceRequirement.service_id.in_(service_ids))
    members: dict[tuple[int, int, str], list[str]] = {}  # (service, requirement, label): keys, in order
    for sid, rid, label, resource_id in uow.session.execute(query.order_by(
            ServiceRequirement.position, ServiceRequirement.id, RequirementMember.position)):
        picks = members.setdefault((sid, rid, label), [])
        if resource_id is not None:  # None: a requirement without members
            picks.append(keys[resource_id])
    requirements: defaultdict[int, list[RequirementConfig]] = defaultdict(list)
    for (sid, _, label), picks in members.items():
        requirements[sid].append(RequirementConfig(label=label, one_of=picks))
    return requirements


def stored_exceptions(
    uow: SqlAlchemyUnitOfWork, business_id: int, resource_ids: list[int] | None = None
) -> tuple[list[AvailabilityException], dict[int, list[AvailabilityException]]]:
    """The business-wide closures, and each resource's own exceptions; with `resource_ids`, only those resources'
    (and no closures)."""
    closures: list[AvailabilityException] = []
    per_resource: dict[int, list[AvailabilityException]] = defaultdict(list)
    query = select(AvailabilityException).where(AvailabilityException.business_id == business_id,
                                                AvailabilityException.zone.is_(None))
    if resource_ids is not None:
        query = query.where(AvailabilityException.resource_id.in_(resource_ids))
    for e in uow.session.scalars(query):
        (closures if e.resource_id is None else per_resource[e.resource_id]).append(e)
    return closures, per_resource
