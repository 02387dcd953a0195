"""PostgreSQL fast path for the hot read views: one statement per view, run on the driver connection.

The lookup benchmark (bench/crm_lookup.py) showed where a read's time went on PostgreSQL: the
database answered an order lookup in ~0.06 ms, the wire added ~0.2 ms per statement, and the
SQLAlchemy async layers added ~0.4 ms per statement on top. So the views that agents and the bot hit
on every contact (an order with its lines and history; the customer 360) are built here as *one*
statement each, nesting the child rows as JSON (``json_agg``), and sent straight to asyncpg on the
connection SQLAlchemy already holds (same transaction, same pool). SQLite keeps the portable
statements in the repository modules: there a statement is a function call, not a round trip.

Rows come back as :class:`types.SimpleNamespace` objects with the same attributes and Python types
as the Core rows of the portable path (timestamps timezone-aware in UTC, dates as ``date``), so the
callers and serialisers cannot tell the two paths apart; the repository tests run both.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from types import SimpleNamespace
from typing import Any, Iterable, Sequence

from sqlalchemy import Date, Table
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.models import UTCDateTime

Reader = AsyncSession | AsyncConnection


def is_postgres(s: Reader) -> bool:
    """Whether this session or connection talks to PostgreSQL."""
    bind = s.bind if isinstance(s, AsyncSession) else s
    return bind is not None and bind.dialect.name == "postgresql"


async def driver(s: Reader) -> Any:
    """The asyncpg connection under a session or connection (in its current transaction, if any)."""
    conn = await s.connection() if isinstance(s, AsyncSession) else s
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def fetchrow(s: Reader, sql: str, *args: Any) -> Any:
    """Run one statement on the driver connection and return its first record (or None)."""
    return await (await driver(s)).fetchrow(sql, *args)


async def fetch(s: Reader, sql: str, *args: Any) -> list[Any]:
    """Run one statement on the driver connection and return all its records."""
    return list(await (await driver(s)).fetch(sql, *args))


def _parsers(table: Table) -> dict[str, Any]:
    """For each column whose JSON form is a string but whose Python form is not, how to read it."""
    out: dict[str, Any] = {}
    for column in table.columns:
        if isinstance(column.type, UTCDateTime):
            out[column.name] = _timestamp
        elif isinstance(column.type, Date):
            out[column.name] = date.fromisoformat
    return out


def _timestamp(value: str) -> datetime:
    """A ``timestamptz`` as PostgreSQL writes it in JSON, read back as an aware UTC datetime."""
    when = datetime.fromisoformat(value)
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


_PARSERS: dict[str, dict[str, Any]] = {}


def json_rows(table: Table, items: Iterable[dict[str, Any]] | None) -> list[SimpleNamespace]:
    """Rows nested by ``json_agg`` turned into attribute rows with the column types of ``table``."""
    parsers = _PARSERS.get(table.name)
    if parsers is None:
        parsers = _PARSERS[table.name] = _parsers(table)
    out = []
    for item in items or ():
        for name, parse in parsers.items():
            value = item.get(name)
            if value is not None:
                item[name] = parse(value)
        out.append(SimpleNamespace(**item))
    return out


def record_row(record: Any, columns: Sequence[str]) -> SimpleNamespace:
    """The named columns of an asyncpg record as an attribute row (timestamps normalised to UTC)."""
    values = {}
    for name in columns:
        value = record[name]
        if isinstance(value, datetime):
            value = value.astimezone(timezone.utc)
        values[name] = value
    return SimpleNamespace(**values)
