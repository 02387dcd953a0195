"""Shared fixtures: a fresh database on SQLite and on the real PostgreSQL server, per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import AsyncIterator, Iterator

import pytest

from crm_store.db import Database, metadata
from crm_store.migrate import upgrade

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def _pg_admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server's admin database (outside a transaction)."""
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _in_thread(fn, *args):  # type: ignore[no-untyped-def]
    """Run blocking set-up (that may start its own event loop) off the test's running loop."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to the newest schema, dropped at the end."""
    name = f"cc_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        _in_thread(asyncio.run, _pg_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:  # pragma: no cover - the suite needs the real server; say so clearly
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}); run scripts/ensure-services")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    _in_thread(upgrade, url)
    yield url
    _in_thread(asyncio.run, _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_pg(db: Database) -> None:
    """Empty every table and restart the id sequences."""
    from sqlalchemy import text

    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    """An empty contact repository, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path}/cc.db")
        await database.create_all()
    else:
        database = Database(request.getfixturevalue("pg_url"), pool_size=20)
        await _truncate_pg(database)
    try:
        yield database
    finally:
        await database.dispose()


# Tests that need the real Rasa (its own virtual environment and a trained model): scripts/run-tests runs
# them in a second pytest run (-m rasa) after scripts/ensure-rasa and scripts/train-bot; `make test` runs
# both, `make test-bot` only these, `BOT_TESTS=0 scripts/run-tests` all but these.
_RASA_MODULES = {"test_actions_hub", "test_rasa_project", "test_rest_webhook", "test_bot_through_hub", "test_bot_components", "test_phone_bot"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in _RASA_MODULES:
            item.add_marker(pytest.mark.rasa)
