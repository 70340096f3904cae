"""From stored configuration to what availability needs: a service's rules and resource timelines.

Plans are plain data so they survive a rolled-back transaction (a lost race still needs them).
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nextslot.core.booking.assignment import Assignment, Workload, fair_order
from nextslot.core.booking.availability import Pools, ResourceTimeline, ServiceRules, WeeklyHours, open_intervals
from nextslot.core.config_versions import VersionedCache, read_version, still_current
from nextslot.core.results import Rejected
from nextslot.schemas.service_rules import CancellationPolicy, NoShowPolicy
from nextslot.storage import queries
from nextslot.storage.tables import Business, Resource, Service
from nextslot.storage.uow import SqlAlchemyUnitOfWork


@dataclass(frozen=True)
class BusinessInfo:
    id: int
    slug: str
    zone: ZoneInfo
    country: str
    reminder_offsets: tuple[int, ...] | None
    deposit_hold_minutes: int = 30
    no_show_policy: NoShowPolicy | None = None
    cancellation: CancellationPolicy | None = None
    phone: str | None = None  # said when a customer is sent to staff (a cancel past the cutoff)

    @classmethod
    def of(cls, b: Business) -> BusinessInfo:
        details = b.details or {}
        offsets = details.get("reminder_offsets_minutes")
        policy = details.get("no_show_policy")
        cancellation = details.get("cancellation")
        return cls(b.id, b.slug, ZoneInfo(b.timezone), b.country, tuple(offsets) if offsets is not None else None,
                   int(details.get("deposit_hold_minutes", 30)), NoShowPolicy.model_validate(policy) if policy else None,
                   CancellationPolicy.model_validate(cancellation) if cancellation else None,
                   str(details["phone"]) if details.get("phone") else None)


@dataclass(frozen=True)
class LocationInfo:
    id: int
    key: str
    name: str
    address: str | None


@dataclass(frozen=True)
class ResourceInfo:
    id: int
    key: str
    name: str
    kind: str
    capacity: int
    zone: ZoneInfo
    location: LocationInfo | None = None  # None: shared by every branch

    @classmethod
    def of(cls, r: Resource, business_zone: ZoneInfo) -> ResourceInfo:
        place, own = r.location, r.own_timezone
        return cls(r.id, r.key, r.name, r.kind, r.capacity, ZoneInfo(own) if own else business_zone,
                   LocationInfo(place.id, place.key, place.name, place.address) if place else None)


@dataclass(frozen=True)
class Plan:
    business: BusinessInfo
    service_id: int
    service_key: str
    service_name: str
    rules: ServiceRules
    groups: tuple[tuple[ResourceInfo, ...], ...]  # one pool per requirement, in pick order
    service_reminder_offsets: tuple[int, ...] | None = None  # None: the business's
    intake_questions: tuple[dict[str, Any], ...] = ()
    deposit: tuple[int, str] | None = None  # (amount in minor units, currency): paid when booking
    assignment: Assignment | None = None  # how pooled members are picked; None: first free in listed order
    party_max: int = 1  # the largest party one booking may be for
    per_person: tuple[bool, ...] = ()  # per requirement: taken once per person of a party
    weekly: Mapping[int, tuple[WeeklyHours, ...]] | None = None  # each resource's weekly hours; None: read them
    series_max: int = 52  # the most occurrences of a recurring series; 0: booked one at a time only

    def seats(self, resource_ids: tuple[int, ...], party: int) -> dict[int, int]:
        """Places each claimed resource gives a party: all of them at a roomy member of a per-person pool."""
        if party == 1:
            return {}
        roomy = {r.id for i, group in enumerate(self.groups) if i < len(self.per_person) and self.per_person[i]
                 for r in group if r.capacity > 1}
        return {rid: party for rid in resource_ids if rid in roomy}

    def party_problem(self, party: int) -> Rejected | None:
        if party <= self.party_max:
            return None
        most = f"at most {self.party_max} people" if self.party_max > 1 else "one person"
        return Rejected("party_too_large", f"{self.service_name} takes {most} a booking; {party} asked.",
                        "party_size")

    @property
    def reminder_offsets(self) -> tuple[int, ...] | None:
        """Minutes before the start to remind at: the service's own, else the business's (None: defaults)."""
        if self.service_reminder_offsets is not None:
            return self.service_reminder_offsets
        return self.business.reminder_offsets

    @property
    def locations(self) -> list[str]:
        """The branches the service's resources are at, in listed order (empty: no branches)."""
        return list(dict.fromkeys(r.location.key for group in self.groups for r in group if r.location))

    @property
    def resources(self) -> dict[int, ResourceInfo]:
        return {r.id: r for group in self.groups for r in group}


