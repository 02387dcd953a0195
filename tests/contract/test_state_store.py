"""Contract of :class:`contact_center.ports.StateStore`: the same assertions for the memory and the Redis adapter.

The Redis cases use the real server at ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``),
each test under its own key prefix, deleted afterwards; if the server does not answer the tests fail
(run ``scripts/ensure-services``). "Two hub processes" are two ``RedisStateStore`` instances on two
separate client connections with the same prefix; for the memory adapter (one process by
definition) the second "process" is the same instance.

Besides the example-based cases, random operation sequences are checked against ``Model``, a naive
reference written independently of the adapters: seeded sequences on both adapters, and a
Hypothesis search on the memory adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import uuid
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from redis.crc import key_slot
from redis.exceptions import RedisError

from contact_center.ports import AgentPresence, Offer, QueueEntry, StateStore
from contact_center.state.memory import MemoryStateStore
from contact_center.state.redis_store import RedisStateStore

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# ---------------------------------------------------------------------------------------------
# Fixtures: one store per adapter, and a second "process" sharing its state
# ---------------------------------------------------------------------------------------------


@dataclass
class Backend:
    kind: str
    store: StateStore
    peer: Callable[[], Awaitable[StateStore]]  # another process's view of the same state
    prefix: str = ""


async def _connect() -> aioredis.Redis:
    """A client to the test Redis; the test fails (not skips) if the server does not answer.

    Its pool waits for a free connection (the default pool raises beyond 100 at once, and the
    concurrency tests make hundreds of calls at once).
    """
    client = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=64, timeout=30))
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc!r}). The Redis state store's contract tests "
            "need the real server: run scripts/ensure-services (or set TEST_REDIS_URL).",
            pytrace=False,
        )
    return client


def _pattern(prefix: str) -> str:
    """A SCAN/KEYS pattern for every key under ``prefix`` (its braces taken literally)."""
    return prefix.replace("{", "[{]").replace("}", "[}]") + "*"


async def _delete_prefix(client: aioredis.Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=_pattern(prefix), count=1000)]
    if keys:
        await client.delete(*keys)


@contextlib.asynccontextmanager
async def _redis_backend() -> AsyncIterator[Backend]:
    prefix = f"cctest:{uuid.uuid4().hex}:{{hub}}:"
    clients: list[aioredis.Redis] = []

    async def peer() -> StateStore:
        client = await _connect()
        clients.append(client)
        return RedisStateStore(client, prefix=prefix)

    try:
        store = await peer()
        yield Backend("redis", store, peer, prefix)
    finally:
        for client in clients:
            await client.aclose()
        if clients:  # on a fresh connection: the test's own pool may be exhausted or broken
            cleaner = aioredis.Redis.from_url(REDIS_URL)
            try:
                await _delete_prefix(cleaner, prefix)
            finally:
                await cleaner.aclose()


@contextlib.asynccontextmanager
async def _memory_backend() -> AsyncIterator[Backend]:
    store = MemoryStateStore()

    async def peer() -> StateStore:
        return store

    yield Backend("memory", store, peer)


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    factory = _memory_backend if request.param == "memory" else _redis_backend
    async with factory() as b:
        yield b


@pytest.fixture
async def store(backend: Backend) -> StateStore:
    return backend.store


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def entry(
    cid: int, *, queue: str = "a", channel: str = "chat", priority: int = 0, at: float = 0.0,
    declined: frozenset[int] = frozenset(), pinned: int | None = None,
) -> QueueEntry:
    return QueueEntry(cid, queue, channel, priority, at, declined, pinned)


def agent(
    aid: int, *, status: str = "available", capacity: dict[str, int] | None = None, load: dict[str, int] | None = None,
    since: float = 0.0, idle: float = 0.0, skills: dict[str, int] | None = None, node: str = "node-1",
) -> AgentPresence:
    return AgentPresence(
        aid, status, since, node, dict(load or {}), dict(capacity if capacity is not None else {"chat": 3, "voice": 1}),
        dict(skills or {}), idle,
    )


async def load_of(store: StateStore, aid: int) -> dict[str, int]:
    p = await store.get_presence(aid)
    assert p is not None
    return p.load


# ---------------------------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------------------------


async def test_adapter_satisfies_the_port(store: StateStore) -> None:
    assert isinstance(store, StateStore)


async def test_waiting_is_ordered_by_priority_then_arrival_then_id(store: StateStore) -> None:
    entries = [
        entry(5, at=1.0),
        entry(3, priority=2, at=5.0),
        entry(4, priority=2, at=5.0),
        entry(1, at=0.5),
        entry(2, queue="b", priority=1, at=9.0),
        entry(6, priority=-1, at=0.0),
    ]
    for e in entries:
        assert await store.enqueue(e) is True
    by_id = {e.conversation_id: e for e in entries}
    assert await store.waiting() == [by_id[i] for i in (3, 4, 2, 1, 5, 6)]
    assert await store.waiting("a") == [by_id[i] for i in (3, 4, 1, 5, 6)]
    assert await store.waiting("b") == [by_id[2]]
    assert await store.waiting("nobody") == []
    assert await store.queue_lengths() == {"a": 5, "b": 1}


async def test_ordering_and_times_are_exact_for_epoch_times(store: StateStore) -> None:
    # One microsecond apart at a high priority: closer than a Redis score can tell apart.
    early, late = 1_700_000_000.000001, 1_700_000_000.000002
    await store.enqueue(entry(10, priority=5, at=late))
    await store.enqueue(entry(9, priority=5, at=early))
    got = await store.waiting()
    assert [e.conversation_id for e in got] == [9, 10]
    assert [e.enqueued_at for e in got] == [early, late]
    await store.set_presence(agent(1))
    o = await store.offer(9, 1, 1_700_000_020.123456)
    assert o is not None and o.expires_at == 1_700_000_020.123456
    back = await store.decline(9, 1, 100.0)
    assert back is not None and back.enqueued_at == early


async def test_enqueue_is_idempotent(store: StateStore) -> None:
    first = entry(1, at=1.0)
    assert await store.enqueue(first) is True
    assert await store.enqueue(first) is False
    assert await store.enqueue(entry(1, queue="b", priority=9, at=7.0)) is False  # does not replace
    assert await store.waiting() == [first]
    assert await store.queue_lengths() == {"a": 1}
    await store.set_presence(agent(7))
    assert await store.offer(1, 7, 30.0) is not None
    assert await store.enqueue(first) is False  # offered
    assert await store.accept(1, 7) is True
    assert await store.enqueue(first) is False  # assigned
    assert await store.waiting() == []
    assert await store.release(1, 40.0) == 7
    assert await store.enqueue(entry(1, queue="b")) is True  # gone: may come back (a transfer)
    assert await store.queue_lengths() == {"b": 1}


async def test_entry_fields_round_trip(store: StateStore) -> None:
    e = entry(42, queue="sales vip", channel="voice", priority=3, at=12.25, declined=frozenset({4, 5}), pinned=8)
    assert await store.enqueue(e)
    assert await store.waiting("sales vip") == [e]
    strict = replace(entry(43, queue="sales vip", pinned=8), pin_strict=True)  # click-to-call's pin: kept through a decline
    assert await store.enqueue(strict)
    await store.set_presence(agent(8))
    assert await store.offer(43, 8, 100.0) is not None
    back = await store.decline(43, 8, 5.0)
    assert back is not None and back.pin_strict and back.pinned_agent == 8
    assert [w.pin_strict for w in await store.waiting("sales vip")] == [False, True]


async def test_remove_from_queue(store: StateStore) -> None:
    e1, e2 = entry(1, at=1.0), entry(2, at=2.0)
    await store.enqueue(e1)
    await store.enqueue(e2)
    assert await store.remove_from_queue(1) == e1
    assert await store.remove_from_queue(1) is None
    assert await store.remove_from_queue(99) is None
    assert await store.waiting() == [e2]
    await store.set_presence(agent(3))
    await store.offer(2, 3, 10.0)
    assert await store.remove_from_queue(2) is None  # offered, not waiting: stays offered
    assert [o.conversation_id for o in await store.offers_of(3)] == [2]
    assert await store.queue_lengths() == {}


async def test_offer_then_accept(store: StateStore) -> None:
    await store.set_presence(agent(7, capacity={"chat": 2}))
    await store.enqueue(entry(1, queue="sales", channel="chat", at=3.0))
    o = await store.offer(1, 7, 33.0)
    assert o == Offer(conversation_id=1, agent_id=7, expires_at=33.0, queue="sales", channel="chat")
    assert await store.waiting() == []
    assert await store.queue_lengths() == {}
    assert await store.offers_of(7) == [o]
    assert await store.offers_of(8) == []
    assert await load_of(store, 7) == {"chat": 1}
    assert await store.assignment_of(1) is None
    assert await store.accept(1, 8) is False  # not offered to 8
    assert await store.accept(1, 7) is True
    assert await store.assignment_of(1) == 7
    assert await store.assignments_of(7) == [1]
    assert await store.offers_of(7) == []
    assert await store.expired_offers(math.inf) == []
    assert await load_of(store, 7) == {"chat": 1}  # the reserved unit is now the assignment's
    assert await store.accept(1, 7) is False  # the offer is used up
    assert await store.accept(99, 7) is False


async def test_second_offer_of_one_conversation_loses(store: StateStore) -> None:
    for aid in (1, 2):
        await store.set_presence(agent(aid))
    await store.enqueue(entry(5))
    assert await store.offer(5, 1, 10.0) is not None
    assert await store.offer(5, 2, 10.0) is None
    assert await store.offer(5, 1, 10.0) is None
    await store.accept(5, 1)
    assert await store.offer(5, 2, 10.0) is None  # assigned
    assert await store.offer(6, 2, 10.0) is None  # unknown
    assert await load_of(store, 1) == {"chat": 1}
    assert await load_of(store, 2) == {}


async def test_offer_to_an_agent_without_presence_still_holds_the_conversation(store: StateStore) -> None:
    await store.enqueue(entry(1))
    o = await store.offer(1, 404, 10.0)
    assert o is not None and o.agent_id == 404
    assert await store.get_presence(404) is None  # no presence is invented
    assert await store.accept(1, 404) is True
    assert await store.release(1, 20.0) == 404


async def test_offer_with_check_capacity(store: StateStore) -> None:
    await store.set_presence(agent(1, capacity={"chat": 1}))
    for cid in (1, 2, 3):
        await store.enqueue(entry(cid, at=float(cid)))
    await store.enqueue(entry(4, channel="voice", at=4.0))
    assert await store.offer(1, 1, 10.0, check_capacity=True) is not None
    assert await store.offer(2, 1, 10.0, check_capacity=True) is None  # full on chat
    assert await store.offer(4, 1, 10.0, check_capacity=True) is None  # no voice capacity at all
    assert await store.offer(3, 2, 10.0, check_capacity=True) is None  # no presence
    assert [e.conversation_id for e in await store.waiting()] == [2, 3, 4]  # refused ones keep waiting
    assert await store.offer(2, 1, 10.0) is not None  # without the check the caller decides
    assert await load_of(store, 1) == {"chat": 2}


async def test_fifty_concurrent_offers_of_one_conversation_have_one_winner(backend: Backend) -> None:
    stores = [backend.store, await backend.peer()]  # two hub processes
    await stores[0].enqueue(entry(1))
    for aid in range(1, 51):
        await stores[aid % 2].set_presence(agent(aid))
    results = await asyncio.gather(*(stores[aid % 2].offer(1, aid, 30.0) for aid in range(1, 51)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    winner = winners[0].agent_id
    for p in await stores[1].all_presence():
        assert p.load == ({"chat": 1} if p.agent_id == winner else {}), p
    for s in stores:
        assert await s.offers_of(winner) == winners
        assert await s.waiting() == []
    assert await stores[1].accept(1, winner) is True


async def test_two_hundred_conversations_offered_concurrently_to_twenty_agents(backend: Backend) -> None:
    stores = [backend.store, await backend.peer()]
    agents = list(range(1, 21))
    for aid in agents:
        await stores[0].set_presence(agent(aid, capacity={"chat": 100}))
    for cid in range(1, 201):
        await stores[cid % 2].enqueue(entry(cid, at=float(cid)))
    rng = random.Random(7)
    calls = [(cid, aid) for cid in range(1, 201) for aid in rng.sample(agents, 3)]
    rng.shuffle(calls)
    results = await asyncio.gather(*(stores[i % 2].offer(cid, aid, 60.0) for i, (cid, aid) in enumerate(calls)))

    won: dict[int, list[int]] = {}
    for (cid, aid), r in zip(calls, results):
        if r is not None:
            assert (r.conversation_id, r.agent_id) == (cid, aid)
            won.setdefault(cid, []).append(aid)
    assert sorted(won) == list(range(1, 201))  # every conversation went to someone...
    assert all(len(a) == 1 for a in won.values())  # ...and to one agent only
    held: dict[int, int] = {}
    for aid in agents:
        mine = [o.conversation_id for o in await stores[1].offers_of(aid)]
        assert sorted(mine) == sorted(c for c, a in won.items() if a == [aid])
        assert await load_of(stores[0], aid) == ({"chat": len(mine)} if mine else {})
        for cid in mine:
            assert cid not in held, f"conversation {cid} held by {held.get(cid)} and {aid}"
            held[cid] = aid
    assert len(held) == 200
    assert await stores[0].waiting() == []


async def test_concurrent_offers_with_check_capacity_never_overfill_an_agent(backend: Backend) -> None:
    stores = [backend.store, await backend.peer()]
    agents = list(range(1, 21))
    for aid in agents:
        await stores[0].set_presence(agent(aid, capacity={"chat": 4}))
    for cid in range(1, 201):
        await stores[0].enqueue(entry(cid, at=float(cid)))
    rng = random.Random(11)
    calls = [(cid, aid) for cid in range(1, 201) for aid in rng.sample(agents, 3)]
    rng.shuffle(calls)
    results = await asyncio.gather(
        *(stores[i % 2].offer(cid, aid, 60.0, check_capacity=True) for i, (cid, aid) in enumerate(calls))
    )
    made: dict[int, int] = {}
    offered: set[int] = set()
    for r in results:
        if r is not None:
            assert r.conversation_id not in offered
            offered.add(r.conversation_id)
            made[r.agent_id] = made.get(r.agent_id, 0) + 1
    for aid in agents:
        n = made.get(aid, 0)
        assert n <= 4
        assert await load_of(stores[1], aid) == ({"chat": n} if n else {})
        assert len(await stores[1].offers_of(aid)) == n
    waiting = {e.conversation_id for e in await stores[1].waiting()}
    assert waiting.isdisjoint(offered) and len(waiting) + len(offered) == 200


async def test_concurrent_accept_and_expire_of_one_offer_have_one_winner(backend: Backend) -> None:
    stores = [backend.store, await backend.peer()]
    await stores[0].set_presence(agent(1, capacity={"chat": 100}))
    for cid in range(1, 41):
        await stores[0].enqueue(entry(cid))
        assert await stores[0].offer(cid, 1, 10.0) is not None
    calls: list[Awaitable[Any]] = []
    for cid in range(1, 41):
        calls.append(stores[cid % 2].accept(cid, 1))
        calls.append(stores[(cid + 1) % 2].expire(cid, 10.0))
    results = await asyncio.gather(*calls)
    accepted = {cid for cid, ok in zip(range(1, 41), results[0::2]) if ok}
    expired = {cid for cid, e in zip(range(1, 41), results[1::2]) if e is not None}
    assert accepted.isdisjoint(expired) and accepted | expired == set(range(1, 41))
    assert await stores[0].assignments_of(1) == sorted(accepted)
    assert {e.conversation_id for e in await stores[1].waiting()} == expired
    assert await load_of(stores[0], 1) == ({"chat": len(accepted)} if accepted else {})


async def test_decline_requeues_with_declined_by_and_keeps_its_place(store: StateStore) -> None:
    await store.set_presence(agent(1, idle=3.0))
    await store.set_presence(agent(2))
    first = entry(1, at=1.0, declined=frozenset({9}))
    await store.enqueue(first)
    assert await store.offer(1, 1, 30.0) is not None
    later = entry(2, at=2.0)
    await store.enqueue(later)
    assert await store.decline(1, 2, 100.0) is None  # not offered to 2
    back = await store.decline(1, 1, 100.0)
    assert back == replace(first, declined_by=frozenset({1, 9}), declined_at=100.0)
    assert back.enqueued_at == 1.0
    assert await store.waiting() == [back, later]  # ahead of the later arrival
    assert await store.offers_of(1) == []
    assert await store.expired_offers(math.inf) == []
    p = await store.get_presence(1)
    assert p is not None and p.load == {} and p.idle_since == 3.0
    assert await store.decline(1, 1, 100.0) is None  # no offer any more
    assert await store.decline(77, 1, 100.0) is None
    await store.offer(1, 2, 30.0)
    again = await store.decline(1, 2, 100.0)
    assert again is not None and again.declined_by == frozenset({1, 2, 9}) and again.enqueued_at == 1.0


async def test_expire_only_after_expires_at(store: StateStore) -> None:
    await store.set_presence(agent(1))
    await store.enqueue(entry(1, at=1.0))
    await store.enqueue(entry(2, at=2.0))
    o1 = await store.offer(1, 1, 10.0)
    o2 = await store.offer(2, 1, 12.5)
    assert o1 is not None and o2 is not None
    assert await store.expired_offers(9.999) == []
    assert await store.expire(1, 9.999) is None
    assert await store.offers_of(1) == [o1, o2]
    assert await store.expired_offers(10.0) == [o1]  # expires_at <= now
    assert await store.expired_offers(20.0) == [o1, o2]  # soonest first
    back = await store.expire(1, 10.0)
    assert back == replace(entry(1, at=1.0, declined=frozenset({1})), declined_at=10.0)
    assert await store.expire(1, 11.0) is None  # already expired
    assert await store.expire(3, 11.0) is None  # never offered
    assert await store.expired_offers(20.0) == [o2]
    assert await store.waiting() == [back]
    assert await load_of(store, 1) == {"chat": 1}


async def test_accept_after_expiry_fails(store: StateStore) -> None:
    await store.set_presence(agent(1))
    await store.enqueue(entry(1))
    await store.offer(1, 1, 10.0)
    assert await store.expire(1, 15.0) is not None
    assert await store.accept(1, 1) is False
    assert await store.assignment_of(1) is None
    assert await store.assignments_of(1) == []
    assert [e.conversation_id for e in await store.waiting()] == [1]
    assert await load_of(store, 1) == {}


async def test_release_frees_load_and_sets_idle_since(store: StateStore) -> None:
    await store.set_presence(agent(1, capacity={"chat": 2, "voice": 1}, idle=1.0))
    for cid, ch in ((1, "chat"), (2, "chat"), (3, "voice")):
        await store.enqueue(entry(cid, channel=ch))
        await store.offer(cid, 1, 100.0)
        assert await store.accept(cid, 1)
    assert await load_of(store, 1) == {"chat": 2, "voice": 1}
    assert await store.assignments_of(1) == [1, 2, 3]
    assert await store.release(1, 50.0) == 1
    p = await store.get_presence(1)
    assert p is not None and p.load == {"chat": 1, "voice": 1} and p.idle_since == 1.0
    assert await store.release(3, 60.0) == 1
    assert await load_of(store, 1) == {"chat": 1}
    assert await store.release(2, 70.0) == 1
    p = await store.get_presence(1)
    assert p is not None and p.load == {} and p.idle_since == 70.0
    assert await store.release(2, 80.0) is None
    assert await store.assignment_of(2) is None
    assert await store.assignments_of(1) == []


async def test_a_hold_reserves_a_free_agent_whole_until_released(store: StateStore) -> None:
    """A consulted colleague is held while their phone rings: only a free agent, once, and freed again."""
    await store.set_presence(agent(1, capacity={"chat": 3, "voice": 1}, idle=1.0))
    await store.set_presence(agent(2, capacity={"chat": 3, "voice": 1}, load={"chat": 1}))
    await store.set_presence(agent(3, status="away"))
    await store.set_presence(agent(4, capacity={"chat": 3}))
    assert await store.hold_agent(1, "consult", "voice")
    assert await load_of(store, 1) == {"consult": 1}
    assert not await store.hold_agent(1, "consult", "voice")  # held already: not free
    assert not await store.hold_agent(2, "consult", "voice")  # on a chat
    assert not await store.hold_agent(3, "consult", "voice")  # away
    assert not await store.hold_agent(4, "consult", "voice")  # takes no calls
    assert not await store.hold_agent(99, "consult", "voice")  # unknown
    await store.enqueue(entry(5, channel="chat"))
    assert await store.offer(5, 1, 100.0, check_capacity=True) is not None  # the store counts per channel only:
    assert await store.release(5, 10.0) == 1  # the router's weights keep a held agent out (tests/unit)
    assert await store.release_hold(1, "consult", 20.0)
    p = await store.get_presence(1)
    assert p is not None and p.load == {} and p.idle_since == 20.0
    assert not await store.release_hold(1, "consult", 30.0)  # twice: nothing
    assert await store.hold_agent(1, "consult", "voice")
    await store.requeue_agent(1, 40.0)  # the agent is gone: the hold with their load
    assert await load_of(store, 1) == {}
    assert not await store.release_hold(1, "consult", 50.0)


async def test_restored_assignments_count_against_capacity_and_release_like_any(store: StateStore) -> None:
    """After the shared state is lost, SQL's assignments come back: the agent is not offered past capacity."""
    await store.set_presence(agent(1, capacity={"chat": 2}, idle=1.0))
    assert await store.restore_assignment(entry(7), 1)
    assert await store.restore_assignment(entry(8), 1)
    assert await store.assignment_of(7) == 1 and await store.assignments_of(1) == [7, 8]
    assert await load_of(store, 1) == {"chat": 2}
    assert await store.waiting() == []  # assigned, not waiting
    await store.enqueue(entry(9))
    assert await store.offer(9, 1, 100.0, check_capacity=True) is None  # full: the restored load counts
    assert await store.release(7, 50.0) == 1
    assert await load_of(store, 1) == {"chat": 1}
    assert await store.offer(9, 1, 100.0, check_capacity=True) is not None


