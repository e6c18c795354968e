"""Does `gc.freeze()` after the worker's start-up shorten a full collection? (issue 18, GC)

    .venv/bin/python -m bench.gc_freeze -n 2000 --rounds 2

Each measurement is a fresh process that starts as the worker does (imports the worker, its
workflows, activities, the Temporal SDK, SQLAlchemy and pydantic; installs the policy
versions), then either freezes what start-up made (`gc.freeze()`) or not, then holds `n`
cached tickets (each the TicketState the pure machine opens for a demo customer, as the
worker's cache holds one per open ticket, plus its recorded row), and times `gc.collect()` (a
full collection) `--collections` times; the median is kept. Both variants run ABBA per round
in the same run, so the ratio means the same on a loaded machine. CPU-light: one process at a
time, a few seconds each.

The worker's cache also holds the SDK's own objects per workflow (its activation state), which
this leaves out: the figures are a lower bound on the pause, and the ratio says what freezing
the start-up objects can save of it.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

VARIANTS = ("none", "freeze")


def measure(variant: str, tickets: int, collections: int) -> dict[str, Any]:
    """One process's measurement (run as a child): start up, freeze or not, hold the tickets,
    time full collections."""
    import policies
    import worker.worker  # noqa: F401  (the worker's start-up imports)

    policies.install()
    from tests.factories import DEMO_TERMS, opened_ticket
    from workflows import machine

    gc.collect()
    if variant == "freeze":
        gc.freeze()
    customers = sorted(DEMO_TERMS)
    received = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    held = []
    for n in range(tickets):
        state = machine.open_ticket(
            opened_ticket(customers[n % len(customers)], 2 + n % 3, received + timedelta(seconds=n))
        ).state
        held.append((state, state.row(received)))
    pauses = []
    for _ in range(collections):
        started = time.perf_counter()
        gc.collect()
        pauses.append(time.perf_counter() - started)
    return {
        "variant": variant,
        "pause_s": statistics.median(pauses),
        "tracked_objects": len(gc.get_objects()),
        "frozen_objects": gc.get_freeze_count(),
        "held": len(held),
    }


def child(variant: str, tickets: int, collections: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.gc_freeze",
            "--child",
            variant,
            "-n",
            str(tickets),
            "--collections",
            str(collections),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc_freeze", description=__doc__)
    parser.add_argument("-n", "--tickets", type=int, default=2_000, help="cached tickets held")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds (each 4 processes)")
    parser.add_argument("--collections", type=int, default=5, help="full collections timed per process")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.tickets, args.collections)))
        return 0
    results: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.rounds):
        for variant in ("none", "freeze", "freeze", "none"):
            results[variant].append(child(variant, args.tickets, args.collections))
    pause = {variant: statistics.median(r["pause_s"] for r in runs) for variant, runs in results.items()}
    print(f"python {sys.version.split()[0]}, {args.tickets:,} cached tickets, {args.rounds} ABBA rounds")
    for variant, runs in results.items():
        each = ", ".join(f"{r['pause_s'] * 1000:.1f}" for r in runs)
        median = pause[variant] * 1000
        print(
            f"  {variant:>6}: full collection median {median:.1f} ms (per process: {each} ms); "
            f"tracked objects {runs[0]['tracked_objects']:,}, frozen {runs[0]['frozen_objects']:,}"
        )
    print(f"  freeze / none: {pause['freeze'] / pause['none']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
