"""`nextslot voice-tools`: each platform's tool definitions, generated from the tools' own input models, used as the
platform would use them. The definitions come from the real command; every generated tool is then called with
arguments valid for its generated schema, in a request built exactly as that platform builds one from the
definition (URL, headers, body), posted to the real app and checked to be accepted: request_code, verify_code and
the `proof` they give included. The generated parameters are also compared with the input models, so they cannot
drift apart."""
from __future__ import annotations

import itertools
import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from starlette.testclient import TestClient

from nextslot.schemas import tools as t
from nextslot.settings import Settings
from nextslot.storage import queries
from nextslot.tools.contact_proof import PROOF_SPECS
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, execute
from nextslot.tools.voice_callers import TAKE_PROOF
from nextslot.tools.voice_tool_schemas import ELEVENLABS_DYNAMIC, PLATFORMS, voice_tools
from tests.server.test_cli import nextslot, refusal
from tests.server.test_voice_webhooks import RETELL_KEY, VAPI_SECRET, retell_signature
from tests.tools.test_voice_contact_lookup import (  # noqa: F401  (fixtures: the clinic on all three platforms, Ann's bookings)
    ANN,
    ELEVENLABS_SECRET,
    ann,
    client,
    clinic,
    codes_sent,
)

TUESDAY, WEDNESDAY = "2026-11-24", "2026-11-25"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC
SERVER = "http://testserver"
SECRETS = {"vapi": VAPI_SECRET, "retell": RETELL_KEY, "elevenlabs": ELEVENLABS_SECRET}
# called in this order: the code is asked for, then checked, and its proof passed to the tools that take one
ORDER = ("request_code", "verify_code", "list_services", "get_business_info", "find_available_slots", "hold_slot",
         "book_appointment", "book_series", "find_appointments", "customer_history", "confirm_appointment",
         "reschedule_appointment", "join_waitlist", "cancel_appointment")
CALL_IDS = itertools.count(1)


def generated(database_url: str, platform: str, slug: str, *more: str) -> list[dict[str, Any]]:
    """The definitions as the command prints them (stdout is the JSON alone), checked to hold no secret."""
    made = nextslot(database_url, "voice-tools", "--platform", platform, "--business", slug,
                    "--server-url", SERVER, *more)
    assert made.returncode == 0, made.stderr
    assert f"nextslot voice-secret {slug} {platform}" in made.stderr  # where the value to fill in comes from
    assert not any(secret in made.stdout + made.stderr for secret in SECRETS.values())
    return json.loads(made.stdout)


def name_of(tool: dict[str, Any]) -> str:
    return tool["function"]["name"] if "function" in tool else tool["name"]


def model_schema(platform: str, tool: dict[str, Any]) -> dict[str, Any]:
    """The schema of what the platform's model fills in (for ElevenLabs: the body's properties it fills in)."""
    if platform == "vapi":
        return tool["function"]["parameters"]
    if platform == "retell":
        return tool["parameters"]
    body = tool["api_schema"]["request_body_schema"]
    filled = {name: p for name, p in body["properties"].items() if "dynamic_variable" not in p
              and "constant_value" not in p}
    return {"type": "object", "properties": filled, "required": body["required"]}


# --- arguments valid for a generated schema -------------------------------------------------------------------


