"""Configs that try the business-wide closures copied per zone: resources the file leaves out, zones that move, and
days a branch's clocks skip."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from nextslot.core.business.config import apply_config
from nextslot.core.business.config_export import export_config
from nextslot.core.instants import wall_to_utc
from nextslot.core.results import Rejected
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.schemas.config import BusinessConfig
from nextslot.schemas.config_fields import MAX_EXCEPTION_SPANS
from nextslot.storage.tables import AvailabilityException
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.core.test_branch_zones import coasts

ANA = {"key": "ana", "name": "Ana", "kind": "staff"}


def shop(*resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A London business whose one service needs Ana; `resources` are listed besides her."""
    return {
        "business": {"slug": extra.pop("slug", f"z-{uuid.uuid4().hex[:8]}"), "name": "Z",
                     "timezone": extra.pop("timezone", "Europe/London"), "country": "GB"},
        "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "resources": [ANA, *resources],
        "services": [{"key": "cut", "name": "Cut", "duration": 30,
                      "requires": [{"label": "who", "one_of": ["ana"]}]}],
        **extra,
    }


def apply(session_factory, data: dict[str, Any]):
    return apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(data))


def applied(session_factory, data: dict[str, Any]) -> int:
    result = apply(session_factory, data)
    assert not isinstance(result, Rejected), result
    return result.business_id


def exported(session_factory, business_id: int) -> BusinessConfig:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        config = export_config(uow, business_id)
        assert config is not None
        return config


def stored_rows(session_factory, business_id: int) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(AvailabilityException)
                        .where(AvailabilityException.business_id == business_id))


