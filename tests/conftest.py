"""Test database: a throwaway PostgreSQL database per run, on the embedded server by default,
or on the server named by NEXTSLOT_TEST_DATABASE_URL (CI also uses the machine's PostgreSQL 15)."""
from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from evals.loopback import LiveServer, free_port  # noqa: F401 - tests import them from here
from nextslot.core.business.config import apply_config
from nextslot.core.service import BookingService
from nextslot.schemas.config import BusinessConfig
from nextslot.settings import Settings
from nextslot.storage.embedded import embedded_base_url
from nextslot.storage.engine import build_session_factory, create_database, drop_database, engine_for
from nextslot.storage.migrate import upgrade
from nextslot.storage.uow import SqlAlchemyUnitOfWork

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"nextslot_test_{uuid.uuid4().hex[:10]}"
    base = os.environ.get("NEXTSLOT_TEST_DATABASE_URL")
    if base:
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
    else:
        url = embedded_base_url(Settings().data_dir).format(db=name)
    create_database(url)
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture
def database_at(database_url: str) -> Iterator[Callable[[str], str]]:
    """`database_at(revision)`: the URL of a new database migrated up to `revision` only, on the tests' server, for a
    migration's own test (rows written as the code before left them, then `upgrade(url)`); dropped at the end."""
    made: list[str] = []

    def at(revision: str) -> str:
        url = make_url(database_url).set(database=f"nextslot_at_{uuid.uuid4().hex[:8]}")
        made.append(url.render_as_string(hide_password=False))
        create_database(made[-1])
        upgrade(made[-1], revision)
        return made[-1]

    yield at
    for url in made:
        drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: Engine):
    return build_session_factory(engine)


@pytest.fixture(autouse=True)
def quiet_queues(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the database, nothing of it waits for the scheduler's jobs, which read every
    business's queues a batch at a time (20 messages, 50 freed times, 20 calendar writes, 20 webhook deliveries): a
    test's unsent messages, unread freed time, open offers (which lapse into new freed time), calendar writes not done
    (pending, or failed with a retry due at its locked_until, or woken again by a later sync of its calendar) and
    webhook deliveries not sent would be a later test's sends, offers, writes and counts, once that test's clock
    passes their time."""
    uses_database = {"session_factory", "service", "make_business"} & set(request.fixturenames)
    factory = request.getfixturevalue("session_factory") if uses_database else None
    yield
    if factory is None:
        return
    from sqlalchemy import func, update

    from nextslot.storage.tables import CalendarWrite, FreedCapacity, Notification, WaitlistOffer, WebhookDelivery

    with factory() as s:
        s.execute(update(Notification).where(Notification.status.in_(("pending", "sending", "sent")))
                  .values(status="void"))  # sent: its missing receipt would pass it to the next channel later
        s.execute(update(WaitlistOffer).where(WaitlistOffer.status == "open").values(status="expired"))
        s.execute(update(FreedCapacity).where(FreedCapacity.processed_at.is_(None)).values(processed_at=func.now()))
        s.execute(update(CalendarWrite).where(CalendarWrite.status != "done")  # "failed" would wake at a sync
                  .values(status="done", locked_until=None))
        s.execute(update(WebhookDelivery).where(WebhookDelivery.status.in_(("pending", "sending")))
                  .values(status="failed", locked_until=None))
        s.commit()


@pytest.fixture
def uow(session_factory) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(session_factory)


class FrozenClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # a Monday morning, in winter time


@pytest.fixture
def service(session_factory, clock) -> BookingService:
    return BookingService(session_factory, clock=clock)


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


# numbers counted up, not drawn: thousands of businesses per test database drew two alike now and then, and the
# second was refused as another business's number
NEXT_NUMBER = itertools.count(uuid.uuid4().int % (5 * 10**7))


def own_numbers(business: dict[str, Any]) -> dict[str, Any]:
    """The business with a number of its own for each example's conversation number: a number names one business."""
    conversations = (business.get("details") or {}).get("conversations")
    if not isinstance(conversations, dict) or not set(conversations.get("numbers") or ()) & EXAMPLE_NUMBERS:
        return business
    numbers = [f"+4420{next(NEXT_NUMBER):08d}" if n in EXAMPLE_NUMBERS else n for n in conversations["numbers"]]
    return {**business, "details": {**business["details"], "conversations": {**conversations, "numbers": numbers}}}


EXAMPLE_NUMBERS = {n for path in EXAMPLES.glob("*.yaml") for n in (
    (example(path.stem)["business"].get("details") or {}).get("conversations") or {}).get("numbers", [])}


@pytest.fixture
def make_business(session_factory) -> Callable[..., int]:
    """Load a config (an example's name or a dict) as a fresh business with a unique slug (and conversation numbers
    of its own instead of an example's); return its id."""

    def make(config: str | dict[str, Any], **business: Any) -> int:
        data = example(config) if isinstance(config, str) else config
        data = {**data, "business": {**own_numbers(data["business"]), **business,
                                     "slug": f"{data['business']['slug']}-{uuid.uuid4().hex[:8]}"}}
        result = apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(data))
        assert not hasattr(result, "code"), result
        return result.business_id

    return make


@pytest.fixture
def api_key(session_factory) -> Callable[[int], str]:
    """Create an API key for a business."""
    from nextslot.core.accounts.api_keys import create_api_key

    return lambda business_id: create_api_key(SqlAlchemyUnitOfWork(session_factory), business_id, "test")


@pytest.fixture
def live_server(session_factory, clock) -> Callable[..., LiveServer]:
    """Start the app (real clock unless `frozen=True`) on loopback: `with live_server() as server: server.url`.

    Give `port` (from `free_port()`) when the settings must know the server's own URL (`public_url`)."""
    from nextslot.server.app import create_app

    def start(frozen: bool = False, settings: Settings | None = None, port: int | None = None) -> LiveServer:
        service = BookingService(session_factory, clock=clock) if frozen else BookingService(session_factory)
        return LiveServer(create_app(settings or Settings(), service=service), port)

    return start
