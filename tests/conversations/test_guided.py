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
