"""`python -m bench step`: the worker's CPU for one step of a deadline (issue 18).

In the storm the worker's one event loop is what the deadlines wait on (docs/benchmarks.md),
so what a step costs it is the figure to bring down. This times, in one process, the
`notify_and_record` activity of each ticket's 75% warning and breach (a notice or two, the
record with its events, clocks and facts) on a SQLite read model in a temporary directory,
against the raw storm's own work for a fired deadline: one row written (bench/storm_parts.py's
`bench_raw_fire`), on the same database, in the same run. CPU time (`time.process_time`), so
the sleeps and waits of other processes on the box do not count. The notices' sinks are unset,
so each is logged only, as on `make up`; the log itself is silenced here.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.delivery import NotificationDelivery
from activities.read_model import TicketReadModel
from activities.step import TicketSteps
from bench import storm_parts
from bench.common import Result
from runtime.settings import Settings
from store.db import make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from tests.factories import opened_ticket
from workflows import machine
from workflows.changes import ChangeTracker
from workflows.models import TicketStep
from workflows.ticket import delivery_for

ROUNDS = 3


def ticket_steps(index: int, received: datetime) -> list[TicketStep]:
    """A Premium Sev 3 ticket's intake, its 75% warning and its breach, as the workflow would
    hand them to `notify_and_record`."""
    opened = opened_ticket("acme", 3, received).model_copy(update={"ticket_id": f"bench-step-{index}"})
    outcome = machine.open_ticket(opened)
    state, tracker = outcome.state, ChangeTracker.starting(continued=False)
    steps, notices, now = [], outcome.notifications, received
    while True:
        pending = tracker.next_record(state, now, notices, [])
        deliveries = [delivery_for(state, each) for each in notices if each.channel is not None]
        steps.append(TicketStep(record=pending.record, deliveries=deliveries))
        if len(steps) == 3:
            return steps
        tracker.settle(state, pending, written=True)
        wakeup = machine.next_wakeup(state)
        assert wakeup is not None
        now = wakeup.at
        notices = machine.advance(state, now, in_place=True).notifications


async def measure(tickets: int) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'step.db'}"
        engine = make_engine(url)
        await migrate(engine)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker.begin() as session:
            await seed_demo_catalog(session=session)
        steps = TicketSteps(NotificationDelivery(sessionmaker, Settings()), TicketReadModel(sessionmaker))
        env = ActivityEnvironment()
        received = datetime.now(UTC).replace(microsecond=0)
        planned = [ticket_steps(i, received) for i in range(tickets)]
        for intake, _, _ in planned:
            await env.run(steps.notify_and_record, intake)
        deadlines = [step for _, warning, breach in planned for step in (warning, breach)]
        _, warning, breach = planned[0]
        shape = (
            f"warning: {len(warning.deliveries)} notice(s), {len(warning.record.events)} event(s); "
            f"breach: {len(breach.deliveries)} notice(s), {len(breach.record.events)} event(s)"
        )
        began = time.process_time()
        for step in deadlines:
            await env.run(steps.notify_and_record, step)
        step_cpu = (time.process_time() - began) / len(deadlines)

        raw_url = url.replace("+aiosqlite", "")  # the raw storm writes with plain sqlite3
        await storm_parts.create_raw_table(storm_parts.ReadModelAccess(raw_url))
        raw = storm_parts.RawRecorder(raw_url)
        due = received.isoformat()
        began = time.process_time()
        for index in range(len(deadlines)):
            await env.run(raw.fire, f"raw-{index}", due)
        raw_cpu = (time.process_time() - began) / len(deadlines)
        await engine.dispose()
    return step_cpu, raw_cpu, shape


def run(tickets: int = 500) -> list[Result]:
    # The notices' "logged only" lines would flood the bench's output.
    logging.disable(logging.INFO)
    try:
        rounds = [asyncio.run(measure(tickets)) for _ in range(ROUNDS)]
    finally:
        logging.disable(logging.NOTSET)
    step_ms, raw_ms = min(r[0] for r in rounds) * 1000, min(r[1] for r in rounds) * 1000
    return [
        Result(
            name="step",
            metric="worker CPU per deadline step (notify_and_record) vs the raw storm's one-row write",
            unit="ms",
            subject=step_ms,
            baseline=raw_ms,
            notes=[
                f"{tickets} Premium Sev 3 tickets on SQLite, their warnings and breaches "
                f"({rounds[0][2]}); best of {ROUNDS} rounds",
                "rounds (step / raw, ms): "
                + ", ".join(f"{r[0] * 1000:.2f} / {r[1] * 1000:.2f}" for r in rounds),
            ],
            goal="what a deadline costs the worker beyond the raw storm's",
        )
    ]
