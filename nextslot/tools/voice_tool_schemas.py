"""The voice tools in each platform's own format, for `nextslot voice-tools`: generated from the same specs and input
models a voice call runs through (`VOICE_SPECS`: the registry's tools, request_code and verify_code, and the `proof`
the lookups take), pointing at the business's webhook, so nothing is copied from the README by hand.

The shapes are what each webhook in `server/voice_webhooks.py` parses: Vapi function tools whose server gets the
tool-calls message; Retell custom functions with the default payload (`name`, `call`, `args`, not args at root);
ElevenLabs webhook tools, one URL per tool, the body the tool's arguments plus two properties filled from system
dynamic variables. No secret is ever printed: where the platform sends one, a placeholder says where to get it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from nextslot.core.accounts.voice_secrets import Platform
from nextslot.schemas.voice import ELEVENLABS_FIELDS
from nextslot.tools.registry import ToolSpec
from nextslot.tools.voice_callers import VOICE_SPECS

PLATFORMS: tuple[str, ...] = get_args(Platform)  # the platforms whose webhook nextslot answers
NO_ADAPTER = ("bland", "synthflow")  # asked for, but no webhook of theirs is answered yet
# the ElevenLabs body properties set from the conversation's system dynamic variables, as the webhook reads them
ELEVENLABS_DYNAMIC = {ours: variable for variable, ours in ELEVENLABS_FIELDS.items() if variable.startswith("system__")}
KEEP = ("type", "description", "enum", "format", "default", "items", "properties", "required", "additionalProperties",
        "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems")


@dataclass(frozen=True)
class VoiceTools:
    """What the command prints: the definitions (stdout, JSON), and what to fill in or set up (stderr)."""

    tools: list[dict[str, Any]]
    notes: list[str]


def secret_placeholder(slug: str, platform: str) -> str:
    return f"<the secret `nextslot voice-secret {slug} {platform}` prints>"


def voice_tools(platform: Platform, server_url: str, slug: str, language: str | None = None) -> VoiceTools:
    """Every voice tool as the platform defines one, calling this business's webhook at `server_url`."""
    base = server_url.rstrip("/")
    if platform == "vapi":
        url = f"{base}/webhooks/vapi/{slug}"
        return VoiceTools([vapi_tool(spec, url, slug, language) for spec in VOICE_SPECS], [
            f"server.headers.x-vapi-secret: put there what `nextslot voice-secret {slug} vapi` prints (it opens this "
            "business's Vapi webhook and nothing else)."])
    if platform == "retell":
        url = f"{base}/webhooks/retell/{slug}"
        return VoiceTools([retell_tool(spec, url, language) for spec in VOICE_SPECS], [
            "No secret here: Retell signs every request with your Retell API key (the one with the webhook badge); "
            f"give nextslot that key once: `nextslot voice-secret {slug} retell --secret <key>`."])
    return VoiceTools([elevenlabs_tool(spec, f"{base}/webhooks/elevenlabs/{slug}/{spec.name}", slug, language)
                       for spec in VOICE_SPECS], [
        "api_schema.request_headers.Authorization: create a workspace secret whose value is `Bearer ` followed by "
        f"what `nextslot voice-secret {slug} elevenlabs` prints, and put its id in secret_id. To create a tool "
        "through the API, send it as {\"tool_config\": <the tool>}."])


def vapi_tool(spec: ToolSpec, url: str, slug: str, language: str | None) -> dict[str, Any]:
    """A Vapi function tool: the model's call reaches the server URL as a tool-calls message."""
    return {"type": "function",
            "function": {"name": spec.name, "description": spec.description,
                         "parameters": parameters(spec, language)},
            "server": {"url": url, "headers": {"x-vapi-secret": secret_placeholder(slug, "vapi")}}}


def retell_tool(spec: ToolSpec, url: str, language: str | None) -> dict[str, Any]:
    """A Retell custom function with the default payload: nextslot reads the tool's name from it."""
    return {"type": "custom", "name": spec.name, "description": spec.description, "url": url, "method": "POST",
            "args_at_root": False, "parameters": parameters(spec, language),
            "speak_during_execution": True, "speak_after_execution": True}


