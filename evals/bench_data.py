"""The benchmark's businesses, and bulk seeding of a busy calendar straight into PostgreSQL.

Seeding is not what is measured, so it bypasses the core: COPY into customers, bookings and
claims. The claims still go through the claim guard trigger and the exclusion constraint, so the
generated intervals never overlap on one resource.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from nextslot.core.instants import wall_to_utc
from nextslot.schemas.config import BusinessConfig
from nextslot.schemas.config_fields import MAX_RESOURCES

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# the busy business: 25 staff and 25 rooms in 5 teams, one service per team
TEAMS = 5
TEAM_SIZE = 5
OPEN_HOUR, CLOSE_HOUR = 8, 20  # every day, business-local
SESSION = 45  # minutes of service, then BUFFER of clean-up: each booking occupies one whole hour
BUFFER = 15
BUSY_ZONE = "Europe/London"
SEED_DAYS = 90


@dataclass(frozen=True)
class Seeded:
    resources: int
    bookings: int
    claims: int
    customers: int
    first_day: date
    last_day: date


def staff_key(n: int) -> str:
    return f"staff-{n:02d}"


def room_key(n: int) -> str:
    return f"room-{n:02d}"


def team_service(team: int) -> str:
    return f"treatment-{team + 1}"


def busy_config() -> BusinessConfig:
    """50 resources; each service needs one of its team's 5 staff and one of its 5 rooms."""
    people = TEAMS * TEAM_SIZE
    return BusinessConfig.model_validate({
        "business": {"slug": "bench-clinic", "name": "Bench Clinic", "timezone": BUSY_ZONE, "country": "GB"},
        "hours": {day: [f"{OPEN_HOUR:02d}:00-{CLOSE_HOUR:02d}:00"] for day in WEEK},
        "resources": [{"key": staff_key(n), "name": f"Practitioner {n}", "kind": "staff"} for n in range(people)]
        + [{"key": room_key(n), "name": f"Room {n}", "kind": "room"} for n in range(people)],
        "services": [
            {"key": team_service(t), "name": f"Treatment {t + 1}", "duration": SESSION, "buffer_after": BUFFER,
             "step": 15, "min_notice": 60, "horizon_days": SEED_DAYS + 30,
             "requires": [
                 {"label": "practitioner", "one_of": [staff_key(t * TEAM_SIZE + i) for i in range(TEAM_SIZE)]},
                 {"label": "room", "one_of": [room_key(t * TEAM_SIZE + i) for i in range(TEAM_SIZE)]},
             ]}
            for t in range(TEAMS)
        ],
    })


def round_the_clock(slug: str, desks: list[str], services: dict[str, str]) -> BusinessConfig:
    """A UTC business open 24/7 with 30-minute services, each needing one named desk."""
    return BusinessConfig.model_validate({
        "business": {"slug": slug, "name": slug.replace("-", " ").title(), "timezone": "UTC", "country": "GB"},
        "hours": {day: ["00:00-24:00"] for day in WEEK},
        "resources": [{"key": d, "name": d, "kind": "staff"} for d in desks],
        "services": [
            {"key": key, "name": key, "duration": 30, "step": 30, "min_notice": 0, "horizon_days": 60,
             "requires": [{"label": "desk", "one_of": [desk]}]}
            for key, desk in services.items()
        ],
    })


def storm_config() -> BusinessConfig:
    """One desk everyone fights for, and a spare one each racer books once to warm up."""
    return round_the_clock("bench-storm", ["desk", "spare"], {"storm": "desk", "warm-up": "spare"})


def crowded_config(groups: int = 5) -> BusinessConfig:
    """A business at the config's limit of resources: one service needs one of each group's hundred, 24/7 on a
    5-minute step. Each search of it takes the server tens of ms of CPU, where the clinic's take a few."""
    per = MAX_RESOURCES // groups
    return BusinessConfig.model_validate({
        "business": {"slug": "bench-crowded", "name": "Crowded", "timezone": "UTC", "country": "GB"},
        "hours": {day: ["00:00-24:00"] for day in WEEK},
        "resources": [{"key": f"r{g}-{i}", "name": f"R {g}-{i}", "kind": "staff"}
                      for g in range(groups) for i in range(per)],
        "services": [{"key": "team", "name": "Team", "duration": 5, "step": 5, "min_notice": 0, "horizon_days": 366,
                      "requires": [{"label": f"g{g}", "one_of": [f"r{g}-{i}" for i in range(per)]}
                                   for g in range(groups)]}],
    })


