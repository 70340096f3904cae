"""The database's own guarantee, with raw SQL: no Python code between the insert and the rule.

Every claim here is written by hand (`INSERT INTO claims ...`), so these tests prove that the
exclusion constraint and the guard triggers refuse a double-booking whatever the caller does.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.migrate import alembic_config, upgrade

pytestmark = pytest.mark.storage

EXCLUSION_VIOLATION = "23P01"
INSUFFICIENT_PRIVILEGE = "42501"
T9 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # raw claims ignore opening hours; any instant will do


def at(minutes: int) -> datetime:
    """T9 plus some minutes: at(30) is 9:30."""
    return T9 + timedelta(minutes=minutes)


@dataclass
class Calendar:
    """One fresh business, its resource ids, and a hold row that owns every raw claim."""

    engine: Engine
    business_id: int
    resources: dict[str, int]
    hold_id: int

    def claim(self, key: str, start: int, end: int, *, active: bool = True, exclusive: bool = True) -> int:
        """Insert a claim with raw SQL in its own transaction; minutes from 9:00."""
        with self.engine.begin() as conn:
            return conn.execute(
                text("insert into claims (business_id, resource_id, hold_id, during, active, exclusive) "
                     "values (:b, :r, :h, tstzrange(:s, :e), :active, :exclusive) returning id"),
                dict(b=self.business_id, r=self.resources[key], h=self.hold_id, s=at(start), e=at(end),
                     active=active, exclusive=exclusive),
            ).scalar_one()

    def refused(self, statement: str, **params) -> str:
        """Run a statement that must fail; return its SQLSTATE."""
        with pytest.raises(DBAPIError) as caught, self.engine.begin() as conn:
            conn.execute(text(statement), params)
        return caught.value.orig.sqlstate

    def claim_refused(self, key: str, start: int, end: int, **flags) -> str:
        with pytest.raises(IntegrityError) as caught:
            self.claim(key, start, end, **flags)
        return caught.value.orig.sqlstate

    def set_capacity(self, key: str, capacity: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("update resources set capacity = :c where id = :r"),
                         dict(c=capacity, r=self.resources[key]))

    def row(self, claim_id: int) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(text("select active, exclusive from claims where id = :i"),
                                     dict(i=claim_id)).mappings().one())

    def active_claims(self, key: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("select count(*) from claims where resource_id = :r and active"),
                                dict(r=self.resources[key])).scalar_one()


def calendar_for(engine: Engine, business_id: int) -> Calendar:
    with engine.begin() as conn:
        resources = dict(conn.execute(text("select key, id from resources where business_id = :b"),
                                      dict(b=business_id)).all())
        service_id = conn.execute(text("select min(id) from services where business_id = :b"),
                                  dict(b=business_id)).scalar_one()
        hold_id = conn.execute(
            text("insert into holds (business_id, service_id, starts_at, ends_at, expires_at, status, source) "
                 "values (:b, :s, :t, :t + interval '1 hour', :t + interval '1 day', 'active', 'test') "
                 "returning id"),
            dict(b=business_id, s=service_id, t=T9),
        ).scalar_one()
    return Calendar(engine, business_id, resources, hold_id)


@pytest.fixture
def clinic(engine, make_business) -> Calendar:
    return calendar_for(engine, make_business("clinic"))


@pytest.fixture
def garage(engine, make_business) -> Calendar:
    """The garage's service-bay has capacity 3."""
    return calendar_for(engine, make_business("garage"))


# --- capacity 1: the exclusion constraint ---------------------------------------------------------


@pytest.mark.parametrize("exclusive", [True, False])
def test_raw_insert_overlapping_an_active_claim_on_a_single_resource_is_refused(clinic, exclusive):
    clinic.claim("dr-patel", 0, 30)
    assert clinic.claim_refused("dr-patel", 15, 45, exclusive=exclusive) == EXCLUSION_VIOLATION
    assert clinic.claim_refused("dr-patel", 0, 30, exclusive=exclusive) == EXCLUSION_VIOLATION
    assert clinic.claim_refused("dr-patel", -60, 120, exclusive=exclusive) == EXCLUSION_VIOLATION
    assert clinic.active_claims("dr-patel") == 1


def test_the_guard_sets_exclusive_from_the_capacity_whatever_the_insert_says(clinic, garage):
    assert clinic.row(clinic.claim("dr-patel", 0, 30, exclusive=False))["exclusive"] is True
    assert garage.row(garage.claim("service-bay", 0, 30, exclusive=True))["exclusive"] is False


def test_back_to_back_claims_on_a_single_resource_do_not_collide(clinic):
    clinic.claim("dr-patel", 0, 30)
    clinic.claim("dr-patel", 30, 60)
    clinic.claim("dr-patel", -30, 0)
    assert clinic.active_claims("dr-patel") == 3


def test_another_resource_at_the_same_time_is_not_blocked(clinic):
    clinic.claim("dr-patel", 0, 30)
    clinic.claim("room-1", 0, 30)
    clinic.claim("dr-okafor", 0, 30)
    assert clinic.active_claims("dr-patel") == clinic.active_claims("room-1") == 1


