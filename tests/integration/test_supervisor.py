"""The supervisor view: snapshot figures from a scripted set of conversations in SQL (SQLite and PostgreSQL)
checked against hand-computed values, alerts at their thresholds, the /supervisor namespace and routes
(supervisors and admins only), and the live dashboard feed over real Socket.IO against a running hub.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from typing import Any, AsyncIterator

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer

from contact_center import supervisor as sup
from contact_center.app import create_app
from contact_center.domain.staffing import required_agents
from contact_center.hub.service import HubService
from contact_center.keys import HUB_KEY, SIO_KEY
from contact_center.ports import AgentPresence
from contact_center.settings import Settings
from contact_center.state.memory import MemoryStateStore
from crm_store.db import Database
from crm_store.models import Agent, Conversation, Customer, Order, Queue
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import stats
from tests.sio_helpers import Inbox, sio_client

UTC = timezone.utc
DAY = datetime(2026, 11, 23, tzinfo=UTC)
NOW = DAY.replace(hour=10, minute=10)


def at(h: int, m: int, s: int = 0) -> datetime:
    return DAY.replace(hour=h, minute=m, second=s)


class _NoEmit:
    async def emit(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def emit_many(self, items: list[dict[str, Any]]) -> None:
        return None


async def _scripted(db: Database) -> dict[str, int]:
    """Two queues and a morning of contacts with known times (see the figures worked out in the test)."""
    async with db.transaction() as s:
        cust = Customer(display_name="Pat Doe")
        sales = Queue(name="sales", skills_required=["orders"], sl_target_seconds=20, sl_target_ratio=0.8, max_waiting=50)
        support = Queue(name="support", skills_required=[], sl_target_seconds=30, sl_target_ratio=0.9, max_waiting=1)
        a1 = Agent(username="a1", display_name="Ann One", password_hash="x", skills={"orders": 3})
        a2 = Agent(username="a2", display_name="Ben Two", password_hash="x", skills={"returns": 2})
        boss = Agent(username="boss", display_name="Sam Boss", password_hash="x", role="supervisor")
        # one customer per conversation: a customer has at most one chat that is not closed
        customers = [Customer(display_name="Pat Doe") for _ in range(12)]
        others = iter(customers)
        s.add_all([cust, *customers, sales, support, a1, a2, boss])
        await s.flush()
        ids = {"a1": a1.id, "a2": a2.id, "boss": boss.id, "sales": sales.id, "support": support.id, "customer": cust.id}

        def conv(name: str, queue: str, channel: str, queued: datetime, *, answered: datetime | None = None,
                 closed: datetime | None = None, abandoned: datetime | None = None, agent: str | None = None,
                 status: str | None = None, updated: datetime | None = None) -> Conversation:
            return Conversation(
                customer_id=next(others).id, channel=channel, queue_id=ids[queue], subject=name,
                status=status or ("closed" if closed or abandoned else "assigned" if answered else "queued"),
                assigned_agent_id=ids[agent] if agent else None,
                created_at=queued - timedelta(seconds=2), updated_at=updated or queued,
                queued_at=queued, assigned_at=answered, closed_at=closed or abandoned, abandoned_at=abandoned,
            )

        s.add_all([
            # sales, target 20 s
            conv("S1", "sales", "chat", at(9, 5), answered=at(9, 5, 10), closed=at(9, 10, 10), agent="a1"),
            conv("S2", "sales", "chat", at(9, 20), answered=at(9, 20, 30), closed=at(9, 24, 30), agent="a2"),
            conv("S3", "sales", "phone", at(9, 40), abandoned=at(9, 40, 15)),  # a short abandon (15 s <= 20 s)
            conv("S4", "sales", "chat", at(9, 50), abandoned=at(9, 51)),  # abandoned after the target
            conv("S5", "sales", "chat", at(10, 5), answered=at(10, 5, 5), agent="a1"),  # being handled now
            conv("S6", "sales", "chat", at(10, 8, 20)),  # waiting now: 100 s
            # support, target 30 s
            conv("P1", "support", "phone", at(8, 0), answered=at(8, 0, 20), closed=at(8, 10, 20), agent="a2"),
            conv("P2", "support", "email", at(10, 6)),  # waiting now: 240 s
            # answered by a1, then handed back to the queue at 10:09 (a transfer): waiting again, 60 s
            conv("P3", "support", "chat", at(9, 58), answered=at(9, 58, 10), status="queued", updated=at(10, 9)),
            # yesterday: not today's figures
            conv("Y1", "sales", "chat", DAY - timedelta(minutes=10), answered=DAY - timedelta(minutes=9), closed=DAY - timedelta(minutes=1), agent="a1"),
        ])
        # a conversation the bot handled never entered a queue: not a contact
        s.add(Conversation(customer_id=cust.id, channel="chat", status="closed", created_at=at(9, 1), closed_at=at(9, 2)))
        # one open order past its promised date, one shipped (not overdue)
        s.add(Order(customer_id=cust.id, status="placed", promised_date=date(2026, 11, 20)))
        s.add(Order(customer_id=cust.id, status="shipped", promised_date=date(2026, 11, 19)))
    await stats.record_agent_state(db, ids["a1"], "available", at(9, 0))
    await stats.record_agent_state(db, ids["a2"], "available", at(7, 0))
    await stats.record_agent_state(db, ids["a2"], "away", at(9, 30))
    return ids


async def _snapshot(db: Database, ids: dict[str, int]) -> dict[str, Any]:
    store = MemoryStateStore()
    await store.set_presence(AgentPresence(ids["a1"], "available", at(9, 0).timestamp(), "n1", {"chat": 1}, {"chat": 3}, {"orders": 3}))
    await store.set_presence(AgentPresence(ids["a2"], "away", at(9, 30).timestamp(), "n1", {}, {"chat": 3}, {"returns": 2}))
    hub = HubService(db, store, _NoEmit(), clock=lambda: NOW.timestamp())
    builder = sup.SnapshotBuilder(hub, tz=UTC)
    return await builder.build()


async def test_snapshot_figures_match_hand_computed_values(db: Database) -> None:
    ids = await _scripted(db)
    snap = await _snapshot(db, ids)
    assert snap["generated_at"] == NOW.isoformat() and snap["day_start"] == DAY.isoformat()
    q = {row["name"]: row for row in snap["queues"]}

    # sales: offered S1-S6; answered S1 (10 s), S2 (30 s), S5 (5 s); abandoned S3 (15 s, short), S4 (60 s)
    sales = q["sales"]
    assert (sales["offered"], sales["handled"], sales["abandoned"]) == (6, 3, 2)
    assert sales["service_level"] == pytest.approx(2 / 4)  # S1, S5 within 20 s / (3 answered + 2 abandoned - 1 short)
    assert sales["asa_seconds"] == pytest.approx(15.0)  # (10 + 30 + 5) / 3
    assert sales["abandonment_rate"] == pytest.approx(2 / 5)
    assert sales["aht_seconds"] == pytest.approx(270.0)  # (300 + 240) / 2; S5 is still open
    assert (sales["waiting"], sales["longest_wait_seconds"], sales["waiting_over_target"]) == (1, 100.0, 1)  # S6
    assert sales["agents_logged_in"] == 1  # a1 (a2 lacks the orders skill)

    # support: P1 (20 s), P3 (10 s, then handed back), P2 waiting; P3 and P2 wait now
    support = q["support"]
    assert (support["offered"], support["handled"], support["abandoned"]) == (3, 2, 0)
    assert support["service_level"] == pytest.approx(1.0)
    assert support["asa_seconds"] == pytest.approx(15.0)  # (20 + 10) / 2
    assert support["abandonment_rate"] == pytest.approx(0.0)
    assert support["aht_seconds"] == pytest.approx(600.0)
    assert (support["waiting"], support["longest_wait_seconds"], support["waiting_over_target"]) == (2, 240.0, 2)
    assert support["agents_logged_in"] == 2  # no skills needed; away counts as logged in

    total = snap["total"]
    assert (total["offered"], total["handled"], total["abandoned"]) == (9, 5, 2)
    assert total["service_level"] == pytest.approx(4 / 6)
    assert total["asa_seconds"] == pytest.approx(15.0)  # (10 + 30 + 5 + 20 + 10) / 5
    assert total["abandonment_rate"] == pytest.approx(2 / 7)
    assert total["aht_seconds"] == pytest.approx(380.0)  # (300 + 240 + 600) / 3
    assert (total["waiting"], total["longest_wait_seconds"], total["waiting_over_target"]) == (3, 240.0, 3)
    assert total["agents_logged_in"] == 2

    ch = {row["name"]: row for row in snap["channels"]}
    # chat: S1, S2, S4, S5, S6, P3; within target S1, S5 (sales 20 s) and P3 (support 30 s); S4 a late abandon
    assert (ch["chat"]["offered"], ch["chat"]["handled"], ch["chat"]["abandoned"]) == (6, 4, 1)
    assert ch["chat"]["service_level"] == pytest.approx(3 / 5)
    assert (ch["chat"]["waiting"], ch["chat"]["waiting_over_target"]) == (2, 2)  # S6 > 20 s, P3 > 30 s
    assert ch["phone"]["service_level"] == pytest.approx(1.0) and ch["phone"]["abandonment_rate"] == pytest.approx(0.5)
    assert (ch["email"]["offered"], ch["email"]["waiting"], ch["email"]["service_level"]) == (1, 1, None)

    # intervals of 30 minutes, dense from midnight to the 10:00 interval
    iv = snap["intervals"]["total"]
    assert len(iv) == 21 and iv[0]["start"] == DAY.isoformat() and iv[-1]["start"] == at(10, 0).isoformat()
    by_start = {row["start"]: row for row in iv}
    assert [(r["offered"], r["handled"], r["abandoned"], r["service_level"]) for r in (
        by_start[at(8, 0).isoformat()], by_start[at(9, 0).isoformat()], by_start[at(9, 30).isoformat()], by_start[at(10, 0).isoformat()]
    )] == [(1, 1, 0, 1.0), (2, 2, 0, 0.5), (3, 1, 2, 0.5), (3, 1, 0, 1.0)]
    assert sum(r["offered"] for r in iv) == 9
    assert by_start[at(7, 30).isoformat()] == {
        "start": at(7, 30).isoformat(), "offered": 0, "handled": 0, "abandoned": 0, "service_level": None, "asa_seconds": None, "aht_seconds": None,
        "agents_needed": 0,
    }
    sales_iv = {r["start"]: r for r in snap["intervals"]["by_queue"]["sales"]}
    assert (sales_iv[at(9, 30).isoformat()]["offered"], sales_iv[at(9, 30).isoformat()]["service_level"]) == (2, 0.0)
    # Erlang C per interval: sales 09:30 offered 2, nobody handled yet -> the fallback AHT 180 s: 0.2 Erlang;
    # one agent: C = 0.2, SL = 1 - 0.2 e^(-0.8 x 20/180) = 0.817 >= 0.8 -> 1 agent
    assert sales_iv[at(9, 30).isoformat()]["agents_needed"] == 1
    assert required_agents(2, 1800, 180, 0.8, 20).agents == 1
    support_iv = {r["start"]: r for r in snap["intervals"]["by_queue"]["support"]}
    # the total needs the queues' needs added up, interval by interval (0 where nothing was offered)
    for start, row in by_start.items():
        parts = [q[start]["agents_needed"] for q in (sales_iv, support_iv) if start in q]
        assert row["agents_needed"] == sum(parts), start
        assert (row["agents_needed"] == 0) == (row["offered"] == 0), start
    # the SQL interval counts agree with the dashboard's
    sql_rows = {(r.queue, r.start): r for r in await stats.interval_stats(db, DAY, 30)}
    assert {k: (r.offered, r.handled, r.abandoned) for k, r in sql_rows.items()} == {
        ("sales", at(9, 0)): (2, 2, 0), ("sales", at(9, 30)): (2, 0, 2), ("sales", at(10, 0)): (2, 1, 0),
        ("support", at(8, 0)): (1, 1, 0), ("support", at(9, 30)): (1, 1, 0), ("support", at(10, 0)): (1, 0, 0),
    }

    # staffing: the last hour (09:10-10:10): sales S2-S6 = 5 contacts (2.5 per 30 min), AHT 240 s (S2)
    st = {row["queue"]: row for row in snap["staffing"]}
    assert (st["sales"]["contacts"], st["sales"]["contacts_per_interval"], st["sales"]["aht_seconds"], st["sales"]["aht_observed"]) == (5, 2.5, 240.0, True)
    assert st["sales"]["traffic_erlangs"] == pytest.approx(1 / 3, abs=1e-3)  # 2.5 x 240 / 1800
    # one agent: C = 1/3, SL = 1 - C e^(-(1 - 1/3) 20/240) = 0.685 < 0.8; two: C = 0.0476, SL = 0.959
    assert st["sales"]["agents_needed"] == 2 and st["sales"]["service_level"] == pytest.approx(0.9586, abs=1e-3)
    assert st["sales"]["agents_needed"] == required_agents(2.5, 1800, 240, 0.8, 20).agents
    assert st["sales"]["agents_logged_in"] == 1
    # support: P3, P2 = 1 per 30 min, none handled and closed in the window: AHT assumed 180 s
    assert (st["support"]["contacts"], st["support"]["aht_seconds"], st["support"]["aht_observed"]) == (2, 180.0, False)
    assert st["support"]["traffic_erlangs"] == pytest.approx(0.1)
    assert st["support"]["agents_needed"] == 1  # 1 - 0.1 e^(-0.9 x 30/180) = 0.914 >= 0.9

    # agents
    ag = {row["username"]: row for row in snap["agents"]}
    a1, a2, boss = ag["a1"], ag["a2"], ag["boss"]
    s5 = next(c["id"] for c in snap["conversations"] if c["subject"] == "S5")
    assert (a1["state"], a1["handled"], a1["conversations"], a1["load"]) == ("busy", 2, [s5], 1)
    assert a1["seconds_in_state"] == 295.0  # busy since S5 was answered (10:05:05)
    assert a1["occupancy"] == pytest.approx(595 / 4200, abs=1e-4)  # S1 300 s + S5 295 s busy / 70 min available
    assert (a2["state"], a2["handled"], a2["seconds_in_state"]) == ("away", 2, 2400.0)  # away since 09:30 (state log)
    assert a2["occupancy"] == pytest.approx(840 / 9000, abs=1e-4)  # P1 600 s + S2 240 s / 07:00-09:30
    assert (boss["state"], boss["seconds_in_state"], boss["occupancy"], boss["role"]) == ("offline", None, None, "supervisor")

    # conversations: the waiting ones, longest first, then those with an agent
    convs = snap["conversations"]
    assert [(c["subject"], c["status"], c["seconds"]) for c in convs] == [
        ("P2", "queued", 240.0), ("S6", "queued", 100.0), ("P3", "queued", 60.0), ("S5", "assigned", 295.0)
    ]
    assert convs[-1]["agent_name"] == "Ann One" and convs[0]["customer_name"] == "Pat Doe"
    assert snap["overdue_orders"] == 1
    assert snap["queue_names"] == ["sales", "support"]


async def test_alerts_appear_when_thresholds_are_crossed(db: Database) -> None:
    ids = await _scripted(db)
    snap = await _snapshot(db, ids)
    alerts = {a["key"]: a for a in snap["alerts"]}
    assert set(alerts) == {"service_level:sales", "queue_waiting:support", "long_wait:support", "overdue_orders"}
    # sales at 50% against an 80% target: 30 points short, critical
    assert (alerts["service_level:sales"]["severity"], alerts["service_level:sales"]["value"]) == ("critical", 0.5)
    # support holds at most 1 waiting (max_waiting, lower than the default limit of 5); 2 wait
    assert (alerts["queue_waiting:support"]["value"], alerts["queue_waiting:support"]["threshold"]) == (2, 1)
    # P2 has waited 240 s (> 120 s); S6 (100 s) and P3 (60 s) have not
    long_wait = alerts["long_wait:support"]
    assert (long_wait["count"], long_wait["value"], long_wait["severity"]) == (1, 240.0, "warning")
    assert "longest 4:00" in long_wait["message"]
    assert alerts["overdue_orders"]["value"] == 1
    assert snap["alerts"][0]["severity"] == "critical"  # most severe first


def _waiting(cid: int, queue: str, since: datetime) -> sup.OpenConversation:
    return sup.OpenConversation(
        id=cid, status="queued", channel="chat", queue=queue, customer_id=1, customer_name="C", agent_id=None,
        subject="", queued_at=since, assigned_at=None, created_at=since, updated_at=since,
    )


def test_alert_thresholds_are_exclusive() -> None:
    queue = sup.QueueInfo(name="sales", sl_target_seconds=20, sl_target_ratio=0.8, max_waiting=50)

    def alerts(waits: list[float], overdue: int = 0) -> dict[str, dict[str, Any]]:
        convs = [_waiting(i + 1, "sales", NOW - timedelta(seconds=w)) for i, w in enumerate(waits)]
        snap = sup.compose_snapshot(
            now=NOW, day_start=DAY, records=[], states=[], queues=[queue], agents=[], presences=[],
            open_conversations=convs, overdue_orders=overdue,
        )
        return {a["key"]: a for a in snap["alerts"]}

    assert alerts([]) == {}
    assert alerts([120.0] * 5) == {}  # exactly 5 waiting, exactly 120 s: not over
    crossed = alerts([121.0] + [10.0] * 5, overdue=3)
    assert set(crossed) == {"queue_waiting:sales", "long_wait:sales", "overdue_orders"}
    assert (crossed["queue_waiting:sales"]["value"], crossed["queue_waiting:sales"]["threshold"]) == (6, sup.WAITING_ALERT_LIMIT)
    assert crossed["long_wait:sales"]["conversation_ids"] == [1]
    assert alerts([241.0])["long_wait:sales"]["severity"] == "critical"


# -- the namespace and routes against a running hub ---------------------------------------------------

PASSWORD = "agent-password"
TOKEN = "sup-token"


@pytest.fixture
async def hub(db: Database) -> AsyncIterator[tuple[str, Any]]:
    """A running hub over the test database: agent alice, supervisor sam, admin root, queue sales."""
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 3})
        await agents_repo.create_agent(s, "sam", PASSWORD, display_name="Sam", role="supervisor")
        await agents_repo.create_agent(s, "root", PASSWORD, display_name="Root", role="admin")
        await agents_repo.create_queue(s, "sales", channels=["chat"])
    settings = Settings(
        database_url=db.url, service_tokens=(TOKEN,), demo_data=False, auto_migrate=False, session_secret="s" * 32,
        offer_timeout_seconds=5, wrap_up_seconds=0,
    )
    app = create_app(settings)
    sup.register(app, app[SIO_KEY])  # a no-op once create_app registers it itself
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), app
    finally:
        await server.close()


async def _cookie(base: str, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{base}/auth/login", json={"username": username, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        return f"cc_session={resp.cookies['cc_session'].value}"


SUP_EVENTS = ("snapshot", "message")


async def _supervisor(base: str, username: str = "sam") -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    client = sio_client(inbox, sup.NAMESPACE, SUP_EVENTS)
    await client.connect(base, namespaces=[sup.NAMESPACE], headers={"Cookie": await _cookie(base, username)}, transports=["websocket"])
    return client, inbox


async def test_namespace_and_routes_are_for_supervisors_only(hub: tuple[str, Any]) -> None:
    base, _app = hub
    # an agent's session is refused, and so is no session
    for headers in ({"Cookie": await _cookie(base, "alice")}, {}):
        client = sio_client(Inbox(), sup.NAMESPACE, SUP_EVENTS)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(base, namespaces=[sup.NAMESPACE], headers=headers, transports=["websocket"])
        await client.disconnect()
    # a supervisor and an admin get a snapshot at once
    for username in ("sam", "root"):
        client, inbox = await _supervisor(base, username)
        snap = await inbox.wait("snapshot")
        assert [q["name"] for q in snap["queues"]] == ["sales"] and snap["total"]["waiting"] == 0
        assert {a["username"] for a in snap["agents"]} == {"alice", "sam", "root"}
        ack = await client.call("snapshot", {}, namespace=sup.NAMESPACE)
        assert ack["ok"] and ack["snapshot"]["queue_names"] == ["sales"]
        await client.disconnect()

    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{base}/supervisor", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/console")
        resp = await http.get(f"{base}/supervisor", headers={"Cookie": await _cookie(base, "alice")}, allow_redirects=False)
        assert resp.status == 403
        resp = await http.get(f"{base}/supervisor", headers={"Cookie": await _cookie(base, "sam")})
        assert resp.status == 200 and "supervisor.js" in await resp.text()
        resp = await http.get(f"{base}/api/supervisor/snapshot")
        assert resp.status == 401
        resp = await http.get(f"{base}/api/supervisor/snapshot", headers={"Cookie": await _cookie(base, "alice")})
        assert resp.status == 403 and (await resp.json())["error"] == "forbidden"
        for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"Cookie": await _cookie(base, "sam")}):
            resp = await http.get(f"{base}/api/supervisor/snapshot", headers=headers)
            assert resp.status == 200 and (await resp.json())["queue_names"] == ["sales"]


async def _customer(base: str, visitor: str) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    client = sio_client(inbox, "/customer", ("session", "message", "queue", "agent_joined", "closed"))
    await client.connect(base, namespaces=["/customer"], auth={"visitor_id": visitor, "name": "Cara"}, transports=["websocket"])
    await inbox.wait("session")
    return client, inbox


async def _agent(base: str, username: str) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    client = sio_client(inbox, "/agent", ("hello", "offer", "message", "conversation_closed", "status"))
    await client.connect(base, namespaces=["/agent"], headers={"Cookie": await _cookie(base, username)}, transports=["websocket"])
    await inbox.wait("hello")
    return client, inbox


def _total(field: str, value: Any) -> Any:
    return lambda snap: snap["total"][field] == value


@pytest.mark.slow
async def test_the_feed_follows_a_wait_an_answer_an_abandon_and_the_actions(hub: tuple[str, Any]) -> None:
    base, app = hub
    app[HUB_KEY].abandon_grace = 0.3
    boss, feed = await _supervisor(base)
    await feed.wait("snapshot")
    agent, a_in = await _agent(base, "alice")
    cust, c_in = await _customer(base, "visitor_sup_0001")
    clients = [boss, agent, cust]
    try:
        # a customer waits
        ack = await cust.call("message", {"client_msg_id": "m1", "text": "Hello?"}, namespace="/customer")
        assert ack["ok"]
        cid = ack["message"]["conversation_id"]
        snap = await feed.wait("snapshot", _total("waiting", 1))
        assert [(c["id"], c["status"]) for c in snap["conversations"]] == [(cid, "queued")]
        assert snap["queues"][0]["waiting"] == 1

        # is answered
        assert (await agent.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
        offer = await a_in.wait("offer")
        assert (await agent.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent"))["ok"]
        snap = await feed.wait("snapshot", lambda s: s["total"]["waiting"] == 0 and s["total"]["handled"] == 1)
        assert snap["total"]["asa_seconds"] is not None and snap["total"]["service_level"] == 1.0
        alice = next(a for a in snap["agents"] if a["username"] == "alice")
        assert alice["state"] == "busy" and alice["conversations"] == [cid]

        # watched silently: the transcript now, then live messages
        ack = await boss.call("watch", {"conversation_id": cid}, namespace=sup.NAMESPACE)
        assert ack["ok"], ack
        assert [m["text"] for m in ack["conversation"]["messages"]] == ["Hello?"]
        assert (await cust.call("message", {"client_msg_id": "m2", "text": "Anyone there?"}, namespace="/customer"))["ok"]
        live = await feed.wait("message", lambda m: m["text"] == "Anyone there?")
        assert live["conversation_id"] == cid and live["sender_kind"] == "customer"

        # a whisper reaches the agent, never the customer
        ack = await boss.call("whisper", {"conversation_id": cid, "text": "Offer free shipping"}, namespace=sup.NAMESPACE)
        assert ack["ok"] and ack["message"]["internal"] is True, ack
        note = await a_in.wait("message", lambda m: m["text"] == "Offer free shipping")
        assert note["internal"] is True
        await asyncio.sleep(0.3)
        assert "Offer free shipping" not in [m["text"] for m in c_in.all("message")]

        # bad input is refused with the hub's codes
        ack = await boss.call("whisper", {"conversation_id": "x", "text": "hi"}, namespace=sup.NAMESPACE)
        assert ack == {"ok": False, "error": {"code": "bad_request", "message": ack["error"]["message"]}}
        ack = await boss.call("watch", {"conversation_id": 999999}, namespace=sup.NAMESPACE)
        assert not ack["ok"] and ack["error"]["code"] == "not_found"

        # reassigned back to the queue: waiting again (alice goes away first so it is not offered to her again)
        ack = await boss.call("set_agent_status", {"agent_id": alice["id"], "status": "away"}, namespace=sup.NAMESPACE)
        assert ack == {"ok": True, "agent_id": alice["id"], "status": "away"}
        ack = await boss.call("reassign", {"conversation_id": cid, "queue": "sales"}, namespace=sup.NAMESPACE)
        assert ack["ok"], ack
        snap = await feed.wait("snapshot", lambda s: s["total"]["waiting"] == 1 and s["total"]["handled"] == 1)
        assert next(a for a in snap["agents"] if a["username"] == "alice")["state"] == "away"
        assert (await boss.call("unwatch", {"conversation_id": cid}, namespace=sup.NAMESPACE))["ok"]

        # a second customer gives up while waiting: abandoned once the grace period is over
        cust2, _c2 = await _customer(base, "visitor_sup_0002")
        assert (await cust2.call("message", {"client_msg_id": "m1", "text": "Quick question"}, namespace="/customer"))["ok"]
        await feed.wait("snapshot", _total("waiting", 2))
        await cust2.disconnect()
        snap = await feed.wait("snapshot", lambda s: s["total"]["abandoned"] == 1)
        assert snap["total"]["waiting"] == 1 and snap["total"]["abandonment_rate"] == pytest.approx(0.5)
        assert snap["total"]["offered"] == 2
    finally:
        for client in clients:
            await client.disconnect()
