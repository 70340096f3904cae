"""GET /ics/{token}.ics: a private calendar feed; the token is the only key, so unknown ones get a plain 404."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from nextslot.core.calendar_feeds import feed_ics

router = APIRouter()


@router.get("/ics/{token}.ics")
async def calendar_feed(token: str, request: Request) -> Response:
    service = request.app.state.service
    body = await run_in_threadpool(feed_ics, service.uow(), token, service.now())
    if body is None:
        return JSONResponse({"error": {"code": "unknown_feed", "message": "No such calendar feed."}},
                            status_code=404)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300"})
