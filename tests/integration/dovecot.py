"""A real Dovecot IMAP server for the email tests, installed and started by ``scripts/ensure-dovecot``.

Outside CI a machine where Dovecot cannot be installed skips these tests (saying why); in CI
(``CI`` set) that is a failure, never a skip.
"""

from __future__ import annotations

import imaplib
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-dovecot"


@dataclass(frozen=True)
class DovecotServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dir: str = ""

    def client(self) -> imaplib.IMAP4:
        """A logged-in IMAP connection of the test itself (APPEND, CREATE, DELETE, flag checks)."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def new_folder(self) -> str:
        """A fresh folder, one per test (the server is shared by the session)."""
        name = f"t{uuid.uuid4().hex[:10]}"
        with self.client() as c:
            typ, data = c.create(name)
            assert typ == "OK", data
        return name


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Dovecot is required in CI: {reason}")
    pytest.skip(f"Dovecot (dovecot-imapd) could not be installed here: {reason}")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """Dovecot on 127.0.0.1 (a free port, no TLS, one passwd-file user, maildir in a temp dir), stopped at the end."""
    try:
        done = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"scripts/ensure-dovecot start: {exc}")
    if done.returncode == 3:  # the script's "cannot be installed here"
        _unavailable(done.stderr.strip()[-800:])
    if done.returncode != 0:  # installed but broken: always a failure
        pytest.fail(f"scripts/ensure-dovecot start exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    server = DovecotServer(
        host=values["DOVECOT_HOST"], port=int(values["DOVECOT_PORT"]), user=values["DOVECOT_USER"],
        password=values["DOVECOT_PASSWORD"], dir=values["DOVECOT_DIR"],
    )
    try:
        yield server
    finally:
        subprocess.run([str(SCRIPT), "stop", server.dir], capture_output=True, timeout=60)
