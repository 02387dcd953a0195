"""Web chat's limits, as docs/subsystems/realtime.md states them: an oversized packet gets an error ack,
a socket over its message rate gets ``rate_limited``, and the connection stays up."""

from __future__ import annotations

from dataclasses import replace

import asyncio
from typing import Any, AsyncIterator

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.keys import HUB_KEY, SIO_KEY
from contact_center.realtime import FRAME_LIMIT, CustomerNamespace
from contact_center.settings import Settings, webchat_rate_limit
from tests.sio_helpers import Inbox, sio_client


class Hub:
    """The running hub of a test: its base URL, app and SQLite file."""

    def __init__(self, base: str, app: web.Application, db_file: str) -> None:
        self.base, self.app, self.db_file = base, app, db_file

    @property
    def customers(self) -> CustomerNamespace:
        ns = self.app[SIO_KEY].namespace_handlers["/customer"]
        assert isinstance(ns, CustomerNamespace)
        return ns

    def stored_customer_messages(self) -> list[str]:
        engine = sa.create_engine(f"sqlite:///{self.db_file}")
        try:
            with engine.connect() as c:
                rows = c.execute(sa.text("SELECT client_msg_id FROM messages WHERE sender_kind = 'customer' ORDER BY id")).all()
        finally:
            engine.dispose()
        return [r[0] for r in rows]


@pytest.fixture
async def hub(tmp_path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hub]:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("WEBCHAT_MESSAGE_BURST", raising=False)  # the defaults, whatever the shell says
    monkeypatch.delenv("WEBCHAT_MESSAGES_PER_SECOND", raising=False)
    db_file = f"{tmp_path}/limits.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db_file}", service_tokens=("t",), demo_data=False,
                        session_secret="s" * 32, media_dir=str(tmp_path / "media"))
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Hub(str(server.make_url("")).rstrip("/"), app, db_file)
    finally:
        await server.close()


@pytest.fixture
def base(hub: Hub) -> str:
    return hub.base


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _customer(base: str, visitor: str) -> Any:
    inbox = Inbox()
    sio = sio_client(inbox, "/customer", ("session", "message"))
    await sio.connect(base, namespaces=["/customer"], auth={"visitor_id": visitor}, transports=["websocket"])
    await inbox.wait("session")
    return sio


async def _send(sio: Any, client_msg_id: str) -> dict[str, Any]:
    ack: dict[str, Any] = await sio.call("message", {"client_msg_id": client_msg_id, "text": f"text {client_msg_id}"}, namespace="/customer", timeout=10)
    return ack


async def test_an_oversized_message_gets_too_large_and_the_connection_stays_up(base: str) -> None:
    inbox = Inbox()
    sio = sio_client(inbox, "/customer", ("session", "message"))
    await sio.connect(base, namespaces=["/customer"], auth={"visitor_id": "visitor_limits_01"}, transports=["websocket"])
    try:
        await inbox.wait("session")
        big = await sio.call("message", {"client_msg_id": "big", "text": "x" * (FRAME_LIMIT + 10)}, namespace="/customer", timeout=10)
        assert big["ok"] is False and big["error"]["code"] == "too_large"
        long_text = await sio.call("message", {"client_msg_id": "long", "text": "y" * 4001}, namespace="/customer", timeout=10)
        assert long_text["ok"] is False and long_text["error"]["code"] == "bad_request"
        ok = await sio.call("message", {"client_msg_id": "small", "text": "still here"}, namespace="/customer", timeout=10)
        assert ok["ok"] is True and ok["message"]["text"] == "still here"
        assert sio.connected
    finally:
        await sio.disconnect()


