"""Emails taken in and sent (``email_messages``): deduplication, the raw bytes' key, threading look-ups.

The email channel's adapter (``integrations/email``) is the only user. The order of an inbound message:

1. :func:`take_in` before the SMTP 250 (or before the IMAP message is marked seen): one row in state
   ``received`` with the raw bytes' key; a repeat (same mailbox and Message-ID, or the same bytes when
   there is no Message-ID) is refused here, so it is one message whichever way it came.
2. The adapter hands it to the core (one conversation per thread), then :func:`mark_stored` records
   where it went. A crash between 1 and 2 leaves it ``received``: :func:`pending` lists those for the
   recovery pass.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import bindparam, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.db import conflict_insert
from crm_store.models import Conversation, EmailMessage


def dedup_key(message_id: str | None, raw: bytes) -> str:
    """The message's identity within a mailbox: its Message-ID, or the SHA-256 of its bytes without one."""
    mid = strip_id(message_id)
    return mid[:300] if mid else "sha256:" + hashlib.sha256(raw).hexdigest()


def strip_id(message_id: str | None) -> str | None:
    """A Message-ID without its angle brackets and surrounding space (None if empty)."""
    if not message_id:
        return None
    mid = message_id.strip().strip("<>").strip()
    return mid or None


def provider_id(mailbox: str, key: str) -> str:
    """The core's provider id of an email message (fits the messages table's 100 characters, unique)."""
    return "em:" + hashlib.sha256(f"{mailbox.lower()}\n{key}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class TakenIn:
    """The outcome of :func:`take_in`: the row, and whether this call created it (False: a repeat)."""

    row: EmailMessage
    created: bool


async def take_in(
    s: AsyncSession, *, mailbox: str, raw: bytes, raw_key: str, message_id: str | None, source: str,
    from_addr: str = "", subject: str = "", in_reply_to: str | None = None, references: Sequence[str] = (),
    detail: dict[str, Any] | None = None,
) -> TakenIn:
    """Record an inbound email (state ``received``) unless this mailbox has it already.

    One statement when the message is new (``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: no read
    before it, no savepoint; a concurrent fetch of the same message simply inserts nothing); the row
    already kept is read only for a repeat.
    """
    key = dedup_key(message_id, raw)
    mailbox = mailbox.lower()
    row = EmailMessage(
        mailbox=mailbox, dedup_key=key, message_id=strip_id(message_id), direction="in", source=source, state="received",
        raw_key=raw_key, size=len(raw), from_addr=from_addr[:254], subject=subject[:500],
        in_reply_to=(strip_id(in_reply_to) or "")[:300] or None,
        references=[r[:300] for r in (strip_id(x) for x in references) if r][-50:], detail=dict(detail or {}),
    )
    table = EmailMessage.__table__  # type: ignore[attr-defined]
    values = {c.name: getattr(row, c.name) for c in table.columns if c.name != "id"}
    stmt = conflict_insert(s.get_bind().dialect.name)(table).values(values).on_conflict_do_nothing(index_elements=["mailbox", "dedup_key"]).returning(table.c.id)
    new_id = (await s.execute(stmt)).scalar_one_or_none()
    if new_id is None:  # kept already (a repeat, or another fetch of the same message won the race)
        found = await by_key(s, mailbox, key)
        assert found is not None
        return TakenIn(found, False)
    row.id = int(new_id)
    return TakenIn(row, True)


# --- the same on a bare sqlite3 connection (the group-commit writer, crm_store.message_log.sqlite_writer) ----

_COLUMNS = ("mailbox", "dedup_key", "message_id", "direction", "source", "state", "raw_key", "size", "from_addr", "subject",
            "in_reply_to", "references", "conversation_id", "message_seq", "detail", "created_at")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's DATETIME format on SQLite (UTC, no zone)
_INSERT = (
    "INSERT INTO email_messages (" + ", ".join(f'"{c}"' for c in _COLUMNS) + ") VALUES (" + ", ".join("?" * len(_COLUMNS))
    + ") ON CONFLICT (mailbox, dedup_key) DO NOTHING RETURNING id"
)
_SELECT = "SELECT id, " + ", ".join(f'"{c}"' for c in _COLUMNS) + " FROM email_messages WHERE mailbox = ? AND dedup_key = ?"


def take_in_sqlite(
    conn: sqlite3.Connection, *, mailbox: str, raw: bytes, raw_key: str, message_id: str | None, source: str,
    from_addr: str = "", subject: str = "", in_reply_to: str | None = None, references: Sequence[str] = (),
    detail: dict[str, Any] | None = None,
) -> TakenIn:
    """:func:`take_in` on a bare SQLite connection inside the caller's transaction: one statement for a new
    message, a read only for a repeat."""
    key = dedup_key(message_id, raw)
    mailbox = mailbox.lower()
    row = EmailMessage(
        mailbox=mailbox, dedup_key=key, message_id=strip_id(message_id), direction="in", source=source, state="received",
        raw_key=raw_key, size=len(raw), from_addr=from_addr[:254], subject=subject[:500],
        in_reply_to=(strip_id(in_reply_to) or "")[:300] or None,
        references=[r[:300] for r in (strip_id(x) for x in references) if r][-50:], detail=dict(detail or {}),
    )
    values = [getattr(row, c) for c in _COLUMNS]
    values[_COLUMNS.index("references")] = json.dumps(row.references)
    values[_COLUMNS.index("detail")] = json.dumps(row.detail)
    values[_COLUMNS.index("created_at")] = row.created_at.astimezone(timezone.utc).strftime(_SQLITE_TIME)
    new = conn.execute(_INSERT, values).fetchone()
    if new is not None:
        row.id = int(new[0])
        return TakenIn(row, True)
    found = conn.execute(_SELECT, (mailbox, key)).fetchone()
    assert found is not None
    kept = dict(zip(("id",) + _COLUMNS, found))
    kept["references"] = json.loads(kept["references"] or "[]")
    kept["detail"] = json.loads(kept["detail"] or "{}")
    kept["created_at"] = datetime.strptime(kept["created_at"], _SQLITE_TIME).replace(tzinfo=timezone.utc)
    return TakenIn(EmailMessage(**kept), False)


def mark_many_sqlite(conn: sqlite3.Connection, rows: Sequence["Marked"]) -> None:
    """:func:`mark_many` on a bare SQLite connection inside the caller's transaction."""
    conn.executemany(
        "UPDATE email_messages SET state = ?, conversation_id = ?, message_seq = ?, detail = ? WHERE id = ?",
        [(r.state, r.conversation_id, r.message_seq, json.dumps(r.detail), r.row_id) for r in rows],
    )


async def by_key(s: AsyncSession, mailbox: str, key: str) -> EmailMessage | None:
    """The row of this mailbox's message with this dedup key, if any."""
    stmt = select(EmailMessage).where(EmailMessage.mailbox == mailbox.lower(), EmailMessage.dedup_key == key)
    return (await s.exec(stmt)).first()


async def mark_stored(s: AsyncSession, row_id: int, *, conversation_id: int | None, message_seq: int | None,
                      state: str = "stored", detail: dict[str, Any] | None = None) -> None:
    """Where an inbound message went (or why it went nowhere: ``ignored``, ``failed``)."""
    row = await s.get(EmailMessage, row_id)
    if row is None:
        return
    row.state, row.conversation_id, row.message_seq = state, conversation_id, message_seq
    if detail:
        row.detail = {**(row.detail or {}), **detail}
    s.add(row)


@dataclass(frozen=True)
class Marked:
    """One row's outcome for :func:`mark_many` (``detail`` is the row's whole detail, written as given)."""

    row_id: int
    state: str
    conversation_id: int | None
    message_seq: int | None
    detail: dict[str, Any]


async def mark_many(s: AsyncSession, rows: Sequence[Marked]) -> None:
    """:func:`mark_stored` for several rows at once, whose whole ``detail`` the caller knows: one statement
    (executemany), no read."""
    if not rows:
        return
    table = EmailMessage.__table__  # type: ignore[attr-defined]
    stmt = (
        update(table).where(table.c.id == bindparam("row_id"))
        .values(state=bindparam("new_state"), conversation_id=bindparam("conv"), message_seq=bindparam("seq"),
                detail=bindparam("new_detail", type_=table.c.detail.type))
    )
    await s.execute(stmt, [
        {"row_id": r.row_id, "new_state": r.state, "conv": r.conversation_id, "seq": r.message_seq, "new_detail": r.detail}
        for r in rows
    ])


async def record_sent(
    s: AsyncSession, *, mailbox: str, message_id: str, conversation_id: int, message_seq: int, raw_key: str, size: int,
    subject: str, in_reply_to: str | None, references: Sequence[str],
) -> EmailMessage:
    """An email we sent (an agent's reply, an acknowledgement): its Message-ID threads the customer's answer."""
    row = EmailMessage(
        mailbox=mailbox.lower(), dedup_key=(strip_id(message_id) or message_id)[:300], message_id=strip_id(message_id),
        direction="out", source="hub", state="sent", raw_key=raw_key, size=size, subject=subject[:500],
        in_reply_to=strip_id(in_reply_to), references=[r for r in (strip_id(x) for x in references) if r][-50:],
        conversation_id=conversation_id, message_seq=message_seq,
    )
    s.add(row)
    await s.flush()
    return row


async def conversation_of(s: AsyncSession, message_ids: Sequence[str]) -> Conversation | None:
    """The conversation of the newest stored or sent message among these Message-IDs (In-Reply-To, References)."""
    ids = [m for m in (strip_id(x) for x in message_ids) if m]
    if not ids:
        return None
    stmt = (
        select(Conversation)
        .join(EmailMessage, col(EmailMessage.conversation_id) == col(Conversation.id))
        .where(col(EmailMessage.message_id).in_(ids))
        .order_by(col(EmailMessage.id).desc())
    )
    return (await s.exec(stmt)).first()


async def thread_messages(s: AsyncSession, conversation_id: int) -> Sequence[EmailMessage]:
    """The emails of a conversation, oldest first (the outbound reply's In-Reply-To and References)."""
    stmt = select(EmailMessage).where(EmailMessage.conversation_id == conversation_id).order_by(col(EmailMessage.id))
    return (await s.exec(stmt)).all()


async def pending(s: AsyncSession, limit: int = 100) -> Sequence[EmailMessage]:
    """Inbound messages kept but not yet in a conversation (a crash between the 250 and the store)."""
    stmt = select(EmailMessage).where(EmailMessage.state == "received", EmailMessage.direction == "in").order_by(col(EmailMessage.id)).limit(limit)
    return (await s.exec(stmt)).all()
