"""The pure ticket machine: fast, no Temporal, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.factories import SUPPORT, opened_ticket, partner
from workflows import machine
from workflows.models import (
    Acknowledge,
    Audience,
    Category,
    ChangeSeverity,
    ClockKind,
    ClockStatus,
    Comment,
    Escalate,
    EscalationTrigger,
    Handoff,
    HandoffCategory,
    OwningLine,
    Resolve,
    Resume,
    Severity,
    TicketStatus,
    WaitOnCustomer,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# Tuesday 24 November 2026, 10:00 in each customer's zone: an ordinary working day.
TUESDAY_BERLIN = datetime(2026, 11, 24, 10, 0, tzinfo=BERLIN)
TUESDAY_NEW_YORK = datetime(2026, 11, 24, 10, 0, tzinfo=NEW_YORK)


def local(dt: datetime, zone: ZoneInfo) -> datetime:
    return dt.astimezone(zone)


# One row per cell of DESIGN.md §4: (customer, severity) -> (minutes, calendar, binding,
# due for a ticket filed Tuesday 10:00 local time).
TARGET_TABLE = [
    ("acme", 1, 60, "24x7", True, datetime(2026, 11, 24, 11, 0, tzinfo=BERLIN)),
    ("acme", 2, 240, "extended", True, datetime(2026, 11, 24, 14, 0, tzinfo=BERLIN)),
    ("acme", 3, 480, "business", True, datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)),
    ("acme", 4, 960, "business", True, datetime(2026, 11, 26, 10, 0, tzinfo=BERLIN)),
    ("globex", 1, 240, "extended", True, datetime(2026, 11, 24, 14, 0, tzinfo=NEW_YORK)),
    ("globex", 2, 480, "business", True, datetime(2026, 11, 25, 10, 0, tzinfo=NEW_YORK)),
    ("globex", 3, 960, "business", True, datetime(2026, 11, 27, 10, 0, tzinfo=NEW_YORK)),
    # Thanksgiving (26 Nov 2026) is a US holiday, so 3 business days land on Monday.
    ("globex", 4, 1440, "business", True, datetime(2026, 11, 30, 10, 0, tzinfo=NEW_YORK)),
]
BASIC_DUE = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # 3 business days, UTC, no holidays


@pytest.mark.parametrize(("customer", "severity", "minutes", "calendar", "binding", "due"), TARGET_TABLE)
def test_response_target_for_every_tier_and_severity(
    customer: str, severity: int, minutes: int, calendar: str, binding: bool, due: datetime
) -> None:
    zone = BERLIN if customer == "acme" else NEW_YORK
    received = datetime(2026, 11, 24, 10, 0, tzinfo=zone)
    state = machine.open_ticket(opened_ticket(customer, severity, received)).state
    clock = state.clock(ClockKind.FIRST_RESPONSE)
    assert clock is not None
    assert (clock.target.minutes, clock.target.calendar.value, clock.target.binding) == (
        minutes,
        calendar,
        binding,
    )
    assert clock.due_at == due


@pytest.mark.parametrize("severity", [1, 2, 3, 4])
def test_basic_target_is_best_effort_for_every_severity(severity: int) -> None:
    received = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    state = machine.open_ticket(opened_ticket("initech", severity, received)).state
    clock = state.clock(ClockKind.FIRST_RESPONSE)
    assert clock is not None
    assert not clock.target.binding
    assert "typically 2-3 business days" in clock.target.label
    assert clock.due_at == BASIC_DUE


def test_basic_never_breaches_nor_escalates() -> None:
    received = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    state = machine.open_ticket(opened_ticket("initech", 2, received)).state
    assert machine.next_wakeup(state) is None
    later = machine.advance(state, received + timedelta(days=365)).state
    assert not later.sla_breached
    assert later.level == 1
    assert [c.status for c in later.clocks] == [ClockStatus.RUNNING]


def test_premium_sev1_goes_straight_to_level_3_and_pages_on_call() -> None:
    outcome = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN, channel="on_call"))
    assert outcome.state.level == 3
    audiences = {n.audience for n in outcome.notifications}
    assert {Audience.ENGINEERING_L3, Audience.LEADERSHIP_L4, Audience.ON_CALL} <= audiences
    assert any(n.page for n in outcome.notifications if n.audience == Audience.ON_CALL)


def test_standard_sev1_goes_to_level_2() -> None:
    state = machine.open_ticket(opened_ticket("globex", 1, TUESDAY_NEW_YORK)).state
    assert state.level == 2


def test_breach_escalates_one_level_within_premium_entitlement() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    due = state.response_due
    assert due == TUESDAY_BERLIN + timedelta(hours=1)
    just_before = machine.advance(state, due - timedelta(seconds=1)).state
    assert not just_before.sla_breached
    assert just_before.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.WARNED  # type: ignore[union-attr]
    after = machine.advance(state, due).state
    assert after.sla_breached
    assert after.level == 4
    breach = next(e for e in after.events if e.kind == "sla_breached")
    assert breach.at == due
    escalation = next(e for e in after.events if e.kind == "escalated")
    assert escalation.detail["trigger"] == EscalationTrigger.SLA_BREACH.value


def test_breach_never_escalates_above_standard_entitlement() -> None:
    state = machine.open_ticket(opened_ticket("globex", 2, TUESDAY_NEW_YORK)).state
    state = machine.advance(state, state.response_due).state  # type: ignore[arg-type]
    assert state.sla_breached and state.level == 2
    ack_clock = state.clock(ClockKind.ESCALATION_ACK)
    assert ack_clock is not None
    # L2 does not acknowledge either: the ladder stops at the entitlement.
    state = machine.advance(state, ack_clock.due_at + timedelta(days=3)).state
    assert state.level == 2
    assert state.clock(ClockKind.ESCALATION_ACK).status == ClockStatus.BREACHED  # type: ignore[union-attr]


def test_acknowledgement_stops_the_clock() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    acked = machine.apply(state, Acknowledge(actor=SUPPORT), TUESDAY_BERLIN + timedelta(minutes=59)).state
    clock = acked.clock(ClockKind.FIRST_RESPONSE)
    assert clock is not None and clock.status == ClockStatus.MET
    assert acked.status == TicketStatus.ACKNOWLEDGED
    later = machine.advance(acked, TUESDAY_BERLIN + timedelta(hours=2)).state
    assert not any(e.kind == "sla_breached" for e in later.events)
    assert later.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.MET  # type: ignore[union-attr]


def test_acknowledging_twice_is_refused_as_a_conflict() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    state = machine.apply(state, Acknowledge(actor=SUPPORT), TUESDAY_BERLIN).state
    with pytest.raises(machine.Refusal) as refused:
        machine.validate(state, Acknowledge(actor=SUPPORT), TUESDAY_BERLIN)
    assert refused.value.kind == machine.RefusalKind.CONFLICT


def test_standard_customer_cannot_escalate_to_level_3() -> None:
    state = machine.open_ticket(opened_ticket("globex", 3, TUESDAY_NEW_YORK)).state
    with pytest.raises(machine.Refusal) as refused:
        machine.apply(
            state,
            Escalate(actor=SUPPORT, level=3, trigger=EscalationTrigger.REQUIRES_ENGINEERING),
            TUESDAY_NEW_YORK,
        )
    assert refused.value.kind == machine.RefusalKind.INVALID
    assert "Premium" in refused.value.message


def test_escalation_needs_a_trigger_of_its_level() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    with pytest.raises(machine.Refusal) as refused:
        machine.validate(
            state, Escalate(actor=SUPPORT, level=3, trigger=EscalationTrigger.STRATEGIC_ISSUE), TUESDAY_BERLIN
        )
    assert "Level 4 trigger" in refused.value.message
    ok = machine.apply(
        state,
        Escalate(actor=SUPPORT, level=3, trigger=EscalationTrigger.CRITICAL_BUG_OR_PLATFORM_ISSUE),
        TUESDAY_BERLIN,
    ).state
    assert ok.level == 3
    assert ok.clock(ClockKind.ESCALATION_ACK).level == 3  # type: ignore[union-attr]


def test_system_triggers_cannot_be_named_by_people() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    with pytest.raises(machine.Refusal):
        machine.validate(
            state, Escalate(actor=SUPPORT, level=2, trigger=EscalationTrigger.SLA_BREACH), TUESDAY_BERLIN
        )


def test_refused_action_leaves_state_untouched() -> None:
    state = machine.open_ticket(opened_ticket("globex", 3, TUESDAY_NEW_YORK)).state
    before = state.model_dump()
    with pytest.raises(machine.Refusal):
        machine.apply(
            state, Escalate(actor=SUPPORT, level=4, trigger=EscalationTrigger.STRATEGIC_ISSUE), TUESDAY_NEW_YORK
        )
    assert state.model_dump() == before


def test_severity_raise_recomputes_from_original_intake() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    raised = machine.apply(
        state,
        ChangeSeverity(actor=SUPPORT, severity=Severity.CRITICAL, reason="whole tenant down"),
        TUESDAY_BERLIN + timedelta(minutes=30),
    ).state
    assert raised.response_due == TUESDAY_BERLIN + timedelta(hours=1)
    assert raised.level == 3  # critical incidents escalate immediately


def test_feature_request_cannot_be_raised_above_sev4() -> None:
    state = machine.open_ticket(
        opened_ticket("acme", 4, TUESDAY_BERLIN, category=Category.FEATURE_REQUEST)
    ).state
    with pytest.raises(machine.Refusal) as refused:
        machine.validate(state, ChangeSeverity(actor=SUPPORT, severity=2, reason="please"), TUESDAY_BERLIN)
    assert refused.value.kind == machine.RefusalKind.INVALID


def test_partner_ticket_starts_on_partner_line_and_handoff_starts_connectsoft_clock() -> None:
    received = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    state = machine.open_ticket(opened_ticket("contoso", 2, received)).state
    assert state.owning_line == OwningLine.PARTNER and state.level == 1
    with pytest.raises(machine.Refusal):
        machine.validate(
            state, Escalate(actor=partner(), level=2, trigger="requires_technical_expertise"), received
        )
    handed = machine.apply(
        state,
        Handoff(actor=partner(), category=HandoffCategory.PLATFORM_BUG),
        received + timedelta(hours=2),
    )
    clock = handed.state.clock(ClockKind.HANDOFF_RESPONSE)
    assert handed.state.owning_line == OwningLine.CONNECTSOFT and handed.state.level == 2
    assert clock is not None and clock.started_at == received + timedelta(hours=2)
    assert clock.due_at == received + timedelta(hours=6)  # Premium Sev 2: 4 h extended
    audiences = {n.audience for n in handed.notifications}
    assert {Audience.PARTNER, Audience.SUPPORT_L2} <= audiences


def test_waiting_on_customer_pauses_resolution_clock_and_banks_the_pause() -> None:
    opened = opened_ticket("acme", 2, TUESDAY_BERLIN)
    ent = opened.entitlement
    ent.resolution_targets["2"] = ent.response_targets["3"]  # 1 business day
    ent.resolution_targets["3"] = ent.response_targets["4"]  # 2 business days
    state = machine.open_ticket(opened).state
    resolution = state.clock(ClockKind.RESOLUTION)
    assert resolution is not None
    assert resolution.due_at == datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)
    state = machine.apply(state, WaitOnCustomer(actor=SUPPORT), TUESDAY_BERLIN + timedelta(hours=1)).state
    paused = state.clock(ClockKind.RESOLUTION)
    assert paused is not None and paused.status == ClockStatus.PAUSED
    # Nothing breaches while paused, however long the customer takes.
    much_later = machine.advance(state, paused.due_at + timedelta(days=2)).state
    assert much_later.clock(ClockKind.RESOLUTION).status == ClockStatus.PAUSED  # type: ignore[union-attr]
    state = machine.apply(state, Resume(actor=SUPPORT), TUESDAY_BERLIN + timedelta(hours=3)).state
    resumed = state.clock(ClockKind.RESOLUTION)
    assert resumed is not None and resumed.status == ClockStatus.RUNNING
    assert resumed.paused_seconds == 2 * 3600
    assert resumed.due_at == datetime(2026, 11, 25, 12, 0, tzinfo=BERLIN)
    # A severity change recomputes from intake and keeps the 2 h already banked:
    # 2 business days from Tuesday 10:00 is Thursday 10:00, plus 2 h of pause.
    state = machine.apply(
        state,
        ChangeSeverity(actor=SUPPORT, severity=3, reason="workaround"),
        TUESDAY_BERLIN + timedelta(hours=4),
    ).state
    changed = state.clock(ClockKind.RESOLUTION)
    assert changed is not None and changed.started_at == TUESDAY_BERLIN
    assert changed.paused_seconds == 2 * 3600
    assert changed.due_at == datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN)


def test_premium_sev1_customer_updates_are_due_hourly_after_the_first_response() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    assert state.clock(ClockKind.PERIODIC_UPDATE) is None
    acked_at = TUESDAY_BERLIN + timedelta(minutes=10)
    state = machine.apply(state, Acknowledge(actor=SUPPORT), acked_at).state
    update = state.clock(ClockKind.PERIODIC_UPDATE)
    assert update is not None and update.due_at == acked_at + timedelta(hours=1)
    # A public comment is the update: the next one is due an hour after it.
    commented_at = acked_at + timedelta(minutes=50)
    state = machine.apply(state, Comment(actor=SUPPORT, body="Rolling back"), commented_at).state
    assert state.clock(ClockKind.PERIODIC_UPDATE).due_at == commented_at + timedelta(hours=1)  # type: ignore[union-attr]
    # Silence for an hour: the update is overdue, the team is told, and the next one is due.
    overdue = machine.advance(state, commented_at + timedelta(hours=1))
    assert [e.kind for e in overdue.state.events][-2:] == ["sla_warning", "update_overdue"]
    assert any(n.audience == Audience.ENGINEERING_L3 for n in overdue.notifications)
    assert overdue.state.clock(ClockKind.PERIODIC_UPDATE).due_at == commented_at + timedelta(hours=2)  # type: ignore[union-attr]
    assert not overdue.state.sla_breached  # a late update is not a response breach


def test_resolve_stops_every_clock_and_closes_after_seven_days() -> None:
    state = machine.open_ticket(opened_ticket("acme", 2, TUESDAY_BERLIN)).state
    resolved_at = TUESDAY_BERLIN + timedelta(hours=1)
    state = machine.apply(state, Resolve(actor=SUPPORT, resolution="restarted"), resolved_at).state
    assert state.status == TicketStatus.RESOLVED
    assert all(not c.is_live for c in state.clocks)
    wake = machine.next_wakeup(state)
    assert wake is not None and wake.at == resolved_at + timedelta(days=7)
    closed = machine.advance(state, wake.at).state
    assert closed.status == TicketStatus.CLOSED
