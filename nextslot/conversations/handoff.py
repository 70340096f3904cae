"""Handing a conversation to a person: when the customer asks for one (in words, by the guided menu's choice, or
through the model's `talk_to_a_person` tool) or the agent keeps failing, the conversation is flagged, the
customer is told a person will answer, and the engine stores later messages without answering them until a
staff member hands it back (see inbox.py)."""
from __future__ import annotations

import re
from typing import Any

from nextslot.reminders.replies import folded_words

MAX_MISSES = 3  # answers in a row the agent could not help with (not understood, failed): then a person

# the customer's words, folded (no accents, no apostrophes): a whole message or a phrase within one
ASKING = re.compile(r"\b(?:" + "|".join((
    # English
    r"human|agent|operator|representative|real person|a person|an actual person|staff member",
    r"(?:speak|talk|chat) (?:to|with) (?:someone|somebody|a person|a human|an agent|staff|the staff|you)",
    # Spanish
    r"humano|agente|operador|una persona|persona real|hablar con (?:alguien|una persona|un humano)",
    # French
    r"humain|conseiller|conseillere|operateur|une personne|vraie personne|parler a (?:quelquun|une personne)",
    # German
    r"mensch|menschen|mitarbeiter|mitarbeiterin|berater|jemandem|echte person|mit (?:jemand|einer person)",
)) + r")\b")

PERSON_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "talk_to_a_person",
        "description": "Hand this conversation to a member of staff, who will answer the customer here. Use it "
                       "when the customer asks for a person, or when you cannot help with what they need. "
                       "After it, say nothing more: the customer is told a person will answer.",
        "strict": True,
        "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"],
                       "additionalProperties": False},
    },
}


def wants_person(text: str) -> bool:
    """Whether the message asks for a person rather than the agent ("can I talk to someone?", "humano")."""
    return bool(ASKING.search(" ".join(folded_words(text))))
