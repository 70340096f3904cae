"""The guided flow end to end: messages posted to the running server as Twilio signs them, answered by the engine
as a scheduler runs it, replies sent through the outbox to the fake Twilio API."""
from __future__ import annotations

from sqlalchemy import select

from nextslot.storage.tables import Booking, Customer, Notification

PHONE = "+447911200001"


def test_a_customer_books_by_numbered_choices_without_a_model(chat_for, session_factory):
    with chat_for() as chat:
        ack = chat.send(PHONE, "hello, can I book something?")
        assert ack.status_code == 200 and ack.text.endswith("<Response />")  # acknowledged at once, no text
        chat.run()
        menu = chat.replies(PHONE)[-1]
        assert "Riverside Clinic" in menu and "1 Book an appointment" in menu and "2 My bookings" in menu
        services = chat.say(PHONE, "1")
        assert "1 GP consultation" in services
        days = chat.say(PHONE, "1")
        assert days.startswith("Which day for GP consultation?") and "1 Monday 23 November" in days
        times = chat.say(PHONE, "2")
        assert "Which time on Tuesday 24 November?" in times and "1 08:30" in times  # London time
        assert chat.say(PHONE, "1") == "What name should the booking be under?"
        summary = chat.say(PHONE, "Ann Lee")
        assert "Book GP consultation on Tuesday 24 November at 8:30 am for Ann Lee?" in summary
        booked = chat.say(PHONE, "1")
        assert booked.startswith("Booked: GP consultation on Tuesday 24 November at 8:30 am. Your code is ")
    with session_factory() as s:
        booking = s.scalars(select(Booking).join(Customer).where(Customer.phone == PHONE)).one()
        assert (booking.status, booking.source, booking.code) == ("booked", "whatsapp_chat", booked.split()[-1][:-1])
        kinds = s.scalars(select(Notification.kind).where(Notification.customer_id == booking.customer_id)).all()
        sent = [s.get(Notification, m.notification_id).status for m in chat.messages(PHONE) if m.direction == "out"]
    assert "confirmation" in kinds  # the booking's own messages, as from any channel
    assert sent == ["sent"] * 7  # every reply went out through the outbox, awaiting its receipt


def book_for(service, business: int, phone: str, hour: int, minute: int = 0, name: str = "Bo Ray"):
    from datetime import UTC, datetime

    from nextslot.schemas.commands import BookingCreate, CustomerIn

    return service.book(business, BookingCreate(
        service="consultation", starts_at=datetime(2026, 11, 24, hour, minute, tzinfo=UTC),
        customer=CustomerIn(name=name, phone=phone))).booking


def test_a_lost_race_offers_the_nearest_times_as_the_next_choices(chat_for, service, session_factory):
    phone = "+447911200002"
    with chat_for() as chat:
        for said in ("hi", "1", "1", "2", "1", "Cy Moss"):
            chat.say(phone, said)
        book_for(service, chat.business_id, "+447911200099", 8, 30)  # someone else takes 8:30 meanwhile
        taken = chat.say(phone, "1")
        assert taken.startswith("Sorry, that time has just been taken. The nearest free times:")
        assert "1 Tuesday 24 November at 9 am" in taken
        assert "Book GP consultation on Tuesday 24 November at 9 am for Cy Moss?" in chat.say(phone, "1")
        assert chat.say(phone, "1").startswith("Booked: GP consultation on Tuesday 24 November at 9 am.")


def test_my_bookings_cancel_and_move_in_spanish(chat_for, service, session_factory):
    phone = "+447911200003"
    with chat_for() as chat:
        first = book_for(service, chat.business_id, phone, 10, name="Eva Sol")
        second = book_for(service, chat.business_id, phone, 12, name="Eva Sol")
        chat.send(phone, "hola, quiero cambiar mi cita")
        chat.run()
        assert chat.answers(phone)[-1].startswith("¡Hola Eva! Somos Riverside Clinic.")  # her words' language
        mine = chat.say(phone, "2")
        assert mine.startswith("Tus próximas citas:") and "1 GP consultation: martes 24 de noviembre a las 10:00" in mine
        assert "1 Cambiarla" in chat.say(phone, "1")
        assert "¿Cancelar" in chat.say(phone, "2")
        assert chat.say(phone, "1") == "Cancelada: GP consultation el martes 24 de noviembre a las 10:00."
        chat.say(phone, "2")  # my bookings: only the 12:00 one is left
        chat.say(phone, "1")
        days = chat.say(phone, "1")  # move it
        assert days.startswith("¿Qué día para GP consultation?")
        chat.say(phone, "2")  # Tuesday
        moved = chat.say(phone, "1")
        assert moved.startswith("Cambiada: GP consultation ahora es el martes 24 de noviembre a las 08:30.")
        assert second.code in moved
    with session_factory() as s:
        assert s.get(Booking, first.id).status == "cancelled"
        assert s.get(Booking, second.id).starts_at.hour == 8


