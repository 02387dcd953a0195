"""The hot path of every chat: append a message to an open conversation, durably, in order, once.

:func:`crm_store.repositories.conversations.append_message` does this inside a caller's transaction,
in four ORM statements. The hub's relay benchmark (bench/chat_relay.py) showed that path costs more
than the whole Socket.IO relay around it, so a message typed into an open conversation goes through
a :class:`MessageLog` instead, with the same guarantees (strictly increasing ``seq`` per
conversation with no gaps, a resend with the same ``client_msg_id`` returns the first copy, nothing
is acknowledged before it is committed) at a fraction of the cost:

* :class:`SqliteMessageLog` — group commit. At most one transaction per 3 ms: appends that
  arrive within 3 ms of the last commit wait for the next one and share it. Under load,
  batches grow and the cost per message falls (one transaction per message took a third of the hub's CPU
  samples at 4,000 msg/s); alone, a message is written at once.
* :class:`PgMessageLog` — group commit too: the appends that arrive while a batch is being committed
  share the next transaction, sent as ONE round trip (a data-modifying CTE per message: dedupe, bump the
  sequence, insert, read the conversation's assignment; pipelined, one implicit transaction). A batch
  that fails (a concurrent duplicate lost its race on a unique index) is written again message by
  message under savepoints, so the duplicate is retried and its neighbours are stored, with no gap.
* :class:`SessionMessageLog` — the portable ORM path, for in-memory SQLite (tests).

An append to a conversation that is closed (or does not exist) writes nothing and returns ``None``:
the caller opens a new conversation through the full path.

Messages of provider channels (an SMS, a WhatsApp message) carry the provider's id (``provider_id``,
unique across all messages: ``uq_messages_provider_id``), their attachments and, for what the shop
sends, a ``delivery_status``. A repeat of a ``provider_id`` returns the first copy (``created`` False),
wherever it was stored: its own conversation (which may differ from the one asked for, or be closed
by now) and that conversation's assignment and status. A ``client_msg_id`` is looked up first, in
the conversation asked for, as :func:`crm_store.repositories.conversations.append_message` does.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol
from weakref import WeakValueDictionary

from sqlalchemy.engine import make_url

from crm_store.db import Database
from crm_store.models import utcnow


@dataclass(frozen=True)
class LoggedMessage:
    """A stored message (the attributes of :class:`crm_store.models.Message` the hub publishes)."""

    id: int
    conversation_id: int
    seq: int
    sender_kind: str
    sender_id: str | None
    body: str
    internal: bool
    client_msg_id: str | None
    created_at: datetime
    provider_id: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    delivery_status: str | None = None


@dataclass(frozen=True)
class LogAppend:
    """The outcome of an append: the message, whether this call stored it, and who serves the conversation."""

    message: LoggedMessage
    created: bool  # False: a resend; ``message`` is the copy stored the first time
    assigned_agent_id: int | None
    status: str


@dataclass(frozen=True)
class _Item:
    conversation_id: int
    sender_kind: str
    body: str
    sender_id: str | None
    client_msg_id: str | None
    internal: bool
    provider_id: str | None = None
    attachments: list[dict[str, Any]] | None = None
    delivery_status: str | None = None


class MessageLog(Protocol):
    """Appends messages to open conversations (see the module docstring)."""

    async def append(
        self, conversation_id: int, sender_kind: str, body: str, *,
        sender_id: str | None = None, client_msg_id: str | None = None, internal: bool = False,
        provider_id: str | None = None, attachments: list[dict[str, Any]] | None = None,
        delivery_status: str | None = None,
    ) -> LogAppend | None:
        """Store one message in an open conversation; None if the conversation is closed or unknown.

        A repeat of ``client_msg_id`` (in this conversation) or of ``provider_id`` (anywhere) stores
        nothing and returns the first copy with ``created`` False.
        """

    async def close(self) -> None:
        """Finish pending work and release resources."""


def open_message_log(db: Database, *, commit_interval: float | None = None) -> MessageLog:
    """The fastest message log for this database.

    ``commit_interval``: the group-commit logs' shortest time between two transactions, in seconds
    (``MESSAGE_COMMIT_INTERVAL_MS``); None keeps each log's own default.
    """
    if db.dialect == "postgresql":
        pg = PgMessageLog(db)
        if commit_interval is not None:
            pg.commit_interval = commit_interval
        return pg
    database = make_url(db.url).database or ""
    if db.dialect == "sqlite" and database not in ("", ":memory:"):
        log = SqliteMessageLog(database)
        if commit_interval is not None:
            log.commit_interval = commit_interval
        _WRITERS[db] = log
        return log
    return SessionMessageLog(db)


_WRITERS: "WeakValueDictionary[Database, SqliteMessageLog]" = WeakValueDictionary()


def sqlite_writer(db: Database) -> "SqliteMessageLog | None":
    """The group-commit writer of this SQLite file database (the message log :func:`open_message_log`
    opened for it and that is not closed), for :meth:`SqliteMessageLog.run`; None on any other database."""
    log = _WRITERS.get(db)
    return None if log is None or log._closed else log


# --- SQLite: group commit on a dedicated thread ------------------------------------------------------

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for DATETIME on SQLite (UTC, no zone)


# the first copy of a resent message, with its conversation's assignment and status
_SQLITE_DUP = (
    "SELECT m.id, m.conversation_id, m.seq, m.sender_kind, m.sender_id, m.body, m.internal, m.created_at,"
    " m.client_msg_id, m.provider_id, m.attachments, m.delivery_status, c.assigned_agent_id, c.status"
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE "
)


def _json_list(raw: Any) -> list[dict[str, Any]]:
    """A JSON column as the driver returns it (text on SQLite and asyncpg, or already decoded)."""
    value = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    return list(value) if isinstance(value, list) else []


class _Busy(Exception):
    """Another connection holds SQLite's write lock: the batch must wait, off the event loop."""


