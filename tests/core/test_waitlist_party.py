"""A waitlist wish for a party: it carries its size on every channel, freed places are offered only to a party they
seat (first come first served among those), and a yes books the whole party at once or gets openings that fit it;
two parties answering yes at the same moment never overfill the class."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from nextslot.core.customers.roster import waiting_list
from nextslot.core.results import Booked, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingChange, CustomerIn, WaitlistJoin
from nextslot.storage.engine import build_session_factory, engine_for
from nextslot.storage.migrate import upgrade
from nextslot.storage.tables import Booking, WaitlistEntry, WaitlistOffer
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.core.test_party import CLASS, NEXT_CLASS, book, places_left, studio
from tests.reminders.test_dispatcher import ScriptedChannel

TUESDAY = date(2026, 11, 24)


def wait(service, business: int, n: int, party: int | None = None, key: str = "yoga"):
    """Guest n waits for Tuesday's class (any time that day), for a party of `party` (None: the default)."""
    return service.join_waitlist(
        business,
        WaitlistJoin(
            service=key,
            customer=CustomerIn(name=f"Waiter {n}", phone=f"+44791115{n:04d}"),
            earliest_date=TUESDAY,
            latest_date=TUESDAY,
            **({"party_size": party} if party is not None else {}),
        ),
    )


def offers(session_factory, business: int) -> list[WaitlistOffer]:
    with session_factory() as s:
        return list(
            s.scalars(select(WaitlistOffer).where(WaitlistOffer.business_id == business).order_by(WaitlistOffer.id))
        )


def open_offers(session_factory, business: int) -> list[WaitlistOffer]:
    return [o for o in offers(session_factory, business) if o.status == "open"]


def seats_taken(engine, business: int, start=CLASS) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "select coalesce(sum(c.seats), 0) from claims c join resources r on r.id = c.resource_id "
                "join bookings b on b.id = c.booking_id "
                "where r.business_id = :b and r.key = 'yoga-room' and c.active and b.starts_at = :at"
            ),
            {"b": business, "at": start},
        ).scalar()


def full_class(service, business: int, parties: list[int]) -> list:
    """Book Tuesday's class full with these parties (they add up to its ten places)."""
    assert sum(parties) == 10
    made = [book(service, business, "yoga", CLASS, 500 + i, party=p) for i, p in enumerate(parties)]
    assert all(isinstance(m, Booked) for m in made), made
    assert places_left(service, business, CLASS) is None  # no place left at 18:00
    return [m.booking for m in made]


def test_a_wish_carries_its_party_size_and_a_party_too_big_for_the_service_is_refused(service, make_business):
    business = make_business(studio())
    alone = wait(service, business, 1)
    assert not isinstance(alone, Rejected) and alone.party_size == 1
    three = wait(service, business, 2, party=3)
    assert not isinstance(three, Rejected) and three.party_size == 3
    again = wait(service, business, 2, party=4)  # the same wish again: one entry, the party said last
    assert again.id == three.id and again.party_size == 4

    too_big = wait(service, business, 3, party=7)  # the class takes parties of at most six
    assert isinstance(too_big, Rejected) and (too_big.code, too_big.field) == ("party_too_large", "party_size")
    single = wait(service, business, 4, party=2, key="trim")  # one person a booking
    assert isinstance(single, Rejected) and single.code == "party_too_large"
    with pytest.raises(ValidationError):
        WaitlistJoin(
            service="yoga",
            customer=CustomerIn(name="Zed", phone="+447911150000"),
            earliest_date=TUESDAY,
            latest_date=TUESDAY,
            party_size=0,
        )


def test_a_party_bigger_than_the_service_can_ever_seat_at_once_is_refused_not_left_waiting(service, make_business):
    config = studio()
    config["services"][1]["party"] = {"max": 5, "per_person": ["stylist"]}  # three stylists, parties of five
    business = make_business(config)
    four = wait(service, business, 5, party=4, key="blow-dry")
    assert isinstance(four, Rejected) and (four.code, four.field) == ("party_too_large", "party_size")
    assert "at most 3 people at once" in four.message
    three = wait(service, business, 6, party=3, key="blow-dry")
    assert not isinstance(three, Rejected) and three.party_size == 3


