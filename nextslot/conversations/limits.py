"""What a conversation may spend and how fast a number may write: model calls and tokens per conversation and per
business per UTC day (then the guided flow answers, with a word why), inbound messages per number per hour (past
it, one polite word and then silence, nothing spent), tries at answering one message (then a person), and the
bookings and holds one sender's chats may make a day (past it, the tool answers `too_many_bookings`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from nextslot.conversations.bound_tools import Sender
from nextslot.settings import Settings
from nextslot.storage.tables import Conversation, ConversationMessage, ConversationToolCall, ModelCall
from nextslot.tools.registry import MADE, WRITE_BUDGETS, ToolReply, error

RATE_WINDOW = timedelta(hours=1)
WRITES_WINDOW = timedelta(days=1)
# what a chat past its day's budget of writes (`WRITE_BUDGETS`) is answered
CHAT_WRITE_CAPS = {"bookings": "too_many_bookings", "holds": "too_many_holds"}


@dataclass(frozen=True)
class Caps:
    model_calls: int  # per conversation
    tokens: int  # per conversation, prompt and completion
    daily_model_calls: int  # per business per UTC day
    daily_tokens: int


def caps_for(settings: Settings, details: dict[str, Any]) -> Caps:
    """The deployment's caps; a business may set its own daily ones (`details.conversations.daily_model_calls`,
    `daily_tokens`): any on its own endpoint, only lower ones on the deployment's (its key, its bill)."""
    own = (details or {}).get("conversations") or {}
    on_its_own = bool(own.get("base_url")) and own.get("base_url") != settings.conversation_base_url

    def daily(mine: Any, deployment: int) -> int:
        chosen = positive(mine) or deployment
        return chosen if on_its_own else min(chosen, deployment)

    return Caps(settings.conversation_max_model_calls, settings.conversation_max_tokens,
                daily(own.get("daily_model_calls"), settings.conversation_daily_model_calls),
                daily(own.get("daily_tokens"), settings.conversation_daily_tokens))


def positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@dataclass
class Spent:
    """What the conversation and its business's day have used: read once a message, then counted as it goes."""

    calls: int
    tokens: int
    day_calls: int
    day_tokens: int

    def add(self, tokens: int) -> None:
        self.calls, self.day_calls = self.calls + 1, self.day_calls + 1
        self.tokens, self.day_tokens = self.tokens + tokens, self.day_tokens + tokens

    def cap_reached(self, caps: Caps) -> str | None:
        """Which cap the next model request would pass, or None."""
        if self.calls >= caps.model_calls:
            return "conversation_model_calls"
        if self.tokens >= caps.tokens:
            return "conversation_tokens"
        if self.day_calls >= caps.daily_model_calls:
            return "daily_model_calls"
        if self.day_tokens >= caps.daily_tokens:
            return "daily_tokens"
        return None


def spent_so_far(s: Session, conversation_id: int, business_id: int, now: datetime) -> Spent:
    """The conversation's model calls and tokens, and its business's since midnight UTC (other processes' calls
    during this message are not seen: a cap may be passed by a request or two, never by a loop)."""
    calls, tokens = s.execute(select(Conversation.model_calls, Conversation.tokens)
                              .where(Conversation.id == conversation_id)).one()
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    day_calls, day_tokens = s.execute(
        select(func.count(), func.coalesce(func.sum(func.coalesce(ModelCall.prompt_tokens, 0)
                                                    + func.coalesce(ModelCall.completion_tokens, 0)), 0))
        .where(ModelCall.business_id == business_id, ModelCall.created_at >= midnight)).one()
    return Spent(calls, tokens, day_calls, int(day_tokens))


def messages_this_hour(s: Session, conversation: Conversation, message: ConversationMessage) -> int:
    """Inbound messages from this number to this business (a web chat: in this chat) in the hour up to and with
    this one."""
    query = (select(func.count()).select_from(ConversationMessage)
             .join(Conversation, Conversation.id == ConversationMessage.conversation_id)
             .where(ConversationMessage.business_id == conversation.business_id,
                    ConversationMessage.direction == "in", ConversationMessage.id <= message.id,
                    ConversationMessage.created_at > message.created_at - RATE_WINDOW))
    if conversation.channel == "web":
        query = query.where(Conversation.id == conversation.id)
    else:
        query = query.where(Conversation.phone == conversation.phone, Conversation.channel == conversation.channel)
    return s.scalar(query) or 0


def chat_write_refused(s: Session, tool: str, sender: Sender, web: bool, business_id: int, now: datetime,
                       cap: int) -> ToolReply | None:
    """The refusal for a booking, series, waitlist place or hold past what one sender's chats may make at this
    business in a day, or None. The sender is an SMS or WhatsApp number (its chats on either), and on the web the
    chat itself and every web chat that gave the same phone (a new chat is only a new cookie). Whatever a message
    talks a model into, or however many calls it makes at once, a stranger cannot fill a calendar."""
    budget = WRITE_BUDGETS.get(tool)
    if budget is None or sender.conversation_id is None:
        return None
    tools = [name for name, kind in WRITE_BUDGETS.items() if kind == budget]
    query = (select(func.count()).select_from(ConversationToolCall)
             .join(Conversation, Conversation.id == ConversationToolCall.conversation_id)
             .where(ConversationToolCall.business_id == business_id, Conversation.business_id == business_id,
                    ConversationToolCall.tool.in_(tools), ConversationToolCall.ok,
                    ConversationToolCall.result["outcome"].astext.in_(MADE),
                    ConversationToolCall.created_at > now - WRITES_WINDOW))
    if web:
        same = [Conversation.id == sender.conversation_id]
        if sender.stated_phone:
            stated = Conversation.identity["phone"].astext == sender.stated_phone
            same.append((Conversation.channel == "web") & stated)
        query = query.where(or_(*same))
    else:
        query = query.where(Conversation.phone == sender.phone, Conversation.channel.in_(("sms", "whatsapp")))
    if (s.scalar(query) or 0) < cap:
        return None
    what = "holds" if budget == "holds" else "bookings and waitlist places"
    return error(CHAT_WRITE_CAPS[budget], f"This customer's chats have made {cap} {what} here today, the most a "
                                          "chat may make. Do not try again: tell them, and offer a person from the "
                                          "business (talk_to_a_person) to book more.")
