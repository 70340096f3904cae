"""Operating a deployment: a customer's data (export, erase), the retention purge, the invariant check."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nextslot.cli.common import add_business_command, add_command, on_business, refuse, refuse_rejected
from nextslot.settings import Settings


def who(args: argparse.Namespace) -> dict:
    return {k: v for k, v in (("customer_id", args.id), ("phone", args.phone), ("email", args.email)) if v}


@on_business
def cmd_customer(settings: Settings, args: argparse.Namespace, factory, business_id: int) -> int:
    from nextslot.core.clock import utcnow
    from nextslot.core.customers.data_rights import erase_customer, export_customer
    from nextslot.core.results import Rejected
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    if len(who(args)) != 1:
        return refuse("identifier_required", "Name the customer by exactly one of --id, --phone, --email.")
    uow = SqlAlchemyUnitOfWork(factory)
    if args.action == "export":
        document = export_customer(uow, business_id, utcnow(), **who(args))
        if isinstance(document, Rejected):
            return refuse_rejected(document)
        text = json.dumps(document, indent=2, ensure_ascii=False)
        if args.out:
            Path(args.out).write_text(text + "\n")
            print(json.dumps({"exported": args.out, "bookings": len(document["bookings"])}))
        else:
            print(text)
        return 0
    if not args.yes:
        return refuse("confirmation_required", "Erasing cannot be undone: add --yes.", "yes")
    erased = erase_customer(uow, business_id, utcnow(), cancel_upcoming=args.cancel_upcoming, **who(args))
    if isinstance(erased, Rejected):
        return refuse_rejected(erased)
    print(json.dumps({"erased": erased.customer_id, "bookings": erased.bookings, "cancelled": erased.cancelled,
                      "messages": erased.messages, "conversations": erased.conversations, "already": erased.already}))
    return 0


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.core.operations import check_invariants
    from nextslot.runtime import build_service

    results = check_invariants(build_service(settings))
    broken = [r for r in results if not r["holds"]]
    print(json.dumps({"ok": not broken, "checks": results}, indent=2))
    return 1 if broken else 0


def cmd_retention(settings: Settings, args: argparse.Namespace) -> int:
    from nextslot.core.clock import utcnow
    from nextslot.core.customers.data_rights import purge_expired
    from nextslot.runtime import build_service

    if settings.retention_message_days is None and settings.retention_conversation_days is None:
        print(json.dumps({"purged": {}, "message": "No retention is set (NEXTSLOT_RETENTION_MESSAGE_DAYS, "
                          "NEXTSLOT_RETENTION_CONVERSATION_DAYS): everything is kept."}), file=sys.stderr)
        return 0
    purged = purge_expired(build_service(settings).uow(), utcnow(), settings.retention_message_days,
                           settings.retention_conversation_days)
    print(json.dumps({"purged": purged}))
    return 0


def register(sub) -> None:
    p = add_business_command(sub, "customer", cmd_customer, "export everything stored about a customer, or erase "
                             "their personal data (bookings and history stay, anonymous)")
    p.add_argument("action", choices=["export", "erase"])
    p.add_argument("--id", type=int)
    p.add_argument("--phone")
    p.add_argument("--email")
    p.add_argument("--out", help="export: write the JSON here instead of printing it")
    p.add_argument("--cancel-upcoming", action="store_true", help="erase: cancel their upcoming bookings first")
    p.add_argument("--yes", action="store_true", help="erase: yes, really")
    add_command(sub, "check", cmd_check, "check the database's invariants (no double booking, claims match "
                "bookings, history complete ...); exit 1 if any is broken", needs_schema=True)
    add_command(sub, "retention", cmd_retention, "purge message texts and old conversations past the retention "
                "settings now (the scheduler does it daily)", needs_schema=True)
