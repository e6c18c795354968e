"""Intake: turn a contract into the entitlement snapshot a ticket runs under.

Runs in the API process, never in the workflow: public holidays come from the `holidays`
package here and are pinned into the snapshot as explicit dates.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_calendars

from workflows import policy
from workflows.clocks import due_after
from workflows.enums import Category, Channel, CoverageCalendar, ProductType, Severity, Tier
from workflows.policy import TicketRules
from workflows.terms import ContractTerms, DeadlineQuote, Entitlement, ResponseTarget


class IntakeRefused(ValueError):
    """A ticket the policy does not accept. `rule` names the rule for the caller."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@functools.cache
def tzdata_version() -> str:
    """The IANA time zone data release the zones of this process come from ("2025b").

    `zoneinfo` reads the system's zone files first and the `tzdata` package after; the version
    recorded is of whichever it uses, so the terms say which rules made a ticket's local days.
    """
    for root in zoneinfo.TZPATH:
        index = Path(root) / "tzdata.zi"
        if index.is_file():
            with index.open(encoding="utf-8") as lines:
                first = lines.readline()
            if first.startswith("# version "):
                return first.removeprefix("# version ").strip()
    try:
        import tzdata  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return "unknown"
    return str(tzdata.IANA_VERSION)


def public_holidays(country: str | None, years: range, subdivision: str | None = None) -> list[date]:
    """The public holidays of `country` in `years`: nationwide only, unless an ISO 3166-2
    `subdivision` ("GB-ENG") adds its own, such as England's Easter Monday (DESIGN.md §3)."""
    if not country:
        return []
    return list(_public_holidays(country, years.start, years.stop, subdivision))


# Bounded: a key is (country, years, subdivision), and quotes can ask for many of them.
HOLIDAY_CACHE_SIZE = 512


@functools.lru_cache(maxsize=HOLIDAY_CACHE_SIZE)
def _public_holidays(
    country: str, first_year: int, stop_year: int, subdivision: str | None = None
) -> tuple[date, ...]:
    # About 1 ms per lookup; every intake and every deadline quote asks for the same few.
    subdiv = check_subdivision(country, subdivision) if subdivision else None
    try:
        calendar = holiday_calendars.country_holidays(
            country, subdiv=subdiv, years=list(range(first_year, stop_year))
        )
    except NotImplementedError as err:
        raise IntakeRefused(
            "unknown_country", f"No public-holiday calendar for country code {country!r}."
        ) from err
    return tuple(sorted(calendar.keys()))


SUBDIVISION_CODE = re.compile(r"^([A-Z]{2})-([A-Z0-9]{1,3})$")


def check_subdivision(country: str | None, subdivision: str) -> str:
    """The `holidays` package's code for an ISO 3166-2 subdivision of `country` ("GB-ENG" ->
    "ENG"). Raises IntakeRefused("unknown_subdivision") for anything it has no calendar for."""
    hint = "Use an ISO 3166-2 code the holiday calendars know, such as 'GB-ENG', 'US-NY' or 'DE-BY'."
    found = SUBDIVISION_CODE.fullmatch(subdivision)
    if found is None:
        raise IntakeRefused("unknown_subdivision", f"{subdivision!r} is not an ISO 3166-2 code. {hint}")
    prefix, code = found.groups()
    if country is None or prefix != country.upper():
        named = f"not of {country!r}" if country else "and no country is named"
        raise IntakeRefused(
            "subdivision_country",
            f"{subdivision!r} is a subdivision of {prefix}, {named}; "
            f"name the country {prefix!r} or leave the subdivision out.",
        )
    if code not in _subdivisions_of(prefix):
        raise IntakeRefused("unknown_subdivision", f"No public-holiday calendar for {subdivision!r}. {hint}")
    return code


def is_known_country(country: str) -> bool:
    """Whether the holiday calendars know `country` (ISO 3166-1 alpha-2 or alpha-3, upper case)."""
    return country in _supported_countries()


@functools.cache
def _supported_countries() -> frozenset[str]:
    return frozenset(holiday_calendars.list_supported_countries())


