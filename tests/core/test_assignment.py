"""Fair assignment for pooled staff: least booked (day, week), round robin and weighted pick from committed state,
deterministically; a named preference wins; racers for one start still take different members."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from nextslot.core.results import Booked, SlotTaken
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.schemas.config import BusinessConfig
from tests.storage.test_races import book_job, flat, race

TUESDAY_9 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # London = UTC in winter; the clock says Monday 08:00


def salon(strategy: str | None, weights: dict | None = None) -> dict:
    assignment = {"strategy": strategy, **({"weights": weights} if weights else {})} if strategy else None
    return {
        "business": {"slug": "salon", "name": "Salon", "timezone": "Europe/London", "country": "GB"},
        "hours": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "resources": [{"key": k, "name": k.title(), "kind": "staff"} for k in ("ana", "ben", "cat")],
        "services": [
            {"key": "cut", "name": "Cut", "duration": 30, "step": 30, "min_notice": 0,
             "requires": [{"label": "stylist", "one_of": ["ana", "ben", "cat"]}],
             **({"assignment": assignment} if assignment else {})},
            {"key": "colour", "name": "Colour", "duration": 60, "step": 30, "min_notice": 0,
             "requires": [{"label": "stylist", "one_of": ["ana", "ben", "cat"]}]},
        ],
    }


def book(service, business, start, n, key="cut", resources=()):
    result = service.book(business, BookingCreate(
        service=key, starts_at=start, resources=list(resources),
        customer=CustomerIn(name=f"Guest {n}", phone=f"+44791112{(5000 + n):04d}")))
    assert isinstance(result, Booked), result
    return result.booking.resources[0].key


def test_first_free_keeps_listed_order(service, make_business):
    business = make_business(salon(None))
    picks = [book(service, business, TUESDAY_9 + timedelta(hours=h), h) for h in range(3)]
    assert picks == ["ana", "ana", "ana"]


def test_least_booked_in_the_day_spreads_bookings_and_counts_every_service(service, make_business):
    business = make_business(salon("least_booked_day"))
    assert book(service, business, TUESDAY_9, 1, key="colour", resources=["ana"]) == "ana"  # another service
    picks = [book(service, business, TUESDAY_9 + timedelta(hours=h), 10 + h) for h in range(1, 6)]
    assert picks == ["ben", "cat", "ana", "ben", "cat"]
    assert Counter(picks + ["ana"]) == {"ana": 2, "ben": 2, "cat": 2}
    # another day starts afresh: listed order breaks the tie
    assert book(service, business, TUESDAY_9 + timedelta(days=1), 20) == "ana"


def test_least_booked_in_the_week_looks_across_its_days(service, make_business):
    business = make_business(salon("least_booked_week"))
    book(service, business, TUESDAY_9, 1, resources=["ana"])
    book(service, business, TUESDAY_9 + timedelta(days=1), 2, resources=["ben"])
    assert book(service, business, TUESDAY_9 + timedelta(days=2), 3) == "cat"
    assert book(service, business, TUESDAY_9 + timedelta(days=7), 4) == "ana"  # a new week


def test_round_robin_rotates_by_who_got_the_service_longest_ago(service, make_business):
    business = make_business(salon("round_robin"))
    picks = [book(service, business, TUESDAY_9 + timedelta(hours=h), 30 + h) for h in range(5)]
    assert picks == ["ana", "ben", "cat", "ana", "ben"]


def test_weighted_gives_members_bookings_in_proportion(service, make_business):
    business = make_business(salon("weighted", {"ana": 2}))
    picks = [book(service, business, TUESDAY_9 + timedelta(minutes=30 * i), 40 + i) for i in range(8)]
    assert Counter(picks) == {"ana": 4, "ben": 2, "cat": 2}


def test_a_named_preference_wins_and_a_busy_fair_pick_gives_way_to_the_next(service, make_business):
    business = make_business(salon("least_booked_day"))
    assert book(service, business, TUESDAY_9, 50, resources=["ana"]) == "ana"
    assert book(service, business, TUESDAY_9 + timedelta(hours=1), 51, resources=["ana"]) == "ana"  # wanted
    assert book(service, business, TUESDAY_9 + timedelta(hours=2), 52) == "ben"
    # ana has two that day, ben one, cat none: availability offers the pick a booking would take
    found = service.find_slots(business, SlotQuery(service="cut", starts_from=TUESDAY_9 + timedelta(hours=3),
                                                   until=TUESDAY_9 + timedelta(hours=3, minutes=1)))
    assert [r.key for r in found.slots[0].resources] == ["cat"]


def test_weights_must_be_for_the_services_own_members_and_only_for_weighted():
    with pytest.raises(ValidationError, match="weighs resource"):
        BusinessConfig.model_validate(salon("weighted", {"zed": 2}))
    with pytest.raises(ValidationError, match="only read by the weighted"):
        BusinessConfig.model_validate(salon("round_robin", {"ana": 2}))


@pytest.mark.storage
def test_racers_for_one_start_take_different_members_in_fair_order(engine, database_url, make_business, service):
    business = make_business(salon("least_booked_day"))
    book(service, business, TUESDAY_9, 60, resources=["ana"])  # ana has one that day: ben and cat are fairer
    start = TUESDAY_9 + timedelta(hours=2)
    outcomes = flat(race(engine, database_url, [[book_job(business, "cut", start, 600 + n)] for n in range(6)]))
    won = [o for o in outcomes if o["type"] == "Booked"]
    assert len(won) == 3 and sum(o["type"] == "SlotTaken" for o in outcomes) == 3, outcomes
    assert sorted(o["resources"][0] for o in won) == ["ana", "ben", "cat"]
    # the fairness measure is what committed: ana (two that day now) is last for the next start
    assert book(service, business, TUESDAY_9 + timedelta(hours=4), 61) == "ben"


@pytest.mark.storage
def test_two_racers_both_seeing_the_same_fairest_member_end_on_different_ones(
        engine, database_url, make_business, service):
    business = make_business(salon("round_robin"))
    book(service, business, TUESDAY_9, 70, resources=["ana"])
    book(service, business, TUESDAY_9, 71, resources=["ben"])  # cat was never given a cut: both racers want cat
    start = TUESDAY_9 + timedelta(hours=1)
    outcomes = flat(race(engine, database_url, [[book_job(business, "cut", start, 700 + n)] for n in range(2)]))
    assert [o["type"] for o in outcomes] == ["Booked", "Booked"], outcomes
    assert sorted(o["resources"][0] for o in outcomes) == ["ana", "cat"]  # the loser of cat takes the next: ana
    assert not any(isinstance(o, SlotTaken) for o in outcomes)
