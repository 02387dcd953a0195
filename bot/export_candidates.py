"""Turn conversations that ended in a handoff into candidate training data, for a person to review.

Input: one or more JSON files. Each holds a transcript (a list of ``{"sender": ..., "text": ...}``), a list of
transcripts, or objects ``{"conversation_id": ..., "messages": [...], "handoff": {...}}`` where ``handoff``
is the bot's handoff payload (see README.md). ``sender`` is ``customer`` (also ``visitor``, ``user``),
``bot`` or ``agent``; a message may carry the ``intent`` the bot detected.

Output (in ``--out``, default ``bot/candidates/``):

- ``nlu_candidates.yml``: the customers' lines in Rasa's NLU format, grouped by the intent the bot detected
  (``needs_label`` when it did not understand them: ``nlu_fallback`` or nothing), with emails, phone numbers
  and order numbers annotated as entities and personal data replaced by placeholders;
- ``test_candidates.yml``: one test-story skeleton per conversation (the customer's turns up to the handoff,
  then ``action_handoff``), to complete and move into ``bot/tests/``.

The hub gives them at ``GET /api/bot/handoffs`` (service token, or a supervisor's session), which this
script can read itself with ``--hub URL`` (the token from ``--token`` or ``SERVICE_TOKEN``), page by page.

Nothing here is training data until a person has reviewed it. Standard library only, so it runs in the
hub's environment as well as in ``.venv-rasa``::

    .venv/bin/python bot/export_candidates.py --hub http://127.0.0.1:8080 --out bot/candidates
    .venv/bin/python bot/export_candidates.py handoffs.json --out bot/candidates
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Sequence

CUSTOMER = {"customer", "visitor", "user", "contact"}
UNKNOWN = "needs_label"
PLACEHOLDER_EMAIL = "customer@example.com"
PLACEHOLDER_PHONE = "+1 415 555 0100"

_EMAIL = re.compile(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w])\+?\d[\d \-]{6,}\d(?![\w])")
_ORDER = re.compile(r"(?i)\b(order(?:\s+(?:number|no\.?|#))?\s*#?)(\d{1,9})\b")
_KNOWN_ANNOTATION = re.compile(r"\[([^\]]+)\]\((\w+)\)")


def _conversations(data: Any) -> list[dict[str, Any]]:
    """Normalise the accepted input shapes into [{"id", "messages", "handoff"}]."""
    if isinstance(data, dict):
        if "messages" in data or "transcript" in data:
            return [{"id": data.get("conversation_id") or data.get("id"),
                     "messages": list(data.get("messages") or data.get("transcript") or []),
                     "handoff": data.get("handoff")}]
        if "conversations" in data:
            return [c for item in data["conversations"] for c in _conversations(item)]
        raise ValueError("a transcript object needs 'messages' (or 'transcript' or 'conversations')")
    if isinstance(data, list):
        if all(isinstance(m, dict) and "text" in m for m in data):
            return [{"id": None, "messages": data, "handoff": None}]
        return [c for item in data for c in _conversations(item)]
    raise ValueError("expected a JSON list or object")


def anonymise(text: str) -> str:
    """Emails and phone numbers become placeholders annotated as entities; order numbers are annotated."""
    spans: list[tuple[int, int, str]] = []
    for m in _EMAIL.finditer(text):
        spans.append((m.start(), m.end(), f"[{PLACEHOLDER_EMAIL}](email)"))
    for m in _ORDER.finditer(text):
        if not any(s <= m.start(2) < e for s, e, _ in spans):
            spans.append((m.start(2), m.end(2), f"[{m.group(2)}](order_id)"))
    for m in _PHONE.finditer(text):
        digits = sum(ch.isdigit() for ch in m.group())
        if digits >= 7 and not any(s < m.end() and m.start() < e for s, e, _ in spans):
            spans.append((m.start(), m.end(), f"[{PLACEHOLDER_PHONE}](phone)"))
    out, pos = [], 0
    for start, end, repl in sorted(spans):
        out.append(text[pos:start])
        out.append(repl)
        pos = end
    out.append(text[pos:])
    cleaned = "".join(out).replace("\n", " ").strip()
    return re.sub(r"\s+", " ", cleaned)


def _plain(text: str) -> str:
    return _KNOWN_ANNOTATION.sub(r"\1", text).strip().lower()


def existing_examples(paths: Iterable[Path]) -> set[str]:
    """Lines already in the NLU data (plain text, lower case), to leave out of the candidates."""
    seen: set[str] = set()
    for path in paths:
        files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
        for f in files:
            for line in f.read_text(encoding="utf-8").splitlines():
                s = line.strip()
                if s.startswith("- ") and not s.startswith(("- intent:", "- synonym:", "- lookup:", "- regex:")):
                    seen.add(_plain(s[2:]))
    return seen


def _intent_of(message: dict[str, Any]) -> str:
    intent = message.get("intent")
    if isinstance(intent, dict):
        intent = intent.get("name")
    if not intent or intent in ("nlu_fallback", "None"):
        return UNKNOWN
    return str(intent)


def _is_customer(message: dict[str, Any]) -> bool:
    return str(message.get("sender", "")).lower() in CUSTOMER


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def build(conversations: Sequence[dict[str, Any]], known: set[str] | None = None) -> tuple[str, str]:
    """The text of nlu_candidates.yml and test_candidates.yml."""
    known = known or set()
    by_intent: dict[str, list[str]] = {}
    seen: set[str] = set()
    stories: list[str] = []
    for n, conv in enumerate(conversations, start=1):
        messages = [m for m in conv["messages"] if isinstance(m, dict) and isinstance(m.get("text"), str)]
        handoff = conv.get("handoff") or {}
        # where the bot gave up: the first bot message after which an agent speaks (or the last bot message)
        cut = next((i for i, m in enumerate(messages) if str(m.get("sender", "")).lower() == "agent"), len(messages))
        steps: list[str] = []
        for i, m in enumerate(messages):
            text = m["text"].strip()
            if not _is_customer(m) or not text or text.startswith("/"):
                continue
            line = anonymise(text)
            intent = _intent_of(m)
            key = _plain(line)
            if key not in seen and key not in known:
                seen.add(key)
                by_intent.setdefault(intent, []).append(line)
            if i < cut:
                steps.append(f"  - user: |\n      {line}\n    intent: {intent if intent != UNKNOWN else 'TODO'}\n"
                             "  - action: TODO")
        name = conv.get("id") if conv.get("id") is not None else n
        reason = handoff.get("reason") if isinstance(handoff, dict) else None
        header = f"- story: handoff {name}" + (f" ({reason})" if reason else "")
        if steps:
            steps[-1] = steps[-1].replace("  - action: TODO", "  - action: action_handoff")
        stories.append(header + "\n  steps:\n" + "\n".join(steps) if steps else header + "\n  steps: []")
    nlu = ["# Candidate NLU examples from conversations handed to a person. REVIEW before use:",
           "# move each line into data/nlu.yml under the right intent; needs_label means the bot did not understand it.",
           'version: "3.1"', "nlu:"]
    for intent in sorted(by_intent, key=lambda k: (k == UNKNOWN, k)):
        nlu.append(f"- intent: {intent}")
        nlu.append("  examples: |")
        nlu += [f"    - {line}" for line in by_intent[intent]]
    if not by_intent:
        nlu[-1] = "nlu: []"
    tests = ["# Test-story skeletons from conversations handed to a person. Fill in the TODOs (bot actions, intents)",
             "# and move the good ones into bot/tests/.", 'version: "3.1"', "stories:" if stories else "stories: []"]
    tests += stories
    return "\n".join(nlu) + "\n", "\n".join(tests) + "\n"


def fetch_handoffs(hub: str, token: str, after: int = 0, page: int = 200) -> list[dict[str, Any]]:
    """Every handoff the hub has after the cursor ``after``, from ``GET /api/bot/handoffs``, page by page."""
    out: list[dict[str, Any]] = []
    cursor: int | None = after
    while cursor is not None:
        url = f"{hub.rstrip('/')}/api/bot/handoffs?" + urllib.parse.urlencode({"after": cursor, "limit": page})
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise SystemExit(f"the hub refused {url}: HTTP {exc.code} {exc.read().decode(errors='replace')[:300]}") from None
        except urllib.error.URLError as exc:
            raise SystemExit(f"cannot reach the hub at {hub}: {exc.reason}") from None
        out += body.get("conversations") or []
        cursor = body.get("next_after")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export handoff conversations as candidate training data.")
    parser.add_argument("transcripts", nargs="*", type=Path, help="JSON files of transcripts")
    parser.add_argument("--hub", help="read the handoffs from this hub's API (GET /api/bot/handoffs)")
    parser.add_argument("--token", default=os.environ.get("SERVICE_TOKEN", ""), help="the hub's service token (default: SERVICE_TOKEN)")
    parser.add_argument("--after", type=int, default=0, help="only handoffs after this cursor (a previous export's last one)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "candidates")
    parser.add_argument("--existing", type=Path, action="append", default=None,
                        help="NLU files or folders whose examples are left out (default: bot/data)")
    args = parser.parse_args(argv)
    if not args.transcripts and not args.hub:
        parser.error("give JSON files of transcripts, or --hub URL")
    if args.hub and not args.token:
        parser.error("--hub needs the hub's service token (--token or SERVICE_TOKEN)")
    conversations: list[dict[str, Any]] = []
    if args.hub:
        conversations += _conversations({"conversations": fetch_handoffs(args.hub, args.token, args.after)})
    for path in args.transcripts:
        conversations += _conversations(json.loads(path.read_text(encoding="utf-8")))
    existing = args.existing if args.existing is not None else [Path(__file__).resolve().parent / "data"]
    nlu, tests = build(conversations, existing_examples(p for p in existing if p.exists()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nlu_candidates.yml").write_text(nlu, encoding="utf-8")
    (args.out / "test_candidates.yml").write_text(tests, encoding="utf-8")
    count = sum(1 for line in nlu.splitlines() if line.startswith("    - "))
    print(f"{len(conversations)} conversation(s), {count} candidate line(s) -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
