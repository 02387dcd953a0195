"""Web chat's limits, as docs/subsystems/realtime.md states them: an oversized packet gets an error ack and the connection stays up."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.realtime import FRAME_LIMIT
from contact_center.settings import Settings
from crm_store.db import Database
from tests.sio_helpers import Inbox, sio_client


@pytest.fixture
async def base(tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path}/limits.db"
    settings = Settings(database_url=url, service_tokens=("t",), demo_data=False, session_secret="s" * 32, media_dir=str(tmp_path / "media"))
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


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
