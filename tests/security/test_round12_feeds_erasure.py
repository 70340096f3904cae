"""Round 12: the private ICS feeds and a customer's erasure, attacked from outside.

Feeds: an unpaid booking and one whose deposit never came were shown as confirmed appointments (beside the
customer who took the freed time), and a feed's URL, once shared, could never be taken back. Erasure: the booking
page's chat, the webhooks still waiting to go out, the staff's own calendars, the WhatsApp window and the one-time
codes kept the customer's name, number or email after she was erased; an email address two customers share
exported and erased one of them silently. The real app, the real database, the Google Calendar fake (the real
client libraries) and the booking page's chat as a visitor uses it.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import httpx2
import pytest
from icalendar import Calendar
from sqlalchemy import select, text

from nextslot.calendars.feeds import create_feed, feed_ics, list_feeds, revoke_feed
from nextslot.calendars.writes import CalendarWriter
from nextslot.core import audit
from nextslot.core.customers.data_rights import Erased, erase_customer, export_customer
from nextslot.core.results import Booked, Rejected
from nextslot.reminders.whatsapp_window import record_inbound
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.tables import Business, ContactProof, Conversation, ConversationMessage, WebhookDelivery
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.webhooks.endpoints import add_endpoint
from tests.calendars.conftest import google, google_registry, google_server  # noqa: F401 - the Google fake
from tests.calendars.test_google import connect as connect_google
from tests.calendars.test_sync import at, book_okafor
from tests.conversations.test_web_chat import web_chat  # noqa: F401 - the booking page's chat, as a visitor
from tests.server.test_cli import nextslot as run_cli
from tests.server.test_payments import ANSWERS

VAN_TIME = datetime.fromisoformat("2026-11-24T10:00:00-05:00")


def events_of(session_factory, token: str, now: datetime) -> list[tuple[str, str, datetime]]:
    """The feed's events as (summary, status, start)."""
    body = feed_ics(SqlAlchemyUnitOfWork(session_factory), token, now)
    assert body is not None
    return sorted((str(e["summary"]), str(e["status"]), e.decoded("dtstart"))
                  for e in Calendar.from_ical(body).walk("VEVENT"))


def book_van(service, garage: int, name: str, phone: str):
    made = service.book(garage, BookingCreate(service="mobile-repair", starts_at=VAN_TIME, intake=ANSWERS,
                                              customer=CustomerIn(name=name, phone=phone)))
    assert isinstance(made, Booked) and made.booking.status == "pending_payment", made
    return made.booking


# --- feeds -----------------------------------------------------------------------------------------------------


def test_an_unpaid_booking_is_tentative_and_one_whose_deposit_never_came_shows_cancelled(
        service, make_business, session_factory, clock):
    # The feed said CONFIRMED for every status but cancelled: a van waiting for its deposit was a firm appointment in
    # the staff's calendar, and once the deposit lapsed and another customer took the time, the calendar showed two
    # confirmed appointments at 10:00, one of them for nobody.
    garage = make_business("garage")
    token = create_feed(SqlAlchemyUnitOfWork(session_factory), garage)
    book_van(service, garage, "Ada Unpaid", "+12125550171")
    assert [s for _, s, _ in events_of(session_factory, token, clock())] == ["TENTATIVE"]
    clock.now += timedelta(minutes=31)  # past the deposit's deadline
    assert service.expire_unpaid() >= 1  # every business's lapsed deposits: earlier tests may have left some
    book_van(service, garage, "Bob Later", "+12125550172")
    shown = events_of(session_factory, token, clock())
    assert [(name.split(": ")[1], status) for name, status, _ in shown] == [
        ("Ada Unpaid", "CANCELLED"), ("Bob Later", "TENTATIVE")]


