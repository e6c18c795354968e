"""The support and SLA policy as a versioned document (DESIGN.md §3-§8, §11).

Pure: no I/O, no Temporal, no holiday lookups. Every value a ticket decides with lives in
one `TicketRules` document per policy version: the targets and calendars intake copies into
the entitlement, the ladder and its triggers, where a critical incident goes and who hears of
it, routing and paging, the permission table and reach, auto-close and the handoff level.

The documents are plain JSON files (policies/<version>.json, validated by `TicketRules`,
whose JSON schema is policies/schema.json). They are read once, at the start of a process
(`policies.install()`: the worker, the API, the CLI, the tests), never at the import of a
workflow module, and registered here. Each registered document must match the fingerprint
this build pins for its version (`RELEASED`): a document edited in place is refused at start,
so an open ticket, and the replay of its history, never decides with anything but the
version it pinned at intake. A change is a new version, and only tickets filed after it run
under it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import time
from typing import Annotated, Any, Final, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from workflows.calendars import Hours, describe_duration
from workflows.enums import (
    Audience,
    Category,
    Channel,
    CoverageCalendar,
    EscalationTrigger,
    HandoffCategory,
    NoticeChannel,
    OwningLine,
    ProductType,
    Role,
    Severity,
    Tier,
)
from workflows.permissions import Capability, Grant, Reach
from workflows.terms import ResponseTarget

# The version intake pins on a ticket filed now.
POLICY_VERSION: Final = "2026.12-2"

# The fingerprint of every released version's document. A version is never edited in place:
# `register` refuses a document whose fingerprint differs from the one pinned here.
RELEASED: Final[dict[str, str]] = {
    "2026.11-2": "f3d9881a85bceff222b90407a64f0299eb22825e542adfd5a59b522b7e773862",
    # Issue 17 §8: support escalates at most one level above its own (critical_production_incident
    # anywhere); while ConnectSoft owns a partner ticket the partner only raises the severity,
    # closes with a reason, and does not resolve.
    "2026.12-1": "33b8ddfcaee3671d409ba5b720a083efc0662e52d562ab6782d9852f95ce8b26",
    # Issue 19 (DESIGN.md §11, §13): the incident rows (support and admins manage incidents; a
    # partner reads those touching its customers' tickets, limited to them).
    "2026.12-2": "3403f4e3b6de28c1a222e53cd7173d69d03634c0cb2b31477074a3b6fb76c37b",
}


class UnknownPolicyVersion(LookupError):
    """A ticket pinned a policy version this process does not know (a newer deploy filed it)."""


class PolicyMismatch(ValueError):
    """A policy document whose fingerprint is not the one this build released for its version."""


def _parse_hours(value: Any) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", value)
        if match is None:
            raise ValueError("hours are 'HH:MM-HH:MM', e.g. '09:00-17:00'")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        return Hours(time(h1, m1), time(h2, m2))
    return value


DayHours = Annotated[
    Hours,
    BeforeValidator(_parse_hours),
    PlainSerializer(lambda hours: f"{hours.opens:%H:%M}-{hours.closes:%H:%M}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d\d:\d\d-\d\d:\d\d$"}),
]


Member = TypeVar("Member")
# A set, written as a sorted list: the document (and its fingerprint) never depends on the
# order a set happens to iterate in.
SortedSet = Annotated[
    frozenset[Member], PlainSerializer(lambda values: sorted(values), return_type=list[Any])
]


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Document):
    """N minutes of open time on a coverage calendar; a non-binding target is best effort."""

    minutes: int = Field(ge=0)
    calendar: CoverageCalendar
    binding: bool = True


class NoticeRoute(_Document):
    audiences: tuple[Audience, ...]
    channel: NoticeChannel
    when: str


# The fields of TicketRules that only intake reads (workflows/entitlement.py builds a ticket's
# entitlement from them, and the machine reads the copies there), besides the version and its
# prose. Two versions equal in every other field run a ticket with equal entitlements alike:
# what-if skips the second run then (workflows/whatif.py). tests/test_whatif.py checks that the
# machine reads none of them from the rules.
INTAKE_ONLY_FIELDS: Final = frozenset(
    {
        "version",
        "notes",
        "response_targets",
        "best_effort_label",
        "bespoke_response_target",
        "periodic_updates",
        "warn_ratio",
        "uptime_targets",
        "channels",
        "max_level",
        "out_of_scope",
        "handoff_categories",
    }
)


class TicketRules(_Document):
    """One policy version: everything a ticket decides with that its entitlement does not carry,
    and the defaults intake copies into the entitlement."""

    version: str
    notes: dict[str, str] = Field(default_factory=dict, description="Prose for people; decides nothing.")

    # --- Intake: copied into a ticket's entitlement (DESIGN.md §4, §7) ---
    response_targets: dict[Tier, dict[Severity, Target]]
    # The label of a non-binding (best-effort) target.
    best_effort_label: str
    # Factory-built: the project's SLA for every severity and tier unless the contract says otherwise.
    bespoke_response_target: Target
    periodic_updates: dict[Tier, dict[Severity, Target]]
    warn_ratio: float = Field(gt=0, lt=1)
    uptime_targets: dict[ProductType, dict[Tier, float | None]]
    channels: dict[Tier, list[Channel]]
    max_level: dict[Tier, int]
    out_of_scope: dict[Category, str]
    handoff_categories: list[HandoffCategory]
    # Request types that are never more urgent than Sev 4.
    low_only_categories: SortedSet[Category]

    # --- The ladder (DESIGN.md §5) ---
    level_names: dict[int, str]
    level_audiences: dict[int, Audience]
    # A breach at the top of the ladder goes to the lead of the top entitled level, keyed by
    # the entitlement's max level.
    top_of_ladder_audiences: dict[int, Audience]
    escalation_triggers: dict[int, tuple[EscalationTrigger, ...]]
    system_triggers: SortedSet[EscalationTrigger]
    # Where a Sev 1 goes, by tier, within the entitlement; other severities start at L1.
    critical_intake_levels: dict[Tier, int]
    # Who else hears of a Sev 1 routed by ConnectSoft, once the entitlement reaches a level.
    critical_audiences_by_max_level: dict[int, Audience]
    # Who gets the heads-up of a Sev 1 on a partner's first line.
    partner_critical_heads_up: Audience
    # The level a partner's handoff lands on at least.
    handoff_level: int = Field(ge=1, le=4)
    auto_close_after_resolved_days: int = Field(ge=0)

    # --- Calendars (DESIGN.md §3) ---
    calendar_hours: dict[CoverageCalendar, DayHours]
    # Public holidays stay pinned at least this many days ahead of now and of every deadline.
    holidays_ahead_days: int = Field(ge=1)

    # --- Routing and paging ---
    routes: tuple[NoticeRoute, ...]
    # Sev 1 at intake pages on-call for these tiers; a breach of ConnectSoft's clocks pages it
    # while the ticket is at these levels.
    page_sev1_tiers: SortedSet[Tier]
    page_breach_levels: SortedSet[int]
    # Whose page a line's acknowledgement settles; resolving or closing settles them all.
    line_pages: dict[OwningLine, Audience]
    paged_audiences: tuple[Audience, ...]

    # --- Who may do what (DESIGN.md §11) ---
    reach: dict[Role, Reach]
    permissions: dict[Capability, dict[Role, Grant]]
    forbidden_because: dict[Capability, dict[Role, str]] = Field(default_factory=dict)
    # Triggers a support engineer may name to escalate past one level above its own.
    escalate_any_level_triggers: SortedSet[EscalationTrigger] = frozenset()

    def level_for_trigger(self, trigger: EscalationTrigger) -> int | None:
        for level, triggers in self.escalation_triggers.items():
            if trigger in triggers:
                return level
        return None

    def intake_level(self, tier: Tier, severity: Severity) -> int:
        """Always escalate critical incidents immediately (DESIGN.md §5)."""
        return self.critical_intake_levels[tier] if severity == Severity.CRITICAL else 1

    def channel_for(self, audience: Audience) -> NoticeChannel:
        for route in self.routes:
            if audience in route.audiences:
                return route.channel
        raise LookupError(f"policy {self.version} routes no notices to {audience.value}")

    def target(self, target: Target) -> ResponseTarget:
        """A target as a ticket's entitlement carries it, with its label."""
        if not target.binding:
            label = self.best_effort_label
        else:
            label = describe_duration(target.minutes, target.calendar)
            if target.calendar != CoverageCalendar.BUSINESS:
                label = f"{label} {target.calendar}"
        return ResponseTarget(
            minutes=target.minutes, calendar=target.calendar, binding=target.binding, label=label
        )

    def document(self) -> dict[str, Any]:
        """The version as plain JSON data: what GET /policy serves and the fingerprint hashes."""
        return self.model_dump(mode="json")

    def fingerprint(self) -> str:
        canonical = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# --- The registry: filled at process start by policies.install() ------------------------------

