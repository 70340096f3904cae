"""Pooled services under races: "taken" only when no combination of pool members could take the start.

A service needing "any free doctor + any free room" has room for as many bookings at one start as
there are disjoint (doctor, room) pairs. Racers all see the same first free pair; those who meet a
winner's claim must look again at what is committed and take the members still free.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text

from nextslot.core.results import Booked, Held, SlotTaken
from nextslot.schemas.commands import BookingCreate, BookingReschedule, CustomerIn, HoldCreate, SlotQuery
from nextslot.storage.claims import ClaimRepository
from nextslot.storage.tables import Hold
from tests.storage.test_races import (
    MON_9,
    NOW,
    assert_invariant,
    assert_offered_slots_are_free_now,
    book_job,
    flat,
    of_type,
    phone,
    race,
    resource_ids,
)

pytestmark = pytest.mark.storage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MON_10 = MON_9 + timedelta(hours=1)  # both clinic doctors work from 10:00 on Mondays


def roomy_clinic() -> dict[str, Any]:
    """The example clinic with four doctors and rooms for four at once (two single rooms, one double)."""
    config = yaml.safe_load((EXAMPLES / "clinic.yaml").read_text())
    config["resources"] += [
        {"key": "dr-lee", "name": "Dr Mei Lee", "kind": "staff"},
        {"key": "dr-ng", "name": "Dr Sam Ng", "kind": "staff"},
        {"key": "suite", "name": "Double suite", "kind": "room", "capacity": 2},
    ]
    consultation = next(s for s in config["services"] if s["key"] == "consultation")
    consultation["requires"] = [
        {"label": "doctor", "one_of": ["dr-patel", "dr-okafor", "dr-lee", "dr-ng"]},
        {"label": "room", "one_of": ["room-1", "room-2", "suite"]},
    ]
    return config


def open_at(service, business_id: int, key: str, start) -> bool:
    found = service.find_slots(business_id, SlotQuery(service=key, starts_from=start,
                                                      until=start + timedelta(minutes=1)))
    return any(s.starts_at.utc == start for s in found.slots)


def test_racers_for_a_pooled_service_fill_every_free_pair_and_losers_are_told_the_truth(
    engine, database_url, make_business, service
):
    clinic = make_business(roomy_clinic())
    jobs = []
    for n in range(16):  # bookings, holds and holds turned into bookings, all for Monday 10:00
        op = ("book", "hold", "hold_then_book", "book")[n % 4]
        jobs.append([book_job(clinic, "consultation", MON_10, n) | {"op": op}])
    outcomes = flat(race(engine, database_url, jobs))

    first = [o for o in outcomes if o["op"] != "convert"]
    won, lost = [o for o in first if o["type"] in ("Booked", "Held")], of_type(first, "SlotTaken")
    assert len(won) == 4 and len(lost) == 12, [o["type"] for o in first]
    assert all(o["type"] == "Booked" for o in outcomes if o["op"] == "convert")
    doctors = [o["resources"][0] for o in won]
    assert sorted(doctors) == ["dr-lee", "dr-ng", "dr-okafor", "dr-patel"]
    rooms = sorted(o["resources"][1] for o in won)
    assert rooms == ["room-1", "room-2", "suite", "suite"]
    assert not [o for o in lost if o["open_after"]], "a loser was told 'taken' while a pair was free"
    assert not open_at(service, clinic, "consultation", MON_10)
    assert_offered_slots_are_free_now(service, engine, clinic, lost)
    assert_invariant(engine, clinic)


def test_reschedules_into_a_pooled_start_take_the_pairs_still_free(engine, database_url, make_business, service):
    clinic = make_business(roomy_clinic())
    codes = []
    for n in range(6):  # six bookings spread over the afternoon, all racing into Monday 10:00
        made = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_10 + timedelta(hours=4, minutes=15 * n),
                                                  customer=CustomerIn(name="Mover", phone=phone(500 + n))))
        assert isinstance(made, Booked), made
        codes.append(made.booking.code)
    jobs = [[dict(op="reschedule", business=clinic, service="consultation", code=c, starts_at=MON_10.isoformat())]
            for c in codes]
    jobs += [[book_job(clinic, "consultation", MON_10, n)] for n in range(4)]
    outcomes = flat(race(engine, database_url, jobs))

    won, lost = of_type(outcomes, "Booked"), of_type(outcomes, "SlotTaken")
    assert len(won) == 4 and len(lost) == 6, [o["type"] for o in outcomes]
    assert not [o for o in lost if o["open_after"]]
    assert not open_at(service, clinic, "consultation", MON_10)
    assert_invariant(engine, clinic)


def racing(session_factory, engine: Engine, business_id: int, keys: list[str], call) -> Any:
    """Run `call` while a racer holds `keys` for Monday 10:00, uncommitted, with the resource rows locked as
    every claimer does; the racer commits once the call queues behind it. The call's result."""
    ids = resource_ids(engine, business_id)
    racer = session_factory()
    with racer, ThreadPoolExecutor(1) as pool:
        service_id = racer.execute(text("select id from services where business_id = :b and key = 'consultation'"),
                                   {"b": business_id}).scalar_one()
        hold = Hold(business_id=business_id, service_id=service_id, starts_at=MON_10,
                    ends_at=MON_10 + timedelta(minutes=20), expires_at=NOW + timedelta(hours=1), status="active",
                    source="test")
        racer.add(hold)
        racer.flush()
        assert ClaimRepository(racer).claim_all(business_id, [ids[k] for k in keys],
                                                 (MON_10, MON_10 + timedelta(minutes=25)), NOW, hold_id=hold.id,
                                                 expires_at=hold.expires_at)
        answer = pool.submit(call)
        wait_until_blocked(engine)
        racer.commit()
        return answer.result(timeout=30)


