"""Answering conversations, in the scheduler processes: a conversation with messages waiting is leased to one
process (SKIP LOCKED, like the outbox), which answers its messages one at a time in arrival order. Each answer
is committed with the message marked done and the reply queued in the outbox (receipts and fallback apply), in
one transaction fenced by the lease: a process that lost its lease records nothing, and the one that took over
answers again with the same idempotency keys, so a booking is never made twice."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openai
from sqlalchemy import func, select, text, update

from nextslot.conversations import guided
from nextslot.conversations.bound_tools import execute_as_sender
from nextslot.conversations.model_agent import (
    BudgetSpent,
    ModelEndpoint,
    ModelFailed,
    Recorded,
    endpoint_for,
    reply_with_model,
    system_prompt,
)
from nextslot.conversations.words import say
from nextslot.core.service import BookingService
from nextslot.reminders.dispatcher import CONVERSATION_REPLY  # the outbox row a reply is sent as
from nextslot.settings import Settings
from nextslot.storage import leases
from nextslot.storage.tables import (
    Business,
    Conversation,
    ConversationMessage,
    ConversationToolCall,
    Customer,
    ModelCall,
    Notification,
)
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import ToolReply

log = logging.getLogger(__name__)


class ConversationEngine:
    def __init__(self, service: BookingService, settings: Settings, lease: timedelta = timedelta(minutes=3),
                 batch: int = 10):
        self._service = service
        self._settings = settings
        self._lease = lease  # longer than a message's worst case: model requests time out well before
        self._batch = batch
        self._clients: dict[tuple[str | None, str | None], openai.OpenAI] = {}

    # --- claiming -------------------------------------------------------------------------------------------

    def process_due(self) -> int:
        """Claim conversations with messages waiting and answer them; return how many were claimed."""
        now = self._service.now()
        lease = now + self._lease
        ids = leases.claimed(self._service.session_factory, leases.CONVERSATIONS, now, lease, self._batch,
                             lambda s, ids: ids) or []
        for conversation_id in ids:
            try:
                self.work_through(conversation_id, lease)
            except Exception as error:  # one conversation's trouble must not hold up the others
                log.error("conversation %s: answering failed (%s)", conversation_id, type(error).__name__)
        return len(ids)

    def work_through(self, conversation_id: int, lease: datetime) -> None:
        """Answer the conversation's waiting messages, oldest first, then hand the lease back."""
        while (message_id := self.next_waiting(conversation_id)) is not None:
            lease = self.answer(conversation_id, message_id, lease)
            if lease is None:
                return  # another process holds the conversation now
        with self._service.session_factory() as s:
            s.execute(update(Conversation).where(Conversation.id == conversation_id,
                                                 Conversation.locked_until == lease).values(locked_until=None))
            s.commit()

    def next_waiting(self, conversation_id: int) -> int | None:
        with self._service.session_factory() as s:
            return s.scalar(select(func.min(ConversationMessage.id)).where(
                ConversationMessage.conversation_id == conversation_id, ConversationMessage.direction == "in",
                ConversationMessage.processed_at.is_(None)))

    def close_idle(self) -> int:
        """End conversations quiet for the idle time with nothing waiting (the next message starts anew)."""
        now = self._service.now()
        with self._service.session_factory() as s:
            closed = s.execute(text("""
                update conversations c set status = 'closed', closed_at = :now
                where c.status = 'open' and c.last_message_at <= :before
                  and (c.locked_until is null or c.locked_until < :now)
                  and not exists (select 1 from conversation_messages m where m.conversation_id = c.id
                                  and m.direction = 'in' and m.processed_at is null)
            """), {"now": now, "before": now - timedelta(minutes=self._settings.conversation_idle_minutes)}).rowcount
            s.commit()
        return closed

    # --- answering one message ------------------------------------------------------------------------------

    def answer(self, conversation_id: int, message_id: int, lease: datetime) -> datetime | None:
        """Answer one message and commit it with its reply; the new lease, or None if ours ran out."""
        with self._service.session_factory() as s:
            c = s.get(Conversation, conversation_id)
            business = s.get(Business, c.business_id)
            m = s.get(ConversationMessage, message_id)
            name = s.scalar(select(Customer.name).where(Customer.business_id == c.business_id,
                                                        Customer.phone == c.phone)) or ""
            facts = dict(business_id=c.business_id, business_name=business.name, zone=ZoneInfo(business.timezone),
                         details=business.details or {}, phone=c.phone, channel=c.channel, language=c.language,
                         mode=c.mode, state=dict(c.state or {}), model_calls=c.model_calls, body=m.body,
                         media=m.media or {}, customer_name=name)
        ctx = ToolContext(self._service, facts["business_id"], channel=f"{facts['channel']}_chat",
                          caller_phone=facts["phone"])
        reply, mode, state = self.reply_to(conversation_id, message_id, facts, ctx)
        return self.commit_answer(conversation_id, message_id, lease, reply, mode, state)

    def reply_to(self, conversation_id: int, message_id: int, facts: dict[str, Any],
                 ctx: ToolContext) -> tuple[tuple[str, str], str, dict[str, Any]]:
        """(text, who answered), the conversation's mode after it, and the guided flow's state."""
        language, body = facts["language"], facts["body"].strip()
        if facts["media"] and not body:  # a photo, voice note or location with no words
            return (say(language, "media"), "notice"), facts["mode"], facts["state"]
        turn = guided.Turn(facts["business_name"], facts["zone"], language, facts["customer_name"],
                           lambda name, args: self.run_tool(ctx, conversation_id, message_id, name, args, "guided"),
                           f"conversation:{message_id}", self._service.now().astimezone(facts["zone"]).date())
        endpoint = endpoint_for(self._settings, facts["details"])
        if facts["mode"] == "guided" or endpoint is None:
            text, state = guided.answer(turn, facts["state"], body)
            return (text, "guided"), facts["mode"], state
        try:
            text = self.ask_model(endpoint, conversation_id, message_id, facts, ctx)
            return (text, "model"), "model", facts["state"]
        except (ModelFailed, BudgetSpent) as why:
            note = "cap" if isinstance(why, BudgetSpent) else "model_down"
            log.warning("conversation %s: the guided flow answers (%s)", conversation_id,
                        getattr(why, "code", "budget spent"))
            text, state = guided.menu(turn, say(language, note))
            return (text, "guided"), "guided", state

    def ask_model(self, endpoint: ModelEndpoint, conversation_id: int, message_id: int, facts: dict[str, Any],
                  ctx: ToolContext) -> str:
        client = self._clients.get((endpoint.base_url, endpoint.api_key))
        if client is None:
            client = self._clients[(endpoint.base_url, endpoint.api_key)] = endpoint.client()
        client = client.with_options(timeout=endpoint.timeout)
        messages = [{"role": "system", "content": system_prompt(facts["business_name"], facts["zone"],
                                                                self._service.now(), facts["language"],
                                                                facts["customer_name"])},
                    *self.history(conversation_id, message_id)]

        def record(r: Recorded) -> None:
            with self._service.session_factory() as s:
                s.add(ModelCall(business_id=facts["business_id"], conversation_id=conversation_id,
                                message_id=message_id, model=r.model[:200], prompt_tokens=r.prompt_tokens,
                                completion_tokens=r.completion_tokens, latency_ms=r.latency_ms, error=r.error,
                                created_at=self._service.now()))
                s.execute(update(Conversation).where(Conversation.id == conversation_id)
                          .values(model_calls=Conversation.model_calls + 1))
                s.commit()

        def spend() -> None:
            self.check_budget(conversation_id, facts)

        def run_tool(name: str, arguments: str, call_id: str) -> ToolReply:
            keyed = replace(ctx, idempotency_key=f"conversation:{message_id}:{call_id}")
            return self.run_tool(keyed, conversation_id, message_id, name, arguments, "model")

        return reply_with_model(client, endpoint.model, messages, run_tool, record, spend)

    def check_budget(self, conversation_id: int, facts: dict[str, Any]) -> None:
        own = (facts["details"].get("conversations") or {})
        daily = int(own.get("daily_model_calls") or self._settings.conversation_daily_model_calls)
        now = self._service.now()
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
        with self._service.session_factory() as s:
            spent = s.scalar(select(Conversation.model_calls).where(Conversation.id == conversation_id)) or 0
            today = s.scalar(select(func.count()).select_from(ModelCall).where(
                ModelCall.business_id == facts["business_id"], ModelCall.created_at >= midnight)) or 0
        if spent >= self._settings.conversation_max_model_calls or today >= daily:
            raise BudgetSpent()

    def history(self, conversation_id: int, up_to: int) -> list[dict[str, str]]:
        """The latest texts in and out, oldest first, ending with the message being answered (bounded)."""
        with self._service.session_factory() as s:
            rows = s.execute(select(ConversationMessage.direction, ConversationMessage.body).where(
                ConversationMessage.conversation_id == conversation_id, ConversationMessage.id <= up_to,
                ConversationMessage.body != "").order_by(ConversationMessage.id.desc())
                .limit(self._settings.conversation_history_messages)).all()
        return [{"role": "user" if d == "in" else "assistant", "content": b} for d, b in reversed(rows)]

    def run_tool(self, ctx: ToolContext, conversation_id: int, message_id: int, name: str, arguments: Any,
                 by: str) -> ToolReply:
        """Run a tool bound to the sender and store the call with its result."""
        reply = execute_as_sender(name, arguments, ctx)
        stored = arguments if isinstance(arguments, dict) else {"raw": str(arguments)[:2000]}
        with self._service.session_factory() as s:
            s.add(ConversationToolCall(business_id=ctx.business_id, conversation_id=conversation_id,
                                       message_id=message_id, tool=name[:64], arguments=stored, result=reply.data,
                                       ok=reply.ok, by=by, created_at=self._service.now()))
            s.commit()
        return reply

    def commit_answer(self, conversation_id: int, message_id: int, lease: datetime, reply: tuple[str, str],
                      mode: str, state: dict[str, Any]) -> datetime | None:
        text_, by = reply
        now = self._service.now()
        with self._service.session_factory() as s:
            c = s.get(Conversation, conversation_id, with_for_update=True)
            if c.locked_until != lease:
                log.warning("conversation %s: lease lost before answering message %s", conversation_id, message_id)
                return None
            m = s.get(ConversationMessage, message_id)
            notice = Notification(business_id=c.business_id, customer_id=c.customer_id, kind=CONVERSATION_REPLY, due_at=now,
                                  status="pending", attempts=0,
                                  payload={"text": text_, "channel": c.channel, "to": c.phone})
            s.add(notice)
            s.flush()
            s.add(ConversationMessage(business_id=c.business_id, conversation_id=c.id, direction="out", body=text_,
                                      media={}, answered_by=by, notification_id=notice.id, created_at=now,
                                      processed_at=now))
            m.processed_at = now
            c.mode, c.state = mode, state
            c.locked_until = renewed = now + self._lease
            s.commit()
        log.info("conversation %s: message %s answered by %s", conversation_id, message_id, by)
        return renewed
