"""Webhook signatures as Twilio computes them, checked by `valid_twilio_request`."""
from twilio.request_validator import RequestValidator

from nextslot.reminders.twilio_signature import valid_twilio_request

TOKEN = "fake-auth-token"
URL = "https://book.example.com/webhooks/twilio/status"
FORM = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "ErrorCode": ""}


def test_a_request_signed_with_the_auth_token_is_valid():
    signature = RequestValidator(TOKEN).compute_signature(URL, FORM)

    assert valid_twilio_request(TOKEN, URL, FORM, signature, {"X-Twilio-Signature": signature})


def test_a_changed_form_url_or_token_is_invalid():
    signature = RequestValidator(TOKEN).compute_signature(URL, FORM)

    assert not valid_twilio_request(TOKEN, URL, {**FORM, "MessageStatus": "failed"}, signature, {})
    assert not valid_twilio_request(TOKEN, URL + "?x=1", FORM, signature, {})
    assert not valid_twilio_request("another-token", URL, FORM, signature, {})


def test_a_missing_signature_is_invalid():
    assert not valid_twilio_request(TOKEN, URL, FORM, None, {})
    assert not valid_twilio_request(TOKEN, URL, FORM, "", {})


def test_the_algorithm_comes_from_the_signature_settings_header():
    signature = RequestValidator(TOKEN).compute_signature(URL, FORM, algorithm="HMAC_SHA256")
    settings = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"

    assert valid_twilio_request(TOKEN, URL, FORM, signature, {"x-twilio-webhooks-signature-settings": settings})
    assert not valid_twilio_request(TOKEN, URL, FORM, signature, {})
