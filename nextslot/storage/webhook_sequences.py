"""Each webhook endpoint's event numbers: 1, 2, 3 ... in the order its events commit, none skipped.

An event's deliveries are written with the change they report; their numbers, and so their bytes, are given when the
transaction commits (the session's `before_commit`), last of all its writes: every other write is flushed first, so
while it holds its endpoints' rows (in id order, as every transaction takes them) it waits for no one, and the next
transaction numbering events for the same endpoint waits for this one's commit and numbers after it. A delivery
that a rolled-back savepoint or transaction took out is not numbered, so no number is skipped."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from nextslot.storage.tables import WebhookDelivery, WebhookSequence

Body = Callable[[int], str]  # the event's bytes with its number
WAITING = "webhook_deliveries_to_number"  # the session's deliveries waiting for their numbers


def number_at_commit(session: Session, deliveries: list[WebhookDelivery], body: Body) -> None:
    """Give the deliveries (one event's, one per endpoint, added to the session) their endpoints' next numbers and
    their bodies when the session's transaction commits."""
    waiting: list[tuple[WebhookDelivery, Body]] | None = session.info.get(WAITING)
    if waiting is None:
        waiting = session.info[WAITING] = []
        event.listen(session, "before_commit", number_waiting)
    waiting.extend((d, body) for d in deliveries)


def number_waiting(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release: numbered when the transaction itself commits
    waiting: list[tuple[WebhookDelivery, Body]] = session.info.get(WAITING) or []
    session.info[WAITING] = []
    by_endpoint: dict[int, list[tuple[WebhookDelivery, Body]]] = defaultdict(list)
    for delivery, body in waiting:
        if delivery in session:  # else a rolled-back savepoint or transaction took it out
            by_endpoint[delivery.endpoint_id].append((delivery, body))
    if not by_endpoint:
        return
    session.flush()
    for endpoint_id in sorted(by_endpoint):
        numbered = by_endpoint[endpoint_id]
        last = take(session, numbered[0][0].business_id, endpoint_id, len(numbered))
        for sequence, (delivery, body) in enumerate(numbered, start=last - len(numbered) + 1):
            delivery.body = body(sequence)


def take(session: Session, business_id: int, endpoint_id: int, count: int) -> int:
    """Take the endpoint's next `count` numbers; return the last of them. Its row stays locked until the
    transaction ends: another transaction numbering events for it waits, then reads what this one committed (READ
    COMMITTED re-reads a row it waited for), so numbers follow commit order; a rollback gives them back."""
    bump = insert(WebhookSequence).values(endpoint_id=endpoint_id, business_id=business_id, last=count)
    bump = bump.on_conflict_do_update(index_elements=["endpoint_id", "business_id"],
                                      set_={"last": WebhookSequence.last + bump.excluded.last})
    last: int = session.execute(bump.returning(WebhookSequence.last)).scalar_one()
    return last
