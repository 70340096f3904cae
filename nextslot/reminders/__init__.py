"""Outbox dispatcher, channels and the scheduler process: see issue 4."""
