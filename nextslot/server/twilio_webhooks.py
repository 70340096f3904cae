"""Twilio webhooks, both signed by Twilio: delivery receipts (POST /webhooks/twilio/status) and customers'
replies over SMS and WhatsApp (POST /webhooks/twilio/inbound, answered with TwiML).

The signature covers the exact public URL Twilio called, so it is checked against
`NEXTSLOT_PUBLIC_URL` + the path (behind a proxy the server's own view of the URL would differ).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import phonenumbers
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from twilio.twiml.messaging_response import MessagingResponse

from nextslot.reminders.inbound import Conversations, handle_reply
from nextslot.reminders.receipts import record_receipt
from nextslot.reminders.twilio_signature import valid_twilio_request
from nextslot.schemas.inputs import CONTROL
from nextslot.server.rate_limit import rate_limits

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio")
# a Message SID as Twilio makes them, SMS, MMS and WhatsApp alike: SM or MM, then 32 hex digits (Twilio's own
# pattern allows capitals; its SIDs are lower case). Its exact length is what stops a re-split form
MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-fA-F]{32}")
SENT_AS = re.compile(r"notification-[0-9]{1,18}")  # the reference our status callback's URL carries


def public_url(request: Request) -> str:
    url = f"{request.app.state.settings.public_url.rstrip('/')}{request.url.path}"
    return f"{url}?{request.url.query}" if request.url.query else url


def refused(code: str, message: str, status: int = 400) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def on_signed_form(request: Request, handle: Callable[[Request, dict[str, str]], Awaitable[Response]]
                         ) -> Response:
    """Handle the posted form if Twilio signed it for the URL it called; else answer 403."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    token = request.app.state.settings.twilio_auth_token
    if not token or not valid_twilio_request(token, public_url(request), form,
                                             request.headers.get("x-twilio-signature"), request.headers):
        log.warning("twilio webhook %s refused: bad or missing signature", request.url.path)
        return refused("unauthorized", "Bad or missing Twilio signature.", 403)
    if (problem := not_a_message_sid(form)) is not None:
        return problem
    # signed, so Twilio's; but a control character (NUL, ...) means nothing in a message and PostgreSQL stores none
    return await handle(request, {k: CONTROL.sub("", v) for k, v in form.items()})


def not_a_message_sid(form: dict[str, str]) -> Response | None:
    """400 unless MessageSid is a Message SID of Twilio's shape (SmsSid and SmsMessageSid, when sent, the same).
    The signature covers the fields' names and values run together, so the same signed characters split
    differently (MessageSid's value lengthened by the next field's name, that field gone) still validate: a fixed
    34-character SID leaves no such second reading to act on again under a "new" MessageSid."""
    sid = form.get("MessageSid") or ""
    if not MESSAGE_SID.fullmatch(sid) or any(form.get(name, sid) != sid for name in ("SmsSid", "SmsMessageSid")):
        return refused("invalid_payload", "MessageSid is not a Twilio message SID.")
    return None


def too_long(form: dict[str, str], limits: dict[str, int]) -> Response | None:
    """400 for a field longer than any Twilio sends (and than its column): a phone number, a status."""
    over = [name for name, most in limits.items() if len((form.get(name) or "").removeprefix("whatsapp:")) > most]
    return refused("invalid_payload", f"{', '.join(over)} too long.") if over else None


@router.post("/inbound")
async def twilio_inbound(request: Request) -> Response:
    return await on_signed_form(request, inbound)


async def inbound(request: Request, form: dict[str, str]) -> Response:
    sender, body, media = form.get("From"), form.get("Body"), media_of(form)
    if not sender or (body is None and not media):
        return refused("invalid_payload", "From and Body are required.")
    if (problem := too_long(form, {"From": 20, "To": 20})) is not None:
        return problem
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    settings = request.app.state.settings
    conversations = Conversations(timedelta(minutes=settings.conversation_idle_minutes),
                                  e164(form.get("To") or "") or None, media)
    quoted = form.get("OriginalRepliedMessageSid") or ""  # WhatsApp: the message of ours the customer answered
    answer = await run_in_threadpool(handle_reply, request.app.state.service, channel, e164(sender), body or "",
                                     form.get("MessageSid"), conversations, reply_budget(request),
                                     quoted if MESSAGE_SID.fullmatch(quoted) else None,
                                     form.get("OptOutType") or None)  # Twilio's Advanced Opt-Out: STOP, START, HELP
    twiml = MessagingResponse()
    if answer:  # None: the conversation answers through the outbox in a moment; "": no answer (past its budget)
        twiml.message(answer)
    return Response(str(twiml), media_type="application/xml")


def reply_budget(request: Request) -> Callable[[str], str]:
    """A sending number's keyword answers, counted per process like the other rate limits: as many an hour as a
    number's conversation messages (`NEXTSLOT_CONVERSATION_MESSAGES_PER_NUMBER`), then one word, then silence."""
    limits = rate_limits(request)

    def take(phone: str) -> str:
        if limits.replies.take(phone) == 0:
            return "answer"
        return "notice" if limits.reply_notices.take(phone) == 0 else "silent"

    return take


def e164(number: str) -> str:
    """A number as customer records and configs keep it (E.164), in whatever form it was given ("whatsapp:+44 7911
    123456", "0044 7911 123456"); a sender that is no phone number (a short code, a name) as given."""
    given = number.removeprefix("whatsapp:").strip()
    plain = re.sub(r"[\s().-]", "", given)
    try:
        parsed = phonenumbers.parse("+" + plain[2:] if plain.startswith("00") else plain, None)
    except phonenumbers.NumberParseException:
        return given
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) \
        if phonenumbers.is_possible_number(parsed) else given


def media_of(form: dict[str, str]) -> dict[str, Any]:
    """Photos, voice notes and files (NumMedia, MediaUrlN, MediaContentTypeN) or a shared WhatsApp location."""
    try:
        count = min(int(form.get("NumMedia") or 0), 10)
    except ValueError:
        count = 0
    media: dict[str, Any] = {}
    if count:
        media["items"] = [{"url": form.get(f"MediaUrl{i}", ""), "type": form.get(f"MediaContentType{i}", "")}
                          for i in range(count)]
    if form.get("Latitude") and form.get("Longitude"):
        media["location"] = {k.lower(): form[k] for k in ("Latitude", "Longitude", "Address", "Label") if form.get(k)}
    return media


def sent_as(request: Request) -> tuple[str, str] | None:
    """What our status callback's URL (signed with the form) says the message was sent as: ("notification-12", "sms")."""
    reference, channel = request.query_params.get("ref") or "", request.query_params.get("channel") or ""
    return (reference, channel) if SENT_AS.fullmatch(reference) and channel in ("sms", "whatsapp") else None


@router.post("/status")
async def twilio_status(request: Request) -> Response:
    return await on_signed_form(request, receipt)


async def receipt(request: Request, form: dict[str, str]) -> Response:
    sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not status:
        return refused("invalid_payload", "MessageSid and MessageStatus are required.")
    if (problem := too_long(form, {"MessageStatus": 16, "ErrorCode": 32})) is not None:
        return problem
    service = request.app.state.service
    known = await run_in_threadpool(record_receipt, service.session_factory, service.now(), sid, status.lower(),
                                    form.get("ErrorCode") or None, sent_as(request))
    if not known:
        log.info("twilio status for a message whose send is not recorded (yet): %s, kept for it", sid)
    return Response(status_code=204)