_REGISTRY: dict[str, TicketRules] = {}
_FINGERPRINTS: dict[str, str] = {}
# Candidate documents a what-if simulation runs under (workflows/whatif.py), by their own key:
# known to the calling context only, never registered, so no ticket can pin one.
_CANDIDATES: ContextVar[dict[str, TicketRules] | None] = ContextVar("policy_candidates", default=None)
CANDIDATE_PREFIX: Final = "candidate:"


@contextmanager
def candidate(rules: TicketRules) -> Iterator[str]:
    """Make a candidate document known to this context (not the registry) while it runs; yields
    the version key an entitlement names to decide with it (`candidate:<fingerprint>`)."""
    key = f"{CANDIDATE_PREFIX}{rules.fingerprint()}"
    token = _CANDIDATES.set({**(_CANDIDATES.get() or {}), key: rules})
    try:
        yield key
    finally:
        _CANDIDATES.reset(token)


def register(rules: TicketRules, *, released: dict[str, str] | None = None) -> None:
    """Make a version known to this process, if its document is the released one."""
    pinned = (RELEASED if released is None else released).get(rules.version)
    if pinned is None:
        raise PolicyMismatch(f"Policy version {rules.version!r} is not released by this build.")
    found = rules.fingerprint()
    if found != pinned:
        raise PolicyMismatch(
            f"The document of policy version {rules.version!r} changed in place (fingerprint "
            f"{found}, released {pinned}): add a new version instead."
        )
    _REGISTRY[rules.version] = rules
    _FINGERPRINTS[rules.version] = found


