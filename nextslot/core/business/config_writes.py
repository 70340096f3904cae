"""The writes of `apply_config`: a few statements a table whatever the size of the business.

Each table is read once for what is stored, and only the owners (resources, services, the business itself for its
closures) whose rows differ are rewritten, with one DELETE and one INSERT a table: an edit changes few of many, and
every row rewritten costs the database's triggers.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from nextslot.core.business.config_export import exception_configs
from nextslot.core.instants import first_instant, wall_to_utc
from nextslot.core.results import Rejected
from nextslot.schemas.config import BusinessConfig, ExceptionConfig
from nextslot.schemas.config_fields import WEEKDAYS, WeeklySpans, parse_span
from nextslot.storage.refusals import flushed_within_exclusions
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


class HoursRow(NamedTuple):
    weekday: int
    start_minute: int
    end_minute: int


class ExceptionRow(NamedTuple):
    kind: str
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    local: bool
    zone: str | None  # the branch zone of a closure's copy


Keyed = TypeVar("Keyed", Location, Resource, Service)
Row = TypeVar("Row", HoursRow, ExceptionRow)
Owner = TypeVar("Owner")
UNSYNCED = {"synchronize_session": False}  # rows deleted in bulk: the document after the change reads all again


def by_key(uow: SqlAlchemyUnitOfWork, table: type[Keyed], business_id: int, keys: list[str]) -> dict[str, Keyed]:
    """The business's rows of `table` with these keys, in one query."""
    rows = uow.session.scalars(select(table).where(table.business_id == business_id, table.key.in_(keys)))
    return {row.key: row for row in rows}


def store_locations(uow: SqlAlchemyUnitOfWork, business_id: int, config: BusinessConfig) -> dict[str, Location]:
    places = by_key(uow, Location, business_id, [lc.key for lc in config.locations])
    for lc in config.locations:
        if (place := places.get(lc.key)) is None:
            place = places[lc.key] = Location(business_id=business_id, key=lc.key)
            uow.session.add(place)
        place.name, place.address, place.timezone, place.phone = lc.name, lc.address, lc.timezone, lc.phone
        place.active = True
    uow.session.flush()
    return places


def capacity_cut_refused(uow: SqlAlchemyUnitOfWork, config: BusinessConfig,
                         resources: dict[str, Resource]) -> Rejected | None:
    """Each capacity cut flushed on its own, so a refusal names its resource; only a cut can be refused (the
    database checks the bookings then), so the rest of the resources are written together afterwards."""
    for rc in config.resources:
        resource = resources.get(rc.key)
        if resource is None or rc.capacity >= resource.capacity:
            continue
        uow.claims.release_lapsed(resource.id, datetime.now(UTC))  # before the cut is flushed and checked
        resource.capacity = rc.capacity
        if not flushed_within_exclusions(uow.session):
            return Rejected("capacity_below_bookings",
                            f"{rc.key} already has overlapping bookings beyond capacity {rc.capacity}; "
                            "move or cancel them first.", "resources.capacity")
    return None


def store_resources(uow: SqlAlchemyUnitOfWork, business_id: int, config: BusinessConfig, places: dict[str, Location],
                    resources: dict[str, Resource]) -> None:
    """Create the new resources and update the others; `resources` gains the new ones, with their ids."""
    for rc in config.resources:
        if (resource := resources.get(rc.key)) is None:
            resource = resources[rc.key] = Resource(business_id=business_id, key=rc.key)
            uow.session.add(resource)
        resource.name, resource.kind, resource.timezone, resource.active = rc.name, rc.kind, rc.timezone, True
        resource.capacity, resource.email, resource.phone = rc.capacity, rc.email, rc.phone
        resource.location_id = places[rc.location].id if rc.location else None
    uow.session.flush()


def store_times(uow: SqlAlchemyUnitOfWork, business: Business, config: BusinessConfig, places: dict[str, Location],
                resources: dict[str, Resource], now: dict[int, str], was: dict[int, str]) -> None:
    """The listed resources' hours and exceptions, and the business-wide closures (a copy of those given as wall
    times for each other zone the business's resources keep, listed in this config or not). A resource left out
    whose zone moved (its branch's, or the business's) keeps its exceptions' wall times, as its hours do: `was` and
    `now` are each resource's zone before and after the change (`resource_zones`)."""
    zone = ZoneInfo(business.timezone)
    place_hours = {lc.key: lc.hours for lc in config.locations if lc.hours is not None}
    hours: dict[int | None, list[HoursRow]] = {}
    exceptions: dict[int | None, list[ExceptionRow]] = {}
    for rc in config.resources:
        rid = resources[rc.key].id
        week = rc.hours if rc.hours is not None else place_hours.get(rc.location or "", config.hours)
        hours[rid] = [HoursRow(*span) for span in weekly(week)]
        own = rc.timezone or (places[rc.location].timezone if rc.location else None)
        exceptions[rid] = exception_rows(rc.exceptions, ZoneInfo(own) if own else zone)
    exceptions.update(moved_exceptions(uow, business.id, was, now, set(exceptions)))
    exceptions[None] = exception_rows(config.closures, zone)
    local = [c for c in config.closures if given_local(c)]
    for other in set(now.values()) - {business.timezone}:
        exceptions[None] += exception_rows(local, ZoneInfo(other), other)
    replace_changed(uow, business.id, WorkingHours, hours, HoursRow._fields)
    replace_changed(uow, business.id, AvailabilityException, exceptions, ExceptionRow._fields)


