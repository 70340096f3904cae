"""The conversation evals: every scenario (the guided flow, a scripted model on loopback, limits, hand-offs) is
played through the webhook handler, the engine and the outbox to the fake Twilio, and must reach its expected end
state in the database; a wrong expectation is reported as a failure."""
from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from evals.chat_evals import load_chats, play_chat
from evals.eval_report import table
from evals.fakes import FakeTwilio
from evals.scripted_model import ScriptedModel, scripted_model

CHATS = load_chats()
NEEDED = {"booking": ["guided-book-on-whatsapp", "model-books-for-the-sender-whatever-phone-it-gives"],
          "moving": ["guided-move-in-spanish", "model-moves-the-senders-booking"],
          "cancelling": ["guided-cancel-in-german", "model-cancels-in-spanish"],
          "a lost race": ["guided-lost-race-takes-the-nearest-time", "model-lost-race-books-the-alternative"],
          "prompt injection": ["guided-prompt-injection-reaches-no-one-elses-booking",
                               "model-prompt-injection-against-another-customers-booking"],
          "media": ["voice-note-photo-and-location-get-a-polite-answer"],
          "a failing model": ["model-times-out-and-the-guided-flow-books",
                              "model-errors-and-the-guided-flow-answers-in-french"],
          "limits": ["a-number-writing-too-fast-is-told-once-then-not-answered",
                     "a-conversation-past-its-tokens-carries-on-by-the-guided-flow"],
          "hand-off": ["asking-for-a-human-hands-off-and-the-agent-goes-quiet"]}


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    """One per scenario: a slow answer still on its way from the scenario before (the suite's order varies with
    its workers) would otherwise take this scenario's first step."""
    with scripted_model() as running:
        yield running


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as running:
        yield running


def test_there_are_twenty_scenarios_or_more_covering_what_customers_do():
    names = {c["name"] for c in CHATS}
    assert len(CHATS) >= 20 and len(names) == len(CHATS)
    assert all(set(wanted) <= names for wanted in NEEDED.values())
    assert {c["overrides"]["business"]["details"]["conversations"].get("daily_tokens") for c in CHATS
            if c.get("overrides")} == {100}
    languages = {"es": "hola", "fr": "bonjour", "de": "hallo"}
    said = " ".join(str(t.get("say", "")).lower() for c in CHATS for t in c.get("turns", []))
    assert all(word in said for word in languages.values())


@pytest.mark.parametrize("scenario", CHATS, ids=[c["name"] for c in CHATS])
def test_every_conversation_reaches_its_expected_end_state(scenario, session_factory, model, twilio):
    result = play_chat(scenario, session_factory, model, twilio=twilio)
    assert result.passed, table([result])
    assert result.errors_unexpected == 0 and result.turns >= 1


def test_a_wrong_expected_end_state_or_reply_fails_the_scenario(session_factory, model, twilio):
    right = next(c for c in CHATS if c["name"] == "guided-book-on-whatsapp")
    wrong = copy.deepcopy(right)
    wrong["expect"]["bookings_of"]["ann"][0]["starts_at"] = "2026-11-24T09:00:00+00:00"
    wrong["expect"]["conversation"]["language"] = "de"
    wrong["turns"][0]["reply"] = "Welcome to another business"
    wrong["expect"]["tool_errors"] = ["unknown_booking"]

    result = play_chat(wrong, session_factory, model, twilio=twilio)

    assert not result.passed
    assert any("starts_at" in f for f in result.failures)
    assert any("language is 'en', expected 'de'" in f for f in result.failures)
    assert any("does not say 'Welcome to another business'" in f for f in result.failures)
    assert any("refused with unknown_booking, there was none" in f for f in result.failures)
    assert play_chat(right, session_factory, model, twilio=twilio).passed  # the same chat again, its own numbers


def test_a_live_model_plays_the_agent_and_is_scored_from_the_database_not_its_words(session_factory, twilio):
    from evals.chat_evals import LiveModel
    from evals.scripted_model import step_of

    scenario = next(c for c in CHATS if c["name"] == "model-books-for-the-sender-whatever-phone-it-gives")
    # the "live" endpoint books as the script does, in its own words: the words are not judged, the rows are
    steps = [{**s, "say": "Booked, see you!"} if "say" in s else s for s in scenario["model"]]
    with scripted_model(*[step_of(s) for s in steps]) as live:
        result = play_chat(scenario, session_factory, None, LiveModel("a-live-model", live.base_url, None, 10.0),
                           twilio)
    assert result.passed, table([result])
    assert [r["model"] for r in live.requests] == ["a-live-model"] * 4
