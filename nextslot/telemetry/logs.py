"""Structured logs: one JSON object a line on stderr, with the request id, for the long-running processes.

Configured by the commands that run them (`serve`, `scheduler`), never on import or by `create_app`, so tests
and embedding programs keep their own logging. Every line passes through the redaction the access log uses:
API keys, webhook secrets, bearer tokens, link tokens in paths, emails, E.164 numbers and URL passwords are cut before they
are written, whatever a caller put in a message.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from nextslot.redaction import EMAIL, URL_CREDENTIALS, redact_path, shortened
from nextslot.telemetry.context import current_request_id
from nextslot.telemetry.tracing import trace_id

E164 = re.compile(r"\+\d{8,15}\b")
SECRET = re.compile(r"\b(nsk_|whsec_|Bearer\s+)([A-Za-z0-9._~+/=-]{6,})")
PATHS = re.compile(r"(?<![\w/])(/[\w./{}-]*(?:\?[^\s\"']*)?)")
STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName",
                                                                       "color_message"}  # uvicorn's ANSI twin


def scrub(text: str) -> str:
    """Secrets and link tokens out of a log message; URL passwords, emails and E.164 numbers masked."""
    text = SECRET.sub(lambda m: m.group(1) + shortened(m.group(2)), text)
    text = PATHS.sub(lambda m: redact_path(m.group(1)), text)
    text = URL_CREDENTIALS.sub(r"\1…@", text)
    text = EMAIL.sub(lambda m: m.group(0)[:2] + "…@…", text)
    return E164.sub(lambda m: m.group(0)[:3] + "…" + m.group(0)[-2:], text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "message": scrub(record.getMessage())}
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            line["request_id"] = request_id
        if trace := trace_id():
            line["trace_id"] = trace
        for key, value in vars(record).items():  # extra={...} fields
            if key not in STANDARD and key not in line and not key.startswith("_"):
                line[key] = value if isinstance(value, int | float | bool) or value is None else scrub(str(value))
        if record.exc_info:
            line["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "error"
            line["traceback"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The plain-text format, with the same cuts as the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """One handler on the root logger, on stderr (stdout stays for what commands print): JSON or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # a line per request or run: customer data, noise ("Terminating session: None" after every MCP call)
    for noisy in ("twilio.http_client", "apscheduler.executors", "apscheduler.scheduler", "httpx", "httpx2",
                  "httpcore", "httpcore2", "mcp.server.streamable_http"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # at DEBUG they write staff calendars' OAuth exchanges out whole: codes, PKCE verifiers, access and refresh tokens
    for secretive in ("requests_oauthlib", "oauthlib"):
        logging.getLogger(secretive).setLevel(logging.WARNING)
