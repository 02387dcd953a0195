"""Point reads on the hot connect path: the customer behind a contact address, in one indexed lookup.

Every widget connect asks "who is this web visitor?". Through an ORM session that is a pool checkout,
a BEGIN, a statement, a rollback and, on SQLite, several thread hops: about 4 ms of CPU, which capped a
hub at ~150 connects/s (bench/connections.py). This module answers the same question for a fraction of
that:

* **SQLite (a file)**: one ``SELECT`` on a connection of the event loop's own. In WAL mode a reader
  never waits for a writer, and the connection has ``busy_timeout=0``, so the call cannot block on a
  lock; an indexed point lookup takes tens of microseconds, less than the thread hand-off it replaces
  (the same reasoning as the SQLite message log). Should SQLite still answer "busy" or "locked" (a WAL
  recovery), the read falls back to the pooled path.
* **Anything else** (PostgreSQL): one Core statement on a bare pooled connection (``Database.reader()``).

A customer merged into another is followed through the ORM path (rare, and it needs the chain).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import Any, Sequence

from sqlalchemy import text
from sqlalchemy.engine import make_url

from crm_store.db import Database

_LOOKUP = (
    "SELECT c.id, c.display_name, c.merged_into_id FROM contact_points p JOIN customers c ON c.id = p.customer_id "
    "WHERE p.kind = :kind AND p.value = :value"
)
_LOOKUP_QMARK = _LOOKUP.replace(":kind", "?").replace(":value", "?")


@dataclass(frozen=True)
class CustomerRef:
    """Who is behind an address: the customer's id and display name."""

    id: int
    display_name: str


@dataclass(frozen=True)
class OrderRef:
    """An order as a greeting speaks of it: its number, status and promised date."""

    id: int
    status: str
    promised_date: date | None


class PointReads:
    """Cheap, read-only lookups for the connect path (see the module docstring).

    :param db: the contact repository's database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        database = make_url(db.url).database or ""
        self._sqlite_path = database if db.dialect == "sqlite" and database not in ("", ":memory:") else None
        self._conn: sqlite3.Connection | None = None
        self.fallbacks = 0  # lookups that SQLite answered busy/locked inline (tests and diagnostics)

    def _inline_conn(self) -> sqlite3.Connection:
        """The event loop's read connection: never waits for a lock."""
        if self._conn is None:
            assert self._sqlite_path is not None
            conn = sqlite3.connect(self._sqlite_path, isolation_level=None, timeout=0.0, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA query_only=ON")
            self._conn = conn
        return self._conn

    async def customer_by_contact(self, kind: str, value: str) -> CustomerRef | None:
        """The customer owning the contact point ``(kind, value)`` (a normalised address), or None.

        :param kind: a contact kind (``web``, ``email``, ``phone``...).
        :param value: the address exactly as stored (normalised by the caller).
        """
        row: tuple[int, str | None, int | None] | None = None
        inline_done = False
        if self._sqlite_path is not None:
            try:
                row = self._inline_conn().execute(_LOOKUP_QMARK, (kind, value)).fetchone()
                inline_done = True
            except sqlite3.OperationalError:  # busy or locked: take the pooled path, which may wait
                self.fallbacks += 1
        if not inline_done:
            async with self.db.reader() as conn:
                found = (await conn.execute(text(_LOOKUP), {"kind": kind, "value": value})).first()
            row = None if found is None else (int(found[0]), found[1], found[2])
        if row is None:
            return None
        customer_id, name, merged_into = row
        if merged_into is not None:
            return await self._follow_merge(int(customer_id))
        return CustomerRef(int(customer_id), name or "")

    async def latest_order_in(self, customer_id: int, statuses: Sequence[str]) -> OrderRef | None:
        """The customer's newest order in one of ``statuses`` (a phone greeting's "your order 10234 ships
        tomorrow"), in one indexed read: no ORM, no session.

        :param customer_id: the customer (as stored: a merged-away customer's orders moved with the merge).
        :param statuses: the order statuses that count (1 to 10 of them).
        """
        wanted = tuple(str(x) for x in statuses)[:10]
        if not wanted:
            return None
        tail = "ORDER BY created_at DESC, id DESC LIMIT 1"
        row: tuple[Any, ...] | None = None
        inline_done = False
        if self._sqlite_path is not None:
            marks = ", ".join("?" for _ in wanted)
            sql = f"SELECT id, status, promised_date FROM orders WHERE customer_id = ? AND status IN ({marks}) {tail}"
            try:
                row = self._inline_conn().execute(sql, (int(customer_id), *wanted)).fetchone()
                inline_done = True
            except sqlite3.OperationalError:  # busy or locked: the pooled path
                self.fallbacks += 1
        if not inline_done:
            names = {f"s{i}": v for i, v in enumerate(wanted)}
            marks = ", ".join(f":{n}" for n in names)
            sql = f"SELECT id, status, promised_date FROM orders WHERE customer_id = :customer AND status IN ({marks}) {tail}"
            async with self.db.reader() as conn:
                found = (await conn.execute(text(sql), {"customer": int(customer_id), **names})).first()
            row = None if found is None else tuple(found)
        if row is None:
            return None
        promised = row[2]
        if isinstance(promised, str):
            promised = date.fromisoformat(promised[:10])
        return OrderRef(int(row[0]), str(row[1]), promised if isinstance(promised, date) else None)

    async def _follow_merge(self, customer_id: int) -> CustomerRef:
        """The customer a merged-away customer now lives on."""
        from crm_store.repositories import customers as customers_repo

        async with self.db.session() as s:
            customer = await customers_repo.get_customer(s, customer_id)
        assert customer.id is not None
        return CustomerRef(customer.id, customer.display_name or "")

    def close(self) -> None:
        """Close the inline connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
