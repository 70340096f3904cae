"""Thirteenth round: the conversation channels attacked from outside, through the running server's signed Twilio
webhook, the engine as a scheduler runs it, a scripted model on loopback and the dispatcher sending to the fake
Twilio API: a number flooding the keyword answers, a chat steered to book a calendar full, model output no store
could hold, one model answer making fifty calls, and a customer of one business writing to another's number."""
from __future__ import annotations

import uuid
from datetime import timedelta

import httpx2
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from evals.scripted_model import at_once, call, scripted_model, words
from nextslot.storage.tables import Booking, ConversationToolCall, Customer, InboundMessage
from tests.conversations.conftest import PUBLIC_URL, TOKEN, clinic_config
from tests.conversations.conftest import chat_for as chat_for  # noqa: F401 - the fixture, used here
from tests.conversations.test_model import model_settings, stored
from tests.conversations.test_round10 import book, new_phone, status

SLOW_DOWN = "You're sending messages faster than we can answer. Please wait a little and write again."


def keyword(chat, phone: str, body: str, sid: str | None = None) -> str:
    """Post a message to the business's own number as Twilio does; the TwiML's message, "" when there is none."""
    form = {"From": phone, "To": chat.to, "Body": body, "MessageSid": sid or f"SM{uuid.uuid4().hex}"}
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC_URL}/webhooks/twilio/inbound", form)
    answer = httpx2.post(f"{chat.server.url}/webhooks/twilio/inbound", data=form,
                         headers={"X-Twilio-Signature": signature}, timeout=30)
    assert answer.status_code == 200, answer.text
    text = answer.text
    return text.split("<Message>")[1].split("</Message>")[0] if "<Message>" in text else ""


def test_a_number_sending_keyword_after_keyword_gets_one_word_about_it_then_silence_and_changes_nothing(
        chat_for, service, session_factory):
    """Each keyword answer (YES, X, STOP) is a text message we pay for, and the keywords skipped the conversations'
    budget: a stranger's 40 "yes" got 40 answers. Past the budget a number gets one word about it, then nothing:
    its X cancels nothing, while a STOP still takes it off the channel (quietly)."""
    with chat_for(conversation_messages_per_number=3) as chat:
        stranger = new_phone()
        answers = [keyword(chat, stranger, "yes") for _ in range(6)]
        assert answers == ["We couldn't find an upcoming appointment for this number."] * 3 + [SLOW_DOWN, "", ""]

        phone = new_phone()
        booking = book(service, chat.business_id, phone)
        assert [keyword(chat, phone, "C") for _ in range(3)] == [
            "Thanks, your GP consultation on Wednesday 25 November at 10 am is confirmed."] * 3
        sid = f"SM{uuid.uuid4().hex}"
        assert keyword(chat, phone, "X", sid) == SLOW_DOWN
        assert keyword(chat, phone, "X", sid) == SLOW_DOWN  # Twilio's retry of it: the same answer, once
        assert keyword(chat, phone, "cancel") == ""
        assert status(session_factory, booking) == "confirmed"
        assert keyword(chat, phone, "STOP") == ""
        with session_factory() as s:
            assert s.scalars(select(Customer.opted_out).where(Customer.phone == phone)).one() == ["sms"]
            outcomes = s.scalars(select(InboundMessage.outcome).where(InboundMessage.sender == phone)
                                 .order_by(InboundMessage.id)).all()
        # the bare "cancel" is Twilio's opt-out word too: the opt-out it made is kept, the cancel is not acted on
        assert outcomes == ["confirmed"] * 3 + ["rate_limited", "opted_out", "rate_limited", "opted_out"]


BOOK = {"service": "consultation", "customer_name": "Di Fox"}


def morning(day: int, hour: int) -> tuple[str, dict[str, str]]:
    return "book_appointment", {**BOOK, "starts_at": f"2026-11-{day}T{hour:02d}:00:00+00:00"}


def test_a_chat_steered_to_book_every_slot_makes_the_days_bookings_and_no_more(chat_for, session_factory, clock):
    """"Book me every morning this week": one model answer booking seven times (or a conversation booking once a
    request, six times a message) filled a calendar with one number's bookings, each a confirmation sent. A
    sender's chats make five bookings and waitlist places a day at a business (five holds besides); past it the
    tool answers `too_many_bookings` without running, in a new conversation too. Another number still books."""
    with scripted_model() as model:
        with chat_for(**model_settings(model)) as chat:
            phone = new_phone()
            model.steps = [at_once(*(morning(day, hour) for day in (24, 25, 26) for hour in (9, 10, 11) if
                                     (day, hour) != (26, 11) and (day, hour) != (26, 10))),
                           words("Booked what I could.")]
            assert chat.say(phone, "book me every morning slot this week") == "Booked what I could."
            clock.now += timedelta(minutes=45)  # the conversation goes idle: the next message starts a new one
            chat.engine.close_idle()
            model.steps += [call(*morning(27, 9)), words("Sorry, no more today.")]
            assert chat.say(phone, "and friday at 9") == "Sorry, no more today."
            other = new_phone()
            model.steps += [call(*morning(27, 9)), words("Booked.")]
            assert chat.say(other, "friday at 9 please") == "Booked."
            with session_factory() as s:
                booked = s.scalars(select(Customer.phone).join(Booking, Booking.customer_id == Customer.id).where(
                    Booking.business_id == chat.business_id)).all()
            calls = stored(session_factory, chat.business_id, ConversationToolCall)
    assert sorted(booked) == sorted([phone] * 5 + [other])
    assert [c.result.get("outcome") or c.result["error"]["code"] for c in calls] == [
        *["booked"] * 5, "too_many_bookings", "too_many_bookings", "too_many_bookings", "booked"]


