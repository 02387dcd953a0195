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


def _channels_migration_with_data(url: str) -> None:
    """0004 -> 0005 on a SQLite database with data: duplicates closed, capacities extended, new columns usable."""
    import json

    import sqlalchemy as sa

    upgrade(url, "0004")
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO customers (id, display_name, tier, created_at, updated_at) VALUES (1, 'A', 'standard', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        for cid, channel in ((1, "sms"), (2, "sms"), (3, "chat")):
            c.execute(sa.text(
                "INSERT INTO conversations (id, customer_id, channel, status, priority, subject, last_seq, created_at, updated_at)"
                f" VALUES ({cid}, 1, '{channel}', 'queued', 0, '', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ))
        c.execute(sa.text(
            "INSERT INTO agents (id, username, display_name, password_hash, role, skills, capacity, active, created_at)"
            " VALUES (1, 'x', 'X', 'h', 'agent', '{}', :cap, 1, CURRENT_TIMESTAMP)"
        ), {"cap": json.dumps({"chat": 3, "phone": 1})})
    upgrade(url)
    with engine.begin() as c:
        rows = c.execute(sa.text("SELECT id, status, disposition, thread_key, customer_address FROM conversations ORDER BY id")).all()
        cap = json.loads(c.execute(sa.text("SELECT capacity FROM agents WHERE id = 1")).scalar_one())
        c.execute(sa.text("INSERT INTO webhook_receipts (provider, kind, key, payload, received_at) VALUES ('twilio', 'inbound', 'SM1', '{}', CURRENT_TIMESTAMP)"))
        try:
            c.execute(sa.text("INSERT INTO webhook_receipts (provider, kind, key, payload, received_at) VALUES ('twilio', 'inbound', 'SM1', '{}', CURRENT_TIMESTAMP)"))
            duplicate_refused = False
        except sa.exc.IntegrityError:
            duplicate_refused = True
    engine.dispose()
    assert [(r.id, r.status, r.disposition) for r in rows] == [(1, "closed", "duplicate"), (2, "queued", None), (3, "queued", None)]
    assert all(r.thread_key is None and r.customer_address == "" for r in rows)
    assert cap == {"chat": 3, "phone": 1, "sms": 4, "whatsapp": 4}
    assert duplicate_refused


def test_the_channels_migration_runs_forward_on_data(tmp_path: Path) -> None:
    _channels_migration_with_data(f"sqlite+aiosqlite:///{tmp_path}/data.db")
    assert asyncio.run(_diff(f"sqlite+aiosqlite:///{tmp_path}/data.db")) == []
