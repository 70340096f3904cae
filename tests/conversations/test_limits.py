"""The limits: the model's tokens per conversation and per business per day (then the guided flow answers, with a
word why), inbound messages per number per hour, and tries at answering one message (then a person takes over)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from evals.scripted_model import scripted_model, words
from nextslot.conversations.engine import ConversationEngine
from nextslot.conversations.inbox import exchange
from nextslot.storage.tables import Conversation, ConversationMessage, ConversationToolCall, ModelCall
from tests.conversations.conftest import clinic_config
from tests.conversations.test_model import model_settings, stored

CAPPED = "We can't chat freely any more for now, but these choices still work."


def test_a_conversation_past_its_tokens_gets_the_guided_flow_with_a_word_why(chat_for, session_factory):
    with scripted_model(words("Happy to help."), repeat_last=True) as model:  # 110, 111, ... tokens a request
        with chat_for(**model_settings(model, conversation_max_tokens=200)) as chat:
            phone = "+447911200401"
            assert chat.say(phone, "hello?") == "Happy to help."
            assert chat.say(phone, "what do you offer?") == "Happy to help."
            assert chat.say(phone, "and prices?").startswith(CAPPED + "\nHi! This is Riverside Clinic.")
            assert "Which service?" in chat.say(phone, "1")  # the numbered choices carry on
    assert len(model.requests) == 2
    assert chat.conversation(phone).tokens == (100 + 10) + (101 + 10) and chat.conversation(phone).mode == "guided"


def test_a_business_past_its_days_tokens_answers_every_number_by_the_guided_flow(chat_for, session_factory):
    with scripted_model(words("Happy to help."), repeat_last=True) as model:
        with chat_for(clinic_config(daily_tokens=100), **model_settings(model)) as chat:
            assert chat.say("+447911200402", "hello?") == "Happy to help."  # 110 tokens: the day's are spent
            assert chat.say("+447911200403", "hi!").startswith(CAPPED)  # another number, the same business
    assert len(model.requests) == 1
    [call] = stored(session_factory, chat.business_id, ModelCall)
    assert (call.prompt_tokens, call.completion_tokens) == (100, 10)


def test_a_number_writing_too_fast_gets_one_word_about_it_then_silence_and_costs_nothing(chat_for, session_factory,
                                                                                        clock, service):
    with scripted_model(words("Happy to help."), repeat_last=True) as model:
        with chat_for(**model_settings(model, conversation_messages_per_number=3)) as chat:
            phone = "+447911200404"
            for n in range(6):
                assert chat.send(phone, f"message {n}").status_code == 200
            chat.run()
            answers = chat.answers(phone)
            assert answers == ["Happy to help."] * 3 + [
                "You're sending messages faster than we can answer. Please wait a little and write again."]
            assert len(model.requests) == 3  # the flood reached no model and no tool
            errors = [m.error for m in chat.messages(phone) if m.direction == "in"]
            assert errors == [None] * 3 + ["rate_limited"] * 3
            assert stored(session_factory, chat.business_id, ConversationToolCall) == []
            notes = [line.note for line in exchange(service, chat.business_id, chat.conversation(phone).id).lines
                     if line.kind == "in"]
            assert notes == [None] * 3 + ["not answered: too many messages this hour"] * 3  # what staff see

            clock.now += timedelta(hours=1, minutes=1)  # an hour on, answered again
            assert chat.say(phone, "sorry, one more question") == "Happy to help."


class Flaky(ConversationEngine):
    """An engine whose answering breaks (as a bug or a dropped database would) for the first `failures` tries."""

    failures = 0

    def reply_to(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("answering broke")
        return super().reply_to(*args, **kwargs)


def test_a_message_whose_answering_fails_is_tried_again_soon_and_after_the_last_try_a_person_takes_over(
        chat_for, service, session_factory, clock):
    with chat_for(clinic_config(model=False), conversation_message_attempts=3, conversation_retry_seconds=10) as chat:
        chat.engine = Flaky(service, chat.engine._settings)
        chat.engine.failures = 2
        phone = "+447911200405"
        chat.send(phone, "hello")
        assert chat.engine.process_due() == 1 and chat.answers(phone) == []  # the first try broke
        assert chat.engine.process_due() == 0  # not before the retry delay
        clock.now += timedelta(seconds=11)
        assert chat.engine.process_due() == 1 and chat.answers(phone) == []  # the second broke too
        clock.now += timedelta(seconds=11)
        chat.run()
        assert chat.answers(phone)[-1].startswith("Hi! This is Riverside Clinic.")  # the third did it
        assert [m.attempts for m in chat.messages(phone) if m.direction == "in"] == [3]

        chat.engine.failures = 3
        chat.send(phone, "1")
        for _ in range(3):
            chat.run()
            clock.now += timedelta(seconds=11)
        chat.run()  # a fourth claim: no fourth try, a person takes over
        assert chat.answers(phone)[-1] == "Thanks, a person from Riverside Clinic will answer you here as soon as " \
                                          "they can."
        assert chat.answers(phone)[-1] in chat.replies(phone)
        last = [m for m in chat.messages(phone) if m.direction == "in"][-1]
        assert (last.attempts, last.error, last.processed_at is not None) == (4, "gave_up", True)
        conversation = chat.conversation(phone)
        assert (conversation.handoff_reason, conversation.handoff_at is not None) == ("errors", True)
        before = len(chat.answers(phone))
        chat.send(phone, "hello?")
        chat.run()
        assert len(chat.answers(phone)) == before  # the agent is silent: a person answers now
        with session_factory() as s:
            assert s.scalar(select(Conversation.locked_until).where(Conversation.id == conversation.id)) is None
            assert s.scalars(select(ConversationMessage.error).where(
                ConversationMessage.conversation_id == conversation.id, ConversationMessage.direction == "in")
                .order_by(ConversationMessage.id)).all() == [None, "gave_up", None]


def test_a_business_can_lower_the_deployments_daily_caps_but_raise_them_only_on_its_own_endpoint():
    from nextslot.conversations.limits import caps_for
    from nextslot.settings import Settings

    deployment = Settings(conversation_base_url="https://models.example/v1", conversation_daily_model_calls=2000,
                          conversation_daily_tokens=5_000_000)
    asked = {"daily_model_calls": 10**9, "daily_tokens": 10**12}
    on_ours = caps_for(deployment, {"conversations": asked})
    assert (on_ours.daily_model_calls, on_ours.daily_tokens) == (2000, 5_000_000)
    lower = caps_for(deployment, {"conversations": {"daily_model_calls": 5, "daily_tokens": 100}})
    assert (lower.daily_model_calls, lower.daily_tokens) == (5, 100)
    on_its_own = caps_for(deployment, {"conversations": {**asked, "base_url": "https://own.example/v1"}})
    assert (on_its_own.daily_model_calls, on_its_own.daily_tokens) == (10**9, 10**12)
