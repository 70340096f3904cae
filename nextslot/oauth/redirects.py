"""What a client may declare, registered or described by a metadata document: its redirect URIs (https, or
http on this machine for a native app, RFC 8252), and only the grant and response types this server has."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from nextslot.schemas.inputs import checked

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
GRANT_TYPES = ("authorization_code", "refresh_token")  # the code flow and its refresh; nothing else is served
RESPONSE_TYPES = ("code",)
MAX_METADATA = 10 * 1024  # a client's metadata as stored (JSON): a few URIs, a name, contacts


def redirect_uri_problem(uri: str) -> str | None:
    """Redirect targets must be https, or http on this machine (native apps, RFC 8252); no fragments."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri) or len(uri) > 2048:
        return "A redirect URI may not contain spaces or control characters, or be over 2048 characters."
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a port that is not one
        host = parts.hostname
    except ValueError:
        return "A redirect URI must be a URL (this one cannot be read as one)."
    if parts.fragment or "#" in uri:
        return "A redirect URI may not have a fragment."
    if parts.username is not None or parts.password is not None:
        return "A redirect URI may not carry a user name or password."
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host in LOOPBACK:
        return None
    return "Redirect URIs must be https, or http on localhost (127.0.0.1, [::1])."


def same_but_loopback_port(requested: str, registered: str) -> bool:
    """RFC 8252 7.3: a native app listens on a loopback port the system picks when it starts, so a registered
    `http://127.0.0.1/callback` (or with any port) matches the same URL on any port; nothing else loosens."""
    try:
        asked, known = urlsplit(requested), urlsplit(registered)
        asked.port, known.port  # noqa: B018 - raises on a port that is not one
    except ValueError:
        return False
    return (asked.scheme == known.scheme == "http" and asked.hostname in LOOPBACK
            and (asked.hostname, asked.path, asked.query, asked.username, asked.password, asked.fragment)
            == (known.hostname, known.path, known.query, known.username, known.password, known.fragment))


def grant_problem(grant_types: Any, response_types: Any) -> str | None:
    """Why a client's declared grant or response types are not ones this server serves, or None."""
    if not isinstance(grant_types, list) or not all(isinstance(g, str) for g in grant_types) or \
            "authorization_code" not in grant_types:
        return "grant_types must be a list including 'authorization_code'."
    if unknown := [g for g in grant_types if g not in GRANT_TYPES]:
        return (f"grant_types {', '.join(repr(g[:60]) for g in unknown[:3])} are not supported here "
                f"(only {', '.join(GRANT_TYPES)}).")
    if not isinstance(response_types, list) or not response_types or any(r not in RESPONSE_TYPES
                                                                         for r in response_types):
        return "response_types must be [\"code\"]: only the authorization code flow is supported here."
    return None


def metadata_problem(metadata: Any) -> str | None:
    """Why a client's metadata cannot be kept, or None: a value with NUL or another control character (PostgreSQL
    refuses NUL in text and JSON: the registration was a 500), nesting past the input rules' depth, or more than
    10 KB in all (each registration is a row that stays)."""
    try:
        checked(metadata)
    except ValueError as exc:
        return f"A value of the client metadata {exc}."
    if len(json.dumps(metadata, ensure_ascii=False)) > MAX_METADATA:
        return f"The client metadata is over {MAX_METADATA // 1024} KB."
    return None