async def test_restore_assignment_never_overrides_what_the_store_knows(store: StateStore) -> None:
    await store.set_presence(agent(1))
    await store.set_presence(agent(2))
    await store.enqueue(entry(1))  # waiting
    await store.enqueue(entry(2))
    await store.offer(2, 1, 100.0)  # offered to 1
    await store.enqueue(entry(3))
    await store.offer(3, 1, 100.0)
    assert await store.accept(3, 1)  # assigned to 1
    for cid in (1, 2, 3):
        assert not await store.restore_assignment(entry(cid), 2)
    assert await load_of(store, 2) == {} and await store.assignments_of(2) == []
    assert [e.conversation_id for e in await store.waiting()] == [1]
    assert await store.assignment_of(3) == 1 and await load_of(store, 1) == {"chat": 2}
    # an agent with no presence yet: the assignment is recorded, there is no load to add
    assert await store.restore_assignment(entry(4), 3)
    assert await store.assignment_of(4) == 3 and await store.get_presence(3) is None


async def test_release_of_an_offered_or_waiting_conversation(store: StateStore) -> None:
    await store.set_presence(agent(1, idle=5.0))
    await store.enqueue(entry(1))
    await store.enqueue(entry(2))
    await store.offer(1, 1, 100.0)
    assert await store.release(1, 50.0) == 1  # the offer is withdrawn
    p = await store.get_presence(1)
    assert p is not None and p.load == {} and p.idle_since == 5.0  # never started working
    assert await store.offers_of(1) == []
    assert await store.expired_offers(math.inf) == []
    assert await store.accept(1, 1) is False
    assert await store.release(2, 50.0) is None  # waiting: just leaves the queue
    assert await store.waiting() == []
    assert await store.queue_lengths() == {}


