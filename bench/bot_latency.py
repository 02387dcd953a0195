"""Bot turn latency through the hub against Rasa's own REST webhook, for the same messages, in one run.

Starts the real stack on loopback: the hub (``contact-center serve``, SQLite, demo shop) and the bot
(``scripts/run-bot``: Rasa with the trained model and the action server, whose actions call the hub's
API). Then, interleaved message by message:

* ``rasa direct``: ``POST /webhooks/rest/webhook`` straight to Rasa (one sender per simulated chat),
  timed until the HTTP answer (all of the turn's replies);
* ``through the hub``: a widget client (python-socketio, websocket) emits the same text as a
  customer message, timed until the last of the turn's bot messages arrives on the widget (as many as
  Rasa gave for the same text directly).

Messages that do not open a form (greetings, prices, stock, opening hours, returns, delivery time,
thanks), so every turn is the same kind of work on both paths. Prints p50 / p90 / p99 / max per path,
the hub's added latency at p50 (``hub p50 - direct p50``), PASS/MISS against the targets (p50 < 60 ms,
p99 < 150 ms through the hub; the hub adding < 15 ms at p50) and a final JSON line. Exits 0 whatever
the figures.

    .venv/bin/python bench/bot_latency.py                 # 300 turns per path
    .venv/bin/python bench/bot_latency.py --turns 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from chat_relay import free_port, percentile, tail, wait_healthy  # noqa: E402

MESSAGES = [
    "hi there",
    "how much is a t-shirt",
    "what are your opening hours",
    "do you have hoodies in stock",
    "what is your return policy",
    "how long does delivery take",
    "thanks",
]
TARGET_P50_MS, TARGET_P99_MS, TARGET_ADDED_P50_MS = 60.0, 150.0, 15.0


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A server in its own process group (so the bot's children stop with it)."""
    out = log.open("wb")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


