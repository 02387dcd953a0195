"""The hub never blocks its event loop on slow work (a password check must not freeze every chat)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import crm_store.passwords as passwords
from crm_store.db import Database
from crm_store.repositories import agents as agents_repo


class _RecordingHasher:
    """Argon2's hasher, recording the thread of every check (Argon2 takes ~0.1 s of CPU per check)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.threads: list[threading.Thread] = []

    def verify(self, *args: Any) -> Any:
        self.threads.append(threading.current_thread())
        return self.inner.verify(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_login_checks_do_not_block_the_loop(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", "long enough password")
    recorder = _RecordingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", recorder)
    loop_thread = threading.current_thread()
    results = []
    for username, password in (("alice", "wrong password one"), ("alice", "long enough password"), ("nobody", "any password")):
        async with db.transaction() as s:
            results.append(await agents_repo.authenticate(s, username, password))
    assert [r is not None for r in results] == [False, True, False]
    # every check ran, an unknown user's too (same cost: no user enumeration by timing), none on the loop
    assert len(recorder.threads) == 3
    assert all(t is not loop_thread for t in recorder.threads), recorder.threads