def test_two_messages_a_second_apart_are_both_answered_in_order_and_a_retry_once(chat_for, clock):
    from datetime import timedelta

    phone = "+447911200004"
    with chat_for() as chat:
        assert chat.send(phone, "hello there", sid="SM" + "4" * 32).status_code == 200
        clock.now += timedelta(seconds=1)
        assert chat.send(phone, "1", sid="SM" + "5" * 32).status_code == 200  # mid-conversation: a choice
        assert chat.send(phone, "hello there", sid="SM" + "4" * 32).status_code == 200  # Twilio's retry
        assert chat.run() == 1
        messages = [(m.direction, m.body.splitlines()[0]) for m in chat.messages(phone)]
        assert messages == [("in", "hello there"), ("in", "1"),
                            ("out", "Hi! This is Riverside Clinic. Reply with a number:"), ("out", "Which service?")]
        assert [r.splitlines()[0] for r in chat.replies(phone)] == [
            "Hi! This is Riverside Clinic. Reply with a number:", "Which service?"]


def test_media_gets_a_polite_text_answer_and_is_stored(chat_for):
    phone = "+447911200005"
    with chat_for() as chat:
        chat.send(phone, "", NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME1",
                  MediaContentType0="audio/ogg")
        chat.send(phone, "", Latitude="51.5", Longitude="-0.12", Address="10 Downing St")
        chat.run()
        incoming = [m for m in chat.messages(phone) if m.direction == "in"]
        assert incoming[0].media == {"items": [{"url": "https://api.twilio.com/media/ME1", "type": "audio/ogg"}]}
        assert incoming[1].media["location"] == {"latitude": "51.5", "longitude": "-0.12", "address": "10 Downing St"}
        assert chat.answers(phone) == ["Thanks! We can only read text here: please write what you need."] * 2


def test_an_idle_conversation_ends_and_the_next_message_starts_anew(chat_for, clock):
    from datetime import timedelta

    phone = "+447911200006"
    with chat_for(conversation_idle_minutes=10) as chat:
        chat.say(phone, "hi")
        chat.say(phone, "1")
        first = chat.conversation(phone)
        clock.now += timedelta(minutes=11)
        assert chat.engine.close_idle() >= 1
        assert "1 Book an appointment" in chat.say(phone, "anything free?")  # the menu again, not a stale step
        assert chat.conversation(phone).id != first.id


def test_a_chat_is_told_why_a_late_move_is_refused(chat_for, service):
    from datetime import datetime

    from nextslot.schemas.commands import BookingCreate, CustomerIn
    from tests.conversations.conftest import clinic_config

    config = clinic_config()
    config["business"] = {**config["business"], "cancellation": {"cutoff_hours": 48}}
    phone = "+447911200071"
    with chat_for(config) as chat:
        service.book(chat.business_id, BookingCreate(
            service="consultation", starts_at=datetime.fromisoformat("2026-11-24T12:00:00+00:00"),
            customer=CustomerIn(name="Eva Sol", phone=phone)))
        chat.send(phone, "hi")
        chat.run()
        chat.say(phone, "2")  # my bookings
        chat.say(phone, "1")  # that one
        chat.say(phone, "1")  # move it
        chat.say(phone, "2")  # Tuesday
        refused = chat.say(phone, "1")
        assert "within 48 hours of the appointment, so it can no longer be moved here" in refused
    with chat.session_factory() as s:
        assert s.scalars(select(Booking.starts_at).where(Booking.business_id == chat.business_id)).one().hour == 12


def test_the_time_menu_tells_a_fall_back_nights_two_1_30s_apart_in_the_customers_language(make_business, service,
                                                                                           clock):
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from nextslot.conversations import guided
    from nextslot.tools.context import ToolContext
    from nextslot.tools.registry import run

    clock.now = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)  # Saturday afternoon in New York
    business = make_business({
        "business": {"slug": "owl", "name": "Owl Laundry", "timezone": "America/New_York", "country": "US"},
        "hours": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "resources": [{"key": "m1", "name": "Machine", "kind": "device"}],
        "services": [{"key": "wash", "name": "Wash", "duration": 30, "step": 30, "min_notice": 0, "horizon_days": 60,
                      "requires": [{"label": "m", "one_of": ["m1"]}]}]})
    ctx = ToolContext(service=service, business_id=business, channel="whatsapp_chat", caller_phone="+12125550100")
    menus = {}
    for language in ("en", "es"):
        turn = guided.Turn("Owl Laundry", ZoneInfo("America/New_York"), language, "Ann",
                           lambda name, args: run(name, args, ctx), "k1", today=date(2026, 11, 1))  # 1-2 am twice
        _, state = guided.pick_day(turn, {"service": {"key": "wash", "name": "Wash", "questions": []}})
        text, _ = guided.on_day(turn, state, "1", 1)
        menus[language] = [line.split(" ", 1)[1] for line in text.splitlines() if line[:1].isdigit()][:7]
    assert menus["en"] == ["00:00", "00:30", "01:00 (before the clocks go back)", "01:30 (before the clocks go back)",
                           "01:00 (after the clocks go back)", "01:30 (after the clocks go back)", "02:00"]
    assert menus["es"][3:6] == ["01:30 (antes del cambio de hora)", "01:00 (después del cambio de hora)",
                                "01:30 (después del cambio de hora)"]
