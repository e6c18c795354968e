"""`python -m bench [calendar] [machine] [workflow] [reports] [stack] [drill] [whatif] [events]
[incident] [step]`.

`stack` drives the real `escalator up` (dev server, worker process, API process) over loopback;
its storm is issue 18's full storm by default (10,000 open, 9,000 first responses due 6 minutes
after intake, then the raw storm of the same deadlines on no-op workflows): about 30 minutes.
Issue 7's smaller storm: `python -m bench stack --storm-open 2000 --storm-due 1800
--storm-target-minutes 2`; `--storm-restart` SIGKILLs the worker half way through the deadlines.
`drill` times a burst with one of two worker processes SIGKILLed against the same burst
undisturbed (issue 10), ABBA on fresh stacks, about 4 minutes with its defaults.
`events` counts the history events per path of a ticket and of the raw deadline baseline
(issue 18; about a minute).
`incident` is issue 19's incident storm on the real stack: 10,000 tickets linked by rule, their
first responses breached, one update timed until it reaches them all against the same tickets
commented one by one, and the messages to ConnectSoft's teams (digests, pages) against one per
notice (`--incident-tickets 200` for a quick check).
`step` is the worker's CPU for one deadline's `notify_and_record` step, one at a time and 50 at
a time (group commit), against the raw storm's one-row write, in one process (issue 18; about a
minute).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import policies
from bench import (
    calendar_bench,
    drill_bench,
    events_bench,
    incident_bench,
    machine_bench,
    reports_bench,
    stack_bench,
    step_bench,
    whatif_bench,
    workflow_bench,
)
from bench.common import Result

NAMES = (
    "calendar",
    "machine",
    "workflow",
    "reports",
    "stack",
    "drill",
    "whatif",
    "events",
    "incident",
    "step",
)


def table(results: list[Result]) -> str:
    rows = [
        "| benchmark | measurement | subject | baseline | ratio | rate vs baseline | goal |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        fraction = f"{r.fraction:.2f}x" if r.rate else ""
        rows.append(
            f"| {r.name} | {r.metric} | {r.subject:,.2f} {r.unit} | {r.baseline:,.2f} {r.unit} "
            f"| {r.ratio:.2f}x | {fraction} | {r.goal} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    policies.install()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=f"any of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--calls", type=int, default=20_000, help="calendar: add_open_time calls per round")
    parser.add_argument("--tickets", type=int, default=2_000, help="machine: tickets per round")
    parser.add_argument("--rounds", type=int, default=5, help="calendar/machine: rounds (best is kept)")
    parser.add_argument("-n", "--workflows", type=int, default=200, help="workflow: workflows started")
    parser.add_argument(
        "--report-tickets", type=int, default=100_000, help="reports: tickets in the read model"
    )
    stack = parser.add_argument_group("stack (the real `escalator up`)")
    stack.add_argument("--intake", type=int, default=400, help="requests per intake phase (ABBA)")
    stack.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    stack.add_argument("--storm-open", type=int, default=10_000, help="open tickets in the breach storm")
    stack.add_argument("--storm-due", type=int, default=9_000, help="of them, due within minutes")
    stack.add_argument(
        "--storm-workers", default="1", help="worker processes per storm run, comma-separated (e.g. 1,2)"
    )
    stack.add_argument(
        "--storm-target-minutes", type=int, default=6, help="the storm customer's Sev 3 response target"
    )
    stack.add_argument(
        "--storm-no-raw",
        action="store_true",
        help="skip the raw storm (the same deadlines on no-op workflows, run after the ticket storm)",
    )
    stack.add_argument(
        "--storm-raw-warnings",
        action="store_true",
        help="the raw storm's workflows also fire and record each ticket's 75%% warning first",
    )
    stack.add_argument(
        "--storm-restart",
        action="store_true",
        help="SIGKILL the worker half way through the deadlines (`escalator up` restarts it)",
    )
    stack.add_argument(
        "--storm-databases",
        default="sqlite,postgres",
        help="the read model of each storm run: sqlite, postgres, or both (a database of its own "
        "on --postgres-url's server, dropped after)",
    )
    stack.add_argument(
        "--postgres-url",
        default=stack_bench.Options.postgres_url,
        help="the PostgreSQL server for the storm's postgres run (SQLAlchemy URL; "
        "default ESCALATOR_TEST_POSTGRES_URL, else postgres@127.0.0.1:5432)",
    )
    stack.add_argument(
        "--storm-grace", type=float, default=90.0, help="seconds to wait past the last due time at most"
    )
    stack.add_argument(
        "--stack-parts",
        default="intake,plumbing,storm",
        help="which parts of the stack benchmark: intake,plumbing,storm",
    )
    drill = parser.add_argument_group("drill (a worker SIGKILLed mid-burst, issue 10)")
    drill.add_argument("--drill-tickets", type=int, default=200, help="tickets filed and closed per run")
    drill.add_argument(
        "--drill-rounds", type=int, default=2, help="pairs of runs, undisturbed and killed (2: ABBA)"
    )
    parser.add_argument(
        "--step-tickets", type=int, default=500, help="step: tickets whose deadlines are timed"
    )
    parser.add_argument("--whatif-tickets", type=int, default=100_000, help="whatif: tickets simulated")
    incident = parser.add_argument_group("incident (issue 19's incident storm, the real `escalator up`)")
    incident.add_argument(
        "--incident-tickets", type=int, default=10_000, help="tickets linked to the incident by rule"
    )
    incident.add_argument(
        "--incident-target-minutes",
        type=int,
        default=incident_bench.Options.target_minutes,
        help="their Sev 3 response target: the storm's breaches fire this long after filing",
    )
    incident.add_argument(
        "--incident-calm",
        type=float,
        default=incident_bench.Options.calm,
        help="seconds in which no linked ticket's clock may fire when the update or the comments start",
    )
    args = parser.parse_args(argv)
    names: list[str] = args.names or list(NAMES)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")

    runners: dict[str, Callable[[], list[Result]]] = {
        "calendar": lambda: [calendar_bench.run(args.calls, args.rounds)],
        "machine": lambda: [machine_bench.run(args.tickets, args.rounds)],
        "workflow": lambda: workflow_bench.run(args.workflows),
        "reports": lambda: reports_bench.run(args.report_tickets, args.rounds),
        "stack": lambda: stack_bench.run(
            stack_bench.Options(
                intake=args.intake,
                concurrency=args.concurrency,
                storm_open=args.storm_open,
                storm_due=args.storm_due,
                storm_workers=tuple(int(w) for w in args.storm_workers.split(",") if w),
                storm_target_minutes=args.storm_target_minutes,
                storm_grace=args.storm_grace,
                storm_raw=not args.storm_no_raw,
                storm_raw_warnings=args.storm_raw_warnings,
                storm_restart=args.storm_restart,
                storm_databases=tuple(d for d in args.storm_databases.split(",") if d),
                postgres_url=args.postgres_url,
                parts=tuple(p for p in args.stack_parts.split(",") if p),
            )
        ),
        "drill": lambda: drill_bench.run(args.drill_tickets, args.drill_rounds),
        "whatif": lambda: [whatif_bench.run(args.whatif_tickets, 1)],
        "events": events_bench.run,
        "step": lambda: step_bench.run(args.step_tickets),
        "incident": lambda: incident_bench.run(
            incident_bench.Options(
                tickets=args.incident_tickets,
                concurrency=args.concurrency,
                target_minutes=args.incident_target_minutes,
                grace=args.storm_grace,
                calm=args.incident_calm,
            )
        ),
    }
    print(
        f"# bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}",
        flush=True,
    )
    results: list[Result] = []
    for name in NAMES:
        if name not in names:
            continue
        started = time.perf_counter()
        for result in runners[name]():
            print(result.line(), flush=True)
            for note in result.notes:
                print(f"    {note}", flush=True)
            results.append(result)
        print(f"    ({name}: {time.perf_counter() - started:.1f} s)", flush=True)
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
