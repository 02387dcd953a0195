"""The Rasa project in bot/: the names the hub relies on, and `rasa data validate` clean (needs .venv-rasa)."""

from __future__ import annotations

import os
import subprocess

import yaml

from tests.bot.helpers import BOT, RASA_BIN, require_rasa

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
