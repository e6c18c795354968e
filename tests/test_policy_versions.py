"""An open ticket decides with the policy version it pinned at intake, never the live tables.

Editing the policy (here: a new version that differs in every value a ticket decides with,
made current, and every module-level table the workflow code reads patched as well) changes
the tickets filed afterwards and nothing else: open tickets decide exactly as before, and the
committed histories replay unchanged.
"""

from __future__ import annotations

import importlib
import json
import re
import types
from collections.abc import Callable, Mapping, Set
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

import policies
from store.db import OutboxNotification
from tests.factories import ADMIN, SUPPORT, close_when_done, opened_ticket
from tests.fixtures_temporal import WorkerFactory, events_so_far, skip_to
from tests.test_workflow_determinism import WORKFLOW_MODULES
from worker.worker import TICKET_WORKFLOWS
from workflows import machine, policy
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.base import Refusal
from workflows.actions.change_severity import ChangeSeverity
from workflows.actions.comment import Comment
from workflows.actions.escalate import Escalate
from workflows.actions.handback import Handback
from workflows.actions.handoff import Handoff
from workflows.actions.resolve import Resolve
from workflows.enums import (
    Audience,
    Category,
    CoverageCalendar,
    EscalationTrigger,
    HandoffCategory,
    NoticeChannel,
    OwningLine,
    Role,
    Severity,
    Tier,
)
from workflows.models import TicketOpened
from workflows.permissions import Grant, Reach
from workflows.policy import PolicyMismatch, TicketRules, UnknownPolicyVersion, rules_for
from workflows.terms import ResponseTarget
from workflows.ticket import TicketWorkflow

# Every version ever released, with the fingerprint of its document. A version is never edited
# in place: a change is a new version here (and POLICY_VERSION pointing at it), so that tickets
# filed under the old one keep deciding as they did.
RELEASED = {
    "2026.11-2": "f3d9881a85bceff222b90407a64f0299eb22825e542adfd5a59b522b7e773862",
    "2026.12-1": "33b8ddfcaee3671d409ba5b720a083efc0662e52d562ab6782d9852f95ce8b26",
    "2026.12-2": "3403f4e3b6de28c1a222e53cd7173d69d03634c0cb2b31477074a3b6fb76c37b",
}

HISTORIES = sorted((Path(__file__).parent / "histories").glob("**/*.json"))
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday

# Module-level tables of the workflow's code that are not rules: words (the names of clocks and
# lines in sentences), the kinds of things (which clocks are responses, which states are
# closed, which events count as escalations), the action table itself, and the registry.
NOT_RULES = {
    "ticket": {"ACTIONS", "CLOCK_NAMES"},
    "machine": {"ACTIONS", "CLOCK_NAMES", "RESPONSE_CLOCKS"},
    # Every owning line, the enum itself as a set (made once, not per acknowledgement).
    "actions.lines": {"RESPONSE_CLOCKS", "_EVERY_LINE"},
    # The console forms an action's definition describes are words and widgets.
    **{
        f"actions.{name}": {
            "ACTIONS",
            "CLOCK_NAMES",
            "RESPONSE_CLOCKS",
            "CLOSED_STATES",
            f"{name.upper()}_FORM",
        }
        for name in ("comment", "escalate", "handoff", "change_severity", "outage")
    },
    **{
        f"actions.{name}": {"ACTIONS", "CLOCK_NAMES", "RESPONSE_CLOCKS", "CLOSED_STATES"}
        for name in (
            "acknowledge",
            "handback",
            "wait_on_customer",
            "resume",
            "resolve",
            "reopen",
            "close",
            "incident",
        )
    },
    # A clock's statuses that count as live are what a status means, not a rule.
    "clocks": {"CLOSED_STATES", "RESPONSE_CLOCKS", "CLOCK_NAMES", "LIVE_STATUSES"},
    # The order payloads were recorded in is a serialization detail, not a rule.
    "models": {"ESCALATION_KINDS", "LIVE_STATUSES", "RECORDED_ORDER", "CLOSED_STATES"},
    # Which audiences are ConnectSoft's own teams is what an audience is; only the delivery
    # activity groups notices by it (activities/delivery.py), never the workflow.
    "enums": {"CLOSED_STATES", "LINE_LABELS", "INTERNAL_AUDIENCES"},
    # The keys to register, and which of them a ticket unsets when it has no value: names.
    "search_attributes": {"ALL_KEYS", "UNSET_WHEN_ABSENT"},
    # The digest's words and which audiences are ConnectSoft's own teams: read by the delivery
    # and digest activities; the workflow imports the module for its payload models only.
    "incident_notices": {"CLOCK_NAMES", "_CLOCK_PLURALS", "INTERNAL_AUDIENCES", "_EVENT_NOUNS"},
    # INTAKE_ONLY_FIELDS names fields of the document itself (what-if's run-once test).
    "policy": {"RELEASED", "_REGISTRY", "_FINGERPRINTS", "INTAKE_ONLY_FIELDS"},
    # Only for callers that name no hours; a ticket counts on its version's (edited below).
}


