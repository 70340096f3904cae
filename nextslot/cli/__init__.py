"""The `nextslot` command: migrate, load-config, api-key, staff-account, voice-secret, voice-tools, webhook, ics-feed,
caldav, serve, mcp, scheduler, up, customer, check, retention, demo, bench, eval.

One module a group of commands (business, connections, processes, checkout), each registering its own
sub-commands; this module parses, reads the settings once and turns an unreachable or unmigrated database
into one structured line.
"""
from __future__ import annotations

import argparse

from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from nextslot.cli import business, checkout, connections, operations, processes, up
from nextslot.cli.common import refuse
from nextslot.core import audit
from nextslot.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nextslot", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (business, connections, processes, checkout, up, operations):
        group.register(sub)
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:  # a NEXTSLOT_ variable that cannot be read: name it, no traceback
        wrong = "; ".join(f"NEXTSLOT_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                          for e in error.errors(include_url=False, include_input=False))
        return refuse("invalid_settings", wrong)
    try:
        if args.needs_schema and not schema_ready(settings):
            return refuse("database_not_migrated", "The database is not at this version's schema: run "
                                                   "`nextslot migrate` first.")
        audit.act_as(f"cli ({local_user()})", "cli")  # the audit log names who changed what
        return args.run(settings, args)
    except (OperationalError, InterfaceError) as error:  # down, refused, wrong password, no such database
        first_line = str(error.orig or error).strip().splitlines()[0]
        return refuse("database_unreachable", f"Cannot use the database: {first_line}")


def local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry
        return "unknown user"


def schema_ready(settings: Settings) -> bool:
    from nextslot.storage.engine import build_engine
    from nextslot.storage.migrate import at_latest_schema

    engine = build_engine(settings)
    try:
        return at_latest_schema(engine)
    finally:
        engine.dispose()
