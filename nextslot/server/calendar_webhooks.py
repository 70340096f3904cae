"""Calendar change notifications: Google watch channels (POST /webhooks/calendars/google) and Microsoft Graph
subscriptions (POST /webhooks/calendars/microsoft, with Graph's validation handshake).

Each answers fast and does no reading itself: an accepted notification marks the calendar, and the scheduler
reads it within seconds (`nextslot.calendars.push`).
"""
from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from nextslot.calendars.push import notified, notified_all

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/calendars")
STATUS = {"accepted": 200, "unknown": 404, "forged": 403}


def refused(code: str, message: str, status: int) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@router.post("/google")
async def google_push(request: Request) -> Response:
    """Google says a watched calendar changed (X-Goog-Resource-State "exists"), or confirms a new channel
    ("sync", nothing to read)."""
    channel = request.headers.get("x-goog-channel-id", "")
    token = request.headers.get("x-goog-channel-token", "")
    state = request.headers.get("x-goog-resource-state", "")
    service = request.app.state.service
    outcome = await run_in_threadpool(notified, service.session_factory, "google", channel, token, service.now(),
                                      state != "sync")
    if outcome == "accepted":
        return Response(status_code=200)
    return refused(f"channel_{outcome}", "Not a channel of this server." if outcome == "unknown" else
                   "The channel's token does not match.", STATUS[outcome])


@router.post("/microsoft")
async def microsoft_push(request: Request) -> Response:
    """Graph validates a new subscription by posting a validationToken to be echoed as plain text within 10 s;
    after that it posts change notifications, each with the clientState we gave the subscription."""
    token = request.query_params.get("validationToken")
    if token is not None:
        return PlainTextResponse(token[:4096], status_code=200, headers={"X-Content-Type-Options": "nosniff"})
    try:
        body = json.loads(await request.body())
        items = body["value"] if isinstance(body, dict) and isinstance(body.get("value"), list) else None
    except (ValueError, RecursionError):  # undecodable bytes, a number over 4,300 digits, nesting too deep
        items = None
    if items is None:
        return refused("invalid_notification", "Expected Graph's change notification JSON.", 400)
    service = request.app.state.service
    # checked together, in one lookup: an unauthenticated request costs the same however many it carries (the
    # first 100: Graph documents no batch size, and one left out only delays a change until the periodic sync)
    pairs = [(str(item.get("subscriptionId", "")), str(item.get("clientState", ""))) for item in items[:100]
             if isinstance(item, dict)]
    outcomes = await run_in_threadpool(notified_all, service.session_factory, "microsoft", pairs,
                                       service.now()) if pairs else []
    if "accepted" in outcomes or not outcomes:
        return Response(status_code=202)
    return refused("subscription_unknown" if "unknown" in outcomes else "subscription_forged",
                   "No notification here is for a subscription of this server with its client state.",
                   STATUS["unknown" if "unknown" in outcomes else "forged"])
