"""The hub's bot connector against a stand-in of Rasa's REST channel (scripted replies, delays, faults).

The real Rasa is exercised by tests/bot/ (slow); here the hub's behaviour around it is pinned down:
replies and buttons reach the widget, a handoff queues the chat with the bot's context for the agent,
the bot stays silent afterwards, an agent can hand back (the bot gets ``/resume_bot``), and a bot that
is down, slow or talking nonsense hands the customer to a person with nothing lost.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.keys import HUB_KEY
from contact_center.settings import Settings
from crm_store.db import Database
from crm_store.models import Conversation
from crm_store.repositories import agents as agents_repo
from tests.integration.test_hub_chat import PASSWORD, _agent, _customer

TOKEN = "rasa-secret"
HANDOFF = {
    "handoff": True, "reason": "customer_request", "intent": "order_product",
    "slots": {"product": "T-shirt", "quantity": 2, "size": None, "customer_id": 1},
    "draft": {"lines": [{"sku": "TSHIRT", "name": "T-shirt", "quantity": 2}], "total_minor": 3000},
    "transcript": [{"sender": "customer", "text": "hello bot", "intent": "greet"},
                   {"sender": "customer", "text": "person", "intent": "human_handoff"}],
}


class StandInRasa:
    """Answers like Rasa's REST channel; records every message it gets."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.up = True

    async def webhook(self, request: web.Request) -> web.Response:
        if request.query.get("token") != TOKEN:
            return web.json_response({"error": "unauthorised"}, status=401)
        body = await request.json()
        self.received.append(body)
        text = body["message"]
        if text == "slow":
            await asyncio.sleep(2.0)
        if text == "garbage":
            return web.json_response({"not": "a list"})
        if text == "person":
            return web.json_response([{"recipient_id": body["sender"], "text": "Passing you to a colleague.", "custom": HANDOFF}])
        if text == "/resume_bot":
            return web.json_response([{"recipient_id": body["sender"], "text": "Welcome back! Which size?"}])
        return web.json_response([
            {"recipient_id": body["sender"], "text": f"You said: {text} <b>not bold</b>"},
            {"recipient_id": body["sender"], "text": "Anything else?", "buttons": [{"title": "Order", "payload": "/order_product"}]},
        ])

    async def status(self, request: web.Request) -> web.Response:
        if request.query.get("token") != TOKEN:
            return web.json_response({"error": "unauthorised"}, status=401)
        return web.json_response({"model_file": "models/bot.tar.gz"} if self.up else {}, status=200)


@pytest.fixture
async def bot_hub(db: Database) -> AsyncIterator[tuple[str, StandInRasa, web.Application]]:
    rasa = StandInRasa()
    rasa_app = web.Application()
    rasa_app.router.add_post("/webhooks/rest/webhook", rasa.webhook)
    rasa_app.router.add_get("/status", rasa.status)
    rasa_server = TestServer(rasa_app, host="127.0.0.1")
    await rasa_server.start_server()
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 3})
        await agents_repo.create_queue(s, "sales", channels=["chat"])
    settings = Settings(
        database_url=db.url, service_tokens=("t",), demo_data=False, auto_migrate=False, session_secret="s" * 32,
        rasa_url=str(rasa_server.make_url("")).rstrip("/"), rasa_token=TOKEN, bot_timeout_seconds=0.5,
    )
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    for _ in range(100):
        if app[HUB_KEY].bot_ready:
            break
        await asyncio.sleep(0.05)
    assert app[HUB_KEY].bot_ready
    try:
        yield str(server.make_url("")).rstrip("/"), rasa, app
    finally:
        await server.close()
        await rasa_server.close()


async def _status(db: Database, conversation_id: int) -> str:
    async with db.session() as s:
        conv = await s.get(Conversation, conversation_id)
    assert conv is not None
    return conv.status


