"""Call recording, per queue, through the real hub core (HubService on SQLite and PostgreSQL), the voice adapter and
the local Twilio stand-in (its TwiML engine, its Conference Recordings resources and its recording status callbacks).

With ``queues.record_calls`` on: the caller hears the consent notice before the bridge, the conference is recorded
from its start (``record="record-from-start"``), the agent pauses the recording while the caller types digits
(``Status=paused``, ``PauseBehavior=skip``) and resumes it, and the completed recording (its SID and URL, from a
signed recording status callback taken once) is on the customer's timeline. Off (the default): no notice, nothing
recorded. Every wait has a timeout; servers and the REST client are closed at teardown.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import col, select

from contact_center.channels import VOICE, ChannelRegistry
from contact_center.hub.service import AgentRef, HubService
from contact_center.state.memory import MemoryStateStore
from contact_center.usecases.errors import HubError
from crm_store.db import Database
from crm_store.models import Conversation, Interaction, Message, Queue
from crm_store.repositories import agents as agents_repo
from integrations.twilio import ivr
from integrations.twilio.config import TwilioConfig, parse_numbers
from integrations.twilio.receipts import MemoryWebhookReceipts
from integrations.twilio.signature import compute_signature
from integrations.twilio.voice import CONSENT_TEXT, VoiceAdapter, VoiceSettings, add_voice_routes
from integrations.twilio.voice_rest import VoiceRestClient

ACCOUNT_SID = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "stand-in-auth-token"
SHOP = "+15005550006"
CALLER = "+14155550100"
WAIT = 10.0  # seconds any one wait may take (a loaded machine)


class Emits:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, str | None]] = []

    async def emit(self, event: str, data: Any = None, *, to: str | None = None, namespace: str | None = None, skip_sid: str | None = None) -> None:
        self.events.append((event, data, to))

    async def emit_many(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            await self.emit(**item)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def until_async(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Rig:
    hub: HubService
    engine: Any
    standin: Any
    db: Database
    base: str
    alice: AgentRef

    async def set_recording(self, on: bool) -> None:
        async with self.db.transaction() as s:
            queue = (await s.exec(select(Queue).where(Queue.name == "support"))).one()
            queue.record_calls = on
            s.add(queue)

    async def bridged_call(self) -> tuple[Any, int]:
        """A call that pressed 0, accepted by alice, whose client leg is answered: (the stand-in's call, conversation id)."""
        call = self.engine.incoming_call(CALLER, SHOP)
        await asyncio.wait_for(self.engine.wait_for(lambda: call.listening, timeout=WAIT), WAIT + 1)
        assert self.engine.send_digits(call.sid, "0")
        await until(lambda: ivr.TO_AGENT in said(call), "the caller to be queued")
        conv = await until_async(lambda: self.conversation(call.sid, "queued"), "the call queued")
        await self.hub.agent_online(self.alice)
        await self.hub.set_status(self.alice, "available")
        assert await self.hub.route_once() == 1
        await self.hub.accept(self.alice, conv.id)
        legs = await until(lambda: [leg for leg in self.engine.client_legs(f"agent_{self.alice.id}") if leg["status"] == "ringing"],
                           "alice's leg to ring")
        self.engine.answer(legs[0]["call_sid"])
        await until(lambda: call.participant is not None and call.participant.conference.started, "the bridge")
        return call, int(conv.id)

    async def conversation(self, call_sid: str, status: str | None = None) -> Conversation | None:
        async with self.db.session() as s:
            row = (await s.exec(select(Conversation).where(Conversation.thread_key == call_sid))).first()
        return row if row is not None and (status is None or row.status == status) else None

    async def recording_messages(self, conversation_id: int) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            rows = (await s.exec(select(Message).where(Message.conversation_id == conversation_id).order_by(col(Message.seq)))).all()
        return [a["recording"] for m in rows for a in (m.attachments or []) if isinstance(a, dict) and "recording" in a]

    async def timeline(self, conversation_id: int) -> list[Interaction]:
        async with self.db.session() as s:
            return list((await s.exec(select(Interaction).where(Interaction.conversation_id == conversation_id)
                                      .order_by(col(Interaction.id)))).all())


def said(call: Any) -> list[str]:
    return [e.text for e in call.transcript if e.kind == "say"]


@pytest.fixture
async def rig(db: Database, aiohttp_server: Any) -> AsyncIterator[Rig]:
    from integrations.standins.twilio import STANDIN_KEY, create_twilio_standin

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with db.transaction() as s:
        alice = await agents_repo.create_agent(s, "alice", "pw-alice-1", display_name="Alice", capacity={"phone": 1})
        await agents_repo.create_queue(s, "support", channels=["phone"])
    assert alice.id is not None
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=TOKEN, public_base_url=base,
                          numbers=parse_numbers(f"{SHOP}=support"), api_base_url=base + "/standin/twilio")
    client = VoiceRestClient(config, backoff=0.01, timeout=5.0)
    adapter = VoiceAdapter(config, client, VoiceSettings(agent_ring_seconds=10))
    channels = ChannelRegistry()
    channels.register(VOICE, adapter)
    hub = HubService(db, MemoryStateStore(), Emits(), channels=channels, wrap_up_seconds=0)
    await hub.load_queues()
    standin_app = create_twilio_standin(account_sid=ACCOUNT_SID, auth_token=TOKEN, webhook_base_url=base, numbers=[SHOP],
                                        dev_page=False, api_base_url=base + "/standin/twilio", time_scale=0.05)
    app = web.Application()
    add_voice_routes(app, config, lambda: hub, adapter, receipts=MemoryWebhookReceipts())
    app.add_subapp("/standin/twilio", standin_app)
    server = await aiohttp_server(app, port=port)
    standin = standin_app[STANDIN_KEY]
    try:
        yield Rig(hub, standin.voice, standin, db, base, AgentRef(alice.id, "alice", "Alice", "agent"))
    finally:
        tasks = [*hub._bot_tasks, *hub._delivery_tasks, *hub.wrap_up_tasks.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.wait_for(client.close(), timeout=5)
        await asyncio.wait_for(server.close(), timeout=10)


async def test_recording_is_off_by_default_no_notice_nothing_recorded(rig: Rig) -> None:
    call, cid = await rig.bridged_call()
    room = call.participant.conference
    assert CONSENT_TEXT not in said(call) and not room.record and room.recordings == []
    with pytest.raises(HubError) as refused:
        await rig.hub.call_action(rig.alice, cid, "pause_recording")
    assert refused.value.code == "conflict" and "not being recorded" in str(refused.value)


async def test_a_recorded_queue_consent_pause_for_digits_resume_and_the_link_on_the_timeline(rig: Rig) -> None:
    await rig.set_recording(True)
    call, cid = await rig.bridged_call()
    # the consent notice, before the caller joined the conference
    texts = [(e.kind, e.text) for e in call.transcript]
    consent = texts.index(("say", CONSENT_TEXT))
    joined = next(i for i, (kind, text) in enumerate(texts) if kind == "note" and text.startswith("joined the conference"))
    assert consent < joined
    room = call.participant.conference
    assert room.record
    recording = await until(lambda: room.recordings and room.recordings[0], "the recording to start")
    # the signed recording status callback (in-progress) reached the hub: the console's indicator
    recs = await until_async(lambda: rig.recording_messages(cid), "the recording kept with the conversation")
    assert (recs[-1]["sid"], recs[-1]["state"]) == (recording.sid, "in-progress")
    # the caller is about to type digits: paused (skip), then resumed, through the Recordings API
    result = await rig.hub.call_action(rig.alice, cid, "pause_recording")
    assert result["recording"]["state"] == "paused" and recording.status == "paused"
    assert recording.pauses == ["paused:skip"]
    with pytest.raises(HubError):
        await rig.hub.call_action(rig.alice, cid, "pause_recording")  # already paused
    await rig.hub.call_action(rig.alice, cid, "resume_recording")
    assert recording.status == "in-progress" and recording.pauses == ["paused:skip", "in-progress"]
    assert [r["state"] for r in await rig.recording_messages(cid)] == ["in-progress", "paused", "in-progress"]
    # the caller hangs up: the conference ends, the recording completes, its link goes on the timeline once
    rig.engine.hang_up(call.sid)

    async def linked() -> list[Interaction]:
        return [i for i in await rig.timeline(cid) if (i.payload or {}).get("event") == "recording_completed"]

    done = await until_async(linked, "the completed recording on the timeline")
    assert recording.status in ("completed", "absent")
    assert done[0].payload["recording"]["sid"] == recording.sid
    assert done[0].payload["recording"]["url"] == recording.url
    assert recording.url.endswith(f"/Recordings/{recording.sid}")
    sent = [r for r in rig.engine.requests if r.kind == "recording"]
    assert [r.form["RecordingStatus"] for r in sent] == ["in-progress", recording.status]
    assert all(r.hub_status == 200 for r in sent)
    # Twilio may post a callback again: taken once
    again = sent[-1]
    async with aiohttp.ClientSession() as http:
        resp = await http.post(again.url, data=again.form, headers={"X-Twilio-Signature": again.signature})
        assert resp.status == 200
        tampered = {**again.form, "RecordingSid": "RE" + "f" * 32}
        resp = await http.post(again.url, data=tampered, headers={"X-Twilio-Signature": again.signature})
        assert resp.status == 403
    assert len(await linked()) == 1
    summaries = [i.summary for i in await rig.timeline(cid)]
    assert any("paused the call's recording" in s for s in summaries) and any("resumed" in s for s in summaries)


async def test_the_standin_refuses_what_twilio_refuses_on_a_recording(rig: Rig) -> None:
    await rig.set_recording(True)
    call, _ = await rig.bridged_call()
    room = call.participant.conference
    recording = await until(lambda: room.recordings and room.recordings[0], "the recording to start")
    api = f"{rig.base}/standin/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Conferences/{room.sid}/Recordings"
    auth = aiohttp.BasicAuth(ACCOUNT_SID, TOKEN)
    async with aiohttp.ClientSession(auth=auth) as http:
        for form, code in (({}, 20001), ({"Status": "muted"}, 20001), ({"Status": "paused", "PauseBehavior": "later"}, 20001)):
            resp = await http.post(f"{api}/{recording.sid}.json", data=form)
            assert (resp.status, (await resp.json())["code"]) == (400, code), form
        resp = await http.post(f"{api}/RE{'0' * 32}.json", data={"Status": "paused"})
        assert (resp.status, (await resp.json())["code"]) == (404, 20404)
        resp = await http.post(f"{api}/Twilio.CURRENT.json", data={"Status": "paused", "PauseBehavior": "skip"})
        assert resp.status == 200 and (await resp.json())["status"] == "paused"
        listed = await (await http.get(f"{api}.json")).json()
        assert [r["sid"] for r in listed["recordings"]] == [recording.sid]
        resp = await http.post(f"{api}/{recording.sid}.json", data={"Status": "stopped"})
        assert resp.status == 200 and recording.status in ("completed", "absent")
        resp = await http.post(f"{api}/{recording.sid}.json", data={"Status": "in-progress"})
        assert (resp.status, (await resp.json())["code"]) == (400, 20001)  # a finished recording does not change
        resp = await http.post(f"{api}/Twilio.CURRENT.json", data={"Status": "paused"})
        assert (resp.status, (await resp.json())["code"]) == (404, 20404)  # no active recording
        fetched = await http.get(f"{rig.base}/standin/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording.sid}.json")
        assert fetched.status == 200 and (await fetched.json())["conference_sid"] == room.sid
    async with aiohttp.ClientSession() as http:  # no credentials
        assert (await http.get(f"{api}.json")).status == 401


async def test_an_unsigned_or_malformed_recording_callback_is_refused(rig: Rig) -> None:
    url = f"{rig.base}/webhooks/twilio/voice/recording?call=CA{'1' * 32}"
    form = {"AccountSid": ACCOUNT_SID, "RecordingSid": "RE" + "2" * 32, "RecordingStatus": "completed",
            "RecordingUrl": "https://api.twilio.com/x", "RecordingDuration": "12", "ConferenceSid": "CF" + "3" * 32}
    async with aiohttp.ClientSession() as http:
        assert (await http.post(url, data=form)).status == 403
        for changes in ({"RecordingSid": "nope"}, {"RecordingStatus": "exploded"}, {"RecordingDuration": "x"},
                        {"AccountSid": "AC" + "9" * 32}):
            bad = {**form, **changes}
            resp = await http.post(url, data=bad, headers={"X-Twilio-Signature": compute_signature(TOKEN, url, bad)})
            assert resp.status == 400, changes
        # a call the hub does not know: taken (200), nothing recorded
        resp = await http.post(url, data=form, headers={"X-Twilio-Signature": compute_signature(TOKEN, url, form)})
        assert resp.status == 200
