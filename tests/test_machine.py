"""The pure ticket machine: fast, no Temporal, no database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.schemas import TicketPublic
from tests.factories import ADMIN, DEMO_TERMS, SUPPORT, customer, engineer, opened_ticket, partner
from workflows import machine, policy, search_attributes
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.base import ActionModel, Refusal, RefusalKind
from workflows.actions.change_severity import ChangeSeverity
from workflows.actions.close import Close
from workflows.actions.comment import Comment
from workflows.actions.escalate import Escalate
from workflows.actions.handback import Handback
from workflows.actions.handoff import Handoff
from workflows.actions.reopen import Reopen
from workflows.actions.resolve import Resolve
from workflows.actions.resume import Resume
from workflows.actions.wait_on_customer import WaitOnCustomer
from workflows.entitlement import quote_response_deadline
from workflows.enums import (
    Audience,
    Category,
    ClockKind,
    ClockStatus,
    CoverageCalendar,
    EscalationTrigger,
    HandoffCategory,
    OwningLine,
    ProductType,
    Severity,
    TicketStatus,
    Tier,
)
from workflows.models import Notification, TicketState

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
    with pytest.raises(Refusal) as refused:
        machine.validate(state, Acknowledge(actor=SUPPORT), TUESDAY_BERLIN)
    assert refused.value.kind == RefusalKind.CONFLICT


def test_standard_customer_cannot_escalate_to_level_3() -> None:
    state = machine.open_ticket(opened_ticket("globex", 3, TUESDAY_NEW_YORK)).state
    with pytest.raises(Refusal) as refused:
        machine.apply(
            state,
            Escalate(actor=SUPPORT, level=3, trigger=EscalationTrigger.REQUIRES_ENGINEERING),
            TUESDAY_NEW_YORK,
        )
    assert refused.value.kind == RefusalKind.INVALID
    assert "Premium" in refused.value.message


def test_escalation_needs_a_trigger_of_its_level() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    with pytest.raises(Refusal) as refused:
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
    with pytest.raises(Refusal):
        machine.validate(
            state, Escalate(actor=SUPPORT, level=2, trigger=EscalationTrigger.SLA_BREACH), TUESDAY_BERLIN
        )


def test_refused_action_leaves_state_untouched() -> None:
    state = machine.open_ticket(opened_ticket("globex", 3, TUESDAY_NEW_YORK)).state
    before = state.model_dump()
    with pytest.raises(Refusal):
        machine.apply(
            state,
            Escalate(actor=SUPPORT, level=4, trigger=EscalationTrigger.STRATEGIC_ISSUE),
            TUESDAY_NEW_YORK,
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
    with pytest.raises(Refusal) as refused:
        machine.validate(state, ChangeSeverity(actor=SUPPORT, severity=2, reason="please"), TUESDAY_BERLIN)
    assert refused.value.kind == RefusalKind.INVALID


def test_partner_ticket_starts_on_partner_line_and_handoff_starts_connectsoft_clock() -> None:
    received = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    state = machine.open_ticket(opened_ticket("contoso", 2, received)).state
    assert state.owning_line == OwningLine.PARTNER and state.level == 1
    with pytest.raises(Refusal):
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


# --- Trust: time first, permanent outcomes, lines (issue 6) -----------------------------------

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TUESDAY_AMSTERDAM = datetime(2026, 11, 24, 10, 0, tzinfo=AMSTERDAM)
TUESDAY_UTC = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def kinds(state: TicketState) -> list[str]:
    return [e.kind for e in state.events]


def test_acknowledgement_30_hours_late_is_a_breach_then_a_late_response() -> None:
    # The issue's case: a Standard Sev 1 filed at 10:00 UTC, acknowledged 30 hours later by a
    # worker that never woke up in between.
    opened = machine.open_ticket(opened_ticket("globex", 1, TUESDAY_UTC)).state
    late = TUESDAY_UTC + timedelta(hours=30)
    machine.validate(opened, Acknowledge(actor=SUPPORT), late)
    outcome = machine.apply(opened, Acknowledge(actor=SUPPORT), late)
    state = outcome.state
    first = state.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and first.status == ClockStatus.BREACHED
    assert first.stopped_at == first.due_at < late
    assert state.sla_breached
    assert kinds(state)[-2:] == ["sla_breached", "acknowledged"]
    breach, ack = state.events[-2:]
    assert breach.at == first.due_at and ack.at == late
    assert "late first response" in ack.summary
    # The breach's notices are part of the acknowledgement's outcome.
    assert any(n.key.startswith(f"{breach.seq}-") for n in outcome.notifications)
    # Exactly as if the worker had woken at the deadline.
    woke = machine.advance(opened, late).state
    assert machine.apply(woke, Acknowledge(actor=SUPPORT), late).state == state


def test_validation_judges_the_ticket_as_of_now_with_deadlines_fired() -> None:
    # Premium Sev 1 is routed to L3; at 1 h the breach climbs to L4, so an L3 engineer acting
    # a minute later is too junior even though the worker has not recorded the breach yet.
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    assert state.level == 3
    machine.validate(state, Acknowledge(actor=SUPPORT), TUESDAY_BERLIN + timedelta(minutes=59))
    with pytest.raises(Refusal) as refused:
        machine.validate(state, Acknowledge(actor=SUPPORT), TUESDAY_BERLIN + timedelta(minutes=61))
    assert refused.value.kind == RefusalKind.FORBIDDEN
    assert refused.value.message.startswith("The ticket is at L4; a Level 3 engineer cannot acknowledge it")


def test_support_engineer_below_the_tickets_level_cannot_acknowledge() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    with pytest.raises(Refusal) as refused:
        machine.apply(state, Acknowledge(actor=engineer(1)), TUESDAY_BERLIN + timedelta(minutes=5))
    assert refused.value.kind == RefusalKind.FORBIDDEN
    assert "The ticket is at L3; a Level 1 engineer cannot acknowledge it" in refused.value.message
    acked = machine.apply(state, Acknowledge(actor=engineer(4)), TUESDAY_BERLIN + timedelta(minutes=5))
    assert acked.state.status == TicketStatus.ACKNOWLEDGED


def test_customer_cannot_acknowledge() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    with pytest.raises(Refusal) as refused:
        machine.validate(state, Acknowledge(actor=customer("acme")), TUESDAY_BERLIN)
    assert refused.value.kind == RefusalKind.FORBIDDEN


def test_partner_first_line_breach_is_not_connectsofts_breach() -> None:
    state = machine.open_ticket(opened_ticket("contoso", 2, TUESDAY_AMSTERDAM)).state
    first = state.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and first.owner == OwningLine.PARTNER
    outcome = machine.advance(state, first.due_at)
    state = outcome.state
    assert state.partner_sla_breached and not state.sla_breached
    warning = next(e for e in state.events if e.kind == "sla_warning")
    breach = next(e for e in state.events if e.kind == "sla_breached")
    assert warning.detail["line"] == breach.detail["line"] == "partner"
    assert "by the partner's first line" in breach.summary
    # ConnectSoft's ladder does not climb for the partner's miss.
    assert state.level == 1 and "escalated" not in kinds(state)
    # The row and the search attributes keep the two lines apart.
    row = state.row(first.due_at)
    assert (row.sla_breached, row.partner_sla_breached) == (False, True)
    published = {pair.key.name: pair.value for pair in search_attributes.for_ticket(state)}
    assert (published["SlaBreached"], published["PartnerSlaBreached"]) == (False, True)


def test_connectsoft_breach_after_handoff_names_connectsoft() -> None:
    state = machine.open_ticket(opened_ticket("contoso", 2, TUESDAY_AMSTERDAM)).state
    state = machine.apply(
        state, Acknowledge(actor=partner()), TUESDAY_AMSTERDAM + timedelta(minutes=10)
    ).state
    handed_at = TUESDAY_AMSTERDAM + timedelta(minutes=30)
    state = machine.apply(
        state, Handoff(actor=partner(), category=HandoffCategory.PLATFORM_BUG), handed_at
    ).state
    handoff = state.clock(ClockKind.HANDOFF_RESPONSE)
    assert handoff is not None and handoff.owner == OwningLine.CONNECTSOFT
    state = machine.advance(state, handoff.due_at).state
    breach = next(e for e in state.events if e.kind == "sla_breached")
    assert breach.detail == {"clock": "handoff_response", "clocks": "handoff_response", "line": "connectsoft"}
    assert state.sla_breached and not state.partner_sla_breached
    assert state.level == 3  # the handoff clock is L2's acknowledgement: missing it climbs


def test_support_acks_only_connectsoft_clocks_and_partner_only_its_own() -> None:
    state = machine.open_ticket(opened_ticket("contoso", 2, TUESDAY_AMSTERDAM)).state
    # Before any handoff ConnectSoft has no clock on the partner's ticket.
    with pytest.raises(Refusal) as refused:
        machine.validate(state, Acknowledge(actor=SUPPORT), TUESDAY_AMSTERDAM)
    assert refused.value.kind == RefusalKind.CONFLICT
    assert "ConnectSoft has no response clock" in refused.value.message
    # The partner hands off without having answered: both lines now owe a response.
    at = TUESDAY_AMSTERDAM + timedelta(minutes=20)
    state = machine.apply(state, Handoff(actor=partner(), category=HandoffCategory.PLATFORM_BUG), at).state
    state = machine.apply(state, Acknowledge(actor=SUPPORT), at + timedelta(minutes=5)).state
    first, handoff = state.clock(ClockKind.FIRST_RESPONSE), state.clock(ClockKind.HANDOFF_RESPONSE)
    assert first is not None and handoff is not None
    assert handoff.status == ClockStatus.MET
    assert first.status == ClockStatus.RUNNING  # the partner's clock is the partner's to stop
    assert state.acknowledged_lines == [OwningLine.CONNECTSOFT]
    assert state.status == TicketStatus.ACKNOWLEDGED  # ConnectSoft owns the ticket now
    with pytest.raises(Refusal) as refused:
        machine.validate(state, Acknowledge(actor=SUPPORT), at + timedelta(minutes=6))
    assert refused.value.kind == RefusalKind.CONFLICT
    assert "ConnectSoft has already acknowledged" in refused.value.message
    state = machine.apply(state, Acknowledge(actor=partner()), at + timedelta(minutes=7)).state
    assert state.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.MET  # type: ignore[union-attr]
    assert state.acknowledged_lines == [OwningLine.CONNECTSOFT, OwningLine.PARTNER]
    assert state.events[-1].detail == {"line": "partner", "met": "first_response"}
    with pytest.raises(Refusal) as refused:
        machine.validate(state, Acknowledge(actor=partner()), at + timedelta(minutes=8))
    assert refused.value.kind == RefusalKind.CONFLICT
    assert refused.value.message.startswith("The partner's first line has already acknowledged")


def test_admin_acknowledgement_stops_every_lines_clocks() -> None:
    state = machine.open_ticket(opened_ticket("contoso", 2, TUESDAY_AMSTERDAM)).state
    at = TUESDAY_AMSTERDAM + timedelta(minutes=20)
    state = machine.apply(state, Handoff(actor=partner(), category=HandoffCategory.PLATFORM_BUG), at).state
    state = machine.apply(state, Acknowledge(actor=ADMIN), at).state
    assert all(c.status == ClockStatus.MET for c in state.clocks if c.kind in machine.RESPONSE_CLOCKS)
    assert set(state.acknowledged_lines) == set(OwningLine)


def test_customer_comment_never_counts_as_the_periodic_update() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    acked_at = TUESDAY_BERLIN + timedelta(minutes=10)
    state = machine.apply(state, Acknowledge(actor=SUPPORT), acked_at).state
    update = state.clock(ClockKind.PERIODIC_UPDATE)
    assert update is not None and update.due_at == acked_at + timedelta(hours=1)
    later = acked_at + timedelta(minutes=30)
    for comment in (
        Comment(actor=customer("acme"), body="Any news?"),
        Comment(actor=SUPPORT, body="Looks like the cache", public=False),
    ):
        state = machine.apply(state, comment, later).state
        still = state.clock(ClockKind.PERIODIC_UPDATE)
        assert still is not None and still.status == ClockStatus.RUNNING and still.started_at == acked_at
    overdue = machine.advance(state, acked_at + timedelta(hours=1)).state
    assert "update_overdue" in kinds(overdue)
    # The owning line's public word is the update.
    state = machine.apply(state, Comment(actor=SUPPORT, body="Rolling back"), later).state
    assert state.clock(ClockKind.PERIODIC_UPDATE).due_at == later + timedelta(hours=1)  # type: ignore[union-attr]


def test_only_the_owning_lines_public_comment_is_the_update_on_a_partner_ticket() -> None:
    state = machine.open_ticket(opened_ticket("contoso", 1, TUESDAY_AMSTERDAM)).state
    acked_at = TUESDAY_AMSTERDAM + timedelta(minutes=5)
    state = machine.apply(state, Acknowledge(actor=partner()), acked_at).state
    later = acked_at + timedelta(minutes=20)
    state = machine.apply(state, Comment(actor=SUPPORT, body="We are looking too"), later).state
    assert state.clock(ClockKind.PERIODIC_UPDATE).started_at == acked_at  # type: ignore[union-attr]
    state = machine.apply(state, Comment(actor=partner(), body="Workaround sent"), later).state
    assert state.clock(ClockKind.PERIODIC_UPDATE).started_at == later  # type: ignore[union-attr]


def test_comments_record_who_may_see_them() -> None:
    state = machine.open_ticket(opened_ticket("contoso", 3, TUESDAY_AMSTERDAM)).state
    notes = [
        (Comment(actor=customer("contoso"), body="hello"), "public"),
        (Comment(actor=partner(), body="customer is touchy", public=False), "partner_internal"),
        (Comment(actor=SUPPORT, body="known bug", public=False), "internal"),
        (Comment(actor=ADMIN, body="known bug", public=False), "internal"),
    ]
    for comment, visibility in notes:
        state = machine.apply(state, comment, TUESDAY_AMSTERDAM).state
        assert state.events[-1].detail["visibility"] == visibility


def test_customer_cannot_write_an_internal_note() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    with pytest.raises(Refusal) as refused:
        machine.validate(state, Comment(actor=customer("acme"), body="x", public=False), TUESDAY_BERLIN)
    assert refused.value.kind == RefusalKind.FORBIDDEN


def test_standard_breach_at_the_top_notifies_the_l2_lead_never_l4() -> None:
    opened = machine.open_ticket(opened_ticket("globex", 1, TUESDAY_NEW_YORK))
    state = opened.state
    assert state.level == 2 == state.entitlement.max_level
    notices = list(opened.notifications)
    due = state.response_due
    assert due is not None
    outcome = machine.advance(state, due + timedelta(days=5))
    notices += outcome.notifications
    state = outcome.state
    # The first response and L2's acknowledgement fall due together: one miss, one breach.
    assert kinds(state).count("sla_breached") == 1
    breach = next(e for e in state.events if e.kind == "sla_breached")
    assert breach.detail["clocks"] == "first_response,escalation_ack"
    lead = [n for n in notices if n.audience == Audience.SUPPORT_LEAD]
    assert [n.key for n in lead] == [f"{breach.seq}-support_lead"]
    assert "top of the ladder" in lead[0].subject
    assert Audience.LEADERSHIP_L4 not in {n.audience for n in notices}


def test_premium_breach_at_the_top_notifies_l4_leadership() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    outcome = machine.advance(state, TUESDAY_BERLIN + timedelta(hours=2))
    state = outcome.state
    assert state.level == 4
    assert kinds(state).count("sla_breached") == 2  # L3 missed at 1 h, then L4 at 2 h
    assert kinds(state).count("escalated") == 1
    top = state.events[-1]
    assert top.kind == "sla_breached" and top.detail["clock"] == "escalation_ack"
    subjects = {n.subject for n in outcome.notifications if n.audience == Audience.LEADERSHIP_L4}
    assert any("top of the ladder" in s for s in subjects)
    assert Audience.SUPPORT_LEAD not in {n.audience for n in outcome.notifications}


def test_partner_sev1_pages_the_partner_on_call_and_gives_l2_a_heads_up() -> None:
    outcome = machine.open_ticket(opened_ticket("contoso", 1, TUESDAY_AMSTERDAM))
    state = outcome.state
    assert state.owning_line == OwningLine.PARTNER and state.level == 1
    by_audience = {n.audience: n for n in outcome.notifications}
    assert by_audience[Audience.PARTNER_ON_CALL].page
    assert not by_audience[Audience.SUPPORT_L2].page
    assert {Audience.ON_CALL, Audience.LEADERSHIP_L4, Audience.CUSTOMER}.isdisjoint(by_audience)
    critical = next(e for e in state.events if e.kind == "critical_incident")
    assert critical.detail["line"] == "partner"
    assert state.clock(ClockKind.ESCALATION_ACK) is None  # nothing was routed on ConnectSoft's ladder


def test_partner_ticket_never_notifies_the_customer_directly() -> None:
    notices: list[Notification] = []

    def act(state: TicketState, action: ActionModel, at: datetime) -> TicketState:
        outcome = machine.apply(state, action, at)
        notices.extend(outcome.notifications)
        return outcome.state

    opened = machine.open_ticket(opened_ticket("contoso", 1, TUESDAY_AMSTERDAM))
    notices.extend(opened.notifications)
    state = opened.state
    t = TUESDAY_AMSTERDAM
    state = act(state, Acknowledge(actor=partner()), t + timedelta(minutes=70))  # late: a breach first
    state = act(state, WaitOnCustomer(actor=partner()), t + timedelta(hours=2))
    state = act(state, Resume(actor=customer("contoso")), t + timedelta(hours=3))
    state = act(
        state, Handoff(actor=partner(), category=HandoffCategory.SECURITY_ISSUE), t + timedelta(hours=4)
    )
    state = act(state, Acknowledge(actor=engineer(4)), t + timedelta(hours=8))  # late again
    state = act(state, Handback(actor=SUPPORT, note="patched"), t + timedelta(hours=9))
    state = act(state, Resolve(actor=partner(), resolution="patched"), t + timedelta(hours=10))
    state = act(state, Reopen(actor=customer("contoso"), reason="back again"), t + timedelta(hours=11))
    state = act(state, Close(actor=customer("contoso"), note="withdrawn"), t + timedelta(days=3))
    assert state.status == TicketStatus.CLOSED
    assert state.partner_sla_breached and state.sla_breached
    audiences = [n.audience for n in notices]
    assert Audience.CUSTOMER not in audiences
    assert Audience.PARTNER in audiences
    # The partner hears once per event, never twice.
    assert len({n.key for n in notices}) == len(notices)


def test_platform_ticket_notifies_the_customer() -> None:
    outcome = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN))
    assert Audience.CUSTOMER in {n.audience for n in outcome.notifications}


def test_basic_bespoke_gets_one_business_day() -> None:
    terms = DEMO_TERMS["umbrella"].model_copy(update={"tier": Tier.BASIC})
    state = machine.open_ticket(opened_ticket("umbrella", 2, TUESDAY_UTC, terms=terms)).state
    first = state.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None
    assert (first.target.minutes, first.target.calendar, first.target.binding) == (
        480,
        CoverageCalendar.BUSINESS,
        True,
    )
    # It is the project's SLA: it breaches and escalates within Basic's entitlement.
    state = machine.advance(state, first.due_at).state
    assert state.sla_breached and state.level == 2
    quote = quote_response_deadline(
        tier=Tier.BASIC,
        severity=Severity.LOW,
        product_type=ProductType.BESPOKE,
        submitted_at=TUESDAY_UTC,
        timezone="UTC",
    )
    assert (quote.target_minutes, quote.binding) == (480, True)


ROUTES = ["manual", "breach", "intake", "severity_raise", "handoff"]


def route_to_a_new_level(route: str) -> tuple[TicketState, datetime, ClockKind]:
    """A ticket just routed to a new level, when, and the clock that level must answer."""
    if route == "intake":
        return (
            machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state,
            TUESDAY_BERLIN,
            ClockKind.ESCALATION_ACK,
        )
    at = TUESDAY_BERLIN + timedelta(minutes=30)
    if route == "handoff":
        state = machine.open_ticket(opened_ticket("contoso", 2, TUESDAY_AMSTERDAM)).state
        action: ActionModel = Handoff(actor=partner(), category=HandoffCategory.PLATFORM_BUG)
        return machine.apply(state, action, at).state, at, ClockKind.HANDOFF_RESPONSE
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    if route == "breach":
        due = state.response_due
        assert due is not None
        return machine.advance(state, due).state, due, ClockKind.ESCALATION_ACK
    # L1 answered the first response; the route is what needs answering now.
    state = machine.apply(state, Acknowledge(actor=engineer(1)), TUESDAY_BERLIN + timedelta(minutes=5)).state
    if route == "manual":
        action = Escalate(actor=SUPPORT, level=2, trigger=EscalationTrigger.REQUIRES_TECHNICAL_EXPERTISE)
    else:
        action = ChangeSeverity(actor=SUPPORT, severity=Severity.CRITICAL, reason="tenant down")
    return machine.apply(state, action, at).state, at, ClockKind.ESCALATION_ACK


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_to_a_new_level_starts_the_acknowledgement_clock(route: str) -> None:
    state, routed_at, kind = route_to_a_new_level(route)
    assert state.level > 1
    clock = state.clock(kind)
    assert clock is not None and clock.is_live
    assert (clock.level, clock.started_at) == (state.level, routed_at)
    assert clock.target == machine.response_target(state)
    # Unanswered, it climbs one more level when the entitlement allows.
    later = machine.advance(state, clock.due_at).state
    last_breach = next(e for e in reversed(later.events) if e.kind == "sla_breached")
    assert clock.kind.value in last_breach.detail["clocks"].split(",")
    assert later.level == min(state.level + 1, state.entitlement.max_level)


def test_intake_routing_and_first_response_falling_due_together_climb_once() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    first, ack = state.clock(ClockKind.FIRST_RESPONSE), state.clock(ClockKind.ESCALATION_ACK)
    assert first is not None and ack is not None and first.due_at == ack.due_at
    after = machine.advance(state, first.due_at).state
    assert kinds(after).count("sla_warning") == 1
    assert kinds(after).count("sla_breached") == 1
    assert kinds(after).count("escalated") == 1 and after.level == 4
    assert [c.status for c in after.clocks[:2]] == [ClockStatus.BREACHED, ClockStatus.BREACHED]
    # One acknowledgement in time answers both.
    acked = machine.apply(state, Acknowledge(actor=SUPPORT), first.due_at - timedelta(minutes=1)).state
    assert [c.status for c in acked.clocks[:2]] == [ClockStatus.MET, ClockStatus.MET]


def test_critical_handoff_has_one_acknowledgement_clock() -> None:
    state = machine.open_ticket(opened_ticket("contoso", 1, TUESDAY_AMSTERDAM)).state
    at = TUESDAY_AMSTERDAM + timedelta(minutes=10)
    state = machine.apply(state, Handoff(actor=partner(), category=HandoffCategory.PLATFORM_BUG), at).state
    assert state.level == 3  # Premium Sev 1 goes to engineering
    handoff = state.clock(ClockKind.HANDOFF_RESPONSE)
    assert handoff is not None and handoff.level == 3
    assert state.clock(ClockKind.ESCALATION_ACK) is None
    later = machine.advance(state, handoff.due_at).state
    connectsoft = [e for e in later.events if e.kind == "sla_breached" and e.detail["line"] == "connectsoft"]
    assert len(connectsoft) == 1 and later.level == 4


def test_breached_clock_stays_breached_through_resolve_reopen_severity_change_and_close() -> None:
    opened = opened_ticket("acme", 3, TUESDAY_BERLIN)
    opened.entitlement.resolution_targets["3"] = opened.entitlement.response_targets["3"]
    opened.entitlement.resolution_targets["4"] = opened.entitlement.response_targets["4"]
    state = machine.open_ticket(opened).state
    first, resolution = state.clock(ClockKind.FIRST_RESPONSE), state.clock(ClockKind.RESOLUTION)
    assert first is not None and resolution is not None and first.due_at == resolution.due_at
    due = first.due_at
    # Resolved at the very instant both fall due: the deadline fires first.
    state = machine.apply(state, Resolve(actor=SUPPORT, resolution="restarted"), due).state
    breached = [c for c in state.clocks if c.status == ClockStatus.BREACHED]
    assert {c.kind for c in breached} == {ClockKind.FIRST_RESPONSE, ClockKind.RESOLUTION}
    snapshot = [(c.kind, c.status, c.stopped_at) for c in breached]
    t = due + timedelta(hours=1)
    for action in (
        Reopen(actor=customer("acme"), reason="still broken"),
        ChangeSeverity(actor=SUPPORT, severity=Severity.LOW, reason="workaround in place"),
        ChangeSeverity(actor=SUPPORT, severity=Severity.HIGH, reason="workaround failed"),
        Resolve(actor=SUPPORT, resolution="fixed"),
        Reopen(actor=SUPPORT, reason="regressed"),
        Close(actor=SUPPORT, note="duplicate of another ticket"),
    ):
        state = machine.apply(state, action, t).state
        assert [(c.kind, c.status, c.stopped_at) for c in state.clocks if c in breached] == snapshot
        assert state.sla_breached
        t += timedelta(minutes=10)
    assert state.status == TicketStatus.CLOSED


def test_resolving_cancels_the_other_lines_open_clock_instead_of_meeting_it() -> None:
    # Under 2026.11-2: since 2026.12-1 the partner no longer resolves while ConnectSoft owns it.
    opened = opened_ticket("contoso", 2, TUESDAY_AMSTERDAM)
    old = {"policy_version": "2026.11-2", "policy_fingerprint": policy.fingerprint_of("2026.11-2")}
    opened.entitlement = opened.entitlement.model_copy(update=old)
    state = machine.open_ticket(opened).state
    at = TUESDAY_AMSTERDAM + timedelta(minutes=10)
    state = machine.apply(state, Acknowledge(actor=partner()), at).state
    state = machine.apply(state, Handoff(actor=partner(), category=HandoffCategory.PLATFORM_BUG), at).state
    state = machine.apply(state, Resolve(actor=partner(), resolution="customer fixed it"), at).state
    assert state.clock(ClockKind.HANDOFF_RESPONSE).status == ClockStatus.CANCELLED  # type: ignore[union-attr]


def test_closing_with_a_live_binding_clock_needs_a_reason_and_records_it() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    at = TUESDAY_BERLIN + timedelta(hours=1)
    with pytest.raises(Refusal) as refused:
        machine.apply(state, Close(actor=SUPPORT), at)
    assert refused.value.kind == RefusalKind.INVALID
    assert refused.value.message.startswith("The first response clock is still open; give the reason")
    with pytest.raises(Refusal):
        machine.validate(state, Close(actor=SUPPORT, note="  "), at)
    closed = machine.apply(state, Close(actor=SUPPORT, note="customer withdrew it by phone"), at).state
    event = closed.events[-1]
    assert event.kind == "closed" and event.actor == "support:anna"
    assert event.detail == {"stopped_clocks": "first_response", "reason": "customer withdrew it by phone"}
    first = closed.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and (first.status, first.stopped_at) == (ClockStatus.CANCELLED, at)


def test_closing_with_no_live_binding_clock_needs_no_reason() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    state = machine.apply(state, Acknowledge(actor=SUPPORT), TUESDAY_BERLIN).state
    closed = machine.apply(state, Close(actor=customer("acme")), TUESDAY_BERLIN + timedelta(hours=1)).state
    assert closed.status == TicketStatus.CLOSED
    assert "stopped_clocks" not in closed.events[-1].detail
    # Basic's best-effort target binds nobody: no reason needed either.
    basic = machine.open_ticket(opened_ticket("initech", 3, TUESDAY_UTC)).state
    machine.validate(basic, Close(actor=customer("initech")), TUESDAY_UTC)


def test_severity_raise_past_the_deadline_breaches_at_the_raise_not_before_it() -> None:
    state = machine.open_ticket(opened_ticket("acme", 3, TUESDAY_BERLIN)).state
    raised_at = TUESDAY_BERLIN + timedelta(hours=2)
    state = machine.apply(
        state, ChangeSeverity(actor=SUPPORT, severity=Severity.CRITICAL, reason="tenant down"), raised_at
    ).state
    first = state.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and first.due_at == TUESDAY_BERLIN + timedelta(hours=1)
    later = machine.advance(state, raised_at).state
    breach = next(e for e in later.events if e.kind == "sla_breached")
    assert breach.at == raised_at and breach.detail["clock"] == "first_response"
    assert "sla_warning" not in kinds(later)  # overtaken by the breach itself
    assert all(a.at <= b.at for a, b in itertools.pairwise(later.events))


# --- Pure by default, in place when the workflow asks -------------------------------------------


def test_apply_returns_a_new_state_and_leaves_the_given_one_alone() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    before = state.model_dump()
    later = TUESDAY_BERLIN + timedelta(minutes=50)  # past the 75% warning

    outcome = machine.apply(state, Acknowledge(actor=SUPPORT), later)

    assert state.model_dump() == before
    assert outcome.state is not state and outcome.state.acknowledged_at == later
    assert [e.kind for e in outcome.state.events][-2:] == ["sla_warning", "acknowledged"]


def test_in_place_the_workflow_state_itself_changes_with_the_same_outcome() -> None:
    opened = opened_ticket("acme", 1, TUESDAY_BERLIN)
    later = TUESDAY_BERLIN + timedelta(minutes=50)
    pure = machine.apply(machine.open_ticket(opened).state, Acknowledge(actor=SUPPORT), later)
    state = machine.open_ticket(opened).state

    outcome = machine.apply(state, Acknowledge(actor=SUPPORT), later, in_place=True)

    assert outcome.state is state
    assert state == pure.state and outcome.notifications == pure.notifications


def test_validate_judges_as_of_now_without_changing_the_ticket() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, TUESDAY_BERLIN)).state
    before = state.model_dump()
    # Two hours on, L3's hour is long gone and the ticket climbed to L4: L3 may no longer answer.
    with pytest.raises(Refusal, match="at L4"):
        machine.validate(state, Acknowledge(actor=engineer(3)), TUESDAY_BERLIN + timedelta(hours=2))
    assert state.model_dump() == before


def test_an_action_answers_a_small_view_the_api_reads_like_the_full_state() -> None:
    state = machine.open_ticket(opened_ticket("contoso", 1, TUESDAY_BERLIN)).state
    view = state.view()

    assert "description" not in view.model_dump() and "events" not in view.model_dump()
    assert len(view.model_dump_json()) < len(state.model_dump_json()) / 2
    assert TicketPublic.of(view) == TicketPublic.of(state)
