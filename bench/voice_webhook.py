"""Voice webhook answer time: 50 calls ringing the hub at once, and the hub's share of a bot turn on the phone.

**Ring** (issue 14: p95 <= 300 ms, p99 <= 1 s at 50 calls at once). The hub runs as ``contact-center serve`` in
embedded mode (SQLite file, in-process state, no bot, demo shop) with the Twilio stand-in on, so the path is the
product's: signature check, the call's conversation opened (a new number: a new customer and contact point), the
caller's name and latest open order read, the greeting and the IVR's ``<Gather>`` as TwiML. A client posts
Twilio's "a call comes in" form (the stand-in's wire helpers), signed, ``--calls`` at once, ``--rounds`` times;
in each round half the numbers call for the first time (new customers) and half called before (returning:
recognised by number). In the same run the same client drives a **baseline**: a bare aiohttp server that checks
the same signature and answers the same greeting TwiML without the hub. Also printed: the hub's CPU per call.

**Bot turn** (issue 14: the hub's share at p50 under 15 ms over the bot alone). In this process: the hub core
(HubService on a SQLite file), the voice webhooks and a stub bot that answers at once; each call rings, then one
``<Gather>`` with speech goes to the bot and its reply comes back as TwiML. The hub's share is the gather's
answer time less the bot's own time (measured around the stub).

    .venv/bin/python bench/voice_webhook.py                     # 50 calls at once, 10 rounds; 200 bot turns
    .venv/bin/python bench/voice_webhook.py --calls 50 --rounds 20 --profile /tmp/voice.txt   # py-spy on the hub

Prints tables, PASS/MISS and a final JSON line; exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sms_webhook import cpu_seconds, free_port, pct, profile_summary, start_hub, start_profile  # noqa: E402

from integrations.standins import twilio_wire as wire  # noqa: E402
from integrations.standins import voice_wire as vw  # noqa: E402

ACCOUNT = "AC" + "0" * 31 + "1"
SHOP = "+15005550006"
PATH = "/webhooks/twilio/voice"


def ring_form(number: str) -> dict[str, str]:
    return vw.call_form(account_sid=ACCOUNT, call_sid=wire.new_sid("CA"), from_=number, to=SHOP, status="ringing",
                        direction="inbound", call_token="%7B%22parentCallInfoToken%22%3A%22bench%22%7D")


async def ring(base: str, token: str, calls: int, rounds: int, tag: str, offset: int) -> dict[str, Any]:
    """``rounds`` bursts of ``calls`` rings at once; half the numbers new each round, half from the round before."""
    validator = RequestValidator(token)
    url = base + PATH
    latencies: dict[str, list[float]] = {"new": [], "returning": []}
    statuses: dict[int, int] = {}
    previous: list[str] = []
    connector = aiohttp.TCPConnector(limit=500)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(number: str, kind: str) -> None:
            form = ring_form(number)
            sig = validator.compute_signature(url, form)
            t0 = time.perf_counter()
            async with http.post(url, data=form, headers={"X-Twilio-Signature": sig}) as resp:
                body = await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status == 200 and b"<Gather" not in body:
                    statuses[-1] = statuses.get(-1, 0) + 1  # answered, but not the menu (a holding message)
            latencies[kind].append((time.perf_counter() - t0) * 1000)

        for r in range(rounds):
            fresh = [f"+1415555{(offset + r * calls + i) % 10000:04d}" for i in range(calls - len(previous[: calls // 2]))]
            back = previous[: calls // 2]
            await asyncio.gather(*(one(n, "new") for n in fresh), *(one(n, "returning") for n in back))
            previous = fresh
            await asyncio.sleep(0.2)
    every = latencies["new"] + latencies["returning"]
    out: dict[str, Any] = {"system": tag, "calls_at_once": calls, "sent": len(every), "statuses": statuses,
                           "p50_ms": round(pct(every, 50), 1), "p95_ms": round(pct(every, 95), 1),
                           "p99_ms": round(pct(every, 99), 1), "max_ms": round(max(every), 1)}
    for kind, values in latencies.items():
        out[f"{kind}_count"] = len(values)
        out[f"{kind}_p95_ms"] = round(pct(values, 95), 1) if values else None
    return out


async def baseline_server(port: int, token: str, public: str) -> web.AppRunner:
    """A bare aiohttp endpoint: read the form, check the signature, answer a greeting and a <Gather>."""
    from twilio.twiml.voice_response import VoiceResponse

    validator = RequestValidator(token)

    async def hook(request: web.Request) -> web.Response:
        form = dict(await request.post())
        if not validator.validate(public + PATH, form, request.headers.get("X-Twilio-Signature", "")):
            return web.Response(status=403)
        response = VoiceResponse()
        gather = response.gather(input="dtmf speech", action=public + PATH + "/gather?turn=1", method="POST",
                                 action_on_empty_result=True, speech_timeout="auto", timeout=5, finish_on_key="#")
        gather.say("Hello, thank you for calling.", language="en-US")
        gather.say("Press or say 1 to order, 2 to track an order, or 0 to speak to someone.", language="en-US")
        return web.Response(text=str(response), content_type="text/xml")

    app = web.Application()
    app.router.add_post(PATH, hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


# --- the bot turn, in process -----------------------------------------------------------------------------


@dataclass
class _Reply:
    text: str
    buttons: tuple[dict[str, str], ...] = ()
    custom: dict[str, Any] = field(default_factory=dict)

    @property
    def handoff(self) -> bool:
        return False


class StubBot:
    """Answers at once; keeps how long each of its own turns took."""

    def __init__(self) -> None:
        self.times: list[float] = []

    async def ready(self) -> bool:
        return True

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[_Reply]:
        t0 = time.perf_counter()
        reply = [_Reply(f"You said: {text}. What else can I do for you?")]
        self.times.append((time.perf_counter() - t0) * 1000)
        return reply


class _Emits:
    async def emit(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def emit_many(self, items: list[dict[str, Any]]) -> None:
        return None


async def bot_turns(turns: int, folder: Path) -> dict[str, Any]:
    from contact_center.channels import VOICE, ChannelRegistry
    from contact_center.hub.service import HubService
    from contact_center.state.memory import MemoryStateStore
    from crm_store.db import Database
    from crm_store.migrate import upgrade
    from integrations.twilio.config import TwilioConfig, parse_numbers
    from integrations.twilio.receipts import MemoryWebhookReceipts
    from integrations.twilio.voice import VoiceAdapter, VoiceSettings, add_voice_routes
    from integrations.twilio.voice_rest import VoiceRestClient

    url = f"sqlite+aiosqlite:///{folder}/bot.db"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    async with db.transaction() as s:
        from crm_store.repositories import agents as agents_repo

        await agents_repo.create_queue(s, "support", channels=["phone"])
    token = secrets.token_hex(16)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = TwilioConfig(account_sid=ACCOUNT, auth_token=token, public_base_url=base, numbers=parse_numbers(f"{SHOP}=support"),
                          api_base_url=base + "/unused")
    adapter = VoiceAdapter(config, VoiceRestClient(config), VoiceSettings())
    channels = ChannelRegistry()
    channels.register(VOICE, adapter)
    from crm_store.message_log import open_message_log
    from crm_store.point_reads import PointReads

    # as the composition root builds it (contact_center/app.py): the message log's group commit and point reads
    hub = HubService(db, MemoryStateStore(), _Emits(), channels=channels, wrap_up_seconds=0, messages=open_message_log(db),
                     reads=PointReads(db))
    bot = StubBot()
    hub.bot, hub.bot_ready = bot, True
    await hub.load_queues()
    app = web.Application()
    add_voice_routes(app, config, lambda: hub, adapter, receipts=MemoryWebhookReceipts())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    validator = RequestValidator(token)
    gathers: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            async def post(path: str, form: dict[str, str]) -> str:
                async with http.post(base + path, data=form, headers={"X-Twilio-Signature": validator.compute_signature(base + path, form)}) as resp:
                    assert resp.status == 200, resp.status
                    return await resp.text()

            for i in range(turns + 20):
                form = ring_form(f"+1650555{i % 10000:04d}")
                await post(PATH, form)
                form = {**form, "CallStatus": "in-progress", "SpeechResult": "I would like two large red t-shirts",
                        "Confidence": "0.9", "Language": "en-US"}
                form.pop("CallToken", None)
                t0 = time.perf_counter()
                text = await post(PATH + "/gather?turn=1&mode=menu", form)
                elapsed = (time.perf_counter() - t0) * 1000
                assert "You said" in text, text[:300]
                if i >= 20:  # the first 20: warm-up
                    gathers.append(elapsed)
    finally:
        await runner.cleanup()
        await adapter.client.close()
        await db.dispose()
    bot_times = bot.times[20:]
    return {"turns": len(gathers), "gather_p50_ms": round(pct(gathers, 50), 2), "gather_p95_ms": round(pct(gathers, 95), 2),
            "bot_p50_ms": round(pct(bot_times, 50), 3), "hub_share_p50_ms": round(pct(gathers, 50) - pct(bot_times, 50), 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50, help="calls ringing at once")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--turns", type=int, default=200, help="bot turns measured (in process)")
    parser.add_argument("--profile", metavar="FILE", help="py-spy the hub during the measured rings")
    args = parser.parse_args()
    token = secrets.token_hex(16)
    load0 = os.getloadavg()
    results = []
    bport = free_port()
    runner = await baseline_server(bport, token, f"http://127.0.0.1:{bport}")
    try:
        await ring(f"http://127.0.0.1:{bport}", token, args.calls, 2, "warm-up", 0)
        results.append(await ring(f"http://127.0.0.1:{bport}", token, args.calls, args.rounds, "baseline", 1000))
    finally:
        await runner.cleanup()
    with tempfile.TemporaryDirectory() as tmp:
        hport = free_port()
        proc = start_hub(hport, token, Path(tmp))
        try:
            await ring(f"http://127.0.0.1:{hport}", token, args.calls, 2, "warm-up", 0)
            seconds = max(5.0, args.rounds * 1.0)
            spy = start_profile(proc.pid, args.profile, seconds) if args.profile else None
            cpu0 = cpu_seconds(proc.pid)
            hub = await ring(f"http://127.0.0.1:{hport}", token, args.calls, args.rounds, "hub embedded", 1000)
            hub["cpu_ms_per_call"] = round((cpu_seconds(proc.pid) - cpu0) * 1000 / hub["sent"], 2)
            results.append(hub)
            if spy is not None:
                spy.wait(timeout=120)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        turn = await bot_turns(args.turns, Path(tmp))

    print(f"{'system':<14} {'at once':>7} {'sent':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  statuses  cpu/call")
    for r in results:
        print(f"{r['system']:<14} {r['calls_at_once']:>7} {r['sent']:>6} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} "
              f"{r['max_ms']:>8}  {r['statuses']}  {r.get('cpu_ms_per_call', '')}")
    base, hub = results
    print(f"hub: {hub['new_count']} new callers p95 {hub['new_p95_ms']} ms; {hub['returning_count']} returning p95 "
          f"{hub['returning_p95_ms']} ms; hub p95 / baseline p95: {round(hub['p95_ms'] / base['p95_ms'], 1) if base['p95_ms'] else None}")
    ring_ok = hub["p95_ms"] <= 300 and hub["p99_ms"] <= 1000 and set(hub["statuses"]) == {200}
    print(f"target ring p95 <= 300 ms, p99 <= 1 s at {args.calls} calls at once, all the menu: {'PASS' if ring_ok else 'MISS'}")
    print(f"bot turn ({turn['turns']} turns, stub bot): gather p50 {turn['gather_p50_ms']} ms, p95 {turn['gather_p95_ms']} ms; "
          f"bot p50 {turn['bot_p50_ms']} ms; hub's share at p50 {turn['hub_share_p50_ms']} ms")
    turn_ok = turn["hub_share_p50_ms"] < 15
    print(f"target hub's share of a bot turn at p50 < 15 ms: {'PASS' if turn_ok else 'MISS'}")
    print(f"load average before/after: {load0[0]:.2f} / {os.getloadavg()[0]:.2f}")
    if args.profile:
        print(f"profile ({args.profile}), % of the hub's GIL-holding samples, inclusive:")
        for share, frame in profile_summary(args.profile):
            print(f"  {share:5.1f}%  {frame}")
    print(json.dumps({"ring": results, "bot_turn": turn, "ring_pass": ring_ok, "turn_pass": turn_ok,
                      "load_before": load0[0], "load_after": os.getloadavg()[0]}))


if __name__ == "__main__":
    asyncio.run(main())
