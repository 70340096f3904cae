"""The long-running processes and the demo: serve, mcp (stdio), scheduler, demo."""
from __future__ import annotations

import argparse
import logging
import os

from nextslot.cli.common import add_command, refuse
from nextslot.settings import Settings

log = logging.getLogger(__name__)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.demo import run_demo

    return run_demo(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.payments.providers import takes_no_money_in_public
    from nextslot.server.app import serve
    from nextslot.telemetry.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if takes_no_money_in_public(settings) and deposits_asked(settings):
        if not settings.allow_local_payments:
            return refuse("local_payments_in_public", f"Deposits are asked, but the payment provider is `local`, "
                          f"which takes no money, and NEXTSLOT_PUBLIC_URL ({settings.public_url}) is not loopback: "
                          "set NEXTSLOT_PAYMENT_PROVIDER=stripe (or NEXTSLOT_ALLOW_LOCAL_PAYMENTS=true for a test "
                          "server).")
        log.warning("NEXTSLOT_ALLOW_LOCAL_PAYMENTS=true: deposits at %s are confirmed with NO MONEY TAKEN (payment "
                    "provider `local`); never let real customers use this server", settings.public_url)
    if settings.local_outbox and not loopback_url(settings.public_url):
        log.warning("NEXTSLOT_LOCAL_OUTBOX=true with a public URL (%s): messages are NOT sent to customers but kept "
                    "in the local outbox; meant for a developer's machine", settings.public_url)
    serve(settings, args.host, args.port)
    return 0


def loopback_url(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlparse

    host = urlparse(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def register(sub) -> None:
    # demo makes a throwaway database of its own
    add_command(sub, "demo", cmd_demo, "seed the example businesses and show the core at work", needs_schema=False)
    p = add_command(sub, "serve", cmd_serve, "run the HTTP server: MCP at /mcp, voice webhooks, health",
                    needs_schema=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p = add_command(sub, "mcp", cmd_mcp, "serve the agent tools over MCP stdio for one business", needs_schema=True)
    p.add_argument("--api-key", default=os.environ.get("NEXTSLOT_API_KEY"),
                   help="the business's API key (default: $NEXTSLOT_API_KEY)")
    p.add_argument("--business", help="the business's slug, instead of an API key (local use)")
    add_command(sub, "scheduler", cmd_scheduler, "send due confirmations and reminders, expire holds (run one or "
                "more)", needs_schema=True)
