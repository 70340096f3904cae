"""Freed time offered to the waitlist end to end on PostgreSQL: cancel by SMS -> offer -> YES books it."""
from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, date, datetime, time, timedelta

import httpx2
import pytest
from sqlalchemy import func, select

from nextslot.core.links import Links
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.inbound import handle_reply
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn, HoldCreate, WaitlistJoin
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, Notification, WaitlistEntry, WaitlistOffer
from tests.reminders.test_dispatcher import ScriptedChannel

NINE = datetime(2026, 11, 24, 9, tzinfo=UTC)  # Tuesday; London is on UTC in November
HOLDER = "+447911124000"


def clinic_with(make_business, **waitlist) -> int:
    return make_business("clinic", details={"waitlist": waitlist} if waitlist else {})


def book_nine(service, clinic: int, phone: str = HOLDER):
    return service.book(clinic, BookingCreate(service="consultation", starts_at=NINE, resources=["dr-patel"],
                                              customer=CustomerIn(name="Holder", phone=phone))).booking


def wait_for_nine(service, clinic: int, phone: str, name: str):
    """A wish that only the 09:00 consultation with Dr Patel fits."""
    return service.join_waitlist(clinic, WaitlistJoin(
        service="consultation", customer=CustomerIn(name=name, phone=phone), earliest_date=date(2026, 11, 24),
        latest_date=date(2026, 11, 24), day_start=time(9, 0), day_end=time(9, 20), resources=["dr-patel"]))


def offered_nine(service, make_business, session_factory, phones: str, name: str):
    """A clinic whose 09:00 was booked, then cancelled and offered to one waiting customer (numbers `phones`0/1):
    the clinic, the waitlist entry and the open offer."""
    clinic = clinic_with(make_business)
    holder = book_nine(service, clinic, phone=f"{phones}0")
    entry = wait_for_nine(service, clinic, f"{phones}1", name)
    service.cancel(clinic, BookingChange(code=holder.code))
    assert service.offer_freed_capacity() == 1
    [offer] = offers(session_factory, clinic)
    return clinic, entry, offer


def offers(session_factory, clinic: int) -> list[WaitlistOffer]:
    with session_factory() as s:
        return list(s.scalars(select(WaitlistOffer).where(WaitlistOffer.business_id == clinic)
                              .order_by(WaitlistOffer.id)))


def bookings_at_nine(session_factory, clinic: int) -> list[Booking]:
    with session_factory() as s:
        return list(s.scalars(select(Booking).where(Booking.business_id == clinic, Booking.starts_at == NINE,
                                                    Booking.status == "booked")).unique())


def test_a_cancellation_by_sms_is_offered_to_the_first_waiting_customer_whose_yes_books_it(
        service, make_business, session_factory, clock):
    clinic = clinic_with(make_business)
    book_nine(service, clinic)
    first = wait_for_nine(service, clinic, "+447911124001", "Wanda")
    wait_for_nine(service, clinic, "+447911124002", "Walt")
    assert service.offer_freed_capacity() == 0  # nothing freed yet

    assert "cancelled" in handle_reply(service, "sms", HOLDER, "X", "SMwl1")
    assert service.offer_freed_capacity() == 1
    [offer] = offers(session_factory, clinic)
    assert (offer.entry_id, offer.starts_at, offer.status) == (first.id, NINE, "open")
    assert offer.expires_at == clock.now + timedelta(minutes=15)

    sms = ScriptedChannel("sms")
    Dispatcher(session_factory, {"sms": sms}, clock=clock).dispatch_due()
    [message] = [m for m in sms.sent if m.to == "+447911124001"]
    assert "GP consultation at Riverside Clinic on Tuesday 24 November at 9 am has just opened up" in message.body
    assert "Reply YES within 15 minutes" in message.body

    answer = handle_reply(service, "sms", "+447911124001", "yes", "SMwl2")
    assert answer.startswith("You're booked for GP consultation on Tuesday 24 November at 9 am. Your code is")
    [booked] = bookings_at_nine(session_factory, clinic)
    assert booked.customer.phone == "+447911124001" and booked.source == "sms"
    [offer] = offers(session_factory, clinic)
    assert offer.status == "accepted" and offer.booking_id == booked.id
    with session_factory() as s:
        assert s.get(WaitlistEntry, first.id).status == "booked"
    assert handle_reply(service, "sms", "+447911124001", "yes", "SMwl2") == answer  # Twilio's retry: answered once


