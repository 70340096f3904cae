"""The database's refusals as values: the core asks "did it hold?", never decodes a driver's exception."""
from __future__ import annotations

from psycopg.errors import ExclusionViolation, UniqueViolation
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


def flushed_within_exclusions(s: Session) -> bool:
    """Flush in a savepoint; False (and the savepoint rolled back) when an exclusion constraint refuses it,
    e.g. a resource's capacity cut below the bookings it already holds."""
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError as error:
        if isinstance(error.orig, ExclusionViolation):
            return False
        raise
    return True


def committed_once(s: Session) -> bool:
    """Commit; False when a unique key says the row is already stored (the same message delivered twice)."""
    try:
        s.commit()
    except IntegrityError as error:
        if isinstance(error.orig, UniqueViolation):
            s.rollback()
            return False
        raise
    return True
