"""Which redirect URIs a client may use, registered or described by a metadata document."""
from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def redirect_uri_problem(uri: str) -> str | None:
    """Redirect targets must be https, or http on this machine (native apps, RFC 8252); no fragments."""
    parts = urlsplit(uri)
    if parts.fragment:
        return "A redirect URI may not have a fragment."
    if parts.username is not None or parts.password is not None:
        return "A redirect URI may not carry a user name or password."
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return None
    return "Redirect URIs must be https, or http on localhost."
