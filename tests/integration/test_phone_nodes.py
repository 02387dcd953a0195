"""The phone across hub processes: whole hub applications (``create_app``: the voice webhooks, the adapter, the core,
the router) against one local Twilio stand-in running as its own server, as Twilio would be.

* A hub restart during a call loses nothing: SQL holds the call. The hub is stopped while the caller waits in
  the queue (hearing music, so no webhook is due) and started again on the same port and database: the caller's
  next webhook finds its conversation and place, an agent accepts on the new process and is bridged; the hub is
  restarted again while the agent is bridged, and the new process holds the caller, hears the caller hang up
  and lets the agent wrap up. On SQLite and on PostgreSQL.
* Two hub processes over the same PostgreSQL and Redis never bridge one call twice: accepts at once from two
  consoles on two nodes (alice on both, bob on the other) give one winner, the others "no longer yours (... taken)",
  and exactly one agent leg is dialled into the call's conference.

Every wait has a timeout; servers, clients and the stand-in are closed at teardown.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlmodel import col, select

from contact_center.app import create_app
from contact_center.hub.service import AgentRef
from contact_center.keys import HUB_KEY
from contact_center.settings import Settings
from contact_center.usecases.errors import HubError
from crm_store.db import Database
from crm_store.models import Conversation, Interaction
from crm_store.repositories import agents as agents_repo
from integrations.twilio import ivr
from integrations.twilio.voice import GOODBYE_TEXT

ACCOUNT_SID = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "stand-in-auth-token"
SHOP = "+15005550006"
CALLER = "+14155550100"
REDIS_URL = "redis://127.0.0.1:6379/0"
WAIT = 15.0  # seconds any one wait may take (a loaded machine)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def said(call: Any) -> list[str]:
    return [e.text for e in call.transcript if e.kind == "say"]


class Phones:
    """One Twilio stand-in (its own server) and the hub processes it calls (``hubs[0]`` is the number's webhook)."""

    def __init__(self, db: Database, *, redis: bool) -> None:
        self.db, self.redis = db, redis
        self.prefix = f"cc:{{test-{uuid.uuid4().hex[:8]}}}:"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hubs: list[TestServer] = []
        self.standin_server: TestServer | None = None
        self.standin: Any = None

    def settings(self, public: str) -> Settings:
        return Settings(
            database_url=self.db.url, service_tokens=("t",), demo_data=False, auto_migrate=False, session_secret="s" * 32,
            offer_timeout_seconds=30.0, wrap_up_seconds=0, public_base_url=public, bot_channels=(),
            redis_url=REDIS_URL if self.redis else "", redis_prefix=self.prefix,
            extra={"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_NUMBERS": f"{SHOP}=support",
                   "TWILIO_API_BASE_URL": self.standin_url},
        )

    @property
    def standin_url(self) -> str:
        assert self.standin_server is not None
        return str(self.standin_server.make_url("")).rstrip("/")

    async def start_standin(self) -> None:
        from integrations.standins.twilio import STANDIN_KEY, create_twilio_standin

        port = _free_port()
        app = create_twilio_standin(account_sid=ACCOUNT_SID, auth_token=TOKEN, webhook_base_url=self.base, numbers=[SHOP],
                                    dev_page=False, api_base_url=f"http://127.0.0.1:{port}", time_scale=0.05)
        self.standin_server = TestServer(app, host="127.0.0.1", port=port)
        await self.standin_server.start_server()
        self.standin = app[STANDIN_KEY]

    async def start_hub(self, *, port: int | None = None) -> TestServer:
        """A hub process; the first (and a restarted one) on the number's port."""
        port = port or self.port
        server = TestServer(create_app(self.settings(f"http://127.0.0.1:{port}")), host="127.0.0.1", port=port)
        await server.start_server()
        self.hubs.append(server)
        return server

    async def stop_hub(self, server: TestServer) -> None:
        self.hubs.remove(server)
        await asyncio.wait_for(server.close(), 20)

    @property
    def engine(self) -> Any:
        return self.standin.voice

    async def conversation(self, call_sid: str) -> Conversation | None:
        async with self.db.session() as s:
            return (await s.exec(select(Conversation).where(Conversation.thread_key == call_sid))).first()

    async def queued_call(self) -> tuple[Any, int]:
        """A call that pressed 0 and waits in the queue (hearing the wait loop's music): (call, conversation id)."""
        call = self.engine.incoming_call(CALLER, SHOP)
        await self.engine.wait_for(lambda: call.listening, timeout=WAIT)
        assert self.engine.send_digits(call.sid, "0")
        await until(lambda: ivr.TO_AGENT in said(call), "the caller to be queued")
        conv = await until(lambda: self._queued(call.sid), "the call queued in SQL")
        return call, int(conv.id)

    async def _queued(self, call_sid: str) -> Conversation | None:
        conv = await self.conversation(call_sid)
        return conv if conv is not None and conv.status == "queued" else None

    async def close(self) -> None:
        for server in list(self.hubs):
            await asyncio.wait_for(server.close(), 20)
        if self.standin_server is not None:
            await asyncio.wait_for(self.standin_server.close(), 20)
        if self.redis:
            import redis.asyncio as aioredis

            client = aioredis.from_url(REDIS_URL)
            keys = [k async for k in client.scan_iter(match=self.prefix.replace("{", "\\{").replace("}", "\\}") + "*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


async def _agents(db: Database) -> tuple[AgentRef, AgentRef]:
    async with db.transaction() as s:
        rows = [await agents_repo.create_agent(s, name, f"pw-{name}-1", display_name=name.capitalize(), capacity={"phone": 1})
                for name in ("alice", "bob")]
        await agents_repo.create_queue(s, "support", channels=["phone"])
    return tuple(AgentRef(r.id, r.username, r.display_name, r.role) for r in rows)  # type: ignore[return-value,arg-type]


def hub_of(server: TestServer) -> Any:
    return server.app[HUB_KEY]


async def offered(hub: Any, agent: AgentRef, cid: int) -> bool:
    return any(o.conversation_id == cid for o in await hub.store.offers_of(agent.id))


async def signed_post(phones: Phones, path: str, form: dict[str, str]) -> tuple[int, str]:
    url = phones.base + path
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=form, headers={"X-Twilio-Signature": phones.standin.sign(url, form)}) as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def phones(db: Database) -> AsyncIterator[Phones]:
    p = Phones(db, redis=False)
    await p.start_standin()
    try:
        yield p
    finally:
        await p.close()


async def test_a_hub_restart_during_a_call_loses_nothing(db: Database, phones: Phones) -> None:
    alice, _ = await _agents(db)
    first = await phones.start_hub()
    phones.engine.play_seconds = 400.0  # the wait loop's music lasts (20 s real): no webhook is due while the hub is down
    call, cid = await phones.queued_call()
    await until(lambda: any(e.kind == "play" for e in call.transcript), "the caller hearing the wait music")
    # the hub goes away while the caller waits, and comes back on the same port and database
    await phones.stop_hub(first)
    second = await phones.start_hub()
    hub = hub_of(second)
    # the caller's next webhook (the wait loop's redirect) finds its conversation and place in SQL
    form = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call.sid, "CallStatus": "in-progress",
            "Direction": "inbound", "From": CALLER, "To": SHOP, "Called": SHOP, "Caller": CALLER}
    status, twiml = await signed_post(phones, "/webhooks/twilio/voice/wait?n=2&t0=1", form)
    assert status == 200 and GOODBYE_TEXT not in twiml and "<Redirect" in twiml
    state = await hub.contact_state("phone", call.sid)
    assert state["conversation_id"] == cid and state["status"] == "queued" and state["queue"]["position"] == 1
    # an agent takes it on the new process: bridged through the stand-in
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await until(lambda: offered(hub, alice, cid), "the call offered to alice", timeout=WAIT)
    await hub.accept(alice, cid)
    legs = await until(lambda: [leg for leg in phones.engine.client_legs(f"agent_{alice.id}") if leg["status"] == "ringing"],
                       "alice's leg to ring")
    phones.engine.answer(legs[0]["call_sid"])
    await until(lambda: call.participant is not None and call.participant.conference.started, "the bridge")
    room = call.participant.conference
    # the hub restarts again while the agent is bridged: the call stays up (it lives at Twilio), SQL keeps its state
    await phones.stop_hub(second)
    third = await phones.start_hub()
    hub = hub_of(third)
    assert call.participant is not None and call.participant.conference is room and not call.over
    conv = await phones.conversation(call.sid)
    assert conv is not None and (conv.status, conv.assigned_agent_id) == ("assigned", alice.id)
    await hub.agent_online(alice)
    # the new process knows nothing of the room in memory: it finds the conference by name and holds the caller
    await hub.call_action(alice, cid, "hold")
    await until(lambda: call.participant is not None and call.participant.hold, "the caller on hold")
    await hub.call_action(alice, cid, "unhold")
    await until(lambda: call.participant is not None and not call.participant.hold, "the caller back")
    # the caller hangs up: the status callback reaches the new process, which finds the call; alice wraps up
    phones.engine.hang_up(call.sid)

    async def ended() -> bool:
        async with db.session() as s:
            rows = (await s.exec(select(Interaction).where(Interaction.conversation_id == cid))).all()
        return any((r.payload or {}).get("event") == "ended" for r in rows)

    await until(ended, "the hang-up on the timeline")
    await hub.close(alice, cid, "resolved")
    conv = await phones.conversation(call.sid)
    assert conv is not None and (conv.status, conv.disposition) == ("closed", "resolved")
    async with db.session() as s:
        rows = (await s.exec(select(Conversation).where(Conversation.customer_address == CALLER))).all()
    assert len(rows) == 1  # one call, one conversation: nothing opened twice by the restarts
    assert [(e.code, e.url) for e in phones.engine.errors] == []


@pytest.fixture
async def two_nodes(db: Database) -> AsyncIterator[Phones]:
    if db.dialect != "postgresql":
        pytest.skip("two hub processes share PostgreSQL and Redis")
    p = Phones(db, redis=True)
    await p.start_standin()
    try:
        yield p
    finally:
        await p.close()


async def test_two_hub_processes_never_bridge_one_call_twice(db: Database, two_nodes: Phones) -> None:
    phones = two_nodes
    alice, bob = await _agents(db)
    a = await phones.start_hub()
    b = await phones.start_hub(port=_free_port())
    hub_a, hub_b = hub_of(a), hub_of(b)
    call, cid = await phones.queued_call()
    await hub_a.agent_online(alice)
    await hub_b.agent_online(bob)
    await hub_a.set_status(alice, "available")
    await until(lambda: offered(hub_a, alice, cid), "the call offered to alice")
    await hub_b.set_status(bob, "available")
    # alice's two consoles (one per node) and bob, all at once
    results = await asyncio.gather(hub_a.accept(alice, cid), hub_b.accept(alice, cid), hub_b.accept(bob, cid),
                                   return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(r, HubError) and r.code == "conflict" and "taken" in str(r) for r in lost), lost
    legs = await until(lambda: phones.engine.client_legs(f"agent_{alice.id}"), "alice's leg")
    phones.engine.answer(legs[0]["call_sid"])
    await until(lambda: call.participant is not None and call.participant.conference.started, "the bridge")
    await asyncio.sleep(0.5)  # a second bridge, were there one, would have dialled by now

    dialled = [c for c in phones.engine.calls.values() if c.to.startswith("client:")]
    assert len(dialled) == 1 and dialled[0].to == f"client:agent_{alice.id}"
    assert len([p for p in call.participant.conference.participants.values()]) == 2
    conv = await phones.conversation(call.sid)
    assert conv is not None and (conv.status, conv.assigned_agent_id) == ("assigned", alice.id)
    async with db.session() as s:
        accepted = (await s.exec(select(Interaction).where(Interaction.conversation_id == cid).order_by(col(Interaction.id)))).all()
    assert [i.payload.get("event") for i in accepted].count("accepted") == 1
    phones.engine.hang_up(call.sid)
