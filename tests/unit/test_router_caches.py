"""The router's caches between passes (issue 19: a pass over 10,000 waiting contacts through Redis).

They must never change what a pass decides or tells: a queue update is sent again after anything forgot the
last one, a contact's declines stop counting once the skip is over, and the Redis store's decoded entries
follow every change of a record."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contact_center.channels import WEB_CHAT, ChannelRegistry
from contact_center.ports import AgentPresence, QueueEntry
from contact_center.state.memory import MemoryStateStore
from contact_center.usecases import router
from contact_center.usecases.context import Hub
from tests.unit.fakes.hub import MemoryConversations, RecordingNotifier


def _hub(now: list[float]) -> tuple[Hub, RecordingNotifier]:
    channels = ChannelRegistry()
    channels.register(WEB_CHAT)
    notify = RecordingNotifier()
    return Hub(MemoryConversations(), MemoryStateStore(), notify, channels=channels, clock=lambda: now[0]), notify


def _queue_events(notify: RecordingNotifier) -> list[tuple[int, Any]]:
    return [(n.target, n.data["position"]) for n in notify.sent if n.event == "queue"]  # type: ignore[attr-defined]


async def test_a_forgotten_queue_update_is_sent_again_with_the_same_place() -> None:
    now = [1000.0]
    hub, notify = _hub(now)
    for cid in (1, 2):
        await hub.store.enqueue(QueueEntry(cid, "general", "chat", 0, 990.0 + cid))
    await router.route_once(hub)
    assert sorted(_queue_events(notify)) == [(1, 1), (2, 2)]
    notify.sent.clear()
    now[0] += 1
    await router.route_once(hub)
    assert _queue_events(notify) == []  # nothing changed: nothing told
    hub.last_queue_info.pop(2, None)  # as offers, transfers and closes do when it comes back to the queue
    await router.route_once(hub)
    assert _queue_events(notify) == [(2, 2)]


async def test_a_declined_contact_is_offered_to_that_agent_again_once_the_skip_is_over() -> None:
    now = [1000.0]
    hub, notify = _hub(now)
    hub.decline_skip = 20.0
    await hub.store.set_presence(AgentPresence(7, "available", 0.0, "n", capacity={"chat": 3}, idle_since=1.0))
    await hub.store.enqueue(QueueEntry(1, "general", "chat", 0, 990.0))
    assert await router.route_once(hub) == 1
    assert await hub.store.decline(1, 7, now[0]) is not None
    now[0] += 5
    assert await router.route_once(hub) == 0  # skipped: the same entry, the same view as last pass
    assert await router.route_once(hub) == 0
    now[0] += 20
    assert await router.route_once(hub) == 1  # the skip is over: a new view of the same entry


@pytest.fixture
async def redis_store():  # type: ignore[no-untyped-def]
    import redis.asyncio as aioredis

    from contact_center.state.redis_store import RedisStateStore

    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    store = RedisStateStore(client, prefix=f"cctest:{uuid.uuid4().hex}:{{hub}}:")
    yield store
    await store.clear()
    await client.aclose()


async def test_the_redis_store_decodes_again_exactly_the_records_that_changed(redis_store: Any) -> None:
    store = redis_store
    for cid in range(1, 6):
        await store.enqueue(QueueEntry(cid, "general" if cid % 2 else "sales", "chat", 0, 100.0 + cid))
    first = await store.waiting()
    assert [e.conversation_id for e in first] == [1, 2, 3, 4, 5]
    again = await store.waiting()
    assert all(a is b for a, b in zip(first, again))  # unchanged records: the entries decoded last time
    await store.offer(3, 9, 500.0)
    await store.decline(3, 9, 200.0)
    await store.remove_from_queue(4)
    after = await store.waiting()
    assert [e.conversation_id for e in after] == [1, 2, 3, 5]
    assert after[2].declined_by == frozenset({9}) and after[2].declined_at == 200.0
    assert after[0] is first[0] and after[2] is not first[2]
    assert [e.conversation_id for e in await store.waiting("sales")] == [2]
    assert [e.conversation_id for e in await store.waiting()] == [1, 2, 3, 5]
    await store.remove_from_queue(1)
    await store.remove_from_queue(2)
    await store.remove_from_queue(3)
    await store.remove_from_queue(5)
    assert await store.waiting() == []


def test_one_serving_order_for_the_plan_and_the_positions_changes_no_answer() -> None:
    import random

    from contact_center.domain.routing import (
        AgentSnapshot, AgentStatus, QueueRule, WaitingContact, plan_assignments, queue_positions, serving_order,
    )

    rnd = random.Random(19)
    rules = {"general": QueueRule("general", frozenset()), "tech": QueueRule("tech", frozenset({"tech"}), overflow_to="general",
                                                                            overflow_after_seconds=60)}
    for _ in range(30):
        agents = [AgentSnapshot(a, rnd.choice([AgentStatus.AVAILABLE, AgentStatus.BUSY]), {"tech": rnd.randint(0, 3)},
                                {"chat": rnd.randint(0, 3), "email": rnd.randint(0, 2)}, {}, rnd.uniform(0, 100)) for a in range(1, 8)]
        contacts = [WaitingContact(c, rnd.choice(list(rules)), rnd.choice(["chat", "email"]), rnd.uniform(0, 900), rnd.choice([0, 0, 1]),
                                   frozenset({rnd.randint(1, 7)}) if rnd.random() < 0.2 else frozenset()) for c in range(1, 40)]
        order = serving_order(contacts, 1000.0)
        assert plan_assignments(order, agents, rules, 1000.0, presorted=True) == plan_assignments(contacts, agents, rules, 1000.0)
        assert queue_positions(order, 1000.0, presorted=True) == queue_positions(contacts, 1000.0)


async def test_the_loop_tells_queue_positions_at_most_once_an_interval_and_the_latest_pass_wins() -> None:
    """The routing loop runs a pass on every kick; the places it computes are told at most once per
    ``queue_notice_interval`` (router.publish_positions), always those of the latest pass."""
    now = [1000.0]
    hub, notify = _hub(now)
    for cid in (1, 2, 3):
        await hub.store.enqueue(QueueEntry(cid, "general", "chat", 0, 990.0 + cid))
    await router.route_once(hub, publish=False)
    assert _queue_events(notify) == []  # a pass of the loop tells nothing itself
    assert await router.publish_positions(hub)
    assert sorted(_queue_events(notify)) == [(1, 1), (2, 2), (3, 3)]
    notify.sent.clear()

    assert await hub.store.remove_from_queue(1) is not None  # the first customer leaves the queue
    now[0] += 0.2
    await router.route_once(hub, publish=False)
    assert not await router.publish_positions(hub)  # told 0.2 s ago: kept for later
    now[0] += 0.3
    await router.route_once(hub, publish=False)
    assert not await router.publish_positions(hub)
    assert _queue_events(notify) == []
    now[0] += 0.6  # over a second since the last: the latest pass's places go out, once
    assert await router.publish_positions(hub)
    assert sorted(_queue_events(notify)) == [(2, 1), (3, 2)]
    assert not await router.publish_positions(hub, force=True)  # nothing pending: nothing told twice
    assert sorted(_queue_events(notify)) == [(2, 1), (3, 2)]

    # a pass kept for later, then the queue empties: the next pass leaves nothing, and nothing stale is told
    await hub.store.remove_from_queue(2)
    await router.route_once(hub, publish=False)
    await hub.store.remove_from_queue(3)
    now[0] += 2
    await router.route_once(hub, publish=False)
    assert not await router.publish_positions(hub)
    assert sorted(_queue_events(notify)) == [(2, 1), (3, 2)]


def test_the_stores_waiting_order_is_waiting_orders_key() -> None:
    """sort_waiting computes waiting_order inline: the same order, ties kept in input order."""
    import random

    from contact_center.state.base import sort_waiting, waiting_order

    rnd = random.Random(7)
    for _ in range(200):
        entries = [QueueEntry(rnd.randint(1, 20), "general", "chat", rnd.randint(0, 2), float(rnd.choice([10, 20, rnd.uniform(0, 30)])))
                   for _ in range(rnd.randint(0, 30))]
        assert [id(e) for e in sort_waiting(entries)] == [id(e) for e in sorted(entries, key=waiting_order)]


async def _fresh_read(store: Any) -> list[tuple[int, str, frozenset[int], float]]:
    """What a brand-new process reads (everything, no change log): the truth to compare with."""
    from contact_center.state.redis_store import RedisStateStore

    other = RedisStateStore(store.redis, prefix=store.prefix)
    return [(e.conversation_id, e.queue, e.declined_by, e.declined_at) for e in await other.waiting()]


async def test_the_change_log_reader_always_agrees_with_a_full_read(redis_store: Any) -> None:
    """Random pushes and pops from two processes (two stores on one prefix), Redis losing its data and a log
    trimmed past a reader: after every step each reader's waiting() is exactly what a fresh read sees."""
    import random

    from contact_center.state.redis_store import RedisStateStore

    a = redis_store
    b = RedisStateStore(a.redis, prefix=a.prefix)
    rnd = random.Random(1907)
    queues = ["general", "sales", "vip"]
    next_cid = 1
    for step in range(400):
        writer = rnd.choice([a, b])
        roll = rnd.random()
        waiting = await _fresh_read(a)
        if roll < 0.35 or not waiting:
            await writer.enqueue(QueueEntry(next_cid, rnd.choice(queues), "chat", rnd.choice([0, 0, 1]), float(step)))
            next_cid += 1
        elif roll < 0.55:
            cid = rnd.choice(waiting)[0]
            agent = rnd.randint(1, 5)
            if await writer.offer(cid, agent, float(step) + 30) is not None and rnd.random() < 0.7:
                await writer.decline(cid, agent, float(step))  # back in its queue with a new record
        elif roll < 0.75:
            await writer.remove_from_queue(rnd.choice(waiting)[0])
        elif roll < 0.8:
            cid = rnd.choice(waiting)[0]
            if await writer.offer(cid, 7, float(step) + 30) is not None:
                await writer.accept(cid, 7)
                await writer.release(cid, float(step))
        elif roll < 0.82:
            await a.redis.hset(a._wgen, "trim", 10**9)  # the log trimmed past every reader: they read everything
            assert [e.conversation_id for e in await rnd.choice([a, b]).waiting()] == [c for c, *_ in await _fresh_read(a)]
            await a.redis.hdel(a._wgen, "trim")
        elif roll < 0.83:
            await RedisStateStore(a.redis, prefix=a.prefix).clear()  # Redis lost its data (not through a or b)
        truth = await _fresh_read(a)
        for reader in rnd.sample([a, b], 2):
            got = [(e.conversation_id, e.queue, e.declined_by, e.declined_at) for e in await reader.waiting()]
            assert got == truth, (step, reader is a)
    assert a._since is not None and b._since is not None


async def test_a_reader_notices_redis_lost_its_data_even_when_the_generations_have_caught_up(redis_store: Any) -> None:
    """After a data loss the generation counter starts again; once it is past the reader's, only the epoch tells."""
    from contact_center.state.redis_store import RedisStateStore

    a = redis_store
    for cid in range(1, 4):
        await a.enqueue(QueueEntry(cid, "general", "chat", 0, float(cid)))
    assert [e.conversation_id for e in await a.waiting()] == [1, 2, 3]
    other = RedisStateStore(a.redis, prefix=a.prefix)
    await other.clear()  # Redis lost everything (another process rebuilds from SQL)
    for cid in range(10, 20):  # more pushes than the reader had seen: the counter is past its generation
        await other.enqueue(QueueEntry(cid, "sales", "chat", 0, float(cid)))
    assert [e.conversation_id for e in await a.waiting()] == list(range(10, 20))
