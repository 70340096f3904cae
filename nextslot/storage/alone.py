"""One row at a time: a batch job's work for one row (one business's data) fails alone.

Bad data or a bug in one row must not roll back, or stop, the work for every other row and business in the
same run. A lost database connection is everyone's trouble, so it still ends the run (leases and the next run
pick the rows up again). Failures are logged with the ids the caller names and the error's type only: the
error's text may quote a customer or a credential.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from nextslot.storage.outage import connection_lost

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """The row's work raised; `error` is the exception's type name."""

    error: str


def alone(work: Callable[[], T], what: str, *ids: object) -> T | Failed:
    """Run one row's work; on an error other than the database going away, log `what` (a %-format filled
    with `ids`) and the error's type, and return Failed. A lock or statement past its timeout is one row's."""
    try:
        return work()
    except Exception as error:  # noqa: BLE001 - one row's trouble must not stop the run for all
        if connection_lost(error):
            raise
        log.error(what + " (%s)", *ids, type(error).__name__)
        return Failed(type(error).__name__)


def in_savepoint(s: Session, work: Callable[[], T], what: str, *ids: object) -> T | Failed:
    """`alone`, in a savepoint of its own: a failure rolls back this row's writes only, and the transaction
    stays usable for the rest."""

    def nested() -> T:
        with s.begin_nested():
            return work()

    return alone(nested, what, *ids)
