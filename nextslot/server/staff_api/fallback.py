"""Unmatched /v1 requests, answered in the API's error shape before the MCP app mounted at the root sees them."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute

from nextslot.core.results import Rejected
from nextslot.server.staff_api.errors import PREFIX, Refused

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def fallback_router(api: list[APIRouter]) -> APIRouter:
    """A catch-all for /v1: 405 (with Allow) for a path of `api` asked with another method, else 404."""
    router = APIRouter(include_in_schema=False)
    routes = [r for a in api for r in a.routes if isinstance(r, APIRoute)]

    @router.api_route(PREFIX + "/{rest:path}", methods=METHODS)
    def unmatched(rest: str, request: Request) -> None:
        allowed = sorted({m for r in routes if r.path_regex.match(request.url.path) for m in r.methods})
        if allowed:
            raise Refused(Rejected("method_not_allowed", f"Use {', '.join(allowed)} here."), 405,
                          headers={"Allow": ", ".join(allowed)})
        raise Refused(Rejected("not_found", f"There is no endpoint {request.url.path}."), 404)

    return router