@functools.lru_cache(maxsize=HOLIDAY_CACHE_SIZE)
def _subdivisions_of(country: str) -> frozenset[str]:
    return frozenset(holiday_calendars.list_supported_countries().get(country, ()))


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise IntakeRefused(
            "unknown_timezone", f"{name!r} is not an IANA time zone such as 'Europe/Berlin'."
        ) from err


def _by_severity(targets: dict[Severity, ResponseTarget]) -> dict[str, ResponseTarget]:
    return {str(int(sev)): target for sev, target in targets.items()}


def default_response_targets(
    tier: Tier, product_type: ProductType, *, coverage_24x7: bool = False, rules: TicketRules | None = None
) -> dict[Severity, ResponseTarget]:
    rules = rules or policy.current()
    if product_type == ProductType.BESPOKE:
        targets = {sev: rules.target(rules.bespoke_response_target) for sev in Severity}
    else:
        targets = {sev: rules.target(target) for sev, target in rules.response_targets[tier].items()}
    if coverage_24x7 and tier == Tier.PREMIUM:
        targets = {sev: _on_24x7(t) for sev, t in targets.items()}
    return targets


def _on_24x7(target: ResponseTarget) -> ResponseTarget:
    if target.calendar == CoverageCalendar.ALWAYS:
        return target
    hours = f"{target.minutes // 60} h" if target.minutes % 60 == 0 else f"{target.minutes} min"
    return target.model_copy(update={"calendar": CoverageCalendar.ALWAYS, "label": f"{hours} 24x7"})


def build_entitlement(
    terms: ContractTerms, *, received_at: datetime, rules: TicketRules | None = None
) -> Entitlement:
    """The snapshot of `terms` that a ticket received at `received_at` runs under: the current
    policy version's, or `rules`' (a what-if run of a candidate contract under a pinned version)."""
    check_timezone(terms.timezone)
    rules = rules or policy.current()
    # What the partner owes its customer follows the customer's contract; what ConnectSoft
    # owes on a partner ticket follows the partner's own agreement (DESIGN.md §6).
    response = default_response_targets(
        terms.tier, terms.product_type, coverage_24x7=terms.coverage_24x7, rules=rules
    )
    handoff: dict[Severity, ResponseTarget] = {}
    partner_tier: Tier | None = None
    partner_24x7 = False
    if terms.product_type == ProductType.PARTNER_DELIVERED:
        partner_tier = terms.partner_tier or terms.tier
        partner_24x7 = terms.partner_coverage_24x7 if terms.partner_tier else terms.coverage_24x7
        handoff = default_response_targets(
            partner_tier, ProductType.PLATFORM, coverage_24x7=partner_24x7, rules=rules
        )
    connectsoft_tier = partner_tier or terms.tier
    local_year = received_at.astimezone(ZoneInfo(terms.timezone)).year
    # Two years covers every target a contract can set, across New Year; the workflow pins
    # more years as the ticket lives on (machine.holidays_needed).
    pinned = range(local_year, local_year + 2)
    periodic = {
        sev: rules.target(target) for sev, target in rules.periodic_updates.get(terms.tier, {}).items()
    }
    return Entitlement(
        policy_version=rules.version,
        policy_fingerprint=policy.fingerprint_of(rules.version),
        contract_id=terms.contract_id,
        contract_revision=terms.revision,
        tier=terms.tier,
        product_type=terms.product_type,
        timezone=terms.timezone,
        country=terms.country,
        subdivision=terms.subdivision if terms.country else None,
        holidays=public_holidays(terms.country, pinned, terms.subdivision),
        holidays_until=date(pinned.stop, 1, 1) if terms.country else None,
        tzdata_version=tzdata_version(),
        coverage_24x7=terms.coverage_24x7,
        response_targets=_by_severity(response) | terms.overrides.response,
        handoff_targets=_by_severity(handoff) | terms.overrides.handoff,
        resolution_targets=dict(terms.overrides.resolution),
        periodic_update=_by_severity(periodic) | terms.overrides.periodic_update,
        warn_ratio=terms.overrides.warn_ratio or rules.warn_ratio,
        max_level=rules.max_level[connectsoft_tier],
        channels=list(rules.channels[connectsoft_tier]),
        partner_id=terms.partner_id,
        partner_tier=partner_tier,
        partner_coverage_24x7=partner_24x7,
        project=terms.project,
    )


