"""Copies of what a business's configuration makes, kept per process while the business's config_version is
unchanged, and that version read once per transaction."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from threading import Lock
from typing import Any, Generic, TypeVar

from nextslot.storage import queries
from nextslot.storage.uow import SqlAlchemyUnitOfWork

T = TypeVar("T")


class VersionedCache(Generic[T]):
    """This process's copies of what a business's configuration makes (plans, webhook endpoints), each valid
    while the business's config_version is the one it was built at.

    The version moves in the same transaction as every edit of what they are made of (database triggers,
    migration 0024), so a copy is never used after its configuration changed, whichever process changed it.
    """

    def __init__(self, size: int = 1024):
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], tuple[int, T]] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[Any, ...], version: int) -> T | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] != version:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: tuple[Any, ...], version: int, item: T) -> None:
        with self._lock:
            self._items[key] = (version, item)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def read_version(uow: SqlAlchemyUnitOfWork, business_id: int) -> int | None:
    """The business's config version, remembered for the rest of the transaction (None: no such business)."""
    version = queries.config_version(uow.session, business_id)
    if version is not None:
        transaction = uow.session.get_transaction()
        remembered = uow.session.info.get("config_versions")
        if remembered is None or remembered[0] is not transaction:
            fresh: dict[int, int] = {}
            remembered = uow.session.info["config_versions"] = (transaction, fresh)
        remembered[1][business_id] = version
    return version


def known_version(uow: SqlAlchemyUnitOfWork, business_id: int) -> int | None:
    """The config version this transaction already read for the business, if it did (a later transaction of the
    same session reads it again)."""
    remembered = uow.session.info.get("config_versions")
    if remembered is None or remembered[0] is not uow.session.get_transaction():
        return None
    versions: dict[int, int] = remembered[1]
    return versions.get(business_id)


class ConfigChanged(Exception):
    """A config edit committed while a write was checking its time: the hours, pools and rules of its plan are not
    the ones beside the time off and claims it read, so the write starts again with the new plan (`restarted`)."""


def still_current(uow: SqlAlchemyUnitOfWork, business_id: int, version: int | None) -> None:
    """Raise ConfigChanged unless `version` (read with a write's calendar) is the one this transaction took its plan
    at. A plan carries weekly hours while dated time off is read fresh with the claims: an edit committed between
    the two reads (mornings off one Monday -> afternoons only) would open a time neither config opens."""
    known = known_version(uow, business_id)
    if known is not None and version is not None and version != known:
        raise ConfigChanged()


RESTARTS = 3  # a write started again after a config edit, at most this often


def restarted(write: Callable[[], T]) -> T:
    """Run a write (one transaction), again when a config edit committed while it checked its time."""
    for _ in range(RESTARTS):
        try:
            return write()
        except ConfigChanged:
            continue  # rolled back as its block was left: nothing of it stays
    return write()
