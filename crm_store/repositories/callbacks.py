"""Callbacks in SQL (docs/subsystems/callback.md): create, claim, attempt, finish, cancel, count.

Every move is a **conditional update** (``UPDATE ... WHERE id = :id AND state IN (...)``): of two hub processes
that try the same move, the database lets exactly one change the row (``rowcount`` 1) and the other sees 0 and
backs off. That holds on SQLite (one writer at a time) and on PostgreSQL (the second update waits for the first's
row lock, then re-checks its ``WHERE`` against the committed row). On PostgreSQL the due callbacks are also picked
with ``FOR UPDATE SKIP LOCKED``, so that processes claiming at once spread over different rows instead of queueing
behind the same one. An attempt is a row unique per ``(callback_id, n)``: a second claim of attempt ``n`` cannot
even be written.

The state names are the pure core's (``contact_center/domain/callbacks.py``; this bottom layer cannot import it, and
``tests/unit/test_callback_domain.py`` checks they agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from crm_store.db import Database
from crm_store.models import Callback, CallbackAttempt, ContactPoint

REQUESTED = "requested"
SCHEDULED = "scheduled"
WAITING = "waiting"
DIALLING = "dialling"
CONNECTED = "connected"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
OPEN = (REQUESTED, SCHEDULED, WAITING, DIALLING, CONNECTED)
CANCELLABLE = (REQUESTED, SCHEDULED, WAITING)


class TooManyOpen(Exception):
    """The customer already has the most open callbacks allowed."""


@dataclass(frozen=True)
class Claimed:
    """A callback this process moved into the queue (it holds the lease until it attaches the conversation)."""

    callback: Callback
    attempt_n: int  # the attempt the queued contact will be (attempts made + 1)


def _dialect(db: Database) -> str:
    return db.engine.dialect.name


async def create(db: Database, row: Callback, *, max_open: int) -> Callback:
    """Write a new callback unless the customer already has ``max_open`` open ones (:class:`TooManyOpen`).

    On PostgreSQL the customer's open callbacks are counted under a transaction-scoped advisory lock on the
    customer, so that two requests at once cannot both pass the limit."""
    async with db.transaction() as s:
        if _dialect(db) == "postgresql":
            await s.exec(select(func.pg_advisory_xact_lock(15_000_000_000 + int(row.customer_id))))
        open_count = (await s.exec(select(func.count()).select_from(Callback).where(
            col(Callback.customer_id) == row.customer_id, col(Callback.state).in_(OPEN)))).one()
        if open_count >= max_open:
            raise TooManyOpen(open_count)
        s.add(row)
        await s.flush()
        await s.refresh(row)
        return row


async def get(db: Database, callback_id: int) -> Callback | None:
    async with db.session() as s:
        return await s.get(Callback, callback_id)


async def open_for_conversation(db: Database, conversation_id: int) -> Callback | None:
    """The open callback whose contact (or the call it came from) is this conversation."""
    async with db.session() as s:
        return (await s.exec(select(Callback).where(
            or_(col(Callback.conversation_id) == conversation_id, col(Callback.origin_conversation_id) == conversation_id),
            col(Callback.state).in_(OPEN)).order_by(col(Callback.id).desc()).limit(1))).first()


async def from_origin(db: Database, conversation_id: int) -> Callback | None:
    """Any callback (whatever its state) made from this call (its ``origin_conversation_id``): once per call."""
    async with db.session() as s:
        return (await s.exec(select(Callback).where(col(Callback.origin_conversation_id) == conversation_id)
                             .order_by(col(Callback.id)).limit(1))).first()


async def customer_email(db: Database, customer_id: int) -> str | None:
    """The customer's email address to write to (a verified one first), none opted out or undeliverable."""
    async with db.session() as s:
        rows = (await s.exec(select(ContactPoint).where(
            col(ContactPoint.customer_id) == customer_id, col(ContactPoint.kind) == "email",
            col(ContactPoint.opted_out_at).is_(None), col(ContactPoint.undeliverable_at).is_(None),
        ).order_by(col(ContactPoint.verified).desc(), col(ContactPoint.id)).limit(1))).all()
    return rows[0].value if rows else None


async def recent(db: Database, *, number: str | None = None, visitor: str | None = None, since: datetime) -> int:
    """How many callbacks were asked for from ``number`` (or by ``visitor``) since ``since``."""
    async with db.session() as s:
        q = select(func.count()).select_from(Callback).where(col(Callback.created_at) >= since)
        if number is not None:
            q = q.where(col(Callback.number) == number)
        if visitor is not None:
            q = q.where(col(Callback.visitor) == visitor)
        return int((await s.exec(q)).one())


