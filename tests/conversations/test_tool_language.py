"""A conversation's tools speak its language: the engine passes the conversation's language to every tool
call that names none, so the model reads `say` already in the customer's words."""
from __future__ import annotations

from nextslot.conversations.bound_tools import Sender, execute_bound
from nextslot.tools.context import ToolContext


def test_a_french_conversations_tools_answer_in_french_unless_the_call_names_a_language(service, make_business):
    clinic = make_business("clinic")
    ctx = ToolContext(service, clinic, channel="web_chat", language="fr")
    assert execute_bound("list_services", {}, ctx, Sender()).data["say"].startswith("Nous proposons")
    found = execute_bound("find_available_slots", {"service": "consultation", "date": "2026-11-24"}, ctx, Sender())
    assert "mardi 24 novembre à" in found.data["say"]
    stated = execute_bound("list_services", {"language": "de"}, ctx, Sender())  # the model's own choice wins
    assert stated.data["say"].startswith("Wir bieten")
    english = ToolContext(service, clinic, channel="web_chat")
    assert execute_bound("list_services", {}, english, Sender()).data["say"].startswith("We offer")