def test_a_feed_is_listed_and_revoked_and_a_revoked_or_another_businesss_feed_is_refused(
        make_business, session_factory, clock, live_server):
    # Nothing could revoke a feed: the URL a departing receptionist had subscribed to went on serving every customer's
    # name and notes a year ahead, for good. Now staff list a business's feeds and revoke one by its id.
    clinic, other = make_business("clinic"), make_business("clinic")
    token = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-patel")
    kept = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic)
    [patel, whole] = list_feeds(SqlAlchemyUnitOfWork(session_factory), clinic)
    assert (patel.resource, whole.resource, patel.revoked_at) == ("dr-patel", None, None)
    refused = revoke_feed(SqlAlchemyUnitOfWork(session_factory), other, patel.id, clock())
    assert isinstance(refused, Rejected) and refused.code == "unknown_feed"  # not the other business's to revoke
    with audit.acting_as("owner@clinic.example", "cli"):
        revoked = revoke_feed(SqlAlchemyUnitOfWork(session_factory), clinic, patel.id, clock())
    assert not isinstance(revoked, Rejected) and revoked.revoked_at == clock()
    assert feed_ics(SqlAlchemyUnitOfWork(session_factory), token, clock()) is None
    assert feed_ics(SqlAlchemyUnitOfWork(session_factory), kept, clock()) is not None
    again = revoke_feed(SqlAlchemyUnitOfWork(session_factory), clinic, patel.id, clock() + timedelta(hours=1))
    assert again.revoked_at == clock()  # revoking twice keeps the first time
    with session_factory() as s:
        entries = s.execute(text("select action, target, actor from audit_log where business_id = :b and action "
                                 "like 'ics_feed%' order by id"), {"b": clinic}).all()
    assert [tuple(e) for e in entries] == [("ics_feed.created", f"feed {patel.id}", "system"),
                                           ("ics_feed.created", f"feed {whole.id}", "system"),
                                           ("ics_feed.revoked", f"feed {patel.id}", "owner@clinic.example")]
    with live_server(frozen=True) as server:
        assert httpx2.get(f"{server.url}/ics/{token}.ics").status_code == 404
        assert httpx2.get(f"{server.url}/ics/{kept}.ics").status_code == 200


def test_the_cli_lists_and_revokes_a_businesss_feeds(database_url, make_business, session_factory):
    clinic = make_business("clinic")
    with session_factory() as s:
        slug = s.get(Business, clinic).slug
    made = run_cli(database_url, "ics-feed", slug, "--resource", "dr-okafor")
    assert made.returncode == 0, made.stderr
    listed = run_cli(database_url, "ics-feed", slug, "--list")
    assert listed.returncode == 0, listed.stderr
    [feed] = json.loads(listed.stdout)["feeds"]
    assert feed["resource"] == "dr-okafor" and feed["revoked_at"] is None
    revoked = run_cli(database_url, "ics-feed", slug, "--revoke", str(feed["id"]))
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    token = made.stdout.strip().rsplit("/", 1)[1].removesuffix(".ics")
    assert feed_ics(SqlAlchemyUnitOfWork(session_factory), token, datetime.now().astimezone()) is None
    unknown = run_cli(database_url, "ics-feed", slug, "--revoke", "999999999999")
    assert unknown.returncode == 2 and json.loads(unknown.stderr)["error"] == "unknown_feed"


# --- erasure ---------------------------------------------------------------------------------------------------


def rows_naming(session_factory, business_id: int, needle: str, tables: tuple[str, ...]) -> dict[str, int]:
    """How many rows of each table, read whole as text, still hold `needle`."""
    with session_factory() as s:
        found = {t: s.scalar(text(f"select count(*) from {t} x where x.business_id = :b and x::text like :n"),
                             {"b": business_id, "n": f"%{needle}%"}) for t in tables}
    return {t: n for t, n in found.items() if n}


def test_a_chat_on_the_booking_page_is_exported_with_the_customer_and_erased_with_her(
        web_chat, service, session_factory):  # noqa: F811 - the fixture imported above
    # A booking-page chat keeps the visitor's name and number in its own record (its phone column stays empty) and
    # never named the customer it booked for, so the export left it out and the erasure left it whole: her number,
    # her name and every line she wrote stayed.
    web_chat.say("hello, I am Wendy Webb", name="Wendy Webb", phone="07911 123711")
    for choice in ("1", "1", "2", "1", "1"):  # book a GP consultation, the first time of Tuesday, as Wendy
        answer = web_chat.say(choice)
    assert answer.startswith("Booked:"), answer
    business = web_chat.conversation().business_id
    exported = export_customer(SqlAlchemyUnitOfWork(session_factory), business, service.now(), phone="+447911123711")
    assert not isinstance(exported, Rejected)
    [chat] = exported["conversations"]
    assert chat["channel"] == "web" and "hello, I am Wendy Webb" in [m["body"] for m in chat["messages"]]

    gone = erase_customer(SqlAlchemyUnitOfWork(session_factory), business, service.now(), cancel_upcoming=True,
                          phone="+447911123711")
    assert isinstance(gone, Erased) and gone.conversations == 1, gone
    tables = ("conversations", "conversation_messages", "conversation_tool_calls")
    assert rows_naming(session_factory, business, "7911123711", tables) == {}
    assert rows_naming(session_factory, business, "Wendy", tables) == {}
    with session_factory() as s:
        conversation = s.get(Conversation, chat["id"])
        assert conversation.identity == {} and conversation.status == "closed"
        assert set(s.scalars(select(ConversationMessage.body).where(
            ConversationMessage.conversation_id == chat["id"]))) == {""}


