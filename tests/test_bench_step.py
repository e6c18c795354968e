"""`python -m bench step` keeps working: it times a real warning and breach step on a real
SQLite read model, and writes what it times (no timed assertion: only that it ran the steps)."""

from __future__ import annotations

from datetime import UTC, datetime

from bench import step_bench
from tests.factories import deadline_steps
from workflows.enums import EventKind


def test_the_bench_steps_are_a_warning_then_a_breach() -> None:
    intake, warning, breach = deadline_steps("t-0", datetime.now(UTC).replace(microsecond=0))
    assert [e.kind for e in intake.record.events] == [EventKind.OPENED]
    assert [e.kind for e in warning.record.events] == [EventKind.SLA_WARNING]
    assert EventKind.SLA_BREACHED in [e.kind for e in breach.record.events]
    assert warning.deliveries and breach.deliveries


async def test_the_step_bench_measures_both_sides() -> None:
    measured = await step_bench.measure(3, together=2)
    assert measured.alone > 0 and measured.together > 0 and measured.raw > 0
    assert measured.shape.startswith("warning: 1 notice(s)")
