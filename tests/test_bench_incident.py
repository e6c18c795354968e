"""`python -m bench incident` starts the update and the comments at a calm point in the linked
tickets' lives: `firing_within` says which of their clocks would fire in the next seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.incident_bench import firing_within

NOW = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


def test_a_clock_due_within_the_calm_fires_there() -> None:
    due = NOW + timedelta(seconds=100)
    assert firing_within([("warned", due, 3)], NOW, 300) == [due]


def test_a_running_clock_fires_its_warning_at_three_quarters_of_its_target() -> None:
    # Due in 10 minutes with a 12-minute target: warns 3 minutes before, 7 minutes from now.
    due = NOW + timedelta(minutes=10)
    assert firing_within([("running", due, 12)], NOW, 8 * 60) == [due - timedelta(minutes=3)]
    assert firing_within([("running", due, 12)], NOW, 6 * 60) == []


def test_a_warned_clock_has_no_warning_left_and_a_passed_warning_is_not_waited_for() -> None:
    due = NOW + timedelta(minutes=10)
    assert firing_within([("warned", due, 60)], NOW, 300) == []
    # Its warning time has passed (the read model shows it running: recorded late or paused).
    assert firing_within([("running", due, 60)], NOW, 300) == []


def test_a_clock_past_its_due_time_and_still_live_is_a_breach_not_yet_recorded() -> None:
    overdue = NOW - timedelta(seconds=30)
    assert firing_within([("running", overdue.replace(tzinfo=None).isoformat(), 3)], NOW, 60) == [overdue]


def test_clocks_beyond_the_calm_leave_it_calm() -> None:
    later = NOW + timedelta(hours=4)
    assert firing_within([("running", later, 60), ("warned", later, 60)], NOW, 300) == []
