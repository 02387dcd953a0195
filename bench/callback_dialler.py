"""The callback dialler: 1,000 scheduled callbacks falling due in the same minute, dialled within the calls-per-second
limit, none twice and none missed, and the dialler's own overhead per callback.

What runs (in one process, on a temporary SQLite file, against the local Twilio stand-in served over HTTP):

* **dialler**: ``--workers`` claimers, each as a hub process would (its own owner name), loop: claim due callbacks
  (``repositories.callbacks.claim_due``: conditional updates), attach their contact, claim attempt 1
  (``start_attempt``), take a token of the shared calls-per-second bucket (``CallsPerSecond``, ``--cps``), Calls
  create through the hub's ``VoiceRestClient`` (``MachineDetection=Enable``), then record the CallSid
  (``attempt_dialled``). A 429 (20429) backs the bucket off and the call is tried again.
* **baseline**, in the same run: the same 1,000 Calls create through the same bucket and client, with no SQL at all.

The stand-in refuses Calls create over ``--cps`` in any one second (429, code 20429) like an account's CPS limit, so
"within the limit" is checked by Twilio's side too. Checked at the end: 1,000 attempts, each callback once, 1,000
distinct CallSids, every number called exactly once at the stand-in, none left due. A virtual-clock run of the bucket
at Twilio's default 1 call/s shows the pacing of 1,000 calls (at least 999 s) without waiting for it.

Printed: wall time and calls per second of both runs, 429s, CPU time per callback (process time: dialler, baseline,
their difference = the dialler's own overhead, and the ratio), a final JSON line. Exits 0 whatever the figures.

    .venv/bin/python bench/callback_dialler.py                 # 1,000 callbacks at 100 calls/s (about 10 s per run)
    .venv/bin/python bench/callback_dialler.py --cps 50 --callbacks 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm_store.db import Database  # noqa: E402
from crm_store.models import Callback, CallbackAttempt, Customer  # noqa: E402
from crm_store.repositories import callbacks as repo  # noqa: E402
from integrations.standins.twilio import STANDIN_KEY, create_twilio_standin  # noqa: E402
from integrations.twilio.callback import CallsPerSecond  # noqa: E402
from integrations.twilio.config import TwilioConfig  # noqa: E402
from integrations.twilio.voice_rest import VoiceRestClient  # noqa: E402
from sms_webhook import free_port  # noqa: E402  (bench/ is on sys.path when run as a script)

ACCOUNT = "AC" + "0" * 31 + "1"
TOKEN = "bench-token"
SHOP = "+15005550006"


def number(i: int) -> str:
    return f"+1415555{i:04d}"


async def seed(db: Database, count: int, minute: datetime) -> None:
    async with db.transaction() as s:
        customers = [Customer(display_name=f"c{i}") for i in range(count)]
        s.add_all(customers)
        await s.flush()
        s.add_all([Callback(customer_id=c.id, number=number(i), state="scheduled", queue="support",  # type: ignore[arg-type]
                            due_at=minute + timedelta(seconds=(i * 37) % 60), requested_for=minute)
                   for i, c in enumerate(customers)])


async def dial(client: VoiceRestClient, bucket: CallsPerSecond, to: str, refused: Counter[str]) -> str:
    for attempt in range(8):
        await bucket.acquire()
        result = await client.create_call(to=to, from_=SHOP, url="http://127.0.0.1:9/answer", status_callback=None,
                                          machine_detection="Enable", timeout=5, tries=1)
        if result.ok and result.sid:
            return result.sid
        refused[result.code or str(result.http_status)] += 1
        if result.http_status == 429:
            bucket.back_off(0.2 * 2 ** attempt)
            continue
        raise RuntimeError(f"Calls create refused: {result.code} {result.words}")
    raise RuntimeError("gave up after repeated 429s")


async def dialler_worker(db: Database, owner: str, client: VoiceRestClient, bucket: CallsPerSecond, now: datetime,
                         refused: Counter[str], won: list[tuple[int, int]]) -> None:
    while True:
        claimed = await repo.claim_due(db, now, owner, limit=20)
        if not claimed:
            return
        for c in claimed:
            cid = c.callback.id
            assert cid is not None
            await repo.attach_conversation(db, cid, owner, None, now)  # type: ignore[arg-type]
            attempt = await repo.start_attempt(db, cid, agent_id=None, conversation_id=None, claimed_by=owner, now=now)
            if attempt is None:
                continue  # another worker has it: never dialled twice
            sid = await dial(client, bucket, c.callback.number, refused)
            await repo.attempt_dialled(db, cid, attempt.n, sid)
            won.append((cid, attempt.n))


async def virtual_pacing(count: int) -> float:
    """Seconds of (virtual) time that ``count`` calls take through a 1 call/s bucket."""
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    async def run() -> float:
        bucket = CallsPerSecond(1.0, clock=lambda: clock[0], sleep=sleep)
        for _ in range(count):
            await bucket.acquire()
        return clock[0]

    return await run()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="cb-bench-")
    db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
    await db.create_all()
    port = free_port()
    app = create_twilio_standin(account_sid=ACCOUNT, auth_token=TOKEN, webhook_base_url="http://127.0.0.1:9", numbers=[SHOP],
                                dev_page=False, api_base_url=f"http://127.0.0.1:{port}", time_scale=0.01)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    engine = app[STANDIN_KEY].voice
    for i in range(args.callbacks):
        engine.phones[number(i)] = "busy"  # each call ends at once (nothing to fetch, no callback to post)
    engine.calls_per_second = args.cps
    config = TwilioConfig.from_env({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_NUMBERS": f"{SHOP}=support",
                          "PUBLIC_BASE_URL": "http://127.0.0.1:9", "TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}"})
    assert config is not None
    client = VoiceRestClient(config)
    minute = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    await seed(db, args.callbacks, minute)
    now = minute + timedelta(minutes=1)
    try:
        # warm-up: the HTTP client's session and the stand-in's first request
        await dial(client, CallsPerSecond(args.cps), number(9999), Counter())
        # the baseline: the same creates through the same bucket and client, no SQL
        refused_base: Counter[str] = Counter()
        bucket = CallsPerSecond(args.cps)
        await asyncio.sleep(1.1)
        engine.call_creates.clear()
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(args.callbacks):
            await dial(client, bucket, number(i), refused_base)
        base_cpu, base_wall = time.process_time() - cpu0, time.perf_counter() - t0
        calls_before = Counter(c.to for c in engine.calls.values())
        # the dialler: claims, attempts, the same bucket discipline
        await asyncio.sleep(1.1)
        refused: Counter[str] = Counter()
        won: list[tuple[int, int]] = []
        bucket = CallsPerSecond(args.cps)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(dialler_worker(db, f"hub-{w}", client, bucket, now, refused, won) for w in range(args.workers)))
        dial_cpu, dial_wall = time.process_time() - cpu0, time.perf_counter() - t0
        calls_after = Counter(c.to for c in engine.calls.values())
        async with db.session() as s:
            from sqlmodel import select

            attempts = (await s.exec(select(CallbackAttempt))).all()
            still_due = len((await s.exec(select(Callback).where(Callback.state == "scheduled"))).all())
        dialled_numbers = calls_after - calls_before
        checks = {
            "attempts": len(attempts), "distinct_callbacks": len({a.callback_id for a in attempts}),
            "distinct_call_sids": len({a.call_sid for a in attempts if a.call_sid}),
            "numbers_called_once": sum(1 for i in range(args.callbacks) if dialled_numbers[number(i)] == 1),
            "numbers_called_twice": sum(1 for n in dialled_numbers.values() if n > 1), "left_due": still_due,
            "standin_429": engine.cps_refused,
        }
    finally:
        await client.close()
        await server.close()
        await db.dispose()
    n = args.callbacks
    ok = (checks["attempts"] == n and checks["distinct_callbacks"] == n and checks["distinct_call_sids"] == n
          and checks["numbers_called_once"] == n and checks["numbers_called_twice"] == 0 and checks["left_due"] == 0)
    pacing = await virtual_pacing(n)
    figures = {
        "callbacks": n, "cps": args.cps, "workers": args.workers,
        "dialler_wall_s": round(dial_wall, 2), "dialler_calls_per_s": round(n / dial_wall, 1),
        "baseline_wall_s": round(base_wall, 2), "baseline_calls_per_s": round(n / base_wall, 1),
        "dialler_cpu_ms_per_callback": round(1000 * dial_cpu / n, 3), "baseline_cpu_ms_per_call": round(1000 * base_cpu / n, 3),
        "overhead_cpu_ms_per_callback": round(1000 * (dial_cpu - base_cpu) / n, 3),
        "cpu_ratio_dialler_vs_baseline": round(dial_cpu / base_cpu, 2) if base_cpu else None,
        "refused_429_dialler": refused.get("20429", 0), "refused_429_baseline": refused_base.get("20429", 0),
        "virtual_seconds_for_n_at_1cps": pacing, **checks, "none_twice_none_missed": ok,
    }
    print(f"{'run':<10} {'wall s':>8} {'calls/s':>8} {'CPU ms/call':>12} {'429s':>6}")
    print(f"{'baseline':<10} {base_wall:>8.2f} {n / base_wall:>8.1f} {1000 * base_cpu / n:>12.3f} {refused_base.get('20429', 0):>6}")
    print(f"{'dialler':<10} {dial_wall:>8.2f} {n / dial_wall:>8.1f} {1000 * dial_cpu / n:>12.3f} {refused.get('20429', 0):>6}")
    print(f"dialler overhead: {figures['overhead_cpu_ms_per_callback']} ms CPU per callback "
          f"(x{figures['cpu_ratio_dialler_vs_baseline']} the baseline's CPU per call)")
    print(f"{'PASS' if ok else 'MISS'} none twice, none missed: {checks}")
    print(f"{'PASS' if n / dial_wall <= args.cps * 1.05 else 'MISS'} within the limit: {n / dial_wall:.1f} calls/s <= {args.cps} "
          f"(the stand-in refused {engine.cps_refused} over its own {args.cps}/s window)")
    print(f"{'PASS' if pacing >= n - 1 else 'MISS'} at Twilio's default 1 call/s, {n} calls take {pacing:.0f} s (virtual clock)")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callbacks", type=int, default=1000)
    parser.add_argument("--cps", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
