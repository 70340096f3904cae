"""`nextslot customer export|erase` and `nextslot retention` as real processes against the test database."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from nextslot.core.clock import utcnow
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.tables import AuditEntry, Business, Conversation, ConversationMessage, Customer
from tests.server.test_cli import nextslot, refusal


def test_a_customer_is_exported_to_a_file_and_erased_from_the_command_line(database_url, make_business, service,
                                                                           session_factory, tmp_path):
    clinic = make_business("clinic")
    with session_factory() as s:
        slug = s.get(Business, clinic).slug
    booked = service.book(clinic, BookingCreate(service="consultation", starts_at="2026-11-24T09:00:00Z",
                                                customer=CustomerIn(name="Cleo Cli", phone="+447900960001")))
    assert isinstance(booked, Booked)
    out = tmp_path / "cleo.json"
    exported = nextslot(database_url, "customer", slug, "export", "--phone", "07900 960001", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["bookings"][0]["code"] == booked.booking.code

    assert refusal(nextslot(database_url, "customer", slug, "erase", "--phone", "+447900960001"))["error"] \
        == "confirmation_required"
    assert refusal(nextslot(database_url, "customer", slug, "export"))["error"] == "identifier_required"
    assert refusal(nextslot(database_url, "customer", slug, "export", "--phone", "+447900000000"))["error"] \
        == "unknown_customer"
    if booked.booking.starts_at.utc > utcnow():  # the frozen booking day may still be ahead of the real clock
        assert refusal(nextslot(database_url, "customer", slug, "erase", "--phone", "+447900960001", "--yes")
                       )["error"] == "upcoming_bookings"
    erased = nextslot(database_url, "customer", slug, "erase", "--phone", "+447900960001", "--yes",
                      "--cancel-upcoming")
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["bookings"] == 1
    with session_factory() as s:
        assert s.scalar(select(Customer.phone).where(Customer.business_id == clinic, Customer.name == "Erased customer")
                        ) is None
        actors = set(s.scalars(select(AuditEntry.actor).where(AuditEntry.business_id == clinic,
                                                              AuditEntry.action == "customer.erased")))
    assert len(actors) == 1 and actors.pop().startswith("cli (")


def test_retention_from_the_command_line_deletes_old_closed_conversations_and_keeps_recent_ones(
        database_url, make_business, session_factory):
    clinic = make_business("clinic")
    now = utcnow()
    with session_factory() as s:
        old = Conversation(business_id=clinic, channel="sms", phone="+447900960002", status="closed",
                           last_message_at=now - timedelta(days=100), closed_at=now - timedelta(days=100))
        recent = Conversation(business_id=clinic, channel="sms", phone="+447900960003", status="closed",
                              last_message_at=now - timedelta(days=2), closed_at=now - timedelta(days=2))
        s.add_all([old, recent])
        s.flush()
        s.add_all([ConversationMessage(business_id=clinic, conversation_id=c.id, direction="in", body="hello there",
                                       created_at=c.last_message_at, processed_at=c.last_message_at)
                   for c in (old, recent)])
        s.commit()
        old_id, recent_id = old.id, recent.id
    kept = nextslot(database_url, "retention")
    assert kept.returncode == 0 and "everything is kept" in kept.stderr
    purged = nextslot(database_url, "retention", NEXTSLOT_RETENTION_MESSAGE_DAYS="30",
                      NEXTSLOT_RETENTION_CONVERSATION_DAYS="90")
    assert purged.returncode == 0, purged.stderr
    assert json.loads(purged.stdout)["purged"]["conversations"] >= 1
    with session_factory() as s:
        assert s.get(Conversation, old_id) is None
        assert s.scalar(select(ConversationMessage.body).where(ConversationMessage.conversation_id == recent_id)) \
            == "hello there"