def test_a_freed_single_place_goes_to_the_party_it_seats_and_three_freed_places_to_the_party_of_three(
    service, make_business, session_factory, engine, clock
):
    business = make_business(studio())
    single, trio, _ = full_class(service, business, [1, 3, 6])
    party_of_three = wait(service, business, 10, party=3)  # waiting first
    party_of_one = wait(service, business, 11)

    service.cancel(business, BookingChange(code=single.code))  # one place frees up
    service.offer_freed_capacity()
    [offer] = offers(session_factory, business)
    assert offer.entry_id == party_of_one.id  # not the party of three: one place cannot seat them
    taken = service.accept_offer(offer.id, "sms")
    assert isinstance(taken, Booked) and taken.booking.party_size == 1
    assert seats_taken(engine, business) == 10

    service.cancel(business, BookingChange(code=trio.code))  # three places free up
    service.offer_freed_capacity()
    [offer] = open_offers(session_factory, business)
    assert offer.entry_id == party_of_three.id
    sms = ScriptedChannel("sms")
    Dispatcher(session_factory, {"sms": sms}, clock=clock).dispatch_due()
    [message] = [m for m in sms.sent if m.to == "+447911150010"]
    assert "Evening yoga for 3 people at Studio" in message.body
    booked = service.accept_offer(offer.id, "sms")
    assert isinstance(booked, Booked) and booked.booking.party_size == 3  # one booking for the whole party
    assert seats_taken(engine, business) == 10
    with session_factory() as s:
        assert s.get(WaitlistEntry, party_of_three.id).status == "booked"
        assert s.get(Booking, booked.booking.id).customer.phone == "+447911150010"


def test_a_yes_after_the_places_went_meanwhile_gets_openings_that_seat_the_whole_party(
    service, make_business, session_factory, engine
):
    business = make_business(studio())
    _, trio, _ = full_class(service, business, [1, 3, 6])
    party_of_three = wait(service, business, 20, party=3)
    service.cancel(business, BookingChange(code=trio.code))
    service.offer_freed_capacity()
    [offer] = offers(session_factory, business)
    assert offer.entry_id == party_of_three.id
    assert isinstance(book(service, business, "yoga", CLASS, 21), Booked)  # a walk-in takes one of the three

    late = service.accept_offer(offer.id, "sms")
    assert isinstance(late, SlotTaken), late  # never a party of two booked for three
    assert late.alternatives and late.alternatives[0].starts_at.utc == NEXT_CLASS
    assert all(a.seats_left is None or a.seats_left >= 3 for a in late.alternatives)
    assert seats_taken(engine, business) == 8
    with session_factory() as s:
        assert s.get(WaitlistOffer, offer.id).status == "lost"
        assert s.get(WaitlistEntry, party_of_three.id).status == "waiting"


