"""Calendars over HTTP: a private feed (GET /ics/{token}.ics; the token is the only key, so unknown ones get a
plain 404), and one booking for its customer (GET /ics/booking/{token}.ics, with the signed manage-link token)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from nextslot.calendars.feeds import feed_ics, one_booking_ics
from nextslot.core.results import Rejected

router = APIRouter()


@router.get("/ics/booking/{token}.ics")
async def booking_calendar(token: str, request: Request) -> Response:
    service = request.app.state.service
    target = request.app.state.links.read("manage", token, service.now())
    if isinstance(target, Rejected):
        return JSONResponse({"error": {"code": target.code, "message": target.message}}, status_code=404)
    body = await run_in_threadpool(one_booking_ics, service.uow(), target.business_id, target.code, service.now())
    if body is None:
        return JSONResponse({"error": {"code": "unknown_booking", "message": "No such booking."}}, status_code=404)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="booking-{target.code}.ics"',
                             "Cache-Control": "private, no-store"})


@router.get("/ics/{token}.ics")
async def calendar_feed(token: str, request: Request) -> Response:
    service = request.app.state.service
    body = await run_in_threadpool(feed_ics, service.uow(), token, service.now())
    if body is None:
        return JSONResponse({"error": {"code": "unknown_feed", "message": "No such calendar feed."}},
                            status_code=404)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300"})
