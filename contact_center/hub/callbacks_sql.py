"""The use cases' :class:`~contact_center.ports.CallbackStore` on SQL (``crm_store/repositories/callbacks.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm_store.db import Database
from crm_store.models import Callback
from crm_store.repositories import callbacks as repo

TooManyOpen = repo.TooManyOpen


class SqlCallbacks:
    """Each method is one repository call (one transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def new_row(self, **fields: Any) -> Callback:
        return Callback(**fields)

    async def create(self, row: Any, *, max_open: int) -> Any:
        return await repo.create(self.db, row, max_open=max_open)

    async def get(self, callback_id: int) -> Any | None:
        return await repo.get(self.db, callback_id)

    async def open_for_conversation(self, conversation_id: int) -> Any | None:
        return await repo.open_for_conversation(self.db, conversation_id)

    async def from_origin(self, conversation_id: int) -> Any | None:
        return await repo.from_origin(self.db, conversation_id)

    async def customer_email(self, customer_id: int) -> str | None:
        return await repo.customer_email(self.db, customer_id)

    async def recent(self, *, number: str | None = None, visitor: str | None = None, since: datetime) -> int:
        return await repo.recent(self.db, number=number, visitor=visitor, since=since)

    async def claim_due(self, now: datetime, owner: str, *, lease_seconds: float, limit: int) -> list[Any]:
        return list(await repo.claim_due(self.db, now, owner, lease_seconds=lease_seconds, limit=limit))

    async def attach_conversation(self, callback_id: int, owner: str, conversation_id: int, now: datetime) -> bool:
        return await repo.attach_conversation(self.db, callback_id, owner, conversation_id, now)

    async def start_attempt(self, callback_id: int, *, agent_id: int | None, conversation_id: int | None, claimed_by: str,
                            now: datetime) -> Any | None:
        return await repo.start_attempt(self.db, callback_id, agent_id=agent_id, conversation_id=conversation_id,
                                        claimed_by=claimed_by, now=now)

    async def attempt_dialled(self, callback_id: int, n: int, call_sid: str) -> None:
        await repo.attempt_dialled(self.db, callback_id, n, call_sid)

    async def attempt(self, callback_id: int, n: int) -> Any | None:
        return await repo.attempt(self.db, callback_id, n)

    async def finish_attempt(self, callback_id: int, n: int, outcome: str, now: datetime, *, state: str,
                             due_at: datetime | None = None) -> bool:
        return await repo.finish_attempt_safe(self.db, callback_id, n, outcome, now, state=state, due_at=due_at)

    async def complete(self, callback_id: int, now: datetime) -> bool:
        return await repo.complete(self.db, callback_id, now)

    async def cancel(self, callback_id: int, now: datetime, *, token_hash: str | None = None) -> Any | None:
        return await repo.cancel(self.db, callback_id, now, token_hash=token_hash)

    async def stale_waiting(self, queues: list[str], before: datetime) -> list[Any]:
        return await repo.stale_waiting(self.db, queues, before)

    async def stale_dialling(self, before: datetime) -> list[tuple[int, int]]:
        return await repo.stale_dialling(self.db, before)

    async def counts(self, since: datetime | None = None) -> dict[str, int]:
        return await repo.counts(self.db, since)