async def test_a_burst_over_the_rate_limit_is_refused_and_the_socket_goes_on_after_waiting(hub: Hub) -> None:
    ns = hub.customers
    assert (ns.message_burst, ns.messages_per_second) == (10, 2.0)  # the defaults
    clock = FakeClock()
    ns.clock = clock  # time stands still during the burst: exactly the burst gets through
    sio = await _customer(hub.base, "visitor_limits_rate")
    try:
        acks = [await _send(sio, f"m{i}") for i in range(13)]
        assert [a["ok"] for a in acks] == [True] * 10 + [False] * 3
        for refused in acks[10:]:
            assert refused["error"]["code"] == "rate_limited"
            assert refused["error"]["retry_after"] == 0.5  # one message every 0.5 s at 2/s
            assert refused["error"]["message"]
            assert "message" not in refused
        assert hub.stored_customer_messages() == [f"m{i}" for i in range(10)]  # nothing of the refused ones
        assert sio.connected

        clock.now += 0.5  # the wait it was told
        after = await _send(sio, "m10")
        assert after["ok"] is True and after["message"]["client_msg_id"] == "m10"
        again = await _send(sio, "m11")  # one token came back, and it is spent
        assert again["error"]["code"] == "rate_limited"
        clock.now += 60  # a long pause refills the bucket to the burst, no more
        later = [await _send(sio, f"n{i}") for i in range(11)]
        assert [a["ok"] for a in later] == [True] * 10 + [False]
        assert hub.stored_customer_messages() == [f"m{i}" for i in range(11)] + [f"n{i}" for i in range(10)]

        # the visitor's messages count together too: another widget (tab) of the same visitor does not get a
        # fresh burst (issue 19); once the visitor's bucket refills, either tab may send
        other = await _customer(hub.base, "visitor_limits_rate")
        try:
            refused = await _send(other, "o1")
            assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
            assert refused["error"]["retry_after"] == 0.5
            assert "all your chat windows" in refused["error"]["message"]
            clock.now += 0.5
            assert (await _send(other, "o1"))["ok"] is True
        finally:
            await other.disconnect()
        resumed = await sio.call("resume", {"last_seq": 0}, namespace="/customer", timeout=10)  # other events are not limited
        assert resumed["ok"] and len(resumed["messages"]) >= 22
    finally:
        await sio.disconnect()


async def test_typing_over_the_limit_is_dropped_quietly(hub: Hub) -> None:
    ns = hub.customers
    clock = FakeClock()
    ns.clock = clock
    relayed: list[bool] = []
    real = hub.app[HUB_KEY].customer_typing

    async def counting(customer_id: int, typing: bool, **kw: Any) -> None:
        relayed.append(typing)
        await real(customer_id, typing, **kw)

    hub.app[HUB_KEY].customer_typing = counting  # type: ignore[method-assign]
    sio = await _customer(hub.base, "visitor_limits_typing")
    try:
        assert (await _send(sio, "first"))["ok"] is True  # typing is relayed once there is a conversation
        for i in range(15):
            await sio.emit("typing", {"typing": i % 2 == 0}, namespace="/customer")
        for _ in range(200):
            if len(relayed) >= 10:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert len(relayed) == 10  # the other 5 were dropped, without an error
        assert (await _send(sio, "second"))["ok"] is True  # a separate bucket from messages
        assert sio.connected
    finally:
        await sio.disconnect()


async def test_the_limit_is_read_from_the_environment_and_uses_the_real_clock(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert webchat_rate_limit({}) == (10, 2.0)
    env = {"WEBCHAT_MESSAGE_BURST": "3", "WEBCHAT_MESSAGES_PER_SECOND": "1"}
    settings = Settings.from_env(env)
    assert (settings.webchat_message_burst, settings.webchat_messages_per_second) == (3, 1.0)
    assert webchat_rate_limit({"WEBCHAT_MESSAGE_BURST": "0"})[0] == 0  # off

    db_file = f"{tmp_path}/env.db"
    # the composition root hands the namespace the settings' limit (read from the environment by from_env)
    app = create_app(replace(
        Settings(database_url=f"sqlite+aiosqlite:///{db_file}", service_tokens=("t",), demo_data=False,
                 session_secret="s" * 32, media_dir=str(tmp_path / "media")),
        webchat_message_burst=settings.webchat_message_burst, webchat_messages_per_second=settings.webchat_messages_per_second,
    ))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    hub = Hub(str(server.make_url("")).rstrip("/"), app, db_file)
    try:
        assert (hub.customers.message_burst, hub.customers.messages_per_second) == (3, 1.0)
        sio = await _customer(hub.base, "visitor_limits_env")
        try:
            acks = [await _send(sio, f"e{i}") for i in range(5)]
            assert [a["ok"] for a in acks] == [True] * 3 + [False] * 2
            wait = acks[-1]["error"]["retry_after"]
            assert 0 < wait <= 1.0
            await asyncio.sleep(wait)
            assert (await _send(sio, "e5"))["ok"] is True
            assert hub.stored_customer_messages() == ["e0", "e1", "e2", "e5"]
        finally:
            await sio.disconnect()
    finally:
        await server.close()