async def test_the_bot_answers_hands_over_stays_silent_and_resumes(bot_hub: Any, db: Database) -> None:
    base, rasa, _app = bot_hub
    agent, a_in = await _agent(base, "alice")
    await agent.call("set_status", {"status": "available"}, namespace="/agent")
    cust, c_in = await _customer(base, "visitor_bot_0001")
    ack = await cust.call("message", {"client_msg_id": "b1", "text": "hello bot"}, namespace="/customer")
    cid = ack["message"]["conversation_id"]
    first = await c_in.wait("message", lambda m: m["sender_kind"] == "bot" and m["text"].startswith("You said"))
    assert first["text"] == "You said: hello bot <b>not bold</b>"  # relayed as text, never as markup
    buttons = await c_in.wait("message", lambda m: m.get("buttons"))
    assert buttons["buttons"] == [{"title": "Order", "payload": "/order_product"}]
    assert rasa.received[0]["sender"] == f"conv-{cid}" and rasa.received[0]["metadata"]["conversation_id"] == cid
    assert await _status(db, cid) == "bot" and a_in.all("offer") == []

    # a clicked button: the widget shows the title, the bot gets the payload
    await cust.call("message", {"client_msg_id": "b2", "text": "Order", "payload": "/order_product"}, namespace="/customer")
    await c_in.wait("message", lambda m: m["text"] == "You said: /order_product <b>not bold</b>")

    await cust.call("message", {"client_msg_id": "b3", "text": "person"}, namespace="/customer")
    await c_in.wait("message", lambda m: m["text"] == "Passing you to a colleague.")
    offer = await a_in.wait("offer")
    assert offer["conversation_id"] == cid
    accepted = await agent.call("accept", {"conversation_id": cid}, namespace="/agent")
    msgs = accepted["conversation"]["messages"]
    note = next(m for m in msgs if m.get("handoff"))
    assert note["internal"] and note["handoff"]["context"]["draft"]["lines"][0]["quantity"] == 2
    assert "Intent: order_product" in note["text"] and "product=T-shirt" in note["text"] and "quantity=2" in note["text"]
    assert [m["text"] for m in msgs if m["sender_kind"] == "customer"] == ["hello bot", "Order", "person"]
    assert all(not m.get("handoff") for m in c_in.all("message"))  # the context never reaches the customer

    calls = len(rasa.received)
    await cust.call("message", {"client_msg_id": "b4", "text": "are you there?"}, namespace="/customer")
    await a_in.wait("message", lambda m: m["text"] == "are you there?")
    await asyncio.sleep(0.3)
    assert len(rasa.received) == calls  # handed over: the bot stays silent

    back = await agent.call("handback", {"conversation_id": cid}, namespace="/agent")
    assert back["ok"] and back["status"] == "bot"
    assert (await a_in.wait("conversation_closed"))["reason"] == "to_bot"
    await c_in.wait("message", lambda m: m["text"] == "Welcome back! Which size?")
    assert rasa.received[-1]["message"] == "/resume_bot" and await _status(db, cid) == "bot"
    for sio in (cust, agent):
        await sio.disconnect()


@pytest.mark.parametrize("trouble", ["slow", "garbage"])
async def test_a_slow_or_broken_bot_hands_the_customer_to_a_person(bot_hub: Any, db: Database, trouble: str) -> None:
    base, _rasa, _app = bot_hub
    agent, a_in = await _agent(base, "alice")
    await agent.call("set_status", {"status": "available"}, namespace="/agent")
    cust, c_in = await _customer(base, f"visitor_bot_{trouble}_01")
    ack = await cust.call("message", {"client_msg_id": "t1", "text": trouble}, namespace="/customer")
    cid = ack["message"]["conversation_id"]
    told = await c_in.wait("message", lambda m: m["sender_kind"] == "bot")
    assert "passing you to a colleague" in told["text"].lower()
    offer = await a_in.wait("offer")
    assert offer["conversation_id"] == cid and await _status(db, cid) == "queued"
    accepted = await agent.call("accept", {"conversation_id": cid}, namespace="/agent")
    assert [m["text"] for m in accepted["conversation"]["messages"] if m["sender_kind"] == "customer"] == [trouble]
    for sio in (cust, agent):
        await sio.disconnect()


async def test_with_the_bot_down_new_chats_go_straight_to_agents(bot_hub: Any, db: Database) -> None:
    base, rasa, app = bot_hub
    hub = app[HUB_KEY]
    rasa.up = False
    assert not await hub.bot.ready()
    hub.bot_ready = False  # what the watcher concludes within its interval
    agent, a_in = await _agent(base, "alice")
    await agent.call("set_status", {"status": "available"}, namespace="/agent")
    cust, _ = await _customer(base, "visitor_bot_down_01")
    ack = await cust.call("message", {"client_msg_id": "d1", "text": "hello"}, namespace="/customer")
    assert (await a_in.wait("offer"))["conversation_id"] == ack["message"]["conversation_id"]
    assert rasa.received == []
    for sio in (cust, agent):
        await sio.disconnect()