async def test_requeue_agent_returns_offers_and_assignments_to_the_queue(store: StateStore) -> None:
    await store.set_presence(agent(1, capacity={"chat": 5, "voice": 1}, since=0.0))
    await store.set_presence(agent(2))
    e1, e2, e3 = entry(1, at=1.0), entry(2, at=2.0, declined=frozenset({9}), channel="voice"), entry(3, at=3.0, queue="b")
    e4, e5 = entry(4, at=4.0), entry(5, at=0.5)
    for e in (e1, e2, e3, e4, e5):
        await store.enqueue(e)
    await store.offer(1, 1, 100.0)
    await store.offer(2, 1, 100.0)
    await store.accept(2, 1)
    await store.offer(3, 1, 100.0)
    await store.accept(3, 1)
    await store.offer(5, 2, 100.0)
    await store.accept(5, 2)
    assert await load_of(store, 1) == {"chat": 2, "voice": 1}

    back = await store.requeue_agent(1, 200.0)
    want = [replace(e1, declined_by=frozenset({1}), declined_at=200.0), e2, e3]  # declined_by grows for the offer only
    assert back == want
    assert await store.waiting() == [want[0], want[1], e3, e4]
    assert await store.queue_lengths() == {"a": 3, "b": 1}
    p = await store.get_presence(1)
    assert p is not None and p.status == "offline" and p.since == 200.0 and p.load == {}
    assert await store.offers_of(1) == [] and await store.assignments_of(1) == []
    assert await store.assignment_of(2) is None and await store.assignment_of(3) is None
    assert await store.assignment_of(5) == 2 and await load_of(store, 2) == {"chat": 1}  # others untouched
    assert await store.requeue_agent(1, 300.0) == []
    p = await store.get_presence(1)
    assert p is not None and p.since == 200.0  # already offline
    assert await store.requeue_agent(404, 300.0) == []
    assert await store.get_presence(404) is None


