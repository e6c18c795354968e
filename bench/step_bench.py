"""`python -m bench step`: the worker's CPU for one step of a deadline (issue 18).

In the storm the worker's one event loop was what the deadlines waited on (docs/benchmarks.md),
so what a step costs it is the figure to bring down. This times, in one process, the
`notify_and_record` activity of each ticket's 75% warning and breach (a notice or two, the
record with its events, clocks and facts) on a SQLite read model in a temporary directory, one
step at a time and `TOGETHER` at a time (as a storm runs them, the read model committing them in
groups),
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
from dataclasses import dataclass
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
from tests.factories import deadline_steps
from workflows.models import TicketStep

ROUNDS = 3
# Steps in flight at once in the "together" half: as in a storm, where the worker runs many
# tickets' steps at a time and the read model commits them in groups (activities/read_model.py).
TOGETHER = 50


@dataclass(frozen=True)
class Measured:
    """CPU per step, in seconds: one at a time, `TOGETHER` at a time, and the raw storm's."""

    alone: float
    together: float
    raw: float
    shape: str


async def measure(tickets: int, together: int = TOGETHER) -> Measured:
    """`tickets` tickets' deadlines timed one step at a time, as many again `together` at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'step.db'}"
        engine = make_engine(url)
        await migrate(engine)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker.begin() as session:
            await seed_demo_catalog(session=session)
        steps = TicketSteps(NotificationDelivery(sessionmaker, Settings()), TicketReadModel(sessionmaker))
        env = ActivityEnvironment()

        async def run_all(planned: list[TicketStep], at_once: int) -> float:
            """CPU per step, running them `at_once` at a time."""
            began = time.process_time()
            for first in range(0, len(planned), at_once):
                wave = planned[first : first + at_once]
                await asyncio.gather(*(env.run(steps.notify_and_record, step) for step in wave))
            return (time.process_time() - began) / len(planned)

        received = datetime.now(UTC).replace(microsecond=0)
        planned = [deadline_steps(f"bench-step-{i}", received) for i in range(2 * tickets)]
        await run_all([intake for intake, _, _ in planned], together)
        # Every warning before any breach, so that no wave holds two steps of one ticket.
        alone, grouped = planned[:tickets], planned[tickets:]
        alone_cpu = await run_all([s for _, w, b in alone for s in (w, b)], 1)
        together_cpu = await run_all([w for _, w, _ in grouped] + [b for _, _, b in grouped], together)
        _, warning, breach = planned[0]
        shape = (
            f"warning: {len(warning.deliveries)} notice(s), {len(warning.record.events)} event(s); "
            f"breach: {len(breach.deliveries)} notice(s), {len(breach.record.events)} event(s)"
        )

        raw_url = url.replace("+aiosqlite", "")  # the raw storm writes with plain sqlite3
        await storm_parts.create_raw_table(storm_parts.ReadModelAccess(raw_url))
        raw = storm_parts.RawRecorder(raw_url)
        due = received.isoformat()
        fires = 2 * tickets
        began = time.process_time()
        for index in range(fires):
            await env.run(raw.fire, f"raw-{index}", due)
        raw_cpu = (time.process_time() - began) / fires
        await engine.dispose()
    return Measured(alone_cpu, together_cpu, raw_cpu, shape)


def run(tickets: int = 500) -> list[Result]:
    # The notices' "logged only" lines would flood the bench's output.
    logging.disable(logging.INFO)
    try:
        rounds = [asyncio.run(measure(tickets)) for _ in range(ROUNDS)]
    finally:
        logging.disable(logging.NOTSET)
    raw_ms = min(r.raw for r in rounds) * 1000
    return [
        Result(
            name=name,
            metric=f"worker CPU per deadline step (notify_and_record), {how}, vs the raw one-row write",
            unit="ms",
            subject=min(of(r) for r in rounds) * 1000,
            baseline=raw_ms,
            notes=[
                f"{tickets} Premium Sev 3 tickets on SQLite, their warnings and breaches "
                f"({rounds[0].shape}); best of {ROUNDS} rounds",
                "rounds (step / raw, ms): "
                + ", ".join(f"{of(r) * 1000:.2f} / {r.raw * 1000:.2f}" for r in rounds),
            ],
            goal="what a deadline costs the worker beyond the raw storm's",
        )
        for name, how, of in (
            ("step", "one at a time", lambda r: r.alone),
            ("step together", f"{TOGETHER} at a time", lambda r: r.together),
        )
    ]
