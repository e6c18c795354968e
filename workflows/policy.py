"""The support and SLA policy as data (DESIGN.md §3-§7), versioned by POLICY_VERSION.

Pure: no I/O, no Temporal, no holiday lookups (those happen at intake, in entitlement.py).
The workflow reads only what intake pinned into the Entitlement; these tables are the
defaults that intake starts from.
"""

from __future__ import annotations

from workflows.calendars import describe_duration
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

LEVEL_NAMES: dict[int, str] = {
    1: "Support Team",
    2: "Senior Support Engineer",
    3: "Engineering Team",
    4: "CTO / Leadership",
}

LEVEL_AUDIENCE: dict[int, Audience] = {
    1: Audience.SUPPORT_L1,
    2: Audience.SUPPORT_L2,
    3: Audience.ENGINEERING_L3,
    4: Audience.LEADERSHIP_L4,
}

# A breach at the top of the ladder goes to the lead of the top entitled level (DESIGN.md §5):
# L4 leadership for Premium, the L2 support lead for Standard and Basic. Keyed by max level.
TOP_OF_LADDER_AUDIENCE: dict[int, Audience] = {
    1: Audience.SUPPORT_LEAD,
    2: Audience.SUPPORT_LEAD,
    3: Audience.ENGINEERING_L3,
    4: Audience.LEADERSHIP_L4,
}

ESCALATION_TRIGGERS: dict[int, list[EscalationTrigger]] = {
    2: [
        EscalationTrigger.NOT_RESOLVED_IN_INITIAL_RESPONSE,
        EscalationTrigger.REQUIRES_TECHNICAL_EXPERTISE,
        EscalationTrigger.ARCHITECTURE_OR_DESIGN_QUESTION,
    ],
    3: [
        EscalationTrigger.CRITICAL_BUG_OR_PLATFORM_ISSUE,
        EscalationTrigger.FACTORY_RELATED_PROBLEM,
        EscalationTrigger.REQUIRES_ENGINEERING,
    ],
    4: [
        EscalationTrigger.CRITICAL_PRODUCTION_INCIDENT,
        EscalationTrigger.BUSINESS_CRITICAL_PROBLEM,
        EscalationTrigger.STRATEGIC_ISSUE,
    ],
}

SYSTEM_TRIGGERS = frozenset({EscalationTrigger.SLA_BREACH, EscalationTrigger.CRITICAL_AT_INTAKE})

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
LOW_ONLY_CATEGORIES = frozenset({Category.FEATURE_REQUEST, Category.DOCUMENTATION, Category.QUESTION})

HANDOFF_CATEGORIES = list(HandoffCategory)


def level_for_trigger(trigger: EscalationTrigger) -> int | None:
    for level, triggers in ESCALATION_TRIGGERS.items():
        if trigger in triggers:
            return level
    return None


def intake_level(tier: Tier, severity: Severity) -> int:
    """Always escalate critical incidents immediately: Premium Sev 1 to L3, others to L2."""
    if severity == Severity.CRITICAL:
        return 3 if tier == Tier.PREMIUM else 2
    return 1


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
    }
