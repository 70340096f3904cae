"""Vapi, Retell and ElevenLabs tool webhooks: a voice agent's tool calls run through the registry for one business.

POST /webhooks/vapi/{slug}   Vapi "tool-calls" server messages; the business's shared secret in `x-vapi-secret`
                             (or `Authorization: Bearer`).
POST /webhooks/retell/{slug} Retell custom functions, signed in `X-Retell-Signature` with the business's Retell
                             API key.
Set either secret with `nextslot voice-secret SLUG vapi|retell`.
POST /webhooks/elevenlabs/{slug}/{tool}
                             ElevenLabs Agents webhook (server) tools, one URL per tool: the body is the tool's
                             arguments; the business's ElevenLabs secret (`nextslot voice-secret SLUG elevenlabs`)
                             as `Authorization: Bearer`, a header ElevenLabs sends from a workspace secret (a
                             business API key is still accepted).
The caller is the public: lookups by contact reach only the caller id's bookings, or a contact proved in the call
(the code tools are offered here too), never a number only said (`tools/voice_callers.py`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from nextslot.core.accounts.api_keys import PREFIX as API_KEY_PREFIX
from nextslot.core.accounts.api_keys import business_for_key
from nextslot.core.accounts.voice_secrets import Platform, VoiceBusiness, voice_business
from nextslot.core.service import BookingService
from nextslot.schemas.inputs import checked
from nextslot.schemas.voice import ElevenLabsCall, RetellRequest, VapiRequest
from nextslot.server.public_writes import PublicSender
from nextslot.server.rate_limit import RateLimits
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import ToolReply, error
from nextslot.tools.voice_callers import arguments_of, execute_for_caller

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks")

RETELL_SIGNATURE = re.compile(r"v=(\d{1,16}),d=([0-9a-f]{1,128})")  # a time in ms; bounded, so int() never refuses
RETELL_MAX_SKEW_MS = 5 * 60 * 1000  # as Retell's SDKs: a signature more than five minutes off is refused
RETELL_MAX_CHARS = 15_000  # Retell's limit on a function result

Payload = TypeVar("Payload", bound=BaseModel)


@router.post("/vapi/{slug}")
async def vapi_webhook(slug: str, request: Request) -> Response:
    body = await request.body()
    return await run_in_threadpool(answer_vapi, request.app.state.service, slug, request.headers, body,
                                   request.app.state.rate_limits)


@router.post("/elevenlabs/{slug}/{tool}")
async def elevenlabs_webhook(slug: str, tool: str, request: Request) -> Response:
    body = await request.body()
    return await run_in_threadpool(answer_elevenlabs, request.app.state.service, slug, tool, request.headers, body,
                                   request.app.state.rate_limits)


@router.post("/retell/{slug}")
async def retell_webhook(slug: str, request: Request) -> Response:
    body = await request.body()  # the signature covers the raw bytes
    return await run_in_threadpool(answer_retell, request.app.state.service, slug, request.headers, body,
                                   request.app.state.rate_limits)


def answer_vapi(service: BookingService, slug: str, headers: Mapping[str, str], body: bytes,
                limits: RateLimits | None = None) -> Response:
    """Run every call of a tool-calls message; answer other messages (status updates, ...) with an empty 200."""
    business = voice_business(service.uow(), slug, "vapi")
    if business is None:
        return unknown_business(slug)
    given = vapi_secret(headers)
    if business.secret is None or given is None or not hmac.compare_digest(given.encode(), business.secret.encode()):
        return refused("vapi", slug, "missing or wrong secret")
    request = parse(VapiRequest, body)
    if isinstance(request, Response):
        return request
    message = request.message
    if message.type != "tool-calls":
        return Response(status_code=200)
    if message.toolCallList is None:
        return problem(422, "invalid_payload", "A tool-calls message needs message.toolCallList.")
    results, replies = [], []
    for call in message.toolCallList:
        # Vapi resends a timed-out call with the same id: the key makes the retry replay the first answer
        ctx = ToolContext(service, business.business_id, "vapi", caller_phone=message.caller_number,
                          idempotency_key=f"vapi:{call.id}", call_id=platform_call("vapi", message.call_id))
        reply = answer_call(limits, call.name, call.arguments, ctx)
        replies.append(reply)
        results.append({"name": call.name, "toolCallId": call.id, ("result" if reply.ok else "error"): reply.text()})
    return JSONResponse({"results": results}, **over_budget(*replies))


def answer_retell(service: BookingService, slug: str, headers: Mapping[str, str], body: bytes,
                  limits: RateLimits | None = None) -> Response:
    """Run one custom function call; its answer (result or error JSON) is the 200 body the agent reads."""
    business = voice_business(service.uow(), slug, "retell")
    if business is None:
        return unknown_business(slug)
    if business.secret is None or not retell_signature_valid(
            body, business.secret, headers.get("x-retell-signature"), int(time.time() * 1000)):
        return refused("retell", slug, "missing or bad signature")
    request = parse(RetellRequest, body)
    if isinstance(request, Response):
        return request
    ctx = ToolContext(service, business.business_id, "retell", caller_phone=request.call.caller_number,
                      idempotency_key=retell_key(request), call_id=platform_call("retell", request.call.call_id))
    reply = answer_call(limits, request.name, request.args, ctx)
    text = reply.text()
    if len(text) > RETELL_MAX_CHARS:
        text = error("result_too_long", "The answer is too long to pass on; ask for less "
                                        "(a shorter date range or a smaller limit).").text()
    return Response(text, media_type="application/json", **over_budget(reply))


def answer_elevenlabs(service: BookingService, slug: str, tool: str, headers: Mapping[str, str],
                      body: bytes, limits: RateLimits | None = None) -> Response:
    """Run one webhook tool call; its answer (result or error JSON) is the 200 body the agent reads."""
    business = voice_business(service.uow(), slug, "elevenlabs")
    if business is None:
        return unknown_business(slug)
    if not elevenlabs_authenticated(service, business, bearer(headers)):
        return refused("elevenlabs", slug, "missing or wrong secret")
    data = parse_json(body)
    if isinstance(data, Response):
        return data
    if not isinstance(data, dict):
        return problem(422, "invalid_payload", "The body must be a JSON object of the tool's parameters.")
    try:
        call, arguments = ElevenLabsCall.split(data)
    except ValidationError as exc:
        return invalid_payload(exc)
    ctx = ToolContext(service, business.business_id, "elevenlabs", caller_phone=call.caller_id,
                      idempotency_key=call_key("elevenlabs", call.conversation_id, tool, arguments),
                      call_id=platform_call("elevenlabs", call.conversation_id))
    reply = answer_call(limits, tool, arguments, ctx)
    return Response(reply.text(), media_type="application/json", **over_budget(reply))


def answer_call(limits: RateLimits | None, tool: str, arguments: Any, ctx: ToolContext) -> ToolReply:
    """One tool call of the caller on the line, within the calling number's budgets: codes asked for and tried, and
    the bookings, waitlist places and holds calls from it may make at this business a day (server/public_writes.py:
    a caller can say any number, so the business's calendar and its texts are not left to one caller's word)."""
    if (unusable := unusable_argument(arguments)) is not None:
        return unusable
    if (refused := over_code_budget(limits, tool, ctx)) is not None:
        return refused
    sender = PublicSender.on_call(ctx.service, ctx.business_id, ctx.caller_phone)
    return sender.run(tool, arguments_of(arguments), ctx.idempotency_key,
                      lambda: execute_for_caller(tool, arguments, ctx))


def unusable_argument(arguments: Any) -> ToolReply | None:
    """`invalid_arguments` for a value no input may hold (`schemas.inputs.checked`). Vapi's arguments sent as a JSON
    string and an ElevenLabs body are read after the body's own check, and a call's `proof` and `idempotency_key` are
    looked up before the tool's input model sees them: a lone surrogate there was a 500."""
    for name, value in (arguments_of(arguments) or {}).items():
        try:
            checked(name)
        except ValueError as exc:
            return error("invalid_arguments", f"A parameter's name {exc}.")
        try:
            checked(value)
        except ValueError as exc:
            return error("invalid_arguments", f"{name}: {exc}.", name)
    return None


