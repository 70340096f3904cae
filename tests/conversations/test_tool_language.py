"""A conversation's tools speak its language: the engine passes the conversation's language to every tool
call that names none, so the model reads `say` already in the customer's words."""
from __future__ import annotations

from nextslot.conversations.bound_tools import Sender, execute_bound
from nextslot.tools.context import ToolContext

FIND = {"service": "consultation", "date": "2026-11-24"}


def test_a_french_conversations_tools_answer_in_french_unless_the_call_names_a_language(service, make_business):
    clinic = make_business("clinic")
    ctx = ToolContext(service, clinic, channel="web_chat", language="fr")
    french = execute_bound("find_available_slots", FIND, ctx, Sender()).data
    assert "mardi 24 novembre" in french["say"] and "Tuesday" not in french["say"]
    assert french["slots"][0]["spoken"].startswith("mardi 24 novembre")
    stated = execute_bound("find_available_slots", {**FIND, "language": "de"}, ctx, Sender()).data
    assert "Dienstag" in stated["say"]  # the model's own choice wins
    english = ToolContext(service, clinic, channel="web_chat")
    assert "Tuesday 24 November" in execute_bound("find_available_slots", FIND, english, Sender()).data["say"]