def moved_exceptions(uow: SqlAlchemyUnitOfWork, business_id: int, was: dict[int, str], now: dict[int, str],
                     listed: set[int | None]) -> dict[int | None, list[ExceptionRow]]:
    """The exceptions of the resources not in `listed` whose zone is no longer the one in `was`, read back as an
    export would in the old zone and stored again in the new one (only those given as wall times move)."""
    moved = [rid for rid, old in was.items() if rid not in listed and now.get(rid, old) != old]
    if not moved:
        return {}
    rows: defaultdict[int, list[AvailabilityException]] = defaultdict(list)
    for e in uow.session.scalars(select(AvailabilityException).where(
            AvailabilityException.business_id == business_id, AvailabilityException.resource_id.in_(moved))):
        rows[e.resource_id].append(e)  # type: ignore[index]
    return {rid: [row for row in exception_rows(exception_configs(rows[rid], ZoneInfo(was[rid])), ZoneInfo(now[rid]))
                  if row.starts_at < row.ends_at]  # wall times the new zone's clocks skip cover no time there
            for rid in moved}


def resource_zones(uow: SqlAlchemyUnitOfWork, business: Business) -> dict[int, str]:
    """Each resource's zone as stored now: its own, its branch's, else the business's."""
    return dict(uow.session.execute(
        select(Resource.id, func.coalesce(Resource.timezone, Location.timezone, business.timezone))
        .outerjoin(Location, Location.id == Resource.location_id).where(Resource.business_id == business.id)
    ).all())


def store_services(uow: SqlAlchemyUnitOfWork, business_id: int, config: BusinessConfig,
                   resources: dict[str, Resource]) -> None:
    """Create or update each listed service, then its requirements."""
    services = by_key(uow, Service, business_id, [sc.key for sc in config.services])
    for sc in config.services:
        if (service := services.get(sc.key)) is None:
            service = services[sc.key] = Service(business_id=business_id, key=sc.key)
            uow.session.add(service)
        service.name, service.description, service.active = sc.name, sc.description, True
        service.duration_minutes, service.slot_step_minutes = sc.duration, sc.step
        service.buffer_before_minutes, service.buffer_after_minutes = sc.buffer_before, sc.buffer_after
        service.min_notice_minutes, service.horizon_days = sc.min_notice, sc.horizon_days
        service.reminder_offsets_minutes = sc.reminder_offsets_minutes
        service.intake_questions = [q.model_dump(mode="json") for q in sc.intake]
        service.deposit_minor = sc.deposit.amount_minor if sc.deposit else None
        service.deposit_currency = sc.deposit.currency if sc.deposit else None
        service.cancellation = sc.cancellation.model_dump(mode="json") if sc.cancellation else None
        service.assignment = sc.assignment.model_dump(mode="json") if sc.assignment else None
        service.party = sc.party.model_dump(mode="json") if sc.party else None
        service.series = sc.series.model_dump(mode="json") if sc.series else None
    uow.session.flush()
    store_requirements(uow, business_id, config, services, resources)


def replace_changed(uow: SqlAlchemyUnitOfWork, business_id: int, table: type[WorkingHours | AvailabilityException],
                    wanted: dict[int | None, list[Row]], fields: tuple[str, ...]) -> None:
    """Give each resource in `wanted` (None: the business itself) the wanted rows of `table`: one DELETE and one
    INSERT for those whose stored rows differ, nothing for the others (an edit changes few of many)."""
    s = uow.session
    stored = s.execute(select(table.resource_id, *(getattr(table, f) for f in fields))
                       .where(table.business_id == business_id, owned_by(table.resource_id, list(wanted))))
    changed = changed_owners(stored, wanted)
    if not changed:
        return
    s.execute(delete(table).where(table.business_id == business_id, owned_by(table.resource_id, changed)),
              execution_options=UNSYNCED)
    rows = [{"business_id": business_id, "resource_id": owner, **row._asdict()} for owner in changed
            for row in wanted[owner]]
    if rows:
        s.execute(insert(table), rows)


