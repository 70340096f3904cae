"""Group sessions and parties: a class with N places booked by several customers, one booking for a party of k
(k places of the class, or k stylists at once), "places left" in availability; the database never oversells."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from psycopg.errors import ExclusionViolation
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from nextslot.core.results import Booked, Held, Rejected, SlotTaken
from nextslot.schemas.commands import BookingCreate, BookingReschedule, CustomerIn, HoldCreate, SlotQuery
from nextslot.storage.tables import Claim
from tests.storage.test_races import assert_invariant, book_job, flat, race

CLASS = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # Tuesday 18:00 London (UTC in winter)
NEXT_CLASS = CLASS + timedelta(days=2)  # Thursday


def studio() -> dict:
    return {
        "business": {"slug": "studio", "name": "Studio", "timezone": "Europe/London", "country": "GB"},
        "hours": {d: ["09:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "resources": [
            {"key": "yoga-room", "name": "Yoga class", "kind": "room", "capacity": 10,
             "hours": {"tue": ["18:00-19:00"], "thu": ["18:00-19:00"]}},
            *({"key": k, "name": k.title(), "kind": "staff"} for k in ("ana", "ben", "cat")),
        ],
        "services": [
            {"key": "yoga", "name": "Evening yoga", "duration": 60, "step": 60, "min_notice": 0,
             "requires": [{"label": "class", "one_of": ["yoga-room"]}],
             "party": {"max": 6, "per_person": ["class"]}},
            {"key": "blow-dry", "name": "Blow-dry", "duration": 30, "step": 30, "min_notice": 0,
             "requires": [{"label": "stylist", "one_of": ["ana", "ben", "cat"]}],
             "party": {"max": 3, "per_person": ["stylist"]}},
            {"key": "trim", "name": "Trim", "duration": 30, "step": 30, "min_notice": 0,
             "requires": [{"label": "stylist", "one_of": ["ana", "ben", "cat"]}]},
        ],
    }


def book(service, business, key, start, n, party=1):
    return service.book(business, BookingCreate(service=key, starts_at=start, party_size=party,
                                                customer=CustomerIn(name=f"Guest {n}", phone=f"+44791113{n:04d}")))


def places_left(service, business, start, party=1):
    found = service.find_slots(business, SlotQuery(service="yoga", starts_from=start,
                                                   until=start + timedelta(minutes=1), party_size=party))
    return found.slots[0].seats_left if found.slots else None


def test_customers_book_places_of_one_class_and_availability_says_how_many_are_left(service, make_business):
    business = make_business(studio())
    assert places_left(service, business, CLASS) == 10
    assert isinstance(book(service, business, "yoga", CLASS, 1), Booked)
    party = book(service, business, "yoga", CLASS, 2, party=3)
    assert isinstance(party, Booked) and party.booking.party_size == 3
    assert [r.key for r in party.booking.resources] == ["yoga-room"]
    assert places_left(service, business, CLASS) == 6
    assert places_left(service, business, CLASS, party=6) == 6
    assert isinstance(book(service, business, "yoga", CLASS, 3, party=6), Booked)
    assert places_left(service, business, CLASS) is None  # full: not offered any more
    late = book(service, business, "yoga", CLASS, 4)
    assert isinstance(late, SlotTaken) and late.alternatives[0].starts_at.utc == NEXT_CLASS
    assert late.alternatives[0].seats_left == 10


def test_a_party_bigger_than_the_places_left_gets_the_next_class_with_room(service, make_business):
    business = make_business(studio())
    assert isinstance(book(service, business, "yoga", CLASS, 10, party=6), Booked)
    too_many = book(service, business, "yoga", CLASS, 11, party=5)
    assert isinstance(too_many, SlotTaken) and too_many.alternatives[0].starts_at.utc == NEXT_CLASS
    assert isinstance(book(service, business, "yoga", CLASS, 12, party=4), Booked)  # exactly fills it
    refused = book(service, business, "yoga", CLASS, 13, party=7)
    assert isinstance(refused, Rejected) and refused.code == "party_too_large" and refused.field == "party_size"
    single = book(service, business, "trim", CLASS - timedelta(hours=8), 14, party=2)
    assert isinstance(single, Rejected) and single.code == "party_too_large"
    assert "one person" in single.message


def test_a_party_of_two_takes_two_stylists_at_once_or_gets_another_time(service, make_business):
    business = make_business(studio())
    ten = CLASS - timedelta(hours=8)
    pair = book(service, business, "blow-dry", ten, 20, party=2)
    assert isinstance(pair, Booked) and sorted(r.key for r in pair.booking.resources) == ["ana", "ben"]
    trio = book(service, business, "blow-dry", ten, 21, party=2)  # only cat is free at ten
    assert isinstance(trio, SlotTaken)
    assert trio.alternatives and all(len(a.resources) == 2 for a in trio.alternatives)
    assert isinstance(book(service, business, "trim", ten, 22), Booked)  # cat, alone


def test_a_party_holds_then_books_its_places_and_moves_with_them(service, make_business, session_factory):
    business = make_business(studio())
    held = service.hold(business, HoldCreate(service="yoga", starts_at=CLASS, party_size=4))
    assert isinstance(held, Held)
    assert places_left(service, business, CLASS) == 6
    mismatch = service.book(business, BookingCreate(service="yoga", starts_at=CLASS, hold_id=held.hold.id,
                                                    party_size=2, customer=CustomerIn(name="Dee", phone="+447911139999")))
    assert isinstance(mismatch, Rejected) and mismatch.code == "hold_mismatch"
    made = service.book(business, BookingCreate(service="yoga", starts_at=CLASS, hold_id=held.hold.id,
                                                party_size=4, customer=CustomerIn(name="Dee", phone="+447911139999")))
    assert isinstance(made, Booked) and made.booking.party_size == 4
    moved = service.reschedule(business, BookingReschedule(code=made.booking.code, starts_at=NEXT_CLASS))
    assert isinstance(moved, Booked)
    assert places_left(service, business, CLASS) == 10 and places_left(service, business, NEXT_CLASS) == 6
    with session_factory() as s:
        assert s.scalars(select(Claim.seats).where(Claim.booking_id == made.booking.id, Claim.active)).all() == [4]


def test_the_database_refuses_places_beyond_capacity_even_from_raw_sql(engine, service, make_business):
    business = make_business(studio())
    made = book(service, business, "yoga", CLASS, 30, party=6)
    with engine.connect() as conn:
        for seats, resource in ((5, "yoga-room"), (2, "ana")):
            with pytest.raises(IntegrityError) as refused:
                conn.execute(text(
                    "insert into claims (business_id, resource_id, booking_id, during, active, exclusive, seats) "
                    "select c.business_id, r.id, c.booking_id, c.during, true, true, :n from claims c "
                    "join resources r on r.business_id = c.business_id and r.key = :k where c.booking_id = :b"),
                    {"n": seats, "k": resource, "b": made.booking.id})
            assert isinstance(refused.value.orig, ExclusionViolation)
            conn.rollback()
        with pytest.raises(IntegrityError):  # nor can the class shrink below the places taken
            conn.execute(text("update resources set capacity = 5 where business_id = :b and key = 'yoga-room'"),
                         {"b": business})
        conn.rollback()


@pytest.mark.storage
def test_many_clients_racing_for_the_last_places_never_oversell(engine, database_url, make_business, service):
    business = make_business(studio())
    assert isinstance(book(service, business, "yoga", CLASS, 40, party=6), Booked)  # four places left
    parties = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]
    jobs = [[book_job(business, "yoga", CLASS, 400 + n, party_size=p)] for n, p in enumerate(parties)]
    outcomes = flat(race(engine, database_url, jobs))
    assert not [o for o in outcomes if o["type"] not in ("Booked", "SlotTaken")], outcomes
    taken = sum(o["job"]["party_size"] for o in outcomes if o["type"] == "Booked")
    assert taken <= 4
    left = 4 - taken
    losers = [o["job"]["party_size"] for o in outcomes if o["type"] == "SlotTaken"]
    assert all(p > left for p in losers)  # no loser's party would have fitted: "taken" was the truth
    assert_invariant(engine, business)
    with engine.connect() as conn:
        assert conn.execute(text(
            "select sum(seats) from claims c join resources r on r.id = c.resource_id "
            "where r.business_id = :b and r.key = 'yoga-room' and c.active"), {"b": business}).scalar() == 6 + taken


def test_agents_and_the_page_see_places_left_and_book_for_a_party(service, make_business, live_server):
    import httpx2 as httpx

    from nextslot.tools.context import ToolContext
    from nextslot.tools.registry import execute
    business = make_business(studio())
    ctx = ToolContext(service=service, business_id=business, channel="mcp")
    found = execute("find_available_slots", {"service": "yoga", "date": "2026-11-24", "party_size": 3}, ctx)
    assert found.ok and found.data["slots"][0]["seats_left"] == 10
    assert found.data["say"] == "I can offer Tuesday 24 November at 6 pm (10 places left)."
    booked = execute("book_appointment", {"service": "yoga", "starts_at": CLASS.isoformat(), "party_size": 3,
                                          "customer_name": "Eve", "phone": "+447911138888"}, ctx)
    assert booked.ok and booked.data["outcome"] == "booked"
    too_big = execute("book_appointment", {"service": "yoga", "starts_at": CLASS.isoformat(), "party_size": 9,
                                           "customer_name": "Fay", "phone": "+447911138889"}, ctx)
    assert not too_big.ok and too_big.data["error"]["code"] == "party_too_large"
    slug = service.business_by_id(business).slug
    with live_server(frozen=True) as server, httpx.Client(base_url=server.url) as http:
        page = http.get(f"/b/{slug}/yoga", params={"tz": "Europe/London", "from": "2026-11-24"})
        assert page.status_code == 200 and '<small class="seats">7 left</small>' in page.text


def test_the_booking_page_books_a_party_with_its_size(service, make_business, live_server):
    import re

    import httpx2 as httpx

    from nextslot.schemas.commands import BookingSearch
    business = make_business(studio())
    slug = service.business_by_id(business).slug
    at = "2026-11-24T18:00:00Z"
    with live_server(frozen=True) as server, httpx.Client(base_url=server.url) as http:
        form = http.get(f"/b/{slug}/yoga/book", params={"at": at, "tz": "Europe/London"})
        assert '<select id="f-party" name="party_size">' in form.text and '<option value="6"' in form.text
        key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
        done = http.post(f"/b/{slug}/yoga/book", data={"at": at, "key": key, "tz": "Europe/London",
                                                       "party_size": "3", "customer.name": "Una",
                                                       "customer.phone": "+447911138000"})
        assert done.status_code == 303, done.text
        too_many = http.post(f"/b/{slug}/yoga/book", data={"at": at, "key": key + "x", "tz": "Europe/London",
                                                           "party_size": "60", "customer.name": "Vic",
                                                           "customer.phone": "+447911138001"})
        assert too_many.status_code == 422 and "party" in too_many.text.lower()
    [mine] = service.find_bookings(business, BookingSearch(phone="+447911138000"))[0]
    assert mine.party_size == 3
    assert places_left(service, business, CLASS) == 7


def test_a_party_that_loses_a_stylist_to_a_racer_between_look_and_claim_takes_two_others(service, make_business,
                                                                                        monkeypatch, engine):
    from nextslot.core.booking.writing import OneStatementBooking

    business = make_business(studio())
    ten = CLASS - timedelta(hours=8)
    claim, raced = OneStatementBooking.claim, []

    def racer_first(self, members):  # the party saw ana and ben free; a trim for ana commits before it claims
        if not raced:
            raced.append(None)  # once: the racer's own booking claims through here too
            raced[0] = service.book(business, BookingCreate(service="trim", starts_at=ten, resources=["ana"],
                                                            customer=CustomerIn(name="Racer", phone="+447911130099")))
        return claim(self, members)

    monkeypatch.setattr(OneStatementBooking, "claim", racer_first)
    pair = book(service, business, "blow-dry", ten, 30, party=2)
    assert isinstance(raced[0], Booked) and [r.key for r in raced[0].booking.resources] == ["ana"]
    assert isinstance(pair, Booked) and sorted(r.key for r in pair.booking.resources) == ["ben", "cat"]
    assert_invariant(engine, business)
