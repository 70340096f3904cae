"""The live part of a page (the console's calendar, inbox and conversation; the booking page's chat), polled every
couple of seconds with an ETag.

The page carries the tag of the part it was rendered with, so the first poll already asks "changed since what I
show?": a message or booking that landed between the render and that poll shows at once, and an unchanged part
answers 304 and is left alone (replacing it would pull the calendar out from under a drag).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

POLL_SECONDS = 2
Render = Callable[..., Response]


def tag_of(part: Response) -> str:
    return '"' + hashlib.sha256(part.body).hexdigest()[:20] + '"'


def live_page(request: Request, render: Render, page: str, part: str, context: dict[str, Any],
              status: int = 200) -> Response:
    """The whole page, or (`partial=1`) its live part alone: 304 when it is what the poller already shows."""
    rendered = render(request, part, context)
    tag = tag_of(rendered)
    if request.query_params.get("partial"):
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-store"})
        rendered.headers["ETag"] = tag
        return rendered
    return render(request, page, {**context, "poll_seconds": POLL_SECONDS, "live_tag": tag}, status=status)
