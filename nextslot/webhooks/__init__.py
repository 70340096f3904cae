"""Outgoing event webhooks: endpoints, signing (shared with the local checkout) and delivery.

The events themselves are written by the booking core in the same transaction as the change
(`core/events.py`, rows in `webhook_deliveries`); this package registers where they go and sends them.
"""
