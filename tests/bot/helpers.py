"""Shared helpers of the bot's tests: where Rasa lives, a hub subprocess on a free port, small HTTP calls."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
RASA_VENV = ROOT / ".venv-rasa"
RASA_PYTHON = RASA_VENV / "bin" / "python"
RASA_BIN = RASA_VENV / "bin" / "rasa"
ARTIFACTS = ROOT / "test-artifacts"


def require_rasa() -> None:
    """Skip when .venv-rasa is missing, except in CI (CI=true) where that is a failure: scripts/ensure-rasa makes it."""
    if RASA_BIN.exists() and RASA_PYTHON.exists():
        return
    message = f"{RASA_VENV} is missing: run scripts/ensure-rasa"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file of bot/ by path (bot/ is not a package of the hub)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: Any = None, *, token: str | None = None, timeout: float = 10) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    req.add_header("Accept", "application/json")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def wait_until(check: Any, what: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not come up in {timeout:.0f} s:\n{log_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.3)


@contextlib.contextmanager
def process(cmd: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess whose output goes to log_path; terminated (then killed) on exit."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log_path, ARTIFACTS / log_path.name)


@contextlib.contextmanager
def running_hub(tmp: Path, name: str, token: str) -> Iterator[tuple[str, Path]]:
    """A hub with the demo shop on a free port and its own SQLite file: yields (base URL, database path)."""
    port = free_port()
    db = tmp / f"{name}.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}", "HOST": "127.0.0.1", "PORT": str(port),
           "SERVICE_TOKEN": token, "DEMO_DATA": "true", "REDIS_URL": ""}
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
    base = f"http://127.0.0.1:{port}"
    log_path = tmp / f"{name}-hub.log"
    with process([python, "-m", "contact_center.cli", "serve"], cwd=ROOT, env=env, log_path=log_path) as proc:
        wait_until(lambda: http(f"{base}/healthz", timeout=2)[0] == 200, "the hub", proc, log_path, 90)
        yield base, db
