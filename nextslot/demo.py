"""`nextslot demo`: seed the example businesses and show the core at work, on the embedded PostgreSQL.

Runs again and again: every run books the next free times, so the calendar fills up.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import phonenumbers
import yaml

from nextslot.core.business.config import apply_config
from nextslot.core.results import Booked, Held, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.runtime import public_caps
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn, HoldCreate, SlotQuery
from nextslot.schemas.config import BusinessConfig
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for, resolve_database_url
from nextslot.storage.migrate import upgrade
from nextslot.storage.uow import SqlAlchemyUnitOfWork

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def phone(prefix: str = "+447911") -> str:
    """A random valid mobile number: UK (+44, 10 digits) by default, North American with '+1...'."""
    length = 12 if prefix.startswith("+1") else 13  # characters, with the '+'
    for _ in range(1000):
        number = prefix + "".join(random.choices("0123456789", k=length - len(prefix)))
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number
    raise ValueError(f"no valid number with prefix {prefix}")


def run_demo(settings: Settings) -> int:
    url = resolve_database_url(settings)
    print(f"database: {url.split('@')[-1]}")
    upgrade(url)
    engine = engine_for(url, pool_size=25)
    factory = build_session_factory(engine)
    service = BookingService(factory, hold_minutes=settings.hold_minutes, public_caps=public_caps(settings))

    ids = {}
    for name in ("clinic", "garage"):
        config = BusinessConfig.model_validate(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()))
        applied = apply_config(SqlAlchemyUnitOfWork(factory), config)
        assert not isinstance(applied, Rejected), applied
        ids[name] = applied.business_id
        print(f"loaded {applied.slug}: {applied.resources} resources, {applied.services} services")
    clinic, garage = ids["clinic"], ids["garage"]

    section("Open GP consultations (a caller in New York asks)")
    slots = service.find_slots(clinic, SlotQuery(service="consultation", customer_timezone="America/New_York",
                                                 limit=5))
    for slot in slots.slots:
        who = " + ".join(r.name for r in slot.resources)
        print(f"  {slot.starts_at.business_local:%a %d %b %H:%M} London = {slot.starts_at.spoken} "
              f"for the caller  [{who}]")

    section("20 callers want the same slot with Dr Patel in room 1, at the same moment")
    target = service.find_slots(clinic, SlotQuery(service="consultation", resources=["dr-patel", "room-1"],
                                                  limit=1)).slots[0]
    results = race(service, clinic, target.starts_at.utc, callers=20)
    winners = [r for r in results if isinstance(r, Booked)]
    losers = [r for r in results if isinstance(r, SlotTaken)]
    print(f"  {len(winners)} booked, {len(losers)} offered other times")
    for other in (r for r in results if not isinstance(r, Booked | SlotTaken)):
        print(f"  unexpected: {other}")
    if winners:
        w = winners[0].booking
        print(f"  winner: code {w.code} (say '{w.code_spoken}'), {w.starts_at.spoken}")
    if losers:
        offered = ", ".join(a.starts_at.spoken for a in losers[0].alternatives)
        print(f"  everyone else hears: that time was just taken; I can offer {offered}")

    section("An ultrasound needs a doctor, a room and the scanner: hold, then book")
    scan = service.find_slots(clinic, SlotQuery(service="ultrasound", limit=1)).slots
    if scan:
        held = service.hold(clinic, HoldCreate(service="ultrasound", starts_at=scan[0].starts_at.utc, source="demo"))
        if isinstance(held, Held):
            print(f"  held {held.hold.starts_at.spoken} until {held.hold.expires_at:%H:%M} UTC with "
                  f"{', '.join(r.name for r in held.hold.resources)}")
            booked = service.book(clinic, BookingCreate(
                service="ultrasound", starts_at=scan[0].starts_at.utc, hold_id=held.hold.id, source="demo",
                customer=CustomerIn(name="Maya Chen", phone=phone(), email="maya@example.com")))
            if not isinstance(booked, Booked):
                print(f"  could not book from the hold: {booked}")
                return 1
            print(f"  booked from the hold: {booked.booking.code} ({booked.booking.status})")

            section("The caller moves it a week later, then cancels")
            later = service.find_slots(clinic, SlotQuery(
                service="ultrasound", starts_from=scan[0].starts_at.utc + timedelta(days=7), limit=1)).slots
            if later:
                moved = service.reschedule(clinic, BookingReschedule(
                    code=booked.booking.code, starts_at=later[0].starts_at.utc, source="demo"))
                if isinstance(moved, Booked):
                    print(f"  moved to {moved.booking.starts_at.spoken}; the old slot is free again at once")
            cancelled = service.cancel(clinic, BookingChange(code=booked.booking.code, reason="demo", source="demo"))
            print(f"  cancelled: status {cancelled.booking.status}")

    section("The garage's service bay takes 3 cars at once: 5 drivers ask for the same time")
    tyre = service.find_slots(garage, SlotQuery(service="tyre-swap", limit=1)).slots
    if tyre:
        results = race(service, garage, tyre[0].starts_at.utc, callers=5, service_key="tyre-swap",
                       pinned=None, prefix="+1212")
        tally = Counter(type(r).__name__ for r in results)
        print(f"  {tyre[0].starts_at.spoken} (New York): {dict(tally)}")

    section("A customer books by WhatsApp, no model needed: the guided flow (numbered choices)")
    chat_demo(service, clinic, settings)

    section("The staff console")
    console_sign_in(factory, clinic, settings)
    print("\nDone. Next: `nextslot api-key riverside-clinic` and `nextslot serve` for agents (MCP at /mcp, "
          "voice webhooks) and the console, `nextslot scheduler` for the messages; `make test` runs the tests, "
          "`nextslot bench core|tools` measures.")
    engine.dispose()
    return 0


def chat_demo(service: BookingService, clinic: int, settings: Settings) -> None:
    """A short WhatsApp conversation through the conversation engine, as the webhook and a scheduler run it
    (the replies are queued in the outbox; `nextslot scheduler` would send them through Twilio)."""
    from datetime import timedelta

    from sqlalchemy import select

    from nextslot.conversations.engine import ConversationEngine
    from nextslot.conversations.intake import Incoming, receive
    from nextslot.storage.tables import Conversation, ConversationMessage

    engine = ConversationEngine(service, settings.model_copy(update={"conversation_model": None}))
    number, stamp = phone(), random.randrange(10**9)
    for n, text in enumerate(("Hi! can I book an appointment?", "1", "1", "1", "1", "Sam Demo", "1")):
        receive(service, Incoming("whatsapp", number, text, f"SMdemo{stamp}-{n}", to="+442079460958"),
                timedelta(minutes=30))
        engine.process_due()
        with service.uow() as uow:
            answer = uow.session.scalars(select(ConversationMessage.body).join(Conversation).where(
                Conversation.phone == number, ConversationMessage.direction == "out")
                .order_by(ConversationMessage.id.desc()).limit(1)).one()
        print(f"  customer: {text}")
        print("  clinic:   " + answer.replace("\n", "\n            "))
        if "Nothing is free" in answer:
            break


def console_sign_in(factory, clinic: int, settings: Settings) -> None:
    """An owner account for the clinic's console on the first run (its password is shown only then)."""
    import secrets

    from nextslot.core.accounts.staff import create_account

    email, password = "owner@riverside-clinic.example", secrets.token_urlsafe(9)
    created = create_account(SqlAlchemyUnitOfWork(factory), clinic, email, "Clinic owner", "owner", password)
    print(f"  `nextslot serve`, then {settings.public_url}/console/riverside-clinic")
    if isinstance(created, Rejected):
        print(f"  sign in as {email} with the password an earlier run printed, or make another account: "
              "`nextslot staff-account riverside-clinic you@example.com --role owner`")
    else:
        print(f"  sign in as {email}, password {password} (shown once)")


def race(service, business_id, start, callers, service_key="consultation", pinned=("dr-patel", "room-1"),
         prefix="+447911"):
    """Release all callers at once from separate threads, each with its own connection."""
    barrier = threading.Barrier(callers)
    results: list = [None] * callers

    def call(i: int) -> None:
        cmd = BookingCreate(service=service_key, starts_at=start, resources=list(pinned or []), source="demo",
                            customer=CustomerIn(name=f"Caller {i + 1}", phone=phone(prefix)))
        barrier.wait()
        results[i] = service.book(business_id, cmd)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def section(title: str) -> None:
    print(f"\n== {title}")
