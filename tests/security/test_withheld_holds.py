"""A hold made by a withheld caller is its call's, through the real webhooks signed as each platform signs them.

A voice caller converts only its own holds, known by a digest of the calling number; every withheld number was one
holder, so one withheld caller booked the time another withheld caller was holding by naming its hold's id (ids
count up). A withheld caller's hold is now bound to the platform's call (Vapi's call id, Retell's call_id,
ElevenLabs' conversation id): the same call converts it, another call is told there is no such hold."""
from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.security.test_round13_public_abuse import TUESDAY, capped_app, public_settings
from tests.security.test_round13_public_abuse import clinic as clinic  # noqa: F401 - a fixture, used here
from tests.server.test_voice_webhooks import (
    elevenlabs_body,
    post_elevenlabs,
    post_retell,
    post_vapi,
    retell_body,
    vapi_message,
)
from tests.tools.test_voice_contact_lookup import ELEVENLABS_SECRET

SLOTS = {"vapi": TUESDAY[0], "retell": TUESDAY[2], "elevenlabs": TUESDAY[4]}


def withheld_call(client: TestClient, slug: str, platform: str, call: str, tool: str,
                  args: dict[str, Any]) -> dict[str, Any]:
    """One tool call of platform call `call`, its caller id withheld, as the platform sends it; the tool's JSON."""
    if platform == "vapi":
        message = vapi_message({"id": f"{call}-{tool}", "name": tool, "arguments": args}, number=None)
        message["message"]["call"]["id"] = call
        reply = post_vapi(client, slug, message)
        assert reply.status_code == 200, reply.text
        [result] = reply.json()["results"]
        return json.loads(result.get("result") or result["error"])
    if platform == "retell":
        reply = post_retell(client, slug, retell_body(tool, args, call_id=call, number=None))
    else:
        reply = post_elevenlabs(client, slug, tool, elevenlabs_body(args, conversation=call, caller=None),
                                ELEVENLABS_SECRET)
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.mark.parametrize("platform", ("vapi", "retell", "elevenlabs"))
def test_a_withheld_caller_cannot_book_the_time_another_withheld_call_is_holding(
        session_factory, clock, clinic, platform):  # noqa: F811
    _, slug = clinic
    client = TestClient(capped_app(session_factory, clock, public_settings()))
    at = SLOTS[platform]
    held = withheld_call(client, slug, platform, f"{platform}-first", "hold_slot",
                         {"service": "consultation", "starts_at": at})
    assert held["outcome"] == "held", held
    booking = {"service": "consultation", "starts_at": at, "customer_name": "Made Up", "phone": "+447911155321",
               "hold_id": held["hold_id"]}
    taken = withheld_call(client, slug, platform, f"{platform}-second", "book_appointment", booking)
    assert (taken.get("error") or {}).get("code") == "unknown_hold", taken
    mine = withheld_call(client, slug, platform, f"{platform}-first", "book_appointment", booking)
    assert mine["outcome"] == "booked", mine
