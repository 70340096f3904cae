"""Loading business configs: examples load, updates replace what the file lists, bad configs are refused."""
from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from nextslot.core.business.config import apply_config
from nextslot.core.results import Booked, Rejected
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.schemas.config import BusinessConfig, ExceptionConfig, RequirementConfig
from nextslot.storage.tables import AvailabilityException, Resource, Service, WorkingHours
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import example, own_numbers


def test_both_examples_load_with_their_resources_and_services(make_business, session_factory):
    clinic, garage = make_business("clinic"), make_business("garage")
    with session_factory() as s:
        clinic_resources = {r.key: r for r in s.scalars(select(Resource).where(Resource.business_id == clinic))}
        garage_resources = {r.key: r for r in s.scalars(select(Resource).where(Resource.business_id == garage))}
        scan = s.scalars(select(Service).where(Service.business_id == clinic, Service.key == "ultrasound")).one()
        pools = [[m.resource.key for m in req.members] for req in scan.requirements]
    assert sorted(clinic_resources) == ["dr-okafor", "dr-patel", "room-1", "room-2", "scanner"]
    assert pools == [["dr-patel", "dr-okafor"], ["room-2", "room-1"], ["scanner"]]
    assert garage_resources["service-bay"].capacity == 3


def test_reloading_a_config_updates_in_place_and_replaces_hours(make_business, session_factory):
    data = example("clinic")
    data["business"] = own_numbers(data["business"])  # the example's conversation number: another business's
    data["business"]["slug"] = "reload-clinic"
    uow = SqlAlchemyUnitOfWork(session_factory)
    first = apply_config(uow, BusinessConfig.model_validate(data))
    changed = copy.deepcopy(data)
    changed["resources"][0]["hours"] = {"mon": ["12:00-13:00"]}
    changed["services"][0]["duration"] = 30
    second = apply_config(uow, BusinessConfig.model_validate(changed))
    assert first.created and not second.created and first.business_id == second.business_id
    with session_factory() as s:
        patel = s.scalars(select(Resource).where(Resource.business_id == first.business_id,
                                                 Resource.key == "dr-patel")).one()
        hours = s.scalars(select(WorkingHours).where(WorkingHours.resource_id == patel.id)).all()
        consult = s.scalars(select(Service).where(Service.business_id == first.business_id,
                                                  Service.key == "consultation")).one()
        closures = s.scalars(select(AvailabilityException).where(
            AvailabilityException.business_id == first.business_id, AvailabilityException.resource_id.is_(None)
        )).all()
    assert [(h.weekday, h.start_minute, h.end_minute) for h in hours] == [(0, 720, 780)]
    assert consult.duration_minutes == 30
    assert len(closures) == 3  # 25 and 26 December, 1 January: replaced, not duplicated


def test_whole_day_closures_cover_the_local_day(make_business, session_factory):
    garage = make_business("garage")
    with session_factory() as s:
        thanksgiving = s.scalars(select(AvailabilityException).where(
            AvailabilityException.business_id == garage, AvailabilityException.reason == "Thanksgiving")).one()
    assert thanksgiving.starts_at == datetime(2026, 11, 26, 5, 0, tzinfo=UTC)  # midnight in New York
    assert thanksgiving.ends_at - thanksgiving.starts_at == timedelta(hours=24)


def test_lowering_capacity_below_existing_bookings_is_refused(make_business, service, session_factory):
    data = example("garage")
    data["business"]["slug"] = "shrinking-garage"
    uow = SqlAlchemyUnitOfWork(session_factory)
    garage = apply_config(uow, BusinessConfig.model_validate(data)).business_id
    start = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
    for n in range(2):
        result = service.book(garage, BookingCreate(service="tyre-swap", starts_at=start,
                                                    customer=CustomerIn(name=f"Driver {n}", phone=f"+1212555012{n}")))
        assert isinstance(result, Booked)
    data["resources"][2]["capacity"] = 1
    refused = apply_config(uow, BusinessConfig.model_validate(data))
    assert isinstance(refused, Rejected) and refused.code == "capacity_below_bookings"
    with session_factory() as s:
        bay = s.scalars(select(Resource).where(Resource.business_id == garage, Resource.key == "service-bay")).one()
    assert bay.capacity == 3  # nothing half-written
    data["resources"][2]["capacity"] = 2
    assert not isinstance(apply_config(uow, BusinessConfig.model_validate(data)), Rejected)
    third = service.book(garage, BookingCreate(service="tyre-swap", starts_at=start,
                                               customer=CustomerIn(name="Driver", phone="+12125550129")))
    assert third.__class__.__name__ == "SlotTaken"


