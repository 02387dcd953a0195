"""Schemathesis against ``GET /api/openapi.json`` (issue 19): a bounded, deterministic run over every operation.

The hub runs as a subprocess (the real ``serve``, SQLite, the demo data so ids and SKUs exist); every operation
gets ``MAX_EXAMPLES`` generated requests (Hypothesis derandomised: the same requests every run) with the service
token. Each answer must not be a 5xx, must have a status the document lists for it, a JSON content type and a
body that conforms to the documented schema. The whole run takes well under a minute here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis.errors import Unsatisfiable
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "schemathesis-token"
MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# malformed requests (negative mode): any 4xx will do, but never a 5xx, always JSON with a reason
NEGATIVE_CHECKS = [not_a_server_error, content_type_conformance]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/st.db", "HOST": "127.0.0.1", "PORT": str(port),
           "SERVICE_TOKEN": TOKEN, "DEMO_DATA": "true", "REDIS_URL": "", "RASA_URL": "", "TWILIO_STANDIN": "0",
           "MEDIA_DIR": str(tmp / "media"), "SMTP_LISTEN": "", "EMAIL_ADDRESSES": ""}
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
    log_path = tmp / "hub.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([python, "-m", "contact_center.cli", "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"the hub exited: {log_path.read_text(errors='replace')[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the hub did not start in 120 s: {log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if "Traceback" in log_path.read_text(errors="replace"):
        print(log_path.read_text(errors="replace")[-5000:])


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_operation_answers_within_its_schema_and_never_5xx(hub: str, mode: str) -> None:
    schema = schemathesis.openapi.from_url(f"{hub}/api/openapi.json")
    generation = schemathesis.GenerationMode(mode)
    checks = CHECKS if mode == "positive" else NEGATIVE_CHECKS
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=generation))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=hub, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
            case.validate_response(response, checks=checks)
            if 400 <= response.status_code < 500 and response.status_code != 405:
                body = response.json()
                assert isinstance(body, dict) and body.get("error") and body.get("message"), (response.status_code, body)

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Unsatisfiable:
            # negative mode and an operation with nothing to get wrong (no parameters, no body): nothing to send
            if mode != "negative" or operation.body or any(True for _ in operation.iter_parameters()):
                failures.append(f"{operation.method.upper()} {operation.path}: no input could be generated")
        except BaseException as exc:  # noqa: BLE001 - schemathesis raises a group: collect every operation's, report all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
