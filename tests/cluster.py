"""Hub processes for multi-node tests: `contact-center serve` subprocesses on one PostgreSQL database and one
Redis prefix, which a test can kill (``kill -9``) or restart.

Used by ``tests/integration/test_two_nodes.py`` and ``tests/integration/test_chaos.py``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis

from crm_store.db import Database
from tests.conftest import PG_ADMIN_URL, _pg_admin

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[str], timeout: float = 60.0, *, accept_degraded: bool = False) -> None:
    """Until ``GET /healthz`` answers 200 (or, with ``accept_degraded``, any answer at all)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"hub on {port} died (its log is in the test's output)")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except urllib.error.HTTPError:
            if accept_degraded:
                return
            time.sleep(0.3)
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"hub on {port} did not come up")


class HubCluster:
    """``n`` hub processes sharing a fresh PostgreSQL database and a fresh Redis prefix.

    :param seed: run on the migrated database before the hubs start (agents, queues).
    :param env: extra environment for every process (``OFFER_TIMEOUT_SECONDS``...).
    :param redis_url: the Redis the hubs share (a test may give its own server, to stop it).
    """

    def __init__(self, n: int = 2, *, env: dict[str, str] | None = None, redis_url: str = REDIS_URL) -> None:
        self.n = n
        self.name = f"cc_nodes_{uuid.uuid4().hex[:8]}"
        self.url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{self.name}"
        self.redis_url = redis_url
        self.prefix = f"cctest:{{{uuid.uuid4().hex[:8]}}}:"
        self.ports = [free_port() for _ in range(n)]
        self.procs: list[subprocess.Popen[str] | None] = [None] * n
        self.log_dir = tempfile.mkdtemp(prefix="cc-nodes-")
        self.env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": self.prefix,
            "SESSION_SECRET": "shared-secret-" + uuid.uuid4().hex,
            "SERVICE_TOKEN": "hub-cluster",
            "DEMO_DATA": "false",
            "AUTO_MIGRATE": "false",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }

    def base(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    async def create(self, seed: Callable[[Database], Awaitable[None]] | None = None) -> None:
        await _pg_admin(f'CREATE DATABASE "{self.name}"')
        from crm_store.migrate import upgrade

        await asyncio.to_thread(upgrade, self.url)
        if seed is not None:
            db = Database(self.url)
            try:
                await seed(db)
            finally:
                await db.dispose()

    def log_path(self, i: int) -> str:
        return os.path.join(self.log_dir, f"node-{i}.log")

    def log(self, i: int, tail: int = 8000) -> str:
        """The end of node ``i``'s log (stderr, every start appended), without python-socketio's repeated
        "Cannot publish to redis" lines (a Redis outage writes thousands)."""
        try:
            with open(self.log_path(i), errors="replace") as f:
                lines = [ln for ln in f if "Cannot publish to redis" not in ln]
        except OSError:
            return ""
        return "".join(lines)[-tail:]

    async def start(self, i: int, *, accept_degraded: bool = False) -> None:
        with open(self.log_path(i), "a") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "contact_center.cli", "serve", "--port", str(self.ports[i])],
                env={**self.env, "NODE_NAME": f"node-{i}"}, stdout=subprocess.DEVNULL, stderr=log, text=True,
            )
        self.procs[i] = proc
        try:
            await asyncio.to_thread(wait_healthy, self.ports[i], proc, accept_degraded=accept_degraded)
        except AssertionError:
            print(f"--- node-{i} log ---\n{self.log(i)}")
            raise

    async def start_all(self) -> None:
        for i in range(self.n):
            await self.start(i)

    def kill(self, i: int) -> None:
        """``kill -9``: no shutdown of any kind."""
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.procs[i] = None

    def stop(self, i: int) -> None:
        proc = self.procs[i]
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        self.procs[i] = None

    async def drop(self) -> None:
        for i in range(self.n):
            self.stop(i)
        try:
            r = aioredis.from_url(self.redis_url)
            keys = [k async for k in r.scan_iter(match=f"{self.prefix}*")]
            if keys:
                await r.delete(*keys)
            await r.aclose()
        except Exception:  # noqa: BLE001 - a test's own Redis may be gone already
            pass
        await _pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        if not os.environ.get("KEEP_NODE_LOGS"):
            shutil.rmtree(self.log_dir, ignore_errors=True)


async def hub_cluster(n: int, seed: Callable[[Database], Awaitable[None]], **kw: Any) -> AsyncIterator[HubCluster]:
    """For a fixture: the cluster created, seeded and started; stopped and dropped afterwards."""
    cluster = HubCluster(n, **kw)
    await cluster.create(seed)
    try:
        await cluster.start_all()
        yield cluster
    except BaseException:
        for i in range(n):  # what the nodes said, for the failure's report
            print(f"--- node-{i} log ---\n{cluster.log(i)}")
        raise
    finally:
        await cluster.drop()