def elevenlabs_tool(spec: ToolSpec, url: str, slug: str, language: str | None) -> dict[str, Any]:
    """An ElevenLabs webhook tool: one URL per tool, the body its parameters and two system dynamic variables."""
    schema = parameters(spec, language=None)
    properties: dict[str, Any] = {name: elevenlabs_property(name, sub) for name, sub in schema["properties"].items()}
    required = list(schema.get("required", []))
    if language is not None and "language" in properties:  # said by the business, not chosen by the model
        properties["language"] = {"type": "string", "constant_value": language}
    for name, variable in ELEVENLABS_DYNAMIC.items():
        properties[name] = {"type": "string", "dynamic_variable": variable}
    return {"type": "webhook", "name": spec.name, "description": spec.description,
            "api_schema": {"url": url, "method": "POST",
                           "request_headers": {"Authorization": {"secret_id": elevenlabs_secret_placeholder(slug)}},
                           "request_body_schema": {"type": "object", "description": f"The arguments of {spec.name}.",
                                                   "required": required, "properties": properties}}}


def elevenlabs_secret_placeholder(slug: str) -> str:
    return f"<id of your workspace secret 'Bearer ' + what `nextslot voice-secret {slug} elevenlabs` prints>"


def elevenlabs_property(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A body property the model fills in, as ElevenLabs types them: a literal (string, integer, number, boolean,
    with an enum of strings), an array or an object, each with the description the model reads (required there)."""
    kind = schema.get("type", "string")
    described = schema.get("description") or name.replace("_", " ")
    if kind == "array":
        return {"type": "array", "description": described, "items": elevenlabs_property(name, schema["items"])}
    if kind == "object":
        return {"type": "object", "description": described, "required": list(schema.get("required", [])),
                "properties": {sub: elevenlabs_property(sub, value)
                               for sub, value in schema.get("properties", {}).items()}}
    literal: dict[str, Any] = {"type": kind, "description": described + bounds(schema)}
    if "enum" in schema:
        literal["enum"] = [str(value) for value in schema["enum"]]
    return literal


def bounds(schema: dict[str, Any]) -> str:
    """A number's range in words: ElevenLabs' literals carry no minimum or maximum, and a model should not learn
    them from a refusal."""
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f" From {low} to {high}."
    if low is not None:
        return f" At least {low}."
    return f" At most {high}." if high is not None else ""


def parameters(spec: ToolSpec, language: str | None) -> dict[str, Any]:
    """The tool's input schema as plain JSON Schema a voice platform's model reads: references inlined, an optional
    field its own type (left out of `required`, never null), no titles. With a language, `language` is that one."""
    schema = spec.input_model.model_json_schema()
    plain = plain_schema(schema, schema.get("$defs", {}))
    plain.setdefault("properties", {})
    plain.setdefault("required", [])
    if language is not None and "language" in plain["properties"]:
        said = plain["properties"]["language"]
        plain["properties"]["language"] = {**said, "enum": [language], "description":
                                           f"{said.get('description', '')} This agent speaks {language}: always "
                                           f"send {language}.".strip()}
        plain["required"] = [*plain["required"], "language"]
    return plain


def plain_schema(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One property's (or the object's) schema, plain: `$ref` inlined, `anyOf [X, null]` read as X, a null
    default dropped, only the keywords a voice platform's model needs."""
    if "$ref" in schema:
        schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    if "anyOf" in schema:
        options = [option for option in schema["anyOf"] if option.get("type") != "null"]
        if len(options) == 1:
            schema = {**plain_schema(options[0], defs), **{k: v for k, v in schema.items() if k != "anyOf"}}
    plain = {key: value for key, value in schema.items() if key in KEEP and not (key == "default" and value is None)}
    if "properties" in plain:
        plain["properties"] = {name: plain_schema(sub, defs) for name, sub in plain["properties"].items()}
    if "items" in plain:
        plain["items"] = plain_schema(plain["items"], defs)
    return plain
