"""Twilio's delivery receipts: POST /webhooks/twilio/status, signed by Twilio.

The signature covers the exact public URL Twilio called, so it is checked against
`NEXTSLOT_PUBLIC_URL` + the path (behind a proxy the server's own view of the URL would differ).
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.twilio_signature import valid_twilio_request

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio")


def public_url(request: Request) -> str:
    url = f"{request.app.state.settings.public_url.rstrip('/')}{request.url.path}"
    return f"{url}?{request.url.query}" if request.url.query else url


@router.post("/status")
async def twilio_status(request: Request) -> Response:
    settings = request.app.state.settings
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    token = settings.twilio_auth_token
    if not token or not valid_twilio_request(token, public_url(request), form,
                                             request.headers.get("x-twilio-signature"), request.headers):
        log.warning("twilio status callback refused: bad or missing signature")
        return JSONResponse({"error": {"code": "unauthorized", "message": "Bad or missing Twilio signature."}},
                            status_code=403)
    sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not status:
        return JSONResponse({"error": {"code": "invalid_payload", "message": "MessageSid and MessageStatus are "
                                                                           "required."}}, status_code=400)
    service = request.app.state.service
    dispatcher = Dispatcher(service.session_factory, channels={}, clock=service.now)
    known = await run_in_threadpool(dispatcher.record_receipt, sid, status.lower(), form.get("ErrorCode") or None)
    if not known:
        log.info("twilio status for a message we did not send: %s", sid)
    return Response(status_code=204)