def say_yes_together(database_url: str, clock, offer_ids: list[int]) -> list:
    """Each offer's yes from a racer of its own (its own engine and connection, made before the start), all
    released at once."""
    answers: dict[int, object] = {}
    barrier = threading.Barrier(len(offer_ids))
    engines = [engine_for(database_url, pool_size=1) for _ in offer_ids]

    def yes(engine, offer_id: int) -> None:
        racer = BookingService(build_session_factory(engine), clock=clock)
        with engine.connect() as conn:  # connected first: the race is the answer, not the login
            conn.execute(text("select 1"))
        barrier.wait(timeout=30)
        answers[offer_id] = racer.accept_offer(offer_id, "whatsapp")

    threads = [threading.Thread(target=yes, args=(e, o)) for e, o in zip(engines, offer_ids)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
    finally:
        for e in engines:
            e.dispose()
    return [answers[o] for o in offer_ids]


@pytest.mark.storage
def test_two_parties_offered_the_same_places_saying_yes_at_once_never_overfill_the_class(
    service, make_business, session_factory, engine, database_url, clock
):
    business = make_business(studio(), details={"waitlist": {"offers_at_once": 2}})
    _, four, _ = full_class(service, business, [1, 4, 5])
    first = wait(service, business, 30, party=3)
    second = wait(service, business, 31, party=3)
    service.cancel(business, BookingChange(code=four.code))  # four places: room for one party of three
    service.offer_freed_capacity()
    made = open_offers(session_factory, business)
    assert sorted(o.entry_id for o in made) == [first.id, second.id]  # both asked, as the business allows

    answers = say_yes_together(database_url, clock, [o.id for o in made])
    assert sorted(type(a).__name__ for a in answers) == ["Booked", "SlotTaken"], answers
    assert seats_taken(engine, business) == 9  # 1 + 5 + 3: never more than ten
    assert places_left(service, business, CLASS) == 1


@pytest.mark.storage
def test_two_parties_with_room_for_both_are_both_offered_and_both_booked_at_once(
    service, make_business, session_factory, engine, database_url, clock
):
    business = make_business(studio())  # one offer at once per time: but these places seat both parties
    _, four, _ = full_class(service, business, [1, 4, 5])
    first = wait(service, business, 40, party=2)
    second = wait(service, business, 41, party=2)
    third = wait(service, business, 42, party=1)  # no place left for it once the two are promised theirs
    service.cancel(business, BookingChange(code=four.code))
    service.offer_freed_capacity()
    made = open_offers(session_factory, business)
    assert sorted(o.entry_id for o in made) == [first.id, second.id] and third.id not in [o.entry_id for o in made]

    answers = say_yes_together(database_url, clock, [o.id for o in made])
    assert all(isinstance(a, Booked) and a.booking.party_size == 2 for a in answers), answers
    assert seats_taken(engine, business) == 10


def test_agents_join_for_a_party_and_hear_its_size_and_the_console_list_shows_it(
    service, make_business, session_factory
):
    business = make_business(studio())
    ctx = ToolContext(service=service, business_id=business, channel="mcp")
    joined = execute(
        "join_waitlist",
        {
            "service": "yoga",
            "customer_name": "Pat",
            "phone": "+447911150050",
            "earliest_date": "2026-11-24",
            "latest_date": "2026-11-24",
            "party_size": 3,
        },
        ctx,
    )
    assert joined.ok and joined.data["party_size"] == 3
    assert joined.data["say"].startswith("You're on the waitlist for Evening yoga for 3 people on Tuesday")
    alone = execute(
        "join_waitlist",
        {
            "service": "yoga",
            "customer_name": "Sol",
            "phone": "+447911150051",
            "earliest_date": "2026-11-24",
            "latest_date": "2026-11-24",
        },
        ctx,
    )
    assert alone.ok and alone.data["party_size"] == 1 and "people" not in alone.data["say"]
    too_big = execute(
        "join_waitlist",
        {
            "service": "yoga",
            "customer_name": "Max",
            "phone": "+447911150052",
            "earliest_date": "2026-11-24",
            "latest_date": "2026-11-24",
            "party_size": 9,
        },
        ctx,
    )
    assert not too_big.ok and too_big.data["error"]["code"] == "party_too_large"
    none = execute(
        "join_waitlist",
        {
            "service": "yoga",
            "customer_name": "Nil",
            "phone": "+447911150053",
            "earliest_date": "2026-11-24",
            "latest_date": "2026-11-24",
            "party_size": 0,
        },
        ctx,
    )
    assert not none.ok
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        rows = waiting_list(uow, business)
    assert [(r.customer.name, r.party_size) for r in rows] == [("Pat", 3), ("Sol", 1)]
    history = execute("customer_history", {"phone": "+447911150050"}, ctx)
    assert history.ok and any("Evening yoga (party of 3)" in line["what"] for line in history.data["events"])


def test_existing_entries_wait_as_parties_of_one_after_the_migration_and_no_party_is_empty(
    database_at, engine, service, make_business
):
    business = make_business(studio())
    entry = wait(service, business, 60, party=2)
    with engine.connect() as conn:  # a row written without the column (as by the code before it) is a party of one
        copied = conn.execute(
            text(
                "insert into waitlist_entries (business_id, service_id, customer_id, earliest_date, latest_date, "
                "day_start_minute, day_end_minute, preferred_resource_ids, status, source, created_at) "
                "select business_id, service_id, customer_id, earliest_date, latest_date + 1, day_start_minute, "
                "day_end_minute, preferred_resource_ids, status, source, created_at from waitlist_entries "
                "where id = :id returning party_size"
            ),
            {"id": entry.id},
        ).scalar()
        assert copied == 1
        with pytest.raises(IntegrityError):
            conn.execute(text("update waitlist_entries set party_size = 0 where id = :id"), {"id": entry.id})
        conn.rollback()

    url = database_at("0029_early_receipts")
    old = engine_for(url)
    try:
        with old.begin() as conn:  # a wish stored before the migration (its parents are not needed here)
            conn.execute(text("set local session_replication_role = replica"))
            conn.execute(
                text(
                    "insert into waitlist_entries (id, business_id, service_id, customer_id, earliest_date, "
                    "latest_date, day_start_minute, day_end_minute, preferred_resource_ids, status, source, "
                    "created_at) values (1, 1, 1, 1, '2026-11-24', '2026-11-25', 0, 1440, '[]', 'waiting', 'mcp', "
                    "now())"
                )
            )
        upgrade(url)
        with old.connect() as conn:
            assert conn.execute(text("select party_size from waitlist_entries where id = 1")).scalar() == 1
    finally:
        old.dispose()