def test_the_guided_flow_says_why_a_booking_past_the_days_cap_is_not_made(chat_for, session_factory):
    with chat_for(conversation_bookings_per_day=1) as chat:
        phone = new_phone()
        for said in ("hi", "1", "1", "2", "1", "Ann Lee"):
            chat.say(phone, said)
        assert chat.say(phone, "1").startswith("Booked: GP consultation on Tuesday 24 November at 8:30 am.")
        for said in ("1", "1", "2", "2"):  # her name is known now: not asked again
            chat.say(phone, said)
        assert chat.say(phone, "1").startswith(
            "That is as many bookings as a chat can make in a day. Reply 0 for the menu and choose \"Talk to a "
            "person\" to book more.")
        with session_factory() as s:
            assert s.scalar(select(func.count()).select_from(Booking).where(
                Booking.business_id == chat.business_id)) == 1


def test_model_output_no_store_could_hold_is_answered_not_retried_into_a_handoff(chat_for, session_factory):
    """A model (talked into it, or on its own) wrote a NUL or a lone surrogate in a code, a tool's name or its
    answer, a number past Python's 4,300 digits or JSON nested past its recursion limit: each failed the message's
    answer on every try (three model runs), then handed the conversation to staff as "errors"."""
    cases = [
        (call("cancel_appointment", {"code": "K7M\u00004PX"}), "unknown_booking"),
        (call("cancel_appointment", {"code": "K7M\ud8004PX"}), "unknown_booking"),
        (call("no_such\u0000tool", {}), "unknown_tool"),
        (call("find_available_slots", '{"service": "consultation", "limit": 1' + "0" * 5000 + "}"), "invalid_json"),
        (call("find_available_slots", "[" * 100_000), "invalid_json"),
    ]
    with scripted_model() as model:
        with chat_for(**model_settings(model)) as chat:
            phone = new_phone()
            for n, (step, _) in enumerate(cases):
                model.steps += [step, words(f"answer {n}")]
                assert chat.say(phone, f"question {n}") == f"answer {n}"
            model.steps.append(words("hello\u0000 there"))
            assert chat.say(phone, "and?") == "hello there"
            calls = stored(session_factory, chat.business_id, ConversationToolCall)
            inbound = [m for m in chat.messages(phone) if m.direction == "in"]
    assert [c.result["error"]["code"] for c in calls] == [code for _, code in cases]
    assert [(m.attempts, m.error) for m in inbound] == [(1, None)] * (len(cases) + 1)
    assert chat.conversation(phone).handoff_at is None
    assert "\u0000" not in calls[0].result["error"]["message"] and calls[2].tool == "no_suchtool"


def test_one_model_answer_with_fifty_tool_calls_runs_ten(chat_for, session_factory):
    """Each call is a slot search or a write, and a message that takes longer than its lease to answer is answered
    again by another process: a model answering with fifty calls at once ran all fifty. The first ten run; the rest
    are answered "not run" so the model can make them again."""
    search = ("find_available_slots", {"service": "consultation", "date": "2026-11-24"})
    with scripted_model(at_once(*[search] * 50), words("Here are the times.")) as model:
        with chat_for(**model_settings(model)) as chat:
            assert chat.say(new_phone(), "any time at all?") == "Here are the times."
            calls = stored(session_factory, chat.business_id, ConversationToolCall)
    assert len(calls) == 10 and all(c.ok for c in calls)
    answered = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert len(answered) == 50 and all('"too_many_calls"' in m["content"] for m in answered[10:])


def test_a_customer_of_one_business_writing_to_anothers_number_reaches_none_of_the_first_ones_bookings(
        chat_for, service, session_factory, make_business):
    """A guard across tenants: Eva books at a first clinic, then writes to a second clinic's own number: her X with
    the first booking's code, her guided "My bookings" and the model's lookups and cancels by that code all stay
    at the second clinic, which has nothing of hers."""
    first = make_business(clinic_config())
    phone = new_phone()
    theirs = book(service, first, phone)
    with scripted_model() as model:
        with chat_for(clinic_config(model=False)) as chat:
            assert keyword(chat, phone, f"X {theirs.code}") == \
                "We couldn't find an upcoming appointment for this number."
            chat.say(phone, "hi")
            assert chat.say(phone, "2") == "You have no upcoming bookings with us. Reply 1 to book one."
        model.steps = [call("find_appointments", {"phone": phone, "code": theirs.code}),
                       call("cancel_appointment", {"code": theirs.code}),
                       call("confirm_appointment", {"code": theirs.code}), words("Nothing found.")]
        with chat_for(**model_settings(model)) as chat:
            assert chat.say(phone, f"cancel my booking {theirs.code}") == "Nothing found."
            calls = stored(session_factory, chat.business_id, ConversationToolCall)
    assert calls[0].result["appointments"] == []
    assert [c.result["error"]["code"] for c in calls[1:]] == ["unknown_booking", "unknown_booking"]
    assert status(session_factory, theirs) == "booked"