def over_code_budget(limits: RateLimits | None, tool: str, ctx: ToolContext) -> ToolReply | None:
    """A code asked for or tried, charged to the caller: each code asked for is a message sent to someone, and a
    voice platform calls from the same few addresses for every caller, so the budget is the calling number's (one
    shared by every withheld one) at this business, as the public endpoint's is an address's."""
    budget = {"request_code": limits.codes, "verify_code": limits.code_checks}.get(tool) if limits else None
    if budget is None:
        return None
    if (wait := budget.take(f"voice:{ctx.business_id}:{ctx.caller_phone or 'withheld'}")) == 0:
        return None
    asked = "asked for" if tool == "request_code" else "tried"
    return error("too_many_codes", f"Too many codes {asked} on calls from this number; try again in "
                                   f"{wait // 60 + 1} minutes, or look up by the booking code.",
                 say="I can't send or check any more codes on this call. I can still look up your appointment "
                     "by its booking code.")


def over_budget(*replies: ToolReply) -> dict[str, Any]:
    """429 with Retry-After when a call was refused for the business's spent budget (the body still says so in
    the platform's shape); nothing otherwise, for the usual 200."""
    for reply in replies:
        error = reply.data.get("error") if not reply.ok else None
        if isinstance(error, dict) and error.get("code") == "rate_limited":
            return {"status_code": 429, "headers": {"Retry-After": str(error.get("retry_after") or 60)}}
    return {}


