"""Build the long-lived objects of a process (engine, booking service, dispatcher) from Settings, once."""
from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING

from nextslot.core.service import BookingService
from nextslot.settings import Settings

if TYPE_CHECKING:
    from nextslot.core.booking.public_caps import PublicCaps
    from nextslot.core.links import Links
    from nextslot.payments.base import PaymentProvider
    from nextslot.reminders.dispatcher import Dispatcher


def build_service(settings: Settings) -> BookingService:
    from nextslot.storage.engine import build_engine, build_read_engine, build_session_factory
    from nextslot.storage.gate import DatabaseGate

    replica = build_read_engine(settings)
    return BookingService(build_session_factory(build_engine(settings)), hold_minutes=settings.hold_minutes,
                          gate=DatabaseGate(settings.database_places()),
                          payment_provider=settings.payment_provider,
                          read_session_factory=build_session_factory(replica) if replica is not None else None,
                          slot_searches_per_business=settings.rate_limit_slot_searches_per_business,
                          public_caps=public_caps(settings))


def public_caps(settings: Settings) -> PublicCaps:
    """What the public ways in may book for one contact, how long a series, and how much one sender may make a day
    (core/booking/public_caps.py)."""
    from nextslot.core.booking.public_caps import PublicCaps

    return PublicCaps(per_contact=settings.public_bookings_per_contact, series_max=settings.public_series_max,
                      per_sender=settings.public_bookings_per_day)


def build_links(settings: Settings) -> Links:
    from nextslot.core.links import Links, load_secret

    return Links(load_secret(settings.secret_key, settings.data_dir), settings.public_url)


def build_payment_provider(settings: Settings) -> PaymentProvider:
    from nextslot.core.links import load_secret
    from nextslot.payments.providers import build_provider

    return build_provider(settings, load_secret(settings.secret_key, settings.data_dir))


def build_dispatcher(settings: Settings, service: BookingService) -> Dispatcher:
    from datetime import timedelta

    from nextslot.reminders.channels import build_channels
    from nextslot.reminders.dispatcher import Dispatcher

    return Dispatcher(service.session_factory, build_channels(settings),
                      receipt_timeout=timedelta(minutes=settings.receipt_timeout_minutes), links=build_links(settings),
                      retry_after=timedelta(seconds=settings.message_retry_seconds))


def settle_after_start_up(thread_switch_ms: float) -> None:
    """Move what start-up built (modules, the app, compiled settings) out of the garbage collector's sight: the
    full passes that otherwise walk it again and again take 40-100 ms each, landing on some request's time.

    And hand the interpreter between threads every `thread_switch_ms`: a request that waits on the database many
    times waits for the interpreter after each answer, and at Python's 5 ms a neighbour's busy searches made a
    5 ms slot search take 170 ms (at 0.5 ms: 30 ms; the busy tenant's throughput is unchanged)."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(thread_switch_ms / 1000)
