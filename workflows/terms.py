"""A customer's contract terms and what a ticket pins of them: targets, the entitlement, the
deadline quote, and the holidays an entitlement pins (activity payloads). No Temporal imports.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from workflows.enums import Channel, CoverageCalendar, ProductType, Severity, Tier
from workflows.payload import Payload


class ResponseTarget(Payload):
    """N minutes of open time on a coverage calendar."""

    minutes: int = Field(ge=0)
    calendar: CoverageCalendar
    binding: bool = True
    label: str = ""


class TargetOverrides(Payload):
    """Per-contract overrides of policy targets, keyed by severity ("1".."4")."""

    response: dict[str, ResponseTarget] = Field(default_factory=dict)
    handoff: dict[str, ResponseTarget] = Field(default_factory=dict)
    resolution: dict[str, ResponseTarget] = Field(default_factory=dict)
    periodic_update: dict[str, ResponseTarget] = Field(default_factory=dict)
    warn_ratio: float | None = Field(default=None, gt=0, lt=1)
    # The contract's own monthly uptime target in percent (partner-defined, or negotiated).
    uptime: float | None = Field(default=None, gt=0, le=100)


class ContractTerms(Payload):
    """A customer's contract as the catalog stores it. Intake turns it into an Entitlement."""

    contract_id: str
    customer_id: str
    customer_name: str
    tier: Tier
    product_type: ProductType
    timezone: str = "UTC"
    country: str | None = None
    # ISO 3166-2, e.g. "GB-ENG": regional holidays on top of the nationwide ones (DESIGN.md §3).
    subdivision: str | None = None
    coverage_24x7: bool = False
    partner_id: str | None = None
    # The partner's own agreement with ConnectSoft (DESIGN.md §6): its tier and its 24/7
    # option set what ConnectSoft owes on the partner's tickets.
    partner_tier: Tier | None = None
    partner_coverage_24x7: bool = False
    project: str | None = None
    overrides: TargetOverrides = Field(default_factory=TargetOverrides)
    revision: int = 1


class Entitlement(Payload):
    """The contract terms a ticket runs under, pinned at intake.

    The workflow never reads files or the database to learn its SLA: everything it needs,
    holidays included, is in here.
    """

    policy_version: str
    # The fingerprint of the policy document pinned (workflows/policy.py); None on tickets
    # filed before it was recorded.
    policy_fingerprint: str | None = None
    contract_id: str
    contract_revision: int = 1
    tier: Tier
    product_type: ProductType
    timezone: str = "UTC"
    country: str | None = None
    # ISO 3166-2 ("GB-ENG"): `holidays` are then the subdivision's (DESIGN.md §3).
    subdivision: str | None = None
    holidays: list[date] = Field(default_factory=list)
    # `holidays` holds every public holiday of `country` before this local date. The workflow
    # pins more years (an activity) before any clock could count past it. None: no country,
    # so no holidays to pin.
    holidays_until: date | None = None
    # The IANA time zone data release (e.g. "2025b") intake converted local times with; None
    # on tickets filed before it was recorded.
    tzdata_version: str | None = None
    coverage_24x7: bool = False
    # Keyed by severity number as a string ("1".."4") so the JSON form is stable.
    response_targets: dict[str, ResponseTarget]
    # ConnectSoft's second-line targets after a partner handoff.
    handoff_targets: dict[str, ResponseTarget] = Field(default_factory=dict)
    resolution_targets: dict[str, ResponseTarget] = Field(default_factory=dict)
    periodic_update: dict[str, ResponseTarget] = Field(default_factory=dict)
    warn_ratio: float = 0.75
    max_level: int = Field(ge=1, le=4)
    channels: list[Channel]
    partner_id: str | None = None
    # On a partner ticket, the partner's agreement with ConnectSoft (DESIGN.md §6): ConnectSoft's
    # handoff targets, ladder top, channels and Sev 1 routing follow it; the first line's
    # targets follow `tier` and `coverage_24x7`, the customer's contract with the partner.
    # None on tickets filed before it was pinned: those ran everything on `tier`.
    partner_tier: Tier | None = None
    partner_coverage_24x7: bool = False
    project: str | None = None

    def response_target(self, severity: Severity) -> ResponseTarget:
        return self.response_targets[str(int(severity))]

    @property
    def connectsoft_tier(self) -> Tier:
        """The tier of the agreement ConnectSoft serves this ticket under (DESIGN.md §6)."""
        return self.partner_tier or self.tier


class DeadlineQuote(Payload):
    """When a first response is due under the default policy: for sales and customers."""

    response_due: datetime
    target: str
    target_minutes: int
    calendar: CoverageCalendar
    binding: bool
    policy_version: str


class Terms(Payload):
    """The few pinned terms a ticket answer shows: which contract, policy and ladder it runs under."""

    policy_version: str
    # The fingerprint of the policy document pinned (workflows/policy.py); None on tickets
    # filed before it was recorded.
    policy_fingerprint: str | None = None
    contract_id: str
    contract_revision: int
    tier: Tier
    product_type: ProductType
    timezone: str
    country: str | None
    coverage_24x7: bool
    max_level: int
    channels: list[Channel]
    partner_id: str | None
    subdivision: str | None = None
    partner_tier: Tier | None = None
    partner_coverage_24x7: bool = False


class HolidayYears(Payload):
    """Activity input: the public holidays of `country` (and of its ISO 3166-2 `subdivision`,
    if the contract names one) in the years [first_year, stop_year)."""

    country: str
    first_year: int
    stop_year: int
    subdivision: str | None = None


class PinnedHolidays(Payload):
    """Activity result: the holiday dates to pin, for the years asked."""

    dates: list[date]
