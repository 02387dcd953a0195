"""10,000 idle customer Socket.IO connections on ONE embedded hub: connect rate, failures, server memory.

What it does, all on 127.0.0.1:

* migrates a fresh SQLite file and starts ``python -m contact_center.cli serve`` on it as a subprocess
  (DEMO_DATA=false, SERVICE_TOKEN set, in-process state), with its open-file limit raised
  (``setrlimit(RLIMIT_NOFILE)`` in the child before ``exec``, the same as ``prlimit --nofile``);
* spawns ``--clients`` client processes (multiprocessing, spawn; each raises its own fd limit), each
  holding ``count / clients`` python-socketio ``AsyncClient``s (websocket transport only, one shared
  aiohttp session per process) on namespace ``/customer`` with ``auth = {"visitor_id":
  f"benchvisitor{i:08d}"}``. A client process opens its connections as fast as the server lets it,
  with at most ``--concurrency`` connects in flight (a connect returns once the hub's ``on_connect``
  has run, i.e. after identity resolution and the ``session`` emit);
* wave 1 connects NEW visitors (the hub looks their web id up with one read and writes nothing: a
  customer is created at a visitor's first message), holds them all ``--hold`` seconds, then
  disconnects them; wave 2 reconnects the SAME visitor ids (the same single read); ``--waves N``
  repeats that up to wave N (a hub whose closed connections are not freed grows from wave to wave);
* reads the server's ``VmRSS`` from ``/proc/<pid>/status``: before, at the peak while all sockets are
  held (sampled every 0.5 s), and some seconds after each wave's disconnects; the server's and the
  clients' CPU during each wave (to say where the bottleneck was); connect latencies (p50/p99).

Liveness: python-engineio's client gives up its write loop when it has sent nothing for
max(ping_interval, ping_timeout) + 5 s = 25 s, i.e. when the hub's ping (every 20 s) comes more than
5 s late; such a socket never answers a ping again and the hub drops it at its ping timeout. The bench
counts these per wave (silencing the client's log line) and reports, after the hold, the sockets still
connected and those still alive (write loop running); the RSS target counts only if all stayed alive.

Targets: server RSS under 600 MB at 10,000 sockets, >= 500 connections/s. Prints a table, PASS/MISS
and a final JSON line; exits 0 whatever the figures.

    .venv/bin/python bench/connections.py --quick          # 2,000 connections
    .venv/bin/python bench/connections.py                  # 10,000
    .venv/bin/python bench/connections.py --count 4000 --clients 2 --concurrency 64

A wave stops opening connections after ``--max-wave-seconds`` (default 150) so a slow server cannot
make the run unbounded; what was not attempted is reported as "not attempted".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chat_relay import (  # noqa: E402 - shared process and /proc helpers of the benches
    CLK_TCK,
    cpu_count,
    finite,
    fmt,
    free_port,
    machine_ticks,
    percentile,
    proc_ticks,
    raise_nofile,
    rss_mb,
    start_server,
    stop_server,
    tail,
    wait_healthy,
)

RSS_TARGET_MB = 600.0
RATE_TARGET = 500.0
NOFILE = 65536


# --- client process ---------------------------------------------------------------------------------


class _PingGapCounter(logging.Filter):
    """Counts (and silences) python-engineio's client "packet queue is empty, aborting" errors.

    The engineio client's write loop gives up when it has sent nothing for max(ping_interval,
    ping_timeout) + 5 s; an idle client only sends pongs, so this means the server's ping came more
    than 5 s late. From then on the client never answers a ping and the server drops the socket after
    its ping timeout: such a socket is as good as lost.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("packet queue is empty"):
            self.count += 1
            return False
        return True


PING_GAPS = _PingGapCounter()


