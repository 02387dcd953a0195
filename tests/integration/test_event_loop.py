"""The hub never blocks its event loop on slow work (a password check must not freeze every chat)."""

from __future__ import annotations

import asyncio
import time

from crm_store.db import Database
from crm_store.repositories import agents as agents_repo


async def test_login_checks_do_not_block_the_loop(db: Database) -> None:
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", "long enough password")
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    for password in ("wrong password one", "long enough password", "wrong password two"):
        async with db.transaction() as s:
            await agents_repo.authenticate(s, "alice", password)
    stop.set()
    await task
    # Argon2 takes ~100 ms of CPU per check; on the loop that would stall the ticker as long.
    assert max(gaps) < 0.08, f"event loop stalled for {max(gaps) * 1000:.0f} ms"
