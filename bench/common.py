"""Shared helpers: timing, memory, and the result every benchmark reports."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Result:
    """One benchmark's outcome: subject and baseline cost in the same unit, and their ratio.

    `ratio` is always a ratio of costs (time or bytes), subject over baseline: above 1 means
    the subject costs more than the baseline. For a rate (`rate=True`, e.g. starts/s) the
    cost is the inverse, so the ratio is baseline rate / subject rate.
    """

    name: str
    metric: str
    unit: str
    subject: float
    baseline: float
    notes: list[str] = field(default_factory=list)
    rate: bool = False
    goal: str = ""  # the target this measure is held to (issue 7), for the reader

    @property
    def fraction(self) -> float:
        """For a rate: the subject's rate as a fraction of the baseline's (1 / ratio)."""
        return self.subject / self.baseline if self.baseline else float("inf")

    @property
    def ratio(self) -> float:
        cost, base = (self.baseline, self.subject) if self.rate else (self.subject, self.baseline)
        return cost / base if base else float("inf")

    def line(self) -> str:
        rate = f" (rate at {self.fraction:.2f}x the baseline's)" if self.rate else ""
        goal = f" [goal: {self.goal}]" if self.goal else ""
        return (
            f"[{self.name}] {self.metric}: {self.subject:,.2f} {self.unit} vs baseline "
            f"{self.baseline:,.2f} {self.unit} -> ratio {self.ratio:.2f}x{rate}{goal}"
        )


def best_time_per_call(fn: Callable[[], int], rounds: int) -> float:
    """Seconds per call of the best round; `fn` runs one round and returns its call count.

    The minimum over rounds is the least disturbed by other load on the machine.
    """
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        calls = fn()
        elapsed = time.perf_counter() - started
        best = min(best, elapsed / calls)
    return best


def interleaved(subject: Callable[[], int], baseline: Callable[[], int], rounds: int) -> tuple[float, float]:
    """Best seconds per call of subject and baseline, alternating rounds so drift hits both."""
    subject_best = baseline_best = float("inf")
    for _ in range(rounds):
        subject_best = min(subject_best, best_time_per_call(subject, 1))
        baseline_best = min(baseline_best, best_time_per_call(baseline, 1))
    return subject_best, baseline_best


def rss_bytes() -> int:
    """This process's resident set size now (VmRSS), in bytes. Linux only."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; nan for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