def test_webhooks_still_waiting_to_go_out_carry_no_contact_of_an_erased_customer(
        service, make_business, session_factory):
    # The erasure emptied the bodies of events already delivered or given up on, but not of those still pending: the
    # cancellation it made itself (cancel_upcoming) went out afterwards with her name, phone and email, and so did
    # any event still being retried.
    clinic = make_business("clinic")
    registered = add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, "http://127.0.0.1:9/hooks",
                              allow_private=True)
    assert not isinstance(registered, Rejected), registered
    try:
        erased_events_carry_no_contact(service, clinic, session_factory)
    finally:  # the scheduler's queue is every test's: these are not a later test's to send
        with session_factory() as s:
            s.execute(text("update webhook_deliveries set status = 'failed' where business_id = :b"), {"b": clinic})
            s.execute(text("update webhook_endpoints set active = false where business_id = :b"), {"b": clinic})
            s.commit()


def erased_events_carry_no_contact(service, clinic: int, session_factory) -> None:
    made = service.book(clinic, BookingCreate(service="consultation", starts_at=at(10, day=at(24 * 2)),
                                              intake={}, notes="left knee", customer=CustomerIn(
                                                  name="Eve Pending", phone="+447911123712",
                                                  email="eve.pending@example.com")))
    assert isinstance(made, Booked), made
    other = service.book(clinic, BookingCreate(service="consultation", starts_at=at(11, day=at(24 * 2)),
                                               customer=CustomerIn(name="Olga Stays", phone="+447911123713")))
    assert isinstance(other, Booked), other
    gone = erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, service.now(), cancel_upcoming=True,
                          phone="+447911123712")
    assert isinstance(gone, Erased) and gone.cancelled == 1, gone
    with session_factory() as s:
        waiting = list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == clinic)
                                 .order_by(WebhookDelivery.id)))
    assert [(d.event_type, d.status) for d in waiting] == [
        ("booking.created", "pending"), ("booking.created", "pending"), ("booking.cancelled", "pending")]
    bodies = [json.loads(d.body) for d in waiting]
    erased_events = [b for b in bodies if b["data"]["booking"]["code"] == made.booking.code]
    assert [b["type"] for b in erased_events] == ["booking.created", "booking.cancelled"]  # the business still hears
    for event in erased_events:
        customer = event["data"]["booking"]["customer"]
        assert (customer["name"], customer["phone"], customer["email"]) == ("Erased customer", None, None)
    assert rows_naming(session_factory, clinic, "7911123712", ("webhook_deliveries",)) == {}
    assert rows_naming(session_factory, clinic, "eve.pending", ("webhook_deliveries",)) == {}
    assert rows_naming(session_factory, clinic, "Eve", ("webhook_deliveries",)) == {}
    assert rows_naming(session_factory, clinic, "Olga Stays", ("webhook_deliveries",))  # another's untouched


def test_an_erased_customers_name_leaves_the_staff_calendars_her_bookings_were_written_into(
        google, google_registry, service, make_business, session_factory, clock):  # noqa: F811
    # A past booking stays in the books, and its event stays in the staff member's Google calendar, titled with the
    # customer's name ("GP consultation: Ada") for as long as the calendar keeps it. The erasure now writes her
    # bookings' events again, as they stand after it.
    clinic = make_business("clinic")
    connect_google(google, google_registry, session_factory, clinic, clock())
    writer = CalendarWriter(session_factory, google_registry, clock)
    made = book_okafor(service, clinic, at(10))
    assert isinstance(made, Booked), made
    while writer.write_due():
        pass
    [event] = google.live()
    assert event["summary"] == "GP consultation: Ada"
    clock.now = at(12)  # the appointment is over
    gone = erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, clock(), phone="+447911123456")
    assert isinstance(gone, Erased), gone
    while writer.write_due():
        pass
    [event] = google.live()  # the same event, still showing the time taken, without her name
    assert event["summary"] == "GP consultation: Erased customer"


