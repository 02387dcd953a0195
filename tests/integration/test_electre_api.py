"""ELECTRE II through the hub's API (POST /api/evaluation/electre2) and the command (contact-center electre2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from contact_center.app import create_app
from contact_center.cli import main
from contact_center.settings import Settings
from crm_store.db import Database

TOKEN = "test-service-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
URL = "/api/evaluation/electre2"

# Wang and Triantaphyllou (2008), Omega 36(1): the ELECTRE II example (see tests/unit/test_electre.py).
PROBLEM: dict[str, Any] = {
    "alternatives": {
        "A1": [1, 2, 1, 5, 2, 2, 4],
        "A2": [3, 5, 3, 5, 3, 3, 3],
        "A3": [3, 5, 3, 5, 3, 2, 2],
        "A4": [1, 2, 2, 5, 1, 1, 1],
        "A5": [1, 1, 3, 5, 4, 1, 5],
    },
    "weights": [0.0780, 0.1180, 0.1570, 0.3140, 0.2350, 0.0390, 0.0590],
    "directions": ["max"] * 7,
    "scales": [[1, 5]] * 7,
    "concordance": [0.65, 0.85],
    "discordance": [0.25, 0.50],
}
RANKING = [["A2"], ["A5"], ["A3"], ["A1"], ["A4"]]


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[TestClient]:
    """The hub on SQLite: the route reads no table, so one database engine is enough."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/cc.db")
    await db.create_all()
    settings = Settings(database_url=db.url, service_tokens=(TOKEN,), demo_data=False, auto_migrate=False)
    try:
        yield await aiohttp_client(create_app(settings, clock=lambda: datetime(2026, 11, 23, 10, tzinfo=timezone.utc)))
    finally:
        await db.dispose()


async def test_api_ranks_a_published_example(client: TestClient) -> None:
    resp = await client.post(URL, json=PROBLEM, headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert set(body) == {"strong", "weak", "descending", "ascending", "ranking", "explanation"}
    assert body["ranking"] == RANKING
    assert body["descending"] == [["A2", "A5"], ["A3"], ["A1"], ["A4"]]
    assert body["ascending"] == [["A2"], ["A3", "A5"], ["A1"], ["A4"]]
    assert ["A2", "A3"] in body["strong"] and ["A2", "A3"] in body["weak"]
    assert body["explanation"]["summary"].startswith("5 alternative(s) in 5 level(s)")

    with_matrices = await (await client.post(URL, params={"matrices": "true"}, json=PROBLEM, headers=AUTH)).json()
    assert with_matrices["matrices"]["order"] == ["A1", "A2", "A3", "A4", "A5"]
    assert with_matrices["matrices"]["concordance"][1][2] == 1.0


async def test_api_explains_ties_and_incomparability(client: TestClient) -> None:
    problem = {
        "alternatives": {"x": [9, 9], "y": [6, 6], "z": [3, 3], "u": [10, 0], "v": [10, 0]},
        "weights": [1, 1], "directions": ["max", "max"], "scales": [[0, 10], [0, 10]],
        "concordance": [0.6, 0.8], "discordance": [0.3, 0.6], "criteria": ["margin", "slack"],
    }
    body = await (await client.post(URL, json=problem, headers=AUTH)).json()
    assert body["ranking"] == [["x"], ["u", "v", "y"], ["z"]]
    exp = body["explanation"]
    (tied,) = [g for g in exp["groups"] if len(g["names"]) > 1]
    assert tied["names"] == ["u", "v"] and "strongly outrank each other" in tied["pairs"][0]
    assert exp["incomparable_pairs"] == 2
    assert {tuple(i["pair"]) for i in exp["incomparable"]} == {("u", "y"), ("v", "y")}
    assert exp["circuits"][0]["names"] == ["u", "v"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"alternatives": {"A1": [1, 2], "A2": [1]}}, "alternatives", "has 2 values but there are 7 criteria"),
        ({"concordance": [0.85, 0.65]}, "concordance", "out of order"),
        ({"scales": [[1, 5]] * 6 + [[3, 3]]}, "scales", "zero range"),
        ({"directions": ["max"] * 6 + ["down"]}, "directions", "'max' or 'min'"),
        ({"weights": [1] * 6 + [0]}, "weights", "positive"),
        ({"alternatives": {}}, "alternatives", "at least one alternative"),
        ({"tresholds": 1}, "tresholds", "unknown field"),
        ({"alternatives": {f"o{i}": [1] * 7 for i in range(2001)}}, "alternatives", "at most 2000 alternatives in one request"),
    ],
)
async def test_api_refuses_bad_input_with_the_reason(client: TestClient, change: dict[str, Any], field: str, words: str) -> None:
    resp = await client.post(URL, json={**PROBLEM, **change}, headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request" and words in body["message"]
    assert body["fields"] == [{"field": field, "reason": body["message"]}]


async def test_api_refuses_broken_json_a_repeated_name_and_no_token(client: TestClient) -> None:
    for raw in (b"{not json", b"[1, 2]", b'{"alternatives": {"a": [1], "a": [2]}}'):
        resp = await client.post(URL, data=raw, headers={**AUTH, "Content-Type": "application/json"})
        assert resp.status == 400
        message = (await resp.json())["message"]
        assert any(w in message for w in ("not valid JSON", "JSON object", "appears twice")), message
    assert (await client.post(URL, json=PROBLEM)).status == 401
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["paths"][URL]["post"]["responses"]["400"]["description"].startswith("invalid problem")


def test_command_prints_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(PROBLEM))
    assert main(["electre2", "--input", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ranking"] == RANKING and out["ascending"] == [["A2"], ["A3", "A5"], ["A1"], ["A4"]]
    assert main(["electre2", "--input", str(path)]) == 0
    text = capsys.readouterr().out
    assert "ranking (best first" in text and "    1  A2" in text and "descending distillation: [A2, A5] > [A3]" in text


def test_command_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**PROBLEM, "discordance": [0.5, 0.25]}))
    assert main(["electre2", "--input", str(bad), "--json"]) == 2
    assert "error [discordance]: discordance thresholds are out of order" in capsys.readouterr().err
    bad.write_text("{")
    assert main(["electre2", "--input", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["electre2", "--input", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_console_script_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(PROBLEM))
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/unused.db"}
    cli = [sys.executable, "-m", "contact_center.cli", "electre2", "--json", "--input"]
    done = subprocess.run([*cli, str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ranking"] == RANKING
    ragged = subprocess.run(
        [*cli, "-"], input=json.dumps({**PROBLEM, "alternatives": {"A1": [1, 2, 3]}}),
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert ragged.returncode == 2 and "has 3 values but there are 7 criteria" in ragged.stderr
