"""The `nextslot` command: migrate, load-config, api-key, voice-secret, webhook, ics-feed, caldav, serve, mcp, demo,
bench, eval."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from nextslot.settings import Settings

log = logging.getLogger(__name__)


def load_config_file(path: Path):
    """Parse and validate a YAML or JSON business config (JSON is valid YAML)."""
    from nextslot.schemas.config import BusinessConfig

    return BusinessConfig.model_validate(yaml.safe_load(path.read_text()))


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.storage.engine import resolve_database_url
    from nextslot.storage.migrate import upgrade

    upgrade(resolve_database_url(settings))
    print("database is at the latest schema")
    return 0


def cmd_load_config(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.core.business.config import apply_config
    from nextslot.core.results import Rejected
    from nextslot.storage.engine import build_engine, build_session_factory
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    try:
        config = load_config_file(Path(args.file))
    except (OSError, yaml.YAMLError) as error:
        print(json.dumps({"error": "unreadable_config", "message": str(error)}), file=sys.stderr)
        return 2
    except ValidationError as error:
        problems = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]
        print(json.dumps({"error": "invalid_config", "problems": problems}, indent=2), file=sys.stderr)
        return 2
    engine = build_engine(settings)
    result = apply_config(SqlAlchemyUnitOfWork(build_session_factory(engine)), config)
    if isinstance(result, Rejected):
        return refuse(result.code, result.message, result.field, result.problems)
    verb = "created" if result.created else "updated"
    print(f"{verb} {result.slug} (id {result.business_id}): {result.resources} resources, {result.services} services")
    return 0


def refuse(code: str, message: str, field: str | None = None, problems: tuple[tuple[str, str], ...] = ()) -> int:
    """A structured error on stderr and exit code 2, as for every refused command."""
    extra = {"problems": [{"field": f, "message": m} for f, m in problems]} if problems else {}
    print(json.dumps({"error": code, "message": message, "field": field, **extra}), file=sys.stderr)
    return 2


def business_named(settings: Settings, slug: str):
    """(session factory, business id) for a slug, or None."""
    from nextslot.storage import queries
    from nextslot.storage.engine import build_engine, build_session_factory

    factory = build_session_factory(build_engine(settings))
    with factory() as session:
        business = queries.business_by_slug(session, slug)
    return (factory, business.id) if business else None


def cmd_api_key(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.core.accounts.api_keys import create_api_key
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    found = business_named(settings, args.slug)
    if found is None:
        return refuse("unknown_business", f"No business '{args.slug}'.")
    factory, business_id = found
    print(create_api_key(SqlAlchemyUnitOfWork(factory), business_id, args.name))
    return 0


def cmd_staff_account(settings: Settings, args: argparse.Namespace) -> int:
    """A console sign-in; the password comes from stdin (never the command line, where `ps` shows it) or is
    made up and printed once."""
    import secrets

    from nextslot.core.results import Rejected
    from nextslot.core.accounts.staff import create_account
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    found = business_named(settings, args.slug)
    if found is None:
        return refuse("unknown_business", f"No business '{args.slug}'.")
    factory, business_id = found
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else secrets.token_urlsafe(12)
    created = create_account(SqlAlchemyUnitOfWork(factory), business_id, args.email, args.name or args.email,
                             args.role, password)
    if isinstance(created, Rejected):
        return refuse(created.code, created.message, created.field)
    print(json.dumps({"email": args.email, "role": args.role, "console": f"{settings.public_url}/console/{args.slug}",
                      **({} if args.password_stdin else {"password": password})}))
    return 0


def cmd_voice_secret(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.core.accounts.voice_secrets import new_secret, set_secret, voice_business
    from nextslot.storage.engine import build_engine, build_session_factory
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    uow = SqlAlchemyUnitOfWork(build_session_factory(build_engine(settings)))
    business = voice_business(uow, args.slug, args.platform)
    if business is None:
        return refuse("unknown_business", f"No business '{args.slug}'.")
    secret = args.secret or business.secret or (new_secret() if args.platform == "vapi" else None)
    if secret is None:
        print(json.dumps({"error": "missing_secret", "message": "Retell signs with your Retell API key (the one "
                          "with the webhook badge): pass it with --secret."}), file=sys.stderr)
        return 2
    if len(secret) > 200:
        print(json.dumps({"error": "secret_too_long", "message": "Secrets are at most 200 characters."}),
              file=sys.stderr)
        return 2
    if secret != business.secret:
        set_secret(uow, business.business_id, args.platform, secret)
    print(secret)
    return 0


def cmd_webhook(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.core.results import Rejected
    from nextslot.webhooks.endpoints import add_endpoint
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    found = business_named(settings, args.slug)
    if found is None:
        return refuse("unknown_business", f"No business '{args.slug}'.")
    factory, business_id = found
    events = [e.strip() for e in args.events.split(",") if e.strip()] if args.events else None
    result = add_endpoint(SqlAlchemyUnitOfWork(factory), business_id, args.url, events, settings.allow_private_targets)
    if isinstance(result, Rejected):
        return refuse(result.code, result.message, result.field)
    print(json.dumps({"id": result.id, "secret": result.secret}))
    return 0


def cmd_ics_feed(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.calendars.feeds import create_feed
    from nextslot.core.results import Rejected
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    found = business_named(settings, args.slug)
    if found is None:
        return refuse("unknown_business", f"No business '{args.slug}'.")
    factory, business_id = found
    token = create_feed(SqlAlchemyUnitOfWork(factory), business_id, args.resource)
    if isinstance(token, Rejected):
        return refuse(token.code, token.message, token.field)
    print(f"{settings.public_url.rstrip('/')}/ics/{token}.ics")
    return 0


def cmd_caldav(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from functools import partial

    from nextslot.calendars.caldav import connect_caldav
    from nextslot.calendars.sync import SyncFailed, Synced, add_calendar, sync_calendar
    from nextslot.core.results import Rejected
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    found = business_named(settings, args.slug)
    if found is None:
        return refuse("unknown_business", f"No business '{args.slug}'.")
    factory, business_id = found
    added = add_calendar(SqlAlchemyUnitOfWork(factory), business_id, args.resource, args.url, args.username,
                         args.password, settings.allow_private_targets)
    if isinstance(added, Rejected):
        return refuse(added.code, added.message, added.field)
    connect = partial(connect_caldav, allow_private=settings.allow_private_targets)
    match sync_calendar(factory, added, datetime.now(UTC), connect):  # registered either way: the scheduler retries
        case Synced() as synced:
            print(json.dumps({"id": added, "synced": True, "busy_intervals": synced.intervals}))
        case SyncFailed(_, error):
            print(json.dumps({"id": added, "synced": False, "error": error}))
        case _:  # a scheduler picked it up at the same moment: it syncs it now
            print(json.dumps({"id": added, "synced": False, "error": "being synced by the scheduler"}))
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.demo import run_demo

    return run_demo(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.payments.providers import takes_no_money_in_public
    from nextslot.server.app import serve

    if takes_no_money_in_public(settings) and deposits_asked(settings):
        if not settings.allow_local_payments:
            return refuse("local_payments_in_public", f"Deposits are asked, but the payment provider is `local`, "
                          f"which takes no money, and NEXTSLOT_PUBLIC_URL ({settings.public_url}) is not loopback: "
                          "set NEXTSLOT_PAYMENT_PROVIDER=stripe (or NEXTSLOT_ALLOW_LOCAL_PAYMENTS=true for a test "
                          "server).")
        log.warning("NEXTSLOT_ALLOW_LOCAL_PAYMENTS=true: deposits at %s are confirmed with NO MONEY TAKEN (payment "
                    "provider `local`); never let real customers use this server", settings.public_url)
    serve(settings, args.host, args.port)
    return 0


def deposits_asked(settings: Settings) -> bool:
    from nextslot.storage import queries
    from nextslot.storage.engine import build_engine, build_session_factory

    engine = build_engine(settings)
    try:
        with build_session_factory(engine)() as session:
            return queries.deposits_asked(session)
    finally:
        engine.dispose()


def cmd_mcp(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.tools.mcp_server import run_stdio

    return run_stdio(settings, api_key=args.api_key, business=args.business)


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.reminders.scheduler import run_scheduler

    return run_scheduler(settings)


def source_checkout() -> bool:
    """Make the checkout's `evals/` importable: benchmarks and scenario evals are not part of the installed package.

    They live beside `nextslot/` in a git clone (an editable install); an installed wheel has no `evals/`.
    """
    try:
        import evals  # noqa: F401 - already importable (tests, or run from the checkout's root)
        return True
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        if not (root / "evals" / "__init__.py").is_file():
            return False
        sys.path.append(str(root))
        return True


def no_checkout(command: str) -> int:
    return refuse("needs_source_checkout", f"`nextslot {command}` runs the benchmarks and evals kept in the source "
                                           "checkout's evals/ folder (git clone, then pip install -e '.[test]').")


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    if not source_checkout():
        return no_checkout("bench")
    if args.suite == "load":
        try:
            from evals.bench_load import run_bench_load
        except ImportError as missing:  # its SMTP server (aiosmtpd) comes with the test extra
            return refuse("missing_dependency", f"`nextslot bench load` needs {missing.name}: "
                                                "pip install -e '.[test]'")
        return run_bench_load(settings, quick=args.quick, faults=not args.no_faults, servers=args.servers,
                              json_path=Path(args.json) if args.json else None,
                              log_dir=Path(args.logs) if args.logs else None)
    if args.suite == "tools":
        from evals.bench_tools import run_bench_tools

        return run_bench_tools(settings, quick=args.quick)
    from evals.bench_core import run_bench_core

    return run_bench_core(settings, quick=args.quick)


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    if not source_checkout():
        return no_checkout("eval")
    json_path = Path(args.json) if args.json else None
    if (args.base_url or args.api_key) and not args.model:
        return refuse("missing_model", "A live run needs --model (the name the endpoint knows the model by).",
                      "model")
    try:
        if args.model:
            from evals.live_agent import Endpoint, EndpointError, run_live_evals

            endpoint = Endpoint(args.model, args.base_url, args.api_key or os.environ.get("OPENAI_API_KEY"),
                                timeout=args.timeout)
            try:
                return run_live_evals(settings, endpoint, only=args.only, json_path=json_path)
            except EndpointError as error:
                return refuse(error.code, error.message)
        from evals.agent_evals import run_evals

        return run_evals(settings, only=args.only, json_path=json_path)
    except LookupError as error:
        return refuse("unknown_scenario", str(error))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nextslot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database to the latest schema").set_defaults(run=cmd_migrate)
    p = sub.add_parser("load-config", help="create or update a business from a YAML or JSON file")
    p.add_argument("file")
    p.set_defaults(run=cmd_load_config)
    p = sub.add_parser("api-key", help="create an API key for a business (printed once)")
    p.add_argument("slug")
    p.add_argument("--name", default="default")
    p.set_defaults(run=cmd_api_key)
    p = sub.add_parser("staff-account", help="create a staff console sign-in (owner or staff) for a business")
    p.add_argument("slug")
    p.add_argument("email")
    p.add_argument("--name", default="")
    p.add_argument("--role", choices=["owner", "staff"], default="staff")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (else one is made "
                                                                 "up and printed once)")
    p.set_defaults(run=cmd_staff_account)
    p = sub.add_parser("voice-secret", help="set or show a business's Vapi secret or Retell API key for the "
                                            "voice webhooks (printed)")
    p.add_argument("slug")
    p.add_argument("platform", choices=["vapi", "retell"])
    p.add_argument("--secret", help="the secret to use (default: the current one; a new one for vapi)")
    p.set_defaults(run=cmd_voice_secret)
    p = sub.add_parser("webhook", help="register a webhook endpoint for a business's booking events")
    p.add_argument("slug")
    p.add_argument("url")
    p.add_argument("--events", help="comma-separated event types (default: all)")
    p.set_defaults(run=cmd_webhook)
    p = sub.add_parser("ics-feed", help="create a private ICS feed URL for a business or one resource")
    p.add_argument("slug")
    p.add_argument("--resource", help="a resource key: only its bookings")
    p.set_defaults(run=cmd_ics_feed)
    p = sub.add_parser("caldav", help="read a staff member's CalDAV calendar: its busy time blocks their slots")
    p.add_argument("slug")
    p.add_argument("resource", help="the resource (staff member) key")
    p.add_argument("url", help="the calendar's CalDAV URL")
    p.add_argument("--username")
    p.add_argument("--password")
    p.set_defaults(run=cmd_caldav)
    sub.add_parser("demo", help="seed the example businesses and show the core at work").set_defaults(run=cmd_demo)
    p = sub.add_parser("serve", help="run the HTTP server: MCP at /mcp, voice webhooks, health")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(run=cmd_serve)
    p = sub.add_parser("mcp", help="serve the agent tools over MCP stdio for one business")
    p.add_argument("--api-key", default=os.environ.get("NEXTSLOT_API_KEY"),
                   help="the business's API key (default: $NEXTSLOT_API_KEY)")
    p.add_argument("--business", help="the business's slug, instead of an API key (local use)")
    p.set_defaults(run=cmd_mcp)
    sub.add_parser("scheduler", help="send due confirmations and reminders, expire holds (run one or more)"
                   ).set_defaults(run=cmd_scheduler)
    p = sub.add_parser("bench", help="benchmarks")
    p.add_argument("suite", choices=["core", "tools", "load"])
    p.add_argument("--quick", action="store_true", help="smaller data and fewer samples (a smoke run)")
    p.add_argument("--no-faults", action="store_true", help="load: no killed server, dropped connections or "
                                                            "Twilio trouble")
    p.add_argument("--servers", type=int, default=2, choices=range(2, 9), metavar="N",
                   help="load: how many `nextslot serve` processes (default 2)")
    p.add_argument("--json", help="load: also write the results to this file")
    p.add_argument("--logs", help="load: keep each server's and scheduler's output in this folder")
    p.set_defaults(run=cmd_bench)
    p = sub.add_parser("eval", help="agent scenario evals through the real tools, scored from the database (a "
                                    "throwaway one): a scripted agent, or a live model with --model")
    p.add_argument("--only", help="run one scenario, by name")
    p.add_argument("--json", help="where to write the results (default: artifacts/agent_evals.json, "
                                  "artifacts/agent_evals_live.json for a live model)")
    p.add_argument("--model", help="play the agent with this model over an OpenAI-compatible chat completions "
                                   "endpoint, letting it choose the tools")
    p.add_argument("--base-url", help="the endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama), "
                                      "http://127.0.0.1:8000/v1 (vLLM) (default: $OPENAI_BASE_URL, else OpenAI)")
    p.add_argument("--api-key", help="the endpoint's API key (default: $OPENAI_API_KEY; local servers need none)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one model reply (default 120)")
    p.set_defaults(run=cmd_eval)
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:  # a NEXTSLOT_ variable that cannot be read: name it, no traceback
        wrong = "; ".join(f"NEXTSLOT_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                          for e in error.errors(include_url=False, include_input=False))
        return refuse("invalid_settings", wrong)
    try:
        if args.run in NEEDS_SCHEMA and not schema_ready(settings):
            return refuse("database_not_migrated", "The database is not at this version's schema: run "
                                                   "`nextslot migrate` first.")
        return args.run(settings, args)
    except (OperationalError, InterfaceError) as error:  # down, refused, wrong password, no such database
        first_line = str(error.orig or error).strip().splitlines()[0]
        return refuse("database_unreachable", f"Cannot use the database: {first_line}")


def schema_ready(settings: Settings) -> bool:
    from nextslot.storage.engine import build_engine
    from nextslot.storage.migrate import at_latest_schema

    engine = build_engine(settings)
    try:
        return at_latest_schema(engine)
    finally:
        engine.dispose()


# the commands that use the business tables of the configured database (migrate makes them; demo, bench and
# eval make throwaway databases of their own)
NEEDS_SCHEMA = {cmd_load_config, cmd_api_key, cmd_staff_account, cmd_voice_secret, cmd_webhook, cmd_ics_feed,
                cmd_caldav, cmd_serve, cmd_mcp, cmd_scheduler}


if __name__ == "__main__":
    sys.exit(main())
