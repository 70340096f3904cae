"""One way to make a /v1 router: the API key is checked before the body is read, and every route documents
400 (not JSON), 401 (no live key) and 422 (wrong input)."""
from __future__ import annotations

from fastapi import APIRouter

from nextslot.server.staff_api.deps import KeyCheckedRoute
from nextslot.server.staff_api.errors import documented


def staff_router(prefix: str, tag: str | None = None) -> APIRouter:
    return APIRouter(prefix=prefix, tags=[tag] if tag else None, responses=documented(400, 401, 422),
                     route_class=KeyCheckedRoute)
