"""Create or update a business from its configuration file, in one transaction.

Declarative for what the file lists: the hours and exceptions of every listed resource, the
business-wide closures and each listed service's requirements are replaced. Resources and
services the file does not mention are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import delete, func, select

from nextslot.core import audit
from nextslot.core.business.message_templates import template_problems, whatsapp_template_problems
from nextslot.core.instants import first_instant, wall_to_utc
from nextslot.core.results import Rejected
from nextslot.schemas.config import BusinessConfig, BusinessDetails, ExceptionConfig
from nextslot.schemas.config_fields import MAX_EXCEPTION_SPANS, WEEKDAYS, WeeklySpans, parse_span
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


@dataclass(frozen=True)
class ConfigApplied:
    business_id: int
    slug: str
    created: bool
    resources: int
    services: int


def apply_config(uow: SqlAlchemyUnitOfWork, config: BusinessConfig) -> ConfigApplied | Rejected:
    if problems := details_problems(config.business.details) + exception_problems(config):
        return refused_config(problems)  # every path that stores a config comes here: nothing is written
    with uow:
        s = uow.session
        b = config.business
        business = s.scalars(select(Business).where(Business.slug == b.slug).with_for_update()).one_or_none()
        created = business is None
        before = config_document(uow, business.id) if business is not None else {}
        if business is None:
            business = Business(slug=b.slug)
            s.add(business)
        business.name, business.timezone, business.country = b.name, b.timezone, b.country
        details = dict(b.details)
        if b.reminder_offsets_minutes is not None:
            details["reminder_offsets_minutes"] = b.reminder_offsets_minutes
        details["deposit_hold_minutes"] = b.deposit_hold_minutes
        details["no_show_policy"] = b.no_show_policy.model_dump(mode="json") if b.no_show_policy else None
        details["cancellation"] = b.cancellation.model_dump(mode="json") if b.cancellation else None
        details["email"] = b.email  # notices to the business itself go here
        business.details = details
        s.flush()
        if taken := numbers_taken(uow, business.id, details):
            return Rejected("number_in_use", f"{taken} is already another business's number for conversations; "
                            "ask the operator if it is yours.", "business.details.conversations.numbers")
        zone = ZoneInfo(b.timezone)

        places: dict[str, Location] = {}
        for lc in config.locations:
            place = s.scalars(select(Location).where(Location.business_id == business.id,
                                                     Location.key == lc.key)).one_or_none()
            if place is None:
                place = Location(business_id=business.id, key=lc.key)
                s.add(place)
            place.name, place.address, place.timezone, place.phone = lc.name, lc.address, lc.timezone, lc.phone
            place.active = True
            places[lc.key] = place
        s.flush()
        place_hours = {lc.key: lc.hours for lc in config.locations if lc.hours is not None}

        resources: dict[str, Resource] = {}
        for rc in config.resources:
            resource = s.scalars(
                select(Resource).where(Resource.business_id == business.id, Resource.key == rc.key)
            ).one_or_none()
            if resource is None:
                resource = Resource(business_id=business.id, key=rc.key)
                s.add(resource)
            resource.name, resource.kind, resource.timezone, resource.active = rc.name, rc.kind, rc.timezone, True
            resource.capacity, resource.email, resource.phone = rc.capacity, rc.email, rc.phone
            resource.location_id = places[rc.location].id if rc.location else None
            if not flushed_within_exclusions(s):  # a capacity cut below what is already booked
                return Rejected("capacity_below_bookings",
                                f"{rc.key} already has overlapping bookings beyond capacity {rc.capacity}; "
                                "move or cancel them first.", "resources.capacity")
            resources[rc.key] = resource
            resource.hours = [
                WorkingHours(weekday=day, start_minute=start, end_minute=end)
                for day, start, end in weekly(rc.hours if rc.hours is not None
                                              else place_hours.get(rc.location or "", config.hours))
            ]
            s.execute(delete(AvailabilityException).where(AvailabilityException.resource_id == resource.id))
            own = rc.timezone or (places[rc.location].timezone if rc.location else None)
            add_exceptions(uow, business.id, resource.id, rc.exceptions, ZoneInfo(own) if own else zone)

        s.execute(delete(AvailabilityException).where(
            AvailabilityException.business_id == business.id, AvailabilityException.resource_id.is_(None)
        ))
        add_exceptions(uow, business.id, None, config.closures, zone)
        for other in branch_zones(uow, business.id) - {b.timezone}:
            add_exceptions(uow, business.id, None, [c for c in config.closures if given_local(c)], ZoneInfo(other),
                           other)

        for sc in config.services:
            service = s.scalars(
                select(Service).where(Service.business_id == business.id, Service.key == sc.key)
            ).one_or_none()
            if service is None:
                service = Service(business_id=business.id, key=sc.key)
                s.add(service)
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
            service.requirements = [
                ServiceRequirement(position=i, label=req.label, members=[
                    RequirementMember(resource_id=resources[key].id, position=j)
                    for j, key in enumerate(req.one_of)
                ])
                for i, req in enumerate(sc.requires)
            ]
        s.flush()
        if changes := audit.diff(before, config_document(uow, business.id)):
            audit.record(uow, business.id, "config.created" if created else "config.updated", business.slug,
                         {} if created else changes)
        uow.commit()
        return ConfigApplied(business.id, business.slug, created, len(config.resources), len(config.services))


def config_document(uow: SqlAlchemyUnitOfWork, business_id: int) -> dict[str, Any]:
    """The stored config as JSON, to compare before and after a change."""
    from nextslot.core.business.config_export import export_config

    uow.session.expire_all()  # read what is stored now, not what this session cached before the change
    config = export_config(uow, business_id)
    return config.model_dump(mode="json") if config else {}


NUMBERS_LOCK = 0x6E756D62  # one advisory lock for every config listing numbers: two at once cannot both take one


def numbers_taken(uow: SqlAlchemyUnitOfWork, business_id: int, details: dict[str, Any]) -> str | None:
    """The first of the business's conversation numbers another business already lists. A message written to a
    number is that business's conversation, so a second business listing it would read its customers' messages."""
    numbers = (details.get("conversations") or {}).get("numbers") or []
    if not numbers:
        return None
    uow.session.execute(select(func.pg_advisory_xact_lock(NUMBERS_LOCK)))
    for number in numbers:
        if uow.session.scalar(select(Business.id).where(
                Business.id != business_id, Business.details.contains({"conversations": {"numbers": [number]}}))):
            return str(number)
    return None


def details_problems(details: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, problem) for each setting in `details` the code could not read. Edits copy the config without
    validating it again, so this is checked here rather than only when a file is parsed."""
    try:
        BusinessDetails.model_validate(details)
        problems = []
    except ValidationError as error:
        problems = validation_problems(error, "business.details.")
    problems += whatsapp_template_problems(details.get("whatsapp_templates")) if not problems else []
    return problems + (template_problems(details["templates"]) if "templates" in details else [])


