"""The Redis manager's one publisher, on the real Redis: every emit reaches the other node, in order, in fewer messages."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, AsyncIterator

import pytest
import redis.asyncio as aioredis

from contact_center.realtime import create_sio
from contact_center.sio_managers import IndexedAsyncRedisManager, joined
from tests.cluster import REDIS_URL


class Node:
    """One hub process's Socket.IO server, with a fake socket in a room and the packets sent to it recorded."""

    def __init__(self, channel: str, redis_url: str = REDIS_URL) -> None:
        self.sio = create_sio(redis_url, None, channel=channel)
        self.manager: IndexedAsyncRedisManager = self.sio.manager
        self.sent: list[Any] = []

        async def record(eio_sid: str, pkt: Any) -> None:
            self.sent.append((eio_sid, pkt.data))

        self.sio._send_eio_packet = record  # type: ignore[method-assign]

    def join(self, sid: str, namespace: str, room: str) -> None:
        self.manager.basic_enter_room(sid, namespace, None, eio_sid="eio-" + sid)
        self.manager.basic_enter_room(sid, namespace, sid, eio_sid="eio-" + sid)
        self.manager.basic_enter_room(sid, namespace, room)

    def texts(self) -> list[str]:
        import json

        out = []
        for _, data in self.sent:
            event, payload = json.loads(data[data.index("["):])
            out.append(payload["text"])
        return out


@pytest.fixture
async def channel() -> AsyncIterator[str]:
    name = f"cc-test-publisher-{uuid.uuid4().hex[:8]}"
    yield name


async def _listening(node: Node) -> None:
    """Start a node's pub/sub listener and wait until Redis counts its subscription."""
    node.manager.initialize()
    r = aioredis.from_url(REDIS_URL)
    try:
        for _ in range(200):
            counts = dict(await r.pubsub_numsub(node.manager.channel))
            if counts.get(node.manager.channel.encode(), 0) >= 1:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the node never subscribed")
    finally:
        await r.aclose()


async def _stop(*nodes: Node) -> None:
    for node in nodes:
        thread = getattr(node.manager, "thread", None)
        if thread is not None:
            thread.cancel()
            await asyncio.gather(thread, return_exceptions=True)
        if node.manager.redis is not None:
            await node.manager.redis.aclose()


async def _wait(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def test_a_burst_reaches_the_other_node_whole_and_in_order_in_few_messages(channel: str) -> None:
    a, b = Node(channel), Node(channel)
    b.join("agent-sock", "/agent", "agent:1")
    await _listening(b)
    try:
        for i in range(300):  # a burst, as many customers' messages in one event-loop turn
            await a.sio.emit("message", {"text": f"m{i}"}, to="agent:1", namespace="/agent")
        await a.manager.flush()
        await _wait(lambda: len(b.sent) >= 300)
        assert b.texts() == [f"m{i}" for i in range(300)]
        assert {eio for eio, _ in b.sent} == {"eio-agent-sock"}
        # python-socketio would publish 300 messages; queued together they go out as a handful
        assert a.manager.published <= 5, a.manager.published
        assert a.sent == []  # nobody on node A is in the room: nothing encoded or sent there
    finally:
        await _stop(a, b)


async def test_interleaved_emits_from_concurrent_tasks_keep_each_tasks_order(channel: str) -> None:
    a, b = Node(channel), Node(channel)
    b.join("agent-sock", "/agent", "agent:1")
    await _listening(b)
    try:
        async def conversation(c: int) -> None:
            for i in range(40):
                await a.sio.emit("message", {"text": f"c{c}.{i}"}, to="agent:1", namespace="/agent")
                await asyncio.sleep(0)

        await asyncio.gather(*(conversation(c) for c in range(5)))
        await a.manager.flush()
        await _wait(lambda: len(b.sent) >= 200)
        texts = b.texts()
        for c in range(5):
            assert [t for t in texts if t.startswith(f"c{c}.")] == [f"c{c}.{i}" for i in range(40)]
    finally:
        await _stop(a, b)


async def test_a_socket_of_this_node_gets_the_emit_once_and_the_skipped_sender_nothing(channel: str) -> None:
    a, b = Node(channel), Node(channel)
    a.join("tab-1", "/customer", "conv:9")
    a.join("tab-2", "/customer", "conv:9")
    b.join("tab-3", "/customer", "conv:9")
    await _listening(a)
    await _listening(b)
    try:
        await a.sio.emit("message", {"text": "hi"}, to="conv:9", namespace="/customer", skip_sid="tab-1")
        await a.manager.flush()
        await _wait(lambda: len(b.sent) >= 1)
        await asyncio.sleep(0.2)  # node A's own publish comes back to it: it must not deliver twice
        assert [eio for eio, _ in a.sent] == ["eio-tab-2"]
        assert [eio for eio, _ in b.sent] == ["eio-tab-3"]
    finally:
        await _stop(a, b)


async def test_redis_down_an_emit_neither_raises_nor_hangs_and_is_logged(channel: str, caplog: pytest.LogCaptureFixture) -> None:
    a = Node(channel, redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    a.join("tab-1", "/customer", "conv:9")
    caplog.set_level(logging.ERROR)
    try:
        await asyncio.wait_for(a.sio.emit("message", {"text": "hi"}, to="conv:9", namespace="/customer"), 5)
        await asyncio.wait_for(a.manager.flush(), 10)
        assert [eio for eio, _ in a.sent] == ["eio-tab-1"]  # this node's own sockets still get it
        assert a.manager.flushes == 0
        assert "giving up" in caplog.text
    finally:
        await _stop(a)


def test_joined_keeps_the_order_and_joins_only_runs_of_emits() -> None:
    e = [{"method": "emit", "n": i} for i in range(4)]
    room = {"method": "enter_room", "sid": "s"}
    assert joined([e[0], e[1], room, e[2], e[3]]) == [
        {**e[0], "also": [e[1]]}, room, {**e[2], "also": [e[3]]},
    ]
    assert joined([room]) == [room]
    assert joined([e[0]]) == [e[0]]