async def claim_due(db: Database, now: datetime, owner: str, *, lease_seconds: float = 60.0, limit: int = 20) -> list[Claimed]:
    """Move callbacks that are due into the queue: ``scheduled``/``requested`` with ``due_at <= now``, or ``waiting``
    ones whose contact was never attached before their mover's lease ran out (a process that died halfway).

    Each is one conditional update; what another process took meanwhile is skipped. The winner holds the lease
    (``lease_owner``) until :func:`attach_conversation`."""
    due = or_(
        and_(col(Callback.state).in_((SCHEDULED, REQUESTED)), col(Callback.due_at) <= now),
        and_(col(Callback.state) == WAITING, col(Callback.conversation_id).is_(None), col(Callback.lease_until) < now),
    )
    async with db.transaction() as s:
        q = select(Callback.id).where(due).order_by(col(Callback.due_at), col(Callback.id)).limit(limit)
        if _dialect(db) == "postgresql":
            q = q.with_for_update(skip_locked=True)
        ids = list((await s.exec(q)).all())
        claimed: list[int] = []
        for cid in ids:
            result = await s.exec(update(Callback).where(col(Callback.id) == cid, due).values(
                state=WAITING, lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds), updated_at=now,
                enqueued_at=func.coalesce(Callback.enqueued_at, Callback.due_at),
            ))
            if result.rowcount == 1:
                claimed.append(int(cid))  # type: ignore[arg-type]
        if not claimed:
            return []
        rows = (await s.exec(select(Callback).where(col(Callback.id).in_(claimed)).order_by(col(Callback.due_at)))).all()
        return [Claimed(r, r.attempts + 1) for r in rows]


async def attach_conversation(db: Database, callback_id: int, owner: str, conversation_id: int, now: datetime) -> bool:
    """The claimed callback's contact is in the queue: remember it and give the lease up (only its holder may)."""
    async with db.transaction() as s:
        result = await s.exec(update(Callback).where(
            col(Callback.id) == callback_id, col(Callback.state) == WAITING, col(Callback.lease_owner) == owner,
        ).values(conversation_id=conversation_id, lease_owner=None, lease_until=None, updated_at=now))
        return bool(result.rowcount == 1)


async def start_attempt(db: Database, callback_id: int, *, agent_id: int | None, conversation_id: int | None,
                        claimed_by: str, now: datetime) -> CallbackAttempt | None:
    """Claim the next attempt: ``waiting -> dialling`` and its attempt row, in one transaction. None when another
    process (or a repeat) already did: the caller must not dial."""
    try:
        async with db.transaction() as s:
            n = (await s.exec(update(Callback).where(
                col(Callback.id) == callback_id, col(Callback.state) == WAITING,
            ).values(state=DIALLING, attempts=Callback.attempts + 1, updated_at=now).returning(Callback.attempts))).scalar()
            if n is None:
                return None
            attempt = CallbackAttempt(callback_id=callback_id, n=int(n), agent_id=agent_id, conversation_id=conversation_id,
                                      claimed_by=claimed_by[:80], started_at=now)
            s.add(attempt)
            await s.flush()
            return attempt
    except IntegrityError:  # attempt n exists already: the whole move is rolled back, nothing half-written
        return None


async def attempt_dialled(db: Database, callback_id: int, n: int, call_sid: str) -> None:
    """Remember the CallSid of attempt ``n`` (its status callbacks find it by it)."""
    async with db.transaction() as s:
        await s.exec(update(CallbackAttempt).where(
            col(CallbackAttempt.callback_id) == callback_id, col(CallbackAttempt.n) == n, col(CallbackAttempt.call_sid).is_(None),
        ).values(call_sid=call_sid[:40]))


async def attempt_by_call(db: Database, call_sid: str) -> CallbackAttempt | None:
    async with db.session() as s:
        return (await s.exec(select(CallbackAttempt).where(col(CallbackAttempt.call_sid) == call_sid))).first()


async def attempt(db: Database, callback_id: int, n: int) -> CallbackAttempt | None:
    async with db.session() as s:
        return (await s.exec(select(CallbackAttempt).where(
            col(CallbackAttempt.callback_id) == callback_id, col(CallbackAttempt.n) == n))).first()


async def attempts(db: Database, callback_id: int) -> Sequence[CallbackAttempt]:
    async with db.session() as s:
        return (await s.exec(select(CallbackAttempt).where(col(CallbackAttempt.callback_id) == callback_id)
                             .order_by(col(CallbackAttempt.n)))).all()


async def finish_attempt(db: Database, callback_id: int, n: int, outcome: str, now: datetime, *, state: str,
                         due_at: datetime | None = None) -> bool:
    """Attempt ``n`` ended with ``outcome`` and the callback moves to ``state`` (``connected``, ``scheduled`` again
    with ``due_at``, or ``failed``). Once only, and only from ``dialling`` of that very attempt: a repeated or late
    status changes nothing (False)."""
    async with db.transaction() as s:
        done = await s.exec(update(CallbackAttempt).where(
            col(CallbackAttempt.callback_id) == callback_id, col(CallbackAttempt.n) == n, col(CallbackAttempt.outcome).is_(None),
        ).values(outcome=outcome[:16], ended_at=None if state == CONNECTED else now))
        if done.rowcount != 1:
            return False
        values: dict[str, Any] = {"state": state, "last_outcome": outcome[:16], "updated_at": now}
        if state == CONNECTED:
            values["connected_at"] = now
        elif state == SCHEDULED:
            values.update(due_at=due_at or now, conversation_id=None)
        else:
            values["closed_at"] = now
        moved = await s.exec(update(Callback).where(
            col(Callback.id) == callback_id, col(Callback.state) == DIALLING, col(Callback.attempts) == n).values(**values))
        if moved.rowcount != 1:
            raise _Rollback()
        return True