def rules_of(service: Service, zone: ZoneInfo, also_on_grid: tuple[ZoneInfo, ...] = ()) -> ServiceRules:
    return ServiceRules(
        duration=timedelta(minutes=service.duration_minutes),
        buffer_before=timedelta(minutes=service.buffer_before_minutes),
        buffer_after=timedelta(minutes=service.buffer_after_minutes),
        step_minutes=service.slot_step_minutes,
        min_notice=timedelta(minutes=service.min_notice_minutes),
        horizon=timedelta(days=service.horizon_days),
        zone=zone,
        also_on_grid=also_on_grid,
    )


def place_zones(pools: Sequence[Sequence[ResourceInfo]], business_zone: ZoneInfo) -> list[ZoneInfo]:
    """The zones of the branches these resources are at (or their own)."""
    return [ZoneInfo(k) for k in sorted({m.zone.key for p in pools for m in p if keeps_a_place(m, business_zone)})]


def keeps_a_place(r: ResourceInfo, business_zone: ZoneInfo) -> bool:
    """At a branch or in a zone of its own: it says where a booking happens (a shared one with neither says nothing,
    and goes with any branch)."""
    return r.location is not None or r.zone.key != business_zone.key


def unknown_business(business_id: int) -> Rejected:
    return Rejected("unknown_business", f"There is no business with id {business_id}.")


def business_info(uow: SqlAlchemyUnitOfWork, business_id: int) -> BusinessInfo:
    """The business of a row already read (a booking, an offer): it exists."""
    return BusinessInfo.of(queries.known_business(uow.session, business_id))


def load_business(uow: SqlAlchemyUnitOfWork, business_id: int) -> BusinessInfo | Rejected:
    business = queries.business(uow.session, business_id)
    return BusinessInfo.of(business) if business else unknown_business(business_id)


PLANS: VersionedCache[Plan] = VersionedCache()


def load_plan(
    uow: SqlAlchemyUnitOfWork,
    business_id: int,
    service_key: str,
    resource_keys: Sequence[str] = (),
    location: str | None = None,
) -> Plan | Rejected:
    """The service's rules and resource pools, narrowed to the preferred resources and the branch if any.

    One cheap read of the business's config version when this process already built the plan."""
    version = read_version(uow, business_id)  # read first: a plan is never newer than its label
    if version is None:
        return unknown_business(business_id)
    key = (queries.database_of(uow.session), business_id, service_key, tuple(resource_keys), location)
    cached = PLANS.get(key, version)
    if cached is not None:
        return cached
    plan = build_plan(uow, business_id, service_key, resource_keys, location)
    if isinstance(plan, Plan):
        PLANS.put(key, version, plan)
    return plan


