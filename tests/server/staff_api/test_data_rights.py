"""A customer's data request through /v1 on the real database: export everything, erase (refused while bookings
are upcoming, unless cancelled with it), the invariants still holding after; the audit log of changes."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text

from nextslot.core import audit
from nextslot.core.business.config_edits import edit_resource
from nextslot.core.customers.data_rights import purge_expired
from nextslot.core.operations import check_invariants
from nextslot.reminders.channels.local_outbox import LocalOutboxChannel
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.storage.tables import (
    Booking,
    BookingHistory,
    Claim,
    Customer,
    InboundMessage,
    WaitlistEntry,
    WaitlistOffer,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.server.staff_api.conftest import at, phone

# where a customer's phone or email could be stored, each row read whole as text
PERSONAL_TABLES = ("customers", "notifications", "delivery_attempts", "inbound_messages", "conversations",
                   "conversation_messages", "conversation_tool_calls", "webhook_deliveries", "bookings")


def mentions(session_factory, business_id: int, needle: str) -> dict[str, int]:
    with session_factory() as s:
        found = {t: s.scalar(text(f"select count(*) from {t} x where x.business_id = :b and x::text like :n"),
                             {"b": business_id, "n": f"%{needle}%"}) for t in PERSONAL_TABLES}
    return {t: n for t, n in found.items() if n}


def test_a_customer_is_exported_whole_then_erased_with_the_books_kept_consistent(
        api, clinic, make_business, service, session_factory, clock, tmp_path):
    client = api(clinic)
    ivy = phone(901)
    past = client.post("/v1/bookings", json={"service": "consultation", "starts_at": at("09:00"), "notes": "knee",
                                             "customer": {"name": "Ivy Erase", "phone": ivy,
                                                          "email": "ivy.erase@example.com"}})
    upcoming = client.post("/v1/bookings", json={"service": "consultation", "starts_at": at("10:00", "2026-12-01"),
                                                 "customer": {"name": "Ivy Erase", "phone": ivy}})
    other = client.post("/v1/bookings", json={"service": "consultation", "starts_at": at("11:00"),
                                               "customer": {"name": "Otto Keep", "phone": phone(902)}})
    assert past.status_code == upcoming.status_code == other.status_code == 201, past.text
    client.post("/v1/waitlist", json={"service": "consultation", "customer": {"name": "Ivy Erase", "phone": ivy},
                                      "earliest_date": "2026-11-30", "latest_date": "2026-12-04"})
    dispatcher = Dispatcher(session_factory, {"whatsapp": LocalOutboxChannel("whatsapp", tmp_path / "outbox.jsonl")},
                            clock=clock)
    while dispatcher.dispatch_due():  # the confirmations go out (a batch may first hold other tests' messages)
        pass
    with session_factory() as s:
        customer_id = s.scalar(select(Customer.id).where(Customer.business_id == clinic, Customer.phone == ivy))
        s.add(InboundMessage(business_id=clinic, customer_id=customer_id, channel="sms", sender=ivy,
                             body="yes see you then", intent="confirm", outcome="confirmed", answer="Thanks Ivy"))
        s.commit()

    exported = client.get("/v1/customers/export", params={"phone": "07900 900901"})  # local format works
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["customer"]["email"] == "ivy.erase@example.com" and document["customer"]["name"] == "Ivy Erase"
    codes = {b["code"] for b in document["bookings"]}
    assert codes == {past.json()["code"], upcoming.json()["code"]}  # Otto's is not there
    first = next(b for b in document["bookings"] if b["code"] == past.json()["code"])
    assert first["notes"] == "knee" and first["history"][0]["action"] == "created"
    assert first["messages"][0]["kind"] == "confirmation" and first["messages"][0]["attempts"][0]["recipient"] == ivy
    assert document["replies"][0]["body"] == "yes see you then" and document["waitlist"][0]["status"] == "waiting"
    assert api(make_business("clinic")).get("/v1/customers/export", params={"id": customer_id}).status_code == 422

    clock.now += timedelta(days=2)  # the first booking is over; the second is still ahead
    refused = client.post("/v1/customers/erase", json={"phone": ivy})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "upcoming_bookings"
    assert upcoming.json()["code"] in refused.json()["error"]["message"]
    erased = client.post("/v1/customers/erase", json={"phone": ivy, "cancel_upcoming": True})
    assert erased.status_code == 200, erased.text
    assert erased.json() | {"messages": 0} == {"erased": customer_id, "bookings": 2, "cancelled": 1, "messages": 0,
                                               "conversations": 0, "already": False}

    assert mentions(session_factory, clinic, "900901") == {}  # the number is nowhere any more
    assert mentions(session_factory, clinic, "ivy.erase") == {} and mentions(session_factory, clinic, "Ivy") == {}
    assert mentions(session_factory, clinic, "900902")  # another customer's data is untouched
    with session_factory() as s:
        kept = {b.code: b for b in s.scalars(select(Booking).where(Booking.customer_id == customer_id))}
        assert kept[past.json()["code"]].status == "booked" and kept[upcoming.json()["code"]].status == "cancelled"
        assert s.scalar(select(Claim.id).where(Claim.booking_id == kept[past.json()["code"]].id, Claim.active))
        assert not s.scalar(select(Claim.id).where(Claim.booking_id == kept[upcoming.json()["code"]].id,
                                                   Claim.active))  # its time is free again
        actions = list(s.scalars(select(BookingHistory.action).where(
            BookingHistory.booking_id == kept[upcoming.json()["code"]].id).order_by(BookingHistory.id)))
        assert actions == ["created", "cancelled", "customer_erased"]  # appended; nothing before it changed
    assert all(c["holds"] for c in check_invariants(service)), check_invariants(service)
    with session_factory() as s:  # off the waitlist: the time their cancellation freed is offered to no one
        assert set(s.scalars(select(WaitlistEntry.status).where(WaitlistEntry.customer_id == customer_id))) \
            == {"withdrawn"}
    service.offer_freed_capacity()
    with session_factory() as s:
        assert not s.scalar(select(WaitlistOffer.id).where(WaitlistOffer.customer_id == customer_id))
    again = client.post("/v1/customers/erase", json={"id": customer_id})
    assert again.status_code == 200 and again.json()["already"] is True
    after = client.get("/v1/customers/export", params={"id": customer_id}).json()
    assert after["customer"]["name"] == "Erased customer" and after["customer"]["phone"] is None

    log = client.get("/v1/audit-log").json()["entries"]
    assert [e["action"] for e in log[:4]] == ["customer.exported", "customer.erased", "customer.exported",
                                              "api_key.created"]  # the second erase changed nothing: no entry
    assert log[1]["channel"] == "api" and log[1]["actor"] == "api key test" and log[1]["target"] == \
        f"customer {customer_id}"


def test_config_changes_are_audited_with_who_and_what_and_only_for_their_business(
        api, clinic, make_business, session_factory):
    with audit.acting_as("owner@clinic.example", "console"):
        changed = edit_resource(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-patel",
                                lambda r: r.model_copy(update={"name": "Dr Asha Patel-Ross"}))
    assert not hasattr(changed, "code"), changed
    client = api(clinic)
    current = {k: v for k, v in client.get("/v1/services/consultation").json().items() if k != "active"}
    put = client.put("/v1/services/consultation", json={**current, "duration": 25})
    assert put.status_code in (200, 201), put.text
    entries = client.get("/v1/audit-log", params={"limit": 10}).json()["entries"]
    by_action = [(e["action"], e["actor"], e["channel"]) for e in entries]
    assert ("config.updated", "owner@clinic.example", "console") in by_action
    assert ("config.updated", "api key test", "api") in by_action
    console_change = next(e for e in entries if e["channel"] == "console")
    assert console_change["changes"]["resources.dr-patel.name"] == ["Dr Asha Patel", "Dr Asha Patel-Ross"]
    api_change = next(e for e in entries if e["action"] == "config.updated" and e["channel"] == "api")
    assert api_change["changes"]["services.consultation.duration"][1] == 25
    assert all(e["changes"] or e["action"] != "config.updated" for e in entries)
    older = client.get("/v1/audit-log", params={"before_id": entries[0]["id"]}).json()["entries"]
    assert older and all(e["id"] < entries[0]["id"] for e in older)
    assert api(make_business("clinic")).get("/v1/audit-log").json()["entries"][0]["action"] == "api_key.created"
    with session_factory() as s:  # append-only, like the booking history
        try:
            s.execute(text("update audit_log set actor = 'someone else' where business_id = :b"), {"b": clinic})
            raise AssertionError("the audit log took an UPDATE")
        except Exception as error:  # noqa: BLE001
            assert "append-only" in str(error)


def test_retention_empties_old_message_texts_and_deletes_old_closed_conversations(
        api, clinic, service, session_factory, clock, tmp_path):
    client = api(clinic)
    made = client.post("/v1/bookings", json={"service": "consultation", "starts_at": at("14:00"),
                                              "customer": {"name": "Rita Retain", "phone": phone(903)}})
    assert made.status_code == 201
    with session_factory() as s:
        s.add(InboundMessage(business_id=clinic, channel="sms", sender=phone(903), body="C", intent="confirm",
                             outcome="confirmed", answer="Confirmed",
                             created_at=clock.now - timedelta(days=40)))
        s.commit()
    purged = purge_expired(service.uow(), clock.now, message_days=30, conversation_days=90)
    assert purged["replies"] >= 1
    with session_factory() as s:
        assert not s.scalar(select(InboundMessage.id).where(InboundMessage.business_id == clinic,
                                                            InboundMessage.body != ""))