def test_an_inactive_claim_does_not_block_but_cannot_be_reactivated_over_a_live_one(clinic):
    old = clinic.claim("dr-patel", 0, 30, active=False)
    live = clinic.claim("dr-patel", 0, 30)
    assert clinic.row(live)["active"] is True
    assert clinic.refused("update claims set active = true where id = :i", i=old) == EXCLUSION_VIOLATION
    with clinic.engine.begin() as conn:  # releasing the live claim frees the time for the old one
        conn.execute(text("update claims set active = false where id = :i"), dict(i=live))
        conn.execute(text("update claims set active = true where id = :i"), dict(i=old))
    assert clinic.active_claims("dr-patel") == 1


def test_moving_a_claim_onto_a_taken_interval_with_update_is_refused(clinic):
    clinic.claim("dr-patel", 0, 30)
    later = clinic.claim("dr-patel", 60, 90)
    assert clinic.refused("update claims set during = tstzrange(:s, :e) where id = :i",
                          s=at(20), e=at(50), i=later) == EXCLUSION_VIOLATION
    assert clinic.refused("update claims set resource_id = :r, during = tstzrange(:s, :e) where id = :i",
                          r=clinic.resources["dr-patel"], s=at(10), e=at(20), i=later) == EXCLUSION_VIOLATION


# --- capacity > 1: the guard trigger checks the peak ----------------------------------------------


def test_a_capacity_three_resource_takes_three_overlapping_claims_and_refuses_a_fourth(garage):
    for _ in range(3):
        garage.claim("service-bay", 0, 60)
    assert garage.claim_refused("service-bay", 30, 90) == EXCLUSION_VIOLATION
    assert garage.claim_refused("service-bay", 59, 60, exclusive=True) == EXCLUSION_VIOLATION
    garage.claim("service-bay", 60, 120)  # back to back with a full bay is fine
    garage.claim("service-bay", -30, 0)
    assert garage.active_claims("service-bay") == 5


def test_the_peak_not_the_number_of_overlapping_claims_decides(garage):
    # two cars 9:00-9:30 and two cars 9:30-10:00: never more than two at once
    for start, end in [(0, 30), (0, 30), (30, 60), (30, 60)]:
        garage.claim("service-bay", start, end)
    # 9:00-10:00 overlaps four claims, but the peak with it is 3: allowed
    garage.claim("service-bay", 0, 60)
    # now 9:00-9:30 and 9:30-10:00 both hold three cars: any claim touching either is refused
    assert garage.claim_refused("service-bay", 15, 45) == EXCLUSION_VIOLATION
    assert garage.claim_refused("service-bay", 45, 75) == EXCLUSION_VIOLATION
    assert garage.claim_refused("service-bay", -10, 5) == EXCLUSION_VIOLATION
    garage.claim("service-bay", 60, 90)
    assert garage.active_claims("service-bay") == 6


def test_the_peak_is_found_at_a_later_start_inside_the_new_claim(garage):
    garage.claim("service-bay", 0, 20)   # one car early on
    garage.claim("service-bay", 40, 60)  # two cars later
    garage.claim("service-bay", 40, 60)
    garage.claim("service-bay", 10, 50)  # at 9:10 two cars, at 9:40 three: allowed
    # starts at 9:30 where only one car stands, but at 9:40 it would be the fourth
    assert garage.claim_refused("service-bay", 30, 45) == EXCLUSION_VIOLATION
    garage.claim("service-bay", 20, 40)  # 9:20-9:40 holds two at most
    assert garage.active_claims("service-bay") == 5


def test_inactive_claims_do_not_count_towards_the_peak_and_cannot_be_reactivated_into_it(garage):
    parked = [garage.claim("service-bay", 0, 60, active=False) for _ in range(3)]
    for _ in range(3):
        garage.claim("service-bay", 0, 60)
    assert garage.refused("update claims set active = true where id = :i", i=parked[0]) == EXCLUSION_VIOLATION
    assert garage.active_claims("service-bay") == 3


def test_moving_a_claim_into_a_full_interval_of_a_shared_resource_is_refused(garage):
    for _ in range(3):
        garage.claim("service-bay", 0, 60)
    outside = garage.claim("service-bay", 60, 120)
    assert garage.refused("update claims set during = tstzrange(:s, :e) where id = :i",
                          s=at(30), e=at(90), i=outside) == EXCLUSION_VIOLATION
    # moving within its own time (it no longer overlaps itself) is fine
    with garage.engine.begin() as conn:
        conn.execute(text("update claims set during = tstzrange(:s, :e) where id = :i"),
                     dict(s=at(60), e=at(100), i=outside))


def test_claims_must_be_half_open_so_unusual_bounds_cannot_dodge_the_peak_count(garage):
    # a '(]' range is never counted at its own start; the database refuses such claims outright
    for bounds in ("(]", "[]", "()"):
        assert garage.refused(
            "insert into claims (business_id, resource_id, hold_id, during, active, exclusive) "
            f"values (:b, :r, :h, tstzrange(:s, :e, '{bounds}'), true, false)",
            b=garage.business_id, r=garage.resources["service-bay"], h=garage.hold_id, s=at(0), e=at(30),
        ) == "23514"  # check_violation