def writers_config(writers: int) -> BusinessConfig:
    """One desk and one service per writer: concurrent writers that never contend."""
    return round_the_clock("bench-writers", [f"desk-{i}" for i in range(writers)],
                           {f"lane-{i}": f"desk-{i}" for i in range(writers)})


def seed_busy_calendar(dsn: str, business_id: int, bookings: int, today: date, rng: random.Random) -> Seeded:
    """Fill the next SEED_DAYS days with `bookings` hour-long bookings, each claiming a practitioner and a room.

    Within a team, an hour holds up to TEAM_SIZE bookings, each with a different practitioner and
    room: no resource is claimed twice in one hour, so the exclusion constraint is satisfied.
    """
    zone = ZoneInfo(BUSY_ZONE)
    days = [today + timedelta(days=d) for d in range(1, SEED_DAYS + 1)]
    hours = range(OPEN_HOUR, CLOSE_HOUR)
    places = [(day, team, hour, i) for day in days for team in range(TEAMS) for hour in hours for i in range(TEAM_SIZE)]
    if bookings > len(places):
        raise ValueError(f"at most {len(places)} bookings fit in {SEED_DAYS} days")
    per_hour: dict[tuple[date, int, int], int] = defaultdict(int)
    for day, team, hour, _ in rng.sample(places, bookings):
        per_hour[(day, team, hour)] += 1

    with psycopg.connect(dsn, options="-c timezone=UTC") as conn:
        ids = dict(conn.execute("select key, id from resources where business_id = %s", (business_id,)).fetchall())
        services = dict(conn.execute("select key, id from services where business_id = %s", (business_id,)).fetchall())
        customer_ids = next_ids(conn, "customers", max(1, bookings // 4))
        booking_ids = iter(next_ids(conn, "bookings", bookings))

        booking_rows, claim_rows = [], []
        for (day, team, hour), count in sorted(per_hour.items()):
            start = wall_to_utc(day, hour * 60, zone)
            occupied = tstzrange(start, start + timedelta(minutes=SESSION + BUFFER))
            members = [team * TEAM_SIZE + i for i in range(TEAM_SIZE)]
            for person, room in zip(rng.sample(members, count), rng.sample(members, count)):
                booking_id = next(booking_ids)
                booking_rows.append((booking_id, business_id, f"S{booking_id}", services[team_service(team)],
                                     rng.choice(customer_ids), "booked", start, start + timedelta(minutes=SESSION),
                                     "seed", "{}", ""))
                claim_rows.extend((business_id, ids[key], booking_id, occupied, True, True)
                                  for key in (staff_key(person), room_key(room)))

        with conn.cursor() as cur:
            with cur.copy("copy customers (id, business_id, name, phone, language, channels, no_show_count) "
                          "from stdin") as copy:
                for n, cid in enumerate(customer_ids):
                    copy.write_row((cid, business_id, f"Seeded {n}", f"+1555{n:07d}", "en", '["sms"]', 0))
            with cur.copy("copy bookings (id, business_id, code, service_id, customer_id, status, starts_at, "
                          "ends_at, source, intake, notes) from stdin") as copy:
                for row in booking_rows:
                    copy.write_row(row)
            with cur.copy("copy claims (business_id, resource_id, booking_id, during, active, exclusive) "
                          "from stdin") as copy:
                for row in claim_rows:
                    copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("analyze")  # fresh statistics, as a long-running database would have
    return Seeded(len(ids), len(booking_rows), len(claim_rows), len(customer_ids), days[0], days[-1])


def next_ids(conn: psycopg.Connection, table: str, count: int) -> list[int]:
    """Draw `count` ids from a table's own sequence, so later inserts by the core never collide."""
    rows = conn.execute(
        "select nextval(pg_get_serial_sequence(%s, 'id')) from generate_series(1, %s)", (table, count)
    ).fetchall()
    return [r[0] for r in rows]


def tstzrange(lower: datetime, upper: datetime) -> str:
    """A half-open range in PostgreSQL's text form."""
    return f"[{lower.isoformat()},{upper.isoformat()})"
