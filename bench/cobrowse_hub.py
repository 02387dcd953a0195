"""The hub's cost of co-browsing: N sessions at once on one hub process, its CPU per session, the relay's latency.

Starts the hub (``contact-center serve``, SQLite, demo shop) and adds agents (``load0``..., one for every two sessions).
Python Socket.IO clients play both sides: N customers open chats, the agents accept and ask to co-browse, the
customers accept; then each customer sends what a recorder sends: a full snapshot (``--snapshot-kb`` of JSON in
16,000-character pieces) once, then ``--rate`` batches a second of ``--batch`` characters (mouse moves, scrolls,
small mutations) for ``--seconds``. Measures the hub process's CPU time over that phase (``/proc``), per session,
and the relay's latency (a customer's emit to its agent's receipt, same machine). Exits 0 whatever the figures.

    .venv/bin/python bench/cobrowse_hub.py                       # 50 sessions, 10 batches/s of 400 chars, 20 s
    .venv/bin/python bench/cobrowse_hub.py --sessions 20 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import socketio  # noqa: E402

from tests.browser.harness import running_hub  # noqa: E402

TOKEN = "bench-cobrowse-hub"
PASSWORD = "load-password"
PIECE = 16000


def _hub_pid() -> int:
    """The hub: this process's child running ``contact_center.cli serve``."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and b"contact_center.cli" in cmd:
            return int(entry)
    raise RuntimeError("the hub process was not found")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _add_agents(db_url: str, n: int) -> list[str]:
    from crm_store.db import Database
    from crm_store.repositories import agents as agents_repo

    db = Database(db_url)
    names = [f"load{i}" for i in range(n)]
    async with db.transaction() as s:
        for name in names:
            await agents_repo.create_agent(s, name, PASSWORD, display_name=name, skills={"orders": 3, "returns": 3, "english": 3, "german": 3},
                                           capacity={"chat": 5})
    await db.dispose()
    return names


