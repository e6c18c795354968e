"""The throughput baseline: a workflow that does one empty activity and then waits.

Kept in its own module with nothing but Temporal imports, because the workflow sandbox
re-imports this module for every run. Nothing may run at import time.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    """Starts, records one step (like a ticket's first sync), then stays open until told."""

    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity("bench_touch", start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: self._done)

    @workflow.signal
    def finish(self) -> None:
        self._done = True