class _Rollback(Exception):
    pass


async def finish_attempt_safe(db: Database, callback_id: int, n: int, outcome: str, now: datetime, *, state: str,
                              due_at: datetime | None = None) -> bool:
    """:func:`finish_attempt`, False (and nothing written) when the callback was no longer at that attempt."""
    try:
        return await finish_attempt(db, callback_id, n, outcome, now, state=state, due_at=due_at)
    except _Rollback:
        return False


async def complete(db: Database, callback_id: int, now: datetime) -> bool:
    """The connected call ended: ``connected -> completed`` (once)."""
    async with db.transaction() as s:
        result = await s.exec(update(Callback).where(
            col(Callback.id) == callback_id, col(Callback.state) == CONNECTED).values(state=COMPLETED, closed_at=now, updated_at=now))
        if result.rowcount == 1:
            await s.exec(update(CallbackAttempt).where(
                col(CallbackAttempt.callback_id) == callback_id, col(CallbackAttempt.ended_at).is_(None)).values(ended_at=now))
        return bool(result.rowcount == 1)


async def back_to_waiting(db: Database, callback_id: int, conversation_id: int, now: datetime) -> bool:
    """The contact went back to the queue before any attempt was dialled (``waiting`` stays; conversation kept)."""
    async with db.transaction() as s:
        result = await s.exec(update(Callback).where(
            col(Callback.id) == callback_id, col(Callback.state).in_((WAITING,))).values(conversation_id=conversation_id, updated_at=now))
        return bool(result.rowcount == 1)


async def cancel(db: Database, callback_id: int, now: datetime, *, token_hash: str | None = None,
                 states: Sequence[str] = CANCELLABLE) -> Callback | None:
    """Cancel an open callback (with its token's hash when the customer asks); None when it is not cancellable."""
    async with db.transaction() as s:
        q = update(Callback).where(col(Callback.id) == callback_id, col(Callback.state).in_(tuple(states)))
        if token_hash is not None:
            q = q.where(col(Callback.cancel_token_hash) == token_hash)
        result = await s.exec(q.values(state=CANCELLED, closed_at=now, updated_at=now, lease_owner=None))
        if result.rowcount != 1:
            return None
        return await s.get(Callback, callback_id)


async def counts(db: Database, since: datetime | None = None) -> dict[str, int]:
    """Callbacks per state (the final ones since ``since`` when given)."""
    async with db.session() as s:
        q = select(Callback.state, func.count()).group_by(Callback.state)
        if since is not None:
            q = q.where(or_(col(Callback.state).in_(OPEN), col(Callback.updated_at) >= since))
        return {str(state): int(n) for state, n in (await s.exec(q)).all()}


async def connect_delays(db: Database, since: datetime) -> list[float]:
    """Seconds from the requested moment (the chosen slot, else the request) to the connected call, for callbacks
    connected since ``since``: the callbacks' service level."""
    async with db.session() as s:
        rows = (await s.exec(select(Callback.requested_for, Callback.created_at, Callback.connected_at).where(
            col(Callback.connected_at).is_not(None), col(Callback.connected_at) >= since))).all()
    return [max(0.0, (connected - (wanted or created)).total_seconds()) for wanted, created, connected in rows if connected]


async def stale_waiting(db: Database, queues: Sequence[str], before: datetime, limit: int = 50) -> list[Callback]:
    """Callbacks of ``queues`` still ``waiting`` with their contact attached since before ``before`` (a customer-first
    callback whose dial never started: the process died between the attach and the dial)."""
    if not queues:
        return []
    async with db.session() as s:
        return list((await s.exec(select(Callback).where(
            col(Callback.state) == WAITING, col(Callback.conversation_id).is_not(None), col(Callback.queue).in_(tuple(queues)),
            col(Callback.updated_at) < before).order_by(col(Callback.updated_at)).limit(limit))).all())


async def stale_dialling(db: Database, before: datetime, limit: int = 50) -> list[tuple[int, int]]:
    """``(callback id, attempt n)`` of callbacks still ``dialling`` since before ``before``: an attempt whose news never
    came (the process died between the claim and the dial, or every status callback was lost)."""
    async with db.session() as s:
        rows = (await s.exec(select(Callback.id, Callback.attempts).where(
            col(Callback.state) == DIALLING, col(Callback.updated_at) < before).order_by(col(Callback.updated_at)).limit(limit))).all()
    return [(int(i), int(n)) for i, n in rows if i is not None]
