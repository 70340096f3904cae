"""What every command shares: the structured refusal, a business found by its slug, the sub-command table."""
from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable

from nextslot.settings import Settings

Command = Callable[[Settings, argparse.Namespace], int]


def refuse(code: str, message: str, field: str | None = None, problems: tuple[tuple[str, str], ...] = ()) -> int:
    """A structured error on stderr and exit code 2, as for every refused command."""
    extra = {"problems": [{"field": f, "message": m} for f, m in problems]} if problems else {}
    print(json.dumps({"error": code, "message": message, "field": field, **extra}), file=sys.stderr)
    return 2


def refuse_rejected(rejected) -> int:
    """Refuse with what the core refused (a `Rejected`)."""
    return refuse(rejected.code, rejected.message, rejected.field, rejected.problems)


def business_named(settings: Settings, slug: str):
    """(session factory, business id) for a slug, or None."""
    from nextslot.storage import queries
    from nextslot.storage.engine import build_engine, build_session_factory

    factory = build_session_factory(build_engine(settings))
    with factory() as session:
        business = queries.business_by_slug(session, slug)
    return (factory, business.id) if business else None


def on_business(run: Callable[..., int]) -> Command:
    """A command on the business named by `args.slug`: run with its session factory and id, refused if unknown."""
    @functools.wraps(run)
    def command(settings: Settings, args: argparse.Namespace) -> int:
        found = business_named(settings, args.slug)
        if found is None:
            return refuse("unknown_business", f"No business '{args.slug}'.")
        return run(settings, args, *found)
    return command


def add_command(sub, name: str, run: Command, help: str, *, needs_schema: bool) -> argparse.ArgumentParser:
    """A sub-command; `needs_schema`: it uses the business tables of the configured database, so it is refused
    before it starts when that database is not migrated."""
    parser = sub.add_parser(name, help=help)
    parser.set_defaults(run=run, needs_schema=needs_schema)
    return parser


def add_business_command(sub, name: str, run: Command, help: str) -> argparse.ArgumentParser:
    """A sub-command on one business of the configured database, named by its slug (the first argument)."""
    parser = add_command(sub, name, run, help, needs_schema=True)
    parser.add_argument("slug")
    return parser
