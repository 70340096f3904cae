"""Answering conversations, in the scheduler processes: a conversation with messages waiting is leased to one
process (SKIP LOCKED, like the outbox), which answers its messages one at a time in arrival order. Each answer
is committed with the message marked done and the reply queued in the outbox (receipts and fallback apply), in
one transaction fenced by the lease: a process that lost its lease records nothing, and the one that took over
answers again with the same idempotency keys, so a booking is never made twice."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openai
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from nextslot.conversations import guided
from nextslot.conversations.bound_tools import Sender, execute_bound
from nextslot.conversations.handoff import MAX_MISSES, PERSON_TOOL, wants_person
from nextslot.conversations.limits import caps_for, chat_write_refused, messages_this_hour, spent_so_far
from nextslot.conversations.model_agent import (
    BudgetSpent,
    ModelEndpoint,
    ModelFailed,
    Recorded,
    call_key,
    endpoint_for,
    readable_call,
    reply_with_model,
    system_prompt,
    without_control,
)
from nextslot.conversations.words import say
from nextslot.core.service import BookingService
from nextslot.reminders.jobs import CONVERSATION_REPLY  # the outbox row a reply is sent as
from nextslot.settings import Settings
from nextslot.storage import leases
from nextslot.storage.tables import (
    Business,
    Conversation,
    ConversationMessage,
    ConversationToolCall,
    Customer,
    Location,
    ModelCall,
    Notification,
    Resource,
)
from nextslot.telemetry import metrics
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import ToolReply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What one message is answered with: the text and who wrote it (None: stay silent, a person answers), the
    conversation's mode and guided state after it, and why it goes to a person now (None: it does not)."""

    text: str | None
    by: str
    mode: str
    state: dict[str, Any]
    handoff: str | None = None
    error: str | None = None  # stored on the message: rate_limited, gave_up


