"""Deposits through a payment provider: Stripe Checkout, or the built-in local provider (demo and tests)."""
