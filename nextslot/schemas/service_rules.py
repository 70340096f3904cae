"""A service's booking rules in the configuration file: intake questions, deposits, no-show and cancellation
policies, staff assignment, party sizes and series."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from nextslot.schemas.config_fields import Key, Strict


class IntakeQuestion(Strict):
    """A question the customer answers when booking (the page shows it; agents and staff pass `intake`)."""

    key: Key
    label: str = Field(min_length=1, max_length=200)
    type: Literal["text", "textarea", "number", "choice", "yes_no"] = "text"
    required: bool = False
    options: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50, description="the answers to pick from (type choice)")
    help: str = Field("", max_length=300)

    @model_validator(mode="after")
    def options_fit_type(self) -> IntakeQuestion:
        if self.type == "choice" and not self.options:
            raise ValueError(f"question {self.key} is a choice and needs options")
        if self.type != "choice" and self.options:
            raise ValueError(f"question {self.key} has options but is not a choice")
        return self


class DepositConfig(Strict):
    """Paid when booking; until then the booking is held as pending payment."""

    amount: Decimal = Field(gt=0, le=100_000, decimal_places=2, description="in the currency's main unit, e.g. 20.00")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. GBP")

    @property
    def amount_minor(self) -> int:
        return int(self.amount * 100)


class NoShowPolicy(Strict):
    """'After 2 no-shows in 6 months, require a deposit': applied at the next booking on every channel."""

    after: int = Field(2, ge=1, le=20, description="no-shows that trigger the deposit")
    within_days: int = Field(180, ge=1, le=3 * 365)
    deposit: DepositConfig = Field(description="asked when the service has no deposit of its own")


class CancellationPolicy(Strict):
    """Cutoffs for self-service cancels and moves, and what a late cancel or a no-show costs.

    Self-service channels (agent tools, booking and manage pages, replies, chats) cannot move a booking
    within `move_cutoff_hours` of its start, nor cancel within `cutoff_hours` unless `late_cancel` is
    `allow` and the customer accepts the terms first. Staff (staff API, console, CLI) always can."""

    cutoff_hours: int = Field(24, ge=0, le=24 * 60, description="self-service cancels this close to the start "
                                                                 "are late")
    move_cutoff_hours: int | None = Field(None, ge=0, le=24 * 60, description="self-service moves stop this "
                                                                              "close to the start; default "
                                                                              "cutoff_hours")
    late_cancel: Literal["allow", "refuse"] = Field(
        "allow", description="allow: a late self-service cancel goes through once the customer accepts the cost; "
                             "refuse: only staff can cancel that late")
    keep_deposit: bool = Field(True, description="a paid deposit is kept on a late cancel or a no-show "
                                                 "(refund due when cancelled in time)")
    late_fee: DepositConfig | None = Field(None, description="charged for a late cancel when no deposit is kept")
    no_show_fee: DepositConfig | None = Field(None, description="charged for a no-show when no deposit is kept")

    @property
    def move_cutoff(self) -> int:
        return self.cutoff_hours if self.move_cutoff_hours is None else self.move_cutoff_hours


class AssignmentConfig(Strict):
    """How a pooled requirement ("any free stylist") picks among its free members."""

    strategy: Literal["first_free", "least_booked_day", "least_booked_week", "round_robin", "weighted"] = Field(
        "first_free", description="first_free: listed order; least_booked_day / least_booked_week: fewest "
                                  "bookings that local day or week; round_robin: given the service longest ago; "
                                  "weighted: fewest bookings that week per unit of weight")
    weights: dict[Key, Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=dict, max_length=100, description="weighted: resource key -> weight (default 1)")

    @model_validator(mode="after")
    def weights_only_when_weighted(self) -> AssignmentConfig:
        if self.weights and self.strategy != "weighted":
            raise ValueError("weights are only read by the weighted strategy")
        return self


class PartyConfig(Strict):
    """One booking for several people: for each requirement in `per_person`, a party of k takes k places of one
    member with room for them (a class, a capacity > 1 resource) or k different members (two stylists)."""

    max: int = Field(ge=1, le=100, description="the largest party one booking may be for")
    per_person: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=20, description="labels of the requirements taken once per person")


class SeriesConfig(Strict):
    """Whether customers may book the service as a recurring series ("every Tuesday for 6 weeks"), and how long."""

    allowed: bool = Field(True, description="false: every occurrence is booked on its own, on every channel")
    max_count: int = Field(52, ge=2, le=52, description="the most occurrences one series may have")
