"""Callbacks in SQL (SQLite and PostgreSQL): the claim into the queue and the claim of an attempt are each won by
exactly one claimer, also from separate processes; moves never go backwards; limits hold."""

from __future__ import annotations

import asyncio
import multiprocessing
from datetime import datetime, timedelta, timezone

import pytest

from crm_store.db import Database
from crm_store.models import Callback, Customer
from crm_store.repositories import callbacks as repo

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


async def _customer(db: Database) -> int:
    async with db.transaction() as s:
        c = Customer(display_name="Ada")
        s.add(c)
        await s.flush()
        assert c.id is not None
        return c.id


async def _callback(db: Database, customer_id: int, *, due: datetime = NOW, state: str = "scheduled", max_open: int = 100) -> Callback:
    return await repo.create(db, Callback(customer_id=customer_id, number="+15005550010", state=state, due_at=due,
                                          queue="support"), max_open=max_open)


async def test_claim_due_moves_each_once_and_leaves_future_ones(db: Database) -> None:
    cid = await _customer(db)
    due = [await _callback(db, cid, due=NOW - timedelta(minutes=i)) for i in range(3)]
    later = await _callback(db, cid, due=NOW + timedelta(minutes=5))
    first = await repo.claim_due(db, NOW, "node-a")
    again = await repo.claim_due(db, NOW, "node-b")
    assert sorted(c.callback.id for c in first) == sorted(c.id for c in due)
    assert again == []
    assert all(c.callback.state == "waiting" and c.callback.lease_owner == "node-a" and c.attempt_n == 1 for c in first)
    assert (await repo.get(db, later.id)).state == "scheduled"  # type: ignore[arg-type, union-attr]


async def test_a_claim_whose_mover_died_is_taken_over_after_its_lease(db: Database) -> None:
    cid = await _customer(db)
    cb = await _callback(db, cid)
    [claim] = await repo.claim_due(db, NOW, "dead-node", lease_seconds=30)
    assert await repo.claim_due(db, NOW + timedelta(seconds=10), "node-b") == []  # still leased
    [taken] = await repo.claim_due(db, NOW + timedelta(seconds=31), "node-b")
    assert taken.callback.id == cb.id and taken.callback.lease_owner == "node-b"
    assert not await repo.attach_conversation(db, claim.callback.id, "dead-node", 1, NOW)  # type: ignore[arg-type]


async def test_an_attempt_is_claimed_once_and_finished_once(db: Database) -> None:
    cid = await _customer(db)
    cb = await _callback(db, cid)
    await repo.claim_due(db, NOW, "n1")
    got = await asyncio.gather(*(repo.start_attempt(db, cb.id, agent_id=None, conversation_id=None, claimed_by=f"n{i}", now=NOW)  # type: ignore[arg-type]
                                 for i in range(5)))
    winners = [a for a in got if a is not None]
    assert len(winners) == 1 and winners[0].n == 1
    later = NOW + timedelta(minutes=1)
    assert await repo.finish_attempt_safe(db, cb.id, 1, "busy", later, state="scheduled", due_at=later + timedelta(minutes=5))  # type: ignore[arg-type]
    # a repeated or late status changes nothing
    assert not await repo.finish_attempt_safe(db, cb.id, 1, "no-answer", later, state="failed")  # type: ignore[arg-type]
    row = await repo.get(db, cb.id)  # type: ignore[arg-type]
    assert row is not None and row.state == "scheduled" and row.attempts == 1 and row.last_outcome == "busy"
    assert row.due_at == later + timedelta(minutes=5)


async def test_open_callbacks_per_customer_are_limited_and_cancel_needs_the_token(db: Database) -> None:
    cid = await _customer(db)
    cb = await repo.create(db, Callback(customer_id=cid, number="+15005550010", state="scheduled", due_at=NOW,
                                        cancel_token_hash="h" * 64), max_open=2)
    await _callback(db, cid, max_open=2)
    with pytest.raises(repo.TooManyOpen):
        await _callback(db, cid, max_open=2)
    assert await repo.cancel(db, cb.id, NOW, token_hash="x" * 64) is None  # type: ignore[arg-type]
    cancelled = await repo.cancel(db, cb.id, NOW, token_hash="h" * 64)  # type: ignore[arg-type]
    assert cancelled is not None and cancelled.state == "cancelled"
    assert await repo.cancel(db, cb.id, NOW, token_hash="h" * 64) is None  # type: ignore[arg-type]
    await _callback(db, cid, max_open=2)  # a cancelled one no longer counts
    assert (await repo.counts(db)) == {"cancelled": 1, "scheduled": 2}


# --- two processes ------------------------------------------------------------------------------------------------

def _claimer(url: str, owner: str, start: float, out: "multiprocessing.Queue[list[tuple[int, int]]]") -> None:
    """Another hub process: claims due callbacks and then their first attempt, as fast as it can."""
    import time

    async def run() -> list[tuple[int, int]]:
        db = Database(url)
        won: list[tuple[int, int]] = []
        try:
            while time.time() < start:
                await asyncio.sleep(0.005)
            for _ in range(200):
                claimed = await repo.claim_due(db, NOW, owner, limit=5)
                for c in claimed:
                    assert c.callback.id is not None
                    await repo.attach_conversation(db, c.callback.id, owner, None, NOW)  # type: ignore[arg-type]
                for cid in [c.callback.id for c in claimed] + list(range(1, 41)):
                    a = await repo.start_attempt(db, cid, agent_id=None, conversation_id=None, claimed_by=owner, now=NOW)  # type: ignore[arg-type]
                    if a is not None:
                        won.append((cid, a.n))  # type: ignore[arg-type]
                if not claimed and len(won) and await repo.claim_due(db, NOW, owner) == []:
                    break
        finally:
            await db.dispose()
        return won

    out.put(asyncio.run(run()))


async def test_two_processes_never_claim_the_same_attempt(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    cid = await _customer(db)
    for i in range(40):
        await _callback(db, cid, due=NOW - timedelta(seconds=i))
    url = str(db._write_engine.url.render_as_string(hide_password=False))
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[tuple[int, int]]] = ctx.Queue()
    start = time.time() + 2.0
    procs = [ctx.Process(target=_claimer, args=(url, f"proc-{i}", start, out)) for i in range(2)]
    for p in procs:
        p.start()
    results = [await asyncio.to_thread(out.get, True, 60) for _ in procs]
    for p in procs:
        p.join(10)
    won = results[0] + results[1]
    assert len(won) == 40 and len(set(won)) == 40, (len(results[0]), len(results[1]))  # every attempt once, none twice
    assert all(n == 1 for _, n in won)
    counts = await repo.counts(db)
    assert counts == {"dialling": 40}
