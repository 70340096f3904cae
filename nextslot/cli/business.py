"""Setting a business up: migrate, load-config, api-key, staff-account, voice-secret, voice-tools."""
from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import get_args
from urllib.parse import urlsplit

from pydantic import ValidationError

from nextslot.cli.common import add_business_command, add_command, on_business, refuse, refuse_rejected
from nextslot.schemas.tools import Language
from nextslot.settings import Settings


def load_config_file(path: Path):
    """Parse and validate a YAML or JSON business config (JSON is valid YAML)."""
    from nextslot.schemas.config import BusinessConfig
    from nextslot.schemas.config_text import read_config_text

    return BusinessConfig.model_validate(read_config_text(path.read_text()))


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.storage.engine import resolve_database_url
    from nextslot.storage.migrate import upgrade

    upgrade(resolve_database_url(settings))
    print("database is at the latest schema")
    return 0


def cmd_load_config(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.core.business.config import apply_config
    from nextslot.core.results import Rejected
    from nextslot.schemas.config_text import ConfigTextError
    from nextslot.storage.engine import build_engine, build_session_factory
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    try:
        config = load_config_file(Path(args.file))
    except (OSError, ConfigTextError) as error:
        print(json.dumps({"error": "unreadable_config", "message": str(error)}), file=sys.stderr)
        return 2
    except ValidationError as error:
        problems = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]
        print(json.dumps({"error": "invalid_config", "problems": problems}, indent=2), file=sys.stderr)
        return 2
    engine = build_engine(settings)
    result = apply_config(SqlAlchemyUnitOfWork(build_session_factory(engine)), config)
    if isinstance(result, Rejected):
        return refuse_rejected(result)
    verb = "created" if result.created else "updated"
    print(f"{verb} {result.slug} (id {result.business_id}): {result.resources} resources, {result.services} services")
    return 0


@on_business
def cmd_api_key(settings: Settings, args: argparse.Namespace, factory, business_id: int) -> int:
    from nextslot.core.accounts.api_keys import create_api_key
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    print(create_api_key(SqlAlchemyUnitOfWork(factory), business_id, args.name))
    return 0


@on_business
def cmd_staff_account(settings: Settings, args: argparse.Namespace, factory, business_id: int) -> int:
    """A console sign-in; the password comes from stdin (never the command line, where `ps` shows it) or is
    made up and printed once."""
    from nextslot.core.accounts.staff import create_account
    from nextslot.core.results import Rejected
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    if args.off:
        return switch_account_off(factory, business_id, args.email)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else secrets.token_urlsafe(12)
    created = create_account(SqlAlchemyUnitOfWork(factory), business_id, args.email, args.name or args.email,
                             args.role, password)
    if isinstance(created, Rejected):
        return refuse_rejected(created)
    print(json.dumps({"email": args.email, "role": args.role, "console": f"{settings.public_url}/console/{args.slug}",
                      **({} if args.password_stdin else {"password": password})}))
    return 0


def switch_account_off(factory, business_id: int, email: str) -> int:
    """`staff-account SLUG EMAIL --off`: as an owner's Switch off at the console (sessions and apps' grants end)."""
    from sqlalchemy import func, select

    from nextslot.core.accounts.staff import switch_off
    from nextslot.core.clock import utcnow
    from nextslot.core.results import Rejected
    from nextslot.oauth.grants import end_account_grants
    from nextslot.storage.tables import StaffAccount
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    with factory() as s:
        account = s.scalar(select(StaffAccount.id).where(StaffAccount.business_id == business_id,
                                                         func.lower(StaffAccount.email) == email.strip().lower()))
    done = switch_off(SqlAlchemyUnitOfWork(factory), business_id, account or 0, 0, utcnow())
    if isinstance(done, Rejected):
        return refuse_rejected(done)
    apps = end_account_grants(SqlAlchemyUnitOfWork(factory), business_id, account, utcnow())
    print(json.dumps({"email": done, "switched_off": True, "apps_disconnected": apps}))
    return 0


