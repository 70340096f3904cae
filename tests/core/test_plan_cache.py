"""Cached plans: one version read when nothing changed, and never a stale plan after any edit, from any process
(the version moves in the editing transaction itself, by database triggers)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, select, text

from nextslot.core.booking.availability import WeeklyHours
from nextslot.core.config_versions import known_version
from nextslot.core.planning import PLANS, Plan, load_plan
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.tables import WebhookDelivery
from nextslot.storage.uow import SqlAlchemyUnitOfWork

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the clinic's (London) Monday; the test clock is 08:00


def plan_of(session_factory, business_id: int, service: str = "consultation", resources=()) -> Plan:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        plan = load_plan(uow, business_id, service, resources)
    assert isinstance(plan, Plan), plan
    return plan


def edit(session_factory, sql: str, **params) -> None:
    """An edit as any other process would make it: plain SQL on its own connection, committed."""
    with session_factory() as s:
        s.execute(text(sql), params)
        s.commit()


def test_a_cached_plan_costs_one_version_read(make_business, session_factory, engine):
    clinic = make_business("clinic")
    first = plan_of(session_factory, clinic)
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        again = plan_of(session_factory, clinic)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert again is first
    assert len(seen) == 1 and "config_version" in seen[0]


def test_every_kind_of_configuration_edit_reaches_the_next_plan(make_business, session_factory):
    clinic = make_business("clinic")
    before = plan_of(session_factory, clinic)
    assert before.rules.duration.total_seconds() == 20 * 60

    edit(session_factory, "update services set duration_minutes = 55 where business_id = :b and key = 'consultation'",
         b=clinic)
    assert plan_of(session_factory, clinic).rules.duration.total_seconds() == 55 * 60

    patel = before.groups[0][0]
    edit(session_factory, "delete from working_hours where resource_id = :r", r=patel.id)
    edit(session_factory, "insert into working_hours (business_id, resource_id, weekday, start_minute, end_minute)"
                          " values (:b, :r, 2, 600, 660)", b=clinic, r=patel.id)
    assert plan_of(session_factory, clinic).weekly[patel.id] == (WeeklyHours(2, 600, 660),)

    edit(session_factory, "update resources set capacity = 2 where id = :r", r=patel.id)
    assert plan_of(session_factory, clinic).resources[patel.id].capacity == 2

    edit(session_factory, "update resources set active = false where id = :r", r=patel.id)
    assert patel.id not in plan_of(session_factory, clinic).resources

    edit(session_factory, "update businesses set timezone = 'America/New_York' where id = :b", b=clinic)
    assert plan_of(session_factory, clinic).business.zone.key == "America/New_York"

    requirement = "select id from service_requirements where service_id = :s order by position limit 1"
    edit(session_factory, f"delete from requirement_members where requirement_id = ({requirement})"
                          " and resource_id = :r", s=before.service_id, r=before.groups[0][-1].id)
    assert before.groups[0][-1].id not in {r.id for r in plan_of(session_factory, clinic).groups[0]}


def test_an_edit_of_one_business_leaves_another_business_plans_cached(make_business, session_factory):
    one, other = make_business("clinic"), make_business("clinic")
    kept = plan_of(session_factory, other)
    edit(session_factory, "update services set duration_minutes = 40 where business_id = :b", b=one)
    assert plan_of(session_factory, other) is kept


def test_a_rolled_back_edit_keeps_the_plan(make_business, session_factory):
    clinic = make_business("clinic")
    kept = plan_of(session_factory, clinic)
    with session_factory() as s:
        s.execute(text("update services set duration_minutes = 5 where business_id = :b"), {"b": clinic})
        s.rollback()
    assert plan_of(session_factory, clinic) is kept


def test_the_cache_forgets_the_least_recently_used_plans_beyond_its_size(make_business, session_factory):
    clinic = make_business("clinic")
    size = PLANS.size
    PLANS.size = 1
    try:
        consult = plan_of(session_factory, clinic, "consultation")
        plan_of(session_factory, clinic, "ultrasound")
        assert plan_of(session_factory, clinic, "consultation") is not consult
    finally:
        PLANS.size = size


def test_an_endpoint_added_or_stopped_elsewhere_gets_the_next_booking_events_or_not(make_business, service,
                                                                                    session_factory):
    clinic = make_business("clinic")

    def book(n: int) -> int:
        result = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_9 + timedelta(hours=n + 2),
                                                    customer=CustomerIn(name="Ann Lee", phone="+447911123401")))
        assert isinstance(result, Booked), result
        with session_factory() as s:
            return s.scalar(select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.business_id == clinic, WebhookDelivery.event_type == "booking.created"))

    assert book(0) == 0  # no endpoint yet: this process now remembers that
    edit(session_factory, "insert into webhook_endpoints (business_id, url, secret, event_types, active)"
                          " values (:b, 'https://example.test/hook', 's3cret', '[\"*\"]', true)", b=clinic)
    assert book(1) == 1
    edit(session_factory, "update webhook_endpoints set active = false where business_id = :b", b=clinic)
    assert book(2) == 1


def test_a_version_read_is_trusted_only_in_its_own_transaction(make_business, session_factory):
    clinic = make_business("clinic")
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert isinstance(load_plan(uow, clinic, "consultation"), Plan)
        assert known_version(uow, clinic) is not None
        uow.commit()  # a later transaction of this session must read the version again
        assert known_version(uow, clinic) is None


def test_a_branch_edit_reaches_the_plans_of_its_resources(make_business, session_factory):
    clinic = make_business("clinic")
    patel = plan_of(session_factory, clinic).groups[0][0]
    edit(session_factory, "insert into locations (business_id, key, name, timezone, active)"
                          " values (:b, 'north', 'North branch', 'Europe/Dublin', true)", b=clinic)
    edit(session_factory, "update resources set location_id = (select id from locations where business_id = :b)"
                          " where id = :r", b=clinic, r=patel.id)
    assert plan_of(session_factory, clinic).resources[patel.id].zone.key == "Europe/Dublin"
    edit(session_factory, "update locations set timezone = 'Europe/Lisbon' where business_id = :b", b=clinic)
    assert plan_of(session_factory, clinic).resources[patel.id].zone.key == "Europe/Lisbon"


def test_the_kept_service_list_follows_every_edit_of_what_it_shows(make_business, session_factory, service):
    """The booking pages' service list is kept per process like plans; an edit from anywhere shows at once."""
    clinic = make_business("clinic")

    def consultation():
        return next(s for s in service.list_services(clinic) if s.key == "consultation")

    assert consultation().staff == ["Dr Asha Patel", "Dr Femi Okafor"] and consultation() is consultation()
    edit(session_factory, "update services set name = 'GP visit' where business_id = :b and key = 'consultation'",
         b=clinic)
    assert consultation().name == "GP visit"
    edit(session_factory, "update resources set active = false where business_id = :b and key = 'dr-okafor'",
         b=clinic)
    assert consultation().staff == ["Dr Asha Patel"]
    edit(session_factory, "update services set active = false where business_id = :b and key = 'ultrasound'",
         b=clinic)
    assert [s.key for s in service.list_services(clinic)] == ["consultation"]


def test_a_pages_business_and_services_cost_one_statement_once_kept_and_follow_every_edit(
        make_business, session_factory, service, engine):
    """What a booking page reads first (`business_offer`): the business's row carries the version its services are
    kept under, so a page view sends that one statement, outside a transaction, and still sees an edit at once."""
    clinic = make_business("clinic")
    slug = service.business_by_id(clinic).slug
    business, services = service.business_offer(slug)
    assert business.id == clinic and [s.key for s in services] == [s.key for s in service.list_services(clinic)]
    seen: list[tuple[str, bool]] = []

    def count(conn, cursor, statement, *args):
        seen.append((statement, not conn.connection.dbapi_connection.autocommit))

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert service.business_offer(slug) == (business, services)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(seen) == 1 and "config_version" in seen[0][0] and not seen[0][1], seen
    edit(session_factory, "update services set name = 'GP visit' where business_id = :b and key = 'consultation'",
         b=clinic)
    assert next(s for s in service.business_offer(slug)[1] if s.key == "consultation").name == "GP visit"
    assert service.business_offer("no-such-business") is None
