"""Contract of :class:`contact_center.ports.CobrowseStore`: the same assertions for the memory and the Redis adapter.

The Redis cases use the real server at ``TEST_REDIS_URL`` under a prefix of their own (deleted afterwards) and fail
when it does not answer. "Another hub process" is a second ``RedisCobrowseStore`` on its own connection with the
same prefix; for the memory adapter it is the same instance.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from contact_center.domain.cobrowse import CODE_LOCKOUT_SECONDS, CODE_MAX_FAILURES
from contact_center.ports import CobrowseStore, StateUnavailable
from contact_center.state.cobrowse_redis import RedisCobrowseStore
from contact_center.state.cobrowse_store import MemoryCobrowseStore

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Pair:
    kind: str
    a: Any  # one process's store
    b: Any  # another process's view of the same state
    redis: aioredis.Redis | None = None
    prefix: str = ""


async def _connect() -> aioredis.Redis:
    client = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=64, timeout=30))
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc!r})", pytrace=False)
    return client


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    if request.param == "memory":
        store = MemoryCobrowseStore()
        yield Pair("memory", store, store)
        return
    prefix = f"cctest:{uuid.uuid4().hex}:{{hub}}:"
    one, two = await _connect(), await _connect()
    try:
        yield Pair("redis", RedisCobrowseStore(one, prefix=prefix), RedisCobrowseStore(two, prefix=prefix), one, prefix)
    finally:
        await RedisCobrowseStore(one, prefix=prefix).clear()
        await one.aclose()
        await two.aclose()


def _session(sid: str = "s" * 24, state: str = "pending", **extra: Any) -> dict[str, Any]:
    return {"id": sid, "conversation_id": 7, "state": state, "consent_deadline": 1700000000.123456, **extra}


async def test_both_adapters_are_the_port(pair: Pair) -> None:
    assert isinstance(pair.a, CobrowseStore) and isinstance(pair.b, CobrowseStore)


async def test_one_session_per_conversation_across_processes(pair: Pair) -> None:
    created, rec = await pair.a.create_session(7, _session("a" * 24), 60)
    assert created and rec == _session("a" * 24)
    created, rec = await pair.b.create_session(7, _session("b" * 24), 60)
    assert not created and rec["id"] == "a" * 24  # the other process gets the one already there
    assert await pair.b.get_session(7) == _session("a" * 24)  # floats exact
    assert await pair.a.get_session(8) is None


async def test_concurrent_creates_have_one_winner(pair: Pair) -> None:
    results = await asyncio.gather(*(
        (pair.a if i % 2 else pair.b).create_session(9, _session(f"{i:024d}"), 60) for i in range(20)))
    winners = [rec for created, rec in results if created]
    assert len(winners) == 1
    assert {rec["id"] for _, rec in results} == {winners[0]["id"]}


async def test_swap_is_compare_and_set(pair: Pair) -> None:
    old = _session()
    await pair.a.create_session(7, old, 60)
    live = {**old, "state": "live"}
    assert await pair.b.swap_session(7, old, live, 60)
    assert not await pair.a.swap_session(7, old, {**old, "state": "ended"}, 60)  # stale: refused
    assert (await pair.a.get_session(7))["state"] == "live"
    # ending: exactly one of many concurrent deletes wins
    wins = await asyncio.gather(*((pair.a if i % 2 else pair.b).swap_session(7, live, None, 0) for i in range(10)))
    assert sum(wins) == 1
    assert await pair.a.get_session(7) is None
    assert not await pair.a.swap_session(7, live, None, 0)


async def test_a_code_is_unique_and_used_once_across_processes(pair: Pair) -> None:
    assert await pair.a.put_code("k1", {"session_id": "s", "conversation_id": 7, "expires_at": 1.5}, 60)
    assert not await pair.b.put_code("k1", {"session_id": "t", "conversation_id": 8, "expires_at": 2.5}, 60)
    taken = await asyncio.gather(*((pair.a if i % 2 else pair.b).take_code("k1") for i in range(10)))
    assert [t for t in taken if t is not None] == [{"session_id": "s", "conversation_id": 7, "expires_at": 1.5}]
    assert await pair.a.take_code("k1") is None
    assert await pair.a.put_code("k2", {"session_id": "s"}, 60)
    await pair.b.drop_code("k2")
    assert await pair.a.take_code("k2") is None


async def test_wrong_codes_lock_a_key_on_every_process(pair: Pair) -> None:
    keys = ("sid:x", "addr:10.0.0.1")
    now = 1000.0
    for i in range(CODE_MAX_FAILURES - 1):
        await (pair.a if i % 2 else pair.b).code_failed(keys, now)
        assert await pair.a.code_wait(keys, now) == 0
    await pair.a.code_failed(keys, now)
    assert await pair.b.code_wait(keys, now) == pytest.approx(CODE_LOCKOUT_SECONDS)
    assert await pair.b.code_wait(("addr:10.0.0.1",), now + 100) == pytest.approx(CODE_LOCKOUT_SECONDS - 100)
    assert await pair.b.code_wait(("sid:other",), now) == 0
    await pair.a.code_forget("sid:x")
    assert await pair.b.code_wait(("sid:x",), now) == 0
    assert await pair.b.code_wait(keys, now) > 0  # the address stays locked


async def test_concurrent_wrong_codes_are_all_counted(pair: Pair) -> None:
    keys = ("addr:10.0.0.2",)
    await asyncio.gather(*((pair.a if i % 2 else pair.b).code_failed(keys, 5.0) for i in range(CODE_MAX_FAILURES)))
    assert await pair.a.code_wait(keys, 5.0) > 0


async def test_visitor_links(pair: Pair) -> None:
    await pair.a.set_link("visitor_1", 7, 60)
    assert await pair.b.get_link("visitor_1") == 7
    await pair.b.drop_link("visitor_1", 8)  # names another conversation: kept
    assert await pair.a.get_link("visitor_1") == 7
    await pair.b.drop_link("visitor_1", 7)
    assert await pair.a.get_link("visitor_1") is None


async def test_recording_sockets_are_counted_across_processes(pair: Pair) -> None:
    await pair.a.recording_add("sess", "sid1", 60)
    await pair.b.recording_add("sess", "sid2", 60)
    await pair.b.recording_add("sess", "sid2", 60)
    assert await pair.a.recording_count("sess") == 2
    assert await pair.a.recording_remove("sess", "sid1") == 1
    assert await pair.b.recording_remove("sess", "sid1") == 1
    assert await pair.b.recording_remove("sess", "sid2") == 0
    assert await pair.a.recording_count("sess") == 0
    await pair.a.recording_add("sess", "sid3", 60)
    await pair.b.recording_clear("sess")
    assert await pair.a.recording_count("sess") == 0


async def test_push_records_and_first_events(pair: Pair) -> None:
    await pair.a.put_record("push", "p1", {"id": "p1", "expires_at": 1700000900, "name": "Price list.pdf"}, 60)
    assert await pair.b.get_record("push", "p1") == {"id": "p1", "expires_at": 1700000900, "name": "Price list.pdf"}
    assert await pair.b.get_record("own", "p1") is None  # kinds are apart
    firsts = await asyncio.gather(*((pair.a if i % 2 else pair.b).first_event("p1", "opened", 60) for i in range(10)))
    assert sum(firsts) == 1
    assert await pair.a.first_event("p1", "downloaded", 60)


async def test_everything_expires(pair: Pair) -> None:
    if pair.kind == "memory":
        ttl = 0.05
    else:
        ttl = 1  # Redis TTLs are whole seconds here
    await pair.a.create_session(7, _session(), ttl)
    await pair.a.put_code("k", {"session_id": "s"}, ttl)
    await pair.a.put_record("push", "p", {"id": "p"}, ttl)
    await pair.a.set_link("v", 7, ttl)
    await asyncio.sleep(ttl + 0.3)
    assert await pair.b.get_session(7) is None
    assert await pair.b.take_code("k") is None
    assert await pair.b.get_record("push", "p") is None
    assert await pair.b.get_link("v") is None


async def test_redis_keys_have_ttls_and_the_hash_tag(pair: Pair) -> None:
    if pair.redis is None:
        pytest.skip("Redis layout only")
    await pair.a.create_session(7, _session(), 600)
    await pair.a.put_code("k", {"session_id": "s"}, 600)
    await pair.a.code_failed(("addr:1",), 0.0)
    await pair.a.set_link("v", 7, 600)
    await pair.a.recording_add("sess", "sid", 600)
    await pair.a.put_record("push", "p", {"id": "p"}, 600)
    await pair.a.first_event("p", "opened", 600)
    keys = [k async for k in pair.redis.scan_iter(match=pair.prefix.replace("{", "[{]").replace("}", "[}]") + "*")]
    assert len(keys) == 7
    for key in keys:
        assert 0 < await pair.redis.ttl(key) <= 600, key
        assert b"{hub}" in key


async def test_redis_down_is_state_unavailable() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    store = RedisCobrowseStore(client, prefix="cctest:down:{hub}:")
    try:
        with pytest.raises(StateUnavailable):
            await store.get_session(1)
        with pytest.raises(StateUnavailable):
            await store.take_code("k")
    finally:
        await client.aclose()