def store_requirements(uow: SqlAlchemyUnitOfWork, business_id: int, config: BusinessConfig,
                       services: dict[str, Service], resources: dict[str, Resource]) -> None:
    """Each listed service's requirements and their members, rewritten only for the services where they differ."""
    s = uow.session
    wanted = {services[sc.key].id: [(i, req.label, resources[key].id, j) for i, req in enumerate(sc.requires)
                                    for j, key in enumerate(req.one_of)] for sc in config.services}
    stored = s.execute(
        select(ServiceRequirement.service_id, ServiceRequirement.position, ServiceRequirement.label,
               RequirementMember.resource_id, RequirementMember.position)
        .outerjoin(RequirementMember, and_(RequirementMember.requirement_id == ServiceRequirement.id,
                                           RequirementMember.business_id == ServiceRequirement.business_id))
        .where(ServiceRequirement.business_id == business_id, ServiceRequirement.service_id.in_(wanted)))
    changed = changed_owners(stored, wanted)
    if not changed:
        return
    old = select(ServiceRequirement.id).where(ServiceRequirement.business_id == business_id,
                                              ServiceRequirement.service_id.in_(changed))
    s.execute(delete(RequirementMember).where(RequirementMember.business_id == business_id,
                                              RequirementMember.requirement_id.in_(old)), execution_options=UNSYNCED)
    s.execute(delete(ServiceRequirement).where(ServiceRequirement.business_id == business_id,
                                               ServiceRequirement.service_id.in_(changed)), execution_options=UNSYNCED)
    redo = set(changed)
    given = [(services[sc.key].id, i, req) for sc in config.services if services[sc.key].id in redo
             for i, req in enumerate(sc.requires)]
    if not given:
        return
    ids = s.scalars(insert(ServiceRequirement).returning(ServiceRequirement.id, sort_by_parameter_order=True),
                    [{"business_id": business_id, "service_id": sid, "position": i, "label": req.label}
                     for sid, i, req in given]).all()
    s.execute(insert(RequirementMember), [
        {"business_id": business_id, "requirement_id": rid, "resource_id": resources[key].id, "position": j}
        for rid, (_, _, req) in zip(ids, given, strict=True) for j, key in enumerate(req.one_of)])


def changed_owners(stored: Iterable[Sequence[Any]], wanted: Mapping[Owner, Sequence[tuple[Any, ...]]]) -> list[Owner]:
    """The owners in `wanted` whose stored rows (each the owner's id, then its values) are not the wanted ones."""
    have: defaultdict[Any, Counter[tuple[Any, ...]]] = defaultdict(Counter)
    for owner, *values in stored:
        have[owner][tuple(values)] += 1
    return [owner for owner, rows in wanted.items() if have[owner] != Counter(rows)]


def owned_by(column: InstrumentedAttribute[Any], owners: list[int | None]) -> ColumnElement[bool]:
    """`column` is one of `owners`, where None matches NULL (the business-wide rows)."""
    listed = column.in_([o for o in owners if o is not None])
    return or_(listed, column.is_(None)) if None in owners else listed


def weekly(week: WeeklySpans) -> list[tuple[int, int, int]]:
    return [(WEEKDAYS.index(day), *parse_span(span)) for day, spans in week.items() for span in spans]


def exception_intervals(ec: ExceptionConfig, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """Instants covered by one exception, read in the resource's (or business's) zone."""
    if ec.starts_at is not None and ec.ends_at is not None:
        return [(local_instant(ec.starts_at, zone), local_instant(ec.ends_at, zone))]
    assert ec.date is not None
    spans = [parse_span(h) for h in ec.hours] or [(0, 1440)]
    out: list[tuple[datetime, datetime]] = []
    day = ec.date
    while day <= (ec.until or ec.date):
        out.extend((wall_to_utc(day, start, zone), wall_to_utc(day, end, zone)) for start, end in spans)
        day += timedelta(days=1)
    return out


def local_instant(value: datetime, zone: ZoneInfo) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else first_instant(value, zone)


def exception_rows(items: list[ExceptionConfig], zone: ZoneInfo, copy_for: str | None = None) -> list[ExceptionRow]:
    """Each exception's spans read in `zone`; `copy_for` names the branch zone of a closure's copy, where a span the
    clocks skip there (00:00-00:30 on a day Santiago starts at 01:00) covers no time and is left out."""
    return [ExceptionRow(ec.kind, start, end, ec.reason, given_local(ec), copy_for)
            for ec in items for start, end in exception_intervals(ec, zone) if copy_for is None or start < end]


def given_local(ec: ExceptionConfig) -> bool:
    """A date, or times without an offset: wall times, which fall at other instants in another zone."""
    return ec.starts_at is None or ec.starts_at.tzinfo is None
