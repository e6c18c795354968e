"""The support and SLA policy as data (DESIGN.md §3-§7).

Pure: no I/O, no Temporal, no holiday lookups (those happen at intake, in entitlement.py, and
in an activity when a ticket needs more years).

Two kinds of data live here, and an open ticket never reads a live table:
- `RULES`: what a ticket decides with as it runs (the ladder, the escalation triggers, where a
  critical incident goes, the audiences of notices, auto-close, the coverage calendars' hours,
  how far ahead public holidays are pinned), frozen under a policy version. Intake pins the
  version in the entitlement and the machine reads only `rules_for(version)`. A version is
  never edited in place (tests/test_policy_versions.py holds each one's fingerprint): a change
  is a new version, and only tickets filed after it run under it.
- The defaults intake copies into a ticket's entitlement (targets, channels, the top level a
  tier is entitled to, the warning ratio), and the live tables GET /policy shows. Editing them
  changes tickets filed afterwards, never an open one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import time
from types import MappingProxyType
from typing import Any

from workflows.calendars import Hours, describe_duration
from workflows.models import (
    Audience,
    Category,
    Channel,
    CoverageCalendar,
    EscalationTrigger,
    HandoffCategory,
    ProductType,
    ResponseTarget,
    Severity,
    Tier,
)


@dataclass(frozen=True)
class TicketRules:
    """Everything an open ticket decides with that its entitlement does not carry.

    Frozen: the tables are read-only views of private copies, so nothing edits a version in
    place by accident, not even a test that patches the live tables below.
    """

    version: str
    level_names: Mapping[int, str]
    level_audiences: Mapping[int, Audience]
    # A breach at the top of the ladder goes to the lead of the top entitled level
    # (DESIGN.md §5), keyed by the entitlement's max level.
    top_of_ladder_audiences: Mapping[int, Audience]
    escalation_triggers: Mapping[int, tuple[EscalationTrigger, ...]]
    system_triggers: frozenset[EscalationTrigger]
    # Where a Sev 1 goes at intake, by tier, within the entitlement; other severities start at L1.
    critical_intake_levels: Mapping[Tier, int]
    # Request types that are never more urgent than Sev 4.
    low_only_categories: frozenset[Category]
    auto_close_after_resolved_days: int
    calendar_hours: Mapping[CoverageCalendar, Hours]
    # Public holidays stay pinned at least this many days ahead of now and of every deadline.
    holidays_ahead_days: int

    def __post_init__(self) -> None:
        for each in fields(self):
            value = getattr(self, each.name)
            if isinstance(value, Mapping):
                object.__setattr__(self, each.name, MappingProxyType(dict(value)))

    def level_for_trigger(self, trigger: EscalationTrigger) -> int | None:
        for level, triggers in self.escalation_triggers.items():
            if trigger in triggers:
                return level
        return None

    def intake_level(self, tier: Tier, severity: Severity) -> int:
        """Always escalate critical incidents immediately (DESIGN.md §5)."""
        return self.critical_intake_levels[tier] if severity == Severity.CRITICAL else 1

    def document(self) -> dict[str, Any]:
        """The version as plain JSON-able data, in a stable form."""

        def plain(value: Any) -> Any:
            if isinstance(value, Mapping):
                return {str(plain(k)): plain(v) for k, v in value.items()}
            if isinstance(value, frozenset):
                return sorted(plain(v) for v in value)
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, Hours):
                return f"{value.opens:%H:%M}-{value.closes:%H:%M}"
            if isinstance(value, Tier | Audience | EscalationTrigger | Category | CoverageCalendar):
                return value.value
            return value

        return {each.name: plain(getattr(self, each.name)) for each in fields(self)}

    def fingerprint(self) -> str:
        canonical = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class UnknownPolicyVersion(LookupError):
    """A ticket pinned a policy version this code does not know (a newer deploy filed it)."""


POLICY_VERSION = "2026.11-2"

HOUR = 60
BUSINESS_DAY = 8 * HOUR
ALWAYS, EXTENDED, BUSINESS = (
    CoverageCalendar.ALWAYS,
    CoverageCalendar.EXTENDED,
    CoverageCalendar.BUSINESS,
)


def _target(minutes: int, calendar: CoverageCalendar, *, binding: bool = True) -> ResponseTarget:
    label = describe_duration(minutes, calendar)
    if calendar != BUSINESS:
        label = f"{label} {calendar}"
    return ResponseTarget(minutes=minutes, calendar=calendar, binding=binding, label=label)


BEST_EFFORT = ResponseTarget(
    minutes=3 * BUSINESS_DAY,
    calendar=BUSINESS,
    binding=False,
    label="best effort, typically 2-3 business days",
)

# First response by the line that owns the ticket (DESIGN.md §4).
RESPONSE_TARGETS: dict[Tier, dict[Severity, ResponseTarget]] = {
    Tier.PREMIUM: {
        Severity.CRITICAL: _target(1 * HOUR, ALWAYS),
        Severity.HIGH: _target(4 * HOUR, EXTENDED),
        Severity.MEDIUM: _target(1 * BUSINESS_DAY, BUSINESS),
        Severity.LOW: _target(2 * BUSINESS_DAY, BUSINESS),
    },
    Tier.STANDARD: {
        Severity.CRITICAL: _target(4 * HOUR, EXTENDED),
        Severity.HIGH: _target(1 * BUSINESS_DAY, BUSINESS),
        Severity.MEDIUM: _target(2 * BUSINESS_DAY, BUSINESS),  # assumed
        Severity.LOW: _target(3 * BUSINESS_DAY, BUSINESS),  # assumed
    },
    Tier.BASIC: {severity: BEST_EFFORT for severity in Severity},
}

# Factory-built: the project's SLA, 1 business day for every severity and every tier (Basic
# included, and binding) unless the contract sets project terms.
BESPOKE_RESPONSE = _target(1 * BUSINESS_DAY, BUSINESS)

# Premium Sev 1 gets an update at least every hour while open (assumed).
PERIODIC_UPDATES: dict[Tier, dict[Severity, ResponseTarget]] = {
    Tier.PREMIUM: {Severity.CRITICAL: _target(1 * HOUR, ALWAYS)},
}

WARN_RATIO = 0.75
AUTO_CLOSE_AFTER_RESOLVED_DAYS = 7

UPTIME_TARGETS: dict[ProductType, dict[Tier, float | None]] = {
    ProductType.PLATFORM: {Tier.BASIC: None, Tier.STANDARD: 99.5, Tier.PREMIUM: 99.9},
    ProductType.BESPOKE: {Tier.BASIC: 99.0, Tier.STANDARD: 99.0, Tier.PREMIUM: 99.0},
    # Partner-defined, on top of the platform SLA the partner's ConnectSoft tier carries.
    ProductType.PARTNER_DELIVERED: {Tier.BASIC: None, Tier.STANDARD: 99.5, Tier.PREMIUM: 99.9},
}

CHANNELS: dict[Tier, list[Channel]] = {
    Tier.BASIC: [Channel.EMAIL, Channel.PORTAL],
    Tier.STANDARD: [Channel.EMAIL, Channel.PORTAL, Channel.CHAT],
    Tier.PREMIUM: [Channel.EMAIL, Channel.PORTAL, Channel.CHAT, Channel.ON_CALL],
}

MAX_LEVEL: dict[Tier, int] = {Tier.BASIC: 2, Tier.STANDARD: 2, Tier.PREMIUM: 4}

L2_TRIGGERS = (
    EscalationTrigger.NOT_RESOLVED_IN_INITIAL_RESPONSE,
    EscalationTrigger.REQUIRES_TECHNICAL_EXPERTISE,
    EscalationTrigger.ARCHITECTURE_OR_DESIGN_QUESTION,
)
L3_TRIGGERS = (
    EscalationTrigger.CRITICAL_BUG_OR_PLATFORM_ISSUE,
    EscalationTrigger.FACTORY_RELATED_PROBLEM,
    EscalationTrigger.REQUIRES_ENGINEERING,
)
L4_TRIGGERS = (
    EscalationTrigger.CRITICAL_PRODUCTION_INCIDENT,
    EscalationTrigger.BUSINESS_CRITICAL_PROBLEM,
    EscalationTrigger.STRATEGIC_ISSUE,
)

# --- Frozen policy versions: never edit one in place; add a version and point POLICY_VERSION at it.

RULES: Mapping[str, TicketRules] = MappingProxyType(
    {
        rules.version: rules
        for rules in (
            TicketRules(
                version="2026.11-2",
                level_names={
                    1: "Support Team",
                    2: "Senior Support Engineer",
                    3: "Engineering Team",
                    4: "CTO / Leadership",
                },
                level_audiences={
                    1: Audience.SUPPORT_L1,
                    2: Audience.SUPPORT_L2,
                    3: Audience.ENGINEERING_L3,
                    4: Audience.LEADERSHIP_L4,
                },
                top_of_ladder_audiences={
                    1: Audience.SUPPORT_LEAD,
                    2: Audience.SUPPORT_LEAD,
                    3: Audience.ENGINEERING_L3,
                    4: Audience.LEADERSHIP_L4,
                },
                escalation_triggers={2: L2_TRIGGERS, 3: L3_TRIGGERS, 4: L4_TRIGGERS},
                system_triggers=frozenset(
                    {EscalationTrigger.SLA_BREACH, EscalationTrigger.CRITICAL_AT_INTAKE}
                ),
                critical_intake_levels={Tier.BASIC: 2, Tier.STANDARD: 2, Tier.PREMIUM: 3},
                low_only_categories=frozenset(
                    {Category.FEATURE_REQUEST, Category.DOCUMENTATION, Category.QUESTION}
                ),
                auto_close_after_resolved_days=7,
                calendar_hours={
                    CoverageCalendar.EXTENDED: Hours(time(8), time(20)),
                    CoverageCalendar.BUSINESS: Hours(time(9), time(17)),
                },
                holidays_ahead_days=365,
            ),
        )
    }
)


def rules_for(version: str) -> TicketRules:
    """The frozen rules of a pinned policy version."""
    try:
        return RULES[version]
    except KeyError:
        known = ", ".join(RULES)
        raise UnknownPolicyVersion(
            f"No policy version {version!r} in this build (it knows {known}); run a worker that has it."
        ) from None


# --- The live tables: copies of the current version, for intake, GET /policy and the API --------

CURRENT = rules_for(POLICY_VERSION)
LEVEL_NAMES: dict[int, str] = dict(CURRENT.level_names)
LEVEL_AUDIENCE: dict[int, Audience] = dict(CURRENT.level_audiences)
TOP_OF_LADDER_AUDIENCE: dict[int, Audience] = dict(CURRENT.top_of_ladder_audiences)
ESCALATION_TRIGGERS: dict[int, list[EscalationTrigger]] = {
    level: list(triggers) for level, triggers in CURRENT.escalation_triggers.items()
}
SYSTEM_TRIGGERS = CURRENT.system_triggers
AUTO_CLOSE_AFTER_RESOLVED_DAYS = CURRENT.auto_close_after_resolved_days

# Requests that are not support: the refusal says where they go instead.
OUT_OF_SCOPE: dict[Category, str] = {
    Category.CUSTOM_DEVELOPMENT: "Custom development is a separate service: "
    "ask your account manager for a Factory project quote.",
    Category.ARCHITECTURE_CONSULTING: "Architecture consulting is a separate service: "
    "ask your account manager to book an architecture engagement.",
    Category.TRAINING: "Training is a separate service: ask your account manager for the training catalogue.",
    Category.INTEGRATION_DEVELOPMENT: "Integration development is handled by professional "
    "services: ask your account manager for a professional-services engagement.",
}

# Request types that are never more urgent than Sev 4 (DESIGN.md §7).
LOW_ONLY_CATEGORIES = CURRENT.low_only_categories

HANDOFF_CATEGORIES = list(HandoffCategory)


def level_for_trigger(trigger: EscalationTrigger) -> int | None:
    for level, triggers in ESCALATION_TRIGGERS.items():
        if trigger in triggers:
            return level
    return None


def intake_level(tier: Tier, severity: Severity) -> int:
    """Always escalate critical incidents immediately: Premium Sev 1 to L3, others to L2."""
    return CURRENT.intake_level(tier, severity)


def policy_document() -> dict[str, object]:
    """The whole policy as one JSON-able document, for GET /policy."""

    def table(targets: dict[Severity, ResponseTarget]) -> dict[str, object]:
        return {f"sev{int(s)}": t.model_dump(mode="json") for s, t in targets.items()}

    return {
        "policy_version": POLICY_VERSION,
        "calendars": {
            "24x7": "all time; absolute elapsed time",
            "extended": "Mon-Fri 08:00-20:00 customer-local, public holidays off",
            "business": "Mon-Fri 09:00-17:00 customer-local, public holidays off",
        },
        "response_targets": {tier.value: table(RESPONSE_TARGETS[tier]) for tier in Tier},
        "bespoke_response_target": BESPOKE_RESPONSE.model_dump(mode="json"),
        "premium_24x7_option": "every Premium target runs on the 24x7 calendar",
        "periodic_updates": {tier.value: table(targets) for tier, targets in PERIODIC_UPDATES.items()},
        "resolution_targets": "none by default; contracts may set them per severity",
        "warn_ratio": WARN_RATIO,
        "auto_close_after_resolved_days": AUTO_CLOSE_AFTER_RESOLVED_DAYS,
        "uptime_targets": {
            pt.value: {tier.value: pct for tier, pct in by_tier.items()}
            for pt, by_tier in UPTIME_TARGETS.items()
        },
        "channels": {tier.value: [c.value for c in CHANNELS[tier]] for tier in Tier},
        "on_call": "Premium, Sev 1 only",
        "ladder": {
            f"L{level}": {
                "who": name,
                "entitled_tiers": [t.value for t in Tier if MAX_LEVEL[t] >= level],
                "triggers": [t.value for t in ESCALATION_TRIGGERS.get(level, [])],
            }
            for level, name in LEVEL_NAMES.items()
        },
        "sev4_only_categories": sorted(c.value for c in LOW_ONLY_CATEGORIES),
        "out_of_scope": {c.value: where for c, where in OUT_OF_SCOPE.items()},
        "handoff_categories": [c.value for c in HANDOFF_CATEGORIES],
        **_fidelity_rulings(),
    }


def _fidelity_rulings() -> dict[str, object]:
    """DESIGN.md §3, §4 and §6 as GET /policy says them: holidays by subdivision, indicative
    clocks, and the partner's own agreement."""
    return {
        "public_holidays": {
            "country": "the contract's ISO 3166-1 country: its nationwide holidays",
            "subdivision": "the contract's ISO 3166-2 subdivision (GB-ENG, US-NY, DE-BY, AU-NSW): "
            "its regional holidays too; without one, only nationwide holidays apply",
            "pinned": "at intake, with the subdivision, as explicit dates",
        },
        "indicative_targets": "a target with binding false (Basic, best effort) is indicative: it "
        "never warns, breaches or escalates; past its time it shows 'indicative, past due', and "
        "the queue sorts it after every live binding clock",
        "partner_agreement": {
            "connectsoft_owes": "on a partner ticket: the handoff targets (the partner's "
            "connectsoft_tier, on 24x7 with its own coverage_24x7 option), the ladder's top level, "
            "the channels and Sev 1 routing follow the partner's agreement with ConnectSoft",
            "partner_owes": "the first line's targets follow the customer's contract with the partner",
            "pinned": "both at intake, shown in the ticket's terms",
        },
    }
