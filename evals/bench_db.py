"""A throwaway database for a benchmark: created and migrated on the configured (or embedded) server,
dropped at the end even on error, so figures never come from, or leave anything in, real data."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from nextslot.settings import Settings
from nextslot.storage.engine import create_database, drop_database, resolve_database_url
from nextslot.storage.migrate import upgrade


@contextmanager
def throwaway_database(settings: Settings, title: str) -> Iterator[str]:
    server = resolve_database_url(settings)
    name = f"nextslot_bench_{secrets.token_hex(4)}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    where = "configured server" if settings.database_url else f"embedded, data in {settings.data_dir}"
    print(f"{title}: throwaway database {name} ({where})")
    create_database(url)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(url)
        print(f"dropped {name}")