def test_the_whatsapp_window_and_one_time_codes_of_an_erased_customer_go_with_her(
        service, make_business, session_factory):
    # The WhatsApp window (when she last wrote, from which number) and the one-time codes sent to her phone and email
    # (each row naming the contact in clear) outlived the erasure.
    clinic = make_business("clinic")
    made = service.book(clinic, BookingCreate(service="consultation", starts_at=at(10, day=at(24 * 2)),
                                              customer=CustomerIn(name="Wynn", phone="+447911123714",
                                                                  email="wynn.codes@example.com")))
    assert isinstance(made, Booked), made
    assert not isinstance(service.request_contact_code(clinic, "+447911123714"), Rejected)
    assert not isinstance(service.request_contact_code(clinic, "Wynn.Codes@example.com"), Rejected)
    with session_factory() as s:
        record_inbound(s, "+447911123714", None, service.now(), timedelta(hours=1))
        s.commit()
    tables = ("whatsapp_windows", "contact_proofs")
    assert rows_naming(session_factory, clinic, "7911123714", tables) == {"whatsapp_windows": 1, "contact_proofs": 1}
    gone = erase_customer(SqlAlchemyUnitOfWork(session_factory), clinic, service.now(), cancel_upcoming=True,
                          phone="+447911123714")
    assert isinstance(gone, Erased), gone
    assert rows_naming(session_factory, clinic, "7911123714", tables) == {}
    assert rows_naming(session_factory, clinic, "wynn.codes", tables) == {}
    with session_factory() as s:
        assert not s.scalar(select(ContactProof.id).where(ContactProof.business_id == clinic))


def test_an_email_two_customers_share_names_neither_for_an_export_or_an_erasure(
        api, clinic, service, session_factory):
    # Two customers (a parent's and a child's numbers) gave one email address. Export and erasure by that email
    # took the lower id only: the export was missing the other's bookings, and the erasure left the other with the
    # email (and her name and number) while answering "erased". Both now say which customers the address names.
    client = api(clinic)
    for n, name in ((15, "Pat Parent"), (16, "Kit Child")):
        made = client.post("/v1/bookings", json={"service": "consultation",
                                                 "starts_at": f"2026-11-24T{n - 5}:00:00+00:00",
                                                 "customer": {"name": name, "phone": f"+4479111237{n}",
                                                              "email": "family@example.com"}})
        assert made.status_code == 201, made.text
    for answer in (client.get("/v1/customers/export", params={"email": "Family@example.com"}),
                   client.post("/v1/customers/erase", json={"email": "family@example.com", "cancel_upcoming": True})):
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "several_customers" and "phone" in error["message"], error
    assert rows_naming(session_factory, clinic, "family@example.com", ("customers",)) == {"customers": 2}
    by_phone = client.post("/v1/customers/erase", json={"phone": "+447911123715", "cancel_upcoming": True})
    assert by_phone.status_code == 200, by_phone.text
    assert client.get("/v1/customers/export", params={"email": "family@example.com"}).json()["customer"]["name"] \
        == "Kit Child"  # one customer left with it: found as before