class Holder:
    """One client process's share of the idle customer connections."""

    def __init__(self, wid: int, url: str, first: int, count: int, concurrency: int) -> None:
        self.wid, self.url, self.first, self.count, self.concurrency = wid, url, first, count, concurrency
        self.clients: list[Any] = []
        self.http: Any = None

    async def open(self) -> None:
        import aiohttp

        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar())

    async def connect_wave(self, start_at: float, max_seconds: float) -> dict[str, Any]:
        """Connect every visitor of this process (at most ``concurrency`` at once); timings and failures."""
        import socketio

        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        gaps0 = PING_GAPS.count
        ids = iter(range(self.first, self.first + self.count))
        latencies: list[float] = []
        errors: dict[str, int] = {}
        cpu0, t0, wall0 = time.process_time(), time.perf_counter(), time.time()
        deadline = t0 + max_seconds
        self.clients = []

        async def one(i: int) -> None:
            sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=self.http)
            t = time.perf_counter()
            try:
                await sio.connect(self.url, namespaces=["/customer"], auth={"visitor_id": f"benchvisitor{i:08d}"},
                                  transports=["websocket"], wait_timeout=60)
                latencies.append(time.perf_counter() - t)
                self.clients.append(sio)
            except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
                key = f"{type(exc).__name__}: {str(exc)[:80]}"
                errors[key] = errors.get(key, 0) + 1
                try:
                    await sio.disconnect()
                except Exception:  # noqa: BLE001
                    pass

        async def lane() -> None:
            for i in ids:
                if time.perf_counter() > deadline:
                    return
                await one(i)

        await asyncio.gather(*(lane() for _ in range(self.concurrency)))
        end = time.time()
        wall = time.perf_counter() - t0
        return {
            "ok": len(latencies), "failed": sum(errors.values()), "errors": errors, "not_attempted": self.count - len(latencies) - sum(errors.values()),
            "start": wall0, "end": end, "wall": wall, "cpu_pct": 100.0 * (time.process_time() - cpu0) / wall if wall > 0 else 0.0,
            "lat": latencies, "ping_gap_aborts": PING_GAPS.count - gaps0,
        }

    def still_connected(self) -> dict[str, int]:
        """Sockets still connected, and of those, how many still have a live engine.io write loop (can pong)."""
        connected = [c for c in self.clients if c.connected and "/customer" in c.namespaces]
        alive = sum(1 for c in connected if c.eio.write_loop_task is not None and not c.eio.write_loop_task.done())
        return {"connected": len(connected), "alive": alive, "ping_gap_aborts_total": PING_GAPS.count}

    async def disconnect_all(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(self.concurrency * 2)

        async def one(c: Any) -> None:
            async with sem:
                try:
                    await c.disconnect()
                except Exception:  # noqa: BLE001
                    pass

        cpu0 = time.process_time()
        await asyncio.gather(*(one(c) for c in self.clients))
        n = len(self.clients)
        self.clients = []
        wall = time.perf_counter() - t0
        return {"disconnected": n, "seconds": wall, "cpu_pct": 100.0 * (time.process_time() - cpu0) / wall if wall > 0 else 0.0,
                "ping_gap_aborts_total": PING_GAPS.count}

    async def close(self) -> None:
        if self.clients:
            await self.disconnect_all()
        if self.http is not None:
            await self.http.close()


def holder_main(conn: Any, wid: int, url: str, first: int, count: int, concurrency: int) -> None:
    """Entry point of a client process: ``connect`` / ``check`` / ``disconnect`` / ``stop`` from the pipe."""
    limit = raise_nofile(NOFILE)
    logging.getLogger("engineio.client").addFilter(PING_GAPS)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        holder = Holder(wid, url, first, count, concurrency)
        await holder.open()
        conn.send(("ok", {"nofile": limit}))
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            try:
                if cmd[0] == "connect":
                    conn.send(("ok", await holder.connect_wave(cmd[1], cmd[2])))
                elif cmd[0] == "check":
                    conn.send(("ok", holder.still_connected()))
                elif cmd[0] == "disconnect":
                    conn.send(("ok", await holder.disconnect_all()))
                elif cmd[0] == "stop":
                    await holder.close()
                    conn.send(("ok", {}))
                    return
            except Exception:  # noqa: BLE001 - reported to the orchestrator
                conn.send(("error", traceback.format_exc()))
                if cmd[0] == "stop":
                    return

    asyncio.run(run())


class Holders:
    """The client processes, driven over pipes."""

    def __init__(self, url: str, count: int, n: int, concurrency: int) -> None:
        ctx = mp.get_context("spawn")
        share = [count // n + (1 if w < count % n else 0) for w in range(n)]
        self.conns, self.procs = [], []
        first = 0
        for wid in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=holder_main, args=(child, wid, url, first, share[wid], concurrency), daemon=True)
            proc.start()
            first += share[wid]
            self.conns.append(parent)
            self.procs.append(proc)
        self.limits = [self._answer(w, 60)["nofile"] for w in range(n)]
        self.gaps_seen = 0

    def _answer(self, wid: int, timeout: float) -> Any:
        if not self.conns[wid].poll(timeout):
            raise RuntimeError(f"client process {wid} did not answer in {timeout:.0f} s")
        status, payload = self.conns[wid].recv()
        if status != "ok":
            raise RuntimeError(f"client process {wid} failed:\n{payload}")
        return payload

    def all(self, cmd: tuple[Any, ...], timeout: float) -> list[Any]:
        for c in self.conns:
            c.send(cmd)
        return [self._answer(w, timeout) for w in range(len(self.conns))]

    def stop(self) -> None:
        for wid, proc in enumerate(self.procs):
            if proc.is_alive():
                try:
                    self.conns[wid].send(("stop",))
                    self._answer(wid, 60)
                except (RuntimeError, OSError, EOFError):
                    pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


# --- orchestration ------------------------------------------------------------------------------------


def run_wave(name: str, holders: Holders, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """Connect every visitor, hold, sample RSS, disconnect; the wave's figures."""
    n = len(holders.conns)
    start_at = time.time() + 0.5
    for c in holders.conns:
        c.send(("connect", start_at, args.max_wave_seconds))
    time.sleep(max(0.0, start_at - time.time()))
    srv0, mach0 = proc_ticks(server_pid), machine_ticks()
    peak_during = 0.0
    results: list[Any] = [None] * n
    pending = set(range(n))
    deadline = time.monotonic() + args.max_wave_seconds + 120
    while pending and time.monotonic() < deadline:
        peak_during = max(peak_during, rss_mb(server_pid))
        for w in list(pending):
            if holders.conns[w].poll(0.2):
                status, payload = holders.conns[w].recv()
                if status != "ok":
                    raise RuntimeError(f"client process {w} failed:\n{payload}")
                results[w] = payload
                pending.discard(w)
    if pending:
        raise RuntimeError(f"client processes {sorted(pending)} did not finish their connects")
    srv1, mach1 = proc_ticks(server_pid), machine_ticks()
    start = min(r["start"] for r in results)
    end = max(r["end"] for r in results)
    wall = max(end - start, 1e-9)
    ok = sum(r["ok"] for r in results)
    failed = sum(r["failed"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    lat = sorted(x * 1000.0 for r in results for x in r["lat"])
    # hold: every socket stays idle; sample the server's memory
    hold_end = time.monotonic() + args.hold
    peak_held = rss_mb(server_pid)
    while time.monotonic() < hold_end:
        time.sleep(0.5)
        peak_held = max(peak_held, rss_mb(server_pid))
    checks = holders.all(("check",), 60)
    connected = sum(x["connected"] for x in checks)
    alive = sum(x["alive"] for x in checks)
    gaps_during_connect = sum(r["ping_gap_aborts"] for r in results)
    rss_held = rss_mb(server_pid)
    gaps_total = sum(x["ping_gap_aborts_total"] for x in checks) - holders.gaps_seen
    holders.gaps_seen += gaps_total
    srv_d0 = proc_ticks(server_pid)
    disc = holders.all(("disconnect",), 300)
    disc_s = max(d["seconds"] for d in disc)
    disc_server_cpu = (proc_ticks(server_pid) - srv_d0) / CLK_TCK / max(disc_s, 1e-9) * 100.0
    gaps_disc = sum(d["ping_gap_aborts_total"] for d in disc) - holders.gaps_seen
    holders.gaps_seen += gaps_disc
    time.sleep(args.settle)
    rss_after = rss_mb(server_pid)
    busy, total = mach1[0] - mach0[0], mach1[1] - mach0[1]
    wave = {
        "wave": name, "attempted": ok + failed, "connected": ok, "failed": failed, "not_attempted": sum(r["not_attempted"] for r in results),
        "errors": errors, "seconds": wall, "rate_per_s": ok / wall,
        "connect_p50_ms": percentile(lat, 50), "connect_p99_ms": percentile(lat, 99), "connect_max_ms": lat[-1] if lat else float("nan"),
        "still_connected_after_hold": connected, "alive_after_hold": alive,
        "ping_gap_aborts_while_connecting": gaps_during_connect, "ping_gap_aborts": gaps_total,
        "rss_peak_while_connecting_mb": peak_during, "rss_at_full_mb": rss_held, "rss_peak_held_mb": peak_held, "rss_after_mb": rss_after,
        "disconnect_seconds": disc_s, "disconnect_rate_per_s": sum(d["disconnected"] for d in disc) / max(disc_s, 1e-9),
        "disconnect_server_cpu_pct": disc_server_cpu, "disconnect_client_cpu_pct": [d["cpu_pct"] for d in disc],
        "ping_gap_aborts_while_disconnecting": gaps_disc,
        "server_cpu_pct": (srv1 - srv0) / CLK_TCK / wall * 100.0,
        "client_cpu_pct": [r["cpu_pct"] for r in results],
        "machine_cpu_pct": 100.0 * busy / total * cpu_count() if total else float("nan"),
    }
    wave["other_cpu_pct"] = max(0.0, wave["machine_cpu_pct"] - wave["server_cpu_pct"] - sum(wave["client_cpu_pct"]))
    wave["bottleneck"] = diagnose(wave)
    print(f"  {name}: {ok} connected, {failed} failed in {wall:.1f} s = {wave['rate_per_s']:.0f}/s "
          f"(connect p50 {fmt(wave['connect_p50_ms'])} ms, p99 {fmt(wave['connect_p99_ms'])} ms); server CPU {wave['server_cpu_pct']:.0f} %, "
          f"clients {'/'.join(f'{x:.0f}' for x in wave['client_cpu_pct'])} %, machine {wave['machine_cpu_pct']:.0f} % "
          f"(other work {wave['other_cpu_pct']:.0f} %); RSS held {rss_held:.0f} MB, after {rss_after:.0f} MB", flush=True)
    print(f"    after the {args.hold:.0f} s hold: {connected} still connected, {alive} of them able to answer pings; "
          f"{gaps_total} clients gave up (no server ping for 25 s; {gaps_during_connect} of them while the wave was connecting)", flush=True)
    print(f"    disconnecting all: {disc_s:.1f} s ({wave['disconnect_rate_per_s']:.0f}/s; server CPU {disc_server_cpu:.0f} %, clients "
          f"{'/'.join(f'{x:.0f}' for x in wave['disconnect_client_cpu_pct'])} %); {gaps_disc} clients still waiting for their turn "
          f"gave up meanwhile (no server ping for 25 s)", flush=True)
    for k, v in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print(f"    {v} x {k}")
    return wave


def diagnose(w: dict[str, Any]) -> str:
    """Where the connect rate was limited, from the CPU figures."""
    reasons = []
    cores = cpu_count()
    if w["server_cpu_pct"] >= 85:
        reasons.append(f"server process CPU ({w['server_cpu_pct']:.0f} % of a core: one event loop + the SQLite thread)")
    if max(w["client_cpu_pct"], default=0) >= 85:
        reasons.append(f"a client process's CPU ({max(w['client_cpu_pct']):.0f} %)")
    if w["machine_cpu_pct"] >= 0.85 * 100 * cores:
        reasons.append(f"the whole machine ({w['machine_cpu_pct']:.0f} % of {cores * 100} %)")
    if w["other_cpu_pct"] >= 40.0:
        reasons.append(f"other work on the shared machine ({w['other_cpu_pct']:.0f} %)")
    if not reasons:
        reasons.append("waiting without CPU saturation (serialized SQLite write transactions)")
    return "; ".join(reasons)


def _tear_down(holders: "Holders | None", server: Any, tmp: Path) -> None:
    """Stop the client processes and the server, remove the scratch folder."""
    if holders is not None:
        holders.stop()
    if server is not None:
        stop_server(server)
    shutil.rmtree(tmp, ignore_errors=True)


def serve_bare(port: int) -> None:
    """The baseline: a bare python-socketio server whose ``/customer`` connect checks the visitor id and sends a session.

    No storage and no hub: what python-socketio, engine.io and aiohttp cost per connect on this machine.
    """
    import re

    import socketio
    from aiohttp import web

    visitor = re.compile(r"[A-Za-z0-9_-]{8,128}")
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*", ping_interval=25, ping_timeout=20)
    app = web.Application()
    sio.attach(app)

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        vid = auth.get("visitor_id") if isinstance(auth, dict) else None
        if not isinstance(vid, str) or not visitor.fullmatch(vid):
            raise socketio.exceptions.ConnectionRefusedError("visitor_id required")
        await sio.save_session(sid, {"visitor": vid}, namespace="/customer")
        await sio.emit("session", {"customer_id": None, "conversation_id": None, "messages": []}, to=sid, namespace="/customer")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    sio.on("connect", connect, namespace="/customer")
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def measure_bare(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The same two waves against the bare python-socketio server (the baseline of the connect rate)."""
    tmp = Path(tempfile.mkdtemp(prefix="ccbench-conn-bare-"))
    log = tmp / "bare.log"
    server = None
    holders: Holders | None = None
    try:
        port = free_port()
        server = start_server([sys.executable, str(Path(__file__).resolve()), "--serve-bare", "--port", str(port)],
                              dict(os.environ), log, nofile=NOFILE)
        wait_healthy(port, server, log)
        holders = Holders(f"http://127.0.0.1:{port}", args.count, args.clients, args.concurrency)
        print(f"  bare python-socketio server pid {server.pid}", flush=True)
        return [run_wave("baseline wave 1", holders, server.pid, args), run_wave("baseline wave 2", holders, server.pid, args)]
    except Exception as exc:  # noqa: BLE001 - report, then measure the hub anyway
        print(f"  baseline FAILED: {exc}\n  --- log:\n{tail(log)}", flush=True)
        return []
    finally:
        _tear_down(holders, server, tmp)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=10000, help="connections (default 10,000)")
    parser.add_argument("--quick", action="store_true", help="2,000 connections, shorter hold")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--concurrency", type=int, default=32, help="connects in flight per client process (default 32)")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to hold all sockets (default 10; 4 with --quick)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the disconnects before reading RSS again")
    parser.add_argument("--max-wave-seconds", type=float, default=150.0, help="stop opening connections after this long")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the hub (default WARNING)")
    parser.add_argument("--waves", type=int, default=2, help="waves of the same visitors after the first (default 2 in all)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare python-socketio baseline")
    parser.add_argument("--serve-bare", action="store_true", help="(internal) run the bare baseline server")
    parser.add_argument("--port", type=int, default=0, help="(internal) port of the bare baseline server")
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.port)
        return 0
    if args.quick:
        args.count = 2000
    args.hold = args.hold or (4.0 if args.quick else 10.0)
    print(f"connections bench: {args.count} idle /customer sockets, {args.clients} client processes x {args.concurrency} in flight; "
          f"python {platform.python_version()}, {cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start", flush=True)

    from crm_store.migrate import upgrade

    tmp = Path(tempfile.mkdtemp(prefix="ccbench-conn-"))
    url = f"sqlite+aiosqlite:///{tmp}/bench.db"
    log = tmp / "hub.log"
    server = None
    holders: Holders | None = None
    waves: list[dict[str, Any]] = []
    out: dict[str, Any] = {"bench": "connections", "count": args.count, "client_processes": args.clients,
                           "concurrency_per_process": args.concurrency, "python": platform.python_version(), "cores": cpu_count()}
    baseline_waves = [] if args.no_baseline else measure_bare(args)
    try:
        upgrade(url)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_PREFIX", "DATABASE_URL")}
        env.update({"DATABASE_URL": url, "DEMO_DATA": "false", "AUTO_MIGRATE": "false", "SERVICE_TOKEN": "bench-" + uuid.uuid4().hex,
                    "SESSION_SECRET": "bench-" + uuid.uuid4().hex, "LOG_LEVEL": args.log_level})
        server = start_server([sys.executable, "-m", "contact_center.cli", "serve", "--port", str(port)], env, log, nofile=NOFILE)
        wait_healthy(port, server, log)
        with open(f"/proc/{server.pid}/limits") as f:
            server_nofile = next((line.split()[3] for line in f if line.startswith("Max open files")), "?")
        time.sleep(1.0)
        rss_before = rss_mb(server.pid)
        holders = Holders(f"http://127.0.0.1:{port}", args.count, args.clients, args.concurrency)
        print(f"  hub pid {server.pid}, fd limit {server_nofile}; client fd limits {holders.limits}; RSS before {rss_before:.0f} MB", flush=True)
        out.update({"server_nofile": server_nofile, "rss_before_mb": rss_before})
        waves.append(run_wave("wave 1 (new visitors)", holders, server.pid, args))
        for n in range(2, max(args.waves, 1) + 1):
            waves.append(run_wave(f"wave {n} (same visitors)", holders, server.pid, args))
    except Exception as exc:  # noqa: BLE001 - report what failed, still print what was measured
        print(f"  FAILED: {exc}\n  --- hub log:\n{tail(log)}", flush=True)
        out["error"] = str(exc)
    finally:
        _tear_down(holders, server, tmp)

    if waves:
        print("\n== summary")
        header = (f"{'wave':<24} {'connected':>9} {'failed':>6} {'secs':>6} {'conn/s':>7} {'p50 ms':>7} {'p99 ms':>8} "
                  f"{'alive':>6} {'RSS before':>10} {'RSS @full':>9} {'RSS after':>9} {'srv CPU%':>8} {'other%':>6}")
        print(header + "\n" + "-" * len(header))
        for w in waves:
            print(f"{w['wave']:<24} {w['connected']:>9} {w['failed']:>6} {w['seconds']:>6.1f} {w['rate_per_s']:>7.0f} {fmt(w['connect_p50_ms']):>7} "
                  f"{fmt(w['connect_p99_ms']):>8} {w['alive_after_hold']:>6} {out.get('rss_before_mb', float('nan')):>10.0f} {w['rss_peak_held_mb']:>9.0f} {w['rss_after_mb']:>9.0f} "
                  f"{w['server_cpu_pct']:>8.0f} {w['other_cpu_pct']:>6.0f}")
        print("(alive: still connected after the hold AND still able to answer the server's pings)")
        for w in waves:
            print(f"  {w['wave']}: limited by {w['bottleneck']}")
            if w["ping_gap_aborts"]:
                print(f"  {w['wave']}: {w['ping_gap_aborts']} clients saw no server ping for 25 s while connected (the hub's event loop was"
                      f" too busy to ping on time): those sockets are lost at the next ping timeout")
            if w["ping_gap_aborts_while_disconnecting"]:
                print(f"  {w['wave']}: during the mass disconnect ({w['disconnect_seconds']:.0f} s, server CPU {w['disconnect_server_cpu_pct']:.0f} %),"
                      f" {w['ping_gap_aborts_while_disconnecting']} clients waiting to disconnect saw no server ping for 25 s")
        full = max(w["rss_peak_held_mb"] for w in waves)
        held_all = all(w["connected"] == args.count and w["alive_after_hold"] == args.count for w in waves)
        rates = {w["wave"]: w["rate_per_s"] for w in waves}
        before = out.get("rss_before_mb", 0.0)
        per_socket_kb = (full - before) * 1024.0 / max(args.count, 1)
        at_10k = before + per_socket_kb * 10000 / 1024.0
        out["rss_per_socket_kb"] = per_socket_kb
        out["rss_extrapolated_10000_mb"] = at_10k
        rss_ok = full < RSS_TARGET_MB and held_all and (args.count == 10000 or at_10k < RSS_TARGET_MB)
        extra = "" if args.count == 10000 else f"; extrapolated to 10,000: ~{at_10k:.0f} MB"
        print(f"\nRSS at {args.count:,} sockets: {full:.0f} MB ({per_socket_kb:.1f} KB per socket over the {before:.0f} MB idle hub{extra}; "
              f"target < {RSS_TARGET_MB:.0f} MB at 10,000{'' if held_all else '; NOT all sockets stayed alive'}): {'PASS' if rss_ok else 'MISS'}")
        for name, r in rates.items():
            print(f"connect rate, {name}: {r:.0f}/s (target >= {RATE_TARGET:.0f}/s): {'PASS' if r >= RATE_TARGET else 'MISS'}")
        for hub_w, bare_w in zip(waves, baseline_waves):
            ratio = hub_w["rate_per_s"] / bare_w["rate_per_s"] if bare_w["rate_per_s"] else float("nan")
            print(f"  baseline (bare python-socketio, same clients) {bare_w['wave']}: {bare_w['rate_per_s']:.0f}/s at "
                  f"{bare_w['server_cpu_pct']:.0f} % server CPU; hub / baseline: {ratio:.2f}")
        out["baseline_waves"] = [{k: finite(v) if isinstance(v, float) else v for k, v in w.items() if k != "lat"} for w in baseline_waves]
        out["verdicts"] = {"rss": "PASS" if rss_ok else "MISS", **{f"rate_wave{i + 1}": ("PASS" if w["rate_per_s"] >= RATE_TARGET else "MISS") for i, w in enumerate(waves)}}
        out["targets"] = {"rss_mb_max": RSS_TARGET_MB, "rate_min": RATE_TARGET}
        out["rss_at_full_mb"] = full
    out["waves"] = [{k: ([finite(x) for x in v] if isinstance(v, list) else finite(v) if isinstance(v, float) else v) for k, v in w.items()} for w in waves]
    out = {k: (finite(v) if isinstance(v, float) else v) for k, v in out.items()}
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