def _everything_else(rules: TicketRules) -> dict[str, Any]:
    """A document that differs from `rules` in every value a ticket decides with."""
    eight_hours = {"minutes": 480, "calendar": "24x7", "binding": True}
    every = {str(int(s)): eight_hours for s in Severity}
    return {
        **rules.document(),
        "version": "2099.1-edited",
        "response_targets": {tier.value: every for tier in Tier},
        "best_effort_label": "whenever",
        "bespoke_response_target": eight_hours,
        "periodic_updates": {},
        "warn_ratio": 0.5,
        "uptime_targets": {},
        "channels": {tier.value: ["email"] for tier in Tier},
        "max_level": {tier.value: 2 for tier in Tier},
        "out_of_scope": {},
        "handoff_categories": [HandoffCategory.SECURITY_ISSUE.value],
        "low_only_categories": [],
        "level_names": {"1": "First", "2": "Second", "3": "Third", "4": "Fourth"},
        "level_audiences": {"1": "support_lead", "2": "on_call", "3": "support_l1", "4": "support_l2"},
        "top_of_ladder_audiences": {str(level): "on_call" for level in (1, 2, 3, 4)},
        "escalation_triggers": {
            "2": ["strategic_issue"],
            "3": ["requires_technical_expertise"],
            "4": ["requires_engineering"],
        },
        "system_triggers": ["sla_breach"],
        "critical_intake_levels": {tier.value: 1 for tier in Tier},
        "critical_audiences_by_max_level": {"1": "support_lead"},
        "partner_critical_heads_up": "leadership_l4",
        "handoff_level": 3,
        "auto_close_after_resolved_days": 1,
        "calendar_hours": {"extended": "06:00-22:00", "business": "07:00-19:00"},
        "holidays_ahead_days": 30,
        "routes": [{"audiences": [a.value for a in Audience], "channel": "email", "when": "always"}],
        "page_sev1_tiers": [tier.value for tier in Tier],
        "page_breach_levels": [1, 2],
        "line_pages": {"connectsoft": "partner_on_call", "partner": "on_call"},
        "paged_audiences": ["support_lead"],
        "reach": {role.value: Reach.OWN_CUSTOMER.value for role in Role if role != Role.SYSTEM},
        "permissions": {
            cap: {role: Grant.NO.value for role in row}
            for cap, row in rules.document()["permissions"].items()
        },
        "forbidden_because": {},
        "escalate_any_level_triggers": [t.value for t in EscalationTrigger],
    }


EDITED = TicketRules.model_validate(_everything_else(rules_for("2026.11-2")))


def _tables(module: str) -> dict[str, Any]:
    found = {}
    for name, value in vars(importlib.import_module(f"workflows.{module}")).items():
        if name.startswith("__") or callable(value) or isinstance(value, types.ModuleType | str):
            continue
        if isinstance(value, Mapping | Set | tuple | list):
            found[name] = value
    return found


def test_every_table_the_workflow_reads_is_in_the_policy_document() -> None:
    """A new module-level table in the workflow's code is either a rule (then it belongs in the
    policy document) or it is listed in NOT_RULES, with the reason it decides nothing."""
    for module in WORKFLOW_MODULES:
        assert set(_tables(module)) <= NOT_RULES.get(module, set()), module


