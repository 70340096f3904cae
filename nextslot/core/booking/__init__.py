"""The booking rules: availability, book, hold, reschedule, cancel, confirm, no-show, idempotency."""