@pytest.mark.parametrize("operation", ["book", "hold", "reschedule"])
def test_a_claim_meeting_a_racers_committed_claim_takes_the_colleague_still_free(
    engine, session_factory, make_business, service, operation
):
    # Stage the race exactly: a racer holds Dr Patel and room 1 for 10:00. Our caller sees both free, picks
    # them, queues on the locks; the racer commits. Dr Okafor and room 2 are still free, so the caller gets them.
    clinic = make_business("clinic")
    code = None
    if operation == "reschedule":
        made = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_10 + timedelta(hours=5),
                                                  customer=CustomerIn(name="Mover", phone=phone(2))))
        code = made.booking.code
    customer = CustomerIn(name="Caller", phone=phone(1))
    call = {
        "book": lambda: service.book(clinic, BookingCreate(service="consultation", starts_at=MON_10,
                                                           customer=customer)),
        "hold": lambda: service.hold(clinic, HoldCreate(service="consultation", starts_at=MON_10)),
        "reschedule": lambda: service.reschedule(clinic, BookingReschedule(code=code, starts_at=MON_10)),
    }[operation]
    result = racing(session_factory, engine, clinic, ["dr-patel", "room-1"], call)
    assert isinstance(result, Booked | Held), result
    view = result.booking if isinstance(result, Booked) else result.hold
    assert sorted(r.key for r in view.resources) == ["dr-okafor", "room-2"]
    assert_invariant(engine, clinic)


def test_a_claim_meeting_the_last_free_pair_taken_answers_taken_with_openings(
    engine, session_factory, make_business, service
):
    clinic = make_business("clinic")
    first = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_10,
                                               customer=CustomerIn(name="First", phone=phone(3))))
    assert sorted(r.key for r in first.booking.resources) == ["dr-patel", "room-1"]
    result = racing(session_factory, engine, clinic, ["dr-okafor", "room-2"], lambda: service.book(
        clinic, BookingCreate(service="consultation", starts_at=MON_10, customer=CustomerIn(name="Late", phone=phone(4)))))
    assert isinstance(result, SlotTaken) and result.alternatives, result
    assert not open_at(service, clinic, "consultation", MON_10)
    assert_invariant(engine, clinic)


def wait_until_blocked(engine: Engine) -> None:
    """Return once some backend of this database waits on a lock (our caller queued behind the racer)."""
    with engine.connect() as watcher:
        for _ in range(200):
            if watcher.execute(text("select count(*) from pg_stat_activity where datname = current_database()"
                                    " and wait_event_type = 'Lock'")).scalar_one():
                return
            watcher.rollback()
            time.sleep(0.05)
    pytest.fail("the caller never queued behind the racer's claim")


def test_turning_a_hold_into_a_booking_queues_behind_a_claimer_of_its_resources(
    engine, session_factory, make_business, service
):
    # Changing a live claim re-checks the exclusion constraint, as inserting one does: without the resource
    # locks every claimer takes first, a conversion and a racer's clashing insert each waited for the other
    # (PostgreSQL's deadlock detector then failed one of them with an error instead of an answer)
    clinic = make_business("clinic")
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=MON_10))
    assert isinstance(held, Held), held
    ids = resource_ids(engine, clinic)
    racer = session_factory()
    with racer, ThreadPoolExecutor(1) as pool:
        racer.execute(text("select id from resources where id = any(:ids) order by id for no key update"),
                      {"ids": [ids[r.key] for r in held.hold.resources]})
        answer = pool.submit(lambda: service.book(clinic, BookingCreate(
            service="consultation", starts_at=MON_10, hold_id=held.hold.id,
            customer=CustomerIn(name="Holder", phone=phone(3)))))
        wait_until_blocked(engine)
        racer.commit()
        booked = answer.result(timeout=30)
    assert isinstance(booked, Booked), booked
    assert sorted(r.key for r in booked.booking.resources) == sorted(r.key for r in held.hold.resources)
    assert_invariant(engine, clinic)