@pytest.fixture
def edit_the_policy(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make EDITED the current version, and rewrite every table the workflow code reads that
    is not in a policy document."""

    def edit() -> None:
        monkeypatch.setattr(policy, "RELEASED", {**policy.RELEASED, EDITED.version: EDITED.fingerprint()})
        monkeypatch.setattr(policy, "_REGISTRY", dict(policy._REGISTRY))
        monkeypatch.setattr(policy, "_FINGERPRINTS", dict(policy._FINGERPRINTS))
        policy.register(EDITED)
        monkeypatch.setattr(policy, "POLICY_VERSION", EDITED.version)

    return edit


def test_every_released_policy_version_is_frozen() -> None:
    fingerprints = {version: rules.fingerprint() for version, rules in policy.registered().items()}
    assert fingerprints == RELEASED == policy.RELEASED, (
        "a released policy version changed in place: add a new version instead, point "
        "POLICY_VERSION at it, and list its fingerprint in RELEASED"
    )
    assert policy.POLICY_VERSION in policy.registered()


def test_each_document_on_disk_is_the_version_it_names_and_the_schema_is_committed() -> None:
    for path in policies.paths():
        document = json.loads(path.read_text())
        assert document == rules_for(path.stem).document()
    assert [path.stem for path in policies.paths()] == sorted(RELEASED)
    assert policies.SCHEMA.read_text() == policies.schema_text(), "regenerate policies/schema.json"


def test_a_document_edited_in_place_is_refused_at_start() -> None:
    edited = TicketRules.model_validate({**rules_for("2026.11-2").document(), "handoff_level": 3})
    with pytest.raises(PolicyMismatch, match=r"changed in place"):
        policy.register(edited)
    assert rules_for("2026.11-2").handoff_level == 2
    with pytest.raises(PolicyMismatch, match=r"not released"):
        policy.register(EDITED)


def test_a_version_cannot_be_edited_through_its_tables() -> None:
    rules = rules_for(policy.POLICY_VERSION)
    with pytest.raises(ValueError):
        rules.handoff_level = 4  # type: ignore[misc]
    with pytest.raises(PolicyMismatch, match=r"fingerprint"):
        rules_for(policy.POLICY_VERSION, "0" * 64)


def test_an_unknown_version_is_refused_with_a_sentence() -> None:
    with pytest.raises(UnknownPolicyVersion, match=r"No policy version '2001\.1' in this build .*\.$"):
        rules_for("2001.1")


def test_the_old_code_tables_and_the_first_released_document_agree() -> None:
    """2026.11-2 gained the rules the code used to hold (DESIGN.md §5, §6, §11): the values are
    the code's, so tickets under it decide as before (and the histories replay)."""
    rules = rules_for("2026.11-2")
    assert rules.handoff_level == 2
    assert dict(rules.critical_audiences_by_max_level) == {4: Audience.LEADERSHIP_L4}
    assert rules.partner_critical_heads_up == Audience.SUPPORT_L2
    assert rules.page_sev1_tiers == {Tier.PREMIUM} and rules.page_breach_levels == {3, 4}
    assert dict(rules.line_pages) == {
        OwningLine.CONNECTSOFT: Audience.ON_CALL,
        OwningLine.PARTNER: Audience.PARTNER_ON_CALL,
    }
    assert rules.channel_for(Audience.ON_CALL) == NoticeChannel.PAGER
    assert rules.target(rules.response_targets[Tier.BASIC][Severity.LOW]).label == (
        "best effort, typically 2-3 business days"
    )
    assert rules.target(rules.response_targets[Tier.PREMIUM][Severity.HIGH]).label == "4 h extended"
    assert Category.QUESTION in rules.low_only_categories


def live(opened: TicketOpened) -> list[Any]:
    """A ticket's decisions through a life that touches every pinned rule: each step's state
    and notices, or the refusal."""
    at = opened.received_at
    actions: list[tuple[timedelta, Any]] = [
        (timedelta(hours=1), Handoff(actor=ADMIN, category=HandoffCategory.PLATFORM_BUG)),
        (timedelta(hours=2), Handback(actor=ADMIN, note="over to you")),
        (timedelta(hours=30), None),  # breaches and climbs
        (
            timedelta(hours=31),
            Escalate(actor=ADMIN, level=4, trigger=EscalationTrigger.BUSINESS_CRITICAL_PROBLEM),
        ),
        (timedelta(hours=31), Escalate(actor=ADMIN, level=3, trigger=EscalationTrigger.STRATEGIC_ISSUE)),
        (timedelta(hours=32), ChangeSeverity(actor=SUPPORT, severity=Severity.CRITICAL, reason="all down")),
        (timedelta(hours=40), None),  # a miss at the top of the ladder
        (timedelta(hours=41), Acknowledge(actor=ADMIN)),
        (timedelta(hours=42), Comment(actor=ADMIN, body="fixed")),
        (timedelta(hours=43), Resolve(actor=ADMIN, resolution="fixed")),
        (timedelta(days=3), None),  # not closed one day after resolving
        (timedelta(days=9), None),  # closed seven days after
    ]
    outcome = machine.open_ticket(opened)
    decisions: list[Any] = [(outcome.state.model_dump(), [n.model_dump() for n in outcome.notifications])]
    state = outcome.state
    for after, action in actions:
        try:
            if action is None:
                outcome = machine.advance(state, at + after)
            else:
                outcome = machine.apply(state, action, at + after)
        except Refusal as refusal:
            decisions.append((refusal.kind, refusal.message))
            continue
        state = outcome.state
        decisions.append((state.model_dump(), [n.model_dump() for n in outcome.notifications]))
    return decisions


def test_open_tickets_decide_the_same_after_the_policy_is_edited(edit_the_policy: Callable[[], None]) -> None:
    tickets = [
        opened_ticket(customer, severity, START)
        for customer in ("acme", "globex", "initech", "contoso")
        for severity in (1, 2)
    ]
    before = [live(opened) for opened in tickets]

    edit_the_policy()

    assert [live(opened) for opened in tickets] == before
    # The edit is real: a ticket filed now runs under the new version, and decides otherwise.
    filed_now = opened_ticket("acme", 2, START)
    assert filed_now.entitlement.policy_version == EDITED.version
    assert live(filed_now) != before[0]


async def test_committed_histories_replay_after_the_policy_is_edited(
    edit_the_policy: Callable[[], None],
) -> None:
    edit_the_policy()
    replayer = Replayer(workflows=TICKET_WORKFLOWS, data_converter=pydantic_data_converter)
    failures = []
    for path in HISTORIES:
        history = WorkflowHistory.from_json(f"ticket-{path.stem}", path.read_text())
        failures.append((path.stem, (await replayer.replay_workflow(history)).replay_failure))
    assert HISTORIES
    assert failures == [(path.stem, None) for path in HISTORIES]


async def test_a_running_ticket_keeps_its_ladder_when_the_policy_is_edited(
    edit_the_policy: Callable[[], None],
    time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        terms = opened_ticket("acme", 2, received).entitlement
        assert terms.policy_version == policy.POLICY_VERSION
        opened = opened_ticket("acme", 2, received)
        opened.entitlement = opened.entitlement.model_copy(
            update={"response_targets": {**terms.response_targets, "2": _one_hour()}}
        )
        handle = await tickets.start(opened)
        await handle.query(TicketWorkflow.state)

        edit_the_policy()
        await skip_to(env, received + timedelta(hours=1, seconds=1))

        state = await handle.query(TicketWorkflow.state)
        assert state.sla_breached and state.level == 2
        climb = next(e for e in await events_so_far(handle, workflow_db) if e.kind == "escalated")
        assert "(Senior Support Engineer)" in climb.summary
        await close_when_done(handle)

    async with workflow_db() as session:
        audiences = set(
            await session.scalars(
                select(OutboxNotification.audience).where(OutboxNotification.ticket_id == opened.ticket_id)
            )
        )
    assert Audience.SUPPORT_L2.value in audiences
    assert Audience.ON_CALL.value not in audiences  # the edited version's L2 audience


def _one_hour() -> ResponseTarget:
    return ResponseTarget(minutes=60, calendar=CoverageCalendar.ALWAYS, label="1 h 24x7")


def test_the_terms_record_the_policy_fingerprint_and_the_zone_data_release() -> None:
    ent = opened_ticket("acme", 2, START).entitlement
    assert ent.policy_version == policy.POLICY_VERSION
    assert ent.policy_fingerprint == rules_for(policy.POLICY_VERSION).fingerprint()
    # Beside the holidays: the IANA release the local days were computed with, e.g. "2025b".
    assert ent.tzdata_version is not None and re.fullmatch(r"20\d\d[a-z]", ent.tzdata_version)
    assert ent.holidays