def exception_problems(config: BusinessConfig) -> list[tuple[str, str]]:
    """Too many stored spans for the closures and every resource's exceptions together (MAX_EXCEPTION_SPANS); a
    closure given as wall times counts once more for each other zone the file's branches and resources keep."""
    places = {lc.key: lc.timezone for lc in config.locations}
    zones = {rc.timezone or places.get(rc.location or "") for rc in config.resources}
    copies = 1 + len(zones - {None, config.business.timezone})
    spans = sum(stored_spans(ec) * (copies if given_local(ec) else 1) for ec in config.closures) + sum(
        stored_spans(ec) for rc in config.resources for ec in rc.exceptions)
    if spans <= MAX_EXCEPTION_SPANS:
        return []
    return [("closures", f"the closures and time off come to {spans} spans of time (each day of a range counts, "
                         f"and each span of its hours); at most {MAX_EXCEPTION_SPANS} are kept: give long or "
                         "repeated ones as whole days or exact ranges")]


def stored_spans(ec: ExceptionConfig) -> int:
    days = (ec.until - ec.date).days + 1 if ec.date is not None and ec.until is not None else 1
    return days * max(1, len(ec.hours))


def validation_problems(error: ValidationError, where: str = "") -> list[tuple[str, str]]:
    return [(where + ".".join(map(str, e["loc"])), e["msg"].removeprefix("Value error, ")) for e in error.errors()]


def refused_config(problems: list[tuple[str, str]]) -> Rejected:
    message = "; ".join(f"{field}: {text}" if field else text for field, text in problems)
    return Rejected("invalid_config", f"The configuration is not valid: {message}.", problems[0][0] or None,
                    problems=tuple(problems))


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


def add_exceptions(
    uow: SqlAlchemyUnitOfWork, business_id: int, resource_id: int | None, items: list[ExceptionConfig], zone: ZoneInfo,
    copy_for: str | None = None,
) -> None:
    """Stores each exception's spans read in `zone`; `copy_for` names the branch zone of a closure's copy."""
    for ec in items:
        for start, end in exception_intervals(ec, zone):
            uow.session.add(AvailabilityException(business_id=business_id, resource_id=resource_id, kind=ec.kind,
                                                  starts_at=start, ends_at=end, reason=ec.reason,
                                                  local=given_local(ec), zone=copy_for))


def given_local(ec: ExceptionConfig) -> bool:
    """A date, or times without an offset: wall times, which fall at other instants in another zone."""
    return ec.starts_at is None or ec.starts_at.tzinfo is None


def branch_zones(uow: SqlAlchemyUnitOfWork, business_id: int) -> set[str]:
    """The zones the business's resources keep of their own or through their branch, listed in this config or not."""
    return set(uow.session.scalars(
        select(func.coalesce(Resource.timezone, Location.timezone)).outerjoin(Location, Location.id == Resource.location_id)
        .where(Resource.business_id == business_id).distinct()
    )) - {None}
