"""Unexpected errors, told apart from bad input: the traceback goes to the server log under a short reference,
and only that reference reaches the client, never the exception's text (it may hold SQL and a customer's data)."""
from __future__ import annotations

import logging
import secrets

log = logging.getLogger("nextslot.incidents")
GENERIC = "Something went wrong on our side; nothing was changed. Quote reference {ref} if it happens again."


def report(exc: BaseException, where: str) -> str:
    """Log the error with its traceback under a new reference, and return the reference."""
    ref = secrets.token_hex(6)
    log.error("internal error %s in %s", ref, where, exc_info=(type(exc), exc, exc.__traceback__))
    return ref


def message(ref: str) -> str:
    return GENERIC.format(ref=ref)