async def test_presence_set_get_and_status_transitions(store: StateStore) -> None:
    assert await store.get_presence(1) is None
    assert await store.set_status(1, "available", 1.0) is None
    p2 = agent(2, status="away", since=1.0, idle=1.0, skills={"fr": 3}, node="node-b", capacity={"chat": 2})
    p1 = agent(1, status="away", since=2.0, idle=0.5)
    await store.set_presence(p2)
    await store.set_presence(p1)
    assert await store.get_presence(2) == p2
    assert await store.all_presence() == [p1, p2]

    up = await store.set_status(1, "available", 10.0)
    assert up == replace(p1, status="available", since=10.0, idle_since=10.0)
    assert await store.get_presence(1) == up
    assert await store.set_status(1, "available", 20.0) == up  # no change: since stays

    await store.enqueue(entry(1))
    await store.offer(1, 1, 100.0)
    await store.accept(1, 1)
    busy = await store.set_status(1, "away", 30.0)
    assert busy is not None and busy.status == "away" and busy.since == 30.0 and busy.idle_since == 10.0
    back = await store.set_status(1, "available", 40.0)
    assert back is not None and back.since == 40.0 and back.idle_since == 10.0  # still holding a chat
    assert back.load == {"chat": 1}
    off = await store.set_status(1, "offline", 50.0)
    assert off is not None and off.status == "offline" and off.load == {"chat": 1}

    await store.remove_presence(2)
    assert await store.get_presence(2) is None
    assert [p.agent_id for p in await store.all_presence()] == [1]
    await store.remove_presence(2)  # again: nothing happens