async def run(base: str, db_url: str, sessions: int, seconds: float, rate: float, batch: int, snapshot_kb: int) -> dict[str, Any]:
    names = await _add_agents(db_url, (sessions + 1) // 2)  # two chats each: routing spreads them
    agents: list[socketio.AsyncClient] = []
    received: list[float] = []
    sent_at: dict[str, float] = {}
    conv_agent: dict[int, socketio.AsyncClient] = {}
    started: dict[int, asyncio.Future[str]] = {}

    def future_of(conv: int) -> asyncio.Future[str]:
        if conv not in started:
            started[conv] = asyncio.get_running_loop().create_future()
        return started[conv]

    for name in names:
        async with aiohttp.ClientSession() as http:
            r = await http.post(f"{base}/auth/login", json={"username": name, "password": PASSWORD})
            assert r.status == 200, await r.text()
            cookie = f"cc_session={r.cookies['cc_session'].value}"
        sio = socketio.AsyncClient(reconnection=False)

        def bind(sio: socketio.AsyncClient) -> None:
            async def on_offer(data: Any) -> None:
                ack = await sio.call("accept", {"conversation_id": data["conversation_id"]}, namespace="/agent")
                if ack.get("ok"):
                    conv_agent[data["conversation_id"]] = sio
                    ack = await sio.call("cobrowse_start", {"conversation_id": data["conversation_id"]}, namespace="/agent")

            async def on_events(data: Any) -> None:
                key = f"{data['conversation_id']}:{data['seq']}:{data['part']}"
                t = sent_at.pop(key, None)
                if t is not None:
                    received.append(time.perf_counter() - t)

            sio.on("offer", on_offer, namespace="/agent")
            sio.on("cobrowse_events", on_events, namespace="/agent")

        bind(sio)
        await sio.connect(base, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
        assert (await sio.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
        agents.append(sio)

    customers: list[tuple[socketio.AsyncClient, int, str]] = []

    async def customer(i: int) -> None:
        sio = socketio.AsyncClient(reconnection=False)

        async def on_request(data: Any) -> None:
            ack = await sio.call("cobrowse_consent", {"session_id": data["session_id"], "accept": True}, namespace="/customer")
            if ack.get("ok") and not future_of(data["conversation_id"]).done():
                future_of(data["conversation_id"]).set_result(data["session_id"])

        sio.on("cobrowse_request", on_request, namespace="/customer")
        await sio.connect(base, namespaces=["/customer"], auth={"visitor_id": f"bench_visitor_{i:04d}", "name": f"Bench {i}"}, transports=["websocket"])
        ack = await sio.call("message", {"client_msg_id": "m1", "text": "can you look at my page?"}, namespace="/customer")
        assert ack["ok"], ack
        conv = int(ack["message"]["conversation_id"])
        session = await asyncio.wait_for(future_of(conv), 60)
        customers.append((sio, conv, session))

    await asyncio.gather(*(customer(i) for i in range(sessions)))
    assert len(customers) == sessions

    filler = "x" * max(0, batch - 40)
    snapshot = json.dumps({"t": 0, "e": [{"type": 2, "data": {"blob": "y" * (snapshot_kb * 1024)}}]})

    async def send(sio: socketio.AsyncClient, conv: int, session: str, seq: int, part: int, parts: int, data: str) -> None:
        sent_at[f"{conv}:{seq}:{part}"] = time.perf_counter()
        ack = await sio.call("cobrowse_events", {"session_id": session, "seq": seq, "part": part, "parts": parts, "data": data}, namespace="/customer")
        if not ack.get("ok"):
            raise RuntimeError(ack)

    async def browse(sio: socketio.AsyncClient, conv: int, session: str) -> int:
        pieces = [snapshot[i:i + PIECE] for i in range(0, len(snapshot), PIECE)]
        for part, data in enumerate(pieces):
            await send(sio, conv, session, 0, part, len(pieces), data)
        seq, n = 1, len(pieces)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await send(sio, conv, session, seq, 0, 1, json.dumps({"t": 0, "e": [{"type": 3, "data": {"x": filler}}]}))
            seq += 1
            n += 1
            await asyncio.sleep(1 / rate)
        return n

    pid = _hub_pid()
    cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
    counts = await asyncio.gather(*(browse(s, c, sess) for s, c, sess in customers))
    await asyncio.sleep(0.5)
    cpu = _cpu_seconds(pid) - cpu0
    wall = time.monotonic() - wall0
    for sio, _, _ in customers:
        await sio.disconnect()
    for sio in agents:
        await sio.disconnect()
    lat = sorted(received)
    return {
        "sessions": sessions, "seconds": round(wall, 1), "pieces": sum(counts), "relayed": len(received),
        "hub_cpu_percent_of_a_core": round(100 * cpu / wall, 1), "hub_cpu_ms_per_session_second": round(1000 * cpu / wall / sessions, 2),
        "relay_p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "relay_p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=10.0, help="batches a second per session after the snapshot")
    ap.add_argument("--batch", type=int, default=400, help="characters per batch")
    ap.add_argument("--snapshot-kb", type=int, default=80)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_hub(
        Path(tmp), "bench-cobrowse-hub", TOKEN, {"WEBCHAT_NEW_CONVERSATIONS_PER_MINUTE": "0"}  # every customer is on loopback
    ) as base:
        db_url = f"sqlite+aiosqlite:///{tmp}/bench-cobrowse-hub.db"
        r = asyncio.run(run(base, db_url, args.sessions, args.seconds, args.rate, args.batch, args.snapshot_kb))
    print(f"{r['sessions']} co-browsing sessions at once on one hub process, {args.rate:g} batches/s of {args.batch} chars each "
          f"after an {args.snapshot_kb} KB snapshot, {r['seconds']} s: {r['pieces']} pieces sent, {r['relayed']} relayed")
    print(f"hub CPU: {r['hub_cpu_percent_of_a_core']} % of one core, {r['hub_cpu_ms_per_session_second']} ms of CPU per session per second")
    print(f"relay (customer emit -> agent receipt): p50 {r['relay_p50_ms']} ms, p95 {r['relay_p95_ms']} ms")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
