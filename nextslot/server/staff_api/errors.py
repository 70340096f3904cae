"""Every /v1 error is `{"error": {"code", "message", "field"}}`, with a status that says what to do about it.

400: the body is not JSON. 401: no live API key. 404: what the URL names does not exist for this
business (another business's objects look exactly the same). 409: the request clashes with the
current state (a lost race carries the nearest openings). 422: anything else wrong with the input.
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from nextslot.core.booking.search_budget import RATE_LIMITED, retry_after
from nextslot.core.results import Rejected
from nextslot.schemas.api import ConflictResponse, ErrorDetail, ErrorResponse, Problem
from nextslot.server.failures import for_paths

log = logging.getLogger(__name__)
PREFIX = "/v1"
CONFLICTS = {"slot_taken", "booking_not_active", "booking_in_past", "not_started", "hold_used",
             "capacity_below_bookings", "resource_in_use", "resource_inactive", "last_service", "upcoming_bookings",
             "number_in_use", "several_customers", "too_many_endpoints"}
DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No API key, or an unknown or revoked one.",
    404: "Not found for this business.",
    409: "Conflicts with the current state. `slot_taken` (a lost race) carries `alternatives`.",
    422: "Invalid input; `problems` lists every wrong field of a malformed request.",
    429: "Over a rate limit (the key's, or the business's slot searches); `Retry-After` says when to try again.",
}


class Refused(Exception):
    """A rejection on its way to becoming an HTTP answer; `status` None: decided by `status_for`."""

    def __init__(self, rejected: Rejected, status: int | None = None, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(rejected.code)
        self.rejected, self.status, self.extra, self.headers = rejected, status, extra or {}, headers


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses."""
    return {s: {"model": ConflictResponse if s == 409 else ErrorResponse, "description": DESCRIPTIONS[s]}
            for s in statuses}


def status_for(rejected: Rejected, request: Request) -> int:
    """A reference in the URL that matches nothing is 404; one in the body is 422 (the body must change); a
    spent budget is 429."""
    if rejected.code == RATE_LIMITED:
        return 429
    if rejected.code in CONFLICTS:
        return 409
    if rejected.code.startswith("unknown_") and rejected.field in {*request.path_params, *request.query_params}:
        return 404
    return 422


def error_response(status: int, detail: ErrorDetail, extra: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": detail.model_dump(mode="json"), **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def detail_of(rejected: Rejected) -> ErrorDetail:
    return ErrorDetail(code=rejected.code, message=rejected.message, field=rejected.field,
                       suggestions=list(rejected.suggestions),
                       problems=[Problem(field=field, message=text) for field, text in rejected.problems])


async def on_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    status = exc.status or status_for(exc.rejected, request)
    headers = exc.headers
    if (wait := retry_after(exc.rejected)) is not None:
        headers = {**(headers or {}), "Retry-After": str(wait)}
    return error_response(status, detail_of(exc.rejected), exc.extra, headers)


def on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(400, ErrorDetail(code="invalid_json", message="The body is not valid JSON.",
                                               field="body"))
    problems = [Problem(field=field_of(e["loc"]), message=str(e["msg"]).removeprefix("Value error, "))
                for e in errors]
    message = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems)
    return error_response(422, ErrorDetail(code="invalid_request", message=f"The request is not valid: {message}.",
                                           field=problems[0].field if problems else None, problems=problems))


def field_of(loc: tuple[Any, ...]) -> str | None:
    """('body', 'customer', 'phone') -> 'customer.phone'; ('query', 'limit') -> 'limit'."""
    rest = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
    return ".".join(map(str, rest)) or (str(loc[0]) if loc else None)


def on_http_error(request: Request, exc: HTTPException) -> Response:
    codes = {404: "not_found", 405: "method_not_allowed"}
    return error_response(exc.status_code, ErrorDetail(code=codes.get(exc.status_code, "http_error"),
                                                       message=str(exc.detail)), headers=exc.headers)


def on_data_error(request: Request, exc: DataError) -> Response:
    """What the database refuses as a value (too long for its column, a NUL character, out of range) is bad input."""
    log.info("%s %s: the database refused a value (%s)", request.method, request.url.path,
             type(exc.orig).__name__)  # never the value itself: it may be a customer's data
    return error_response(422, ErrorDetail(code="invalid_value", message="A value is too long, out of range, or "
                                           "contains characters that cannot be stored (such as NUL)."))


def register(app: FastAPI) -> None:
    """Answer errors of /v1 paths in the API's shape; everything else keeps the handlers it had."""
    app.add_exception_handler(Refused, on_refused)
    for kind, ours, default in ((RequestValidationError, on_invalid_request, request_validation_exception_handler),
                                (HTTPException, on_http_error, http_exception_handler),
                                (DataError, on_data_error, None)):
        app.add_exception_handler(kind, for_paths(api_path, ours, app.exception_handlers.get(kind, default)))


def api_path(path: str) -> bool:
    """/v1 and below, not /v1x."""
    return path == PREFIX or path.startswith(PREFIX + "/")
