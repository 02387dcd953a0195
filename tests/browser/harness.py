"""The browser tests' shared harness: the hub as a subprocess, Debian's Chromium via Playwright, small helpers."""

from __future__ import annotations

import contextlib
import dataclasses
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
from typing import Any, Iterator

import pytest

if os.environ.get("CI"):  # in CI a missing browser is a failure, never a silent skip
    import playwright.sync_api as sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
    if os.environ.get("CI"):
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: scripts/ensure-browser installs it")
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: Any = None, *, token: str | None = None, timeout: float = 10) -> tuple[int, Any]:
    """A small JSON HTTP call to the hub (standard library only)."""
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


_frontend_ready = False


def ensure_frontend() -> None:
    """The console's bundle, built if its sources or lockfile changed (``scripts/ensure-frontend``; once a session)."""
    global _frontend_ready
    if not _frontend_ready:
        subprocess.run([str(ROOT / "scripts" / "ensure-frontend")], cwd=ROOT, check=True)
        _frontend_ready = True


@contextlib.contextmanager
def running_hub(
    tmp: Path, name: str, token: str, env: dict[str, str] | None = None, *, port: int | None = None,
    serve: str | None = None, unset: tuple[str, ...] = (),
) -> Iterator[str]:
    """A hub on a free port (or ``port``) with the demo data, its log kept as ``test-artifacts/<name>-hub.log``.

    ``env``, when given, is merged into the hub's environment last (it may override the defaults above);
    ``unset`` names variables of this process's environment the hub must not inherit.
    ``port`` lets the caller know the base URL before the start (``PUBLIC_BASE_URL`` for Twilio's webhooks).
    ``serve``: a module whose ``serve_hub()`` runs the hub (a test's own composition: extra test routes, a
    stand-in), instead of ``contact_center.cli serve``.
    """
    ensure_frontend()
    port = port or free_port()
    hub_env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/{name}.db",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SERVICE_TOKEN": token,
        "DEMO_DATA": "true",
        "REDIS_URL": "",
        **(env or {}),
    }
    for variable in unset:
        hub_env.pop(variable, None)
    log_path = tmp / "hub.log"
    log = open(log_path, "wb")
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
    command = ["-c", f"from {serve} import serve_hub; serve_hub()"] if serve else ["-m", "contact_center.cli", "serve"]
    proc = subprocess.Popen([python, *command], cwd=ROOT, env=hub_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the hub exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}")
            try:
                if http(f"{base}/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the hub did not answer /healthz in 90 s:\n{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log_path, ARTIFACTS / f"{name}-hub.log")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def watch(page: Any, dialogs: list[str], errors: list[str]) -> None:
    """Record every JavaScript dialog (and dismiss it) and every uncaught page error."""

    def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    record(page)


# What a failed browser test leaves behind (tests/browser/conftest.py writes it): for every watched page, a
# screenshot, and the page's Socket.IO frames, console lines and errors with their times. A flaky failure is seen
# once in many CI runs; this is what tells the next reader what the page had been told.
@dataclasses.dataclass
class Recorded:
    """One watched page: its log lines, and its screenshot once taken at a failure."""

    page: Any
    lines: list[str]
    shot: bytes | None = None

    def screenshot(self) -> None:
        """Take the page as it is now (best effort: a failed shot is a line of the log)."""
        try:
            if self.shot is None and not self.page.is_closed():
                self.lines.append(f"url at failure: {self.page.url}")
                self.shot = self.page.screenshot(full_page=True)
        except Exception as exc:  # noqa: BLE001 - evidence is best effort; the failure itself is reported anyway
            self.lines.append(f"no screenshot: {exc}")


EVIDENCE: list[Recorded] = []
_MAX_LINES = 5000


def record(page: Any) -> None:
    """Keep this page's socket frames, console lines and page errors, for a failure's evidence."""
    lines: list[str] = []

    def add(text: str) -> None:
        if len(lines) < _MAX_LINES:
            lines.append(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {text}")

    def on_websocket(ws: Any) -> None:
        add(f"websocket open {ws.url}")
        ws.on("framereceived", lambda payload: add(f"< {str(payload)[:600]}"))
        ws.on("framesent", lambda payload: add(f"> {str(payload)[:600]}"))
        ws.on("close", lambda _ws: add("websocket closed"))

    page.on("websocket", on_websocket)
    page.on("console", lambda msg: add(f"console.{msg.type}: {msg.text[:600]}"))
    page.on("pageerror", lambda exc: add(f"pageerror: {exc}"))
    page.on("framenavigated", lambda frame: add(f"navigated {frame.url}") if frame == page.main_frame else None)
    EVIDENCE.append(Recorded(page, lines))


@contextlib.contextmanager
def screenshots_on_failure() -> Iterator[None]:
    """Around a test body whose ``finally`` closes its pages: screenshot them on a failure while they are open
    (``save_evidence`` writes them with the rest)."""
    try:
        yield
    except BaseException:
        for recorded in EVIDENCE:
            recorded.screenshot()
        raise


def save_evidence(test_name: str) -> list[Path]:
    """Write every recorded page's screenshot and log under test-artifacts/failed-TEST-N.*; forget them all."""
    ARTIFACTS.mkdir(exist_ok=True)
    written: list[Path] = []
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in test_name)[:80]
    for i, recorded in enumerate(EVIDENCE):
        base = ARTIFACTS / f"failed-{safe}-{i}"
        recorded.screenshot()
        if recorded.shot is not None:
            base.with_suffix(".png").write_bytes(recorded.shot)
            written.append(base.with_suffix(".png"))
        base.with_suffix(".log").write_text("\n".join(recorded.lines) + "\n", encoding="utf-8")
        written.append(base.with_suffix(".log"))
    EVIDENCE.clear()
    return written