async def test_presence_replaces_the_whole_record_and_drops_zero_load(store: StateStore) -> None:
    await store.set_presence(agent(1, load={"chat": 2, "voice": 0}))
    assert await load_of(store, 1) == {"chat": 2}
    await store.set_presence(agent(1, load={}, capacity={"email": 9}, node="node-2"))
    p = await store.get_presence(1)
    assert p is not None and p.load == {} and p.capacity == {"email": 9} and p.node == "node-2"


async def test_returned_values_are_copies(store: StateStore) -> None:
    mine = agent(1, capacity={"chat": 1})
    await store.set_presence(mine)
    mine.capacity["chat"] = 99  # the caller keeps mutating its dict
    got = await store.get_presence(1)
    assert got is not None and got.capacity == {"chat": 1}
    got.load["chat"] = 5
    again = (await store.all_presence())[0]
    assert again.load == {} and again.capacity == {"chat": 1}


async def test_clear_removes_everything(store: StateStore) -> None:
    await store.set_presence(agent(1))
    for cid in (1, 2, 3):
        await store.enqueue(entry(cid))
    await store.offer(1, 1, 10.0)
    await store.offer(2, 1, 10.0)
    await store.accept(2, 1)
    await store.clear()
    assert await store.all_presence() == []
    assert await store.waiting() == [] and await store.queue_lengths() == {}
    assert await store.offers_of(1) == [] and await store.expired_offers(math.inf) == []
    assert await store.assignments_of(1) == [] and await store.assignment_of(2) is None
    assert await store.enqueue(entry(1)) is True  # usable afterwards


# ---------------------------------------------------------------------------------------------
# Redis specifics (same server, no mock)
# ---------------------------------------------------------------------------------------------


async def test_redis_keys_stay_under_the_prefix_in_one_cluster_slot() -> None:
    async with _redis_backend() as b:
        s = b.store
        await s.set_presence(agent(1))
        await s.enqueue(entry(1, queue="q1"))
        await s.enqueue(entry(2, queue="q2"))
        await s.enqueue(entry(3, queue="q2"))
        await s.offer(1, 1, 10.0)
        await s.offer(2, 1, 10.0)
        await s.accept(2, 1)
        assert isinstance(s, RedisStateStore)
        keys = sorted(k.decode() if isinstance(k, bytes) else k for k in await s.redis.keys(_pattern(b.prefix)))
        assert all(k.startswith(b.prefix) for k in keys)
        assert {k[len(b.prefix):] for k in keys} >= {"presence", "entry", "waiting:q2", "qlen", "offer", "offer_expiry",
                                                     "assign", "agent_offers:1", "agent_assign:1"}
        assert len({key_slot(k.encode()) for k in keys}) == 1
        assert key_slot(keys[0].encode()) == key_slot(b"{hub}")
        await s.clear()
        assert await s.redis.keys(_pattern(b.prefix)) == []


