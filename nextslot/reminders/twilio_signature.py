"""Tell Twilio's webhooks (status callbacks, inbound messages) from forgeries by their X-Twilio-Signature."""
from collections.abc import Mapping

from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm


def valid_twilio_request(auth_token: str, url: str, form: Mapping[str, str], signature: str | None,
                         headers: Mapping[str, str]) -> bool:
    """Return whether `signature` signs this form POST; `url` must be the exact URL Twilio called (mind proxies)."""
    if not signature:
        return False
    settings = next((value for name, value in headers.items() if name.lower() == SIGNATURE_SETTINGS_HEADER.lower()),
                    None)  # looked up by hand: plain dicts keep the header's case
    return RequestValidator(auth_token).validate(url, form, signature, algorithm=get_signature_algorithm(settings))