def test_a_feed_of_thousands_of_bookings_costs_a_few_statements_and_no_library_object_per_booking(
        make_business, session_factory, clock, engine, monkeypatch):
    # A busy business's feed (10,000 bookings within its year) took 7.8 s of a worker's CPU on each poll of each
    # subscriber, 6 s of it in the icalendar library building and folding an object per property of every event.
    # The events are now written as text (the library still escapes and folds them): about 1.5 s, most of it reading
    # the bookings. Counted, not timed: the statements a feed costs, and the library's events built for it (none);
    # 2,000 bookings show both as well as 10,000 would, in a fifth of the suite's time.
    import icalendar
    from sqlalchemy import event

    count = 2_000
    clinic = make_business("clinic")
    with session_factory() as s:
        s.execute(text("""
            insert into customers (business_id, name, phone, language, channels, opted_out, no_show_count, created_at)
            select :b, 'Bulk, ' || n, '+4479000' || lpad(n::text, 5, '0'), 'en', '[]', '[]', 0, now()
            from generate_series(1, :n) n"""), {"b": clinic, "n": count})
        s.execute(text("""
            insert into bookings (business_id, code, service_id, customer_id, status, starts_at, ends_at, source,
                                  intake, notes, created_at, updated_at, party_size)
            select :b, 'B' || lpad(c.id::text, 12, '0'), (select id from services where business_id = :b limit 1),
                   c.id, 'completed', :t + make_interval(mins => 20 * (row_number() over (order by c.id))::int),
                   :t + make_interval(mins => 20 * (row_number() over (order by c.id))::int + 20), 'staff',
                   '{}', 'notes, with; commas', now(), now(), 1
            from customers c where c.business_id = :b"""), {"b": clinic, "t": clock()})
        s.execute(text("""
            insert into booking_history (business_id, booking_id, at, action, actor, channel, note)
            select :b, id, now(), 'created', 'test', 'staff', '' from bookings where business_id = :b"""),
                  {"b": clinic})  # `nextslot check` holds for them (no claims: not live; each created)
        s.commit()
    token = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic)
    statements, built = [], []
    monkeypatch.setattr(icalendar.Event, "__init__", lambda self, *a, **k: (built.append(1),
                                                                            icalendar.Component.__init__(self, *a, **k))[1])

    def count_statement(*_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(1)

    event.listen(engine, "before_cursor_execute", count_statement)
    try:
        started = time.perf_counter()
        body = feed_ics(SqlAlchemyUnitOfWork(session_factory), token, clock())
        took = time.perf_counter() - started
    finally:
        event.remove(engine, "before_cursor_execute", count_statement)
    assert body is not None and body.count(b"BEGIN:VEVENT") == count
    assert len(statements) < 10 and built == [], (len(statements), len(built))
    events = Calendar.from_ical(body).walk("VEVENT")  # the library reads every one back
    assert len(events) == count and str(events[0]["summary"]) == "GP consultation: Bulk, 1"
    assert str(events[0]["description"]).endswith("Notes: notes, with; commas")
    print(f"feed of {count} bookings: {took:.2f} s, {len(body) / 1e6:.1f} MB, {len(statements)} statements")


HOSTILE = ["plain", "comma, semicolon; backslash \\ and \\n", "line\nbreak\r\nand\rreturn", "é" * 100,
           "😀" * 40 + "x", "a" * 74, "a" * 75, "a" * 300, "tab\there", "\\,\\;", "END:VEVENT\r\nBEGIN:VEVENT",
           "ä" + "b" * 73 + "\\n"]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_an_event_written_as_text_reads_back_as_the_librarys_own_event_did(value):
    from icalendar import Event

    from nextslot.calendars.ics_events import FeedEvent, calendar_with

    at_ = datetime.fromisoformat("2026-11-24T15:00:00+00:00")
    fields = FeedEvent(uid="booking-1-ABC@nextslot", sequence=3, stamp=at_, modified=at_ - timedelta(hours=1),
                       starts_at=at_, ends_at=at_ + timedelta(minutes=20), summary=f"GP: {value}",
                       description=f"Booking ABC\nNotes: {value}", location=value, status="TENTATIVE")
    ours = Calendar.from_ical(calendar_with(Calendar(), [fields])).walk("VEVENT")[0]
    theirs = Event()
    for name, value_ in (("uid", fields.uid), ("sequence", fields.sequence), ("dtstamp", fields.stamp),
                         ("last-modified", fields.modified), ("dtstart", fields.starts_at),
                         ("dtend", fields.ends_at), ("summary", fields.summary), ("description", fields.description),
                         ("location", fields.location), ("status", fields.status)):
        theirs.add(name, value_)
    library = Calendar.from_ical(Calendar().to_ical().replace(b"END:VCALENDAR", theirs.to_ical() + b"END:VCALENDAR"))
    expected = library.walk("VEVENT")[0]
    assert {k: ours.decoded(k) for k in ours} == {k: expected.decoded(k) for k in expected}
    raw = calendar_with(Calendar(), [fields])
    assert all(len(line) <= 75 for line in raw.split(b"\r\n")), [line for line in raw.split(b"\r\n") if len(line) > 75]
    assert raw.count(b"\r\nBEGIN:VEVENT\r\n") == 1 and b"\n" not in raw.replace(b"\r\n", b"")