def elevenlabs_authenticated(service: BookingService, business: VoiceBusiness, given: str | None) -> bool:
    """The business's ElevenLabs secret (`nextslot voice-secret SLUG elevenlabs`: it opens the tool webhooks and
    nothing else), or, as before there was one, a live API key of this business."""
    if given is None:
        return False
    if business.secret is not None and hmac.compare_digest(given.encode(), business.secret.encode()):
        return True
    return given.startswith(API_KEY_PREFIX) and business_for_key(service.uow(), given) == business.business_id


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def vapi_secret(headers: Mapping[str, str]) -> str | None:
    if (secret := headers.get("x-vapi-secret")) is not None:
        return secret
    return bearer(headers)


def retell_signature_valid(body: bytes, api_key: str, header: str | None, now_ms: int) -> bool:
    """Check `v=<unix ms>,d=<hex HMAC-SHA256 of raw body + the v digits, keyed with the API key>`, as Retell's
    SDK `verify` does (docs.retellai.com/features/secure-webhook), comparing in constant time."""
    match = RETELL_SIGNATURE.fullmatch(header or "")
    if match is None or abs(now_ms - int(match[1])) > RETELL_MAX_SKEW_MS:
        return False
    expected = hmac.new(api_key.encode(), body + match[1].encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match[2])


def retell_key(request: RetellRequest) -> str | None:
    """Retell retries a failed call up to twice with the same body."""
    return call_key("retell", request.call.call_id, request.name, request.args)


def platform_call(platform: Platform, call_id: str | None) -> str | None:
    """The platform's id of the call, named by the platform (ids of two platforms may be alike)."""
    return f"{platform}:{call_id}" if call_id else None


def call_key(platform: str, call_id: str | None, tool: str, arguments: Any) -> str | None:
    """A platform that retries resends the same call, tool and arguments: they give the same key, so a retry
    replays the first answer instead of writing again. No call id, no key (the model may still send one)."""
    if not call_id:
        return None
    canonical = json.dumps([call_id, tool, arguments], sort_keys=True, separators=(",", ":"))
    return f"{platform}:" + hashlib.sha256(canonical.encode()).hexdigest()


def parse(model: type[Payload], body: bytes) -> Payload | Response:
    data = parse_json(body)
    if isinstance(data, Response):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return invalid_payload(exc)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        return problem(400, "invalid_json", f"The body is not valid JSON ({exc.msg} at {exc.pos}).")
    except (ValueError, RecursionError):  # undecodable bytes, a number over 4,300 digits, nesting too deep
        return problem(400, "invalid_json", "The body is not JSON this server can read.")


def invalid_payload(exc: ValidationError) -> Response:
    wrong = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                      for e in exc.errors(include_url=False, include_input=False, include_context=False))
    return problem(422, "invalid_payload", f"The body does not have the expected shape: {wrong}.")


def problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def unknown_business(slug: str) -> JSONResponse:
    return problem(404, "unknown_business", f"No business '{slug}'.")


def refused(platform: Platform, slug: str, reason: str) -> JSONResponse:
    log.warning("%s webhook for business %r refused: %s", platform, slug, reason)  # never the body: customer data
    return problem(401, "unauthorized", f"The request is not authenticated for this business's {platform} "
                                        f"webhook ({reason}).")
