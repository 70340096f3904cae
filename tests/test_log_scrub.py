"""The JSON log formatter: one object a line, the request id bound, secrets and contacts cut whatever the message."""
from __future__ import annotations

import json
import logging

from nextslot.telemetry.context import bound_request_id
from nextslot.telemetry.logs import JsonFormatter, scrub


def test_keys_secrets_tokens_and_contacts_are_cut_from_any_message():
    key, secret = "nsk_" + "A1b2C3d4" * 5, "whsec_" + "Z9y8X7w6" * 4
    text = scrub(f"key {key} secret {secret} header Bearer abcdefghijklmnop link /m/tok3n-secret-value?x=1 "
                 f"feed /ics/feedtokenvalue.ics?token=qwertyuiop mail ann.lee@example.com phone +447911123456 "
                 f"db postgresql://user:hunter2@db/nextslot on 2026-11-24 at 10:00, notification 123456789")
    for secret_part in (key[4:], secret[6:], "abcdefghijklmnop", "tok3n-secret-value", "feedtokenvalue",
                        "qwertyuiop", "ann.lee@example.com", "447911123456", "hunter2"):
        assert secret_part not in text, secret_part
    assert "2026-11-24 at 10:00" in text and "notification 123456789" in text  # dates and ids stay readable


def test_a_record_is_one_json_object_with_the_request_id_and_its_extra_fields():
    record = logging.LogRecord("nextslot.test", logging.WARNING, __file__, 1, "sent %s to %s", ("it", "+447911123456"),
                               None)
    record.channel, record.ms = "sms", 12.5
    with bound_request_id("req-42"):
        line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-42" and line["level"] == "warning" and line["logger"] == "nextslot.test"
    assert line["channel"] == "sms" and line["ms"] == 12.5 and "447911123456" not in line["message"]
    try:
        raise ValueError("boom for ann@example.com")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(failed))
    assert line["error"] == "ValueError" and "ann@example.com" not in line["traceback"]


def test_a_stateless_mcp_request_leaves_our_request_line_only(capsys):
    """The MCP SDK says "Terminating session: None" at info after every stateless request: a second line per tool
    call, and its formatting costs the server CPU on every call. Its warnings still show."""
    from nextslot.telemetry.logs import configure_logging

    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "json")
        sdk = logging.getLogger("mcp.server.streamable_http")
        sdk.info("Terminating session: %s", None)
        sdk.warning("a real problem")
        logging.getLogger("nextslot.http").info("POST /mcp 200")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("mcp.server.streamable_http", "a real problem"), ("nextslot.http", "POST /mcp 200")]
