"""A stranger who knows a customer's phone number (or email) must not rename her, change her language or her
channels, nor read her name back: a booking keeps the name its caller gave (`contact_name`), which is what whoever
holds its code is shown, while her messages keep her own name and language. Her business's staff, and she herself
writing from her own number, still change them.

Ann Lee (German) books first; Mallory, who knows Ann's number, books as "Mrs Idiot" in Spanish."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from nextslot.calendars.feeds import one_booking_ics
from nextslot.conversations.bound_tools import execute_as_sender
from nextslot.core.customers.data_rights import erase_customer, export_customer
from nextslot.core.results import Booked, SeriesBooked
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingCreate, CustomerIn, SeriesCreate, WaitlistJoin
from nextslot.storage.engine import engine_for
from nextslot.storage.migrate import alembic_config, upgrade
from nextslot.storage.tables import Booking, Customer
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.conftest import example
from tests.reminders.conftest import quiet_outbox  # noqa: F401 - an autouse fixture: other tests' messages stay put
from tests.reminders.test_dispatcher import ScriptedChannel

ANN, ANN_EMAIL = "+447911123456", "ann@example.com"
TUE_9, TUE_10, TUE_11 = (datetime(2026, 11, 24, h, 0, tzinfo=UTC) for h in (9, 10, 11))  # London is on UTC
STRANGERS = ("mcp", "openai", "vapi", "retell", "elevenlabs", "page", "public_mcp", "web_chat", "api")


@pytest.fixture
def clinic(make_business) -> int:
    config = example("clinic")  # her reminders quote her name: the proof of whose name they use
    config["business"]["details"]["templates"] = {lang: {"reminder": f"{word} {{{{ name }}}}: {{{{ when }}}}"}
                                                  for lang, word in (("de", "Erinnerung für"), ("es", "Para"))}
    return make_business(config)


def book(service, business: int, start: datetime, name: str, source: str, **contact):
    contact = contact or {"phone": ANN}
    result = service.book(business, BookingCreate(service="consultation", starts_at=start, source=source,
                                                  customer=CustomerIn(name=name, **contact)))
    assert isinstance(result, Booked), result
    return result.booking


def ann_books(service, business: int):
    """Ann's own first booking, from the page, in German, with her email."""
    return book(service, business, TUE_9, "Ann Lee", "page", phone=ANN, email=ANN_EMAIL, language="de",
                channels=["sms", "email"])


def customer_row(session_factory, business: int) -> Customer:
    with session_factory() as s:
        return s.scalars(select(Customer).where(Customer.business_id == business,
                                                Customer.email == ANN_EMAIL)).one()


def contact_name_of(session_factory, code: str) -> str | None:
    with session_factory() as s:
        return s.scalar(select(Booking.contact_name).where(Booking.code == code))


@pytest.mark.parametrize("source", STRANGERS)
@pytest.mark.parametrize("known_by", ["phone", "email"])
def test_a_strangers_booking_with_her_contact_leaves_her_name_language_and_channels_as_they_were(
        service, clinic, session_factory, source, known_by):
    ann_books(service, clinic)
    contact = {"phone": ANN} if known_by == "phone" else {"email": ANN_EMAIL}
    mallory = book(service, clinic, TUE_10, "Mrs Idiot", source, **contact, language="es", channels=["email"])
    ann = customer_row(session_factory, clinic)
    assert (ann.name, ann.language, ann.channels) == ("Ann Lee", "de", ["sms", "email"])
    assert mallory.customer.id == ann.id  # the same customer: her messages, her no-shows
    assert mallory.contact_name == mallory.name_given == "Mrs Idiot" and mallory.booked_as == "Mrs Idiot"
    assert contact_name_of(session_factory, mallory.code) == "Mrs Idiot"