async def wait_rasa(url: str, token: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the bot exited:\n{tail(log)}")
            try:
                async with http.get(f"{url}/status", params={"token": token}) as resp:
                    if resp.status == 200 and (await resp.json()).get("model_file"):
                        return
            except (aiohttp.ClientError, ValueError):
                pass
            await asyncio.sleep(1)
    raise RuntimeError(f"Rasa did not become ready in {timeout:.0f} s:\n{tail(log)}")


class Widget:
    """One customer's widget: sends a message, waits for the turn's bot messages."""

    def __init__(self, visitor: str) -> None:
        import socketio

        self.sio = socketio.AsyncClient(reconnection=False)
        self.visitor = visitor
        self.bot_messages: asyncio.Queue[float] = asyncio.Queue()
        self.sio.on("message", self._on_message, namespace="/customer")

    async def _on_message(self, m: Any) -> None:
        if isinstance(m, dict) and m.get("sender_kind") == "bot":
            self.bot_messages.put_nowait(time.perf_counter())

    async def connect(self, base: str) -> None:
        await self.sio.connect(base, namespaces=["/customer"], auth={"visitor_id": self.visitor, "name": "Bench"}, transports=["websocket"])

    async def turn(self, text: str, replies: int, n: int) -> float:
        while not self.bot_messages.empty():
            self.bot_messages.get_nowait()
        t0 = time.perf_counter()
        await self.sio.emit("message", {"client_msg_id": f"b{n}", "text": text}, namespace="/customer")
        last = t0
        for _ in range(max(1, replies)):
            last = await asyncio.wait_for(self.bot_messages.get(), 10)
        return (last - t0) * 1000


async def measure(args: argparse.Namespace, hub: str, rasa: str, token: str) -> dict[str, Any]:
    import aiohttp

    direct: list[float] = []
    via: list[float] = []
    by_turn: list[tuple[int, float, float]] = []  # (turn number within its chat, direct ms, via ms)
    widgets = [Widget(f"benchbot{secrets.token_hex(6)}{i:02d}") for i in range(args.chats)]
    for w in widgets:
        await w.connect(hub)
    async with aiohttp.ClientSession() as http:
        senders = [f"bench-direct-{secrets.token_hex(4)}-{i}" for i in range(args.chats)]

        async def rasa_turn(sender: str, text: str) -> tuple[float, int]:
            t0 = time.perf_counter()
            async with http.post(f"{rasa}/webhooks/rest/webhook", params={"token": token}, json={"sender": sender, "message": text}) as resp:
                body = await resp.json()
            return (time.perf_counter() - t0) * 1000, len([r for r in body if r.get("text") or r.get("buttons")])

        # warm-up: every message once on both paths (first turns load the pipeline's caches)
        for i, text in enumerate(MESSAGES * 2):
            await rasa_turn(senders[0], text)
            _, replies = await rasa_turn(senders[0], text)
            await widgets[0].turn(text, replies, 10_000 + i)
        for n in range(args.turns):
            text = MESSAGES[n % len(MESSAGES)]
            chat = n % args.chats
            ms, replies = await rasa_turn(senders[chat], text)
            direct.append(ms)
            via.append(await widgets[chat].turn(text, replies, n))
            by_turn.append((n // args.chats + 1, ms, via[-1]))
    for w in widgets:
        await w.sio.disconnect()
    return {"direct": sorted(direct), "via": sorted(via), "by_turn": by_turn}


def row(name: str, xs: Sequence[float]) -> dict[str, Any]:
    return {"path": name, "turns": len(xs), "p50_ms": round(percentile(xs, 50), 2), "p90_ms": round(percentile(xs, 90), 2),
            "p99_ms": round(percentile(xs, 99), 2), "max_ms": round(max(xs), 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--chats", type=int, default=5, help="conversations the turns rotate over")
    parser.add_argument("--rasa-timeout", type=float, default=600.0, help="seconds to wait for Rasa to load")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="ccbench-bot-"))
    hub_port, rasa_port, actions_port = free_port(), free_port(), free_port()
    service, rasa_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    hub_url, rasa_url = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{rasa_port}"
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    hub_env = {**base_env, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bot.db", "DEMO_DATA": "true", "SERVICE_TOKEN": service,
               "RASA_URL": rasa_url, "RASA_TOKEN": rasa_token, "LOG_LEVEL": "WARNING", "PORT": str(hub_port)}
    bot_env = {**base_env, "RASA_TOKEN": rasa_token, "RASA_PORT": str(rasa_port), "ACTIONS_PORT": str(actions_port),
               "HUB_URL": hub_url, "HUB_SERVICE_TOKEN": service}
    procs = []
    try:
        hub = start([str(ROOT / ".venv/bin/contact-center"), "serve", "--port", str(hub_port)], hub_env, tmp / "hub.log")
        procs.append(hub)
        wait_healthy(hub_port, hub, tmp / "hub.log")
        if actions_port != 5055:  # the bot's endpoints.yml names the action server; point it at ours
            endpoints = (ROOT / "bot/endpoints.yml").read_text().replace("127.0.0.1:5055", f"127.0.0.1:{actions_port}")
            (tmp / "endpoints.yml").write_text(endpoints)
            bot_env["RASA_ENDPOINTS"] = str(tmp / "endpoints.yml")
        bot = start([str(ROOT / "scripts/run-bot")], bot_env, tmp / "bot.log")
        procs.append(bot)
        t0 = time.monotonic()
        asyncio.run(wait_rasa(rasa_url, rasa_token, bot, tmp / "bot.log", args.rasa_timeout))
        print(f"Rasa ready in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        time.sleep(6)  # the hub's bot watcher checks every 5 s
        result = asyncio.run(measure(args, hub_url, rasa_url, rasa_token))
    finally:
        for p in reversed(procs):
            stop(p)
    d, v = row("rasa direct", result["direct"]), row("through the hub", result["via"])
    added = round(v["p50_ms"] - d["p50_ms"], 2)
    print(f"{'path':18} {'turns':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}  (ms)")
    for r in (d, v):
        print(f"{r['path']:18} {r['turns']:6d} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.2f}")
    # Rasa keeps each conversation's whole history and re-reads it on every turn: show the cost of length.
    buckets: list[tuple[str, list[float], list[float]]] = []
    for lo, hi in ((1, 10), (11, 20), (21, 40), (41, 10**9)):
        d_ms = sorted(x for t, x, _ in result["by_turn"] if lo <= t <= hi)
        v_ms = sorted(y for t, _, y in result["by_turn"] if lo <= t <= hi)
        if d_ms:
            buckets.append((f"turns {lo}-{hi}" if hi < 10**9 else f"turns {lo}+", d_ms, v_ms))
    print("p50 by the turn's place in its conversation (ms): " + "; ".join(
        f"{name}: direct {percentile(d_ms, 50):.1f}, through the hub {percentile(v_ms, 50):.1f} (n={len(d_ms)})" for name, d_ms, v_ms in buckets))
    verdicts = {
        "p50_through_hub": "PASS" if v["p50_ms"] < TARGET_P50_MS else "MISS",
        "p99_through_hub": "PASS" if v["p99_ms"] < TARGET_P99_MS else "MISS",
        "hub_added_p50": "PASS" if added < TARGET_ADDED_P50_MS else "MISS",
    }
    print(f"hub adds {added:.2f} ms at p50 (target < {TARGET_ADDED_P50_MS:.0f}): {verdicts['hub_added_p50']}; "
          f"through the hub p50 {v['p50_ms']:.1f} ms (< {TARGET_P50_MS:.0f}): {verdicts['p50_through_hub']}, "
          f"p99 {v['p99_ms']:.1f} ms (< {TARGET_P99_MS:.0f}): {verdicts['p99_through_hub']}")
    print(json.dumps({"bench": "bot_latency", "results": [d, v], "hub_added_p50_ms": added, "verdicts": verdicts,
                      "p50_by_turn": {name: {"direct": round(percentile(d_ms, 50), 2), "via": round(percentile(v_ms, 50), 2), "n": len(d_ms)}
                                      for name, d_ms, v_ms in buckets}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
