"""How `apply_config` writes: a few statements whatever the business's size, only what changed rewritten, and a
capacity cut refused by name while the rest of the file waits."""
from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select

from nextslot.core.business.config import apply_config
from nextslot.core.business.config_export import export_config
from nextslot.core.results import Booked, Rejected
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.schemas.config import BusinessConfig
from nextslot.storage import queries
from nextslot.storage.tables import AvailabilityException, Resource, ServiceRequirement, WorkingHours
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import example

DAYS = ("mon", "tue", "wed", "thu", "fri")


def chain(resources: int, services: int) -> dict[str, Any]:
    """A business of `resources` people in two branches (one in another zone), each with time off, and `services`
    services, each needing one of three of them."""
    return {
        "business": {"slug": f"chain-{uuid.uuid4().hex[:8]}", "name": "Chain", "timezone": "Europe/London",
                     "country": "GB"},
        "hours": {d: ["09:00-17:00"] for d in DAYS},
        "locations": [{"key": "soho", "name": "Soho"}, {"key": "nyc", "name": "NYC", "timezone": "America/New_York"}],
        "resources": [{"key": f"r{i}", "name": f"R{i}", "kind": "staff", "location": ("soho", "nyc")[i % 2],
                       "exceptions": [{"kind": "closed", "date": "2027-01-04", "reason": "training"}]}
                      for i in range(resources)],
        "services": [{"key": f"s{i}", "name": f"S{i}", "duration": 30,
                      "requires": [{"label": "who", "one_of": [f"r{(i + k) % resources}" for k in range(3)]}]}
                     for i in range(services)],
        "closures": [{"kind": "closed", "date": "2026-12-25", "reason": "Christmas"}],
    }


@contextmanager
def counted(engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def applied(session_factory, data: dict[str, Any]) -> int:
    result = apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(data))
    assert not isinstance(result, Rejected), result
    return result.business_id


def row_ids(session_factory, business_id: int) -> dict[str, set[int]]:
    with session_factory() as s:
        return {
            "hours": set(s.scalars(select(WorkingHours.id).where(WorkingHours.business_id == business_id))),
            "exceptions": set(s.scalars(select(AvailabilityException.id)
                                        .where(AvailabilityException.business_id == business_id))),
            "requirements": set(s.scalars(select(ServiceRequirement.id)
                                          .where(ServiceRequirement.business_id == business_id))),
        }


def test_a_config_costs_the_same_statements_for_four_resources_as_for_forty(session_factory, engine):
    small, large = chain(4, 3), chain(40, 30)
    costs = []
    for data in (small, large):
        with counted(engine) as created:
            applied(session_factory, data)
        data["closures"].append({"kind": "closed", "date": "2027-01-01", "reason": "New Year"})
        with counted(engine) as updated:
            applied(session_factory, data)
        costs.append((len(created), len(updated)))
    assert costs[0] == costs[1], costs
    assert costs[1][1] < 40, costs


def test_the_same_config_again_rewrites_no_rows_and_keeps_every_kept_plan(session_factory):
    data = chain(6, 4)
    business = applied(session_factory, data)
    ids = row_ids(session_factory, business)
    with session_factory() as s:
        version = queries.config_version(s, business)
    applied(session_factory, copy.deepcopy(data))
    assert row_ids(session_factory, business) == ids
    with session_factory() as s:
        assert queries.config_version(s, business) == version


def test_an_edit_rewrites_only_what_it_changes_and_reads_back_as_given(session_factory):
    data = chain(6, 4)
    business = applied(session_factory, data)
    before = row_ids(session_factory, business)
    data["resources"][1]["hours"] = {"sat": ["10:00-12:00"]}
    data["resources"][2]["exceptions"] = []
    data["services"][3]["requires"][0]["one_of"].reverse()
    data["closures"].append({"kind": "closed", "date": "2027-01-01", "reason": "New Year"})
    applied(session_factory, data)

    after = row_ids(session_factory, business)
    assert len(before["hours"] - after["hours"]) == 5 and len(after["hours"] - before["hours"]) == 1  # r1's only
    assert len(after["requirements"] - before["requirements"]) == 1  # s3's
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        stored = export_config(uow, business)
    assert stored is not None
    resources = {r.key: r for r in stored.resources}
    assert resources["r1"].hours == {"sat": ["10:00-12:00"]} and resources["r0"].hours == {d: ["09:00-17:00"]
                                                                                            for d in DAYS}
    assert resources["r2"].exceptions == [] and len(resources["r3"].exceptions) == 1
    assert stored.services[3].requires[0].one_of == ["r5", "r4", "r3"]
    assert [c.reason for c in stored.closures] == ["Christmas", "New Year"]
    with session_factory() as s:  # each closure also copied for the New York branch, on its own calendar
        copies = s.scalars(select(AvailabilityException).where(
            AvailabilityException.business_id == business, AvailabilityException.zone == "America/New_York")).all()
    assert sorted(c.starts_at for c in copies) == [datetime(2026, 12, 25, 5, tzinfo=UTC),
                                                   datetime(2027, 1, 1, 5, tzinfo=UTC)]


def test_a_refused_capacity_cut_names_its_resource_and_writes_nothing(session_factory, service):
    data = example("garage")
    data["business"]["slug"] = f"garage-{uuid.uuid4().hex[:8]}"
    van = next(r for r in data["resources"] if r["key"] == "van")
    van["capacity"] = 2
    garage = applied(session_factory, data)
    start = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York: two cars in the bay
    for n in range(2):
        booked = service.book(garage, BookingCreate(service="tyre-swap", starts_at=start,
                                                    customer=CustomerIn(name=f"Driver {n}", phone=f"+1212555013{n}")))
        assert isinstance(booked, Booked), booked

    van["capacity"] = 1  # free: this cut alone would hold
    next(r for r in data["resources"] if r["key"] == "service-bay")["capacity"] = 1
    refused = apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(data))
    assert isinstance(refused, Rejected) and refused.code == "capacity_below_bookings"
    assert refused.message.startswith("service-bay ") and refused.field == "resources.capacity"
    with session_factory() as s:
        capacities = dict(s.execute(select(Resource.key, Resource.capacity).where(Resource.business_id == garage)
                                    .where(Resource.key.in_(["van", "service-bay"]))).all())
    assert capacities == {"van": 2, "service-bay": 3}