# --- capacity changes -----------------------------------------------------------------------------


def test_lowering_capacity_to_one_under_overlapping_claims_is_refused(garage):
    garage.claim("service-bay", 0, 60)
    garage.claim("service-bay", 30, 90)
    assert garage.refused("update resources set capacity = 1 where id = :r",
                          r=garage.resources["service-bay"]) == EXCLUSION_VIOLATION
    with garage.engine.connect() as conn:
        assert conn.execute(text("select capacity from resources where id = :r"),
                            dict(r=garage.resources["service-bay"])).scalar_one() == 3


def test_lowering_capacity_below_the_peak_is_refused_but_down_to_the_peak_works(garage):
    for _ in range(3):
        garage.claim("service-bay", 0, 60)
    garage.claim("service-bay", 60, 120)
    garage.claim("service-bay", 60, 120)
    bay = garage.resources["service-bay"]
    assert garage.refused("update resources set capacity = 2 where id = :r", r=bay) == EXCLUSION_VIOLATION
    assert garage.refused("update resources set capacity = 0 where id = :r", r=bay) == "23514"  # check
    with garage.engine.begin() as conn:  # one car leaves 9:00-10:00: the peak is now 2
        conn.execute(text("update claims set active = false where id = (select min(id) from claims "
                          "where resource_id = :r and active)"), dict(r=bay))
    garage.set_capacity("service-bay", 2)
    assert garage.claim_refused("service-bay", 0, 30) == EXCLUSION_VIOLATION


def test_lowering_capacity_to_one_without_overlaps_puts_claims_under_the_exclusion_constraint(garage):
    first = garage.claim("service-bay", 0, 30)
    garage.claim("service-bay", 30, 60)
    garage.set_capacity("service-bay", 1)
    assert garage.row(first)["exclusive"] is True
    assert garage.claim_refused("service-bay", 10, 20) == EXCLUSION_VIOLATION


def test_raising_capacity_from_one_to_three_allows_overlaps(clinic):
    first = clinic.claim("room-1", 0, 60)
    assert clinic.claim_refused("room-1", 0, 60) == EXCLUSION_VIOLATION
    clinic.set_capacity("room-1", 3)
    assert clinic.row(first)["exclusive"] is False
    clinic.claim("room-1", 0, 60)
    clinic.claim("room-1", 30, 90)
    assert clinic.claim_refused("room-1", 45, 50) == EXCLUSION_VIOLATION
    assert clinic.active_claims("room-1") == 3


# --- history and migrations -----------------------------------------------------------------------


def test_booking_history_refuses_update_delete_and_truncate(clinic, service):
    result = service.book(clinic.business_id, BookingCreate(
        service="consultation", starts_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        customer=CustomerIn(name="Ada", phone="+447911123401"),
    ))
    assert isinstance(result, Booked)
    booking = result.booking.id
    assert clinic.refused("update booking_history set note = 'edited' where booking_id = :b",
                          b=booking) == INSUFFICIENT_PRIVILEGE
    assert clinic.refused("delete from booking_history where booking_id = :b", b=booking) == INSUFFICIENT_PRIVILEGE
    with pytest.raises(DBAPIError) as caught, clinic.engine.begin() as conn:
        conn.execute(text("set local lock_timeout = '5s'"))
        conn.execute(text("truncate booking_history"))
    assert caught.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE
    with clinic.engine.connect() as conn:
        rows = conn.execute(text("select action, note from booking_history where booking_id = :b"),
                            dict(b=booking)).all()
    assert [tuple(r) for r in rows] == [("created", "")]


CATALOG = {
    "tables": "select tablename from pg_tables where schemaname = 'public'",
    "indexes": "select indexname || ': ' || indexdef from pg_indexes where schemaname = 'public'",
    "constraints": "select conrelid::regclass || '.' || conname || ': ' || pg_get_constraintdef(oid) "
                   "from pg_constraint where connamespace = 'public'::regnamespace",
    "triggers": "select tgrelid::regclass || '.' || tgname from pg_trigger where not tgisinternal",
    "functions": "select proname || ': ' || md5(prosrc) from pg_proc where pronamespace = 'public'::regnamespace",
    "revision": "select version_num from alembic_version",
    "claims": "select count(*)::text from claims",
}


def catalog(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {name: sorted(str(v) for v in conn.execute(text(query)).scalars()) for name, query in CATALOG.items()}


def test_running_the_migrations_again_is_a_no_op(clinic, engine, database_url):
    clinic.claim("dr-patel", 0, 30)
    before = catalog(engine)
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert before["revision"] == [head] and "claims" in before["tables"]
    assert any(t.endswith("claims_guard") for t in before["triggers"])
    upgrade(database_url)
    assert catalog(engine) == before
    assert clinic.claim_refused("dr-patel", 10, 20) == EXCLUSION_VIOLATION
