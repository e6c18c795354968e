"""An open ticket decides with the policy version it pinned at intake, never the live tables.

Editing the policy (here: patching every live table, and making a new version current) changes
the tickets filed afterwards and nothing else: open tickets decide exactly as before, and the
committed histories replay unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from store.db import OutboxNotification
from tests.factories import ADMIN, SUPPORT, close_when_done, opened_ticket
from tests.fixtures_temporal import WorkerFactory, events_so_far, skip_to
from worker.worker import TICKET_WORKFLOWS
from workflows import calendars, machine, policy
from workflows.calendars import Hours
from workflows.models import (
    Acknowledge,
    Audience,
    ChangeSeverity,
    Comment,
    CoverageCalendar,
    Escalate,
    EscalationTrigger,
    Resolve,
    ResponseTarget,
    Severity,
    TicketOpened,
    Tier,
)
from workflows.policy import TicketRules, UnknownPolicyVersion, rules_for
from workflows.ticket import TicketWorkflow

# Every version ever released, with the fingerprint of its rules. A version is never edited in
# place: a change is a new version here (and POLICY_VERSION pointing at it), so that tickets
# filed under the old one keep deciding as they did.
RELEASED = {
    "2026.11-2": "cb631877401d53dbc0bc280637a52f0df7d778cfe60134ee2af1fe8f9f3e4de0",
}

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday

# A new version that differs from 2026.11-2 in every rule a ticket decides with.
EDITED = TicketRules(
    version="2099.1-edited",
    level_names={1: "First", 2: "Second", 3: "Third", 4: "Fourth"},
    level_audiences={
        1: Audience.SUPPORT_LEAD,
        2: Audience.ON_CALL,
        3: Audience.SUPPORT_L1,
        4: Audience.SUPPORT_L2,
    },
    top_of_ladder_audiences={level: Audience.ON_CALL for level in (1, 2, 3, 4)},
    escalation_triggers={
        2: (EscalationTrigger.STRATEGIC_ISSUE,),
        3: (EscalationTrigger.REQUIRES_TECHNICAL_EXPERTISE,),
        4: (EscalationTrigger.REQUIRES_ENGINEERING,),
    },
    system_triggers=frozenset({EscalationTrigger.SLA_BREACH}),
    critical_intake_levels={Tier.BASIC: 1, Tier.STANDARD: 1, Tier.PREMIUM: 2},
    low_only_categories=frozenset(),
    auto_close_after_resolved_days=1,
    calendar_hours={
        CoverageCalendar.EXTENDED: Hours(time(6), time(22)),
        CoverageCalendar.BUSINESS: Hours(time(7), time(19)),
    },
    holidays_ahead_days=30,
)


@pytest.fixture
def edit_the_policy(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make EDITED the current version and rewrite every live table the old code read."""

    def edit() -> None:
        monkeypatch.setattr(policy, "RULES", MappingProxyType({**policy.RULES, EDITED.version: EDITED}))
        monkeypatch.setattr(policy, "POLICY_VERSION", EDITED.version)
        monkeypatch.setattr(policy, "CURRENT", EDITED)
        monkeypatch.setattr(policy, "LEVEL_NAMES", dict(EDITED.level_names))
        monkeypatch.setattr(policy, "LEVEL_AUDIENCE", dict(EDITED.level_audiences))
        monkeypatch.setattr(policy, "TOP_OF_LADDER_AUDIENCE", dict(EDITED.top_of_ladder_audiences))
        monkeypatch.setattr(
            policy, "ESCALATION_TRIGGERS", {k: list(v) for k, v in EDITED.escalation_triggers.items()}
        )
        monkeypatch.setattr(policy, "SYSTEM_TRIGGERS", EDITED.system_triggers)
        monkeypatch.setattr(policy, "LOW_ONLY_CATEGORIES", EDITED.low_only_categories)
        monkeypatch.setattr(policy, "AUTO_CLOSE_AFTER_RESOLVED_DAYS", 1)
        monkeypatch.setattr(policy, "intake_level", lambda tier, severity: 1)
        monkeypatch.setattr(policy, "MAX_LEVEL", {tier: 2 for tier in Tier})
        monkeypatch.setattr(policy, "WARN_RATIO", 0.5)
        eight_hours = ResponseTarget(minutes=480, calendar=CoverageCalendar.ALWAYS, label="8 h 24x7")
        monkeypatch.setattr(
            policy, "RESPONSE_TARGETS", {tier: {s: eight_hours for s in Severity} for tier in Tier}
        )
        monkeypatch.setattr(policy, "PERIODIC_UPDATES", {})
        monkeypatch.setattr(calendars, "DEFAULT_HOURS", dict(EDITED.calendar_hours))

    return edit


def test_every_released_policy_version_is_frozen() -> None:
    fingerprints = {version: rules.fingerprint() for version, rules in policy.RULES.items()}
    assert fingerprints == RELEASED, (
        "a released policy version changed in place: add a new version instead, point "
        "POLICY_VERSION at it, and list its fingerprint in RELEASED"
    )
    assert policy.POLICY_VERSION in policy.RULES


def test_a_version_cannot_be_edited_through_its_tables() -> None:
    rules = rules_for(policy.POLICY_VERSION)
    with pytest.raises(TypeError):
        rules.level_names[2] = "Anyone"  # type: ignore[index]
    # The live tables are copies: editing one leaves the version alone.
    assert policy.LEVEL_NAMES is not rules.level_names


def test_an_unknown_version_is_refused_with_a_sentence() -> None:
    with pytest.raises(UnknownPolicyVersion, match=r"No policy version '2001\.1' in this build .*\.$"):
        rules_for("2001.1")


def live(opened: TicketOpened) -> list[Any]:
    """A ticket's decisions through a life that touches every pinned rule: each step's state
    and notices, or the refusal."""
    at = opened.received_at
    actions: list[tuple[timedelta, Any]] = [
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
        except machine.Refusal as refusal:
            decisions.append((refusal.kind, refusal.message))
            continue
        state = outcome.state
        decisions.append((state.model_dump(), [n.model_dump() for n in outcome.notifications]))
    return decisions


def test_open_tickets_decide_the_same_after_the_policy_is_edited(edit_the_policy: Callable[[], None]) -> None:
    tickets = [opened_ticket(customer, 2, START) for customer in ("acme", "globex", "contoso")]
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
        assert terms.policy_version == "2026.11-2"
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
