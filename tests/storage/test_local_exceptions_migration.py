"""Migration 0028 on rows stored before it: whole-day exceptions become local, and a business-wide one is copied
into each other zone the business's branches keep, at the same wall times."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from nextslot.storage.migrate import upgrade

BEFORE = """
insert into businesses (id, slug, name, timezone, country, details) values (1, 'bicoastal', 'B', 'America/New_York',
  'US', '{}');
insert into locations (id, business_id, key, name, timezone, active) values (1, 1, 'la', 'LA', 'America/Los_Angeles',
  true);
insert into resources (id, business_id, key, name, kind, capacity, active, location_id) values
  (1, 1, 'lee', 'Lee', 'staff', 1, true, 1), (2, 1, 'ned', 'Ned', 'staff', 1, true, null);
insert into availability_exceptions (business_id, resource_id, kind, starts_at, ends_at, reason) values
  (1, null, 'closed', '2026-12-25 00:00-05', '2026-12-26 00:00-05', 'Christmas'),
  (1, null, 'closed', '2027-01-04 12:00Z', '2027-01-04 13:00Z', 'Meeting'),
  (1, 1, 'closed', '2026-12-14 00:00-08', '2026-12-15 00:00-08', 'Leave');
"""


@pytest.fixture()
def url_at_0027(database_at):
    return database_at("0027_citus_keys")


def test_whole_days_become_local_and_a_closure_is_copied_into_the_branchs_zone(url_at_0027):
    engine = create_engine(url_at_0027)
    with engine.begin() as conn:
        conn.execute(text(BEFORE))
    upgrade(url_at_0027)
    with engine.connect() as conn:
        conn.execute(text("set time zone 'UTC'"))
        rows = conn.execute(text("select resource_id, reason, local, zone, starts_at::text, ends_at::text "
                                 "from availability_exceptions order by reason, zone nulls first")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        (None, "Christmas", True, None, "2026-12-25 05:00:00+00", "2026-12-26 05:00:00+00"),
        (None, "Christmas", True, "America/Los_Angeles", "2026-12-25 08:00:00+00", "2026-12-26 08:00:00+00"),
        (1, "Leave", True, None, "2026-12-14 08:00:00+00", "2026-12-15 08:00:00+00"),
        (None, "Meeting", False, None, "2027-01-04 12:00:00+00", "2027-01-04 13:00:00+00"),
    ]
