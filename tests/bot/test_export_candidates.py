"""bot/export_candidates.py: handoff conversations become candidate NLU lines and test-story skeletons."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.bot.helpers import BOT, load_module

export = load_module("bot_export_candidates", BOT / "export_candidates.py")

TRANSCRIPT = [
    {"sender": "customer", "text": "hi"},
    {"sender": "bot", "text": "Hi! What can I do for you?"},
    {"sender": "customer", "text": "my parcel 3068 came crushed, I want a replacement", "intent": "nlu_fallback"},
    {"sender": "bot", "text": "Sorry, I didn't quite get that."},
    {"sender": "customer", "text": "replacement for order 3068 please, mail me at jo.bloggs@example.org",
     "intent": {"name": "track_order", "confidence": 0.41}},
    {"sender": "bot", "text": "I'm passing you to a colleague now."},
    {"sender": "agent", "text": "Hi, I'm Alice. Sorry about that!"},
    {"sender": "customer", "text": "can you call me on +44 7700 900123 instead"},
    {"sender": "customer", "text": "/resume_bot"},
]


def test_lines_are_grouped_anonymised_and_deduplicated(tmp_path: Path) -> None:
    src = tmp_path / "t.json"
    src.write_text(json.dumps([{"conversation_id": 77, "messages": TRANSCRIPT, "handoff": {"reason": "fallback"}},
                               TRANSCRIPT]))
    out = tmp_path / "out"
    assert export.main([str(src), "--out", str(out)]) == 0
    nlu = yaml.safe_load((out / "nlu_candidates.yml").read_text())
    blocks = {b["intent"]: [line[2:] for line in b["examples"].splitlines()] for b in nlu["nlu"]}
    assert "hi" not in sum(blocks.values(), [])  # already in bot/data/nlu.yml
    assert blocks["track_order"] == [
        "replacement for order [3068](order_id) please, mail me at [customer@example.com](email)"]
    assert "my parcel 3068 came crushed, I want a replacement" in blocks["needs_label"]
    assert "can you call me on [+1 415 555 0100](phone) instead" in blocks["needs_label"]
    text = (out / "nlu_candidates.yml").read_text()
    assert "jo.bloggs" not in text and "7700" not in text and "/resume_bot" not in text
    # the same transcript twice gives its lines once
    assert sum(len(v) for v in blocks.values()) == 3

    tests = yaml.safe_load((out / "test_candidates.yml").read_text())
    story = tests["stories"][0]
    assert story["story"] == "handoff 77 (fallback)"
    steps = story["steps"]
    assert [s.get("intent") for s in steps if "user" in s] == ["TODO", "TODO", "track_order"]
    assert steps[-1] == {"action": "action_handoff"}
    assert len(tests["stories"]) == 2


def test_a_single_transcript_file(tmp_path: Path) -> None:
    src = tmp_path / "one.json"
    src.write_text(json.dumps([{"sender": "visitor", "text": "where can I buy gift cards"}]))
    nlu, tests = export.build(export._conversations(json.loads(src.read_text())))
    assert "- intent: needs_label" in nlu and "where can I buy gift cards" in nlu
    assert yaml.safe_load(tests)["stories"][0]["steps"][-1] == {"action": "action_handoff"}
