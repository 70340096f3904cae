"""The outbox is quieted as for the dispatcher tests: the business notices these tests send are theirs alone."""
from tests.reminders.conftest import quiet_outbox  # noqa: F401 - an autouse fixture, shared
