"""The raw storm's no-op deadline (`bench/storm_parts.py`), which every storm figure is reported
beside: it records its due time once, and with `--storm-raw-warnings` its warning first, each as
its own row, which `raw_fired` tells apart."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench import storm_parts


async def _fire(env: WorkflowEnvironment, tmp_path: Path, warn: bool) -> storm_parts.ReadModelAccess:
    access = storm_parts.ReadModelAccess(str(tmp_path / "raw.db"))
    await storm_parts.create_raw_table(access)
    recorder = storm_parts.RawRecorder(access.path)
    queue = f"raw-{uuid.uuid4().hex[:8]}"
    now = await env.get_current_time()
    due = now + timedelta(hours=2)
    warn_at = (due - timedelta(minutes=30)).isoformat() if warn else None
    async with Worker(
        env.client, task_queue=queue, workflows=[storm_parts.RawStormDeadline], activities=[recorder.fire]
    ):
        await env.client.execute_workflow(
            storm_parts.RawStormDeadline.run,
            args=[due.isoformat(), warn_at],
            id=f"raw-due-{queue}",
            task_queue=queue,
        )
    return access


async def test_a_raw_deadline_records_its_due_time_once(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    access = await _fire(time_skipping_env, tmp_path, warn=False)
    deadlines, warnings = await storm_parts.raw_fired(access)
    assert len(deadlines) == 1
    assert warnings == {}


async def test_a_raw_deadline_with_a_warning_records_both_apart(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    access = await _fire(time_skipping_env, tmp_path, warn=True)
    deadlines, warnings = await storm_parts.raw_fired(access)
    [due], [warning] = deadlines, warnings
    assert warning == due + storm_parts.WARNING_SUFFIX
