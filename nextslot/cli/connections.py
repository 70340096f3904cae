"""A business's connections to the outside: webhook endpoints, ICS feeds out, CalDAV calendars in."""
from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from nextslot.cli.common import add_business_command, on_business, refuse_rejected
from nextslot.settings import Settings


@on_business
def cmd_webhook(settings: Settings, args: argparse.Namespace, factory, business_id: int) -> int:
    from nextslot.core.results import Rejected
    from nextslot.storage.uow import SqlAlchemyUnitOfWork
    from nextslot.webhooks.endpoints import add_endpoint

    events = [e.strip() for e in args.events.split(",") if e.strip()] if args.events else None
    result = add_endpoint(SqlAlchemyUnitOfWork(factory), business_id, args.url, events, settings.allow_private_targets,
                          settings.webhook_endpoints_max)
    if isinstance(result, Rejected):
        return refuse_rejected(result)
    print(json.dumps({"id": result.id, "secret": result.secret}))
    return 0


@on_business
def cmd_ics_feed(settings: Settings, args: argparse.Namespace, factory, business_id: int) -> int:
    from nextslot.calendars.feeds import create_feed, list_feeds, revoke_feed
    from nextslot.core.results import Rejected
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    if args.list:
        feeds = list_feeds(SqlAlchemyUnitOfWork(factory), business_id)
        print(json.dumps({"feeds": [feed_json(f) for f in feeds]}))
        return 0
    if args.revoke is not None:
        revoked = revoke_feed(SqlAlchemyUnitOfWork(factory), business_id, args.revoke, datetime.now(UTC))
        if isinstance(revoked, Rejected):
            return refuse_rejected(revoked)
        print(json.dumps(feed_json(revoked)))
        return 0
    token = create_feed(SqlAlchemyUnitOfWork(factory), business_id, args.resource)
    if isinstance(token, Rejected):
        return refuse_rejected(token)
    print(f"{settings.public_url.rstrip('/')}/ics/{token}.ics")
    return 0


def feed_json(feed) -> dict:
    return {"id": feed.id, "resource": feed.resource, "created_at": feed.created_at.isoformat(),
            "revoked_at": feed.revoked_at.isoformat() if feed.revoked_at else None}


@on_business
def cmd_caldav(settings: Settings, args: argparse.Namespace, factory, business_id: int) -> int:
    from nextslot.calendars.connections import add_calendar
    from nextslot.calendars.providers import build_registry
    from nextslot.calendars.sync import Synced, SyncFailed, sync_calendar
    from nextslot.core.links import load_secret
    from nextslot.core.results import Rejected
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    registry = build_registry(settings, load_secret(settings.secret_key, settings.data_dir))
    added = add_calendar(SqlAlchemyUnitOfWork(factory), business_id, args.resource, args.url, args.username,
                         args.password, settings.allow_private_targets, write_back=not args.read_only,
                         box=registry.box)
    if isinstance(added, Rejected):
        return refuse_rejected(added)
    match sync_calendar(factory, added, datetime.now(UTC), registry=registry):  # registered either way: the scheduler retries
        case Synced() as synced:
            print(json.dumps({"id": added, "synced": True, "busy_intervals": synced.intervals}))
        case SyncFailed(_, error):
            print(json.dumps({"id": added, "synced": False, "error": error}))
        case _:  # a scheduler picked it up at the same moment: it syncs it now
            print(json.dumps({"id": added, "synced": False, "error": "being synced by the scheduler"}))
    return 0


def register(sub) -> None:
    p = add_business_command(sub, "webhook", cmd_webhook,
                             "register a webhook endpoint for a business's booking events")
    p.add_argument("url")
    p.add_argument("--events", help="comma-separated event types (default: all)")
    p = add_business_command(sub, "ics-feed", cmd_ics_feed,
                             "create a private ICS feed URL for a business or one resource; list or revoke feeds")
    p.add_argument("--resource", help="a resource key: only its bookings")
    feeds = p.add_mutually_exclusive_group()
    feeds.add_argument("--list", action="store_true", help="list the business's feeds (ids, not URLs) as JSON")
    feeds.add_argument("--revoke", type=int, metavar="ID", help="revoke a feed by its id: its URL answers 404")
    p = add_business_command(sub, "caldav", cmd_caldav,
                             "connect a staff member's CalDAV calendar: its busy time blocks their slots, and "
                             "their bookings are written into it")
    p.add_argument("resource", help="the resource (staff member) key")
    p.add_argument("url", help="the calendar's CalDAV URL")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--read-only", action="store_true",
                   help="only read busy time: do not write the staff member's bookings into this calendar")
