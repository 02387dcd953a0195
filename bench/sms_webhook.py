"""SMS webhook answer time: signed Twilio inbound webhooks at a fixed rate into the embedded hub.

The hub runs as ``contact-center serve`` in embedded mode (SQLite file, in-process state, no bot) with
the Twilio stand-in on, so the webhook path is the product's: signature check, receipt, identity,
conversation, message, interaction, one commit, then the empty TwiML answer (routing and delivery run
after it). A client process posts Twilio's real form (from the stand-in's wire helpers), signed with
``X-Twilio-Signature``, open loop at ``--rate`` messages/s for ``--seconds`` seconds, from ``--customers``
numbers (so conversations are opened and then written to), and measures each answer's latency.

In the same run, the same client drives a **baseline**: a bare aiohttp server that reads the form,
checks the same signature with twilio's RequestValidator and answers the same TwiML without storing
anything. The ratio hub p95 / baseline p95 shows what the storage path costs on this machine today.

Targets (issue "Channels as adapters"): at 100 inbound messages/s, p95 <= 100 ms and p99 <= 300 ms;
no answer other than 200. Also printed: the hub's CPU time per message (from /proc, user+system).

    .venv/bin/python bench/sms_webhook.py                  # 100 msg/s for 20 s
    .venv/bin/python bench/sms_webhook.py --rate 200 --seconds 10

Prints a table, PASS/MISS and a final JSON line; exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from integrations.standins import twilio_wire as wire  # noqa: E402

ACCOUNT = "AC" + "0" * 31 + "1"
SHOP = "+15005550006"
PATH = "/webhooks/twilio/messaging"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(base: str, token: str, rate: float, seconds: float, customers: int, tag: str) -> dict[str, Any]:
    """Post ``rate * seconds`` signed webhooks, open loop; latency of each answer."""
    validator = RequestValidator(token)
    url = base + PATH
    total = int(rate * seconds)
    forms = []
    for i in range(total):
        number = f"+1415555{i % customers:04d}"
        form = wire.inbound_sms_form(account_sid=ACCOUNT, sid=wire.new_sid("SM"), from_=number, to=SHOP,
                                     body=f"message {i} from {number}", media=[])
        forms.append((form, validator.compute_signature(url, form)))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(form: dict[str, str], sig: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            t0 = time.perf_counter()
            async with http.post(url, data=form, headers={"X-Twilio-Signature": sig}) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append((time.perf_counter() - t0) * 1000)

        start = time.perf_counter() + 0.5
        await asyncio.gather(*(one(f, s, start + i / rate) for i, (f, s) in enumerate(forms)))
    return {
        "system": tag, "rate": rate, "sent": total, "statuses": statuses,
        "p50_ms": round(pct(latencies, 50), 2), "p95_ms": round(pct(latencies, 95), 2),
        "p99_ms": round(pct(latencies, 99), 2), "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
    }


async def baseline_server(port: int, token: str, public: str) -> web.AppRunner:
    """A bare aiohttp endpoint: read the form, check the signature, answer empty TwiML."""
    validator = RequestValidator(token)

    async def hook(request: web.Request) -> web.Response:
        form = dict(await request.post())
        if not validator.validate(public + PATH, form, request.headers.get("X-Twilio-Signature", "")):
            return web.Response(status=403)
        return web.Response(text='<?xml version="1.0" encoding="UTF-8"?><Response />', content_type="text/xml")

    app = web.Application()
    app.router.add_post(PATH, hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def start_hub(port: int, token: str, folder: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bench.db", "HOST": "127.0.0.1", "PORT": str(port),
        "SERVICE_TOKEN": "bench", "DEMO_DATA": "true", "REDIS_URL": "", "RASA_URL": "", "TWILIO_STANDIN": "1",
        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": token, "TWILIO_NUMBERS": f"{SHOP}=support",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "MEDIA_DIR": str(folder / "media"), "LOG_LEVEL": "WARNING",
    }
    python = ROOT / ".venv" / "bin" / "python"
    proc = subprocess.Popen([str(python if python.exists() else sys.executable), "-m", "contact_center.cli", "serve"],
                            cwd=ROOT, env=env, stdout=open(folder / "hub.log", "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((folder / "hub.log").read_text()[-3000:])
            time.sleep(0.3)
    time.sleep(1.0)
    return proc


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--customers", type=int, default=300)
    args = parser.parse_args()
    token = secrets.token_hex(16)
    results = []

    bport = free_port()
    runner = await baseline_server(bport, token, f"http://127.0.0.1:{bport}")
    try:
        await drive(f"http://127.0.0.1:{bport}", token, args.rate, 2, args.customers, "warm-up")
        results.append(await drive(f"http://127.0.0.1:{bport}", token, args.rate, args.seconds, args.customers, "baseline"))
    finally:
        await runner.cleanup()

    with tempfile.TemporaryDirectory() as tmp:
        hport = free_port()
        proc = start_hub(hport, token, Path(tmp))
        try:
            await drive(f"http://127.0.0.1:{hport}", token, args.rate, 2, args.customers, "warm-up")
            cpu0 = cpu_seconds(proc.pid)
            hub = await drive(f"http://127.0.0.1:{hport}", token, args.rate, args.seconds, args.customers, "hub embedded")
            hub["cpu_ms_per_message"] = round((cpu_seconds(proc.pid) - cpu0) * 1000 / hub["sent"], 3)
            results.append(hub)
        finally:
            proc.terminate()
            proc.wait(timeout=15)

    print(f"{'system':<14} {'rate':>6} {'sent':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  statuses  cpu/msg")
    for r in results:
        print(f"{r['system']:<14} {r['rate']:>6.0f} {r['sent']:>6} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} "
              f"{r['max_ms']:>8}  {r['statuses']}  {r.get('cpu_ms_per_message', '')}")
    base, hub = results
    ok = hub["p95_ms"] <= 100 and hub["p99_ms"] <= 300 and set(hub["statuses"]) == {200}
    ratio = round(hub["p95_ms"] / base["p95_ms"], 2) if base["p95_ms"] else None
    print(f"hub p95 / baseline p95: {ratio}")
    print(f"target p95 <= 100 ms, p99 <= 300 ms at {args.rate:g} msg/s, all 200: {'PASS' if ok else 'MISS'}")
    print(json.dumps({"results": results, "p95_ratio": ratio, "pass": ok}))


if __name__ == "__main__":
    asyncio.run(main())