def test_resource_in_its_own_zone_is_open_in_its_local_hours(make_business, service):
    data = {
        "business": {"slug": "zones", "name": "Zones", "timezone": "Europe/London", "country": "GB"},
        "resources": [{"key": "tutor", "name": "NY tutor", "kind": "staff", "timezone": "America/New_York",
                       "hours": {"mon": ["09:00-10:00"]}}],
        "services": [{"key": "lesson", "name": "Lesson", "duration": 30, "step": 30, "min_notice": 0,
                      "requires": [{"label": "tutor", "one_of": ["tutor"]}]}],
    }
    biz = make_business(data)
    slots = service.find_slots(biz, SlotQuery(service="lesson", customer_timezone="Asia/Tokyo", limit=2)).slots
    assert [s.starts_at.utc for s in slots] == [datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
                                               datetime(2026, 11, 23, 14, 30, tzinfo=UTC)]
    assert slots[0].starts_at.business_local.hour == 14
    assert slots[0].starts_at.spoken == "Monday 23 November at 11 pm"  # Tokyo


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d["business"].update(timezone="Europe/Atlantis"), "IANA"),
        (lambda d: d["resources"][0].update(capacity=0), "greater than or equal to 1"),
        (lambda d: d["resources"][0].update(kind="robot"), "staff"),
        (lambda d: d["services"][0]["requires"][0].update(one_of=["nobody"]), "unknown resource"),
        (lambda d: d["hours"].update(mon=["18:00-09:00"]), "forwards"),
        (lambda d: d["hours"].update(mon=["9am-5pm"]), "span"),
        (lambda d: d["services"][0].update(duration=0), "greater than 0"),
        (lambda d: d["resources"].append(dict(d["resources"][0])), "unique"),
        (lambda d: d["closures"].append({"kind": "open", "date": "2026-12-20"}), "needs hours"),
        (lambda d: d["business"].update(slug="Bad Slug"), "pattern"),
        (lambda d: d["business"].update(email="front desk@clinic"), "email"),
        (lambda d: d["business"]["details"].update(email="desk@clinic.example"), "on the business itself"),
    ],
)
def test_invalid_configs_are_refused_with_a_clear_message(mutate, needle):
    data = example("clinic")
    mutate(data)
    with pytest.raises(ValidationError) as error:
        BusinessConfig.model_validate(data)
    assert needle in str(error.value)


@pytest.mark.parametrize("broken, expected", [
    ({"kind": "closed", "starts_at": "2026-12-01T09:00:00", "ends_at": "2026-12-01T10:00:00+00:00"}, "both with"),
    ({"kind": "closed", "date": "2026-12-01", "until": "2029-12-01"}, "at most 366 days"),
    ({"kind": "closed", "date": "9999-12-01"}, "must lie between"),
])
def test_exceptions_that_would_break_later_are_refused_when_the_config_is_read(broken, expected):
    with pytest.raises(ValidationError, match=expected):
        ExceptionConfig.model_validate(broken)


def test_a_requirement_listing_a_resource_twice_is_refused():
    with pytest.raises(ValidationError, match="twice"):
        RequirementConfig(label="doctor", one_of=["dr-a", "dr-a"])


@pytest.mark.parametrize("details, field", [
    ({"waitlist": {"offer_minutes": "ten"}}, "business.details.waitlist.offer_minutes"),
    ({"waitlist": {"offers_at_once": 0}}, "business.details.waitlist.offers_at_once"),
    ({"waitlist": {"offer_minute": 10}}, "business.details.waitlist.offer_minute"),
    ({"waitlist": 15}, "business.details.waitlist"),
    ({"phone": 442079460958}, "business.details.phone"),
    ({"address": ["12 Riverside Walk"]}, "business.details.address"),
])
def test_settings_in_details_the_code_cannot_read_are_refused_and_nothing_is_written(
        session_factory, details, field):
    from nextslot.storage.tables import Business

    data = example("clinic")
    data["business"]["details"].update(details)
    data["business"]["slug"] = f"refused-{uuid.uuid4().hex[:8]}"
    refused = apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(data))
    assert isinstance(refused, Rejected) and refused.code == "invalid_config"
    assert [p[0] for p in refused.problems] == [field]
    with session_factory() as s:
        assert s.scalars(select(Business).where(Business.slug == data["business"]["slug"])).all() == []


def test_details_may_carry_free_form_information_and_checked_settings(make_business, session_factory):
    from nextslot.storage.tables import Business

    clinic = make_business({**example("clinic"), "business": {**example("clinic")["business"], "details": {
        **example("clinic")["business"]["details"], "parking": "behind the building",
        "waitlist": {"offer_minutes": 10, "offers_at_once": 2}}}})
    with session_factory() as s:
        details = s.get(Business, clinic).details
    assert details["parking"] == "behind the building" and details["waitlist"] == {"offer_minutes": 10,
                                                                                   "offers_at_once": 2}