def arguments(tool: str, schema: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """A value for every parameter the schema has, optional ones too (but a branch where there is none), checked
    valid for the schema."""
    args = {name: value(tool, name, prop, known) for name, prop in schema["properties"].items()}
    args = {name: given for name, given in args.items() if given is not None}
    jsonschema.Draft202012Validator(schema).validate(args)
    return args


def value(tool: str, name: str, prop: dict[str, Any], known: dict[str, Any]) -> Any:
    """What a caller would say for the parameter; for one this table does not know, the simplest valid value."""
    if tool == "verify_code" and name == "code":
        return known["sent_code"]
    said = {
        "service": "consultation", "date": TUESDAY, "days": 2, "earliest_time": "08:00", "latest_time": "18:00",
        "timezone": "Europe/London", "caller_timezone": "Europe/London", "staff": "Dr Asha Patel", "limit": 3,
        "party_size": 1, "language": prop.get("enum", ["en"])[0], "starts_at": known["slots"][0],
        "first_starts_at": known["slots"][1], "new_starts_at": known["slots"][2], "customer_name": "Cara Diaz",
        "phone": "+447911123009", "email": "cara@example.com", "notes": "First visit.",
        "answers": [{"question": "reason", "answer": "A check-up."}], "idempotency_key": f"key-{tool}",
        "every": "week", "interval": 1, "count": 2, "mode": "skip_taken", "code": known["codes"][0],
        "and_later": False, "reason": "Cannot make it.", "accept_late_terms": False, "include_past": False,
        "earliest_date": TUESDAY, "latest_date": WEDNESDAY, "contact": ANN,
        "challenge": known.get("challenge"), "proof": known.get("proof"),
    }
    if name == "location":  # a branch of the business, when it has several
        return (known.get("locations") or [None])[0]
    if name == "hold_id" and "hold_id" in known:
        return known["hold_id"]
    if said.get(name) is not None:
        return said[name]
    kind = prop.get("type")
    if "enum" in prop:
        return prop["enum"][0]
    if kind in ("integer", "number"):
        return prop.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return "x" * max(prop.get("minLength", 1), 1)


# --- the requests each platform builds from a definition --------------------------------------------------------


def filled(headers: dict[str, Any], secret: str) -> dict[str, str]:
    """The headers with the placeholder replaced by the value the business put there."""
    return {name: secret if str(given).startswith("<") else given for name, given in headers.items()}


def call(client: TestClient, platform: str, tool: dict[str, Any], args: dict[str, Any],  # noqa: F811
         caller: str) -> dict[str, Any]:
    """One call of a generated tool, as the platform sends it; the tool's answer (its JSON)."""
    call_id = f"call_{next(CALL_IDS)}"
    if platform == "vapi":  # a tool-calls message to the tool's server, with the headers set on it
        tool_call = {"id": call_id, "type": "function", "function": {"name": name_of(tool), "arguments": args}}
        message = {"message": {"type": "tool-calls", "toolCallList": [tool_call],
                               "toolWithToolCallList": [{**tool, "toolCall": tool_call}],
                               "call": {"id": "c1", "type": "inboundPhoneCall", "customer": {"number": caller}}}}
        reply = client.post(urlsplit(tool["server"]["url"]).path, json=message,
                            headers=filled(tool["server"]["headers"], SECRETS["vapi"]))
        assert reply.status_code == 200, reply.text
        [result] = reply.json()["results"]
        assert result["toolCallId"] == call_id and result["name"] == name_of(tool)
        return json.loads(result.get("result") or result["error"])
    if platform == "retell":  # the default payload (not args at root), signed with the Retell API key
        assert tool["args_at_root"] is False and tool["method"] == "POST"
        body = json.dumps({"name": tool["name"], "args": args, "call": {
            "call_id": call_id, "call_type": "phone_call", "direction": "inbound", "from_number": caller,
            "to_number": "+442071234567"}}).encode()
        reply = client.post(urlsplit(tool["url"]).path, content=body, headers={
            "content-type": "application/json", "x-retell-signature": retell_signature(body)})
        assert reply.status_code == 200, reply.text
        return reply.json()
    schema = tool["api_schema"]  # ElevenLabs: the body's properties, each from the model, a variable or a constant
    system = {"system__conversation_id": call_id, "system__caller_id": caller}
    body = {name: system[p["dynamic_variable"]] if "dynamic_variable" in p else p.get("constant_value", args.get(name))
            for name, p in schema["request_body_schema"]["properties"].items()}
    headers = {"Authorization": f"Bearer {ELEVENLABS_SECRET}"}  # the workspace secret the placeholder names
    assert set(schema["request_headers"]) == set(headers) and schema["method"] == "POST"
    reply = client.post(urlsplit(schema["url"]).path, json={k: v for k, v in body.items() if v is not None},
                        headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


# --- the tests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_generated_tool_is_accepted_when_the_platform_calls_it_proof_included(
        database_url, client, clinic, ann, service, session_factory, platform):  # noqa: F811
    business_id, slug = clinic
    tools = {name_of(tool): tool for tool in generated(database_url, platform, slug)}
    assert set(tools) == set(ORDER)
    slots = [s["starts_at"] for s in execute("find_available_slots", {"service": "consultation", "date": TUESDAY},
                                             ToolContext(service, business_id, "test")).data["slots"]]
    known: dict[str, Any] = {"slots": slots, "codes": ann}
    answers = {}
    for name in ORDER:
        if name == "verify_code":
            [known["sent_code"]] = codes_sent(session_factory, business_id, ANN)
        args = arguments(name, model_schema(platform, tools[name]), known)
        answers[name] = answer = call(client, platform, tools[name], args, caller="+447911123002")
        # no unknown_tool, invalid_arguments or unauthorized: and here every call also does what it was asked
        assert "error" not in answer, (name, args, answer)
        if name == "request_code":
            assert answer["outcome"] == "code_sent", answer
            known["challenge"] = answer["challenge"]
        if name == "verify_code":
            assert answer["outcome"] == "proved", answer
            known["proof"] = answer["proof"]
        if name == "get_business_info":
            known["locations"] = answer.get("locations")
        if name == "hold_slot":
            known["hold_id"] = answer["hold_id"]
    # the proof reached Ann's own bookings (a number only said, from another line, would reach nothing)
    assert ann[0] in json.dumps(answers["find_appointments"]), answers["find_appointments"]
    assert answers["find_available_slots"]["slots"] and answers["list_services"]["services"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_generated_parameters_are_the_input_models_fields_with_their_descriptions(platform):
    tools = voice_tools(platform, SERVER, "riverside-clinic").tools
    specs = {spec.name: spec for spec in (*PROOF_SPECS, *TOOLS.values())}
    assert [name_of(tool) for tool in tools] == [spec.name for spec in (*PROOF_SPECS, *TOOLS.values())]
    for tool in tools:
        name = name_of(tool)
        model = specs[name].input_model
        described = tool["function"]["description"] if platform == "vapi" else tool["description"]
        assert described == specs[name].description
        schema = model_schema(platform, tool)
        fields = {**model.model_fields, **({"proof": None} if name in TAKE_PROOF else {})}
        assert set(schema["properties"]) == set(fields), name
        assert sorted(schema["required"]) == sorted(f for f, info in model.model_fields.items() if info.is_required())
        for field, info in model.model_fields.items():
            if info.description:
                assert schema["properties"][field]["description"].startswith(info.description), (name, field)
        if name in TAKE_PROOF:
            assert schema["properties"]["proof"]["description"] == t.PROOF and "proof" not in schema["required"]
        if "answers" in schema["properties"]:  # a list of objects: the item's own fields, as its model has them
            item = schema["properties"]["answers"]["items"]
            assert set(item["properties"]) == set(t.IntakeAnswer.model_fields)
            assert sorted(item["required"]) == ["answer", "question"]
        if platform == "elevenlabs":
            body = tool["api_schema"]["request_body_schema"]["properties"]
            assert {k: body[k]["dynamic_variable"] for k in ELEVENLABS_DYNAMIC} == ELEVENLABS_DYNAMIC
            assert not set(ELEVENLABS_DYNAMIC) & set(fields)  # no tool parameter is shadowed by them


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_language_makes_every_answer_come_in_it(database_url, client, clinic, platform):  # noqa: F811
    slug = clinic[1]
    tools = {name_of(tool): tool for tool in generated(database_url, platform, slug, "--language", "es")}
    find = tools["find_available_slots"]
    schema = model_schema(platform, find)
    if platform == "elevenlabs":  # a constant the platform sends, not a choice of the model
        assert find["api_schema"]["request_body_schema"]["properties"]["language"]["constant_value"] == "es"
    else:
        assert schema["properties"]["language"]["enum"] == ["es"] and "language" in schema["required"]
    args = {"service": "consultation", "date": TUESDAY, "limit": 2}
    if platform != "elevenlabs":
        args["language"] = schema["properties"]["language"]["enum"][0]
    jsonschema.Draft202012Validator(schema).validate(args)
    answer = call(client, platform, find, args, caller="+447911123002")
    assert answer["say"].startswith("Puedo ofrecerle "), answer


def test_bland_and_synthflow_unknown_businesses_and_bad_urls_are_refused_with_a_reason(
        database_url, clinic):  # noqa: F811
    slug = clinic[1]
    for platform in ("bland", "synthflow"):
        refused = refusal(nextslot(database_url, "voice-tools", "--platform", platform, "--business", slug))
        assert refused["error"] == "no_adapter" and "/mcp" in refused["message"]
    unknown = refusal(nextslot(database_url, "voice-tools", "--platform", "vapi", "--business", "no-such-clinic"))
    assert unknown["error"] == "unknown_business"
    for url in ("ftp://book.example.com", "book.example.com", "https://book.example.com/?a=1"):
        bad = refusal(nextslot(database_url, "voice-tools", "--platform", "retell", "--business", slug,
                               "--server-url", url))
        assert bad["error"] == "invalid_server_url" and bad["field"] == "server_url"


def test_a_business_without_the_platforms_secret_is_told_how_to_set_it(database_url, make_business,
                                                                       session_factory):
    with session_factory() as session:
        slug = queries.business(session, make_business("clinic")).slug
    made = nextslot(database_url, "voice-tools", "--platform", "elevenlabs", "--business", slug)
    assert made.returncode == 0, made.stderr
    assert f"elevenlabs is not set up for {slug} yet" in made.stderr
    urls = [tool["api_schema"]["url"] for tool in json.loads(made.stdout)]  # NEXTSLOT_PUBLIC_URL by default
    assert urls[0] == f"{Settings().public_url}/webhooks/elevenlabs/{slug}/request_code"
    assert all(re.fullmatch(rf".*/webhooks/elevenlabs/{slug}/[a-z_]+", url) for url in urls)