async def test_redis_prefixes_are_isolated() -> None:
    async with _redis_backend() as a, _redis_backend() as b:
        await a.store.enqueue(entry(1))
        await a.store.set_presence(agent(1))
        assert await b.store.waiting() == [] and await b.store.all_presence() == []
        assert await b.store.enqueue(entry(1)) is True
        await b.store.clear()
        assert len(await a.store.waiting()) == 1


# ---------------------------------------------------------------------------------------------
# Random operation sequences against a naive model
# ---------------------------------------------------------------------------------------------


class Model:
    """The contract in the plainest form: one dict of conversations, each with its state."""

    def __init__(self) -> None:
        self.presence: dict[int, AgentPresence] = {}
        # conversation id -> (entry, state, agent, expires_at); state: waiting | offered | assigned
        self.convs: dict[int, tuple[QueueEntry, str, int | None, float]] = {}

    def _bump(self, aid: int, channel: str, delta: int, idle_now: float | None = None) -> None:
        p = self.presence.get(aid)
        if p is None:
            return
        load = dict(p.load)
        n = load.get(channel, 0) + delta
        if n > 0:
            load[channel] = n
        else:
            load.pop(channel, None)
        idle = idle_now if idle_now is not None and not load else p.idle_since
        self.presence[aid] = replace(p, load=load, idle_since=idle)

    def _copy(self, p: AgentPresence) -> AgentPresence:
        return replace(p, load=dict(p.load), capacity=dict(p.capacity), skills=dict(p.skills))

    async def set_presence(self, p: AgentPresence) -> None:
        self.presence[p.agent_id] = replace(self._copy(p), load={k: v for k, v in p.load.items() if v > 0})

    async def get_presence(self, aid: int) -> AgentPresence | None:
        return self._copy(self.presence[aid]) if aid in self.presence else None

    async def all_presence(self) -> list[AgentPresence]:
        return [self._copy(self.presence[a]) for a in sorted(self.presence)]

    async def set_status(self, aid: int, status: str, now: float) -> AgentPresence | None:
        p = self.presence.get(aid)
        if p is None:
            return None
        if p.status != status:
            idle = now if status == "available" and not p.load else p.idle_since
            p = self.presence[aid] = replace(p, status=status, since=now, idle_since=idle)
        return self._copy(p)

    async def remove_presence(self, aid: int) -> None:
        self.presence.pop(aid, None)

    async def enqueue(self, e: QueueEntry) -> bool:
        if e.conversation_id in self.convs:
            return False
        self.convs[e.conversation_id] = (e, "waiting", None, 0.0)
        return True

    async def waiting(self, queue: str | None = None) -> list[QueueEntry]:
        es = [e for e, s, _, _ in self.convs.values() if s == "waiting" and queue in (None, e.queue)]
        return sorted(es, key=lambda e: (-e.priority, e.enqueued_at, e.conversation_id))

    async def remove_from_queue(self, cid: int) -> QueueEntry | None:
        if cid in self.convs and self.convs[cid][1] == "waiting":
            return self.convs.pop(cid)[0]
        return None

    async def queue_lengths(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in await self.waiting():
            out[e.queue] = out.get(e.queue, 0) + 1
        return out

    async def offer(self, cid: int, aid: int, expires_at: float, *, check_capacity: bool = False) -> Offer | None:
        if cid not in self.convs or self.convs[cid][1] != "waiting":
            return None
        e = self.convs[cid][0]
        if check_capacity:
            p = self.presence.get(aid)
            if p is None or p.load.get(e.channel, 0) >= p.capacity.get(e.channel, 0):
                return None
        self.convs[cid] = (e, "offered", aid, expires_at)
        self._bump(aid, e.channel, +1)
        return Offer(cid, aid, expires_at, e.queue, e.channel)

    async def accept(self, cid: int, aid: int) -> bool:
        if cid in self.convs and self.convs[cid][1:3] == ("offered", aid):
            e = self.convs[cid][0]
            self.convs[cid] = (e, "assigned", aid, 0.0)
            return True
        return False

    async def decline(self, cid: int, aid: int, now: float) -> QueueEntry | None:
        if cid not in self.convs or self.convs[cid][1:3] != ("offered", aid):
            return None
        e = replace(self.convs[cid][0], declined_by=self.convs[cid][0].declined_by | {aid}, declined_at=now)
        self.convs[cid] = (e, "waiting", None, 0.0)
        self._bump(aid, e.channel, -1)
        return e

    def _offers(self) -> list[Offer]:
        return [Offer(c, a, x, e.queue, e.channel) for c, (e, s, a, x) in self.convs.items() if s == "offered" and a is not None]

    async def expired_offers(self, now: float) -> list[Offer]:
        return sorted((o for o in self._offers() if o.expires_at <= now), key=lambda o: (o.expires_at, o.conversation_id))

    async def expire(self, cid: int, now: float) -> QueueEntry | None:
        if cid in self.convs and self.convs[cid][1] == "offered" and self.convs[cid][3] <= now:
            aid = self.convs[cid][2]
            assert aid is not None
            return await self.decline(cid, aid, now)
        return None

    async def offers_of(self, aid: int) -> list[Offer]:
        return sorted((o for o in self._offers() if o.agent_id == aid), key=lambda o: o.conversation_id)

    async def assignment_of(self, cid: int) -> int | None:
        c = self.convs.get(cid)
        return c[2] if c is not None and c[1] == "assigned" else None

    async def release(self, cid: int, now: float) -> int | None:
        if cid not in self.convs:
            return None
        e, state, aid, _ = self.convs.pop(cid)
        if aid is not None:
            self._bump(aid, e.channel, -1, now if state == "assigned" else None)
        return aid

    async def assignments_of(self, aid: int) -> list[int]:
        return sorted(c for c, (_, s, a, _) in self.convs.items() if s == "assigned" and a == aid)

    async def requeue_agent(self, aid: int, now: float) -> list[QueueEntry]:
        back = []
        for cid, (e, state, holder, _) in list(self.convs.items()):
            if holder == aid:
                if state == "offered":
                    e = replace(e, declined_by=e.declined_by | {aid}, declined_at=now)
                self.convs[cid] = (e, "waiting", None, 0.0)
                back.append(e)
        p = self.presence.get(aid)
        if p is not None:
            since = now if p.status != "offline" else p.since
            self.presence[aid] = replace(p, status="offline", since=since, load={})
        return sorted(back, key=lambda e: (-e.priority, e.enqueued_at, e.conversation_id))

    async def clear(self) -> None:
        self.presence.clear()
        self.convs.clear()


AGENTS = [1, 2, 3]
CONVS = list(range(1, 9))
TIMES = [0.0, 1.0, 2.5, 5.0, 10.0, 1_700_000_000.25]
STATUSES = ["available", "away", "busy", "offline"]
Op = tuple[Any, ...]


def random_ops(rng: random.Random, n: int) -> list[Op]:
    """A random but valid sequence of calls, biased towards the routing cycle."""
    def pick_t() -> float:
        return rng.choice(TIMES)

    makers: list[tuple[int, Callable[[], Op]]] = [
        (3, lambda: ("set_presence", AgentPresence(
            rng.choice(AGENTS), rng.choice(STATUSES), pick_t(), rng.choice(["n1", "n2"]),
            {"chat": rng.randint(0, 2)} if rng.random() < 0.3 else {},
            {"chat": rng.randint(0, 3), "voice": rng.randint(0, 1)}, {"s": rng.randint(1, 5)}, pick_t()))),
        (3, lambda: ("set_status", rng.choice(AGENTS), rng.choice(STATUSES), pick_t())),
        (1, lambda: ("remove_presence", rng.choice(AGENTS))),
        (8, lambda: ("enqueue", QueueEntry(
            rng.choice(CONVS), rng.choice(["a", "b"]), rng.choice(["chat", "voice"]), rng.randint(-1, 2), pick_t(),
            frozenset(rng.sample(AGENTS, rng.randint(0, 2))), rng.choice([None, *AGENTS])))),
        (2, lambda: ("remove_from_queue", rng.choice(CONVS))),
        (10, lambda: ("offer", rng.choice(CONVS), rng.choice(AGENTS), pick_t(), rng.random() < 0.5)),
        (6, lambda: ("accept", rng.choice(CONVS), rng.choice(AGENTS))),
        (4, lambda: ("decline", rng.choice(CONVS), rng.choice(AGENTS), pick_t())),
        (2, lambda: ("expired_offers", pick_t())),
        (4, lambda: ("expire", rng.choice(CONVS), pick_t())),
        (4, lambda: ("release", rng.choice(CONVS), pick_t())),
        (2, lambda: ("requeue_agent", rng.choice(AGENTS), pick_t())),
        (2, lambda: ("waiting", rng.choice([None, "a", "b"]))),
        (1, lambda: ("queue_lengths",)),
        (1, lambda: ("offers_of", rng.choice(AGENTS))),
        (1, lambda: ("assignments_of", rng.choice(AGENTS))),
        (1, lambda: ("assignment_of", rng.choice(CONVS))),
        (1, lambda: ("get_presence", rng.choice(AGENTS))),
    ]
    weights = [w for w, _ in makers]
    return [rng.choices(makers, weights)[0][1]() for _ in range(n)]


async def _call(target: Any, op: Op) -> Any:
    name, *args = op
    if name == "offer":
        cid, aid, exp, check = args
        return await target.offer(cid, aid, exp, check_capacity=check)
    return await getattr(target, name)(*args)


async def _snapshot(target: Any) -> Any:
    return (
        await target.all_presence(),
        await target.waiting(),
        await target.queue_lengths(),
        await target.expired_offers(math.inf),
        [await target.offers_of(a) for a in AGENTS],
        [await target.assignments_of(a) for a in AGENTS],
        [await target.assignment_of(c) for c in CONVS],
    )


async def _check_against_model(store: StateStore, ops: list[Op]) -> None:
    model = Model()
    for i, op in enumerate(ops):
        want, got = await _call(model, op), await _call(store, op)
        assert got == want, f"step {i}: {op}\n  store: {got}\n  model: {want}"
    assert await _snapshot(store) == await _snapshot(model)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_random_sequences_match_the_model(store: StateStore, seed: int) -> None:
    await _check_against_model(store, random_ops(random.Random(seed), 400))


_agents = st.sampled_from(AGENTS)
_convs = st.sampled_from(CONVS)
_times = st.sampled_from(TIMES)
_presences = st.builds(
    AgentPresence, _agents, st.sampled_from(STATUSES), _times, st.just("n1"),
    st.dictionaries(st.sampled_from(["chat", "voice"]), st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["chat", "voice"]), st.integers(0, 3), max_size=2),
    st.just({}), _times,
)
_entries = st.builds(
    QueueEntry, _convs, st.sampled_from(["a", "b"]), st.sampled_from(["chat", "voice"]), st.integers(-1, 2), _times,
    st.frozensets(_agents, max_size=2), st.one_of(st.none(), _agents),
)
_op = st.one_of(
    st.tuples(st.just("set_status"), _agents, st.sampled_from(STATUSES), _times),
    st.tuples(st.just("remove_presence"), _agents),
    st.tuples(st.just("remove_from_queue"), _convs),
    st.tuples(st.just("offer"), _convs, _agents, _times, st.booleans()),
    st.tuples(st.just("accept"), _convs, _agents),
    st.tuples(st.just("decline"), _convs, _agents, _times),
    st.tuples(st.just("expired_offers"), _times),
    st.tuples(st.just("expire"), _convs, _times),
    st.tuples(st.just("release"), _convs, _times),
    st.tuples(st.just("requeue_agent"), _agents, _times),
    st.tuples(st.just("waiting"), st.sampled_from([None, "a", "b"])),
    st.tuples(st.just("queue_lengths")),
)


