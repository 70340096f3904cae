"""Create or update a business from its configuration file, in one transaction.

Declarative for what the file lists: the hours and exceptions of every listed resource, the
business-wide closures and each listed service's requirements are replaced (those already stored
as the file says are kept as they are). Resources and services the file does not mention are left alone.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import ValidationError
from sqlalchemy import func, select

from nextslot.core import audit
from nextslot.core.business.config_writes import (
    by_key,
    capacity_cut_refused,
    exception_intervals,
    given_local,
    resource_zones,
    store_locations,
    store_resources,
    store_services,
    store_times,
)
from nextslot.core.business.message_templates import template_problems, whatsapp_template_problems
from nextslot.core.results import Rejected
from nextslot.schemas.config import BusinessConfig, BusinessDetails, ExceptionConfig
from nextslot.schemas.config_fields import MAX_EXCEPTION_SPANS
from nextslot.storage.tables import Business, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork


@dataclass(frozen=True)
class ConfigApplied:
    business_id: int
    slug: str
    created: bool
    resources: int
    services: int


def apply_config(uow: SqlAlchemyUnitOfWork, config: BusinessConfig,
                 stored: dict[str, Any] | None = None) -> ConfigApplied | Rejected:
    """Store `config` whole; `stored` is the stored config's document when the caller has just read it in this
    transaction (an edit), so the audit's "before" is not read a second time."""
    numbers, unreadable = conversation_numbers(config.business.details, config.business.country)
    if problems := (details_problems(config.business.details) + unreadable + exception_problems(config)
                    + empty_exceptions(config)):
        return refused_config(problems)  # every path that stores a config comes here: nothing is written
    with uow:
        s = uow.session
        b = config.business
        # FOR NO KEY UPDATE: an edit still waits for an edit, while a write's reference to the business (a key share)
        # never waits for one: a booking letting claims go would wait for the edit waiting for those claims
        business = s.scalars(select(Business).where(Business.slug == b.slug)
                             .with_for_update(key_share=True)).one_or_none()
        created = business is None
        if business is None:
            before: dict[str, Any] = {}
            business = Business(slug=b.slug)
            s.add(business)
        else:
            before = stored if stored is not None else config_document(uow, business.id)
        was = {} if created else resource_zones(uow, business)
        business.name, business.timezone, business.country = b.name, b.timezone, b.country
        details = dict(b.details)
        if numbers:
            details["conversations"] = {**details["conversations"], "numbers": numbers}
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
        places = store_locations(uow, business.id, config)
        resources = by_key(uow, Resource, business.id, [rc.key for rc in config.resources])
        if refused := capacity_cut_refused(uow, config, resources):
            return refused
        store_resources(uow, business.id, config, places, resources)
        now = resource_zones(uow, business)
        if problems := exception_problems(config, now.values()):  # the zones of resources the file leaves out count
            return refused_config(problems)
        store_times(uow, business, config, places, resources, now, was)
        store_services(uow, business.id, config, resources)
        if changes := audit.diff(before, config_document(uow, business.id)):
            audit.record(uow, business.id, "config.created" if created else "config.updated", business.slug,
                         {} if created else changes)
        uow.commit()
        return ConfigApplied(business.id, business.slug, created, len(config.resources), len(config.services))


def config_document(uow: SqlAlchemyUnitOfWork, business_id: int) -> dict[str, Any]:
    """The stored config as JSON, to compare before and after a change."""
    from nextslot.core.business.config_export import export_config

    uow.session.flush()  # expiring drops what is not flushed
    uow.session.expire_all()  # read what is stored now, not what this session cached before the change
    config = export_config(uow, business_id)
    return config.model_dump(mode="json") if config else {}


NUMBERS_LOCK = 0x6E756D62  # one advisory lock for every config listing numbers: two at once cannot both take one


def conversation_numbers(details: dict[str, Any], country: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The business's conversation numbers as Twilio names the number written to (E.164: "+44 20 7946 0958",
    "0044 20 7946 0958" and "whatsapp:+442079460958" are all "+442079460958"), so that messages find the business
    and no second business lists the number in another form; and a problem for each that is no phone number."""
    numbers = ((details.get("conversations") or {}) if isinstance(details.get("conversations"), dict) else {}
               ).get("numbers")
    if not isinstance(numbers, list):
        return [], []
    found, problems = [], []
    for raw in numbers:
        text = str(raw).strip()
        try:
            number = phonenumbers.parse(text[9:] if text.lower().startswith("whatsapp:") else text, country)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            problems.append(("business.details.conversations.numbers",
                             f"'{raw}' is not a phone number; give it with its country code, e.g. +44 20 7946 0958"))
            continue
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        found += [e164] if e164 not in found else []
    return found, problems


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


def exception_problems(config: BusinessConfig, stored_zones: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Too many stored spans for the closures and every resource's exceptions together (MAX_EXCEPTION_SPANS); a
    closure given as wall times counts once more for each other zone the file's branches and resources keep, and
    the stored resources' (`stored_zones`): a partial file's closures are copied for those it leaves out too."""
    places = {lc.key: lc.timezone for lc in config.locations}
    zones = {rc.timezone or places.get(rc.location or "") for rc in config.resources} | set(stored_zones)
    copies = 1 + len(zones - {None, config.business.timezone})
    spans = sum(stored_spans(ec) * (copies if given_local(ec) else 1) for ec in config.closures) + sum(
        stored_spans(ec) for rc in config.resources for ec in rc.exceptions)
    if spans <= MAX_EXCEPTION_SPANS:
        return []
    return [("closures", f"the closures and time off come to {spans} spans of time (each day of a range counts, "
                         f"and each span of its hours); at most {MAX_EXCEPTION_SPANS} are kept: give long or "
                         "repeated ones as whole days or exact ranges")]


def empty_exceptions(config: BusinessConfig) -> list[tuple[str, str]]:
    """The first exception that ends before it starts in the zone it is read in (the resource's own, its branch's,
    else the business's): local times the clocks skip, or go back over, can make one."""
    places = {lc.key: lc.timezone for lc in config.locations}
    sections = [("closures", config.closures, config.business.timezone)] + [
        (f"resources.{i}.exceptions", r.exceptions, r.timezone or places.get(r.location or "") or config.business.timezone)
        for i, r in enumerate(config.resources)]
    for where, exceptions, name in sections:
        for j, exception in enumerate(exceptions):
            if any(start >= end for start, end in exception_intervals(exception, ZoneInfo(name))):
                return [(f"{where}.{j}", f"it covers no time in {name}: the clocks change within it; give starts_at "
                                         "and ends_at with their UTC offsets")]
    return []


def stored_spans(ec: ExceptionConfig) -> int:
    days = (ec.until - ec.date).days + 1 if ec.date is not None and ec.until is not None else 1
    return days * max(1, len(ec.hours))


def validation_problems(error: ValidationError, where: str = "") -> list[tuple[str, str]]:
    return [(where + ".".join(map(str, e["loc"])), e["msg"].removeprefix("Value error, ")) for e in error.errors()]


def refused_config(problems: list[tuple[str, str]]) -> Rejected:
    message = "; ".join(f"{field}: {text}" if field else text for field, text in problems)
    return Rejected("invalid_config", f"The configuration is not valid: {message}.", problems[0][0] or None,
                    problems=tuple(problems))