class ConversationEngine:
    def __init__(self, service: BookingService, settings: Settings, lease: timedelta = timedelta(minutes=3),
                 batch: int = 1):
        self._service = service
        self._settings = settings
        self._lease = lease  # longer than a message's worst case: model requests time out well before
        # one conversation a claim: a process takes no more than it is answering, so another process (or this one
        # at its next claim) takes the next conversation rather than waiting behind a batch held by one
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
            try:
                renewed = self.answer(conversation_id, message_id, lease)
            except Exception as error:  # tried again shortly; after the last try a person takes over
                log.error("conversation %s: answering message %s failed (%s)", conversation_id, message_id,
                          type(error).__name__)
                self.retry_later(conversation_id, lease)
                return
            if renewed is None:
                return  # another process holds the conversation now
            lease = renewed
        with self._service.session_factory() as s:
            s.execute(update(Conversation).where(Conversation.id == conversation_id,
                                                 Conversation.locked_until == lease).values(locked_until=None))
            s.commit()

    def retry_later(self, conversation_id: int, lease: datetime) -> None:
        """Keep the conversation leased a little longer, so it is taken up again soon (not when the lease ends)."""
        with self._service.session_factory() as s:
            s.execute(update(Conversation).where(Conversation.id == conversation_id, Conversation.locked_until == lease)
                      .values(locked_until=self._service.now()
                              + timedelta(seconds=self._settings.conversation_retry_seconds)))
            s.commit()

    def count_try(self, conversation_id: int, message_id: int, lease: datetime) -> int | None:
        """Count a try at answering the message before making it (so a process that dies mid-answer counts too);
        None if our lease ran out."""
        with self._service.session_factory() as s:
            c = s.get(Conversation, conversation_id, with_for_update=True)
            if c is None or c.locked_until != lease:
                return None
            m = s.get(ConversationMessage, message_id)
            m.attempts += 1
            tries = m.attempts
            s.commit()
        return tries

    def next_waiting(self, conversation_id: int) -> int | None:
        with self._service.session_factory() as s:
            return s.scalar(select(func.min(ConversationMessage.id)).where(
                ConversationMessage.conversation_id == conversation_id, ConversationMessage.direction == "in",
                ConversationMessage.processed_at.is_(None)))

    def close_idle(self) -> int:
        """End conversations quiet for the idle time with nothing waiting (the next message starts anew); one
        handed to a person stays open until a person hands it back."""
        now = self._service.now()
        with self._service.session_factory() as s:
            closed = s.execute(text("""
                update conversations c set status = 'closed', closed_at = :now
                where c.status = 'open' and c.last_message_at <= :before and c.handoff_at is null
                  and (c.locked_until is null or c.locked_until < :now)
                  and not exists (select 1 from conversation_messages m where m.conversation_id = c.id
                                  and m.direction = 'in' and m.processed_at is null)
            """), {"now": now, "before": now - timedelta(minutes=self._settings.conversation_idle_minutes)}).rowcount
            s.commit()
        return closed

    # --- answering one message ------------------------------------------------------------------------------

    def answer(self, conversation_id: int, message_id: int, lease: datetime) -> datetime | None:
        """Answer one message and commit it with its reply; the new lease, or None if ours ran out."""
        tries = self.count_try(conversation_id, message_id, lease)
        if tries is None:
            return None
        with self._service.session_factory() as s:
            c = s.get(Conversation, conversation_id)
            business = s.get(Business, c.business_id)
            m = s.get(ConversationMessage, message_id)
            identity = dict(c.identity or {})
            sender = Sender(phone=c.phone, conversation_id=c.id) if c.channel != "web" else Sender(
                phone=identity.get("proved_phone"), email=identity.get("proved_email"),
                stated_phone=identity.get("phone"), conversation_id=c.id)
            name = identity.get("name") if c.channel == "web" else s.scalar(select(Customer.name).where(
                Customer.business_id == c.business_id, Customer.phone == c.phone))
            facts = dict(business_id=c.business_id, business_name=business.name, slug=business.slug,
                         zone=ZoneInfo(business.timezone), details=business.details or {}, phone=c.phone,
                         channel=c.channel, language=c.language,
                         mode=c.mode, state=dict(c.state or {}), model_calls=c.model_calls, body=m.body,
                         media=m.media or {}, customer_name=name or "", handed_off=c.handoff_at is not None,
                         sender=sender, this_hour=messages_this_hour(s, c, m),
                         today=earliest_date(s, business, self._service.now()),
                         branches=branches_elsewhere(s, business))
        if tries > self._settings.conversation_message_attempts:  # it keeps failing: a person takes over
            log.error("conversation %s: message %s failed %s times; handed to a person", conversation_id,
                      message_id, tries - 1)
            handed = say(facts["language"], "handoff", business=facts["business_name"])
            return self.commit_answer(conversation_id, message_id, lease, Answer(
                None if facts["handed_off"] else handed, "handoff", facts["mode"], {},
                handoff=None if facts["handed_off"] else "errors", error="gave_up"))
        if facts["handed_off"]:  # a person answers it: stored, not answered
            return self.commit_answer(conversation_id, message_id, lease,
                                      Answer(None, "staff", facts["mode"], facts["state"]))
        limit = self._settings.conversation_messages_per_number
        if facts["this_hour"] > limit:  # flooding: one word about it, then silence; no model, no tools
            log.warning("conversation %s: message %s over %s an hour, not answered", conversation_id, message_id,
                        limit)
            return self.commit_answer(conversation_id, message_id, lease, Answer(
                say(facts["language"], "slow_down") if facts["this_hour"] == limit + 1 else None, "notice",
                facts["mode"], facts["state"], error="rate_limited"))
        ctx = ToolContext(self._service, facts["business_id"], channel=f"{facts['channel']}_chat",
                          caller_phone=sender.phone or sender.stated_phone, language=facts["language"])
        answer = self.reply_to(conversation_id, message_id, facts, ctx)
        return self.commit_answer(conversation_id, message_id, lease, answer)

    def reply_to(self, conversation_id: int, message_id: int, facts: dict[str, Any], ctx: ToolContext) -> Answer:
        """The answer to one message: by the model, the guided flow, or a hand-off to a person."""
        language, body = facts["language"], facts["body"].strip()
        if facts["media"] and not body:  # a photo, voice note or location with no words
            return Answer(say(language, "media"), "notice", facts["mode"], facts["state"])
        handed = say(language, "handoff", business=facts["business_name"])
        if wants_person(body):
            return Answer(handed, "handoff", facts["mode"], {}, handoff="asked")
        turn = guided.Turn(facts["business_name"], facts["zone"], language, facts["customer_name"],
                           lambda name, args: self.run_tool(ctx, conversation_id, message_id, name, args, "guided",
                                                            facts["sender"]),
                           f"conversation:{message_id}", facts["today"])
        endpoint = endpoint_for(self._settings, facts["details"], facts["slug"])
        if facts["mode"] == "guided" or endpoint is None:
            text, state = guided.answer(turn, facts["state"], body)
            if state.get("handoff"):
                return Answer(text, "handoff", facts["mode"], {}, handoff="menu")
            if state.get("misses", 0) >= MAX_MISSES:  # the flow keeps not helping: a person will
                return Answer(handed, "handoff", facts["mode"], {}, handoff="failures")
            return Answer(text, "guided", facts["mode"], state)
        try:
            text, person = self.ask_model(endpoint, conversation_id, message_id, facts, ctx)
            if person:
                return Answer(handed, "handoff", "model", facts["state"], handoff="model")
            return Answer(text, "model", "model", facts["state"])
        except (ModelFailed, BudgetSpent) as why:
            note = "cap" if isinstance(why, BudgetSpent) else "model_down"
            log.warning("conversation %s: the guided flow answers (%s)", conversation_id, why.code)
            text, state = guided.menu(turn, say(language, note))
            return Answer(text, "guided", "guided", state)

    def ask_model(self, endpoint: ModelEndpoint, conversation_id: int, message_id: int, facts: dict[str, Any],
                  ctx: ToolContext) -> tuple[str, bool]:
        """The model's answer, and whether it handed the conversation to a person."""
        reach = (endpoint.base_url, endpoint.api_key, endpoint.guarded)
        client = self._clients.get(reach)
        if client is None:
            client = self._clients[reach] = endpoint.client()
        client = client.with_options(timeout=endpoint.timeout)
        messages = [{"role": "system", "content": system_prompt(facts["business_name"], facts["zone"],
                                                                self._service.now(), facts["language"],
                                                                facts["customer_name"], facts["branches"])},
                    *self.history(conversation_id, message_id)]

        caps = caps_for(self._settings, facts["details"])
        with self._service.session_factory() as s:
            spent = spent_so_far(s, conversation_id, facts["business_id"], self._service.now())

        def record(r: Recorded) -> None:
            spent.add((r.prompt_tokens or 0) + (r.completion_tokens or 0))
            metrics.MODEL_CALLS.labels("error" if r.error else "ok").observe(r.latency_ms / 1000)
            with self._service.session_factory() as s:
                s.add(ModelCall(business_id=facts["business_id"], conversation_id=conversation_id,
                                message_id=message_id, model=r.model[:200], prompt_tokens=r.prompt_tokens,
                                completion_tokens=r.completion_tokens, latency_ms=r.latency_ms, error=r.error,
                                created_at=self._service.now()))
                s.execute(update(Conversation).where(Conversation.id == conversation_id).values(
                    model_calls=Conversation.model_calls + 1,
                    tokens=Conversation.tokens + (r.prompt_tokens or 0) + (r.completion_tokens or 0)))
                s.commit()

        def spend() -> None:  # before each request
            if reached := spent.cap_reached(caps):
                raise BudgetSpent(reached)

        person: list[str] = []

        def run_tool(name: str, arguments: str, call_id: str) -> ToolReply:
            if name == PERSON_TOOL["function"]["name"]:
                person.append(name)
                return ToolReply(True, {"handed_off": True, "say": "A member of staff will answer the customer."})
            keyed = replace(ctx, idempotency_key=call_key(message_id, call_id))
            return self.run_tool(keyed, conversation_id, message_id, name, arguments, "model", facts["sender"])

        text = reply_with_model(client, endpoint.model, messages, run_tool, record, spend, extra_tools=[PERSON_TOOL])
        return text, bool(person)

    def history(self, conversation_id: int, up_to: int) -> list[dict[str, str]]:
        """The latest texts in and out, oldest first, ending with the message being answered (bounded)."""
        with self._service.session_factory() as s:
            rows = s.execute(select(ConversationMessage.direction, ConversationMessage.body).where(
                ConversationMessage.conversation_id == conversation_id, ConversationMessage.id <= up_to,
                ConversationMessage.body != "").order_by(ConversationMessage.id.desc())
                .limit(self._settings.conversation_history_messages)).all()
        return [{"role": "user" if d == "in" else "assistant", "content": b} for d, b in reversed(rows)]

    def run_tool(self, ctx: ToolContext, conversation_id: int, message_id: int, name: str, arguments: Any,
                 by: str, sender: Sender) -> ToolReply:
        """Run a tool bound to the sender and store the call with its result; past the day's bookings or holds for
        this sender, the call is refused before it runs."""
        stored = {"raw": without_control(str(arguments))[:2000]} if not isinstance(arguments, dict) else None
        name, arguments, refusal = readable_call(name, arguments)
        stored = stored or arguments
        started = time.perf_counter()
        if refusal is None:
            with self._service.session_factory() as s:
                refusal = chat_write_refused(s, name, sender, ctx.channel == "web_chat", ctx.business_id,
                                             self._service.now(), self._settings.conversation_bookings_per_day)
        reply = refusal or execute_bound(name, arguments, ctx, sender)
        took = int((time.perf_counter() - started) * 1000)
        with self._service.session_factory() as s:
            s.add(ConversationToolCall(business_id=ctx.business_id, conversation_id=conversation_id,
                                       message_id=message_id, tool=name[:64], arguments=stored, result=reply.data,
                                       ok=reply.ok, by=by, latency_ms=took, created_at=self._service.now()))
            s.commit()
        return reply

    def commit_answer(self, conversation_id: int, message_id: int, lease: datetime,
                      answer: Answer) -> datetime | None:
        now = self._service.now()
        with self._service.session_factory() as s:
            c = s.get(Conversation, conversation_id, with_for_update=True)
            if c.locked_until != lease:
                log.warning("conversation %s: lease lost before answering message %s", conversation_id, message_id)
                return None
            m = s.get(ConversationMessage, message_id)
            if answer.text is not None:
                add_reply(s, c, answer.text, answer.by, now)
            if answer.handoff:
                c.handoff_at, c.handoff_reason = now, answer.handoff
            m.processed_at, m.error = now, answer.error
            c.mode, c.state = answer.mode, answer.state
            c.locked_until = renewed = now + self._lease
            s.commit()
        log.info("conversation %s: message %s answered by %s", conversation_id, message_id,
                 answer.by if answer.text is not None else f"no one ({answer.error or 'handed off'})")
        return renewed