def test_the_strangers_tool_replies_show_the_name_they_gave_never_hers(service, clinic):
    ann_books(service, clinic)
    ctx = ToolContext(service, clinic, "mcp")
    booked = execute("book_appointment", {"service": "consultation", "starts_at": TUE_10.isoformat(),
                                          "customer_name": "Mrs Idiot", "phone": ANN, "language": "es"}, ctx)
    assert booked.ok and booked.data["appointment"]["customer_name"] == "Mrs Idiot", booked.data
    code = booked.data["appointment"]["code"]
    replies = [booked,
               execute("find_appointments", {"code": code}, ctx),
               execute("reschedule_appointment", {"code": code, "new_starts_at": TUE_11.isoformat()}, ctx),
               execute("confirm_appointment", {"code": code}, ctx),
               execute("cancel_appointment", {"code": code}, ctx)]
    for reply in replies:
        assert reply.ok, reply.data
        shown = reply.data.get("appointment") or reply.data["appointments"][0]
        assert shown["customer_name"] == "Mrs Idiot"
        assert "Ann" not in json.dumps(reply.data), reply.data


def test_a_strangers_series_names_each_occurrence_as_given_and_renames_no_one(service, clinic, session_factory):
    ann_books(service, clinic)
    result = service.book_series(clinic, SeriesCreate(
        service="consultation", starts_at=TUE_10, source="mcp", repeat={"every": "week", "count": 2},
        customer=CustomerIn(name="Mrs Idiot", phone=ANN, language="es")))
    assert isinstance(result, SeriesBooked) and result.series.complete, result
    assert [o.booking.name_given for o in result.series.occurrences] == ["Mrs Idiot", "Mrs Idiot"]
    assert (customer_row(session_factory, clinic).name, customer_row(session_factory, clinic).language) == (
        "Ann Lee", "de")


def test_joining_the_waitlist_with_her_number_renames_no_one(service, clinic, session_factory):
    ann_books(service, clinic)
    joined = service.join_waitlist(clinic, WaitlistJoin(
        service="consultation", customer=CustomerIn(name="Mrs Idiot", phone=ANN, language="es"),
        earliest_date=TUE_9.date(), latest_date=TUE_9.date(), source="mcp"))
    assert joined.customer.name == "Ann Lee"
    assert customer_row(session_factory, clinic).language == "de"


def test_her_messages_about_the_strangers_booking_keep_her_name_and_language(
        service, clinic, session_factory, clock):
    ann_books(service, clinic)
    book(service, clinic, TUE_10, "Mrs Idiot", "vapi", phone=ANN, language="es")
    channels = {name: ScriptedChannel(name) for name in ("whatsapp", "sms", "email")}
    dispatcher = Dispatcher(session_factory, channels, clock=clock)
    dispatcher.dispatch_due()  # the two confirmations, to her phone
    confirmations = [m.body for m in channels["sms"].sent]
    assert len(confirmations) == 2 and all(m.startswith("Hallo Ann Lee,") for m in confirmations), confirmations
    clock.now = TUE_10 - timedelta(hours=2)
    dispatcher.dispatch_due()
    reminders = channels["sms"].sent[2:]
    assert len(reminders) == 2, reminders  # the latest one due of each booking
    assert all(m.to == ANN and m.body.startswith("Erinnerung für Ann Lee: ") for m in reminders), reminders
    assert "Idiot" not in " ".join(m.body for m in channels["sms"].sent)


@pytest.mark.parametrize("source", ["staff", "console"])
def test_her_business_staff_still_rename_her_and_change_her_language(service, clinic, session_factory, source):
    ann_books(service, clinic)
    fixed = book(service, clinic, TUE_10, "Ann Lee-Smith", source, phone=ANN, language="fr", channels=["email"])
    ann = customer_row(session_factory, clinic)
    assert (ann.name, ann.language, ann.channels) == ("Ann Lee-Smith", "fr", ["email"])
    assert fixed.name_given == "Ann Lee-Smith" and fixed.booked_as is None


