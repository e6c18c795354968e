"""`escalator up` without the stack around it: where it makes the demo keys (issue 17 §6), and
how it keeps its children running (issue 17 §7), on real child processes that exit as told.

The whole stack under `escalator up`, killed and healed, is in tests/test_deploy_static.py and
tests/test_fault_drills.py.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from runtime.settings import Settings
from store import catalog, keys
from store.keys import DEMO_KEYS
from worker import cli
from worker.demo import demo_keys_refusal, is_embedded_database, print_banner, seed_for_up
from worker.serve import Stop
from worker.supervisor import MAX_RESTART_BACKOFF, Child, RestartPolicy, dev_server_for, keep_running

# --- The demo keys go only where they cannot open a real database --------------------------------


async def demo_keys_present(session: AsyncSession) -> set[str]:
    """The demo secrets that open something in this database."""
    return {secret for secret in DEMO_KEYS if await keys.principal_for_secret(session, secret) is not None}


def test_the_embedded_database_is_the_default_or_escalator_db_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert is_embedded_database(Settings())
    assert is_embedded_database(
        Settings(data_dir=data, database_url=f"sqlite+aiosqlite:///{data}/escalator.db")
    )
    assert is_embedded_database(
        Settings(data_dir=data, database_url=f"sqlite:///{data}/../data/escalator.db")
    )
    for elsewhere in (
        f"sqlite+aiosqlite:///{tmp_path}/escalator.db",
        f"sqlite+aiosqlite:///{data}/other.db",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://escalator:s3cret@db.internal/escalator",
        "not a url",
    ):
        assert not is_embedded_database(Settings(data_dir=data, database_url=elsewhere)), elsewhere


async def test_up_against_another_database_seeds_the_catalog_but_refuses_the_demo_keys_and_says_why(
    db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    # db_url is an SQLite file outside the data dir, or PostgreSQL when CI provides it.
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url.replace("escalator.db", "prod.db"))
    async with sessionmaker() as session:
        refusal = await seed_for_up(session=session, settings=settings, demo=False)
        assert await demo_keys_present(session) == set()
        assert await keys.list_keys(session=session) == []
        assert await catalog.get_customer(session=session, customer_id="acme") is not None

    assert refusal is not None
    assert refusal.startswith("Not creating the demo API keys: ESCALATOR_DATABASE_URL is ")
    assert f"not the embedded {tmp_path / 'data' / 'escalator.db'}" in refusal
    assert "escalator up --demo" in refusal and "escalator keys create" in refusal


async def test_up_with_demo_or_on_the_embedded_database_makes_the_demo_keys(
    db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    elsewhere = Settings(data_dir=tmp_path / "data", database_url=db_url.replace("escalator.db", "prod.db"))
    async with sessionmaker() as session:
        assert await seed_for_up(session=session, settings=elsewhere, demo=True) is None
        assert await demo_keys_present(session) == set(DEMO_KEYS)
    # The embedded database: db_url's SQLite file is escalator.db in tmp_path.
    embedded = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}")
    assert demo_keys_refusal(embedded, demo=False) is None


def test_the_banner_without_demo_keys_says_why_and_shows_no_demo_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url="postgresql+asyncpg://app:s3cret@db.internal/escalator"
    )
    refusal = demo_keys_refusal(settings, demo=False)
    assert refusal is not None
    print_banner(settings, dev_server_for(settings), keys_refusal=refusal)
    printed = capsys.readouterr().out

    assert f"No demo API keys. {refusal}" in printed
    assert "postgresql+asyncpg://app:***@db.internal/escalator" in printed
    assert "s3cret" not in printed
    assert not [secret for secret in DEMO_KEYS if secret in printed]
    assert "-H 'authorization: Bearer <your key>'" in printed


def test_up_takes_a_demo_flag() -> None:
    assert cli.build_parser().parse_args(["up", "--demo"]).demo is True
    assert cli.build_parser().parse_args(["up"]).demo is False


# --- Children are restarted with backoff, and a crash loop stops the stack ----------------------------


def exiting_child(name: str, status: int) -> Child:
    """A child process that exits at once with `status`."""
    return Child(name, [sys.executable, "-c", f"raise SystemExit({status})"], {}, stop_timeout=5)


def test_restart_backoff_doubles_up_to_its_ceiling_and_old_restarts_leave_the_window() -> None:
    policy = RestartPolicy(limit=5, window=60, backoff=1.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert policy.delay(7) == MAX_RESTART_BACKOFF == 30.0
    child = exiting_child("worker", 0)
    child.restarts.extend([100.0, 130.0, 150.0])
    assert child.restarts_within(60, now=155.0) == 3
    assert child.restarts_within(60, now=185.0) == 2  # the one at 100 s is more than 60 s ago
    assert child.restarts_within(60, now=300.0) == 0


async def test_a_child_that_keeps_dying_is_restarted_then_stops_the_stack_as_a_crash_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = RestartPolicy(limit=3, window=60, backoff=0.01)
    child = exiting_child("worker", 3)
    stop = Stop()
    caplog.set_level(logging.WARNING, logger="escalator")
    await child.start()
    first = child.process

    await asyncio.wait_for(keep_running(child, stop, policy), 30)

    # Started three more times, each after its logged backoff, then given up on.
    assert child.process is not first and len(child.restarts) == 3
    restarting = [r.getMessage() for r in caplog.records if "restarting it in" in r.getMessage()]
    assert restarting == [
        f"The worker exited with status 3; restarting it in {delay} s (restart {n} of 3 allowed within 60 s)."
        for n, delay in ((1, "0.0"), (2, "0.0"), (3, "0.0"))
    ]
    assert sum("Restarted the worker: pid" in r.getMessage() for r in caplog.records) == 3
    assert stop.is_set() and stop.cause == "after a crash loop"
    assert (
        stop.failure == "the worker exited 4 times within 60 s (last with status 3), so the stack was stopped"
    )


class Heard(logging.Handler):
    """Sets `event` when a record on its logger says `text`."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_a_stop_during_the_backoff_restarts_nothing() -> None:
    policy = RestartPolicy(limit=5, window=60, backoff=MAX_RESTART_BACKOFF)
    child = exiting_child("API", 1)
    stop = Stop()
    restarting = Heard("The API exited with status 1; restarting it in 30.0 s")
    logging.getLogger("escalator").addHandler(restarting)
    try:
        await child.start()
        first = child.process
        keeping = asyncio.create_task(keep_running(child, stop, policy))
        # The child has died, and its restart waits out the backoff.
        await asyncio.wait_for(restarting.event.wait(), 10)
        stop.stop("on SIGTERM")
        await asyncio.wait_for(keeping, 5)
    finally:
        logging.getLogger("escalator").removeHandler(restarting)

    assert child.process is first and first is not None and first.returncode == 1
    assert stop.failure is None and stop.cause == "on SIGTERM"


async def test_a_running_child_is_left_alone_until_the_stop_and_then_stopped() -> None:
    child = Child("worker", [sys.executable, "-c", "import signal; signal.pause()"], {}, stop_timeout=5)
    stop = Stop()
    await child.start()
    keeping = asyncio.create_task(keep_running(child, stop, RestartPolicy(limit=5, window=60, backoff=0)))
    assert child.running
    stop.stop("on SIGINT")
    await asyncio.wait_for(keeping, 5)
    assert child.running and not child.restarts
    await child.stop()
    assert child.process is not None and child.process.returncode == -15


async def test_with_no_restarts_allowed_the_first_death_stops_the_stack() -> None:
    child = exiting_child("worker", 9)
    stop = Stop()
    await child.start()
    first = child.process

    await asyncio.wait_for(keep_running(child, stop, RestartPolicy(limit=0, window=60, backoff=1)), 10)

    assert child.process is first and not child.restarts
    assert stop.failure == (
        "the worker exited with status 9 and restarts are off (ESCALATOR_UP_RESTART_LIMIT=0), "
        "so the stack was stopped"
    )