def test_the_closures_cap_counts_the_zones_of_resources_the_file_leaves_out(session_factory):
    """Five people stored in five other zones, then a file listing only Ana with closures at the cap: each closure
    would be stored six times."""
    zones = ["America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Santiago", "Asia/Beirut"]
    data = shop(*({"key": f"r{i}", "name": f"R{i}", "kind": "staff", "timezone": z} for i, z in enumerate(zones)))
    business_id = applied(session_factory, data)
    closures = [{"kind": "closed", "date": "2027-01-01", "until": "2027-12-31"}] * (MAX_EXCEPTION_SPANS // 365)
    result = apply(session_factory, shop(slug=data["business"]["slug"], closures=closures))
    assert isinstance(result, Rejected) and result.field == "closures", result
    assert stored_rows(session_factory, business_id) <= MAX_EXCEPTION_SPANS


def test_a_wall_closure_a_branch_skips_is_kept_where_it_covers_time(session_factory):
    """Santiago's clocks go from 00:00 to 01:00 on 2026-09-06: the closure covers no time there, and London's is
    stored rather than the whole file failing on the copy."""
    santiago = {"key": "cl", "name": "Cl", "kind": "staff", "timezone": "America/Santiago"}
    business_id = applied(session_factory, shop(santiago, closures=[
        {"kind": "closed", "starts_at": "2026-09-06T00:00:00", "ends_at": "2026-09-06T00:30:00"}]))
    assert [(c.starts_at, c.ends_at) for c in exported(session_factory, business_id).closures] == [
        (datetime(2026, 9, 6), datetime(2026, 9, 6, 0, 30))]


def test_a_branch_moving_zone_keeps_the_wall_times_of_a_resource_left_out(session_factory):
    """Lee's morning off stays 09:00-12:00 when a file listing only Ana moves Lee's branch from Los Angeles to
    Denver, as Lee's hours do, and not 10:00-13:00 (the old instants read in Denver)."""
    lee = {"key": "lee", "name": "Lee", "kind": "staff", "location": "west",
           "exceptions": [{"kind": "closed", "date": "2027-01-04", "hours": ["09:00-12:00"]},
                          {"kind": "closed", "starts_at": "2027-01-06T09:00:00-08:00",
                           "ends_at": "2027-01-06T10:00:00-08:00"}]}
    data = shop(lee, locations=[{"key": "west", "name": "West", "timezone": "America/Los_Angeles"}])
    business_id = applied(session_factory, data)
    applied(session_factory, shop(slug=data["business"]["slug"],
                                  locations=[{"key": "west", "name": "West", "timezone": "America/Denver"}]))
    lee_now = next(r for r in exported(session_factory, business_id).resources if r.key == "lee")
    assert [(e.starts_at, e.ends_at) for e in lee_now.exceptions] == [
        (datetime(2027, 1, 4, 9), datetime(2027, 1, 4, 12)),
        (datetime(2027, 1, 6, 17, tzinfo=UTC), datetime(2027, 1, 6, 18, tzinfo=UTC))]  # an exact range stays put


def test_a_branch_moving_to_a_zone_that_skips_a_left_out_resources_time_off_stores_the_rest(session_factory):
    """00:00-00:30 on 2026-09-06 is half an hour in Los Angeles and no time in Santiago, whose clocks skip it."""
    lee = {"key": "lee", "name": "Lee", "kind": "staff", "location": "west", "exceptions": [
        {"kind": "closed", "starts_at": "2026-09-06T00:00:00", "ends_at": "2026-09-06T00:30:00"},
        {"kind": "closed", "date": "2026-09-07"}]}
    data = shop(lee, locations=[{"key": "west", "name": "West", "timezone": "America/Los_Angeles"}])
    business_id = applied(session_factory, data)
    applied(session_factory, shop(slug=data["business"]["slug"],
                                  locations=[{"key": "west", "name": "West", "timezone": "America/Santiago"}]))
    lee_now = next(r for r in exported(session_factory, business_id).resources if r.key == "lee")
    assert [(e.starts_at, e.ends_at) for e in lee_now.exceptions] == [(datetime(2026, 9, 7), datetime(2026, 9, 8))]


def test_the_business_moving_zone_keeps_the_wall_times_of_a_resource_left_out(session_factory):
    """Bo keeps the business's zone; a file listing only Ana moves the business to Paris."""
    bo = {"key": "bo", "name": "Bo", "kind": "staff", "exceptions": [{"kind": "closed", "date": "2027-01-04"}]}
    data = shop(bo)
    business_id = applied(session_factory, data)
    applied(session_factory, shop(slug=data["business"]["slug"], timezone="Europe/Paris"))
    bo_now = next(r for r in exported(session_factory, business_id).resources if r.key == "bo")
    assert [(e.starts_at, e.ends_at) for e in bo_now.exceptions] == [(datetime(2027, 1, 4), datetime(2027, 1, 5))]


def test_a_start_on_one_branchs_grid_is_not_given_to_a_branch_whose_grid_it_is_not_on(service, make_business):
    """09:30 in New York is 8 pm in Pune, on Pune's hourly grid but not Manhattan's or Venice Beach's; only Ana in
    Manhattan is free then, and booked there it would take two of Manhattan's hours. The one branch whose grid it
    is on is closed."""
    business = make_business(coasts())

    def book(at: datetime, phone: str):
        return service.book(business, BookingCreate(service="cut", starts_at=at,
                                                     customer=CustomerIn(name="Eve Park", phone=phone)))

    off = book(datetime(2026, 11, 24, 14, 30, tzinfo=UTC), "+12125550177")
    assert isinstance(off, Rejected) and off.code == "outside_hours", off
    on = book(datetime(2026, 11, 24, 15, tzinfo=UTC), "+12125550178")  # 10:00 in New York
    assert not isinstance(on, Rejected) and [r.key for r in on.booking.resources] == ["ana"], on


def test_a_shared_resource_free_at_a_start_is_offered_once_not_once_a_branch(service, make_business):
    """Fay, a freelancer at no branch, is in every branch's plan of a search at none: each found her free at the
    same starts, and the list said each twice (and a limit counted them twice)."""
    config = coasts()
    config["resources"].append({"key": "fay", "name": "Fay", "kind": "staff"})
    config["services"][0]["requires"][0]["one_of"] = ["fay", "ana", "lee"]
    business = make_business(config)
    found = service.find_slots(business, SlotQuery(service="cut", starts_from=date(2026, 11, 24),
                                                   until=date(2026, 11, 25), limit=100))
    offered = [(s.starts_at.utc, tuple(r.key for r in s.resources)) for s in found.slots]
    assert offered and len(offered) == len(set(offered)), offered


def test_time_off_its_branchs_clocks_skip_is_refused_whole_on_every_path(session_factory):
    """02:00-02:30 on 14 March 2027 does not exist in Los Angeles: a file applied whole (load-config, PUT /v1/config)
    is refused with the field, as an edit is, and nothing is stored (it was a database error)."""
    lee = {"key": "lee", "name": "Lee", "kind": "staff", "location": "la",
           "exceptions": [{"kind": "closed", "starts_at": "2027-03-14T02:00", "ends_at": "2027-03-14T02:30"}]}
    data = shop(lee, locations=[{"key": "la", "name": "LA", "timezone": "America/Los_Angeles"}])
    refused = apply(session_factory, data)
    assert isinstance(refused, Rejected) and refused.code == "invalid_config"
    assert refused.field == "resources.1.exceptions.0" and "no time in America/Los_Angeles" in refused.message


ZONES = sorted(available_timezones() - {"Factory", "localtime"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(business_zone=st.sampled_from(ZONES), branch_zone=st.sampled_from(ZONES),
       day=st.dates(date(2026, 1, 1), date(2029, 12, 31)))
def test_a_dated_closure_is_each_zones_own_day_and_edits_keep_it_so(session_factory, business_zone, branch_zone,
                                                                     day):
    """Any two zones, any date of four years' clock changes: the branch's copy is the branch's own day, and applying
    the export again stores the same rows."""
    lee = {"key": "lee", "name": "Lee", "kind": "staff", "location": "far"}
    business = applied(session_factory, shop(lee, timezone=business_zone,
                                             locations=[{"key": "far", "name": "Far", "timezone": branch_zone}],
                                             closures=[{"kind": "closed", "date": day.isoformat()}]))

    def rows() -> set[tuple[Any, ...]]:
        with session_factory() as s:
            return {(e.zone, e.starts_at, e.ends_at, e.local) for e in s.scalars(
                select(AvailabilityException).where(AvailabilityException.business_id == business))}

    first = rows()
    far = ZoneInfo(branch_zone)
    mine = {(start, end) for zone, start, end, _ in first if zone == (None if branch_zone == business_zone else branch_zone)}
    assert mine == {(wall_to_utc(day, 0, far), wall_to_utc(day, 1440, far))}
    again = exported(session_factory, business)
    assert [(c.starts_at, c.ends_at) for c in again.closures] == [
        (datetime.combine(day, time()), datetime.combine(day + timedelta(days=1), time()))]  # wall times, no offset
    assert not isinstance(apply_config(SqlAlchemyUnitOfWork(session_factory), again), Rejected)
    assert rows() == first