def build_plan(
    uow: SqlAlchemyUnitOfWork,
    business_id: int,
    service_key: str,
    resource_keys: Sequence[str] = (),
    location: str | None = None,
) -> Plan | Rejected:
    """The plan as stored now (no cache)."""
    business = load_business(uow, business_id)
    if isinstance(business, Rejected):
        return business
    service = queries.service_by_key(uow.session, business_id, service_key)
    if service is None and (key := service_named(uow, business_id, service_key)):
        service = queries.service_by_key(uow.session, business_id, key)
    if service is None:
        return unknown_service(uow, business_id, service_key)
    pools = []
    for requirement in service.requirements:
        pools.append(tuple(ResourceInfo.of(m.resource, business.zone) for m in requirement.members if m.resource.active))
    if resource_keys:
        wanted = queries.resources_by_keys(uow.session, business_id, resource_keys)
        missing = [k for k in resource_keys if k not in wanted]
        if missing:
            return Rejected("unknown_resource", f"No resource called {', '.join(missing)} here.", "resources")
        wanted_ids = {r.id for r in wanted.values()}
        unused = [r.key for r in wanted.values() if not any(r.id in {m.id for m in p} for p in pools)]
        if unused:
            return Rejected(
                "resource_not_used", f"{', '.join(unused)} does not take part in {service.name}.", "resources"
            )
        pools = [tuple(m for m in p if m.id in wanted_ids) or p for p in pools]
    if location:
        places = {m.location.key: m.location.name for p in pools for m in p if m.location}
        place = next((k for k, n in places.items() if folded(location) in (folded(k), folded(n))), None)
        if place is None:
            there = f" It is offered at {', '.join(sorted(places.values()))}." if places else ""
            return Rejected("not_at_location", f"{service.name} is not offered at '{location}'.{there}", "location",
                            tuple(sorted(places)))
        location = place
        pools = [tuple(m for m in p if m.location is None or m.location.key == place) for p in pools]
        if not all(pools):
            return Rejected("not_at_location", f"{service.name} cannot be booked at {places[location]}.", "location")
    # a branch's grid and days are its own: 09:00 in Pune, not New York's hour laid over Pune's half-hour offset
    zones = place_zones(pools, business.zone)
    rules = rules_of(service, zones[0]) if len(zones) == 1 else rules_of(service, business.zone, tuple(zones))
    offsets = service.reminder_offsets_minutes
    hours = queries.hours_for(uow.session, [r.id for pool in pools for r in pool])
    weekly = {rid: tuple(WeeklyHours(h.weekday, h.start_minute, h.end_minute) for h in rows)
              for rid, rows in hours.items()}
    return Plan(business, service.id, service.key, service.name, rules, tuple(pools),
                tuple(offsets) if offsets is not None else None, tuple(service.intake_questions or ()),
                (service.deposit_minor, service.deposit_currency or "") if service.deposit_minor else None,
                assignment_of(service.assignment, pools), *party_of(service), weekly=weekly,
                series_max=series_max(service.series))


def series_max(stored: dict[str, Any] | None) -> int:
    """The most occurrences a series of the service may have (0: series are not allowed)."""
    series = stored or {}
    return int(series.get("max_count", 52)) if series.get("allowed", True) else 0


def party_of(service: Service) -> tuple[int, tuple[bool, ...]]:
    party = service.party or {}
    wanted = set(party.get("per_person") or ())
    return int(party.get("max", 1)), tuple(r.label in wanted for r in service.requirements)


def assignment_of(stored: dict[str, Any] | None, pools: Sequence[tuple[ResourceInfo, ...]]) -> Assignment | None:
    """The service's fair-assignment setting with its weights by resource id; None for first free."""
    if not stored or stored.get("strategy", "first_free") == "first_free":
        return None
    ids = {r.key: r.id for pool in pools for r in pool}
    weights = {ids[k]: int(w) for k, w in (stored.get("weights") or {}).items() if k in ids}
    return Assignment(stored["strategy"], weights)


