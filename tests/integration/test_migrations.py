"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from crm_store.db import metadata
from crm_store.migrate import upgrade


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
    finally:
        await engine.dispose()


def _in_thread(fn, *args):  # type: ignore[no-untyped-def]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    upgrade(url)
    assert asyncio.run(_diff(url)) == []


def test_postgres_migrations_match_models(pg_url: str) -> None:
    # pg_url was migrated by the fixture; the diff runs in a thread (the fixture set-up may own a loop)
    assert _in_thread(lambda: asyncio.run(_diff(pg_url))) == []


def test_migrations_are_repeatable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/again.db"
    upgrade(url)
    upgrade(url)  # a second run finds nothing to do and does not fail
    assert asyncio.run(_diff(url)) == []