def check_intake(
    entitlement: Entitlement, *, severity: Severity, channel: Channel, category: Category
) -> None:
    """The intake rules of DESIGN.md §7. Raises IntakeRefused naming the rule broken."""
    # A partner ticket reaches ConnectSoft on the partner's agreement's channels (DESIGN.md §6).
    agreement = "partner agreement" if entitlement.partner_tier else "contract"
    tier = f"{entitlement.connectsoft_tier.label} {agreement}"
    rules = policy.rules_for(entitlement.policy_version)
    if category in rules.out_of_scope:
        raise IntakeRefused("out_of_scope", rules.out_of_scope[category])
    if category in rules.low_only_categories and severity != Severity.LOW:
        raise IntakeRefused(
            "category_severity",
            f"A {category.value.replace('_', ' ')} is Sev 4 at most: file it with severity 4.",
        )
    if channel not in entitlement.channels:
        allowed = ", ".join(c.value for c in entitlement.channels)
        raise IntakeRefused(
            "channel_not_entitled",
            f"The {channel.value} channel is not part of a {tier}; use one of: {allowed}.",
        )
    if channel == Channel.ON_CALL and severity != Severity.CRITICAL:
        raise IntakeRefused(
            "on_call_sev1_only",
            "On-call is for Sev 1 production incidents only; file this by email or chat.",
        )


# Public-holiday data and contracts make no sense far outside the present.
QUOTE_YEARS = range(1970, 2201)


def quoted_submission(submitted_at: datetime, timezone: str) -> datetime:
    """A quote's submission time: within QUOTE_YEARS, and a naive one read as local to `timezone`."""
    zone = check_timezone(timezone)
    if not QUOTE_YEARS[0] <= submitted_at.year <= QUOTE_YEARS[-1]:
        raise IntakeRefused(
            "submitted_at_out_of_range",
            f"Quotes cover tickets submitted in {QUOTE_YEARS[0]}-{QUOTE_YEARS[-1]}; "
            f"{submitted_at.year} is outside that range.",
        )
    return submitted_at.replace(tzinfo=zone) if submitted_at.tzinfo is None else submitted_at


def quote_response_deadline(
    *,
    tier: Tier,
    severity: Severity,
    product_type: ProductType,
    submitted_at: datetime,
    timezone: str,
    country: str | None = None,
    subdivision: str | None = None,
    coverage_24x7: bool = False,
) -> DeadlineQuote:
    """The first-response deadline a ticket filed at `submitted_at` gets under default terms.

    A naive `submitted_at` is read as local time in `timezone`. This is the same arithmetic
    the ticket workflow runs, so the quote and the ticket never disagree.
    """
    submitted_at = quoted_submission(submitted_at, timezone)
    if subdivision:
        # "GB-ENG" names its country; a country given as well must be the same one.
        subdivision = subdivision.upper()
        country = country or subdivision.split("-", 1)[0]
        check_subdivision(country.upper(), subdivision)
    terms = ContractTerms(
        contract_id="quote",
        customer_id="quote",
        customer_name="quote",
        tier=tier,
        product_type=product_type,
        timezone=timezone,
        country=country.upper() if country else None,
        subdivision=subdivision,
        coverage_24x7=coverage_24x7,
        partner_tier=tier,
        partner_coverage_24x7=coverage_24x7,
    )
    return quote_first_response(terms, severity=severity, submitted_at=submitted_at)


def quote_first_response(
    terms: ContractTerms, *, severity: Severity, submitted_at: datetime
) -> DeadlineQuote:
    """When a first response to a ticket filed at `submitted_at` under `terms` is due: the
    entitlement intake would pin and the clock arithmetic the ticket runs (clocks.due_after),
    so a quote, the console's intake form and the ticket never disagree."""
    ent = build_entitlement(terms, received_at=submitted_at)
    target = ent.response_target(severity)
    due = due_after(ent, target, submitted_at, 0, policy.rules_for(ent.policy_version).calendar_hours)
    return DeadlineQuote(
        response_due=due.astimezone(UTC),
        target=target.label,
        target_minutes=target.minutes,
        calendar=target.calendar,
        binding=target.binding,
        policy_version=ent.policy_version,
    )
