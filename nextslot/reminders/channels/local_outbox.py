"""A stand-in for WhatsApp, SMS and email on a machine with no Twilio or SMTP: messages are written to a local
file instead of being sent, so a newcomer running `nextslot up` sees the confirmation a customer would get.

One JSON object a line (appended with O_APPEND, so a server and several schedulers can share the file), read
back by the server's `/outbox` page. The file holds what the message holds, manage links included: it is a
mailbox on the developer's machine, not a log, and the page answers loopback clients only.
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from nextslot.reminders.channels.base import ChannelName, OutgoingMessage, SendResult

FILE_NAME = "outbox.jsonl"


def outbox_file(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


class LocalOutboxChannel:
    """'Sends' by appending the message to the local outbox file; always accepted, and delivered at once."""

    def __init__(self, name: ChannelName, path: Path):
        self.name: ChannelName = name
        self.path = path

    def send(self, message: OutgoingMessage) -> SendResult:
        provider_id = f"local-{uuid.uuid4().hex}"
        line = json.dumps({"id": provider_id, "at": datetime.now(UTC).isoformat(), "channel": self.name,
                           "to": message.to, "subject": message.subject, "body": message.body,
                           "reference": message.reference, "calendar_attached": message.calendar is not None})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())  # one write: lines from several processes never interleave
            finally:
                os.close(fd)
        except OSError as exc:
            return SendResult(False, None, "failed", "local_outbox", type(exc).__name__, transient=True)
        return SendResult(True, provider_id, "delivered")


def read_outbox(path: Path, limit: int = 100) -> list[dict]:
    """The newest `limit` messages of the local outbox, newest first (an unreadable line is skipped)."""
    return list(reversed(list(_lines(path))[-limit:]))


def _lines(path: Path) -> Iterator[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return
    for line in text.splitlines():
        try:
            yield json.loads(line)
        except ValueError:
            continue