def earliest_date(s: Session, business: Business, now: datetime) -> date:
    """The date it is now at the business's place furthest behind: the guided chat's days start there, since a
    branch behind the business (Los Angeles for London) is still on yesterday's date, with times left that day."""
    zones = {business.timezone, *s.scalars(
        select(func.coalesce(Resource.timezone, Location.timezone))
        .outerjoin(Location, Location.id == Resource.location_id)
        .where(Resource.business_id == business.id, Resource.active).distinct())}
    return min(now.astimezone(ZoneInfo(zone)).date() for zone in zones if zone)


def branches_elsewhere(s: Session, business: Business) -> list[tuple[str, ZoneInfo]]:
    """The active branches in another zone than the business's, with their zones: the model hears their dates."""
    return [(name, ZoneInfo(zone)) for name, zone in s.execute(
        select(Location.name, Location.timezone).where(Location.business_id == business.id, Location.active,
                                                       Location.timezone.is_not(None),
                                                       Location.timezone != business.timezone)
        .order_by(Location.id))]


def add_reply(s: Session, c: Conversation, text: str, by: str, now: datetime,
              staff_name: str | None = None) -> ConversationMessage:
    """Store a reply in the conversation; over SMS or WhatsApp queue it in the outbox too (receipts and fallback
    apply), in the caller's transaction. A web chat's panel reads its replies from the conversation itself."""
    notice = None
    if c.channel != "web":
        notice = Notification(business_id=c.business_id, customer_id=c.customer_id, kind=CONVERSATION_REPLY,
                              due_at=now, status="pending", attempts=0,
                              payload={"text": text, "channel": c.channel, "to": c.phone,
                                       "from": (c.identity or {}).get("to")})
        s.add(notice)
        s.flush()
    metrics.CONVERSATION_ANSWERS.labels(by).inc()
    message = ConversationMessage(business_id=c.business_id, conversation_id=c.id, direction="out", body=text,
                                  media={}, answered_by=by, staff_name=staff_name,
                                  notification_id=notice.id if notice else None, created_at=now, processed_at=now)
    s.add(message)
    return message
