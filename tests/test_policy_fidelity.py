"""Issue 16 in the pure machine, on the real `holidays` calendars: a partner ticket under the
partner's own agreement (DESIGN.md §6), regional holidays by ISO 3166-2 subdivision (§3), and
indicative clocks that never show as breached (§4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities.holidays import pin_public_holidays
from api.console.views import Signal, next_clock
from api.schemas import ClockPublic
from sinks.channels import format_due
from tests.factories import DEMO_TERMS, SUPPORT, opened_ticket, partner
from tests.test_machine_properties import run, steps
from workflows import machine
from workflows.actions.base import Refusal
from workflows.actions.escalate import Escalate
from workflows.actions.handoff import Handoff
from workflows.entitlement import (
    IntakeRefused,
    build_entitlement,
    check_intake,
    check_subdivision,
    public_holidays,
    quote_response_deadline,
)
from workflows.enums import (
    Audience,
    Category,
    Channel,
    ClockKind,
    EscalationTrigger,
    HandoffCategory,
    ProductType,
    Severity,
    Tier,
)
from workflows.terms import ContractTerms, Entitlement, HolidayYears
from workflows.ticket import delivery_for
from workflows.timeline import Outcome

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LONDON = ZoneInfo("Europe/London")
# Tuesday 24 November 2026, 10:00 in Amsterdam: an ordinary working day.
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=AMSTERDAM)


def contoso(
    *, tier: Tier = Tier.PREMIUM, coverage_24x7: bool = False, partner_tier: Tier, partner_24x7: bool
) -> ContractTerms:
    """Contoso's contract with its partner, and northwind's own agreement with ConnectSoft."""
    return DEMO_TERMS["contoso"].model_copy(
        update={
            "tier": tier,
            "coverage_24x7": coverage_24x7,
            "partner_tier": partner_tier,
            "partner_coverage_24x7": partner_24x7,
        }
    )


def handed_off(terms: ContractTerms, severity: int = 2) -> Outcome:
    state = machine.open_ticket(opened_ticket("contoso", severity, TUESDAY, terms=terms)).state
    action = Handoff(actor=partner(), category=HandoffCategory.PLATFORM_BUG)
    return machine.apply(state, action, TUESDAY + timedelta(minutes=5))


# --- DESIGN.md §6: one agreement per line ---------------------------------------------------


def test_premium_customer_of_a_standard_partner_gets_standards_connectsoft_terms() -> None:
    terms = contoso(partner_tier=Tier.STANDARD, partner_24x7=False)
    ent = build_entitlement(terms, received_at=TUESDAY)
    # What the partner owes its customer: the customer's Premium contract.
    assert ent.response_target(Severity.HIGH).label == "4 h extended"
    # What ConnectSoft owes: the partner's Standard agreement.
    assert ent.handoff_targets["2"].label == "1 business day"
    assert ent.max_level == 2
    assert ent.channels == ["email", "portal", "chat"]
    assert (ent.partner_tier, ent.connectsoft_tier, ent.tier) == (Tier.STANDARD, Tier.STANDARD, Tier.PREMIUM)


def test_a_standard_partners_ticket_cannot_be_escalated_to_l3_whatever_the_customers_tier() -> None:
    state = handed_off(contoso(partner_tier=Tier.STANDARD, partner_24x7=False)).state
    escalate = Escalate(actor=SUPPORT, level=3, trigger=EscalationTrigger.REQUIRES_ENGINEERING)
    with pytest.raises(Refusal) as refused:
        machine.validate(state, escalate, TUESDAY + timedelta(minutes=10))
    assert "Standard partner agreement is entitled to L1-L2" in refused.value.message


def test_the_partners_own_24x7_option_puts_the_handoff_clock_on_24x7() -> None:
    with_option = handed_off(contoso(partner_tier=Tier.PREMIUM, partner_24x7=True)).state
    clock = with_option.clock(ClockKind.HANDOFF_RESPONSE)
    assert clock is not None and clock.target.label == "4 h 24x7"
    assert clock.due_at == (TUESDAY + timedelta(minutes=5, hours=4)).astimezone(UTC)


def test_the_customers_24x7_option_is_the_first_lines_never_connectsofts() -> None:
    # Contoso (Premium, 24/7) with its partner; northwind has no 24/7 option with ConnectSoft.
    state = handed_off(contoso(coverage_24x7=True, partner_tier=Tier.PREMIUM, partner_24x7=False)).state
    first = state.clock(ClockKind.FIRST_RESPONSE)
    handoff = state.clock(ClockKind.HANDOFF_RESPONSE)
    assert first is not None and first.target.label == "4 h 24x7"
    assert handoff is not None and handoff.target.label == "4 h extended"


@pytest.mark.parametrize(
    ("partner_tier", "level", "leadership", "paged"),
    [(Tier.STANDARD, 2, False, False), (Tier.PREMIUM, 3, True, True)],
)
def test_a_sev1_handoff_is_routed_and_paged_as_the_partners_agreement_says(
    partner_tier: Tier, level: int, leadership: bool, paged: bool
) -> None:
    outcome = handed_off(contoso(partner_tier=partner_tier, partner_24x7=False), severity=1)
    audiences = {n.audience for n in outcome.notifications}
    pages = {n.audience for n in outcome.notifications if n.page}
    assert outcome.state.level == level
    assert (Audience.LEADERSHIP_L4 in audiences) is leadership
    assert (Audience.ON_CALL in pages) is paged


def test_a_standard_partners_ticket_reaches_connectsoft_on_standards_channels() -> None:
    ent = build_entitlement(contoso(partner_tier=Tier.STANDARD, partner_24x7=False), received_at=TUESDAY)
    with pytest.raises(IntakeRefused) as refused:
        check_intake(ent, severity=Severity.CRITICAL, channel=Channel.ON_CALL, category=Category.INCIDENT)
    assert refused.value.rule == "channel_not_entitled"
    assert "not part of a Standard partner agreement" in refused.value.message
    premium = build_entitlement(contoso(partner_tier=Tier.PREMIUM, partner_24x7=False), received_at=TUESDAY)
    check_intake(premium, severity=Severity.CRITICAL, channel=Channel.ON_CALL, category=Category.INCIDENT)


def test_a_ticket_pinned_before_the_partner_agreement_runs_as_it_did() -> None:
    ent = build_entitlement(DEMO_TERMS["contoso"], received_at=TUESDAY)
    old = Entitlement.model_validate(ent.model_dump(exclude={"partner_tier", "partner_coverage_24x7"}))
    assert old.partner_tier is None and old.connectsoft_tier == old.tier == Tier.PREMIUM


# --- DESIGN.md §3: regional holidays --------------------------------------------------------

# Easter Monday 2026 is 6 April: a bank holiday in England and Wales, not in all of the UK.
EASTER_MONDAY = datetime(2026, 4, 6, 9, 0, tzinfo=LONDON)


def london(subdivision: str | None) -> ContractTerms:
    return DEMO_TERMS["umbrella"].model_copy(
        update={"product_type": ProductType.PLATFORM, "project": None, "subdivision": subdivision}
    )


def test_the_demo_london_customer_counts_englands_holidays() -> None:
    assert DEMO_TERMS["umbrella"].subdivision == "GB-ENG"


@pytest.mark.parametrize(
    ("subdivision", "due"),
    [
        # Nationwide only: Easter Monday is a working day, so 1 business day ends that evening.
        (None, datetime(2026, 4, 6, 17, 0, tzinfo=LONDON)),
        # England: Easter Monday is off, so the count starts on Tuesday.
        ("GB-ENG", datetime(2026, 4, 7, 17, 0, tzinfo=LONDON)),
    ],
)
def test_a_standard_sev2_filed_on_easter_monday_in_london(subdivision: str | None, due: datetime) -> None:
    opened = opened_ticket("umbrella", 2, EASTER_MONDAY, terms=london(subdivision))
    state = machine.open_ticket(opened).state
    assert state.entitlement.subdivision == subdivision
    assert state.response_due == due.astimezone(UTC)


def test_the_subdivision_is_pinned_with_its_holidays_and_asked_for_every_later_year() -> None:
    state = machine.open_ticket(opened_ticket("umbrella", 2, EASTER_MONDAY, terms=london("GB-ENG"))).state
    ent = state.entitlement
    assert {date(2026, 4, 6), date(2026, 8, 31), date(2027, 3, 29)} <= set(ent.holidays)
    assert ent.holidays_until == date(2028, 1, 1)
    later = ent.holidays_until - timedelta(days=100)
    needed = machine.holidays_needed(state, datetime.combine(later, datetime.min.time(), UTC))
    assert needed is not None and (needed.country, needed.subdivision) == ("GB", "GB-ENG")


@pytest.mark.parametrize(
    ("country", "subdivision", "holiday"),
    [
        ("US", "US-NY", date(2027, 2, 12)),  # Lincoln's Birthday
        ("DE", "DE-BY", date(2027, 1, 6)),  # Epiphany
        ("AU", "AU-NSW", date(2027, 10, 4)),  # Labour Day
        ("CA", "CA-ON", date(2027, 2, 15)),  # Family Day
        ("GB", "GB-ENG", date(2027, 8, 30)),  # Late Summer Bank Holiday
    ],
)
def test_a_subdivision_adds_its_own_holidays_to_the_nationwide_ones(
    country: str, subdivision: str, holiday: date
) -> None:
    nationwide = set(public_holidays(country, range(2027, 2028)))
    regional = set(public_holidays(country, range(2027, 2028), subdivision))
    assert holiday in regional and holiday not in nationwide
    assert nationwide <= regional


@pytest.mark.parametrize(
    ("country", "subdivision", "rule"),
    [
        ("GB", "GB-XYZ", "unknown_subdivision"),
        ("GB", "ENG", "unknown_subdivision"),
        ("GB", "gb-eng", "unknown_subdivision"),
        ("GB", "US-NY", "subdivision_country"),
        (None, "GB-ENG", "subdivision_country"),
    ],
)
def test_a_subdivision_the_calendars_do_not_know_is_refused(
    country: str | None, subdivision: str, rule: str
) -> None:
    with pytest.raises(IntakeRefused) as refused:
        check_subdivision(country, subdivision)
    assert refused.value.rule == rule


def test_a_quote_with_a_subdivision_names_its_country_and_counts_its_holidays() -> None:
    quote = quote_response_deadline(
        tier=Tier.STANDARD,
        severity=Severity.HIGH,
        product_type=ProductType.PLATFORM,
        submitted_at=datetime(2026, 4, 6, 9, 0),
        timezone="Europe/London",
        subdivision="GB-ENG",
    )
    assert quote.response_due == datetime(2026, 4, 7, 16, 0, tzinfo=UTC)


# --- DESIGN.md §4: indicative clocks --------------------------------------------------------

INITECH_MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_an_indicative_clock_long_past_its_time_is_never_breached_nor_red() -> None:
    state = machine.open_ticket(opened_ticket("initech", 2, INITECH_MONDAY)).state
    a_year_on = INITECH_MONDAY + timedelta(days=365)
    later = machine.advance(state, a_year_on)
    assert later.notifications == [] and not later.state.sla_breached
    view = next_clock(later.state)
    assert view is not None and view.indicative and not view.counting
    assert view.signal(a_year_on) == Signal.INDICATIVE_PAST_DUE
    assert view.signal(INITECH_MONDAY) == Signal.INDICATIVE
    assert view.word(a_year_on) == "Indicative, past due"
    public = ClockPublic.of(later.state.clocks[0])
    assert public.indicative and public.status == "running"


def test_the_intake_notice_of_a_basic_ticket_gives_an_indicative_time_not_a_deadline() -> None:
    outcome = machine.open_ticket(opened_ticket("initech", 2, INITECH_MONDAY))
    subjects = [n.subject for n in outcome.notifications if n.audience == Audience.SUPPORT_L1]
    assert subjects and "indicative response time 2026-11-25 17:00 UTC, best effort" in subjects[0]
    assert "respond by" not in subjects[0]


def test_a_notice_names_a_binding_clock_before_an_indicative_one() -> None:
    # A Basic Sev 1 goes to L2: its first response and L2's acknowledgement are both
    # indicative, so the notice says so.
    outcome = machine.open_ticket(opened_ticket("initech", 1, INITECH_MONDAY))
    delivery = delivery_for(outcome.state, outcome.notifications[0])
    assert delivery.indicative
    due = format_due(clock_name=delivery.clock, due_at=delivery.due_at, timezone="UTC", indicative=True)
    assert due is not None and due.startswith("first response (indicative) due")
    premium = machine.open_ticket(opened_ticket("acme", 2, INITECH_MONDAY))
    assert not delivery_for(premium.state, premium.notifications[0]).indicative


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(severity=st.integers(1, 4), history=steps)
def test_no_history_shows_a_basic_clock_as_anything_but_indicative(
    severity: int, history: list[object]
) -> None:
    life = run("initech", severity, history)  # type: ignore[arg-type]
    assert not any("breach" in n.subject.lower() for n in life.notifications)
    for state in life.states:
        view = next_clock(state)
        if view is not None:
            assert view.signal(life.now) in (Signal.INDICATIVE, Signal.INDICATIVE_PAST_DUE)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(severity=st.integers(1, 4), history=steps)
def test_no_history_takes_a_standard_partners_ticket_past_l2_or_to_leadership(
    severity: int, history: list[tuple[int, bool, object]]
) -> None:
    terms = contoso(partner_tier=Tier.STANDARD, partner_24x7=False)
    outcome = machine.open_ticket(opened_ticket("contoso", severity, TUESDAY, terms=terms))
    state, now, notices = outcome.state, TUESDAY, list(outcome.notifications)
    for minutes, _, action in history:
        now += timedelta(minutes=minutes)
        if action is None:
            outcome = machine.advance(state, now)
        else:
            try:
                outcome = machine.apply(state, action, now)  # type: ignore[arg-type]
            except Refusal:
                continue
        state = outcome.state
        notices += outcome.notifications
        assert state.level <= 2
    assert not any(n.audience in (Audience.LEADERSHIP_L4, Audience.ENGINEERING_L3) for n in notices)
    assert not any(n.audience == Audience.ON_CALL for n in notices)


async def test_the_holiday_activity_pins_the_subdivisions_later_years() -> None:
    england = await pin_public_holidays(
        HolidayYears(country="GB", first_year=2028, stop_year=2029, subdivision="GB-ENG")
    )
    nationwide = await pin_public_holidays(HolidayYears(country="GB", first_year=2028, stop_year=2029))
    easter_monday = date(2028, 4, 17)
    assert easter_monday in england.dates and easter_monday not in nationwide.dates
