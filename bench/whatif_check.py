"""What-if (issue 20): the outcome checksum, the subject's CPU time and its profile.

`python -m bench.whatif_check checksum [--tickets 2000]`: one sha256 over what the bench's
tickets come to: per ticket, both results of `run_both` (what what-if answers), and for its
run under the pinned terms and its run under the candidate, made in full with `simulate` (as
the workflow makes them), the final state (JSON), every event and every notice (JSON) and the
refused actions. A change that leaves every outcome alone leaves it equal.

`python -m bench.whatif_check cpu [--tickets 20000]`: the bench's subject (`run_both` per ticket,
then the groups and flips) timed with `time.process_time`, the records built beforehand: CPU
time is steadier than wall time on a shared machine. Pin it to one core with `taskset -c 1`.

`python -m bench.whatif_check profile [--tickets 3000]`: the subject under cProfile, the top
functions by their own time.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import time

from bench.whatif_bench import candidate, recorded
from workflows import policy
from workflows.whatif import RecordedTicket, TicketResult, entitlement_under, run_both, simulate
from workflows.whatif_report import GroupBy, flips_of, report


def checksum(tickets: int = 2_000) -> str:
    cases = recorded(tickets)
    rules = candidate()
    digest = hashlib.sha256()
    with policy.candidate(rules) as key:
        for ticket in cases:
            after = entitlement_under(ticket.opened.entitlement, rules, key)
            digest.update(repr(run_both(ticket, after)).encode())
            for run in (simulate(ticket), simulate(ticket, after)):
                digest.update(run.state.model_dump_json().encode())
                for event in run.events:
                    digest.update(event.model_dump_json().encode())
                for notice in run.notifications:
                    digest.update(notice.model_dump_json().encode())
                digest.update(repr([(r.at, r.action, why) for r, why in run.refused]).encode())
    return digest.hexdigest()


def subject(cases: list[RecordedTicket]) -> int:
    """The bench's subject (bench/whatif_bench.py): every ticket's what-if, the report, the flips."""
    rules = candidate()
    pairs: list[tuple[TicketResult, TicketResult]] = []
    with policy.candidate(rules) as key:
        for ticket in cases:
            pairs.append(run_both(ticket, entitlement_under(ticket.opened.entitlement, rules, key)))
    report(pairs, GroupBy.SEVERITY)
    return sum(bool(flips_of(before, after)) for before, after in pairs)


def cpu(tickets: int = 20_000) -> tuple[float, int]:
    """CPU seconds of the subject over `tickets` records, and how many tickets flip."""
    cases = recorded(tickets)
    started = time.process_time()
    flipped = subject(cases)
    return time.process_time() - started, flipped


def profile(tickets: int = 3_000, top: int = 25) -> None:
    cases = recorded(tickets)
    profiler = cProfile.Profile()
    profiler.runcall(subject, cases)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["checksum", "cpu", "profile"])
    parser.add_argument("--tickets", type=int)
    args = parser.parse_args()
    if args.what == "checksum":
        print(checksum(args.tickets or 2_000))
    elif args.what == "cpu":
        tickets = args.tickets or 20_000
        seconds, flipped = cpu(tickets)
        print(
            f"{tickets:,} tickets: {seconds:.2f} s of CPU ({seconds / tickets * 1e6:,.1f} µs/ticket, "
            f"{seconds / tickets * 100_000:.1f} s per 100,000), {flipped:,} flip"
        )
    else:
        profile(args.tickets or 3_000)


if __name__ == "__main__":
    main()