def cmd_voice_secret(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.core.accounts.voice_secrets import new_secret, set_secret, voice_business
    from nextslot.storage.engine import build_engine, build_session_factory
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    uow = SqlAlchemyUnitOfWork(build_session_factory(build_engine(settings)))
    business = voice_business(uow, args.slug, args.platform)
    if business is None:
        return refuse("unknown_business", f"No business '{args.slug}'.")
    secret = args.secret or business.secret or (new_secret() if args.platform != "retell" else None)
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


def cmd_voice_tools(settings: Settings, args: argparse.Namespace) -> int:
    """The voice tools in the platform's own format (stdout, JSON), generated from the tools' own input models;
    what to fill in, never a secret itself, on stderr."""
    from nextslot.core.accounts.voice_secrets import voice_business
    from nextslot.storage.engine import build_engine, build_session_factory
    from nextslot.storage.uow import SqlAlchemyUnitOfWork
    from nextslot.tools.voice_tool_schemas import NO_ADAPTER, voice_tools

    if args.platform in NO_ADAPTER:
        return refuse("no_adapter", f"nextslot answers no {args.platform} webhook yet, so there are no "
                                    f"{args.platform} tools to generate; a platform that can call a remote MCP "
                                    "server with a header can use /mcp with an API key.", "platform")
    server_url = (args.server_url or settings.public_url).rstrip("/")
    parts = urlsplit(server_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return refuse("invalid_server_url", "The server URL must be http(s)://host[:port][/path], as the platform "
                                            "reaches this server.", "server_url")
    business = voice_business(SqlAlchemyUnitOfWork(build_session_factory(build_engine(settings))), args.business,
                              args.platform)
    if business is None:
        return refuse("unknown_business", f"No business '{args.business}'.", "business")
    made = voice_tools(args.platform, server_url, args.business, args.language)
    print(json.dumps(made.tools, indent=2, ensure_ascii=False))
    for note in made.notes:
        print(note, file=sys.stderr)
    if business.secret is None:
        print(f"{args.platform} is not set up for {args.business} yet: its webhook refuses every call until "
              f"`nextslot voice-secret {args.business} {args.platform}` has been run.", file=sys.stderr)
    return 0


def register(sub) -> None:
    add_command(sub, "migrate", cmd_migrate, "bring the database to the latest schema", needs_schema=False)
    p = add_command(sub, "load-config", cmd_load_config, "create or update a business from a YAML or JSON file",
                    needs_schema=True)
    p.add_argument("file")
    p = add_business_command(sub, "api-key", cmd_api_key, "create an API key for a business (printed once)")
    p.add_argument("--name", default="default")
    p = add_business_command(sub, "staff-account", cmd_staff_account,
                             "create a staff console sign-in (owner or staff) for a business, or switch one off")
    p.add_argument("email")
    p.add_argument("--name", default="")
    p.add_argument("--role", choices=["owner", "staff"], default="staff")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (else one is made "
                                                                 "up and printed once)")
    p.add_argument("--off", action="store_true", help="switch the account off instead: its sessions and the grants "
                                                      "of apps it connected end")
    p = add_business_command(sub, "voice-secret", cmd_voice_secret,
                             "set or show a business's Vapi or ElevenLabs secret or Retell API key for the voice webhooks "
                             "(printed)")
    p.add_argument("platform", choices=["vapi", "retell", "elevenlabs"])
    p.add_argument("--secret", help="the secret to use (default: the current one; a new one for vapi and elevenlabs)")
    p = add_command(sub, "voice-tools", cmd_voice_tools, "print a business's voice tool definitions in a voice "
                    "platform's own format (JSON), generated from the tools' input models", needs_schema=True)
    p.add_argument("--platform", required=True, choices=["vapi", "retell", "elevenlabs", "bland", "synthflow"])
    p.add_argument("--business", required=True, help="the business's slug")
    p.add_argument("--server-url", help="where the platform reaches this server (default: NEXTSLOT_PUBLIC_URL)")
    p.add_argument("--language", choices=get_args(Language),
                   help="the language the agent speaks: every tool's `say` comes in it")
