"""What the console answers for a request it cannot take as sent: a console page like any other, never FastAPI's
JSON (the validator's own text with the input echoed) nor a 500.

- An id in the URL that is not one (`abc`, `0`, one past PostgreSQL's bigint): "Not found", exactly as an id that
  exists nowhere (routes type their ids as `session.Id`).
- A value the database refuses (too long for its column, a NUL, out of range) from a route that read it by hand:
  a 4xx page, logged without the value (it may be a customer's data). An integer id past bigint in the URL is
  "Not found" here too, for a route that did not bound its id.

Other paths keep the handlers they had (/v1 answers in the API's shape).
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.responses import Response

from nextslot.redaction import redact_path
from nextslot.schemas.inputs import BIGINT
from nextslot.server.console.session import notice
from nextslot.server.failures import for_paths

log = logging.getLogger(__name__)
PREFIX = "/console/"
NOT_FOUND = "There is no such page here. Check the address and try again."


def not_found(request: Request) -> Response:
    return notice(request, None, "Not found", NOT_FOUND, 404)


def on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """A path parameter that is not a valid id names no page; anything else typed on a route is not valid."""
    if all(e.get("loc", ("path",))[0] == "path" for e in exc.errors()):
        return not_found(request)
    return notice(request, None, "Not sent", "Something in this request is not valid. Go back, reload the page "
                  "and try again.", 422)


def on_data_error(request: Request, exc: DataError) -> Response:
    log.info("%s %s: the database refused a value (%s)", request.method, redact_path(request.url.path),
             type(exc.orig).__name__)  # never the value or the statement
    if any(past_bigint(value) for name, value in request.path_params.items() if name != "slug"):
        return not_found(request)
    return notice(request, None, "Not saved", "A value is too long, out of range, or contains characters that "
                  "cannot be stored (such as NUL). Go back, correct it and try again.", 422)


def past_bigint(value: Any) -> bool:
    if isinstance(value, int):
        return not -BIGINT <= value <= BIGINT
    digits = str(value).lstrip("-+")
    if not (digits.isascii() and digits.isdigit()):
        return False
    digits = digits.lstrip("0") or "0"
    return len(digits) > len(str(BIGINT)) or int(digits) > BIGINT


def install(app: FastAPI) -> None:
    """After the API's handlers (staff_api.install): console paths are answered here, every other as before."""
    for kind, ours, default in ((RequestValidationError, on_invalid_request, request_validation_exception_handler),
                                (DataError, on_data_error, None)):
        app.add_exception_handler(kind, for_paths(lambda path: path.startswith(PREFIX), ours,
                                                  app.exception_handlers.get(kind, default)))