@pytest.mark.parametrize("channel", ["sms_chat", "whatsapp_chat"])
def test_she_renames_herself_writing_from_her_own_number(service, clinic, session_factory, channel):
    """A conversation over SMS or WhatsApp comes from her own number, and its tools book for that number only:
    it is the phone's owner who speaks, so her name and language follow what she says."""
    ann_books(service, clinic)
    ctx = ToolContext(service, clinic, channel, caller_phone=ANN, language="es")
    booked = execute_as_sender("book_appointment", {"service": "consultation", "starts_at": TUE_10.isoformat(),
                                                    "customer_name": "Ana Lee", "phone": "+447911000000"}, ctx)
    assert booked.ok and booked.data["appointment"]["customer_name"] == "Ana Lee", booked.data
    ann = customer_row(session_factory, clinic)
    assert (ann.name, ann.language, ann.phone) == ("Ana Lee", "es", ANN)


def test_a_new_customer_is_made_with_the_name_language_and_channels_given(service, clinic, session_factory):
    new = book(service, clinic, TUE_10, "Bea Cole", "public_mcp", phone="+447911123457", email="bea@example.com",
               language="fr", channels=["email"])
    with session_factory() as s:
        bea = s.get(Customer, new.customer.id)
        assert (bea.name, bea.language, bea.channels) == ("Bea Cole", "fr", ["email"])
    assert new.name_given == "Bea Cole" and new.booked_as is None


def test_her_own_calendar_file_names_the_booking_as_it_was_booked(service, clinic):
    """The .ics behind the page's "Add to your calendar" is reached by the manage link, which the booker holds."""
    ann_books(service, clinic)
    mallory = book(service, clinic, TUE_10, "Mrs Idiot", "page", phone=ANN)
    ics = one_booking_ics(service.uow(), clinic, mallory.code, service.now()).decode()
    assert "GP consultation: Mrs Idiot" in ics and "Ann" not in ics


def test_erasing_her_removes_the_names_given_for_her_bookings_and_the_export_shows_them(
        service, clinic, session_factory, clock):
    mine = ann_books(service, clinic)
    mallory = book(service, clinic, TUE_10, "Mrs Idiot", "mcp", phone=ANN)
    exported = export_customer(SqlAlchemyUnitOfWork(session_factory), clinic, service.now(), phone=ANN)
    assert [b["contact_name"] for b in exported["bookings"]] == ["Ann Lee", "Mrs Idiot"]
    clock.now = TUE_10 + timedelta(hours=1)  # both are over
    erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, clock.now, phone=ANN)
    assert contact_name_of(session_factory, mine.code) is None and contact_name_of(session_factory, mallory.code) is None
    assert service.get_booking(clinic, mallory.code).name_given == ""


def test_the_migration_names_existing_bookings_by_their_customers_name_and_goes_back(database_at):
    url = database_at("0030_waitlist_party")
    old = engine_for(url)
    try:
        with old.begin() as conn:  # rows as the code before stored them (their parents are not needed here)
            conn.execute(text("set local session_replication_role = replica"))
            conn.execute(text(
                "insert into customers (id, business_id, name, phone, language, channels, no_show_count, "
                "created_at, erased_at) values (1, 1, 'Ann Lee', '+447911123456', 'de', '[]', 0, now(), null), "
                "(2, 1, 'Erased customer', null, 'en', '[]', 0, now(), now())"))
            conn.execute(text(
                "insert into bookings (id, business_id, code, service_id, customer_id, status, starts_at, ends_at, "
                "source, intake, notes, created_at, updated_at) values "
                "(1, 1, 'AAAAAA', 1, 1, 'booked', now(), now() + interval '1 hour', 'mcp', '{}', '', now(), now()), "
                "(2, 1, 'BBBBBB', 1, 2, 'booked', now(), now() + interval '1 hour', 'mcp', '{}', '', now(), now())"))
        upgrade(url, "0031_booking_contact_name")
        with old.connect() as conn:
            assert dict(conn.execute(text("select id, contact_name from bookings")).all()) == {
                1: "Ann Lee", 2: None}
        command.downgrade(alembic_config(url), "0030_waitlist_party")
        with old.connect() as conn:
            assert "contact_name" not in {c["name"] for c in inspect(conn).get_columns("bookings")}
            assert conn.execute(text("select count(*) from bookings")).scalar() == 2
        upgrade(url)
        with old.connect() as conn:
            assert conn.execute(text("select contact_name from bookings where id = 1")).scalar() == "Ann Lee"
    finally:
        old.dispose()
