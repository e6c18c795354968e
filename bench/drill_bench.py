"""The worker-kill drill (issue 10) as a benchmark: a burst with one worker SIGKILLed, against
the same burst undisturbed, in the same run.

Each run is a fresh stack of separate processes (tests/drill_support.py: the Temporal dev
server on an SQLite file of its own, two `escalator worker` and one `escalator api`), on which
N tickets are filed and closed through the API, 25 requests in flight, each with its
Idempotency-Key (the demo customers at Sev 2-4, bench.stack_bench.ticket_body). In the kill
run one worker is SIGKILLed once a third of the tickets are filed. Time is from the first
request until every ticket's workflow has completed (its result is in). Runs alternate,
undisturbed first (ABBA with two rounds), each on its own stack.

Every run is audited as the test audits it: the tickets in the read model against the
workflows' final states, events 1..next_seq-1 once each, every notice once and delivered.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import Result
from bench.stack_bench import ticket_body
from store.db import make_engine, make_sessionmaker
from tests.drill_support import (
    ProcessStack,
    audit_tickets,
    burst,
    expected_notice_keys,
    history_evidence,
    settle,
)

CONCURRENCY = 25


@dataclass
class DrillRun:
    killed: bool
    tickets: int
    answered_seconds: float  # first request .. last answer
    settled_seconds: float  # first request .. every workflow completed
    filed_at_kill: int
    lost: int  # tickets missing from the read model, or problems the audit found
    doubled: int  # tickets or notices beyond those expected
    undelivered: int
    resent: int  # requests the client had to send again
    activities_retried: int
    workflow_tasks_timed_out: int


async def drill_run(tickets: int, *, kill: bool) -> DrillRun:
    with tempfile.TemporaryDirectory(prefix="escalator-drill-") as tmp:
        async with ProcessStack(Path(tmp)) as stack:
            await stack.start_server()
            await stack.prepare_database()
            doomed, _, _ = await asyncio.gather(stack.start_worker(), stack.start_worker(), stack.start_api())
            filed_at_kill = 0

            def kill_at_a_third(filed: int) -> None:
                nonlocal filed_at_kill
                if kill and filed == tickets // 3:
                    doomed.send(signal.SIGKILL)
                    filed_at_kill = filed

            limits = httpx.Limits(max_connections=CONCURRENCY)
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=120, limits=limits) as http:
                started = time.perf_counter()
                filed = await burst(http, tickets, concurrency=CONCURRENCY, on_filed=kill_at_a_third)
                finals = await settle(stack, filed.ticket_ids)
                settled = time.perf_counter() - started
            engine = make_engine(stack.database_url)
            try:
                audit = await audit_tickets(make_sessionmaker(engine), finals)
            finally:
                await engine.dispose()
            evidence = await history_evidence(stack.handle, filed.ticket_ids, doomed.pid)
    expected = [expected_notice_keys(ticket_body(i)) for i in range(tickets)]
    notices = [set(audit.notices[ticket_id]) for ticket_id in filed.ticket_ids]
    return DrillRun(
        killed=kill,
        tickets=tickets,
        answered_seconds=filed.seconds,
        settled_seconds=settled,
        filed_at_kill=filed_at_kill,
        lost=max(0, tickets - len(audit.rows))
        + len(audit.problems)
        + sum(len(want - got) for want, got in zip(expected, notices, strict=True)),
        doubled=max(0, audit.tickets_in_read_model - tickets)
        + sum(len(got - want) for want, got in zip(expected, notices, strict=True)),
        undelivered=len(audit.undelivered),
        resent=filed.resent,
        activities_retried=evidence.activities_retried,
        workflow_tasks_timed_out=evidence.workflow_tasks_timed_out,
    )


def run(tickets: int = 200, rounds: int = 1) -> list[Result]:
    """`rounds` pairs of runs: undisturbed then killed, then (ABBA) killed then undisturbed."""

    async def main() -> list[DrillRun]:
        runs = []
        for i in range(rounds):
            order = (False, True) if i % 2 == 0 else (True, False)
            for kill in order:
                runs.append(await drill_run(tickets, kill=kill))
        return runs

    runs = asyncio.run(main())
    killed = [r for r in runs if r.killed]
    calm = [r for r in runs if not r.killed]
    notes = [
        f"{'kill' if r.killed else 'calm'}: answered in {r.answered_seconds:.1f} s, all completed in "
        f"{r.settled_seconds:.1f} s"
        + (f", worker SIGKILLed at {r.filed_at_kill} filed" if r.killed else "")
        + f"; lost {r.lost}, doubled {r.doubled}, undelivered {r.undelivered}; requests resent "
        f"{r.resent}, activity attempts retried {r.activities_retried}, workflow tasks timed out "
        f"{r.workflow_tasks_timed_out}"
        for r in runs
    ]
    topology = (
        f"{tickets} tickets filed and closed through the API, {CONCURRENCY} in flight, on two "
        "`escalator worker` processes and one `escalator api` (separate processes, fresh stack per run)"
    )
    return [
        Result(
            name="drill",
            metric=f"burst of {tickets} to every workflow completed: one of two workers SIGKILLed vs none",
            unit="s",
            subject=statistics.mean(r.settled_seconds for r in killed),
            baseline=statistics.mean(r.settled_seconds for r in calm),
            goal="nothing lost or doubled; the kill costs about one activity timeout (30 s)",
            notes=[topology, *notes],
        ),
        Result(
            name="drill",
            metric=f"burst of {tickets}, last API answer: one of two workers SIGKILLed vs none",
            unit="s",
            subject=statistics.mean(r.answered_seconds for r in killed),
            baseline=statistics.mean(r.answered_seconds for r in calm),
            goal="the API keeps answering; closes wait for the surviving worker",
        ),
    ]
