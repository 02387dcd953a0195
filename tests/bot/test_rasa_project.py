"""The Rasa project in bot/: the names the hub relies on, `rasa data validate` clean, and the end-to-end test
stories of bot/tests/ passing against the trained model (needs .venv-rasa)."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from tests.bot.helpers import BOT, RASA_BIN, ROOT, require_rasa

REQUIRED_INTENTS = {
    "greet", "goodbye", "affirm", "deny", "thank", "order_product", "inform", "track_order", "cancel_order",
    "ask_price", "ask_stock", "ask_delivery_time", "ask_opening_hours", "ask_return_policy", "human_handoff",
    "bot_challenge", "out_of_scope",
}
REQUIRED_ENTITIES = {"product", "quantity", "order_id", "email", "phone", "size", "color"}


def _domain() -> dict:
    return yaml.safe_load((BOT / "domain.yml").read_text(encoding="utf-8"))


def _names(items: list) -> set[str]:
    return {next(iter(i)) if isinstance(i, dict) else i for i in items}


def test_the_domain_has_the_required_intents_and_entities() -> None:
    domain = _domain()
    intents, entities = _names(domain["intents"]), _names(domain["entities"])
    assert REQUIRED_INTENTS <= intents, REQUIRED_INTENTS - intents
    assert REQUIRED_ENTITIES <= entities, REQUIRED_ENTITIES - entities
    assert "resume_bot" in intents  # the hub sends "/resume_bot" when an agent hands back
    assert {"customer_id", "conversation_id", "handed_off"} <= set(domain["slots"])
    assert "order_form" in domain["forms"]


def test_every_required_intent_has_training_examples() -> None:
    seen: set[str] = set()
    for path in (BOT / "data").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
            if "intent" in block:
                seen.add(block["intent"])
    assert REQUIRED_INTENTS <= seen, REQUIRED_INTENTS - seen


def test_rasa_data_validate_is_clean() -> None:
    require_rasa()
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    proc = subprocess.run([str(RASA_BIN), "data", "validate", "--fail-on-warnings"], cwd=BOT, env=env,
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    problems = [line for line in output.splitlines()
                if ("UserWarning" in line or " WARNING " in line or " ERROR " in line)]
    assert not problems, "\n".join(problems)


def _test_stories() -> list[str]:
    names: list[str] = []
    for path in sorted((BOT / "tests").glob("test_*.yml")):
        names += [s["story"] for s in yaml.safe_load(path.read_text(encoding="utf-8")).get("stories") or []]
    return names


def test_the_end_to_end_test_stories_pass_against_the_trained_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`rasa test core --e2e` on bot/tests/ with bot/models/bot.tar.gz: the customer's words go through the NLU
    model (intent and entities checked) and the policies must predict every action; one wrong prediction fails.

    scripts/train-bot (re)trains bot/models/bot.tar.gz first when the bot's data changed (a no-op otherwise;
    scripts/run-tests with BOT_TESTS=1 has already run it)."""
    require_rasa()
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    subprocess.run([str(ROOT / "scripts" / "train-bot")], cwd=ROOT, env=env, check=True, timeout=3600)
    model = BOT / "models" / "bot.tar.gz"
    assert model.exists(), "scripts/train-bot did not produce bot/models/bot.tar.gz"
    stories = _test_stories()
    assert len(stories) >= 8, stories
    out = tmp_path / "core"
    proc = subprocess.run(
        ["nice", "-n", "10", str(RASA_BIN), "test", "core", "--stories", "tests/", "--model", str(model),
         "--out", str(out), "--e2e", "--no-plot"],
        cwd=BOT, env=env, capture_output=True, text=True, timeout=1800)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    report = json.loads((out / "story_report.json").read_text(encoding="utf-8"))
    conversations = report["conversation_accuracy"]
    failed = (out / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert conversations["total"] == len(stories), (conversations, stories)
    assert conversations["correct"] == conversations["total"], failed
    assert "None of the test stories failed" in failed, failed