class _GroupCommit:
    """The loop both fast logs share: appends queue up; one batch is written at a time, at most one per
    ``commit_interval`` (a message that finds the log quiet that long goes at once), at most ``max_batch``
    messages each; every waiter learns its own outcome only once its batch is committed (or that the batch
    failed). Subclasses write a batch (``_commit``) and may order it (``_ordered``)."""

    max_batch = 500
    # seconds: at most one transaction per interval (0: the next batch goes when the last is committed). 3 ms, not 1:
    # in bench/chat_relay.py (two A/B pairs on a quiet machine) the embedded hub's server CPU per message fell from
    # 1.56-1.76x the bare relay's to 1.20-1.22x, for ~1.5 ms more at p50; on two nodes (PostgreSQL) 3 ms beat 0 and 5
    commit_interval = 0.003

    def _start_group_commit(self) -> None:
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._writing = False
        self._closed = False
        self._drainer: asyncio.Task[None] | None = None
        self._last_commit = float("-inf")  # loop time the last batch was written
        self.batches = 0  # transactions that carried appends (for the benchmark and tests)
        self.appended = 0  # messages they stored
        self.items = 0  # appends answered (new, resends, refused)

    async def _enqueue(self, entry: Any) -> Any:
        """Queue an append (or a ``run`` item) for the next batch; its outcome once that batch is committed."""
        if self._closed:
            raise RuntimeError("the message log is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((entry, future))
        if not self._writing:
            self._writing = True
            self._drainer = loop.create_task(self._drain())  # kept: the loop only holds tasks weakly
        return await future

    def _ordered(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> list[tuple[Any, asyncio.Future[Any]]]:
        return batch

    async def _commit(self, items: list[Any]) -> list[Any]:
        """Write one batch in one transaction: each item's outcome (an exception for one refused alone)."""
        raise NotImplementedError

    async def _drain(self) -> None:
        """Write batches until nothing is pending (one batch in flight at a time)."""
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                wait = self._last_commit + self.commit_interval - loop.time()
                if wait > 0 and len(self._pending) < self.max_batch:
                    await asyncio.sleep(wait)  # the appends of this interval share the next commit
                self._last_commit = loop.time()
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
                batch = self._ordered(batch)
                try:
                    results = await self._commit([entry for entry, _ in batch])
                except BaseException as exc:  # noqa: BLE001 - nothing committed: every waiter learns it
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self.batches += 1
                for (_, fut), result in zip(batch, results):
                    self.items += 1
                    if isinstance(result, Exception):
                        if not fut.done():
                            fut.set_exception(result)
                    elif not fut.done():
                        self.appended += isinstance(result, LogAppend) and result.created
                        fut.set_result(result)
        finally:
            self._writing = False


class SqliteMessageLog(_GroupCommit):
    """Group commit: the appends of about 3 ms go into one transaction.

    Messages arrive one per event-loop turn or so (each socket's frame is decoded and handled in its
    own turns), so batching "what is pending now" gave one transaction per message even at 4,000
    messages/s (bench/chat_relay.py counted 1.03 messages per batch). A batch is therefore written
    no sooner than ``commit_interval`` after the previous one: a message that finds the log quiet for
    that long is written at once, the others wait at most that long (asyncio's timers run on a
    millisecond clock when the loop is idle, so up to ~2 ms) and share the commit.

    A batch is written **on the event loop** by a connection that never waits for a lock
    (``busy_timeout=0``) and never checkpoints: in WAL mode with ``synchronous=NORMAL`` a commit is
    a write into the OS page cache, tens of microseconds, cheaper than handing the batch to a thread
    (two wake-ups and a self-pipe round trip per batch, measured in bench/chat_relay.py). If another
    connection holds the write lock, the batch goes to the log's thread instead, which waits for the
    lock there. The thread also runs the WAL checkpoints (``PASSIVE``, never blocking writers) about
    once a second while messages are written.
    """

    checkpoint_every = 1.0  # seconds

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="message-log")
        self._start_group_commit()
        self.offloaded = 0  # batches that found the write lock taken and went to the thread
        self._loop_conn: sqlite3.Connection | None = None
        self._last_checkpoint = 0.0
        self._checkpointing: asyncio.Future[Any] | None = None
        self._idle_handle: asyncio.TimerHandle | None = None

    async def append(
        self, conversation_id: int, sender_kind: str, body: str, *,
        sender_id: str | None = None, client_msg_id: str | None = None, internal: bool = False,
        provider_id: str | None = None, attachments: list[dict[str, Any]] | None = None,
        delivery_status: str | None = None,
    ) -> LogAppend | None:
        """Queue the message for the next batch and wait until that batch is committed."""
        item = _Item(conversation_id, sender_kind, body, sender_id, client_msg_id, internal, provider_id,
                     list(attachments) if attachments else None, delivery_status)
        result: LogAppend | None = await self._enqueue(item)
        return result

    async def run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``work(conn)`` inside the next batch's transaction and return its result once committed.

        For the other small writes of a hot path (an email kept before the SMTP 250, the rows an ingest
        marks): they share the appends' group commit and never hold the write lock across an ``await``.
        ``work`` runs synchronously (on the event loop, or on the log's thread when the lock is taken), must
        only touch the database through ``conn`` (it may run twice: a failing batch is written again item by
        item) and should be quick; an exception it raises fails that item alone.
        """
        return await self._enqueue(work)

    def read(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``work(conn)`` now, synchronously, on the event loop's connection, outside any transaction: a
        point read of committed rows (WAL: it never waits for a writer) in microseconds instead of a round
        trip through a pooled session and its thread. Raises ``sqlite3.OperationalError`` when the database
        is busy: the caller reads the other way then."""
        if self._closed:
            raise sqlite3.OperationalError("the message log is closed")
        conn = self._inline_conn()
        if conn.in_transaction:  # pragma: no cover - a batch is written synchronously, never left open
            raise sqlite3.OperationalError("the log's connection is in a transaction")
        return work(conn)

    async def _commit(self, items: list[Any]) -> list[Any]:
        """On the event loop's connection, or on the log's thread when another connection holds the lock."""
        loop = asyncio.get_running_loop()
        try:
            results = self._write(items, self._inline_conn(), inline=True)
        except _Busy:
            self.offloaded += 1
            results = await loop.run_in_executor(self._executor, self._write, items)
        self._maybe_checkpoint(loop)
        return results

    def _inline_conn(self) -> sqlite3.Connection:
        """The event loop's connection: never waits for a lock, never checkpoints."""
        if self._loop_conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=0.0, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._loop_conn = conn
        return self._loop_conn

    def _maybe_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fold the WAL back into the database file now and then, on the thread."""
        now = loop.time()
        if now - self._last_checkpoint < self.checkpoint_every:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._last_checkpoint = now
        self._checkpointing = loop.run_in_executor(self._executor, self._checkpoint)
        # and once the log has been quiet for a moment, start the WAL over (see _checkpoint)
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._idle_handle = loop.call_later(self.idle_truncate_after, self._idle_truncate, loop)

    idle_truncate_after = 2.0  # seconds without a write

    def _idle_truncate(self, loop: asyncio.AbstractEventLoop) -> None:
        self._idle_handle = None
        if self._closed:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            self._idle_handle = loop.call_later(self.idle_truncate_after, self._idle_truncate, loop)
            return
        self._checkpointing = loop.run_in_executor(self._executor, self._checkpoint, True)

    truncate_frames = 4096  # a WAL this long (16 MB of 4 KB pages) that readers kept from restarting is truncated
    truncate_frames_busy = 262_144  # ... and this long (1 GB) even while writes go on

    def _checkpoint(self, idle: bool = False) -> None:
        conn = self._conn()
        try:
            frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
            # Truncating while messages flow costs every writer after it (the chat relay's p99 tripled at 3,000
            # msg/s): only when the log has been quiet, or when the WAL has become very long.
            if frames >= (self.truncate_frames if idle else self.truncate_frames_busy):
                # Readers that always hold a snapshot keep the WAL from starting over, so it grows for as long as
                # writes go on: truncate it at a moment when nobody reads or writes. Never wait for one: a waiting
                # TRUNCATE holds every writer back (the chat relay's p99 doubled with a 50 ms wait); busy now means
                # the next checkpoint tries again.
                conn.execute("PRAGMA busy_timeout=0")
                try:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                finally:
                    conn.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error:  # a busy checkpoint is retried next time
            pass

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (WAL, foreign keys, a busy wait like the rest of the app)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _write(
        self, items: list[Any], conn: sqlite3.Connection | None = None, *, inline: bool = False
    ) -> list[Any]:
        """One transaction for the whole batch.

        The batch is tried without savepoints (an error is near impossible: the duplicate check runs
        under the write lock); if any item fails, the batch is rolled back and written again with a
        savepoint per item, so the bad item fails alone and the others are stored.
        """
        conn = conn or self._conn()
        now = utcnow()
        stamp = now.astimezone(timezone.utc).strftime(_SQLITE_TIME)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if inline:  # the write lock is taken: never wait for it on the event loop
                raise _Busy() from exc
            raise
        try:
            out: list[Any] = [self._write_one(conn, item, now, stamp) for item in items]
            conn.execute("COMMIT")
            return out
        except Exception:  # noqa: BLE001 - an SQL error, or a run() item's own: written again item by item
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if inline:  # the retry item by item may have to wait for the lock: do it on the thread
                raise _Busy()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        out = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                conn.execute("SAVEPOINT m")
                try:
                    out.append(self._write_one(conn, item, now, stamp))
                    conn.execute("RELEASE m")
                except Exception as exc:  # noqa: BLE001 - this item fails alone
                    conn.execute("ROLLBACK TO m")
                    conn.execute("RELEASE m")
                    out.append(exc)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return out

    @staticmethod
    def _write_one(conn: sqlite3.Connection, item: _Item | Callable[[sqlite3.Connection], Any], now: datetime, stamp: str) -> Any:
        if not isinstance(item, _Item):  # run(): a caller's own statements
            return item(conn)
        dup = None
        if item.client_msg_id is not None:
            dup = conn.execute(_SQLITE_DUP + "m.conversation_id = ? AND m.client_msg_id = ?",
                               (item.conversation_id, item.client_msg_id)).fetchone()
        if dup is None and item.provider_id is not None:
            dup = conn.execute(_SQLITE_DUP + "m.provider_id = ?", (item.provider_id,)).fetchone()
        if dup is not None:
            created_at = datetime.strptime(dup[7], _SQLITE_TIME).replace(tzinfo=timezone.utc)
            msg = LoggedMessage(dup[0], dup[1], dup[2], dup[3], dup[4], dup[5], bool(dup[6]), dup[8], created_at,
                                dup[9], _json_list(dup[10]), dup[11])
            return LogAppend(msg, False, dup[12], dup[13])
        bumped = conn.execute(
            "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ? AND status != 'closed'"
            " RETURNING last_seq, assigned_agent_id, status",
            (stamp, item.conversation_id),
        ).fetchone()
        if bumped is None:
            return None
        seq = bumped[0]
        attachments = item.attachments or []
        cur = conn.execute(
            "INSERT INTO messages (conversation_id, seq, sender_kind, sender_id, body, attachments, internal,"
            " client_msg_id, provider_id, delivery_status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item.conversation_id, seq, item.sender_kind, item.sender_id, item.body,
             json.dumps(attachments) if attachments else "[]", int(item.internal), item.client_msg_id,
             item.provider_id, item.delivery_status, stamp),
        )
        assert cur.lastrowid is not None
        msg = LoggedMessage(cur.lastrowid, item.conversation_id, seq, item.sender_kind, item.sender_id, item.body,
                            item.internal, item.client_msg_id, now, item.provider_id, attachments, item.delivery_status)
        return LogAppend(msg, True, bumped[1], bumped[2])

    async def close(self) -> None:
        """Wait for the pending batches, then close the connections."""
        self._closed = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        while self._writing:
            await asyncio.sleep(0.005)
        loop = asyncio.get_running_loop()
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None

        def _close() -> None:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()
                self._local.conn = None

        await loop.run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)


# --- PostgreSQL: group commit, one pipelined transaction per batch ------------------------------------

# One message: skip it if its provider id is stored (anywhere), lock the open conversation, insert with the next
# sequence unless its client id is stored in this conversation (the unique index itself says so: ON CONFLICT),
# bump the sequence, and only when nothing was inserted look the first copy up. Always exactly ONE row (the
# conversation is LEFT JOINed), so that the rows of a pipelined batch (``fetchmany``) line up with its messages.
#
# The client id is checked by its unique index, not by a lookup before the insert: a prepared statement's plan
# made while ``messages`` is nearly empty (a new database, or no statistics: autovacuum off) finds that index and
# ``(conversation_id, seq)``'s equally cheap and takes the second, which then reads the conversation's every
# message on each append (bench/chat_relay.py, two nodes: 5.8 million index entries read for 26,000 appends, the
# backend's CPU a message growing with the conversations). ``pdup`` can only use the provider id's index.
#
# Under READ COMMITTED ``FOR UPDATE`` returns the conversation's latest row (waiting for a writer), so the sequence
# is the latest plus one and the bump's UPDATE, of the row this statement locked, sets exactly that. A row with an
# open conversation and neither a new nor a first copy means that the copy was committed by another transaction
# after this statement began (ON CONFLICT waited for it; the lookup's snapshot is older): written again alone, it
# finds that copy.
_PG_APPEND = """
WITH pdup AS (
  SELECT 1 FROM messages WHERE $8::text IS NOT NULL AND provider_id = $8 LIMIT 1
), conv AS (
  SELECT last_seq FROM conversations
  WHERE id = $1 AND status <> 'closed' AND NOT EXISTS (SELECT 1 FROM pdup)
  FOR UPDATE
), ins AS (
  INSERT INTO messages (conversation_id, seq, sender_kind, sender_id, body, attachments, internal, client_msg_id,
                        provider_id, delivery_status, created_at)
  SELECT $1, last_seq + 1, $2, $3, $4, $9::json, $6, $5, $8, $10::text, $7 FROM conv
  ON CONFLICT (conversation_id, client_msg_id) DO NOTHING
  RETURNING id, seq
), bump AS (
  UPDATE conversations SET last_seq = ins.seq, updated_at = $7 FROM ins WHERE conversations.id = $1
  RETURNING 1
), dup AS (
  SELECT * FROM (
    (SELECT 0 AS pref, id, conversation_id, seq, sender_kind, sender_id, body, internal, client_msg_id, provider_id,
            attachments, delivery_status, created_at
     FROM messages WHERE $5::text IS NOT NULL AND conversation_id = $1 AND client_msg_id = $5)
    UNION ALL
    (SELECT 1, id, conversation_id, seq, sender_kind, sender_id, body, internal, client_msg_id, provider_id,
            attachments, delivery_status, created_at
     FROM messages WHERE $8::text IS NOT NULL AND provider_id = $8)
  ) found WHERE NOT EXISTS (SELECT 1 FROM ins) ORDER BY pref LIMIT 1
)
SELECT c.status, c.assigned_agent_id, i.id AS new_id, i.seq AS new_seq,
       d.id AS dup_id, d.conversation_id AS dup_conv, d.seq AS dup_seq, d.sender_kind AS dup_kind,
       d.sender_id AS dup_sender, d.body AS dup_body, d.internal AS dup_internal, d.client_msg_id AS dup_client,
       d.provider_id AS dup_provider, d.attachments AS dup_attachments, d.delivery_status AS dup_status,
       d.created_at AS dup_at
FROM (SELECT 1) one LEFT JOIN dup d ON true LEFT JOIN ins i ON true
LEFT JOIN conversations c ON c.id = COALESCE(d.conversation_id, $1)
"""


async def _keep_session(conn: Any) -> None:
    """Give a connection back to the log's pool without asyncpg's reset query (a round trip per batch).

    The log only runs its own statements on a checkout and changes no session state (no SET, LISTEN,
    cursors or advisory locks), so there is nothing to reset; asyncpg still rolls back a transaction left
    open before this is called.
    """


class PgMessageLog(_GroupCommit):
    """Group commit on PostgreSQL: the appends that arrive while a batch is being committed share the next one.

    One batch in flight at a time, on one connection of a small asyncpg pool of the log's own, and at most
    one batch sent per ``commit_interval`` (3 ms). A message that finds the log quiet for that long is written
    at once (no added latency); the messages that arrive while a batch is on its way to the server and
    through its commit (its fsync), or within the interval after it, wait and then go together. So under
    load a transaction carries many messages (one WAL flush and one round trip for all of them; and as they
    are acknowledged together, their emits to the other hub processes leave as one pub/sub message), and
    each waits at most about an interval and two commits. (bench/chat_relay.py, two nodes, A/B on a quiet
    machine: at 1,000 msg/s, 1.4 messages a transaction and 0.95 ms of hub CPU a message with no interval;
    3.4 and 0.70 ms with 3 ms; 5 ms batched more but its wait showed in p99.)

    A batch is ONE round trip: the append statement (``_PG_APPEND``) once per message, pipelined with
    asyncpg's ``fetchmany`` (Bind/Execute per message, a single Sync). The extended protocol makes
    everything up to the Sync one implicit transaction, committed at the Sync: the batch is atomic and
    nobody's append returns before that commit. Within the batch the statements run in order and each sees
    the ones before it, so sequences, resends and repeats inside one batch behave as one at a time. The
    messages are sorted by conversation (stable: a conversation's messages keep their order) so that two
    hub processes' batches lock conversations in the same order and never deadlock each other.

    A resend whose first copy another process committed while the batch ran is not an error: the client id's
    unique index makes the insert wait and skip it, and that message alone is written again in a new
    transaction, where it finds the copy (``_PG_APPEND``'s comment).

    If the batch fails (a concurrent duplicate provider id from another process raced its unique index, a deadlock
    with another writer, a refused row), it is rolled back as a whole and written again in one explicit
    transaction, message by message, each in a savepoint: a duplicate that lost its race is retried there
    (it now finds the first copy), any other refused message fails alone, the others are stored. If that
    transaction cannot commit, every append of the batch raises: nothing is acknowledged that is not
    committed.

    ``batches`` counts the transactions that carried appends, ``appended`` the messages they stored,
    ``fallbacks`` the batches written again message by message (for the benchmark and the tests).
    """

    def __init__(self, db: Database, *, pool_size: int = 4) -> None:
        self.db = db
        self.pool_size = pool_size
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._start_group_commit()
        self.fallbacks = 0

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    import asyncpg  # the driver of the PostgreSQL URL; only imported when PostgreSQL is used

                    dsn = make_url(self.db.url).set(drivername="postgresql").render_as_string(hide_password=False)
                    self._pool = await asyncpg.create_pool(
                        dsn, min_size=1, max_size=self.pool_size, statement_cache_size=100, reset=_keep_session,
                    )
        return self._pool

    async def append(
        self, conversation_id: int, sender_kind: str, body: str, *,
        sender_id: str | None = None, client_msg_id: str | None = None, internal: bool = False,
        provider_id: str | None = None, attachments: list[dict[str, Any]] | None = None,
        delivery_status: str | None = None,
    ) -> LogAppend | None:
        """Queue the message for the next batch and wait until that batch is committed."""
        item = _Item(conversation_id, sender_kind, body, sender_id, client_msg_id, internal, provider_id,
                     list(attachments) if attachments else None, delivery_status)
        result: LogAppend | None = await self._enqueue(item)
        return result

    def _ordered(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> list[tuple[Any, asyncio.Future[Any]]]:
        """By conversation (stable: a conversation's messages keep their order): two hub processes' batches lock
        conversations in the same order and never deadlock each other."""
        return sorted(batch, key=lambda entry: entry[0].conversation_id)

    async def _commit(self, items: list[Any]) -> list[Any]:
        return await self._write(items)

    async def _write(self, items: list[_Item]) -> list[LogAppend | None | Exception]:
        """Store a batch in one transaction (see the class docstring); the outcome of each message."""
        import asyncpg

        pool = await self._get_pool()
        now = utcnow()
        args = [
            (item.conversation_id, item.sender_kind, item.sender_id, item.body, item.client_msg_id, item.internal, now,
             item.provider_id, json.dumps(item.attachments) if item.attachments else "[]", item.delivery_status)
            for item in items
        ]
        async with pool.acquire() as conn:
            try:
                rows = await conn.fetchmany(_PG_APPEND, args)  # one round trip, one implicit transaction
            except asyncpg.PostgresError:
                rows = None
            if rows is not None:
                out: list[LogAppend | None | Exception] = []
                for item, one, row in zip(items, args, rows):
                    result = _pg_result(item, row, now)
                    for _ in range(3):  # a copy committed elsewhere meanwhile: alone, in a new transaction, it is found
                        if result is not _RACED:
                            break
                        result = _pg_result(item, await conn.fetchrow(_PG_APPEND, *one), now)
                    out.append(_raced_error(item) if result is _RACED else result)  # type: ignore[arg-type]
                return out
            self.fallbacks += 1
            out = []
            async with conn.transaction():  # one commit for all; a savepoint per message
                for item, one in zip(items, args):
                    outcome: LogAppend | None | Exception | object = None
                    for attempt in range(3):
                        try:
                            async with conn.transaction():
                                row = await conn.fetchrow(_PG_APPEND, *one)
                            outcome = _pg_result(item, row, now)
                            if outcome is not _RACED:
                                break
                        except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError) as exc:
                            outcome = exc  # the same client or provider id raced itself: the first copy exists now
                        except asyncpg.PostgresError as exc:
                            outcome = exc  # this message alone is refused
                            break
                    out.append(_raced_error(item) if outcome is _RACED else outcome)  # type: ignore[arg-type]
            return out

    async def close(self) -> None:
        """Wait for the pending batches, then close the pool."""
        self._closed = True
        while self._writing:
            await asyncio.sleep(0.005)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


_RACED = object()  # a first copy committed by another transaction after the statement began: write it again


def _raced_error(item: _Item) -> Exception:
    return RuntimeError(f"message {item.client_msg_id or item.provider_id!r} kept racing another copy of itself")


def _pg_result(item: _Item, row: Any, now: datetime) -> LogAppend | None | object:
    """One message's outcome from its row of ``_PG_APPEND`` (``_RACED``: write it again)."""
    if row is None or row["status"] is None:
        return None  # unknown conversation
    if row["new_id"] is not None:
        msg = LoggedMessage(row["new_id"], item.conversation_id, row["new_seq"], item.sender_kind, item.sender_id, item.body,
                            item.internal, item.client_msg_id, now, item.provider_id, list(item.attachments or []),
                            item.delivery_status)
        return LogAppend(msg, True, row["assigned_agent_id"], row["status"])
    if row["dup_id"] is not None:
        msg = LoggedMessage(
            row["dup_id"], row["dup_conv"], row["dup_seq"], row["dup_kind"], row["dup_sender"], row["dup_body"],
            row["dup_internal"], row["dup_client"], row["dup_at"].astimezone(timezone.utc),
            row["dup_provider"], _json_list(row["dup_attachments"]), row["dup_status"],
        )
        return LogAppend(msg, False, row["assigned_agent_id"], row["status"])
    if row["status"] != "closed" and (item.client_msg_id is not None or item.provider_id is not None):
        return _RACED  # neither stored nor found: its first copy was committed after this statement's snapshot
    return None  # closed


# --- portable: the ORM path ----------------------------------------------------------------------------


class SessionMessageLog:
    """The portable path (one transaction per message through the ORM), for in-memory SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self, conversation_id: int, sender_kind: str, body: str, *,
        sender_id: str | None = None, client_msg_id: str | None = None, internal: bool = False,
        provider_id: str | None = None, attachments: list[dict[str, Any]] | None = None,
        delivery_status: str | None = None,
    ) -> LogAppend | None:
        """Store the message in its own transaction (again once if a concurrent copy won the race)."""
        from sqlalchemy.exc import IntegrityError

        for attempt in range(3):
            try:
                return await self._append(
                    conversation_id, sender_kind, body, sender_id=sender_id, client_msg_id=client_msg_id,
                    internal=internal, provider_id=provider_id, attachments=attachments, delivery_status=delivery_status,
                )
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _append(
        self, conversation_id: int, sender_kind: str, body: str, *, sender_id: str | None, client_msg_id: str | None,
        internal: bool, provider_id: str | None, attachments: list[dict[str, Any]] | None, delivery_status: str | None,
    ) -> LogAppend | None:
        from sqlmodel import select

        from crm_store.models import Conversation, Message
        from crm_store.repositories import conversations as conv_repo

        async with self.db.transaction() as s:
            earlier = await conv_repo.find_message(s, conversation_id, client_msg_id) if client_msg_id else None
            if earlier is None and provider_id:
                earlier = (await s.exec(select(Message).where(Message.provider_id == provider_id))).first()
            if earlier is not None:
                home = await s.get(Conversation, earlier.conversation_id)
                assert home is not None
                return LogAppend(_logged(earlier), False, home.assigned_agent_id, home.status)
            conv = await s.get(Conversation, conversation_id)
            if conv is None or conv.status == "closed":
                return None
            appended = await conv_repo.append_message(
                s, conversation_id, sender_kind, body, sender_id=sender_id, client_msg_id=client_msg_id, internal=internal,
                provider_id=provider_id, attachments=list(attachments) if attachments else None,
                delivery_status=delivery_status,
            )
            return LogAppend(_logged(appended.message), appended.created, conv.assigned_agent_id, conv.status)

    async def close(self) -> None:
        """Nothing to release."""


def _logged(m: Any) -> LoggedMessage:
    """A stored :class:`crm_store.models.Message` as the log's :class:`LoggedMessage`."""
    assert m.id is not None
    return LoggedMessage(
        m.id, m.conversation_id, m.seq, m.sender_kind, m.sender_id, m.body, m.internal, m.client_msg_id, m.created_at,
        m.provider_id, list(m.attachments or []), m.delivery_status,
    )