def registered() -> dict[str, TicketRules]:
    return dict(_REGISTRY)


def rules_for(version: str, fingerprint: str | None = None) -> TicketRules:
    """The frozen rules of a pinned policy version (and fingerprint, where the ticket has one)."""
    if version.startswith(CANDIDATE_PREFIX):
        found = (_CANDIDATES.get() or {}).get(version)
        if found is None:
            raise UnknownPolicyVersion(f"Candidate policy {version!r} is not under simulation here.")
        return found
    try:
        rules = _REGISTRY[version]
    except KeyError:
        known = ", ".join(_REGISTRY) or "none: policies.install() was not called"
        raise UnknownPolicyVersion(
            f"No policy version {version!r} in this build (it knows {known}); run a worker that has it."
        ) from None
    if fingerprint is not None and fingerprint != _FINGERPRINTS[version]:
        raise PolicyMismatch(
            f"The ticket pinned policy {version!r} with fingerprint {fingerprint}; this process "
            f"has {_FINGERPRINTS[version]}."
        )
    return rules


def fingerprint_of(version: str) -> str:
    rules_for(version)
    return _FINGERPRINTS[version]


# The newest version an admin published (`escalator policy publish`, store/published_policies.py),
# when there is one: it replaces POLICY_VERSION for tickets filed from then on.
_published_current: str | None = None


def register_published(rules: TicketRules, fingerprint: str) -> None:
    """Make a published version known to this process. Its document must still have the
    fingerprint recorded when it was published: a row edited in place is refused."""
    if rules.version in RELEASED:
        raise PolicyMismatch(f"Policy version {rules.version!r} is released by this build, not published.")
    register(rules, released={rules.version: fingerprint})


def set_current(version: str | None) -> None:
    """Tickets filed from now on pin `version` (a registered one), or POLICY_VERSION with None."""
    global _published_current
    if version is not None:
        rules_for(version)
    _published_current = version


def current_version() -> str:
    return _published_current or POLICY_VERSION


def current() -> TicketRules:
    """The version a ticket filed now pins."""
    return rules_for(current_version())
