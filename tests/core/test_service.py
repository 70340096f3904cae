"""The booking service on real PostgreSQL: outcomes, bad input, idempotency, holds, changes, history."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from nextslot.core.results import Booked, Changed, Held, Rejected, Slots, SlotTaken
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    CustomerIn,
    HoldCreate,
    SlotQuery,
)
from nextslot.storage.tables import Booking, BookingHistory, Claim, Customer, Hold, Notification

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # clinic (London = UTC in winter): only Dr Patel before 10
TUE_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def customer(n: int = 1, **extra) -> CustomerIn:
    return CustomerIn(name=f"Customer {n}", phone=f"+4479111234{n:02d}", **extra)


def book(svc, biz, start=MON_9, n=1, **extra):
    extra.setdefault("service", "consultation")
    return svc.book(biz, BookingCreate(starts_at=start, customer=customer(n), **extra))


def count(session_factory, model, **where) -> int:
    with session_factory() as s:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return s.scalar(query)


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


# --- booking -------------------------------------------------------------------------------------


def test_booking_a_free_slot_returns_a_speakable_code_and_the_assigned_resources(service, clinic):
    result = book(service, clinic)
    assert isinstance(result, Booked) and not result.replayed
    view = result.booking
    assert len(view.code) == 6 and view.code_spoken.replace(" ", "").replace(",", "") == view.code
    assert [r.key for r in view.resources] == ["dr-patel", "room-1"]
    assert view.starts_at.spoken == "Monday 23 November at 9 am"
    assert view.ends_at - view.starts_at.utc == timedelta(minutes=20)
    assert service.get_booking(clinic, view.code.lower()).id == view.id


def test_booking_writes_history_confirmation_and_future_reminders_in_the_same_transaction(
    service, clinic, session_factory
):
    start = TUE_10
    view = book(service, clinic, start=start).booking
    with session_factory() as s:
        history = s.scalars(select(BookingHistory).where(BookingHistory.booking_id == view.id)).all()
        notes = s.scalars(select(Notification).where(Notification.booking_id == view.id)
                          .order_by(Notification.due_at)).all()
    assert [h.action for h in history] == ["created"]
    assert history[0].after["starts_at"] == start.isoformat()
    assert [(n.kind, n.status) for n in notes] == [("confirmation", "pending"), ("reminder", "pending"),
                                                   ("reminder", "pending")]
    assert [n.due_at for n in notes[1:]] == [start - timedelta(hours=24), start - timedelta(hours=2)]


def test_reminders_already_past_are_not_queued(service, clinic, session_factory):
    view = book(service, clinic, start=MON_9 + timedelta(hours=3)).booking  # 12:00, now is 08:00
    assert count(session_factory, Notification, booking_id=view.id, kind="reminder") == 1  # only the 2 h nudge


def test_second_booking_for_the_same_slot_returns_slot_taken_with_three_free_alternatives(service, clinic):
    assert isinstance(book(service, clinic, n=1), Booked)
    result = book(service, clinic, n=2)
    assert isinstance(result, SlotTaken)
    assert result.requested == MON_9
    starts = [a.starts_at.utc for a in result.alternatives]
    assert len(starts) == 3 and MON_9 not in starts and starts == sorted(starts)
    open_now = service.find_slots(clinic, SlotQuery(service="consultation", starts_from=MON_9,
                                                    until=MON_9 + timedelta(days=1), limit=1000))
    assert set(starts) <= {s.starts_at.utc for s in open_now.slots}


def test_lost_race_writes_nothing(service, clinic, session_factory):
    book(service, clinic, n=1)
    before = count(session_factory, Customer)
    assert isinstance(book(service, clinic, n=2), SlotTaken)
    assert count(session_factory, Customer) == before
    assert count(session_factory, Booking, business_id=clinic) == 1


def test_multi_resource_service_claims_doctor_room_and_scanner_together(service, clinic, session_factory):
    result = book(service, clinic, start=TUE_10, service="ultrasound")
    assert [r.key for r in result.booking.resources] == ["dr-patel", "room-2", "scanner"]
    with session_factory() as s:
        claims = s.scalars(select(Claim).where(Claim.booking_id == result.booking.id)).all()
    assert len(claims) == 3
    assert {(c.during.lower, c.during.upper) for c in claims} == {
        (TUE_10 - timedelta(minutes=10), TUE_10 + timedelta(minutes=40))
    }


def test_preferred_resource_narrows_the_pool(service, clinic):
    at_ten = MON_9 + timedelta(hours=1)
    result = book(service, clinic, start=at_ten, resources=["dr-okafor"])
    assert [r.key for r in result.booking.resources] == ["dr-okafor", "room-1"]
    slots = service.find_slots(clinic, SlotQuery(service="consultation", resources=["dr-okafor"], limit=3))
    assert all(s.resources[0].key == "dr-okafor" for s in slots.slots)


def test_local_phone_numbers_are_read_in_the_business_country(service, clinic):
    result = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_9,
                                                customer=CustomerIn(name="Ann", phone="07911 123456")))
    assert result.booking.customer.phone == "+447911123456"


def test_times_are_given_in_the_customer_zone_too(service, clinic):
    result = service.book(clinic, BookingCreate(
        service="consultation", starts_at=MON_9, customer=customer(timezone="Asia/Tokyo")))
    when = result.booking.starts_at
    assert when.customer_local.isoformat() == "2026-11-23T18:00:00+09:00"
    assert when.business_local.isoformat() == "2026-11-23T09:00:00+00:00"
    assert when.spoken == "Monday 23 November at 6 pm"


def test_local_wall_time_with_zone_is_accepted(service, clinic):
    result = service.book(clinic, BookingCreate(service="consultation", starts_at=datetime(2026, 11, 23, 9, 0),
                                                timezone="Europe/London", customer=customer()))
    assert result.booking.starts_at.utc == MON_9


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (dict(service="consultaton"), "unknown_service", "service"),
        (dict(resources=["dr-who"]), "unknown_resource", "resources"),
        (dict(resources=["scanner"]), "resource_not_used", "resources"),
        (dict(starts_at=MON_9 + timedelta(minutes=5)), "off_slot_step", "starts_at"),
        (dict(starts_at=MON_9 - timedelta(hours=2)), "in_past", "starts_at"),
        (dict(starts_at=MON_9 - timedelta(minutes=30)), "too_soon", "starts_at"),
        (dict(starts_at=MON_9 + timedelta(days=70)), "beyond_horizon", "starts_at"),
        # Tuesday: Dr Okafor is off and Dr Patel lunches 12:30-13:30; 12:15 + 20 min + 5 min buffer runs into it
        (dict(starts_at=TUE_10 + timedelta(hours=2, minutes=15)), "outside_hours", "starts_at"),
        (dict(starts_at=datetime(2026, 11, 29, 10, 0, tzinfo=UTC)), "outside_hours", "starts_at"),  # Sunday
        (dict(starts_at=datetime(2026, 11, 23, 9, 0)), "missing_timezone", "starts_at"),
        (dict(starts_at=datetime(2026, 11, 23, 9, 0), timezone="Mars/Olympus"), "unknown_timezone", "timezone"),
        (dict(customer=CustomerIn(name="X", phone="12")), "invalid_phone", "customer.phone"),
        (dict(customer=CustomerIn(name="X", email="not-an-email")), "invalid_email", "customer.email"),
        (dict(customer=CustomerIn(name="X")), "contact_required", "customer"),
        (dict(customer=CustomerIn(name="X", phone="+447911123456", timezone="Nowhere/City")), "unknown_timezone",
         "customer.timezone"),
        (dict(hold_id=999999), "unknown_hold", "hold_id"),
    ],
)
def test_bad_input_gets_a_reason_code_and_nothing_is_written(service, clinic, session_factory, change, code, field):
    args = {"service": "consultation", "starts_at": MON_9, "customer": customer(), **change}
    customers_before = count(session_factory, Customer)
    result = service.book(clinic, BookingCreate(**args))
    assert isinstance(result, Rejected), result
    assert (result.code, result.field) == (code, field)
    assert result.message.endswith((".", "?")) and len(result.message) > 10
    assert count(session_factory, Booking, business_id=clinic) == 0
    assert count(session_factory, Customer) == customers_before


def test_unknown_service_suggests_the_closest_real_names(service, clinic):
    result = book(service, clinic, service="consultaton")
    assert "consultation" in result.message and result.suggestions == ("consultation",)
    assert book(service, clinic, service="scan").suggestions == ("ultrasound",)  # a word of its name


def test_slot_queries_refuse_bad_windows(service, clinic):
    q = dict(service="consultation", starts_from=MON_9)
    assert service.find_slots(clinic, SlotQuery(**q, until=MON_9 + timedelta(days=40))).code == "window_too_large"
    assert service.find_slots(clinic, SlotQuery(**q, until=MON_9 - timedelta(hours=1))).code == "window_reversed"
    assert service.find_slots(clinic, SlotQuery(**q, customer_timezone="X/Y")).code == "unknown_timezone"



def test_a_window_without_offset_or_zone_is_read_in_the_business_zone(service, clinic):
    naive = service.find_slots(clinic, SlotQuery(service="consultation", starts_from=datetime(2026, 11, 24, 9),
                                                 until=datetime(2026, 11, 24, 10)))
    assert naive.slots and naive.slots[0].starts_at.business_local.hour == 9  # London, UTC+0 in November
    by_name = service.find_slots(clinic, SlotQuery(service="GP Consultation", starts_from=datetime(2026, 11, 24, 9),
                                                   until=datetime(2026, 11, 24, 10)))
    assert by_name == naive  # a service's name works as well as its key


def test_nonexistent_and_ambiguous_local_times_are_refused(service, make_business):
    garage = make_business("garage")
    gap = service.book(garage, BookingCreate(service="tyre-swap", starts_at=datetime(2027, 3, 14, 2, 30),
                                             timezone="America/New_York", customer=customer()))
    assert gap.code == "nonexistent_local_time"
    twice = service.book(garage, BookingCreate(service="tyre-swap", starts_at=datetime(2026, 11, 1, 1, 30),
                                               timezone="America/New_York", customer=customer()))
    assert twice.code == "ambiguous_local_time"


# --- idempotency ---------------------------------------------------------------------------------


def test_retry_with_the_same_idempotency_key_books_once_and_returns_the_first_result(
    service, clinic, session_factory
):
    first = book(service, clinic, idempotency_key="call-42")
    again = book(service, clinic, idempotency_key="call-42")
    assert isinstance(again, Booked) and again.replayed
    assert again.booking == first.booking
    assert count(session_factory, Booking, business_id=clinic) == 1


def test_reusing_a_key_for_a_different_request_is_refused(service, clinic):
    book(service, clinic, idempotency_key="k")
    other = book(service, clinic, start=MON_9 + timedelta(hours=1), idempotency_key="k")
    assert isinstance(other, Rejected) and other.code == "idempotency_key_reused"


def test_a_lost_race_does_not_use_up_the_idempotency_key(service, clinic):
    book(service, clinic, n=1)
    assert isinstance(book(service, clinic, n=2, idempotency_key="retry-me"), SlotTaken)
    service.cancel(clinic, BookingChange(code=_only_code(service, clinic)))
    assert isinstance(book(service, clinic, n=2, idempotency_key="retry-me"), Booked)


def _only_code(service, clinic) -> str:
    with service.uow() as uow:
        return uow.session.scalars(select(Booking.code).where(Booking.business_id == clinic)).one()


def test_idempotency_keys_are_per_business(service, clinic, make_business):
    other = make_business("clinic")
    assert isinstance(book(service, clinic, idempotency_key="same"), Booked)
    result = book(service, other, idempotency_key="same")
    assert isinstance(result, Booked) and not result.replayed


# --- holds ---------------------------------------------------------------------------------------


def test_a_live_hold_blocks_others_and_converts_into_the_booking(service, clinic, session_factory):
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=MON_9))
    assert isinstance(held, Held)
    assert isinstance(book(service, clinic, n=2), SlotTaken)
    result = book(service, clinic, n=1, hold_id=held.hold.id)
    assert isinstance(result, Booked)
    with session_factory() as s:
        hold = s.get(Hold, held.hold.id)
        claims = s.scalars(select(Claim).where(Claim.hold_id == hold.id)).all()
    assert hold.status == "converted" and hold.booking_id == result.booking.id
    assert all(c.booking_id == result.booking.id and c.active and c.expires_at is None for c in claims)
    assert book(service, clinic, n=3, hold_id=held.hold.id).code == "hold_used"


def test_an_expired_hold_blocks_nobody(service, clinic, clock):
    pinned = ["dr-patel", "room-1"]
    service.hold(clinic, HoldCreate(service="consultation", starts_at=TUE_10, minutes=5, resources=pinned))
    assert isinstance(book(service, clinic, start=TUE_10, n=2, resources=pinned), SlotTaken)
    clock.now += timedelta(minutes=6)
    window = dict(starts_from=TUE_10, until=TUE_10 + timedelta(minutes=1), resources=pinned)
    slots = service.find_slots(clinic, SlotQuery(service="consultation", **window))
    assert [s.starts_at.utc for s in slots.slots] == [TUE_10]
    assert isinstance(book(service, clinic, start=TUE_10, n=2, resources=pinned), Booked)


def test_booking_from_an_expired_hold_still_books_if_the_slot_is_free(service, clinic, clock):
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=TUE_10, minutes=1))
    clock.now += timedelta(minutes=2)
    assert isinstance(book(service, clinic, start=TUE_10, hold_id=held.hold.id), Booked)


def test_a_hold_for_another_time_does_not_match(service, clinic):
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=MON_9))
    result = book(service, clinic, start=MON_9 + timedelta(hours=1), hold_id=held.hold.id)
    assert result.code == "hold_mismatch"


def test_releasing_a_hold_frees_the_slot(service, clinic):
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=MON_9))
    assert service.release_hold(clinic, held.hold.id)
    assert not service.release_hold(clinic, held.hold.id)
    assert isinstance(book(service, clinic, n=2), Booked)


# --- reschedule ----------------------------------------------------------------------------------


def test_reschedule_moves_the_booking_frees_the_old_slot_and_keeps_history(service, clinic, session_factory):
    view = book(service, clinic, start=TUE_10).booking
    new_start = TUE_10 + timedelta(hours=4)
    moved = service.reschedule(clinic, BookingReschedule(code=view.code, starts_at=new_start, source="staff",
                                                         actor="front desk"))
    assert isinstance(moved, Booked) and moved.booking.starts_at.utc == new_start and moved.booking.id == view.id
    assert isinstance(book(service, clinic, start=TUE_10, n=2, resources=["dr-patel", "room-1"]), Booked)
    with session_factory() as s:
        history = s.scalars(select(BookingHistory).where(BookingHistory.booking_id == view.id)
                            .order_by(BookingHistory.id)).all()
        notes = s.scalars(select(Notification).where(Notification.booking_id == view.id)
                          .order_by(Notification.id)).all()
    assert [h.action for h in history] == ["created", "rescheduled"]
    assert history[1].before["starts_at"] == TUE_10.isoformat()
    assert history[1].after["starts_at"] == new_start.isoformat()
    assert (history[1].actor, history[1].channel) == ("front desk", "staff")
    pending = [(n.kind, n.due_at) for n in notes if n.status == "pending"]
    assert ("rescheduled", pending[0][1]) == pending[0]
    assert sorted(d for k, d in pending if k == "reminder") == [new_start - timedelta(hours=24),
                                                                  new_start - timedelta(hours=2)]
    assert {n.kind for n in notes if n.status == "void"} == {"confirmation", "reminder"}


def test_reschedule_into_its_own_old_time_overlap_works(service, clinic):
    view = book(service, clinic, start=TUE_10, resources=["dr-patel", "room-1"]).booking
    moved = service.reschedule(clinic, BookingReschedule(code=view.code, starts_at=TUE_10 + timedelta(minutes=15),
                                                         resources=["dr-patel", "room-1"]))
    assert isinstance(moved, Booked)


def test_reschedule_onto_a_taken_slot_leaves_the_booking_untouched(service, clinic, session_factory):
    mine = book(service, clinic, start=MON_9, n=1).booking
    other_start = MON_9 + timedelta(hours=1)
    book(service, clinic, start=other_start, n=2, resources=["dr-patel"])
    book(service, clinic, start=other_start, n=3, resources=["dr-okafor"])
    result = service.reschedule(clinic, BookingReschedule(code=mine.code, starts_at=other_start))
    assert isinstance(result, SlotTaken) and result.alternatives
    again = service.get_booking(clinic, mine.code)
    assert again.starts_at.utc == MON_9 and [r.key for r in again.resources] == ["dr-patel", "room-1"]
    with session_factory() as s:
        active = s.scalars(select(Claim).where(Claim.booking_id == mine.id, Claim.active)).all()
    assert len(active) == 2 and all(c.during.lower == MON_9 for c in active)


def test_reschedule_with_the_same_key_moves_once(service, clinic, session_factory):
    view = book(service, clinic, start=TUE_10).booking
    cmd = BookingReschedule(code=view.code, starts_at=TUE_10 + timedelta(hours=1), idempotency_key="mv-1")
    assert not service.reschedule(clinic, cmd).replayed
    assert service.reschedule(clinic, cmd).replayed
    assert count(session_factory, BookingHistory, booking_id=view.id, action="rescheduled") == 1


# --- cancel, confirm, no-show ------------------------------------------------------------------


def test_cancel_frees_the_slot_at_once_and_twice_is_not_an_error(service, clinic, session_factory):
    view = book(service, clinic).booking
    cancelled = service.cancel(clinic, BookingChange(code=view.code, reason="feeling better"))
    assert isinstance(cancelled, Changed) and cancelled.booking.status == "cancelled"
    assert cancelled.booking.resources  # still says who it was with
    assert isinstance(book(service, clinic, n=2), Booked)
    again = service.cancel(clinic, BookingChange(code=view.code))
    assert isinstance(again, Changed) and again.replayed
    assert count(session_factory, BookingHistory, booking_id=view.id, action="cancelled") == 1
    with session_factory() as s:
        kinds = {(n.kind, n.status) for n in s.scalars(select(Notification).where(Notification.booking_id == view.id))}
    assert ("cancelled", "pending") in kinds and ("reminder", "pending") not in kinds
    moved = service.reschedule(clinic, BookingReschedule(code=view.code, starts_at=TUE_10))
    assert moved.code == "booking_not_active"


def test_confirm_then_no_show_counts_against_the_customer(service, clinic, clock):
    view = book(service, clinic).booking
    confirmed = service.confirm(clinic, BookingChange(code=view.code, source="sms"))
    assert confirmed.booking.status == "confirmed"
    early = service.mark_no_show(clinic, BookingChange(code=view.code))
    assert isinstance(early, Rejected) and early.code == "not_started"
    clock.now = MON_9 + timedelta(minutes=10)
    no_show = service.mark_no_show(clinic, BookingChange(code=view.code, source="staff"))
    assert no_show.booking.status == "no_show" and no_show.booking.customer.no_show_count == 1
    assert service.cancel(clinic, BookingChange(code=view.code)).code == "booking_not_active"


def test_a_finished_booking_cannot_be_cancelled(service, clinic, clock):
    view = book(service, clinic).booking
    clock.now = MON_9 + timedelta(hours=1)
    assert service.cancel(clinic, BookingChange(code=view.code)).code == "booking_in_past"


def test_a_finished_booking_cannot_be_moved_out_of_the_record(service, clinic, clock):
    view = book(service, clinic).booking
    clock.now = MON_9 + timedelta(hours=5)  # over, and never marked a no-show
    moved = service.reschedule(clinic, BookingReschedule(code=view.code, starts_at=MON_9 + timedelta(days=2)))
    assert isinstance(moved, Rejected) and moved.code == "booking_in_past"
    assert service.get_booking(clinic, view.code).starts_at.utc == view.starts_at.utc


# --- tenancy -------------------------------------------------------------------------------------


def test_one_business_can_never_see_or_change_another_business_booking(service, clinic, make_business):
    other = make_business("clinic")
    view = book(service, clinic).booking
    assert service.get_booking(other, view.code).code == "unknown_booking"
    assert service.cancel(other, BookingChange(code=view.code)).code == "unknown_booking"
    assert service.reschedule(other, BookingReschedule(code=view.code, starts_at=TUE_10)).code == "unknown_booking"
    assert service.get_booking(clinic, view.code).status == "booked"


def test_find_slots_for_an_unknown_business_is_refused(service):
    result = service.find_slots(987654321, SlotQuery(service="consultation"))
    assert isinstance(result, Rejected) and result.code == "unknown_business"


def test_find_slots_lists_open_starts_with_their_resources(service, clinic):
    result = service.find_slots(clinic, SlotQuery(service="consultation", limit=4))
    assert isinstance(result, Slots)
    assert [s.starts_at.utc for s in result.slots] == [MON_9 + timedelta(minutes=15 * i) for i in range(4)]
    assert all([r.key for r in s.resources] == ["dr-patel", "room-1"] for s in result.slots)
