"""Paths under the console and the public pages that no route takes: their own HTML page, with the headers every
page of theirs carries (CSP, framing, nosniff, no-store, referrer policy), never another part's JSON.

The MCP app is mounted at the root and took every path nothing else answered, so `/console/{slug}/nope` got its
JSON-RPC error with none of the console's headers, and a form posted to a page that only shows itself got the same
instead of a 405. Page paths are kept out of that mount (`OutsidePages`): the router then says 404 or 405 itself
(the 405 with its Allow header), and the exception handler below answers that as the part's own page.
"""
from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import Scope

from nextslot.languages.catalogs import N_
from nextslot.server import page_render
from nextslot.server.console import refusals
from nextslot.server.console.session import notice as console_notice

CONSOLE = "/console"
PAGES = ("/b/", "/m/", "/w/", "/pay/")  # the booking page (framable), manage, offer and payment links (not)
ANSWERED = (404, 405)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")  # the ones a 405's Allow may name


def console_path(path: str) -> bool:
    return path == CONSOLE or path.startswith(CONSOLE + "/")


def page_path(path: str) -> bool:
    return path.startswith(PAGES) or path + "/" in PAGES


def ours(path: str) -> bool:
    return console_path(path) or page_path(path)


class OutsidePages(Mount):
    """A mount that takes no console or page path: a page's path that no route takes is the router's 404 or 405."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and ours(scope["path"]):
            return Match.NONE, {}
        return super().matches(scope)


def unmatched(request: Request, exc: HTTPException) -> Response:
    """The console's or the page's own 404, or its 405 (with the Allow header the router gave)."""
    path = request.url.path
    if console_path(path):
        response = refusals.not_found(request) if exc.status_code == 404 else console_notice(
            request, None, "Not allowed", "This page does not take that kind of request. Go back and use the "
            "page's own links and buttons.", 405)
    else:  # a wrong method on a page is no page either, for a visitor: the words of a 404, the status of a 405
        response = page_render.notice(request, N_("Not found"), page_render.NOT_FOUND["page"], exc.status_code,
                                      frameable=path.startswith("/b/"))
    if exc.status_code == 405 and (allow := allowed(request) or (exc.headers or {}).get("Allow")):
        response.headers["Allow"] = allow
    return response


def allowed(request: Request) -> str:
    """Every method some route takes at this path (the router's 405 names only the first route's: a page shown by
    one route and posted to by another would say it takes GET alone)."""
    probe = {"type": "http", "path": request.scope["path"], "root_path": request.scope.get("root_path", "")}
    return ", ".join(method for method in METHODS if any(
        route.matches({**probe, "method": method})[0] == Match.FULL for route in request.app.router.routes))


def install(app: FastAPI) -> None:
    """Console and page paths' 404 and 405 are answered here; every other HTTPException as before."""
    theirs = app.exception_handlers.get(HTTPException, http_exception_handler)

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code in ANSWERED and ours(request.url.path):
            return unmatched(request, exc)
        answer = theirs(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(HTTPException, handle)