async def test_handoffs_are_exported_as_candidate_training_data(bot_hub: Any, tmp_path: Any) -> None:
    """GET /api/bot/handoffs gives the handed-over chats with their transcripts and the bot's intents, and
    bot/export_candidates.py --hub turns them into candidate NLU lines and a test-story skeleton."""
    import aiohttp
    import yaml

    from tests.bot.helpers import BOT, load_module
    from tests.integration.test_hub_chat import _login

    base, _rasa, _app = bot_hub
    async with aiohttp.ClientSession() as http:
        empty = await (await http.get(f"{base}/api/bot/handoffs", headers={"Authorization": "Bearer t"})).json()
        assert empty == {"conversations": [], "next_after": None}
        ids = []
        for n in range(2):
            cust, c_in = await _customer(base, f"visitor_export_{n:02d}")
            ack = await cust.call("message", {"client_msg_id": "e1", "text": "hello bot"}, namespace="/customer")
            ids.append(ack["message"]["conversation_id"])
            await c_in.wait("message", lambda m: m["text"] == "Anything else?")
            await cust.call("message", {"client_msg_id": "e2", "text": "person"}, namespace="/customer")
            await c_in.wait("message", lambda m: m["text"] == "Passing you to a colleague.")
            await cust.disconnect()
        for _ in range(500):  # the bot's reply reaches the widget before the handoff's transaction commits
            everything = await (await http.get(f"{base}/api/bot/handoffs", headers={"Authorization": "Bearer t"})).json()
            if len(everything["conversations"]) == 2:
                break
            await asyncio.sleep(0.02)
        assert [c["conversation_id"] for c in everything["conversations"]] == ids and everything["next_after"] is None
        page = await (await http.get(f"{base}/api/bot/handoffs?limit=1", headers={"Authorization": "Bearer t"})).json()
        assert [c["conversation_id"] for c in page["conversations"]] == ids[:1] and page["next_after"]
        first = page["conversations"][0]
        assert first["handoff"]["reason"] == "customer_request" and first["handoff"]["draft"]["lines"][0]["quantity"] == 2
        assert [(m["sender"], m["text"], m.get("intent")) for m in first["messages"]] == [
            ("customer", "hello bot", "greet"), ("bot", "You said: hello bot <b>not bold</b>", None), ("bot", "Anything else?", None),
            ("customer", "person", "human_handoff"), ("bot", "Passing you to a colleague.", None),
        ]  # the internal handoff note is not in the transcript
        rest = await (await http.get(f"{base}/api/bot/handoffs?limit=1&after={page['next_after']}", headers={"Authorization": "Bearer t"})).json()
        assert [c["conversation_id"] for c in rest["conversations"]] == ids[1:]
        agent_cookie = await _login(base, "alice")  # an agent, not a supervisor
        refused = await http.get(f"{base}/api/bot/handoffs", headers={"Cookie": agent_cookie})
        assert refused.status == 403
        bad = await http.get(f"{base}/api/bot/handoffs?after=x", headers={"Authorization": "Bearer t"})
        assert bad.status == 400

    export = load_module("bot_export_candidates_hub", BOT / "export_candidates.py")
    out = tmp_path / "candidates"
    assert await asyncio.to_thread(export.main, ["--hub", base, "--token", "t", "--out", str(out), "--existing", str(tmp_path / "none")]) == 0
    nlu = yaml.safe_load((out / "nlu_candidates.yml").read_text())
    lines = {item["intent"]: item["examples"] for item in nlu["nlu"]}
    assert "- hello bot" in lines["greet"] and "- person" in lines["human_handoff"]
    stories = yaml.safe_load((out / "test_candidates.yml").read_text())["stories"]
    assert [st["story"] for st in stories] == [f"handoff {i} (customer_request)" for i in ids]
    assert stories[0]["steps"][-1] == {"action": "action_handoff"}
