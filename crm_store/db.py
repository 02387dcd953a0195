"""The database handle: async engines, read sessions and write transactions, for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as _postgresql_insert
from sqlalchemy.dialects.sqlite import insert as _sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store import models  # noqa: F401  (registers the tables on SQLModel.metadata)

metadata = SQLModel.metadata


def conflict_insert(dialect: str) -> Any:
    """``insert`` with ``ON CONFLICT`` for this database (``Database.dialect``, or a session's
    ``s.get_bind().dialect.name``): PostgreSQL's, else SQLite's."""
    return _postgresql_insert if dialect == "postgresql" else _sqlite_insert


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Turn on what SQLite needs to behave like a server database: WAL, foreign keys, a busy wait."""
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class Database:
    """Holds the engines of one database and hands out sessions.

    Reads use :meth:`session`; writes use :meth:`transaction`, which commits on success and rolls back
    on any error, so nothing is half-written. On SQLite a write transaction starts with
    ``BEGIN IMMEDIATE`` so two writers queue instead of failing on a lock upgrade.

    :param url: SQLAlchemy async URL (``sqlite+aiosqlite:///file.db`` or ``postgresql+asyncpg://...``).
    """

    def __init__(self, url: str, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database or ""
            memory = database in ("", ":memory:")
            if not memory:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
            self.engine: AsyncEngine = create_async_engine(url, echo=echo, **kwargs)
            self._write_engine: AsyncEngine = (
                self.engine if memory else create_async_engine(url, echo=echo, pool_size=1, max_overflow=0)
            )
            for eng, begin in ((self.engine, "BEGIN"), (self._write_engine, "BEGIN IMMEDIATE")):
                event.listen(eng.sync_engine, "connect", _sqlite_pragmas)
                event.listen(eng.sync_engine, "begin", lambda conn, b=begin: conn.exec_driver_sql(b))
        else:
            # Reads run in autocommit with no pre-ping: no BEGIN/ROLLBACK/ping round trips per lookup
            # (the benchmark showed ~1 ms saved per read); stale connections are recycled instead.
            self.engine = create_async_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                isolation_level="AUTOCOMMIT", pool_pre_ping=False, pool_recycle=1800,
            )
            self._write_engine = create_async_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only (on PostgreSQL each statement sees the latest commit: no snapshot)."""
        async with AsyncSession(self.engine, expire_on_commit=False) as s:
            yield s

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        """A bare pooled connection for read views (no ORM session: ~0.3 ms less per lookup).

        The repository's read views (orders, timeline, customer 360) accept it as well as a session.
        """
        async with self.engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed together on success, or not at all."""
        async with AsyncSession(self._write_engine, expire_on_commit=False) as s:
            async with s.begin():
                yield s

    async def create_all(self) -> None:
        """Create every table directly from the models (tests; production uses migrations)."""
        async with self._write_engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def drop_all(self) -> None:
        """Drop every table (tests only)."""
        async with self._write_engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)

    async def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - health check reports, never raises
            return False

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._write_engine is not self.engine:
            await self._write_engine.dispose()
