"""What the load test's clients ask for: the example businesses' services, fresh customers, popular days and the
popular slots the bursts aim at.

Every booking request is a new customer (a phone or email used once), so the database alone can tell whether
a retried request ever booked twice: no customer may have two bookings.
"""
from __future__ import annotations

import itertools
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from evals.bench_figures import BenchFailure
from evals.bench_tools import EXAMPLES, Seeded, seed
from nextslot.core.results import Slots
from nextslot.core.service import BookingService
from nextslot.schemas.commands import SlotQuery

FIRST_DAY, LAST_DAY = 2, 30  # days ahead: past the reminders' 24 h offset, within every service's horizon


@dataclass(frozen=True)
class Offer:
    """A bookable service of a seeded business, with the intake answers it requires."""

    slug: str
    api_key: str
    business_id: int
    service: str
    answers: tuple[tuple[str, str], ...] = ()


# consultation: one of two doctors and one of two rooms (up to two at a time); ultrasound: a doctor, a room
# and the one scanner; tyre swap: the garage's three-lift bay (capacity 3, checked by the claim trigger, not the
# exclusion constraint); oil change: a mechanic and the bay
SERVICES = (
    ("clinic", "consultation", (("reason", "Check-up"), ("first-visit", "no"))),
    ("clinic", "ultrasound", ()),
    ("garage", "tyre-swap", ()),
    ("garage", "oil-change", (("vehicle", "Ford Focus"), ("registration", "BENCH 01"))),
)


def seed_offers(url: str) -> list[Offer]:
    """Load the clinic and garage examples, each with an API key (MCP and the staff API)."""
    businesses: dict[str, Seeded] = {name: seed(url, EXAMPLES / f"{name}.yaml") for name in ("clinic", "garage")}
    return [Offer(businesses[b].slug, businesses[b].api_key, businesses[b].business_id, service, answers)
            for b, service, answers in SERVICES]


@dataclass(frozen=True)
class Wish:
    """One booking request as a client means it: the same key on every retry."""

    offer: Offer
    starts_at: str  # ISO 8601 in UTC, as the channels hand slots out
    key: str
    name: str
    phone: str | None
    email: str | None
    burst: bool = False


class People:
    """Fresh customers: a UK mobile or an email address never used before in this run (up to 99,999)."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)

    def wish(self, offer: Offer, starts_at: str, *, phone: bool = True, email: bool = False,
             burst: bool = False) -> Wish:
        n = next(self._numbers)
        return Wish(offer, starts_at, f"load-{secrets.token_hex(8)}", f"Load Customer {n}",
                    f"+4479112{n:05d}" if phone else None, f"customer{n}@load.example.com" if email else None, burst)


def no_whatsapp(phone: str) -> bool:
    """One number in five has no WhatsApp: its confirmations fall back to SMS."""
    return int(phone[-1]) % 5 == 0


def popular_days(rng: random.Random, count: int) -> list[date]:
    """Days many clients look at, so steady clients contend too (not only the bursts)."""
    today = datetime.now(UTC).date()
    return [today + timedelta(days=d) for d in rng.sample(range(FIRST_DAY, LAST_DAY), count)]


def any_day(rng: random.Random, hot: list[date]) -> date:
    """A popular day one time in three, else any day in the bookable range."""
    if rng.random() < 1 / 3:
        return rng.choice(hot)
    return datetime.now(UTC).date() + timedelta(days=rng.randrange(FIRST_DAY, LAST_DAY))


def burst_targets(service: BookingService, offers: list[Offer], bursts: int, rng: random.Random
                  ) -> list[tuple[Offer, str]]:
    """One popular slot per burst: a different service in turn, each burst a slot of its own."""
    targets: list[tuple[Offer, str]] = []
    pools: dict[str, Iterator[str]] = {}
    for k in range(bursts):
        offer = offers[k % len(offers)]
        if offer.service not in pools:
            pools[offer.service] = iter(open_starts(service, offer, rng))
        start = next(pools[offer.service], None)
        if start is None:
            raise BenchFailure(f"no open slot left for a burst on {offer.service}")
        targets.append((offer, start))
    return targets


def open_starts(service: BookingService, offer: Offer, rng: random.Random) -> list[str]:
    """Open starts of a service on a few random days, shuffled; none within two hours of another, so one
    burst's bookings never take another burst's slot."""
    today = datetime.now(UTC)
    starts: list[datetime] = []
    for ahead in rng.sample(range(FIRST_DAY, LAST_DAY), 6):
        day = today + timedelta(days=ahead)
        found = service.find_slots(offer.business_id, SlotQuery(service=offer.service, starts_from=day,
                                                                until=day + timedelta(days=1), limit=200))
        if isinstance(found, Slots):
            starts += [s.starts_at.utc for s in found.slots]
    apart: list[datetime] = []
    for start in sorted(starts):
        if not apart or start - apart[-1] >= timedelta(hours=2):
            apart.append(start)
    rng.shuffle(apart)
    return [s.isoformat() for s in apart]
