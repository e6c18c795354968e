"""`python -m bench [calendar] [machine] [workflow]`: run benchmarks, print ratios to baselines."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench import calendar_bench, machine_bench, workflow_bench
from bench.common import Result

NAMES = ("calendar", "machine", "workflow")


def table(results: list[Result]) -> str:
    rows = [
        "| benchmark | measurement | subject | baseline | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r.name} | {r.metric} | {r.subject:,.2f} {r.unit} | {r.baseline:,.2f} {r.unit} "
            f"| {r.ratio:.2f}x |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=f"any of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--calls", type=int, default=20_000, help="calendar: add_open_time calls per round")
    parser.add_argument("--tickets", type=int, default=2_000, help="machine: tickets per round")
    parser.add_argument("--rounds", type=int, default=5, help="calendar/machine: rounds (best is kept)")
    parser.add_argument("-n", "--workflows", type=int, default=200, help="workflow: workflows started")
    args = parser.parse_args(argv)
    names: list[str] = args.names or list(NAMES)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")

    runners: dict[str, Callable[[], list[Result]]] = {
        "calendar": lambda: [calendar_bench.run(args.calls, args.rounds)],
        "machine": lambda: [machine_bench.run(args.tickets, args.rounds)],
        "workflow": lambda: workflow_bench.run(args.workflows),
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
