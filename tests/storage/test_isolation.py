"""Every transaction runs at READ COMMITTED even where the database's default is stricter (a managed PostgreSQL
may set one): the race-free claim and the fresh answer to a taken time both rely on it."""
from __future__ import annotations

import uuid

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from nextslot.storage.engine import create_database, drop_database, engine_for, libpq_dsn


def test_transactions_read_committed_on_a_database_whose_default_is_repeatable_read(database_url):
    url = make_url(database_url).set(database=f"nextslot_iso_{uuid.uuid4().hex[:8]}").render_as_string(
        hide_password=False)
    create_database(url)
    try:
        with psycopg.connect(libpq_dsn(url), autocommit=True) as admin:
            admin.execute(f"alter database {make_url(url).database} set default_transaction_isolation "
                          "= 'repeatable read'")
            with psycopg.connect(libpq_dsn(url)) as plain:  # what a connection gets by default there
                assert plain.execute("show transaction_isolation").fetchone()[0] == "repeatable read"
        engine = engine_for(url, pool_size=1)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("show transaction_isolation")).scalar() == "read committed"
                conn.rollback()
                assert conn.execute(text("show transaction_isolation")).scalar() == "read committed"
        finally:
            engine.dispose()
    finally:
        drop_database(url)
