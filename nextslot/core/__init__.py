"""The booking service: availability, book, hold, reschedule, cancel, confirm, no-show."""
