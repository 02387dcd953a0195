"""Provider webhook receipts: each webhook (a Twilio MessageSid, a status callback) is taken in once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.db import Database, conflict_insert
from crm_store.models import WebhookReceipt, utcnow

STATUS_KIND = "status"


async def first_time(s: AsyncSession, provider: str, kind: str, key: str, payload: dict[str, Any]) -> bool:
    """Record a receipt; False if the same (provider, kind, key) was recorded before (a repeat)."""
    try:
        async with s.begin_nested():
            s.add(WebhookReceipt(provider=provider[:16], kind=kind[:24], key=key[:160], payload=payload))
            await s.flush()
    except IntegrityError:
        return False
    return True


async def statuses_for(s: AsyncSession, provider_id: str) -> list[tuple[str, str | None, str | None]]:
    """The status callbacks received for a message id: (status, error code, error words), oldest first.

    The adapter's receipts keep the callback's form: ``MessageStatus``, ``ErrorCode``, ``ErrorMessage``.
    """
    rows = (
        await s.exec(
            select(WebhookReceipt)
            .where(WebhookReceipt.kind == STATUS_KIND, col(WebhookReceipt.key).startswith(f"{provider_id}:"))
            .order_by(col(WebhookReceipt.id))
        )
    ).all()
    out: list[tuple[str, str | None, str | None]] = []
    for r in rows:
        p = r.payload or {}
        status = p.get("MessageStatus") or p.get("status")
        if isinstance(status, str):
            out.append((status, p.get("ErrorCode") or None, p.get("ErrorWords") or p.get("ErrorMessage") or None))
    return out


class SqlWebhookReceipts:
    """The adapters' ``WebhookReceipts`` port on the SQL table (every hub process sees every receipt).

    Each call is one statement in its own transaction: ``INSERT ... ON CONFLICT DO NOTHING`` (a repeat
    inserts no row) and one ``DELETE``, with no ORM object, savepoint or read before the write (the
    session functions above do the same inside a caller's transaction).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        table = WebhookReceipt.__table__  # type: ignore[attr-defined]
        self._insert = conflict_insert(db.dialect)(table).on_conflict_do_nothing(index_elements=["provider", "kind", "key"])
        self._delete = delete(table)
        self._table = table

    async def first_time(self, provider: str, kind: str, key: str, payload: dict[str, Any]) -> bool:
        """True the first time this webhook is seen, False for a repeat."""
        values = {"provider": provider[:16], "kind": kind[:24], "key": key[:160], "payload": payload, "received_at": utcnow()}
        async with self.db.transaction() as s:
            result = await s.execute(self._insert.values(**values))
        return bool(getattr(result, "rowcount", 0) == 1)

    async def forget(self, provider: str, kind: str, key: str) -> None:
        """Drop a receipt whose handling failed, so that the provider's retry is handled again."""
        t = self._table
        async with self.db.transaction() as s:
            await s.execute(self._delete.where(t.c.provider == provider, t.c.kind == kind, t.c.key == key))


async def forget(s: AsyncSession, provider: str, kind: str, key: str) -> None:
    """Delete one receipt (its handling failed; the provider will retry)."""
    row = (
        await s.exec(
            select(WebhookReceipt).where(WebhookReceipt.provider == provider, WebhookReceipt.kind == kind, WebhookReceipt.key == key)
        )
    ).first()
    if row is not None:
        await s.delete(row)