def folded(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


def service_named(uow: SqlAlchemyUnitOfWork, business_id: int, text: str) -> str | None:
    """The key of the service whose key or name this is, ignoring case, dashes and spacing."""
    wanted = folded(text)
    keys = queries.service_keys(uow.session, business_id)
    return next((k for k, n in keys if wanted in (folded(k), folded(n))), None)


def unknown_service(uow: SqlAlchemyUnitOfWork, business_id: int, key: str) -> Rejected:
    names = dict(queries.service_keys(uow.session, business_id))
    by_folded = {folded(k): k for k in names} | {folded(n): k for k, n in names.items()}
    candidates = difflib.get_close_matches(folded(key), list(by_folded), n=3)
    candidates += [f for f in by_folded if folded(key) in f or any(w in f.split() for w in folded(key).split())]
    close = sorted({by_folded[c] for c in candidates})
    hint = f" Did you mean {', '.join(close)}?" if close else f" Services: {', '.join(sorted(names))}."
    return Rejected("unknown_service", f"There is no service '{key}'.{hint}", "service",
                    tuple(close or sorted(names)))


@dataclass(frozen=True)
class Committed:
    """What a plan's timelines are built from, as committed when read: dated exceptions, busy time, and for fair
    assignment the members' workload. Equal reads build equal timelines."""

    span: tuple[datetime, datetime]
    exceptions: list[queries.DatedException]
    busy: dict[int, list[tuple[datetime, datetime]]]
    work: Workload | None = None
    version: int | None = None  # the business's config version as of this read
    key_unused: bool = field(default=False, compare=False)  # a booking's check: its idempotency key free and unused


def span_of(plan: Plan, window: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    """What a read for starts in the window covers: buffers and the last start's whole service."""
    rules = plan.rules
    return window[0] - rules.buffer_before, window[1] + rules.duration + rules.buffer_after


def read_committed(
    uow: SqlAlchemyUnitOfWork, plan: Plan, window: tuple[datetime, datetime], now: datetime,
    exclude_booking_id: int | None = None,
    key: str | None = None,
) -> Committed:
    """One read (two for fair assignment) of what every start in the window depends on, buffers included; given a
    booking's idempotency `key`, also whether that is free and unused (`queries.calendar_for`)."""
    span = span_of(plan, window)
    exceptions, busy, version, key_unused = queries.calendar_for(uow.session, plan.business.id, list(plan.resources),
                                                                 span, now, exclude_booking_id, key)
    return Committed(span, exceptions, busy, workload(uow, plan, window) if plan.assignment else None, version,
                     key_unused)


def deciding(uow: SqlAlchemyUnitOfWork, plan: Plan, committed: Committed) -> Committed:
    """`committed`, if read at the config version this transaction took its plan at (see `still_current`)."""
    still_current(uow, plan.business.id, committed.version)
    return committed


def timelines(
    uow: SqlAlchemyUnitOfWork,
    plan: Plan,
    window: tuple[datetime, datetime],
    now: datetime,
    exclude_booking_id: int | None = None,
    party: int = 1,
    decides: bool = False,
) -> Sequence[Sequence[ResourceTimeline]]:
    """Each requirement's pool as timelines covering every start in the window (buffers included), ready to
    assign a party of `party` people in the service's fair order. A write's check `decides`: see `deciding`."""
    committed = read_committed(uow, plan, window, now, exclude_booking_id)
    return build_timelines(uow, plan, deciding(uow, plan, committed) if decides else committed, party)


def build_timelines(uow: SqlAlchemyUnitOfWork, plan: Plan, committed: Committed,
                    party: int = 1) -> Sequence[Sequence[ResourceTimeline]]:
    """The timelines of a committed read (no I/O when the plan carries its weekly hours)."""
    resources = plan.resources
    weekly_of = plan.weekly
    if weekly_of is None:
        hours = queries.hours_for(uow.session, list(resources))
        weekly_of = {rid: tuple(WeeklyHours(h.weekday, h.start_minute, h.end_minute) for h in rows)
                     for rid, rows in hours.items()}
    span, exceptions, busy = committed.span, committed.exceptions, committed.busy
    built: dict[int, ResourceTimeline] = {}
    opening: dict[tuple[Any, ...], list[tuple[datetime, datetime]]] = {}  # resources on the same hours share one
    business_zone = plan.business.zone.key
    for rid, info in resources.items():
        own = info.zone.key if info.zone.key != business_zone else None
        mine = [e for e in exceptions if e.applies_to(rid, own)]
        extra = tuple((e.starts_at, e.ends_at) for e in mine if e.kind == "open")
        closed = tuple((e.starts_at, e.ends_at) for e in mine if e.kind == "closed")
        weekly = tuple(weekly_of.get(rid, ()))
        if (same := (weekly, info.zone, extra, closed)) not in opening:
            opening[same] = open_intervals(weekly, info.zone, span, extra_open=extra, closed=closed)
        grid = info.zone if keeps_a_place(info, plan.business.zone) else None
        built[rid] = ResourceTimeline(rid, info.capacity, list(opening[same]), list(busy.get(rid, ())),
                                      info.location.id if info.location else None, grid)
    groups = [[built[r.id] for r in group] for group in plan.groups]
    if plan.assignment is None and party == 1 and not any(plan.per_person):
        return groups
    rank = fair_order(plan.assignment, committed.work, plan.rules.zone) \
        if plan.assignment and committed.work else None
    return Pools(groups, rank, party, plan.per_person)


def workload(uow: SqlAlchemyUnitOfWork, plan: Plan, window: tuple[datetime, datetime]) -> Workload:
    """What fair assignment measures, as committed now: pooled members' bookings in the weeks around the window
    (a week either side covers every local day and week a start in it falls in), and who last got the service."""
    pooled = sorted({r.id for group in plan.groups if len(group) > 1 for r in group})
    span = (window[0] - timedelta(days=8), window[1] + timedelta(days=8))
    last = queries.last_given(uow.session, pooled, plan.service_id) if plan.assignment and \
        plan.assignment.strategy == "round_robin" else {}
    return Workload(queries.booking_starts(uow.session, pooled, span), last)