class MemoryStoreVersusModel(RuleBasedStateMachine):
    """Hypothesis drives the memory adapter and the model side by side: any call at random, plus calls
    aimed at what exists (offer a waiting conversation to a known agent, accept, decline or expire a
    live offer, release an assignment, lose an agent who holds something) so long chains happen."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = MemoryStateStore()
        self.model = Model()

    def teardown(self) -> None:
        self.loop.close()

    def check(self, op: Op) -> None:
        want = self.loop.run_until_complete(_call(self.model, op))
        got = self.loop.run_until_complete(_call(self.store, op))
        assert got == want, f"{op}\n  store: {got}\n  model: {want}"

    @rule(op=_op)
    def any_call(self, op: Op) -> None:
        self.check(op)

    @rule(e=_entries)
    def enqueue(self, e: QueueEntry) -> None:
        self.check(("enqueue", e))

    @rule(p=_presences)
    def set_presence(self, p: AgentPresence) -> None:
        self.check(("set_presence", p))

    @rule(data=st.data(), status=st.sampled_from(STATUSES), now=_times)
    def set_status_of_a_known_agent(self, data: st.DataObject, status: str, now: float) -> None:
        if self.model.presence:
            self.check(("set_status", data.draw(st.sampled_from(sorted(self.model.presence))), status, now))

    @rule(data=st.data(), expires_at=_times, check_capacity=st.booleans())
    def offer_a_waiting_conversation(self, data: st.DataObject, expires_at: float, check_capacity: bool) -> None:
        waiting = [e.conversation_id for e, s, _, _ in self.model.convs.values() if s == "waiting"]
        agents = sorted(self.model.presence) or AGENTS
        if waiting:
            cid, aid = data.draw(st.sampled_from(waiting)), data.draw(st.sampled_from(agents))
            self.check(("offer", cid, aid, expires_at, check_capacity))

    @rule(data=st.data(), verb=st.sampled_from(["accept", "decline", "expire", "expire_early"]))
    def act_on_a_live_offer(self, data: st.DataObject, verb: str) -> None:
        offers = self.model._offers()
        if offers:
            o = data.draw(st.sampled_from(sorted(offers, key=lambda o: o.conversation_id)))
            if verb == "expire":
                self.check(("expire", o.conversation_id, o.expires_at))
            elif verb == "expire_early":
                self.check(("expire", o.conversation_id, o.expires_at - 0.5))
            elif verb == "decline":
                self.check(("decline", o.conversation_id, o.agent_id, o.expires_at - 1.0))
            else:
                self.check((verb, o.conversation_id, o.agent_id))

    @rule(data=st.data(), now=_times)
    def release_an_assignment(self, data: st.DataObject, now: float) -> None:
        assigned = sorted(c for c, (_, s, _, _) in self.model.convs.items() if s == "assigned")
        if assigned:
            self.check(("release", data.draw(st.sampled_from(assigned)), now))

    @rule(data=st.data(), now=_times)
    def lose_an_agent_who_holds_something(self, data: st.DataObject, now: float) -> None:
        holders = sorted({a for (_, _, a, _) in self.model.convs.values() if a is not None})
        if holders:
            self.check(("requeue_agent", data.draw(st.sampled_from(holders)), now))

    @invariant()
    def same_state(self) -> None:
        got = self.loop.run_until_complete(_snapshot(self.store))
        want = self.loop.run_until_complete(_snapshot(self.model))
        assert got == want


TestMemoryStoreVersusModel = MemoryStoreVersusModel.TestCase
TestMemoryStoreVersusModel.settings = settings(
    max_examples=100, stateful_step_count=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


async def test_watchers_are_counted_per_conversation(store: StateStore) -> None:
    assert await store.watched() == set()
    await store.add_watcher(7, "sup-a")
    await store.add_watcher(7, "sup-b")
    await store.add_watcher(9, "sup-a")
    await store.add_watcher(7, "sup-a")  # twice is once
    assert await store.watched() == {7, 9}
    await store.remove_watcher(7, "sup-a")
    assert await store.watched() == {7, 9}  # sup-b still watches 7
    await store.remove_watcher(7, "sup-b")
    await store.remove_watcher(9, "nobody")
    assert await store.watched() == {9}
    await store.clear()
    assert await store.watched() == set()


async def test_missed_offers_and_status_reasons_are_shared_state(store: StateStore) -> None:
    """Offers let time out in a row, and why the hub set a state (issue 20): kept per agent in the store, so
    a streak counts whichever hub process saw each offer expire."""
    assert await store.status_reasons() == {}
    assert await store.offer_missed(1) == 1
    assert await store.offer_missed(1) == 2
    assert await store.offer_missed(2) == 1
    await store.reset_missed(1)
    await store.reset_missed(99)  # unknown agents are ignored
    assert await store.offer_missed(1) == 1
    await store.set_status_reason(1, {"reason": "missed_offers", "missed": 2, "since": 1700000000.25})
    await store.set_status_reason(3, {"reason": "missed_offers", "missed": 3, "since": 5.0})
    assert await store.status_reasons() == {1: {"reason": "missed_offers", "missed": 2, "since": 1700000000.25},
                                            3: {"reason": "missed_offers", "missed": 3, "since": 5.0}}
    await store.set_status_reason(3, None)
    await store.set_status_reason(4, None)
    assert list(await store.status_reasons()) == [1]
    await store.clear()
    assert await store.status_reasons() == {} and await store.offer_missed(1) == 1


async def test_the_seal_of_each_node_goes_when_the_store_loses_its_data(store: StateStore) -> None:
    assert not await store.sealed("node-a")
    await store.seal("node-a")
    assert await store.sealed("node-a") and not await store.sealed("node-b")
    await store.clear()  # what a Redis restarted empty looks like
    assert not await store.sealed("node-a")
