"""The login throttle's rules (``contact_center/login_throttle.py``), on both stores: this process's memory and
the real Redis at ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), under a prefix of its own."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import AsyncIterator

import pytest

from contact_center.login_throttle import (
    LoginThrottle,
    MemoryThrottleStore,
    Policy,
    RedisThrottleStore,
    ThrottleStore,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ThrottleStore]:
    if request.param == "memory":
        yield MemoryThrottleStore()
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"cc:{{test-{uuid.uuid4().hex[:8]}}}:"
    try:
        yield RedisThrottleStore(client, prefix)
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def throttle(store: ThrottleStore, clock: Clock, *, lock_seconds: int = 3600) -> LoginThrottle:
    return LoginThrottle(store, Policy(3, 6, lock_seconds), Policy(5, 0, lock_seconds), clock)


def test_delays_grow_from_the_free_failures_up_to_the_cap() -> None:
    p = Policy(5, 20, 3600)
    assert [p.delay(n) for n in range(1, 11)] == [0, 0, 0, 0, 15, 30, 60, 120, 240, 480]
    assert p.delay(15) == p.delay(400) == 900


async def test_free_failures_then_waits_then_a_lock_that_lasts_until_lifted(store: ThrottleStore) -> None:
    clock = Clock()
    t = throttle(store, clock, lock_seconds=0)
    for n in (1, 2):
        v = await t.attempt("Ann", "10.0.0.1")
        assert v.status == "go" and v.counts == (n, n)
    v = await t.attempt("ann ", "10.0.0.1")  # the same account as the login reads it
    assert v.status == "go" and v.counts == (3, 3)
    refused = await t.attempt("ann", "10.0.0.2")
    assert refused.status == "wait" and refused.key == "account:ann" and refused.until == pytest.approx(T0 + 15)
    clock.now += 15.5
    assert (await t.attempt("ann", "10.0.0.1")).counts == (4, 4)
    clock.now += 10
    assert (await t.attempt("ann", "10.0.0.1")).status == "wait"  # 30 s after the 4th
    clock.now += 21
    assert (await t.attempt("ann", "10.0.0.1")).counts == (5, 5)
    clock.now += 61
    v = await t.attempt("ann", "10.0.0.1")
    assert v.counts == (6, 6) and t.locks_after(v) == ["account"]
    clock.now += 10 * 86400
    locked = await t.attempt("ann", "10.0.0.9")
    assert locked.status == "locked" and locked.until is None
    assert await t.lockouts() == [("account:ann", None)]
    assert await t.unlock(username="ANN") == ["account:ann"]
    assert await t.lockouts() == []
    assert (await t.attempt("ann", "10.0.0.9")).counts == (1, 1)


async def test_a_timed_lock_ends_by_itself_and_starts_afresh(store: ThrottleStore) -> None:
    clock = Clock()
    t = throttle(store, clock, lock_seconds=600)
    for i in range(6):  # slowly: never waiting, but never forgotten either
        clock.now = T0 + 1000 * i
        assert (await t.attempt("bob", "10.0.0.1")).status == "go"
    v = await t.attempt("bob", "10.0.0.1")
    assert v.status == "locked" and v.until == pytest.approx(T0 + 5000 + 600)
    assert [k for k, _ in await t.lockouts()] == ["account:bob"]
    clock.now = T0 + 5000 + 601
    assert await t.lockouts() == []
    assert (await t.attempt("bob", "10.0.0.1")).counts == (1, 7)


async def test_a_success_forgets_the_accounts_failures_and_takes_its_attempt_off_the_address(store: ThrottleStore) -> None:
    clock = Clock()
    t = throttle(store, clock)
    for _ in range(2):
        await t.attempt("cat", "10.0.0.1")
    await t.attempt("cat", "10.0.0.1")  # the right one, counted first
    await t.succeeded("cat", "10.0.0.1")
    v = await t.attempt("cat", "10.0.0.1")
    assert v.counts == (1, 3)  # the account starts again; the address keeps its two failures


async def test_a_refused_attempt_counts_nothing_and_both_keys_are_checked_before_either_counts(store: ThrottleStore) -> None:
    clock = Clock()
    t = throttle(store, clock)
    for i in range(5):  # five accounts from one address: the address waits now
        assert (await t.attempt(f"user{i}", "10.0.0.1")).status == "go"
    v = await t.attempt("dan", "10.0.0.1")
    assert v.status == "wait" and v.key == "address:10.0.0.1"
    assert (await t.attempt("dan", "10.0.0.2")).counts == (1, 1)  # dan's refused attempt was not counted


async def test_a_burst_of_parallel_guesses_gets_no_more_than_the_free_ones(store: ThrottleStore) -> None:
    t = throttle(store, Clock())
    verdicts = await asyncio.gather(*(t.attempt("eve", f"10.0.1.{i}") for i in range(40)))
    assert sum(v.status == "go" for v in verdicts) == 3


async def test_the_cli_lifts_a_lock_in_redis_and_says_why_it_cannot_without(capsys: pytest.CaptureFixture[str]) -> None:
    import redis.asyncio as aioredis

    from contact_center.cli import main

    prefix = f"cc:{{test-{uuid.uuid4().hex[:8]}}}:"
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        t = LoginThrottle(RedisThrottleStore(client, prefix), Policy(1, 1, 0), Policy(5, 0, 0))
        await t.attempt("fay", "10.0.0.1")
        assert (await t.attempt("fay", "10.0.0.1")).status == "locked"
        env = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            assert await asyncio.to_thread(main, ["unlock-login", "--username", "Fay"]) == 0
            mp.delenv("REDIS_URL")
            assert await asyncio.to_thread(main, ["unlock-login", "--username", "fay"]) == 2
        out = capsys.readouterr()
        assert "cleared: account:fay" in out.out and "POST /auth/lockouts/clear" in out.err
        assert (await t.attempt("fay", "10.0.0.1")).status == "go"
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_the_memory_store_drops_forgotten_records_when_many_pile_up() -> None:
    store = MemoryThrottleStore(prune_above=10)
    clock = Clock()
    t = throttle(store, clock)
    for i in range(10):
        await t.attempt(f"guess{i}", f"10.0.2.{i}")
    clock.now += 3601  # an hour after the last failure: all forgotten
    await t.attempt("one-more", "10.0.3.1")
    await t.attempt("and-another", "10.0.3.2")
    assert len(store.records) <= 4
