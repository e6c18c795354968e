"""Database fixtures: every DB test runs on SQLite, and on PostgreSQL too when
ESCALATOR_TEST_POSTGRES_URL is set (CI sets it; then nothing may skip).

Each test gets a fresh, migrated schema: a new SQLite file, or a new PostgreSQL schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from runtime.settings import get_settings
from store.db import async_database_url, make_engine, make_sessionmaker, migrate

POSTGRES_URL = os.environ.get("ESCALATOR_TEST_POSTGRES_URL")
# Built at import time so an unset PostgreSQL URL deselects the backend instead of skipping.
DB_BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(params=DB_BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        assert POSTGRES_URL is not None
        return async_database_url(POSTGRES_URL).render_as_string(hide_password=False)
    return f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}"


@pytest.fixture
async def db_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    if not db_url.startswith("postgresql"):
        engine = make_engine(db_url)
        await migrate(engine)
        yield engine
        await engine.dispose()
        return

    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(db_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(db_url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
def sessionmaker(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(db_engine)


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """ESCALATOR_DATABASE_URL for the `escalator` commands a test runs: a SQLite file of its own."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("ESCALATOR_DATABASE_URL", url)
    monkeypatch.setenv("ESCALATOR_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