def test_two_waiting_customers_saying_yes_at_the_same_moment_one_gets_it_the_other_alternatives(
        service, make_business, session_factory):
    clinic = clinic_with(make_business, offers_at_once=2)
    holder = book_nine(service, clinic, phone="+447911124010")
    wait_for_nine(service, clinic, "+447911124011", "Ada")
    wait_for_nine(service, clinic, "+447911124012", "Bea")
    service.cancel(clinic, BookingChange(code=holder.code))
    assert service.offer_freed_capacity() == 2

    answers: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def say_yes(phone: str) -> None:
        barrier.wait()
        answers[phone] = handle_reply(service, "whatsapp", f"whatsapp:{phone}", "YES", f"SM{phone}")

    threads = [threading.Thread(target=say_yes, args=(p,)) for p in ("+447911124011", "+447911124012")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [p for p, a in answers.items() if a.startswith("You're booked")]
    lost = [p for p, a in answers.items() if "has gone" in a]
    assert len(won) == 1 and len(lost) == 1, answers
    assert "Other openings:" in answers[lost[0]]
    assert len(bookings_at_nine(session_factory, clinic)) == 1
    statuses = sorted(o.status for o in offers(session_factory, clinic))
    assert statuses == ["accepted", "lost"]


def test_one_offer_answered_yes_by_sms_and_by_its_link_at_the_same_moment_books_once_and_stays_accepted(
        service, make_business, session_factory):
    from nextslot.core.results import Booked

    for n in range(3):  # whichever channel's answer finishes first
        clinic, entry, offer = offered_nine(service, make_business, session_factory, f"+4479111241{n}", "Ada")
        answers: dict[str, object] = {}
        barrier = threading.Barrier(2)

        def say_yes(channel: str, offer_id: int = offer.id) -> None:
            barrier.wait()
            answers[channel] = service.accept_offer(offer_id, channel)

        threads = [threading.Thread(target=say_yes, args=(c,)) for c in ("sms", "link")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        [booked] = bookings_at_nine(session_factory, clinic)
        assert all(isinstance(a, Booked) and a.booking.code == booked.code for a in answers.values()), answers
        [offer] = offers(session_factory, clinic)
        with session_factory() as s:
            assert (offer.status, offer.booking_id, s.get(WaitlistEntry, entry.id).status) == (
                "accepted", booked.id, "booked")


def test_an_unanswered_offer_lapses_to_the_next_person_and_a_late_yes_gets_openings(
        service, make_business, session_factory, clock):
    clinic = clinic_with(make_business, offer_minutes=10)
    holder = book_nine(service, clinic, phone="+447911124020")
    first = wait_for_nine(service, clinic, "+447911124021", "Cy")
    second = wait_for_nine(service, clinic, "+447911124022", "Di")
    service.cancel(clinic, BookingChange(code=holder.code))
    service.offer_freed_capacity()
    clock.now += timedelta(minutes=11)
    assert service.offer_freed_capacity() == 1
    expired, offered = offers(session_factory, clinic)
    assert (expired.entry_id, expired.status) == (first.id, "expired")
    assert (offered.entry_id, offered.status) == (second.id, "open")

    late = handle_reply(service, "sms", "+447911124021", "yes", "SMlate")
    assert "has gone" in late and bookings_at_nine(session_factory, clinic) == []
    assert "booked" in handle_reply(service, "sms", "+447911124022", "si", "SMdi")
    assert len(bookings_at_nine(session_factory, clinic)) == 1
    with session_factory() as s:
        assert s.get(WaitlistEntry, first.id).status == "waiting"  # still waiting for another time


def test_no_means_keep_waiting_and_the_time_goes_to_the_next_person(service, make_business, session_factory):
    clinic = clinic_with(make_business)
    holder = book_nine(service, clinic, phone="+447911124030")
    first = wait_for_nine(service, clinic, "+447911124031", "Ed")
    second = wait_for_nine(service, clinic, "+447911124032", "Flo")
    service.cancel(clinic, BookingChange(code=holder.code))
    service.offer_freed_capacity()
    assert "keep looking" in handle_reply(service, "sms", "+447911124031", "no", "SMno")
    assert service.offer_freed_capacity() == 1
    declined, offered = offers(session_factory, clinic)
    assert (declined.entry_id, declined.status, offered.entry_id) == (first.id, "declined", second.id)


def test_two_schedulers_offering_at_once_never_offer_or_send_the_same_thing_twice(
        service, make_business, session_factory):
    clinic = clinic_with(make_business)
    holders = [service.book(clinic, BookingCreate(
        service="consultation", starts_at=NINE + timedelta(minutes=30 * i), resources=["dr-patel"],
        customer=CustomerIn(name="H", phone=f"+44791112405{i}"))).booking for i in range(4)]
    for i in range(4):
        service.join_waitlist(clinic, WaitlistJoin(
            service="consultation", customer=CustomerIn(name="W", phone=f"+44791112406{i}"),
            earliest_date=date(2026, 11, 24), latest_date=date(2026, 11, 24), day_start=time(9, 0),
            day_end=time(11, 0), resources=["dr-patel"]))
    for h in holders:
        service.cancel(clinic, BookingChange(code=h.code))
    made: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        for _ in range(3):
            made.append(service.offer_freed_capacity())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_offers = offers(session_factory, clinic)
    assert sum(made) == len(all_offers) >= 1
    assert len({(o.entry_id, o.starts_at) for o in all_offers}) == len(all_offers)
    assert len({o.entry_id for o in all_offers if o.status == "open"}) == len(
        [o for o in all_offers if o.status == "open"])  # one open offer per waiting customer
    with session_factory() as s:
        sent = s.scalar(select(func.count()).select_from(Notification).where(
            Notification.business_id == clinic, Notification.kind == "waitlist_offer"))
    assert sent == len(all_offers)


def test_a_tap_on_the_offer_link_books_like_a_yes_and_a_second_tap_for_the_same_time_gets_openings(
        service, make_business, session_factory, live_server, clock):
    clinic = clinic_with(make_business, offers_at_once=2)
    holder = book_nine(service, clinic, phone="+447911124070")
    wait_for_nine(service, clinic, "+447911124071", "Gus")
    wait_for_nine(service, clinic, "+447911124072", "Hal")
    service.cancel(clinic, BookingChange(code=holder.code))
    service.offer_freed_capacity()
    links = Links("offer-link-secret", "http://unused")
    first, second = [links.offer_url(clinic, o.id, o.expires_at + timedelta(days=1)).removeprefix("http://unused")
                     for o in offers(session_factory, clinic)]
    with live_server(frozen=True, settings=Settings(secret_key="offer-link-secret")) as server, \
            httpx2.Client(base_url=server.url) as http:
        shown = http.get(first)
        assert shown.status_code == 200 and "Book this time" in shown.text and "9 am" in shown.text
        nonce = shown.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
        assert "frame-ancestors 'none'" in shown.headers["content-security-policy"]  # as every page with a token
        assert (shown.headers["x-content-type-options"], shown.headers["referrer-policy"]) == ("nosniff", "no-referrer")
        assert f'<style nonce="{nonce}">' in shown.text
        taken = http.post(first)
        assert taken.status_code == 303 and "/m/" in taken.headers["location"]
        [booked] = bookings_at_nine(session_factory, clinic)
        assert booked.customer.phone == "+447911124071" and booked.source == "link"
        gone = http.post(second)
        assert gone.status_code == 409 and "That time has gone" in gone.text and "<li>" in gone.text
        assert http.get(first[:-4] + "AAAA").status_code == 403
        assert http.get(links.offer_url(clinic + 1000, 1, clock.now + timedelta(days=1))
                        .removeprefix("http://unused")).status_code == 404  # not this business's offer


OFFERING_PROCESS = """
import sys
from datetime import datetime
from nextslot.core.service import BookingService
from nextslot.storage.engine import build_session_factory, engine_for
service = BookingService(build_session_factory(engine_for(sys.argv[1])), clock=lambda: datetime.fromisoformat(sys.argv[2]))
print(sum(service.offer_freed_capacity() for _ in range(5)))
"""


def test_two_scheduler_processes_offer_each_freed_time_once(service, make_business, session_factory, database_url,
                                                            clock):
    clinic = clinic_with(make_business)
    holders = [service.book(clinic, BookingCreate(
        service="consultation", starts_at=NINE + timedelta(minutes=30 * i), resources=["dr-patel"],
        customer=CustomerIn(name="H", phone=f"+44791112408{i}"))).booking for i in range(6)]
    for i in range(6):
        service.join_waitlist(clinic, WaitlistJoin(
            service="consultation", customer=CustomerIn(name="W", phone=f"+44791112409{i}"),
            earliest_date=date(2026, 11, 24), latest_date=date(2026, 11, 24), day_start=time(9, 0),
            day_end=time(12, 0), resources=["dr-patel"]))
    for h in holders:
        service.cancel(clinic, BookingChange(code=h.code))
    runs = [subprocess.Popen([sys.executable, "-c", OFFERING_PROCESS, database_url, clock.now.isoformat()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    made = sum(int(out.strip().splitlines()[-1]) for out, _ in outputs)
    all_offers = offers(session_factory, clinic)
    assert made == len(all_offers) >= 1
    assert len({o.entry_id for o in all_offers}) == len(all_offers)  # one offer per waiting customer
    assert len({o.starts_at for o in all_offers}) == len(all_offers)  # one person per freed time (at once: 1)
    with session_factory() as s:
        queued = s.scalar(select(func.count()).select_from(Notification).where(
            Notification.business_id == clinic, Notification.kind == "waitlist_offer"))
    assert queued == len(all_offers)  # and each goes out once: the outbox sends exactly once


def test_a_hold_that_lapses_unbooked_is_offered_to_the_waitlist(service, make_business, session_factory, clock):
    clinic = clinic_with(make_business)
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=NINE, resources=["dr-patel"]))
    entry = wait_for_nine(service, clinic, "+447911124100", "Joy")
    clock.now += timedelta(minutes=6)  # the caller hung up without booking
    assert service.expire_holds() >= 1
    assert service.offer_freed_capacity() == 1
    [offer] = offers(session_factory, clinic)
    assert (offer.entry_id, offer.starts_at) == (entry.id, held.hold.starts_at.utc)


def test_one_business_whose_waitlist_settings_cannot_be_read_holds_up_no_other_business(
        service, make_business, session_factory):
    from tests.core.test_deposits import corrupt_details

    broken, fine = clinic_with(make_business), clinic_with(make_business)
    corrupt_details(session_factory, broken, waitlist={"offer_minutes": "ten"})  # stored before it was checked
    for clinic, phone in ((broken, "+447911124091"), (fine, "+447911124092")):
        holder = book_nine(service, clinic, phone=phone)
        wait_for_nine(service, clinic, phone[:-1] + "8", "Wes")
        service.cancel(clinic, BookingChange(code=holder.code))
    assert service.offer_freed_capacity() == 1
    assert offers(session_factory, broken) == [] and [o.status for o in offers(session_factory, fine)] == ["open"]
    assert service.offer_freed_capacity() == 0  # the broken business's freed time is not tried on every run


def test_an_offer_whose_business_settings_cannot_be_read_still_lapses_and_holds_up_no_other_business(
        service, make_business, session_factory, clock, caplog):
    from tests.core.test_deposits import corrupt_details

    broken, fine = clinic_with(make_business), clinic_with(make_business)
    for clinic, phone in ((broken, "+447911124061"), (fine, "+447911124071")):
        holder = book_nine(service, clinic, phone=phone)
        wait_for_nine(service, clinic, phone[:-1] + "2", "Cy")
        wait_for_nine(service, clinic, phone[:-1] + "3", "Di")
        service.cancel(clinic, BookingChange(code=holder.code))
    assert service.offer_freed_capacity() >= 2
    corrupt_details(session_factory, broken, deposit_hold_minutes="half an hour")  # its plan raises
    clock.now += timedelta(minutes=16)

    assert service.offer_freed_capacity() >= 1  # the fine business's slot goes to its next person (others' too)
    assert [o.status for o in offers(session_factory, fine)] == ["expired", "open"]
    [lapsed] = offers(session_factory, broken)
    assert lapsed.status == "expired"  # lapsed all the same: not tried again on every run
    with session_factory() as s:
        assert s.get(WaitlistEntry, lapsed.entry_id).status == "waiting"
    assert (f"lapsed offer {lapsed.id} (business {broken}): its time was not offered again (ValueError)"
            in caplog.text)
    assert "+447911124062" not in caplog.text


def test_a_waiting_customer_stored_without_a_name_can_still_take_an_offer(service, make_business, session_factory):
    # the staff API once let customers in without a name; a name is required now, so their yes must not fail
    from nextslot.core.results import Booked
    from nextslot.storage.tables import Customer

    clinic = clinic_with(make_business)
    holder = book_nine(service, clinic, phone="+447911124090")
    wait_for_nine(service, clinic, "+447911124091", "Nell")
    with session_factory() as s:
        s.query(Customer).filter(Customer.business_id == clinic, Customer.phone == "+447911124091").update({"name": ""})
        s.commit()
    service.cancel(clinic, BookingChange(code=holder.code))
    assert service.offer_freed_capacity() == 1
    [offer] = offers(session_factory, clinic)
    result = service.accept_offer(offer.id, "sms")
    assert isinstance(result, Booked), result
    assert result.booking.customer.phone == "+447911124091"


def test_a_yes_whose_booking_committed_but_whose_offer_step_failed_stays_booked_after_the_offer_lapses(
        service, make_business, session_factory, clock, monkeypatch):
    from nextslot.core.results import Booked
    from nextslot.core.waitlist import answers

    def failing_step(uow, business_id, kind, *args, **kwargs):  # the connection drops after the booking commits
        if kind == "waitlist.offer_accepted":
            raise ConnectionError("the database went away")
        return emit(uow, business_id, kind, *args, **kwargs)

    for n, late_step in enumerate(("the lapse job", "a second yes", "a no")):
        clinic, entry, offer = offered_nine(service, make_business, session_factory, f"+4479111242{n}", "Ida")
        emit = answers.events.emit
        monkeypatch.setattr(answers.events, "emit", failing_step)
        with pytest.raises(ConnectionError):
            service.accept_offer(offer.id, "link")
        monkeypatch.setattr(answers.events, "emit", emit)
        [booked] = bookings_at_nine(session_factory, clinic)
        if late_step == "a no":  # within the offer's time: a no after the booked yes changes nothing
            assert service.decline_offer(offer.id, "sms") is False
        clock.now += timedelta(minutes=16)  # the offer's time to answer has passed
        if late_step == "a second yes":
            again = service.accept_offer(offer.id, "sms")
            assert isinstance(again, Booked) and again.replayed and again.booking.code == booked.code
        elif late_step == "the lapse job":
            service.offer_freed_capacity()  # lapses open offers first
        [offer] = offers(session_factory, clinic)
        with session_factory() as s:
            assert (offer.status, offer.booking_id, s.get(WaitlistEntry, entry.id).status) == (
                "accepted", booked.id, "booked"), late_step
        clock.now -= timedelta(minutes=16)


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
def test_an_offer_carries_its_link_in_every_language(language):
    # an email-only customer cannot answer YES by text: the link is her only way to take the time
    from nextslot.core.business.message_templates import SAMPLES
    from nextslot.reminders.templates import render

    offer = render("waitlist_offer", language, SAMPLES["waitlist_offer"])
    assert SAMPLES["waitlist_offer"]["offer_url"] in offer.body
    assert SAMPLES["waitlist_offer"]["offer_url"] not in render(
        "waitlist_offer", language, {**SAMPLES["waitlist_offer"], "offer_url": ""}).body
