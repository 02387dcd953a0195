"""The console script as an operator runs it: migrate, then serve answering health checks and the API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "contact_center.cli", *args]


def test_migrate_command_creates_the_schema(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}
    done = subprocess.run(_cli("migrate"), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(tmp_path / "cli.db").execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"customers", "orders", "interactions", "messages", "alembic_version"} <= tables


@pytest.mark.slow
def test_serve_runs_embedded_with_demo_data(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db",
        "SERVICE_TOKEN": "cli-test-token",
        "PORT": str(port),
    }
    proc = subprocess.Popen(_cli("serve"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert json.loads(resp.read())["database"] is True
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"hub did not come up: {proc.stderr.read() if proc.poll() is not None else 'timeout'}")
                time.sleep(0.5)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/products", headers={"Authorization": "Bearer cli-test-token"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            products = json.loads(resp.read())["products"]
        assert len(products) >= 50  # the demo shop was loaded on first start
    finally:
        proc.terminate()
        proc.wait(timeout=20)
