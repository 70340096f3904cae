"""The payment provider this installation uses, built once from Settings."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from nextslot.payments.base import PaymentProvider
from nextslot.payments.local_checkout import LocalCheckout
from nextslot.payments.stripe_checkout import StripeCheckout
from nextslot.settings import Settings


def build_provider(settings: Settings, secret: str) -> PaymentProvider:
    if settings.payment_provider == "stripe":
        if not (settings.stripe_api_key and settings.stripe_webhook_secret):
            raise ValueError("NEXTSLOT_PAYMENT_PROVIDER=stripe needs NEXTSLOT_STRIPE_API_KEY and "
                             "NEXTSLOT_STRIPE_WEBHOOK_SECRET")
        return StripeCheckout(settings.stripe_api_key, settings.stripe_webhook_secret, settings.stripe_api_base)
    if settings.payment_provider == "local":
        return LocalCheckout(secret, settings.public_url)
    raise ValueError(f"unknown payment provider '{settings.payment_provider}': use local or stripe")


def takes_no_money_in_public(settings: Settings) -> bool:
    """The built-in provider confirms deposits with no money taken: right for the demo and tests on loopback,
    a trap on an address customers can reach."""
    return settings.payment_provider == "local" and not is_loopback(settings.public_url)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it resolves to who knows where
        return False
