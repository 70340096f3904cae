"""The Prometheus metrics every process records (prometheus-client), and how they are exposed.

Counters and histograms live in the process's default registry. With PROMETHEUS_MULTIPROC_DIR set (as `nextslot
up` does for its server and scheduler), every process writes its samples there and whichever process is scraped
reports them all (the library's multiprocess mode). Facts that belong to the database, not to a process (queue
depth and lag, calendar sync age, active holds), are read at scrape time by `collectors.DatabaseCollector`.

Labels are bounded sets only: channel, route template, tool name, outcome, reason code. Never a business,
customer, URL with ids or a token.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from time import perf_counter
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Histogram(
    "nextslot_http_request_duration_seconds", "HTTP requests by channel, route template, method and status",
    ["channel", "route", "method", "status"], buckets=LATENCY_BUCKETS)
TOOL_CALLS = Histogram(
    "nextslot_tool_call_duration_seconds", "Agent tool calls by channel, tool and outcome (ok or the error code)",
    ["channel", "tool", "outcome"], buckets=LATENCY_BUCKETS)
BOOKINGS = Counter(
    "nextslot_bookings", "Booking writes by operation (book, reschedule) and outcome (booked, slot_taken, "
    "rejected); code: the refusal's reason", ["operation", "outcome", "code"])
HOLDS = Counter("nextslot_holds", "Holds asked for, by outcome (held, slot_taken, rejected)", ["outcome", "code"])
HOLDS_EXPIRED = Counter("nextslot_holds_expired", "Holds released because they ran out")
LOST_CLAIMS = Counter(
    "nextslot_lost_claims", "Claims the database refused because a racer committed first (each is re-planned)")
LOST_RACES = Counter(
    "nextslot_lost_races", "Writes that lost a race: a claim was refused and no other combination was free, so the "
    "caller got alternatives", ["operation"])
DELIVERIES = Counter(
    "nextslot_message_deliveries", "Message send attempts by channel and outcome (accepted, retry, next_channel)",
    ["channel", "outcome"])
FALLBACKS = Counter("nextslot_message_fallbacks", "Messages moved on from a channel to the next", ["from_channel"])
MESSAGES_FINISHED = Counter(
    "nextslot_messages_finished", "Messages that ended with no channel left, by final status", ["status"])
WEBHOOKS = Counter("nextslot_webhook_deliveries", "Webhook deliveries by outcome (delivered, error: retried "
                   "later or given up after a day, endpoint_disabled)", ["outcome"])
WEBHOOK_LATENCY = Histogram("nextslot_webhook_delivery_duration_seconds", "Webhook POST round trips",
                            buckets=LATENCY_BUCKETS)
CALENDAR_SYNCS = Counter("nextslot_calendar_syncs", "Calendar sync runs by outcome (synced, failed)", ["outcome"])
DATABASE_WAITS = Histogram(
    "nextslot_db_gate_wait_seconds", "Units of work that found every database place of their process taken, by how "
    "long they waited for one (storage/gate.py)", buckets=(0.001, 0.0025, *LATENCY_BUCKETS))
ADMISSION_WAITS = Histogram(
    "nextslot_admission_wait_seconds", "Requests that waited to be admitted because their tenant (or the process) had "
    "as many in progress as it may, by how long they waited (server/admission.py)",
    buckets=(0.001, 0.0025, *LATENCY_BUCKETS))
MODEL_CALLS = Histogram(
    "nextslot_model_call_duration_seconds", "Conversation model requests by outcome (ok, error)", ["outcome"],
    buckets=LATENCY_BUCKETS)
CONVERSATION_ANSWERS = Counter(
    "nextslot_conversation_answers", "Conversation messages answered, by who answered (model, guided, ...)",
    ["answered_by"])


def observe_booking(operation: str, result: object) -> None:
    """Count a book or reschedule result (Booked, SlotTaken or Rejected; told apart by shape, not import)."""
    outcome, code = outcome_of(result)
    if outcome == "held":
        outcome = "booked"
    BOOKINGS.labels(operation, outcome, code).inc()


def observe_hold(result: object) -> None:
    HOLDS.labels(*outcome_of(result)).inc()


def outcome_of(result: object) -> tuple[str, str]:
    name = type(result).__name__
    if name == "Rejected":
        return "rejected", str(getattr(result, "code", ""))[:40]
    if name == "SlotTaken":
        return "slot_taken", ""
    return {"Booked": "booked", "Held": "held"}.get(name, "other"), ""


class Timer:
    """`with Timer() as t: ...; t.seconds`"""

    def __enter__(self) -> Timer:
        self.started = perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = perf_counter() - self.started


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition(*extra: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition of this process (or, in multiprocess mode, of every process) plus `extra` registries
    (the database-backed gauges), and its content type."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return b"".join([generate_latest(registry), *(generate_latest(r) for r in extra)]), CONTENT_TYPE_LATEST


def token_matches(expected: str | None, authorization: str | None) -> bool:
    """`Authorization: Bearer <token>` against the configured token, in constant time."""
    if not expected or not authorization or not authorization.startswith("Bearer "):
        return False
    return secrets.compare_digest(expected.encode(), authorization.removeprefix("Bearer ").strip().encode())


def serve_metrics(port: int, host: str, extra: tuple[CollectorRegistry, ...] = (), token: str | None = None) -> Any:
    """/metrics on a port of its own (NEXTSLOT_METRICS_PORT), in a daemon thread; the token, when set, is asked
    there too. Return the WSGI server (`.shutdown()` stops it)."""
    import threading
    from wsgiref.simple_server import make_server

    from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if token and not token_matches(token, environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"a metrics token is needed\n"]
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        body, content_type = exposition(*extra)
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server
