"""Warm transfer and supervisors on a call, through the real hub core (HubService on SQLite and PostgreSQL), the
voice adapter and the local Twilio stand-in (its voice engine runs the hub's TwiML and serves the REST calls).

A call comes in, the caller presses 0, alice accepts and her ``client:`` leg is answered through the stand-in:
then alice consults bob (the caller held with music, bob's leg rings into the same conference ``conv-<id>``) and
completes (she drops out, bob has the call) or cancels (bob's leg removed, the caller back with alice); bob may
not answer; sam (a supervisor) listens, whispers and barges, each checked against who hears whom in the
stand-in's conference. Every wait here has a timeout; the servers and the REST client are closed at teardown.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import pytest
from aiohttp import web
from sqlmodel import select

from contact_center.channels import VOICE, ChannelRegistry
from contact_center.hub.service import AgentRef, HubService
from contact_center.state.memory import MemoryStateStore
from contact_center.usecases.errors import HubError
from crm_store.db import Database
from crm_store.models import Conversation, Interaction
from crm_store.repositories import agents as agents_repo
from integrations.twilio import ivr
from integrations.twilio.config import TwilioConfig, parse_numbers
from integrations.twilio.receipts import MemoryWebhookReceipts
from integrations.twilio.voice import VoiceAdapter, VoiceSettings, add_voice_routes
from integrations.twilio.voice_rest import VoiceRestClient

ACCOUNT_SID = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "stand-in-auth-token"
SHOP = "+15005550006"
CALLER = "+14155550100"
WAIT = 5.0  # seconds any one wait may take


class Emits:
    """The Socket.IO server as the hub's notifier sees it: what was emitted, and to which room."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, str | None]] = []

    async def emit(self, event: str, data: Any = None, *, to: str | None = None, namespace: str | None = None, skip_sid: str | None = None) -> None:
        self.events.append((event, data, to))

    async def emit_many(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            await self.emit(**item)

    def to_agent(self, agent_id: int, event: str) -> list[Any]:
        return [d for e, d, to in self.events if e == event and to == f"agent:{agent_id}"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``predicate`` until it holds (its value), failing with ``what`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Bridged:
    """A call bridged to alice, with bob (another agent) and sam (a supervisor) logged in."""

    hub: HubService
    engine: Any
    adapter: VoiceAdapter
    emits: Emits
    db: Database
    call: Any
    conversation_id: int
    alice: AgentRef
    bob: AgentRef
    sam: AgentRef

    def legs(self, agent: AgentRef) -> list[dict[str, Any]]:
        return self.engine.client_legs(f"agent_{agent.id}")

    async def answer(self, agent: AgentRef) -> str:
        legs = await until(lambda: [leg for leg in self.legs(agent) if leg["status"] == "ringing"], f"{agent.username}'s leg to ring")
        self.engine.answer(legs[0]["call_sid"])
        await until(lambda: any(leg["status"] == "in-progress" and leg["conference"] for leg in self.legs(agent)),
                    f"{agent.username}'s leg in the conference")
        return str(legs[0]["call_sid"])

    @property
    def room(self) -> Any:
        assert self.call.participant is not None
        return self.call.participant.conference

    def hears(self, agent_or_sid: AgentRef | str) -> set[str]:
        """The labels (or CallSids) a participant hears now."""
        sid = agent_or_sid if isinstance(agent_or_sid, str) else next(
            leg["call_sid"] for leg in self.legs(agent_or_sid) if leg["status"] == "in-progress")
        members = self.room.participants
        return {members[s].label or s for s in self.engine.who_hears(self.room).get(sid, [])}

    async def conversation(self) -> Conversation:
        async with self.db.session() as s:
            row = await s.get(Conversation, self.conversation_id)
        assert row is not None
        return row

    async def timeline(self) -> list[str]:
        async with self.db.session() as s:
            rows = (await s.exec(select(Interaction).where(Interaction.conversation_id == self.conversation_id)
                                 .order_by(Interaction.id))).all()  # type: ignore[arg-type]
        return [r.summary for r in rows]


@pytest.fixture
async def bridged(db: Database, aiohttp_server: Any) -> AsyncIterator[Bridged]:
    from integrations.standins.twilio import STANDIN_KEY, create_twilio_standin

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with db.transaction() as s:
        rows = [await agents_repo.create_agent(s, name, f"pw-{name}-1", display_name=name.capitalize(), capacity={"phone": 1}, role=role)
                for name, role in (("alice", "agent"), ("bob", "agent"), ("sam", "supervisor"))]
        await agents_repo.create_queue(s, "support", channels=["phone"])
    alice, bob, sam = (AgentRef(r.id, r.username, r.display_name, r.role) for r in rows)  # type: ignore[arg-type]
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=TOKEN, public_base_url=base,
                          numbers=parse_numbers(f"{SHOP}=support"), api_base_url=base + "/standin/twilio")
    client = VoiceRestClient(config, backoff=0.01, timeout=5.0)
    adapter = VoiceAdapter(config, client, VoiceSettings(agent_ring_seconds=10))
    channels = ChannelRegistry()
    channels.register(VOICE, adapter)
    emits = Emits()
    hub = HubService(db, MemoryStateStore(), emits, channels=channels, wrap_up_seconds=0)
    await hub.load_queues()
    standin_app = create_twilio_standin(account_sid=ACCOUNT_SID, auth_token=TOKEN, webhook_base_url=base, numbers=[SHOP],
                                        dev_page=False, api_base_url=base + "/standin/twilio", time_scale=0.05)
    app = web.Application()
    add_voice_routes(app, config, lambda: hub, adapter, receipts=MemoryWebhookReceipts())
    app.add_subapp("/standin/twilio", standin_app)
    server = await aiohttp_server(app, port=port)
    engine = standin_app[STANDIN_KEY].voice
    try:
        call = engine.incoming_call(CALLER, SHOP)
        await asyncio.wait_for(engine.wait_for(lambda: call.listening, timeout=WAIT), WAIT + 1)
        assert engine.send_digits(call.sid, "0")
        await until(lambda: ivr.TO_AGENT in [e.text for e in call.transcript if e.kind == "say"], "the caller to be queued")
        async with db.session() as s:
            conv = (await s.exec(select(Conversation).where(Conversation.thread_key == call.sid))).one()
        assert conv.id is not None
        await until(lambda: conv.status == "queued", "queued")
        for agent in (alice, bob, sam):
            await hub.agent_online(agent)
        await hub.set_status(alice, "available")
        assert await hub.route_once() == 1
        await hub.accept(alice, conv.id)
        await hub.set_status(bob, "available")
        ready = Bridged(hub, engine, adapter, emits, db, call, conv.id, alice, bob, sam)
        await ready.answer(alice)
        await until(lambda: call.participant is not None and call.participant.conference.started, "the bridge")
        yield ready
    finally:
        # the hub's background work (deliveries, wrap-ups) ends with the test, never with the event loop
        tasks = [t for name in ("bot_tasks", "_bot_tasks", "delivery_tasks", "_delivery_tasks")
                 for t in getattr(hub, name, ())] + list(hub.wrap_up_tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.wait_for(client.close(), timeout=5)
        await asyncio.wait_for(server.close(), timeout=10)


async def second_caller(b: Bridged) -> int:
    """Another caller, pressing 0: their call waits in the queue (nobody is offered it yet). Its conversation id."""
    call = b.engine.incoming_call("+14155550177", SHOP)
    await asyncio.wait_for(b.engine.wait_for(lambda: call.listening, timeout=WAIT), WAIT + 1)
    assert b.engine.send_digits(call.sid, "0")
    await until(lambda: ivr.TO_AGENT in [e.text for e in call.transcript if e.kind == "say"], "the second caller queued")
    async with b.db.session() as s:
        conv = (await s.exec(select(Conversation).where(Conversation.thread_key == call.sid))).one()
    assert conv.id is not None
    return conv.id


def statuses(b: Bridged, agent: AgentRef) -> list[str]:
    return [d["status"] for d in b.emits.to_agent(agent.id, "call_status")]


async def test_consult_then_complete_moves_the_call_to_the_colleague(bridged: Bridged) -> None:
    b = bridged
    result = await b.hub.call_action(b.alice, b.conversation_id, "consult", "agent:%d" % b.bob.id)
    assert result["consult"]["state"] == "ringing" and result["consult"]["target_agent"] == b.bob.id
    # the caller is held (with the hub's music) in the same conference; bob is told and his leg rings into it
    await until(lambda: b.call.participant is not None and b.call.participant.hold, "the caller on hold")
    assert b.call.participant.hold_url and b.call.participant.hold_url.endswith("/hold-music.wav")
    assert b.emits.to_agent(b.bob.id, "consult_request")[0]["from_agent_name"] == "Alice"
    bob_leg = await b.answer(b.bob)
    assert b.legs(b.bob)[0]["conference"] == f"conv-{b.conversation_id}"
    await until(lambda: "consult_answered" in statuses(b, b.alice), "alice told bob answered")
    assert b.hears(b.alice) == {f"agent_{b.bob.id}"} and b.hears(b.bob) == {f"agent_{b.alice.id}"}  # the caller hears music
    assert b.hears(b.call.sid) == set()
    # bob may not complete alice's consultation
    with pytest.raises(HubError) as refused:
        await b.hub.call_action(b.bob, b.conversation_id, "complete_transfer")
    assert refused.value.code == "forbidden"
    await b.hub.call_action(b.alice, b.conversation_id, "complete_transfer")
    # alice drops out, the caller is back and talks with bob; the conference goes on
    await until(lambda: not b.legs(b.alice), "alice's leg gone")
    await until(lambda: b.call.participant is not None and not b.call.participant.hold, "the caller off hold")
    assert b.hears(b.call.sid) == {f"agent_{b.bob.id}"} and b.hears(b.bob) == {"customer"}
    conv = await b.conversation()
    assert conv.status == "assigned" and conv.assigned_agent_id == b.bob.id
    assert await b.hub.store.assignment_of(b.conversation_id) == b.bob.id
    assert b.emits.to_agent(b.alice.id, "conversation_closed")[-1] == {"conversation_id": b.conversation_id, "reason": "transferred"}
    assigned = b.emits.to_agent(b.bob.id, "conversation_assigned")[-1]
    assert assigned["id"] == b.conversation_id and assigned["leg"] == bob_leg
    timeline = await b.timeline()
    assert "Alice transferred to Bob after consultation" in timeline
    assert any(t.startswith("Alice consulted Bob") for t in timeline)
    # bob now owns the call: he can hold it, and his leg ending the conference ends the call
    await b.hub.call_action(b.bob, b.conversation_id, "hold")
    await until(lambda: b.call.participant is not None and b.call.participant.hold, "bob holds the caller")
    with pytest.raises(HubError):
        await b.hub.call_action(b.alice, b.conversation_id, "unhold")
    b.engine.hang_up(bob_leg)
    await until(lambda: b.call.over or b.call.participant is None, "the caller's conference ended with bob's leg")
    assert [(e.code, e.detail) for e in b.engine.errors] == []


async def test_consult_then_cancel_gives_the_caller_back(bridged: Bridged) -> None:
    b = bridged
    await b.hub.call_action(b.alice, b.conversation_id, "consult", f"agent:{b.bob.id}")
    # bob is reserved while his phone rings and while he talks: a caller waiting meanwhile is not offered to him
    waiting = await second_caller(b)
    assert await b.hub.route_once() == 0 and await b.hub.store.offers_of(b.bob.id) == []
    await b.answer(b.bob)
    await until(lambda: "consult_answered" in statuses(b, b.alice), "bob answered")
    assert await b.hub.route_once() == 0
    with pytest.raises(HubError) as twice:  # one consultation at a time
        await b.hub.call_action(b.alice, b.conversation_id, "consult", f"agent:{b.bob.id}")
    assert twice.value.code == "conflict"
    await b.hub.call_action(b.alice, b.conversation_id, "cancel_consult")
    await until(lambda: not b.legs(b.bob), "bob's leg removed")
    await until(lambda: b.call.participant is not None and not b.call.participant.hold, "the caller off hold")
    assert b.hears(b.call.sid) == {f"agent_{b.alice.id}"}
    assert b.emits.to_agent(b.bob.id, "consult_ended")[-1]["reason"] == "cancelled"
    conv = await b.conversation()
    assert conv.assigned_agent_id == b.alice.id
    assert "Alice cancelled the consultation with Bob" in await b.timeline()
    # alice's leg ends the call again (EndConferenceOnExit restored): she is the call's agent
    room = b.room
    alice_leg = next(p for p in room.participants.values() if p.label == f"agent_{b.alice.id}")
    assert alice_leg.end_conference_on_exit is True
    with pytest.raises(HubError):  # nothing left to complete
        await b.hub.call_action(b.alice, b.conversation_id, "complete_transfer")
    # free again: the waiting caller is offered to him
    assert await b.hub.route_once() == 1
    assert [o.conversation_id for o in await b.hub.store.offers_of(b.bob.id)] == [waiting]


async def test_a_colleague_who_does_not_answer_ends_the_consultation(bridged: Bridged) -> None:
    b = bridged
    await b.hub.call_action(b.alice, b.conversation_id, "consult", f"agent:{b.bob.id}")
    legs = await until(lambda: [leg for leg in b.legs(b.bob) if leg["status"] == "ringing"], "bob's leg rings")
    b.engine.hang_up(legs[0]["call_sid"])  # bob declines (busy); a leg left ringing ends no-answer the same way
    await until(lambda: "consult_failed" in statuses(b, b.alice), "alice told the consultation failed")
    await until(lambda: b.call.participant is not None and not b.call.participant.hold, "the caller off hold")
    assert b.hears(b.call.sid) == {f"agent_{b.alice.id}"}
    assert (await b.conversation()).assigned_agent_id == b.alice.id
    assert any(t.startswith("Consultation with Bob failed") for t in await b.timeline())
    presence = await b.hub.store.get_presence(b.bob.id)
    assert presence is not None and presence.load == {}  # his hold went with the consultation
    # and a new consultation may start (to a queue: its next free agent, here bob again)
    await b.hub.set_status(b.bob, "available")
    result = await b.hub.call_action(b.alice, b.conversation_id, "consult", "queue:support")
    assert result["consult"]["target_agent"] == b.bob.id


async def test_a_colleague_who_is_away_cannot_be_consulted(bridged: Bridged) -> None:
    b = bridged
    await b.hub.set_status(b.bob, "away")
    with pytest.raises(HubError) as away:
        await b.hub.call_action(b.alice, b.conversation_id, "consult", f"agent:{b.bob.id}")
    assert away.value.code == "conflict" and "Bob cannot take a call now" in str(away.value)
    with pytest.raises(HubError):
        await b.hub.call_action(b.alice, b.conversation_id, "consult", "queue:support")
    assert not b.call.participant.hold  # nothing was done to the call


async def test_a_supervisor_listens_whispers_and_barges(bridged: Bridged) -> None:
    b = bridged
    sup = f"supervisor_{b.sam.id}"
    alice = f"agent_{b.alice.id}"
    await b.hub.supervise_call(b.sam, b.conversation_id, "listen")
    await b.answer(b.sam)
    await until(lambda: sup in b.hears(b.call.sid) or b.hears(b.sam) == {alice, "customer"}, "sam in the conference")
    assert b.hears(b.sam) == {alice, "customer"}  # sam hears both...
    assert sup not in b.hears(b.call.sid) and sup not in b.hears(b.alice)  # ...and nobody hears sam
    assert "supervisor_listen" not in statuses(b, b.alice)  # listening is silent
    await b.hub.supervise_call(b.sam, b.conversation_id, "whisper")
    await until(lambda: sup in b.hears(b.alice), "alice hears sam's whisper")
    assert sup not in b.hears(b.call.sid)  # the caller does not
    coach = next(p for p in b.room.participants.values() if p.label == sup)
    assert coach.coaching and coach.call_sid_to_coach == next(p.call_sid for p in b.room.participants.values() if p.label == alice)
    await until(lambda: "supervisor_whisper" in statuses(b, b.alice), "alice told of the whisper")
    await b.hub.supervise_call(b.sam, b.conversation_id, "barge")
    await until(lambda: sup in b.hears(b.call.sid), "the caller hears sam")
    assert sup in b.hears(b.alice) and not coach.coaching
    timeline = await b.timeline()
    assert {"Sam listened to the call with Alice", "Sam whispered to the agent on the call with Alice",
            "Sam barged into the call with Alice"} <= set(timeline)
    await b.hub.supervise_call(b.sam, b.conversation_id, "leave")
    await until(lambda: not b.legs(b.sam), "sam's leg gone")
    assert b.call.participant is not None and b.hears(b.call.sid) == {alice}  # the call goes on


async def test_refusals_on_calls(bridged: Bridged) -> None:
    b = bridged
    with pytest.raises(HubError) as agent_barges:  # only supervisors
        await b.hub.supervise_call(b.bob, b.conversation_id, "barge")
    assert agent_barges.value.code == "forbidden"
    with pytest.raises(HubError):
        await b.hub.supervise_call(b.sam, b.conversation_id, "shout")
    with pytest.raises(HubError) as not_yours:  # a consultation is started by the call's agent only
        await b.hub.call_action(b.bob, b.conversation_id, "consult", f"agent:{b.alice.id}")
    assert not_yours.value.code == "forbidden"
    with pytest.raises(HubError) as nothing:
        await b.hub.call_action(b.alice, b.conversation_id, "cancel_consult")
    assert nothing.value.code == "conflict"
    # the caller hangs up: alice wraps up; then nobody can barge into the ended call
    b.engine.hang_up(b.call.sid)
    await until(lambda: "ended" in statuses(b, b.alice), "alice told the caller hung up")
    with pytest.raises(HubError) as gone:  # still assigned (alice wraps up), but the call has no conference any more
        await b.hub.supervise_call(b.sam, b.conversation_id, "barge")
    assert gone.value.code == "conflict"
    await b.hub.close(b.alice, b.conversation_id, "resolved")
    with pytest.raises(HubError) as closed:
        await b.hub.supervise_call(b.sam, b.conversation_id, "barge")
    assert closed.value.code == "conflict" and "ended" in str(closed.value)
    assert not b.legs(b.sam)  # and no empty conference was made for sam
    assert all(c.friendly_name != f"conv-{b.conversation_id}" or c.status == "completed" for c in b.engine.conferences.values())
