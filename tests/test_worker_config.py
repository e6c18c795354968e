"""How the worker is sized: its cache of open tickets comes from the measured memory per ticket."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from runtime.settings import Settings
from worker import worker
from worker.worker import CACHED_TICKET_BYTES, MIN_CACHED_WORKFLOWS, build_worker, max_cached_workflows

GIB = 1024**3


def test_the_cache_holds_a_quarter_of_the_memory_in_open_tickets() -> None:
    # 8 GiB: 2 GiB of open tickets at the measured ~224 KiB each.
    assert max_cached_workflows(8 * GIB) == 2 * GIB // CACHED_TICKET_BYTES == 9362
    assert max_cached_workflows(32 * GIB) == 8 * GIB // CACHED_TICKET_BYTES == 37449


def test_a_small_box_keeps_the_sdk_default_cache() -> None:
    assert max_cached_workflows(GIB // 2) == MIN_CACHED_WORKFLOWS == 1000


def test_a_container_limit_below_the_physical_memory_sizes_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = tmp_path / "memory.max"
    limit.write_text("4294967296\n")  # 4 GiB
    monkeypatch.setattr(worker, "_CGROUP_LIMITS", (limit,))
    assert worker.usable_memory() == min(4 * GIB, _physical())
    limit.write_text("max\n")  # no limit: the physical memory
    assert worker.usable_memory() == _physical()


def _physical() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


async def test_the_worker_is_built_with_that_cache(
    time_skipping_env: WorkflowEnvironment, workflow_db: async_sessionmaker[AsyncSession]
) -> None:
    built = build_worker(time_skipping_env.client, workflow_db, Settings(task_queue="sizing"))
    assert built.config()["max_cached_workflows"] == max_cached_workflows()


async def test_the_worker_waits_for_its_sticky_queue_as_long_as_the_setting_says(
    time_skipping_env: WorkflowEnvironment, workflow_db: async_sessionmaker[AsyncSession]
) -> None:
    default = build_worker(time_skipping_env.client, workflow_db, Settings(task_queue="sticky-default"))
    longer = build_worker(
        time_skipping_env.client,
        workflow_db,
        Settings(task_queue="sticky-longer", sticky_timeout_seconds=120),
    )
    assert default.config()["sticky_queue_schedule_to_start_timeout"] == timedelta(
        seconds=Settings().sticky_timeout_seconds
    )
    assert longer.config()["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=120)
